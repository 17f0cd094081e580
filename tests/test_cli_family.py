"""The pooling family in the CLI (issue 7): every --pool mode, unpool maps, --compare, option fuzzing.

Each mode's stage-2 ``.npy`` is compared bit for bit with ``pool2d`` (or the
family function) applied to the stage-1 map the same run wrote; unpool maps
are compared with a brute-force argmax per window. The hypothesis test at the
end feeds ``build_stack`` random option values (valid and invalid): it returns
a Stack whose canonical string round-trips, or raises ``UsageError``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from poolcli.cli import PoolMode, app, build_stack, main
from poolcli.errors import UsageError
from poolcli.pooling import pool2d, unpool2d
from poolcli.pooling_family import fractional_max_pool2d, learned_pool2d
from poolcli.stack import POOL_METHODS, Stack, parse_stack

runner = CliRunner()


def run(*args, out: Path):
    return runner.invoke(app, ["run", *map(str, args), "--out", str(out), "--quiet", "--workers", "1"])


def run_ok(*args, out: Path) -> dict:
    result = run(*args, out=out)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def via_main(capsys, *args) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exc:
        main([*map(str, args)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    return exc.value.code, err


def stages(report: dict) -> list[dict]:
    return report["inputs"][0]["stages"]


def distinct_png(path: Path, h: int, w: int, seed: int = 0) -> Path:
    """An L PNG whose pixels are all distinct and non-zero (no ties, no zero maxima)."""
    assert h * w <= 255
    vals = np.random.default_rng(seed).permutation(np.arange(1, h * w + 1)).astype(np.uint8).reshape(h, w)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(vals, mode="L").save(path)
    return path


# ----------------------------------------------------------------------------- every mode, bit-exact

# (CLI args, pool2d mode, pool2d keyword arguments)
FAMILY = {
    "median": (["--pool", "median"], "median", dict(size=2)),
    "median-3-s2-pad1": (
        ["--pool", "median", "--size", "3", "--stride", "2", "--padding", "1"],
        "median",
        dict(size=3, stride=2, padding=1),
    ),
    "quantile": (["--pool", "quantile", "--q", "0.25", "--size", "3"], "quantile", dict(size=3, q=0.25)),
    "mixed-default": (["--pool", "mixed"], "mixed", dict(size=2, alpha=0.5)),
    "mixed-alpha": (["--pool", "mixed", "--alpha", "0.3", "--size", "2x3"], "mixed", dict(size=(2, 3), alpha=0.3)),
    "softpool": (["--pool", "softpool", "--size", "3", "--stride", "2"], "softpool", dict(size=3, stride=2)),
    "stochastic": (["--pool", "stochastic"], "stochastic", dict(size=2)),
    "stochastic-train": (
        ["--pool", "stochastic", "--train", "--seed", "3"],
        "stochastic",
        dict(size=2, train=True, seed=3),
    ),
    "gem-default": (["--pool", "gem"], "gem", dict(size=2, p=3.0)),
    "gem-p": (["--pool", "gem", "--p", "2.5", "--ceil-mode", "--size", "3"], "gem", dict(size=3, p=2.5, ceil_mode=True)),
    "lp": (["--pool", "lp", "--p", "2"], "lp", dict(size=2, p=2.0)),
}


@pytest.mark.parametrize("case", list(FAMILY), ids=list(FAMILY))
def test_family_mode_equals_pool2d_of_stage1(tmp_path, make_image, case):
    args, mode, kw = FAMILY[case]
    img = make_image("img.png", "L", (13, 17), seed=11)
    out = tmp_path / "out"
    rep = run_ok(img, *args, out=out)
    s1, s2 = stages(rep)
    assert s2["name"] == mode
    x = np.load(out / s1["npy"])
    got = np.load(out / s2["npy"])
    want = pool2d(x, mode, **kw)
    assert got.dtype == np.float32 and want.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert all((out / p).is_file() for p in s2["png"])
    assert "unpool_npy" not in s2 and "unpool_png" not in s2  # not a max stage


def test_fractional_via_pool_and_ratio(tmp_path, make_image):
    img = make_image("img.png", "L", (20, 23), seed=12)
    out = tmp_path / "out"
    rep = run_ok(img, "--pool", "fractional", "--ratio", "0.7", "--seed", "5", out=out)
    s1, s2 = stages(rep)
    assert s2["spec"].startswith("fractional(")
    x = np.load(out / s1["npy"])
    want = fractional_max_pool2d(x, 2, output_ratio=0.7, seed=5)
    np.testing.assert_array_equal(np.load(out / s2["npy"]), want)
    assert "unpool_npy" not in s2  # fractional max has no unpool map (yet)


def test_learned_via_pool_and_weights(tmp_path, make_image):
    img = make_image("img.png", "L", (12, 16), seed=13)
    w = np.array([[0.1, 0.2, 0.3], [0.0, 0.5, -0.25], [1.0, 0.0, 0.125]])
    wfile = tmp_path / "w.npy"
    np.save(wfile, w)
    out = tmp_path / "out"
    rep = run_ok(img, "--pool", "learned", "--weights", wfile, "--stride", "2", out=out)
    s1, s2 = stages(rep)
    assert s2["name"] == "learned" and s2["stride"] == [2, 2]
    x = np.load(out / s1["npy"])
    np.testing.assert_array_equal(np.load(out / s2["npy"]), learned_pool2d(x, w, 2).astype(np.float32))


def test_family_through_stack_string(tmp_path, make_image):
    img = make_image("img.png", "L", (16, 16), seed=14)
    out = tmp_path / "out"
    spec = "sobel | fractional(ratio=0.5, overlapping) | quantile(2, q=0.75) | mixed(2, alpha=1)"
    rep = run_ok(img, "--stack", spec, out=out)
    assert [s["name"] for s in stages(rep)] == ["sobel", "fractional", "quantile", "mixed"]
    maps = [np.load(out / s["npy"]) for s in stages(rep)]
    np.testing.assert_array_equal(maps[2], pool2d(maps[1], "quantile", 2, q=0.75))
    np.testing.assert_array_equal(maps[3], pool2d(maps[2], "max", 2))  # alpha = 1: max


def test_stochastic_train_is_seeded(tmp_path, make_image):
    img = make_image("img.png", "L", (16, 16), seed=15)

    def once(name: str, seed: str) -> np.ndarray:
        out = tmp_path / name
        rep = run_ok(img, "--pool", "stochastic", "--train", "--seed", seed, out=out)
        return np.load(out / stages(rep)[1]["npy"])

    a, b, c = once("a", "3"), once("b", "3"), once("c", "4")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # --no-train is the expectation, and differs from a draw
    out = tmp_path / "inf"
    rep = run_ok(img, "--pool", "stochastic", "--no-train", out=out)
    assert stages(rep)[1]["spec"] == "stochastic(size=2, stride=2)"
    assert not np.array_equal(np.load(out / stages(rep)[1]["npy"]), a)


# ----------------------------------------------------------------------------- option errors: one line, exit 2

BAD = {
    "quantile-without-q": (["--pool", "quantile"], "--q"),
    "q-out-of-range": (["--pool", "quantile", "--q", "1.5"], "--q"),
    "q-with-max": (["--pool", "max", "--q", "0.5"], "--q"),
    "alpha-with-gem": (["--pool", "gem", "--alpha", "0.5"], "--alpha"),
    "alpha-out-of-range": (["--pool", "mixed", "--alpha", "-0.1"], "--alpha"),
    "train-with-median": (["--pool", "median", "--train"], "--train"),
    "no-train-with-avg": (["--pool", "avg", "--no-train"], "--train"),
    "seed-with-max": (["--pool", "max", "--seed", "1"], "--seed"),
    "seed-negative": (["--pool", "stochastic", "--train", "--seed", "-1"], "--seed"),
    "p-with-median": (["--pool", "median", "--p", "2"], "--p"),
    "p-zero-gem": (["--pool", "gem", "--p", "0"], "--p"),
    "lp-without-p": (["--pool", "lp"], "--p"),
    "ratio-with-max": (["--pool", "max", "--ratio", "0.5"], "--ratio"),
    "fractional-without-ratio": (["--pool", "fractional"], "--ratio"),
    "ratio-too-big": (["--pool", "fractional", "--ratio", "1.5"], "--ratio"),
    "weights-with-avg": (["--pool", "avg", "--weights", "w.npy"], "--weights"),
    "learned-without-weights": (["--pool", "learned"], "--weights"),
    "learned-missing-file": (["--pool", "learned", "--weights", "no-such.npy"], "no-such.npy"),
    "learned-with-size": (["--pool", "learned", "--weights", "w.npy", "--size", "3"], "--size"),
    "blur-size-with-softpool": (["--pool", "softpool", "--blur-size", "3"], "--blur-size"),
    "ceil-with-blurpool": (["--pool", "blurpool", "--ceil-mode"], "--ceil-mode"),
    "size-with-none": (["--pool", "none", "--size", "3"], "--size"),
    "q-with-stack": (["--stack", "max(2)", "--q", "0.5"], "--q"),
    "unknown-pool": (["--pool", "fancy"], "--pool"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_family_options_one_line_exit_2(tmp_path, gray_png, capsys, monkeypatch, case):
    args, needle = BAD[case]
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "w.npy", np.ones((2, 2)))
    out = tmp_path / "out"
    code, err = via_main(capsys, "run", gray_png, *args, "--out", out)
    assert code == 2, err
    assert len(err) == 1, err
    assert needle in err[0]
    assert "Traceback" not in err[0]
    assert not out.exists() or not (out / "report.json").exists()


def test_bad_family_option_with_cli_runner(tmp_path, gray_png):
    result = run(gray_png, "--pool", "quantile", out=tmp_path / "out")
    assert result.exit_code == 2
    assert "--q" in result.output and "Traceback" not in result.output


def test_pool_enum_covers_every_mode():
    from poolcli.stack import op_specs

    modes = {m.value for m in PoolMode}
    assert set(POOL_METHODS) | {"quantile", "fractional", "learned", "none"} <= modes
    assert modes - {"none"} <= set(op_specs())


# ----------------------------------------------------------------------------- unpool maps


def brute_unpool(x: np.ndarray, k: int, s: int, pad: int = 0) -> tuple[np.ndarray, int]:
    """Each window's first maximum (row-major) put back at its place; also the number of windows."""
    c, h, w = x.shape
    xp = np.full((c, h + 2 * pad, w + 2 * pad), -np.inf, dtype=np.float64)
    xp[:, pad : pad + h, pad : pad + w] = x
    oh = (h + 2 * pad - k) // s + 1
    ow = (w + 2 * pad - k) // s + 1
    out = np.zeros_like(x)
    for ch in range(c):
        for i in range(oh):
            for j in range(ow):
                win = xp[ch, i * s : i * s + k, j * s : j * s + k]
                a, b = np.unravel_index(int(np.argmax(win)), win.shape)
                y, xx = i * s + a - pad, j * s + b - pad
                out[ch, y, xx] = x[ch, y, xx]
    return out, oh * ow


