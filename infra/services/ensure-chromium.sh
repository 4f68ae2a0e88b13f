#!/usr/bin/env bash
# Make sure Debian's headless Chromium and ChromeDriver (/usr/bin/chromium,
# /usr/bin/chromedriver) are installed for the browser tests (tests/e2e).
# Idempotent: installs nothing when both are present. Runs as root without sudo.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { printf 'ensure-chromium: %s\n' "$*"; }
die() { printf 'ensure-chromium: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    log "already installed: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install chromium and chromium-driver by hand"
log "installing Debian packages chromium chromium-driver"
as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium still missing after install"
[ -x /usr/bin/chromedriver ] || die "/usr/bin/chromedriver still missing after install"
log "installed: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
