"""The fast paths of the pictures (issue 13) give what the plain ones give.

* PNG rows compressed by ISA-L (the ``fast`` extra) or by zlib decode to the same pixels;
* the montage's block reduction (``images.reduce_map``) equals a brute-force block mean
  (``math.fsum``) and block largest-magnitude value, NaN and infinities included.
"""

from __future__ import annotations

import io
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from poolcli import _deflate, images


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


@pytest.mark.parametrize("shape", [(1, 1), (7, 300), (513, 257), (64, 64, 3), (301, 999, 3)])
def test_png_backends_decode_to_the_same_pixels(shape, monkeypatch):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    a[: shape[0] // 2] //= 16  # flat and noisy parts: both kinds of row
    assert _deflate.backend() == "isal"  # the test extra installs it: the fast path is what runs here
    fast = images.encode_png(a)
    monkeypatch.setenv("POOLCLI_DEFLATE", "zlib")
    assert _deflate.backend() == "zlib"
    plain = images.encode_png(a)
    assert fast != plain  # two encoders really ran
    np.testing.assert_array_equal(_decode(fast), a)
    np.testing.assert_array_equal(_decode(plain), a)
    # a standard zlib stream either way: the IDAT payload inflates with the standard library
    for data in (fast, plain):
        idat, pos = b"", 8
        while pos < len(data):
            n = int.from_bytes(data[pos : pos + 4], "big")
            if data[pos + 4 : pos + 8] == b"IDAT":
                idat += data[pos + 8 : pos + 8 + n]
            pos += 12 + n
        raw = zlib.decompress(idat)
        assert len(raw) == shape[0] * (1 + int(np.prod(shape[1:])))


def test_png_backend_without_isal(monkeypatch):
    monkeypatch.setattr(_deflate, "_isal", None)
    assert _deflate.backend() == "zlib"
    a = np.arange(600, dtype=np.uint8).reshape(20, 30)
    np.testing.assert_array_equal(_decode(images.encode_png(a)), a)


def _brute(plane: np.ndarray, f: int, how: str) -> np.ndarray:
    h, w = plane.shape
    out = np.empty((-(-h // f), -(-w // f)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = plane[i * f : (i + 1) * f, j * f : (j + 1) * f].astype(np.float64).ravel()
            if how == "mean":
                if np.isnan(block).any() or (np.isinf(block).any() and np.ptp(block[np.isinf(block)]) > 0):
                    out[i, j] = np.nan
                elif np.isinf(block).any():
                    out[i, j] = block[np.isinf(block)][0]
                else:
                    out[i, j] = math.fsum(block) / block.size
            else:
                if np.isnan(block).any():
                    out[i, j] = np.nan
                else:
                    mx, mn = block.max(), block.min()
                    out[i, j] = mx if mx >= -mn else mn
    return out


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), f=st.integers(1, 45), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]), specials=st.booleans(), how=st.sampled_from(["mean", "absmax"]))
def test_reduce_map_equals_brute_force(h, w, f, seed, dtype, specials, how):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((h, w)) * 10.0 ** rng.integers(-3, 4, (h, w))).astype(dtype)
    if specials:
        a[rng.random((h, w)) < 0.15] = rng.choice([np.nan, np.inf, -np.inf])
    got = images.reduce_map(a, f, how)
    want = _brute(a, f, how) if f > 1 else a.astype(np.float64)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)  # NaN where NaN, infinities equal


def test_reduce_map_in_bands_is_the_whole():
    """A map taller than one band of rows (bands are reduced one after another), not a multiple of f."""
    rng = np.random.default_rng(3)
    a = rng.random((601, 4096), dtype=np.float32)
    for f, how in [(7, "absmax"), (64, "mean"), (50, "mean")]:
        assert images._band_rows(a.shape[1], f) < a.shape[0]
        np.testing.assert_allclose(images.reduce_map(a, f, how), _brute(a, f, how), rtol=1e-12, atol=0)


@pytest.mark.parametrize("small", [False, True])
@pytest.mark.parametrize("text", ["2: max", "1x705x705", "-0.0613 .. 1.42e+03", "zoom R sobel-x", "Ag|jy_",
                                  "x=168 y=200 64x64", "(+12 more)", "per-map: every tile on its own scale", "é ü"])
