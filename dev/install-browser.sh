#!/usr/bin/env bash
# A Chromium for the web page's browser test (tests/test_web_page.py drives it with
# Playwright for Python, executable_path: Playwright's own browser download cannot be
# reached here). One already on PATH is used (the test looks in the same order); else
# Debian's `chromium` is installed with apt (idempotent). `make test` runs this, so CI
# (.ci/run → make test) gets it too; a GitHub runner has google-chrome already.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '==> %s\n' "$*"; }
die() { printf 'install-browser: %s\n' "$*" >&2; exit 1; }
# shellcheck source=dev/install.sh
. "$ROOT/dev/install.sh"
for browser in chromium google-chrome-stable google-chrome; do
    if command -v "$browser" >/dev/null; then
        say "browser for the page's test: $(command -v "$browser")"
        exit 0
    fi
done
apt_install_missing chromium
