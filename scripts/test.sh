#!/usr/bin/env bash
# The one command that runs every test: installs the real tools the tests drive (registry,
# skopeo, moto, credential helper), then the whole workspace's tests with every backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --workspace --all-features --no-fail-fast