def test_cached_text_is_what_imagedraw_draws(text, small):
    """Text blended from the cached mask onto the NumPy canvas: ImageDraw's pixels, also over colour (and on a
    gray montage's palette canvas, each pixel's gray within one level of them)."""
    from PIL import ImageDraw

    rgb, gray = images._Painter(images._Ink(rgb=True)), images._Painter(images._Ink(rgb=False))
    font = images._font(images._SMALL_SIZE) if small else images._font()
    white = (255, 255, 255)
    for fill, background in [(images._TEXT, white), (images._MUTED, white), ((230, 40, 40), (9, 90, 200))]:
        want = Image.new("RGB", (420, 40), background)
        ImageDraw.Draw(want).text((5, 7), text, fill=fill, font=font)
        got = np.empty((40, 420, 3), dtype=np.uint8)
        got[...] = background
        rgb.put(got, (5, 7), text, small, fill)
        np.testing.assert_array_equal(got, np.asarray(want))
        if background == white and len(set(fill)) == 1:
            canvas = np.full((40, 420), gray.background, dtype=np.uint8)
            gray.put(canvas, (5, 7), text, small, fill)
            shown = images._gray_palette().take(canvas, axis=0).astype(int)
            assert np.abs(shown - np.asarray(want, dtype=int)).max() <= 1
        # clipped at the edges as Pillow clips
        for xy in [(-9, -5), (400, 30), (-3, 35)]:
            want = Image.new("RGB", (420, 40), background)
            ImageDraw.Draw(want).text(xy, text, fill=fill, font=font)
            got[...] = background
            rgb.put(got, xy, text, small, fill)
            np.testing.assert_array_equal(got, np.asarray(want), err_msg=str(xy))
    # over the background where a tile already lies under part of the text: blended, not the cached patch
    want = Image.new("RGB", (420, 40), white)
    ImageDraw.Draw(want).rectangle((8, 0, 30, 39), fill=(40, 160, 90))
    ImageDraw.Draw(want).text((5, 7), text, fill=images._TEXT, font=font)
    got = np.full((40, 420, 3), 255, dtype=np.uint8)
    got[:, 8:31] = (40, 160, 90)
    rgb.put(got, (5, 7), text, small, images._TEXT)
    np.testing.assert_array_equal(got, np.asarray(want))
    assert rgb.width(text, small) == ImageDraw.Draw(want).textbbox((0, 0), text, font=font)[2] \
        - ImageDraw.Draw(want).textbbox((0, 0), text, font=font)[0]


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), k=st.integers(1, 4), s=st.integers(1, 4), p=st.integers(0, 2),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       kind=st.sampled_from(["normal", "positive", "negative", "zero", "specials", "huge"]))
def test_unpool_png_levels_from_the_kept_values_equal_the_dense_map(h, w, k, s, p, seed, dtype, kind):
    """The unpool PNG's gray levels come from the kept values alone (no dense map): the dense map's levels."""
    from poolcli.pooling.torch_ops import UnpoolView, max_pool2d_with_indices

    if p > k // 2 or h + 2 * p < k or w + 2 * p < k:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, h, w)) * (1e300 if kind == "huge" else 1.0)
    x = {"positive": np.abs(x), "negative": -np.abs(x), "zero": 0 * x}.get(kind, x).astype(dtype)
    if kind == "specials":
        x[rng.random(x.shape) < 0.2] = rng.choice([np.nan, np.inf, -np.inf])
    out, idx = max_pool2d_with_indices(x, k, s, p, int32=True)
    view = UnpoolView(out, idx, k, s, p, 1, (h, w))
    for c in range(2):
        np.testing.assert_array_equal(images.to_uint8(view[c]), images.to_uint8(np.asarray(view[c])))


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 30), w=st.integers(1, 30), k=st.integers(1, 4), s=st.integers(1, 4), p=st.integers(0, 2),
       d=st.integers(1, 3), ceil=st.booleans(), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["normal", "ties", "neginf", "posinf"]))
