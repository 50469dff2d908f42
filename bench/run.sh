#!/usr/bin/env bash
# bench/run.sh: measure npipe beside the systems its users would pick instead, in one run, and
# write docs/benchmarks.md and docs/benchmarks.png.
#
# It installs the baselines' Debian packages when they are missing (apt-get, as root or through
# sudo), builds everything in Release, then runs every system on the same work: two processes
# pinned to different cores (when there are two) and both pinned to one core, over a sweep of
# sizes. Every figure comes from the same harness (bench/common, or its C# mirror for Mono and
# .NET 10).
#
#   bench/run.sh                 the full run (about a quarter of an hour on 2 cores)
#   NPIPE_BENCH_QUICK=1 bench/run.sh   a fast smoke run with small counts (figures are rough)
#
# Environment: NPIPE_BENCH_ONLY (a bash regex: measure only the systems whose name matches, e.g.
# 'iceoryx|boost-mq' or 'rpc'; the memory test and the micro-benchmarks are then skipped too),
# NPIPE_BENCH_REPS (repetitions of every measurement, default 3), NPIPE_BENCH_SPIN_US
# (the spin window of the npipe-spin rows, default 50),
# NPIPE_BENCH_BUILD (build dir, default build-bench), NPIPE_BENCH_OUT (markdown
# path, default docs/benchmarks.md; the PNG goes beside it), NPIPE_BENCH_NO_INSTALL=1 (never
# call apt-get), NPIPE_BENCH_RT=1 (run every process SCHED_FIFO, priority 10, through chrt: on a
# machine shared with other work this keeps that work from preempting the measurement; the
# report says so).
#
# iceoryx needs its RouDi daemon: the script starts iox-roudi (bench/iceoryx_roudi.toml) in its
# own process group and stops it at exit. The JSON-RPC rows fetch StreamJsonRpc (NuGet) and
# vscode-jsonrpc (npm) into the build tree. A peer that cannot be built or started (no iceoryx,
# RouDi not ready, a registry out of reach) fails the run: the report is written, listing it,
# and the script exits with status 1.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${NPIPE_BENCH_BUILD:-$root/build-bench}
out_md=${NPIPE_BENCH_OUT:-$root/docs/benchmarks.md}
quick=${NPIPE_BENCH_QUICK:-0}
rt=${NPIPE_BENCH_RT:-0}
only=${NPIPE_BENCH_ONLY:-}
# Whether system NAME is measured in this run (NPIPE_BENCH_ONLY).
selected() { [[ -z $only || $1 =~ $only ]]; }
# The peers this run needed and could not build or start: reported, and the run fails.
failed_peers=()
peer_failed() {
    log "error: $*"
    failed_peers+=("$*")
}
log() { printf '[bench] %s\n' "$*" >&2; }
# Every socket of the run goes into a directory of its own ($TMPDIR, which every system's
# harness and the CLI map names under), removed at exit however the run ends: a measurement
# that fails or is killed leaves its socket there, never in /tmp.
# A measurement runs in a process group of its own (timeout makes one), which the exit trap ends
# with every process in it before it removes the directory: a killed run leaves no process
# making sockets there either. At the end, the run checks that the temp directory holds no pipe
# socket it did not hold before (scripts/check-tmp-leaks.sh, as the test suite does).
outer_tmp=${TMPDIR:-/tmp}
run_tmp=$(mktemp -d "$outer_tmp/npipe-bench-run-XXXXXX")
measuring=
rpc_server=
roudi=
roudi_lost=0
# stop_group PID: ends the process group PID leads, or else the process PID (TERM, then KILL
# after 10 s), and reaps it.
stop_group() {
    local pid=$1 i
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    [[ -z $measuring ]] || stop_group "$measuring"
    [[ -z $rpc_server ]] || stop_group "$rpc_server"
    # RouDi removes its shared memory and its sockets in /tmp when it is stopped with TERM.
    [[ -z $roudi ]] || stop_group "$roudi"
    rm -rf "$run_tmp"
}
trap cleanup EXIT
"$root/scripts/check-tmp-leaks.sh" record "$run_tmp/tmp-before"
export TMPDIR=$run_tmp

