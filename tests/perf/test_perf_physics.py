"""Speed targets for the basis simulation (run: python -m pytest tests/perf --benchmark-enable).

Targets (issue: physics): whole default basis (ON and OFF, all metabolites) < 60 s on 2 CPU cores;
a cached basis loads in < 1 s.
"""
from mrsbench.physics.basis import load_basis, simulate_basis


def test_bench_full_basis_simulation(benchmark):
    b = benchmark.pedantic(simulate_basis, rounds=1, iterations=1)
    assert len(b.metabolites) == 16


def test_bench_cached_basis_load(benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("MRSBENCH_CACHE", str(tmp_path))
    load_basis()
    b = benchmark(load_basis)
    assert "GABA" in b.lines
