"""Images in and out: the only module of poolcli that imports PIL.

Reading turns any file Pillow can decode, in any mode, into a C-contiguous
``float32`` array of shape ``(C, H, W)``; writing turns 2-D float maps into
deterministic PNG bytes and lays feature maps out side by side in a labelled
montage. Files are never written here: callers get ``bytes`` and write them
atomically (see ``outputs.py``).

Every failure to read an input raises :class:`poolcli.errors.InputError`
(``"path: reason"``); bad arguments raise :class:`ValueError` naming the
parameter and quoting the value.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import struct
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import logging

from PIL import Image, ImageDraw, ImageFont, ImageOps

from poolcli.errors import InputError

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


def _openable_extensions() -> frozenset[str]:
    registered = Image.registered_extensions()  # also runs Image.init()
    return frozenset(
        ext for ext in _WANTED_EXTENSIONS if registered.get(ext) in Image.OPEN
    )


IMAGE_EXTENSIONS: frozenset[str] = _openable_extensions()
"""Lower-case file extensions (with the dot) that :func:`load_image` reads."""

_COLORS = ("gray", "keep")
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


def _decode(path: Path, max_frames: int | None = None) -> Image.Image:
    """Open, size-check, fully decode and orient the first frame of ``path``."""
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

    if im.mode == "1":
        out = data.astype(np.float32)
    elif data.dtype == np.uint8:
        out = data.astype(np.float32) / np.float32(255)
    elif data.dtype.kind == "u" and data.dtype.itemsize == 2:  # I;16, I;16B, ...
        out = data.astype(np.float32) / np.float32(65535)
    elif im.mode == "I":
        if fmt == "PNG" or (data.size and data.min() >= 0 and data.max() <= 65535):
            out = data.astype(np.float32) / np.float32(65535)
        else:
            out = data.astype(np.float32)
    else:  # "F"
        out = data.astype(np.float32)
    return np.ascontiguousarray(out)


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
        with Image.open(path) as im:
            bands = len(im.getbands())
            w, h = im.size
    except Exception:  # unreadable: load_image says why
        return None
    return (1 if color == "gray" else max(1, bands)), h, w


def load_image(
    path: str | os.PathLike[str],
    color: str = "gray",
    *,
    max_pixels: int | None = None,
    max_frames: int | None = None,
    nan: str = "error",
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
    color : {"gray", "keep"}, default "gray"
        ``"gray"`` returns one channel: the ITU-R BT.601 luma
        ``0.299 R + 0.587 G + 0.114 B`` of colour images (computed in float64
        on the scaled values, then cast to float32), the values themselves for
        one-channel images. Alpha is dropped. ``"keep"`` returns every channel
        of the image as its own map: 1 (``1``, ``L``, ``I;16``, ``I``, ``F``),
        2 (``LA``), 3 (``RGB``, and ``CMYK``/``YCbCr``/``P`` converted to RGB)
        or 4 (``RGBA``, and ``P`` with transparency converted to RGBA).
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
    if max_pixels is None:
        im = _decode(path, max_frames)
    else:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own bomb check uses the module limit
        try:
            im = _decode(path, max_frames)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    channels = _to_array(im, path)
    if channels.dtype.kind == "f" and im.mode.startswith("F"):
        channels = _apply_nan_policy(channels, nan, path)
    if color == "keep" or channels.shape[0] == 1:
        return channels
    if channels.shape[0] == 2:  # LA: the gray channel, alpha dropped
        return np.ascontiguousarray(channels[:1])
    return _luminance(channels)


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
    values = np.asarray(plane)
    if values.ndim != 2:
        raise ValueError(f"plane must be a 2-D array; got shape {values.shape}")
    if values.dtype in (np.float32, np.float64) and 0 < values.size <= (1 << 22):  # big maps: the bands below
        lo, hi = values.min(), values.max()  # NaN or +-inf in either means a non-finite value
        finite = np.isfinite(lo) and np.isfinite(hi) and abs(float(hi) - float(lo)) < np.finfo(values.dtype).max / 2
        if finite:
            # Fast path, in the map's own dtype (most maps): one scale, rounded once.
            if hi == lo:
                return np.zeros(values.shape, dtype=np.uint8)
            scaled = (values - lo) * (values.dtype.type(255) / (hi - lo))
            return np.clip(np.rint(scaled, out=scaled), 0, 255, out=scaled).astype(np.uint8)
    # In bands of rows: the float64 arithmetic below on a whole 8192x8192 map
    # took 2 GiB of temporaries (measured); bands keep it to a few MiB.
    rows = max(1, (1 << 20) // max(1, values.shape[1]))
    bands = [slice(r, r + rows) for r in range(0, values.shape[0], rows)]
    lo, hi = np.inf, -np.inf
    for b in bands:
        v = values[b].astype(np.float64)
        f = v[np.isfinite(v)]
        if f.size:
            lo, hi = min(lo, float(f.min())), max(hi, float(f.max()))
    out = np.zeros(values.shape, dtype=np.uint8)
    half_span = hi / 2 - lo / 2  # halves: no overflow near the float limits
    for b in bands:
        v = values[b].astype(np.float64)
        o = out[b]
        o[v == np.inf] = 255
        if hi > lo:
            finite = np.isfinite(v)
            scaled = (v[finite] / 2 - lo / 2) / half_span * 255.0
            o[finite] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return out


def encode_png(array: np.ndarray) -> bytes:
    """Encode a uint8 image as PNG bytes.

    The bytes are deterministic: no time stamp or other metadata is written,
    so the same array always gives the same file.

    Parameters
    ----------
    array : numpy.ndarray
        uint8 array of shape ``(H, W)`` (grayscale) or ``(H, W, 3)`` (RGB).

    Returns
    -------
    bytes
        A complete PNG file.

    Raises
    ------
    ValueError
        If `array` is not uint8 or has another shape.

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
    image = Image.fromarray(np.ascontiguousarray(array))
    buffer = io.BytesIO()
    # zlib level 1: PNG encoding was 40% of a 512x512 run at Pillow's default
    # 6 (cProfile, benchmarks/); level 1 encodes ~4x faster for ~15% more bytes.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


