#!/usr/bin/env bash
# Idempotent set-up shared by every make target: Debian packages (when root),
# Node >= 22 (installs Node 24 from the npm registry into .tools/ when the host's
# is older), and npm packages (only when package-lock.json changed).
# A second run does nothing but a few quick checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages ---------------------------------------------------------
# bubblewrap: the namespace sandbox; util-linux: setpriv; python3: the sandbox
# workloads in tests; iproute2/nftables: the egress firewall; curl/openssl: proxy tests.
# qemu-system-x86: the micro-VM backend; runsc: the gVisor backend; gcc/libc6-dev,
# binutils (readelf) and e2fsprogs (mke2fs): images/build.sh makes the guest image
# (its kernel, busybox and the rest are downloaded as .debs, not installed here).
# chromium: the dashboard's end-to-end test drives it headless through playwright-core.
debs=(bubblewrap util-linux python3 iproute2 nftables procps curl openssl qemu-system-x86 runsc gcc libc6-dev binutils e2fsprogs chromium)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    log "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  fi
fi

# --- Node >= 22 ---------------------------------------------------------------
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ -x "$tools/node_modules/.bin/node" ]; then
  :
elif command -v node >/dev/null && [ "$(node_major node)" -ge 22 ]; then
  :
else
  log "host Node is $(node --version 2>/dev/null || echo missing); installing Node 24 into .tools/"
  # A package.json of its own, or npm would walk up and install into the project's node_modules.
  [ -f "$tools/package.json" ] || echo '{ "private": true, "description": "LuminaGuard build tools" }' > "$tools/package.json"
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error node@24 >&2)
  "$tools/node_modules/.bin/node" --version >/dev/null || { log "Node 24 did not install into .tools/"; exit 1; }
fi
export PATH="$tools/node_modules/.bin:$PATH"

# --- npm packages -------------------------------------------------------------
lock_hash=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
stamp="$root/node_modules/.lock-hash"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  log "installing npm packages"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$lock_hash" > "$stamp"
fi
