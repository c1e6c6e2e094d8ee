"""The scan pool: order and determinism of the producer, and one thread per library while it runs."""
import numpy as np
import torch
from threadpoolctl import threadpool_info

from mrsbench import pool


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_pool_keeps_order_and_limits_library_threads_while_it_runs():
    torch.set_num_threads(2)
    before_blas, before_fft = _blas_threads(), pool.fft_workers()
    seen, inside = [], []

    def work(k):
        inside.append((torch.get_num_threads(), _blas_threads(), pool.fft_workers()))
        return k * k

    def produce(k):
        inside.append((torch.get_num_threads(), _blas_threads(), pool.fft_workers()))
        return work, (k,), -k

    pool.ordered_pool_map(produce, lambda k, res, extra: seen.append((k, res, extra)), 20, threads=2)
    assert seen == [(k, k * k, -k) for k in range(20)]
    assert all(t == 1 and all(b == 1 for b in blas) and w == 1 for t, blas, w in inside)
    # restored afterwards, also after an error inside
    assert torch.get_num_threads() == 2 and _blas_threads() == before_blas and pool.fft_workers() == before_fft == -1

    def boom(k):
        raise ValueError("x")
    try:
        pool.ordered_pool_map(lambda k: (boom, (k,), None), lambda *a: None, 3, threads=2)
    except ValueError:
        pass
    assert torch.get_num_threads() == 2 and _blas_threads() == before_blas and pool.fft_workers() == -1


def test_fft_with_one_worker_equals_all_workers():
    from mrsbench.axis import SpectralAxis
    ax = SpectralAxis()
    x = np.random.default_rng(0).standard_normal((16, ax.n_points)) + 0j
    a = ax.to_spectrum(x)
    with pool.single_threaded_libraries():
        b = ax.to_spectrum(x)
    assert np.array_equal(a, b)


def test_import_sets_a_short_openmp_spin_unless_the_user_chose_a_policy():
    """Spinning OpenMP threads on busy cores made batched LCM fits 25x slower: importing mrsbench (before torch)
    sets GOMP_SPINCOUNT / KMP_BLOCKTIME, but never overrides a user's OMP_WAIT_POLICY or spin count."""
    import os
    import subprocess
    import sys
    code = "import os, mrsbench; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('KMP_BLOCKTIME'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    run = lambda e: subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True).stdout.split()
    assert run(env) == ["1000", "1"]
    assert run(dict(env, GOMP_SPINCOUNT="5")) == ["5", "1"]
    assert run(dict(env, OMP_WAIT_POLICY="ACTIVE")) == ["None", "None"]



def test_umap_numba_functions_are_cached_on_disk():
    """umap's and pynndescent's numba functions get numba's on-disk cache (compiled once per machine, not
    per process: ~45 s of a fresh process's tiny sweep on one core). Checked by hand: a tiny sweep with
    the cache cold and warm gives identical results files."""
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    from mrsbench._jit import import_umap
    import_umap()
    import umap.umap_ as U
    for f in (U.smooth_knn_dist, U.compute_membership_strengths, U.fuzzy_simplicial_set):
        if isinstance(f, Dispatcher):
            assert not isinstance(f._cache, NullCache), f
    assert not isinstance(U.smooth_knn_dist._cache, NullCache)
