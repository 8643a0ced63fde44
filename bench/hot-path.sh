#!/usr/bin/env bash
# Whole-process benchmarks of the hot paths, each against `cat` of the same response measured
# in the same run (the floor of an exec that prints bytes):
#   1. cache hit;
#   2. docker-config lookup (no cache) with N registries in config.json.
# Prints medians, the ratio to cat, and peak RSS. Needs hyperfine (Debian package).
#
#   bash bench/hot-path.sh [path/to/kubelet-keyring]     (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-}
if [ -z "$BIN" ]; then
  cargo build -q --release
  BIN=target/release/kubelet-keyring
fi
BIN=$(realpath "$BIN")
N=${N:-1000}
RUNS=${RUNS:-300}
command -v hyperfine >/dev/null || { echo "hyperfine missing: bash scripts/install-test-deps.sh" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home/.docker" "$work/root" "$work/cwd"
python3 - "$work/home/.docker/config.json" "$N" <<'PY'
import json, sys, base64
path, n = sys.argv[1], int(sys.argv[2])
auths = {f"registry-{i}.example.com": {"auth": base64.b64encode(f"user{i}:pass{i}".encode()).decode()} for i in range(n)}
json.dump({"auths": auths}, open(path, "w"))
PY
req='{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"registry-'$((N / 2))'.example.com/team/app"}'
printf '%s\n' "$req" > "$work/request.json"
run() { (cd "$work/cwd" && HOME="$work/home" "$BIN" --root-dir "$work/root" --cache-dir "$work/cache" "$@" < "$work/request.json"); }
run > "$work/response.json"            # warms the cache
run --no-cache > /dev/null

export BIN work
# hyperfine cannot feed stdin (1.15) and subtracts its own shell's start-up time, which makes
# `cat` read as zero. So every command runs as an explicit `sh -c` with -N: the same shell
# start-up is included, unsubtracted, on each side.
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$work/hit.json" \
  -n cat "sh -c 'cat $work/response.json < $work/request.json'" \
  -n cache-hit "sh -c 'HOME=$work/home $BIN --root-dir $work/root --cache-dir $work/cache < $work/request.json'" \
  -n "docker-config-$N" "sh -c 'HOME=$work/home $BIN --root-dir $work/root --no-cache < $work/request.json'" \
  > "$work/hyperfine.txt" 2>&1

rss() { /usr/bin/time -f %M bash -c "HOME=$work/home $BIN --root-dir $work/root $* < $work/request.json >/dev/null" 2>&1 | tail -1; }
python3 - "$work/hit.json" "$(rss --cache-dir "$work/cache")" "$(rss --no-cache)" "$(/usr/bin/time -f %M cat "$work/response.json" 2>&1 >/dev/null | tail -1)" <<'PY'
import json, sys, statistics
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
cat = statistics.median(res["cat"]["times"])
print(f"{'benchmark':<22}{'median':>10}{'vs cat':>9}")
for name, r in res.items():
    m = statistics.median(r["times"])
    print(f"{name:<22}{m*1e3:>8.2f}ms{m/cat:>8.2f}x")
print(f"peak RSS: cache hit {sys.argv[2]} KiB, docker-config {sys.argv[3]} KiB, cat {sys.argv[4]} KiB")
PY
