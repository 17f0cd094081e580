"""Pooling geometry and checks: the bottom of :mod:`poolcli.pooling`.

Knows: how a window of ``size``, ``stride``, ``padding`` (int, pair,
(top, bottom, left, right), ``'same'``, ``'valid'``), ``dilation`` and
``ceil_mode`` lies over an (H, W) input (:class:`PoolGeometry`,
:func:`pool_geometry`), PyTorch's output size and padding rules, the padding
modes (``'default'`` / ``'circular'``), padding planes to the extent the
windows read (:func:`pad_planes`), the window primitive (:func:`window_taps`,
:func:`window_view`, :func:`window_mask`, :func:`real_counts`), PyTorch's
adaptive bins, and the argument checks the pooling cores share. Like
PyTorch's ``aten/src/ATen/native/Pool.h``: one geometry-and-checks module
under every kernel.

Output size along one axis (PyTorch, ``pooling_output_shape_pad_lr``)::

    k_eff = dilation * (size - 1) + 1
    out   = floor((H + pad_before + pad_after - k_eff + (stride - 1 if ceil_mode else 0)) / stride) + 1
    if ceil_mode and (out - 1) * stride >= H + pad_before:   # the last window must start
        out -= 1                                              # inside the input or the left padding

Imports: numpy, :mod:`poolcli._checks` and :mod:`poolcli._bands` only.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from .._bands import pad
from .._checks import as_planes, is_int, pair

__all__ = [
    "PADDING_MODES",
    "PoolGeometry",
    "pool_geometry",
    "output_length",
    "normalise_padding",
    "padding_sides",
    "keep_size_pads",
    "check_padding_mode",
    "check_divisor_override",
    "check_flag",
    "unit_number",
    "positive_number",
    "make_rng",
    "read_extent",
    "pad_planes",
    "window_taps",
    "window_view",
    "window_mask",
    "axis_real",
    "real_counts",
    "adaptive_bins",
]

PADDING_MODES = ("default", "circular")


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


# ----------------------------------------------------------------------------- checks


def check_padding_mode(padding_mode: Any) -> bool:
    """Validate ``padding_mode``; True for ``'circular'``."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
    return padding_mode == "circular"


def check_divisor_override(divisor_override: Any) -> None:
    if divisor_override is not None:
        if not is_int(divisor_override) or divisor_override == 0:
            raise ValueError(f"divisor_override must be a non-zero int, got {divisor_override!r}")


