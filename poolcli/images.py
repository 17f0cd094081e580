"""Images in and out: the only module of poolcli that imports PIL.

Reading turns any file Pillow can decode, in any mode, into a C-contiguous
``float32`` array of shape ``(C, H, W)``; writing turns 2-D float maps into
PNG files (deterministic pixels, no metadata) and lays feature maps out side by side in a labelled
montage. Files are never written here: callers get ``bytes`` and write them
atomically (see ``outputs.py``).

Every failure to read an input raises :class:`poolcli.errors.InputError`
(``"path: reason"``); bad arguments raise :class:`ValueError` naming the
parameter and quoting the value.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import stat
import struct
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import logging

from PIL import Image, ImageDraw, ImageFont, ImageOps

from poolcli.errors import InputError
from poolcli._deflate import compressor

__all__ = [
    "IMAGE_EXTENSIONS",
    "encode_png",
    "load_image",
    "montage",
    "to_uint8",
]

# Extensions we accept when discovering inputs: the common raster formats,
# kept only if this Pillow build can actually open them (WebP or JPEG 2000
# support is optional at Pillow build time). Formats that need an external
# program or a user-installed handler (EPS, HDF5, GRIB, ...) are left out.
# Pillow logs decoder complaints ("More samples per pixel than can be
# decoded") before raising; with no handler, Python prints them to stderr. The
# error itself reaches the user as one line, so the log record goes nowhere.
logging.getLogger("PIL").addHandler(logging.NullHandler())

_WANTED_EXTENSIONS = (
    ".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".bmp",
    ".dib", ".gif", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".pfm", ".tga",
    ".pcx", ".ico", ".qoi", ".jp2", ".j2k", ".jpx", ".jpc",
)


def _opens(ext: str, registered: dict[str, str]) -> bool:
    """Whether Pillow has an opener for ``ext`` among the ``registered`` extensions (ext -> format)."""
    return registered.get(ext) in Image.OPEN


@functools.lru_cache(maxsize=1)
def _openable_extensions() -> frozenset[str]:
    registered = Image.registered_extensions()  # also runs Image.init()
    return frozenset(ext for ext in _WANTED_EXTENSIONS if _opens(ext, registered))


class _OpenableExtension:
    """``ext in OPENABLE``: ``ext in IMAGE_EXTENSIONS``, without importing every Pillow plugin for the
    common formats. The five Pillow registers first (``Image.preinit()``: PNG, JPEG, BMP, GIF, PPM) are
    answered from their own registration; any other wanted extension asks :data:`IMAGE_EXTENSIONS` (all
    plugins, ``Image.init()``: 25-60 ms measured, once per process). A folder of PNGs is discovered
    without it."""

    def __contains__(self, ext: object) -> bool:
        if ext not in _WANTED_EXTENSIONS:
            return False
        Image.preinit()
        if _opens(ext, Image.EXTENSION):
            return True
        return ext in _openable_extensions()


OPENABLE = _OpenableExtension()


def __getattr__(name: str):
    # IMAGE_EXTENSIONS: lower-case file extensions (with the dot) that load_image reads. Made on first use
    # (PEP 562): asking Pillow imports every one of its plugins (Image.init(), about 20 ms), which a run on
    # named files never needs (Image.open of a PNG or JPEG loads only the common five).
    if name == "IMAGE_EXTENSIONS":
        return _openable_extensions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_COLORS = ("gray", "keep", "keep-alpha")
NAN_POLICIES = ("error", "propagate", "zero")

# ITU-R BT.601 luma weights.
_LUMA = (0.299, 0.587, 0.114)

# Everything Pillow (or the libraries under it) raises for a broken file.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    TypeError,
    MemoryError,
)

_BOMB_NUMBERS = re.compile(r"\((\d+) pixels\)\D*?(\d+) pixels")


def _bomb_reason(message: str) -> str:
    match = _BOMB_NUMBERS.search(message)
    if match:
        # Pillow's error quotes twice the limit (its error threshold); name the limit itself
        limit = Image.MAX_IMAGE_PIXELS or int(match.group(2))
        return f"image too large ({match.group(1)} pixels > limit {limit})"
    return "image too large (decompression bomb check)"


def _check_regular_file(path: Path) -> None:
    """Refuse missing paths, directories, FIFOs, devices and empty files."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(path, "file not found") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(path, "is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(path, "not a regular file")
    if st.st_size == 0:
        raise InputError(path, "empty file (0 bytes)")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png_checksums(path: Path, fp) -> None:
    """Verify every PNG chunk's CRC, which Pillow skips for image data (IDAT).

    A flipped bit in compressed data can still inflate to a plausible image;
    the checksum is how PNG says the file is damaged. Cost: one crc32 pass.
    """
    fp.seek(0)
    if fp.read(8) != _PNG_SIGNATURE:
        fp.seek(0)
        return
    while True:
        head = fp.read(8)
        if len(head) < 8:
            break  # truncation is Pillow's to report
        length, kind = struct.unpack(">I4s", head)
        crc = zlib.crc32(kind)
        remaining = length
        while remaining:
            chunk = fp.read(min(remaining, 1 << 20))
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            remaining -= len(chunk)
        stored = fp.read(4)
        if remaining or len(stored) < 4:
            break
        if struct.unpack(">I", stored)[0] != (crc & 0xFFFFFFFF):
            name = kind.decode("latin-1", "replace")
            raise InputError(path, f"corrupt PNG: checksum mismatch in chunk {name}")
        if kind == b"IEND":
            break
    fp.seek(0)


def _check_memory(path: Path, width: int, height: int, bands: int) -> None:
    """Refuse, before decoding, an image whose float maps would not fit in memory.

    The estimate is the float32 image times 4 (the decoded pixels, the float
    copy and two maps of a stage in flight), against the memory available now.
    """
    need = width * height * max(1, bands) * 4 * 4
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if avail > 0 and need > avail:
        raise InputError(
            path, f"image of {width}x{height}x{bands} needs about {need / 2**30:.1f} GiB, more than the {avail / 2**30:.1f} GiB available"
        )


def _decode(path: Path, max_frames: int | None = None, before_decode=None) -> Image.Image:
    """:func:`_decode_file` with the C libraries' stderr captured (:mod:`poolcli._stderr`).

    What libtiff & co. print goes into the input's one-line reason, never to
    the terminal; a decode that printed errors (not warnings) is a failure.
    """
    from ._stderr import captured, errors_of

    failed: InputError | None = None
    with captured() as lines:
        try:
            im = _decode_file(path, max_frames, before_decode)
        except InputError as exc:
            failed = exc
    errors = errors_of(lines)
    said = ""
    if errors:
        said = errors[0][:160] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
    if failed is not None:
        raise InputError(path, f"{failed.reason}: {said}" if said else failed.reason) from None
    if said:
        raise InputError(path, f"corrupt image data: {said}")
    return im


def _decode_file(path: Path, max_frames: int | None = None, before_decode=None) -> Image.Image:
    """Open, size-check, fully decode and orient the first frame of ``path``; ``before_decode(bands, height,
    width)``, if given, is called between the header's checks and the decoding."""
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    try:
        _check_png_checksums(path, fp)
        with warnings.catch_warnings():
            # Pillow's chatter about damaged metadata ("Corrupt EXIF data",
            # "Truncated File Read") is not for the user: a file either loads
            # or fails with one line.
            warnings.simplefilter("ignore")
            # A file between MAX_IMAGE_PIXELS and twice that only warns in
            # Pillow; here it is an error like the larger ones.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                im = Image.open(fp)
            except Image.DecompressionBombError as exc:
                raise InputError(path, _bomb_reason(str(exc))) from None
            except Image.DecompressionBombWarning as exc:
                raise InputError(path, _bomb_reason(str(exc))) from None
            except Image.UnidentifiedImageError:
                raise InputError(path, "not an image Pillow can read") from None
            except _DECODE_ERRORS:
                raise InputError(path, "not an image Pillow can read") from None
            # The same check by hand, so that the limit holds even where the
            # warning filter above is not in effect (other threads).
            limit = Image.MAX_IMAGE_PIXELS
            width, height = im.size
            if limit and width * height > limit:
                raise InputError(
                    path,
                    f"image too large ({width * height} pixels > limit {limit})",
                )
            if width == 0 or height == 0:
                raise InputError(path, f"image has no pixels ({width}x{height})")
            if max_frames is not None:
                try:
                    frames = int(getattr(im, "n_frames", 1))
                except _DECODE_ERRORS:
                    raise InputError(path, "truncated or corrupt image data") from None
                if frames > max_frames:
                    raise InputError(path, f"too many frames ({frames} > --max-frames {max_frames})")
            _check_memory(path, width, height, len(im.getbands()))
            if before_decode is not None:
                before_decode(len(im.getbands()), height, width)
            try:
                # Multi-frame files open on frame 0; nothing iterates frames.
                im.load()
                im = ImageOps.exif_transpose(im)
            except Image.DecompressionBombError as exc:
                raise InputError(path, _bomb_reason(str(exc))) from None
            except Image.DecompressionBombWarning as exc:
                raise InputError(path, _bomb_reason(str(exc))) from None
            except _DECODE_ERRORS:
                raise InputError(path, "truncated or corrupt image data") from None
    finally:
        fp.close()
    return im


