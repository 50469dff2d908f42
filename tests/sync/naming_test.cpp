// Name to socket path, exactly as .NET and Mono map it on Linux, and the error model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "npipe/errors.hpp"
#include "npipe/pipe_name.hpp"

namespace {

class scoped_env {
  public:
    scoped_env(const char* key, const char* value) : key_(key) {
        if (const char* old = std::getenv(key))
            old_ = old;
        if (value)
            ::setenv(key, value, 1);
        else
            ::unsetenv(key);
    }
    ~scoped_env() {
        if (old_)
            ::setenv(key_, old_->c_str(), 1);
        else
            ::unsetenv(key_);
    }

  private:
    const char* key_;
    std::optional<std::string> old_;
};

std::error_code path_error(std::string_view name) {
    std::error_code ec;
    npipe::pipe_path(name, ec);
    return ec;
}

}  // namespace

TEST(pipe_path, simple_name_goes_under_tmp_with_dotnet_prefix) {
    scoped_env tmp("TMPDIR", nullptr);
    EXPECT_EQ(npipe::pipe_path("test-pipe"), "/tmp/CoreFxPipe_test-pipe");
}

TEST(pipe_path, honours_tmpdir_with_or_without_trailing_slash) {
    {
        scoped_env tmp("TMPDIR", "/var/run/x");
        EXPECT_EQ(npipe::pipe_path("a"), "/var/run/x/CoreFxPipe_a");
    }
    {
        scoped_env tmp("TMPDIR", "/var/run/x/");
        EXPECT_EQ(npipe::pipe_path("a"), "/var/run/x/CoreFxPipe_a");
    }
    {
        scoped_env tmp("TMPDIR", "");
        EXPECT_EQ(npipe::pipe_path("a"), "/tmp/CoreFxPipe_a");
    }
}

TEST(pipe_path, rooted_name_is_the_path_itself) {
    EXPECT_EQ(npipe::pipe_path("/run/my.sock"), "/run/my.sock");
}

TEST(pipe_path, rejects_names_dotnet_rejects) {
    EXPECT_EQ(path_error(""), npipe::errc::invalid_name);
    EXPECT_EQ(path_error("a/b"), npipe::errc::invalid_name);
    EXPECT_EQ(path_error("/run/dir/"), npipe::errc::invalid_name);
    EXPECT_EQ(path_error(std::string_view("a\0b", 3)), npipe::errc::invalid_name);
    EXPECT_EQ(path_error("anonymous"), npipe::errc::invalid_name);
    EXPECT_EQ(path_error("AnonyMous"), npipe::errc::invalid_name);
    EXPECT_FALSE(path_error("anonymous2"));
}

TEST(pipe_path, refuses_paths_that_do_not_fit_sockaddr_un_instead_of_truncating) {
    scoped_env tmp("TMPDIR", nullptr);
    // "/tmp/CoreFxPipe_" is 16 bytes; with the NUL, 91 name bytes fill sun_path's 108 exactly.
    EXPECT_FALSE(path_error(std::string(91, 'n')));
    EXPECT_EQ(path_error(std::string(92, 'n')), npipe::errc::path_too_long);
    EXPECT_FALSE(path_error("/" + std::string(106, 'r')));
    EXPECT_EQ(path_error("/" + std::string(107, 'r')), npipe::errc::path_too_long);
}

TEST(pipe_path, throwing_overload_names_the_pipe) {
    try {
        npipe::pipe_path("bad/name");
        FAIL() << "no exception";
    } catch (const npipe::pipe_error& e) {
        EXPECT_EQ(e.code(), npipe::errc::invalid_name);
        EXPECT_EQ(e.pipe_name(), "bad/name");
        EXPECT_NE(std::string(e.what()).find("pipe 'bad/name'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("invalid pipe name"), std::string::npos) << e.what();
    }
}

TEST(errors, npipe_codes_match_portable_conditions) {
    std::error_code ec = npipe::errc::timed_out;
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_EQ(std::error_code(npipe::errc::broken_pipe), std::errc::broken_pipe);
    EXPECT_EQ(std::error_code(npipe::errc::access_denied), std::errc::permission_denied);
    EXPECT_STREQ(ec.category().name(), "npipe");
    EXPECT_NE(ec, std::errc::broken_pipe);
}
