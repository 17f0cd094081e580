"""PyTorch's pooling ops as NumPy cores, to the last bit.

Knows: max / min / avg / lp pooling (banded and threaded on
:mod:`poolcli._bands`), adaptive and global pooling, max pooling with indices
and unpooling, with the semantics of ``torch.nn.functional`` (``max_pool2d``,
``avg_pool2d``, ``lp_pool2d``, ``adaptive_{max,avg}_pool2d``,
``max_pool2d(return_indices=True)``, ``max_unpool2d``), tested against
fixtures that PyTorch 2.13 produced (``tests/data/make_golden.py``).

How the cores compute (no Python loop over pixels):

* max / min: the input is padded with -inf / +inf and reduced separably, first
  along rows then along columns, by a loop over the window offsets with strided
  views, band by band. Max is exact, so separability changes nothing; a band
  whose result holds a zero and whose input a -0.0 is redone columns first,
  PyTorch's row-major "first maximum wins" order. NaN propagates.
* avg: a loop over the ``kh * kw`` window offsets in row-major order adding
  strided views into an accumulator of the input dtype, then one division by
  the divisor: PyTorch's CPU kernel's order, so results are bit-identical.
* lp: PyTorch's composition ``(avg(x**p) * kh * kw) ** (1/p)`` (composition
  goes downward, as in ``torch/nn/functional.py``).
* adaptive avg: bins of at most 64 values are summed row-major in the input
  dtype, as PyTorch's kernel (bit-identical). Larger bins are summed in
  float64 and rounded once (the default, ``summation='float64'``): that is
  *more accurate* than PyTorch, whose float32 running sum drifts by up to
  about ``n * 2**-24`` relative for a bin of ``n`` values (typically
  ``sqrt(n) * 2**-24`` on varied data). A 1000x1000 plane of 0.1 pooled to
  2x2 gives 0.1 here, 0.0997598 in PyTorch (0.24 % off, bins of 250,000);
  bins of a few thousand values can differ by more than 1e-6. With
  ``summation='torch'`` the large bins are summed PyTorch's way (gathered
  row-major, ``np.add.accumulate``: sequential, vectorised) and equal
  PyTorch bit for bit. A 1x1 output is PyTorch's ``mean`` (a cascade sum,
  accurate), matched within 1e-6 by the float64 sum in both settings.

NaN: wherever PyTorch's output is NaN, poolcli's is NaN too, but the sign
and payload bits of a NaN are not reproduced: they depend on the order in
which the hardware meets NaN operands (e.g. avg of ``[[inf, -inf], [nan, 0]]``
is a NaN with the sign bit set in PyTorch and clear here, adaptive min the
reverse). Compare NaNs with ``np.isnan``, not bit patterns.

Imports: numpy, :mod:`poolcli._checks`, :mod:`poolcli._bands` and
:mod:`.geometry` only.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .._bands import extend, run_bands, scratch
from .._checks import as_planes, is_int, pair, restore_planes
from .geometry import (
    PoolGeometry,
    adaptive_bins,
    check_divisor_override,
    check_padding_mode,
    padding_sides,
    pad_planes,
    pool_geometry,
    read_extent,
    window_taps,
)

ADAPTIVE_MODES = ("max", "avg", "min")

__all__ = [
    "ADAPTIVE_MODES",
    "max_pool2d",
    "min_pool2d",
    "avg_pool2d",
    "lp_pool2d",
    "adaptive_pool2d",
    "global_pool2d",
    "max_pool2d_with_indices",
    "unpool2d",
    "UnpoolView",
    "check_p",
]


# ----------------------------------------------------------------------------- bands


def _band_input(a: np.ndarray, g: PoolGeometry, p0, p1, r0, r1, fill: float, circular: bool) -> np.ndarray:
    """The padded input rows that output rows r0:r1 read (a view when no padding is involved)."""
    top, left = g.pads[0], g.pads[2]
    start = r0 * g.stride[0] - top
    stop = (r1 - 1) * g.stride[0] - top + g.effective_size[0]
    need_w = read_extent(g)[1]
    return extend(a[p0:p1], (start, stop), (-left, need_w - left), "wrap" if circular else "constant", fill,
                         key="band")


def _run(a: np.ndarray, g: PoolGeometry, work) -> np.ndarray:
    """``work(out, p0, p1, r0, r1)`` over the bands of output rows; returns ``out`` (P, OH, OW)."""
    out = np.empty((a.shape[0],) + g.out, dtype=a.dtype)
    row_bytes = a.shape[2] * a.itemsize * g.stride[0]
    run_bands(lambda *t: work(out, *t), a.shape[0], g.out[0], row_bytes, a.size)
    return out


def _extreme_band(band: np.ndarray, g: PoolGeometry, n_rows: int, ufunc, dst: np.ndarray, rows_first: bool) -> None:
    """Separable max/min of one band into ``dst`` (n_rows output rows).

    ``ufunc(new, acc)``: on equal values NumPy's maximum/minimum return the
    second operand, so the accumulator (the earlier tap) wins, as in PyTorch.
    """
    (kh, kw), (sh, sw), (dh, dw), ow = g.size, g.stride, g.dilation, g.out[1]

    def rows(src, i):
        return src[:, i * dh : i * dh + (n_rows - 1) * sh + 1 : sh, :]

    def cols(src, j):
        return src[:, :, j * dw : j * dw + (ow - 1) * sw + 1 : sw]

    first, second, k1, k2 = (rows, cols, kh, kw) if rows_first else (cols, rows, kw, kh)
    v0 = first(band, 0)
    acc = scratch("extreme", v0.shape, v0.dtype)
    np.copyto(acc, v0)
    for i in range(1, k1):
        ufunc(first(band, i), acc, out=acc)
    np.copyto(dst, second(acc, 0))
    for j in range(1, k2):
        ufunc(second(acc, j), dst, out=dst)


def _reduce_extreme(a: np.ndarray, g: PoolGeometry, ufunc, fill: float, circular: bool = False) -> np.ndarray:
    """Max (``np.maximum``) or min (``np.minimum``) pooling of (P, H, W), banded and threaded.

    Rows are reduced first, for contiguous inner loops. That can differ from
    PyTorch's row-major "first extreme wins" only in the sign of a zero result
    when the window holds both -0.0 and +0.0; a band whose output has a zero
    and whose input has a -0.0 is therefore redone columns first (within each
    row, then the topmost row), which is PyTorch's order.
    """

    def work(out, p0, p1, r0, r1):
        band = _band_input(a, g, p0, p1, r0, r1, fill, circular)
        dst = out[p0:p1, r0:r1]
        _extreme_band(band, g, r1 - r0, ufunc, dst, rows_first=True)
        if (dst == 0).any() and (np.signbit(band) & (band == 0)).any():
            _extreme_band(band, g, r1 - r0, ufunc, dst, rows_first=False)

    return _run(a, g, work)


def tap_counts(n: int, n_out: int, k: int, s: int, d: int, p0: int, lo: int, hi: int) -> np.ndarray:
    """Per output index, how many window taps fall in [lo, hi) of the input axis."""
    starts = np.arange(n_out)[:, None] * s - p0
    pos = starts + np.arange(k)[None, :] * d
    return ((pos >= lo) & (pos < hi)).sum(axis=1)


def _divisors(g: PoolGeometry, hw, count_include_pad: bool, divisor_override, circular: bool):
    """(per-row, per-column) tap counts whose outer product is avg's divisor."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = g.size, g.stride, g.dilation, g.out
    h, w = hw
    top, bottom, left, right = g.pads
    if divisor_override is not None:
        return np.ones(oh, dtype=np.int64), np.full(ow, divisor_override, dtype=np.int64)
    if circular:  # every tap reads a real (wrapped) value
        return np.full(oh, kh), np.full(ow, kw)
    if count_include_pad and not g.same:
        return (tap_counts(h, oh, kh, sh, dh, top, -top, h + bottom),
                tap_counts(w, ow, kw, sw, dw, left, -left, w + right))
    return tap_counts(h, oh, kh, sh, dh, top, 0, h), tap_counts(w, ow, kw, sw, dw, left, 0, w)