def test_unpool_places_each_maximum_back(tmp_path):
    img = distinct_png(tmp_path / "img.png", 12, 16, seed=1)
    out = tmp_path / "out"
    rep = run_ok(img, "--filter", "none", "--pool", "max", "--size", "2", "--unpool-dense", out=out)
    (s,) = stages(rep)
    x = np.asarray(Image.open(img), dtype=np.float32)[np.newaxis] / np.float32(255)
    un = np.load(out / s["unpool_npy"])
    # the compact form (int32 indices beside the stage's values) rebuilds it with unpool2d
    idx = np.load(out / s["unpool_indices"])
    assert idx.dtype == np.int32 and idx.shape == (1, 6, 8) and s["unpool_values"] == s["npy"]
    np.testing.assert_array_equal(unpool2d(np.load(out / s["npy"]), idx, 2, output_size=s["unpool_shape"][1:]), un)
    assert un.shape == x.shape and un.dtype == np.float32
    want, windows = brute_unpool(x, 2, 2)
    np.testing.assert_array_equal(un, want)
    nz = np.nonzero(un)
    np.testing.assert_array_equal(un[nz], x[nz])
    assert len(nz[0]) == windows == 6 * 8
    # and the kept values are exactly the pooled map
    np.testing.assert_array_equal(np.sort(un[nz]), np.sort(np.load(out / s["npy"]).ravel()))
    assert s["unpool_npy"] == "img_png/stage01_max_unpool.npy"
    assert s["unpool_png"] == ["img_png/stage01_max_unpool_c0.png"]
    assert (out / s["unpool_png"][0]).is_file()
    with Image.open(out / s["unpool_png"][0]) as im:
        assert im.size == (16, 12)
    # the existing keys are all still there
    assert {"index", "name", "spec", "stride", "shape", "npy", "png"} <= set(s)


