/* A plain Win32 peer that knows nothing of npipe: it proves npipe's pipes are ordinary Windows
 * named pipes, as a .NET or C program on Windows sees them.
 *   win32_peer server NAME   creates \\.\pipe\NAME (message mode), waits for one client, reads
 *                            the message "ping", answers with the message "pong"
 *   win32_peer server2 NAME  the same with a single instance, for two clients in turn (the second
 *                            finds the pipe busy until the first is done)
 *   win32_peer client NAME   opens \\.\pipe\NAME (waiting up to 20 s), switches to message
 *                            read mode, sends "ping", expects "pong"
 * Exit status 0 on success; anything else names the step that failed. */
#include <stdio.h>
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

int main(int argc, char** argv) {
    char path[300];
    HANDLE pipe;
    int result;
    if (argc != 3 || strlen(argv[2]) > 200)
        return 2;
    snprintf(path, sizeof path, "\\\\.\\pipe\\%s", argv[2]);
    if (strcmp(argv[1], "server") == 0 || strcmp(argv[1], "server2") == 0) {
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
            result = exchange(pipe, 1);
            DisconnectNamedPipe(pipe);
        }
    } else {
        DWORD mode = PIPE_READMODE_MESSAGE;
        ULONGLONG until = GetTickCount64() + 20000;
        for (;;) {
            pipe = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
            if (pipe != INVALID_HANDLE_VALUE)
                break;
            if (GetTickCount64() > until)
                return fail("CreateFile");
            if (GetLastError() == ERROR_PIPE_BUSY)
                WaitNamedPipeA(path, 1000);
            else
                Sleep(20); /* no server yet: what a plain Win32 client does */
        }
        if (!SetNamedPipeHandleState(pipe, &mode, NULL, NULL))
            return fail("SetNamedPipeHandleState");
        result = exchange(pipe, 0);
    }
    CloseHandle(pipe);
    return result;
}
