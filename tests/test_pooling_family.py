"""poolcli.pooling_family: brute-force references, properties, and PyTorch golden fixtures.

* median / quantile / mixed / SoftPool / stochastic (inference) / GeM / learned
  against naive references written here (explicit loops over output pixels and
  window taps, geometry from ``tests/reference.py``, independent of poolcli),
  across sizes, strides, paddings ('same', 'valid', per-side), dilation and
  ceil mode;
* properties with hypothesis (modest example counts);
* ``tests/data/golden_family.npz`` (made by ``tests/data/make_family_golden.py``
  with the torch oracle): fractional_max_pool2d with given samples,
  max_pool2d(return_indices=True), max_unpool2d and depthwise conv2d;
* TensorFlow-rule fractional sequences: their defining properties.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reference import ref_output_shape, ref_pool2d, resolve_padding

from poolcli.pooling import pool2d, pool_geometry
from poolcli.pooling_family import (
    FAMILY_MODES,
    family_pool2d,
    fractional_max_pool2d,
    fractional_sequence,
    gem_pool2d,
    learned_pool2d,
    load_weights,
    max_pool2d_with_indices,
    median_pool2d,
    mixed_pool2d,
    quantile_pool2d,
    softpool2d,
    stochastic_pool2d,
    unpool2d,
    window_mask,
    window_view,
)

# ============================================================================ brute force


def _geometry(H, W, size, stride, padding, dilation, ceil_mode):
    kh, kw = (size, size) if isinstance(size, int) else size
    sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    t, b, l, r, _ = resolve_padding(padding, H, W, kh, kw, sh, sw, dh, dw)
    oh, ow = ref_output_shape(H, W, (kh, kw), (sh, sw), padding, (dh, dw), ceil_mode)
    return kh, kw, sh, sw, dh, dw, t, l, oh, ow


def ref_windows(x, size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """For every plane and output pixel, the list of the window's input taps (row-major)."""
    x = np.asarray(x)
    planes = x.reshape((-1,) + x.shape[-2:])
    H, W = planes.shape[1:]
    kh, kw, sh, sw, dh, dw, t, l, oh, ow = _geometry(H, W, size, stride, padding, dilation, ceil_mode)
    wins = []
    for P in planes:
        rows = []
        for i in range(oh):
            row = []
            for j in range(ow):
                taps = []
                for a in range(kh):
                    for b in range(kw):
                        hh, ww = i * sh - t + a * dh, j * sw - l + b * dw
                        if 0 <= hh < H and 0 <= ww < W:
                            taps.append(P[hh, ww])
                row.append(taps)
            rows.append(row)
        wins.append(rows)
    return wins, x.shape[:-2] + (oh, ow)


def ref_reduce(x, fn, dtype, **geo):
    wins, shape = ref_windows(x, **geo)
    out = np.array([[[fn(np.array(t, dtype=dtype)) for t in row] for row in rows] for rows in wins], dtype=dtype)
    return out.reshape(shape)


def ref_quantile(t, q):
    if t.size == 0:
        return np.nan
    return np.quantile(t, q)  # NaN in -> NaN out


def ref_softpool(t):
    t = t.astype(np.float64)
    if t.size == 0 or np.isnan(t).any():
        return np.nan
    m = t.max()
    w = np.exp(t - m)
    return float((w * t).sum() / w.sum())


def ref_stochastic(t):
    t = t.astype(np.float64)
    s = t.sum()
    return 0.0 if s == 0 else float((t * t).sum() / s)


def ref_gem(t, p, eps=1e-6):
    t = np.maximum(t.astype(np.float64), eps)
    if t.size == 0:
        return np.nan
    return float(np.mean(t**p) ** (1.0 / p))


