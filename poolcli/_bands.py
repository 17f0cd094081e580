"""The one banded engine and the one padding routine of the numeric cores.

Knows: how to split (P, H, W) work into bands of output rows that each read
about an L2 cache of input (:func:`plan_bands`, :func:`run_bands`, on the
thread pool of :mod:`poolcli._threads`), and how to read a region of planes
that reaches past their edges under a boundary mode (:func:`extend`,
:func:`pad`, :func:`index_map`). Used by pooling (torch ops, the family,
anti-aliasing) and by :mod:`poolcli.filters`.

Boundary modes (scipy.ndimage names; for an input row ``a b c d``):

- ``constant``: ``k k | a b c d | k k`` with ``k = fill``;
- ``wrap`` (also spelt ``circular``): ``c d | a b c d | a b``;
- ``reflect``: ``b a | a b c d | d c`` (the edge repeated; NumPy ``symmetric``);
- ``mirror``: ``c b | a b c d | c b`` (PyTorch ``ReflectionPad``; NumPy ``reflect``);
- ``nearest``: ``a a | a b c d | d d`` (PyTorch ``replicate``).

Padding only copies values, so every mode gives the same numbers whether a
region is read whole or band by band.

Imports: numpy and :mod:`poolcli._threads` only (no I/O).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._threads import get_num_threads, run_tasks, scratch, set_num_threads

__all__ = [
    "BAND_BYTES",
    "accumulate",
    "PAD_MODES",
    "index_map",
    "extend",
    "pad",
    "plan_bands",
    "run_bands",
    "get_num_threads",
    "set_num_threads",
    "scratch",
]

# Measured on this project's 2-core machines (benchmarks/): bands whose input
# fits in L2 run 2x2/stride-2 max on 4096^2 at about one memcpy of the input,
# where whole-array passes with strided inner loops took ~3x that; the filters'
# 3x3 kernels likewise. Best of 128 KiB..2 MiB. Read at call time (tests
# shrink it to force many bands).
BAND_BYTES = 1 << 20

PAD_MODES = ("constant", "wrap", "circular", "reflect", "mirror", "nearest")

# Arrays this large (elements) are worth the thread pool.
_PARALLEL_SIZE = 1 << 16


def index_map(idx: np.ndarray, n: int, mode: str) -> np.ndarray:
    """The source index in ``[0, n)`` of each (possibly out-of-range) index under a boundary mode.

    >>> index_map(np.arange(-2, 6), 4, "mirror")
    array([2, 1, 0, 1, 2, 3, 2, 1])
    >>> index_map(np.arange(-2, 6), 4, "reflect")
    array([1, 0, 0, 1, 2, 3, 3, 2])
    """
    if mode == "nearest":
        return np.clip(idx, 0, n - 1)
    if mode in ("wrap", "circular"):
        return idx % n
    if mode == "reflect":  # d c b a | a b c d | d c b a
        m = idx % (2 * n)
        return np.where(m < n, m, 2 * n - 1 - m)
    if mode == "mirror":  # d c b | a b c d | c b a
        if n == 1:
            return np.zeros_like(idx)
        period = 2 * n - 2
        m = idx % period
        return np.where(m < n, m, period - m)
    raise ValueError(f"mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")


def extend(
    planes: np.ndarray,
    rows: tuple[int, int],
    cols: tuple[int, int],
    mode: str = "constant",
    fill: float = 0.0,
    *,
    key: str | None = None,
) -> np.ndarray:
    """Rows ``rows[0]:rows[1]`` and columns ``cols[0]:cols[1]`` of (P, H, W) planes extended by ``mode``.

    Indices may lie outside the planes (negative or past the end); those
    values come from the boundary mode (``fill`` for ``constant``). A view of
    ``planes`` when the region lies inside. With ``key`` the result is written
    into the calling thread's scratch buffer of that name (valid until the
    next call with the same key: for bands); without, it is a new array.

    >>> extend(np.arange(3.0)[None, None], (0, 1), (-2, 5), "wrap")
    array([[[1., 2., 0., 1., 2., 0., 1.]]])
    """
    p, h, w = planes.shape
    (r0, r1), (c0, c1) = rows, cols
    if r0 >= 0 and r1 <= h and c0 >= 0 and c1 <= w:
        return planes[:, r0:r1, c0:c1]
    shape = (p, r1 - r0, c1 - c0)
    if mode == "constant":
        buf = scratch(key, shape, planes.dtype) if key else np.empty(shape, planes.dtype)
        buf.fill(fill)
        lo, hi, left, right = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
        if hi > lo and right > left:
            buf[:, lo - r0 : hi - r0, left - c0 : right - c0] = planes[:, lo:hi, left:right]
        return buf
    if r0 >= 0 and r1 <= h:
        sub = planes[:, r0:r1]
    else:
        sub = planes[:, index_map(np.arange(r0, r1), h, mode)]
    if c0 >= 0 and c1 <= w:
        return sub[:, :, c0:c1]
    buf = scratch(key, shape, planes.dtype) if key else np.empty(shape, planes.dtype)
    idx = np.arange(c0, c1)
    inside = (idx >= 0) & (idx < w)
    n_left = int(np.argmax(inside)) if inside.any() else len(idx)
    n_mid = int(inside.sum())
    if n_left:
        buf[:, :, :n_left] = sub[:, :, index_map(idx[:n_left], w, mode)]
    if n_mid:
        buf[:, :, n_left : n_left + n_mid] = sub[:, :, idx[n_left] : idx[n_left] + n_mid]
    if n_left + n_mid < len(idx):
        buf[:, :, n_left + n_mid :] = sub[:, :, index_map(idx[n_left + n_mid :], w, mode)]
    return buf


def pad(
    planes: np.ndarray, before: tuple[int, int], after: tuple[int, int], mode: str = "constant", fill: float = 0.0
) -> np.ndarray:
    """(P, H, W) planes padded by ``before`` = (top, left) and ``after`` = (bottom, right), whole.

    Any amount, also more than the input side (the index maps repeat). No
    copy when nothing is padded.

    >>> pad(np.arange(4.0).reshape(1, 1, 4), (0, 2), (0, 1), "mirror")
    array([[[2., 1., 0., 1., 2., 3., 2.]]])
    """
    _, h, w = planes.shape
    if before == (0, 0) and after == (0, 0):
        return planes
    rows, cols = (-before[0], h + after[0]), (-before[1], w + after[1])
    if mode in ("wrap", "circular"):
        # Gathered by index, rows then columns, as before the engines were
        # merged: NumPy lays that result out with the columns outermost, the
        # blur's output inherits the layout, and float64 sums over it
        # downstream (cosine similarities) follow memory order, so keeping it
        # keeps every digest bit for bit.
        # The same values in the same layout, copied by runs of consecutive source rows / columns, in
        # 64x64 tiles (a copy that transposes, as this layout does, is cache-bound: 34 ms whole, 4.6 ms in
        # tiles for 2048x2048), instead of two index gathers (2048x2048 padded by 1: 46 -> 8 ms, measured).
        p = planes.shape[0]
        r_idx, c_idx = index_map(np.arange(*rows), h, mode), index_map(np.arange(*cols), w, mode)
        r_runs, c_runs = _runs(r_idx), _runs(c_idx)
        if len(r_runs) * len(c_runs) > 64:  # pads many times the side of a tiny map: the gathers are cheaper
            return planes[:, r_idx][:, :, c_idx]
        out = np.empty((len(c_idx), len(r_idx), p), dtype=planes.dtype).transpose(2, 1, 0)
        t = _TILE
        for r0, r1, s0 in r_runs:
            for c0, c1, t0 in c_runs:
                for i in range(r0, r1, t):
                    i1 = min(r1, i + t)
                    for j in range(c0, c1, t):
                        j1 = min(c1, j + t)
                        out[:, i:i1, j:j1] = planes[:, s0 + i - r0 : s0 + i1 - r0, t0 + j - c0 : t0 + j1 - c0]
        return out
    return extend(planes, rows, cols, mode, fill)


_TILE = 64  # rows and columns per block of a copy that transposes (best of 16..256, measured)


def _runs(idx: np.ndarray) -> list[tuple[int, int, int]]:
    """``(start, stop, source start)`` of each run of consecutive source indices in ``idx``.

    >>> _runs(np.array([3, 0, 1, 2, 3, 0]))
    [(0, 1, 3), (1, 5, 0), (5, 6, 0)]
    """
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    starts, stops = np.concatenate(([0], cuts)), np.concatenate((cuts, [len(idx)]))
    return [(int(a), int(b), int(idx[a])) for a, b in zip(starts, stops)]


def accumulate(acc: np.ndarray | None, view: np.ndarray, weight: float, shape: tuple, dtype, key: str,
               tmp: str = "tmp") -> np.ndarray | None:
    """``acc + weight * view`` in ``dtype``, in place: one tap of a band's correlation (the filters' kernels,
    the blur's binomial taps). The first non-zero tap takes ``acc`` from scratch ``key``; zero taps are
    skipped, unit taps are additions; other taps are multiplied into scratch ``tmp`` first."""
    if weight == 0.0:
        return acc
    w = np.dtype(dtype).type(weight)
    if acc is None:
        acc = scratch(key, shape, dtype)
        if weight == 1.0:
            np.copyto(acc, view)
        elif weight == -1.0:
            np.negative(view, out=acc)
        else:
            np.multiply(view, w, out=acc)
    elif weight == 1.0:
        acc += view
    elif weight == -1.0:
        acc -= view
    else:
        t = scratch(tmp, view.shape, dtype)
        np.multiply(view, w, out=t)
        acc += t
    return acc


def plan_bands(n_planes: int, n_rows: int, row_bytes: int) -> list[tuple[int, int, int, int]]:
    """Tasks ``(p0, p1, r0, r1)``: planes p0:p1, output rows r0:r1, each reading about :data:`BAND_BYTES`.

    ``row_bytes`` is the input one output row reads. Whole planes per task
    when a plane fits (several planes per task when they are small).

    >>> plan_bands(2, 10, BAND_BYTES // 4)
    [(0, 1, 0, 4), (0, 1, 4, 8), (0, 1, 8, 10), (1, 2, 0, 4), (1, 2, 4, 8), (1, 2, 8, 10)]
    """
    rows = max(1, BAND_BYTES // max(1, row_bytes))
    if rows >= n_rows:
        per = max(1, rows // max(1, n_rows))
        return [(p0, min(n_planes, p0 + per), 0, n_rows) for p0 in range(0, n_planes, per)]
    return [(p0, p0 + 1, r0, min(n_rows, r0 + rows)) for p0 in range(n_planes) for r0 in range(0, n_rows, rows)]


def run_bands(work: Callable[[int, int, int, int], None], n_planes: int, n_rows: int, row_bytes: int, size: int) -> None:
    """Call ``work(p0, p1, r0, r1)`` for every band of :func:`plan_bands`, on threads when ``size`` is large.

    ``size`` is the number of input elements; NumPy ufuncs release the GIL,
    so bands run in parallel on the shared pool (:func:`set_num_threads`).
    """
    run_tasks(work, plan_bands(n_planes, n_rows, row_bytes), parallel=size >= _PARALLEL_SIZE)
