"""Shifts and the shift-invariance / equivariance metrics (pure NumPy).

A run compares a feature map ``fx = f(x)`` with ``ftx = f(T x)``, where ``T``
shifts the image by ``(dy, dx)`` pixels. Positive shifts move the content
**down / right**, in both shift modes:

``circular``
    ``T x = np.roll(x, (dy, dx), axis=(-2, -1))`` (:func:`circular_shift`).
``crop``
    Zhang (2019)'s protocol: two equal crops of one image whose offsets differ
    by the shift (:func:`crop_pair`); nothing wraps around, the borders differ.

Metrics (:func:`compare`), all in float64, returned as plain Python floats, or
``None`` where undefined (never NaN; the dict is ``json.dumps(..., allow_nan=False)``
-safe). ``|a|`` is the l2 norm of the flattened array.

``cosine``
    ``<fx, ftx> / (|fx| |ftx|)``; ``None`` if a norm is 0. Invariance of the
    map itself, position by position.
``rel_l2``
    ``|ftx - fx| / |fx|``; 0.0 if both are zero, ``None`` if only ``fx`` is.
``equiv_rel_l2``, ``equiv_offset``
    Equivariance: how far ``ftx`` is from ``fx`` moved by the shift, seen at
    the map's resolution. With total stride ``(Sy, Sx)`` the shift is
    ``(dy / Sy, dx / Sx)`` output pixels; the integer offsets tried are
    ``u in [floor(dy / Sy) - 1, ceil(dy / Sy) + 1]`` and likewise ``v``, and
    ``equiv_rel_l2 = min over (u, v) of |ftx - S_uv fx| / |S_uv fx|``, where
    ``S_uv`` is ``np.roll`` by ``(u, v)`` in circular mode. In crop mode
    ``S_uv fx`` is defined only on the overlap: ``ftx[i, j]`` is compared with
    ``fx[i - u, j - v]`` where both exist, and both norms are taken over that
    overlap (offsets without overlap are skipped; if none is left,
    ``ValueError``). Ties go to the offset closest to ``(dy / Sy, dx / Sx)``
    (Euclidean), then to the lexicographically smallest ``(u, v)``.
    ``equiv_offset = [u, v]`` is that minimiser (``None`` with the metric).
    0 means ``ftx`` is exactly a shifted ``fx``: the stage is equivariant.
``global_rel_diff``
    ``|d(ftx) - d(fx)| / |d(fx)|`` with ``d(f)`` the per-channel (mean, max)
    over space, concatenated: the descriptor a global-pooling head sees. 0
    means a classifier on top cannot tell the shift. Means are summed after
    sorting, so a pure permutation of the values (a circular roll) gives
    exactly 0.

Comparing one ``fx`` with many shifted maps (an invariance run: every shift of
one method and stage), build a :class:`Reference` once and call its
``compare(ftx, shift)`` per shift, or give them all to :func:`compare_many`:
the values are those of :func:`compare`, and what depends on ``fx`` only (its
float64 copy, norm, descriptor, the norms of its shifted copies) is computed
once. The values are bit-identical to the implementation before issue 13
(which rolled and re-normed the whole map for every candidate offset);
``tests/data/invariance_cases.npz`` records them.

Examples
--------
>>> import numpy as np
>>> fx = np.random.default_rng(0).standard_normal((2, 6, 6))
>>> r = compare(fx, np.roll(fx, (1, 2), axis=(-2, -1)), (2, 4), 2, "circular")
>>> r["equiv_rel_l2"], r["equiv_offset"], r["global_rel_diff"]
(0.0, [1, 2], 0.0)
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import numpy as np

from ._checks import pair

__all__ = [
    "DIRECTIONS",
    "SHIFT_MODES",
    "MAX_SHIFTS",
    "parse_shifts",
    "shift_pairs",
    "circular_shift",
    "crop_pair",
    "compare",
    "compare_many",
    "Reference",
]

DIRECTIONS = ("x", "y", "diag", "grid")
SHIFT_MODES = ("circular", "crop")
#: At most this many shift values from one ``parse_shifts`` text.
MAX_SHIFTS = 10_000

_INT = r"[+-]?\d+"
_RANGE = re.compile(rf"^({_INT}):({_INT})(?::({_INT}))?$")
_SINGLE = re.compile(rf"^{_INT}$")


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


# ----------------------------------------------------------------------------- shifts


def parse_shifts(text: str) -> list[int]:
    """Parse a shift list: ``"3"``, ``"1,2,3"``, ``"0:5"`` or ``"0:8:2"`` (and mixes).

    ``a:b`` is ``a, a+1, ..., b`` -- **both ends included** -- counting down if
    ``b < a``; ``a:b:c`` steps by ``c`` (non-zero, pointing from ``a`` to
    ``b``) and includes ``b`` when the steps land on it. Items are separated
    by commas; negative shifts are allowed (content moves up / left).
    Duplicates are dropped, keeping the first occurrence.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of int
        Non-empty, at most ``MAX_SHIFTS`` values.

    Raises
    ------
    ValueError
        Quoting the offending item.

    Examples
    --------
    >>> parse_shifts("0:4")
    [0, 1, 2, 3, 4]
    >>> parse_shifts("0:8:3")
    [0, 3, 6]
    >>> parse_shifts("-2:2, 5")
    [-2, -1, 0, 1, 2, 5]
    >>> parse_shifts("3:1")
    [3, 2, 1]
    >>> parse_shifts("1,x")
    Traceback (most recent call last):
    ...
    ValueError: invalid shift 'x' in '1,x': expected an int (3), a list (1,2,3) or a range a:b or a:b:step (both ends included)
    """
    if not isinstance(text, str):
        raise ValueError(f"shifts must be a string such as '0:4' or '1,2,3', got {text!r}")
    out: list[int] = []
    for raw in text.split(","):
        item = raw.strip()
        if _SINGLE.match(item):
            out.append(int(item))
            continue
        mt = _RANGE.match(item.replace(" ", ""))
        if not mt:
            raise ValueError(
                f"invalid shift {item!r} in {text!r}: expected an int (3), a list (1,2,3) "
                f"or a range a:b or a:b:step (both ends included)"
            )
        a, b = int(mt.group(1)), int(mt.group(2))
        step = int(mt.group(3)) if mt.group(3) is not None else (1 if b >= a else -1)
        if step == 0:
            raise ValueError(f"invalid shift range {item!r} in {text!r}: the step must not be 0")
        if (b - a) * step < 0:
            raise ValueError(f"invalid shift range {item!r} in {text!r}: step {step} never goes from {a} to {b}")
        count = (b - a) // step + 1
        if len(out) + count > MAX_SHIFTS:
            raise ValueError(f"too many shifts in {text!r}: at most {MAX_SHIFTS}")
        out.extend(range(a, b + (1 if step > 0 else -1), step))
    if len(out) > MAX_SHIFTS:
        raise ValueError(f"too many shifts in {text!r}: at most {MAX_SHIFTS}")
    return list(dict.fromkeys(out))


def shift_pairs(shifts: list[int], direction: str) -> list[tuple[int, int]]:
    """(dy, dx) pairs for a shift list and a direction.

    ``x`` -> ``(0, s)``; ``y`` -> ``(s, 0)``; ``diag`` -> ``(s, s)``; ``grid``
    -> every ``(dy, dx)`` with ``dy`` and ``dx`` in ``shifts``, row-major.

    Examples
    --------
    >>> shift_pairs([0, 1], "x")
    [(0, 0), (0, 1)]
    >>> shift_pairs([0, 1], "grid")
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    >>> shift_pairs([1], "z")
    Traceback (most recent call last):
    ...
    ValueError: direction must be one of x, y, diag, grid, got 'z'
    """
    key = direction.lower() if isinstance(direction, str) else direction
    if key not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if not all(_is_int(s) for s in shifts):
        raise ValueError(f"shifts must be ints, got {list(shifts)!r}")
    s = [int(v) for v in shifts]
    if key == "x":
        return [(0, v) for v in s]
    if key == "y":
        return [(v, 0) for v in s]
    if key == "diag":
        return [(v, v) for v in s]
    return [(a, b) for a in s for b in s]


def _shift(shift: Any, name: str = "shift") -> tuple[int, int]:
    if isinstance(shift, (tuple, list, np.ndarray)) and len(shift) == 2 and all(_is_int(v) for v in shift):
        return int(shift[0]), int(shift[1])
    raise ValueError(f"{name} must be a pair of ints (dy, dx), got {shift!r}")


def circular_shift(x: Any, dy: int, dx: int) -> np.ndarray:
    """Roll the last two axes: content moves down by ``dy`` and right by ``dx``.

    ``np.roll(x, (dy, dx), axis=(-2, -1))``; what leaves one edge comes back in
    at the other.

    Examples
    --------
    >>> import numpy as np
    >>> circular_shift(np.arange(4).reshape(2, 2), 1, 0)
    array([[2, 3],
           [0, 1]])
    >>> circular_shift(np.eye(3, dtype=int), 0, 1)[0]
    array([0, 1, 0])
    """
    dy, dx = _shift((dy, dx), "(dy, dx)")
    a = np.asarray(x)
    if a.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (..., H, W), got shape {a.shape}")
    return np.roll(a, (dy, dx), axis=(-2, -1))


def crop_pair(x: Any, dy: int, dx: int, max_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Two equal crops of ``x`` whose content differs by the shift ``(dy, dx)``.

    With ``m = max_shift`` (the largest ``|shift|`` of the run, both axes) and
    ``h = H - 2m``, ``w = W - 2m``::

        base    = x[..., m      : m + h,      m      : m + w]
        shifted = x[..., m - dy : m - dy + h, m - dx : m - dx + w]

    so ``shifted[i, j] == base[i - dy, j - dx]`` wherever both exist: the
    content moves down / right by ``(dy, dx)``, as with ``np.roll``, and the
    base crop is the same for every shift of the run (negative shifts fit too).

    Parameters
    ----------
    x : array_like, shape (..., H, W)
    dy, dx : int
        ``|dy|, |dx| <= max_shift``.
    max_shift : int
        ``>= 0``.

    Returns
    -------
    base, shifted : ndarray
        Read-only views into ``x``, shape ``(..., H - 2m, W - 2m)``.

    Raises
    ------
    ValueError
        For a shift larger than ``max_shift`` or an image smaller than
        ``2 * max_shift + 1`` on a side.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(36).reshape(6, 6)
    >>> base, shifted = crop_pair(x, 1, 0, 2)
    >>> base
    array([[14, 15],
           [20, 21]])
    >>> shifted
    array([[ 8,  9],
           [14, 15]])
    """
    dy, dx = _shift((dy, dx), "(dy, dx)")
    if not _is_int(max_shift) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}")
    m = int(max_shift)
    if abs(dy) > m or abs(dx) > m:
        raise ValueError(f"shift (dy, dx) = {(dy, dx)} exceeds max_shift={m}")
    a = np.asarray(x)
    if a.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (..., H, W), got shape {a.shape}")
    H, W = a.shape[-2:]
    h, w = H - 2 * m, W - 2 * m
    if h < 1 or w < 1:
        raise ValueError(
            f"the image (H, W) = {(H, W)} is too small for crop shifts up to max_shift={m}: "
            f"it needs at least {2 * m + 1} pixels on each side"
        )
    base = a[..., m : m + h, m : m + w]
    shifted = a[..., m - dy : m - dy + h, m - dx : m - dx + w]
    base.flags.writeable = False
    shifted.flags.writeable = False
    return base, shifted


