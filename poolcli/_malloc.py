"""Large arrays go back to the operating system when freed, small ones are reused (glibc's malloc).

glibc serves an allocation above ``M_MMAP_THRESHOLD`` with its own ``mmap`` and
unmaps it on ``free``, but by default it raises that threshold to the size of
each large block freed (up to 32 MiB on 64-bit), after which map-sized arrays
come from the heap arenas, where freed space stays resident and is split
between threads. A run makes and frees many map-sized arrays on several
threads (bands, PNG encoding): measured on a 4096x4096 ``poolcli run``, peak
RSS 329-437 MiB depending on how the threads interleaved, and 294-296 MiB with
the threshold fixed at 1 MiB.

A fixed threshold alone has a cost: it also fixes the heap's trim threshold at
128 KiB, so every freed block at the top of the heap goes back to the system
and the next array faults its pages in again (a 200-image 512x512 batch: 2.6
million page faults, 5.5 s of system time for 7.9 s of wall time). So the
threshold is 4 MiB (larger arrays: mmap, returned on free) and the trim
threshold 64 MiB (the heap keeps what it reused): the same batch 42,000 page
faults, 1.75 s system, 5.8 s wall; an 8192x8192 run 870 MiB peak, 5.8-6.6 s
against 835 MiB and 8.6 s.

This module sets both, once per process, unless the user set
``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``; elsewhere (musl,
macOS, Windows) nothing.
"""

from __future__ import annotations

import os
import sys

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers
_M_MMAP_THRESHOLD = -3
_done = False


def bound_heap(threshold: int = 4 << 20, trim: int = 64 << 20) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes and its trim threshold at ``trim`` (unless the
    user set either); True when it was set."""
    global _done
    user_set = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ)
    if _done or not sys.platform.startswith("linux") or user_set:
        return False
    _done = True
    try:
        import ctypes

        # the process's own symbols (glibc's among them): ctypes.util.find_library("c") runs `ldconfig -p`
        # in a subprocess, in every worker process (about 5 ms each)
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim))
    except (ImportError, OSError, AttributeError):  # not glibc (or no ctypes): malloc as it is
        return False
