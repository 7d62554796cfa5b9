#!/usr/bin/env bash
# Make sure Debian's chromium is there for the browser tests (tests/test_report_pages.py).
# Installed? Nothing to do. Root with apt-get? Install it from Debian's packages (no browser download
# of its own). Neither? Say so: the browser tests then skip, except under CI=true, where they fail.
set -euo pipefail

BROWSER="${KIS_CHROMIUM:-/usr/bin/chromium}"

if [[ -x "$BROWSER" ]]; then
    exit 0
fi
if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
    echo "Installing Debian's chromium for the browser tests..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
    echo "Installed $("$BROWSER" --version 2>/dev/null || echo chromium)"
    exit 0
fi
echo "Note: $BROWSER not found and not root: the headless-browser tests will skip (apt-get install chromium)"