# --- 1. packages ---
# Node.js with npm and the .NET SDK (the JSON-RPC rows' peers) are no packages of this list: the
# machine brings them, as for the test suite (a Debian nodejs conflicts with the npm of others).-------------------------------------------------------------------------
packages=(cmake ninja-build g++ pkg-config python3 libcli11-dev libbenchmark-dev libgtest-dev
          libzmq3-dev libnng-dev qtbase5-dev iceoryx libiceoryx-posh-dev libboost1.81-dev
          nlohmann-json3-dev mono-mcs mono-runtime libmono-system-core4.0-cil gnuplot-nox openssl libssl-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ ${NPIPE_BENCH_NO_INSTALL:-0} == 1 ]]; then
        log "missing packages (not installing): ${missing[*]}"
    else
        sudo=()
        [[ $(id -u) == 0 ]] || sudo=(sudo)
        log "installing ${missing[*]}"
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
    fi
fi

# --- 2. build ---------------------------------------------------------------------------------
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
log "building in $build"
# Tests are configured for one of them only: tests/perf_properties_test measures the memory
# targets (allocations per read and write, bytes per idle pipe), which no timing can.
tests=OFF
dpkg-query -W -f='${Status}' libgtest-dev 2>/dev/null | grep -q 'install ok installed' && tests=ON
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DNPIPE_BUILD_BENCH=ON -DNPIPE_BUILD_TOOLS=ON -DNPIPE_BUILD_TESTS=$tests \
      -DNPIPE_BUILD_EXAMPLES=OFF >/dev/null
# Only what the run uses: the CLI, the baselines that could be configured, the memory test.
available=$(cmake --build "$build" --target help 2>/dev/null || true)
targets=()
for t in npipe_cli bench_raw bench_zmq bench_nng bench_qt bench_iceoryx bench_boost_mq bench_rpc \
         bench_dotnet bench_dotnet10 micro_bench perf_properties_test; do
    grep -qE "(^|[ /.])$t(:| |$)" <<<"$available" && targets+=("$t")
done
cmake --build "$build" --parallel --target "${targets[@]}" >&2

npipe_cli=$build/tools/npipe/npipe
if ! "$npipe_cli" bench --help >/dev/null 2>&1; then
    log "error: $npipe_cli has no 'bench' command (tools/npipe/bench.cpp not linked into the CLI)"
    exit 1
fi

# The JSON-RPC rows' peers (issue 15): StreamJsonRpc from NuGet, built with the .NET SDK, and
# vscode-jsonrpc from npm (the version tests/rpc uses), both into the build tree, as tests/rpc
# fetches its peers. "NAME|command" per implementation; each takes `server PIPE` and
# `client PIPE CLIENTS CALLS` (bench/rpc/).
rpc_impls=()
rpc_wanted=0
for c in npipe streamjsonrpc vscode-jsonrpc; do
    for v in npipe streamjsonrpc vscode-jsonrpc; do selected "rpc:$c>$v" && rpc_wanted=1; done
