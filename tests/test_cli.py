"""`poolcli` as a user drives it: `run`, `filters`, `presets`, `--help`, `--version`.

Most tests go through Typer's ``CliRunner`` (in-process, fast); the one-line
error contract goes through ``poolcli.cli.main`` (the real entry point, which
turns Click's usage errors into one line), and a few runs go through a real
``python -m poolcli`` subprocess. Images are generated per test (conftest.py).
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
from conftest import ROOT, SAMPLES, SUBPROCESS_ENV, write_image
from PIL import Image
from reference import ref_output_shape, ref_pool2d
from typer.testing import CliRunner

import poolcli
from poolcli.cli import app, main
from poolcli.filters import apply_filter, get_filter
from poolcli.images import load_image
from poolcli.stack import PRESETS, apply_stack, parse_stack

runner = CliRunner()

SCENE = SAMPLES / "scene.png"
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


# ----------------------------------------------------------------------------- helpers


def run(*args: str, out: Path | None = None, quiet: bool = True):
    """``poolcli run ARGS --out OUT [-q]`` through the CliRunner."""
    argv = ["run", *map(str, args)]
    if out is not None:
        argv += ["--out", str(out)]
    if quiet:
        argv.append("--quiet")
    return runner.invoke(app, argv)


def run_ok(*args: str, out: Path, quiet: bool = True) -> dict:
    result = run(*args, out=out, quiet=quiet)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def npy(out: Path, stage: dict) -> np.ndarray:
    return np.load(out / stage["npy"])


def via_main(capsys, *args: str) -> tuple[int, list[str], str]:
    """Run the real entry point in-process: (exit code, stderr lines, stdout)."""
    with pytest.raises(SystemExit) as exc:
        main([*map(str, args)])
    captured = capsys.readouterr()
    code = exc.value.code if isinstance(exc.value.code, int) else (0 if exc.value.code is None else 1)
    return code, [ln for ln in captured.err.splitlines() if ln.strip()], captured.out


def subprocess_poolcli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "poolcli", *map(str, args)],
        cwd=cwd,
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


def leftovers(root: Path) -> list[Path]:
    """Temporary or hidden files left anywhere under ``root``."""
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def max_pool_2x2(a: np.ndarray) -> np.ndarray:
    """A 2x2 stride-2 max pool by reshape (floor mode), independent of poolcli."""
    c, h, w = a.shape
    h2, w2 = h // 2, w // 2
    return a[:, : 2 * h2, : 2 * w2].reshape(c, h2, 2, w2, 2).max(axis=(2, 4))


# ----------------------------------------------------------------------------- the headline run


@pytest.fixture(scope="module")
def scene_run(tmp_path_factory):
    """``poolcli run sample_images/scene.png --pool max --size 2 --stride 2 --out D`` (not quiet)."""
    out = tmp_path_factory.mktemp("scene") / "D"
    result = runner.invoke(app, ["run", str(SCENE), "--pool", "max", "--size", "2", "--stride", "2", "--out", str(out)])
    return result, out


def test_sample_run_exits_zero_and_writes_report(scene_run):
    result, out = scene_run
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["poolcli_version"] == poolcli.__version__
    assert report["stack"] == "sobel | max(size=2, stride=2)"
    assert str(parse_stack(report["stack"])) == report["stack"]
    assert report["failures"] == []
    (inp,) = report["inputs"]
    assert inp["path"] == str(SCENE)
    assert inp["input_shape"] == [1, 240, 320]
    assert [s["index"] for s in inp["stages"]] == [1, 2]
    assert [s["name"] for s in inp["stages"]] == ["sobel", "max"]
    assert [s["spec"] for s in inp["stages"]] == ["sobel", "max(size=2, stride=2)"]
    assert [s["shape"] for s in inp["stages"]] == [[1, 240, 320], [1, 120, 160]]
    for s in inp["stages"]:
        assert not Path(s["npy"]).is_absolute()
        assert (out / s["npy"]).is_file()
        assert isinstance(s["png"], list) and len(s["png"]) == s["shape"][0]
        for rel in s["png"]:
            assert not Path(rel).is_absolute()
            with Image.open(out / rel) as im:
                assert im.size == (s["shape"][2], s["shape"][1])


def test_sample_run_shapes_csv_has_input_row_and_one_row_per_stage(scene_run):
    _, out = scene_run
    with open(out / "shapes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["stage"], r["name"]) for r in rows] == [("0", "input"), ("1", "sobel"), ("2", "max")]
    assert all(r["input"] == str(SCENE) for r in rows)
    assert [(r["channels"], r["height"], r["width"]) for r in rows] == [("1", "240", "320")] * 2 + [("1", "120", "160")]


def test_sample_run_montage_opens_and_no_temp_files(scene_run):
    _, out = scene_run
    report = json.loads((out / "report.json").read_text())
    montage = out / report["inputs"][0]["montage"]
    assert montage.name == "montage.png"
    with Image.open(montage) as im:
        im.load()
        assert im.width > 320 and im.height >= 240
    assert leftovers(out) == []


def test_sample_run_maps_are_exactly_filter_then_max_pool(scene_run):
    """The headline check: stage 1 is the Sobel magnitude, stage 2 its 2x2/2 max pool, bit for bit."""
    _, out = scene_run
    report = json.loads((out / "report.json").read_text())
    s1, s2 = report["inputs"][0]["stages"]
    m1, m2 = npy(out, s1), npy(out, s2)
    assert m1.dtype == np.float32 and m2.dtype == np.float32
    assert m1.shape == (1, 240, 320) and m2.shape == (1, 120, 160)
    expected1 = apply_filter(load_image(SCENE), get_filter("sobel"))
    assert expected1.dtype == np.float32
    np.testing.assert_array_equal(m1, expected1)
    np.testing.assert_array_equal(m2, max_pool_2x2(m1))
    np.testing.assert_array_equal(m2, ref_pool2d(m1, "max", 2, 2))


def test_sample_run_table_shows_shapes_and_stack(scene_run):
    result, out = scene_run
    assert "1x240x320" in result.stdout
    assert "1x120x160" in result.stdout
    assert "sobel | max(size=2, stride=2)" in result.stdout
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------- subprocess runs


def test_python_m_poolcli_help(tmp_path):
    proc = subprocess_poolcli("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "run" in proc.stdout and "filters" in proc.stdout and "presets" in proc.stdout
    assert proc.stderr == ""


def test_python_m_poolcli_version(tmp_path):
    proc = subprocess_poolcli("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"poolcli {poolcli.__version__}"


def test_python_m_poolcli_full_run_on_sample(tmp_path):
    proc = subprocess_poolcli("run", SCENE, "--pool", "max", "--size", "2", "--stride", "2", "--out", "D", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1x120x160" in proc.stdout
    out = tmp_path / "D"
    report = json.loads((out / "report.json").read_text())
    s1, s2 = report["inputs"][0]["stages"]
    np.testing.assert_array_equal(npy(out, s2), max_pool_2x2(npy(out, s1)))
    assert leftovers(out) == []
    assert "Traceback" not in proc.stderr


def test_subprocess_bad_option_value_is_one_line(tmp_path, gray_png):
    proc = subprocess_poolcli("run", gray_png, "--size", "abc", "--out", "D", cwd=tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "--size" in lines[0] and "'abc'" in lines[0]


# ----------------------------------------------------------------------------- --help / --version in-process


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("run", "filters", "presets"):
        assert cmd in result.stdout


def test_run_help_mentions_cross_correlation_and_options():
    result = runner.invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for opt in ("--pool", "--size", "--stride", "--padding", "--stack", "--preset", "--config", "--json"):
        assert opt in text
    assert "cross-correlation" in text


def test_version_flag():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"poolcli {poolcli.__version__}"


# ----------------------------------------------------------------------------- pooling options


POOL_CASES = {
    "odd-size3-stride2": (["--pool", "max", "--size", "3", "--stride", "2"], dict(mode="max", size=3, stride=2)),
    "ceil": (["--pool", "max", "--size", "2", "--ceil-mode"], dict(mode="max", size=2, ceil_mode=True)),
    "avg-ceil": (
        ["--pool", "avg", "--size", "3", "--stride", "2", "--ceil-mode"],
        dict(mode="avg", size=3, stride=2, ceil_mode=True),
    ),
    "max-padding": (
        ["--pool", "max", "--size", "3", "--stride", "2", "--padding", "1"],
        dict(mode="max", size=3, stride=2, padding=1),
    ),
    "avg-pad-counted": (
        ["--pool", "avg", "--size", "3", "--stride", "2", "--padding", "1"],
        dict(mode="avg", size=3, stride=2, padding=1),
    ),
    "avg-no-count-include-pad": (
        ["--pool", "avg", "--size", "3", "--stride", "2", "--padding", "1", "--no-count-include-pad"],
        dict(mode="avg", size=3, stride=2, padding=1, count_include_pad=False),
    ),
    "avg-divisor": (
        ["--pool", "avg", "--size", "2", "--divisor-override", "3"],
        dict(mode="avg", size=2, divisor_override=3),
    ),
    "lp-p2": (["--pool", "lp", "--p", "2", "--size", "2"], dict(mode="lp", size=2, p=2.0)),
    "min-pair": (["--pool", "min", "--size", "2x3", "--stride", "1x2"], dict(mode="min", size=(2, 3), stride=(1, 2))),
    "max-same": (
        ["--pool", "max", "--size", "3", "--stride", "2", "--padding", "same"],
        dict(mode="max", size=3, stride=2, padding="same"),
    ),
    "avg-same": (
        ["--pool", "avg", "--size", "2", "--stride", "2", "--padding", "same"],
        dict(mode="avg", size=2, stride=2, padding="same"),
    ),
    "per-side-padding": (
        ["--pool", "max", "--size", "2", "--padding", "1,0,1,0"],
        dict(mode="max", size=2, padding=(1, 0, 1, 0)),
    ),
    "dilation": (
        ["--pool", "max", "--size", "2", "--stride", "1", "--dilation", "2"],
        dict(mode="max", size=2, stride=1, dilation=2),
    ),
    "avg-dilation": (
        ["--pool", "avg", "--size", "2", "--stride", "2", "--dilation", "2"],
        dict(mode="avg", size=2, stride=2, dilation=2),
    ),
}


@pytest.mark.parametrize("case", list(POOL_CASES), ids=list(POOL_CASES))
def test_pool_options_match_brute_force_reference(tmp_path, odd_png, case):
    """On a 7x9 image the pooled stage equals the brute-force reference applied to the filtered stage."""
    args, ref = POOL_CASES[case]
    out = tmp_path / "out"
    report = run_ok(odd_png, *args, out=out)
    s1, s2 = report["inputs"][0]["stages"]
    assert s1["name"] == "sobel" and s2["name"] == ref["mode"]
    m1, m2 = npy(out, s1), npy(out, s2)
    mode = ref.pop("mode")
    expected = ref_pool2d(m1, mode, **ref)
    assert m2.dtype == np.float32
    assert m2.shape == expected.shape
    assert s2["shape"] == list(expected.shape)
    if mode in ("max", "min"):
        np.testing.assert_array_equal(m2, expected)
    else:
        np.testing.assert_allclose(m2, expected, rtol=1e-6, atol=1e-7)
    # the canonical stack in the report rebuilds the same stack
    assert str(parse_stack(report["stack"])) == report["stack"]


def test_odd_size_shapes_follow_pytorch_formula(tmp_path, odd_png):
    out = tmp_path / "out"
    report = run_ok(odd_png, "--filter", "none", "--pool", "max", "--size", "2", out=out)
    (stage,) = report["inputs"][0]["stages"]
    assert stage["shape"] == [1, *ref_output_shape(7, 9, 2)] == [1, 3, 4]
    report = run_ok(odd_png, "--filter", "none", "--pool", "max", "--size", "2", "--ceil-mode", out=tmp_path / "o2")
    assert report["inputs"][0]["stages"][0]["shape"] == [1, 4, 5]


def test_pool_none_keeps_only_the_filter(tmp_path, gray_png):
    out = tmp_path / "out"
    report = run_ok(gray_png, "--pool", "none", out=out)
    (stage,) = report["inputs"][0]["stages"]
    assert stage["name"] == "sobel" and stage["shape"] == [1, 12, 16]


# ----------------------------------------------------------------------------- filter options


def test_filter_none_pools_the_image_itself(tmp_path, gray_png):
    out = tmp_path / "out"
    report = run_ok(gray_png, "--filter", "none", "--pool", "max", "--size", "2", out=out)
    assert report["stack"] == "max(size=2, stride=2)"
    (stage,) = report["inputs"][0]["stages"]
    x = load_image(gray_png)
    np.testing.assert_array_equal(x, np.asarray(Image.open(gray_png), np.float32)[None] / np.float32(255))
    np.testing.assert_array_equal(npy(out, stage), max_pool_2x2(x))


def test_16bit_png_is_scaled_by_65535(tmp_path, i16_png):
    out = tmp_path / "out"
    report = run_ok(i16_png, "--filter", "none", "--pool", "max", "--size", "2", out=out)
    raw = np.asarray(Image.open(i16_png)).astype(np.float32)
    assert raw.max() > 255  # really 16-bit data
    (stage,) = report["inputs"][0]["stages"]
    assert report["inputs"][0]["input_shape"] == [1, 8, 12]
    np.testing.assert_array_equal(npy(out, stage), max_pool_2x2(raw[None] / np.float32(65535)))


def test_several_filters_make_several_channels(tmp_path, gray_png):
    out = tmp_path / "out"
    report = run_ok(gray_png, "-f", "sobel-x", "-f", "sobel-y", "-f", "laplace", out=out)
    s1, s2 = report["inputs"][0]["stages"]
    assert s1["name"] == "sobel-x+sobel-y+laplace"
    assert s1["shape"] == [3, 12, 16] and s2["shape"] == [3, 6, 8]
    assert len(s1["png"]) == 3 and len(s2["png"]) == 3
    x = load_image(gray_png)
    m1 = npy(out, s1)
    for c, name in enumerate(("sobel-x", "sobel-y", "laplace")):
        np.testing.assert_array_equal(m1[c : c + 1], apply_filter(x, get_filter(name)))
    np.testing.assert_array_equal(npy(out, s2), max_pool_2x2(m1))


def test_filter_with_parameter(tmp_path, gray_png):
    out = tmp_path / "out"
    report = run_ok(gray_png, "--filter", "gaussian:sigma=2", out=out)
    s1 = report["inputs"][0]["stages"][0]
    assert s1["spec"] == "gaussian(sigma=2.0)"
    np.testing.assert_array_equal(npy(out, s1), apply_filter(load_image(gray_png), get_filter("gaussian", sigma=2)))


def _scipy_correlate(x: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    return ndi.correlate(x[0].astype(np.float64), kernel, mode=mode)[None]


def test_inline_kernel_is_cross_correlation(tmp_path, gray_png):
    out = tmp_path / "out"
    report = run_ok(gray_png, "--kernel", "1,0,-1;2,0,-2;1,0,-1", out=out)
    s1 = report["inputs"][0]["stages"][0]
    assert s1["name"] == "conv"
    expected = _scipy_correlate(load_image(gray_png), -SOBEL_X, "reflect")  # no flip: [1,0,-1] is -sobel-x
    np.testing.assert_allclose(npy(out, s1), expected, rtol=1e-5, atol=1e-6)
    assert str(parse_stack(report["stack"])) == report["stack"]


def test_kernel_from_npy_file(tmp_path, gray_png):
    kfile = tmp_path / "k.npy"
    kernel = np.array([[0.0, 1.0, 0.0], [0.5, -2.0, 0.25], [0.0, 1.0, 0.0]])
    np.save(kfile, kernel)
    out = tmp_path / "out"
    report = run_ok(gray_png, "--kernel", kfile, out=out)
    s1 = report["inputs"][0]["stages"][0]
    expected = _scipy_correlate(load_image(gray_png), kernel, "reflect")
    np.testing.assert_allclose(npy(out, s1), expected, rtol=1e-5, atol=1e-6)
    assert parse_stack(report["stack"]).stages[0].ops[0].name == "conv"


@pytest.mark.parametrize("boundary", ["mirror", "nearest", "constant", "wrap"])
def test_boundary_modes_are_scipy_modes(tmp_path, gray_png, boundary):
    out = tmp_path / "out"
    report = run_ok(gray_png, "-f", "sobel-x", "--boundary", boundary, "--pool", "none", out=out)
    (s1,) = report["inputs"][0]["stages"]
    assert f"mode={boundary}" in s1["spec"]
    expected = _scipy_correlate(load_image(gray_png), SOBEL_X, boundary)
    np.testing.assert_allclose(npy(out, s1), expected, rtol=1e-5, atol=1e-6)


def test_boundary_mirror_differs_from_default_reflect(tmp_path, gray_png):
    a = run_ok(gray_png, "-f", "sobel-x", "--pool", "none", out=tmp_path / "a")
    b = run_ok(gray_png, "-f", "sobel-x", "--boundary", "mirror", "--pool", "none", out=tmp_path / "b")
    ma = npy(tmp_path / "a", a["inputs"][0]["stages"][0])
    mb = npy(tmp_path / "b", b["inputs"][0]["stages"][0])
    np.testing.assert_array_equal(ma[:, 1:-1, 1:-1], mb[:, 1:-1, 1:-1])  # interior identical
    assert not np.array_equal(ma, mb)  # borders differ


def test_activation_relu(tmp_path, gray_png):
    out = tmp_path / "out"
    report = run_ok(gray_png, "-f", "sobel-x", "--activation", "relu", out=out)
    s1, s2, s3 = report["inputs"][0]["stages"]
    assert [s["name"] for s in (s1, s2, s3)] == ["sobel-x", "relu", "max"]
    m1, m2 = npy(out, s1), npy(out, s2)
    assert (m1 < 0).any()
    np.testing.assert_array_equal(m2, np.maximum(m1, 0))
    np.testing.assert_array_equal(npy(out, s3), max_pool_2x2(m2))


def test_conv_stride_two_subsamples_the_filter(tmp_path, odd_png):
    out = tmp_path / "out"
    report = run_ok(odd_png, "--conv-stride", "2", out=out)
    s1, s2 = report["inputs"][0]["stages"]
    assert s1["spec"] == "sobel(stride=2)"
    assert s1["stride"] == [2, 2]
    assert s1["shape"] == [1, 4, 5] and s2["shape"] == [1, 2, 2]
    full = apply_filter(load_image(odd_png), get_filter("sobel"))
    np.testing.assert_array_equal(npy(out, s1), full[:, ::2, ::2])


def test_color_keep_gives_three_channels(tmp_path, rgb_png):
    out = tmp_path / "out"
    report = run_ok(rgb_png, "--color", "keep", out=out)
    inp = report["inputs"][0]
    assert inp["input_shape"] == [3, 10, 14]
    assert [s["shape"] for s in inp["stages"]] == [[3, 10, 14], [3, 5, 7]]
    assert report["color"] == "keep"
    x = load_image(rgb_png, "keep")
    raw = np.asarray(Image.open(rgb_png)).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(x, np.moveaxis(raw, -1, 0))


def test_color_gray_default_gives_one_channel(tmp_path, rgb_png):
    report = run_ok(rgb_png, out=tmp_path / "out")
    assert report["inputs"][0]["input_shape"] == [1, 10, 14]


# ----------------------------------------------------------------------------- output options


def test_dense_units_counts_dense_parameters(tmp_path, gray_png):
    report = run_ok(gray_png, "--dense-units", "10", out=tmp_path / "out")
    inp = report["inputs"][0]
    assert report["dense_units"] == 10
    assert inp["input"]["dense_params"] == 12 * 16 * 10 + 10
    for s in inp["stages"]:
        elements = s["shape"][0] * s["shape"][1] * s["shape"][2]
        assert s["elements"] == elements
        assert s["dense_params"] == elements * 10 + 10
    with open(tmp_path / "out" / "shapes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["dense_params"]) for r in rows] == [12 * 16 * 10 + 10, 12 * 16 * 10 + 10, 6 * 8 * 10 + 10]


def test_dense_units_default_128_shown_in_table(tmp_path, gray_png):
    result = run(gray_png, out=tmp_path / "out", quiet=False)
    assert result.exit_code == 0
    assert "dense(128)" in result.stdout
    assert f"{6 * 8 * 128 + 128:,}" in result.stdout
    assert "1x6x8" in result.stdout


def test_json_prints_the_report(tmp_path, gray_png):
    out = tmp_path / "out"
    result = run(gray_png, "--json", out=out, quiet=False)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((out / "report.json").read_text())
    assert printed["inputs"][0]["stages"][1]["shape"] == [1, 6, 8]


def test_quiet_prints_nothing(tmp_path, gray_png):
    result = run(gray_png, out=tmp_path / "out", quiet=True)
    assert result.exit_code == 0
    assert result.stdout.strip() == ""
    assert (tmp_path / "out" / "report.json").is_file()


def test_no_png(tmp_path, gray_png):
    out = tmp_path / "out"
    report = run_ok(gray_png, "--no-png", out=out)
    assert all(s["png"] == [] for s in report["inputs"][0]["stages"])
    assert [p.name for p in out.rglob("*.png")] == ["montage.png"]
    assert all((out / s["npy"]).is_file() for s in report["inputs"][0]["stages"])


def test_no_montage(tmp_path, gray_png):
    out = tmp_path / "out"
    report = run_ok(gray_png, "--no-montage", out=out)
    assert "montage" not in report["inputs"][0]
    assert not list(out.rglob("montage.png"))
    assert len(list(out.rglob("*.png"))) == 3  # one per stage channel, plus the max stage's unpool map


def test_constant_image_gives_flat_pngs_without_warnings(tmp_path):
    img = tmp_path / "flat.png"
    Image.new("L", (8, 8), 77).save(img)
    out = tmp_path / "out"
    result = run(img, out=out)
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output
    for p in out.rglob("stage*.png"):
        arr = np.asarray(Image.open(p))
        assert arr.min() == arr.max()


# ----------------------------------------------------------------------------- stacks: presets, --stack, --config


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_runs(tmp_path, preset_png, name):
    out = tmp_path / "out"
    report = run_ok(preset_png, "--preset", name, out=out)
    expected_stack = parse_stack(PRESETS[name][1])
    assert report["stack"] == str(expected_stack)
    assert parse_stack(report["stack"]) == expected_stack
    maps = apply_stack(load_image(preset_png), expected_stack)
    stages = report["inputs"][0]["stages"]
    assert [s["shape"] for s in stages] == [list(m.shape) for m in maps]
    np.testing.assert_array_equal(npy(out, stages[-1]), maps[-1])
    assert leftovers(out) == []


def test_stack_option(tmp_path, gray_png):
    out = tmp_path / "out"
    report = run_ok(gray_png, "--stack", "sobel-x + sobel-y | abs | maxpool(2) | avg(3, stride=1, padding=1)", out=out)
    assert report["stack"] == "sobel-x + sobel-y | abs | max(size=2, stride=2) | avg(size=3, stride=1, padding=1)"
    assert [s["shape"] for s in report["inputs"][0]["stages"]] == [[2, 12, 16], [2, 12, 16], [2, 6, 8], [2, 6, 8]]


def test_config_with_stack_string(tmp_path, gray_png):
    cfg = tmp_path / "stack.toml"
    cfg.write_text('stack = "prewitt | relu | avg(2)"\n')
    report = run_ok(gray_png, "--config", cfg, out=tmp_path / "out")
    assert report["stack"] == "prewitt | relu | avg(size=2, stride=2)"


def test_config_with_stage_tables(tmp_path, gray_png):
    cfg = tmp_path / "stack.toml"
    cfg.write_text(
        '[[stage]]\nop = ["sobel-x", "sobel-y"]\n\n'
        '[[stage]]\nop = "relu"\n\n'
        '[[stage]]\nop = "max"\nsize = 3\nstride = 2\npadding = 1\n\n'
        '[[stage]]\nop = "avg"\nsize = [1, 2]\n'
    )
    out = tmp_path / "out"
    report = run_ok(gray_png, "--config", cfg, out=out)
    assert report["stack"] == "sobel-x + sobel-y | relu | max(size=3, stride=2, padding=1) | avg(size=1x2, stride=1x2)"
    assert [s["shape"] for s in report["inputs"][0]["stages"]] == [[2, 12, 16], [2, 12, 16], [2, 6, 8], [2, 6, 4]]


def test_config_and_stack_conflict(tmp_path, gray_png):
    cfg = tmp_path / "stack.toml"
    cfg.write_text('stack = "max(2)"\n')
    result = run(gray_png, "--config", cfg, "--stack", "max(2)", out=tmp_path / "out")
    assert result.exit_code == 2
    assert "--config" in result.output and "--stack" in result.output


# ----------------------------------------------------------------------------- filters / presets commands


def test_filters_command_lists_kernels():
    result = runner.invoke(app, ["filters"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for name in ("sobel", "sobel-x", "sobel-y", "prewitt", "scharr", "laplace", "gaussian", "box", "sharpen", "emboss"):
        assert re.search(rf"\b{re.escape(name)}\b", text), name
    assert "[[-1.  0.  1.]" in text  # the first Sobel-x row, as printed
    assert "[-2.  0.  2.]" in text


def _table_column(text: str, col: int) -> dict[str, str]:
    """Join the wrapped cells of column ``col`` of a Rich table, keyed by column 0."""
    cells: dict[str, list[str]] = {}
    key = None
    for line in text.splitlines():
        if "│" not in line:
            key = None if ("├" in line or "└" in line) else key
            continue
        parts = [p.strip() for p in line.split("│")[1:-1]]
        if parts[0]:
            key = parts[0]
        if key is not None:
            cells.setdefault(key, []).append(parts[col])
    return {k: " ".join(p for p in v if p) for k, v in cells.items()}


def test_presets_command_lists_stack_strings():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0, result.output
    stacks = _table_column(result.stdout, 2)
    for name in ("lenet5", "vgg", "strided-conv"):
        assert name in stacks
    for name, (_, spec) in PRESETS.items():
        assert " ".join(stacks[name].split()) == " ".join(spec.split())
        assert parse_stack(stacks[name]) == parse_stack(spec)


# ----------------------------------------------------------------------------- bad option values


BAD_OPTIONS = {
    "size-zero": (["--size", "0"], "--size", "0"),
    "size-abc": (["--size", "abc"], "--size", "abc"),
    "padding-too-large": (["--size", "2", "--padding", "9"], "--padding", "9"),
    "per-side-padding-too-large": (["--size", "2", "--padding", "3,0,0,0"], "--padding", "3,0,0,0"),
    "pool-nope": (["--pool", "nope"], "--pool", "nope"),
    "boundary-nope": (["--boundary", "nope"], "--boundary", "nope"),
    "stride-negative": (["--stride", "-1"], "--stride", "-1"),
    "dilation-zero": (["--dilation", "0"], "--dilation", "0"),
    # --p is a float option: quoting the parsed value '-2.0' is fine too
    "p-negative": (["--pool", "lp", "--p", "-2"], "--p", ("-2", "-2.0")),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS), ids=list(BAD_OPTIONS))
def test_bad_option_value_exit_2_with_cli_runner(tmp_path, gray_png, case):
    args, option, _ = BAD_OPTIONS[case]
    result = run(gray_png, *args, out=tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.parametrize("case", list(BAD_OPTIONS), ids=list(BAD_OPTIONS))
def test_bad_option_value_is_one_line_naming_option_and_value(tmp_path, capsys, gray_png, case):
    args, option, values = BAD_OPTIONS[case]
    code, err, _ = via_main(capsys, "run", gray_png, *args, "--out", tmp_path / "out", "-q")
    assert code == 2
    assert len(err) == 1, err
    assert option in err[0]
    values = (values,) if isinstance(values, str) else values
    assert any(f"'{v}'" in err[0] or f'"{v}"' in err[0] for v in values), err[0]
    assert not (tmp_path / "out" / "report.json").exists()


def test_malformed_stack_points_with_a_caret(tmp_path, capsys, gray_png):
    code, err, _ = via_main(capsys, "run", gray_png, "--stack", "max(2", "--out", tmp_path / "out")
    assert code == 2
    text = "\n".join(err)
    assert "max(2" in text
    caret = [ln for ln in err if ln.strip() == "^"]
    assert len(caret) == 1
    spec_line = next(ln for ln in err if ln.strip() == "max(2")
    # the caret sits just after "max(2": where ')' is missing
    assert caret[0].index("^") == spec_line.index("max(2") + len("max(2")
    assert "Traceback" not in text


def test_malformed_stack_with_cli_runner(tmp_path, gray_png):
    result = run(gray_png, "--stack", "sobel | bogus(2)", out=tmp_path / "out")
    assert result.exit_code == 2
    assert "bogus" in result.output and "^" in result.output


def test_stack_conflicts_with_pool_option(tmp_path, capsys, gray_png):
    code, err, _ = via_main(capsys, "run", gray_png, "--stack", "max(2)", "--pool", "max", "--out", tmp_path / "out")
    assert code == 2
    assert len(err) == 1 and "--stack" in err[0] and "--pool" in err[0]


def test_preset_conflicts_with_stack(tmp_path, gray_png):
    result = run(gray_png, "--preset", "vgg", "--stack", "max(2)", out=tmp_path / "out")
    assert result.exit_code == 2


def test_unknown_preset(tmp_path, capsys, gray_png):
    code, err, _ = via_main(capsys, "run", gray_png, "--preset", "nope", "--out", tmp_path / "out")
    assert code == 2
    assert len(err) == 1 and "'nope'" in err[0] and "lenet5" in err[0]


def test_lp_without_p(tmp_path, capsys, gray_png):
    code, err, _ = via_main(capsys, "run", gray_png, "--pool", "lp", "--out", tmp_path / "out")
    assert code == 2
    assert len(err) == 1 and "--p" in err[0]


def test_p_without_lp(tmp_path, gray_png):
    result = run(gray_png, "--pool", "max", "--p", "2", out=tmp_path / "out")
    assert result.exit_code == 2
    assert "--p" in result.output


# ----------------------------------------------------------------------------- bad inputs


def test_broken_image_among_good_ones(tmp_path, capsys, gray_png, rgb_png, broken_png):
    out = tmp_path / "out"
    code, err, stdout = via_main(capsys, "run", gray_png, broken_png, rgb_png, "--out", out)
    assert code == 1
    assert len(err) == 1 and str(broken_png) in err[0]
    assert "Traceback" not in stdout and all("Traceback" not in ln for ln in err)
    report = json.loads((out / "report.json").read_text())
    assert [i["path"] for i in report["inputs"]] == [str(gray_png), str(rgb_png)]
    assert report["failures"] == [{"path": str(broken_png), "error": report["failures"][0]["error"]}]
    assert report["failures"][0]["error"]
    for inp in report["inputs"]:
        for s in inp["stages"]:
            assert (out / s["npy"]).is_file()
    assert not (out / "broken_png").exists() or not list((out / "broken_png").iterdir())
    assert leftovers(out) == []


def test_broken_image_with_cli_runner(tmp_path, gray_png, broken_png, truncated_png):
    out = tmp_path / "out"
    result = run(gray_png, broken_png, truncated_png, out=out)
    assert result.exit_code == 1
    assert str(broken_png) in result.stderr and str(truncated_png) in result.stderr
    assert "Traceback" not in result.output
    report = json.loads((out / "report.json").read_text())
    assert {f["path"] for f in report["failures"]} == {str(broken_png), str(truncated_png)}
    assert report["summary"] == {**report["summary"], "found": 3, "processed": 1, "failed": 2}


def test_missing_path(tmp_path, capsys, gray_png):
    missing = tmp_path / "no-such-image.png"
    code, err, _ = via_main(capsys, "run", gray_png, missing, "--out", tmp_path / "out")
    assert code == 1
    assert len(err) == 1 and str(missing) in err[0]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["failures"][0]["path"] == str(missing)
    assert len(report["inputs"]) == 1


def test_image_smaller_than_window(tmp_path, capsys, tiny_png):
    code, err, _ = via_main(capsys, "run", tiny_png, "--size", "2", "--out", tmp_path / "out", "-q")
    assert code == 1
    assert len(err) == 1
    assert str(tiny_png) in err[0]
    assert "too large" in err[0] or "too small" in err[0]
    assert "Traceback" not in err[0] and "internal error" not in err[0]


def test_out_is_an_existing_file(tmp_path, capsys, gray_png):
    target = tmp_path / "taken"
    target.write_text("keep me")
    code, err, _ = via_main(capsys, "run", gray_png, "--out", target)
    assert code != 0
    assert len(err) == 1 and str(target) in err[0]
    assert target.read_text() == "keep me"
    assert not list(tmp_path.glob("*.json")) and leftovers(tmp_path) == []


def test_debug_lets_the_exception_propagate(tmp_path, broken_png):
    result = runner.invoke(app, ["run", str(broken_png), "--out", str(tmp_path / "out"), "--debug"])
    assert result.exit_code != 0
    assert result.exception is not None
    assert not isinstance(result.exception, SystemExit)
    assert str(broken_png) in str(result.exception)


def test_debug_shows_the_traceback_of_a_bug_in_a_task(tmp_path, gray_png, monkeypatch):
    """A bug on one input: without --debug one line and the batch goes on; with --debug the batch stops
    at that input and the exception carries the task's own traceback (where the bug is), not only the
    batch loop's."""
    from poolcli.jobs import run as run_job

    def bug(item, opts):
        raise ZeroDivisionError("a bug in a task")

    monkeypatch.setattr(run_job, "run_one", bug)
    result = runner.invoke(app, ["run", str(gray_png), "--out", str(tmp_path / "a")])
    assert result.exit_code == 1 and "internal error: ZeroDivisionError: a bug in a task" in result.output
    result = runner.invoke(app, ["run", str(gray_png), "--out", str(tmp_path / "b"), "--debug"])
    assert result.exit_code != 0 and not isinstance(result.exception, SystemExit)
    assert str(gray_png) in str(result.exception)
    cause = str(result.exception.__cause__)
    assert "Traceback (most recent call last)" in cause and "def bug" not in cause
    assert "raise ZeroDivisionError" in cause and "ZeroDivisionError: a bug in a task" in cause