def test_unpool_overlapping_padded_windows_and_second_stage(tmp_path):
    img = distinct_png(tmp_path / "img.png", 11, 13, seed=2)
    out = tmp_path / "out"
    rep = run_ok(img, "--stack", "max(3, stride=2, padding=1) | relu | max(2)", "--unpool-dense", out=out)
    s1, s2, s3 = stages(rep)
    x = np.asarray(Image.open(img), dtype=np.float32)[np.newaxis] / np.float32(255)
    np.testing.assert_array_equal(np.load(out / s1["unpool_npy"]), brute_unpool(x, 3, 2, 1)[0])
    assert "unpool_npy" not in s2  # relu
    x2 = np.load(out / s2["npy"])
    np.testing.assert_array_equal(np.load(out / s3["unpool_npy"]), brute_unpool(x2, 2, 2)[0])
    assert np.load(out / s3["unpool_npy"]).shape == x2.shape


def test_unpool_per_channel_with_color_keep(tmp_path, rgb_png):
    out = tmp_path / "out"
    rep = run_ok(rgb_png, "--filter", "none", "--color", "keep", "--pool", "max", out=out)
    (s,) = stages(rep)
    assert len(s["unpool_png"]) == 3 and all((out / p).is_file() for p in s["unpool_png"])
    assert np.load(out / s["unpool_indices"]).shape == (3, 5, 7) and s["unpool_shape"] == [3, 10, 14]
    assert "unpool_npy" not in s  # the dense map only with --unpool-dense