def ref_learned(x, w, stride=None, padding=0):
    """Depthwise cross-correlation with zero padding, loops over every output and tap."""
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:-2]
    planes = x.reshape((-1,) + x.shape[-2:])
    C = lead[-1] if lead else 1
    w = np.asarray(w, dtype=np.float64)
    w3 = np.broadcast_to(w, (C,) + w.shape[-2:])
    kh, kw = w3.shape[-2:]
    H, W = planes.shape[1:]
    sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    t, b, l, r, _ = resolve_padding(padding, H, W, kh, kw, sh, sw, 1, 1)
    oh, ow = ref_output_shape(H, W, (kh, kw), (sh, sw), padding, 1, False)
    out = np.zeros((planes.shape[0], oh, ow))
    for p in range(planes.shape[0]):
        for i in range(oh):
            for j in range(ow):
                s = 0.0
                for a in range(kh):
                    for bb in range(kw):
                        hh, ww = i * sh - t + a, j * sw - l + bb
                        if 0 <= hh < H and 0 <= ww < W:
                            s += w3[p % C, a, bb] * planes[p, hh, ww]
                out[p, i, j] = s
    return out.reshape(lead + (oh, ow))


# ============================================================================ configurations


def _configs(n, seed):
    """Deterministic valid (H, W, geometry) configurations covering every padding form."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        H, W = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = None if rng.random() < 0.2 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        d = (1, 1) if rng.random() < 0.6 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        form = len(out) % 5
        if form == 0:
            pad = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        elif form == 1:
            pad = "same"
        elif form == 2:
            pad = "valid"
        elif form == 3:
            ke = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
            pad = tuple(int(rng.integers(0, ke[i // 2])) for i in range(4))
        else:
            pad = int(rng.integers(0, min(k) // 2 + 1))
        cm = bool(rng.random() < 0.4)
        geo = dict(size=k, stride=s, padding=pad, dilation=d, ceil_mode=cm)
        try:
            ref_output_shape(H, W, k, s, pad, d, cm)
            pool_geometry((H, W), **geo)
        except ValueError:
            continue
        out.append(((H, W), geo))
    return out


CONFIGS = _configs(36, 7)
CIDS = [
    f"{hw[0]}x{hw[1]}-k{g['size']}-s{g['stride']}-p{g['padding']}-d{g['dilation']}-{'ceil' if g['ceil_mode'] else 'floor'}"
    for hw, g in CONFIGS
]
DTYPES = (np.float32, np.float64)


def _x(hw, dtype, seed, kind="normal"):
    rng = np.random.default_rng(seed)
    shape = ((2, 3) if seed % 2 else (3,)) + hw
    x = rng.standard_normal(shape)
    if kind == "nonneg":
        x = np.abs(x) * (rng.random(shape) < 0.8)  # relu-like: some exact zeros
    elif kind == "ties":
        x = rng.integers(0, 3, size=shape).astype(float)
    elif kind == "nan":
        x[rng.random(shape) < 0.1] = np.nan
    return x.astype(dtype)


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


# ============================================================================ brute-force comparisons


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CIDS)
def test_quantile_and_median_match_brute_force(cfg, dtype):
    """Bit for bit: np.quantile of each window's input taps (padded taps never count)."""
    hw, geo = cfg
    for n, (kind, q) in enumerate((("normal", 0.5), ("ties", 0.3), ("nan", 0.9), ("normal", 0.0), ("normal", 1.0))):
        x = _x(hw, dtype, n + 11, kind)
        got = quantile_pool2d(x, **geo, q=q)
        want = ref_reduce(x, lambda t: ref_quantile(t, q), dtype, **geo)
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=f"q={q} kind={kind}")
    np.testing.assert_array_equal(median_pool2d(x, **geo), quantile_pool2d(x, **geo, q=0.5))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CIDS)
def test_mixed_matches_brute_force(cfg, dtype):
    hw, geo = cfg
    x = _x(hw, dtype, 3)
    for alpha, cip in ((0.3, True), (0.75, False)):
        got = mixed_pool2d(x, **geo, count_include_pad=cip, alpha=alpha)
        mx = ref_pool2d(x, "max", **geo)
        av = ref_pool2d(x, "avg", **geo, count_include_pad=cip)
        with np.errstate(invalid="ignore"):
            want = dtype(alpha) * mx + dtype(1 - alpha) * av
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CIDS)
def test_softpool_matches_brute_force(cfg, dtype):
    hw, geo = cfg
    for kind in ("normal", "nan"):
        x = _x(hw, dtype, 5, kind) * dtype(3)
        got = softpool2d(x, **geo)
        want = ref_reduce(x, ref_softpool, np.float64, **geo)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CIDS)
