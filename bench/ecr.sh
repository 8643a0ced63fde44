#!/usr/bin/env bash
# ECR token fetch, kubelet-keyring vs Debian's docker-credential-ecr-login (Go, 0.6.0), both
# against the same moto ECR API, cold (no cache, one GetAuthorizationToken per run) and warm
# (served from each tool's own on-disk cache). Prints medians and ratios.
#
#   sudo bash bench/ecr.sh [path/to/kubelet-keyring]   (default: a release build with ecr only)
#   sudo PROFILE=out-dir bash bench/ecr.sh [binary]     (no timing: where one cold fetch goes,
#                                                        see bench/ecr-profile.sh)
#
# Why a network namespace: docker-credential-ecr-login 0.6.0 predates the SDK's
# AWS_ENDPOINT_URL_* variables (its Go SDK has no endpoint override at all), so it always
# calls https://api.ecr.<region>.amazonaws.com. To compare like with like, both tools run in a
# private network and mount namespace (`unshare`, root) in which /etc/hosts sends that name
# to 127.0.0.1, where moto_server listens on port 443 with a certificate from a throwaway CA.
# Both trust that CA through AWS_CA_BUNDLE (the Go SDK's variable, which kubelet-keyring
# honours the same way), so both pay for DNS, TCP, TLS and SigV4 exactly as against AWS.
# moto's tokens get a 12 h expiry (its own is fixed in 2015), else neither cache would ever
# serve one, and moto's connections get TCP_NODELAY (tests/data/moto/sitecustomize.py): without
# it each response's body waited ~10 ms for moto to close the connection (Nagle's algorithm on
# the server, a delayed ACK on the client), a stall no AWS front end has that sat in both
# tools' cold figures alike and pulled their ratio toward 1. Nothing leaves the namespace,
# whose only interface is its own loopback.
#
# Needs: root, unshare, ip, openssl, curl, python3, hyperfine, moto_server,
# docker-credential-ecr-login (bash scripts/install-test-deps.sh installs the last three).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "${ECR_BENCH_INSIDE:-}" != 1 ]; then
  BIN=${1:-}
  if [ -z "$BIN" ]; then
    cargo build -q --release --no-default-features --features ecr
    BIN=target/release/kubelet-keyring
  fi
  BIN=$(realpath "$BIN")
  # std only: plain rustc, not a release build of the whole crate for an example.
  exec_dir=$(mktemp -d)
  rustc -O --edition 2021 -o "$exec_dir/exec_bench" examples/exec_bench.rs
  EXEC_BENCH="$exec_dir/exec_bench"
  export EXEC_BENCH
  for t in unshare ip openssl curl python3 hyperfine moto_server docker-credential-ecr-login; do
    command -v "$t" >/dev/null || { echo "bench/ecr.sh: $t missing (bash scripts/install-test-deps.sh)" >&2; exit 1; }
  done
  [ "$(id -u)" = 0 ] || { echo "bench/ecr.sh: needs root (network namespace, port 443)" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  if [ -n "${PROFILE:-}" ]; then
    for t in strace valgrind callgrind_annotate; do
      command -v "$t" >/dev/null || { echo "bench/ecr.sh: PROFILE needs $t (apt-get install strace valgrind)" >&2; exit 1; }
    done
    mkdir -p "$PROFILE"
    PROFILE=$(realpath "$PROFILE")
    export PROFILE
  fi
  export ECR_BENCH_INSIDE=1 BIN work
  unshare --net --mount --propagation private bash "$0"
  exit
fi

# ---- inside the namespaces -------------------------------------------------------------
ip link set lo up
cd "$work"
mkdir -p home root cache ecr-cache site

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj "/CN=ecr bench CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=api.ecr.us-east-1.amazonaws.com" 2>/dev/null
printf 'subjectAltName=DNS:api.ecr.us-east-1.amazonaws.com\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 1 -extfile ext 2>/dev/null

cp /etc/hosts hosts
echo "127.0.0.1 api.ecr.us-east-1.amazonaws.com" >> hosts
mount --bind hosts /etc/hosts

# moto_server's Python loads this at start-up (PYTHONPATH): tokens expire in 12 h.
cp "$repo/tests/data/moto/sitecustomize.py" site/sitecustomize.py
PYTHONPATH="$work/site" moto_server -H 127.0.0.1 -p 443 -c srv.pem -k srv.key > moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null; wait $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf --cacert ca.pem -o /dev/null https://api.ecr.us-east-1.amazonaws.com/moto-api/ && break
  sleep 0.1
done
curl -sf --cacert ca.pem -o /dev/null https://api.ecr.us-east-1.amazonaws.com/moto-api/ \
  || { echo "moto_server did not start:" >&2; cat moto.log >&2; exit 1; }

host=123456789012.dkr.ecr.us-east-1.amazonaws.com
printf '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"%s/app"}\n' "$host" > request.json
printf '%s\n' "$host" > server.txt
# The same environment for both: fake keys, no IMDS, the bench CA, an empty HOME.
cat > env.sh <<EOF
export HOME=$work/home AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_EC2_METADATA_DISABLED=true AWS_CA_BUNDLE=$work/ca.pem AWS_ECR_CACHE_DIR=$work/ecr-cache
EOF

keyring() { sh -c ". $work/env.sh; $BIN --root-dir $work/root $* < $work/request.json"; }
helper() { sh -c ". $work/env.sh; $* docker-credential-ecr-login get < $work/server.txt"; }

# Both answer, with the same password, before anything is timed; this also fills both caches.
ours=$(keyring --cache-dir "$work/cache" | python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["'$host'"]["password"])')
theirs=$(helper | python3 -c 'import json,sys; print(json.load(sys.stdin)["Secret"])')
[ -n "$ours" ] && [ "$ours" = "$theirs" ] || { echo "the two tools disagree or failed" >&2; exit 1; }
keyring --no-cache > /dev/null
helper AWS_ECR_DISABLE_CACHE=1 > /dev/null

if [ -n "${PROFILE:-}" ]; then
  . "$repo/bench/ecr-profile.sh"
  exit
fi

# hyperfine 1.15 cannot feed stdin, so each command is an explicit `sh -c` with -N: the same
# shell start-up is in every figure, which pulls the ratios toward 1. The warm hit is timed
# again at the end without any shell.
RUNS=${RUNS:-40}
# For reference: curl making the same HTTPS call to moto (a fresh TLS handshake and moto's
# own time, which dominates every cold figure; curl's own start-up is not small either).
cat > curl.sh <<EOF
exec curl -sf --cacert $work/ca.pem -o /dev/null -X POST -d '{}' \\
  -H 'Content-Type: application/x-amz-json-1.1' \\
  -H 'X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken' \\
  -H 'Authorization: AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0' \\
  https://api.ecr.us-east-1.amazonaws.com/
EOF
hyperfine -N --warmup 3 --runs "$RUNS" --export-json cold.json \
  -n curl-reference "sh $work/curl.sh" \
  -n kubelet-keyring-cold "sh -c '. $work/env.sh; $BIN --root-dir $work/root --no-cache < $work/request.json'" \
  -n ecr-login-cold "sh -c '. $work/env.sh; AWS_ECR_DISABLE_CACHE=1 docker-credential-ecr-login get < $work/server.txt'" \
  > hyperfine-cold.txt 2>&1 || { cat hyperfine-cold.txt >&2; exit 1; }
hyperfine -N --warmup 10 --runs "$((RUNS * 5))" --export-json warm.json \
  -n kubelet-keyring-warm "sh -c '. $work/env.sh; $BIN --root-dir $work/root --cache-dir $work/cache < $work/request.json'" \
  -n ecr-login-warm "sh -c '. $work/env.sh; docker-credential-ecr-login get < $work/server.txt'" \
  > hyperfine-warm.txt 2>&1 || { cat hyperfine-warm.txt >&2; exit 1; }

python3 - cold.json warm.json "$BIN" <<'PY'
import json, os, statistics, sys
rows = {}
for path in sys.argv[1:3]:
    for r in json.load(open(path))["results"]:
        rows[r["command"]] = statistics.median(r["times"])
print(f"binary: {sys.argv[3]} ({os.path.getsize(sys.argv[3]) / 2**20:.1f} MiB)")
print(f"{'median':<6}{'kubelet-keyring':>17}{'ecr-login (Go)':>16}{'ratio':>8}   (under sh -c)")
for case in ("cold", "warm"):
    ours, theirs = rows[f"kubelet-keyring-{case}"], rows[f"ecr-login-{case}"]
    print(f"{case:<6}{ours * 1e3:>15.2f}ms{theirs * 1e3:>14.2f}ms{ours / theirs:>7.2f}x")
print(f"(curl, the same HTTPS call to moto: {rows['curl-reference'] * 1e3:.2f}ms)")
PY

# The warm hit once more without any shell: each process spawned directly with its stdin from
# the file (examples/exec_bench.rs), ratios against the Go helper; `cat` of the response shows
# the floor of an exec that prints bytes.
keyring --cache-dir "$work/cache" > "$work/response.json"
echo
(. "$work/env.sh"; "$EXEC_BENCH" --runs "$((RUNS * 5))" \
  ecr-login-warm "$work/server.txt" "$(command -v docker-credential-ecr-login)" get -- \
  kubelet-keyring-warm "$work/request.json" "$BIN" --root-dir "$work/root" --cache-dir "$work/cache" -- \
  cat "$work/request.json" cat "$work/response.json")
