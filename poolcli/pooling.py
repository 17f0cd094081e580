"""Pooling cores: arrays in, arrays out, with PyTorch's semantics to the last bit.

Every function here takes (H, W), (C, H, W) or (N, C, H, W) arrays, keeps
float32/float64 (other real dtypes become float64) and never touches files or
terminals. Semantics follow ``torch.nn.functional`` (``max_pool2d``,
``avg_pool2d``, ``lp_pool2d``, ``adaptive_max_pool2d``, ``adaptive_avg_pool2d``)
and are tested against fixtures that PyTorch 2.13 produced
(``tests/data/make_golden.py``).

Output size along one axis (PyTorch, ``pooling_output_shape_pad_lr``)::

    k_eff = dilation * (size - 1) + 1
    out   = floor((H + pad_before + pad_after - k_eff + (stride - 1 if ceil_mode else 0)) / stride) + 1
    if ceil_mode and (out - 1) * stride >= H + pad_before:   # the last window must start
        out -= 1                                              # inside the input or the left padding

How the cores compute (no Python loop over pixels):

* max / min: the input is padded with -inf / +inf and reduced separably, first
  along rows then along columns, by a loop over the window offsets with strided
  views. Max is exact, so separability changes nothing, and reducing along W
  first keeps PyTorch's row-major "first maximum wins" rule even for the sign
  of zero. NaN propagates, as in PyTorch.
* avg: a loop over the ``kh * kw`` window offsets in row-major order that adds
  strided views into an accumulator of the input dtype, then one division by
  the divisor. That is the order PyTorch's CPU kernel sums in, so results are
  bit-identical to it on the golden fixtures; padded and overhanging taps add
  exact zeros and are counted by the divisor rules only.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import _is_int, as_float_array, as_planes, pair, restore_planes

FAMILY_MODES = ("median", "quantile", "mixed", "softpool", "stochastic", "gem")
POOL_MODES = ("max", "avg", "min", "lp", "blurpool", "blur", "aps") + FAMILY_MODES
ANTIALIASED_MODES = ("blurpool", "blur", "aps")
PADDING_MODES = ("default", "circular")
ADAPTIVE_MODES = ("max", "avg", "min")

__all__ = [
    "POOL_MODES",
    "ADAPTIVE_MODES",
    "PoolGeometry",
    "pool_geometry",
    "pool2d",
    "adaptive_pool2d",
    "global_pool2d",
]


@dataclass(frozen=True)
class PoolGeometry:
    """The resolved geometry of one pooling window over an (H, W) input.

    Attributes
    ----------
    size, stride, dilation : (int, int)
    pads : (top, bottom, left, right)
    out : (OH, OW), the output size.
    same : bool
        True for ``padding="same"``: padded values never count.
    """

    size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    out: tuple[int, int]
    same: bool = False

    @property
    def effective_size(self) -> tuple[int, int]:
        """``dilation * (size - 1) + 1`` per axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.size, self.dilation))  # type: ignore[return-value]


def _out_len(n: int, k: int, s: int, d: int, p0: int, p1: int, ceil_mode: bool) -> int:
    k_eff = d * (k - 1) + 1
    out = (n + p0 + p1 - k_eff + (s - 1 if ceil_mode else 0)) // s + 1  # floor, also below zero
    if ceil_mode and (out - 1) * s >= n + p0:
        out -= 1
    return out


