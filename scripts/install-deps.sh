#!/usr/bin/env bash
# Install what the test suites need (the Python client suite in tests/clients, the etcd tests):
#   - Debian packages s3cmd, rclone and chromium (headless, for the status page test) (apt, only if missing)
#   - etcd from Debian's etcd-server (apt, only if missing; the etcd membership tests start
#     their own servers, so the package's system service is kept from starting)
#   - Debian packages haproxy and nginx (nginx-light, or nginx where there is no light one), the
#     load balancers test_cluster.py starts in front of a cluster with deploy/haproxy.cfg and
#     deploy/nginx.conf (apt, only if missing; a temporary /usr/sbin/policy-rc.d keeps their
#     post-install scripts from starting system services on ports 80/443)
#   - a Python venv (default /var/tmp/alcove-venv, override with ALCOVE_VENV)
#     with tests/clients/requirements.txt installed (skipped when a stamp with
#     the requirements' hash says it is up to date).
#   - s3s-fs (an S3 server over a directory; a remote of the S3-mount tests), with
#     cargo install into $BENCH_CACHE (default /var/tmp/alcove-bench-cache, shared
#     with bench/compare), only if missing. scripts/test.sh exports S3S_FS_BIN.
#   - Azurite (the Azure Storage emulator; the azblob:// remote of the remote-mount
#     tests), pinned, with npm install into $BENCH_CACHE/azurite-<version>, only if
#     missing (Node.js and npm from Debian if absent). scripts/test.sh exports AZURITE_DIR.
#     (The GCS emulator is a Python package: it is in requirements.txt.)
# Idempotent; meant to run as root on Debian. Network: apt, PyPI, crates.io and npm only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
req="$repo/tests/clients/requirements.txt"
venv="${ALCOVE_VENV:-/var/tmp/alcove-venv}"
python="${PYTHON:-python3}"

log() { echo "install-deps: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

apt_updated=0
apt_update_if_needed() {
    # Update the package lists once, and only when they are missing or a
    # package we want has no install candidate.
    [ "$apt_updated" -eq 1 ] && return 0
    local need=0
    if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
        need=1
    else
        local p
        for p in "$@"; do
            local pol
            pol="$(apt-cache policy "$p" 2>/dev/null || true)"
            if ! grep -q 'Candidate: [0-9]' <<<"$pol"; then
                need=1
            fi
        done
    fi
    if [ "$need" -eq 1 ]; then
        log "apt-get update"
        $sudo apt-get update -q
        apt_updated=1
    fi
}

apt_install() {
    # apt_install PKG...: install the given packages (all assumed missing).
    [ "$#" -eq 0 ] && return 0
    apt_update_if_needed "$@"
    log "apt-get install -y $*"
    if ! $sudo apt-get install -y -q --no-install-recommends "$@"; then
        if [ "$apt_updated" -eq 0 ]; then
            log "install failed; retrying after apt-get update"
            $sudo apt-get update -q
            apt_updated=1
            $sudo apt-get install -y -q --no-install-recommends "$@"
        else
            return 1
        fi
    fi
}

apt_install_no_start() {
    # apt_install_no_start PKG...: like apt_install, for packages whose post-install script would
    # start a system service (etcd on port 2379, haproxy and nginx on port 80): a temporary
    # policy-rc.d refuses the start.
    local created=0 rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod 755 /usr/sbin/policy-rc.d
        created=1
    fi
    apt_install "$@" || rc=$?
    if [ "$created" -eq 1 ]; then
        $sudo rm -f /usr/sbin/policy-rc.d
    fi
    return "$rc"
}

# 1. Command-line clients from Debian.
missing=()
command -v s3cmd >/dev/null 2>&1 || missing+=(s3cmd)
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# curl: the documentation's runnable blocks use it (tests/clients/test_docs.py).
command -v curl >/dev/null 2>&1 || missing+=(curl)
# Headless Chromium renders the admin port's status page (tests/clients/test_status_page.py).
{ command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } || missing+=(chromium)
# The load balancers: the tests run them from /usr/sbin (not always on a user's PATH).
lb_missing=()
{ command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; } || lb_missing+=(haproxy)
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || lb_missing+=(nginx-light)
# 2. A Python that can make venvs (python3-venv on Debian).
if ! command -v "$python" >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
    python=python3
elif ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
else
    log "s3cmd, rclone, node, npm, chromium, curl and $python already present"
fi
if [ "${#lb_missing[@]}" -gt 0 ]; then
    # Newer Debian has no nginx-light: the full package then.
    apt_install_no_start "${lb_missing[@]}" || apt_install_no_start "${lb_missing[@]/nginx-light/nginx}"
else
    log "haproxy and nginx already present"
fi

# 2b. etcd, where the etcd membership tests look for it (ETCD_BIN, else /usr/bin/etcd).
if [ -x "${ETCD_BIN:-/usr/bin/etcd}" ]; then
    log "etcd already present"
else
    apt_install_no_start etcd-server
fi

# 3. The venv with the pinned Python clients.
stamp="$venv/.alcove-requirements.sha256"
want="$( (sha256sum "$req" | cut -d' ' -f1; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "venv $venv is up to date"
else
    if [ ! -x "$venv/bin/python" ]; then
        log "creating venv $venv"
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
    rm -f "$stamp"
    "$venv/bin/python" -m pip install -q --upgrade pip
    log "pip install -r $req"
    "$venv/bin/python" -m pip install -q -r "$req"
    echo "$want" > "$stamp"
    log "done: $venv"
fi

# 4. s3s-fs, pinned (same location and version as bench/compare).
S3S_VERSION="0.14.1"
cache="${BENCH_CACHE:-/var/tmp/alcove-bench-cache}"
s3s_bin="$cache/s3s-fs-$S3S_VERSION/bin/s3s-fs"
if [ -x "$s3s_bin" ]; then
    log "s3s-fs $S3S_VERSION already installed"
else
    log "cargo install s3s-fs@$S3S_VERSION into $cache (once)"
    mkdir -p "$cache"
    cargo install "s3s-fs@$S3S_VERSION" --features binary --locked \
        --root "$cache/s3s-fs-$S3S_VERSION" --target-dir "$cache/s3s-fs-build" >&2
fi

# 5. Azurite, pinned: 3.35.0 is the newest release that runs on Node 20 (3.36 wants Node 21+).
AZURITE_VERSION="3.35.0"
azurite_dir="$cache/azurite-$AZURITE_VERSION"
azurite_main="$azurite_dir/node_modules/azurite/dist/src/blob/main.js"
if [ -f "$azurite_main" ]; then
    log "azurite $AZURITE_VERSION already installed"
else
    log "npm install azurite@$AZURITE_VERSION into $azurite_dir (once)"
    mkdir -p "$azurite_dir"
    # a partial earlier install is replaced, not patched
    rm -rf "$azurite_dir/node_modules"
    npm install --prefix "$azurite_dir" --no-audit --no-fund --no-save --loglevel=error \
        "azurite@$AZURITE_VERSION" >&2
    [ -f "$azurite_main" ] || { log "azurite did not install ($azurite_main is missing)"; exit 1; }
fi
