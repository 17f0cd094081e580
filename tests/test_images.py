"""Tests of poolcli.images: every mode in, broken files, PNG out, montages.

All inputs are generated into ``tmp_path`` with Pillow and NumPy.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from poolcli.errors import InputError
from poolcli import images
from poolcli.images import IMAGE_EXTENSIONS, encode_png, load_image, montage, to_uint8

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
RNG = np.random.default_rng(1234)


def _check(arr: np.ndarray, channels: int, shape: tuple[int, int]) -> None:
    assert arr.dtype == np.float32
    assert arr.flags.c_contiguous
    assert arr.shape == (channels, *shape)


# ------------------------------------------------------------------ modes ---


def test_extensions_cover_common_formats():
    for ext in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pbm"):
        assert ext in IMAGE_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)
    assert ".pdf" not in IMAGE_EXTENSIONS


def test_L_png_is_exactly_value_over_255(tmp_path):
    arr = RNG.integers(0, 256, size=(17, 23), dtype=np.uint8)
    arr[0, 0], arr[0, 1] = 0, 255
    path = tmp_path / "l.png"
    Image.fromarray(arr).save(path)
    out = load_image(path)
    _check(out, 1, arr.shape)
    np.testing.assert_array_equal(out[0], arr.astype(np.float32) / 255)
    np.testing.assert_array_equal(load_image(path, color="keep"), out)


@pytest.mark.parametrize("suffix", [".bmp", ".pgm", ".tif", ".webp"])
def test_L_other_formats(tmp_path, suffix):
    if suffix not in IMAGE_EXTENSIONS:
        pytest.skip(f"{suffix} not supported by this Pillow")
    arr = RNG.integers(0, 256, size=(9, 11), dtype=np.uint8)
    path = tmp_path / f"l{suffix}"
    kwargs = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(arr).save(path, **kwargs)
    out = load_image(path)
    _check(out, 1, arr.shape)
    if suffix != ".webp":  # lossless WebP stores gray as RGB: luma, not exact
        np.testing.assert_array_equal(out[0], arr.astype(np.float32) / 255)
    else:
        np.testing.assert_allclose(out[0], arr / 255, atol=1e-6)


def test_16bit_png_is_value_over_65535(tmp_path):
    arr = RNG.integers(0, 65536, size=(12, 10), dtype=np.uint16)
    arr[0, 0], arr[0, 1] = 0, 65535
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)
    with Image.open(path) as im:  # really stored and read as 16-bit
        assert im.mode.startswith("I")
    out = load_image(path)
    _check(out, 1, arr.shape)
    np.testing.assert_array_equal(out[0], arr.astype(np.float32) / 65535)
    assert out.max() == 1.0


def test_16bit_big_endian_tiff(tmp_path):
    arr = RNG.integers(0, 65536, size=(6, 7), dtype=np.uint16)
    im = Image.frombytes("I;16B", (7, 6), arr.astype(">u2").tobytes())
    path = tmp_path / "g16b.tif"
    im.save(path)
    out = load_image(path)
    np.testing.assert_array_equal(out[0], arr.astype(np.float32) / 65535)


def test_float_tiff_kept_exactly(tmp_path):
    arr = RNG.normal(0, 1000, size=(8, 9)).astype(np.float32)
    arr[0, :4] = [-3.5, 1e6, np.nan, np.inf]
    arr[1, 0] = -np.inf
    path = tmp_path / "f.tif"
    Image.fromarray(arr).save(path)
    out = load_image(path, nan="propagate")
    _check(out, 1, arr.shape)
    np.testing.assert_array_equal(out[0], arr)  # NaN == NaN for this assert


def test_nan_policy(tmp_path):
    arr = np.ones((4, 5), np.float32)
    arr[1, 2], arr[2, 3] = np.nan, -np.inf
    path = tmp_path / "n.tif"
    Image.fromarray(arr).save(path)
    with pytest.raises(InputError, match=r"n\.tif: 2 NaN or infinite"):
        load_image(path)  # the default policy: error
    zero = load_image(path, nan="zero")
    assert zero[0, 1, 2] == 0 and zero[0, 2, 3] == 0 and np.isfinite(zero).all()
    kept = load_image(path, nan="propagate")
    assert np.isnan(kept[0, 1, 2]) and kept[0, 2, 3] == -np.inf
    with pytest.raises(ValueError, match="nan"):
        load_image(path, nan="ignore")
    # a finite float image is untouched by every policy
    Image.fromarray(np.full((3, 3), 2.5, np.float32)).save(tmp_path / "ok.tif")
    for policy in ("error", "propagate", "zero"):
        assert (load_image(tmp_path / "ok.tif", nan=policy) == 2.5).all()


def test_int32_tiff_in_16bit_range_is_scaled(tmp_path):
    arr = RNG.integers(0, 65536, size=(5, 6)).astype(np.int32)
    path = tmp_path / "i.tif"
    Image.fromarray(arr).save(path)
    with Image.open(path) as im:
        assert im.mode == "I"
    np.testing.assert_array_equal(load_image(path)[0], arr.astype(np.float32) / 65535)


def test_int32_tiff_outside_16bit_range_is_unscaled(tmp_path):
    arr = RNG.integers(-100_000, 1_000_000, size=(5, 6)).astype(np.int32)
    path = tmp_path / "i.tif"
    Image.fromarray(arr).save(path)
    np.testing.assert_array_equal(load_image(path)[0], arr.astype(np.float32))


def test_mode_1_is_zero_or_one(tmp_path):
    arr = RNG.random((10, 13)) > 0.5
    path = tmp_path / "b.png"
    Image.fromarray(arr).save(path)
    with Image.open(path) as im:
        assert im.mode == "1"
    out = load_image(path)
    _check(out, 1, arr.shape)
    np.testing.assert_array_equal(out[0], arr.astype(np.float32))


def test_LA_gray_drops_alpha_keep_keeps_it(tmp_path):
    arr = RNG.integers(0, 256, size=(7, 8, 2), dtype=np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(arr).save(path)
    with Image.open(path) as im:
        assert im.mode == "LA"
    gray = load_image(path)
    _check(gray, 1, (7, 8))
    np.testing.assert_array_equal(gray[0], arr[..., 0].astype(np.float32) / 255)
    keep = load_image(path, color="keep-alpha")
    _check(keep, 2, (7, 8))
    np.testing.assert_array_equal(keep[1], arr[..., 1].astype(np.float32) / 255)
    _check(load_image(path, color="keep"), 1, (7, 8))  # alpha is not a feature map unless asked


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (4, 3), 0)
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9)
    im.putpalette(palette)
    im.putpixel((1, 0), 1)  # red
    im.putpixel((2, 0), 2)  # green
    path = tmp_path / "p.png"
    im.save(path, transparency=0)
    keep = load_image(path, color="keep-alpha")
    _check(keep, 4, (3, 4))
    np.testing.assert_array_equal(load_image(path, color="keep"), keep[:3])
    assert keep[3, 0, 0] == 0.0 and keep[3, 0, 1] == 1.0  # index 0 transparent
    np.testing.assert_array_equal(keep[:3, 0, 1], [1.0, 0.0, 0.0])
    gray = load_image(path)
    _check(gray, 1, (3, 4))
    assert gray[0, 0, 1] == pytest.approx(0.299, abs=1e-6)
    assert gray[0, 0, 2] == pytest.approx(0.587, abs=1e-6)


def test_palette_without_transparency_is_rgb(tmp_path):
    im = Image.new("P", (3, 3), 0)
    im.putpalette([10, 20, 30] * 256)
    path = tmp_path / "p.png"
    im.save(path)
    _check(load_image(path, color="keep"), 3, (3, 3))


@pytest.mark.parametrize(
    ("rgb", "expected"),
    [((255, 0, 0), 0.299), ((0, 255, 0), 0.587), ((0, 0, 255), 0.114), ((255, 255, 255), 1.0)],
)
def test_gray_weights_bt601(tmp_path, rgb, expected):
    path = tmp_path / "c.png"
    Image.new("RGB", (2, 2), rgb).save(path)
    out = load_image(path)
    _check(out, 1, (2, 2))
    assert float(out[0, 0, 0]) == pytest.approx(expected, abs=1e-6)


def test_rgb_keep_and_gray_formula(tmp_path):
    arr = RNG.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    path = tmp_path / "rgb.png"
    Image.fromarray(arr).save(path)
    keep = load_image(path, color="keep")
    _check(keep, 3, (5, 6))
    np.testing.assert_array_equal(keep, np.moveaxis(arr, -1, 0).astype(np.float32) / 255)
    gray = load_image(path)
    x = keep.astype(np.float64)
    np.testing.assert_allclose(gray[0], 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2], atol=1e-6)


def test_rgba_gray_ignores_alpha_keep_has_four(tmp_path):
    arr = RNG.integers(0, 256, size=(4, 5, 4), dtype=np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(arr).save(path)
    keep = load_image(path, color="keep-alpha")
    _check(keep, 4, (4, 5))
    np.testing.assert_array_equal(load_image(path, color="keep"), keep[:3])
    gray = load_image(path)
    x = keep[:3].astype(np.float64)
    np.testing.assert_allclose(gray[0], 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2], atol=1e-6)


def test_cmyk_jpeg_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    im = Image.new("CMYK", (16, 8), (0, 0, 0, 0))
    im.paste((255, 0, 0, 0), (0, 0, 8, 8))  # cyan on the left half
    im.save(path, quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    keep = load_image(path, color="keep")
    _check(keep, 3, (8, 16))
    np.testing.assert_allclose(keep[:, 4, 12], [1.0, 1.0, 1.0], atol=0.03)  # white
    np.testing.assert_allclose(keep[:, 4, 2], [0.0, 1.0, 1.0], atol=0.03)  # cyan
    _check(load_image(path), 1, (8, 16))


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), dtype=np.uint8)  # H=20, W=40
    arr[:6, :6] = (255, 255, 255)  # a white block at the top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    out = load_image(path)
    _check(out, 1, (40, 20))
    assert out[0, :4, -4:].mean() > 0.9  # top-left went to top-right
    assert out[0, :4, :4].mean() < 0.1


def test_multiframe_gif_reads_first_frame(tmp_path):
    frames = [Image.new("L", (16, 12), value) for value in range(10, 260, 5)]
    assert len(frames) == 50
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with Image.open(path) as im:
        assert im.n_frames == 50
    out = load_image(path)
    _check(out, 1, (12, 16))
    np.testing.assert_allclose(out, 10 / 255, atol=1e-6)


def test_long_gif_reads_only_the_first_frame(tmp_path, monkeypatch):
    """A 1000-frame GIF costs one frame: no frame past the first is ever decoded (no timing asserted)."""
    from PIL import GifImagePlugin

    frames = [Image.new("L", (32, 32), value % 256) for value in range(1000)]
    path = tmp_path / "long.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    seen = []
    original = GifImagePlugin.GifImageFile._seek

    def spy(self, frame, *args, **kwargs):
        seen.append(frame)
        return original(self, frame, *args, **kwargs)

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_seek", spy)
    out = load_image(path)
    assert out.shape == (1, 32, 32) and (out == 0).all()
    assert max(seen, default=0) == 0, f"frames visited: {sorted(set(seen))[:5]}..."


def test_multipage_tiff_reads_first_page(tmp_path):
    pages = [Image.new("L", (5, 4), v) for v in (30, 60, 90)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    np.testing.assert_array_equal(load_image(path), np.float32(30) / np.float32(255))


def test_one_pixel_image(tmp_path):
    path = tmp_path / "one.png"
    Image.new("L", (1, 1), 128).save(path)
    out = load_image(path)
    _check(out, 1, (1, 1))
    assert out[0, 0, 0] == np.float32(128) / np.float32(255)


def test_accepts_str_path(tmp_path):
    path = tmp_path / "s.png"
    Image.new("RGB", (2, 3)).save(path)
    _check(load_image(str(path), color="keep"), 3, (3, 2))


@pytest.mark.parametrize("color", ["rgb", "GRAY", "", None, 3])
def test_bad_color_is_value_error(tmp_path, color):
    path = tmp_path / "c.png"
    Image.new("L", (2, 2)).save(path)
    with pytest.raises(ValueError, match=r"color must be 'gray' or 'keep'; got") as info:
        load_image(path, color=color)
    assert repr(color) in str(info.value)


# ---------------------------------------------------------- broken inputs ---


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)


def _good_png(tmp_path) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def _good_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)).save(
        buffer, format="JPEG"
    )
    return buffer.getvalue()


BROKEN = {
    "zero_bytes": lambda tp: b"",
    "text": lambda tp: b"this is not an image, just some text\n",
    "signature_only": lambda tp: _good_png(tp)[:8],
    "header_only": lambda tp: _good_png(tp)[:33],
    "png_half": lambda tp: (lambda d: d[: len(d) // 2])(_good_png(tp)),
    "header_no_data": lambda tp: _png_header(16, 16) + _chunk(b"IEND", b""),
    "bad_header_crc": lambda tp: (lambda d: d[:29] + b"\x00\x00\x00\x00" + d[33:])(_good_png(tp)),
    "garbled_idat": lambda tp: (lambda d: d[:60] + bytes(200) + d[260:])(_good_png(tp)),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_png_raises_input_error(tmp_path, case):
    path = tmp_path / f"{case}.png"
    path.write_bytes(BROKEN[case](tmp_path))
    with pytest.raises(InputError) as info:
        load_image(path)
    assert str(info.value).startswith(f"{path}: ")
    assert info.value.path == str(path)


def test_truncated_jpeg(tmp_path):
    data = _good_jpeg()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt image data"):
        load_image(path)


def test_reasons(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("hello")
    half = tmp_path / "half.png"
    data = _good_png(tmp_path)
    half.write_bytes(data[: len(data) // 2])
    cases = {
        tmp_path / "missing.png": "file not found",
        tmp_path / "no" / "such" / "dir.png": "file not found",
        empty: "empty file",
        text: "not an image Pillow can read",
        half: "truncated or corrupt image data",
    }
    for path, reason in cases.items():
        with pytest.raises(InputError) as info:
            load_image(path)
        assert str(info.value) == f"{path}: {info.value.reason}"
        assert reason in info.value.reason


def test_directory_named_like_an_image(tmp_path):
    path = tmp_path / "x.png"
    path.mkdir()
    with pytest.raises(InputError, match="is a directory") as info:
        load_image(path)
    assert str(path) in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_promptly(tmp_path):
    path = tmp_path / "x.png"
    os.mkfifo(path)
    result = {}

    def target():
        try:
            load_image(path)
        except InputError as exc:
            result["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():  # unblock the reader before failing
        open(path, "wb").close()  # opening the FIFO for writing releases the blocked reader
        pytest.fail("load_image blocked on a FIFO")
    assert "not a regular file" in str(result["error"])
    assert str(path) in str(result["error"])


@pytest.mark.parametrize("side", [100_000, 10_000])  # error zone, warning zone
def test_decompression_bomb_header_is_input_error(tmp_path, side):
    limit = Image.MAX_IMAGE_PIXELS
    assert limit and side * side > limit
    path = tmp_path / "bomb.png"
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(_png_header(side, side) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=r"image too large \(\d+ pixels > limit \d+\)"):
            load_image(path)
    assert Image.MAX_IMAGE_PIXELS == limit  # the check was not switched off


def test_bomb_check_holds_without_warning_filter(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(10_000, 10_000) + _chunk(b"IEND", b""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="image too large"):
            load_image(path)


# ---------------------------------------------------------------- to_uint8 ---


def test_to_uint8_min_max():
    plane = np.array([[-2.0, 0.0], [2.0, 1.0]], dtype=np.float32)
    out = to_uint8(plane)
    assert out.dtype == np.uint8 and out.shape == (2, 2)
    assert out.min() == 0 and out.max() == 255
    np.testing.assert_array_equal(out, [[0, 128], [255, 191]])


@pytest.mark.parametrize("value", [0.0, 5.0, -1e30, np.nan])
def test_to_uint8_constant_map_is_flat_without_warnings(value):
    plane = np.full((4, 5), value, dtype=np.float32)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = to_uint8(plane)
    np.testing.assert_array_equal(out, np.zeros((4, 5), dtype=np.uint8))


def test_to_uint8_non_finite():
    plane = np.array([[np.nan, np.inf, -np.inf, 1.0, 3.0]])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = to_uint8(plane)
    np.testing.assert_array_equal(out, [[0, 255, 0, 0, 255]])
    all_inf = to_uint8(np.array([[np.inf, -np.inf], [np.nan, np.inf]]))
    np.testing.assert_array_equal(all_inf, [[255, 0], [0, 255]])


def test_to_uint8_extreme_values_no_overflow():
    plane = np.array([[-np.finfo(np.float64).max, 0.0, np.finfo(np.float64).max]])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = to_uint8(plane)
    np.testing.assert_array_equal(out, [[0, 128, 255]])


def test_to_uint8_int_and_noncontiguous_input():
    plane = np.arange(24).reshape(4, 6)[:, ::2]
    out = to_uint8(plane)
    assert out[0, 0] == 0 and out[-1, -1] == 255


@pytest.mark.parametrize("shape", [(3,), (1, 2, 3), ()])
def test_to_uint8_rejects_non_2d(shape):
    with pytest.raises(ValueError, match=r"plane must be a 2-D array; got shape"):
        to_uint8(np.zeros(shape))


# -------------------------------------------------------------- encode_png ---


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (1, 1)])
def test_encode_png_round_trip(shape):
    arr = RNG.integers(0, 256, size=shape, dtype=np.uint8)
    data = encode_png(arr)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im), arr)
    assert encode_png(arr.copy()) == data  # deterministic bytes


def test_encode_png_noncontiguous():
    arr = RNG.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)[:, ::2]
    with Image.open(io.BytesIO(encode_png(arr))) as im:
        np.testing.assert_array_equal(np.asarray(im), arr)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 2), dtype=np.float32), "array must have dtype uint8; got float32"),
        (np.zeros((2, 2, 4), dtype=np.uint8), r"array must have shape \(H, W\) or \(H, W, 3\)"),
        (np.zeros((2,), dtype=np.uint8), r"array must have shape"),
        (np.zeros((0, 3), dtype=np.uint8), r"array must not be empty"),
    ],
)
def test_encode_png_errors(array, message):
    with pytest.raises(ValueError, match=message):
        encode_png(array)


@pytest.mark.parametrize("colours", [1, 7, 256])
def test_encode_png_palette_round_trip(colours):
    """A palette image (a gray montage): Pillow reads the indices and the palette back, for any size of
    palette and rows wider and taller than one band."""
    for shape in [(1, 1), (5, 7), (700, 9000)]:
        arr = RNG.integers(0, colours, size=shape, dtype=np.uint8)
        palette = RNG.integers(0, 256, size=(colours, 3), dtype=np.uint8)
        with Image.open(io.BytesIO(encode_png(arr, palette))) as im:
            assert im.mode == "P"
            np.testing.assert_array_equal(np.asarray(im), arr)
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), palette[arr])


@pytest.mark.parametrize(
    ("array", "palette", "message"),
    [
        (np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.float32), r"palette must be a uint8 \(N, 3\) array"),
        (np.zeros((2, 2), np.uint8), np.zeros((257, 3), np.uint8), r"with 1 <= N <= 256; got uint8 \(257, 3\)"),
        (np.zeros((2, 2), np.uint8), np.zeros((0, 3), np.uint8), r"with 1 <= N <= 256"),
        (np.zeros((2, 2), np.uint8), np.zeros((4, 4), np.uint8), r"palette must be a uint8 \(N, 3\) array"),
        (np.zeros((2, 2, 3), np.uint8), np.zeros((4, 3), np.uint8), r"a palette image must have shape \(H, W\)"),
        (np.full((2, 2), 4, np.uint8), np.zeros((4, 3), np.uint8), r"array has index 4, beyond the palette's 4"),
    ],
)
def test_encode_png_palette_errors(array, palette, message):
    with pytest.raises(ValueError, match=message):
        encode_png(array, palette)


# ----------------------------------------------------------------- montage ---


def _open_png(data: bytes) -> Image.Image:
    """A montage's PNG, as RGB: a palette image for a gray input (255 grays and the zoom box's red), else RGB."""
    im = Image.open(io.BytesIO(data))
    im.load()
    assert im.format == "PNG" and im.mode in ("RGB", "P")
    return im.convert("RGB")


def test_montage_grows_with_panels():
    x = RNG.random((3, 32, 32)).astype(np.float32)
    pooled = x[:1].reshape(1, 16, 2, 16, 2).max(axis=(2, 4))
    widths = []
    for n in range(10):
        panels = [(f"{i + 1}: max(size=2) 1x16x16", pooled) for i in range(n)]
        im = _open_png(montage(x, panels, height=64))
        widths.append(im.width)
        assert im.height > 64
    assert widths == sorted(widths)
    # a few small tiles are narrower than the legend's note under them: the montage is as wide as the note
    # (it was cut off); beyond it, every identical panel adds the same width
    floor = widths[0]
    grown = [w for w in widths if w > floor]
    assert len(grown) >= 4 and len(set(grown)) == len(grown)
    steps = np.diff(grown)
    assert np.all(steps == steps[0])  # identical panels, identical width steps


def _runs(row: np.ndarray, value: int) -> list[int]:
    """Lengths of the runs of ``value`` in a 1-D uint8 row."""
    out, n = [], 0
    for v in row:
        if v == value:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out + ([n] if n else [])


def _count(arr: np.ndarray, rgb) -> int:
    return int(np.all(arr == rgb, axis=-1).sum())


def test_montage_tiles_keep_relative_scale():
    """An 8x8 input drawn 8x is 64x64 px; its 4x4 pooled map at the same scale 32x32 px, never larger."""
    x = np.full((1, 8, 8), 0.1, dtype=np.float32)  # constant: drawn at its value (darker than any text)
    pooled = np.full((1, 4, 4), 0.1, dtype=np.float32)
    alone = np.asarray(_open_png(montage(x, [], height=64)))
    both = np.asarray(_open_png(montage(x, [("1: max 1x4x4", pooled)], height=64)))
    gray = (round(0.1 * 254) * 255 + 127) // 254  # level 25 of the gray montage's 255: gray 25
    assert _count(alone, (gray,) * 3) >= 64 * 64  # (the colour bar may hold that gray too)
    assert _count(both, (gray,) * 3) - _count(alone, (gray,) * 3) == 32 * 32


def test_montage_blocks_are_nearest_neighbour():
    x = np.zeros((1, 4, 4), dtype=np.float32)
    x[0, 0, 0] = 1.0
    arr = np.asarray(_open_png(montage(x, [], height=64)))  # 16x per pixel
    dark = np.asarray(_open_png(montage(np.zeros_like(x), [], height=64)))
    assert _count(dark, (0, 0, 0)) - _count(arr, (0, 0, 0)) == 16 * 16  # one pixel: one 16x16 block


def test_montage_constant_1x1_map_is_drawn_at_its_value():
    x = np.array([[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]], dtype=np.float32)
    none = np.asarray(_open_png(montage(x, [], height=60)))
    brightest = np.asarray(_open_png(montage(x, [("1: max 1x1x1", x.max(axis=(1, 2), keepdims=True))], height=60)))
    darkest = np.asarray(_open_png(montage(x, [("1: min 1x1x1", x.min(axis=(1, 2), keepdims=True))], height=60)))
    black = _count(none, (0, 0, 0))  # the input's 0.1 block (20x20 px) and the colour bar's end
    assert _count(brightest, (0, 0, 0)) == black  # the 1x1 maximum is white, not black
    assert _count(darkest, (0, 0, 0)) == black + 20 * 20  # the 1x1 minimum is black: 20x20 px, the input's scale


def test_montage_shared_normalize_and_channel_names():
    x = RNG.random((1, 64, 64)).astype(np.float32)
    maps = np.stack([x[0], 10 * x[0]])
    per = _open_png(montage(x, [("1: bank 2x64x64", maps, {"channels": ["sobel-x", "sobel-y"]})], height=64))
    shared = _open_png(montage(x, [("1: bank 2x64x64", maps, {"channels": ["sobel-x", "sobel-y"]})], height=64,
                               normalize="shared"))
    assert shared.height > per.height  # a colour bar per channel row
    with pytest.raises(ValueError, match="normalize must be one of per-map, shared"):
        montage(x, [], normalize="global")


def test_montage_zoom_row_on_large_inputs_and_bounded_size():
    x = RNG.random((1, 1411, 1411)).astype(np.float32)
    pooled = x.reshape(1, 1411, 1411)[:, :1410, :1410].reshape(1, 705, 2, 705, 2).max(axis=(2, 4))
    small = _open_png(montage(x[:, :200, :200], [("p", pooled[:, :100, :100])]))
    big = _open_png(montage(x, [("1: max 1x705x705", pooled), ("1: unpool", x, {"unpool": True})]))
    assert big.height > small.height  # the zoom row
    assert big.width < 2000 and big.height < 1200
    forced = _open_png(montage(x, [("p", pooled)], zoom=(10, 10, 32, 32)))
    assert forced.size == big.size or forced.height > 256


def test_montage_wraps_into_bands():
    x = RNG.random((1, 200, 200)).astype(np.float32)
    panels = [(f"{i}: relu 1x200x200", x) for i in range(12)]
    im = _open_png(montage(x, panels))
    assert im.width <= 1800 and im.height > 2 * 200


@pytest.mark.parametrize(
    "shape", [(1, 1, 1), (1, 1, 2000), (1, 2000, 1), (3, 1, 1), (2, 5, 3), (1, 600, 900)]
)
def test_montage_odd_shapes(shape):
    x = RNG.random(shape).astype(np.float32)
    panels = [("same", x), ("tiny", np.ones((1, 1, 1))), ("const", np.zeros((2, 3, 3)))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        im = _open_png(montage(x, panels))
    assert im.width < 6000 and im.height < 3000


def test_gray_montage_is_a_palette_image_of_255_grays_and_the_red_box():
    """A one-channel input's montage: a palette PNG (one byte per pixel), 255 grays from black to white and
    the zoom box's red; its tiles on 255 levels, black at the minimum and white at the maximum."""
    from poolcli.images import montage_canvas, montage_pixels

    x = np.tile(np.linspace(0.0, 1.0, 512, dtype=np.float32), (1, 300, 1))  # a ramp: every level
    x[0, 100:200, 300:400] += RNG.random((100, 100), dtype=np.float32)  # structure: the zoom region
    pooled = x.reshape(1, 150, 2, 256, 2).max(axis=(2, 4))
    pixels, palette = montage_canvas(x, [("1: max 1x150x256", pooled)])
    assert pixels.ndim == 2 and palette.shape == (256, 3)
    grays = (np.arange(255) * 255 + 127) // 254
    np.testing.assert_array_equal(palette[:255], np.repeat(grays[:, None], 3, axis=1))
    assert tuple(palette[255]) == images._ZOOM_BOX and palette[254].tolist() == [255] * 3
    assert (pixels == 255).sum() >= 4 * 32  # the box (a 64x64 region, reduced 2x for a 512-wide input)
    assert set(np.unique(pixels[pixels < 255])) >= set(range(0, 255, 1))  # every gray of the ramp is drawn
    png = montage(x, [("1: max 1x150x256", pooled)])
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im), pixels)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), montage_pixels(x, [("1: max 1x150x256", pooled)]))
    # two channels (e.g. gray + alpha kept): still gray; three or more: RGB
    assert montage_canvas(np.concatenate([x, x]), [])[1] is not None
    assert montage_canvas(np.concatenate([x, x, x]), [])[1] is None


