#!/usr/bin/env bash
# Fixture setup of tests/rpc (run once per ctest run): fetches and builds one kind of peer into
# the build tree, never into shared state (~/.nuget, global npm).
#   setup_peer.sh dotnet DOTNET SOURCE_DIR OUT_DIR   StreamJsonRpc peer (restore + build)
#   setup_peer.sh node   NPM    VERSION    OUT_DIR   vscode-jsonrpc@VERSION into OUT_DIR/node_modules
# On success OUT_DIR/ready exists. When the registry cannot be reached the peer tests need this
# to fail in CI (CI=true); elsewhere it exits 77 (ctest: skipped) and the peer tests skip,
# naming OUT_DIR/skipped's reason.
set -uo pipefail
kind=$1 tool=$2 arg=$3 out=$4
mkdir -p "$out"
rm -f "$out/ready" "$out/skipped"
log="$out/setup.log"
case $kind in
  dotnet)
    DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
    DOTNET_CLI_WORKLOAD_UPDATE_NOTIFY_DISABLE=1 NUGET_PACKAGES="$out/packages" \
      "$tool" build "$arg/RpcPeers.csproj" -c Release --artifacts-path "$out/artifacts" \
      --packages "$out/packages" --disable-build-servers -nologo -v quiet -maxcpucount:2 >"$log" 2>&1
    ;;
  node)
    "$tool" install --no-save --no-package-lock --ignore-scripts --prefix "$out" \
      "vscode-jsonrpc@$arg" >"$log" 2>&1
    ;;
  *) echo "setup_peer.sh: unknown peer kind '$kind'" >&2; exit 2 ;;
esac
status=$?
if ((status == 0)); then
  touch "$out/ready"
  exit 0
fi
cat "$log" >&2
if [[ "${CI:-}" == true ]]; then
  echo "setup_peer.sh: building the $kind peer failed (see above); CI needs it" >&2
  exit 1
fi
echo "the $kind peer could not be fetched or built (see $log)" >"$out/skipped"
echo "setup_peer.sh: SKIPPED: $(cat "$out/skipped")" >&2
exit 77
