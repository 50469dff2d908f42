#!/usr/bin/env bash
# Installs npipe from the build tree into a temporary prefix and builds a consumer against it,
# once through find_package(npipe) and once through pkg-config.
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig" \
  cmake -S "$source_dir/consumer" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >"$work/build.log" || { cat "$work/build.log"; exit 1; }
for exe in with_cmake with_pkgconfig; do
  out=$(TMPDIR=/run "$work/build/$exe")
  [[ "$out" == /run/CoreFxPipe_consumer ]] || { echo "$exe printed '$out'"; exit 1; }
done
if [[ -x "$work/build/with_remote" ]]; then
  out=$("$work/build/with_remote")
  [[ "$out" == $'//gateway.invalid:4477/pipe/consumer\nrefused' ]] || { echo "with_remote printed '$out'"; exit 1; }
  echo "installed npipe::remote linked and ran"
elif [[ -f "$build_dir/src/remote/libnpipe_remote.a" || -f "$build_dir/src/remote/libnpipe_remote.so" ]]; then
  echo "npipe::remote was built but the installed package does not provide it"; exit 1
fi
echo "installed npipe found by find_package and pkg-config"