def _avg(a: np.ndarray, g: PoolGeometry, count_include_pad: bool, divisor_override, circular: bool = False) -> np.ndarray:
    """Average pooling of (P, H, W), banded and threaded, summing in PyTorch's order (bit-identical)."""
    kh, kw = g.size
    (sh, sw), (dh, dw), ow = g.stride, g.dilation, g.out[1]
    ch, cw = _divisors(g, a.shape[1:], count_include_pad, divisor_override, circular)
    # The divisor is the outer product ch x cw; one number when it is constant
    # (no padding or overhang counted differently), else built band by band.
    constant = bool((ch == ch[0]).all() and (cw == cw[0]).all())
    scalar = a.dtype.type(int(ch[0]) * int(cw[0])) if constant else None

    def work(out, p0, p1, r0, r1):
        band = _band_input(a, g, p0, p1, r0, r1, 0.0, circular)
        acc = out[p0:p1, r0:r1]
        n = r1 - r0
        acc.fill(0)
        # Row-major over the window, into an accumulator of the input dtype,
        # as PyTorch's CPU kernel sums (padded taps add exact zeros).
        for i in range(kh):
            rows = band[:, i * dh : i * dh + (n - 1) * sh + 1 : sh, :]
            for j in range(kw):
                acc += rows[:, :, j * dw : j * dw + (ow - 1) * sw + 1 : sw]
        if constant:
            if scalar != 0:
                np.divide(acc, scalar, out=acc)
            else:
                acc.fill(0)
            return
        div = np.multiply.outer(ch[r0:n + r0], cw).astype(a.dtype)
        empty = div == 0  # a window that counts nothing gives 0, as in PyTorch
        div[empty] = 1
        np.divide(acc, div, out=acc)
        if empty.any():
            acc[:, empty] = 0

    return _run(a, g, work)


