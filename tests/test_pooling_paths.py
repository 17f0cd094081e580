"""Every execution path of the pooling cores gives the same bits: one band or many, threads or not."""

from __future__ import annotations

import inspect
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


# ----------------------------------------------------------------------------- the mode table

from poolcli.pooling import MODES, pool2d  # noqa: E402
from poolcli.pooling.antialias import aps_pool2d  # noqa: E402

MODE_ORDER = ("max", "avg", "min", "lp", "blurpool", "blur", "aps", "median", "quantile", "mixed", "softpool",
              "stochastic", "gem", "fractional", "learned")
# Arguments per mode, by pool2d's names: the mode's function takes exactly these.
MODE_ARGS = {
    "max": [dict(size=3, stride=2, padding=1, ceil_mode=True), dict(size=2, dilation=2)],
    "avg": [dict(size=3, stride=2, padding=1, count_include_pad=False), dict(size=3, divisor_override=5)],
    "min": [dict(size=2, stride=1, padding=(0, 1, 1, 0))],
    "lp": [dict(size=2, p=2.0), dict(size=3, stride=2, padding=1, p=3.0, ceil_mode=True)],
    "blurpool": [dict(size=2), dict(size=3, stride=2, padding=1, dilation=1, blur_size=5)],
    "blur": [dict(size=2), dict(size=2, stride=3, blur_size=4)],
    "aps": [dict(size=2), dict(size=3, stride=2, blur_size=3)],
    "median": [dict(size=3, stride=2, padding=1)],
    "quantile": [dict(size=2, q=0.25), dict(size=3, stride=1, padding="same", q=0.9)],
    "mixed": [dict(size=2, alpha=0.3), dict(size=3, stride=2, padding=1, count_include_pad=False)],
    "softpool": [dict(size=2), dict(size=3, stride=2, padding=1, ceil_mode=True)],
    "stochastic": [dict(size=2), dict(size=2, train=True, seed=4)],
    "gem": [dict(size=2), dict(size=3, stride=2, padding=1, p=2.0)],
    "fractional": [dict(size=2, ratio=0.7), dict(output_size=(5, 6), seed=3, overlapping=True)],
    "learned": [dict(weights=np.arange(4.0).reshape(2, 2) / 6), dict(weights=np.ones((3, 3)) / 9, stride=2,
                                                                   padding=1)],
}


def test_mode_table_order_and_groups():
    assert tuple(MODES) == MODE_ORDER
    groups = {m: MODES[m].group for m in MODES}
    assert {m for m, g in groups.items() if g == "antialiased"} == {"blurpool", "blur", "aps"}
    assert groups["fractional"] == "fractional" and groups["learned"] == "learned"
    assert all(MODES[m].summary and "\n" not in MODES[m].summary for m in MODES)


@pytest.mark.parametrize("circular", [False, True], ids=["default", "circular"])
@pytest.mark.parametrize("mode", MODE_ORDER)
def test_pool2d_equals_the_mode_function(mode, circular):
    x = np.abs(RNG.standard_normal((2, 3, 13, 11))).astype(np.float32)
    fn = MODES[mode].function
    takes_padding_mode = "padding_mode" in inspect.signature(fn).parameters
    if circular and not takes_padding_mode:
        pytest.skip(f"{mode} has no padding_mode")
    for kw in MODE_ARGS[mode]:
        kw = dict(kw, padding_mode="circular") if circular else dict(kw)
        want = fn(x, **kw)
        got = pool2d(x, mode, **kw)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        assert got.tobytes() == want.tobytes()  # also the sign of zeros


def test_pool2d_aps_default_blur_is_aps_pool2ds():
    x = RNG.standard_normal((3, 12, 10))
    for circular in (False, True):
        pm = "circular" if circular else "default"
        want = aps_pool2d(x, 2, 2, circular=circular)
        np.testing.assert_array_equal(pool2d(x, "aps", 2, padding_mode=pm), want)
        np.testing.assert_array_equal(MODES["aps"].function(x, 2, padding_mode=pm), want)
    assert inspect.signature(MODES["aps"].function).parameters["blur_size"].default == 1
    assert inspect.signature(aps_pool2d).parameters["blur_size"].default == 1


def test_pool2d_required_values_name_the_parameter():
    x = np.zeros((4, 4))
    for mode, name in (("lp", "p"), ("quantile", "q"), ("learned", "weights")):
        with pytest.raises(ValueError, match=rf"^{name} \(.*\) is required for mode='{mode}', got None"):
            pool2d(x, mode, 2)


# ----------------------------------------------------------------------------- filters on the same engine


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "constant", "wrap"])
def test_filters_bands_and_threads_give_the_same_bits(monkeypatch, mode):
    from poolcli.filters import apply_filter, correlate2d, get_filter

    x = RNG.standard_normal((3, 161, 150)).astype(np.float32)  # >= 2**16 elements: threads are used
    k = RNG.standard_normal((4, 3))
    calls = [
        lambda: correlate2d(x, k, mode=mode, cval=0.5),
        lambda: correlate2d(x, k, mode=mode, stride=(2, 3), dilation=(1, 2)),
        lambda: apply_filter(x, get_filter("sobel"), mode=mode),
        lambda: apply_filter(x, get_filter("gaussian", sigma=1.5), mode=mode, stride=2),
    ]
    monkeypatch.setattr(B, "BAND_BYTES", 1 << 30)
    P.set_num_threads(1)
    try:
        want = [f() for f in calls]
        for band, threads in ((64, 1), (64, 2), (700, 2), (1 << 30, 2)):
            monkeypatch.setattr(B, "BAND_BYTES", band)
            P.set_num_threads(threads)
            for f, w in zip(calls, want):
                got = f()
                assert got.tobytes() == w.tobytes()
    finally:
        P.set_num_threads(None)
