"""Named convolution kernels, built from 1-D pieces.

Every 2-D kernel here is a read-only ``float64`` array made from named 1-D
taps (after scikit-image ``filters/edges.py``), and :mod:`poolcli.filters`
applies it by **cross-correlation** (the CNN convention, no kernel flip)::

    out[i, j] = sum_{u, v} K[u, v] * x[i + u - (kh - 1) // 2, j + v - (kw - 1) // 2]

Orientation convention
----------------------
``SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``: applied by correlation it
computes ``right - left``, positive where the image gets **brighter** to the
right (``+d/dx`` up to the factor 8), as OpenCV's ``cv2.Sobel(dx=1)``. The
textbook matrix ``[[1, 0, -1], ...]`` is written for *convolution* (which
flips it); used as a CNN kernel (``--kernel "1,0,-1;2,0,-2;1,0,-1"``) it gives
``-d/dx``. ``SOBEL_Y = SOBEL_X.T`` computes ``bottom - top`` (rows increase
downwards). The same holds for Prewitt and Scharr. The gradient magnitude
``hypot(gx, gy)`` does not depend on the sign. The kernels are not
normalised (Sobel sums of absolute values are 8, Prewitt 6, Scharr 32).

Examples
--------
>>> SOBEL_X
array([[-1.,  0.,  1.],
       [-2.,  0.,  2.],
       [-1.,  0.,  1.]])
>>> bool((SOBEL_Y == SOBEL_X.T).all())
True
>>> binomial(3)
array([1., 2., 1.])
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "DIFF",
    "IMPULSE",
    "SOBEL_SMOOTH",
    "PREWITT_SMOOTH",
    "SCHARR_SMOOTH",
    "SECOND_DIFF",
    "SOBEL_X",
    "SOBEL_Y",
    "PREWITT_X",
    "PREWITT_Y",
    "SCHARR_X",
    "SCHARR_Y",
    "LAPLACE",
    "SHARPEN",
    "EMBOSS",
    "IDENTITY",
    "BINOMIAL_TAPS",
    "outer",
    "box",
    "gaussian",
    "binomial",
]


def _const(values) -> np.ndarray:
    a = np.array(values, dtype=np.float64)
    a.setflags(write=False)
    return a


def outer(col, row=None) -> np.ndarray:
    """Separable 2-D kernel ``col[:, None] * row[None, :]`` (``row`` defaults to ``col``).

    >>> outer([1, 2, 1], [1, 0, -1])
    array([[ 1.,  0., -1.],
           [ 2.,  0., -2.],
           [ 1.,  0., -1.]])
    """
    col = np.asarray(col, dtype=np.float64)
    row = col if row is None else np.asarray(row, dtype=np.float64)
    if col.ndim != 1 or row.ndim != 1:
        raise ValueError(f"outer takes 1-D taps, got shapes {col.shape} and {row.shape}")
    return _const(np.multiply.outer(col, row))


# --- 1-D pieces ---------------------------------------------------------------
#: Central difference, ``right - left`` under correlation: positive where the
#: image gets brighter along +x (or +y), as OpenCV's ``Sobel``.
DIFF = _const([-1, 0, 1])
#: Discrete second derivative.
SECOND_DIFF = _const([1, -2, 1])
#: The unit impulse of length 3.
IMPULSE = _const([0, 1, 0])
SOBEL_SMOOTH = _const([1, 2, 1])
PREWITT_SMOOTH = _const([1, 1, 1])
SCHARR_SMOOTH = _const([3, 10, 3])

# --- 2-D kernels (rows = y, columns = x) -------------------------------------
SOBEL_X = outer(SOBEL_SMOOTH, DIFF)
SOBEL_Y = outer(DIFF, SOBEL_SMOOTH)
PREWITT_X = outer(PREWITT_SMOOTH, DIFF)
PREWITT_Y = outer(DIFF, PREWITT_SMOOTH)
SCHARR_X = outer(SCHARR_SMOOTH, DIFF)
SCHARR_Y = outer(DIFF, SCHARR_SMOOTH)
#: 4-neighbour Laplacian ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``.
LAPLACE = _const(outer(IMPULSE, SECOND_DIFF) + outer(SECOND_DIFF, IMPULSE))
#: ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]`` = impulse minus Laplacian.
SHARPEN = _const(outer(IMPULSE) - LAPLACE)
#: ``[[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]``: light from the top left.
EMBOSS = _const(np.add.outer(DIFF, DIFF) + outer(IMPULSE))
#: The 1x1 identity: exact for every boundary mode, even with inf in the input.
IDENTITY = _const([[1.0]])

#: Pascal rows ``binomial(n)`` for n = 1..7 (the BlurPool filters of antialiased-cnns).
BINOMIAL_TAPS: tuple[np.ndarray, ...] = tuple(
    _const([math.comb(n - 1, k) for k in range(n)]) for n in range(1, 8)
)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _positive_float(value, name: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number > 0, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(f) or f <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return f


def box(size: int) -> np.ndarray:
    """Normalised 1-D box (moving average) taps of length ``size``.

    The 2-D box filter is ``outer(box(h), box(w))``.

    Parameters
    ----------
    size : int
        Number of taps, ``>= 1``.

    Returns
    -------
    ndarray, shape (size,), float64
        ``np.full(size, 1 / size)``.

    Examples
    --------
    >>> box(4)
    array([0.25, 0.25, 0.25, 0.25])
    >>> box(0)
    Traceback (most recent call last):
    ...
    ValueError: size must be an int >= 1, got 0
    """
    if not _is_int(size) or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size!r}")
    return np.full(int(size), 1.0 / int(size))


def gaussian(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Normalised 1-D Gaussian taps, as ``scipy.ndimage.gaussian_filter`` builds them.

    ``radius = int(truncate * sigma + 0.5)``; the taps are
    ``exp(-x**2 / (2 sigma**2))`` for ``x = -radius .. radius``, divided by
    their sum. The 2-D Gaussian is ``outer(gaussian(sigma))``.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels, ``> 0``.
    truncate : float, optional
        Cut the kernel off at this many standard deviations.

    Returns
    -------
    ndarray, shape (2 * radius + 1,), float64

    Examples
    --------
    >>> g = gaussian(1.0)
    >>> g.shape, round(float(g.sum()), 12)
    ((9,), 1.0)
    >>> gaussian(0.5, truncate=2.0).round(4)
    array([0.1065, 0.787 , 0.1065])
    >>> gaussian(-1)
    Traceback (most recent call last):
    ...
    ValueError: sigma must be > 0, got -1
    """
    sigma = _positive_float(sigma, "sigma")
    truncate = _positive_float(truncate, "truncate")
    radius = int(truncate * sigma + 0.5)
    if radius == 0:  # one tap: [1] (and 1 / sigma**2 would overflow for a tiny sigma)
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x * x)
    return phi / phi.sum()


