#!/bin/sh
# check-tmp-leaks.sh record|check STATE_FILE: what the test suite and the benchmarks must leave
# in the temp directory ($TMPDIR, else /tmp): no pipe socket (CoreFxPipe_*) and no lock file
# beside one. `record` lists the ones there before a run; `check` fails, naming them, when the
# run left new ones (killed children included: everything that creates sockets runs under a
# private TMPDIR of its own, removed with its contents).
set -eu
action=${1:?usage: check-tmp-leaks.sh record|check STATE_FILE}
state=${2:?usage: check-tmp-leaks.sh record|check STATE_FILE}
dir=${TMPDIR:-/tmp}
list() { find "$dir" -mindepth 1 -maxdepth 1 -name 'CoreFxPipe_*' -print 2>/dev/null | LC_ALL=C sort; }
case $action in
record) list >"$state" ;;
check)
    [ -f "$state" ] || { echo "check-tmp-leaks: no record at $state (run 'record' first)" >&2; exit 2; }
    left=$(list | LC_ALL=C comm -13 "$state" -)
    if [ -n "$left" ]; then
        echo "check-tmp-leaks: the run left these in $dir:" >&2
        printf '%s\n' "$left" | sed 's/^/  /' >&2
        exit 1
    fi
    echo "check-tmp-leaks: nothing new in $dir"
    ;;
*) echo "check-tmp-leaks: unknown action '$action'" >&2; exit 2 ;;
esac
