#!/usr/bin/env bash
# The one command that runs every test: installs the real tools the tests drive (registry,
# skopeo, moto, credential helper, package tools), builds the node-image packages once
# (scripts/package.sh: the static release binary, .deb, .rpm, SBOM), then the whole
# workspace's tests with every backend.
#
# The tests that need those real tools or root (tests/packages.rs installs the .deb) are
# #[ignore = "needs <tool>"]: plain `cargo test` lists them as ignored, and here
# --include-ignored runs them, where a missing tool or package is a failure.
# KEYRING_PACKAGE_DIR tells them where scripts/package.sh put the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where the time and the disk go, on stderr (CI has 20 minutes for a clean run, and once ran
# out of disk).
phase() {
    printf 'test.sh: %s after %d s, %s free on the target disk\n' "$1" "$SECONDS" \
        "$(df -h --output=avail . 2>/dev/null | tail -n1 | tr -d ' ')" >&2
}
bash scripts/install-test-deps.sh
phase "test tools ready"
# A whole-suite run keeps no incremental state: it is for edit loops, and here it would double
# the debug target dir (1.1 GB without it; CI once ran out of disk).
export CARGO_INCREMENTAL=0
export KEYRING_PACKAGE_DIR="$PWD/target/dist"
bash scripts/package.sh "$KEYRING_PACKAGE_DIR"
phase "packages built"
status=0
# Lints and docs first: the lints the workspace declares (print_stdout = "deny", ...) and every
# doc link are enforced here, so a doc that names what no longer exists fails CI.
cargo clippy --workspace --all-targets --all-features -- -D warnings || status=$?
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --document-private-items \
    || status=$?
phase "clippy and docs done (exit $status)"
cargo test --workspace --all-features --no-fail-fast -- --include-ignored || status=$?
# The binary's own unit tests in a build without any cloud backend (docker-config only), so
# a test or code path that assumes a backend is compiled in shows here.
cargo test -p kubelet-keyring --no-default-features --lib || status=$?
phase "tests done (exit $status)"
exit "$status"