@pytest.mark.parametrize(
    "spec",
    ["max(2, padding_mode=circular)", "max(2, dilation=2)", "avg(2)", "blurpool(2)", "min(2)"],
)
def test_no_unpool_for_other_stages(tmp_path, make_image, spec):
    img = make_image("img.png", "L", (12, 12))
    out = tmp_path / "out"
    rep = run_ok(img, "--stack", spec, out=out)
    assert "unpool_npy" not in stages(rep)[0] and "unpool_indices" not in stages(rep)[0]
    assert not list(out.rglob("*unpool*"))


def test_no_unpool_option(tmp_path, gray_png):
    out = tmp_path / "out"
    rep = run_ok(gray_png, "--no-unpool", out=out)
    assert all("unpool_npy" not in s for s in stages(rep))
    assert not list(out.rglob("*unpool*"))


def test_montage_shows_the_unpool_map_when_it_fits(tmp_path, make_image):
    small = make_image("small.png", "L", (12, 16))
    big = make_image("big.png", "L", (300, 400))  # reduced (over 256 rows), its grid wider than the legend under it

    def width(img: Path, *extra: str) -> int:
        out = tmp_path / f"{img.stem}{len(extra)}"
        rep = run_ok(img, *extra, out=out)
        with Image.open(out / rep["inputs"][0]["montage"]) as im:
            return im.width

    assert width(small) > width(small, "--no-unpool")
    assert width(big) > width(big, "--no-unpool")  # issue 12: always there, reduced with the block max


def test_no_png_keeps_the_unpool_indices_only(tmp_path, gray_png):
    out = tmp_path / "out"
    rep = run_ok(gray_png, "--no-png", out=out)
    s = stages(rep)[1]
    assert s["unpool_png"] == [] and (out / s["unpool_indices"]).is_file() and "unpool_npy" not in s
    assert [p.name for p in out.rglob("*.png")] == ["montage.png"]


def test_unpool_files_are_in_the_resume_marker(tmp_path, gray_png):
    out = tmp_path / "out"
    rep = run_ok(gray_png, out=out)
    s = stages(rep)[1]
    marker = json.loads((out / "gray_png" / "record.json").read_text(encoding="utf-8"))
    assert marker["record"]["stages"][1]["unpool_indices"] == s["unpool_indices"]
    # a complete set is resumed ...
    rep2 = run_ok(gray_png, "--resume", out=out)
    assert rep2["summary"]["resumed"] == 1
    # ... a missing unpool PNG makes the input run again
    (out / s["unpool_png"][0]).unlink()
    rep3 = run_ok(gray_png, "--resume", out=out)
    assert rep3["summary"]["resumed"] == 0 and rep3["summary"]["processed"] == 1
    assert (out / s["unpool_png"][0]).is_file()
    # --no-unpool changes the fingerprint: not resumed
    rep4 = run_ok(gray_png, "--resume", "--no-unpool", out=out)
    assert rep4["summary"]["resumed"] == 0


