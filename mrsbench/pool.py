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


def ordered_pool_map(produce, consume, n_items: int, threads: int | None = None, desc: str | None = None):
    """For k in range(n_items): ``work = produce(k)`` in this thread (in order: generator sampling and random
    draws stay sequential and deterministic), then ``fn(*args)`` of the returned ``(fn, args, extra)`` runs on a
    pool of threads (numpy and scipy.fft release the GIL), and ``consume(k, result, extra)`` is called in order
    of k. At most 2 x threads items are in flight, so memory stays bounded. ``desc``: a progress bar."""
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
        with ThreadPoolExecutor(threads) as ex:
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
