#!/usr/bin/env bash
# `make test`: the browser tests need Chromium (tests/conftest.py launches $CHROMIUM_PATH, default
# /usr/bin/chromium). Installs Debian's `chromium` when it is missing and this runs as root with apt-get;
# otherwise stops with one line saying how to get it.
set -euo pipefail
path="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$path" ] && exit 0

if [ "$path" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Chromium is missing at $path (browser tests): installing Debian's chromium with apt-get…"
  log="$(mktemp)"
  if DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >>"$log" 2>&1 &&
    [ -x "$path" ]; then
    rm -f "$log"
    exit 0
  fi
  tail -n 20 "$log" >&2
  echo "apt-get could not install chromium (its output above, in full in $log)" >&2
  exit 1
fi

if [ "$path" = /usr/bin/chromium ]; then
  echo "Chromium is missing at $path (browser tests): run 'sudo apt-get install chromium' (Debian/Ubuntu)," \
    "or set CHROMIUM_PATH to a Chromium binary" >&2
else
  echo "Chromium is missing at CHROMIUM_PATH=$path (browser tests): point CHROMIUM_PATH at a Chromium binary" \
    "or unset it to use Debian's /usr/bin/chromium" >&2
fi
exit 1