def test_max_with_indices_branch_free_equals_tap_by_tap(h, w, k, s, p, d, ceil, seed, kind):
    """Without NaN or -0.0 the whole-array path gives the tap-by-tap rule's values and indices bit for bit."""
    from poolcli.pooling import torch_ops

    if p > k // 2 or (k - 1) * d + 1 > min(h, w) + 2 * p:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, h, w)).astype(np.float32)
    if kind == "ties":
        x = rng.integers(0, 3, (2, h, w)).astype(np.float32)
    elif kind == "neginf":
        x[rng.random(x.shape) < 0.8] = -np.inf
    elif kind == "posinf":
        x[rng.random(x.shape) < 0.3] = np.inf
    fast = torch_ops.max_pool2d_with_indices(x, k, s, p, d, ceil)
    orig = torch_ops._negative_zero
    try:
        torch_ops._negative_zero = lambda a: True  # the tap-by-tap path
        slow = torch_ops.max_pool2d_with_indices(x, k, s, p, d, ceil)
    finally:
        torch_ops._negative_zero = orig
    np.testing.assert_array_equal(fast[0].view(np.uint32), slow[0].view(np.uint32))
    np.testing.assert_array_equal(fast[1], slow[1])


def test_negative_zero_detection():
    from poolcli.pooling.torch_ops import _negative_zero

    assert not _negative_zero(np.array([0.0, 1.0, -2.0]))
    assert _negative_zero(np.array([1.0, -0.0]))
    assert not _negative_zero(np.array([1.0, 2.0], dtype=np.float32))


def test_outline_and_place_are_imagedraws():
    from PIL import ImageDraw

    rng = np.random.default_rng(5)
    tile = rng.integers(0, 256, (7, 9), dtype=np.uint8)
    for x0, y0, x1, y1 in [(2, 3, 12, 9), (-2, -1, 5, 4), (15, 10, 30, 25), (0, 0, 2, 2)]:  # a tile frame is >= 3x3
        want = Image.new("RGB", (20, 16), (255, 255, 255))
        ImageDraw.Draw(want).rectangle((x0, y0, x1, y1), outline=images._FRAME)
        want.paste(Image.fromarray(tile), (x0 + 1, y0 + 1))
        got = np.full((16, 20, 3), 255, dtype=np.uint8)
        images._outline(got, x0, y0, x1, y1, images._FRAME)
        images._place(got, x0 + 1, y0 + 1, tile)
        np.testing.assert_array_equal(got, np.asarray(want), err_msg=str((x0, y0, x1, y1)))


@settings(max_examples=400, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), k=st.integers(1, 3), extra=st.integers(0, 2), p=st.integers(0, 1),
       f=st.integers(2, 9), seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       kind=st.sampled_from(["normal", "positive", "negative", "zero", "specials"]), ceil=st.booleans())
def test_sparse_montage_reductions_equal_the_dense_map(h, w, k, extra, p, f, seed, dtype, kind, ceil):
    """The montage's block absmax and value range of an unpool map (windows that do not overlap) come
    from the kept values alone: what the dense map gives (also where the windows tile the map and the
    reduction is a multiple of the stride: a block reduction of the pooled values)."""
    from poolcli.pooling.torch_ops import UnpoolView, max_pool2d_with_indices

    s = k + extra  # stride >= size: each position kept at most once
    if p > k // 2 or h + 2 * p < k or w + 2 * p < k:
        return
    if extra == 0 and p == 0 and k > 1 and f % k:
        f = k * max(1, f // k)  # often a multiple of the stride: the tiled path
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, h, w))
    x = {"positive": np.abs(x), "negative": -np.abs(x), "zero": 0 * x}.get(kind, x).astype(dtype)
    if kind == "specials":
        x[rng.random(x.shape) < 0.2] = rng.choice([np.nan, np.inf, -np.inf])
    out, idx = max_pool2d_with_indices(x, k, s, p, 1, ceil, int32=True)
    plane = UnpoolView(out, idx, k, s, p, 1, (h, w))[0]
    assert plane.distinct
    dense = np.asarray(plane)
    np.testing.assert_array_equal(images.reduce_map(plane, f, "absmax"), images.reduce_map(dense, f, "absmax"))
    assert images.finite_range(plane) == images.finite_range(dense)


def test_overlapping_windows_are_not_distinct():
    from poolcli.pooling.torch_ops import UnpoolView, max_pool2d_with_indices

    x = np.random.default_rng(0).random((1, 9, 9))
    out, idx = max_pool2d_with_indices(x, 3, 2, 1)
    assert not UnpoolView(out, idx, 3, 2, 1, 1, (9, 9)).distinct
    out, idx = max_pool2d_with_indices(x, 2, 2, 0, 2)  # dilation 2: the window spans 3 pixels
    assert not UnpoolView(out, idx, 2, 2, 0, 2, (9, 9)).distinct


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 24), w=st.integers(1, 24), c=st.integers(1, 3), k=st.integers(1, 4), s=st.integers(1, 4),
       p=st.integers(0, 2), ceil=st.booleans(), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["normal", "ties", "specials"]))
