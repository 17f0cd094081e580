"""Argument normalisation shared by the numeric cores.

Knows: ints and (h, w) pairs, float dtypes, the (P, H, W) plane view. Imports
only numpy.

Every public core normalises its int-or-pair arguments once, on entry (after
scikit-image's ``block_reduce`` and kornia's ``_unpack_2d_ks``), and raises a
``ValueError`` that names the parameter and quotes the value.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def is_int(v: Any) -> bool:
    """True for Python and NumPy integers, False for bools (``True`` is not a size)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


_is_int = is_int  # the old private name, kept for imports that still use it


def pair(value: Any, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """Normalise an int or an (h, w) pair of ints to a tuple of two ints >= ``minimum``.

    >>> pair(3, "size")
    (3, 3)
    >>> pair((2, 4), "stride")
    (2, 4)
    >>> pair(0, "size")
    Traceback (most recent call last):
    ...
    ValueError: size must be an int >= 1 or a pair of them, got 0
    """
    if is_int(value):
        out = (int(value), int(value))
    elif isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2 and all(is_int(v) for v in value):
        out = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    if min(out) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return out


def as_float_array(x: Any, name: str = "x") -> np.ndarray:
    """Return ``x`` as a float32/float64 ndarray (other dtypes become float64)."""
    a = np.asarray(x)
    if a.dtype.kind == "c":
        raise ValueError(f"{name} must be real, got dtype {a.dtype}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32 if a.dtype == np.float16 else np.float64)
    return a


def as_planes(x: Any, name: str = "x") -> tuple[np.ndarray, tuple[int, ...]]:
    """View an (H, W), (C, H, W) or (N, C, H, W) array as (P, H, W) planes.

    Returns the float array reshaped to three dimensions and the leading shape to
    restore with :func:`restore_planes`.
    """
    a = as_float_array(x, name)
    if a.ndim not in (2, 3, 4):
        raise ValueError(f"{name} must have shape (H, W), (C, H, W) or (N, C, H, W), got shape {a.shape}")
    lead = a.shape[:-2]
    h, w = a.shape[-2:]
    return a.reshape((-1, h, w)), lead


def restore_planes(out: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`as_planes` for an output of shape (P, OH, OW)."""
    return out.reshape(lead + out.shape[-2:])
