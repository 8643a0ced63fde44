#!/usr/bin/env bash
# Installs the real tools the test suite runs against, on Debian bookworm, as root.
#
#   docker-registry (distribution 2.8), skopeo, apache2-utils (htpasswd), openssl:
#       tests/registry_e2e.rs runs a real TLS + htpasswd registry and pushes/pulls with skopeo.
#   amazon-ecr-credential-helper: docker credential helper tests (docker-credential-ecr-login).
#   hyperfine: timing the binary.
#   moto[server] (PyPI): a real ECR API on 127.0.0.1 for the ECR backend's tests.
#   lintian, rpm: building the .rpm (rpmbuild) and checking the packages scripts/package.sh
#       builds (tests/packages.rs); dpkg-deb, which builds the .deb, comes with every Debian.
#   prometheus-node-exporter, prometheus (Debian ships promtool in it): tests/metrics.rs scrapes
#       the textfile collector and runs `promtool check metrics` / `check rules`.
#   oidc-provider (npm, pinned, into /opt/kubelet-keyring-test/oidc-provider): a real OAuth 2.0
#       authorization server for the identity backend's RFC 8693 test (tests/identity/exchange.rs,
#       tests/data/oidc-provider/token-exchange.mjs); needs node >= 20 and npm (the image's
#       nodejs; Debian's nodejs and npm packages otherwise).
#   cargo-auditable, rust-audit-info, cargo-cyclonedx (crates.io, `cargo install --locked` at
#       pinned versions): scripts/package.sh. Each is compiled once (opt-level 1 without LTO;
#       226 CPU-seconds for the three, cargo-cyclonedx 183 of them) and skipped when its binary
#       is on PATH. Building the three into one target directory saved nothing measurable (they
#       share few crates at the same versions). cargo-deb and cargo-generate-rpm are no longer
#       needed (dpkg-deb and rpmbuild do their job): compiling them took 373 CPU-seconds, 62% of
#       what the five took.
#
# Idempotent and quick when everything is present: `apt-get update` runs only when a package
# is missing, pip only when `moto_server` is not on PATH, cargo install only for a missing tool. Safe non-interactively (CI=true, no
# stdin). Ends with one line per tool and its version.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

APT_PACKAGES=(docker-registry skopeo apache2-utils openssl amazon-ecr-credential-helper hyperfine
    lintian rpm prometheus-node-exporter prometheus)