def test_max_stage_maps_from_the_pooling_with_indices(h, w, c, k, s, p, ceil, seed, kind):
    """`poolcli run` takes a plain max stage's maps from the pooling with indices when it writes the unpool
    map (pooled once, not twice): they are the stage's own maps bit for bit (NaN, -0.0, ties, -inf windows)."""
    from poolcli.jobs.run import unpool_geometry, unpool_view
    from poolcli.stack import parse_stack
    from poolcli.stack.apply import apply_stage

    if p > k // 2 or h + 2 * p < k or w + 2 * p < k:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    if kind == "ties":
        x = np.round(x).astype(np.float32) * np.float32(0.0 if seed % 3 == 0 else 1.0)
        x[rng.random(x.shape) < 0.3] = np.float32(-0.0)
    elif kind == "specials":
        x[rng.random(x.shape) < 0.25] = rng.choice(np.array([np.nan, np.inf, -np.inf, -0.0], np.float32))
    stage = parse_stack(f"max({k}, stride={s}, padding={p}, ceil_mode={'true' if ceil else 'false'})").stages[0]
    with np.errstate(all="ignore"):
        want = np.ascontiguousarray(apply_stage(x, stage), dtype=np.float32)
        got = unpool_view(x, unpool_geometry(stage)).values
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_maps_get_the_gray_levels_of_small_ones(dtype):
    """A map above 4M pixels is scaled in bands of rows with the arithmetic of a small map (its own dtype,
    one scale, rounded once: the levels do not depend on the map's size); a NaN or +inf in a later band
    is still seen (NaN black, +inf white, the rest on the finite range)."""
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((2101, 2100)) * 3 + 1).astype(dtype)
    assert a.size > (1 << 22) and images._band_rows(a.shape[1]) < a.shape[0]
    lo, hi = a.min(), a.max()
    want = np.clip(np.rint((a - lo) * (dtype(255) / (hi - lo))), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(images.to_uint8(a), want)
    np.testing.assert_array_equal(images.to_uint8(a[:1000]), np.clip(np.rint(
        (a[:1000] - a[:1000].min()) * (dtype(255) / (a[:1000].max() - a[:1000].min()))), 0, 255).astype(np.uint8))
    b = a.copy()
    b[2000, 5], b[1900, 9] = np.nan, np.inf
    got = images.to_uint8(b)
    assert got[2000, 5] == 0 and got[1900, 9] == 255
    finite = np.isfinite(b)
    assert int(np.abs(got[finite].astype(int) - want[finite]).max()) <= 1  # the float64 path: within a level
    assert images.to_uint8(np.full((2101, 2100), 3.5, dtype)).max() == 0


@settings(max_examples=300, deadline=None)
@given(full=st.integers(1, 5000), data=st.data())
def test_zoom_samples_without_a_sort_equal_unique(full, data):
    """The zoom tile's map rows / columns and their display positions: what ``np.unique(..., return_inverse=True)``
    of the sampled indices gives (they never decrease, so no sort is needed)."""
    size = data.draw(st.integers(1, full))
    start = data.draw(st.integers(0, full - 1))
    length = data.draw(st.integers(1, full - start))
    n = data.draw(st.integers(1, 1200))
    idx = images._sample(start, length, n, full, size)
    want = np.unique(idx, return_inverse=True)
    got = images._distinct(idx)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1].ravel())


