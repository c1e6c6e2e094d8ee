"""The scan pool: order and determinism of the producer, and one thread per library while it runs."""
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from mrsbench.core import parallel as pool


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
    from mrsbench.core.axis import SpectralAxis
    ax = SpectralAxis()
    x = np.random.default_rng(0).standard_normal((16, ax.n_points)) + 0j
    a = ax.to_spectrum(x)
    with pool.single_threaded_libraries():
        b = ax.to_spectrum(x)
    assert np.array_equal(a, b)


def test_the_command_line_sets_a_short_openmp_spin_unless_the_user_chose_a_policy():
    """Spinning OpenMP threads on busy cores made batched LCM fits 25x slower: the command line (before torch)
    sets GOMP_SPINCOUNT / KMP_BLOCKTIME, never overriding a user's OMP_WAIT_POLICY or spin count; importing
    mrsbench sets nothing (tests/test_api.py)."""
    import os
    import subprocess
    import sys
    code = ("import os\nfrom mrsbench.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('KMP_BLOCKTIME'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    run = lambda e: subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True).stdout.split()
    assert run(env)[-2:] == ["1000", "1"]
    assert run(dict(env, GOMP_SPINCOUNT="5"))[-2:] == ["5", "1"]
    assert run(dict(env, OMP_WAIT_POLICY="ACTIVE"))[-2:] == ["None", "None"]


def test_umap_numba_functions_are_cached_on_disk():
    """umap's and pynndescent's numba functions get numba's on-disk cache (compiled once per machine, not
    per process: ~45 s of a fresh process's tiny sweep on one core). Checked by hand: a tiny sweep with
    the cache cold and warm gives identical results files."""
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    from mrsbench.metrics.umap_cache import import_umap
    import_umap()
    import umap.umap_ as U
    for f in (U.smooth_knn_dist, U.compute_membership_strengths, U.fuzzy_simplicial_set):
        if isinstance(f, Dispatcher):
            assert not isinstance(f._cache, NullCache), f
    assert not isinstance(U.smooth_knn_dist._cache, NullCache)


# --- worker processes ------------------------------------------------------------------------------------------

def _square(k):
    return k * k


def _die_in_a_worker(k):
    """Kills the worker process it runs in; here (the caller's recomputation) returns -k."""
    import os
    if pool._ACTIVE[0] and os.environ.get("OMP_NUM_THREADS") == "1" and os.getpid() != _PARENT[0]:
        os._exit(3)
    return -k


_PARENT = [0]


@pytest.fixture
def workers(monkeypatch):
    """Worker processes however few the items (below 16 they start only when already running)."""
    monkeypatch.setenv("MRSBENCH_POOL", "processes")
    monkeypatch.setattr(pool, "_MIN_ITEMS_TO_START", 0)


def test_worker_processes_keep_order_and_give_the_results_of_threads(monkeypatch, workers):
    """The same ordered results from worker processes as from threads; processing's results are bit-identical
    either way (the libraries run single-threaded in both)."""
    from mrsbench.processing import process, process_many
    from conftest import make_scan
    scans = [make_scan(n_per_cond=6, seed=s) for s in range(7)]
    seen = []
    pool.ordered_pool_map(lambda k: (_square, (k,), -k), lambda k, res, extra: seen.append((k, res, extra)), 25,
                          threads=2, processes=True)
    assert seen == [(k, k * k, -k) for k in range(25)]
    import os
    pids = []
    pool.ordered_pool_map(lambda k: (os.getpid, (), None), lambda k, res, _: pids.append(res), 6, threads=2,
                          processes=True)
    assert os.getpid() not in pids   # really in other processes
    by_procs = process_many(scans)
    monkeypatch.setenv("MRSBENCH_POOL", "threads")
    by_threads = process_many(scans)
    # in-process with the libraries single-threaded, as the pool's threads and worker processes run them: the
    # same BLAS reduction order on any machine (with 2+ BLAS threads the last bits may differ)
    with pool.single_threaded_libraries():
        one_by_one = [process(s) for s in scans]
    for a, b, c in zip(by_procs, by_threads, one_by_one):
        for key in ("on", "off", "diff"):
            assert np.array_equal(a.spectra()[key], b.spectra()[key]) and np.array_equal(a.spectra()[key], c.spectra()[key])
        assert np.array_equal(a.freq_hz, c.freq_hz) and a.info == c.info


def test_an_error_in_a_worker_process_reaches_the_caller_as_itself(monkeypatch, workers):
    """A scan that cannot be processed raises the same one-line InputError from a worker process as in-process."""
    from mrsbench.core.scans import Scan
    from mrsbench.core.errors import InputError
    from mrsbench.processing import process_many
    from conftest import make_scan
    good = make_scan(n_per_cond=4)
    fids = good.fids.copy()
    fids[good.edit == 1] = 0   # every ON transient all-zero: dropped, none left
    bad = Scan(fids, good.edit, good.axis, subject="s-bad")
    with pytest.raises(InputError, match="subject s-bad: only 0 usable edit-ON"):
        process_many([good, bad, good])
    assert len(process_many([good, good])) == 2   # the pool is still usable


def test_a_worker_process_that_dies_is_replaced_and_its_item_recomputed(monkeypatch, workers):
    import os
    _PARENT[0] = os.getpid()
    seen = []
    pool.ordered_pool_map(lambda k: (_die_in_a_worker, (k,), None), lambda k, res, _: seen.append(res), 4, threads=2,
                          processes=True)
    assert seen == [0, -1, -2, -3]
    pids = []
    pool.ordered_pool_map(lambda k: (os.getpid, (), None), lambda k, res, _: pids.append(res), 4, threads=2,
                          processes=True)
    assert os.getpid() not in pids   # new workers
    seen.clear()
    pool.ordered_pool_map(lambda k: (_square, (k,), None), lambda k, res, _: seen.append(res), 4, threads=2,
                          processes=True)
    assert seen == [0, 1, 4, 9]


def test_few_items_go_to_threads_unless_workers_are_running(monkeypatch):
    """Starting worker processes costs ~1 s: a handful of items uses threads, unless the workers are running."""
    import os
    monkeypatch.setenv("MRSBENCH_POOL", "processes")
    monkeypatch.setattr(pool, "_LAST_USE", [float("-inf")])
    pids = lambda n: (lambda out: (pool.ordered_pool_map(lambda k: (os.getpid, (), None),
                                                         lambda k, r, _: out.append(r), n, threads=2,
                                                         processes=True), out)[1])([])
    assert set(pids(4)) == {os.getpid()}               # cold, few: threads
    assert os.getpid() not in pids(pool._MIN_ITEMS_TO_START)   # many: the workers start
    assert os.getpid() not in pids(4)                  # running now: used however few


def test_pool_kind_follows_the_environment(monkeypatch):
    import sys
    monkeypatch.setenv("MRSBENCH_POOL", "threads")
    assert pool.pool_kind() == "threads"
    monkeypatch.setenv("MRSBENCH_POOL", "processes")
    assert pool.pool_kind() == ("processes" if sys.platform.startswith("linux") else "threads")
    monkeypatch.setenv("MRSBENCH_POOL", "gpu")
    with pytest.raises(ValueError, match="MRSBENCH_POOL"):
        pool.pool_kind()


def test_process_many_processes_a_scan_once_and_returns_copies(monkeypatch):
    """A scan processed before (same transients, labels, axis and configuration), by an earlier call or given
    by :func:`remember` (as the shared stage does for its subsets), is not processed again; a changed
    configuration or transient is; what comes back are copies equal to process()'s result."""
    import mrsbench.processing.pipeline as pl
    from mrsbench.processing import ProcessingConfig, process_many, remember
    from conftest import make_scan
    monkeypatch.setenv("MRSBENCH_POOL", "threads")   # the counting wrapper below runs in this process
    monkeypatch.setattr(pl, "_MEMO", type(pl._MEMO)())
    calls = []
    real = pl.process
    monkeypatch.setattr(pl, "process", lambda s, cfg=None: calls.append(s.subject) or real(s, cfg))
    a, b, c = (make_scan(n_per_cond=5, subject=n, seed=k) for k, n in enumerate("abc"))
    first = process_many([a, b, a])
    assert calls == ["a", "b"]
    with pool.single_threaded_libraries():   # as the pool's threads run it (same BLAS reduction order anywhere)
        ref_a = real(a).spectra()["diff"]
    assert np.array_equal(first[0].spectra()["diff"], ref_a)
    first[0].on[:] = 0                       # a copy: the remembered result is untouched
    again = process_many([b, a])
    assert calls == ["a", "b"] and np.array_equal(again[1].spectra()["diff"], ref_a)
    remember(c, real(c))
    process_many([c])
    assert calls == ["a", "b"]
    process_many([c], ProcessingConfig(weighted=not ProcessingConfig().weighted))
    changed = make_scan(n_per_cond=5, subject="c2", seed=2)
    changed.fids[0, 0] += 1e-9
    process_many([changed])
    assert calls == ["a", "b", "c", "c2"]


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="worker processes are Linux-only")
def test_worker_processes_exit_when_their_parent_is_killed(tmp_path):
    """A run killed from outside (SIGKILL here) leaves no worker processes behind."""
    import os
    import signal
    import subprocess
    import sys
    import time
    code = ("import os, sys, time\n"
            "from mrsbench.core import parallel as pool\n"
            "pool._MIN_ITEMS_TO_START = 0\n"
            "pids = []\n"
            "pool.ordered_pool_map(lambda k: (os.getpid, (), None), lambda k, r, _: pids.append(r), 4, threads=2, "
            "processes=True)\n"
            "print(' '.join(map(str, sorted(set(pids)))), flush=True)\n"
            "time.sleep(120)\n")
    env = dict(os.environ, MRSBENCH_POOL="processes")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    workers = [int(x) for x in p.stdout.readline().split()]
    assert workers and p.pid not in workers
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    alive = lambda pid: os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read().lower()
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(w) for w in workers)


def test_jackknife_pseudo_values_on_worker_processes_equal_their_definition(workers):
    """The embedding family's delete-one-subject jackknife runs its left-out subjects on the scan pool (worker
    processes with 20 subjects): each pseudo-value is S theta - (S - 1) theta_(-i), with theta_(-i) recomputed
    here one after the other without subject i's rows; equal bit for bit."""
    from functools import partial
    from mrsbench.harness.families.embedding import _pseudo_values, _two_sample_stats
    from mrsbench.core.parallel import single_threaded_libraries
    rng = np.random.default_rng(0)
    S = 20
    subj = np.repeat(np.arange(S), 10)
    A, B = rng.standard_normal((len(subj), 6)), rng.standard_normal((len(subj), 6)) + 0.3
    stats = partial(_two_sample_stats, seed=3)
    with single_threaded_libraries():
        full = stats(A, B)
        got = _pseudo_values(full, stats, A, B, subj, None, S + 1, False)
        for i in range(S):
            loo = stats(A[subj != i], B[subj != i])
            for k, v in full.items():
                assert got[f"embedding.pv.{k}"][i] == S * v - (S - 1) * loo[k], (k, i)
    assert all(np.isnan(got[f"embedding.pv.{k}"][S]) for k in full)   # a subject without rows
