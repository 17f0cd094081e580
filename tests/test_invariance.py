"""poolcli.invariance: shift parsing, shift conventions and the metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from poolcli.antialias import aps_pool2d, max_blur_pool2d
from poolcli.invariance import (
    MAX_SHIFTS,
    circular_shift,
    compare,
    crop_pair,
    parse_shifts,
    shift_pairs,
)
from poolcli.pooling import pool2d

KEYS = ["cosine", "rel_l2", "equiv_rel_l2", "equiv_offset", "global_rel_diff"]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _json_ok(r):
    json.dumps(r, allow_nan=False)
    assert list(r) == KEYS
    for k in ("cosine", "rel_l2", "equiv_rel_l2", "global_rel_diff"):
        assert r[k] is None or type(r[k]) is float, (k, type(r[k]))
    assert r["equiv_offset"] is None or (
        isinstance(r["equiv_offset"], list) and all(type(v) is int for v in r["equiv_offset"])
    )


# ----------------------------------------------------------------------------- parse_shifts


@pytest.mark.parametrize(
    "text, want",
    [
        ("3", [3]),
        ("0", [0]),
        ("-2", [-2]),
        ("1,2,3", [1, 2, 3]),
        (" 1, 2 ,3 ", [1, 2, 3]),
        ("0:5", [0, 1, 2, 3, 4, 5]),
        ("0:4", [0, 1, 2, 3, 4]),
        ("2:2", [2]),
        ("0:8:2", [0, 2, 4, 6, 8]),
        ("0:7:3", [0, 3, 6]),
        ("3:0", [3, 2, 1, 0]),
        ("4:0:-2", [4, 2, 0]),
        ("-3:3:3", [-3, 0, 3]),
        ("0:2,5,7:8", [0, 1, 2, 5, 7, 8]),
        ("1,1,0:2", [1, 0, 2]),
        ("+1", [1]),
    ],
)
def test_parse_shifts(text, want):
    assert parse_shifts(text) == want


@pytest.mark.parametrize(
    "text, part",
    [
        ("", "''"),
        ("a", "'a'"),
        ("1,x", "'x'"),
        ("1,,2", "''"),
        ("1.5", "'1.5'"),
        ("0:", "'0:'"),
        (":3", "':3'"),
        ("0:4:0", "'0:4:0'"),
        ("0:4:-1", "'0:4:-1'"),
        ("0:1:2:3", "'0:1:2:3'"),
        ("1 2", "'1 2'"),
    ],
)
def test_parse_shifts_rejects_and_quotes(text, part):
    with pytest.raises(ValueError) as e:
        parse_shifts(text)
    assert part in str(e.value)


def test_parse_shifts_limits():
    assert len(parse_shifts(f"1:{MAX_SHIFTS}")) == MAX_SHIFTS
    with pytest.raises(ValueError, match="too many shifts"):
        parse_shifts("0:1000000000")
    with pytest.raises(ValueError, match="must be a string"):
        parse_shifts(3)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- shift_pairs


def test_shift_pairs():
    assert shift_pairs([0, 2], "x") == [(0, 0), (0, 2)]
    assert shift_pairs([0, 2], "y") == [(0, 0), (2, 0)]
    assert shift_pairs([-1, 2], "diag") == [(-1, -1), (2, 2)]
    assert shift_pairs([0, 1, 2], "grid") == [(a, b) for a in (0, 1, 2) for b in (0, 1, 2)]
    assert shift_pairs([1], "X") == [(0, 1)]
    assert all(type(v) is int for p in shift_pairs(list(np.arange(3)), "grid") for v in p)


@pytest.mark.parametrize("bad", ["z", "", "xy", None])
def test_shift_pairs_rejects_direction(bad):
    with pytest.raises(ValueError, match=r"direction must be one of x, y, diag, grid, got " + repr(bad)):
        shift_pairs([1], bad)


def test_shift_pairs_rejects_non_ints():
    with pytest.raises(ValueError, match="shifts must be ints"):
        shift_pairs([1.5], "x")


# ----------------------------------------------------------------------------- shifts


def test_circular_shift_direction():
    x = np.zeros((1, 5, 6))
    x[0, 1, 2] = 1
    y = circular_shift(x, 2, 3)
    assert y[0, 3, 5] == 1 and y.sum() == 1  # down by 2, right by 3
    y = circular_shift(x, -2, -3)
    assert y[0, 4, 5] == 1  # up by 2 (wraps), left by 3 (wraps)
    np.testing.assert_array_equal(circular_shift(x, 2, 3), np.roll(x, (2, 3), axis=(-2, -1)))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        circular_shift(np.zeros(3), 1, 0)
    with pytest.raises(ValueError, match=r"\(dy, dx\) must be a pair of ints"):
        circular_shift(x, 1.5, 0)


@pytest.mark.parametrize("dy, dx", [(0, 0), (1, 0), (0, 2), (-2, 1), (3, -3), (-3, -1)])
def test_crop_pair_convention(dy, dx):
    x = _rng(1).standard_normal((2, 20, 17))
    m = 3
    base, shifted = crop_pair(x, dy, dx, m)
    assert base.shape == shifted.shape == (2, 14, 11)
    np.testing.assert_array_equal(base, crop_pair(x, 0, 0, m)[0])  # same base for every shift
    h, w = base.shape[-2:]
    # shifted[i, j] == base[i - dy, j - dx] on the overlap
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                np.testing.assert_array_equal(shifted[:, i, j], base[:, i - dy, j - dx])
    # the same direction as np.roll: the crop of the rolled image is the shifted crop
    np.testing.assert_array_equal(shifted, np.roll(x, (dy, dx), axis=(-2, -1))[..., m : m + h, m : m + w])
    assert not base.flags.writeable and not shifted.flags.writeable
    assert np.shares_memory(base, x)


def test_crop_pair_errors():
    x = np.zeros((7, 9))
    assert crop_pair(x, 3, -3, 3)[0].shape == (1, 3)
    with pytest.raises(ValueError, match=r"too small for crop shifts up to max_shift=4"):
        crop_pair(x, 1, 0, 4)
    with pytest.raises(ValueError, match=r"shift \(dy, dx\) = \(3, 0\) exceeds max_shift=2"):
        crop_pair(x, 3, 0, 2)
    with pytest.raises(ValueError, match=r"max_shift must be an int >= 0, got -1"):
        crop_pair(x, 0, 0, -1)


# ----------------------------------------------------------------------------- compare


def test_identical_maps():
    fx = _rng(2).standard_normal((3, 8, 8))
    for mode in ("circular", "crop"):
        r = compare(fx, fx.copy(), (0, 0), 1, mode)
        _json_ok(r)
        assert r["cosine"] == pytest.approx(1.0, abs=1e-15)
        assert r["rel_l2"] == 0.0 and r["equiv_rel_l2"] == 0.0 and r["global_rel_diff"] == 0.0
        assert r["equiv_offset"] == [0, 0]


def test_rolled_map_is_found_at_its_offset():
    fx = _rng(3).standard_normal((2, 8, 10))
    ftx = np.roll(fx, (1, 2), axis=(-2, -1))
    r = compare(fx, ftx, (2, 4), 2, "circular")
    _json_ok(r)
    assert r["equiv_rel_l2"] == 0.0 and r["equiv_offset"] == [1, 2]
    assert r["global_rel_diff"] == 0.0  # a pure roll: same descriptor, bit for bit
    assert r["rel_l2"] > 0.5 and abs(r["cosine"]) < 0.5
    # the window is [floor(d/S) - 1, ceil(d/S) + 1]: an odd shift reaches both neighbours
    r = compare(fx, ftx, (3, 3), 2, "circular")
    assert r["equiv_offset"] == [1, 2] and r["equiv_rel_l2"] == 0.0
    # outside the window it is not found
    r = compare(fx, ftx, (8, 8), 2, "circular")  # window u in [3, 5]
    assert r["equiv_rel_l2"] > 0.5
    # negative shifts
    r = compare(fx, np.roll(fx, (-1, 0), axis=(-2, -1)), (-2, 0), (2, 2), "circular")
    assert r["equiv_offset"] == [-1, 0] and r["equiv_rel_l2"] == 0.0


def test_anisotropic_stride():
    fx = _rng(4).standard_normal((1, 9, 12))
    r = compare(fx, np.roll(fx, (2, 1), axis=(-2, -1)), (2, 3), (1, 3), "circular")
    assert r["equiv_offset"] == [2, 1] and r["equiv_rel_l2"] == 0.0


def test_crop_mode_finds_the_shifted_map():
    img = _rng(5).standard_normal((2, 30, 30))
    m = 4
    for dy, dx in [(2, 0), (0, -4), (4, 2), (-2, -2)]:
        base, shifted = crop_pair(img, dy, dx, m)
        fx, ftx = base[:, ::2, ::2], shifted[:, ::2, ::2]  # stride-2 subsampling: even shifts commute
        r = compare(fx, ftx, (dy, dx), 2, "crop")
        _json_ok(r)
        assert r["equiv_rel_l2"] == 0.0, (dy, dx, r)
        assert r["equiv_offset"] == [dy // 2, dx // 2]
        if (dy, dx) != (0, 0):
            assert r["rel_l2"] > 0.5  # the maps themselves differ: equivariant, not invariant
            assert r["global_rel_diff"] > 0  # crops differ at the borders


def test_crop_mode_overlap_and_normalisation():
    fx = np.zeros((1, 4, 4))
    fx[0, :2, :] = 1.0
    ftx = np.zeros((1, 4, 4))
    ftx[0, 1:3, :] = 1.0  # fx moved down by one
    r = compare(fx, ftx, (1, 0), 1, "crop")
    assert r["equiv_offset"] == [1, 0] and r["equiv_rel_l2"] == 0.0
    # a 1x1 map: only offset (0, 0) overlaps
    r = compare(np.ones((1, 1, 1)), np.full((1, 1, 1), 2.0), (1, 1), 2, "crop")
    assert r["equiv_offset"] == [0, 0] and r["equiv_rel_l2"] == 1.0
    with pytest.raises(ValueError, match="no offset in the window overlaps the map"):
        compare(np.ones((1, 2, 2)), np.ones((1, 2, 2)), (8, 0), 1, "crop")


def test_tie_break_prefers_the_expected_offset_then_lexicographic():
    fx = np.ones((1, 4, 4))  # every roll is the same map: all offsets tie at 0
    r = compare(fx, fx, (3, 1), 2, "circular")  # expected (1.5, 0.5)
    assert r["equiv_rel_l2"] == 0.0 and r["equiv_offset"] == [1, 0]  # (1,0),(1,1),(2,0),(2,1) tie on distance
    r = compare(fx, fx, (2, 4), 2, "circular")
    assert r["equiv_offset"] == [1, 2]


def test_zero_maps_give_none_not_nan():
    z = np.zeros((2, 4, 4))
    nz = np.ones((2, 4, 4))
    r = compare(z, z, (1, 0), 1, "circular")
    _json_ok(r)
    assert r["cosine"] is None and r["rel_l2"] == 0.0 and r["equiv_rel_l2"] == 0.0
    assert r["global_rel_diff"] == 0.0 and r["equiv_offset"] == [1, 0]  # all tie: the expected one
    r = compare(z, nz, (1, 0), 1, "circular")
    _json_ok(r)
    assert r["cosine"] is None and r["rel_l2"] is None and r["equiv_rel_l2"] is None
    assert r["equiv_offset"] is None and r["global_rel_diff"] is None
    r = compare(nz, z, (0, 0), 1, "crop")
    _json_ok(r)
    assert r["cosine"] is None and r["rel_l2"] == 1.0 and r["global_rel_diff"] == 1.0


def test_non_finite_maps_give_none():
    fx = np.ones((1, 4, 4))
    ftx = fx.copy()
    ftx[0, 0, 0] = np.nan
    r = compare(fx, ftx, (0, 0), 1, "circular")
    _json_ok(r)
    assert r["cosine"] is None and r["rel_l2"] is None and r["global_rel_diff"] is None


def test_global_descriptor_is_mean_and_max_per_channel():
    fx = np.zeros((2, 2, 2))
    fx[0] = [[1, 2], [3, 4]]  # mean 2.5, max 4
    fx[1] = [[0, 0], [0, 6]]  # mean 1.5, max 6
    ftx = fx.copy()
    ftx[1, 1, 1] = 2.0  # mean 0.5, max 2
    r = compare(fx, ftx, (0, 0), 1, "circular")
    want = math.hypot(1.0, 4.0) / math.sqrt(2.5**2 + 4**2 + 1.5**2 + 6**2)
    assert r["global_rel_diff"] == pytest.approx(want, rel=1e-15)


def test_compare_accepts_2d_and_float32_and_checks_arguments():
    fx = _rng(6).standard_normal((6, 6)).astype(np.float32)
    r = compare(fx, np.roll(fx, 1, axis=0), (1, 0), 1, "circular")
    assert r["equiv_rel_l2"] == 0.0 and r["equiv_offset"] == [1, 0]
    with pytest.raises(ValueError, match=r"same shape"):
        compare(np.ones((1, 4, 4)), np.ones((1, 4, 5)), (0, 0), 1, "circular")
    with pytest.raises(ValueError, match=r"mode must be one of circular, crop, got 'wrap'"):
        compare(fx, fx, (0, 0), 1, "wrap")
    with pytest.raises(ValueError, match=r"shift must be a pair of ints \(dy, dx\), got 1"):
        compare(fx, fx, 1, 1, "circular")
    with pytest.raises(ValueError, match=r"total_stride must be an int >= 1 or a pair of them, got 0"):
        compare(fx, fx, (0, 0), 0, "circular")
    with pytest.raises(ValueError, match=r"fx must have shape \(C, h, w\) or \(h, w\)"):
        compare(np.ones((1, 1, 4, 4)), np.ones((1, 1, 4, 4)), (0, 0), 1, "circular")


# ----------------------------------------------------------------------------- real pooling


def test_stride2_max_pool_is_equivariant_only_for_even_shifts():
    x = _rng(7).standard_normal((3, 16, 16)).astype(np.float32)
    fx = pool2d(x, "max", 2)
    r = compare(fx, pool2d(circular_shift(x, 2, 0), "max", 2), (2, 0), 2, "circular")
    _json_ok(r)
    assert r["equiv_rel_l2"] < 1e-6 and r["equiv_offset"] == [1, 0]
    assert r["global_rel_diff"] < 1e-6
    r1 = compare(fx, pool2d(circular_shift(x, 1, 0), "max", 2), (1, 0), 2, "circular")
    assert r1["equiv_rel_l2"] > 0.1  # aliasing: an odd shift keeps other maxima
    r3 = compare(fx, pool2d(circular_shift(x, 0, 3), "max", 2), (0, 3), 2, "circular")
    assert r3["equiv_rel_l2"] > 0.1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aps_pool_is_equivariant_for_every_shift(dtype):
    x = _rng(8).standard_normal((3, 16, 16)).astype(dtype)
    fx = aps_pool2d(x, 2, 2, 1)
    for s in range(5):
        for dy, dx in [(s, 0), (0, s), (s, s)]:
            r = compare(fx, aps_pool2d(circular_shift(x, dy, dx), 2, 2, 1), (dy, dx), 2, "circular")
            _json_ok(r)
            assert r["equiv_rel_l2"] < 1e-6, (dy, dx, r)
            assert r["global_rel_diff"] < 1e-6, (dy, dx, r)


def test_circular_max_blur_pool_reduces_aliasing():
    """Zhang's point: blurring makes odd shifts far less damaging than plain max pooling."""
    x = _rng(9).standard_normal((3, 32, 32))
    plain, blur = [], []
    for s in (1, 3):
        sx = circular_shift(x, s, 0)
        plain.append(compare(pool2d(x, "max", 2), pool2d(sx, "max", 2), (s, 0), 2, "circular")["equiv_rel_l2"])
        f = lambda a: max_blur_pool2d(a, 2, 2, 5, circular=True)  # noqa: E731
        blur.append(compare(f(x), f(sx), (s, 0), 2, "circular")["equiv_rel_l2"])
    assert max(blur) < 0.7 * min(plain)