def _blur_planes_whole(a, stride, m, bp):
    """The BlurPool blur as it was computed on whole arrays (float64 copy of the padded input, a temporary
    per tap): the reference for the banded one, values and memory layout."""
    from poolcli._bands import pad
    from poolcli.pooling import antialias as A

    _, h, w = a.shape
    sh, sw = stride
    before, after = bp.amounts(m, stride)
    hp, wp = A._check_blur_fits(h, w, m, before, after, bp)
    xp = pad(a, before, after, A._PAD_MODE[bp.mode]).astype(np.float64, copy=False)
    oh, ow = (hp - m) // sh + 1, (wp - m) // sw + 1
    acc = None
    for k, t in enumerate(A._taps(m)):
        term = t * xp[:, k : k + (oh - 1) * sh + 1 : sh, :]
        acc = term if acc is None else np.add(acc, term, out=acc)
    out = None
    for k, t in enumerate(A._taps(m)):
        term = t * acc[:, :, k : k + (ow - 1) * sw + 1 : sw]
        out = term if out is None else np.add(out, term, out=out)
    return out.astype(a.dtype, copy=False)


@settings(max_examples=300, deadline=None)
@given(p=st.integers(1, 3), h=st.integers(2, 70), w=st.integers(2, 70), m=st.integers(2, 7), sh=st.integers(1, 3),
       sw=st.integers(1, 3), mode=st.sampled_from(["reflect", "replicate", "zero", "circular"]),
       sizes=st.sampled_from(["split", "timm"]), off=st.integers(0, 1), f64=st.booleans(),
       seed=st.integers(0, 2**32 - 1), band=st.sampled_from([None, 512]))
def test_banded_blur_equals_the_whole_array_blur(p, h, w, m, sh, sw, mode, sizes, off, f64, seed, band):
    """BlurPool's blur in bands of rows: the same bits, in the same memory order (float64 sums over the maps
    downstream follow it), as the whole-array computation, also with many bands."""
    from poolcli import _bands
    from poolcli.pooling import antialias as A

    x = np.random.default_rng(seed).standard_normal((p, h, w)).astype(np.float64 if f64 else np.float32)
    bp = A._BlurPad(mode, sizes, off)
    try:
        want = _blur_planes_whole(x, (sh, sw), m, bp)
    except ValueError:
        return
    saved = _bands.BAND_BYTES
    _bands.BAND_BYTES = band or saved  # 512 bytes: a band of a row or two
    try:
        got = A._blur_planes(x, (sh, sw), m, bp)
    finally:
        _bands.BAND_BYTES = saved
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert got.ravel(order="K").tobytes() == want.ravel(order="K").tobytes()


@settings(max_examples=300, deadline=None)
@given(p=st.integers(1, 3), h=st.integers(1, 150), w=st.integers(1, 150), top=st.integers(0, 200),
       left=st.integers(0, 200), bottom=st.integers(0, 20), right=st.integers(0, 20), fortran=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_wrap_pad_in_tiles_is_the_index_gather(p, h, w, top, left, bottom, right, fortran, seed):
    """A circular pad copied by runs and tiles: the values and memory layout of the two index gathers it
    replaced (any amount, also more than a side)."""
    from poolcli._bands import index_map, pad

    if (top, left, bottom, right) == (0, 0, 0, 0):
        return
    x = np.random.default_rng(seed).standard_normal((p, h, w)).astype(np.float32)
    if fortran:
        x = np.asfortranarray(x)
    want = x[:, index_map(np.arange(-top, h + bottom), h, "wrap")][:, :, index_map(np.arange(-left, w + right), w, "wrap")]
    got = pad(x, (top, left), (bottom, right), "wrap")
    np.testing.assert_array_equal(got, want)
    assert got.ravel(order="K").tobytes() == want.ravel(order="K").tobytes()


def test_text_masks_are_imagedraws_for_any_caption():
    """The montage's text mask (FreeType's getmask2, as ImageDraw.text draws through it) placed at its offset is
    ImageDraw.text's pixels, for 300 random captions of printable characters in both sizes."""
    import random
    import string

    from PIL import ImageDraw

    rng = random.Random(7)
    texts = ["".join(rng.choice(string.printable[:94] + " é") for _ in range(rng.randint(1, 24))) for _ in range(300)]
    for small in (False, True):
        font = images._font(images._SMALL_SIZE) if small else images._font()
        for text in texts:
            mask, left, top = images._text_mask.__wrapped__(text, small)
            got = np.zeros((60, 600), dtype=np.uint8)
            got[20 + top : 20 + top + mask.shape[0], 20 + left : 20 + left + mask.shape[1]] = mask
            want = Image.new("L", (600, 60), 0)
            ImageDraw.Draw(want).text((20, 20), text, fill=255, font=font)
            np.testing.assert_array_equal(got, np.asarray(want), err_msg=repr(text))
