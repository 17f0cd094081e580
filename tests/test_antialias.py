"""poolcli.antialias: BlurPool, MaxBlurPool and APS.

* against PyTorch golden outputs (tests/data/golden_antialias.npz, made by
  tests/data/make_antialias_golden.py from the reference code rebuilt with torch ops);
* against scipy.ndimage (independent padding + correlation) and a brute-force APS
  that loops over the polyphase components;
* exact circular shift properties, tie-breaking, dtypes, shapes and errors.
"""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest
from scipy import ndimage

from poolcli.antialias import (
    BLUR_SIZES,
    aps_downsample,
    aps_pool2d,
    blur2d,
    blur_kernel,
    max_blur_pool2d,
)

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden_antialias.npz")
_Z = np.load(GOLDEN)
CASES = json.loads(str(_Z["cases"]))
META = json.loads(str(_Z["meta"]))
ARRAYS = {k: _Z[k] for k in _Z.files if k not in ("cases", "meta")}
OK_CASES = [c for c in CASES if c["error"] is None]
ERR_CASES = [c for c in CASES if c["error"] is not None]
FUNCS = {"blur2d": blur2d, "max_blur_pool2d": max_blur_pool2d, "aps_pool2d": aps_pool2d}

TAPS_TABLE = [
    [1],
    [1, 1],
    [1, 2, 1],
    [1, 3, 3, 1],
    [1, 4, 6, 4, 1],
    [1, 5, 10, 10, 5, 1],
    [1, 6, 15, 20, 15, 6, 1],
]


def _kwargs(case):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in case["kwargs"].items()}


def _rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- blur kernel


@pytest.mark.parametrize("m", BLUR_SIZES)
def test_blur_kernel_taps_table_and_normalisation(m):
    a = np.array(TAPS_TABLE[m - 1], dtype=np.float64)
    k = blur_kernel(m)
    assert k.shape == (m, m) and k.dtype == np.float64
    np.testing.assert_array_equal(k, np.outer(a, a) / a.sum() ** 2)
    assert k.sum() == 1.0
    np.testing.assert_array_equal(k, k.T)
    np.testing.assert_array_equal(k, k[::-1, ::-1])
    k[0, 0] = 5.0  # a fresh writable copy every call
    assert blur_kernel(m)[0, 0] != 5.0


@pytest.mark.parametrize("bad", [0, 8, -1, 2.0, True, "3", None])
def test_blur_kernel_rejects(bad):
    with pytest.raises(ValueError, match=r"m must be an int in 1\.\.7, got " + repr(bad).replace(".", r"\.")):
        blur_kernel(bad)


def test_blur_sizes():
    assert BLUR_SIZES == (1, 2, 3, 4, 5, 6, 7)


# ----------------------------------------------------------------------------- golden (PyTorch)


def test_golden_meta():
    assert META["torch"].startswith("2.")
    assert META["n_cases"] == len(CASES) >= 60
    assert {c["op"] for c in CASES} == set(FUNCS)
    assert os.path.getsize(GOLDEN) < 1_000_000


@pytest.mark.parametrize("case", OK_CASES, ids=[c["id"] for c in OK_CASES])
def test_golden(case):
    x = ARRAYS[case["id"] + "_x"]
    y = ARRAYS[case["id"] + "_y"]
    kw = _kwargs(case)
    fn = FUNCS[case["op"]]
    if case["op"] == "aps_pool2d":
        got, phase = fn(x, **kw, return_phase=True)
        np.testing.assert_array_equal(phase.reshape(-1, 2), ARRAYS[case["id"] + "_phase"], err_msg=case["torch"])
    else:
        got = fn(x, **kw)
    assert got.shape == y.shape, (case["torch"], got.shape, y.shape)
    assert got.dtype == y.dtype
    m = kw["blur_size"]
    if m == 1:  # only max and subsampling: bit-exact
        np.testing.assert_array_equal(got, y, err_msg=case["torch"])
    else:
        # torch's conv accumulates in the input dtype in its own order; poolcli in
        # float64, rounded once. Bound: rtol 1e-6 plus a few roundings of max|x|.
        atol = 2 * m * np.finfo(x.dtype).eps * float(np.abs(x).max())
        np.testing.assert_allclose(got, y, rtol=1e-6, atol=atol, err_msg=case["torch"])


