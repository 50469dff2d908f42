/* A plain Win32 peer that knows nothing of npipe: it proves npipe's pipes are ordinary Windows
 * named pipes, as a .NET or C program on Windows sees them.
 *   win32_peer server NAME   creates \\.\pipe\NAME (message mode), waits for one client, reads
 *                            the message "ping", answers with the message "pong"
 *   win32_peer server2 NAME  the same with a single instance, for two clients in turn (the second
 *                            finds the pipe busy until the first is done)
 *   win32_peer client NAME   opens \\.\pipe\NAME (waiting up to 20 s), switches to message
 *                            read mode, sends "ping", expects "pong"
 *   win32_peer chat-server NAME  creates a message pipe, waits for one client, expects the
 *                            message "hello from npipe", sends three messages (the last "x"),
 *                            then reads until the client closes: `npipe chat client`'s peer
 *   win32_peer copy-server NAME SIZE / copy-client NAME SIZE
 *                            a byte pipe's server or client that sends SIZE bytes of
 *                            pattern 2 while it receives SIZE bytes that must be pattern 1
 *                            (peer_pattern below), then closes: npipe.exe's peer in a copy both
 *                            ways (exit 3: the bytes received were not pattern 1)
 *   win32_peer anon-echo HANDLE  copies the inherited anonymous pipe HANDLE (a handle value in
 *                            decimal) to stdout until it ends: `npipe anon send`'s child
 *   win32_peer anon-exit HANDLE CODE  writes "exiting with CODE" to HANDLE (when it can: a read
 *                            end takes nothing) and exits with CODE
 *   win32_peer echo CODE     copies its stdin to its stdout as it comes, with plain synchronous
 *                            ReadFile/WriteFile on the standard handles (as any console
 *                            program), and exits with CODE at the end of its input: a command
 *                            for npipe::session_supervisor and `npipe serve NAME -- CMD`
 *   win32_peer emit SIZE     writes SIZE bytes of pattern 2 to its stdout and exits at once
 *   win32_peer stubborn X    writes "ready\n" to its stdout, then never reads and never ends
 * Exit status 0 on success; anything else names the step that failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

static int fail(const char* step) {
    fprintf(stderr, "win32_peer: %s failed (error %lu)\n", step, GetLastError());
    return 1;
}

static int exchange(HANDLE pipe, int server) {
    char buffer[64];
    DWORD n = 0;
    if (server) {
        if (!ReadFile(pipe, buffer, sizeof buffer, &n, NULL) || n != 4 ||
            memcmp(buffer, "ping", 4) != 0)
            return fail("read ping");
        if (!WriteFile(pipe, "pong", 4, &n, NULL) || n != 4)
            return fail("write pong");
        FlushFileBuffers(pipe); /* the reply is read before we close */
        return 0;
    }
    if (!WriteFile(pipe, "ping", 4, &n, NULL) || n != 4)
        return fail("write ping");
    if (!ReadFile(pipe, buffer, sizeof buffer, &n, NULL) || n != 4 ||
        memcmp(buffer, "pong", 4) != 0)
        return fail("read pong");
    return 0;
}

/* Opens \\.\pipe\NAME as a plain Win32 client does: waiting up to 20 s for a server, in
 * WaitNamedPipe while every instance is busy. INVALID_HANDLE_VALUE when none came. */
static HANDLE open_client(const char* path, DWORD flags) {
    ULONGLONG until = GetTickCount64() + 20000;
    for (;;) {
        HANDLE pipe =
            CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, flags, NULL);
        if (pipe != INVALID_HANDLE_VALUE || GetTickCount64() > until)
            return pipe;
        if (GetLastError() == ERROR_PIPE_BUSY)
            WaitNamedPipeA(path, 1000);
        else
            Sleep(20); /* no server yet */
    }
}

/* Byte i of pattern `seed`, as tests/windows/cli_test.cpp writes it. */
static unsigned char peer_pattern(unsigned long long i, int seed) {
    return (unsigned char)(i * 131u + (i >> 12) + (unsigned)seed * 7u);
}

/* One overlapped ReadFile or WriteFile, waited for: the handle is overlapped so that a read and
 * a write can be in flight at once (a synchronous handle serialises them). */