def test_stochastic_inference_matches_brute_force(cfg, dtype):
    hw, geo = cfg
    x = _x(hw, dtype, 6, "nonneg")
    got = stochastic_pool2d(x, **geo)
    want = ref_reduce(x, ref_stochastic, np.float64, **geo)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=CIDS)
def test_gem_matches_brute_force(cfg, dtype):
    hw, geo = cfg
    x = _x(hw, dtype, 8)  # negatives: clamped to eps
    for p in (1.0, 3.0, 0.5, 7.5):
        got = gem_pool2d(x, **geo, p=p)
        want = ref_reduce(x, lambda t: ref_gem(t, p), np.float64, **geo)
        assert got.dtype == dtype
        tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(got, want, err_msg=f"p={p}", **tol)


LEARNED_CFGS = [c for c in CONFIGS if c[1]["dilation"] == (1, 1) and not c[1]["ceil_mode"]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", LEARNED_CFGS, ids=[CIDS[CONFIGS.index(c)] for c in LEARNED_CFGS])
def test_learned_matches_brute_force(cfg, dtype):
    hw, geo = cfg
    x = _x(hw, dtype, 9)
    rng = np.random.default_rng(1)
    C = x.shape[-3]
    for w in (rng.standard_normal(geo["size"]), rng.standard_normal((C,) + geo["size"])):
        got = learned_pool2d(x, w, stride=geo["stride"], padding=geo["padding"])
        want = ref_learned(x, w.astype(dtype), geo["stride"], geo["padding"])
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **_tol(dtype))


def test_learned_output_size_is_pool2ds():
    x = np.random.default_rng(0).standard_normal((2, 9, 7))
    for stride, padding in ((None, 0), (2, 1), (1, "same"), ((2, 1), (1, 0, 0, 2))):
        got = learned_pool2d(x, np.ones((3, 3)), stride, padding)
        assert got.shape == pool2d(x, "max", 3, stride, padding).shape


# ============================================================================ window helpers


def test_window_view_and_mask():
    x = np.arange(30.0).reshape(5, 6)
    g = pool_geometry(x.shape, 3, stride=2, padding=1, dilation=1, ceil_mode=True)
    win = window_view(x, g)
    mask = window_mask(g, x.shape)
    assert win.shape == g.out + (9,) and mask.shape == g.out + (9,)
    wins, _ = ref_windows(x, 3, 2, 1, 1, True)
    for i in range(g.out[0]):
        for j in range(g.out[1]):
            np.testing.assert_array_equal(win[i, j][mask[i, j]], wins[0][i][j])
            assert np.isnan(win[i, j][~mask[i, j]]).all()
    assert window_view(x[None], g, fill=-1.0).shape == (1,) + g.out + (9,)


def test_window_view_non_contiguous():
    x = np.random.default_rng(2).standard_normal((3, 8, 10))
    v = x[:, ::2, ::-1]
    g = pool_geometry(v.shape[1:], 2, 1)
    np.testing.assert_array_equal(window_view(v, g), window_view(np.ascontiguousarray(v), g))


# ============================================================================ properties (hypothesis)

_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def pooled_inputs(draw, nonneg=False, scale=1.0):
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = draw(st.sampled_from(["same", "valid", 0, 1]))
    cm = draw(st.booleans())
    dtype = draw(st.sampled_from(DTYPES))
    geo = dict(size=k, stride=s, padding=pad, ceil_mode=cm)
    try:
        pool_geometry((h, w), **geo)
    except ValueError:
        assume(False)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, h, w)) * scale
    if nonneg:
        x = np.abs(x) * (rng.random(x.shape) < 0.8)
    return x.astype(dtype), geo


@_SETTINGS
@given(pooled_inputs(), st.floats(0, 1))
def test_prop_quantile_between_min_and_max(xg, q):
    x, geo = xg
    lo, hi = pool2d(x, "min", **geo), pool2d(x, "max", **geo)
    med = median_pool2d(x, **geo)
    qq = quantile_pool2d(x, **geo, q=q)
    assert (lo <= med).all() and (med <= hi).all()
    assert (lo <= qq).all() and (qq <= hi).all()
    np.testing.assert_array_equal(quantile_pool2d(x, **geo, q=0.0), lo)
    np.testing.assert_array_equal(quantile_pool2d(x, **geo, q=1), hi)


