"""Large arrays go back to the operating system when freed (glibc's malloc, where it is the allocator).

glibc serves an allocation above ``M_MMAP_THRESHOLD`` with its own ``mmap`` and
unmaps it on ``free``, but by default it raises that threshold to the size of
each large block freed (up to 32 MiB on 64-bit), after which map-sized arrays
come from the heap arenas, where freed space stays resident and is split
between threads. A run makes and frees many map-sized arrays on several
threads (bands, PNG encoding): measured on a 4096x4096 ``poolcli run``, peak
RSS 329-437 MiB depending on how the threads interleaved, and 294-296 MiB with
the threshold fixed at 1 MiB (what ``MALLOC_MMAP_THRESHOLD_=1048576`` does).
Fixing it is what this module does, once per process; elsewhere (musl, macOS,
Windows) nothing.
"""

from __future__ import annotations

import os
import sys

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_done = False


def bound_heap(threshold: int = 1 << 20) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (unless the user set one); True when it was set."""
    global _done
    if _done or not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    _done = True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (ImportError, OSError, AttributeError):  # not glibc (or no ctypes): malloc as it is
        return False
