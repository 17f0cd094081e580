"""The thread pool the numeric cores share (NumPy ufuncs release the GIL).

Work is split into bands that each read about an L2 cache of input; with one
thread, or few bands, they run in the calling thread.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import numpy as np

_threads: int | None = None
_pool: ThreadPoolExecutor | None = None


def set_num_threads(n: int | None) -> None:
    """Threads the numeric cores use (None: ``POOLCLI_THREADS`` or the number of cores; 1: none)."""
    global _threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be an int >= 1 or None, got {n!r}")
    _threads = n


def get_num_threads() -> int:
    if _threads is not None:
        return _threads
    env = os.environ.get("POOLCLI_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


_stop = threading.Event()  # set when Ctrl-C / SIGTERM reached the main thread: queued bands are skipped


def run_tasks(fn: Callable[..., Any], tasks: Iterable[tuple], parallel: bool = True) -> None:
    """Call ``fn(*task)`` for every task, on the shared pool when that can help.

    A KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one) while the bands
    run cancels the bands not yet started and returns at once: the bands
    running finish on their own (a band is about an L2 cache of work), so one
    signal stops even a long compute within a band's time.
    """
    global _pool
    tasks = list(tasks)
    n = min(get_num_threads(), len(tasks))
    if not parallel or n <= 1:
        for t in tasks:
            fn(*t)
        return
    if _pool is None or _pool._max_workers != n:  # noqa: SLF001
        _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="poolcli")
    _stop.clear()
    futures = [_pool.submit(_unless_stopped, fn, t) for t in tasks]
    try:
        for f in futures:
            f.result()
    except KeyboardInterrupt:
        _stop.set()
        for f in futures:
            f.cancel()
        raise


def stopped() -> bool:
    """Whether a signal stopped the bands while some may still run on the pool's threads.

    The bands running then finish on their own; a process that is ending
    should not wait for them (``os._exit`` after flushing its output): joining
    those threads at interpreter exit is what kept a stopped run alive, and a
    second Ctrl-C during that join printed a threading traceback.
    """
    return _pool is not None and _stop.is_set()


def _unless_stopped(fn: Callable[..., Any], task: tuple) -> None:
    if not _stop.is_set():
        fn(*task)


_local = threading.local()


def scratch(key: str, shape: tuple, dtype) -> np.ndarray:
    """A per-thread work buffer, reused across bands.

    Bands allocate the same few shapes over and over; fresh allocations of
    this size come from mmap and are page-faulted in on every touch, which
    measured slower than the arithmetic itself. Contents are undefined.
    """
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    dtype = np.dtype(dtype)
    buf = cache.get(key)
    size = math.prod(shape)  # np.prod of a few ints: 3 us against 0.09 (measured), 46 calls per 512x512 image
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = cache[key] = np.empty(max(size, 1), dtype=dtype)
    return buf[:size].reshape(shape)