def _to_array(im: Image.Image, path: Path) -> np.ndarray:
    """Pixel values of a decoded image as float32 ``(C, H, W)``, scaled."""
    mode = im.mode
    fmt = im.format
    try:
        if mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in im.info
            im = im.convert("RGBA" if has_alpha else "RGB")
        elif mode == "La":
            im = im.convert("LA")
        elif mode == "RGBa":
            im = im.convert("RGBA")
        elif mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith(
            "I;16"
        ):
            # CMYK, YCbCr, RGBX, LAB, HSV, ...: Pillow's own conversion.
            im = im.convert("RGB")
    except ValueError:
        raise InputError(path, f"unsupported image mode {mode!r}") from None

    data = np.asarray(im)
    if data.ndim == 2:
        data = data[np.newaxis]
    else:
        data = np.moveaxis(data, -1, 0)

    scale = None
    if im.mode == "1":
        pass
    elif data.dtype == np.uint8:
        scale = np.float32(255)
    elif data.dtype.kind == "u" and data.dtype.itemsize == 2:  # I;16, I;16B, ...
        scale = np.float32(65535)
    elif im.mode == "I":
        if fmt == "PNG" or (data.size and data.min() >= 0 and data.max() <= 65535):
            scale = np.float32(65535)
    # Channel by channel into one (C, H, W) float32 array: the same values as data.astype(float32) / scale,
    # without the two whole-image float32 temporaries (an interleaved copy and its contiguous copy).
    out = np.empty(data.shape, dtype=np.float32)
    for c in range(data.shape[0]):
        out[c] = data[c]
        if scale is not None:
            out[c] /= scale
    return out


def _luminance(channels: np.ndarray) -> np.ndarray:
    """BT.601 luma of the first three channels, shape ``(1, H, W)``."""
    r, g, b = channels[0], channels[1], channels[2]
    if np.array_equal(r, g) and np.array_equal(g, b):
        return np.ascontiguousarray(channels[:1])
    w_r, w_g, w_b = _LUMA
    gray = w_r * r.astype(np.float64) + w_g * g.astype(np.float64) + w_b * b.astype(np.float64)
    return gray.astype(np.float32)[np.newaxis]


def input_shape(path: str | os.PathLike[str], color: str = "gray") -> tuple[int, int, int] | None:
    """The (C, H, W) ``load_image`` will give, from the file's header alone (no decoding); None if unknown.

    For refusing, in a second, a stack that would not fit in memory.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device would block or never end
            return None
        with warnings.catch_warnings():  # Pillow's noise (corrupt EXIF, ...): load_image reports what matters
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                bands = len(im.getbands())
                w, h = im.size
    except Exception:  # unreadable: load_image says why
        return None
    return _channels(color, bands), h, w


def _channels(color: str, bands: int) -> int:
    """The C of :func:`input_shape` for an image of ``bands`` bands: 1 for ``"gray"``, else its bands."""
    return 1 if color == "gray" else max(1, bands)


def load_image(
    path: str | os.PathLike[str],
    color: str = "gray",
    *,
    max_pixels: int | None = None,
    max_frames: int | None = None,
    nan: str = "error",
    before_decode: Callable[[tuple[int, int, int]], None] | None = None,
) -> np.ndarray:
    """Read an image file into a float32 array of shape ``(C, H, W)``.

    Any file Pillow decodes (PNG, JPEG, TIFF, BMP, GIF, WebP, PNM, ...) in any
    mode is accepted. Only the first frame of a multi-frame file (GIF, APNG,
    multi-page TIFF) is read, and the EXIF orientation tag is applied.

    Parameters
    ----------
    path : str or os.PathLike
        The image file. It must be a regular file: directories, FIFOs and
        devices are refused without being opened.
    color : {"gray", "keep", "keep-alpha"}, default "gray"
        ``"gray"`` returns one channel: the ITU-R BT.601 luma
        ``0.299 R + 0.587 G + 0.114 B`` of colour images (computed in float64
        on the scaled values, then cast to float32), the values themselves for
        one-channel images. Alpha is dropped. ``"keep"`` returns every colour
        channel of the image as its own map, alpha dropped: 1 (``1``, ``L``,
        ``LA``, ``I;16``, ``I``, ``F``) or 3 (``RGB``, ``RGBA``, and
        ``CMYK``/``YCbCr``/``P`` converted to RGB). ``"keep-alpha"`` keeps
        alpha as a last channel: 2 (``LA``) or 4 (``RGBA``, and ``P`` with
        transparency converted to RGBA).
    max_pixels : int, optional, keyword-only
        Refuse images with more pixels than this (default: Pillow's
        ``MAX_IMAGE_PIXELS``, 89,478,485; the decompression-bomb check is
        never disabled, only moved to this limit).
    max_frames : int, optional, keyword-only
        Refuse multi-frame files (GIF, APNG, TIFF, WebP) declaring more frames
        than this (default: no limit; only the first frame is ever decoded).
    nan : {"error", "propagate", "zero"}, keyword-only
        What to do with NaN or infinite pixels (only float TIFFs can hold
        them): ``"error"`` (default) refuses the file, naming how many;
        ``"propagate"`` keeps them (max pooling propagates NaN, as PyTorch);
        ``"zero"`` replaces them with 0.
    before_decode : callable, optional, keyword-only
        Called with the ``(C, H, W)`` of the image once its header is read and
        checked, before its pixels are decoded (C as :func:`input_shape`
        gives it: for ``"keep"`` the file's bands, alpha included); what it
        raises propagates (an :class:`~poolcli.errors.InputError` with its
        reason). E.g. refusing a stack that would not fit in memory without
        opening the file twice.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32 array ``(C, H, W)``. Values are scaled by the
        range of the stored data type:

        - ``1`` (bilevel): 0.0 or 1.0;
        - 8-bit modes (``L``, ``LA``, ``P``, ``RGB``, ``RGBA``, converted
          ``CMYK``...): ``float32(v) / float32(255)``, so an ``L`` image gives
          exactly ``arr.astype(np.float32) / 255``;
        - ``I;16`` (and ``I;16B``, ``I;16L``, ``I;16N``), e.g. a 16-bit
          grayscale PNG or TIFF: ``float32(v) / float32(65535)``;
        - ``I`` (32-bit signed int): divided by 65535 when the file is a PNG
          (PNG has no 32-bit samples, so ``I`` there holds 16-bit data, as in
          older Pillow versions) or when every value lies in ``[0, 65535]``
          (16-bit data in an int32 container); otherwise the integers are
          returned unscaled as float32 (exact up to ``2**24``);
        - ``F`` (32-bit float): unchanged, including negative values, values
          above 1, NaN and infinities (the caller decides what to do with
          non-finite values).

    Raises
    ------
    ValueError
        If `color` is not ``"gray"`` or ``"keep"``.
    poolcli.errors.InputError
        If the file cannot be read: missing, a directory or other non-regular
        file, empty, not an image, truncated or corrupt, or larger than
        Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``;
        the warning zone below twice the limit is an error too).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "red.png"
    ...     Image.new("RGB", (3, 2), (255, 0, 0)).save(p)
    ...     gray = load_image(p)
    ...     rgb = load_image(p, color="keep")
    >>> gray.shape, gray.dtype
    ((1, 2, 3), dtype('float32'))
    >>> rgb.shape
    (3, 2, 3)
    >>> round(float(gray[0, 0, 0]), 6)
    0.299
    >>> load_image("x.png", color="rgb")
    Traceback (most recent call last):
    ...
    ValueError: color must be 'gray' or 'keep'; got 'rgb'
    """
    if not isinstance(color, str) or color not in _COLORS:
        raise ValueError(f"color must be 'gray' or 'keep'; got {color!r}")
    if nan not in NAN_POLICIES:
        raise ValueError(f"nan must be one of {', '.join(NAN_POLICIES)}; got {nan!r}")
    for name, v in (("max_pixels", max_pixels), ("max_frames", max_frames)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive int or None; got {v!r}")
    path = Path(path)
    _check_regular_file(path)
    hook = None
    if before_decode is not None:
        def hook(bands: int, height: int, width: int) -> None:
            before_decode((_channels(color, bands), height, width))
    if max_pixels is None:
        im = _decode(path, max_frames, hook)
    else:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own bomb check uses the module limit
        try:
            im = _decode(path, max_frames, hook)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    channels = _to_array(im, path)
    if channels.dtype.kind == "f" and im.mode.startswith("F"):
        channels = _apply_nan_policy(channels, nan, path)
    if color == "keep-alpha" or channels.shape[0] == 1:
        return channels
    if color == "keep":  # alpha is not a feature map: LA -> L, RGBA -> RGB
        return channels if channels.shape[0] == 3 else np.ascontiguousarray(channels[:-1])
    if channels.shape[0] == 2:  # LA: the gray channel, alpha dropped
        return np.ascontiguousarray(channels[:1])
    return _luminance(channels)


def _levels(values: np.ndarray, lo, scale, out: np.ndarray | None = None) -> np.ndarray:
    """The gray levels of finite ``values`` on the scale ``lo`` .. ``lo + 255 / scale``, in their own dtype:
    ``rint((values - lo) * scale)`` clipped to 0..255, as uint8 (every path of :func:`to_uint8`)."""
    scaled = np.subtract(values, lo)
    scaled *= scale
    np.clip(np.rint(scaled, out=scaled), 0, 255, out=scaled)
    if out is None:
        return scaled.astype(np.uint8)
    out[...] = scaled
    return out


def _finite_span(lo, hi, dtype) -> bool:
    """Whether ``lo`` .. ``hi`` are finite and ``hi - lo`` cannot overflow ``dtype``: one scale in the map's dtype."""
    return bool(np.isfinite(lo) and np.isfinite(hi) and abs(float(hi) - float(lo)) < np.finfo(dtype).max / 2)