def test_no_debug_no_exception_object(tmp_path, broken_png):
    result = runner.invoke(app, ["run", str(broken_png), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ----------------------------------------------------------------------------- folders


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "tree"
    write_image(root / "a.png", "L", (8, 8), seed=10)
    write_image(root / "a.jpg", "RGB", (8, 10), seed=11)
    write_image(root / "sub" / "b.png", "RGB", (10, 8), seed=12)
    write_image(root / "sub" / "deeper" / "c.png", "I;16", (6, 6), seed=13)
    (root / "sub" / "notes.txt").write_text("not an image")
    return root


def test_folder_outputs_mirror_the_tree(tmp_path, tree):
    out = tmp_path / "out"
    report = run_ok(tree, out=out)
    assert report["failures"] == []
    by_path = {Path(i["path"]).relative_to(tree).as_posix(): i for i in report["inputs"]}
    assert set(by_path) == {"a.png", "a.jpg", "sub/b.png", "sub/deeper/c.png"}
    dirs = {k: v["out_dir"] for k, v in by_path.items()}
    assert len(set(dirs.values())) == 4  # a.png and a.jpg get distinct folders
    assert dirs["sub/b.png"].startswith("sub/")
    assert dirs["sub/deeper/c.png"].startswith("sub/deeper/")
    assert "/" not in dirs["a.png"] and "/" not in dirs["a.jpg"]
    for rec in report["inputs"]:
        for s in rec["stages"]:
            assert s["npy"].startswith(rec["out_dir"] + "/")
            assert (out / s["npy"]).is_file()
        assert (out / rec["montage"]).is_file()
    assert leftovers(out) == []


def test_folder_no_recursive(tmp_path, tree):
    report = run_ok(tree, "--no-recursive", out=tmp_path / "out")
    assert sorted(Path(i["path"]).name for i in report["inputs"]) == ["a.jpg", "a.png"]
    assert not (tmp_path / "out" / "sub").exists()


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    code, err, _ = via_main(capsys, "run", empty, "--out", tmp_path / "out")
    assert code != 0
    assert len(err) == 1 and str(empty) in err[0]


def test_identity_filter_counts_as_a_channel(tmp_path, gray_png):
    """Several --filter options give several channels, the identity (raw image) one included."""
    out = tmp_path / "out"
    report = run_ok(gray_png, "-f", "identity", "-f", "sobel-x", "--pool", "none", out=out)
    (s1,) = report["inputs"][0]["stages"]
    assert s1["shape"] == [2, 12, 16]
    m1 = npy(out, s1)
    x = load_image(gray_png)
    np.testing.assert_array_equal(m1[:1], x)
    np.testing.assert_array_equal(m1[1:], apply_filter(x, get_filter("sobel-x")))


@pytest.mark.parametrize("mode", ["blurpool", "blur", "aps"])
def test_antialiased_pool_modes_run(tmp_path, gray_png, mode):
    """Every --pool choice the help offers runs (anti-aliased pooling, Zhang 2019; APS)."""
    out = tmp_path / "out"
    report = run_ok(gray_png, "--pool", mode, "--size", "2", out=out)
    s1, s2 = report["inputs"][0]["stages"]
    assert s2["name"] == mode and s2["shape"] == [1, 6, 8]
    assert parse_stack(report["stack"]).stages[1].ops[0].name == mode


@pytest.mark.parametrize(("args", "says"), [
    (["--conv-stride", "0"], "--conv-stride: invalid value '0': must be >= 1"),
    (["--conv-stride", "2x"], "--conv-stride: invalid value '2x': expected an int"),
    (["--conv-dilation", "0"], "--conv-dilation: invalid value '0': must be >= 1"),
    (["--filter", "none", "--conv-stride", "0"], "--conv-stride: invalid value '0'"),
])
def test_conv_options_are_named_in_their_errors(tmp_path, args, says):
    """They were reported as "--filter: invalid value 'sobel'", a value the user never typed."""
    res = runner.invoke(app, ["run", str(SCENE), *args, "-o", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert says in res.output and "'sobel'" not in res.output and len(res.output.strip().splitlines()) == 1


def test_conv_stride_without_a_filter_subsamples_instead_of_being_ignored(tmp_path):
    res = runner.invoke(app, ["run", str(SCENE), "--filter", "none", "--conv-stride", "2", "--pool", "none",
                              "-o", str(tmp_path / "o"), "--json", "--no-png", "--no-montage"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["stack"] == "identity(stride=2)"
    last = report["inputs"][0]["stages"][-1]
    assert last["shape"] == [1, 120, 160]
    x = load_image(SCENE)
    np.testing.assert_array_equal(np.load(tmp_path / "o" / last["npy"]), x[:, ::2, ::2])


def test_zoom_outside_an_image_fails_that_image_in_one_line(tmp_path, capsys):
    """--zoom starting outside an image was clamped to its last pixel (a 1x1 'region', flat tiles): now
    that input fails with a line naming it and the image's size, before anything of it is written; a
    larger image of the same batch gets its montage with the region."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (40, 60), dtype=np.uint8)).save(src / "small.png")
    Image.fromarray(rng.integers(0, 256, (200, 300), dtype=np.uint8)).save(src / "large.png")
    out = tmp_path / "out"
    code, err, _ = via_main(capsys, "run", src, "--zoom", "100,80,32,32", "--out", out, "-q")
    assert code == 1
    assert len(err) == 1 and "small.png" in err[0] and "--zoom 100,80,32,32" in err[0] and "60x40" in err[0]
    assert not (out / "small_png").exists()
    assert (out / "large_png" / "montage.png").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["processed"] == 1 and report["summary"]["failed"] == 1


BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def test_main_keeps_blas_to_one_thread_unless_the_user_chose(monkeypatch):
    for var in BLAS_VARS:
        monkeypatch.delenv(var, raising=False)  # restored after the test, whatever main sets
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    import os

    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "3"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc (Linux)")
def test_cli_process_starts_no_blas_threads():
    # OpenBLAS starts a thread per core when NumPy is imported; they spun beside the pool's workers
    code = ("import os, sys\nfrom poolcli.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "import numpy\nprint(len(os.listdir('/proc/self/task')))")
    env = {k: v for k, v in SUBPROCESS_ENV.items() if k not in BLAS_VARS}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split()[-1] == "1"


def test_bound_heap_runs_no_subprocess(monkeypatch):
    # ctypes.util.find_library("c") runs `ldconfig -p`: a fork and exec in every worker process
    import ctypes.util
    import sys as _sys

    from poolcli import _malloc

    def no_subprocess(name):
        raise AssertionError("find_library called")

    monkeypatch.setattr(ctypes.util, "find_library", no_subprocess)
    monkeypatch.setattr(_malloc, "_done", False)
    for var in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(var, raising=False)
    import platform

    glibc = _sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert _malloc.bound_heap() is glibc  # set through the process's own symbols


@pytest.mark.parametrize("argv", [
    ["run", str(SAMPLES / "scene.png"), "--pool", "maxx"],                        # Click's usage error
    ["invariance", str(SAMPLES / "gradient.png"), "--compare", "max,all"],     # poolcli's own (_fail)
])
def test_an_error_wraps_between_words_on_a_terminal_and_is_one_line_in_a_pipe(monkeypatch, tmp_path, argv):
    """At 60 columns the terminal cut the one-line error mid-word ('method(' / 's) all'); in a pipe or a log
    it stays one line (grep finds it whole)."""
    import io

    import poolcli.cli as cli
    from poolcli.terminal import PipeSafeConsole

    printed = {}
    for terminal in (True, False):
        buf = io.StringIO()
        console = PipeSafeConsole(file=buf, force_terminal=terminal, width=60, color_system=None, highlight=False,
                                  soft_wrap=True, emoji=False)
        monkeypatch.setattr(cli, "err_console", console)
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--out", str(tmp_path / "o")])
        assert exit_info.value.code == 2
        printed[terminal] = [line.rstrip() for line in buf.getvalue().splitlines() if line.strip()]
    (piped,) = printed[False]
    assert len(piped) > 60 and piped.startswith("poolcli:")
    lines = printed[True]
    assert len(lines) > 1 and all(len(line) <= 60 for line in lines)
    assert " ".join(lines) == piped  # broken only where there was a space: no word cut in two