def _norm_padding(padding: Any, size, stride, dilation, hw) -> tuple[tuple[int, int, int, int], bool]:
    """Padding as (top, bottom, left, right) and whether it is TensorFlow 'same'."""
    k_eff = [d * (k - 1) + 1 for k, d in zip(size, dilation)]
    if isinstance(padding, str):
        key = padding.lower()
        if key == "valid":
            return (0, 0, 0, 0), False
        if key == "same":
            pads = []
            for n, s, ke in zip(hw, stride, k_eff):
                out = -(-n // s)
                total = max(0, (out - 1) * s + ke - n)
                pads += [total // 2, total - total // 2]
            return (pads[0], pads[1], pads[2], pads[3]), True
        raise ValueError(f"padding must be an int, a pair, (top, bottom, left, right), 'same' or 'valid', got {padding!r}")
    if isinstance(padding, (tuple, list, np.ndarray)) and len(padding) == 4:
        if not all(_is_int(v) for v in padding) or min(padding) < 0:
            raise ValueError(f"padding (top, bottom, left, right) must be ints >= 0, got {tuple(padding)!r}")
        t, b, l, r = (int(v) for v in padding)
        for name, p, ke in (("top", t, k_eff[0]), ("bottom", b, k_eff[0]), ("left", l, k_eff[1]), ("right", r, k_eff[1])):
            if p >= ke:
                raise ValueError(
                    f"padding {name}={p} must be smaller than the effective window size {ke} "
                    f"(a window would hold nothing but padding), got padding={tuple(padding)!r}"
                )
        return (t, b, l, r), False
    ph, pw = pair(padding, "padding", minimum=0)
    # PyTorch's rule (pool2d_shape_check): pad <= kernel_size // 2, on the
    # kernel size itself, not the dilated one.
    if ph > size[0] // 2 or pw > size[1] // 2:
        raise ValueError(
            f"padding should be at most half of the window size, got padding={padding!r} "
            f"for size={size!r} (PyTorch's rule: padding <= size // 2)"
        )
    return (ph, ph, pw, pw), False


def pool_geometry(
    hw: tuple[int, int],
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> PoolGeometry:
    """Validate pooling parameters for an (H, W) input and resolve its geometry.

    Raises ``ValueError`` naming the parameter and quoting the value wherever
    PyTorch raises, and for an output of size zero.

    >>> pool_geometry((7, 8), 2).out
    (3, 4)
    >>> pool_geometry((7, 8), 2, ceil_mode=True).out
    (4, 4)
    >>> pool_geometry((5, 5), 3, stride=1, padding="same").pads
    (1, 1, 1, 1)
    """
    size_ = pair(size, "size")
    stride_ = size_ if stride is None else pair(stride, "stride")
    dilation_ = pair(dilation, "dilation")
    h, w = int(hw[0]), int(hw[1])
    if h < 1 or w < 1:
        raise ValueError(f"input must have non-empty spatial dimensions, got (H, W) = {(h, w)}")
    pads, same = _norm_padding(padding, size_, stride_, dilation_, (h, w))
    oh = _out_len(h, size_[0], stride_[0], dilation_[0], pads[0], pads[1], bool(ceil_mode))
    ow = _out_len(w, size_[1], stride_[1], dilation_[1], pads[2], pads[3], bool(ceil_mode))
    if oh < 1 or ow < 1:
        k_eff = tuple(d * (k - 1) + 1 for k, d in zip(size_, dilation_))
        raise ValueError(
            f"size={size!r} is too large for an input of (H, W) = {(h, w)}: the window spans {k_eff[0]}x{k_eff[1]} "
            f"(padding={padding!r}, dilation={dilation!r}), so the output would be {oh}x{ow}; "
            "use a smaller size or more padding"
        )
    return PoolGeometry(size_, stride_, dilation_, pads, (oh, ow), same)


def pad_planes(a: np.ndarray, g: PoolGeometry, fill: float, circular: bool = False) -> np.ndarray:
    """``a`` (P, H, W) padded with ``fill`` to exactly the extent the windows read.

    The extent is ``(out - 1) * stride + k_eff`` from the top-left padding on;
    in ceil mode it may exceed the user's padding (the overhang), in floor mode
    it may drop trailing rows that no window reads. No copy when none is needed.
    """
    p, h, w = a.shape
    top, _, left, _ = g.pads
    need_h = (g.out[0] - 1) * g.stride[0] + g.effective_size[0]
    need_w = (g.out[1] - 1) * g.stride[1] + g.effective_size[1]
    if top == 0 and left == 0 and need_h <= h and need_w <= w:
        return a
    if circular:  # wrap around: the padding holds the opposite edge's values
        rows = (np.arange(need_h) - top) % h
        cols = (np.arange(need_w) - left) % w
        return a[:, rows][:, :, cols]
    buf = np.full((p, need_h, need_w), fill, dtype=a.dtype)
    rows = max(0, min(h, need_h - top))
    cols = max(0, min(w, need_w - left))
    buf[:, top : top + rows, left : left + cols] = a[:, :rows, :cols]
    return buf





# ----------------------------------------------------------------------------- banded engine
#
# Measured on this project's 2-core machines (benchmarks/): reducing along
# rows first (contiguous inner loops) in bands of output rows whose input fits
# in L2 runs at about one memcpy of the input for 2x2/stride-2 max on 4096^2,
# where the whole-array form with strided inner loops took ~3x that. NumPy
# ufuncs release the GIL, so bands also run on threads.

_BAND_BYTES = 1 << 20  # input bytes one task reads: about an L2 (best of 128 KiB..2 MiB, measured)
from ._threads import get_num_threads, run_tasks, scratch, set_num_threads  # noqa: E402,F401  (re-exported)


def _bands(a: np.ndarray, g: PoolGeometry):
    """Tasks ``(p0, p1, r0, r1)``: planes p0:p1, output rows r0:r1, each reading about _BAND_BYTES."""
    p, h, w = a.shape
    oh = g.out[0]
    row_bytes = max(1, w * a.itemsize * g.stride[0])
    rows = max(1, _BAND_BYTES // row_bytes)
    if rows >= oh:  # whole planes per task
        per = max(1, rows // oh)
        for p0 in range(0, p, per):
            yield p0, min(p, p0 + per), 0, oh
    else:
        for p0 in range(p):
            for r0 in range(0, oh, rows):
                yield p0, p0 + 1, r0, min(oh, r0 + rows)


def _band_input(a: np.ndarray, g: PoolGeometry, p0, p1, r0, r1, fill: float, circular: bool) -> np.ndarray:
    """The padded input rows that output rows r0:r1 read (a view when no padding is involved)."""
    _, h, w = a.shape
    top, _, left, _ = g.pads
    start = r0 * g.stride[0] - top
    stop = (r1 - 1) * g.stride[0] - top + g.effective_size[0]
    need_w = (g.out[1] - 1) * g.stride[1] + g.effective_size[1]
    if start >= 0 and stop <= h and left == 0 and need_w <= w:
        return a[p0:p1, start:stop, :need_w]
    if circular:
        rows = np.arange(start, stop) % h
        cols = (np.arange(need_w) - left) % w
        return a[p0:p1][:, rows][:, :, cols]
    buf = scratch("band", (p1 - p0, stop - start, need_w), a.dtype)
    buf.fill(fill)
    lo, hi = max(0, start), min(h, stop)
    cols = max(0, min(w, need_w - left))
    if hi > lo and cols > 0:
        buf[:, lo - start : hi - start, left : left + cols] = a[p0:p1, lo:hi, :cols]
    return buf


def _run_bands(a: np.ndarray, g: PoolGeometry, work) -> np.ndarray:
    out = np.empty((a.shape[0],) + g.out, dtype=a.dtype)
    run_tasks(lambda *t: work(out, *t), _bands(a, g), parallel=a.size >= (1 << 16))
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
    """Max (``np.maximum``) or min (``np.minimum``) pooling, banded and threaded.

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

    return _run_bands(a, g, work)


def _tap_counts(n: int, n_out: int, k: int, s: int, d: int, p0: int, lo: int, hi: int) -> np.ndarray:
    """Per output index, how many window taps fall in [lo, hi) of the input axis."""
    starts = np.arange(n_out)[:, None] * s - p0
    pos = starts + np.arange(k)[None, :] * d
    return ((pos >= lo) & (pos < hi)).sum(axis=1)


def _avg(a: np.ndarray, g: PoolGeometry, count_include_pad: bool, divisor_override, circular: bool = False) -> np.ndarray:
    """Average pooling, banded and threaded, summing in PyTorch's order (bit-identical)."""
    kh, kw = g.size
    (sh, sw), (dh, dw), (oh, ow) = g.stride, g.dilation, g.out
    h, w = a.shape[1:]
    top, bottom, left, right = g.pads
    if divisor_override is not None:
        ch = np.ones(oh, dtype=np.int64)
        cw = np.full(ow, divisor_override, dtype=np.int64)
    elif circular:  # every tap reads a real (wrapped) value
        ch = np.full(oh, kh)
        cw = np.full(ow, kw)
    elif count_include_pad and not g.same:
        ch = _tap_counts(h, oh, kh, sh, dh, top, -top, h + bottom)
        cw = _tap_counts(w, ow, kw, sw, dw, left, -left, w + right)
    else:
        ch = _tap_counts(h, oh, kh, sh, dh, top, 0, h)
        cw = _tap_counts(w, ow, kw, sw, dw, left, 0, w)
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

    return _run_bands(a, g, work)



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


def _check_p(p: Any) -> float:
    if p is None:
        raise ValueError("p (the norm of lp pooling) is required for mode='lp', got None")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(p) or p <= 0:
        raise ValueError(f"p must be a finite number > 0, got {p!r}")
    return float(p)


def pool2d(
    x: Any,
    mode: str,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    p: float | None = None,
    *,
    padding_mode: str = "default",
    blur_size: int = 3,
    q: float | None = None,
    alpha: float | None = None,
    train: bool = False,
    seed: Any = None,
    return_indices: bool = False,
) -> Any:
    """Sliding-window pooling with the semantics of ``torch.nn.functional``.

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
        float32 and float64 are kept; other real dtypes become float64.
    mode : {'max', 'avg', 'min', 'lp', 'blurpool', 'blur', 'aps'}
        ``max`` = ``F.max_pool2d``, ``avg`` = ``F.avg_pool2d``, ``min`` =
        ``-F.max_pool2d(-x)``, ``lp`` = ``F.lp_pool2d`` with norm ``p``.
        The anti-aliased modes: ``blurpool`` = max with ``size``, stride 1
        (and ``padding``, ``dilation``), then a normalised binomial blur of
        ``blur_size`` taps with reflection padding and subsampling by
        ``stride`` (Zhang 2019, adobe/antialiased-cnns' MaxBlurPool);
        ``blur`` = the blur and subsampling alone (``size`` only sets the
        default stride); ``aps`` = max with ``size`` and stride 1 (skipped for
        size 1), an optional blur, then adaptive polyphase sampling (Chaman &
        Dokmanic 2021). With ``padding_mode='circular'`` every step pads by
        wrapping and keeps the size until the subsampling. ``ceil_mode``,
        ``count_include_pad``, ``divisor_override`` do not apply to them.
    size : int or (int, int)
        Window size (PyTorch's ``kernel_size``).
    stride : int or (int, int), optional
        Defaults to ``size``.
    padding : int, (int, int), (top, bottom, left, right), 'same' or 'valid'
        An int or a pair pads both sides, PyTorch-style, and must be at most
        ``size // 2``. Four ints pad each side on its own (each smaller than the
        dilated window). ``'same'`` is TensorFlow's: ``out = ceil(H / stride)``,
        total padding ``max(0, (out - 1) * stride + k_eff - H)``, the smaller
        half before; padded values never count. ``'valid'`` is no padding.
        Max pads with -inf, min with +inf, avg and lp with zeros.
    dilation : int or (int, int)
        Spacing between window taps, for every mode (PyTorch has it for max only).
    ceil_mode : bool
        Round the output size up; the last window must start inside the input
        or the left padding. Its overhang is never counted by avg.
    count_include_pad : bool
        avg: divide by the number of window taps inside the padded input
        (True) or inside the input itself (False). Ignored for 'same'.
    divisor_override : int, optional
        avg and lp: divide every window sum by this instead.
    p : float, optional
        The norm of ``lp`` pooling (required for it): ``(avg(x**p) * kh * kw) ** (1/p)``,
        PyTorch's composition, which is the p-norm of each full window.
    padding_mode : {'default', 'circular'}, keyword-only
        ``'default'`` is PyTorch's (-inf / +inf / 0 as above). ``'circular'``
        pads with the wrapped-around input (the ceil-mode overhang too), and
        every tap counts: pooling then commutes exactly with circular shifts
        by multiples of the stride (what ``poolcli invariance`` measures).
    blur_size : int, keyword-only
        The binomial blur of the anti-aliased modes (1..7, default 3).
    q, alpha, train, seed : keyword-only
        The other family modes (:mod:`poolcli.pooling_family`): ``median``,
        ``quantile`` (``q`` in [0, 1]), ``mixed`` (``alpha * max + (1 - alpha)
        * avg``, default 0.5), ``softpool``, ``stochastic`` (inference
        ``sum(p_i a_i)``; ``train=True`` draws with ``seed``) and ``gem``
        (generalised mean, norm ``p``, default 3). Padded values never count
        for them (mixed: as avg's ``count_include_pad`` says).
    return_indices : bool, keyword-only
        ``max`` only: also return PyTorch's indices (flat ``ih * W + iw`` into
        each input plane, the first maximum wins), for :func:`~poolcli.pooling_family.unpool2d`.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., OH, OW)``, same dtype as ``x`` (float32 or float64)::

            k_eff = dilation * (size - 1) + 1
            OH = floor((H + pad_top + pad_bottom - k_eff + (stride - 1 if ceil_mode else 0)) / stride) + 1

        less one in ceil mode when the last window would start at or past
        ``H + pad_top``; likewise OW.

    Raises
    ------
    ValueError
        Naming the parameter and quoting its value, wherever PyTorch raises
        and for an empty output.

    Examples
    --------
    A 2x2 window with stride 2 halves each side:

    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> pool2d(x, "max", 2)
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    >>> pool2d(x, "avg", 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    >>> pool2d(x, "avg", 3, stride=2, padding=1, count_include_pad=False)
    array([[ 2.5,  4. ],
           [ 8.5, 10. ]], dtype=float32)
    >>> pool2d(x, "max", 3, stride=2, ceil_mode=True).shape
    (2, 2)
    """
    mode = str(mode).lower()
    if mode not in POOL_MODES:
        raise ValueError(f"mode must be one of {', '.join(POOL_MODES)}, got {mode!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
    circular = padding_mode == "circular"
    if divisor_override is not None:
        if not _is_int(divisor_override) or divisor_override == 0:
            raise ValueError(f"divisor_override must be a non-zero int, got {divisor_override!r}")
    pnorm = _check_p(p) if mode == "lp" else None
    if return_indices:
        if mode != "max" or circular:
            raise ValueError(f"return_indices=True needs mode='max' with the default padding, got mode={mode!r}")
        from .pooling_family import max_pool2d_with_indices

        return max_pool2d_with_indices(x, size, stride, padding, dilation, ceil_mode)
    if mode in ANTIALIASED_MODES:
        return _antialiased(x, mode, size, stride, padding, dilation, blur_size, circular)
    if mode in FAMILY_MODES:
        from .pooling_family import family_pool2d

        extra = dict(q=q, alpha=alpha, p=p, train=train, seed=seed)
        if not circular:
            return family_pool2d(x, mode, size, stride, padding, dilation, ceil_mode, count_include_pad, **extra)
        # Circular: wrap-pad to exactly the extent the windows read, then pool unpadded.
        planes, lead = as_planes(x)
        g = pool_geometry(planes.shape[1:], size, stride, padding, dilation, ceil_mode)
        xp = pad_planes(planes, g, 0.0, circular=True)
        return restore_planes(family_pool2d(xp, mode, g.size, g.stride, 0, g.dilation, False, True, **extra), lead)
    planes, lead = as_planes(x)
    g = pool_geometry(planes.shape[1:], size, stride, padding, dilation, ceil_mode)
    if mode == "max":
        out = _reduce_extreme(planes, g, np.maximum, -np.inf, circular)
    elif mode == "min":
        out = _reduce_extreme(planes, g, np.minimum, np.inf, circular)
    elif mode == "avg":
        out = _avg(planes, g, bool(count_include_pad), divisor_override, circular)
    else:
        avg = _avg(_torch_pow(planes, pnorm), g, bool(count_include_pad), divisor_override, circular)
        with np.errstate(invalid="ignore"):
            out = _torch_pow(avg * planes.dtype.type(g.size[0] * g.size[1]), 1.0 / pnorm)
    return restore_planes(out, lead)


def _keep_size_pads(size: Any, dilation: Any) -> tuple[int, int, int, int]:
    """Padding that keeps the size at stride 1: ``k_eff - 1`` after (bottom/right).

    Window ``i`` then starts at ``i``, as in ``nn.MaxPool2d(k, 1)``, whose
    ``H - k + 1`` outputs are the first rows of this one (Chaman & Dokmanic's
    ``circular_pad([0, k-1, 0, k-1])``).
    """
    (kh, kw), (dh, dw) = pair(size, "size"), pair(dilation, "dilation")
    return (0, dh * (kh - 1), 0, dw * (kw - 1))


def _antialiased(x, mode, size, stride, padding, dilation, blur_size, circular) -> np.ndarray:
    """blurpool / blur / aps (see :func:`pool2d`)."""
    from .antialias import aps_downsample, blur2d

    size_ = pair(size, "size")
    stride_ = size_ if stride is None else pair(stride, "stride")
    if isinstance(blur_size, bool) or not _is_int(blur_size) or not 1 <= blur_size <= 7:
        raise ValueError(f"blur_size must be an int from 1 to 7, got {blur_size!r}")
    a = as_float_array(x)
    if mode in ("blurpool", "aps") and size_ != (1, 1):
        # The max with stride 1 (Zhang: "MaxPool -> Max + BlurPool"). Circular:
        # padded by wrapping to keep the size, so that it commutes with shifts.
        if circular:
            a = pool2d(a, "max", size_, 1, _keep_size_pads(size_, dilation), dilation, padding_mode="circular")
        else:
            a = pool2d(a, "max", size_, 1, 0 if mode == "aps" else padding, dilation)
    if mode == "aps":
        if blur_size > 1:
            a = blur2d(a, stride=1, blur_size=blur_size, circular=circular)
        return aps_downsample(a, stride=stride_)
    return blur2d(a, stride=stride_, blur_size=blur_size, circular=circular)


def _adaptive_bins(n: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive bins: start = floor(i*n/o), end = ceil((i+1)*n/o)."""
    i = np.arange(n_out, dtype=np.int64)
    return (i * n) // n_out, -((-(i + 1) * n) // n_out)


def _adaptive_axis(a: np.ndarray, axis: int, n_out: int, ufunc, fill: float) -> np.ndarray:
    """Reduce ``a`` over adaptive bins along ``axis`` with ``ufunc.reduceat``.

    Bins may overlap, so reduceat gets the interleaved index list
    [s0, e0, s1, e1, ...] and every second result is kept; one padding element
    keeps every index in range. ``reduceat`` keeps the later of equal values,
    so for max the axis is reversed: the earliest tap wins, as in PyTorch
    (which matters only for the sign of a zero).
    """
    n = a.shape[axis]
    starts, ends = _adaptive_bins(n, n_out)
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


_EXACT_TAPS = 64  # adaptive avg: up to this many window offsets, sum in PyTorch's order


def _adaptive_avg(a: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Adaptive average, bit-identical to PyTorch where that is cheap.

    PyTorch's CPU kernel sums each bin row-major in the input dtype and divides
    by the bin height, then by its width. With few window offsets (the usual
    case: output a sizeable fraction of the input) that is reproduced exactly
    by a loop over the offsets with masked gathers; for large bins (a loop
    over nearly every pixel) the bins are summed in float64 with ``reduceat``
    and rounded once, within 1e-6 relative of PyTorch (which uses ``mean`` for
    1x1 outputs anyway).
    """
    h, w = a.shape[1:]
    sh, eh = _adaptive_bins(h, oh)
    sw, ew = _adaptive_bins(w, ow)
    lh, lw = eh - sh, ew - sw
    if int(lh.max()) * int(lw.max()) > _EXACT_TAPS:
        wide = a.astype(np.float64)
        s, _ = _adaptive_axis(wide, 2, ow, np.add, 0.0)
        s, _ = _adaptive_axis(s, 1, oh, np.add, 0.0)
        return (s / np.multiply.outer(lh, lw)).astype(a.dtype)
    acc = np.zeros((a.shape[0], oh, ow), dtype=a.dtype)
    zero = a.dtype.type(0)
    for th in range(int(lh.max())):
        rows = a[:, np.minimum(sh + th, eh - 1), :]
        row_ok = (th < lh)[:, None]
        for tw in range(int(lw.max())):
            tap = rows[:, :, np.minimum(sw + tw, ew - 1)]
            acc += np.where(row_ok & (tw < lw)[None, :], tap, zero)
    return acc / lh.astype(a.dtype)[:, None] / lw.astype(a.dtype)[None, :]


def adaptive_pool2d(x: Any, mode: str, output_size: Any) -> np.ndarray:
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
    if mode == "avg":
        out = _adaptive_avg(planes, oh, ow)
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
