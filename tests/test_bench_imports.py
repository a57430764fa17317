"""`make bench` is not run by CI; at least every benchmark must still import (its helpers
come from the tests, which change)."""

import importlib.util
from pathlib import Path

import pytest

BENCHES = sorted((Path(__file__).parent / "bench").glob("bench_*.py"))


def test_there_are_benchmarks():
    assert {p.stem for p in BENCHES} >= {"bench_gateway", "bench_converter", "bench_flow"}


@pytest.mark.parametrize("path", BENCHES, ids=[p.stem for p in BENCHES])
def test_each_benchmark_imports(path):
    spec = importlib.util.spec_from_file_location(f"_bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # runs module level only: main() is behind __main__
    assert callable(module.main)
