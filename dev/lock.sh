#!/usr/bin/env bash
# `make lock`: one hash-locked requirements file per image (SERVICE/requirements.lock),
# every package pinned transitively with the sha256 of each of its files on PyPI, and the
# same versions written back into constraints.txt, so that the dev venv (which installs
# with -c constraints.txt) runs what the images run.
#
# Inputs: SERVICE/requirements.txt, mp3common with the extras of SERVICE/common-extras.txt,
# and setuptools (the Dockerfiles build ./common with it, without build isolation); the
# versions of the hand-written part of constraints.txt (above its generated block) hold.
# uv (requirements-deploy.txt, in .venv-deploy) resolves for CPython 3.11 on Linux, what the
# images run. Run again after changing a pin in constraints.txt or a requirements.txt:
# tests/test_locks.py fails while a lock and its inputs disagree.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
UV=${UV:-.venv-deploy/bin/uv}
SERVICES=(auth gateway converter notification)
MARKER="# --- locked by \`make lock\`"
[ -x "$UV" ] || { echo "lock: no $UV; run 'make deploy-tools'" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The hand-written constraints: everything above the generated block.
sed "/^$MARKER/,\$d" constraints.txt >"$work/hand.txt"

for service in "${SERVICES[@]}"; do
    printf -- '-r %s/%s/requirements.txt\n%s/common[%s]\nsetuptools\n' \
        "$ROOT" "$service" "$ROOT" "$(tr -d ' \n' <"$service/common-extras.txt")" >"$work/$service.in"
    "$UV" pip compile --quiet --generate-hashes --no-emit-package mp3common \
        --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
        --custom-compile-command "make lock" --no-annotate \
        -c "$work/hand.txt" -o "$work/$service.lock" "$work/$service.in"
    # uv names the temporary input in its header; say what it stood for.
    { echo "# The $service image's every package, pinned with hashes: made by \`make lock\` (dev/lock.sh)"
      echo "# from $service/requirements.txt, mp3common[$(tr -d ' \n' <"$service/common-extras.txt")] and setuptools; installed"
      echo "# with pip install --require-hashes --no-deps. Do not edit by hand."
      grep -v '^#' "$work/$service.lock"; } >"$service/requirements.lock"
    echo "lock: $service/requirements.lock ($(grep -c '^[a-z0-9]' "$service/requirements.lock") packages)"
done

# Every locked version, once, in constraints.txt's generated block: the ones the
# hand-written part pins already are left out (they are the same, by construction).
{
    cat "$work/hand.txt"
    [ -z "$(tail -c 1 "$work/hand.txt" | tr -d '\n')" ] && [ -n "$(tail -n 1 "$work/hand.txt")" ] && echo
    echo "$MARKER from the images' locks (SERVICE/requirements.lock); do not edit ---------"
    echo "# What the services' packages bring with them, as the images install it: the dev venv"
    echo "# gets the same versions."
    for service in "${SERVICES[@]}"; do grep -oE '^[a-z0-9._-]+==[^ ]+' "$service/requirements.lock"; done \
        | sort -u | while IFS='=' read -r name _ version; do
            grep -qiE "^${name//[._-]/[._-]}==" "$work/hand.txt" || echo "$name==$version"
        done
} >"$work/constraints.txt"
mv "$work/constraints.txt" constraints.txt
echo "lock: constraints.txt's generated block updated"