@pytest.mark.parametrize("case", ERR_CASES, ids=[c["id"] for c in ERR_CASES])
def test_golden_errors(case):
    x = ARRAYS[case["id"] + "_x"]
    kw = _kwargs(case)
    name = "blur_size" if "Padding size" in case["error"] else "size"
    with pytest.raises(ValueError, match=name):
        FUNCS[case["op"]](x, **kw)


# ----------------------------------------------------------------------------- independent references


def _scipy_blur(x, stride, m, circular):
    """scipy.ndimage: 'mirror' is PyTorch's ReflectionPad; pad floor((m-1)/2) before."""
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    w = np.array(TAPS_TABLE[m - 1], dtype=np.float64)
    w /= w.sum()
    mode = "wrap" if circular else "mirror"
    # scipy centres a tap array of length m at m // 2; we want (m - 1) // 2 before.
    origin = (m - 1) // 2 - m // 2
    y = ndimage.correlate1d(x.astype(np.float64), w, axis=-2, mode=mode, origin=origin)
    y = ndimage.correlate1d(y, w, axis=-1, mode=mode, origin=origin)
    return y[..., ::sh, ::sw]


@pytest.mark.parametrize("m", BLUR_SIZES)
@pytest.mark.parametrize("stride", [1, 2, 3, (2, 3)])
@pytest.mark.parametrize("circular", [False, True])
def test_blur2d_matches_scipy(m, stride, circular):
    x = _rng(m).standard_normal((2, 11, 14))
    got = blur2d(x, stride, m, circular=circular)
    np.testing.assert_allclose(got, _scipy_blur(x, stride, m, circular), rtol=1e-12, atol=1e-13)


def _brute_max(x, k, circular):
    h, w = x.shape[-2:]
    oh, ow = (h, w) if circular else (h - k + 1, w - k + 1)
    out = np.empty(x.shape[:-2] + (oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows = [(i + a) % h for a in range(k)]
            cols = [(j + b) % w for b in range(k)]
            out[..., i, j] = x[..., rows, :][..., cols].max(axis=(-2, -1))
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("circular", [False, True])
def test_max_blur_pool2d_is_max_then_blur(k, circular):
    x = _rng(k).standard_normal((3, 9, 10)).astype(np.float32)
    want = blur2d(_brute_max(x, k, circular), 2, 3, circular=circular)
    np.testing.assert_array_equal(max_blur_pool2d(x, k, 2, 3, circular=circular), want)


def test_circular_max_stage_extends_the_plain_one():
    """Wrap padding only after the input: the first H - k + 1 rows are nn.MaxPool2d(k, 1)'s."""
    x = _rng(5).standard_normal((2, 10, 12))
    for k in (2, 3):
        plain = max_blur_pool2d(x, k, 1, 1)
        circ = max_blur_pool2d(x, k, 1, 1, circular=True)
        assert circ.shape == x.shape
        np.testing.assert_array_equal(circ[..., : 11 - k, : 13 - k], plain)


def _brute_aps(x, stride):
    """Loop over components; pad at the end by wrapping; first maximum wins."""
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    a = np.asarray(x)
    h, w = a.shape[-2:]
    a = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, (-h) % sh), (0, (-w) % sw)], mode="wrap")
    samples = a.reshape((-1,) + a.shape[-3:]) if a.ndim == 4 else a.reshape((1, -1) + a.shape[-2:])
    outs, phases = [], []
    for s in samples:
        best, best_norm = None, -1.0
        for i in range(sh):
            for j in range(sw):
                comp = s[:, i::sh, j::sw]
                norm = math.sqrt(sum(float(v) ** 2 for v in comp.ravel()))
                if norm > best_norm:
                    best, best_norm = (i, j), norm
        outs.append(s[:, best[0] :: sh, best[1] :: sw])
        phases.append(best)
    out = np.stack(outs).reshape(x.shape[:-2] + outs[0].shape[-2:])
    return out, np.array(phases)


