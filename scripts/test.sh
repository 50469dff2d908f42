#!/usr/bin/env bash
# Builds npipe with warnings as errors and runs every test (ctest), then a short fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
cmake -S . -B build-test -G Ninja -DNPIPE_WERROR=ON -DNPIPE_BUILD_TESTS=ON >/dev/null
cmake --build build-test
(cd build-test && ctest --output-on-failure -j"$(nproc)" --timeout 600)

# The decoders read bytes from other processes: a short libFuzzer run of each (clang).
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DNPIPE_BUILD_FUZZ=ON \
  -DNPIPE_BUILD_TESTS=OFF -DNPIPE_BUILD_TOOLS=OFF -DNPIPE_BUILD_EXAMPLES=OFF -DNPIPE_WERROR=ON >/dev/null
cmake --build build-fuzz
ctest --test-dir build-fuzz --output-on-failure
