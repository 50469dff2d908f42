// Qt's QLocalServer / QLocalSocket (a Unix socket underneath), driven with Qt's blocking calls
// (waitForReadyRead, waitForBytesWritten): what a Qt program without an event loop thread does.
#include <sys/socket.h>
#include <unistd.h>
#include <QCoreApplication>
#include <QLocalServer>
#include <QLocalSocket>

#include <cstdlib>
#include <memory>
#include <string>

#include "common/harness.hpp"

namespace npipe::bench {
namespace {

std::string temp_dir() {
    const char* t = std::getenv("TMPDIR");
    std::string dir = t && *t ? t : "/tmp";
    return dir.back() == '/' ? dir : dir + '/';
}

class qt_connection : public connection {
  public:
    explicit qt_connection(QLocalSocket* s) : s_(s) {}
    ~qt_connection() override { delete s_; }
    void write_all(std::span<const std::byte> data) override {
        if (s_->write(reinterpret_cast<const char*>(data.data()),
                      static_cast<qint64>(data.size())) != static_cast<qint64>(data.size()))
            throw bench_error("QLocalSocket::write: " + s_->errorString().toStdString());
        while (s_->bytesToWrite() > 0)
            if (!s_->waitForBytesWritten(-1))
                throw bench_error("QLocalSocket::waitForBytesWritten: " +
                                  s_->errorString().toStdString());
    }
    std::size_t read_some(std::span<std::byte> buffer) override {
        while (s_->bytesAvailable() == 0) {
            if (!s_->waitForReadyRead(-1)) {
                if (s_->state() != QLocalSocket::ConnectedState)
                    return 0;
                throw bench_error("QLocalSocket::waitForReadyRead: " +
                                  s_->errorString().toStdString());
            }
        }
        auto n =
            s_->read(reinterpret_cast<char*>(buffer.data()), static_cast<qint64>(buffer.size()));
        if (n < 0)
            throw bench_error("QLocalSocket::read: " + s_->errorString().toStdString());
        return static_cast<std::size_t>(n);
    }

  private:
    QLocalSocket* s_;
};

class qt_transport : public transport {
  public:
    void check(const config& cfg) const override {
        if (cfg.clients != 1)
            throw bench_error("QLocalSocket objects belong to one thread (--clients 1)");
        if (cfg.buffer_size)
            throw bench_error("QLocalSocket has no kernel buffer size option (--buffer-size)");
    }
    void in_process(role, const config&) override {
        static int argc = 1;
        static char name[] = "bench_qt";
        static char* argv[] = {name, nullptr};
        app_ = std::make_unique<QCoreApplication>(argc, argv);
    }

    std::unique_ptr<listener> listen(const config&) override {
        struct qt_listener : listener {
            QLocalServer server;
            QString path;
            std::string endpoint() const override { return path.toStdString(); }
            std::unique_ptr<connection> accept(int) override {
                while (!server.hasPendingConnections())
                    if (!server.waitForNewConnection(-1))
                        throw bench_error("QLocalServer::waitForNewConnection: " +
                                          server.errorString().toStdString());
                QLocalSocket* s = server.nextPendingConnection();
                s->setParent(nullptr);  // the connection owns it from here
                return std::make_unique<qt_connection>(s);
            }
        };
        auto l = std::make_unique<qt_listener>();
        l->path =
            QString::fromStdString(temp_dir() + "npipe-bench-qt-" + std::to_string(::getpid()));
        QLocalServer::removeServer(l->path);
        l->server.setMaxPendingConnections(SOMAXCONN);
        if (!l->server.listen(l->path))
            throw bench_error("QLocalServer::listen: " + l->server.errorString().toStdString());
        return l;
    }

    std::unique_ptr<connection> connect(const std::string& path, const config&) override {
        auto* s = new QLocalSocket;
        auto c = std::make_unique<qt_connection>(s);
        s->connectToServer(QString::fromStdString(path));
        if (!s->waitForConnected(-1))
            throw bench_error("QLocalSocket::connectToServer: " + s->errorString().toStdString());
        return c;
    }

  private:
    std::unique_ptr<QCoreApplication> app_;
};

}  // namespace
}  // namespace npipe::bench

int main(int argc, char** argv) {
    npipe::bench::qt_transport t;
    return npipe::bench::run_main(argc, argv, "qt", t);
}