def _sparse_uint8(plane) -> np.ndarray | None:
    """:func:`to_uint8` of a sparse map (zeros and a few kept values: ``plane.kept()`` gives the values
    and their flat positions), from the kept values alone, bit for bit what the dense map gives (the same
    arithmetic per pixel; a zero pixel is the level of 0), in bands of kept values (memory: the uint8 map
    and one band). None where the dense path must run: NaN or infinities, or no zero pixel for sure."""
    values, positions = plane.kept()
    size = plane.shape[0] * plane.shape[1]
    if values.dtype not in (np.float32, np.float64) or not 0 < positions.size < size:
        return None
    zero = values.dtype.type(0)
    lo, hi = min(values.min(), zero), max(values.max(), zero)
    if not _finite_span(lo, hi, values.dtype):
        return None
    if hi == lo:
        return np.zeros(plane.shape, dtype=np.uint8)
    scale = values.dtype.type(255) / (hi - lo)
    out = np.full(size, _levels(np.array([zero]), lo, scale)[0], dtype=np.uint8)
    rows = max(1, (1 << 20) // max(1, values.shape[-1]))
    for r in range(0, values.shape[0], rows):
        out[positions[r : r + rows].ravel()] = _levels(values[r : r + rows].ravel(), lo, scale)
    return out.reshape(plane.shape)


def _apply_nan_policy(x: np.ndarray, policy: str, path: Path) -> np.ndarray:
    bad = ~np.isfinite(x)
    n = int(bad.sum())
    if not n or policy == "propagate":
        return x
    if policy == "zero":
        x = x.copy()
        x[bad] = 0
        return x
    raise InputError(path, f"{n} NaN or infinite pixel value(s); use --nan propagate or --nan zero to accept them")


def to_uint8(plane: np.ndarray) -> np.ndarray:
    """Normalise one 2-D map to uint8 for display.

    The smallest finite value maps to 0 and the largest to 255, linearly and
    rounded to nearest. NaN and ``-inf`` map to 0, ``+inf`` to 255. A map
    whose finite values are all equal gives a flat black image (no warning).

    Parameters
    ----------
    plane : array_like
        A 2-D array of real numbers (any float, int or bool dtype).

    Returns
    -------
    numpy.ndarray
        uint8 array with the shape of `plane`.

    Raises
    ------
    ValueError
        If `plane` is not 2-D.

    Examples
    --------
    >>> to_uint8(np.array([[0.0, 0.5], [1.0, 2.0]]))
    array([[  0,  64],
           [128, 255]], dtype=uint8)
    >>> to_uint8(np.array([[3.0, 3.0], [np.nan, np.inf]]))
    array([[  0,   0],
           [  0, 255]], dtype=uint8)
    """
    lazy = getattr(plane, "lazy_rows", False)  # a map served in bands of rows (an unpool map): never whole
    values = plane if lazy else np.asarray(plane)
    if values.ndim != 2:
        raise ValueError(f"plane must be a 2-D array; got shape {values.shape}")
    if lazy and hasattr(values, "kept"):
        sparse = _sparse_uint8(values)
        if sparse is not None:
            return sparse
    if lazy and values.size <= (1 << 22):
        values = np.asarray(values)
    rows = max(1, (1 << 20) // max(1, values.shape[1]))
    bands = [slice(r, r + rows) for r in range(0, values.shape[0], rows)]
    if values.dtype in (np.float32, np.float64) and values.size:
        # Most maps: finite, in the map's own dtype, one scale, rounded once; a map above 4M pixels in
        # bands of rows (one band of temporaries; its float64 arithmetic below took 4x the time, measured)
        whole = values.size <= (1 << 22)
        ranges = [(values.min(), values.max())] if whole else [(band.min(), band.max())
                                                               for band in (values[b] for b in bands)]
        ranges = np.array(ranges, dtype=values.dtype)
        lo, hi = ranges[:, 0].min(), ranges[:, 1].max()  # NaN (propagated) or +-inf: a non-finite value
        if _finite_span(lo, hi, values.dtype):
            if hi == lo:
                return np.zeros(values.shape, dtype=np.uint8)
            scale = values.dtype.type(255) / (hi - lo)
            if whole:
                return _levels(values, lo, scale)
            out = np.empty(values.shape, dtype=np.uint8)
            for b in bands:
                _levels(values[b], lo, scale, out[b])
            return out
    # NaN or infinities (or a span that overflows): float64, in bands of rows (on a whole 8192x8192 map
    # this arithmetic took 2 GiB of temporaries, measured)
    lo, hi = np.inf, -np.inf
    for b in bands:
        v = values[b].astype(np.float64)
        mn, mx = v.min(initial=np.inf), v.max(initial=-np.inf)
        if not (np.isfinite(mn) and np.isfinite(mx)):  # NaN or +-inf in the band: its finite values only
            v = v[np.isfinite(v)]
            mn, mx = v.min(initial=np.inf), v.max(initial=-np.inf)
        lo, hi = min(lo, float(mn)), max(hi, float(mx))
    out = np.zeros(values.shape, dtype=np.uint8)
    half_span = hi / 2 - lo / 2  # halves: no overflow near the float limits
    for b in bands:
        v = values[b].astype(np.float64)
        o = out[b]
        finite = np.isfinite(v)
        every = bool(finite.all())
        if not every:
            o[v == np.inf] = 255
        if hi > lo:  # the same arithmetic either way; a band without NaN or inf skips the masks
            scaled = (v if every else v[finite]) / 2 - lo / 2
            scaled /= half_span
            scaled *= 255.0
            np.clip(np.rint(scaled, out=scaled), 0, 255, out=scaled)
            if every:
                o[...] = scaled
            else:
                o[finite] = scaled
    return out


def encode_png(array: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Encode a uint8 image as PNG bytes.

    No time stamp or other metadata is written, and the decoded pixels are
    always those of ``array``. With zlib the bytes are the same on every run;
    ISA-L (the ``fast`` extra) was once seen to write the same pixels as
    other bytes of the same length in another run, so compare PNGs by their
    pixels, not their bytes.

    Parameters
    ----------
    array : numpy.ndarray
        uint8 array of shape ``(H, W)`` (grayscale, or with `palette` indices
        into it) or ``(H, W, 3)`` (RGB).
    palette : numpy.ndarray, optional
        uint8 array ``(N, 3)``, ``N <= 256``: the colour of each index of a
        ``(H, W)`` `array` (a PNG palette image; indices must be below ``N``).

    Returns
    -------
    bytes
        A complete PNG file.

    Raises
    ------
    ValueError
        If `array` is not uint8 or has another shape, or `palette` is not a
        uint8 ``(N, 3)`` array with ``1 <= N <= 256`` for a 2-D `array`.

    Examples
    --------
    >>> data = encode_png(np.zeros((2, 3), dtype=np.uint8))
    >>> data[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    >>> encode_png(np.zeros((2, 3)))
    Traceback (most recent call last):
    ...
    ValueError: array must have dtype uint8; got float64
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"array must have dtype uint8; got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"array must have shape (H, W) or (H, W, 3); got {array.shape}")
    if array.size == 0:
        raise ValueError(f"array must not be empty; got shape {array.shape}")
    if palette is not None:
        palette = np.asarray(palette)
        if palette.dtype != np.uint8 or palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= len(palette) <= 256:
            raise ValueError(f"palette must be a uint8 (N, 3) array with 1 <= N <= 256; got "
                             f"{palette.dtype} {palette.shape}")
        if array.ndim != 2:
            raise ValueError(f"a palette image must have shape (H, W); got {array.shape}")
        if len(palette) < 256 and int(array.max()) >= len(palette):
            raise ValueError(f"array has index {int(array.max())}, beyond the palette's {len(palette)} colours")
    # Written here with zlib (or ISA-L: poolcli._deflate) rather than by Pillow: Pillow's encoder
    # tries every row filter (adaptive filtering), which took 2.6-2.9x the time of zlib level 1 on unfiltered rows for
    # the same pixels (a 1740x674 montage: 40.6 vs 14.2 ms; an 8192x8192 map: 2.65 vs 1.59 s;
    # measured) for 5-10% smaller files. Gray maps: no row filter and zlib's run-length
    # strategy (an 8192x8192 Sobel map 0.58 s and 55 MB, against 1.44 s and 56 MB with the
    # default strategy); RGB (montages: flat backgrounds, text): the Up filter and the default
    # strategy (407 KB against 440 KB unfiltered, as fast). Level 1: the default 6 made PNG
    # encoding 40% of a 512x512 run. With the `fast` extra, ISA-L level 2 takes a quarter to a
    # tenth of zlib's time. Both release the GIL, so PngWriter's threads encode side by side.
    # A palette image (a gray montage, :func:`montage`): one byte per pixel, the Up filter (indices there
    # follow the gray levels: flat rows and backgrounds become zeros) and the default strategy.
    buffer = io.BytesIO()
    write_png(buffer, array, palette)
    return buffer.getvalue()


def write_png(fh, array: np.ndarray, palette: np.ndarray | None = None) -> None:
    """:func:`encode_png`'s bytes, written to the binary file ``fh`` band by band (memory: one band)."""
    h, w = array.shape[:2]
    gray = array.ndim == 2 and palette is None
    rows = array.reshape(h, -1)
    fh.write(b"\x89PNG\r\n\x1a\n")
    fh.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0 if gray else 2 if palette is None else 3, 0, 0, 0)))
    if palette is not None:
        fh.write(_png_chunk(b"PLTE", np.ascontiguousarray(palette, dtype=np.uint8).tobytes()))
    z = compressor(gray)
    step = max(1, (1 << 22) // max(1, rows.shape[1]))
    for r in range(0, h, step):
        n = min(step, h - r)
        raw = np.empty((n, 1 + rows.shape[1]), dtype=np.uint8)
        body = raw[:, 1:]
        if gray:
            raw[:, 0] = 0  # filter None
            body[...] = rows[r : r + n]
        else:
            raw[:, 0] = 2  # filter Up: the byte difference from the row above (mod 256; zeros above the first)
            if r:
                np.subtract(rows[r : r + n], rows[r - 1 : r + n - 1], out=body)
            else:
                body[0] = rows[0]
                np.subtract(rows[1:n], rows[: n - 1], out=body[1:])
        data = z.compress(raw.data)
        if data:
            fh.write(_png_chunk(b"IDAT", data))
    fh.write(_png_chunk(b"IDAT", z.flush()))
    fh.write(_png_chunk(b"IEND", b""))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


# ---------------------------------------------------------------- montage ---
#
# A labelled grid: one column per stage (the input first, an unpool column after
# each plain max stage), one row per channel, every tile at the same scale (a
# map with fewer pixels is drawn smaller: true relative scale), and under it a
# row of zoomed crops of one region of the input at native resolution for every
# stage. Large maps are reduced once, in bands of rows, by an integer factor
# (block mean, or block max for the sparse unpool maps); nothing is ever
# upscaled at full size: the zoom crops are sampled nearest-neighbour directly.

NORMALIZE = ("per-map", "shared")
_MARGIN = 12  # around the whole montage
_GAP = 14  # between columns
_ROW_GAP = 8  # between rows of tiles
_FONT_SIZE = 14
_SMALL_SIZE = 12
_MAX_WIDTH = 1800  # a montage wider than this wraps into bands of columns
_ZOOM_REGION = 64  # input pixels per side of the default zoom region
_TEXT = (32, 32, 32)
_MUTED = (110, 110, 110)
_FRAME = (200, 200, 200)
_ZOOM_BOX = (230, 40, 40)
_BACKGROUND = (255, 255, 255)


@functools.lru_cache(maxsize=4)
def _font(size: int = _FONT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType
        return ImageFont.load_default()


def _as_maps(name: str, array: np.ndarray) -> np.ndarray:
    if getattr(array, "lazy_rows", False) and len(array.shape) == 3 and 0 not in array.shape:
        return array  # (C, H, W) served in bands of rows: drawn band by band, never made whole
    maps = np.asarray(array)
    if maps.ndim == 2:
        maps = maps[np.newaxis]
    if maps.ndim != 3 or 0 in maps.shape:
        raise ValueError(f"{name} must be a non-empty (C, H, W) array; got shape {maps.shape}")
    return maps


def _band_rows(width: int, step: int = 1) -> int:
    """Rows per band (a multiple of ``step``) so that a float64 band holds about 8 MiB."""
    return step * max(1, (1 << 20) // max(1, width * step))


def finite_range(plane: np.ndarray) -> tuple[float, float] | None:
    """The smallest and largest finite value of a 2-D map (None if it has none), in bands of rows.

    >>> finite_range(np.array([[1.0, np.nan], [-np.inf, 3.0]]))
    (1.0, 3.0)
    """
    if getattr(plane, "distinct", False):  # a sparse map (zeros and kept values): from the kept values
        values, positions = plane.kept()
        kept = finite_range(values)
        if positions.size == plane.shape[0] * plane.shape[1]:  # every pixel kept: no zero
            return kept
        return _union([kept, (0.0, 0.0)])
    lo, hi = math.inf, -math.inf
    rows = _band_rows(plane.shape[1])
    for r in range(0, plane.shape[0], rows):
        band = plane[r : r + rows]
        mn, mx = band.min(), band.max()
        if not (np.isfinite(mn) and np.isfinite(mx)):
            band = band[np.isfinite(band)]
            if not band.size:
                continue
            mn, mx = band.min(), band.max()
        lo, hi = min(lo, float(mn)), max(hi, float(mx))
    return (lo, hi) if lo <= hi else None


def reduce_map(plane: np.ndarray, factor: int, how: str = "mean") -> np.ndarray:
    """``plane`` reduced by an integer ``factor`` per side, as float64, in bands of rows.

    ``how``: ``"mean"`` (area: each output pixel the mean of its block) or
    ``"absmax"`` (the block's value of largest magnitude, so that the few
    non-zero values of a sparse map stay visible). Edge blocks are partial.
    Memory: one band of ``factor`` x a few rows, never a copy of the map.

    >>> reduce_map(np.arange(16.0).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> reduce_map(np.array([[0.0, -3.0, 0.0], [1.0, 0.0, 0.0]]), 2, "absmax")
    array([[-3.,  0.]])
    """
    if factor == 1:
        return plane.astype(np.float64)
    if how != "mean" and getattr(plane, "distinct", False):
        return _sparse_absmax(plane, factor)
    h, w = plane.shape
    out = np.empty((-(-h // factor), -(-w // factor)))
    step = _band_rows(w, factor)
    with np.errstate(all="ignore"):
        for r0 in range(0, h, step):
            band = plane[r0 : r0 + step]
            if how == "mean":
                block = _fold(_fold(band, factor, 0, np.add, np.float64), factor, 1, np.add, np.float64)
                if band.shape[0] % factor or w % factor:  # partial blocks at the edge: their own areas
                    rows = np.minimum(factor, band.shape[0] - np.arange(0, band.shape[0], factor))
                    cols = np.minimum(factor, w - np.arange(0, w, factor))
                    block /= np.outer(rows, cols)
                else:  # every block whole: one divisor (the same quotients)
                    block /= factor * factor
            else:
                mx = _fold(_fold(band, factor, 0, np.maximum), factor, 1, np.maximum).astype(np.float64)
                mn = _fold(_fold(band, factor, 0, np.minimum), factor, 1, np.minimum).astype(np.float64)
                block = np.where(mx >= -mn, mx, mn)
            out[r0 // factor : r0 // factor + block.shape[0]] = block
    return out


def _sparse_absmax(plane, factor: int) -> np.ndarray:
    """:func:`reduce_map`'s ``"absmax"`` of a sparse map from its kept values (``plane.kept()``, each
    position once): per block the largest and smallest kept value, and 0 where the block has a pixel
    not kept. No dense row is made; the kept values are read in bands of about a million."""
    values, positions = plane.kept()
    h, w = plane.shape
    bh, bw = -(-h // factor), -(-w // factor)
    tiled = _tiled_absmax(plane, values, factor)
    if tiled is not None:
        return tiled
    count = np.zeros(bh * bw, dtype=np.int64)
    rows = max(1, (1 << 20) // max(1, values.shape[1]))

    def blocks(r: int) -> np.ndarray:  # the block of each kept value of rows r : r + rows (one band)
        pos = positions[r : r + rows].ravel()  # int32 where the map has fewer than 2**31 pixels
        row = pos // w
        return (row // factor) * bw + (pos - row * w) // factor

    for r in range(0, values.shape[0], rows):
        count += np.bincount(blocks(r), minlength=bh * bw)
    if count.max() <= 1:
        # at most one kept value per block (e.g. the block is the pooling window: a 2x2/stride-2 unpool
        # map halved): the block's value is that value, else 0 (what the rule below gives), without
        # ufunc.at's scatter (1.1 of 10 ms of a 512x512 montage, measured)
        out = np.zeros(bh * bw)
        for r in range(0, values.shape[0], rows):
            out[blocks(r)] = values[r : r + rows].ravel()
        return out.reshape(bh, bw)
    mx = np.full(bh * bw, -np.inf, dtype=values.dtype)
    mn = np.full(bh * bw, np.inf, dtype=values.dtype)
    for r in range(0, values.shape[0], rows):
        block = blocks(r)
        np.maximum.at(mx, block, values[r : r + rows].ravel())
        np.minimum.at(mn, block, values[r : r + rows].ravel())
    area = np.outer(np.minimum(factor, h - np.arange(bh) * factor), np.minimum(factor, w - np.arange(bw) * factor))
    zero = count < area.ravel()
    mx[zero] = np.maximum(mx[zero], 0)
    mn[zero] = np.minimum(mn[zero], 0)
    mx, mn = mx.astype(np.float64), mn.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(mx >= -mn, mx, mn).reshape(bh, bw)


def _tiled_absmax(plane, values: np.ndarray, factor: int) -> np.ndarray | None:
    """:func:`_sparse_absmax` when the pooling windows tile the map (size == stride, no padding, no dilation)
    and ``factor`` is a multiple of the stride: a block of the map holds whole windows, one kept value
    each, so its largest and smallest kept values are a block reduction of the pooled values (by
    ``factor // stride``, :func:`_fold`), and it holds a zero wherever its windows cover fewer pixels than
    the block has. None otherwise. (An 8192x8192 unpool map reduced by 32: 333 ms with ``ufunc.at``.)"""
    g = getattr(getattr(plane, "view", None), "geometry", None)
    if g is None or tuple(g.size) != tuple(g.stride) or tuple(g.dilation) != (1, 1) or g.pads[0] or g.pads[2]:
        return None
    (sh, sw), (oh, ow) = g.stride, g.out
    if factor % sh or factor % sw or values.shape != (oh, ow):
        return None
    h, w = plane.shape
    fh, fw = factor // sh, factor // sw
    if fh == 1 and fw == 1:
        # each block holds one window and so one kept value, beside zeros or alone: its largest magnitude is
        # that value (a tie with a zero goes to the value; NaN stays NaN), the blocks past the windows are 0.
        # (A 512x512 unpool map halved for the montage: a cast, 0.73 -> 0.03 ms, measured.)
        out = np.zeros((-(-h // factor), -(-w // factor)))
        out[:oh, :ow] = values
        return out
    with np.errstate(invalid="ignore"):
        mx = _fold(_fold(values, fh, 0, np.maximum), fw, 1, np.maximum).astype(np.float64)
        mn = _fold(_fold(values, fh, 0, np.minimum), fw, 1, np.minimum).astype(np.float64)
    pbh, pbw = mx.shape
    # pixels the windows of each block cover (the last ones partial: ceil mode, the map's edge) vs its area
    win_rows = np.minimum((np.arange(oh) + 1) * sh, h) - np.arange(oh) * sh
    win_cols = np.minimum((np.arange(ow) + 1) * sw, w) - np.arange(ow) * sw
    covered = np.outer(np.add.reduceat(win_rows, np.arange(0, oh, fh)), np.add.reduceat(win_cols, np.arange(0, ow, fw)))
    kept = np.outer(np.minimum(fh, oh - np.arange(pbh) * fh), np.minimum(fw, ow - np.arange(pbw) * fw))
    area = np.outer(np.minimum(factor, h - np.arange(pbh) * factor), np.minimum(factor, w - np.arange(pbw) * factor))
    zero = (kept < covered) | (covered < area)  # a window's pixels not kept, or pixels of no window
    mx[zero] = np.maximum(mx[zero], 0)
    mn[zero] = np.minimum(mn[zero], 0)
    out = np.zeros((-(-h // factor), -(-w // factor)))  # blocks below / right of every window: zeros
    with np.errstate(invalid="ignore"):
        out[:pbh, :pbw] = np.where(mx >= -mn, mx, mn)
    return out


def _fold(a: np.ndarray, factor: int, axis: int, op: np.ufunc, dtype=None) -> np.ndarray:
    """``op`` over consecutive blocks of ``factor`` along ``axis`` (the last one partial), in order:
    ``((a0 op a1) op a2) ...`` per block (accumulated in ``dtype``). A float64 block mean from it
    equals the exact mean to within its own rounding (tested against ``math.fsum``).

    One ``op`` call per offset in the block over strided views (a loop over the window offsets),
    not ``reduceat``'s per-block loop: 0.6 ms against 3 ms for a 512x512 map halved (measured).
    """
    n = a.shape[axis]
    full = n // factor

    def take(start, stop, stride=None):
        index = [slice(None)] * a.ndim
        index[axis] = slice(start, stop, stride)
        return a[tuple(index)]

    parts = []
    if full:
        if factor > 1:  # the first two offsets in one call (cast and combined: the same values as a copy, then op)
            acc = op(take(0, full * factor, factor), take(1, full * factor, factor), dtype=dtype or a.dtype)
        else:
            acc = np.array(take(0, full * factor, factor), dtype=dtype or a.dtype)
        for k in range(2, factor):
            op(acc, take(k, full * factor, factor), out=acc)
        parts.append(acc)
    if n > full * factor:
        tail = take(full * factor, n)
        parts.append(op.reduce(tail, axis=axis, dtype=dtype, keepdims=True))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)


def shade(values: np.ndarray, lo: float, hi: float, top: int = 255) -> np.ndarray:
    """uint8 gray levels of ``values`` on the scale ``lo`` (black, 0) .. ``hi`` (white, ``top``).

    Values outside are clipped; NaN and ``-inf`` are black, ``+inf`` white.
    With ``lo == hi`` the scale is ``[0, 1]``: a constant map is drawn at its value.
    ``top`` 254: the levels of a gray montage's palette (:class:`_Ink`).

    >>> shade(np.array([0.0, 0.5, 1.0, np.nan, np.inf]), 0.0, 1.0)
    array([  0, 128, 255,   0, 255], dtype=uint8)
    """
    if not hi > lo:
        lo, hi = 0.0, 1.0
    with np.errstate(all="ignore"):
        t = np.subtract(values, lo, dtype=np.float64)
        t /= hi - lo
    # fmax / fmin skip NaN: NaN and -inf -> 0, +inf -> 1, in place (nan_to_num + clip made two copies)
    np.fmax(t, 0.0, out=t)
    np.fmin(t, 1.0, out=t)
    t *= float(top)
    return np.rint(t, out=t).astype(np.uint8)


def display_range(own: tuple[float, float] | None, context: tuple[float, float] | None) -> tuple[float, float]:
    """The scale a map is drawn on: its own range, or for a constant map the row's (its value in context).

    >>> display_range((0.0, 2.0), None), display_range((3.0, 3.0), (0.0, 3.0)), display_range((0.4, 0.4), None)
    ((0.0, 2.0), (0.0, 3.0), (0.0, 1.0))
    """
    if own is not None and own[1] > own[0]:
        return own
    if context is not None and context[1] > context[0]:
        return context
    return (0.0, 1.0)


def _union(ranges) -> tuple[float, float] | None:
    ranges = [r for r in ranges if r is not None]
    if not ranges:
        return None
    return (min(r[0] for r in ranges), max(r[1] for r in ranges))


def _num(v: float) -> str:
    return f"{v:.3g}" if v == v else "nan"


def parse_zoom(text: str | None) -> tuple[int, int, int, int] | None:
    """``"x,y,w,h"`` (input pixels) as a tuple; None for None. Raises ValueError naming the format.

    >>> parse_zoom("10, 20, 64, 48")
    (10, 20, 64, 48)
    """
    if text is None:
        return None
    try:
        x, y, w, h = (int(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"--zoom must be x,y,w,h in input pixels, e.g. 100,80,64,64; got {text!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise ValueError(f"--zoom must have x, y >= 0 and w, h >= 1; got {text!r}")
    return (x, y, w, h)


# ------------------------------------------------------- montage geometry ---


class _Geometry:
    """One scale for every tile (``up`` > 1 enlarges, ``down`` > 1 reduces) and the zoom region."""

    def __init__(self, shape: tuple[int, int], height: int, zoom: tuple[int, int, int, int] | None):
        self.H, self.W = shape
        wide = 2 * height
        if self.H <= height and self.W <= wide:
            self.up, self.down = max(1, min(height // self.H, wide // self.W)), 1
        else:
            self.up, self.down = 1, max(math.ceil(self.H / height), math.ceil(self.W / wide))
        self.height = height
        self._samples: dict[tuple[int, int], tuple] = {}  # per map size: the zoom tile's rows and columns
        self.zoom = None
        if zoom is not None:
            x, y, w, h = zoom
            x, y = min(x, self.W - 1), min(y, self.H - 1)
            self.zoom = (x, y, min(w, self.W - x), min(h, self.H - y))

    @property
    def wants_zoom(self) -> bool:
        """Zoom crops when the overview is not enlarged and the input is larger than a zoom region."""
        return self.zoom is not None or (self.up == 1 and min(self.H, self.W) > _ZOOM_REGION)

    def enlarge(self, small: np.ndarray) -> np.ndarray:
        """``small`` (a map reduced by ``down``) enlarged by ``up``: each pixel an ``up x up`` block.

        Shade first, then enlarge the gray levels (the same pixels: a 64x64 input's tiles are shaded
        at 64x64, not at 256x256).
        """
        if self.up > 1:
            small = np.repeat(np.repeat(small, self.up, axis=0), self.up, axis=1)
        return small

    def pick_zoom(self, gray_small: np.ndarray) -> None:
        """The region of the input with the most structure (gradient energy), from its overview reduced by
        ``down`` (never enlarged: an enlarged overview has no zoom row to choose for)."""
        if self.zoom is not None or not self.wants_zoom:
            return
        side = min(_ZOOM_REGION, self.H, self.W)
        k = max(1, min(round(side / self.down), *gray_small.shape))
        g = gray_small if np.isfinite(gray_small).all() else np.nan_to_num(gray_small)  # (nan_to_num copies)
        # on a coarser grid (about 8 cells per region side): edges and shapes, not pixel noise
        coarse = max(1, k // 8)
        g, k = reduce_map(g, coarse), max(1, k // coarse)
        energy = np.zeros_like(g)
        energy[:-1, :] += np.abs(np.diff(g, axis=0))
        energy[:, :-1] += np.abs(np.diff(g, axis=1))
        integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        boxes = integral[k:, k:] - integral[:-k, k:] - integral[k:, :-k] + integral[:-k, :-k]
        i, j = np.unravel_index(int(np.argmax(boxes)), boxes.shape)
        step = self.down * coarse
        y, x = min(int(i) * step, self.H - side), min(int(j) * step, self.W - side)
        self.zoom = (x, y, side, side)

    def zoom_shaded(self, plane: np.ndarray, lo: float, hi: float, top: int = 255) -> np.ndarray:
        """The zoom region of ``plane`` (any size: its own coordinates scale with the input's), sampled
        nearest-neighbour to the zoom tile's size (a map pixel becomes a visible block) and shaded.

        Each map pixel of the region is shaded once, then repeated into its block (a 64x64 region drawn
        256x256 shades 4,096 values, not 65,536).
        """
        (rows, row_of), (cols, col_of) = self._zoom_samples(plane.shape[:2])
        # columns first, on the small crop, then whole rows (contiguous copies): 0.014 against 0.048 ms for a
        # 64x64 region drawn 256x256 rows first (measured); the same pixels
        return shade(plane[np.ix_(rows, cols)], lo, hi, top).take(col_of, axis=1).take(row_of, axis=0)

    def zoom_caption(self, size: tuple[int, int]) -> str:
        """What a map's zoom tile shows: ``"32x32 of 256x256"``, the region in the map's own pixels (rows x
        columns, as the headers' shapes) out of the whole map: a stride-2 map's region has half the input's."""
        (rows, _), (cols, _) = self._zoom_samples(size)
        return f"{len(rows)}x{len(cols)} of {size[0]}x{size[1]}"

    def _zoom_samples(self, size: tuple[int, int]) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """The map rows and columns the zoom tile samples for a map of ``size`` (each once), and per display
        row / column which of them it shows; computed once per map size (maps of one size share them)."""
        cache = self._samples
        if size not in cache:
            x, y, w, h = self.zoom
            f = self.height / max(w, h)
            f = math.floor(f) if f >= 1 else f
            dh, dw = max(1, round(h * f)), max(1, round(w * f))
            cache[size] = (_distinct(_sample(y, h, dh, self.H, size[0])), _distinct(_sample(x, w, dw, self.W, size[1])))
        return cache[size]


def _distinct(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(idx, return_inverse=True)`` of non-decreasing indices (what :func:`_sample` gives), without
    its sort.

    >>> _distinct(np.array([0, 0, 1, 3, 3]))
    (array([0, 1, 3]), array([0, 0, 1, 2, 2]))
    """
    new = np.empty(idx.shape, dtype=bool)
    new[:1] = True
    np.not_equal(idx[1:], idx[:-1], out=new[1:])
    return idx[new], np.cumsum(new) - 1


def _sample(start: int, length: int, n: int, full: int, size: int) -> np.ndarray:
    """Indices into a map of ``size`` for ``n`` display pixels over input pixels ``start .. start+length``.

    A map ``k`` times smaller than the input (``size`` = ``full // k`` or its ceiling, as pooling
    gives) is indexed by ``input // k`` exactly, so pooled blocks are all ``k`` input pixels wide.
    """
    centres = start + (np.arange(n) + 0.5) * (length / n)
    k = round(full / size)
    if k >= 1 and size in (full // k, -(-full // k)):
        idx = np.floor(centres / k)
    else:
        idx = np.floor(centres * (size / full))
    return np.clip(idx.astype(np.int64), 0, size - 1)


# ---------------------------------------------------------- montage model ---


class _Column:
    """One column: its header lines, its tiles per channel row (uint8, as the canvas stores them: :class:`_Ink`), captions, zoom tile."""

    def __init__(self, header: list[str]):
        self.header = header
        self.tiles: dict[int, np.ndarray] = {}  # (h, w) gray or (h, w, 3) RGB
        self.captions: dict[int, str] = {}
        self.zoom: np.ndarray | None = None
        self.zoom_caption = ""


class _Ink:
    """How the canvas stores a colour: RGB triples, or (a montage with no colour tile: a gray input) one
    byte per pixel, an index into :meth:`palette`: 255 grays from black to white and the zoom box's red.

    A gray montage was RGB with three equal bytes per pixel: 2.8 of a 512x512 input's 4 ms of PNG encoding
    (1740x674 pixels, 338 kB) went into them, and drawing copied every tile three times. As a palette image
    it is encoded in 1.1 ms (196 kB) and drawn in one channel (measured). A palette holds 256 colours, the
    red box one of them: tiles are shaded on 255 levels (0 .. 254, :func:`shade`'s ``top``), shown as
    ``round(i * 255 / 254)``: black and white exact, each other gray within one level of the RGB montage's.
    """

    def __init__(self, rgb: bool):
        self.rgb = rgb
        self.top = 255 if rgb else 254  # the level of white

    def __call__(self, colour: tuple[int, int, int]):
        """``colour`` as stored on the canvas: the triple (RGB), or its palette index."""
        if self.rgb:
            return tuple(colour)
        if tuple(colour) == _ZOOM_BOX:
            return 255
        if len(set(colour)) != 1:
            raise ValueError(f"a gray montage has no colour {colour!r} but the zoom box's")
        return _palette_index(colour[0])

    def palette(self) -> np.ndarray | None:
        """The ``(256, 3)`` uint8 palette of a gray canvas (None for RGB)."""
        return None if self.rgb else _gray_palette()

    def tile(self, planes: list[np.ndarray]) -> np.ndarray:
        """Shaded planes (one, or three: R, G, B) as a tile on this canvas: a gray plane is repeated into
        RGB on an RGB canvas, kept as it is on a gray one."""
        if len(planes) == 3:
            return np.stack(planes, axis=-1)
        return np.repeat(planes[0][..., np.newaxis], 3, axis=2) if self.rgb else planes[0]


def _palette_index(gray):
    """The index of a gray montage's palette nearest to gray level(s) ``gray`` (0 .. 255; int or array)."""
    return (gray * 254 + 127) // 255


@functools.lru_cache(maxsize=1)
def _gray_palette() -> np.ndarray:
    gray = (np.arange(255, dtype=np.int64) * 255 + 127) // 254
    palette = np.empty((256, 3), dtype=np.uint8)
    palette[:255] = gray[:, np.newaxis]
    palette[255] = _ZOOM_BOX
    palette.flags.writeable = False
    return palette


def _panel_parts(index: int, panel) -> tuple[str, np.ndarray, dict]:
    try:
        label, maps, *rest = panel
    except (TypeError, ValueError):
        raise ValueError(f"panels[{index}] must be a (label, array) pair; got {type(panel).__name__}") from None
    if len(rest) > 1 or (rest and not isinstance(rest[0], dict)):
        raise ValueError(f"panels[{index}] must be (label, array) or (label, array, dict)")
    return str(label), _as_maps(f"panels[{index}] ({label!r})", maps), (rest[0] if rest else {})


def _input_column(image: np.ndarray, geo: _Geometry, input_range, ink: _Ink) -> _Column:
    """The input: RGB if it has 3 or more channels (first three, one scale for all), else gray.
    ``input_range(c)``: the finite range of channel ``c`` (computed once for the whole montage)."""
    col = _Column(["input", "x".join(str(n) for n in image.shape)])
    planes = image[:3] if image.shape[0] >= 3 else image[:1]
    rng = _union(input_range(c) for c in range(len(planes)))
    lo, hi = display_range(rng, None)
    small = [reduce_map(p, geo.down) for p in planes]  # at the reduced scale; enlarged once shaded
    gray = small[0] if len(small) == 1 else sum(small) / len(small)  # (only to pick the zoom region)
    geo.pick_zoom(gray)
    col.tiles[0] = ink.tile([geo.enlarge(shade(s, lo, hi, ink.top)) for s in small])
    col.captions[0] = f"{_num(rng[0])} .. {_num(rng[1])}" if rng else "no finite value"
    if geo.wants_zoom:
        col.zoom = ink.tile([geo.zoom_shaded(p, lo, hi, ink.top) for p in planes])
        x, y, w, h = geo.zoom
        col.zoom_caption = f"x={x} y={y} w={w} h={h}"  # the --zoom region; the maps: rows x columns
        t = col.tiles[0].copy()
        d, u = geo.down, geo.up
        x0, y0 = x * u // d, y * u // d
        x1, y1 = min(t.shape[1] - 1, (x + w) * u // d), min(t.shape[0] - 1, (y + h) * u // d)
        t[y0 : y1 + 1, [x0, x1]] = ink(_ZOOM_BOX)
        t[[y0, y1], x0 : x1 + 1] = ink(_ZOOM_BOX)
        col.tiles[0] = t
    return col


def _header(label: str, hidden: int) -> list[str]:
    """``"2: max 1x705x705"`` -> ``["2: max", "1x705x705"]``: a long label on two lines."""
    head, _, tail = label.rpartition(" ")
    lines = [head, tail] if head and len(label) > 14 else [label]
    return lines + ([f"(+{hidden} more)"] if hidden > 0 else [])


def _stage_columns(image, parts, geo, max_channels, normalize, channel_names, input_range, ink):
    """A column per panel and the row names (one per channel row)."""
    rows = min(max_channels, max(m.shape[0] for _, m, _ in parts)) if parts else 1
    own = [[finite_range(m[c]) for c in range(min(rows, m.shape[0]))] for _, m, _ in parts]
    stages = [_union(r[c] for r in own if c < len(r)) for c in range(rows)]
    inputs = [input_range(c) if c < image.shape[0] else None for c in range(rows)]
    context = [_union([stages[c], inputs[c]]) for c in range(rows)]
    row_names = [f"c{c}" for c in range(rows)]
    if channel_names:
        row_names[: len(channel_names)] = [str(n) for n in channel_names[:rows]]
    for _, maps, info in parts:
        for c, name in enumerate(info.get("channels", [])[:rows]):
            row_names[c] = str(name)  # the last panel's names: the rows the stack ends with
    columns = []
    for (label, maps, info), ranges in zip(parts, own):
        col = _Column(_header(label, maps.shape[0] - max_channels))
        how = "absmax" if info.get("unpool") else "mean"
        names = list(info.get("channels", []))
        for c, rng in enumerate(ranges):
            lo, hi = display_range(stages[c] if normalize == "shared" else rng, context[c])
            col.tiles[c] = geo.enlarge(shade(reduce_map(maps[c], geo.down, how), lo, hi, ink.top))
            text = f"{_num(rng[0])} .. {_num(rng[1])}" if rng else "no finite value"
            if c < len(names) and str(names[c]) != row_names[c]:
                text = f"{names[c]}: {text}"
            col.captions[c] = text
            if c == 0 and geo.wants_zoom:
                col.zoom = geo.zoom_shaded(maps[0], lo, hi, ink.top)
                col.zoom_caption = geo.zoom_caption(maps.shape[1:])
        columns.append(col)
    scales = [display_range(stages[c], context[c]) for c in range(rows)]
    return columns, row_names, scales


def _bands(columns: list[_Column], widths: list[int], left: int, max_width: int) -> list[list[int]]:
    """Column indices per band: as many columns as fit in ``max_width`` (at least one)."""
    bands: list[list[int]] = [[]]
    x = left
    for i, w in enumerate(widths):
        if bands[-1] and x + w > max_width - _MARGIN:
            bands.append([])
            x = left
        bands[-1].append(i)
        x += w + _GAP
    return bands


@functools.lru_cache(maxsize=4096)
def _text_box(text: str, small: bool) -> tuple[int, int, int, int]:
    """``ImageDraw.textbbox((0, 0), text)`` in the montage's font; cached: a batch draws the same labels
    on every image (headers, shapes, row names), and measuring was 7% of a 512x512 montage."""
    return ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=_font(_SMALL_SIZE) if small else _font())


def _measure(text: str, small: bool) -> tuple[int, int]:
    """The (width, height) of ``text`` in the montage's font."""
    left, top, right, bottom = _text_box(text, small)
    return right - left, bottom - top


@functools.lru_cache(maxsize=4096)
def _text_mask(text: str, small: bool) -> tuple[np.ndarray, int, int]:
    """``text`` rendered once as a coverage mask (uint8, read-only) and its offset from the drawing position.

    Blending the ink through it (:func:`_blend`) is pixel for pixel what ``ImageDraw.text`` draws
    (tested); a batch draws the same headers, shapes, row names and legend on every image, and
    rendering them was the largest part of drawing a 512x512 montage (3.3 of 19 ms, measured).
    """
    font = _font(_SMALL_SIZE) if small else _font()
    if isinstance(font, ImageFont.FreeTypeFont):
        # the mask and offset ImageDraw.text itself draws through (getmask2), without its layout of the
        # text around them (a caption that changes per image: 0.17 -> 0.06 ms, measured)
        core, (left, top) = font.getmask2(text, "L")
        w, h = core.size
        if w and h:
            array = np.frombuffer(bytes(core), dtype=np.uint8).reshape(h, w)
            return array, left, top
    left, top, right, bottom = _text_box(text, small)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font)
    array = np.asarray(mask)
    array.flags.writeable = False
    return array, left, top


@functools.lru_cache(maxsize=4096)
def _text_patch(text: str, small: bool, fill: tuple[int, int, int], rgb: bool = True) -> np.ndarray:
    """``text`` in ``fill`` blended once on the background (uint8 RGB, read-only; with ``rgb`` false the
    palette indices of its grays, :class:`_Ink`): where the canvas under a label is still background
    (always, as laid out) it is copied in, not blended again."""
    mask = _text_mask(text, small)[0]
    patch = np.empty(mask.shape + (3,), dtype=np.uint8)
    patch[...] = _BACKGROUND
    _blend(patch, 0, 0, mask, fill)
    if not rgb:
        patch = _palette_index(patch[..., 0].astype(np.uint16)).astype(np.uint8)
    patch.flags.writeable = False
    return patch


def _clip(canvas: np.ndarray, x: int, y: int, h: int, w: int) -> tuple[slice, slice, slice, slice] | None:
    """Canvas rows/cols and source rows/cols of an ``h x w`` patch placed at ``(x, y)``, clipped."""
    y0, x0, y1, x1 = max(0, y), max(0, x), min(canvas.shape[0], y + h), min(canvas.shape[1], x + w)
    if y0 >= y1 or x0 >= x1:
        return None
    return slice(y0, y1), slice(x0, x1), slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)


def _blend(canvas: np.ndarray, x: int, y: int, mask: np.ndarray, ink) -> None:
    """Pillow's ``paste(ink, box, mask)`` on a uint8 RGB (or one-channel) array:
    ``(out * (255 - m) + ink * m) / 255`` rounded as Pillow's ``DIV255`` does, in uint16 (at most 65,407:
    no overflow)."""
    where = _clip(canvas, x, y, *mask.shape)
    if where is None:
        return
    rows, cols, mrows, mcols = where
    region = canvas[rows, cols]
    m = mask[mrows, mcols].astype(np.uint16)
    if canvas.ndim == 3:
        m = m[..., np.newaxis]
    t = region * (255 - m) + np.asarray(ink, dtype=np.uint16) * m + 128
    canvas[rows, cols] = ((t >> 8) + t) >> 8


def _place(canvas: np.ndarray, x: int, y: int, tile: np.ndarray) -> None:
    """A gray ``(h, w)`` or RGB ``(h, w, 3)`` uint8 tile copied in at ``(x, y)``, clipped (on a gray
    canvas, :class:`_Ink`, a gray tile of palette indices)."""
    where = _clip(canvas, x, y, *tile.shape[:2])
    if where is not None:
        rows, cols, trows, tcols = where
        if tile.ndim == canvas.ndim:
            canvas[rows, cols] = tile[trows, tcols]
        else:  # one strided copy per channel: a broadcast over the last axis of 3 copies pixel by pixel (4x slower)
            for c in range(canvas.shape[2]):
                canvas[rows, cols, c] = tile[trows, tcols]


def _outline(canvas: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour) -> None:
    """``ImageDraw.rectangle((x0, y0, x1, y1), outline=colour)``: a 1-pixel frame, corners inclusive."""
    h, w = canvas.shape[:2]
    xs, ys = slice(max(0, x0), min(w, x1 + 1)), slice(max(0, y0), min(h, y1 + 1))
    for y in (y0, y1):
        if 0 <= y < h:
            canvas[y, xs] = colour
    for x in (x0, x1):
        if 0 <= x < w:
            canvas[ys, x] = colour


class _Painter:
    """Draws the grid: measures, tiles and text on the canvas (its colours stored as ``ink`` says)."""

    def __init__(self, ink: _Ink):
        self.ink = ink
        self.background = ink(_BACKGROUND)
        self.line = _measure("Ag", False)[1] + 6
        self.small_line = _measure("Ag", True)[1] + 5

    def width(self, text: str, small: bool = False) -> int:
        return _measure(text, small)[0]

    def column_width(self, col: _Column) -> int:
        widths = [self.width(t) for t in col.header]
        widths += [self.width(t, True) for t in col.captions.values()] + [self.width(col.zoom_caption, True)]
        widths += [t.shape[1] + 2 for t in col.tiles.values()]
        if col.zoom is not None:
            widths.append(col.zoom.shape[1] + 2)
        return max(widths)

    def band_layout(self, columns: list[_Column], band: list[int], rows: int) -> list[tuple[str, int, int]]:
        """(what, y offset, height) of the band's parts: header, each channel row, the zoom row."""
        cols = [columns[i] for i in band]
        parts = [("header", 0, max(len(c.header) for c in cols) * self.line)]
        y = parts[0][2]
        for r in range(rows):
            h = max((c.tiles[r].shape[0] + 2 for c in cols if r in c.tiles), default=0)
            parts.append((f"row{r}", y, h + self.small_line + _ROW_GAP))
            y += parts[-1][2]
        zh = max((c.zoom.shape[0] + 2 for c in cols if c.zoom is not None), default=0)
        if zh:
            parts.append(("zoom", y, zh + self.small_line + _ROW_GAP))
        return parts

    def tile(self, canvas: np.ndarray, tile: np.ndarray, x: int, y: int, width: int, caption: str) -> None:
        th, tw = tile.shape[:2]
        left = x + (width - tw - 2) // 2
        _outline(canvas, left, y, left + tw + 1, y + th + 1, self.ink(_FRAME))
        _place(canvas, left + 1, y + 1, tile)
        self.text(canvas, caption, x, y + th + 4, width, small=True, fill=_MUTED)

    def text(self, canvas: np.ndarray, text: str, x: int, y: int, width: int, small: bool = False,
             fill=_TEXT) -> None:
        """``text`` centred in ``width`` from ``x``."""
        self.put(canvas, (x + (width - self.width(text, small)) // 2, y), text, small, fill)

    def put(self, canvas: np.ndarray, xy: tuple[int, int], text: str, small: bool = False, fill=_TEXT) -> None:
        """What ``ImageDraw.Draw(image).text(xy, text, fill, font)`` draws, on the canvas (RGB, or a gray montage's palette indices)."""
        if not text:
            return
        mask, dx, dy = _text_mask(text, small)
        where = _clip(canvas, xy[0] + dx, xy[1] + dy, *mask.shape)
        if where is None:
            return
        rows, cols, mrows, mcols = where
        if (canvas[rows, cols] == self.background).all():  # still the background under it: the cached patch
            canvas[rows, cols] = _text_patch(text, small, tuple(fill), self.ink.rgb)[mrows, mcols]
        else:  # (on a gray canvas blended between palette indices: within a level of the grays')
            _blend(canvas, xy[0] + dx, xy[1] + dy, mask, self.ink(fill))


def _legend_text(normalize: str, row_names, scales) -> tuple[str, list[tuple[str, str, str]]]:
    """The legend's note and its (name, low, high) rows."""
    if normalize == "per-map":
        return ("per-map: every tile on its own scale (the numbers under it); a constant map is drawn at its value",
                [("each tile", "its min", "its max")])
    return ("shared: one scale per channel row, across stages; a constant map is drawn at its value",
            [(name, _num(lo), _num(hi)) for name, (lo, hi) in zip(row_names, scales)])


def _legend_width(painter: _Painter, normalize: str, row_names, scales) -> int:
    """The width the legend needs, margins included (a montage of one thin image is narrower than its note)."""
    note, items = _legend_text(normalize, row_names, scales)
    rows = [max(80, painter.width(name, True) + 8) + painter.width(lo, True) + 6 + 166 + painter.width(hi, True)
            for name, lo, hi in items]
    return 2 * _MARGIN + max([painter.width(note, True), *rows])


def _legend(painter: _Painter, canvas: np.ndarray, y: int, normalize: str, row_names, scales) -> None:
    bar = np.repeat(np.linspace(0, painter.ink.top, 160).round().astype(np.uint8)[np.newaxis], 10, axis=0)
    note, items = _legend_text(normalize, row_names, scales)
    painter.put(canvas, (_MARGIN, y), note, True, _MUTED)
    y += painter.small_line
    for name, lo, hi in items:
        x = _MARGIN
        painter.put(canvas, (x, y), name, True)
        x += max(80, painter.width(name, True) + 8)
        painter.put(canvas, (x, y), lo, True)
        x += painter.width(lo, True) + 6
        _place(canvas, x, y + 2, bar)
        _outline(canvas, x - 1, y + 1, x + 160, y + 12, painter.ink(_FRAME))
        painter.put(canvas, (x + 166, y), hi, True)
        y += painter.small_line


def _legend_height(painter: _Painter, normalize: str, rows: int) -> int:
    return painter.small_line * (2 if normalize == "per-map" else 1 + rows) + _MARGIN


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _render(columns, row_names, scales, normalize: str, max_width: int, ink: _Ink) -> np.ndarray:
    painter = _Painter(ink)
    rows = len(row_names)
    label_w = max(painter.width(n) for n in [*row_names, f"zoom {row_names[0]}"]) + 8
    widths = [painter.column_width(c) for c in columns]
    left = _MARGIN + label_w + _GAP
    bands = _bands(columns, widths, left, max_width)
    layouts = [painter.band_layout(columns, b, rows) for b in bands]
    band_heights = [sum(h for _, _, h in lay) for lay in layouts]
    canvas_w = max(max(left + sum(widths[i] + _GAP for i in b) - _GAP for b in bands) + _MARGIN,
                   _legend_width(painter, normalize, row_names, scales))
    canvas_h = 2 * _MARGIN + sum(band_heights) + _GAP * (len(bands) - 1) + _legend_height(painter, normalize, rows)
    # drawn on a NumPy array (tiles copied in, text blended as Pillow does): a Pillow canvas cost
    # its conversions (tiles to RGB, the canvas back to an array: 2.6 of 10 ms at 512x512, measured)
    if not ink.rgb:
        canvas = np.full((canvas_h, canvas_w), painter.background, dtype=np.uint8)
    else:
        canvas = np.full((canvas_h, canvas_w, 3), _BACKGROUND[0], dtype=np.uint8)
        if len(set(_BACKGROUND)) > 1:  # (white: one fill; a colour, per channel)
            for c in range(3):
                canvas[..., c] = _BACKGROUND[c]
    top = _MARGIN
    for band, layout, bh in zip(bands, layouts, band_heights):
        for what, dy, h in layout[1:]:
            name = f"zoom {row_names[0]}" if what == "zoom" else row_names[int(what[3:])]
            painter.put(canvas, (_MARGIN, top + dy + max(0, (h - painter.line) // 2)), name)
        x = left
        for i in band:
            col, width = columns[i], widths[i]
            for k, line in enumerate(col.header):
                painter.text(canvas, line, x, top + k * painter.line, width)
            for what, dy, _ in layout[1:]:
                if what == "zoom" and col.zoom is not None:
                    painter.tile(canvas, col.zoom, x, top + dy, width, col.zoom_caption)
                elif what.startswith("row") and int(what[3:]) in col.tiles:
                    r = int(what[3:])
                    painter.tile(canvas, col.tiles[r], x, top + dy, width, col.captions[r])
            x += width + _GAP
        top += bh + _GAP
    _legend(painter, canvas, top, normalize, row_names, scales)
    return canvas


def montage(
    input_image: np.ndarray,
    panels: Sequence[tuple],
    *,
    height: int = 256,
    max_channels: int = 4,
    normalize: str = "per-map",
    zoom: tuple[int, int, int, int] | None = None,
    channel_names: Sequence[str] | None = None,
    max_width: int = _MAX_WIDTH,
) -> bytes:
    """A labelled grid of the input and a sequence of feature maps, as PNG bytes.

    Columns, left to right: the input (RGB from its first three channels if it
    has three or more, else gray), then one column per panel in the given
    order, headed by its label. Rows: one per channel of the maps (at most
    `max_channels`; the header then says ``"(+N more)"``), named on the left
    by ``channel_names`` or the panels' own ``"channels"`` (``sobel-x``,
    ``R``, ...), else ``c0``, ``c1``, .... Every tile is drawn at one common
    scale, so a map with fewer pixels is drawn smaller (true relative scale):
    inputs at most `height` rows (and ``2 * height`` columns) are enlarged by
    an integer factor, larger ones reduced by one (block mean; block
    largest-magnitude value for panels marked ``"unpool"``, so the kept values
    of a sparse map stay visible), in bands of rows. Under each tile: its
    smallest and largest finite value.

    When the overview is not enlarged and the input is larger than 64 pixels,
    a zoom row follows: the same region of the input (`zoom`, or the 64x64
    window with the most gradient energy, outlined in red on the input) in
    every column's first channel, sampled nearest-neighbour at native
    resolution, so that a stride-``k`` map shows ``k x k`` blocks.

    `normalize`: ``"per-map"`` draws every tile black at its minimum and
    white at its maximum; ``"shared"`` uses one scale per channel row across
    the panels; a legend with a colour bar says which. A constant map is drawn
    at its value on its row's scale (the input's channel included), so the
    1x1 maximum of an image is white, not black. A grid wider than
    `max_width` pixels wraps into bands of columns.

    Parameters
    ----------
    input_image : numpy.ndarray
        Float array ``(C, H, W)`` (a 2-D array is taken as one channel).
    panels : sequence of tuples
        ``(label, maps)`` or ``(label, maps, info)``: ``maps`` a float array
        ``(C, h, w)`` covering the input (e.g. ``("2: max 1x64x64", out)``);
        ``info`` a dict with optional ``"channels"`` (names) and ``"unpool"``
        (True: a sparse unpool map).
    height : int, default 256
        Rows of the input's tile (the common scale is chosen from it).
    max_channels : int, default 4
        Most channel rows drawn.
    normalize : {"per-map", "shared"}
    zoom : (x, y, w, h), optional
        The zoom region in input pixels (clipped to the image).
    channel_names : sequence of str, optional
        Row names (the panels' ``"channels"`` take precedence).
    max_width : int, default 1800
        Wrap into bands of columns beyond this width.

    Returns
    -------
    bytes
        A PNG file: RGB when the input has three or more channels; else a
        palette image of 255 grays (black .. white) and the zoom box's red,
        the tiles shaded on those 255 levels (one channel per pixel: a third
        of the RGB montage's data, measured 2.5x faster to encode).

    Raises
    ------
    ValueError
        If `height`, `max_channels` or `max_width` is not a positive integer,
        `normalize` unknown, or an array not a non-empty ``(C, H, W)`` array.

    Examples
    --------
    >>> from PIL import Image
    >>> x = np.random.default_rng(0).random((1, 8, 8), dtype=np.float32)
    >>> pooled = x.reshape(1, 4, 2, 4, 2).max(axis=(2, 4))
    >>> png = montage(x, [("1: max(size=2) 1x4x4", pooled)], height=64)
    >>> im = Image.open(io.BytesIO(png))
    >>> im.mode, im.height > 64
    ('P', True)
    """
    return encode_png(*montage_canvas(input_image, panels, height=height, max_channels=max_channels,
                                      normalize=normalize, zoom=zoom, channel_names=channel_names,
                                      max_width=max_width))


def montage_canvas(
    input_image: np.ndarray,
    panels: Sequence[tuple],
    *,
    height: int = 256,
    max_channels: int = 4,
    normalize: str = "per-map",
    zoom: tuple[int, int, int, int] | None = None,
    channel_names: Sequence[str] | None = None,
    max_width: int = _MAX_WIDTH,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`montage`'s pixels, not yet encoded (to encode elsewhere, e.g. on a thread): ``(pixels,
    palette)``, uint8 ``(H, W)`` palette indices and the ``(256, 3)`` palette when the input has fewer
    than three channels (a gray montage), else uint8 RGB ``(H, W, 3)`` and None;
    ``encode_png(pixels, palette)`` is :func:`montage`'s file."""
    height = _check_positive("height", height)
    max_channels = _check_positive("max_channels", max_channels)
    max_width = _check_positive("max_width", max_width)
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE)}; got {normalize!r}")
    image = _as_maps("input_image", input_image)
    parts = [_panel_parts(i, p) for i, p in enumerate(panels)]
    geo = _Geometry(image.shape[1:], height, zoom)
    ink = _Ink(rgb=image.shape[0] >= 3)  # the input's tile is the only one that can have colour
    input_range = functools.lru_cache(maxsize=None)(lambda c: finite_range(image[c]))  # once per channel
    columns = [_input_column(image, geo, input_range, ink)]
    stage_columns, row_names, scales = _stage_columns(image, parts, geo, max_channels, normalize, channel_names,
                                                      input_range, ink)
    return _render(columns + stage_columns, row_names, scales, normalize, max_width, ink), ink.palette()


def montage_pixels(input_image: np.ndarray, panels: Sequence[tuple], **options) -> np.ndarray:
    """:func:`montage` as uint8 RGB pixels ``(H, W, 3)`` (what its PNG decodes to, converted to RGB);
    ``options`` as :func:`montage`'s."""
    pixels, palette = montage_canvas(input_image, panels, **options)
    return pixels if palette is None else palette.take(pixels, axis=0)
