"""A thread pool that keeps generator calls and random draws in order (processing of many scans in parallel)."""
from __future__ import annotations


def tqdm_if(it, desc, total=None, enabled=True):
    if not enabled:
        return it
    from tqdm import tqdm
    return tqdm(it, desc=desc, total=total, leave=False)


def worker_threads() -> int:
    """Threads for processing scans in parallel: $MRSBENCH_THREADS (a sweep sets it to the CPUs of its task),
    else the CPUs this process may use."""
    import os
    v = os.environ.get("MRSBENCH_THREADS")
    if v:
        return max(1, int(v))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not on Linux
        return max(1, os.cpu_count() or 1)


_ACTIVE = [0]   # ordered_pool_map calls running: the pool then parallelises over scans


def fft_workers() -> int:
    """scipy.fft workers: all CPUs (-1), or 1 while a pool parallelises over scans."""
    return 1 if _ACTIVE[0] else -1


class single_threaded_libraries:
    """Context: torch's intra-op threads (if torch is imported), the BLAS pools (threadpoolctl) and mrsbench's
    scipy.fft calls limited to one thread each, restored on exit; used while a pool of threads parallelises over
    scans. Library threads on top of the pool's oversubscribe the cores and, spinning while they wait, slow
    everything down: measured on 2 busy cores, a (80 x 4096) @ (4096 x 32) product 8.0 ms with 2 OpenBLAS
    threads against 1.2 ms with 1; 5 physics ``sample`` calls 11.8 s with 2 torch threads against 1.8 s."""

    def __enter__(self):
        import sys
        from threadpoolctl import threadpool_limits
        self._blas = threadpool_limits(1)
        torch = sys.modules.get("torch")
        self._torch = torch.get_num_threads() if torch is not None else None
        if torch is not None:
            torch.set_num_threads(1)
        _ACTIVE[0] += 1
        return self

    def __exit__(self, *exc):
        import sys
        _ACTIVE[0] -= 1
        if self._torch is not None:
            sys.modules["torch"].set_num_threads(self._torch)
        self._blas.restore_original_limits()
        return False


def ordered_pool_map(produce, consume, n_items: int, threads: int | None = None, desc: str | None = None):
    """For k in range(n_items): ``work = produce(k)`` in this thread (in order: generator sampling and random
    draws stay sequential and deterministic), then ``fn(*args)`` of the returned ``(fn, args, extra)`` runs on a
    pool of threads (numpy and scipy.fft release the GIL), and ``consume(k, result, extra)`` is called in order
    of k. At most 2 x threads items are in flight, so memory stays bounded. ``desc``: a progress bar. With
    more than one thread, the numerical libraries run single-threaded meanwhile (:class:`single_threaded_libraries`)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    threads = threads or worker_threads()
    bar = None
    if desc and n_items:
        from tqdm import tqdm
        bar = tqdm(total=n_items, desc=desc, leave=False)

    def done(j, res, extra):
        consume(j, res, extra)
        if bar is not None:
            bar.update(1)
    try:
        if threads <= 1:
            for k in range(n_items):
                fn, args, extra = produce(k)
                done(k, fn(*args), extra)
            return
        with single_threaded_libraries(), ThreadPoolExecutor(threads) as ex:
            q = deque()
            for k in range(n_items):
                fn, args, extra = produce(k)
                q.append((k, ex.submit(fn, *args), extra))
                while len(q) > 2 * threads:
                    done(*_pop(q))
            while q:
                done(*_pop(q))
    finally:
        if bar is not None:
            bar.close()


def _pop(q):
    j, fut, extra = q.popleft()
    return j, fut.result(), extra