def test_load_options_change_the_fingerprint(tmp_path, gray_png):
    out = tmp_path / "out"
    run_ok(gray_png, out=out)
    assert run_ok(gray_png, "--resume", out=out)["summary"]["resumed"] == 1
    rep = run_ok(gray_png, "--resume", "--max-pixels", "1000000", out=out)
    assert rep["summary"]["resumed"] == 0 and rep["max_pixels"] == 1000000
    rep = run_ok(gray_png, "--resume", "--max-pixels", "1000000", "--nan", "zero", out=out)
    assert rep["summary"]["resumed"] == 0 and rep["nan"] == "zero"


# ----------------------------------------------------------------------------- invariance --compare


def test_invariance_compare_family(tmp_path, make_image):
    img = make_image("img.png", "L", (16, 16), seed=21)
    out = tmp_path / "inv"
    result = runner.invoke(
        app,
        ["invariance", str(img), "--compare", "max,median,softpool,gem", "--shifts", "0:2", "--out", str(out),
         "--quiet", "--no-plot", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "invariance.json").read_text(encoding="utf-8"))
    assert list(rep["methods"]) == ["max", "median", "softpool", "gem"]
    assert rep["methods"]["gem"].endswith("gem(size=2, stride=2, padding_mode=circular)")
    assert {r["method"] for r in rep["records"]} == {"max", "median", "softpool", "gem"}


def test_invariance_compare_every_pool_method(tmp_path, make_image):
    img = make_image("img.png", "L", (12, 12), seed=22)
    out = tmp_path / "inv"
    result = runner.invoke(
        app,
        ["invariance", str(img), "--compare", ",".join(POOL_METHODS), "--shifts", "0:1", "--out", str(out),
         "--quiet", "--no-plot", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "invariance.json").read_text(encoding="utf-8"))
    assert list(rep["methods"]) == list(POOL_METHODS)


def test_invariance_compare_rejects_unknown_and_lists_known(tmp_path, gray_png, capsys):
    code, err = via_main(capsys, "invariance", gray_png, "--compare", "max,fancy", "--out", tmp_path / "o")
    assert code == 2 and len(err) == 1
    assert "fancy" in err[0] and all(m in err[0] for m in POOL_METHODS)


def test_compare_help_lists_the_methods():
    """The --compare help is generated from the registry: every swappable mode is named whole."""
    result = runner.invoke(app, ["invariance", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    listed = re.search(r"any of ([a-z, ]+), with", text).group(1).split(", ")
    assert set(POOL_METHODS) <= set(listed)


def test_invariance_with_family_pool_and_load_options(tmp_path, make_image):
    img = make_image("img.png", "L", (12, 12), seed=23)
    out = tmp_path / "inv"
    result = runner.invoke(
        app,
        ["invariance", str(img), "--pool", "quantile", "--q", "0.5", "--nan", "zero", "--max-pixels", "500",
         "--shifts", "0:1", "--out", str(out), "--quiet", "--no-plot", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "invariance.json").read_text(encoding="utf-8"))
    assert rep["stack"].endswith("quantile(size=2, stride=2, q=0.5)")
    assert rep["nan"] == "zero" and rep["max_pixels"] == 500
    # the limit is applied
    result = runner.invoke(
        app, ["invariance", str(img), "--max-pixels", "100", "--out", str(tmp_path / "inv2"), "--quiet", "--no-plot"]
    )
    assert result.exit_code == 1 and "too large" in result.output


# ----------------------------------------------------------------------------- fuzzing build_stack

_INTS = st.integers(-3, 12).map(str)
_PAIR = st.tuples(st.integers(-1, 9), st.integers(-1, 9)).map(lambda t: f"{t[0]}x{t[1]}")
_GARBAGE = st.text(alphabet="0123456789x,.-+e ()|=abcsamevlid", max_size=10)
_GEOM = st.one_of(st.none(), _INTS, _PAIR, _GARBAGE)
_PADDING = st.one_of(
    st.none(),
    _INTS,
    _PAIR,
    st.sampled_from(["same", "valid", "SAME", " same "]),
    st.tuples(*[st.integers(-1, 4)] * 4).map(lambda t: ",".join(map(str, t))),
    _GARBAGE,
)
_FLOATS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-1, 10).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "1e-320", "2", "0", "abc", "", "3.5e1"]),
)
_POOLS = st.one_of(
    st.none(), st.sampled_from([m.value for m in PoolMode]), st.sampled_from(["MAX", " gem ", "nope", "max(2)", ""])
)