def _torch_pow(x: np.ndarray, p: float) -> np.ndarray:
    """``x ** p`` with the exact fast paths of PyTorch's ``pow(tensor, scalar)``."""
    if p == 1:
        return x.copy()
    if p == 2:
        return x * x
    if p == 3:
        return x * x * x
    if p == 0.5:
        return np.sqrt(x)
    if p == -1:
        return np.reciprocal(x)
    if p == -2:
        return np.reciprocal(x * x)
    with np.errstate(invalid="ignore"):
        return np.power(x, x.dtype.type(p))


def check_p(p: Any) -> float:
    """The norm of lp pooling: required, a finite number > 0."""
    if p is None:
        raise ValueError("p (the norm of lp pooling) is required for mode='lp', got None")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(p) or p <= 0:
        raise ValueError(f"p must be a finite number > 0, got {p!r}")
    return float(p)


# ----------------------------------------------------------------------------- the window modes


def _setup(x, size, stride, padding, dilation, ceil_mode, divisor_override, padding_mode, p=None, lp=False):
    """Validate in pool2d's order; returns (planes, lead, geometry, circular, p)."""
    circular = check_padding_mode(padding_mode)
    check_divisor_override(divisor_override)
    pnorm = check_p(p) if lp else None
    planes, lead = as_planes(x)
    g = pool_geometry(planes.shape[1:], size, stride, padding, dilation, ceil_mode)
    return planes, lead, g, circular, pnorm


def max_pool2d(x: Any, size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None, *,
               padding_mode: str = "default") -> np.ndarray:
    """Max pooling, ``F.max_pool2d`` (pads with -inf). Arguments as :func:`poolcli.pooling.pool2d`.

    ``count_include_pad`` and ``divisor_override`` do not apply (checked, then
    ignored): every window mode takes the same parameter list.

    >>> max_pool2d(np.arange(16.0).reshape(4, 4), 2)
    array([[ 5.,  7.],
           [13., 15.]])
    """
    planes, lead, g, circular, _ = _setup(x, size, stride, padding, dilation, ceil_mode, divisor_override, padding_mode)
    return restore_planes(_reduce_extreme(planes, g, np.maximum, -np.inf, circular), lead)


def min_pool2d(x: Any, size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None, *,
               padding_mode: str = "default") -> np.ndarray:
    """Min pooling, ``-F.max_pool2d(-x)`` (pads with +inf). Arguments as :func:`max_pool2d`.

    >>> min_pool2d(np.arange(16.0).reshape(4, 4), 2)
    array([[ 0.,  2.],
           [ 8., 10.]])
    """
    planes, lead, g, circular, _ = _setup(x, size, stride, padding, dilation, ceil_mode, divisor_override, padding_mode)
    return restore_planes(_reduce_extreme(planes, g, np.minimum, np.inf, circular), lead)


def avg_pool2d(x: Any, size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None, *,
               padding_mode: str = "default") -> np.ndarray:
    """Average pooling, ``F.avg_pool2d`` (with dilation too). Arguments as :func:`poolcli.pooling.pool2d`.

    >>> avg_pool2d(np.arange(16.0).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    planes, lead, g, circular, _ = _setup(x, size, stride, padding, dilation, ceil_mode, divisor_override, padding_mode)
    return restore_planes(_avg(planes, g, bool(count_include_pad), divisor_override, circular), lead)


def lp_pool2d(x: Any, size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
              count_include_pad: bool = True, divisor_override: int | None = None, *,
              padding_mode: str = "default", p: float) -> np.ndarray:
    """Power-average pooling, ``F.lp_pool2d``: ``(avg(x**p) * kh * kw) ** (1/p)``.

    PyTorch's composition over :func:`avg_pool2d`'s core: the p-norm of each
    full window. ``p`` (keyword-only, required) is a finite number > 0.

    >>> lp_pool2d(np.array([[3.0, 4.0]]), (1, 2), p=2)
    array([[5.]])
    """
    planes, lead, g, circular, pnorm = _setup(x, size, stride, padding, dilation, ceil_mode, divisor_override,
                                              padding_mode, p, lp=True)
    avg = _avg(_torch_pow(planes, pnorm), g, bool(count_include_pad), divisor_override, circular)
    with np.errstate(invalid="ignore"):
        out = _torch_pow(avg * planes.dtype.type(g.size[0] * g.size[1]), 1.0 / pnorm)
    return restore_planes(out, lead)


# ----------------------------------------------------------------------------- adaptive / global


def _adaptive_axis(a: np.ndarray, axis: int, n_out: int, ufunc, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Reduce ``a`` over adaptive bins along ``axis`` with ``ufunc.reduceat``.

    Bins may overlap, so reduceat gets the interleaved index list
    [s0, e0, s1, e1, ...] and every second result is kept; one padding element
    keeps every index in range. ``reduceat`` keeps the later of equal values,
    so for max the axis is reversed: the earliest tap wins, as in PyTorch
    (which matters only for the sign of a zero).
    """
    n = a.shape[axis]
    starts, ends = adaptive_bins(n, n_out)
    if ufunc is np.maximum:
        a = np.flip(a, axis)
        starts, ends = n - ends, n - starts
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, 1)
    ap = np.pad(a, pad, constant_values=fill)
    idx = np.stack([starts, ends], axis=1).ravel()
    red = ufunc.reduceat(ap, idx, axis=axis)
    sl = [slice(None)] * a.ndim
    sl[axis] = slice(0, None, 2)
    return red[tuple(sl)], ends - starts


