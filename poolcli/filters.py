"""Cross-correlation of image planes with kernels: boundary modes, stride, dilation.

A CNN "convolution" is a cross-correlation (no kernel flip), and so is every
function here: :func:`correlate2d` equals ``scipy.ndimage.correlate`` (with
the anchor of PyTorch's "same"; ``scipy.ndimage.convolve`` would flip the
kernel) and is tested against it, but runs on its own banded engine, which
the benchmarks showed to be about 10x faster. Kernels come from :mod:`poolcli.kernels`, from the
:data:`FILTERS` registry, from a string (:func:`parse_kernel`) or a file
(:func:`load_kernel`).

Boundary modes
--------------
:data:`BOUNDARY_MODES` uses the ``scipy.ndimage`` names. For an input row
``a b c d``:

- ``reflect``: ``d c b a | a b c d | d c b a``, half-sample symmetric (the
  edge sample is repeated); NumPy ``np.pad(mode="symmetric")``. PyTorch has
  no such padding mode.
- ``mirror``: ``d c b | a b c d | c b a``, whole-sample symmetric (the edge
  sample is not repeated); PyTorch ``ReflectionPad2d`` /
  ``F.pad(mode="reflect")``; NumPy ``np.pad(mode="reflect")``.
- ``nearest``: ``a a a | a b c d | d d d``; PyTorch ``replicate``; NumPy ``edge``.
- ``constant``: ``k k k | a b c d | k k k`` with ``k = cval`` (default 0): zero
  padding, PyTorch ``padding_mode="zeros"``; NumPy ``constant``.
- ``wrap``: ``b c d | a b c d | a b c``; PyTorch ``circular``; NumPy ``wrap``.

Note the trap: scipy's ``reflect`` is **not** PyTorch's ``reflect``; use
``mirror`` for that.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np

from poolcli import kernels as K
from poolcli._bands import accumulate, extend, get_num_threads, run_bands
from poolcli._checks import as_planes, pair, restore_planes

__all__ = [
    "ACTIVATIONS",
    "BOUNDARY_MODES",
    "FILTERS",
    "Filter",
    "activate",
    "apply_filter",
    "correlate2d",
    "custom_filter",
    "filter_bank",
    "get_filter",
    "list_filters",
    "load_kernel",
    "parse_filter_spec",
    "parse_kernel",
]

BOUNDARY_MODES: tuple[str, ...] = ("reflect", "mirror", "nearest", "constant", "wrap")
ACTIVATIONS: tuple[str, ...] = ("none", "relu", "abs")
COMBINES: tuple[str, ...] = ("single", "magnitude")

# Relative tolerance for accepting a kernel as an outer product (separable path).
_SEPARABLE_RTOL = 1e-12


# --------------------------------------------------------------------------- kernels
def _check_kernel(kernel: Any, name: str = "kernel") -> np.ndarray:
    """Return ``kernel`` as a read-only 2-D finite float64 array or raise ValueError."""
    try:
        k = np.array(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 2-D array of numbers, got {kernel!r}") from None
    if k.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {k.shape}")
    if k.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {k.shape}")
    if not np.isfinite(k).all():
        raise ValueError(f"{name} must be finite, got {k.tolist()!r}")
    k.setflags(write=False)
    return k


@dataclass(frozen=True, eq=False)
class Filter:
    """A named filter: one kernel, or two combined as a gradient magnitude.

    Equality and hashing use ``name``, ``combine``, ``params`` and the kernels'
    shapes and bytes (the ``description`` is ignored). Kernels are stored as
    read-only float64 copies.

    Attributes
    ----------
    name : str
        Registry name (``"sobel"``, ``"gaussian"``, ``"custom"`` ...).
    kernels : tuple of ndarray
        One 2-D kernel (``combine="single"``) or two (``combine="magnitude"``).
    combine : {"single", "magnitude"}
        ``"magnitude"`` is ``np.hypot(correlate(x, k0), correlate(x, k1))``.
    params : tuple of (str, object) pairs
        The parameters the filter was built with, e.g. ``(("sigma", 1.5),)``.
    description : str
        One line for ``poolcli filters``.

    Examples
    --------
    >>> f = get_filter("sobel")
    >>> f.combine, len(f.kernels)
    ('magnitude', 2)
    >>> f == get_filter("sobel"), f == get_filter("sobel-x")
    (True, False)
    """

    name: str
    kernels: tuple[np.ndarray, ...]
    combine: str = "single"
    params: tuple[tuple[str, object], ...] = ()
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.combine not in COMBINES:
            raise ValueError(f"combine must be one of {COMBINES}, got {self.combine!r}")
        ks = tuple(_check_kernel(k, "kernels") for k in self.kernels)
        need = 1 if self.combine == "single" else 2
        if len(ks) != need:
            raise ValueError(f"combine={self.combine!r} needs {need} kernel(s), got {len(ks)}")
        object.__setattr__(self, "kernels", ks)
        object.__setattr__(self, "params", tuple((str(k), v) for k, v in self.params))

    def _key(self) -> tuple:
        return (
            self.name,
            self.combine,
            self.params,
            tuple((k.shape, k.tobytes()) for k in self.kernels),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Filter):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def label(self) -> str:
        """``name`` plus parameters, e.g. ``"gaussian(sigma=1.5)"``."""
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.params)})"


# --------------------------------------------------------------------------- registry
def _single(name: str, kernel: np.ndarray, description: str, params=()) -> Filter:
    return Filter(name, (kernel,), "single", tuple(params), description)


def _magnitude(name: str, kx: np.ndarray, ky: np.ndarray, description: str) -> Filter:
    return Filter(name, (kx, ky), "magnitude", (), description)


def _identity() -> Filter:
    return _single("identity", K.IDENTITY, "no filtering (1x1 identity kernel)")


def _gaussian(*, sigma: float = 1.0) -> Filter:
    g = K.gaussian(sigma)  # validates sigma
    sigma = float(sigma)
    return _single(
        "gaussian",
        K.outer(g),
        f"Gaussian blur, sigma={sigma:g} px, radius int(4*sigma+0.5) as scipy",
        (("sigma", sigma),),
    )


def _box(*, size: Any = 3) -> Filter:
    if isinstance(size, str):
        size = _parse_size(size)
    h, w = pair(size, "size")
    value: Any = h if h == w else (h, w)
    return _single("box", K.outer(K.box(h), K.box(w)), f"box (mean) filter {h}x{w}", (("size", value),))


def _parse_size(text: str) -> Any:
    """``"3"`` -> 3, ``"3x5"`` or ``"3,5"`` -> (3, 5)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x,]\s*(\d+)\s*)?", text)
    if m is None:
        raise ValueError(f"size must be an int >= 1 or a pair of them, got {text!r}")
    return int(m[1]) if m[2] is None else (int(m[1]), int(m[2]))


