#!/usr/bin/env bash
# Print a Python >= 3.13 for the MongoDB stand-in (mongoeco needs it): one on PATH, one
# that pyenv has, or else one that uv installs (uv comes from PyPI into .venv).
set -euo pipefail
ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; }
for candidate in python3.13 python3.14 \
        "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3 \
        /usr/local/bin/python3.13 /usr/bin/python3.13; do
    path=$(command -v "$candidate" 2>/dev/null || true)
    if [ -n "$path" ] && ok "$path"; then echo "$path"; exit 0; fi
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
echo "no Python >= 3.13 found; installing one with uv" >&2
"$ROOT/.venv/bin/pip" install -q uv==0.13.8 >&2
"$ROOT/.venv/bin/uv" python install 3.13 >&2
"$ROOT/.venv/bin/uv" python find 3.13