def test_montage_rgb_input_is_colour():
    x = np.zeros((3, 4, 40), dtype=np.float32)
    x[0] = 1.0  # pure red
    x[1, 0, 0] = 0.5
    arr = np.asarray(_open_png(montage(x, [], height=64)))
    red = np.all(arr == (255, 0, 0), axis=-1)
    assert red.sum() >= 4 * 39 * 9  # the input, enlarged 3x (at most 2 x 64 px wide): nearly all pure red


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 0}, "height must be a positive integer; got 0"),
        ({"height": 2.5}, "height must be a positive integer; got 2.5"),
        ({"max_channels": 0}, "max_channels must be a positive integer; got 0"),
    ],
)
def test_montage_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        montage(np.zeros((1, 2, 2)), [], **kwargs)


def test_montage_bad_arrays():
    with pytest.raises(ValueError, match=r"input_image must be a non-empty \(C, H, W\) array"):
        montage(np.zeros((1, 1, 2, 2)), [])
    with pytest.raises(ValueError, match=r"panels\[0\] \('p'\) must be a non-empty"):
        montage(np.zeros((1, 2, 2)), [("p", np.zeros((1, 0, 2)))])


# ----------------------------------------------------------- sample images ---

SAMPLE_NAMES = ["checkerboard.png", "shapes.png", "gradient.png", "texture.png", "scene.png"]


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_images_exist_small_and_load(name):
    path = SAMPLES / name
    assert path.is_file()
    assert path.stat().st_size < 200_000
    out = load_image(path)
    assert out.ndim == 3 and out.shape[0] == 1
    assert np.isfinite(out).all() and 0.0 <= out.min() and out.max() <= 1.0