def _const_factory(name: str, kernel: np.ndarray, description: str) -> Callable[[], Filter]:
    def factory() -> Filter:
        return _single(name, kernel, description)

    factory.__name__ = f"_{name.replace('-', '_')}"
    return factory


def _mag_factory(name: str, kx: np.ndarray, ky: np.ndarray, description: str) -> Callable[[], Filter]:
    def factory() -> Filter:
        return _magnitude(name, kx, ky, description)

    factory.__name__ = f"_{name}"
    return factory


#: Filter registry: name -> factory taking keyword parameters and returning a :class:`Filter`.
#: ``none`` is an alias of ``identity``.
FILTERS: dict[str, Callable[..., Filter]] = {
    "identity": _identity,
    "none": _identity,
    "sobel-x": _const_factory("sobel-x", K.SOBEL_X, "Sobel x-derivative (right - left)"),
    "sobel-y": _const_factory("sobel-y", K.SOBEL_Y, "Sobel y-derivative (bottom - top)"),
    "sobel": _mag_factory("sobel", K.SOBEL_X, K.SOBEL_Y, "Sobel gradient magnitude hypot(gx, gy)"),
    "prewitt-x": _const_factory("prewitt-x", K.PREWITT_X, "Prewitt x-derivative (right - left)"),
    "prewitt-y": _const_factory("prewitt-y", K.PREWITT_Y, "Prewitt y-derivative (bottom - top)"),
    "prewitt": _mag_factory("prewitt", K.PREWITT_X, K.PREWITT_Y, "Prewitt gradient magnitude hypot(gx, gy)"),
    "scharr-x": _const_factory("scharr-x", K.SCHARR_X, "Scharr x-derivative (right - left)"),
    "scharr-y": _const_factory("scharr-y", K.SCHARR_Y, "Scharr y-derivative (bottom - top)"),
    "scharr": _mag_factory("scharr", K.SCHARR_X, K.SCHARR_Y, "Scharr gradient magnitude hypot(gx, gy)"),
    "laplace": _const_factory("laplace", K.LAPLACE, "4-neighbour Laplacian"),
    "gaussian": _gaussian,
    "box": _box,
    "sharpen": _const_factory("sharpen", K.SHARPEN, "sharpen (impulse minus Laplacian)"),
    "emboss": _const_factory("emboss", K.EMBOSS, "emboss, light from the top left"),
}