# ---------------------------------------------------------------- montage ---

_MARGIN = 10  # around the whole montage
_GAP = 16  # between tiles
_CHANNEL_GAP = 3  # between stacked channels of one map
_LABEL_GAP = 4  # between a map and its label
_FONT_SIZE = 14
_TEXT = (32, 32, 32)
_FRAME = (200, 200, 200)
_BACKGROUND = (255, 255, 255)


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=_FONT_SIZE)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType
        return ImageFont.load_default()


def _rescale(img: np.ndarray, height: int) -> np.ndarray:
    """Nearest-neighbour integer rescale of ``(h, w[, 3])`` to about `height` rows.

    Maps no higher than `height` are enlarged by the largest integer factor
    that keeps them within `height` rows and ``4 * height`` columns; larger
    ones are shrunk by the smallest integer step that fits them.
    """
    h, w = img.shape[:2]
    max_width = 4 * height
    if h <= height and w <= max_width:
        factor = max(1, min(height // h, max_width // w))
        return np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)
    step = max(math.ceil(h / height), math.ceil(w / max_width))
    return img[::step, ::step]


def _as_maps(name: str, array: np.ndarray) -> np.ndarray:
    maps = np.asarray(array)
    if maps.ndim == 2:
        maps = maps[np.newaxis]
    if maps.ndim != 3 or 0 in maps.shape:
        raise ValueError(f"{name} must be a non-empty (C, H, W) array; got shape {maps.shape}")
    return maps


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _input_tile(image: np.ndarray, height: int) -> np.ndarray:
    if image.shape[0] == 3:
        # One normalisation for all three channels keeps the colour balance.
        c, h, w = image.shape
        rgb = to_uint8(image.reshape(c * h, w)).reshape(c, h, w)
        return _rescale(np.moveaxis(rgb, 0, -1), height)
    gray = _rescale(to_uint8(image[0]), height)  # shrink before the RGB copy
    return np.repeat(gray[..., np.newaxis], 3, axis=2)


def _panel_tile(maps: np.ndarray, height: int, max_channels: int) -> np.ndarray:
    pieces = []
    for plane in maps[:max_channels]:
        gray = _rescale(to_uint8(plane), height)
        pieces.append(np.repeat(gray[..., np.newaxis], 3, axis=2))
    width = pieces[0].shape[1]
    gap = np.full((_CHANNEL_GAP, width, 3), 255, dtype=np.uint8)
    stacked = [pieces[0]]
    for piece in pieces[1:]:
        stacked += [gap, piece]
    return np.concatenate(stacked, axis=0)


def montage(
    input_image: np.ndarray,
    panels: Sequence[tuple[str, np.ndarray]],
    *,
    height: int = 256,
    max_channels: int = 4,
) -> bytes:
    """Lay the input and a sequence of feature maps side by side in one PNG.

    Layout, left to right: the input image (RGB if it has 3 channels, else its
    channel 0 in gray), labelled ``"input CxHxW"``, then one tile per panel in
    the given order, each labelled underneath with its label. Every map is
    normalised on its own with :func:`to_uint8` (the RGB input jointly over
    its three channels) and resized by an integer nearest-neighbour factor so
    that one channel is at most `height` pixels high (and ``4 * height``
    wide) and as close to it as an integer factor allows; pooled pixels thus
    stay visible as square blocks. Maps larger than that are shrunk by an
    integer step (every n-th pixel). The channels of a multi-channel map are
    stacked vertically, at most `max_channels` of them; the label then ends in
    ``"(+N more)"``. Tiles are top-aligned on a white background with a thin
    grey frame, text is dark grey in Pillow's default font.

    Parameters
    ----------
    input_image : numpy.ndarray
        Float array ``(C, H, W)`` (a 2-D array is taken as one channel).
    panels : sequence of (str, numpy.ndarray)
        ``(label, maps)`` pairs, ``maps`` a float array ``(C, h, w)``, e.g.
        ``("2: max(size=2) 1x64x64", out)``.
    height : int, default 256
        Target height in pixels of one channel of each tile.
    max_channels : int, default 4
        Most channels drawn per panel.

    Returns
    -------
    bytes
        An RGB PNG file.

    Raises
    ------
    ValueError
        If `height` or `max_channels` is not a positive integer, or an array
        is not a non-empty ``(C, H, W)`` array.

    Examples
    --------
    >>> from PIL import Image
    >>> x = np.random.default_rng(0).random((1, 8, 8), dtype=np.float32)
    >>> pooled = x.reshape(1, 4, 2, 4, 2).max(axis=(2, 4))
    >>> png = montage(x, [("1: max(size=2) 1x4x4", pooled)], height=64)
    >>> im = Image.open(io.BytesIO(png))
    >>> im.mode, im.height > 64
    ('RGB', True)
    """
    if isinstance(height, bool) or not isinstance(height, (int, np.integer)) or height < 1:
        raise ValueError(f"height must be a positive integer; got {height!r}")
    if (
        isinstance(max_channels, bool)
        or not isinstance(max_channels, (int, np.integer))
        or max_channels < 1
    ):
        raise ValueError(f"max_channels must be a positive integer; got {max_channels!r}")
    height = int(height)
    max_channels = int(max_channels)

    image = _as_maps("input_image", input_image)
    tiles = [_input_tile(image, height)]
    labels = ["input " + "x".join(str(n) for n in image.shape)]
    for index, panel in enumerate(panels):
        try:
            label, maps = panel
        except (TypeError, ValueError):
            raise ValueError(
                f"panels[{index}] must be a (label, array) pair; got {type(panel).__name__}"
            ) from None
        maps = _as_maps(f"panels[{index}] ({label!r})", maps)
        tiles.append(_panel_tile(maps, height, max_channels))
        hidden = maps.shape[0] - max_channels
        labels.append(f"{label} (+{hidden} more)" if hidden > 0 else str(label))

    font = _font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_sizes = [_text_size(measure, text, font) for text in labels]
    line_height = max(th for _, th in text_sizes) + 4
    widths = [max(tile.shape[1] + 2, tw) for tile, (tw, _) in zip(tiles, text_sizes)]
    tallest = max(tile.shape[0] + 2 for tile in tiles)
    canvas_w = 2 * _MARGIN + sum(widths) + _GAP * (len(tiles) - 1)
    canvas_h = 2 * _MARGIN + tallest + _LABEL_GAP + line_height

    canvas = Image.new("RGB", (canvas_w, canvas_h), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    x = _MARGIN
    for tile, text, width in zip(tiles, labels, widths):
        th, tw = tile.shape[:2]
        left = x + (width - tw - 2) // 2
        draw.rectangle((left, _MARGIN, left + tw + 1, _MARGIN + th + 1), outline=_FRAME)
        canvas.paste(Image.fromarray(np.ascontiguousarray(tile)), (left + 1, _MARGIN + 1))
        text_w = _text_size(draw, text, font)[0]
        text_y = _MARGIN + th + 2 + _LABEL_GAP
        draw.text((x + (width - text_w) // 2, text_y), text, fill=_TEXT, font=font)
        x += width + _GAP
    return encode_png(np.asarray(canvas))
