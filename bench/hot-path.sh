#!/usr/bin/env bash
# Whole-process benchmarks of the hot paths, each against `cat` of the same response measured
# in the same run (the floor of an exec that prints bytes):
#   1. cache hit;
#   2. cache hit with --metrics-dir (one journal record appended per hit);
#   3. docker-config lookup (no cache) with N registries in config.json;
#   4. cache hit of the identity backend (a plugin config with a node-token pass-through rule:
#      the config is read and parsed on every hit).
# and the ratios of (2) and (4) to (1): metrics, and the identity backend's plugin config,
# may not slow a hit by more than 5%.
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
# The identity backend: a node token (an unsigned JWT valid for a day: the node's token is not
# verified here, its registry does that) passed through for registry.identity.example.
python3 - "$work/node-token" <<'PY'
import base64, json, sys, time
b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
open(sys.argv[1], "w").write(b64({"alg": "RS256", "typ": "JWT"}) + "." + b64({"sub": "node", "exp": int(time.time()) + 86400}) + ".c2ln")
PY
cat > "$work/identity.yaml" <<YAML
identity:
  rules:
    - hosts: [registry.identity.example]
      identity: node
      node: {tokenFile: $work/node-token}
      method: {passThrough: {username: node}}
YAML
printf '%s\n' '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"registry.identity.example/team/app"}' > "$work/identity-request.json"
run() { (cd "$work/cwd" && HOME="$work/home" "$BIN" --root-dir "$work/root" --cache-dir "$work/cache" "$@" < "$work/request.json"); }
run > "$work/response.json"            # warms the cache
run --no-cache > /dev/null
run --metrics-dir "$work/metrics" > /dev/null
(cd "$work/cwd" && HOME="$work/home" "$BIN" --root-dir "$work/root" --cache-dir "$work/cache" --config "$work/identity.yaml" < "$work/identity-request.json" > /dev/null)

export BIN work
# hyperfine cannot feed stdin (1.15) and subtracts its own shell's start-up time, which makes
# `cat` read as zero. So every command runs as an explicit `sh -c` with -N: the same shell
# start-up is included, unsubtracted, on each side.
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$work/hit.json" \
  -n cat "sh -c 'cat $work/response.json < $work/request.json'" \
  -n cache-hit "sh -c 'HOME=$work/home $BIN --root-dir $work/root --cache-dir $work/cache < $work/request.json'" \
  -n cache-hit-metrics "sh -c 'HOME=$work/home $BIN --root-dir $work/root --cache-dir $work/cache --metrics-dir $work/metrics < $work/request.json'" \
  -n "docker-config-$N" "sh -c 'HOME=$work/home $BIN --root-dir $work/root --no-cache < $work/request.json'" \
  -n identity-hit "sh -c 'HOME=$work/home $BIN --root-dir $work/root --cache-dir $work/cache --config $work/identity.yaml < $work/identity-request.json'" \
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
hit = statistics.median(res["cache-hit"]["times"])
with_metrics = statistics.median(res["cache-hit-metrics"]["times"])
print(f"cache hit with metrics / without: {with_metrics/hit:.3f}x")
identity = statistics.median(res["identity-hit"]["times"])
print(f"identity cache hit / docker-config cache hit: {identity/hit:.3f}x")
print(f"peak RSS: cache hit {sys.argv[2]} KiB, docker-config {sys.argv[3]} KiB, cat {sys.argv[4]} KiB")
PY

# The same hits without a shell, round-robin (examples/exec_bench.rs, std only, so rustc
# builds it in a second): the three commands take turns, so drift on a shared machine
# falls on all of them alike, which the 5% comparison needs.
rustc -O --edition 2021 -o "$work/exec_bench" examples/exec_bench.rs
(cd "$work/cwd" && HOME="$work/home" "$work/exec_bench" --runs "$RUNS" \
  cat "$work/request.json" cat "$work/response.json" -- \
  cache-hit "$work/request.json" "$BIN" --root-dir "$work/root" --cache-dir "$work/cache" -- \
  cache-hit-metrics "$work/request.json" "$BIN" --root-dir "$work/root" --cache-dir "$work/cache" \
    --metrics-dir "$work/metrics" -- \
  identity-hit "$work/identity-request.json" "$BIN" --root-dir "$work/root" --cache-dir "$work/cache" \
    --config "$work/identity.yaml") | tee "$work/exec.txt"
awk '$1 == "cache-hit" {h = $2 + 0} $1 == "cache-hit-metrics" {m = $2 + 0} $1 == "identity-hit" {i = $2 + 0}
     END {printf "cache hit with metrics / without (no shell): %.3fx\n", m / h;
          printf "identity cache hit / docker-config cache hit (no shell): %.3fx\n", i / h}' "$work/exec.txt"
echo "journal: $(stat -c %s "$work/metrics/kubelet-keyring.journal") bytes after the runs"
