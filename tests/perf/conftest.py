"""Benchmarks marked ``heavy`` (minutes each: paper-preset cells, sweeps against sequential runs) run only with
``--benchmark-enable``; the README's plain ``python -m pytest`` (CI) runs the light ones once as smoke tests."""
import pytest


def pytest_collection_modifyitems(config, items):
    if config.getoption("benchmark_disable", False) and not config.getoption("benchmark_enable", False):
        skip = pytest.mark.skip(reason="heavy benchmark: run with --benchmark-enable")
        for item in items:
            if "heavy" in item.keywords:
                item.add_marker(skip)

