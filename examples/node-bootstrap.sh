#!/usr/bin/env bash
# Node bootstrap snippet: install kubelet-keyring as the kubelet's image credential provider.
# Use it from cloud-init / user data / an image build (Bottlerocket and Talos ship their own
# config mechanisms; the file layout below is the same).
#
#   node-bootstrap.sh [BINARY] [KUBELET_CONFIG]
#
# BINARY defaults to ./kubelet-keyring, KUBELET_CONFIG to ./credential-provider-config.yaml.
# DESTDIR (default /) installs into another root, for image builds and for tests.
# Idempotent; validates the config with the kubelet's rules before enabling it, and restarts
# the kubelet only when running on the real root with systemd.
set -euo pipefail

BINARY=${1:-./kubelet-keyring}
CONFIG=${2:-./credential-provider-config.yaml}
DESTDIR=${DESTDIR:-/}
BIN_DIR=/usr/libexec/kubelet-credential-providers
CONFIG_PATH=/etc/kubernetes/credential-provider-config.yaml
DROPIN=/etc/systemd/system/kubelet.service.d/20-kubelet-keyring.conf
here=$(cd "$(dirname "$0")" && pwd)

root() { printf '%s%s' "${DESTDIR%/}" "$1"; }

install -d -m 0755 "$(root "$BIN_DIR")" "$(root /etc/kubernetes)" "$(root /etc/systemd/system/kubelet.service.d)"
# The binary and its config belong to root and are not writable by others: whoever can change
# them decides where the node's registry credentials go.
install -m 0755 "$BINARY" "$(root "$BIN_DIR")/kubelet-keyring"
install -m 0644 "$CONFIG" "$(root "$CONFIG_PATH")"
"$(root "$BIN_DIR")/kubelet-keyring" --version
"$(root "$BIN_DIR")/kubelet-keyring" validate-config --bin-dir "$(root "$BIN_DIR")" "$(root "$CONFIG_PATH")"
install -m 0644 "$here/systemd/20-kubelet-keyring.conf" "$(root "$DROPIN")"

if [ "$DESTDIR" = / ] && command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  systemctl daemon-reload
  systemctl try-restart kubelet
fi
echo "kubelet-keyring installed in $(root "$BIN_DIR")"