_EXACT_TAPS = 64  # adaptive avg: up to this many window offsets, a loop over them


def _adaptive_avg(a: np.ndarray, oh: int, ow: int, torch_sum: bool = False) -> np.ndarray:
    """Adaptive average; with ``torch_sum`` bit-identical to PyTorch's CPU kernel (see the module docstring).

    PyTorch sums each bin row-major, one value after the other, in the input
    dtype, then divides by the bin height, then by its width. With few window
    offsets (the usual case) that is a loop over the offsets with masked
    gathers; for large bins each bin's values are gathered in row-major order
    (zeros after a short bin's rows: adding an exact zero changes no partial
    sum) and summed by ``np.add.accumulate``, which is sequential: the same
    additions in the same order, with no Python loop over pixels. Memory:
    about the input times the bins' overlap. A 1x1 output is PyTorch's
    ``mean`` (a cascade sum): there the float64 sum divided once and
    rounded once, within 1e-6 relative of it.
    """
    h, w = a.shape[1:]
    sh, eh = adaptive_bins(h, oh)
    sw, ew = adaptive_bins(w, ow)
    lh, lw = eh - sh, ew - sw
    if int(lh.max()) * int(lw.max()) > _EXACT_TAPS:
        if oh == ow == 1 or not torch_sum:  # float64, rounded once (1x1: PyTorch's mean)
            s, _ = _adaptive_axis(a.astype(np.float64), 2, ow, np.add, 0.0)
            s, _ = _adaptive_axis(s, 1, oh, np.add, 0.0)
            return (s / np.multiply.outer(lh, lw)).astype(a.dtype)
        th, tw = np.arange(int(lh.max())), np.arange(int(lw.max()))
        rows = np.minimum(sh[:, None] + th, eh[:, None] - 1)  # (oh, Lh)
        cols = np.minimum(sw[:, None] + tw, ew[:, None] - 1)  # (ow, Lw)
        ok = (th < lh[:, None])[:, :, None, None] & (tw < lw[:, None])[None, None]  # (oh, Lh, ow, Lw)
        g = np.where(ok, a[:, rows][:, :, :, cols], a.dtype.type(0))
        g = g.transpose(0, 1, 3, 2, 4).reshape(a.shape[0], oh, ow, -1)
        acc = np.add.accumulate(g, axis=-1)[..., -1] + a.dtype.type(0)  # PyTorch's sum starts at +0.0
    else:
        acc = np.zeros((a.shape[0], oh, ow), dtype=a.dtype)
        zero = a.dtype.type(0)
        for th_ in range(int(lh.max())):
            rows_ = a[:, np.minimum(sh + th_, eh - 1), :]
            row_ok = (th_ < lh)[:, None]
            for tw_ in range(int(lw.max())):
                tap = rows_[:, :, np.minimum(sw + tw_, ew - 1)]
                acc += np.where(row_ok & (tw_ < lw)[None, :], tap, zero)
    return acc / lh.astype(a.dtype)[:, None] / lw.astype(a.dtype)[None, :]


def adaptive_pool2d(x: Any, mode: str, output_size: Any, *, summation: str = "float64") -> np.ndarray:
    """Adaptive pooling to a fixed output size, as ``F.adaptive_{max,avg}_pool2d``.

    Output cell ``(i, j)`` pools rows ``floor(i*H/OH) .. ceil((i+1)*H/OH) - 1``
    and likewise columns (PyTorch's start/end rule); windows may overlap when
    OH does not divide H, and OH may exceed H.

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
    mode : {'max', 'avg', 'min'}
    output_size : int or (int or None, int or None)
        ``None`` keeps that input dimension.
    summation : {'float64', 'torch'}, keyword-only
        avg with bins of more than 64 values: sum in float64, rounded once
        (the default; more accurate than PyTorch, see the module docstring
        for the size of the difference), or in PyTorch's order and dtype
        (bit-identical to ``F.adaptive_avg_pool2d``). Smaller bins are
        always PyTorch's.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(25, dtype=np.float64).reshape(5, 5)
    >>> adaptive_pool2d(x, "max", 2)
    array([[12., 14.],
           [22., 24.]])
    >>> adaptive_pool2d(x, "avg", (1, None)).shape
    (1, 5)
    """
    mode = str(mode).lower()
    if mode not in ADAPTIVE_MODES:
        raise ValueError(f"mode must be one of {', '.join(ADAPTIVE_MODES)} for adaptive pooling, got {mode!r}")
    planes, lead = as_planes(x)
    h, w = planes.shape[1:]
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        osz = (h if output_size[0] is None else output_size[0], w if output_size[1] is None else output_size[1])
    else:
        osz = output_size
    oh, ow = pair(osz, "output_size")
    if summation not in ("float64", "torch"):
        raise ValueError(f"summation must be 'float64' or 'torch', got {summation!r}")
    if mode == "avg":
        out = _adaptive_avg(planes, oh, ow, summation == "torch")
    else:
        src = planes if mode == "max" else -planes
        m, _ = _adaptive_axis(src, 2, ow, np.maximum, -np.inf)
        m, _ = _adaptive_axis(m, 1, oh, np.maximum, -np.inf)
        out = m if mode == "max" else -m
    return restore_planes(out, lead)