done
if ((rpc_wanted)); then
    if [[ -x $build/bench/bench_rpc ]]; then
        rpc_impls+=("npipe|$build/bench/bench_rpc")
    else
        peer_failed "rpc: bench_rpc was not built (npipe::rpc needs nlohmann-json3-dev)"
    fi
    rpc_dotnet=$build/bench/rpc-dotnet
    log "building the StreamJsonRpc benchmark end (NuGet) in $rpc_dotnet"
    if command -v dotnet >/dev/null &&
        DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
            DOTNET_CLI_WORKLOAD_UPDATE_NOTIFY_DISABLE=1 NUGET_PACKAGES="$rpc_dotnet/packages" \
            dotnet build "$root/bench/rpc/dotnet/RpcBench.csproj" -c Release \
            --artifacts-path "$rpc_dotnet/artifacts" --packages "$rpc_dotnet/packages" \
            --disable-build-servers -nologo -v quiet -maxcpucount:2 >"$rpc_dotnet.log" 2>&1; then
        rpc_impls+=("streamjsonrpc|dotnet $rpc_dotnet/artifacts/bin/RpcBench/release/RpcBench.dll")
    else
        peer_failed "rpc: the StreamJsonRpc end could not be built (dotnet missing or NuGet out of reach; see $rpc_dotnet.log)"
    fi
    rpc_node=$build/bench/rpc-node
    log "installing vscode-jsonrpc (npm) in $rpc_node"
    if command -v node >/dev/null && command -v npm >/dev/null &&
        "$root/tests/rpc/setup_peer.sh" node npm 10.0.0 "$rpc_node" >/dev/null 2>&1; then
        rpc_impls+=("vscode-jsonrpc|env NODE_PATH=$rpc_node/node_modules node $root/bench/rpc/node/rpc_bench.js")
    else
        peer_failed "rpc: vscode-jsonrpc could not be installed (node/npm missing or npm out of reach; see $rpc_node/setup.log)"
    fi
fi

# --- 3. the systems ---------------------------------------------------------------------------
# name|command (the harness arguments follow). Baselines that were not built are skipped and
# listed as such in the report.
# Raw uds-stream runs right before npipe in every work item: this virtual machine's cross-CPU
# wake-up cost drifts between two levels over minutes, and the targets against raw syscalls are
# judged on the ratio of these two neighbouring measurements (report.py, "paired").
systems=("uds-stream|$build/bench/bench_raw uds-stream" "npipe|$npipe_cli bench")
if "$npipe_cli" bench latency --message --count 10 >/dev/null 2>&1; then
    systems+=("npipe-message|$npipe_cli bench --message")
    # The opt-in write coalescing (pipe_options::coalesce_messages): its own row, since the
    # default pipe does not coalesce (see report.py for why).
    systems+=("npipe-coalesce|$npipe_cli bench --message --coalesce")
fi
# The opt-in low-latency mode (pipe_options::spin_before_block): reads poll for up to this long
# before they sleep. Long enough to cover a round trip's other half between cores.
spin_us=${NPIPE_BENCH_SPIN_US:-50}
systems+=("npipe-spin|$npipe_cli bench --spin-us $spin_us")
if "$npipe_cli" bench latency --message --count 10 >/dev/null 2>&1; then
    systems+=("npipe-message-spin|$npipe_cli bench --message --spin-us $spin_us")
fi
# The opt-in shared-memory transport (pipe_options::shared_memory, both ends npipe): plain, with
# the spin window, and in message mode.
systems+=("npipe-shm|$npipe_cli bench --shared-memory"
          "npipe-shm-spin|$npipe_cli bench --shared-memory --spin-us $spin_us")
if "$npipe_cli" bench latency --message --count 10 >/dev/null 2>&1; then
    systems+=("npipe-message-shm|$npipe_cli bench --message --shared-memory")
fi
systems+=("uds-seqpacket|$build/bench/bench_raw uds-seqpacket"
          "pipe|$build/bench/bench_raw pipe"
          "tcp|$build/bench/bench_raw tcp")