def test_sample_image_modes_and_sizes():
    expected = {
        "checkerboard.png": ("L", (256, 256)),
        "shapes.png": ("RGB", (256, 256)),
        "gradient.png": ("I;16", (256, 256)),
        "texture.png": ("RGB", (256, 256)),
        "scene.png": ("RGB", (320, 240)),
    }
    for name, (mode, size) in expected.items():
        with Image.open(SAMPLES / name) as im:
            assert (im.mode, im.size) == (mode, size), name
    gradient = load_image(SAMPLES / "gradient.png")
    assert len(np.unique(gradient)) > 256  # really 16-bit data
    assert gradient.min() == 0.0 and gradient.max() == 1.0


@pytest.mark.parametrize("normalize", ["per-map", "shared"])
def test_montage_of_a_thin_image_shows_its_legend_whole(normalize):
    """A 5000x3 strip makes a narrow grid: the legend's note under it ran off the montage's right edge
    ('... a constant map i'). The montage is as wide as its legend, whose text ends inside it."""
    x = RNG.random((1, 5000, 3)).astype(np.float32)
    pooled = x.reshape(1, 2500, 2, 1, 3).max(axis=(2, 3))[..., :1]
    im = np.asarray(_open_png(montage(x, [("1: max(size=2) 1x2500x1", pooled)], normalize=normalize)))
    painter = images._Painter(images._Ink(rgb=False))
    note = images._legend_text(normalize, ["gray"], [(0.0, 1.0)])[0]
    assert im.shape[1] >= painter.width(note, True) + 2 * images._MARGIN
    assert (im[-60:, -images._MARGIN:] == 255).all()  # nothing drawn in the right margin of the legend rows


