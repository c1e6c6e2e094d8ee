from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.scans import Scan

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared not present (only in the development checkout)")
    return SHARED


def make_scan(n_per_cond: int = 4, subject: str = "s1", site: str = "A", seed: int = 0,
              axis: SpectralAxis | None = None) -> Scan:
    """A small synthetic edited scan: NAA singlet at 2.008 ppm, smaller in ON (as the 1.9 ppm
    editing pulse partly inverts it), plus complex noise."""
    ax = axis or SpectralAxis()
    rng = np.random.default_rng(seed)
    t = ax.time
    base = np.exp(2j * np.pi * ax.ppm_to_hz(2.008) * t - t / 0.1)
    noise = lambda: 0.01 * (rng.normal(size=(n_per_cond, ax.n_points)) + 1j * rng.normal(size=(n_per_cond, ax.n_points)))
    return Scan.from_on_off(0.5 * base + noise(), base + noise(), ax, subject=subject, site=site)


def pytest_collection_modifyitems(config, items):
    """Benchmarks marked ``heavy`` (minutes each: paper-preset cells, sweeps against sequential runs) run only
    with ``--benchmark-enable``; the README's plain ``python -m pytest`` (CI) runs the light ones once."""
    if config.getoption("benchmark_disable", False) and not config.getoption("benchmark_enable", False):
        skip = pytest.mark.skip(reason="heavy benchmark: run with --benchmark-enable")
        for item in items:
            if "heavy" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="module")
def small_split():
    """simgaba-small's seed-0 train/validation/test cohorts (generator tests)."""
    from mrsbench.data.datasets import load_dataset
    c = load_dataset("simgaba-small", progress=False)
    sp = c.split(0)
    return c.subset(sp.train), c.subset(sp.val), c.subset(sp.test)