static BOOL overlapped_io(HANDLE pipe, int write, char* data, DWORD size, DWORD* done) {
    OVERLAPPED ov;
    BOOL ok;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    ok = write ? WriteFile(pipe, data, size, NULL, &ov) : ReadFile(pipe, data, size, NULL, &ov);
    if (ok || GetLastError() == ERROR_IO_PENDING)
        ok = GetOverlappedResult(pipe, &ov, done, TRUE);
    CloseHandle(ov.hEvent);
    return ok;
}

struct copy_job {
    HANDLE pipe;
    unsigned long long size;
    int ok;
};

static DWORD WINAPI send_pattern(void* arg) {
    struct copy_job* job = arg;
    static char chunk[65536];
    unsigned long long sent = 0;
    job->ok = 0;
    while (sent < job->size) {
        DWORD n = (DWORD)(job->size - sent < sizeof chunk ? job->size - sent : sizeof chunk),
              done = 0;
        for (DWORD i = 0; i < n; ++i)
            chunk[i] = (char)peer_pattern(sent + i, 2);
        if (!overlapped_io(job->pipe, 1, chunk, n, &done))
            return 1;
        sent += done;
    }
    job->ok = 1;
    return 0;
}

/* Sends pattern 2 while it receives pattern 1, SIZE bytes each way. */
static int copy_both_ways(HANDLE pipe, unsigned long long size) {
    static char chunk[65536];
    struct copy_job job = {pipe, size, 0};
    unsigned long long received = 0;
    HANDLE sender = CreateThread(NULL, 0, send_pattern, &job, 0, NULL);
    int intact = 1;
    if (!sender)
        return fail("CreateThread");
    while (received < size) {
        DWORD done = 0;
        if (!overlapped_io(pipe, 0, chunk, sizeof chunk, &done)) {
            fail("read");
            break;
        }
        for (DWORD i = 0; i < done; ++i)
            intact &= (unsigned char)chunk[i] == peer_pattern(received + i, 1);
        received += done;
    }
    WaitForSingleObject(sender, INFINITE);
    CloseHandle(sender);
    if (!job.ok)
        return fail("write");
    FlushFileBuffers(pipe); /* what we sent is read before we close */
    return received < size ? 1 : intact ? 0 : 3;
}

static int copy_peer(int server, const char* path, unsigned long long size) {
    HANDLE pipe;
    int result;
    if (server) {
        pipe = CreateNamedPipeA(path, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 65536, 65536, 0,
                                NULL);
        if (pipe == INVALID_HANDLE_VALUE)
            return fail("CreateNamedPipe");
        {
            /* An overlapped handle: ConnectNamedPipe needs its OVERLAPPED. */
            OVERLAPPED ov;
            DWORD ignored;
            BOOL ok;
            memset(&ov, 0, sizeof ov);
            ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
            ok = ConnectNamedPipe(pipe, &ov) || GetLastError() == ERROR_PIPE_CONNECTED ||
                 (GetLastError() == ERROR_IO_PENDING &&
                  GetOverlappedResult(pipe, &ov, &ignored, TRUE));
            CloseHandle(ov.hEvent);
            if (!ok)
                return fail("ConnectNamedPipe");
        }
    } else {
        pipe = open_client(path, FILE_FLAG_OVERLAPPED);
        if (pipe == INVALID_HANDLE_VALUE)
            return fail("CreateFile");
    }
    result = copy_both_ways(pipe, size);
    CloseHandle(pipe);
    return result;
}

static int echo_stdin(int code) {
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE), out = GetStdHandle(STD_OUTPUT_HANDLE);
    char buffer[4096];
    DWORD n = 0, wrote = 0;
    while (ReadFile(in, buffer, sizeof buffer, &n, NULL) && n > 0)
        if (!WriteFile(out, buffer, n, &wrote, NULL) || wrote != n)
            return fail("write to stdout");
    return code;
}

static int emit_pattern(unsigned long long size) {
    HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
    char buffer[4096];
    unsigned long long i = 0;
    while (i < size) {
        DWORD n = 0, wrote = 0;
        for (; n < sizeof buffer && i < size; ++n, ++i)
            buffer[n] = (char)peer_pattern(i, 2);
        if (!WriteFile(out, buffer, n, &wrote, NULL) || wrote != n)
            return fail("write to stdout");
    }
    return 0;
}

