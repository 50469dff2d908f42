#!/usr/bin/env bash
# Installs npipe from the build tree into a temporary prefix and builds a consumer against it,
# once through find_package(npipe) and once through pkg-config.
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
# The README's C++ snippets under "The C++ API", each a whole program as a reader pastes it.
mkdir -p "$work/snippets"
awk -v dir="$work/snippets" '
  /^## / { api = ($0 == "## The C++ API") }
  api && /^```cpp$/ { n++; file = dir "/snippet" n ".cpp"; inside = 1; next }
  inside && /^```$/ { inside = 0; close(file); next }
  inside { print > file }
' "$source_dir/../../README.md"
ls "$work/snippets"/*.cpp >/dev/null || { echo "no C++ snippet found in README.md"; exit 1; }
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig" \
  cmake -S "$source_dir/consumer" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DREADME_SNIPPETS_DIR="$work/snippets" >/dev/null
cmake --build "$work/build" >"$work/build.log" || { cat "$work/build.log"; exit 1; }
# A consumer of the core library alone finds the package without OpenSSL's development files.
cmake -S "$source_dir/consumer" -B "$work/build-nossl" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON -DNPIPE_CONSUMER_NO_REMOTE=ON >"$work/nossl.log" 2>&1 ||
  { cat "$work/nossl.log"; echo "find_package(npipe) needs OpenSSL even for npipe::npipe"; exit 1; }
# The CLI's man page and shell completions are installed with it.
if [[ -x "$work/prefix/bin/npipe" ]]; then
  for f in share/bash-completion/completions/npipe share/zsh/vendor-completions/_npipe; do
    [[ -f "$work/prefix/$f" ]] || { echo "not installed: $f"; exit 1; }
  done
  if command -v help2man >/dev/null; then
    [[ -s "$work/prefix/share/man/man1/npipe.1" ]] || { echo "no man page installed"; exit 1; }
    grep -q "Exit status" "$work/prefix/share/man/man1/npipe.1" || { echo "man page lacks the help"; exit 1; }
  fi
fi
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