@_SETTINGS
@given(pooled_inputs(), st.booleans())
def test_prop_mixed_endpoints(xg, cip):
    x, geo = xg
    np.testing.assert_array_equal(mixed_pool2d(x, **geo, alpha=1.0), pool2d(x, "max", **geo))
    np.testing.assert_array_equal(
        mixed_pool2d(x, **geo, count_include_pad=cip, alpha=0), pool2d(x, "avg", **geo, count_include_pad=cip)
    )


def _eps(x):
    return 8 * np.finfo(x.dtype).eps * max(1.0, float(np.abs(x).max()))


@_SETTINGS
@given(pooled_inputs(nonneg=True))
def test_prop_softpool_and_stochastic_between_avg_and_max(xg):
    x, geo = xg
    avg = pool2d(x, "avg", **geo, count_include_pad=False)
    mx = pool2d(x, "max", **geo)
    for out in (softpool2d(x, **geo), stochastic_pool2d(x, **geo)):
        assert (out >= avg - _eps(x)).all() and (out <= mx + _eps(x)).all()


@_SETTINGS
@given(pooled_inputs(scale=1e4))
def test_prop_softpool_huge_inputs_finite(xg):
    x, geo = xg
    out = softpool2d(x, **geo)
    assert np.isfinite(out).all()
    assert (out <= pool2d(x, "max", **geo) + _eps(x)).all()
    big = softpool2d(np.abs(x) + np.float32(1e30) if x.dtype == np.float32 else np.abs(x) + 1e300, **geo)
    assert np.isfinite(big).all()


@_SETTINGS
@given(pooled_inputs(nonneg=True), st.integers(0, 2**32 - 1))
def test_prop_stochastic_train_draws_a_window_value(xg, seed):
    x, geo = xg
    out = stochastic_pool2d(x, **geo, train=True, seed=seed)
    g = pool_geometry(x.shape[-2:], **geo)
    win = window_view(x, g)  # padded taps are NaN: never equal
    positive = np.where(np.isnan(win), 0, win).sum(-1) > 0
    hit = (win == out[..., None]) & (win > 0)
    assert hit.any(-1)[positive].all()
    assert (out[~positive] == 0).all()
    np.testing.assert_array_equal(out, stochastic_pool2d(x, **geo, train=True, seed=seed))


def test_stochastic_train_frequencies():
    """Each tap is drawn with probability a_i / sum(a) (a chi-square-free sanity check)."""
    x = np.tile(np.array([[1.0, 2.0], [3.0, 4.0]]), (1, 1000))  # 1000 identical windows
    out = stochastic_pool2d(x, 2, train=True, seed=123)
    freq = np.array([(out == v).mean() for v in (1, 2, 3, 4)])
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.05)
    assert not np.array_equal(out, stochastic_pool2d(x, 2, train=True, seed=124))
    gen = np.random.default_rng(5)
    assert stochastic_pool2d(x, 2, train=True, seed=gen).shape == out.shape


@_SETTINGS
@given(pooled_inputs())
def test_prop_gem_p1_is_avg_of_clamped_and_large_p_approaches_max(xg):
    x, geo = xg
    clamped = np.maximum(x, x.dtype.type(1e-6))
    avg = pool2d(clamped, "avg", **geo, count_include_pad=False)
    tol = dict(rtol=1e-5, atol=1e-6) if x.dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gem_pool2d(x, **geo, p=1), avg, **tol)
    mx = pool2d(clamped, "max", **geo)
    taps = geo["size"][0] * geo["size"][1]
    big = gem_pool2d(x, **geo, p=200.0)
    assert (big <= mx * (1 + 1e-5)).all()
    assert (big >= mx * (1.0 / taps) ** (1 / 200) * (1 - 1e-5)).all()


# ============================================================================ special values, shapes


