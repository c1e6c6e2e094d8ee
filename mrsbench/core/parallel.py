"""A pool that keeps generator calls and random draws in order (processing of many scans in parallel): worker
processes where the work is a picklable module-level function (processing is mostly many small numpy calls,
which a pool of threads serialises on the GIL), else threads."""
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


def pool_kind() -> str:
    """"processes" (the default on Linux) or "threads" (elsewhere, or $MRSBENCH_POOL=threads): what runs the
    work of :func:`ordered_pool_map` calls that allow processes."""
    import os
    import sys
    v = os.environ.get("MRSBENCH_POOL", "").strip().lower()
    if v in ("threads", "processes"):
        return v if (v == "threads" or sys.platform.startswith("linux")) else "threads"
    if v:
        raise ValueError(f"MRSBENCH_POOL must be 'threads' or 'processes', not {v!r}")
    return "processes" if sys.platform.startswith("linux") else "threads"


# Worker processes: joblib's loky executor (joblib comes with scikit-learn). Its workers are fresh interpreters
# that do not re-run the user's __main__ (multiprocessing's spawn and forkserver re-import it: an unguarded
# script would start itself again) and are not forks of this process (a fork would inherit locks held by its
# other threads, torch's among them). One executor per process, reused (workers started once, ~1 s, and stopped
# after a minute idle); rebuilt when another number of workers is asked for or a worker died.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_IDLE_S = 60


def _worker_init(parent_pid: int):
    """One thread per library in a worker (the workers are the parallelism), as :class:`single_threaded_libraries`,
    and a watch on the process that started it: a worker whose parent is gone (killed with SIGTERM or SIGKILL,
    which loky's workers otherwise outlive, blocked on their queue) exits within a second."""
    import threading
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    _ACTIVE[0] += 1
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int, every_s: float = 1.0):
    import os
    import time
    while os.getppid() == parent_pid:
        time.sleep(every_s)
    os._exit(0)


# Starting the workers costs ~0.5-1 s (interpreters and imports, on the same cores): a call with fewer items than
# this while no workers are running uses threads (measured: 6 random 40-transient subsets processed in 0.74 s
# by freshly started workers, 0.33 s on threads)
_MIN_ITEMS_TO_START = 16
_LAST_USE = [float("-inf")]   # time.monotonic() of the last call that used the workers


def _process_pool(n: int, n_items: int):
    """The reusable executor, or None where starting its workers would cost more than they save."""
    import os
    import time
    now = time.monotonic()
    if n_items < _MIN_ITEMS_TO_START and now - _LAST_USE[0] > _IDLE_S - 5:
        return None
    from joblib.externals.loky import get_reusable_executor
    ex = get_reusable_executor(max_workers=n, timeout=_IDLE_S, initializer=_worker_init, initargs=(os.getpid(),),
                               env=_WORKER_ENV)
    _LAST_USE[0] = now
    return ex


def ordered_pool_map(produce, consume, n_items: int, threads: int | None = None, desc: str | None = None,
                     processes: bool = False):
    """For k in range(n_items): ``work = produce(k)`` in this thread (in order: generator sampling and random
    draws stay sequential and deterministic), then ``fn(*args)`` of the returned ``(fn, args, extra)`` runs on a
    pool, and ``consume(k, result, extra)`` is called in order of k. At most 2 x threads items are in flight, so
    memory stays bounded. ``desc``: a progress bar. The pool: with ``processes`` (``fn`` a module-level function,
    its arguments and result picklable) ``threads`` worker processes where :func:`pool_kind` allows, else threads
    (numpy and scipy.fft release the GIL, but processing's many small calls mostly hold it: measured on 2 cores,
    200 random subsets of a scan processed in 4.9 s by 2 processes, 7.0 s by 2 threads, 8.1 s in one thread).
    Results are the same either way: with more than one worker the numerical libraries run single-threaded in
    them and here (:class:`single_threaded_libraries`). A worker process that dies is replaced and its item
    recomputed here. Fewer than 16 items while no workers are running go to threads (starting them costs ~0.5-1 s)."""
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
        ex = None
        if processes and pool_kind() == "processes":
            try:
                ex = _process_pool(threads, n_items)
            except (OSError, ImportError, NotImplementedError):   # no process support here (no POSIX semaphores)
                ex = None
        use_procs = ex is not None
        with single_threaded_libraries():
            ex = ex or ThreadPoolExecutor(threads)
            q = deque()
            try:
                for k in range(n_items):
                    fn, args, extra = produce(k)
                    q.append((k, _submit(ex, fn, args), extra, fn, args))
                    while len(q) > 2 * threads:
                        done(*_pop(q))
                while q:
                    done(*_pop(q))
            finally:
                if not use_procs:
                    ex.shutdown(wait=True)
                else:
                    import time
                    _LAST_USE[0] = time.monotonic()
                    for item in q:   # after an error: drop what is still queued (the pool stays for the next call)
                        item[1].cancel()
    finally:
        if bar is not None:
            bar.close()


def _submit(ex, fn, args):
    """``ex.submit(fn, *args)``; where the process pool is broken, ``fn(*args)`` computed here."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool
    try:
        return ex.submit(fn, *args)
    except BrokenProcessPool:
        fut = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001  (re-raised by result(), as a worker's error would be)
            fut.set_exception(e)
        return fut


def _pop(q):
    from concurrent.futures.process import BrokenProcessPool
    j, fut, extra, fn, args = q.popleft()
    try:
        res = fut.result()
    except BrokenProcessPool:   # a worker died (killed, out of memory): recomputed here; the executor is rebuilt
        res = fn(*args)         # on next use
    return j, res, extra


def openmp_defaults() -> None:
    """A short OpenMP spin for torch's CPU thread pool, set by mrsbench's own entry points (the command line,
    :func:`mrsbench.evaluate`, the harness) before torch is imported, never by ``import mrsbench``.

    mrsbench runs torch next to other jobs: with libgomp's default spin (300000), 96 batched LCM fits ran at 1.6
    fits/s with 2 torch threads on 2 busy cores; with a spin count of 1000, 39 fits/s (1 thread: 33); on idle
    cores 92-95 fits/s either way. GOMP_SPINCOUNT is libgomp's (Linux torch wheels), KMP_BLOCKTIME (ms) LLVM
    libomp's; both are read when torch loads its OpenMP runtime, so nothing is set once torch is imported, nor
    when the user chose a wait policy (OMP_WAIT_POLICY) or set either variable."""
    import os
    import sys
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")
    os.environ.setdefault("KMP_BLOCKTIME", "1")
