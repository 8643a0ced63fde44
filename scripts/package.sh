#!/usr/bin/env bash
# Node-image packages from the static release binary: a .deb (dpkg-deb), an .rpm (rpmbuild),
# a CycloneDX SBOM (cargo-cyclonedx) and SHA256SUMS, in one directory.
#
#   bash scripts/package.sh [OUT_DIR]        # default target/dist
#
# The binary is built by `AUDITABLE=1 scripts/release.sh` (cargo auditable: its dependency
# list is embedded, `rust-audit-info` reads it back), a no-op when it is up to date. NO_BUILD=1
# packages the binary already in target/<triple>/release without calling cargo build (it must
# still carry the embedded dependency list). The man page and the bash/zsh/fish completions
# are generated from that binary, so they always match it.
#
# What goes where (the same in both packages, staged by `stage` below):
#   /usr/libexec/kubelet-credential-providers/kubelet-keyring   the binary
#   /usr/share/man/man1/kubelet-keyring.1.gz                   man page
#   bash, zsh and fish completions in each shell's vendor directory (zsh: Debian's
#                                                               vendor-completions, Fedora's
#                                                               site-functions)
#   /usr/share/doc/kubelet-keyring/examples/                   config/*.yaml, the systemd
#                                                               drop-in and the metrics
#                                                               service + timer (none enabled),
#                                                               Prometheus alert rules
# The kubelet configs, the drop-in, the metrics units and the alert rules are documentation
# only: installing a package never changes the kubelet's flags nor starts a unit. The .deb
# also carries the Debian changelog, the lintian overrides and the upstream plugins' names as
# symlinks to the binary (tests/packages.rs checks them against the binary's own list); the
# .rpm makes those symlinks in %post and removes them in %postun (packaging/rpm-*.sh), as the
# earlier cargo-generate-rpm build did. Neither has a dependency: one static binary.
#
# The packaging tools are Debian's own (dpkg-deb, and rpmbuild from the rpm package that the
# tests need anyway), not cargo-deb and cargo-generate-rpm: compiling those two took 373 of the
# 599 CPU-seconds CI spent installing cargo tools. cargo-auditable, rust-audit-info and
# cargo-cyclonedx come from scripts/install-test-deps.sh. Prints each file's size and the sums.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022
out=${1:-target/dist}
triple="$(uname -m)-unknown-linux-gnu"
bin="target/$triple/release/kubelet-keyring"
gen=target/pkg-gen
name=kubelet-keyring
maintainer="kubelet-keyring maintainers <kubelet-keyring@example.invalid>"
summary="Kubelet credential provider for ECR, GCR/Artifact Registry, ACR, docker configs"
libexec=/usr/libexec/kubelet-credential-providers
doc=/usr/share/doc/$name
# The names of the upstream plugins the binary answers under (src/upstream.rs).
upstream_names=(ecr-credential-provider auth-provider-gcp gcr-credential-provider
    gcp-credential-provider acr-credential-provider)

log() { printf 'package.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in cargo-auditable rust-audit-info cargo-cyclonedx dpkg-deb rpmbuild; do
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
  "$name $version "* | "$name $version") ;;
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