# ----------------------------------------------------------------------------- metrics
#
# How the metrics are computed (issue 13). Every reported value is computed by
# the same float64 operations, in the same order, as the implementation that
# rolled and re-normed the whole map for every candidate offset, so the values
# are bit-identical; only the *search* is cheaper:
#
# * the norms and the descriptor of ``fx`` are computed once per
#   :class:`Reference` (shared by every shift compared against it);
# * each candidate's ``|ftx - S fx|^2`` is first estimated in closed form,
#   ``|ftx|^2 + |S fx|^2 - 2 <ftx, S fx>`` (the inner product summed over the
#   overlapping views: the wrap-around pieces in circular mode, the overlap in
#   crop mode; the overlap's squared norms from row / column sums), together
#   with a rigorous bound on its rounding error (and on the direct sum's);
# * only the candidates whose error interval reaches the smallest upper bound
#   (the winner, near ties, and any candidate the estimate cannot decide,
#   e.g. a tiny difference under cancellation or a zero denominator) are then
#   evaluated directly, ``|ftx - S fx| / |S fx|`` as before, and the winner is
#   chosen among them with the old key (error, distance, u, v);
# * an exact roll is recognised by comparing values (then the direct
#   evaluation would give exactly 0.0);
# * the descriptor's mean is still summed in sorted order (that order is what
#   makes a circular roll give exactly 0), but the sort is skipped when the
#   winning candidate showed ``ftx`` to be exactly a roll of ``fx`` (then
#   ``global_rel_diff`` is 0 without it); float32 maps are sorted as float32;
# * the sums of squares and products that are reported are summed in NumPy's
#   own pairwise order but block by block (:func:`_fused`), and the inner
#   products of the estimates in cache-sized blocks, all offsets per block,
#   so a map is read from memory a few times per comparison, not ~30.