not_built=()
# Remote pipes (issue 7): npipe through its TLS gateway on 127.0.0.1, the gateway on a thread of
# the server process, with a throwaway CA and a gateway certificate for 127.0.0.1.
certs=$build/bench-certs
make_certs() {
    mkdir -p "$certs" && cd "$certs" || return 1
    local key=(openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1)
    "${key[@]}" -out ca.key 2>/dev/null &&
        openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj /CN=npipe-bench-ca 2>/dev/null &&
        "${key[@]}" -out gateway.key 2>/dev/null &&
        openssl req -new -key gateway.key -out gateway.csr -subj /CN=127.0.0.1 2>/dev/null &&
        printf 'subjectAltName=IP:127.0.0.1\n' >gateway.ext &&
        openssl x509 -req -in gateway.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile gateway.ext -out gateway.pem 2>/dev/null
}
if command -v openssl >/dev/null && (make_certs) &&
    "$npipe_cli" bench latency --remote "$certs" --count 10 >/dev/null 2>&1; then
    systems+=("npipe-remote|$npipe_cli bench --remote $certs")
else
    not_built+=(npipe-remote)
fi
[[ -x $build/bench/bench_zmq ]] && systems+=("zmq|$build/bench/bench_zmq") || not_built+=(zmq)
[[ -x $build/bench/bench_nng ]] && systems+=("nng|$build/bench/bench_nng") || not_built+=(nng)
[[ -x $build/bench/bench_qt ]] && systems+=("qt|$build/bench/bench_qt") || not_built+=(qt)
# iceoryx through RouDi, blocking (WaitSet) and polling; Boost.Interprocess message_queue.
if selected iceoryx || selected iceoryx-spin; then
    if [[ ! -x $build/bench/bench_iceoryx ]]; then
        peer_failed "iceoryx: bench_iceoryx was not built (libiceoryx-posh-dev missing?)"
    elif ! command -v iox-roudi >/dev/null; then
        peer_failed "iceoryx: iox-roudi not found (Debian package iceoryx)"
    elif [[ -e /tmp/roudi.lock ]] && ! flock -n /tmp/roudi.lock true; then
        peer_failed "iceoryx: another iox-roudi runs on this machine (/tmp/roudi.lock is held)"
    else
        # In the script's process group (a signal to the run reaches it too), stopped by the
        # exit trap; its log in the run's directory. iceoryx's sockets and lock files are in
        # /tmp whatever TMPDIR says (a build constant of iceoryx); RouDi removes them on TERM.
        iox-roudi -c "$root/bench/iceoryx_roudi.toml" -l warning >"$run_tmp/roudi.log" 2>&1 &
        roudi=$!
        for ((i = 0; i < 200; i++)); do
            grep -q "RouDi is ready for clients" "$run_tmp/roudi.log" && break
            kill -0 "$roudi" 2>/dev/null || break
            sleep 0.1
        done
        if grep -q "RouDi is ready for clients" "$run_tmp/roudi.log"; then
            systems+=("iceoryx|$build/bench/bench_iceoryx" "iceoryx-spin|$build/bench/bench_iceoryx --spin")
        else
            peer_failed "iceoryx: iox-roudi did not become ready within 20 s: $(tail -n 3 "$run_tmp/roudi.log" | tr '\n' ' ')"
        fi
    fi
fi
if selected boost-mq; then
    if [[ -x $build/bench/bench_boost_mq ]]; then
        systems+=("boost-mq|$build/bench/bench_boost_mq")
    else
        peer_failed "boost-mq: bench_boost_mq was not built (libboost1.81-dev missing?)"
    fi
fi
if [[ -f $build/bench/PipeBench.exe ]] && command -v mono >/dev/null; then
    systems+=("mono|mono $build/bench/PipeBench.exe")
else
    not_built+=(mono)
fi
pipebench_dll=$build/bench/dotnet10/bin/PipeBench/release/PipeBench.dll
if [[ -f $pipebench_dll ]] && command -v dotnet >/dev/null; then
    systems+=("dotnet10|dotnet $pipebench_dll")
else
    not_built+=(dotnet10)
fi

