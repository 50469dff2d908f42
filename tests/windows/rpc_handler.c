/* The command that `npipe.exe rpc serve NAME -- rpc_handler.exe NOTE_FILE` runs per request
 * (tests/windows/rpc_test.cpp), the method appended as its last argument and the params on stdin:
 *   echo   copies stdin to stdout (the params back as the result)
 *   fail   writes "it failed" to stderr and exits 3 (an error response)
 *   note   copies stdin to NOTE_FILE, which appears whole (written beside it, then renamed)
 *   hang   never answers (until the server kills it)
 *   other  answers the method's name as a JSON string
 * Plain Win32 I/O on the standard handles: no C runtime text mode between the pipes and us. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

static int copy(HANDLE from, HANDLE to) {
    char buffer[4096];
    DWORD n = 0, written = 0;
    while (ReadFile(from, buffer, sizeof buffer, &n, NULL) && n > 0)
        if (!WriteFile(to, buffer, n, &written, NULL) || written != n)
            return 1;
    return 0;
}

int main(int argc, char** argv) {
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE), out = GetStdHandle(STD_OUTPUT_HANDLE);
    DWORD written = 0;
    if (argc != 3) {
        fputs("usage: rpc_handler NOTE_FILE METHOD\n", stderr);
        return 2;
    }
    const char* method = argv[2];
    if (strcmp(method, "echo") == 0)
        return copy(in, out);
    if (strcmp(method, "fail") == 0) {
        fputs("it failed\n", stderr);
        return 3;
    }
    if (strcmp(method, "note") == 0) {
        char partial[MAX_PATH + 8];
        HANDLE file;
        int failed;
        snprintf(partial, sizeof partial, "%s.tmp", argv[1]);
        file = CreateFileA(partial, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
        if (file == INVALID_HANDLE_VALUE)
            return 1;
        failed = copy(in, file);
        CloseHandle(file);
        return failed || !MoveFileExA(partial, argv[1], MOVEFILE_REPLACE_EXISTING);
    }
    if (strcmp(method, "hang") == 0) {
        Sleep(INFINITE);
        return 1;
    }
    {
        char answer[256];
        int n = snprintf(answer, sizeof answer, "\"%s\"", method);
        return n < 0 || !WriteFile(out, answer, (DWORD)n, &written, NULL);
    }
}