_EPS = float(np.finfo(np.float64).eps)
_SAFE = (1e-250, 1e250)  # sums of squares in this range: no underflow or overflow in the estimates


def _finite(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _ratio(num: float, den: float) -> float | None:
    """num / den with 0 / 0 = 0 and x / 0 = None (never NaN or inf)."""
    if not (math.isfinite(num) and math.isfinite(den)):
        return None
    if num == 0.0:
        return 0.0
    if den == 0.0:
        return None
    return _finite(num / den)


def _norm(a: np.ndarray) -> float:
    return float(np.sqrt(np.sum(a * a)))


_LEAF = 1 << 14  # elements per block of the fused sums
_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


def _tree(i0: int, i1: int, leaf) -> Any:
    """NumPy's pairwise summation tree over ``[i0, i1)``, ``leaf(j0, j1)`` summing the blocks.

    ``np.sum`` of a contiguous float64 array halves it (the first half a
    multiple of 8 long) until a piece is short, and adds the halves' sums;
    splitting the same way down to ``_LEAF`` and summing each block with
    ``np.sum`` therefore gives the same bits (checked once at run time by
    :func:`_fused_ok`; it holds for NumPy 2.x).
    """
    n = i1 - i0
    if n <= _LEAF:
        return leaf(i0, i1)
    n2 = n // 2
    n2 -= n2 % 8
    return _tree(i0, i0 + n2, leaf) + _tree(i0 + n2, i1, leaf)


def _fused(kind: str, x: np.ndarray, y: np.ndarray | None = None) -> Any:
    """``np.sum(x * x)`` (``sq``), ``np.sum(x * y)`` (``prod``) or ``np.sum(d * d)``, ``d = x - y`` (``diff``).

    Bit for bit the plain expressions for C-contiguous float64 maps, computed
    block by block in a cache-sized scratch array (the maps are read once, no
    map-sized temporary); any other input, a zero ``prod`` (whose sign could
    depend on the order) or a NumPy whose sums are not split as :func:`_tree`
    expects: the plain expression.
    """
    arrays = (x,) if y is None else (x, y)
    if not (_fused_ok() and all(z.dtype in _FLOATS and z.flags.c_contiguous for z in arrays) and x.size > _LEAF):
        return _plain(kind, x, y)
    xf, yf = x.reshape(-1), (None if y is None else y.reshape(-1))
    buf = np.empty(_LEAF)

    def leaf(i0: int, i1: int) -> Any:
        t = buf[: i1 - i0]
        if kind == "sq":
            np.multiply(xf[i0:i1], xf[i0:i1], out=t, dtype=np.float64)
        elif kind == "prod":
            np.multiply(xf[i0:i1], yf[i0:i1], out=t, dtype=np.float64)
        else:
            np.multiply(np.subtract(xf[i0:i1], yf[i0:i1], out=t, dtype=np.float64), t, out=t)
        return np.sum(t)

    out = _tree(0, xf.size, leaf)
    return _plain(kind, x, y) if kind == "prod" and out == 0.0 else out  # squares: +0.0 in any order


def _plain(kind: str, x: np.ndarray, y: np.ndarray | None) -> Any:
    x = x.astype(np.float64, copy=False)
    y = None if y is None else y.astype(np.float64, copy=False)
    if kind == "sq":
        return np.sum(x * x)
    if kind == "prod":
        return np.sum(x * y)
    d = x - y
    return np.sum(d * d)


_FUSED_OK: list[bool] = []


def _fused_ok() -> bool:
    """Whether ``np.sum`` splits as :func:`_tree` assumes (checked once, on an awkward length)."""
    if not _FUSED_OK:
        x = np.random.default_rng(7).standard_normal(5 * _LEAF + 1237) * np.exp(np.linspace(-20, 20, 5 * _LEAF + 1237))
        _FUSED_OK.append(bool(_tree(0, x.size, lambda i, j: np.sum(x[i:j])) == np.sum(x)))
    return _FUSED_OK[0]


def _as_map(f: Any, name: str) -> np.ndarray:
    return _raw_map(f, name).astype(np.float64)


def _raw_map(f: Any, name: str) -> np.ndarray:
    a = np.asarray(f)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (C, h, w) or (h, w), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    return a


def _operand(raw: np.ndarray, mode: str) -> np.ndarray:
    """A map as the metrics read it: float64, or (circular mode) a C-contiguous float32/64 map as it is.

    Every operation on it converts float32 to float64 first (an exact
    conversion: explicit float64 loops, or a float64 other operand), so the
    values are those of ``raw.astype(np.float64)``; the full-size copy is saved.
    """
    if mode == "circular" and raw.dtype in _FLOATS and raw.flags.c_contiguous:
        return raw
    return raw.astype(np.float64)


def _descriptor(f: np.ndarray) -> np.ndarray:
    """Per channel (mean, max) over space; the mean summed in sorted order.

    ``f`` may be in its own dtype: a real dtype's conversion to float64 is
    monotonic, so sorting first and converting after gives the same float64
    sequence (up to the order of -0.0 and 0.0, which no sum can tell apart
    except in the sign of a zero result) as converting first; sorting float32
    is faster. NaN sorts last and propagates, in the mean and in the max.
    """
    flat = f.reshape(f.shape[0], -1)
    srt = np.sort(flat, axis=1).astype(np.float64, copy=False)
    return np.stack([srt.sum(axis=1) / srt.shape[1], srt[:, -1]], axis=1).ravel()


def _overlap(fx: np.ndarray, ftx: np.ndarray, u: int, v: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(ftx[i, j], fx[i - u, j - v]) over the indices where both exist."""
    h, w = fx.shape[-2:]
    if abs(u) >= h or abs(v) >= w:
        return None
    rt = slice(max(u, 0), h + min(u, 0))
    rf = slice(max(-u, 0), h + min(-u, 0))
    ct = slice(max(v, 0), w + min(v, 0))
    cf = slice(max(-v, 0), w + min(-v, 0))
    return ftx[:, rt, ct], fx[:, rf, cf]


def _pieces(n: int, k: int) -> list[tuple[slice, slice]]:
    """(slice of the rolled axis, slice of the original) pairs for a circular roll by ``k``."""
    k %= n
    out = [(slice(k, n), slice(0, n - k))]
    if k:
        out.append((slice(0, k), slice(n - k, n)))
    return out


def _roll_pieces(h: int, w: int, u: int, v: int) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """((rows, cols) of the rolled map, (rows, cols) of the original) for ``np.roll`` by ``(u, v)``."""
    return [((rb, cb), (ra, ca)) for rb, ra in _pieces(h, u) for cb, ca in _pieces(w, v)]


_CHUNK = 1 << 13  # elements per block of the inner products: in L2, and single-threaded BLAS


def _roll_dots(a: np.ndarray, b: np.ndarray, offsets: list[tuple[int, int]]) -> list[float]:
    """``<b, np.roll(a, (u, v), axis=(-2, -1))>`` for every ``(u, v)``, without rolled copies.

    float64, any summation order. C-contiguous maps: per channel, the roll is a
    flat roll by ``s = u w + v`` except in the ``v`` wrapped columns, which the
    flat roll pairs with the row above (corrected from those narrow strips).
    The flat products are summed block by block, all offsets per block, so
    the maps are read from memory once rather than once per offset. Other
    layouts: einsum over the four wrap-around pieces of each offset.
    """
    h, w = a.shape[-2:]
    if not (a.flags.c_contiguous and b.flags.c_contiguous):
        return [
            sum(float(np.einsum("cij,cij->", b[:, rb, cb], a[:, ra, ca]))
                for (rb, cb), (ra, ca) in _roll_pieces(h, w, u, v))
            for u, v in offsets
        ]
    n = h * w
    flat = [((u % h) * w + v % w) % n for u, v in offsets]
    flat = [s - n if s > n // 2 else s for s in flat]  # the same flat roll, nearest representative
    out = [0.0] * len(offsets)
    for c in range(a.shape[0]):
        af, bf = a[c].reshape(-1), b[c].reshape(-1)
        _flat_roll_dots(af, bf, flat, out)
        strips: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, (u, v) in enumerate(offsets):
            vv = v % w
            if not vv:
                continue
            # b[i, j < vv] needs a[i - u, j - vv + w]; the flat roll gave a[i - u - 1, j - vv + w]
            if vv not in strips:
                sa = np.ascontiguousarray(a[c, :, w - vv :], dtype=np.float64).reshape(-1)
                sb = np.ascontiguousarray(b[c, :, :vv], dtype=np.float64).reshape(-1)
                strips[vv] = (sa, sb)
            sa, sb = strips[vv]
            rows = [(u % h) * vv, ((u + 1) % h) * vv]  # a row roll of the (h, vv) strip is a flat roll
            got = [0.0, 0.0]
            _flat_roll_dots(sa, sb, rows, got)
            out[i] += got[0] - got[1]
    return out


def _dot(x: np.ndarray, y: np.ndarray) -> Any:
    """Inner product of two 1-D float64 blocks of at most ``_CHUNK`` elements, in the calling thread.

    OpenBLAS computes a ``ddot`` of more than 10,000 elements on its threads;
    on a busy 2-core machine every such call then waited for a time slice
    (seconds per map measured with 64K-element blocks). Blocks of 8192 stay
    single-threaded; einsum (no BLAS) for anything longer.
    """
    return np.dot(x, y) if x.size <= _CHUNK else np.einsum("i,i->", x, y)


def _flat_roll_dots(af: np.ndarray, bf: np.ndarray, flat: list[int], out: list[float]) -> None:
    """Add ``sum_k bf[k] af[(k - s) % n]`` for every ``s`` of ``flat`` to ``out`` (1-D, contiguous)."""
    n = af.size
    reach = max(abs(s) for s in flat)
    if n <= 4 * reach + 4 * _CHUNK:  # small, or large offsets: two contiguous dots per offset
        af, bf = af.astype(np.float64, copy=False), bf.astype(np.float64, copy=False)
        for i, s in enumerate(flat):
            s %= n
            out[i] += float(_dot(bf[s:], af[: n - s])) + (float(_dot(bf[:s], af[n - s :])) if s else 0.0)
        return
    lo, hi = reach, n - reach  # there k - s stays in [0, n) for every s
    smin, smax = min(flat), max(flat)
    # float32 -> float64 one block at a time: bf[k0:k1], and af[k0 - smax : k1 - smin] (every offset's window)
    bblock = None if bf.dtype == np.float64 else np.empty(_CHUNK)
    ablock = None if af.dtype == np.float64 else np.empty(_CHUNK + smax - smin)
    for k0 in range(lo, hi, _CHUNK):
        k1 = min(hi, k0 + _CHUNK)
        bk, aw, base = bf[k0:k1], af, 0  # aw[j - base] is af[j]
        if bblock is not None:
            bk = bblock[: k1 - k0]
            bk[...] = bf[k0:k1]
        if ablock is not None:
            aw, base = ablock[: k1 - k0 + smax - smin], k0 - smax
            aw[...] = af[k0 - smax : k1 - smin]
        for i, s in enumerate(flat):
            out[i] += float(_dot(bk, aw[k0 - s - base : k1 - s - base]))
    edge = np.r_[0:lo, hi:n]
    be = bf[edge].astype(np.float64, copy=False)
    for i, s in enumerate(flat):
        out[i] += float(_dot(be, af[(edge - s) % n].astype(np.float64, copy=False)))


def _removed(n: int, k: int, shifted: bool) -> slice:
    """The indices of an axis of length ``n`` that an offset ``k`` leaves out of the overlap.

    ``shifted``: of ``ftx`` (the first ``k`` for ``k > 0``), else of ``fx`` (the last ``k``).
    """
    if k == 0:
        return slice(0, 0)
    first = (k > 0) == shifted
    return slice(0, abs(k)) if first else slice(n - abs(k), n)


class _SquareSums:
    """Sums of squares over an overlap: the total less the narrow strips an offset leaves out."""

    def __init__(self, f: np.ndarray, total: float) -> None:
        self.f, self.total = f, total

    def region(self, u: int, v: int, shifted: bool) -> float:
        """Estimated sum of squares over the overlap of offset ``(u, v)``."""
        h, w = self.f.shape[-2:]
        rr, rc = _removed(h, u, shifted), _removed(w, v, shifted)
        strips = (self.f[:, rr, :], self.f[:, :, rc], self.f[:, rr, rc])
        rows, cols, corner = (float(np.einsum("cij,cij->", z, z)) for z in strips)
        return self.total - rows - cols + corner


def _overlap_dots(a: np.ndarray, b: np.ndarray, offsets: list[tuple[int, int]]) -> list[float]:
    """``<ftx, S_uv fx>`` over the crop-mode overlap of every offset (``|u| < h``, ``|v| < w``).

    The overlap is one of the pieces of the circular roll by ``(u, v)``; the
    others are strips ``|u|`` rows or ``|v|`` columns wide. So: the circular
    inner products (:func:`_roll_dots`, one pass for all offsets) less the
    strips' (float64, any summation order).
    """
    h, w = a.shape[-2:]
    if not (a.flags.c_contiguous and b.flags.c_contiguous):
        return [float(np.einsum("cij,cij->", *_overlap(a, b, u, v))) for u, v in offsets]
    out = _roll_dots(a, b, offsets)
    for k, (u, v) in enumerate(offsets):
        keep = (slice(max(u, 0), h + min(u, 0)), slice(max(v, 0), w + min(v, 0)))
        for (rb, cb), (ra, ca) in _roll_pieces(h, w, u, v):
            if (rb, cb) != keep:
                out[k] -= float(np.einsum("cij,cij->", b[:, rb, cb], a[:, ra, ca]))
    return out


class Reference:
    """``fx = f(x)`` prepared once, to compare with ``f(T x)`` for many shifts.

    Everything that depends only on ``fx`` -- its float64 copy, its norm, its
    (sorted) global descriptor, the norms of its shifted copies -- is computed
    once and reused by every :meth:`compare`. ``Reference(fx, s, mode).compare(ftx,
    shift)`` returns exactly what ``compare(fx, ftx, shift, s, mode)`` returns.
    Build one per (method, stage) of an invariance run and call it for every
    shift. It holds a float64 copy of ``fx``, small caches and up to two
    map-sized scratch arrays (circular mode); nothing per shift. Not for
    concurrent use from several threads (one per thread).

    Examples
    --------
    >>> import numpy as np
    >>> fx = np.random.default_rng(0).standard_normal((1, 8, 8))
    >>> ref = Reference(fx, 2, "circular")
    >>> [ref.compare(np.roll(fx, (0, k), axis=(-2, -1)), (0, 2 * k))["equiv_offset"] for k in (0, 1, 2)]
    [[0, 0], [0, 1], [0, 2]]
    """

    def __init__(self, fx: Any, total_stride: Any, mode: str = "circular", *, copy: bool = True) -> None:
        if mode not in SHIFT_MODES:
            raise ValueError(f"mode must be one of {', '.join(SHIFT_MODES)}, got {mode!r}")
        stride = pair(total_stride, "total_stride")
        if copy:
            self._setup(_as_map(fx, "fx"), stride, mode)
        else:  # the caller keeps fx unchanged while this Reference is used: no float64 copy (as compare())
            raw = _raw_map(fx, "fx")
            self._setup(_operand(raw, mode), stride, mode)
            self._raw = raw

    def release(self) -> None:
        """Free the map-sized scratch arrays (the next :meth:`compare` allocates them again)."""
        self._bufs = []

    @classmethod
    def _checked(cls, a: np.ndarray, stride: tuple[int, int], mode: str, raw: np.ndarray) -> Reference:
        """For one :func:`compare` call: ``fx`` cannot change meanwhile, so its descriptor may sort ``raw``."""
        self = cls.__new__(cls)
        self._setup(a, stride, mode)
        self._raw = raw
        return self

    def _setup(self, a: np.ndarray, stride: tuple[int, int], mode: str) -> None:
        self.mode, self.stride, self.a = mode, stride, a
        self._raw = a  # what the descriptor sorts (the float64 copy: fx may change after the Reference is built)
        with np.errstate(all="ignore"):
            self.na = float(np.sqrt(_fused("sq", a)))
        self._dens: dict[tuple[int, int], float] = {}
        self._desc: np.ndarray | None = None
        self._small: bool | None = None
        self._bufs: list[np.ndarray] = []

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, h, w)`` of the map."""
        return self.a.shape

    def compare(self, ftx: Any, shift: Any) -> dict[str, Any]:
        """The metrics of :func:`compare` for one ``ftx`` (shape of ``fx``) and its input shift."""
        dy, dx = _shift(shift)
        raw = _raw_map(ftx, "ftx")
        if raw.shape != self.a.shape:
            raise ValueError(f"fx and ftx must have the same shape, got {self.a.shape} and {raw.shape}")
        return self._metrics(raw, _operand(raw, self.mode), dy, dx)

    def buf(self, k: int, b: np.ndarray) -> np.ndarray | None:
        """Scratch array ``k`` of the map's shape (C order), or None unless both maps are C-contiguous.

        Temporaries written into it hold the same values in the same layout as
        the expressions they replace, so every sum is the same; reusing them
        saves an allocation (and its page faults) per expression.
        """
        if not (self.a.flags.c_contiguous and b.flags.c_contiguous):
            return None
        while len(self._bufs) <= k:
            self._bufs.append(np.empty(self.a.shape))
        return self._bufs[k]

    def _metrics(self, raw: np.ndarray, b: np.ndarray, dy: int, dx: int) -> dict[str, Any]:
        a, na = self.a, self.na
        with np.errstate(all="ignore"):
            nb = float(np.sqrt(_fused("sq", b)))
            cosine = None
            if na > 0 and nb > 0 and math.isfinite(na) and math.isfinite(nb):
                c = _finite(_fused("prod", a, b) / (na * nb))
                cosine = None if c is None else min(1.0, max(-1.0, c))
            num0 = float(np.sqrt(_fused("diff", b, a)))
            rel = _ratio(num0, na)
            err, best, rolled = _Search(self, b, dy, dx, nb, num0).run()
            if rolled:  # ftx is exactly a roll of fx: the same values, the same sorted sums
                glob = self._rolled_glob()
            else:
                da = self.descriptor()
                glob = _ratio(_norm(_descriptor(raw) - da), _norm(da))
        return {
            "cosine": cosine,
            "rel_l2": rel,
            "equiv_rel_l2": err,
            "equiv_offset": best,
            "global_rel_diff": glob,
        }

    def _rolled_glob(self) -> float | None:
        """``global_rel_diff`` of an exact roll of ``fx``: ``_ratio(0, |d(fx)|)``, without sorting when it is 0.

        With every ``|fx| <= 1e150`` (and NaN-free: a roll was matched exactly),
        every partial sum of a mean and the squared descriptor norm are finite,
        so the ratio is 0.0 whatever the sorted sums are.
        """
        if self._small is None:
            a = self.a
            self._small = bool(a.size <= 10**9 and max(float(a.max()), -float(a.min())) <= 1e150)
        return 0.0 if self._small else _ratio(0.0, _norm(self.descriptor()))

    def descriptor(self) -> np.ndarray:
        """Per channel (mean, max) of ``fx``, interleaved (computed once)."""
        if self._desc is None:
            with np.errstate(all="ignore"):
                self._desc = _descriptor(self._raw)
        return self._desc

    def den(self, u: int, v: int, ref: np.ndarray | None, t: np.ndarray | None) -> float:
        """``|S_uv fx|`` as the direct evaluation computes it (cached per offset).

        ``ref`` is ``S_uv fx`` (crop mode: the overlap view); None in circular
        mode, where ``t`` (a scratch array, or None) receives the rolled squares.
        """
        key = (u, v)
        if key in self._dens:
            return self._dens[key]
        if key == (0, 0):
            val = self.na
        elif ref is not None and self.a.flags.c_contiguous:  # a view of a C-ordered map: ref * ref is in C order
            val = float(np.sqrt(_fused("sq", np.ascontiguousarray(ref))))
        elif ref is not None:  # other layouts: the plain expression (its product follows ref's memory order)
            val = _norm(ref)
        elif t is None:
            val = _norm(np.roll(self.a, (u, v), axis=(-2, -1)).astype(np.float64, copy=False))
        else:  # the squares of np.roll(a), placed piece by piece
            for (rb, cb), (ra, ca) in _roll_pieces(*self.a.shape[-2:], u, v):
                np.multiply(self.a[:, ra, ca], self.a[:, ra, ca], out=t[:, rb, cb], dtype=np.float64)
            val = float(np.sqrt(np.sum(t)))
        self._dens[key] = val
        return val


class _Search:
    """The equivariance search of one comparison: estimates first, direct evaluation where they cannot decide."""

    def __init__(self, ref: Reference, b: np.ndarray, dy: int, dx: int, nb: float, num0: float) -> None:
        self.ref, self.b, self.dy, self.dx, self.nb, self.num0 = ref, b, dy, dx, nb, num0
        self.circular = ref.mode == "circular"

    def candidates(self) -> list[tuple[int, int]]:
        (sy, sx), (dy, dx) = self.ref.stride, (self.dy, self.dx)
        h, w = self.ref.shape[-2:]
        us = range(dy // sy - 1, -(-dy // sy) + 2)
        vs = range(dx // sx - 1, -(-dx // sx) + 2)
        out = [(u, v) for u in us for v in vs if self.circular or (abs(u) < h and abs(v) < w)]
        if not out:
            raise ValueError(
                f"no offset in the window overlaps the map: shift={(dy, dx)}, total_stride={(sy, sx)}, "
                f"map (h, w) = {(h, w)}"
            )
        return out

    def run(self) -> tuple[float | None, list[int] | None, bool]:
        """(equiv_rel_l2, equiv_offset, whether ftx is exactly a roll of fx)."""
        cands = self.candidates()
        bounds = self.bounds(cands)
        exact = {c: self.exact(*c) for c in cands if bounds[c] is None}
        tops = [iv[1] for iv in bounds.values() if iv is not None] + [e for e, _ in exact.values() if e is not None]
        if tops:  # every candidate whose interval reaches below the smallest upper bound: evaluated directly
            top = min(tops)
            near = [(c, iv[0] == 0.0) for c, iv in bounds.items() if iv is not None and iv[0] <= top]
            exact.update({c: self.exact(*c, zero) for c, zero in near})
        (sy, sx), (dy, dx) = self.ref.stride, (self.dy, self.dx)
        best_key, best, rolled = None, None, False
        for (u, v), (err, same) in exact.items():
            if err is None:
                continue
            dist = (u * sy - dy) ** 2 * sx * sx + (v * sx - dx) ** 2 * sy * sy  # exact, scaled
            key = (err, dist, u, v)
            if best_key is None or key < best_key:
                best_key, best, rolled = key, [u, v], same
        return (None if best_key is None else float(best_key[0])), best, rolled

    def bounds(self, cands: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[float, float] | None]:
        """Per candidate, an interval holding its directly computed error; None where undecided.

        With ``n`` elements, NA = |fx|^2 and NB = |ftx|^2, any float64 sum of
        ``n`` products is within ``n eps (NA + NB)`` of the exact one and the
        difference's squared norm is at most ``2 (NA + NB)``; the bounds below
        cover the estimate's and the direct evaluation's rounding together.
        """
        ref, b = self.ref, self.b
        na2, nb2 = ref.na * ref.na, self.nb * self.nb
        if not all(_SAFE[0] <= s <= _SAFE[1] for s in (na2, nb2)):  # also False for NaN
            return {c: None for c in cands}
        n = ref.a.size
        be = 6.0 * (n + 8) * _EPS * (na2 + nb2)
        br = 4.0 * (n + 8) * _EPS * na2
        sums = None if self.circular else (_SquareSums(ref.a, na2), _SquareSums(b, nb2))
        out: dict[tuple[int, int], tuple[float, float] | None] = {}
        dots = _roll_dots(ref.a, b, cands) if sums is None else _overlap_dots(ref.a, b, cands)
        for k, (u, v) in enumerate(cands):
            if sums is None:
                r, e = na2, na2 + nb2 - 2.0 * dots[k]
            else:
                r = sums[0].region(u, v, shifted=False)
                e = r + sums[1].region(u, v, shifted=True) - 2.0 * dots[k]
            if not (math.isfinite(e) and math.isfinite(r)) or r - br <= 0.0:
                out[(u, v)] = None
                continue
            lo = math.sqrt(max(e - be, 0.0) / (r + br)) * (1.0 - 1e-12)
            out[(u, v)] = (lo, math.sqrt((e + be) / (r - br)) * (1.0 + 1e-12))
        return out

    def exact(self, u: int, v: int, maybe_zero: bool = True) -> tuple[float | None, bool]:
        """(``|ftx - S_uv fx| / |S_uv fx|`` computed directly, whether ``ftx`` is exactly that roll).

        An exact roll is recognised by comparing values: then every difference
        is 0, so is their sum of squares, and with ``|fx| <= 1e150`` the
        denominator is finite in any summation order: the direct evaluation
        would give exactly 0.0. ``maybe_zero=False`` (the estimate excludes 0)
        skips the comparison.
        """
        ref, a, b = self.ref, self.ref.a, self.b
        if (u, v) == (0, 0):  # the same operations as rel_l2's: reuse it
            return _ratio(self.num0, ref.na), self.num0 == 0.0 and bool(np.array_equal(a, b))
        if self.circular and maybe_zero and ref.na <= 1e150:
            pieces = _roll_pieces(*a.shape[-2:], u, v)
            if all(np.array_equal(b[:, rb, cb], a[:, ra, ca]) for (rb, cb), (ra, ca) in pieces):
                return 0.0, True
        if not self.circular:
            cur, other = _overlap(a, b, u, v)
            d = cur - other  # C-contiguous, as the plain expression's; then summed block by block
            return _ratio(float(np.sqrt(_fused("sq", d))), ref.den(u, v, other, None)), False
        t, sq = ref.buf(0, b), ref.buf(1, b)
        if t is None:
            d = b - np.roll(a, (u, v), axis=(-2, -1))
            num = _norm(d)
        else:  # b - np.roll(a), written piece by piece
            for (rb, cb), (ra, ca) in _roll_pieces(*a.shape[-2:], u, v):
                np.subtract(b[:, rb, cb], a[:, ra, ca], out=t[:, rb, cb], dtype=np.float64)
            d = t
            num = float(np.sqrt(_fused("sq", t)))
        same = num == 0.0 and not d.any()
        return _ratio(num, ref.den(u, v, None, sq)), same


def compare(fx: Any, ftx: Any, shift: Any, total_stride: Any, mode: str = "circular") -> dict[str, Any]:
    """Invariance and equivariance metrics of ``ftx = f(T x)`` against ``fx = f(x)``.

    The metric definitions are in the module docstring. To compare one ``fx``
    with several shifted maps, :class:`Reference` (or :func:`compare_many`)
    computes what depends on ``fx`` only once; the values are the same.

    Parameters
    ----------
    fx, ftx : array_like, shape (C, h, w) or (h, w)
        Feature maps of the original and the shifted input, equal shapes.
    shift : (int, int)
        The input shift ``(dy, dx)`` (positive: content down / right).
    total_stride : int or (int, int)
        Product of the strides up to this map, ``(Sy, Sx)``.
    mode : {'circular', 'crop'}
        How the input was shifted; sets what ``S_uv`` means.

    Returns
    -------
    dict
        ``cosine``, ``rel_l2``, ``equiv_rel_l2`` (float or None),
        ``equiv_offset`` ([u, v] or None), ``global_rel_diff`` (float or None).

    Raises
    ------
    ValueError
        For mismatched shapes, a bad shift, stride or mode, or (crop mode) no
        offset in the window overlapping the map.

    Examples
    --------
    >>> import numpy as np
    >>> fx = np.arange(1.0, 17.0).reshape(1, 4, 4)
    >>> compare(fx, fx, (0, 0), 1, "circular")
    {'cosine': 1.0, 'rel_l2': 0.0, 'equiv_rel_l2': 0.0, 'equiv_offset': [0, 0], 'global_rel_diff': 0.0}
    >>> ftx = np.zeros_like(fx); ftx[:, 1:, :] = fx[:, :-1, :]   # moved down by one, cropped
    >>> r = compare(fx, ftx, (2, 0), 2, "crop")
    >>> r["equiv_rel_l2"], r["equiv_offset"]
    (0.0, [1, 0])
    """
    if mode not in SHIFT_MODES:
        raise ValueError(f"mode must be one of {', '.join(SHIFT_MODES)}, got {mode!r}")
    dy, dx = _shift(shift)
    stride = pair(total_stride, "total_stride")
    ra = _raw_map(fx, "fx")
    a = _operand(ra, mode)  # one call: fx cannot change meanwhile, no copy needed
    rb = _raw_map(ftx, "ftx")
    b = _operand(rb, mode)
    if a.shape != b.shape:
        raise ValueError(f"fx and ftx must have the same shape, got {a.shape} and {b.shape}")
    return Reference._checked(a, stride, mode, ra)._metrics(rb, b, dy, dx)


def compare_many(fx: Any, ftxs: Any, shifts: Any, total_stride: Any, mode: str = "circular") -> list[dict[str, Any]]:
    """:func:`compare` of one ``fx`` with every ``ftx`` of ``ftxs`` and its shift, sharing ``fx``'s work.

    ``compare_many(fx, [f1, f2], [s1, s2], S, m) == [compare(fx, f1, s1, S, m),
    compare(fx, f2, s2, S, m)]``. When the shifted maps come one at a time (an
    invariance run computes ``f(T x)`` shift by shift), keep a
    :class:`Reference` instead and call its ``compare`` for each.

    Examples
    --------
    >>> import numpy as np
    >>> fx = np.arange(16.0).reshape(4, 4)
    >>> [r["equiv_offset"] for r in compare_many(fx, [fx, np.roll(fx, 1, axis=1)], [(0, 0), (0, 1)], 1)]
    [[0, 0], [0, 1]]
    """
    ftxs, shifts = list(ftxs), list(shifts)
    if len(ftxs) != len(shifts):
        raise ValueError(f"ftxs and shifts must have the same length, got {len(ftxs)} and {len(shifts)}")
    ref = Reference(fx, total_stride, mode)
    return [ref.compare(f, s) for f, s in zip(ftxs, shifts)]