_VALID = {
    "size": st.one_of(st.integers(1, 4).map(str), st.tuples(st.integers(1, 4), st.integers(1, 4)).map(lambda t: f"{t[0]}x{t[1]}")),
    "stride": st.one_of(st.integers(1, 4).map(str), st.just("2x1")),
    "padding": st.sampled_from(["0", "1", "same", "valid", "0,1,1,0", "1x0"]),
    "dilation": st.sampled_from(["1", "2", "1x2"]),
    "blur_size": st.integers(1, 7),
    "p": st.floats(0.1, 8),
    "q": st.floats(0, 1),
    "alpha": st.floats(0, 1),
    "train": st.booleans(),
    "seed": st.integers(0, 2**40),
    "ratio": st.floats(0.05, 1),
}
_INVALID = {
    "size": _GEOM,
    "stride": _GEOM,
    "padding": _PADDING,
    "dilation": _GEOM,
    "blur_size": st.one_of(st.integers(-2, 9), st.sampled_from(["3", "x", "2.0"])),
    "p": _FLOATS,
    "q": _FLOATS,
    "alpha": _FLOATS,
    "train": st.booleans(),
    "seed": st.integers(-3, 3),
    "ratio": _FLOATS,
}
@st.composite
def cli_options(draw):
    """--pool and the single-stage options: mostly options the mode takes, with valid values; sometimes not."""
    from poolcli.stack import op_specs

    pool = draw(_POOLS)
    mode = (pool or "max").strip().lower()
    spec = op_specs().get(mode)
    takes = {q.name for q in spec.params} if spec is not None and mode != "none" else set()
    kw = {}
    for name in _VALID:
        applies = name in takes
        choice = draw(st.integers(0, 9))
        if applies and choice < 5:
            kw[name] = draw(_VALID[name])
        elif choice == 9 or (applies and choice == 8):
            kw[name] = draw(_INVALID[name])
        else:
            kw[name] = None
    if mode == "learned" and draw(st.booleans()):
        kw["weights"] = "w.npy"
    kw["ceil_mode"] = "ceil_mode" in takes and draw(st.integers(0, 3)) == 0
    kw["count_include_pad"] = not ("count_include_pad" in takes and draw(st.integers(0, 3)) == 0)
    return pool, kw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cli_options())
def test_build_stack_fuzz_round_trips_or_usage_error(tmp_path_factory, options):
    pool, kw = options
    if kw.get("weights"):
        wdir = tmp_path_factory.getbasetemp() / "fuzz-weights"
        wdir.mkdir(exist_ok=True)
        np.save(wdir / "w.npy", np.ones((2, 2)))
        kw["weights"] = str(wdir / "w.npy")
    try:
        s = build_stack(
            stack=None,
            preset=None,
            config=None,
            filters=None,
            kernel=None,
            boundary="reflect",
            conv_stride="1",
            conv_dilation="1",
            activation="none",
            pool=pool,
            divisor_override=None,
            **kw,
        )
    except UsageError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg
        return
    assert isinstance(s, Stack)
    again = parse_stack(str(s))
    assert again == s and str(again) == str(s)
    pools = [stage for stage in s.stages if stage.kind in ("pool", "fractional", "learned")]
    assert len(pools) == (0 if (pool or "max").strip().lower() == "none" else 1)


def test_threads_option_gives_the_same_bits(tmp_path):
    """--threads changes how the cores run, never what they compute."""
    import numpy as np
    from PIL import Image

    from poolcli._threads import set_num_threads

    img = tmp_path / "big.png"
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (300, 260), dtype=np.uint8)).save(img)
    outs = []
    try:
        for threads in ("1", "2"):
            out = tmp_path / f"t{threads}"
            res = CliRunner().invoke(
                app, ["run", str(img), "--stack", "sobel | avg(3, 2, 1) | max(2)", "--threads", threads, "-o", str(out), "-q"]
            )
            assert res.exit_code == 0, res.output
            outs.append([np.load(p) for p in sorted(out.rglob("stage*.npy"))])
    finally:
        set_num_threads(None)
    assert len(outs[0]) == len(outs[1]) >= 3
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    res = CliRunner().invoke(app, ["run", str(img), "--threads", "0", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2
