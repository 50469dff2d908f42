#!/usr/bin/env bash
# Builds npipe with warnings as errors and runs every test (ctest), then short fuzz runs, the
# async tests under ThreadSanitizer, and every test under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
# Every C# interop case runs on Mono and on .NET 10. Without `dotnet` the .NET 10 cases report
# SKIPPED with the reason; CI (CI=true) has the SDK and fails instead.
if command -v dotnet >/dev/null; then
  echo "npipe: .NET interop tests on Mono and .NET $(dotnet --version)"
elif [[ ${CI:-} == true ]]; then
  echo "npipe: error: dotnet (.NET 10 SDK) missing: CI must run the .NET 10 interop tests" >&2
  exit 1
else
  echo "npipe: WARNING: dotnet (.NET 10 SDK) missing: the .NET 10 interop tests will be SKIPPED" >&2
fi
cmake -S . -B build-test -G Ninja -DNPIPE_WERROR=ON -DNPIPE_BUILD_TESTS=ON >/dev/null
cmake --build build-test
(cd build-test && ctest --output-on-failure -j"$(nproc)" --timeout 600)

# The minimal configuration: no npipe::asio, no npipe::remote. The library, the CLI (which names
# what it lacks in --help) and the tests that apply must build and pass without them.
cmake -S . -B build-min -G Ninja -DNPIPE_WERROR=ON -DNPIPE_BUILD_ASIO=OFF -DNPIPE_BUILD_REMOTE=OFF >/dev/null
cmake --build build-min
build-min/tools/npipe/npipe --help | grep -q "This build lacks" ||
  { echo "npipe --help does not name the features this build lacks"; exit 1; }
(cd build-min && ctest --output-on-failure -j"$(nproc)" --timeout 600 -R '^(Cli|AnonCli|ChatCli|ExitCodes|TransferCli|Relay|named_pipe|pipe_path|MessageMode|AnonymousPipe|Process)\.')

# The decoders read bytes from other processes: a short libFuzzer run of each (clang).
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DNPIPE_BUILD_FUZZ=ON \
  -DNPIPE_BUILD_TESTS=OFF -DNPIPE_BUILD_TOOLS=OFF -DNPIPE_BUILD_EXAMPLES=OFF -DNPIPE_WERROR=ON >/dev/null
cmake --build build-fuzz
ctest --test-dir build-fuzz --output-on-failure

# The async layer (the JSON-RPC connection on it included) and the shared-memory rings under ThreadSanitizer (GCC 12 needs -Wno-tsan for Asio's atomic_thread_fence).
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -Wno-tsan" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
  -DNPIPE_WERROR=ON -DNPIPE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-tsan --target asio_test asio_interop_test asio_echo_test asio_remote_test \
  shared_memory_test shm_ring_test rpc_async_test
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan -R '^Asio|/AsioDotnet\.|^AsyncRpc\.|^shared_memory\.|^ShmRing' \
  --output-on-failure -j"$(nproc)" --timeout 600

# Every test under AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer (gcc): any
# report fails its test. The install test is left out: it builds an unsanitized consumer
# against the sanitized library, which cannot link.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNPIPE_WERROR=ON \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build build-asan
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 600 -E '^install\.'

# Windows: the MinGW-w64 cross-build, and its tests under Wine in a throwaway prefix (a few
# minutes; what Wine lacks is reported SKIPPED with the reason).
scripts/test-windows.sh