def check_flag(value: Any, name: str) -> bool:
    """A strict bool (True/False, also NumPy's)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def unit_number(value: Any, name: str) -> float:
    """A real number in [0, 1] (``q``, ``alpha``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def positive_number(value: Any, name: str) -> float:
    """A finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def make_rng(seed: Any) -> np.random.Generator:
    """``np.random.default_rng(seed)`` for None, an int >= 0 or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ValueError(f"seed must be None, an int >= 0 or a numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- geometry


def output_length(n: int, k: int, s: int, d: int, p0: int, p1: int, ceil_mode: bool) -> int:
    """PyTorch's output length along one axis (may be < 1: the caller raises)."""
    k_eff = d * (k - 1) + 1
    out = (n + p0 + p1 - k_eff + (s - 1 if ceil_mode else 0)) // s + 1  # floor, also below zero
    if ceil_mode and (out - 1) * s >= n + p0:
        out -= 1
    return out


def _same_pads(hw, stride, k_eff) -> tuple[int, int, int, int]:
    """TensorFlow 'same': out = ceil(H / s), the smaller half of the padding before."""
    pads = []
    for n, s, ke in zip(hw, stride, k_eff):
        out = -(-n // s)
        total = max(0, (out - 1) * s + ke - n)
        pads += [total // 2, total - total // 2]
    return (pads[0], pads[1], pads[2], pads[3])


def _side_pads(padding: Any, k_eff) -> tuple[int, int, int, int]:
    """Four per-side pads, each smaller than the effective window."""
    if not all(is_int(v) for v in padding) or min(padding) < 0:
        raise ValueError(f"padding (top, bottom, left, right) must be ints >= 0, got {tuple(padding)!r}")
    t, b, l, r = (int(v) for v in padding)
    for name, p, ke in (("top", t, k_eff[0]), ("bottom", b, k_eff[0]), ("left", l, k_eff[1]), ("right", r, k_eff[1])):
        if p >= ke:
            raise ValueError(
                f"padding {name}={p} must be smaller than the effective window size {ke} "
                f"(a window would hold nothing but padding), got padding={tuple(padding)!r}"
            )
    return (t, b, l, r)


def _bad_padding(padding: Any) -> ValueError:
    return ValueError(f"padding must be an int, a pair, (top, bottom, left, right), 'same' or 'valid', got {padding!r}")


def normalise_padding(padding: Any, size, stride, dilation, hw) -> tuple[tuple[int, int, int, int], bool]:
    """Padding as (top, bottom, left, right) and whether it is TensorFlow 'same'."""
    k_eff = [d * (k - 1) + 1 for k, d in zip(size, dilation)]
    if isinstance(padding, str):
        key = padding.lower()
        if key == "valid":
            return (0, 0, 0, 0), False
        if key == "same":
            return _same_pads(hw, stride, k_eff), True
        raise _bad_padding(padding)
    if isinstance(padding, (tuple, list, np.ndarray)) and len(padding) == 4:
        return _side_pads(padding, k_eff), False
    ph, pw = pair(padding, "padding", minimum=0)
    # PyTorch's rule (pool2d_shape_check): pad <= kernel_size // 2, on the
    # kernel size itself, not the dilated one.
    if ph > size[0] // 2 or pw > size[1] // 2:
        raise ValueError(
            f"padding should be at most half of the window size, got padding={padding!r} "
            f"for size={size!r} (PyTorch's rule: padding <= size // 2)"
        )
    return (ph, ph, pw, pw), False


def padding_sides(padding: Any) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) from an int, a pair or four ints, without window rules; None for 'same'."""
    if isinstance(padding, str):
        key = padding.lower()
        if key == "valid":
            return (0, 0, 0, 0)
        if key == "same":
            return None
        raise _bad_padding(padding)
    if isinstance(padding, (tuple, list, np.ndarray)) and len(padding) == 4:
        if not all(is_int(v) for v in padding) or min(padding) < 0:
            raise ValueError(f"padding (top, bottom, left, right) must be ints >= 0, got {tuple(padding)!r}")
        return tuple(int(v) for v in padding)  # type: ignore[return-value]
    ph, pw = pair(padding, "padding", minimum=0)
    return (ph, ph, pw, pw)


def keep_size_pads(size: Any, dilation: Any) -> tuple[int, int, int, int]:
    """Padding that keeps the size at stride 1: ``k_eff - 1`` after (bottom/right).

    Window ``i`` then starts at ``i``, as in ``nn.MaxPool2d(k, 1)``, whose
    ``H - k + 1`` outputs are the first rows of this one (Chaman & Dokmanic's
    ``circular_pad([0, k-1, 0, k-1])``).
    """
    (kh, kw), (dh, dw) = pair(size, "size"), pair(dilation, "dilation")
    return (0, dh * (kh - 1), 0, dw * (kw - 1))


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
    pads, same = normalise_padding(padding, size_, stride_, dilation_, (h, w))
    oh = output_length(h, size_[0], stride_[0], dilation_[0], pads[0], pads[1], bool(ceil_mode))
    ow = output_length(w, size_[1], stride_[1], dilation_[1], pads[2], pads[3], bool(ceil_mode))
    if oh < 1 or ow < 1:
        k_eff = tuple(d * (k - 1) + 1 for k, d in zip(size_, dilation_))
        raise ValueError(
            f"size={size!r} is too large for an input of (H, W) = {(h, w)}: the window spans {k_eff[0]}x{k_eff[1]} "
            f"(padding={padding!r}, dilation={dilation!r}), so the output would be {oh}x{ow}; "
            "use a smaller size or more padding"
        )
    return PoolGeometry(size_, stride_, dilation_, pads, (oh, ow), same)


def read_extent(g: PoolGeometry) -> tuple[int, int]:
    """(rows, columns) the windows read, from the top-left padding on."""
    return (
        (g.out[0] - 1) * g.stride[0] + g.effective_size[0],
        (g.out[1] - 1) * g.stride[1] + g.effective_size[1],
    )


def pad_planes(a: np.ndarray, g: PoolGeometry, fill: float, circular: bool = False) -> np.ndarray:
    """``a`` (P, H, W) padded with ``fill`` to exactly the extent the windows read.

    The extent is ``(out - 1) * stride + k_eff`` from the top-left padding on;
    in ceil mode it may exceed the user's padding (the overhang), in floor mode
    it may drop trailing rows that no window reads. ``circular``: the padding
    holds the wrapped-around input instead. No copy when none is needed.
    """
    _, h, w = a.shape
    top, _, left, _ = g.pads
    need_h, need_w = read_extent(g)
    if top == 0 and left == 0 and need_h <= h and need_w <= w:
        return a
    return pad(a, (top, left), (need_h - top - h, need_w - left - w), "wrap" if circular else "constant", fill)


# ----------------------------------------------------------------------------- windows


def window_taps(xp: np.ndarray, g: PoolGeometry) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(i, j, view)`` for every window offset, row-major: ``view[..., oh, ow]`` = tap (i, j).

    ``xp`` is the input padded by :func:`pad_planes`.
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = g.size, g.stride, g.dilation, g.out
    for i in range(kh):
        rows = xp[..., i * dh : i * dh + (oh - 1) * sh + 1 : sh, :]
        for j in range(kw):
            yield i, j, rows[..., j * dw : j * dw + (ow - 1) * sw + 1 : sw]


def axis_real(n: int, n_out: int, k: int, s: int, d: int, p0: int) -> np.ndarray:
    """(n_out, k) bool: which taps of each window fall inside the input [0, n)."""
    pos = (np.arange(n_out) * s - p0)[:, None] + np.arange(k)[None, :] * d
    return (pos >= 0) & (pos < n)


def real_counts(g: PoolGeometry, hw: tuple[int, int]) -> np.ndarray:
    """(OH, OW) int: the number of input (non-padded) taps of every window."""
    rh = axis_real(hw[0], g.out[0], g.size[0], g.stride[0], g.dilation[0], g.pads[0]).sum(1)
    rw = axis_real(hw[1], g.out[1], g.size[1], g.stride[1], g.dilation[1], g.pads[2]).sum(1)
    return np.multiply.outer(rh, rw)


def window_mask(geometry: PoolGeometry, hw: tuple[int, int]) -> np.ndarray:
    """Which window taps read the input (True) rather than padding or overhang (False).

    Parameters
    ----------
    geometry : PoolGeometry
        From :func:`pool_geometry` for an input of size ``hw``.
    hw : (int, int)
        The input's (H, W).

    Returns
    -------
    numpy.ndarray of bool, shape (OH, OW, kh * kw)
        Taps in row-major window order, as in :func:`window_view`.

    Examples
    --------
    >>> g = pool_geometry((3, 3), 3, stride=1, padding=1)
    >>> window_mask(g, (3, 3))[0, 0].reshape(3, 3).astype(int)
    array([[0, 0, 0],
           [0, 1, 1],
           [0, 1, 1]])
    """
    g = geometry
    rh = axis_real(hw[0], g.out[0], g.size[0], g.stride[0], g.dilation[0], g.pads[0])
    rw = axis_real(hw[1], g.out[1], g.size[1], g.stride[1], g.dilation[1], g.pads[2])
    m = rh[:, None, :, None] & rw[None, :, None, :]
    return m.reshape(g.out + (g.size[0] * g.size[1],))


def window_view(x: Any, geometry: PoolGeometry, fill: float = np.nan) -> np.ndarray:
    """The taps of every pooling window, stacked on a last axis.

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
    geometry : PoolGeometry
        From :func:`pool_geometry` for x's (H, W).
    fill : float
        The value of padded and ceil-mode overhang taps (NaN by default; see
        :func:`window_mask` to tell them from input NaNs).

    Returns
    -------
    numpy.ndarray, shape (..., OH, OW, kh * kw)
        A new array (not a view: taps of overlapping windows are copied), in
        x's float dtype; taps in row-major window order. Memory is
        ``kh * kw`` times the output.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(3, 3)
    >>> g = pool_geometry(x.shape, 2, stride=1)
    >>> window_view(x, g)[0, 1]
    array([1., 2., 4., 5.])
    >>> window_view(x, pool_geometry(x.shape, 2, ceil_mode=True))[1, 1]
    array([ 8., nan, nan, nan])
    """
    planes, lead = as_planes(x)
    g = geometry
    xp = pad_planes(planes, g, fill)
    kh, kw = g.size
    out = np.empty((planes.shape[0],) + g.out + (kh * kw,), dtype=planes.dtype)
    for i, j, v in window_taps(xp, g):
        out[..., i * kw + j] = v
    return out.reshape(lead + out.shape[1:])


def adaptive_bins(n: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive bins: start = floor(i*n/o), end = ceil((i+1)*n/o).

    >>> adaptive_bins(5, 2)
    (array([0, 2]), array([3, 5]))
    """
    i = np.arange(n_out, dtype=np.int64)
    return (i * n) // n_out, -((-(i + 1) * n) // n_out)