def global_pool2d(x: Any, mode: str) -> np.ndarray:
    """Global max / avg / min pooling: one value per plane, shape ``(..., 1, 1)``.

    Equals ``adaptive_pool2d(x, mode, 1)`` (PyTorch computes its 1x1 case
    with ``mean``); avg sums in float64.

    >>> import numpy as np
    >>> global_pool2d(np.arange(6.0).reshape(2, 3), "avg")
    array([[2.5]])
    """
    mode = str(mode).lower()
    if mode not in ADAPTIVE_MODES:
        raise ValueError(f"mode must be one of {', '.join(ADAPTIVE_MODES)} for global pooling, got {mode!r}")
    planes, lead = as_planes(x)
    if mode in ("max", "min"):
        out = planes.max(axis=(1, 2), keepdims=True) if mode == "max" else planes.min(axis=(1, 2), keepdims=True)
        if (out == 0).any():  # the sign of a zero: PyTorch's first-in-row-major rule
            return adaptive_pool2d(x, mode, 1)
    else:
        out = planes.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(planes.dtype)
    return restore_planes(out, lead)


# ----------------------------------------------------------------------------- max with indices


def _first_real(n_out: int, s: int, d: int, p0: int) -> np.ndarray:
    """Per window, the first tap position >= 0 (PyTorch's ``while (ih0 < 0) ih0 += dilation``)."""
    start = np.arange(n_out, dtype=np.int64) * s - p0
    return np.where(start < 0, start + (-(start) + d - 1) // d * d, start)


def max_pool2d_with_indices(
    x: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    *,
    int32: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling that also returns where each maximum came from, as PyTorch does.

    Equals ``F.max_pool2d(x, size, stride, padding, dilation, ceil_mode,
    return_indices=True)`` bit for bit (values and indices), tested on golden
    fixtures with ties, NaN, -inf, padding, dilation and ceil mode.

    Conventions (PyTorch's CPU kernel): an index is the flat position
    ``ih * W + iw`` in the input plane (int64). Taps are scanned in row-major
    window order and a tap replaces the current best when ``val > best or
    isnan(val)``: the first maximum wins ties (also between -0.0 and +0.0), a
    NaN wins over any number, and of several NaNs the last one wins. Padded
    taps are never chosen: a window whose input taps are all -inf gives -inf at
    the index of its first input tap. A window with no input tap at all (only
    possible with per-side or 'same' padding and dilation) gives -inf and
    index -1.

    With ``int32=True`` the indices are int32 (half the memory) when every
    position of a plane fits, else int64 as always.

    Returns
    -------
    out : numpy.ndarray, shape (..., OH, OW), x's float dtype
    indices : numpy.ndarray of int64 (or int32, see above), the same shape

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1., 5., 5., 0.], [2., 3., 4., 8.]])
    >>> out, idx = max_pool2d_with_indices(x, 2)
    >>> out
    array([[5., 8.]])
    >>> idx
    array([[1, 7]])
    """
    planes, lead = as_planes(x)
    h, w = planes.shape[1:]
    g = pool_geometry((h, w), size, stride, padding, dilation, ceil_mode)
    (kh, kw), (oh, ow) = g.size, g.out
    xp = pad_planes(planes, g, -np.inf)
    best = np.full((planes.shape[0], oh, ow), -np.inf, dtype=planes.dtype)
    # Which tap won, per window (the index is built once at the end, in bands: building a full
    # int64 index array per tap took 2.8 s and 3 x 134 MB on an 8192x8192 plane, measured).
    none = kh * kw
    tap_dtype = np.uint8 if none < 255 else np.uint16 if none < 65535 else np.int64
    won = np.full(best.shape, none, dtype=tap_dtype)
    # NaN (min propagates it) or -0.0 (only where the least value is <= 0: a magnitude map is positive)
    least = planes.min() if planes.dtype.kind == "f" and planes.size > 0 else None
    nan = least is not None and bool(np.isnan(least))
    if nan or (least is not None and least <= 0 and _negative_zero(planes)):
        upd = np.empty(best.shape, dtype=bool)
        for i, j, v in window_taps(xp, g):  # the kernel's own rule, tap by tap
            np.greater(v, best, out=upd)
            if nan:
                upd |= np.isnan(v)
            np.copyto(best, v, where=upd)
            np.copyto(won, i * kw + j, where=upd, casting="unsafe")
        del upd
    else:
        _branch_free_taps(xp, g, best, won)
    del xp
    index_dtype = np.int32 if int32 and h * w < 2**31 else np.int64
    return restore_planes(best, lead), restore_planes(_tap_indices(won, g, (h, w), index_dtype), lead)


def _negative_zero(a: np.ndarray) -> bool:
    """Whether ``a`` holds a -0.0 (then which of two equal zeros wins decides a value's sign)."""
    if a.dtype.kind != "f" or a.size == 0:
        return False
    bits = a.view(f"i{a.itemsize}")  # -0.0 is the one value whose bits are the integer minimum
    return bool((bits == np.iinfo(bits.dtype).min).any())  # one compare (a[a == 0] gathered: 3x the time)


def _branch_free_taps(xp: np.ndarray, g: Any, best: np.ndarray, won: np.ndarray) -> None:
    """The kernel's result without NaN or -0.0 in the input, from whole-array operations that do not
    branch per pixel: ``best`` the taps' maximum, ``won`` the first tap equal to it (the kernel's
    ``val > best`` keeps the first of equal values), ``kh * kw`` (no tap) where the maximum is -inf.

    The tap-by-tap ``copyto(..., where=)`` mispredicts on every other pixel of a photo: 2.0 ms against
    0.5 ms for 2x2 windows on a 512x512 plane (measured).
    """
    taps = [v for _, _, v in window_taps(xp, g)]
    none = g.size[0] * g.size[1]

    def work(p0: int, p1: int, r0: int, r1: int) -> None:  # one band of output rows, in cache, on the shared pool
        b, wn = best[p0:p1, r0:r1], won[p0:p1, r0:r1]
        views = [v[p0:p1, r0:r1] for v in taps]
        np.copyto(b, views[0])
        for v in views[1:]:
            np.maximum(b, v, out=b)
        # The first tap equal to the maximum is the number of taps before it that differ from it:
        #     won = n0 + n0 n1 + ... + n0 n1 ... n(K-2),  n_t = (tap t != maximum)
        # (the maximum is one of the taps, so at most K - 1), by Horner's rule from the innermost term:
        # K - 1 comparisons and 2 (K - 2) small-integer operations (2x2: 0.27 against 0.53 ms on a 512x512
        # plane for the comparison, subtraction, product and sum per tap it replaces, measured)
        if len(views) == 1:
            wn[...] = 0
        else:
            differs = scratch("differs", b.shape, bool)
            np.not_equal(views[-2], b, out=differs)
            np.copyto(wn, differs, casting="unsafe")
            for v in reversed(views[:-2]):
                wn += 1
                np.not_equal(v, b, out=differs)
                np.multiply(wn, differs, out=wn, casting="unsafe")
        inf = np.equal(b, -np.inf, out=scratch("inf", b.shape, bool))  # -inf windows: no tap wins
        if inf.any():
            np.copyto(wn, none, where=inf, casting="unsafe")

    # in bands of output rows (8192x8192, 2x2: 280 ms on whole arrays, out of cache and on one thread)
    row_bytes = xp.shape[2] * xp.itemsize * g.stride[0]
    run_bands(work, best.shape[0], best.shape[1], row_bytes, xp.size)


def _tap_indices(won: np.ndarray, g: Any, hw: tuple[int, int], dtype: Any) -> np.ndarray:
    """Flat input positions ``ih * W + iw`` from the winning tap numbers (``kh * kw``: no tap won, so the
    window's first input tap, or -1 for a window without one), in bands of rows."""
    h, w = hw
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = g.size, g.stride, g.dilation, g.out
    top, left = g.pads[0], g.pads[2]
    r0 = _first_real(oh, sh, dh, top)
    c0 = _first_real(ow, sw, dw, left)
    rstart = np.arange(oh, dtype=np.int64) * sh - top
    cstart = np.arange(ow, dtype=np.int64) * sw - left
    none = kh * kw
    taps = np.arange(none)
    # a winning tap's offset from its window's start, in flat positions (a table, taken per window:
    # 0.4 ms against 1.3 ms for row and column arithmetic per window on 256x256 windows, measured)
    offset = np.append((taps // kw) * dh * w + (taps % kw) * dw, 0).astype(dtype)
    missing = bool((won == none).any())  # windows no tap won (all -inf or padding): their first input tap
    out = np.empty(won.shape, dtype=dtype)
    rows = max(1, (1 << 17) // max(1, ow))  # temporaries of at most 1 MiB each
    # each window's first position (may be < 0 under padding), in the indices' dtype: it fits, as the
    # positions do (a window starts before the input's end)
    row_base, col_base = (rstart * w).astype(dtype), cstart.astype(dtype)
    for a in range(0, oh, rows):
        b = min(oh, a + rows)
        base = np.add(row_base[a:b, None], col_base[None, :])
        if missing:
            init = np.where((r0[a:b] < h)[:, None] & (c0 < w)[None, :], r0[a:b, None] * w + c0[None, :], -1)
        for p in range(won.shape[0]):
            t = won[p, a:b]
            o = out[p, a:b]
            offset.take(t, out=o, mode="clip")  # (t is a tap number or none: in range; "raise" copies)
            o += base
            if missing:
                np.copyto(o, init, where=t == none, casting="unsafe")
    return out


# ----------------------------------------------------------------------------- unpooling


def unpool2d(
    pooled: Any,
    indices: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> np.ndarray:
    """Place each pooled value back at its index, zeros elsewhere: ``F.max_unpool2d``.

    The inverse companion of :func:`max_pool2d_with_indices` (a picture of what
    max pooling kept). Equal to ``torch.nn.functional.max_unpool2d`` on the
    golden fixtures.

    Parameters
    ----------
    pooled : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
    indices : array_like of ints, the shape of ``pooled``
        Flat positions ``ih * W_out + iw`` in each output plane.
    size, stride : int or (int, int)
        The pooling window and stride (stride defaults to size).
    padding : int, (int, int), (top, bottom, left, right), 'valid' or 'same'
        'same' needs ``output_size`` (the pooled size does not determine it).
    output_size : (H, W), or with leading dims like PyTorch ((N, C, H, W)), optional
        Default ``(H_in - 1) * stride - pad_top - pad_bottom + size`` per axis
        (PyTorch's ``(H_in - 1) * stride - 2 * padding + size``). Like PyTorch,
        a given size must lie strictly between ``default - stride`` and
        ``default + stride``; with 'same', ``ceil(H / stride)`` must be H_in.

    Returns
    -------
    numpy.ndarray, shape (..., H, W), pooled's float dtype
        When several values share an index, the last one in row-major order
        wins (PyTorch's CPU kernel writes serially within a plane).

    Raises
    ------
    ValueError
        For indices of another shape or non-integer dtype, an index outside
        ``[0, H * W)`` (also -1, the index of a window that held no input), or
        an output_size out of range.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1., 5., 5., 0.], [2., 3., 4., 8.]])
    >>> out, idx = max_pool2d_with_indices(x, 2)
    >>> unpool2d(out, idx, 2)
    array([[0., 5., 0., 0.],
           [0., 0., 0., 8.]])
    """
    planes, lead = as_planes(pooled, "pooled")
    ind = np.asarray(indices)
    if ind.shape != tuple(lead) + planes.shape[1:]:
        want = tuple(lead) + planes.shape[1:]
        raise ValueError(f"indices must have the shape of pooled {want}, got shape {ind.shape}")
    if ind.dtype.kind not in "iu":
        raise ValueError(f"indices must be an integer array, got dtype {ind.dtype}")
    kh, kw = pair(size, "size")
    sh, sw = (kh, kw) if stride is None else pair(stride, "stride")
    pads = padding_sides(padding)
    ih, iw = planes.shape[1:]
    if output_size is not None:
        if isinstance(output_size, (tuple, list, np.ndarray)) and 2 <= len(output_size) <= 4:
            osz = tuple(output_size)[-2:]
        else:
            raise ValueError(f"output_size must be (H, W) or a shape ending in (H, W), got {output_size!r}")
        if not all(is_int(v) and v >= 1 for v in osz):
            raise ValueError(f"output_size must hold ints >= 1, got {output_size!r}")
        oh, ow = int(osz[0]), int(osz[1])
    if pads is None:
        if output_size is None:
            raise ValueError(
                "padding='same' needs output_size (the pooled size does not determine it), got output_size=None"
            )
        for name, n, n_in, s in (("H", oh, ih, sh), ("W", ow, iw, sw)):
            if -(-n // s) != n_in:
                raise ValueError(
                    f"invalid output_size {output_size!r}: with padding='same' and stride {s}, "
                    f"{name}={n} pools to {-(-n // s)}, not the pooled {n_in}"
                )
    else:
        dflt = ((ih - 1) * sh + kh - pads[0] - pads[1], (iw - 1) * sw + kw - pads[2] - pads[3])
        if output_size is None:
            oh, ow = dflt
        else:
            for d, (n, df, s) in enumerate(zip((oh, ow), dflt, (sh, sw))):
                if not df - s < n < df + s:
                    raise ValueError(
                        f"invalid output_size {output_size!r} (dim {d} must be between {df - s} and {df + s}, "
                        "exclusive, as in PyTorch)"
                    )
        if oh < 1 or ow < 1:
            raise ValueError(
                f"the unpooled size {(oh, ow)} is empty for size={size!r}, stride={stride!r}, padding={padding!r}"
            )
    flat = ind.reshape(planes.shape[0], -1).astype(np.int64)
    bad = (flat < 0) | (flat >= oh * ow)
    if bad.any():
        raise ValueError(
            f"indices must lie in [0, {oh * ow}) for an output plane of {(oh, ow)}; found {int(flat[bad][0])}"
        )
    out = np.zeros((planes.shape[0], oh * ow), dtype=planes.dtype)
    pos = (np.arange(planes.shape[0], dtype=np.int64)[:, None] * (oh * ow) + flat).ravel()
    vals = planes.reshape(-1)
    # Duplicates: the last one in row-major order wins (first occurrence in reverse).
    _, first_rev = np.unique(pos[::-1], return_index=True)
    keep = pos.size - 1 - first_rev
    out.reshape(-1)[pos[keep]] = vals[keep]
    return restore_planes(out.reshape(planes.shape[0], oh, ow), lead)


class UnpoolView:
    """``unpool2d(pooled, indices, ...)``, served in bands of rows: the dense map is never held whole.

    For the maxima of one input (``max_pool2d_with_indices``): two windows that
    kept the same position kept the same value, so the order of writes does not
    matter. ``size``, ``stride``, ``padding`` and ``dilation`` are the pooling's,
    ``output_size`` the input's (H, W). ``view[c]`` is one channel
    (:class:`UnpoolPlane`); ``view.rows(r0, r1)`` rows ``r0:r1`` of every
    channel; ``np.asarray(view)`` the whole dense map (what :func:`unpool2d` gives).

    >>> x = np.array([[[1., 5., 5., 0.], [2., 3., 4., 8.]]])
    >>> out, idx = max_pool2d_with_indices(x, 2)
    >>> view = UnpoolView(out, idx, 2, 2, 0, 1, (2, 4))
    >>> view.rows(1, 2)
    array([[[0., 0., 0., 8.]]])
    >>> bool((np.asarray(view) == unpool2d(out, idx, 2, output_size=(2, 4))).all())
    True
    """

    lazy_rows = True  # poolcli.images draws and encodes such maps band by band

    def __init__(self, pooled, indices, size, stride, padding, dilation, output_size):
        self.values = np.asarray(pooled)
        self.indices = np.asarray(indices)
        if self.values.ndim != 3 or self.indices.shape != self.values.shape:
            raise ValueError(f"pooled and indices must be (C, h, w) arrays of one shape; got {self.values.shape} "
                             f"and {self.indices.shape}")
        g = pool_geometry(tuple(output_size), size, stride, padding, dilation, False)
        self.kh, self.sh, self.dh, self.top = g.size[0], g.stride[0], g.dilation[0], g.pads[0]
        self.geometry = g
        # windows that do not overlap keep distinct positions (each position at most once)
        self.distinct = all((k - 1) * d + 1 <= s for k, s, d in zip(g.size, g.stride, g.dilation))
        self.H, self.W = (int(v) for v in output_size)
        if self.indices.size and (int(self.indices.min()) < 0 or int(self.indices.max()) >= self.H * self.W):
            raise ValueError(f"indices must lie in [0, {self.H * self.W}) for an output plane of {(self.H, self.W)}")
        self.shape = (self.values.shape[0], self.H, self.W)
        self.dtype = self.values.dtype
        self.ndim = 3

    def rows(self, r0: int, r1: int, channels: slice = slice(None)) -> np.ndarray:
        """Rows ``r0:r1`` of the dense map (of ``channels``): zeros, and every kept maximum in its place."""
        r0, r1 = max(0, r0), min(self.H, r1)
        vals, idx = self.values[channels], self.indices[channels]
        out = np.zeros((vals.shape[0], max(0, r1 - r0) * self.W), dtype=self.dtype)
        if r1 <= r0:
            return out.reshape(vals.shape[0], 0, self.W)
        # the pooled rows whose windows reach into r0:r1
        i0 = max(0, -(-(r0 + self.top - (self.kh - 1) * self.dh) // self.sh))
        i1 = min(vals.shape[1], (r1 - 1 + self.top) // self.sh + 1)
        for c in range(vals.shape[0]):
            ix = idx[c, i0:i1].ravel().astype(np.int64) - r0 * self.W
            keep = (ix >= 0) & (ix < out.shape[1])
            out[c, ix[keep]] = vals[c, i0:i1].ravel()[keep]
        return out.reshape(vals.shape[0], r1 - r0, self.W)

    def __getitem__(self, c: int) -> "UnpoolPlane":
        return UnpoolPlane(self, int(c))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        dense = self.rows(0, self.H)
        return dense if dtype is None else dense.astype(dtype)


class UnpoolPlane:
    """One channel of an :class:`UnpoolView`: ``plane[r0:r1]`` (rows), ``plane[np.ix_(rows, cols)]``."""

    lazy_rows = True

    def __init__(self, view: UnpoolView, channel: int):
        self.view, self.channel = view, channel
        self.shape = (view.H, view.W)
        self.size = view.H * view.W
        self.dtype = view.dtype
        self.ndim = 2

    def __getitem__(self, key) -> np.ndarray:
        c = slice(self.channel, self.channel + 1)
        if isinstance(key, slice) and key.step in (None, 1):
            r0, r1, _ = key.indices(self.view.H)
            return self.view.rows(r0, r1, c)[0]
        if isinstance(key, tuple) and len(key) == 2:  # np.ix_(rows, cols): the span of those rows only
            rows = np.asarray(key[0]).ravel()
            if rows.size == 0:
                return np.zeros((0, np.asarray(key[1]).size), dtype=self.dtype)
            lo, hi = int(rows.min()), int(rows.max()) + 1
            band = self.view.rows(lo, hi, c)[0]
            return band[np.ix_(rows - lo, np.asarray(key[1]).ravel())]
        return np.asarray(self)[key]

    def kept(self) -> tuple[np.ndarray, np.ndarray]:
        """The kept values of this channel and their flat positions ``r * W + c``, as the two pooled-size
        ``(h, w)`` arrays (a position kept by two windows appears twice, with the same value, unless
        ``distinct``); every other pixel of the map is zero."""
        return self.view.values[self.channel], self.view.indices[self.channel]

    @property
    def distinct(self) -> bool:
        """Whether :meth:`kept` names every position at most once (the pooling windows do not overlap)."""
        return self.view.distinct

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self, dtype=dtype)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        dense = self[0 : self.view.H]
        return dense if dtype is None else dense.astype(dtype)
