"""poolcli against PyTorch golden outputs (tests/data/golden_pool2d.npz).

The fixture is produced by ``tests/data/make_golden.py`` with a torch oracle; this
module needs numpy only. Every case is its own test (parametrised by case id), so a
failure names the case; the torch call it came from is in the assertion message.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from reference import ref_adaptive_pool2d, ref_pool2d

from poolcli import adaptive_pool2d, pool2d

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden_pool2d.npz")
_Z = np.load(GOLDEN)
CASES = json.loads(str(_Z["cases"]))
META = json.loads(str(_Z["meta"]))
ARRAYS = {k: _Z[k] for k in _Z.files if k not in ("cases", "meta")}
OK_CASES = [c for c in CASES if c["error"] is None]
ERR_CASES = [c for c in CASES if c["error"] is not None]
EXACT = ("max", "min")  # pure comparisons: must be bit-exact (NaN positions included)


def _kwargs(case):
    """JSON lists back to tuples (poolcli takes int-or-pair arguments)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in case["kwargs"].items()}


def _run(fn_pool, fn_adaptive, case, x):
    kw = _kwargs(case)
    if case["op"] == "adaptive":
        return fn_adaptive(x, case["mode"], kw["output_size"])
    return fn_pool(x, case["mode"], **kw)


def _taps(case, x):
    """Number of summed elements per output (upper bound), for the tolerance."""
    kw = case["kwargs"]
    if case["op"] == "adaptive":
        oh, ow = (kw["output_size"],) * 2 if not isinstance(kw["output_size"], list) else kw["output_size"]
        H, W = x.shape[-2:]
        oh, ow = oh or H, ow or W
        return (-(-H // oh) + 1) * (-(-W // ow) + 1)
    kh, kw_ = kw["size"]
    return kh * kw_


def _check(case, x, y, got):
    """max/min bit-exact; avg/lp/adaptive avg within tolerance.

    Tolerance: rtol=1e-6 plus atol = taps * eps(dtype) * max|x| (for lp: of max|x|
    and of the summed power). A sum of n terms computed in a different order
    than torch's differs by at most about n*eps*sum|terms| <= n*eps*max|x|*n/n-ish
    -- the averaged output's absolute error is bounded by n * eps * max|x|, which
    also covers cancellation (outputs near 0, where rtol alone would be meaningless).
    For float64 this is ~1e-14 * max|x|: effectively exact.
    """
    msg = f"{case['id']}: {case['torch']} dtype={case['dtype']} shape={case['shape']}"
    assert isinstance(got, np.ndarray), msg
    assert got.dtype == y.dtype, f"{msg}: dtype {got.dtype} != {y.dtype}"
    assert got.shape == y.shape, f"{msg}: shape {got.shape} != {y.shape}"
    if case["mode"] in EXACT:
        np.testing.assert_array_equal(got, y, err_msg=msg)
        return
    eps = np.finfo(y.dtype).eps
    finite = np.abs(x[np.isfinite(x)])
    scale = float(finite.max()) if finite.size else 1.0
    if case["mode"] == "lp":
        p = float(case["kwargs"]["p"])
        scale = max(scale, scale ** p)  # the summed powers before the 1/p root
    atol = _taps(case, x) * eps * max(scale, 1e-30)
    np.testing.assert_allclose(got, y, rtol=1e-6, atol=atol, err_msg=msg)


def test_fixture_meta():
    assert META["torch"].startswith("2."), META
    assert len(CASES) >= 400
    assert len(ERR_CASES) >= 10
    for c in OK_CASES:
        assert f"{c['id']}_y" in ARRAYS and f"{c['id']}_x" in ARRAYS


@pytest.mark.parametrize("case", OK_CASES, ids=[c["id"] for c in OK_CASES])
def test_reference_matches_torch(case):
    """Self-check: the brute-force reference reproduces torch on every golden case."""
    x = ARRAYS[f"{case['id']}_x"]
    y = ARRAYS[f"{case['id']}_y"]
    got = _run(ref_pool2d, ref_adaptive_pool2d, case, x)
    _check(case, x, y, got)
    if case["mode"] == "avg" and case["kwargs"].get("output_size") not in (1, [1, 1]):
        # The reference sums in torch's row-major order in the input dtype, so it is
        # bit-exact -- except adaptive 1x1, which torch computes with mean() (a
        # vectorised/pairwise reduction).
        np.testing.assert_array_equal(got, y, err_msg=case["torch"])


@pytest.mark.parametrize("case", ERR_CASES, ids=[c["id"] for c in ERR_CASES])
def test_reference_errors(case):
    x = ARRAYS[f"{case['id']}_x"]
    with pytest.raises(ValueError):
        _run(ref_pool2d, ref_adaptive_pool2d, case, x)


@pytest.mark.parametrize("case", OK_CASES, ids=[c["id"] for c in OK_CASES])
def test_golden(case):
    x = ARRAYS[f"{case['id']}_x"]
    y = ARRAYS[f"{case['id']}_y"]
    x_before = x.copy()
    got = _run(pool2d, adaptive_pool2d, case, x)
    np.testing.assert_array_equal(x, x_before)  # input untouched
    _check(case, x, y, got)


@pytest.mark.parametrize("case", ERR_CASES, ids=[c["id"] for c in ERR_CASES])
def test_golden_errors(case):
    """Where torch raises, poolcli raises ValueError."""
    x = ARRAYS[f"{case['id']}_x"]
    with pytest.raises(ValueError):
        _run(pool2d, adaptive_pool2d, case, x)


AVG_CASES = [c for c in OK_CASES if c["op"] == "pool2d" and c["mode"] == "avg"]


@pytest.mark.parametrize("case", AVG_CASES, ids=[c["id"] for c in AVG_CASES])
def test_golden_avg_bit_exact(case):
    """pool2d avg sums the taps in torch's row-major order in the input dtype and
    divides once, so it reproduces F.avg_pool2d bit for bit (float32 and float64).
    (Not asserted for adaptive avg, which sums in float64 / separably, nor lp,
    whose pow differs from torch's by an ulp here and there.)"""
    x = ARRAYS[f"{case['id']}_x"]
    y = ARRAYS[f"{case['id']}_y"]
    np.testing.assert_array_equal(_run(pool2d, adaptive_pool2d, case, x), y, err_msg=case["torch"])


def _avg_exactness():
    """(bit-exact, total) per kind for the averaging cases."""
    stats: dict[str, list[int]] = {}
    for case in OK_CASES:
        if case["mode"] not in ("avg", "lp"):
            continue
        key = f"{case['op']}-{case['mode']}-{case['dtype']}"
        x = ARRAYS[f"{case['id']}_x"]
        y = ARRAYS[f"{case['id']}_y"]
        got = _run(pool2d, adaptive_pool2d, case, x)
        s = stats.setdefault(key, [0, 0])
        s[0] += bool(got.shape == y.shape and np.array_equal(got, y, equal_nan=True))
        s[1] += 1
    return stats


def test_avg_bit_exactness_report(capsys):
    stats = _avg_exactness()
    with capsys.disabled():
        print("\n[golden] bit-exact avg-family cases (exact/total):")
        for key in sorted(stats):
            print(f"  {key:32s} {stats[key][0]:4d}/{stats[key][1]}")
    assert stats
