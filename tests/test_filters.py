"""Tests of poolcli.kernels and poolcli.filters.

The reference for every correlation is a brute-force one written here: pad with
``np.pad`` in the NumPy mode that matches the scipy boundary mode, then add up
shifted copies of the input, one per kernel tap.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from poolcli import filters as F
from poolcli import kernels as K
from poolcli.filters import (
    ACTIVATIONS,
    BOUNDARY_MODES,
    FILTERS,
    Filter,
    activate,
    apply_filter,
    correlate2d,
    custom_filter,
    filter_bank,
    get_filter,
    list_filters,
    load_kernel,
    parse_filter_spec,
    parse_kernel,
)

# scipy.ndimage mode -> np.pad mode
NP_PAD = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap", "constant": "constant"}


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def ref_correlate(x2d, kernel, mode="reflect", cval=0.0, stride=1, dilation=1):
    """Brute force: explicit padding, then a loop over the taps (float64)."""
    x2d = np.asarray(x2d, dtype=np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    dh, dw = _pair(dilation)
    sh, sw = _pair(stride)
    kh, kw = k.shape
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1  # dilated size; centre index (e - 1) // 2
    pads = (((eh - 1) // 2, eh // 2), ((ew - 1) // 2, ew // 2))  # PyTorch/TensorFlow "same"
    kwargs = {"constant_values": cval} if mode == "constant" else {}
    xp = np.pad(x2d, pads, mode=NP_PAD[mode], **kwargs)
    h, w = x2d.shape
    out = np.zeros((h, w))
    for u in range(kh):
        for v in range(kw):
            out += k[u, v] * xp[u * dh : u * dh + h, v * dw : v * dw + w]
    return out[::sh, ::sw]


def ref_nd(x, kernel, **kw):
    x = np.asarray(x)
    planes = x.reshape((-1,) + x.shape[-2:])
    outs = [ref_correlate(p, kernel, **kw) for p in planes]
    return np.stack(outs).reshape(x.shape[:-2] + outs[0].shape)


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


RNG = np.random.default_rng(12345)
KERNEL_SHAPES = [(1, 1), (3, 3), (2, 2), (4, 3), (1, 5), (5, 1), (2, 5)]


# ----------------------------------------------------------------------------- kernels
def test_named_kernels_values():
    assert K.SOBEL_X.tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert K.SOBEL_Y.tolist() == [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    assert K.PREWITT_X.tolist() == [[-1, 0, 1]] * 3
    np.testing.assert_array_equal(K.PREWITT_Y, K.PREWITT_X.T)
    assert K.SCHARR_X.tolist() == [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]
    np.testing.assert_array_equal(K.SCHARR_Y, K.SCHARR_X.T)
    assert K.LAPLACE.tolist() == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    assert K.SHARPEN.tolist() == [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
    assert K.EMBOSS.tolist() == [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]
    assert K.IDENTITY.tolist() == [[1.0]]
    for name in ("SOBEL_X", "LAPLACE", "IDENTITY", "EMBOSS"):
        arr = getattr(K, name)
        assert arr.dtype == np.float64
        assert not arr.flags.writeable


def test_binomial_table():
    assert [K.binomial(n).tolist() for n in (1, 2, 3, 7)] == [
        [1],
        [1, 1],
        [1, 2, 1],
        [1, 6, 15, 20, 15, 6, 1],
    ]
    for n in range(1, 8):
        assert K.binomial(n).sum() == 2 ** (n - 1)
        assert K.binomial(n, normalize=True).sum() == pytest.approx(1.0)
    b = K.binomial(3)
    b[0] = 99  # a copy: the table is not corrupted
    assert K.binomial(3)[0] == 1
    for bad in (0, 8, 2.0, True):
        with pytest.raises(ValueError, match="n must be an int in 1..7"):
            K.binomial(bad)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 1.5, 2.7])
def test_gaussian_matches_scipy(sigma):
    g = K.gaussian(sigma)
    assert len(g) == 2 * int(4.0 * sigma + 0.5) + 1
    assert g.sum() == pytest.approx(1.0)
    x = RNG.random((13, 17))
    for mode in BOUNDARY_MODES:
        ours = apply_filter(x, get_filter("gaussian", sigma=sigma), mode=mode)
        np.testing.assert_allclose(ours, ndimage.gaussian_filter(x, sigma, mode=mode), rtol=1e-12, atol=1e-14)


def test_gaussian_and_box_errors():
    for bad in (0, -1, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="sigma must be"):
            K.gaussian(bad)
    with pytest.raises(ValueError, match="truncate must be > 0"):
        K.gaussian(1.0, truncate=0)
    np.testing.assert_array_equal(K.box(3), np.full(3, 1 / 3))
    with pytest.raises(ValueError, match=r"size must be an int >= 1, got 0"):
        K.box(0)


# ----------------------------------------------------------------------------- correlate2d vs reference
@pytest.mark.parametrize("mode", BOUNDARY_MODES)
@pytest.mark.parametrize("kshape", KERNEL_SHAPES)
@pytest.mark.parametrize("stride", [1, 2, (2, 3)])
@pytest.mark.parametrize("dilation", [1, 2, (1, 3)])
def test_correlate2d_matches_reference(mode, kshape, stride, dilation):
    x = RNG.standard_normal((9, 11))
    k = RNG.standard_normal(kshape)
    got = correlate2d(x, k, mode=mode, cval=0.5, stride=stride, dilation=dilation)
    want = ref_correlate(x, k, mode=mode, cval=0.5, stride=stride, dilation=dilation)
    assert got.dtype == np.float64
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", BOUNDARY_MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 8), (3, 7, 8), (2, 3, 7, 8)])
def test_shapes_and_dtypes(mode, dtype, shape):
    x = RNG.standard_normal(shape).astype(dtype)
    k = RNG.standard_normal((3, 2))
    got = correlate2d(x, k, mode=mode, stride=(2, 3), dilation=(2, 1))
    assert got.dtype == dtype
    assert got.shape == shape[:-2] + (math.ceil(shape[-2] / 2), math.ceil(shape[-1] / 3))
    np.testing.assert_allclose(got, ref_nd(x, k, mode=mode, stride=(2, 3), dilation=(2, 1)), **_tol(dtype))


def test_planes_are_independent():
    x = np.zeros((2, 3, 6, 6))
    x[1, 2, 3, 3] = 1.0
    y = correlate2d(x, np.ones((3, 3)), mode="wrap")
    assert y[1, 2].sum() == 9
    assert y.sum() == 9


def test_other_dtypes_and_non_contiguous_input():
    xi = np.arange(48, dtype=np.int16).reshape(6, 8)
    yi = correlate2d(xi, K.LAPLACE)
    assert yi.dtype == np.float64
    np.testing.assert_allclose(yi, ref_correlate(xi, K.LAPLACE))
    base = RNG.standard_normal((10, 12)).astype(np.float32)
    view = base[::2, ::-1].T  # not contiguous
    assert not view.flags.c_contiguous
    np.testing.assert_allclose(correlate2d(view, K.SOBEL_X), ref_correlate(view, K.SOBEL_X), rtol=1e-5, atol=1e-5)
    assert correlate2d(np.ones((3, 3), np.float16), K.IDENTITY).dtype == np.float32


def test_no_flip_cross_correlation():
    x = np.zeros((7, 7))
    x[3, 3] = 1.0
    k = np.arange(1.0, 10.0).reshape(3, 3)  # asymmetric
    y = correlate2d(x, k, mode="constant")
    np.testing.assert_array_equal(y[2:5, 2:5], k[::-1, ::-1])  # correlation: impulse response is k rotated 180
    assert y.sum() == k.sum()
    conv = ndimage.convolve(x, k, mode="constant")
    np.testing.assert_array_equal(conv[2:5, 2:5], k)  # a convolution would give k itself


def test_even_kernel_anchor_is_index_k_minus_1_over_2():
    x = np.arange(6.0)[None, :].repeat(2, axis=0)
    y = correlate2d(x, [[10.0, 1.0]], mode="nearest")  # out[j] = 10 x[j] + x[j+1], PyTorch "same"
    np.testing.assert_array_equal(y[0], [1, 12, 23, 34, 45, 55])


def test_box2_stride2_reads_the_windows_of_avg_pooling():
    from poolcli.pooling import pool2d

    x = RNG.random((2, 8, 10))
    y = correlate2d(x, np.full((2, 2), 0.25), stride=2)
    np.testing.assert_allclose(y, pool2d(x, "avg", 2), rtol=1e-12)


@pytest.mark.parametrize("mode", BOUNDARY_MODES)
@pytest.mark.parametrize(("shape", "kshape"), [((1, 2), (2, 16)), ((2, 3), (30, 3)), ((3, 2), (7, 25))])
def test_kernel_much_larger_than_image(mode, shape, kshape):
    # scipy 1.17 ndimage.correlate reads garbage in 'reflect' mode here; correlate1d does not.
    x = RNG.standard_normal((2,) + shape)
    a, b, c, d = (RNG.standard_normal(n) for n in (kshape[0], kshape[1], kshape[0], kshape[1]))
    k = np.outer(a, b) + np.outer(c, d)  # rank 2: the 2-D path
    assert F._factor(k) is None
    got = correlate2d(x, k, mode=mode, cval=0.3)
    np.testing.assert_allclose(got, ref_nd(x, k, mode=mode, cval=0.3), rtol=1e-12, atol=1e-12)
    if mode != "constant":  # independent of np.pad: the sum of two separable (correlate1d) passes
        sep = correlate2d(x, np.outer(a, b), mode=mode) + correlate2d(x, np.outer(c, d), mode=mode)
        np.testing.assert_allclose(got, sep, rtol=1e-12, atol=1e-12)


def test_stride_is_subsampled_same_output():
    x = RNG.random((11, 10))
    full = correlate2d(x, K.SOBEL_Y, mode="mirror")
    np.testing.assert_array_equal(correlate2d(x, K.SOBEL_Y, mode="mirror", stride=(3, 4)), full[::3, ::4])
    assert correlate2d(x, K.SOBEL_Y, stride=(3, 4)).shape == (4, 3)


def test_dilation_equals_atrous_kernel():
    x = RNG.random((12, 12))
    k = RNG.random((3, 3))
    atrous = np.zeros((5, 7))
    atrous[::2, ::3] = k
    np.testing.assert_allclose(correlate2d(x, k, dilation=(2, 3)), correlate2d(x, atrous), rtol=1e-13)


# ----------------------------------------------------------------------------- separable path
@pytest.mark.parametrize(
    "kernel",
    [K.SOBEL_X, K.SCHARR_Y, K.PREWITT_X, K.outer(K.gaussian(1.3)), K.outer(K.box(3), K.box(5)), K.outer([1, 2], [3, -1, 4])],
)
@pytest.mark.parametrize("mode", BOUNDARY_MODES)
def test_separable_path_equals_2d_path(kernel, mode):
    assert F._factor(np.asarray(kernel)) is not None
    x = RNG.standard_normal((3, 15, 14))
    sep = correlate2d(x, kernel, mode=mode)
    k = np.asarray(kernel)
    two_d = ndimage.correlate(x, k[None], mode=mode, origin=[0] + [F._origin(n) for n in k.shape])
    np.testing.assert_allclose(sep, two_d, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cval", [0.0, 1.5])
def test_separable_kernel_with_constant_border(cval):
    # the separable shortcut must not be taken when the constant border is not 0
    x = RNG.random((1, 5, 6))
    k = K.outer([1.0, 2.0, 0.5], [3.0, -1.0])
    want = ndimage.correlate(x, k[None], mode="constant", cval=cval, origin=[0] + [F._origin(n) for n in k.shape])
    np.testing.assert_allclose(correlate2d(x, k, mode="constant", cval=cval), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(want[0], ref_correlate(x[0], k, mode="constant", cval=cval), rtol=1e-12, atol=1e-12)


def test_separable_exact_for_integer_kernels():
    col, row = F._factor(np.asarray(K.SOBEL_X))
    np.testing.assert_array_equal(np.outer(col, row), K.SOBEL_X)


@pytest.mark.parametrize(
    "kernel",
    [K.LAPLACE, K.SHARPEN, K.EMBOSS, np.eye(3), np.zeros((3, 3)), np.outer([1, 2, 1], [1, 0, -1]) + 1e-9 * np.eye(3)],
)
def test_not_separable(kernel):
    assert F._factor(np.asarray(kernel, dtype=float)) is None


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel": [1.0, 2.0]}, r"kernel must be 2-D, got shape \(2,\)"),
        ({"kernel": np.zeros((0, 3))}, r"kernel must not be empty"),
        ({"kernel": [[1.0, np.nan]]}, r"kernel must be finite"),
        ({"kernel": [["a"]]}, r"kernel must be a 2-D array of numbers"),
        ({"mode": "zeros"}, r"mode must be one of .*got 'zeros'"),
        ({"stride": 0}, r"stride must be an int >= 1 .*got 0"),
        ({"dilation": (1, 0)}, r"dilation must be an int >= 1 .*got \(1, 0\)"),
        ({"cval": "x"}, r"cval must be a number, got 'x'"),
    ],
)
def test_correlate2d_errors(kwargs, match):
    kw = {"kernel": K.SOBEL_X, **kwargs}
    kernel = kw.pop("kernel")
    with pytest.raises(ValueError, match=match):
        correlate2d(np.ones((4, 4)), kernel, **kw)


def test_input_shape_error():
    with pytest.raises(ValueError, match=r"x must have shape"):
        correlate2d(np.ones(5), K.SOBEL_X)
    with pytest.raises(ValueError, match=r"x must have shape"):
        correlate2d(np.ones((1, 1, 1, 4, 4)), K.SOBEL_X)
    with pytest.raises(ValueError, match=r"x must not be empty, got shape \(2, 0, 3\)"):
        correlate2d(np.ones((2, 0, 3)), K.SOBEL_X)


# ----------------------------------------------------------------------------- filters
def test_registry_names():
    expected = {
        "none", "identity", "sobel-x", "sobel-y", "sobel", "prewitt-x", "prewitt-y", "prewitt",
        "scharr-x", "scharr-y", "scharr", "laplace", "gaussian", "box", "sharpen", "emboss",
    }  # fmt: skip
    assert expected <= set(FILTERS)
    assert get_filter("none") == get_filter("identity")
    names = [f.name for f in list_filters()]
    assert len(names) == len(set(names)) == len(FILTERS) - 1  # the alias appears once
    for f in list_filters():
        assert isinstance(f, Filter) and f.description


@pytest.mark.parametrize("name", ["sobel", "prewitt", "scharr"])
@pytest.mark.parametrize("mode", BOUNDARY_MODES)
def test_gradient_magnitude_is_hypot(name, mode):
    x = RNG.random((2, 9, 10)).astype(np.float32)
    gx = correlate2d(x.astype(np.float64), get_filter(f"{name}-x").kernels[0], mode=mode, stride=2)
    gy = correlate2d(x.astype(np.float64), get_filter(f"{name}-y").kernels[0], mode=mode, stride=2)
    got = apply_filter(x, get_filter(name), mode=mode, stride=2)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.hypot(gx, gy), rtol=1e-6, atol=1e-6)
    assert (got >= 0).all()


def test_sobel_x_orientation():
    x = np.tile([0.0, 0.0, 1.0, 1.0, 1.0], (5, 1))  # brighter to the right
    gx = apply_filter(x, get_filter("sobel-x"), mode="nearest")
    assert (gx[:, 1:3] == 4).all()  # correlation with [-1, 0, 1]: right - left
    gy = apply_filter(x.T, get_filter("sobel-y"), mode="nearest")  # brighter downwards
    np.testing.assert_array_equal(gy, gx.T)


def test_filter_equality_and_hash():
    a = get_filter("gaussian", sigma=1.5)
    b = get_filter("gaussian", sigma="1.5")
    assert a == b and hash(a) == hash(b)
    assert a != get_filter("gaussian", sigma=2)
    assert a != get_filter("box")
    assert len({a, b, get_filter("sobel")}) == 2
    assert Filter("k", (K.LAPLACE,), description="a") == Filter("k", (K.LAPLACE,), description="b")
    assert custom_filter([[1.0]]) == custom_filter(np.ones((1, 1), np.float32))
    assert custom_filter([[1.0, 2.0]]) != custom_filter([[1.0], [2.0]])
    with pytest.raises(ValueError):
        a.kernels[0][0, 0] = 5.0  # read-only
    with pytest.raises(AttributeError):
        a.name = "x"  # frozen
    assert a.label == "gaussian(sigma=1.5)"


def test_filter_construction_errors():
    with pytest.raises(ValueError, match="combine must be one of"):
        Filter("x", (K.SOBEL_X,), "sum")
    with pytest.raises(ValueError, match="needs 2 kernel"):
        Filter("x", (K.SOBEL_X,), "magnitude")


def test_get_filter_errors():
    with pytest.raises(ValueError, match=r"unknown filter 'sobol'; known filters: identity, none, sobel-x"):
        get_filter("sobol")
    with pytest.raises(ValueError, match=r"gaussian: sigma must be > 0, got -1"):
        get_filter("gaussian", sigma=-1)
    with pytest.raises(ValueError, match=r"gaussian: sigma must be a number > 0, got 'abc'"):
        get_filter("gaussian", sigma="abc")
    with pytest.raises(ValueError, match=r"gaussian: unknown parameter 'size' \(known: sigma\)"):
        get_filter("gaussian", size=3)
    with pytest.raises(ValueError, match=r"laplace: unknown parameter 'sigma' \(laplace takes no parameters\)"):
        get_filter("laplace", sigma=1)
    with pytest.raises(ValueError, match=r"box: size must be an int >= 1 or a pair of them, got 0"):
        get_filter("box", size=0)
    with pytest.raises(ValueError, match=r"box: size must be .*got 'x'"):
        get_filter("box", size="x")


def test_get_filter_params():
    assert get_filter("Gaussian").params == (("sigma", 1.0),)
    assert get_filter("box").kernels[0].shape == (3, 3)
    assert get_filter("box", size=(2, 4)).params == (("size", (2, 4)),)
    assert get_filter("box", size="5").params == (("size", 5),)
    assert parse_filter_spec("gaussian: sigma = 2 ") == get_filter("gaussian", sigma=2)
    assert parse_filter_spec("sobel") == get_filter("sobel")
    with pytest.raises(ValueError, match=r"expected key=value, got ''"):
        parse_filter_spec("gaussian:sigma=1,")


def test_filter_bank_order():
    x = RNG.random((3, 8, 9))
    fs = [get_filter("sobel-x"), get_filter("gaussian", sigma=0.8), get_filter("sobel")]
    out = filter_bank(x, fs, mode="mirror", stride=2)
    assert out.shape == (9, 4, 5)
    for f_i, f in enumerate(fs):
        for c in range(3):
            np.testing.assert_array_equal(out[f_i * 3 + c], apply_filter(x[c], f, mode="mirror", stride=2))
    assert filter_bank(x[0], fs).shape == (3, 8, 9)
    batch = filter_bank(np.stack([x, 2 * x]), fs)
    assert batch.shape == (2, 9, 8, 9)
    np.testing.assert_array_equal(batch[0], filter_bank(x, fs))
    with pytest.raises(ValueError, match="at least one Filter"):
        filter_bank(x, [])


# ----------------------------------------------------------------------------- parse / load kernels
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("-1,0,1;-2,0,2;-1,0,1", K.SOBEL_X),
        ("-1 0 1; -2 0 2; -1 0 1", K.SOBEL_X),
        ("-1, 0, 1\n-2, 0, 2\n-1, 0, 1\n", K.SOBEL_X),
        ("1/9 1/9 1/9;1/9 1/9 1/9;1/9 1/9 1/9;", np.full((3, 3), 1 / 9)),
        ("  0.5  ", [[0.5]]),
        ("1e-3,-2.5E2", [[1e-3, -250.0]]),
    ],
)
def test_parse_kernel_good(text, want):
    got = parse_kernel(text)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty kernel text ''"),
        ("   ", "empty kernel text"),
        ("1,2;3", r"row 2 '3' has 1 value\(s\), row 1 has 2"),
        ("1,2;;3,4", "row 2 is empty"),
        ("1,abc,3", "'abc' is not a number"),
        ("1,,3", r"empty value in row 1 '1,,3'"),
        ("1,nan", "'nan' is not finite"),
        ("inf 1", "'inf' is not finite"),
        ("1/0 1", "'1/0' is not a number or fraction"),
        ("1/x", "'1/x' is not a number or fraction"),
    ],
)
def test_parse_kernel_bad(text, match):
    with pytest.raises(ValueError, match=match):
        parse_kernel(text)


def test_load_kernel_files(tmp_path):
    np.save(tmp_path / "k.npy", K.SOBEL_X.astype(np.float32))
    np.testing.assert_array_equal(load_kernel(tmp_path / "k.npy"), K.SOBEL_X)
    np.save(tmp_path / "i.npy", np.arange(4).reshape(2, 2))
    assert load_kernel(str(tmp_path / "i.npy")).dtype == np.float64
    (tmp_path / "k.txt").write_text("# sobel\n-1 0 1\n-2 0 2\n-1 0 1\n")
    np.testing.assert_array_equal(load_kernel(tmp_path / "k.txt"), K.SOBEL_X)
    (tmp_path / "k.csv").write_text("-1,0,1\n-2,0,2\n-1,0,1\n")
    np.testing.assert_array_equal(load_kernel(tmp_path / "k.csv"), K.SOBEL_X)
    (tmp_path / "row.txt").write_text("1 2 3\n")
    assert load_kernel(tmp_path / "row.txt").shape == (1, 3)
    f = custom_filter(load_kernel(tmp_path / "k.csv"))
    assert f.name == "custom"
    np.testing.assert_array_equal(f.kernels[0], K.SOBEL_X)


def test_load_kernel_bad_files(tmp_path):
    with pytest.raises(ValueError, match=r"must end in .npy, .txt or .csv, got '.*k.png'"):
        load_kernel(tmp_path / "k.png")
    with pytest.raises(ValueError, match="does not exist"):
        load_kernel(tmp_path / "missing.npy")
    np.save(tmp_path / "v.npy", np.ones(3))
    with pytest.raises(ValueError, match=r"v.npy': kernel must be 2-D, got shape \(3,\)"):
        load_kernel(tmp_path / "v.npy")
    np.save(tmp_path / "n.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="must be finite"):
        load_kernel(tmp_path / "n.npy")
    np.save(tmp_path / "s.npy", np.array([["a"]]))
    with pytest.raises(ValueError, match="real numeric array"):
        load_kernel(tmp_path / "s.npy")
    np.save(tmp_path / "o.npy", np.array([[{}]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot be read"):
        load_kernel(tmp_path / "o.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an npy file")
    with pytest.raises(ValueError, match="cannot be read"):
        load_kernel(tmp_path / "junk.npy")
    (tmp_path / "bad.txt").write_text("1 2\nfoo 4\n")
    with pytest.raises(ValueError, match="bad.txt' cannot be read"):
        load_kernel(tmp_path / "bad.txt")
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="ragged.csv' cannot be read"):
        load_kernel(tmp_path / "ragged.csv")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty.txt': kernel must not be empty"):
        load_kernel(tmp_path / "empty.txt")


# ----------------------------------------------------------------------------- activations
def test_activations():
    assert ACTIVATIONS == ("none", "relu", "abs")
    x = np.array([-1.5, 0.0, 2.0, np.nan], dtype=np.float32)
    r = activate(x, "relu")
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r, [0.0, 0.0, 2.0, np.nan])
    a = activate(x, "abs")
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, [1.5, 0.0, 2.0, np.nan])
    assert activate(x, "none") is x
    with pytest.raises(ValueError, match="activation must be one of none, relu, abs, got 'gelu'"):
        activate(x, "gelu")


# ----------------------------------------------------------------------------- properties
images = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=7),
    elements=st.floats(-1e6, 1e6, allow_nan=False, width=32),
)


@settings(max_examples=60, deadline=None)
@given(x=images, mode=st.sampled_from(BOUNDARY_MODES), stride=st.integers(1, 3), name=st.sampled_from(["none", "identity"]))
def test_identity_is_exact(x, mode, stride, name):
    y = apply_filter(x, get_filter(name), mode=mode, stride=stride)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y, x[..., ::stride, ::stride])


@settings(max_examples=60, deadline=None)
@given(
    c=st.floats(-1e3, 1e3, allow_nan=False),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    mode=st.sampled_from([m for m in BOUNDARY_MODES if m != "constant"]),
    spec=st.sampled_from(["gaussian:sigma=0.7", "gaussian:sigma=2", "box:size=3", "box:size=2x5"]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_constant_input_is_preserved_by_smoothing(c, h, w, mode, spec, dtype):
    x = np.full((2, h, w), c, dtype=dtype)
    y = apply_filter(x, parse_filter_spec(spec), mode=mode)
    np.testing.assert_allclose(y, c, rtol=1e-6, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 8),
    w=st.integers(1, 8),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    mode=st.sampled_from(BOUNDARY_MODES),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_reference_on_small_images(h, w, kh, kw, mode, stride, dilation, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((h, w))
    k = rng.standard_normal((kh, kw))
    if seed % 2:
        k = np.outer(k[:, 0], k[0])  # exercise the separable path too
    got = correlate2d(x, k, mode=mode, stride=stride, dilation=dilation, cval=-0.25)
    want = ref_correlate(x, k, mode=mode, stride=stride, dilation=dilation, cval=-0.25)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