static int chat_server(HANDLE pipe) {
    static const char* const messages[] = {"a message longer than five bytes", "second", "x"};
    char buffer[256];
    DWORD n = 0;
    if (!ReadFile(pipe, buffer, sizeof buffer, &n, NULL) || n != 16 ||
        memcmp(buffer, "hello from npipe", 16) != 0)
        return 3;
    for (int i = 0; i < 3; ++i)
        if (!WriteFile(pipe, messages[i], (DWORD)strlen(messages[i]), &n, NULL))
            return fail("write a message");
    while (ReadFile(pipe, buffer, sizeof buffer, &n, NULL) || GetLastError() == ERROR_MORE_DATA)
        ; /* until the client closes */
    return 0;
}

/* The anonymous pipe roles: the handle is inherited under the value on the command line. */
static int anon_child(const char* role, HANDLE pipe, int code) {
    static char chunk[65536];
    DWORD n = 0, written = 0;
    if (strcmp(role, "anon-exit") == 0) {
        /* The write fails on the read end `npipe anon send` gives: the exit code still counts. */
        char text[64];
        int length = snprintf(text, sizeof text, "exiting with %d", code);
        WriteFile(pipe, text, (DWORD)length, &written, NULL);
        CloseHandle(pipe);
        return code;
    }
    for (;;) {
        if (!ReadFile(pipe, chunk, sizeof chunk, &n, NULL))
            return GetLastError() == ERROR_BROKEN_PIPE ? 0 : fail("read the anonymous pipe");
        if (n == 0)
            return 0; /* an empty write: the end of the sender's data */
        if (!WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), chunk, n, &written, NULL) || written != n)
            return fail("write stdout");
    }
}

int main(int argc, char** argv) {
    char path[300];
    HANDLE pipe;
    int result;
    if (argc < 3 || strlen(argv[2]) > 200)
        return 2;
    snprintf(path, sizeof path, "\\\\.\\pipe\\%s", argv[2]);
    if ((argc == 3 && strcmp(argv[1], "anon-echo") == 0) ||
        (argc == 4 && strcmp(argv[1], "anon-exit") == 0))
        return anon_child(argv[1], (HANDLE)(ULONG_PTR)strtoull(argv[2], NULL, 10),
                          argc == 4 ? atoi(argv[3]) : 0);
    if (argc == 4 && (strcmp(argv[1], "copy-server") == 0 || strcmp(argv[1], "copy-client") == 0))
        return copy_peer(argv[1][5] == 's', path, strtoull(argv[3], NULL, 10));
    if (argc != 3)
        return 2;
    if (strcmp(argv[1], "echo") == 0)
        return echo_stdin(atoi(argv[2]));
    if (strcmp(argv[1], "emit") == 0)
        return emit_pattern(strtoull(argv[2], NULL, 10));
    if (strcmp(argv[1], "stubborn") == 0) {
        DWORD wrote = 0;
        if (!WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), "ready\n", 6, &wrote, NULL))
            return fail("write to stdout");
        Sleep(INFINITE);
    }
    if (strcmp(argv[1], "server") == 0 || strcmp(argv[1], "server2") == 0 ||
        strcmp(argv[1], "chat-server") == 0) {
        int clients = strcmp(argv[1], "server2") == 0 ? 2 : 1;
        pipe = CreateNamedPipeA(path, PIPE_ACCESS_DUPLEX,
                                PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT, 1, 65536,
                                65536, 0, NULL);
        if (pipe == INVALID_HANDLE_VALUE)
            return fail("CreateNamedPipe");
        result = 0;
        while (clients-- > 0 && result == 0) {
            if (!ConnectNamedPipe(pipe, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
                return fail("ConnectNamedPipe");
            result = argv[1][0] == 'c' ? chat_server(pipe) : exchange(pipe, 1);
            DisconnectNamedPipe(pipe);
        }
    } else {
        DWORD mode = PIPE_READMODE_MESSAGE;
        pipe = open_client(path, 0);
        if (pipe == INVALID_HANDLE_VALUE)
            return fail("CreateFile");
        if (!SetNamedPipeHandleState(pipe, &mode, NULL, NULL))
            return fail("SetNamedPipeHandleState");
        result = exchange(pipe, 0);
    }
    CloseHandle(pipe);
    return result;
}
