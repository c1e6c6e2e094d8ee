"""Speed (issue: generators): VAE training on simgaba-small (quick preset) < 60 s on 2 CPU cores; issue 17: the
flow trains on simgaba-small in <= 3 min on 2 CPU cores; samples per second for each generator (reported in
extra_info)."""
import numpy as np
import pytest

from mrsbench.generators import registry
from mrsbench.data.datasets import load_dataset


@pytest.fixture(scope="module")
def split():
    c = load_dataset("simgaba-small", progress=False)
    sp = c.split(0)
    return c.subset(sp.train), c.subset(sp.val), c.subset(sp.test)


# the flow's full training takes ~3 min: heavy (run with --benchmark-enable; its fitting is covered by
# tests/test_new_generators.py), which keeps CI's suite well inside its 20 minutes
@pytest.mark.parametrize("name", ["vae", "vae-noise", pytest.param("flow", marks=pytest.mark.heavy)])
def test_bench_training(benchmark, split, name):
    """One training on simgaba-small's seed-0 split (the quick preset trains one per fold)."""
    tr, va, _ = split
    g = benchmark.pedantic(lambda: registry.get(name)().fit(tr, seed=0, val=va), rounds=1, iterations=1)
    assert g.history
    last = g.history[-1]
    benchmark.extra_info["stopped_at"] = last.get("step", last.get("epoch"))
    print(f"\n{name} training: {benchmark.stats.stats.mean:.1f} s" if benchmark.stats else "")


@pytest.mark.parametrize("name", ["vae", "vae-noise", "flow", "pca", "physics"])
def test_bench_samples_per_second(benchmark, split, name):
    tr, va, te = split
    kw = {"vae": {"epochs": 2}, "vae-noise": {"epochs": 2}, "flow": {"steps_train": 20}, "pca": {},
          "physics": {}}[name]
    g = registry.get(name)(**kw).fit(tr, seed=0, val=va)
    cond = te.scans[0].select(np.arange(80))
    n = 140
    benchmark.pedantic(g.sample, args=(n,), kwargs={"condition": cond, "seed": 0}, rounds=3, iterations=1)
    if benchmark.stats:
        benchmark.extra_info["samples_per_second"] = 2 * n / benchmark.stats.stats.mean
        print(f"\n{name}: {2 * n / benchmark.stats.stats.mean:.0f} transients/s")
