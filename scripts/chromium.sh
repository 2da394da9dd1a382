#!/usr/bin/env bash
# Makes sure a Chromium exists for the browser tests (test/web, playwright-core): Debian's `chromium` package,
# installed with apt-get when missing (as root; the package lists are refreshed only when an install from the
# current ones fails). Never downloads a browser build of its own (no `playwright install`).
# CLIPSTREAM_CHROMIUM names another binary; the tests fail with this script's name when none is found.
set -uo pipefail
browser="${CLIPSTREAM_CHROMIUM:-/usr/bin/chromium}"
[ -x "$browser" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "chromium: installing Debian's chromium for the browser tests (apt-get) …" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } ||
    echo "chromium: apt-get install chromium failed: the browser tests will fail" >&2
else
  echo "chromium: $browser not found and not root: install Debian's chromium (apt-get install chromium) for the browser tests" >&2
fi
exit 0