def test_nan_propagates_and_padding_never_counts():
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    kw = dict(size=2, stride=1, padding=(0, 1, 0, 1))  # bottom/right pad: last row/col windows partial
    for f in (median_pool2d, softpool2d, gem_pool2d, stochastic_pool2d):
        out = f(x, **kw)
        assert np.isnan(out[0, :2]).all() and not np.isnan(out[1:]).any(), f.__name__
    np.testing.assert_array_equal(median_pool2d(x, **kw)[2], [7.5, 8.5, 9.0])  # only input taps


def test_softpool_infinities():
    x = np.array([[np.inf, 1.0, -np.inf, -np.inf]])
    np.testing.assert_array_equal(softpool2d(x, (1, 2)), [[np.inf, -np.inf]])
    np.testing.assert_array_equal(softpool2d(np.array([[-np.inf, 2.0]]), (1, 2)), [[2.0]])


@pytest.mark.parametrize("mode", FAMILY_MODES)
@pytest.mark.parametrize("shape", [(6, 7), (2, 6, 7), (2, 3, 6, 7)])
def test_shapes_dtypes_and_non_contiguous(mode, shape):
    rng = np.random.default_rng(3)
    kw = dict(q=0.25) if mode == "quantile" else {}
    for dtype, want in ((np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64)):
        x = (np.abs(rng.standard_normal(shape)) * 5).astype(dtype)
        out = family_pool2d(x, mode, 3, 2, 1, ceil_mode=True, **kw)
        assert out.dtype == want
        assert out.shape == pool2d(x, "max", 3, 2, 1, ceil_mode=True).shape
    big = np.abs(rng.standard_normal(shape[:-2] + (12, 14)))
    view = big[..., ::2, ::-2]
    np.testing.assert_array_equal(
        family_pool2d(view, mode, 2, **kw), family_pool2d(np.ascontiguousarray(view), mode, 2, **kw)
    )


def test_family_pool2d_dispatch():
    x = np.abs(np.random.default_rng(4).standard_normal((3, 8, 8)))
    np.testing.assert_array_equal(family_pool2d(x, "median", 2), median_pool2d(x, 2))
    np.testing.assert_array_equal(family_pool2d(x, "quantile", 2, q=0.2), quantile_pool2d(x, 2, q=0.2))
    np.testing.assert_array_equal(family_pool2d(x, "mixed", 2), mixed_pool2d(x, 2, alpha=0.5))
    np.testing.assert_array_equal(family_pool2d(x, "gem", 2), gem_pool2d(x, 2, p=3.0))
    np.testing.assert_array_equal(family_pool2d(x, "Stochastic", 2, train=True, seed=1),
                                  stochastic_pool2d(x, 2, train=True, seed=1))


# ============================================================================ golden (PyTorch)

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden_family.npz")
_Z = np.load(GOLDEN)
CASES = json.loads(str(_Z["cases"]))
META = json.loads(str(_Z["meta"]))
ARR = {k: _Z[k] for k in _Z.files if k not in ("cases", "meta")}


def _kw(case):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in case["kwargs"].items()}


def _cases(op):
    cs = [c for c in CASES if c["op"] == op]
    return pytest.mark.parametrize("case", cs, ids=[c["id"] for c in cs])


def _bit_equal(got, want, msg):
    assert got.dtype == want.dtype and got.shape == want.shape, msg
    np.testing.assert_array_equal(got, want, err_msg=msg)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=f"{msg}: sign of zero")


def test_golden_meta():
    assert META["torch"].startswith("2.")
    assert META["counts"] == {"frac": 40, "maxidx": 64, "unpool": 32, "learned": 22}


@_cases("frac")
def test_golden_fractional(case):
    """fractional_max_pool2d with PyTorch's samples: values and indices bit for bit."""
    i = case["id"]
    x = ARR[f"{i}_x"]
    before = x.copy()
    out, idx = fractional_max_pool2d(x, samples=ARR[f"{i}_s"], return_indices=True, **_kw(case))
    np.testing.assert_array_equal(x, before)
    _bit_equal(out, ARR[f"{i}_y"], case["torch"])
    _bit_equal(idx, ARR[f"{i}_idx"], case["torch"])
    np.testing.assert_array_equal(fractional_max_pool2d(x, samples=ARR[f"{i}_s"], **_kw(case)), out)


