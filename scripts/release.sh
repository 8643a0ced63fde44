#!/usr/bin/env bash
# The release build for node images: one static binary (glibc, crt-static) that runs on any
# Linux node of this architecture, whatever its libc, with every backend compiled in.
#
#   bash scripts/release.sh [extra cargo args, e.g. --no-default-features --features ecr]
#
# Static glibc resolves names with its built-in "files" and "dns" NSS modules (/etc/hosts,
# /etc/resolv.conf), which is what the kubelet's node needs to reach registries and cloud APIs.
# Prints the path, size, `--version` and a check that nothing is linked dynamically.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(uname -m)-unknown-linux-gnu"
# --target keeps crt-static away from build scripts and proc macros, which must stay dynamic.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" cargo build --release --locked --target "$target" "$@"
bin="target/$target/release/kubelet-keyring"
if ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "release.sh: $bin is dynamically linked" >&2
  exit 1
fi
echo "$bin: $(du -h "$bin" | cut -f1) ($(stat -c %s "$bin") bytes), static"
"$bin" --version