# --- 4. the work ------------------------------------------------------------------------------
# Each measurement is repeated $reps times, spread over the run (systems interleaved), and the
# report takes the median of the repetitions: a burst of other activity on the machine then
# spoils one repetition, not a figure. Counts are per repetition: 4000 round trips (p99.9 from
# the 4 slowest), 256 MiB per throughput point and 5 timed rounds per rate; the whole run takes
# about a quarter of an hour on 2 cores, the JSON-RPC rows included. Quick mode: one repetition
# with a tenth of the counts.
reps=${NPIPE_BENCH_REPS:-3}
lat_count=4000
thr_bytes=$((256 << 20))
msg_count=200000
conn_count=1000
if [[ $quick == 1 ]]; then
    reps=1 lat_count=1000 thr_bytes=$((32 << 20)) msg_count=20000 conn_count=100
fi
lat_sizes=(1 64 1024 65536)
thr_sizes=(4096 65536 1048576)
big_buffers=$((8 << 20))

placements=()
if (($(nproc) >= 2)); then placements+=("cross|0|1"); fi
placements+=("same|0|0")

sched=()
scheduling="normal (SCHED_OTHER)"
if [[ $rt == 1 ]]; then
    sched=(chrt -f 10)
    scheduling="SCHED_FIFO priority 10 (NPIPE_BENCH_RT=1)"
fi

results=$build/bench-results.tsv
: >"$results"
start=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load_at_start%% *}" 'BEGIN { exit !(l > 1.0) }'; then
    log "warning: load average $load_at_start: other work on this machine will skew the figures"
fi

# record PLACEMENT SYSTEM TEST SIZE BUFFERS LINE: one line in $results.
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
}

# measure COMMAND ARGS...: runs one measurement (in a process group of its own, 180 s at most)
# and sets $line to its last output line, the JSON object, or to "error: ...".
measure() {
    local status=0 output=$run_tmp/measurement.out
    timeout 180 "${sched[@]}" "$@" >"$output" 2>&1 &
    measuring=$!
    wait "$measuring" || status=$?
    measuring=
    line=$(tail -n 1 "$output")
    if ((status != 0)) || [[ $line != '{'* ]]; then
        ((status == 124)) && line="timed out after 180 s"
        line="error: ${line//$'\t'/ }"
    fi
}

# run PLACEMENT SYSTEM COMMAND ARGS...: one measurement, one line in $results:
# placement, system, test, size, buffer size, then the JSON object or "error: ...".
run() {
    local placement=$1 system=$2 cmd=$3 test=$4 size=$5 buffers=$6
    shift 6
    if [[ $system == iceoryx* ]] && ! kill -0 "$roudi" 2>/dev/null; then
        # Without RouDi every iceoryx program would wait a minute for it before failing.
        ((roudi_lost++)) || peer_failed "iceoryx: iox-roudi stopped during the run (see the report)"
        record "$placement" "$system" "$test" "$size" "$buffers" \
            "error: iox-roudi is no longer running: $(tail -n 2 "$run_tmp/roudi.log" | tr '\n\t' '  ')"
        return
    fi
    # shellcheck disable=SC2086 # $cmd is a program and its fixed leading arguments
    measure $cmd "$test" --size "$size" "$@" --json
    [[ $line == error:* ]] && log "  $system $test $size ($placement): $line"
    record "$placement" "$system" "$test" "$size" "$buffers" "$line"
}

# The work items: test, size, kernel buffer size (0: default), count.
work=()
for size in "${lat_sizes[@]}"; do work+=("latency $size 0 $lat_count"); done
for size in "${thr_sizes[@]}"; do work+=("throughput $size 0 $((thr_bytes / size))"); done
work+=("messages 64 0 $msg_count" "connect 1 0 $conn_count")
work+=("throughput 1048576 $big_buffers $((thr_bytes / 1048576))")

