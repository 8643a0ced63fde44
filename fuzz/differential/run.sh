#!/usr/bin/env bash
# Differential test of kubelet-keyring's Rust re-implementations against the kubelet's Go
# behaviour (restated in kubeletref.go with the Go standard library). Run by hand, not in CI:
#
#   fuzz/differential/run.sh [--cases N] [--seed S] [--show K] [--only KIND]
#
# Installs Debian's golang-go if `go` is missing, builds both sides, pipes N generated cases
# per kind through both and prints every kind's count and a last line `N cases, M mismatches`.
# Exits non-zero when anything differs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if ! command -v go >/dev/null 2>&1; then
    echo "go not found: installing Debian's golang-go" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq golang-go >/dev/null
fi
echo "$(go version)" >&2

build="$repo/target/differential"
mkdir -p "$build"
# Stdlib only: no module download, no network.
(cd "$here" && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="${GOCACHE:-$build/gocache}" \
    go build -o "$build/kubeletref" .)
CARGO_TARGET_DIR="$build/cargo" cargo build --quiet --release \
    --manifest-path "$here/Cargo.toml"

"$build/cargo/release/kubelet-keyring-differential" "$build/kubeletref" "$@"