@pytest.mark.parametrize(
    "shape", [(8, 8), (7, 9), (3, 10, 6), (2, 3, 9, 12), (4, 1, 5, 5), (1, 2, 13, 7)]
)
@pytest.mark.parametrize("stride", [2, 3, (2, 3), (3, 1)])
def test_aps_downsample_matches_brute_force(shape, stride):
    x = _rng(sum(shape)).standard_normal(shape).astype(np.float32)
    out, phase = aps_downsample(x, stride, return_phase=True)
    want, want_phase = _brute_aps(x, stride)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(phase.reshape(-1, 2), want_phase)
    assert phase.shape == ((shape[0], 2) if len(shape) == 4 else (2,))


def test_aps_chooses_per_sample_and_shares_across_channels():
    rng = _rng(3)
    x = rng.standard_normal((3, 2, 6, 6))
    x[0, :, 1::2, 1::2] *= 10  # sample 0: phase (1, 1)
    x[1, 0, 0::2, 1::2] *= 10  # sample 1: phase (0, 1), through channel 0 only
    out, phase = aps_downsample(x, return_phase=True)
    assert phase[0].tolist() == [1, 1] and phase[1].tolist() == [0, 1]
    for n in range(3):
        i, j = phase[n]
        np.testing.assert_array_equal(out[n], x[n, :, i::2, j::2])
        np.testing.assert_array_equal(out[n], aps_downsample(x[n]))


# ----------------------------------------------------------------------------- shift properties


def _roll(a, dy, dx):
    return np.roll(a, (dy, dx), axis=(-2, -1))


def _find_roll(z, y):
    """Every (k, l) with z == roll(y, (k, l)), exactly."""
    oh, ow = y.shape[-2:]
    return [(k, l) for k in range(oh) for l in range(ow) if np.array_equal(z, _roll(y, k, l))]


APS_CONFIGS = [  # size, blur_size, stride, (H, W)
    (2, 1, 2, (12, 10)),
    (2, 3, 2, (8, 12)),
    (1, 1, 2, (10, 10)),
    (3, 2, 2, (12, 8)),
    (2, 1, 3, (12, 9)),
    (2, 4, (2, 3), (10, 12)),
]