@_cases("maxidx")
def test_golden_max_with_indices(case):
    i = case["id"]
    out, idx = max_pool2d_with_indices(ARR[f"{i}_x"], **_kw(case))
    _bit_equal(out, ARR[f"{i}_y"], case["torch"])
    _bit_equal(idx, ARR[f"{i}_idx"], case["torch"])
    np.testing.assert_array_equal(out, pool2d(ARR[f"{i}_x"], "max", **_kw(case)))


@_cases("unpool")
def test_golden_unpool(case):
    i = case["id"]
    got = unpool2d(ARR[f"{i}_pooled"], ARR[f"{i}_idx"], **_kw(case))
    _bit_equal(got, ARR[f"{i}_y"], case["torch"])


@_cases("learned")
def test_golden_learned(case):
    """Depthwise F.conv2d sums in its own order: equal within a few ulps of the sum."""
    i = case["id"]
    x, w, y = ARR[f"{i}_x"], ARR[f"{i}_w"], ARR[f"{i}_y"]
    got = learned_pool2d(x, w, **_kw(case))
    assert got.dtype == y.dtype and got.shape == y.shape
    k = w.shape[-1] * w.shape[-2]
    atol = 4 * k * np.finfo(y.dtype).eps * float(np.abs(x).max()) * float(np.abs(w).max())
    np.testing.assert_allclose(got, y, rtol=0, atol=atol, err_msg=case["torch"])


def test_unpool_inverts_max_with_indices():
    x = np.random.default_rng(9).standard_normal((2, 3, 9, 11)).astype(np.float32)
    out, idx = max_pool2d_with_indices(x, 3, 2, 1)
    up = unpool2d(out, idx, 3, 2, 1, output_size=x.shape)
    assert up.shape == x.shape
    kept = up != 0
    np.testing.assert_array_equal(up[kept], x[kept])
    np.testing.assert_array_equal(pool2d(np.where(kept, up, -np.inf), "max", 3, 2, 1), out)
    # 'same' padding, with the output size given
    out, idx = max_pool2d_with_indices(x, 2, 2, "same")
    assert unpool2d(out, idx, 2, 2, "same", output_size=(9, 11)).shape == x.shape


def test_unpool_duplicates_last_wins():
    vals = np.array([[1.0, 2.0], [3.0, 4.0]])
    idx = np.array([[0, 0], [5, 0]])
    np.testing.assert_array_equal(
        unpool2d(vals, idx, 2), [[4, 0, 0, 0], [0, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    )


def test_max_indices_window_without_input_taps():
    """'same' with a dilated window wider than the input: -inf at index -1."""
    out, idx = max_pool2d_with_indices(np.array([[5.0]]), (1, 2), 1, "same", dilation=3)
    np.testing.assert_array_equal(out, [[-np.inf]])
    np.testing.assert_array_equal(idx, [[-1]])
    with pytest.raises(ValueError, match="found -1"):
        unpool2d(out, idx, (1, 2), 1, 0)


# ============================================================================ fractional, TensorFlow's rule


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data(), st.booleans(), st.integers(0, 2**31))
def test_prop_tf_sequence(n_in, data, pseudo, seed):
    n_out = data.draw(st.integers(1, n_in))
    b = fractional_sequence(n_in, n_out, pseudo_random=pseudo, seed=seed)
    k = n_in // n_out
    assert b.shape == (n_out + 1,) and b[0] == 0 and b[-1] == n_in
    assert set(np.diff(b).tolist()) <= {k, k + 1}
    np.testing.assert_array_equal(b, fractional_sequence(n_in, n_out, pseudo_random=pseudo, seed=seed))


def test_tf_sequences_vary_with_seed():
    seqs = {tuple(fractional_sequence(50, 17, pseudo_random=p, seed=s)) for s in range(20) for p in (True, False)}
    assert len(seqs) > 5


@pytest.mark.parametrize("overlapping", [False, True])
@pytest.mark.parametrize("pseudo", [False, True])
def test_tf_rule_pooling_brute_force(overlapping, pseudo):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 13, 17)).astype(np.float32)
    for ratio, osz in ((0.6, None), (None, (5, 9)), ((0.5, 0.75), None), (1.0, None)):
        kw = dict(output_ratio=ratio) if osz is None else dict(output_size=osz)
        out, idx = fractional_max_pool2d(x, None, **kw, seed=42, overlapping=overlapping,
                                         pseudo_random=pseudo, return_indices=True)
        gen = np.random.default_rng(42)  # rows first, then columns, from one generator
        oh, ow = out.shape[-2:]
        bh = fractional_sequence(13, oh, pseudo_random=pseudo, seed=gen)
        bw = fractional_sequence(17, ow, pseudo_random=pseudo, seed=gen)
        if osz is None:
            r = ratio if isinstance(ratio, tuple) else (ratio, ratio)
            assert (oh, ow) == (int(13 * r[0]), int(17 * r[1]))
        extra = 1 if overlapping else 0
        for i in range(oh):
            for j in range(ow):
                r1, c1 = min(bh[i + 1] + extra, 13), min(bw[j + 1] + extra, 17)
                win = x[..., bh[i]:r1, bw[j]:c1]
                np.testing.assert_array_equal(out[..., i, j], win.max(axis=(-2, -1)))
                if overlapping and i < oh - 1:
                    assert r1 - bh[i] == bh[i + 1] - bh[i] + 1  # one longer
        flat = x.reshape(6, -1)
        np.testing.assert_array_equal(np.take_along_axis(flat, idx.reshape(6, -1), 1).reshape(out.shape), out)
        np.testing.assert_array_equal(
            out, fractional_max_pool2d(x, None, **kw, seed=42, overlapping=overlapping, pseudo_random=pseudo)
        )