log() { printf 'install-test-deps: %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (it installs Debian packages)"
    exit 1
fi

# A package counts as present only when dpkg says "install ok installed".
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ $status != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

# No stdin in CI: apt must never prompt, and must keep existing config files.
apt_install() {
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" </dev/null
}

if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -q </dev/null
    apt_install "${missing[@]}"
fi

# pyenv installs console scripts behind shims that exist only after a rehash.
rehash() { if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi; }

if ! command -v moto_server >/dev/null 2>&1; then
    log "installing moto[server] from PyPI"
    if command -v pip >/dev/null 2>&1; then
        pip=(pip)
    elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
        pip=(python3 -m pip)
    else
        log "installing python3-pip"
        if ((${#missing[@]} == 0)); then apt-get update -q </dev/null; fi
        apt_install python3-pip python3-venv
        pip=(python3 -m pip)
    fi
    pip_args=(install --quiet --disable-pip-version-check --no-input 'moto[server]')
    # Debian's own python3 is "externally managed" (PEP 668): pip refuses a plain install
    # there, so fall back to --break-system-packages (pip >= 23.0.1, bookworm's version).
    if ! "${pip[@]}" "${pip_args[@]}" </dev/null; then
        log "retrying with --break-system-packages"
        "${pip[@]}" "${pip_args[@]}" --break-system-packages </dev/null
    fi
    rehash
    if ! command -v moto_server >/dev/null 2>&1; then
        log "moto[server] installed but moto_server is not on PATH ($PATH)"
        exit 1
    fi
fi

# oidc-provider for tests/identity/exchange.rs, at a pinned version, reinstalled only when another is there.
OIDC_PROVIDER_DIR=/opt/kubelet-keyring-test/oidc-provider
OIDC_PROVIDER_VERSION=9.13.3
oidc_provider_version() {
    node -p "require('$OIDC_PROVIDER_DIR/node_modules/oidc-provider/package.json').version" 2>/dev/null
}
if [[ $(oidc_provider_version || true) != "$OIDC_PROVIDER_VERSION" ]]; then
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        log "installing nodejs and npm"
        apt-get update -q </dev/null
        apt_install nodejs npm
    fi
    log "installing oidc-provider@$OIDC_PROVIDER_VERSION from npm into $OIDC_PROVIDER_DIR"
    mkdir -p "$OIDC_PROVIDER_DIR"
    npm install --prefix "$OIDC_PROVIDER_DIR" --no-audit --no-fund --silent \
        "oidc-provider@$OIDC_PROVIDER_VERSION" </dev/null
fi

# Cargo subcommands for scripts/package.sh, by binary name and crate@version.
CARGO_TOOLS=(
    cargo-auditable=cargo-auditable@0.7.7
    rust-audit-info=rust-audit-info@0.5.4
    cargo-cyclonedx=cargo-cyclonedx@0.5.9
)
for entry in "${CARGO_TOOLS[@]}"; do
    if ! command -v "${entry%%=*}" >/dev/null 2>&1; then
        log "installing ${entry#*=} from crates.io"
        # Tools that run for a second each: a quick build, not their release profile's LTO
        # (cargo-deb: 86 s -> 47 s here; CI has 20 minutes for everything).
        CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
            CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 \
            cargo install --locked --quiet "${entry#*=}" </dev/null
    fi
done

# One line per tool. Each probe must succeed: a tool that cannot report its version is broken.
deb_version() { dpkg-query -W -f='${Version}' "$1"; }
moto_version() {
    local py
    py=$(head -n1 "$(command -v moto_server)" | sed -n 's/^#!//p')
    # A pyenv shim is a bash script, not a python entry point: ask pyenv's python then.
    if [[ -z $py || $py == *bash* || $py == *"/sh" ]]; then py=python3; fi
    # shellcheck disable=SC2086 # the shebang may be "/usr/bin/env python3"
    $py -c 'import moto; print(moto.__version__)'
}

# rust-audit-info has no --version and `cargo auditable --version` is cargo's: cargo's install
# record says which one is installed.
cargo_version() {
    local v
    v=$(cargo install --list | sed -n "s/^$1 v\([^ :]*\).*/\1/p")
    [[ -n $v ]] || return 1
    printf '%s\n' "$v"
}

printf '%-28s %s\n' \
    docker-registry "$(docker-registry --version | awk '{print $NF}')" \
    skopeo "$(skopeo --version | awk '{print $NF}')" \
    htpasswd "apache2-utils $(deb_version apache2-utils)" \
    openssl "$(openssl version | awk '{print $2}')" \
    docker-credential-ecr-login "$(docker-credential-ecr-login version)" \
    hyperfine "$(hyperfine --version | awk '{print $NF}')" \
    moto_server "moto $(moto_version)" \
    oidc-provider "$(oidc_provider_version) (node $(node --version))" \
    lintian "$(lintian --version | awk '{print $NF}')" \
    rpm "$(rpm --version | awk '{print $NF}')" \
    prometheus-node-exporter "$(prometheus-node-exporter --version 2>&1 | awk 'NR == 1 {print $3}')" \
    promtool "$(promtool --version 2>&1 | awk 'NR == 1 {print $3}')" \
    cargo-auditable "$(cargo_version cargo-auditable)" \
    rust-audit-info "$(cargo_version rust-audit-info)" \
    dpkg-deb "$(deb_version dpkg)" \
    rpmbuild "$(rpmbuild --version | awk '{print $NF}')" \
    cargo-cyclonedx "$(cargo cyclonedx --version | awk '{print $NF}')"
