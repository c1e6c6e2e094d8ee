"""Speed target (issue: harness): `mrsbench run --model vae` with the quick preset under 3 minutes on
2 CPU cores (the wall time is also recorded in results.json)."""
from mrsbench.harness import run


def test_bench_run_vae_quick(benchmark, tmp_path):
    results, run_dir = benchmark.pedantic(run, args=("vae",), kwargs={"preset": "quick", "out": tmp_path,
                                                                        "progress": False, "track": False},
                                          rounds=1, iterations=1)
    benchmark.extra_info["wall_time_s"] = results["wall_time_s"]
    assert results["wall_time_s"]["total"] > 0
