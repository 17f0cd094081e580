"""poolcli.invariance's fast metrics (issue 13) keep the values of the implementation they replaced.

* ``tests/data/invariance_cases.npz`` holds 1144 outputs of the old
  ``compare`` (it rolled and re-normed whole maps for every candidate offset):
  the current one must match them to 1e-9 relative, exact zeros exact, None
  as None, the same ``equiv_offset`` and the same error messages -- and, as
  ``tests/regression/record_outputs.py`` needs, in fact bit for bit.
* Hypothesis compares ``compare`` with a brute-force reference written here
  from the metric definitions (the module docstring), on maps built to have
  exact rolls, ties, zeros and near-cancellation.
"""

from __future__ import annotations

import importlib.util
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poolcli.invariance import Reference, compare, compare_many

DATA = Path(__file__).parent / "data"
FLOATS = ("cosine", "rel_l2", "equiv_rel_l2", "global_rel_diff")


def _load_cases():
    z = np.load(DATA / "invariance_cases.npz")
    return {k: z[k] for k in z.files if k[0] == "m" and k[1:].isdigit()}, json.loads(str(z["cases"]))


MAPS, CASES = _load_cases()


def _run(fx, ftx, shift, stride, mode):
    try:
        return compare(fx, ftx, tuple(shift), tuple(stride), mode)
    except ValueError as exc:
        return {"error": str(exc)}


def assert_close(got: dict, want: dict, rtol: float = 1e-9) -> None:
    """The fixture's contract: 1e-9 relative, exact 0 stays 0, None stays None, identical offsets."""
    assert got.keys() == want.keys()
    if "error" in want:
        assert got == want
        return
    assert got["equiv_offset"] == want["equiv_offset"]
    for k in FLOATS:
        g, w = got[k], want[k]
        if w is None or w == 0.0:
            assert g == w and (g is None) == (w is None), (k, g, w)
        else:
            assert type(g) is float and math.isclose(g, w, rel_tol=rtol, abs_tol=0.0), (k, g, w)


# ----------------------------------------------------------------------------- recorded cases


def test_fixture_covers_what_it_claims():
    assert len(CASES) == 1144
    modes = {c[4] for c in CASES}
    assert modes == {"circular", "crop"}
    dtypes = {MAPS[c[0]].dtype.kind + str(MAPS[c[0]].dtype.itemsize) for c in CASES}
    assert {"f8", "f4", "i8"} <= dtypes
    got = [c[5] for c in CASES]
    assert sum("error" in g for g in got) == 32
    ok = [g for g in got if "error" not in g]
    assert sum(g["equiv_rel_l2"] == 0.0 for g in ok) > 400  # exact rolls
    assert sum(g["equiv_rel_l2"] is None for g in ok) > 10  # zero maps
    assert {MAPS[c[0]].shape[0] for c in CASES} >= {1, 2, 3, 4}


@pytest.mark.parametrize("chunk", range(8))
def test_recorded_cases_to_1e9(chunk):
    for kx, kt, shift, stride, mode, want in CASES[chunk::8]:
        assert_close(_run(MAPS[kx], MAPS[kt], shift, stride, mode), want)


def test_recorded_cases_bit_for_bit():
    """What the regression digests of invariance.json need: every value identical."""
    bad = [i for i, (kx, kt, sh, s, m, want) in enumerate(CASES) if _run(MAPS[kx], MAPS[kt], sh, s, m) != want]
    assert not bad, bad[:10]


def test_reference_and_compare_many_match_the_recorded_cases():
    groups: dict[tuple, list] = {}
    for kx, kt, shift, stride, mode, want in CASES:
        if "error" not in want:
            groups.setdefault((kx, tuple(stride), mode), []).append((kt, tuple(shift), want))
    for (kx, stride, mode), items in groups.items():
        ref = Reference(MAPS[kx], stride, mode)
        for kt, shift, want in items:
            assert ref.compare(MAPS[kt], shift) == want
        many = compare_many(MAPS[kx], [MAPS[kt] for kt, _, _ in items], [s for _, s, _ in items], stride, mode)
        assert many == [w for _, _, w in items]