def test_fractional_samples_forms():
    x = np.random.default_rng(11).standard_normal((2, 3, 9, 9))
    s = np.random.default_rng(12).random((2, 3, 2))
    a = fractional_max_pool2d(x, 2, output_size=4, samples=s)
    np.testing.assert_array_equal(a, fractional_max_pool2d(x, 2, output_size=4, samples=s.reshape(6, 2)))
    np.testing.assert_array_equal(a, fractional_max_pool2d(x, 2, output_size=4, samples=np.concatenate([s, s])))
    one = fractional_max_pool2d(x, 2, output_size=4, samples=[0.25, 0.75])
    tiled = np.tile([0.25, 0.75], (6, 1))
    np.testing.assert_array_equal(one, fractional_max_pool2d(x, 2, output_size=4, samples=tiled))


# ============================================================================ errors


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: quantile_pool2d(x, 2, q=1.5), r"q must be a number in \[0, 1\], got 1.5"),
        (lambda x: quantile_pool2d(x, 2, q="a"), r"q must be .*got 'a'"),
        (lambda x: quantile_pool2d(x, 2, q=True), r"q must be .*got True"),
        (lambda x: family_pool2d(x, "quantile", 2), r"q .* is required"),
        (lambda x: mixed_pool2d(x, 2, alpha=-0.1), r"alpha must be a number in \[0, 1\], got -0.1"),
        (lambda x: gem_pool2d(x, 2, p=0), r"p must be a finite number > 0, got 0"),
        (lambda x: gem_pool2d(x, 2, p=float("inf")), r"p must be a finite number > 0, got inf"),
        (lambda x: gem_pool2d(x, 2, eps=-1.0), r"eps must be a finite number > 0, got -1.0"),
        (lambda x: stochastic_pool2d(x, 2, train=True, seed=-1), r"seed must be None, an int >= 0 .*got -1"),
        (lambda x: stochastic_pool2d(x, 2, train=True, seed=1.5), r"seed .*got 1.5"),
        (lambda x: stochastic_pool2d(x, 2, seed="x"), r"seed .*got 'x'"),
        (lambda x: stochastic_pool2d(np.where(x == x.min(), -0.3, x), 2),
         r"stochastic pooling needs non-negative inputs \(e.g. after relu\); got min -0.3$"),
        (lambda x: family_pool2d(x, "median2", 2), r"mode must be one of .*got 'median2'"),
        (lambda x: median_pool2d(x, 5, padding=3), r"padding"),
        (lambda x: softpool2d(x, 9), r"size=9 is too large"),
        (lambda x: learned_pool2d(x, np.ones(3)), r"weights must have shape \(k, k\) or \(C, k, k\), got shape \(3,\)"),
        (lambda x: learned_pool2d(x, np.ones((1, 1, 2, 2))), r"got shape \(1, 1, 2, 2\)"),
        (lambda x: learned_pool2d(x, np.ones((3, 2, 2))), r"weights have 3 channels .* input has C=2"),
        (lambda x: learned_pool2d(x, np.full((2, 2), np.nan)), r"weights must be finite"),
        (lambda x: fractional_max_pool2d(x, 2), r"exactly one of output_size and output_ratio"),
        (lambda x: fractional_max_pool2d(x, 2, output_size=2, output_ratio=0.5), r"exactly one"),
        (lambda x: fractional_max_pool2d(x, 2, output_ratio=1.5), r"output_ratio must be a number in \(0, 1\].*1.5"),
        (lambda x: fractional_max_pool2d(x, 2, output_ratio=0.1), r"empty output"),
        (lambda x: fractional_max_pool2d(x, 2, output_size=6, samples=[0.5, 0.5]), r"size=2 is too large"),
        (lambda x: fractional_max_pool2d(x, 2, output_size=3, samples=np.zeros((1, 3, 2))),
         r"samples must have shape \(N, C, 2\) = \(1, 2, 2\)"),
        (lambda x: fractional_max_pool2d(x, 2, output_size=3, samples=[0.5, 1.0]), r"samples must lie in \[0, 1\)"),
        (lambda x: fractional_max_pool2d(x, None, output_size=3, samples=[0.5, 0.5]), r"size .* required"),
        (lambda x: fractional_max_pool2d(x, 2, output_size=3, seed=-2), r"seed"),
        (lambda x: fractional_max_pool2d(x, 2, output_size=7), r"must not exceed"),
    ],
)
def test_errors(call, match):
    x = np.abs(np.random.default_rng(0).standard_normal((2, 6, 6)))
    with pytest.raises(ValueError, match=match):
        call(x)