# Whether SYSTEM takes part in work item TEST SIZE BUFFERS: the variants of npipe that exist to
# show one option run only where that option matters, so they cost the run little time.
takes_part() {
    local system=$1 test=$2 size=$3 buffers=$4
    if ((buffers)); then
        # Large kernel buffers (.NET's in/out buffer size options) where a system has them.
        case $system in npipe | uds-stream | mono | dotnet10) return 0 ;; *) return 1 ;; esac
    fi
    case $system in
        npipe-coalesce) [[ $test == messages || ($test == latency && $size -le 64) ||
                           ($test == throughput && $size -le 4096) ]] ;;
        npipe-spin | npipe-message-spin | npipe-shm-spin) [[ $test == latency && $size -le 64 ]] ;;
        npipe-message-shm) [[ $test == messages || ($test == latency && $size -le 64) ]] ;;
        npipe-remote | iceoryx | boost-mq) [[ $test != connect ]] ;;
        iceoryx-spin) [[ $test == latency && $size -le 64 ]] ;;
        *) return 0 ;;
    esac
}

# npipe and raw uds-stream measured together (`npipe bench --versus-raw`: one pair of processes,
# the client taking turns between a connection of each every round trip), for the byte-mode
# latency target, and the same in turns of 50 round trips, which shows how this machine's
# cross-CPU wake-up adapts to each system's work (report.py, "measured together"). Both after
# every work item, at 1 B and 64 B in turn, so that the many measurements spread over the whole
# run and meet every state the wake-up goes through.
versus_raw=0
if selected npipe-vs-raw && "$npipe_cli" bench latency --versus-raw --count 200 >/dev/null 2>&1; then
    versus_raw=1
fi
versus_sizes=(1 64)
versus_next=0

