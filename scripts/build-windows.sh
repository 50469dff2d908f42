#!/usr/bin/env bash
# Cross-builds npipe for 64-bit Windows with MinGW-w64 into build-windows/: the library,
# npipe::asio, npipe::rpc (and npipe::rpc_asio where Asio has coroutines), npipe.exe, and the
# Windows test programs (GoogleTest built for Windows from Debian's googletest sources). The
# header-only libraries (Asio, nlohmann-json, CLI11) are Debian's, each seen through a folder of
# its own. npipe::remote stays off: it needs OpenSSL for MinGW, which Debian does not ship.
# Usage: build-windows.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-windows -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNPIPE_WERROR=ON "${launcher[@]}" \
  -DNPIPE_BUILD_REMOTE=OFF -DNPIPE_BUILD_ASIO=ON -DNPIPE_BUILD_RPC=ON -DNPIPE_BUILD_TOOLS=ON \
  -DNPIPE_BUILD_EXAMPLES=OFF -DNPIPE_BUILD_TESTS=ON "$@" >/dev/null
cmake --build build-windows -j"${NPIPE_JOBS:-2}"
