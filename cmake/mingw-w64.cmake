# Cross-compiling npipe for 64-bit Windows with Debian's MinGW-w64 (g++-mingw-w64-x86-64-posix).
# The posix-threads variant: std::thread and std::mutex need winpthreads, which the win32 variant
# of GCC 12 lacks. Used by scripts/build-windows.sh; the result runs on Windows or under Wine.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
# Programs come from the build machine; libraries and headers only from the MinGW sysroot, so a
# Linux library (OpenSSL, GoogleTest) is never picked up by mistake.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Static libgcc, libstdc++ and winpthread: each .exe runs without MinGW's DLLs beside it (under
# Wine, nobody has to put them on its PATH).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# Windows 10's API (CancelIoEx, GetNamedPipeClientProcessId, STARTUPINFOEX's attribute lists).
add_compile_definitions(_WIN32_WINNT=0x0A00 WINVER=0x0A00 UNICODE _UNICODE WIN32_LEAN_AND_MEAN
                        NOMINMAX)
# Run the test programs under Wine when CMake needs to (gtest_discover_tests is not used on
# Windows builds: scripts/test.sh runs the programs itself).
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/lib/wine/wine64)