def binomial(n: int, *, normalize: bool = False) -> np.ndarray:
    """Binomial (Pascal-row) taps of length ``n``, ``1 <= n <= 7``.

    These are the BlurPool filters of Zhang (2019), *Making Convolutional
    Networks Shift-Invariant Again* (adobe/antialiased-cnns): ``[1]``,
    ``[1, 1]``, ``[1, 2, 1]``, ..., ``[1, 6, 15, 20, 15, 6, 1]``.

    Parameters
    ----------
    n : int
        Number of taps.
    normalize : bool, optional
        Divide by the sum ``2 ** (n - 1)``.

    Returns
    -------
    ndarray, shape (n,), float64 (a fresh, writable copy)

    Examples
    --------
    >>> binomial(5)
    array([1., 4., 6., 4., 1.])
    >>> binomial(3, normalize=True)
    array([0.25, 0.5 , 0.25])
    >>> binomial(8)
    Traceback (most recent call last):
    ...
    ValueError: n must be an int in 1..7, got 8
    """
    if not _is_int(n) or not 1 <= n <= len(BINOMIAL_TAPS):
        raise ValueError(f"n must be an int in 1..{len(BINOMIAL_TAPS)}, got {n!r}")
    taps = BINOMIAL_TAPS[n - 1].copy()
    return taps / taps.sum() if normalize else taps
