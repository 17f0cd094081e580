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


def _as_map(f: Any, name: str) -> np.ndarray:
    a = np.asarray(f)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (C, h, w) or (h, w), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    return a.astype(np.float64)


def _descriptor(f: np.ndarray) -> np.ndarray:
    """Per channel (mean, max) over space; the mean summed in sorted order."""
    flat = np.sort(f.reshape(f.shape[0], -1), axis=1)  # NaN sorts last and propagates
    return np.stack([flat.sum(axis=1) / flat.shape[1], flat[:, -1]], axis=1).ravel()


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


def compare(fx: Any, ftx: Any, shift: Any, total_stride: Any, mode: str = "circular") -> dict[str, Any]:
    """Invariance and equivariance metrics of ``ftx = f(T x)`` against ``fx = f(x)``.

    The metric definitions are in the module docstring.

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
    sy, sx = pair(total_stride, "total_stride")
    a = _as_map(fx, "fx")
    b = _as_map(ftx, "ftx")
    if a.shape != b.shape:
        raise ValueError(f"fx and ftx must have the same shape, got {a.shape} and {b.shape}")

    with np.errstate(all="ignore"):
        na, nb = _norm(a), _norm(b)
        cosine = None
        if na > 0 and nb > 0 and math.isfinite(na) and math.isfinite(nb):
            c = _finite(np.sum(a * b) / (na * nb))
            cosine = None if c is None else min(1.0, max(-1.0, c))
        rel = _ratio(_norm(b - a), na)

        # equivariance over the offset window
        us = range(dy // sy - 1, -(-dy // sy) + 2)
        vs = range(dx // sx - 1, -(-dx // sx) + 2)
        best_key, best = None, None
        any_overlap = False
        for u in us:
            for v in vs:
                if mode == "circular":
                    ref, cur = np.roll(a, (u, v), axis=(-2, -1)), b
                else:
                    ov = _overlap(a, b, u, v)
                    if ov is None:
                        continue
                    cur, ref = ov
                any_overlap = True
                err = _ratio(_norm(cur - ref), _norm(ref))
                if err is None:
                    continue
                dist = (u * sy - dy) ** 2 * sx * sx + (v * sx - dx) ** 2 * sy * sy  # exact, scaled
                key = (err, dist, u, v)
                if best_key is None or key < best_key:
                    best_key, best = key, [u, v]
        if not any_overlap:
            raise ValueError(
                f"no offset in the window overlaps the map: shift={(dy, dx)}, total_stride={(sy, sx)}, "
                f"map (h, w) = {a.shape[-2:]}"
            )

        da, db = _descriptor(a), _descriptor(b)
        glob = _ratio(_norm(db - da), _norm(da))

    return {
        "cosine": cosine,
        "rel_l2": rel,
        "equiv_rel_l2": None if best_key is None else float(best_key[0]),
        "equiv_offset": best,
        "global_rel_diff": glob,
    }
