#!/usr/bin/env bash
# Debian's chromium, for the web page's browser test (tests/test_web_page.py drives it with
# Playwright for Python, executable_path=/usr/bin/chromium: Playwright's own browser
# download cannot be reached here). Installed with apt only when missing (idempotent);
# `make test` runs this, so CI (.ci/run → make test) gets it too.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '==> %s\n' "$*"; }
die() { printf 'install-browser: %s\n' "$*" >&2; exit 1; }
# shellcheck source=dev/install.sh
. "$ROOT/dev/install.sh"
apt_install_missing chromium
