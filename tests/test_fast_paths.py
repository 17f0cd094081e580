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
