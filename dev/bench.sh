#!/usr/bin/env bash
# `make bench`: every benchmark in tests/bench/, each printing its own table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
set -a; . var/dev.env; set +a
shopt -s nullglob
benches=(tests/bench/bench_*.py)
[ ${#benches[@]} -gt 0 ] || { echo "no benchmarks yet"; exit 0; }
for bench in "${benches[@]}"; do
    echo "==> $bench"
    "$ROOT/.venv/bin/python" "$bench"
done