def test_generator_reproduces_the_fixture():
    spec = importlib.util.spec_from_file_location("make_invariance_cases", DATA / "make_invariance_cases.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    arrays, cases = mod.build()
    assert arrays.keys() == MAPS.keys()
    for k, a in arrays.items():
        assert a.dtype == MAPS[k].dtype and np.array_equal(a, MAPS[k]), k
    for got, want in zip(cases, CASES):
        assert got[:5] == want[:5]
        assert_close(got[5], want[5])


# ----------------------------------------------------------------------------- brute force


def _brute(fx, ftx, shift, stride, mode):
    """The metrics straight from their definitions: every candidate rolled / cropped and normed."""
    a = np.asarray(fx, dtype=np.float64).reshape((-1,) + np.shape(fx)[-2:])
    b = np.asarray(ftx, dtype=np.float64).reshape(a.shape)
    (dy, dx), (sy, sx) = shift, stride
    norm = lambda z: float(np.sqrt(np.sum(z * z)))  # noqa: E731

    def ratio(num, den):
        if not (math.isfinite(num) and math.isfinite(den)):
            return None
        q = 0.0 if num == 0.0 else (None if den == 0.0 else num / den)
        return q if q is None or math.isfinite(q) else None

    na, nb = norm(a), norm(b)
    cosine = None
    if na > 0 and nb > 0 and math.isfinite(na) and math.isfinite(nb):
        c = float(np.sum(a * b) / (na * nb))
        cosine = min(1.0, max(-1.0, c)) if math.isfinite(c) else None
    h, w = a.shape[-2:]
    found = []
    for u in range(math.floor(dy / sy) - 1, math.ceil(dy / sy) + 2):
        for v in range(math.floor(dx / sx) - 1, math.ceil(dx / sx) + 2):
            if mode == "circular":
                cur, ref = b, np.roll(a, (u, v), axis=(1, 2))
            elif abs(u) < h and abs(v) < w:
                cur = b[:, max(u, 0) : h + min(u, 0), max(v, 0) : w + min(v, 0)]
                ref = a[:, max(-u, 0) : h + min(-u, 0), max(-v, 0) : w + min(-v, 0)]
            else:
                continue
            err = ratio(norm(cur - ref), norm(ref))
            if err is not None:
                found.append((err, (u - Fraction(dy, sy)) ** 2 + (v - Fraction(dx, sx)) ** 2, u, v))
    best = min(found) if found else None
    desc = lambda f: np.concatenate(  # noqa: E731
        [[np.sort(c.ravel()).sum() / c.size, c.max()] for c in f]
    )
    glob = ratio(norm(desc(b) - desc(a)), norm(desc(a)))
    return {
        "cosine": cosine,
        "rel_l2": ratio(norm(b - a), na),
        "equiv_rel_l2": None if best is None else best[0],
        "equiv_offset": None if best is None else [best[2], best[3]],
        "global_rel_diff": glob,
    }


@st.composite
def cases(draw):
    c = draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["normal", "ints", "const", "zero"]))
    fx = {
        "normal": lambda: rng.standard_normal((c, h, w)),
        "ints": lambda: rng.integers(-2, 3, (c, h, w)).astype(float),  # many ties between offsets
        "const": lambda: np.full((c, h, w), 2.5),
        "zero": lambda: np.zeros((c, h, w)),
    }[kind]().astype(dtype)
    sy, sx = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dy, dx = draw(st.integers(-6, 6)), draw(st.integers(-6, 6))
    how = draw(st.sampled_from(["roll", "roll+tiny", "roll+noise", "other", "same"]))
    moved = np.roll(fx, (dy // sy, dx // sx), axis=(1, 2))
    ftx = {
        "roll": moved,
        "roll+tiny": moved + (1e-7 if dtype == np.float32 else 1e-13) * rng.standard_normal(fx.shape),
        "roll+noise": moved + 0.1 * rng.standard_normal(fx.shape),
        "other": rng.standard_normal(fx.shape),
        "same": fx.copy(),
    }[how].astype(dtype)
    return fx, ftx, (dy, dx), (sy, sx), draw(st.sampled_from(["circular", "crop"]))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_compare_matches_brute_force(case):
    fx, ftx, shift, stride, mode = case
    h, w = fx.shape[-2:]
    try:
        want = _brute(fx, ftx, shift, stride, mode)
    except ValueError:  # pragma: no cover - the brute force never raises
        raise
    if mode == "crop" and want["equiv_offset"] is None and not _any_overlap(shift, stride, h, w):
        with pytest.raises(ValueError, match="no offset in the window overlaps"):
            compare(fx, ftx, shift, stride, mode)
        return
    got = compare(fx, ftx, shift, stride, mode)
    assert_close(got, want)


def _any_overlap(shift, stride, h, w):
    us = range(math.floor(shift[0] / stride[0]) - 1, math.ceil(shift[0] / stride[0]) + 2)
    vs = range(math.floor(shift[1] / stride[1]) - 1, math.ceil(shift[1] / stride[1]) + 2)
    return any(abs(u) < h and abs(v) < w for u in us for v in vs)


@settings(max_examples=100)
@given(cases(), st.sampled_from(["transposed", "sliced", "2d"]))
def test_layouts_do_not_change_values(case, layout):
    """Non-contiguous and 2-D maps give what their contiguous copies give, bit for bit."""
    fx, ftx, shift, stride, mode = case
    if layout == "transposed":
        tf, tt = np.ascontiguousarray(np.swapaxes(fx, 1, 2)), np.ascontiguousarray(np.swapaxes(ftx, 1, 2))
        fx2, ftx2 = np.swapaxes(tf, 1, 2), np.swapaxes(tt, 1, 2)  # F-like views of the same values
    elif layout == "sliced":
        pad = lambda z: np.pad(z, ((0, 0), (1, 2), (3, 1)), constant_values=7)  # noqa: E731
        fx2, ftx2 = pad(fx)[:, 1:-2, 3:-1], pad(ftx)[:, 1:-2, 3:-1]
    else:
        fx, ftx = fx[:1], ftx[:1]
        fx2, ftx2 = fx[0], ftx[0]
    try:
        want = compare(np.ascontiguousarray(fx), np.ascontiguousarray(ftx), shift, stride, mode)
    except ValueError:
        return
    assert_close(compare(fx2, ftx2, shift, stride, mode), want)
    assert repr(compare(fx2, ftx2, shift, stride, mode)) == repr(_brute(fx2, ftx2, shift, stride, mode))


def test_cancellation_falls_back_to_the_direct_difference():
    """|ftx - S fx| a 1e-12 of |fx| (beyond the closed form's precision) is still right to 1e-9."""
    rng = np.random.default_rng(5)
    fx = rng.standard_normal((2, 64, 48)) * 1e3
    for scale in (1e-9, 1e-12, 1e-14, 0.0):
        ftx = np.roll(fx, (1, -2), axis=(1, 2)) + scale * rng.standard_normal(fx.shape)
        for mode in ("circular", "crop"):
            want = _brute(fx, ftx, (2, -4), (2, 2), mode)
            got = compare(fx, ftx, (2, -4), (2, 2), mode)
            assert_close(got, want)
            assert got["equiv_offset"] == [1, -2]
            assert (got["equiv_rel_l2"] == 0.0) == (scale == 0.0)


def test_exact_zero_and_none_stay():
    fx = np.arange(24.0).reshape(1, 4, 6)
    r = compare(fx, np.roll(fx, (0, 3), axis=(1, 2)), (0, 6), 2, "circular")
    assert r["equiv_rel_l2"] == 0.0 and r["equiv_offset"] == [0, 3] and r["global_rel_diff"] == 0.0
    z = np.zeros((1, 4, 6))
    r = compare(z, fx, (0, 1), 1, "circular")
    assert r["equiv_rel_l2"] is None and r["equiv_offset"] is None and r["rel_l2"] is None
    assert compare(z, z, (1, 1), 1, "crop")["equiv_rel_l2"] == 0.0


def test_reference_checks_its_arguments():
    ref = Reference(np.ones((2, 4, 4)), (2, 1), "crop")
    assert ref.shape == (2, 4, 4)
    with pytest.raises(ValueError, match="same shape"):
        ref.compare(np.ones((1, 4, 4)), (0, 0))
    with pytest.raises(ValueError, match="pair of ints"):
        ref.compare(np.ones((2, 4, 4)), (0.5, 0))
    with pytest.raises(ValueError, match="mode must be one of"):
        Reference(np.ones((4, 4)), 1, "wrap")
    with pytest.raises(ValueError, match="total_stride"):
        Reference(np.ones((4, 4)), 0)
    with pytest.raises(ValueError, match="same length"):
        compare_many(np.ones((4, 4)), [np.ones((4, 4))], [], 1)


@pytest.mark.parametrize("mode", ["circular", "crop"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_maps_bit_for_bit(mode, dtype):
    """Maps larger than the fused blocks and the blocked inner products: identical to the brute force."""
    rng = np.random.default_rng(11)
    fx = np.abs(rng.standard_normal((2, 181, 211))).astype(dtype)
    for shift, stride, how in [((0, 3), (1, 1), "roll"), ((2, 5), (2, 2), "noise"), ((-3, 1), (1, 1), "other"),
                               ((0, 0), (2, 2), "same"), ((4, 4), (4, 4), "roll")]:
        moved = np.roll(fx, (shift[0] // stride[0], shift[1] // stride[1]), axis=(1, 2))
        ftx = {"roll": moved, "noise": moved + dtype(0.01) * rng.standard_normal(fx.shape).astype(dtype),
               "other": np.abs(rng.standard_normal(fx.shape)).astype(dtype), "same": fx.copy()}[how]
        want = _brute(fx, ftx, shift, stride, mode)
        assert compare(fx, ftx, shift, stride, mode) == want, (shift, how)
        assert Reference(fx, stride, mode).compare(ftx, shift) == want


@settings(max_examples=300)
@given(cases(), st.sampled_from(["nan", "inf", "huge", "tiny", "negzero"]), st.sampled_from(["fx", "ftx", "both"]))
def test_non_finite_and_extreme_maps_match_brute_force(case, special, which):
    """NaN, inf, sums that overflow or underflow, -0.0: the estimates step aside, the values stay."""
    fx, ftx, shift, stride, mode = case
    fx, ftx = fx.astype(np.float64), ftx.astype(np.float64)
    for arr in {"fx": [fx], "ftx": [ftx], "both": [fx, ftx]}[which]:
        if special in ("nan", "inf"):
            arr[0, 0, -1] = np.nan if special == "nan" else np.inf
        elif special == "negzero":
            arr[...] = -0.0
        else:
            arr *= 1e160 if special == "huge" else 1e-170
    h, w = fx.shape[-2:]
    if mode == "crop" and not _any_overlap(shift, stride, h, w):
        return
    with np.errstate(all="ignore"):
        want = _brute(fx, ftx, shift, stride, mode)
    assert repr(compare(fx, ftx, shift, stride, mode)) == repr(want)


@pytest.mark.parametrize("mode", ["circular", "crop"])
@pytest.mark.parametrize("layout", ["fx-F", "ftx-F", "both-F", "sliced"])
def test_large_maps_in_other_layouts_bit_for_bit(mode, layout):
    """Sums follow the maps' memory order as the plain expressions do (F-ordered maps, views).

    A sum in another order differs in the last bit in roughly one case of
    seven here, so each layout is tried on 30 cases.
    """
    for seed in range(6):
        rng = np.random.default_rng(seed)
        fx = rng.standard_normal((2, 150, 170)).astype(np.float32)
        if layout in ("fx-F", "both-F"):
            fx = np.asfortranarray(fx)
        for shift in [(0, 3), (-3, 2), (1, 0), (2, 2), (0, -1)]:
            noise = np.float32(0.01) * rng.standard_normal(fx.shape).astype(np.float32)
            ftx = np.roll(fx, shift, axis=(1, 2)) + noise  # C order unless both are F
            f, t = fx, ftx
            if layout in ("ftx-F", "both-F"):
                t = np.asfortranarray(t)
            if layout == "sliced":
                f, t = np.pad(f, 2)[2:-2, 2:-2, 2:-2], np.pad(t, 2)[2:-2, 2:-2, 2:-2]
            want = repr(_brute(f, t, shift, (1, 1), mode))
            assert repr(compare(f, t, shift, (1, 1), mode)) == want, (seed, shift)
            assert repr(Reference(f, (1, 1), mode).compare(t, shift)) == want
