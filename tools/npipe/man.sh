#!/usr/bin/env bash
# Writes npipe.1 from the CLI's own --help texts (help2man), the subcommands' included.
# Usage: man.sh NPIPE OUTPUT
set -euo pipefail
npipe=$1 out=$2
include=$(mktemp)
trap 'rm -f "$include"' EXIT
{
  echo "[SUBCOMMANDS]"
  for sub in demo serve connect list anon chat gateway bench; do
    help=$("$npipe" "$sub" --help 2>/dev/null) || continue
    echo ".SS npipe $sub"
    echo ".nf"
    printf '%s\n' "$help" | sed 's/\\/\\e/g; s/^\./\\\&./'
    echo ".fi"
  done
} >"$include"
help2man --no-info --no-discard-stderr --include "$include" \
  --name "named and anonymous pipes, wire-compatible with .NET's System.IO.Pipes" \
  --output "$out" "$npipe"