def test_zoom_tiles_are_captioned_with_the_region_in_each_maps_pixels():
    """Under a map's zoom tile: the zoom region in that map's own pixels out of the whole map (a stride-2 map
    shows half the input's pixels per side, as blocks twice as large), not only the map's size."""
    from poolcli.images import _Geometry

    geo = _Geometry((512, 384), 256, (100, 40, 64, 48))
    assert geo.zoom_caption((512, 384)) == "48x64 of 512x384"
    assert geo.zoom_caption((256, 192)) == "24x32 of 256x192"
    assert geo.zoom_caption((128, 96)) == "12x16 of 128x96"
    # stride 3: rows 40..87 lie in map rows 13..29 and columns 100..163 in 33..54 (the region straddles blocks)
    assert geo.zoom_caption((171, 128)) == "17x22 of 171x128"


def test_importing_images_leaves_pillows_plugins_alone_until_extensions_are_asked():
    """IMAGE_EXTENSIONS asks Pillow for every plugin (Image.init(), ~20 ms of a one-file run): made on first
    use, so that `poolcli run photo.png` never pays for it."""
    import subprocess
    import sys

    code = ("import sys, poolcli.images as m\n"
            "before = 'PIL.PdfImagePlugin' in sys.modules\n"
            "ext = m.IMAGE_EXTENSIONS\n"
            "print(before, 'PIL.PdfImagePlugin' in sys.modules, '.png' in ext, m.IMAGE_EXTENSIONS is ext)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "True", "True"]
    from poolcli import images

    with pytest.raises(AttributeError, match="no attribute 'NOT_THERE'"):
        images.NOT_THERE  # noqa: B018


def test_discovering_a_folder_of_pngs_leaves_the_other_plugins_alone(tmp_path, make_image):
    """Folder discovery asks OPENABLE (membership in IMAGE_EXTENSIONS): PNG, JPEG, BMP, GIF and PPM names are
    answered from Pillow's first five plugins, so a folder of them never imports the others (25-60 ms);
    a TIFF among them does, and OPENABLE agrees with IMAGE_EXTENSIONS on every extension."""
    import subprocess
    import sys

    for name in ["a.png", "b.JPG", "c.bmp"]:
        make_image(f"common/{name}", "L", (4, 5))
    code = ("import sys\nfrom pathlib import Path\nfrom poolcli.batch import scan\n"
            "found = scan([Path(sys.argv[1])])\n"
            "print(len(found.items), 'PIL.TiffImagePlugin' in sys.modules)")
    run = lambda folder: subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,  # noqa: E731
                                        check=True).stdout.split()
    assert run(tmp_path / "common") == ["3", "False"]
    make_image("common/d.tif", "L", (4, 5))
    assert run(tmp_path / "common") == ["4", "True"]
    from poolcli import images

    wanted = images._WANTED_EXTENSIONS + (".txt", ".pdf", "", ".PNG")
    assert {e for e in wanted if e in images.OPENABLE} == set(IMAGE_EXTENSIONS)


