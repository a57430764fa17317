#!/usr/bin/env bash
# `make test`: each folder's unit tests with that folder as the import root, then the
# black-box system tests in tests/, all against the stack `make run` started.
# Every suite runs even when one fails; the exit code says whether all passed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
set -a; . var/dev.env; set +a
PYTEST="$ROOT/.venv/bin/pytest"
failed=()
ran=0

run_suite() { # NAME DIR PYTEST-ARGS...
    local name=$1 dir=$2; shift 2
    echo "==> $name"
    (cd "$dir" && "$PYTEST" "$@")
    case $? in
        0) ran=$((ran + 1)) ;;
        5) echo "    (no tests in $name)" ;;
        *) failed+=("$name") ;;
    esac
}

for dir in common auth gateway converter notification; do
    [ -d "$dir/tests" ] && run_suite "$dir unit tests" "$dir" -q -p no:cacheprovider tests
done
run_suite "system tests" "$ROOT" -q -p no:cacheprovider tests "$@"

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
[ $ran -gt 0 ] || { echo "no test ran"; exit 1; }
echo "all suites passed ($ran)"
