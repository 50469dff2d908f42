#!/usr/bin/env bash
# Builds npipe and runs the seed exchange: a server sends 1, a client answers 2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
cmake -S . -B build -G Ninja -DNPIPE_BUILD_TESTS=OFF >/dev/null
cmake --build build
npipe=build/tools/npipe/npipe
# The client waits for the server to appear, so the order of start-up does not matter.
"$npipe" demo server | sed 's/^/server got: /' &
"$npipe" demo client | sed 's/^/client got: /'
wait
