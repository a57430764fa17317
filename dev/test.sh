#!/usr/bin/env bash
# `make test`: each folder's unit tests with that folder as the import root, then the
# black-box system tests in tests/, all against the stack `make run` started.
# `make unit` (dev/test.sh --unit): the same suites without the tests marked `stack` (and,
# in tests/, `tools`): no stack, no root, no network, only .venv.
# Every suite runs even when one fails; the exit code says whether all passed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
unit_args=() system_unit_args=()
if [ "${1:-}" = --unit ]; then
    shift
    unit_args=(-m "not stack")
    system_unit_args=(-m "not stack and not tools")
else
    set -a; . var/dev.env; set +a
fi
PYTEST="$ROOT/.venv/bin/pytest"
failed=()
ran=0
passed_total=0
failed_total=0
skipped_total=0
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT

count() { # WORD LINE: the number before WORD in pytest's closing line, else 0
    local n
    n=$(grep -oE "[0-9]+ $1" <<<"$2" | head -n 1 | cut -d' ' -f1)
    echo "${n:-0}"
}

run_suite() { # NAME DIR PYTEST-ARGS...
    local name=$1 dir=$2; shift 2
    echo "==> $name"
    (cd "$dir" && "$PYTEST" "$@") | tee "$summary"
    local status=${PIPESTATUS[0]} last
    last=$(grep -E '^=*[ ]*[0-9]+ (passed|failed)|^[0-9]+ (passed|failed|skipped)' "$summary" | tail -n 1)
    passed_total=$((passed_total + $(count passed "$last")))
    failed_total=$((failed_total + $(count failed "$last") + $(count error "$last")))
    skipped_total=$((skipped_total + $(count skipped "$last")))
    case $status in
        0) ran=$((ran + 1)) ;;
        5) echo "    (no tests in $name)" ;;
        *) failed+=("$name") ;;
    esac
}

for dir in common auth gateway converter notification mp3c; do
    [ -d "$dir/tests" ] && run_suite "$dir unit tests" "$dir" -q -p no:cacheprovider \
        ${unit_args[@]+"${unit_args[@]}"} tests
done
run_suite "system tests" "$ROOT" -q -p no:cacheprovider \
    ${system_unit_args[@]+"${system_unit_args[@]}"} tests "$@"

status=0
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    status=1
elif [ $ran -eq 0 ]; then
    echo "no test ran"
    status=1
else
    echo "all $ran suites passed"
fi
# Last, the one line that sums every suite up.
echo "total: $passed_total passed, $failed_total failed, $skipped_total skipped"
exit $status
