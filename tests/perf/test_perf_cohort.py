"""Speed/memory targets for cohort generation (issue: embedded default dataset).

simgaba-small < 10 s; simgaba (12 x 12 subjects) < 60 s and < 4 GB on 2 CPU cores. Bases are
cached before timing (their one-off simulation is measured in test_perf_physics).
"""
import resource

import pytest

from mrsbench.data.simulate import _bases
from mrsbench.data.datasets import dataset_config
from mrsbench.data.simulate import simulate_cohort


def test_bench_simgaba_small(benchmark):
    cfg = dataset_config("simgaba-small")
    _bases(cfg)
    cohort, _ = benchmark.pedantic(simulate_cohort, args=(cfg,), rounds=1, iterations=1)
    assert len(cohort) == 12


@pytest.mark.heavy
def test_bench_simgaba_full(benchmark):
    cfg = dataset_config("simgaba")
    _bases(cfg)
    cohort, _ = benchmark.pedantic(simulate_cohort, args=(cfg,), rounds=1, iterations=1)
    assert len(cohort) == 144
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    benchmark.extra_info["peak_rss_gb"] = peak_gb
    print(f"peak RSS {peak_gb:.2f} GB")
    assert peak_gb < 4.0
