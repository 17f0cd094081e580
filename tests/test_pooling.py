"""poolcli.pooling against the brute-force reference (tests/reference.py) + properties.

No torch here: the PyTorch ground truth lives in tests/test_golden.py; this module
checks the much larger parameter space (per-side / 'same' / 'valid' padding,
dilation for avg/lp, divisor_override, layouts, non-contiguous views) against the
independent loop reference, and checks invariants with hypothesis.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference import ref_adaptive_pool2d, ref_output_shape, ref_pool2d

from poolcli import adaptive_pool2d, global_pool2d, pool2d

# Reproducible by default (derandomize); POOLCLI_HYP_EXAMPLES=2000 POOLCLI_HYP_RANDOM=1
# for a deeper, randomised hunt.
HYP = settings(
    max_examples=int(os.environ.get("POOLCLI_HYP_EXAMPLES", "100")),
    derandomize=not os.environ.get("POOLCLI_HYP_RANDOM"),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
LAYOUTS = ("2d", "3d", "4d", "transposed", "sliced", "fortran")


def make_input(seed, layout, dtype, H=7, W=9, nonneg=False, ties=False):
    """A small input of the given layout; 'transposed'/'sliced' are non-contiguous views."""
    rng = np.random.default_rng(seed)

    def draw(shape):
        a = rng.integers(0, 4, size=shape).astype(np.float64) if ties else rng.standard_normal(shape)
        return np.abs(a) if nonneg else a

    if layout == "2d":
        x = draw((H, W)).astype(dtype)
    elif layout == "3d":
        x = draw((2, H, W)).astype(dtype)
    elif layout == "4d":
        x = draw((2, 2, H, W)).astype(dtype)
    elif layout == "transposed":
        x = draw((2, W, H)).astype(dtype).swapaxes(-1, -2)
        assert not x.flags.c_contiguous
    elif layout == "sliced":
        x = draw((1, 2, 2 * H, W + 3)).astype(dtype)[:, ::-1, ::2, 1 : W + 1]
        assert not x.flags.c_contiguous
    elif layout == "fortran":
        x = np.asfortranarray(draw((2, H, W)).astype(dtype))
    else:
        raise ValueError(layout)
    assert x.shape[-2:] == (H, W)
    return x


def assert_matches(got, want, mode, msg="", exact=("max", "min")):
    """Bit-exact for the modes in ``exact``; else a few dozen ulps."""
    assert got.dtype == want.dtype, msg
    assert got.shape == want.shape, msg
    if mode in exact:
        np.testing.assert_array_equal(got, want, err_msg=msg)
    else:
        eps = np.finfo(want.dtype).eps
        np.testing.assert_allclose(got, want, rtol=64 * eps, atol=64 * eps, err_msg=msg)


def both(fn_ref, fn, *args, **kwargs):
    """Run reference and implementation; if the reference raises ValueError so must poolcli."""
    try:
        want = fn_ref(*args, **kwargs)
    except ValueError:
        with pytest.raises(ValueError):
            fn(*args, **kwargs)
        return None, None
    return want, fn(*args, **kwargs)


# --------------------------------------------------------------------------- #
# reference grid
# --------------------------------------------------------------------------- #
SIZES = [1, 2, 3, (2, 3)]
STRIDES = [None, 1, 2, (1, 3)]
PADDINGS = [0, 1, (1, 0), (0, 1, 1, 0), (1, 2, 0, 1), "same", "valid"]
DILATIONS = [1, 2, (1, 2)]
CEILS = [False, True]
MODES = ["max", "avg", "min", "lp"]
GRID = list(itertools.product(MODES, SIZES, STRIDES, PADDINGS, DILATIONS, CEILS))


def _grid_id(c):
    mode, size, stride, padding, dil, ceil = c
    return f"{mode}-k{size}-s{stride}-p{padding}-d{dil}-{'ceil' if ceil else 'floor'}".replace(" ", "")


@pytest.mark.parametrize("case", GRID, ids=[_grid_id(c) for c in GRID])
def test_pool2d_matches_reference(case):
    mode, size, stride, padding, dilation, ceil_mode = case
    i = GRID.index(case)
    # the remaining axes cycle deterministically with the case index
    dtype = (np.float32, np.float64)[i % 2]
    layout = LAYOUTS[(i // 2) % len(LAYOUTS)]
    cip = bool((i // 3) % 2)
    div = None if (i // 5) % 3 else 3
    p = (2, 1, 3, 1.5)[(i // 7) % 4] if mode == "lp" else None
    H, W = (7, 9) if (i // 11) % 2 else (6, 5)
    x = make_input(i, layout, dtype, H, W, nonneg=(mode == "lp" and p != 2), ties=(i % 5 == 0))
    kw = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    if mode in ("avg", "lp"):
        kw.update(count_include_pad=cip, divisor_override=div)
    if mode == "lp":
        kw.update(p=p)
    x_before = x.copy()
    want, got = both(ref_pool2d, pool2d, x, mode, size, **kw)
    np.testing.assert_array_equal(x, x_before)
    if want is not None:
        # avg is bit-exact too: both sum the taps row-major in the input dtype (torch's order)
        assert_matches(got, want, mode, f"{mode} size={size} {kw} layout={layout} dtype={dtype}",
                       exact=("max", "min", "avg"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("div", [None, 1, 4, 7])
@pytest.mark.parametrize("padding", [0, 1, (1, 0, 0, 1), "same"])
def test_avg_options_match_reference(dtype, layout, cip, div, padding):
    x = make_input(3, layout, dtype, 7, 6)
    kw = dict(stride=2, padding=padding, ceil_mode=True, count_include_pad=cip, divisor_override=div)
    want, got = both(ref_pool2d, pool2d, x, "avg", 3, **kw)
    assert_matches(got, want, "avg", str(kw), exact=("avg",))


ADAPTIVE_OUT = [1, 2, 3, (2, 5), (4, None), (None, 3), (None, None), (9, 11), (7, 1)]


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("output_size", ADAPTIVE_OUT, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_adaptive_matches_reference(mode, output_size, layout):
    for dtype in (np.float32, np.float64):
        x = make_input(5, layout, dtype, 7, 9, ties=(mode == "max"))
        want = ref_adaptive_pool2d(x, mode, output_size)
        got = adaptive_pool2d(x, mode, output_size)
        assert_matches(got, want, mode, f"{mode} {output_size} {layout} {dtype}")


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 5, 4), (2, 3, 1, 7)])
def test_global_pool2d(mode, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    got = global_pool2d(x, mode)
    assert got.shape == shape[:-2] + (1, 1)
    assert got.dtype == np.float32
    assert_matches(got, ref_adaptive_pool2d(x, mode, (1, 1)), mode)


# --------------------------------------------------------------------------- #
# headline facts
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(2, 2), (4, 6), (3, 8, 10), (1, 2, 22, 14)])
def test_2x2_stride2_halves_each_side(mode, shape):
    x = np.abs(np.random.default_rng(1).standard_normal(shape))
    out = pool2d(x, mode, 2, 2, p=2 if mode == "lp" else None)
    assert out.shape == shape[:-2] + (shape[-2] // 2, shape[-1] // 2)
    out = pool2d(x, mode, 2, p=2 if mode == "lp" else None)  # stride defaults to size
    assert out.shape == shape[:-2] + (shape[-2] // 2, shape[-1] // 2)


def test_known_values():
    x = np.arange(16, dtype=np.float64).reshape(4, 4)
    np.testing.assert_array_equal(pool2d(x, "max", 2), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(pool2d(x, "min", 2), [[0, 2], [8, 10]])
    np.testing.assert_array_equal(pool2d(x, "avg", 2), [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_allclose(pool2d(x, "lp", 2, p=1), [[10, 18], [42, 50]])
    # count_include_pad: corner window of a 3x3/pad-1 avg sees 4 real of 9 slots
    y = pool2d(np.ones((3, 3)), "avg", 3, 1, padding=1)
    assert y[0, 0] == pytest.approx(4 / 9)
    y = pool2d(np.ones((3, 3)), "avg", 3, 1, padding=1, count_include_pad=False)
    np.testing.assert_array_equal(y, np.ones((3, 3)))
    # 'same': padded values never count, whatever count_include_pad says
    y = pool2d(np.ones((5, 5)), "avg", 3, 2, padding="same", count_include_pad=True)
    assert y.shape == (3, 3)
    np.testing.assert_array_equal(y, np.ones((3, 3)))
    # NaN propagates through max like torch; -inf is a legal maximum
    z = np.array([[np.nan, 1.0], [2.0, 3.0]])
    assert np.isnan(pool2d(z, "max", 2)[0, 0])
    assert pool2d(np.full((2, 2), -np.inf), "max", 2)[0, 0] == -np.inf


def test_ceil_mode_drop_rule():
    # H=4, k=1, s=2, ceil: formula gives 3 but the 3rd window would start at 4 >= H + 0
    x = np.arange(4.0).reshape(4, 1)
    out = pool2d(x, "max", (1, 1), (2, 1), ceil_mode=True)
    assert out.shape == (2, 1)
    # H=5, k=2, s=2, pad=1, ceil: out 3 (last window starts at 3 inside input)... vs drop
    assert ref_output_shape(5, 5, 2, 2, 1, 1, True) == pool2d(np.zeros((5, 5)), "max", 2, 2, 1, ceil_mode=True).shape
    # lp ceil overhang: torch gives avg * kh * kw, NOT the plain sum
    x = np.ones((3, 3))
    out = pool2d(x, "lp", 2, 2, ceil_mode=True, p=1)
    np.testing.assert_allclose(out, [[4, 4], [4, 4]])


# --------------------------------------------------------------------------- #
# hypothesis properties
# --------------------------------------------------------------------------- #
def float_arrays(min_side=1, max_side=10, nan=False, dtype=None):
    dt = st.sampled_from([np.float32, np.float64]) if dtype is None else st.just(dtype)

    @st.composite
    def _arr(draw):
        d = draw(dt)
        lead = draw(st.sampled_from([(), (2,), (1, 2)]))
        H = draw(st.integers(min_side, max_side))
        W = draw(st.integers(min_side, max_side))
        elems = st.floats(-1e3, 1e3, width=32, allow_nan=False, allow_infinity=False)
        if nan:
            elems = st.one_of(elems, st.sampled_from([np.nan, -np.inf, np.inf]))
        return draw(hnp.arrays(d, lead + (H, W), elements=elems))

    return _arr()


@st.composite
def window(draw, dilation=True):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    return k, s, d


@HYP
@given(x=float_arrays(), w=window(), data=st.data(), ceil_mode=st.booleans())
def test_output_shape_formula(x, w, data, ceil_mode):
    (kh, kw), s, d = w
    pad = (data.draw(st.integers(0, kh // 2)), data.draw(st.integers(0, kw // 2)))
    H, W = x.shape[-2:]
    sh, sw = s or (kh, kw)

    def formula(n, k, st_, dd, pp):
        o = (n + 2 * pp - dd * (k - 1) - 1 + (st_ - 1 if ceil_mode else 0)) // st_ + 1
        if ceil_mode and (o - 1) * st_ >= n + pp:
            o -= 1
        return o

    oh, ow = formula(H, kh, sh, d[0], pad[0]), formula(W, kw, sw, d[1], pad[1])
    if oh < 1 or ow < 1:
        with pytest.raises(ValueError, match="size"):
            pool2d(x, "max", (kh, kw), s, pad, d, ceil_mode)
        return
    for mode in ("max", "avg"):
        out = pool2d(x, mode, (kh, kw), s, pad, d, ceil_mode)
        assert out.shape == x.shape[:-2] + (oh, ow)


@HYP
@given(x=float_arrays(), w=window(), ceil_mode=st.booleans(), how=st.sampled_from(["valid", 0, "same"]))
def test_max_ge_avg_ge_min(x, w, ceil_mode, how):
    k, s, d = w
    if how == "same":
        d = (1, 1)  # dilated 'same' windows may hold only padding (max -inf, avg 0)
    H, W = x.shape[-2:]
    try:
        ref_output_shape(H, W, k, s, how, d, ceil_mode)
    except ValueError:
        assume(False)
    kw = dict(stride=s, padding=how, dilation=d, ceil_mode=ceil_mode)
    mx = pool2d(x, "max", k, **kw)
    av = pool2d(x, "avg", k, count_include_pad=False, **kw)
    mn = pool2d(x, "min", k, **kw)
    # averaging n values in floating point may land a few ulps outside [min, max]
    tol = 4 * k[0] * k[1] * np.finfo(x.dtype).eps * max(1.0, float(np.abs(x).max()))
    assert np.all(mx >= av - tol)
    assert np.all(av >= mn - tol)
    assert np.all(mx >= mn)


@HYP
@given(
    shape=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    c=st.integers(-4000, 4000).map(lambda v: v / 8),  # dyadic: sums and /n exact
    w=window(),
    ceil_mode=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    how=st.sampled_from(["valid", 0, "same", (0, 1, 1, 0)]),
)
def test_constant_in_constant_out(shape, c, w, ceil_mode, dtype, how):
    k, s, d = w
    if how in ("same", (0, 1, 1, 0)):
        # with dilation a padded window can hold nothing but padding (e.g. H=1,
        # k=2, d=2, 'same': taps at -1 and +1): max gives -inf and avg 0 there
        d = (1, 1)
    x = np.full(shape, c, dtype=dtype)
    try:
        ref_output_shape(*shape, k, s, how, d, ceil_mode)
    except ValueError:
        assume(False)
    kw = dict(stride=s, padding=how, dilation=d, ceil_mode=ceil_mode)
    for mode in ("max", "min"):  # -inf/+inf padding never wins against c
        out = pool2d(x, mode, k, **kw)
        np.testing.assert_array_equal(out, np.full(out.shape, c, dtype))
    # the mean of the real elements only: count_include_pad=False -- but divisible
    # sums: c * n is exact for a dyadic c and n <= 16, and (c*n)/n == c
    out = pool2d(x, "avg", k, count_include_pad=False, **kw)
    np.testing.assert_array_equal(out, np.full(out.shape, c, dtype))
    if how in ("valid", 0):
        # lp, p=1, of a non-negative constant: torch's composition avg * kh*kw
        # (avg over the real taps = c, also for ceil-mode overhang and dilation) -> c*kh*kw
        out = pool2d(np.abs(x), "lp", k, p=1, **kw)
        np.testing.assert_allclose(out, np.full(out.shape, abs(c) * k[0] * k[1]), rtol=1e-6)


@HYP
@given(x=float_arrays(nan=True), w=window(), ceil_mode=st.booleans(), data=st.data())
def test_max_is_minus_min_of_minus_x(x, w, ceil_mode, data):
    k, s, d = w
    pad = (data.draw(st.integers(0, k[0] // 2)), data.draw(st.integers(0, k[1] // 2)))
    try:
        ref_output_shape(*x.shape[-2:], k, s, pad, d, ceil_mode)
    except ValueError:
        assume(False)
    kw = dict(stride=s, padding=pad, dilation=d, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(pool2d(x, "max", k, **kw), -pool2d(-x, "min", k, **kw))
    np.testing.assert_array_equal(pool2d(x, "min", k, **kw), -pool2d(-x, "max", k, **kw))


@HYP
@given(x=float_arrays(), mode=st.sampled_from(MODES), k=st.integers(1, 3), ceil_mode=st.booleans())
def test_dtype_kept_and_input_untouched(x, mode, k, ceil_mode):
    assume(min(x.shape[-2:]) >= k)
    x = np.abs(x) if mode == "lp" else x
    before = x.copy()
    out = pool2d(x, mode, k, 1, ceil_mode=ceil_mode, p=1.5 if mode == "lp" else None)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(x, before)
    for m in ("max", "avg"):
        a = adaptive_pool2d(x, m, (2, None))
        assert a.dtype == x.dtype
        assert global_pool2d(x, m).dtype == x.dtype
    np.testing.assert_array_equal(x, before)


@HYP
@given(x=float_arrays(max_side=8), data=st.data())
def test_adaptive_matches_reference_hyp(x, data):
    H, W = x.shape[-2:]
    osz = (data.draw(st.one_of(st.none(), st.integers(1, H + 3))),
           data.draw(st.one_of(st.none(), st.integers(1, W + 3))))
    for mode in ("max", "avg"):
        assert_matches(adaptive_pool2d(x, mode, osz), ref_adaptive_pool2d(x, mode, osz), mode)
    # output size == input size: identity
    np.testing.assert_array_equal(adaptive_pool2d(x, "avg", (H, W)), x)
    np.testing.assert_array_equal(adaptive_pool2d(x, "max", (None, None)), x)


@HYP
@given(x=float_arrays(max_side=6), extra=st.integers(1, 5), axis=st.sampled_from([0, 1]),
       mode=st.sampled_from(MODES))
def test_size_larger_than_input_raises(x, extra, axis, mode):
    H, W = x.shape[-2:]
    size = [1, 1]
    size[axis] = (H, W)[axis] + extra
    with pytest.raises(ValueError, match="size"):
        pool2d(x, mode, tuple(size), p=2 if mode == "lp" else None)


# --------------------------------------------------------------------------- #
# error messages name the parameter and quote the value
# --------------------------------------------------------------------------- #
X = np.zeros((8, 8))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(mode="max", size=0), r"size.*0"),
        (dict(mode="avg", size=(2, -1)), r"size.*-1"),
        (dict(mode="max", size=2, stride=0), r"stride.*0"),
        (dict(mode="avg", size=2, stride=(1, -3)), r"stride.*-3"),
        (dict(mode="max", size=2, dilation=0), r"dilation.*0"),
        (dict(mode="max", size=3, padding=2), r"padding.*2"),
        (dict(mode="max", size=3, padding=2, dilation=2), r"padding.*2"),  # torch: kernel, not dilated
        (dict(mode="avg", size=(4, 2), padding=(0, 2)), r"padding.*\(0, 2\)"),
        (dict(mode="avg", size=3, padding=-1), r"padding.*-1"),
        (dict(mode="max", size=3, padding="full"), r"padding.*full"),
        (dict(mode="lp", size=2), r"\bp\b.*None"),
        (dict(mode="lp", size=2, p=0), r"\bp\b.*0"),
        (dict(mode="lp", size=2, p=-2.5), r"\bp\b.*-2\.5"),
        (dict(mode="maxx", size=2), r"mode.*maxx"),
        (dict(mode="max", size=9), r"size"),
        (dict(mode="avg", size=2, divisor_override=0), r"divisor_override.*0"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_error_messages(kwargs, pattern):
    kwargs = dict(kwargs)
    mode = kwargs.pop("mode")
    size = kwargs.pop("size")
    with pytest.raises(ValueError, match=pattern):
        pool2d(X, mode, size, **kwargs)
    with pytest.raises(ValueError):  # and the reference agrees it is invalid
        ref_pool2d(X, mode, size, **kwargs)


@pytest.mark.parametrize(
    "output_size, pattern",
    [(0, r"output_size.*0"), ((2, 0), r"output_size.*0"), ((2, -1), r"output_size.*-1"), ("x", "output_size")],
)
def test_adaptive_error_messages(output_size, pattern):
    with pytest.raises(ValueError, match=pattern):
        adaptive_pool2d(X, "max", output_size)


@pytest.mark.parametrize("mode", ["lp", "median"])
def test_adaptive_bad_mode(mode):
    with pytest.raises(ValueError, match="mode"):
        adaptive_pool2d(X, mode, 2)


def test_adaptive_min_extension():
    """poolcli also offers adaptive 'min' (not in torch): it must be -max(-x) exactly."""
    x = make_input(9, "4d", np.float32, 7, 9, ties=True)
    x[0, 0, 1, 1] = np.nan
    for osz in ADAPTIVE_OUT:
        np.testing.assert_array_equal(adaptive_pool2d(x, "min", osz), -ref_adaptive_pool2d(-x, "max", osz))
    np.testing.assert_array_equal(global_pool2d(x, "min"), -ref_adaptive_pool2d(-x, "max", 1))


@pytest.mark.parametrize("shape", [(8,), (1, 1, 1, 8, 8)])
def test_bad_ndim(shape):
    with pytest.raises(ValueError, match="shape"):
        pool2d(np.zeros(shape), "max", 2)
