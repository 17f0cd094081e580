"""The deflate compressor behind every PNG poolcli writes.

With the ``fast`` extra (``pip install 'poolcli[fast]'``: the ``isal`` package,
Intel's ISA-L) PNG rows are compressed by ISA-L's level 2; without it by the
standard library's zlib at level 1. Both write standard zlib streams: the
decoded pixels are the same, only the bytes (and the file size) differ.

Measured on this project's 2-core machine (``benchmarks/bench.py --only png``):
a 1740x674 RGB montage, 3.3 ms and 536 kB with ISA-L against 13.5 ms and
416 kB with zlib; a 512x512 gray Sobel map 0.3 ms against 2.4 ms, the same
size. Set ``POOLCLI_DEFLATE=zlib`` to use zlib although ``isal`` is installed.
"""

from __future__ import annotations

import os
import zlib

try:  # the `fast` extra
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - depends on the installation
    _isal = None

__all__ = ["compressor", "backend"]


def backend() -> str:
    """``"isal"`` or ``"zlib"``: the compressor :func:`compressor` gives."""
    return "isal" if _isal is not None and os.environ.get("POOLCLI_DEFLATE", "").lower() != "zlib" else "zlib"


def compressor(gray: bool):
    """A fresh compress object (``compress`` / ``flush``) for the rows of one PNG.

    ``gray``: rows of a grayscale image stored unfiltered, for which zlib's
    run-length strategy is both faster and smaller (ISA-L has no strategies).
    """
    if backend() == "isal":
        return _isal.compressobj(2)
    return zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE if gray else zlib.Z_DEFAULT_STRATEGY)