def get_filter(name: str, **params: Any) -> Filter:
    """Build the registered filter ``name`` with keyword ``params``.

    Parameter values may be numbers or numeric strings (as they come from a
    command line).

    Parameters
    ----------
    name : str
        A key of :data:`FILTERS` (case-insensitive).
    **params
        ``sigma`` for ``gaussian`` (default 1.0), ``size`` (int or pair) for
        ``box`` (default 3); the other filters take none.

    Returns
    -------
    Filter

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones), an unknown
        parameter or an invalid value (the message names the filter and the
        parameter).

    Examples
    --------
    >>> get_filter("gaussian", sigma=1.5).params
    (('sigma', 1.5),)
    >>> get_filter("box", size=2).kernels[0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    >>> get_filter("gaussian", sigma=-1)
    Traceback (most recent call last):
    ...
    ValueError: gaussian: sigma must be > 0, got -1
    >>> get_filter("sobel", sigma=1)
    Traceback (most recent call last):
    ...
    ValueError: sobel: unknown parameter 'sigma' (sobel takes no parameters)
    """
    if not isinstance(name, str):
        raise ValueError(f"filter name must be a string, got {name!r}")
    key = name.strip().lower()
    factory = FILTERS.get(key)
    if factory is None:
        raise ValueError(f"unknown filter {name!r}; known filters: {', '.join(FILTERS)}")
    accepted = [p for p in inspect.signature(factory).parameters]
    for p in params:
        if p not in accepted:
            takes = f"known: {', '.join(accepted)}" if accepted else f"{key} takes no parameters"
            raise ValueError(f"{key}: unknown parameter {p!r} ({takes})")
    try:
        return factory(**params)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def parse_filter_spec(spec: str) -> Filter:
    """Build a filter from ``"name"`` or ``"name:key=value,key=value"``.

    Examples
    --------
    >>> parse_filter_spec("gaussian:sigma=2").label
    'gaussian(sigma=2.0)'
    >>> parse_filter_spec("box:size=3x5").kernels[0].shape
    (3, 5)
    >>> parse_filter_spec("gaussian:sigma")
    Traceback (most recent call last):
    ...
    ValueError: filter spec 'gaussian:sigma': expected key=value, got 'sigma'
    """
    name, _, rest = spec.partition(":")
    params: dict[str, str] = {}
    for item in (s.strip() for s in rest.split(",")) if rest.strip() else ():
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ValueError(f"filter spec {spec!r}: expected key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return get_filter(name, **params)


def list_filters() -> list[Filter]:
    """Every registered filter with its default parameters (aliases once).

    Examples
    --------
    >>> [f.name for f in list_filters()][:4]
    ['identity', 'sobel-x', 'sobel-y', 'sobel']
    """
    seen: set[int] = set()
    out = []
    for factory in FILTERS.values():
        if id(factory) not in seen:
            seen.add(id(factory))
            out.append(factory())
    return out


def custom_filter(kernel: Any, name: str = "custom") -> Filter:
    """Wrap a user kernel (array-like, 2-D, finite) as a single-kernel :class:`Filter`.

    Examples
    --------
    >>> custom_filter([[1, -1]]).kernels[0]
    array([[ 1., -1.]])
    >>> custom_filter([1, -1])
    Traceback (most recent call last):
    ...
    ValueError: kernel must be 2-D, got shape (2,)
    """
    k = _check_kernel(kernel, "kernel")
    return Filter(name, (k,), "single", (), f"custom {k.shape[0]}x{k.shape[1]} kernel")


# --------------------------------------------------------------------------- kernel text/files
_ROW_SEP = re.compile(r"[;\n]")
_VALUE_SEP = re.compile(r"\s*,\s*|\s+")


def _parse_number(token: str, text: str) -> float:
    try:
        value = float(token)
    except ValueError:
        if token.count("/") != 1:
            raise ValueError(f"kernel: {token!r} is not a number (in {text!r})") from None
        try:
            value = float(Fraction(token.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"kernel: {token!r} is not a number or fraction (in {text!r})") from None
    if not math.isfinite(value):
        raise ValueError(f"kernel: {token!r} is not finite (in {text!r})")
    return value


def parse_kernel(text: str) -> np.ndarray:
    """Parse a kernel written as rows separated by ``;`` (or newlines).

    Values in a row are separated by commas or whitespace; each is a float
    (``-1``, ``0.5``, ``1e-3``) or a fraction (``1/9``). Rows must have equal
    length; ``nan`` and ``inf`` are rejected.

    Parameters
    ----------
    text : str
        E.g. ``"1,0,-1; 2,0,-2; 1,0,-1"``.

    Returns
    -------
    ndarray, shape (rows, columns), float64

    Raises
    ------
    ValueError
        Quoting the empty, ragged or non-numeric part.

    Examples
    --------
    >>> parse_kernel("1,0,-1;2,0,-2;1,0,-1")
    array([[ 1.,  0., -1.],
           [ 2.,  0., -2.],
           [ 1.,  0., -1.]])
    >>> parse_kernel("1/4 1/4; 1/4 1/4")
    array([[0.25, 0.25],
           [0.25, 0.25]])
    >>> parse_kernel("1,2;3")
    Traceback (most recent call last):
    ...
    ValueError: kernel: rows must have equal length; row 2 '3' has 1 value(s), row 1 has 2
    >>> parse_kernel("1,x")
    Traceback (most recent call last):
    ...
    ValueError: kernel: 'x' is not a number (in '1,x')
    """
    if not isinstance(text, str):
        raise ValueError(f"kernel text must be a string, got {text!r}")
    body = text.strip()
    if not body:
        raise ValueError(f"kernel: empty kernel text {text!r}")
    rows: list[list[float]] = []
    raw_rows = _ROW_SEP.split(body)
    if len(raw_rows) > 1 and not raw_rows[-1].strip():
        raw_rows = raw_rows[:-1]  # one trailing separator is fine
    for i, raw in enumerate(raw_rows, start=1):
        row = raw.strip()
        if not row:
            raise ValueError(f"kernel: row {i} is empty (in {text!r})")
        tokens = _VALUE_SEP.split(row)
        if any(t == "" for t in tokens):
            raise ValueError(f"kernel: empty value in row {i} {row!r} (in {text!r})")
        values = [_parse_number(t, text) for t in tokens]
        if rows and len(values) != len(rows[0]):
            raise ValueError(
                f"kernel: rows must have equal length; row {i} {row!r} has {len(values)} value(s), "
                f"row 1 has {len(rows[0])}"
            )
        rows.append(values)
    return np.array(rows, dtype=np.float64)


def load_kernel(path: str | Path) -> np.ndarray:
    """Read a 2-D kernel from ``.npy`` or from ``.txt`` / ``.csv`` text.

    Text files are read with ``np.loadtxt``: comma-delimited if the file has a
    comma, else whitespace-delimited; ``#`` starts a comment.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray, 2-D, float64

    Raises
    ------
    ValueError
        For a missing or unreadable file, another suffix, a non-numeric,
        empty, non-2-D or non-finite array (the message quotes the path).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "k.txt"
    >>> _ = p.write_text("1 0 -1\\n2 0 -2\\n1 0 -1\\n")
    >>> load_kernel(p)[1]
    array([ 2.,  0., -2.])
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".txt", ".csv"):
        raise ValueError(f"kernel file must end in .npy, .txt or .csv, got {str(p)!r}")
    if not p.is_file():
        raise ValueError(f"kernel file {str(p)!r} does not exist or is not a file")
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            text = p.read_text()
            delimiter = "," if "," in text else None
            with warnings.catch_warnings():  # an empty file is reported below
                warnings.simplefilter("ignore", UserWarning)
                arr = np.loadtxt(p, delimiter=delimiter, ndmin=2, dtype=np.float64)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"kernel file {str(p)!r} cannot be read: {exc}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        dtype = getattr(arr, "dtype", type(arr).__name__)
        raise ValueError(f"kernel file {str(p)!r} must hold a real numeric array, got dtype {dtype}")
    try:
        return np.array(_check_kernel(arr, "kernel"))
    except ValueError as exc:
        raise ValueError(f"kernel file {str(p)!r}: {exc}") from None


# --------------------------------------------------------------------------- correlation
def _dilate(k: np.ndarray, dh: int, dw: int) -> np.ndarray:
    if dh == dw == 1:
        return k
    out = np.zeros(((k.shape[0] - 1) * dh + 1, (k.shape[1] - 1) * dw + 1))
    out[::dh, ::dw] = k
    return out


def _factor(k: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (col, row) with ``outer(col, row) == k`` to ~1e-12 relative, or None (read-only arrays).

    Cached per kernel: a batch filters every image with the same kernels, and the rank test's SVD
    was a tenth of filtering a 64x64 image (measured).
    """
    k = np.asarray(k)
    return _factor_of(k.tobytes(), k.shape, k.dtype.str)


@functools.lru_cache(maxsize=256)
def _factor_of(data: bytes, shape: tuple[int, ...], dtype: str) -> tuple[np.ndarray, np.ndarray] | None:
    got = _factor_now(np.frombuffer(data, dtype=dtype).reshape(shape))
    if got is not None:
        for a in got:
            a.flags.writeable = False
    return got


def _factor_now(k: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if k.shape[0] == 1:  # a row kernel (including 1x1): one pass along x
        return np.ones(1), k[0].copy()
    if k.shape[1] == 1:  # a column kernel: one pass along y
        return k[:, 0].copy(), np.ones(1)
    scale = np.abs(k).max()
    if scale == 0:
        return None
    if np.linalg.matrix_rank(k, tol=_SEPARABLE_RTOL * scale * max(k.shape)) != 1:
        return None
    # Pivot on the largest entry: exact integer factors for kernels like Sobel.
    i, j = np.unravel_index(np.argmax(np.abs(k)), k.shape)
    col = k[:, j].copy()
    row = k[i, :] / k[i, j]
    if np.abs(np.multiply.outer(col, row) - k).max() > _SEPARABLE_RTOL * scale:
        return None
    return col, row


def _origin(n: int) -> int:
    """scipy ``origin`` that puts the anchor at tap ``(n - 1) // 2``, as PyTorch's "same"
    (for checking this module against ``scipy.ndimage.correlate``)."""
    return -1 if n % 2 == 0 else 0


# --------------------------------------------------------------------------- correlation of bands
#
# Measured (benchmarks/, 3x3 Sobel on 4096^2 float32, 2-core machine):
# scipy.ndimage.correlate1d twice took ~470 ms, 40x a memcpy, where OpenCV's
# filter2D took ~29 ms. scipy converts every line to float64 and back; the
# filters instead run on poolcli._bands' engine: bands of rows that fit in
# cache, extended by its boundary index maps, accumulating in the band in
# the input dtype as OpenCV does (float32 stays float32: a few ulp from a
# float64 sum; float64 input is summed in float64). Zero taps are skipped (so
# dilation costs nothing), unit taps are additions (poolcli._bands.accumulate).

def _response(buf: np.ndarray, k: np.ndarray, factors, n: int, ow: int, stride: tuple[int, int]) -> np.ndarray:
    """(P, n, ow) correlation of one padded band with a (dilated) kernel, in the band's dtype."""
    sh, sw = stride
    kh, kw = k.shape
    dt = buf.dtype
    out_shape = (buf.shape[0], n, ow)
    acc = None
    if factors is not None:  # separable: along rows, then down the columns
        col, row = factors
        hb = None
        for j in range(kw):
            hb = accumulate(hb, buf[:, :, j : j + (ow - 1) * sw + 1 : sw], float(row[j]), buf.shape[:2] + (ow,), dt, "hb")
        if hb is None:
            return np.zeros(out_shape, dtype=dt)
        for i in range(kh):
            acc = accumulate(acc, hb[:, i : i + (n - 1) * sh + 1 : sh], float(col[i]), out_shape, dt, "acc")
    else:
        for i in range(kh):
            rows = buf[:, i : i + (n - 1) * sh + 1 : sh]
            for j in range(kw):
                acc = accumulate(acc, rows[:, :, j : j + (ow - 1) * sw + 1 : sw], float(k[i, j]), out_shape, dt, "acc")
    return np.zeros(out_shape, dtype=dt) if acc is None else acc


def _filter_planes(
    planes: np.ndarray, ks: list, combine: str, mode: str, cval: float, stride: tuple[int, int]
) -> np.ndarray:
    """(P, H, W) planes -> (P, ceil(H/sh), ceil(W/sw)) of the planes' dtype, band by band."""
    p, h, w = planes.shape
    sh, sw = stride
    oh, ow = -(-h // sh), -(-w // sw)
    kw = max(k.shape[1] for k in ks)
    out = np.empty((p, oh, ow), dtype=planes.dtype)
    factors = [_factor(k) for k in ks]

    def work(p0: int, p1: int, r0: int, r1: int) -> None:
        dest = out[p0:p1, r0:r1]
        buf, extent = None, None
        for n_k, (k, fac) in enumerate(zip(ks, factors)):
            ah, aw = (k.shape[0] - 1) // 2, (k.shape[1] - 1) // 2
            rows = (r0 * sh - ah, (r1 - 1) * sh - ah + k.shape[0])
            cols = (-aw, (ow - 1) * sw - aw + k.shape[1])
            if (rows, cols) != extent:  # kernels of one shape (a Sobel pair) read the same extended band
                buf, extent = extend(planes[p0:p1], rows, cols, mode, cval, key="band"), (rows, cols)
            r = _response(buf, k, fac, r1 - r0, ow, stride)
            if n_k == 0:
                dest[...] = r  # kept in out: the next kernel reuses the scratch buffers
            elif combine == "magnitude":
                np.hypot(dest, r, out=dest, casting="same_kind")

    # On one thread, bands of a quarter of BAND_BYTES: the band, its row sums, its sums and a temporary stay
    # in L2 (a 512x512 Sobel 2.7 -> 2.3 ms, 4096x4096 165 -> 153 ms, measured). On more threads the larger
    # bands: more bands are more GIL hand-offs between the ufunc calls (2048x2048 on two threads: 29 ms,
    # 47 ms with the smaller bands). The bands only split the work: the same bits either way.
    share = 4 if get_num_threads() == 1 else 1
    run_bands(work, p, oh, (w + kw) * planes.itemsize * sh * share, planes.size)
    return out


def _normalise(x, kernel, mode, cval, stride, dilation):
    if mode not in BOUNDARY_MODES:
        raise ValueError(f"mode must be one of {', '.join(BOUNDARY_MODES)}, got {mode!r}")
    try:
        cval = float(cval)
    except (TypeError, ValueError):
        raise ValueError(f"cval must be a number, got {cval!r}") from None
    stride = pair(stride, "stride")
    dh, dw = pair(dilation, "dilation")
    shape = np.shape(x)
    if len(shape) in (2, 3, 4) and 0 in shape:
        raise ValueError(f"x must not be empty, got shape {shape}")
    planes, lead = as_planes(x)
    ks = [_dilate(_check_kernel(k), dh, dw) for k in kernel]
    return planes, lead, ks, mode, cval, stride


def correlate2d(
    x: Any,
    kernel: Any,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Cross-correlate every (H, W) plane of ``x`` with a 2-D kernel ("same" size, then stride).

    CNN semantics: no kernel flip. With ``K`` the kernel after dilation
    (``d - 1`` zeros inserted between taps, size ``(k - 1) d + 1``), ::

        same[i, j] = sum_{u, v} K[u, v] * xpad[i + u - (KH - 1) // 2, j + v - (KW - 1) // 2]
        out = same[::sh, ::sw]

    The anchor is tap ``(K - 1) // 2`` along each axis, as PyTorch's
    ``padding="same"``: ``(K - 1) // 2`` padded before, ``K // 2`` after. For
    odd sizes that is the centre (scipy's ``origin=0``); for an **even** size it
    is the earlier of the two middle taps (for ``[a, b]``: ``out[i] = a x[i] +
    b x[i+1]``), so that a 2x2 box with stride 2 reads exactly the windows of
    a 2x2 average pooling. Padding values come from the boundary ``mode`` (see
    the module docstring and :data:`BOUNDARY_MODES`).

    Stride subsamples the same-size result, which equals PyTorch's
    ``conv2d(stride=s, padding=((K - 1) // 2, K // 2))`` with that padding
    mode: how a strided convolution stands in for pooling.

    Shape:
        - x: (H, W), (C, H, W) or (N, C, H, W), any real dtype
        - out: (..., ceil(H / sh), ceil(W / sw)), same leading shape

    Parameters
    ----------
    x : array_like
        Planes are filtered independently.
    kernel : array_like, 2-D
        Finite, non-empty.
    mode : {"reflect", "mirror", "nearest", "constant", "wrap"}
        scipy.ndimage boundary mode. ``mirror`` is PyTorch ``reflect``.
    cval : float
        Padding value for ``mode="constant"``.
    stride : int or (int, int)
    dilation : int or (int, int)

    Returns
    -------
    ndarray
        Accumulated in the input dtype (float32 or float64), returned as
        float32 for float16/float32 input and float64 otherwise (the dtype of
        float32/float64 input is kept).

    Notes
    -----
    Rank-1 kernels (Sobel, Gaussian, box, ...; checked with
    ``np.linalg.matrix_rank`` and by rebuilding the outer product to 1e-12
    relative) run as two 1-D passes over each padded band; the result equals
    the 2-D pass within float rounding. Tested against a brute-force
    ``np.pad`` + tap loop for every mode (``tests/test_filters.py``).

    Examples
    --------
    >>> x = np.zeros((5, 5)); x[2, 2] = 1.0
    >>> correlate2d(x, [[1, 2], [3, 4]])[1:4, 1:4]   # no flip: the kernel appears rotated
    array([[4., 3., 0.],
           [2., 1., 0.],
           [0., 0., 0.]])
    >>> correlate2d(np.arange(16.0).reshape(4, 4), np.ones((3, 3)) / 9, stride=2, mode="nearest")
    array([[ 1.66666667,  3.33333333],
           [ 8.33333333, 10.        ]])
    >>> correlate2d(np.ones((2, 8, 8), np.float32), [[1.0]], stride=(3, 2)).shape
    (2, 3, 4)
    >>> correlate2d(x, [[1.0]], mode="zeros")
    Traceback (most recent call last):
    ...
    ValueError: mode must be one of reflect, mirror, nearest, constant, wrap, got 'zeros'
    """
    planes, lead, (k,), mode, cval, stride = _normalise(x, [kernel], mode, cval, stride, dilation)
    return restore_planes(_filter_planes(planes, [k], "single", mode, cval, stride), lead)


def apply_filter(
    x: Any,
    filt: Filter,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Apply a :class:`Filter`: one correlation, or ``np.hypot`` of two (gradient magnitude).

    Arguments and output shape/dtype as :func:`correlate2d`; the magnitude is
    computed in float64 before the cast.

    Examples
    --------
    >>> x = np.tile(np.array([0.0, 0.0, 1.0, 1.0]), (4, 1))   # a vertical step edge
    >>> apply_filter(x, get_filter("sobel-x"), mode="nearest")
    array([[0., 4., 4., 0.],
           [0., 4., 4., 0.],
           [0., 4., 4., 0.],
           [0., 4., 4., 0.]])
    >>> apply_filter(x, get_filter("sobel"), mode="nearest")[0]
    array([0., 4., 4., 0.])
    """
    if not isinstance(filt, Filter):
        raise ValueError(f"filt must be a Filter, got {type(filt).__name__}")
    planes, lead, ks, mode, cval, stride = _normalise(x, filt.kernels, mode, cval, stride, dilation)
    return restore_planes(_filter_planes(planes, ks, filt.combine, mode, cval, stride), lead)


def filter_bank(x: Any, filters: list[Filter] | tuple[Filter, ...], **kw: Any) -> np.ndarray:
    """Apply several filters and stack the results as channels, filter-major.

    For ``x`` of shape (C, H, W) the output is (C * F, H', W') with
    ``out[f * C + c] = apply_filter(x[c], filters[f])``: all channels of filter
    0, then all channels of filter 1, and so on. (H, W) gives (F, H', W');
    (N, C, H, W) gives (N, C * F, H', W'). Keywords go to :func:`apply_filter`.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((3, 6, 6))
    >>> fs = [get_filter("sobel-x"), get_filter("sobel-y")]
    >>> y = filter_bank(x, fs)
    >>> y.shape
    (6, 6, 6)
    >>> bool(np.array_equal(y[4], apply_filter(x[1], fs[1])))
    True
    """
    filters = list(filters)
    if not filters:
        raise ValueError("filters must hold at least one Filter, got []")
    results = [apply_filter(x, f, **kw) for f in filters]
    if results[0].ndim == 2:
        return np.stack(results)
    return np.concatenate(results, axis=-3)


# --------------------------------------------------------------------------- activations
def activate(x: Any, name: str) -> np.ndarray:
    """Pointwise activation: ``"none"`` (unchanged), ``"relu"`` or ``"abs"``.

    The dtype is kept and NaN propagates (``np.maximum``, not ``np.fmax``).

    Examples
    --------
    >>> activate(np.array([-1.0, 0.5, np.nan], np.float32), "relu")
    array([0. , 0.5, nan], dtype=float32)
    >>> activate(np.array([-2.0, 3.0]), "abs")
    array([2., 3.])
    >>> activate(np.zeros(2), "tanh")
    Traceback (most recent call last):
    ...
    ValueError: activation must be one of none, relu, abs, got 'tanh'
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    a = np.asarray(x)
    if name == "relu":
        return np.maximum(a, 0)
    if name == "abs":
        return np.abs(a)
    return a
