#!/usr/bin/env bash
# Installs the benchmark's peers (only the bench needs them) once.
set -euo pipefail
cd "$(dirname "$0")"
# srt refuses to start without ripgrep and socat.
missing=()
for p in ripgrep socat hyperfine; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "[bench] installing Debian packages: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
  else
    echo "[bench] missing Debian packages: ${missing[*]} (the srt peer needs ripgrep and socat)" >&2
  fi
fi
if [ ! -x node_modules/.bin/srt ]; then
  echo "[bench] installing the peer @anthropic-ai/sandbox-runtime (srt)" >&2
  npm install --no-audit --no-fund --loglevel=error >&2
fi
