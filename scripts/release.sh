#!/usr/bin/env bash
# The release build for node images: one static binary (glibc, crt-static) that runs on any
# Linux node of this architecture, whatever its libc, with every backend compiled in.
#
#   bash scripts/release.sh [extra cargo args, e.g. --no-default-features --features ecr]
#
# Static glibc resolves names with its built-in "files" and "dns" NSS modules (/etc/hosts,
# /etc/resolv.conf), which is what the kubelet's node needs to reach registries and cloud APIs.
#
# Position-dependent by default (-C relocation-model=static): a static PIE must apply ~30,000
# relocations at every start, which touched ~140 more pages and made the warm cache hit
# 1.37 ms instead of 0.73 ms when measured here (bench/ecr.sh, no-shell figures). The kubelet
# starts us on each of its cache misses; upstream's Go plugins ship position-dependent static
# binaries too. PIE=1 builds a static PIE instead, for nodes that want ASLR of the executable.
# AUDITABLE=1 builds with `cargo auditable build` (cargo-auditable, from
# scripts/install-test-deps.sh): the dependency list is embedded in the binary's .dep-v0
# section, for `rust-audit-info` and vulnerability scanners on the node. scripts/package.sh
# always asks for it.
# Prints the path, size, `--version` and a check that nothing is linked dynamically.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(uname -m)-unknown-linux-gnu"
# --target keeps crt-static away from build scripts and proc macros, which must stay dynamic.
flags="-C target-feature=+crt-static"
[ "${PIE:-0}" = 1 ] || flags="$flags -C relocation-model=static"
build=(build)
if [ "${AUDITABLE:-0}" = 1 ]; then
  if ! command -v cargo-auditable >/dev/null; then
    echo "release.sh: AUDITABLE=1 needs cargo-auditable (bash scripts/install-test-deps.sh)" >&2
    exit 1
  fi
  build=(auditable build)
fi
RUSTFLAGS="${RUSTFLAGS:-} $flags" cargo "${build[@]}" --release --locked --target "$target" "$@"
bin="target/$target/release/kubelet-keyring"
if ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "release.sh: $bin is dynamically linked" >&2
  exit 1
fi
echo "$bin: $(du -h "$bin" | cut -f1) ($(stat -c %s "$bin") bytes), $(file -b "$bin" | cut -d, -f1,4)"
"$bin" --version