# stage ROOT ZSH_DIR: the files both packages carry, with their modes, under ROOT.
stage() {
  local root=$1 zsh=$2
  install -D -m 0755 "$bin" "$root$libexec/$name"
  install -D -m 0644 "$gen/kubelet-keyring.1.gz" "$root/usr/share/man/man1/kubelet-keyring.1.gz"
  install -D -m 0644 "$gen/kubelet-keyring.bash" "$root/usr/share/bash-completion/completions/$name"
  install -D -m 0644 "$gen/_kubelet-keyring" "$root$zsh/_kubelet-keyring"
  install -D -m 0644 "$gen/kubelet-keyring.fish" "$root/usr/share/fish/vendor_completions.d/kubelet-keyring.fish"
  install -D -m 0644 packaging/copyright "$root$doc/copyright"
  install -D -m 0644 README.md "$root$doc/README.md"
  install -D -m 0644 -t "$root$doc/examples" config/*.yaml examples/systemd/20-kubelet-keyring.conf \
    packaging/systemd/kubelet-keyring-metrics.service packaging/systemd/kubelet-keyring-metrics.timer \
    examples/prometheus/kubelet-keyring-alerts.yml
}

# The .deb.
arch=$(dpkg --print-architecture)
deb_root=$gen/deb
stage "$deb_root" /usr/share/zsh/vendor-completions
cat >"$gen/changelog" <<CHANGELOG
$name ($version-1) unstable; urgency=medium

  * Release $version; see $doc/README.md.

 -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
CHANGELOG
gzip -9n <"$gen/changelog" >"$deb_root$doc/changelog.Debian.gz"
chmod 0644 "$deb_root$doc/changelog.Debian.gz"
install -D -m 0644 packaging/lintian-overrides "$deb_root/usr/share/lintian/overrides/$name"
for n in "${upstream_names[@]}"; do ln -s "$name" "$deb_root$libexec/$n"; done
mkdir -p "$deb_root/DEBIAN"
{
  printf 'Package: %s\nVersion: %s-1\nArchitecture: %s\nSection: admin\nPriority: optional\n' \
    "$name" "$version" "$arch"
  printf 'Maintainer: %s\nInstalled-Size: %s\n' "$maintainer" "$(du -sk "$deb_root" | cut -f1)"
  printf 'Description: %s\n' "$summary"
  sed 's/^/ /' packaging/description
} >"$deb_root/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz --build "$deb_root" "$out/${name}_$version-1_$arch.deb" >&2

# The .rpm: rpmbuild copies the staged tree into its build root; no build, strip or
# compression step of its own, no build-id links, no automatic dependencies.
rpm_root=$gen/rpm-stage
top=$PWD/$gen/rpmbuild
stage "$rpm_root" /usr/share/zsh/site-functions
mkdir -p "$top"
{
  printf 'Name: %s\nVersion: %s\nRelease: 1\nSummary: %s\nLicense: Apache-2.0\nAutoReqProv: no\n\n' \
    "$name" "$version" "$summary"
  printf '%%description\n'; cat packaging/description
  printf '\n%%install\ncp -a %s/. %%{buildroot}/\n\n' "$PWD/$rpm_root"
  printf '%%post\n'; cat packaging/rpm-post-install.sh
  printf '\n%%postun\n'; cat packaging/rpm-post-uninstall.sh
  printf '\n%%files\n%%defattr(-,root,root,-)\n'
  (cd "$rpm_root" && find . -type f | sed 's/^\.//' | sort) |
    sed -e '\,^/usr/share/doc/\|^/usr/share/man/,s,^,%doc ,'
} >"$gen/$name.spec"
rpmbuild -bb --quiet \
  --define "_topdir $top" \
  --define "debug_package %{nil}" \
  --define "__os_install_post %{nil}" \
  --define "_build_id_links none" \
  --define "_binary_payload w19.zstdio" \
  --define "_buildhost localhost" \
  --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_date_epoch 1" \
  "$gen/$name.spec" >&2
cp "$top/RPMS/$(uname -m)/$name-$version-1.$(uname -m).rpm" "$out/"

# The SBOM of the binary's dependency graph (default features, this target), next to the
# packages. cargo-cyclonedx writes one file beside each workspace member's Cargo.toml.
cargo cyclonedx --format json --target "$triple" --spec-version 1.5 --no-build-deps >&2
mv kubelet-keyring.cdx.json "$out/kubelet-keyring_${version}.cdx.json"
for member in plugins/*/ crates/*/; do rm -f "$member"*.cdx.json; done

(cd "$out" && sha256sum -- *.deb *.rpm *.cdx.json >SHA256SUMS)
log "built in $(($(date +%s) - start)) s in $(cd "$out" && pwd):"
(cd "$out" && for f in *; do printf '%10d  %s\n' "$(stat -c %s "$f")" "$f"; done) >&2
cat "$out/SHA256SUMS"
