#!/usr/bin/env bash
# Installs the Debian packages npipe needs that are missing. Usage: install-deps.sh [build|test]
#   build: compiler, CMake, Ninja, CLI11 (the CLI), Asio (npipe::asio), OpenSSL (remote pipes),
#          help2man (the CLI's man page, generated from its --help), nlohmann-json (npipe::rpc)
#   test:  plus GoogleTest, Mono (the .NET interop tests), clang (the fuzz run), openssl and
#          iproute2 (certificates and network namespaces for the remote-pipe tests), MinGW-w64,
#          GoogleTest's sources and Wine (the Windows build and its tests under Wine). The .NET 10
#          SDK is no Debian package: the machine brings `dotnet` (scripts/test.sh says if not).
set -euo pipefail
want=(g++ cmake ninja-build libcli11-dev pkg-config libasio-dev libssl-dev help2man nlohmann-json3-dev)
if [[ "${1:-build}" == test ]]; then
  want+=(libgtest-dev libgmock-dev mono-mcs mono-runtime libmono-system-core4.0-cil clang libclang-rt-14-dev
        openssl iproute2 procps strace g++-mingw-w64-x86-64-posix googletest wine64)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "npipe: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