def test_unpool_errors():
    out, idx = max_pool2d_with_indices(np.arange(16.0).reshape(1, 4, 4), 2)
    with pytest.raises(ValueError, match=r"indices must have the shape of pooled \(1, 2, 2\), got shape \(2, 2\)"):
        unpool2d(out, idx[0], 2)
    with pytest.raises(ValueError, match="integer"):
        unpool2d(out, idx.astype(float), 2)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\) for an output plane of \(4, 4\); found 19"):
        unpool2d(out, idx + 6, 2)
    with pytest.raises(ValueError, match=r"invalid output_size \(9, 9\) \(dim 0 must be between 2 and 6"):
        unpool2d(out, idx, 2, output_size=(9, 9))
    with pytest.raises(ValueError, match="padding='same' needs output_size"):
        unpool2d(out, idx, 2, padding="same")
    with pytest.raises(ValueError, match="output_size must be"):
        unpool2d(out, idx, 2, output_size=5)
    assert unpool2d(out, idx, 2, output_size=(1, 1, 5, 5)).shape == (1, 5, 5)


def test_load_weights(tmp_path):
    good = tmp_path / "w.npy"
    np.save(good, np.ones((3, 2, 2), dtype=np.float32))
    w = load_weights(good)
    assert w.shape == (3, 2, 2) and w.dtype == np.float64
    x = np.ones((3, 4, 4))
    np.testing.assert_array_equal(learned_pool2d(x, w), np.full((3, 2, 2), 4.0))
    with pytest.raises(ValueError, match=r"input has C=2"):
        learned_pool2d(np.ones((2, 4, 4)), w)
    bad = tmp_path / "v.npy"
    np.save(bad, np.ones(4))
    with pytest.raises(ValueError, match=r"must have shape \(k, k\) or \(C, k, k\), got shape \(4,\)"):
        load_weights(bad)
    arch = tmp_path / "a.npz"
    np.savez(arch, w=np.ones((2, 2)))
    with pytest.raises(ValueError, match="archive"):
        load_weights(arch)
    junk = tmp_path / "junk.npy"
    junk.write_text("not an array")
    with pytest.raises(ValueError, match="not a readable .npy"):
        load_weights(junk)
    with pytest.raises(FileNotFoundError):
        load_weights(tmp_path / "missing.npy")
