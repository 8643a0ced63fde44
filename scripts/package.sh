#!/usr/bin/env bash
# Node-image packages from the static release binary: a .deb (cargo-deb), an .rpm
# (cargo-generate-rpm), a CycloneDX SBOM (cargo-cyclonedx) and SHA256SUMS, in one directory.
#
#   bash scripts/package.sh [OUT_DIR]        # default target/dist
#
# The binary is built by `AUDITABLE=1 scripts/release.sh` (cargo auditable: its dependency
# list is embedded, `rust-audit-info` reads it back), a no-op when it is up to date. NO_BUILD=1
# packages the binary already in target/<triple>/release without calling cargo build (it must
# still carry the embedded dependency list). The man page and the bash/zsh/fish completions
# are generated from that binary, so they always match it.
#
# What goes where (the same in both packages; the [package.metadata.deb] and
# [package.metadata.generate-rpm] tables of Cargo.toml list it):
#   /usr/libexec/kubelet-credential-providers/kubelet-keyring   the binary
#   /usr/share/man/man1/kubelet-keyring.1.gz                   man page
#   bash, zsh and fish completions in each shell's vendor directory
#   /usr/share/doc/kubelet-keyring/examples/                   config/*.yaml, the systemd
#                                                               drop-in and the metrics
#                                                               service + timer (none enabled),
#                                                               Prometheus alert rules
# The tools come from scripts/install-test-deps.sh. Prints each file's size and the sums.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/dist}
triple="$(uname -m)-unknown-linux-gnu"
bin="target/$triple/release/kubelet-keyring"
gen=target/pkg-gen

log() { printf 'package.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in cargo-auditable rust-audit-info cargo-deb cargo-generate-rpm cargo-cyclonedx; do
  command -v "$tool" >/dev/null || die "$tool is missing: run bash scripts/install-test-deps.sh"
done

start=$(date +%s)
if [ "${NO_BUILD:-0}" != 1 ]; then
  AUDITABLE=1 bash scripts/release.sh >&2
fi
[ -x "$bin" ] || die "$bin does not exist: run AUDITABLE=1 bash scripts/release.sh"
rust-audit-info "$bin" >/dev/null 2>&1 || die "$bin has no embedded dependency list: build it with AUDITABLE=1 bash scripts/release.sh"

version=$(cargo pkgid -p kubelet-keyring | sed 's/.*[#@]//')
case "$("$bin" --version)" in
  "kubelet-keyring $version "* | "kubelet-keyring $version") ;;
  *) die "$bin says '$("$bin" --version)', Cargo.toml says $version: rebuild it" ;;
esac
# Reproducible dates: the last commit's, or now outside git.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

rm -rf "$gen"
mkdir -p "$gen" "$out"
# Only what this script writes: OUT_DIR may hold other files.
rm -f "$out"/kubelet-keyring[_-]*.deb "$out"/kubelet-keyring-*.rpm "$out"/kubelet-keyring_*.cdx.json \
  "$out"/SHA256SUMS
"$bin" man | gzip -9n >"$gen/kubelet-keyring.1.gz"
"$bin" completions bash >"$gen/kubelet-keyring.bash"
"$bin" completions zsh >"$gen/_kubelet-keyring"
"$bin" completions fish >"$gen/kubelet-keyring.fish"
for f in "$gen"/*; do [ -s "$f" ] || die "$f is empty"; done
# The Debian changelog cargo-deb installs as changelog.Debian.gz, for this version.
maintainer=$(sed -n 's/^maintainer = "\(.*\)"$/\1/p' Cargo.toml)
cat >"$gen/changelog" <<EOF
kubelet-keyring ($version-1) unstable; urgency=medium

  * Release $version; see /usr/share/doc/kubelet-keyring/README.md.

 -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF

# Both tools find the binary under target/$triple/release from --target; neither builds it.
cargo deb --no-build --no-strip --target "$triple" --output "$out" >&2
cargo generate-rpm --target "$triple" --output "$out" >&2

# The SBOM of the binary's dependency graph (default features, this target), next to the
# packages. cargo-cyclonedx writes one file beside each workspace member's Cargo.toml.
cargo cyclonedx --format json --target "$triple" --spec-version 1.5 --no-build-deps >&2
mv kubelet-keyring.cdx.json "$out/kubelet-keyring_${version}.cdx.json"
for member in plugins/*/ crates/*/; do rm -f "$member"*.cdx.json; done

(cd "$out" && sha256sum -- *.deb *.rpm *.cdx.json >SHA256SUMS)
log "built in $(($(date +%s) - start)) s in $(cd "$out" && pwd):"
(cd "$out" && for f in *; do printf '%10d  %s\n' "$(stat -c %s "$f")" "$f"; done) >&2
cat "$out/SHA256SUMS"
