"""Every execution path of the pooling cores gives the same bits: one band or many, threads or not."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import poolcli._bands as B
import poolcli.pooling as P
from reference import ref_pool2d

RNG = np.random.default_rng(11)


@pytest.fixture(params=[(1 << 30, 1), (64, 1), (64, 2), (700, 2)], ids=["one-band", "tiny-bands", "tiny-bands-2-threads", "bands-2-threads"])
def path(request, monkeypatch):
    band, threads = request.param
    monkeypatch.setattr(B, "BAND_BYTES", band)
    P.set_num_threads(threads)
    yield
    P.set_num_threads(None)


CASES = [
    dict(size=2),
    dict(size=3, stride=2, padding=1),
    dict(size=3, stride=1, padding=1),
    dict(size=5, stride=1),
    dict(size=2, stride=2, dilation=2),
    dict(size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True),
    dict(size=3, stride=2, padding="same"),
    dict(size=2, stride=2, padding=(0, 1, 1, 0), ceil_mode=True),
]


@pytest.mark.parametrize("mode", ["max", "min", "avg"])
@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("shape", [(1, 37, 41), (3, 64, 33), (2, 2, 9, 70)])
def test_paths_equal_reference_bit_for_bit(path, mode, kw, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    got = P.pool2d(x, mode, **kw)
    want = ref_pool2d(x, mode, **kw)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("circular", [False, True])
def test_large_threaded_equals_single_band(monkeypatch, circular):
    x = RNG.standard_normal((2, 301, 257)).astype(np.float32)
    kw = dict(size=3, stride=2, padding=1, padding_mode="circular" if circular else "default")
    monkeypatch.setattr(B, "BAND_BYTES", 1 << 30)
    P.set_num_threads(1)
    one = {m: P.pool2d(x, m, **kw) for m in ("max", "avg", "min")}
    monkeypatch.setattr(B, "BAND_BYTES", 4096)
    P.set_num_threads(2)
    try:
        for m, want in one.items():
            np.testing.assert_array_equal(P.pool2d(x, m, **kw), want)
    finally:
        P.set_num_threads(None)


def test_sign_of_a_zero_maximum_follows_pytorchs_row_major_order(path):
    # Window [[-1, +0], [-0, -1]]: PyTorch keeps the first maximum in row-major
    # order, +0.0; a columns-only or rows-only shortcut could return -0.0.
    x = np.array([[-1.0, 0.0], [-0.0, -1.0]], dtype=np.float32)
    big = np.tile(x, (40, 40))
    for arr in (x, big):
        out = P.pool2d(arr, "max", 2)
        assert not np.signbit(out).any()
    y = np.array([[-1.0, -0.0], [0.0, -1.0]], dtype=np.float32)
    assert np.signbit(P.pool2d(y, "max", 2)).all()


def test_threads_setting_validates():
    with pytest.raises(ValueError, match="threads"):
        P.set_num_threads(0)
    P.set_num_threads(3)
    assert P.get_num_threads() == 3
    P.set_num_threads(None)
    assert P.get_num_threads() >= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_survive_every_path(path, dtype):
    x = RNG.standard_normal((1, 33, 35)).astype(dtype)
    for (i, j), v in zip(itertools.product([0, 5, 32], [0, 7, 34]), [np.nan, np.inf, -np.inf] * 3):
        x[0, i, j] = v
    for mode in ("max", "min", "avg"):
        np.testing.assert_array_equal(P.pool2d(x, mode, 3, 2, 1), ref_pool2d(x, mode, 3, 2, 1))


def test_adaptive_max_sign_of_zero_is_the_first_in_row_major_order():
    x = np.array([[-1.0, 0.0, -0.0], [-0.0, -1.0, 0.0]], dtype=np.float32)
    out = P.adaptive_pool2d(x, "max", 1)
    assert out[0, 0] == 0 and not np.signbit(out[0, 0])
    y = np.array([[-1.0, -0.0, 0.0], [0.0, -1.0, 0.0]], dtype=np.float32)
    assert np.signbit(P.adaptive_pool2d(y, "max", 1)[0, 0])
    assert np.signbit(P.adaptive_pool2d(y, "max", (1, 2))[0, 0])
