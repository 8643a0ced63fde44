#!/usr/bin/env bash
# 64 concurrent cold invocations for one registry, against a slow backend: wall time, backend
# calls (must be 1: the others wait on the registry's lock and read its answer), and peak RSS
# of the invocations. The backend is a docker credential helper that sleeps 400 ms and counts
# its calls; for comparison the same 64 run with --no-cache (one backend call each).
#
#   bash bench/concurrency.sh [path/to/kubelet-keyring] [N]    (default: a release build, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-}
if [ -z "$BIN" ]; then
  cargo build -q --release
  BIN=target/release/kubelet-keyring
fi
BIN=$(realpath "$BIN")
N=${2:-64}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home/.docker" "$work/root" "$work/bin"
cat > "$work/bin/docker-credential-slow" <<SH
#!/bin/sh
echo call >> "$work/calls"
sleep 0.4
read -r server
printf '{"ServerURL":"%s","Username":"robot","Secret":"s3cret"}' "\$server"
SH
chmod +x "$work/bin/docker-credential-slow"
echo '{"credHelpers":{"slow.example.com":"slow"}}' > "$work/home/.docker/config.json"
req='{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"slow.example.com/app"}'
printf '%s\n' "$req" > "$work/request.json"

run() { # $1: extra flag; prints wall seconds
  rm -rf "$work/cache" "$work/calls" "$work/rss"
  local start end
  start=$(date +%s.%N)
  for i in $(seq "$N"); do
    ( PATH="$work/bin:$PATH" HOME="$work/home" /usr/bin/time -f %M -a -o "$work/rss" \
        "$BIN" --root-dir "$work/root" --cache-dir "$work/cache" $1 < "$work/request.json" > "$work/out.$i" ) &
  done
  wait
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')"
}
for mode in shared-cache no-cache; do
  flag=""; [ "$mode" = no-cache ] && flag=--no-cache
  wall=$(run "$flag")
  calls=$(wc -l < "$work/calls")
  rss=$(sort -n "$work/rss" | tail -1)
  ok=$(grep -l '"password":"s3cret"' "$work"/out.* | wc -l)
  echo "$mode: $N concurrent cold invocations: wall ${wall}s, backend calls $calls, peak RSS ${rss} KiB, answers with the credential $ok"
  rm -f "$work"/out.*
done