def test_before_decode_sees_the_shape_from_the_header_and_can_refuse(tmp_path, make_image, monkeypatch):
    """load_image's before_decode hook: the (C, H, W) from the header (C as input_shape gives it), called
    before decoding; what it raises is the file's error. load_input checks the stacks' memory through it,
    so every input is opened once (it was opened for its header, then again to decode)."""
    from PIL import ImageFile

    from poolcli.errors import InputError

    rgba = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (6, 9, 4), dtype=np.uint8), mode="RGBA").save(rgba)
    seen = []
    for color, want in [("gray", (1, 6, 9)), ("keep", (4, 6, 9)), ("keep-alpha", (4, 6, 9))]:
        load_image(rgba, color, before_decode=seen.append)
        assert seen[-1] == want == images.input_shape(rgba, color)
    decoded = []
    orig = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(1) or orig(self))

    def refuse(shape):
        raise InputError(rgba, f"needs too much for {shape}")

    with pytest.raises(InputError, match=r"needs too much for \(1, 6, 9\)"):
        load_image(rgba, before_decode=refuse)
    assert decoded == []  # refused before decoding
    from types import SimpleNamespace

    from poolcli.batch import InputItem
    from poolcli.jobs.base import load_input
    from poolcli.stack.sources import parse_stack

    opens = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opens.append(1) or real_open(*a, **k))
    opts = SimpleNamespace(color="gray", nan="error", max_pixels=None, max_frames=None, max_memory=None)
    assert load_input(InputItem(rgba, Path("a")), opts, [parse_stack("max(2)")]).shape == (1, 6, 9)
    assert len(opens) == 1
    with pytest.raises(InputError, match="memory"):
        load_input(InputItem(rgba, Path("a")), SimpleNamespace(**{**vars(opts), "max_memory": 1}), [parse_stack("max(2)")])
