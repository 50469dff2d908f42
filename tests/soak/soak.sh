#!/usr/bin/env bash
# Soak test (issue 6), not part of the quick test run: 64 clients exchange checksummed messages
# with a message-mode echo server (1,000,000 round trips by default) while hostile clients send
# garbage, truncated frames and oversize lengths, stall, die mid-message, or connect as another
# user (refused). Prints the figures; fails on any lost or corrupted message, or on growth in the
# server's RSS or descriptor count between the warmed-up start and the end.
#
#   tests/soak/soak.sh [BUILD_DIR]        (BUILD_DIR holds src/libnpipe.a; default build-soak)
# Environment: SOAK_CLIENTS (64), SOAK_ROUNDS per client (15625), SOAK_INSTANCES (96),
#              SOAK_RSS_SLACK_KB (2048: allocator noise allowed between start and end).
# Runs as root to include refused clients (another uid); as a user those attempts fail to
# start and are not counted.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-soak}
clients=${SOAK_CLIENTS:-64}
rounds=${SOAK_ROUNDS:-15625}
instances=${SOAK_INSTANCES:-96}
slack=${SOAK_RSS_SLACK_KB:-2048}

# Always (re)build: an incremental build is quick, and a stale library would soak old code.
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNPIPE_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target npipe >/dev/null
work=$(mktemp -d)
trap 'kill "${server_pid:-}" "${hostile_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
driver=$work/soak_driver
c++ -std=c++20 -O2 -Wall -Wextra -Iinclude tests/soak/soak_driver.cpp "$build/src/libnpipe.a" \
    -lpthread -o "$driver"

name=npipe-soak-$$
"$driver" server "$name" "$instances" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do grep -q ready "$work/server.out" && break; sleep 0.1; done
grep -q ready "$work/server.out" || { echo "soak: server did not start"; cat "$work/server.err"; exit 1; }

rss() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
fds() { ls "/proc/$server_pid/fd" | wc -l; }

# Warm up (every instance's buffers allocated, threads started), then take the start figures.
"$driver" clients "$name" "$clients" 200 >/dev/null
rss_start=$(rss); fds_start=$(fds)
start=$(date +%s)

"$driver" hostile "$name" "$work/stop" >"$work/hostile.out" &
hostile_pid=$!
status=0
"$driver" clients "$name" "$clients" "$rounds" >"$work/clients.out" || status=1
touch "$work/stop"
wait "$hostile_pid" || status=1
hostile_pid=
# A last pass after the attacks: the server still answers everyone.
"$driver" clients "$name" "$clients" 100 >"$work/after.out" || status=1
rss_end=$(rss); fds_end=$(fds)
kill -TERM "$server_pid"; wait "$server_pid" || status=1; server_pid=
end=$(date +%s)

read -r _ verified _ lost _ corrupted <"$work/clients.out"
read -r _ attacks _ killed _ refused_attempts <"$work/hostile.out"
read -r _ refused _ dropped _ echoed < <(tail -1 "$work/server.out")
echo "soak: $clients clients x $rounds round trips in $((end - start)) s"
echo "soak: messages verified $verified, lost $lost, corrupted $corrupted"
echo "soak: after the attacks: $(cat "$work/after.out")"
echo "soak: hostile clients $attacks (killed $killed, refused by uid $refused_attempts);" \
     "server refused $refused, dropped $dropped with a reason, echoed $echoed"
echo "soak: server RSS ${rss_start} kB -> ${rss_end} kB, descriptors ${fds_start} -> ${fds_end}"
[ "$lost" = 0 ] && [ "$corrupted" = 0 ] || { echo "soak: FAIL: lost or corrupted messages"; status=1; }
[ "$verified" = $((clients * rounds)) ] || { echo "soak: FAIL: not every round trip verified"; status=1; }
[ "$fds_end" -le "$fds_start" ] || { echo "soak: FAIL: descriptors grew"; status=1; }
[ "$rss_end" -le $((rss_start + slack)) ] || { echo "soak: FAIL: RSS grew by more than $slack kB"; status=1; }
[ -s "$work/server.err" ] && { echo "soak: server stderr:"; cat "$work/server.err"; }
[ "$status" = 0 ] && echo "soak: PASS" || echo "soak: FAIL"
exit "$status"