@pytest.mark.parametrize("size, blur, stride, hw", APS_CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aps_pool2d_is_circularly_shift_equivariant(size, blur, stride, hw, dtype):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    x = _rng(hw[0] * blur + size).standard_normal((2, 3) + hw).astype(dtype)  # continuous: no ties
    y = aps_pool2d(x, size, stride, blur)
    oh, ow = y.shape[-2:]
    for dy in range(4):
        for dx in range(4):
            z = aps_pool2d(_roll(x, dy, dx), size, stride, blur)
            for n in range(x.shape[0]):  # each sample picks its own phase
                found = _find_roll(z[n], y[n])
                assert found, f"shift {(dy, dx)}, sample {n}: not a circular shift of the unshifted output"
                k, l = found[0]
                assert k in {(dy // sh) % oh, (-(-dy // sh)) % oh}
                assert l in {(dx // sw) % ow, (-(-dx // sw)) % ow}


def test_aps_pool2d_global_statistics_are_shift_invariant():
    x = _rng(11).standard_normal((3, 8, 8)).astype(np.float32)
    y = aps_pool2d(x, 2, 2, 3)
    for dy in range(8):
        for dx in range(8):
            z = aps_pool2d(_roll(x, dy, dx), 2, 2, 3)
            assert z.max() == y.max()
            np.testing.assert_allclose(z.mean(), y.mean(), rtol=1e-6)
            np.testing.assert_array_equal(np.sort(z, axis=None), np.sort(y, axis=None))


def test_plain_stride_is_not_shift_invariant():
    """The contrast: x[::2, ::2] after a one-pixel shift keeps the other phase."""
    x = _rng(2).standard_normal((8, 8))
    assert not _find_roll(_roll(x, 1, 0)[::2, ::2], x[::2, ::2])
    assert _find_roll(aps_downsample(_roll(x, 1, 0)), aps_downsample(x))


@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("m", [1, 2, 3, 4, 7])
def test_circular_blur_and_maxblur_commute_with_shifts_by_the_stride(stride, m):
    x = _rng(m).standard_normal((2, 4 * stride, 3 * stride)).astype(np.float32)
    b = blur2d(x, stride, m, circular=True)
    mb = max_blur_pool2d(x, 2, stride, m, circular=True)
    for a in (-1, 0, 1, 2, 3):
        for c in (0, 1, -2):
            xs = _roll(x, a * stride, c * stride)
            np.testing.assert_array_equal(blur2d(xs, stride, m, circular=True), _roll(b, a, c))
            np.testing.assert_array_equal(max_blur_pool2d(xs, 2, stride, m, circular=True), _roll(mb, a, c))


def test_circular_stride1_blur_commutes_with_every_shift():
    x = _rng(4).standard_normal((9, 7))
    b = blur2d(x, 1, 5, circular=True)
    for dy, dx in [(1, 0), (0, 3), (4, 5), (-2, 1)]:
        np.testing.assert_array_equal(blur2d(_roll(x, dy, dx), 1, 5, circular=True), _roll(b, dy, dx))


# ----------------------------------------------------------------------------- ties, values, dtypes, shapes


@pytest.mark.parametrize("stride", [2, 3, (2, 3)])
def test_constant_input_picks_phase_zero(stride):
    x = np.full((2, 3, 6, 6), 1.5, np.float32)
    out, phase = aps_downsample(x, stride, return_phase=True)
    assert phase.tolist() == [[0, 0], [0, 0]]
    out, phase = aps_pool2d(x[0], 2, stride, 3, return_phase=True)
    assert phase.tolist() == [0, 0]
    assert (out == 1.5).all()


def test_ties_go_to_the_lowest_row_major_index():
    x = np.zeros((4, 4))
    x[0, 1] = 1.0  # phase (0, 1), index 1
    x[1, 0] = -1.0  # phase (1, 0), index 2: same norm
    assert aps_downsample(x, return_phase=True)[1].tolist() == [0, 1]
    x[1, 0] = -1.0000001
    assert aps_downsample(x, return_phase=True)[1].tolist() == [1, 0]
    # deterministic: the same answer every time, for every layout
    for _ in range(3):
        assert aps_downsample(np.asfortranarray(x), return_phase=True)[1].tolist() == [1, 0]


def test_blur_keeps_constants_exactly():
    x = np.full((3, 9, 10), 0.3, np.float32)
    for m in BLUR_SIZES:
        for circular in (False, True):
            assert (blur2d(x, 2, m, circular=circular) == np.float32(0.3)).all()


def test_nan_propagates():
    x = np.zeros((6, 6))
    x[2, 2] = np.nan
    assert np.isnan(max_blur_pool2d(x, 2, 2, 1)).any()
    assert np.isnan(blur2d(x, 2, 3)).any()


OPS = [
    lambda x: blur2d(x, 2, 3),
    lambda x: blur2d(x, 2, 3, circular=True),
    lambda x: max_blur_pool2d(x, 2, 2, 3),
    lambda x: max_blur_pool2d(x, 3, 2, 4, circular=True),
    lambda x: aps_downsample(x, 2),
    lambda x: aps_pool2d(x, 2, 2, 3),
    lambda x: aps_pool2d(x, 2, 2, 1, circular=False),
]


@pytest.mark.parametrize("op", range(len(OPS)))
@pytest.mark.parametrize("dtype, want", [(np.float32, np.float32), (np.float64, np.float64),
                                         (np.int32, np.float64), (np.uint8, np.float64),
                                         (np.float16, np.float32)])
def test_dtype(op, dtype, want):
    x = (_rng(op).random((2, 9, 10)) * 100).astype(dtype)
    assert OPS[op](x).dtype == want


@pytest.mark.parametrize("op", range(len(OPS)))
def test_leading_shapes_and_non_contiguous_input(op):
    x = _rng(op).standard_normal((2, 3, 10, 9))
    y4 = OPS[op](x)
    assert y4.ndim == 4 and y4.shape[:2] == (2, 3)
    np.testing.assert_array_equal(OPS[op](x[1]), y4[1])  # APS chooses per sample n
    np.testing.assert_array_equal(OPS[op](x[0, 2]), OPS[op](x[0, 2:3])[0])
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # Fortran-like
    assert not xt.flags.c_contiguous
    np.testing.assert_array_equal(OPS[op](xt), y4)
    np.testing.assert_array_equal(OPS[op](x[:, :, ::-1]), OPS[op](np.ascontiguousarray(x[:, :, ::-1])))


@pytest.mark.parametrize("h", [1, 2, 3, 4, 5, 7, 8, 11])
@pytest.mark.parametrize("s", [1, 2, 3])
def test_output_shapes(h, s):
    w = h + 1
    assert blur2d(np.zeros((h, w)), s, 1).shape == (-(-h // s), -(-w // s))
    assert blur2d(np.zeros((h, w)), s, 7, circular=True).shape == (-(-h // s), -(-w // s))
    if h >= 2:
        assert blur2d(np.zeros((h, w)), s, 3).shape == (-(-h // s), -(-w // s))
        assert max_blur_pool2d(np.zeros((h + 2, w + 2)), 2, s, 2).shape == (-(-(h + 1) // s), -(-(w + 1) // s))
    assert max_blur_pool2d(np.zeros((h, w)), 3, s, 3, circular=True).shape == (-(-h // s), -(-w // s))
    assert aps_downsample(np.zeros((h, w)), s).shape == (-(-h // s), -(-w // s))
    assert aps_pool2d(np.zeros((h, w)), 2, s, 2).shape == (-(-h // s), -(-w // s))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [0, -2, (2, 0), (1, 2, 3), 2.5, "2", True, None])
def test_bad_stride(bad):
    x = np.zeros((6, 6))
    for fn in (lambda: blur2d(x, bad), lambda: max_blur_pool2d(x, 2, bad),
               lambda: aps_downsample(x, bad), lambda: aps_pool2d(x, 2, bad)):
        with pytest.raises(ValueError, match=r"stride must be an int >= 1 or a pair of them, got " + re.escape(repr(bad))):
            fn()


@pytest.mark.parametrize("bad", [0, 8, -1, 3.0, True, "3", None])
def test_bad_blur_size(bad):
    x = np.zeros((8, 8))
    for fn in (lambda: blur2d(x, 2, bad), lambda: max_blur_pool2d(x, 2, 2, bad), lambda: aps_pool2d(x, 2, 2, bad)):
        with pytest.raises(ValueError, match=r"blur_size must be an int in 1\.\.7, got " + re.escape(repr(bad))):
            fn()


@pytest.mark.parametrize("bad", [0, (2, 0), 1.5, "2"])
def test_bad_size(bad):
    x = np.zeros((8, 8))
    for fn in (lambda: max_blur_pool2d(x, bad), lambda: aps_pool2d(x, bad)):
        with pytest.raises(ValueError, match=r"size must be an int >= 1 or a pair of them"):
            fn()


def test_other_errors():
    with pytest.raises(ValueError, match=r"size=\(5, 5\) is larger than the input \(H, W\) = \(4, 6\)"):
        max_blur_pool2d(np.zeros((4, 6)), 5)
    max_blur_pool2d(np.zeros((4, 6)), 5, circular=True)  # wraps: fine
    with pytest.raises(ValueError, match=r"blur_size=3 pads \(1, 1\).*got \(H, W\) = \(1, 5\)"):
        blur2d(np.zeros((1, 5)), 2, 3)
    assert blur2d(np.zeros((1, 5)), 2, 3, circular=True).shape == (1, 3)
    with pytest.raises(ValueError, match=r"\(H, W\) = \(6, 5\) is not a multiple of stride=\(2, 2\)"):
        aps_downsample(np.zeros((6, 5)), circular_pad_odd=False)
    with pytest.raises(ValueError, match=r"circular must be True or False, got 'yes'"):
        blur2d(np.zeros((4, 4)), circular="yes")
    with pytest.raises(ValueError, match=r"return_phase must be True or False, got 1"):
        aps_downsample(np.zeros((4, 4)), return_phase=1)
    with pytest.raises(ValueError, match=r"shape \(H, W\), \(C, H, W\) or \(N, C, H, W\)"):
        aps_pool2d(np.zeros((1, 1, 1, 4, 4)))
    with pytest.raises(ValueError, match="must be real"):
        blur2d(np.zeros((4, 4), complex))