# Systems are interleaved within each work item, so other activity on the machine hits
# neighbouring systems alike instead of one system's whole sweep.
for pl in "${placements[@]}"; do
    IFS='|' read -r placement cpu_s cpu_c <<<"$pl"
    pin=(--cpu-server "$cpu_s" --cpu-client "$cpu_c")
    for ((rep = 1; rep <= reps; rep++)); do
        for item in "${work[@]}"; do
            read -r test size buffers count <<<"$item"
            label="$test $size"
            ((buffers)) && label+=" with $((buffers >> 20)) MiB buffers"
            log "$label ($placement, repetition $rep of $reps)"
            for entry in "${systems[@]}"; do
                IFS='|' read -r system cmd <<<"$entry"
                selected "$system" || continue
                takes_part "$system" "$test" "$size" "$buffers" || continue
                extra=()
                ((buffers)) && extra=(--buffer-size "$buffers")
                run "$placement" "$system" "$cmd" "$test" "$size" "$buffers" --count "$count" \
                    "${extra[@]}" "${pin[@]}"
            done
            if ((versus_raw)); then
                vs_size=${versus_sizes[versus_next++ % ${#versus_sizes[@]}]}
                run "$placement" npipe-vs-raw "$npipe_cli bench --versus-raw" latency "$vs_size" 0 \
                    --count "$lat_count" "${pin[@]}"
                run "$placement" npipe-vs-raw-50 "$npipe_cli bench --versus-raw --block 50" \
                    latency "$vs_size" 0 --count "$lat_count" "${pin[@]}"
            fi
        done
    done
done
# JSON-RPC (issue 15): calls per second and latency of `add` [1, 2] -> 3, header framing, over a
# .NET-compatible named pipe, one client and 16 concurrent clients (one connection each), every
# implementation as client against every implementation as server. Between cores only (server
# on CPU 0, clients on CPU 1; one core when there is one). One line per measurement in
# $results: placement, "rpc:CLIENT>SERVER", rpc, clients, 0, JSON.
rpc_calls=5000
((quick == 1)) && rpc_calls=500
rpc_placement=${placements[0]}
IFS='|' read -r rpc_pl rpc_cpu_s rpc_cpu_c <<<"$rpc_placement"
# Keeps .NET from creating its diagnostics sockets in the run's directory.
export DOTNET_EnableDiagnostics=0
for ((rep = 1; rep <= (${#rpc_impls[@]} ? reps : 0); rep++)); do
    for server_entry in "${rpc_impls[@]}"; do
        IFS='|' read -r server_name server_cmd <<<"$server_entry"
        clients_here=()
        for client_entry in "${rpc_impls[@]}"; do
            selected "rpc:${client_entry%%|*}>$server_name" && clients_here+=("$client_entry")
        done
        ((${#clients_here[@]})) || continue
        log "rpc: $server_name server ($rpc_pl, repetition $rep of $reps)"
        pipe=bench-rpc-$server_name-$rep
        server_out=$run_tmp/rpc-server.out
        # shellcheck disable=SC2086 # $server_cmd is a program and its fixed leading arguments
        timeout 1800 "${sched[@]}" taskset -c "$rpc_cpu_s" $server_cmd server "$pipe" >"$server_out" 2>&1 &
        rpc_server=$!
        for ((i = 0; i < 600; i++)); do
            grep -q '^listening' "$server_out" && break
            kill -0 "$rpc_server" 2>/dev/null || break
            sleep 0.1
        done
        server_error=
        grep -q '^listening' "$server_out" ||
            server_error="the $server_name server did not start: $(tail -n 2 "$server_out" | tr '\n\t' '  ')"
        for client_entry in "${clients_here[@]}"; do
            IFS='|' read -r client_name client_cmd <<<"$client_entry"
            for n in 1 16; do
                system="rpc:$client_name>$server_name"
                if [[ -n $server_error ]]; then
                    line="error: $server_error"
                else
                    # shellcheck disable=SC2086 # $client_cmd: a program and its leading arguments
                    measure taskset -c "$rpc_cpu_c" $client_cmd client "$pipe" "$n" "$rpc_calls"
                fi
                [[ $line == error:* ]] && log "  $system $n clients: $line"
                record "$rpc_pl" "$system" rpc "$n" 0 "$line"
            done
        done
        stop_group "$rpc_server"
        rpc_server=
    done
done

elapsed=$(($(date +%s) - start))
load_at_end=$(cut -d' ' -f1-3 /proc/loadavg)
log "measured in ${elapsed}s"

memory=$build/perf-properties.txt
if [[ -n $only ]]; then
    : >"$memory"
elif [[ -x $build/tests/perf_properties_test ]]; then
    log "memory: tests/perf_properties_test"
    "$build/tests/perf_properties_test" >"$memory" 2>&1 || log "perf_properties_test failed (see $memory)"
else
    : >"$memory"
fi

micro=$build/micro-bench.json
if [[ -n $only ]]; then
    : >"$micro"
elif [[ -x $build/bench/micro_bench ]]; then
    "$build/bench/micro_bench" --benchmark_format=json --benchmark_min_time=0.05 >"$micro" 2>/dev/null ||
        : >"$micro"
else
    : >"$micro"
fi

# --- 5. the report ----------------------------------------------------------------------------
mkdir -p "$(dirname "$out_md")"
python3 "$root/bench/report.py" --results "$results" --micro "$micro" --out "$out_md" \
    --elapsed "$elapsed" --scheduling "$scheduling" --load "$load_at_start / $load_at_end" --quick "$quick" \
    --not-built "${not_built[*]:-}" --counts "$lat_count,$thr_bytes,$msg_count,$conn_count" --reps "$reps" \
    --spin-us "$spin_us" --memory "$memory" --rpc-calls "$rpc_calls" --only "$only" \
    --failed "$(printf '%s\n' "${failed_peers[@]}")"
log "wrote $out_md and ${out_md%.md}.png"
TMPDIR=$outer_tmp "$root/scripts/check-tmp-leaks.sh" check "$run_tmp/tmp-before" >&2
if ((${#failed_peers[@]})); then
    log "FAILED: these peers could not be measured (the report lists them):"
    printf '[bench]   %s\n' "${failed_peers[@]}" >&2
    exit 1
fi
