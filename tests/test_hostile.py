"""Hostile and odd inputs through `poolcli run` (issue 6): the corpus of tests/hostile.py.

Every broken file gives exactly one stderr line naming it, exit code 1 and no
traceback; every odd-but-fine file runs and gives the right shape; a folder
of both processes every good file, names every bad one once, and leaves no
partial or temporary files under --out. No timing assertions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import SUBPROCESS_ENV, write_image
from PIL import Image
from typer.testing import CliRunner

import hostile
from poolcli.cli import app

runner = CliRunner()

# (H, W) of the gray input each "ok" file loads as (exif-rotated.jpg: stored 20x36, turned 90 degrees)
OK_SHAPES = {
    "gif-1000-frames.gif": (20, 24),
    "animated.png": (16, 16),
    "multi-page.tif": (18, 22),
    "exif-rotated.jpg": (36, 20),
    "16-bit.png": (20, 20),
    "i16.tif": (20, 20),
    "int32.tif": (20, 20),
    "float32.tif": (20, 20),
    "cmyk.jpg": (24, 32),
    "palette-transparent.png": (24, 32),
    "la.png": (24, 32),
    "mode-1.png": (24, 32),
    "constant.png": (16, 16),
    "rgba.webp": (24, 32),
    "tiny-2x2.bmp": (2, 2),
    "café ☕.png": (24, 32),
    "..dots.png": (24, 32),
    ("long-" * 45) + ".png": (24, 32),
    "Same.png": (24, 32),
    "same.PNG": (24, 32),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile") / "h"
    return folder, hostile.build(folder)


def leftovers(root: Path) -> list[Path]:
    """Temporary or hidden files anywhere under ``root``."""
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def err_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def poolcli_subprocess(*args, cwd: Path, timeout: float = 120, python_args: tuple[str, ...] = ()):
    return subprocess.run(
        [sys.executable, *python_args, "-m", "poolcli", *map(str, args)],
        cwd=cwd,
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_corpus_is_big_enough(corpus):
    _, cases = corpus
    assert len(cases) >= 30
    assert set(OK_SHAPES) == {n for n, e in cases.items() if e == "ok"}
    assert sum(e == "fail" for e in cases.values()) >= 15


# ----------------------------------------------------------------------------- (a) one file at a time


def test_every_corpus_file_gives_its_expected_outcome(corpus, tmp_path):
    """Each file alone through the CliRunner: the expectation, one line per failure, never a traceback."""
    folder, cases = corpus
    problems = []
    for i, (name, expect) in enumerate(sorted(cases.items())):
        out = tmp_path / f"out{i}"
        result = runner.invoke(app, ["run", str(folder / name), "--out", str(out), "--workers", "1"])
        text = result.output + (result.stderr or "")
        if "Traceback" in text or (result.exception is not None and not isinstance(result.exception, SystemExit)):
            problems.append(f"{name}: traceback or exception {result.exception!r}")
            continue
        if expect == "fail":
            lines = err_lines(result.stderr)
            want_code = 2 if name == "a-folder.png" else 1  # a folder is a folder: 'no images found in ...'
            if result.exit_code != want_code:
                problems.append(f"{name}: exit {result.exit_code}, want {want_code}: {result.stderr!r}")
            elif len(lines) != 1 or name not in lines[0]:
                problems.append(f"{name}: want one stderr line naming it, got {lines!r}")
            if any(p.is_file() and p.suffix in (".npy", ".png") for p in out.rglob("*")):
                problems.append(f"{name}: failed but left outputs {sorted(out.rglob('*'))}")
        else:
            if result.exit_code != 0:
                problems.append(f"{name}: exit {result.exit_code}: {result.stderr!r}")
                continue
            if result.stderr.strip():
                problems.append(f"{name}: unexpected stderr {result.stderr!r}")
            rec = json.loads((out / "report.json").read_text(encoding="utf-8"))["inputs"][0]
            h, w = OK_SHAPES[name]
            if rec["input_shape"] != [1, h, w]:
                problems.append(f"{name}: input shape {rec['input_shape']}, want {[1, h, w]}")
            last = rec["stages"][-1]
            if last["shape"] != [1, h // 2, w // 2]:
                problems.append(f"{name}: output shape {last['shape']}, want {[1, h // 2, w // 2]}")
            if not all((out / f).is_file() for f in [last["npy"], *last["png"], last["unpool_indices"], rec["montage"]]):
                problems.append(f"{name}: missing output files")
        if leftovers(out) if out.exists() else []:
            problems.append(f"{name}: temp files {leftovers(out)}")
    assert not problems, "\n".join(problems)


def test_gif_1000_frames_loads_its_first_frame(corpus, tmp_path):
    folder, _ = corpus
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", str(folder / "gif-1000-frames.gif"), "--filter", "none", "--pool", "avg", "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "report.json").read_text(encoding="utf-8"))["inputs"][0]
    assert not np.load(out / rec["stages"][0]["npy"]).any()  # frame 0 is all zeros; frame i is i
    # --max-frames refuses it, in one line naming the file
    result = runner.invoke(app, ["run", str(folder / "gif-1000-frames.gif"), "--max-frames", "10", "--out", str(tmp_path / "o2")])
    assert result.exit_code == 1
    lines = err_lines(result.stderr)
    assert len(lines) == 1 and "gif-1000-frames.gif" in lines[0] and "frames" in lines[0]


def test_max_pixels_limit(corpus, tmp_path):
    folder, _ = corpus
    result = runner.invoke(app, ["run", str(folder / "16-bit.png"), "--max-pixels", "100", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = err_lines(result.stderr)
    assert len(lines) == 1 and "16-bit.png" in lines[0] and "too large" in lines[0]
    result = runner.invoke(app, ["run", str(folder / "16-bit.png"), "--max-pixels", "400", "--out", str(tmp_path / "o2")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5"])
def test_bad_limit_values_exit_2(tmp_path, gray_png, value):
    for option in ("--max-pixels", "--max-frames"):
        proc_args = ["run", str(gray_png), option, value, "--out", str(tmp_path / "o")]
        result = runner.invoke(app, proc_args)
        assert result.exit_code == 2, result.output
        assert option in result.output
    assert not (tmp_path / "o").exists()


def test_bad_nan_value_exit_2_one_line(tmp_path, gray_png):
    proc = poolcli_subprocess("run", gray_png, "--nan", "ignore", "--out", tmp_path / "o", cwd=tmp_path)
    assert proc.returncode == 2
    lines = err_lines(proc.stderr)
    assert len(lines) == 1 and "--nan" in lines[0] and "ignore" in lines[0]
    assert "Traceback" not in proc.stderr


def test_constant_image_flat_png_and_no_warnings(corpus, tmp_path):
    folder, _ = corpus
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = runner.invoke(app, ["run", str(folder / "constant.png"), "--out", str(out), "-q", "--workers", "1"])
    assert result.exit_code == 0, (result.output, result.exception)
    rec = json.loads((out / "report.json").read_text(encoding="utf-8"))["inputs"][0]
    for stage in rec["stages"]:
        for png in stage["png"] + stage.get("unpool_png", []):
            with Image.open(out / png) as im:
                a = np.asarray(im)
            assert a.min() == a.max(), png
    # the same with every warning an error in a real interpreter (but Click 8.5's deprecation of names
    # Typer 0.24 imports, at import time: not ours)
    proc = poolcli_subprocess(
        "run",
        folder / "constant.png",
        "--out",
        tmp_path / "out2",
        "-q",
        cwd=tmp_path,
        python_args=("-W", "error", "-W", "ignore:'click.utils:DeprecationWarning"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_float_nan_policy(corpus, tmp_path):
    folder, _ = corpus
    tif = folder / "float-nan.tif"
    result = runner.invoke(app, ["run", str(tif), "--out", str(tmp_path / "err")])
    assert result.exit_code == 1
    lines = err_lines(result.stderr)
    assert len(lines) == 1 and "float-nan.tif" in lines[0] and "NaN" in lines[0] and "--nan" in lines[0]

    out = tmp_path / "zero"
    result = runner.invoke(app, ["run", str(tif), "--nan", "zero", "--filter", "none", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["nan"] == "zero"
    stage = rep["inputs"][0]["stages"][0]
    assert np.isfinite(np.load(out / stage["npy"])).all()

    out = tmp_path / "propagate"
    result = runner.invoke(app, ["run", str(tif), "--nan", "propagate", "--filter", "none", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    stage = json.loads((out / "report.json").read_text(encoding="utf-8"))["inputs"][0]["stages"][0]
    pooled = np.load(out / stage["npy"])
    assert np.isnan(pooled).any() and np.isinf(pooled).any()  # max pooling propagates NaN and inf
    assert all((out / p).is_file() for p in stage["png"] + stage["unpool_png"])


def test_one_pixel_image_names_the_window_and_works_with_padding(corpus, tmp_path):
    folder, _ = corpus
    img = folder / "one-pixel.png"
    result = runner.invoke(app, ["run", str(img), "--out", str(tmp_path / "o1")])
    assert result.exit_code == 1
    lines = err_lines(result.stderr)
    assert len(lines) == 1
    assert "one-pixel.png" in lines[0] and "window" in lines[0] and "size=(2, 2)" in lines[0]
    out = tmp_path / "o2"
    result = runner.invoke(app, ["run", str(img), "--padding", "1", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "report.json").read_text(encoding="utf-8"))["inputs"][0]
    assert rec["stages"][-1]["shape"] == [1, 1, 1]


@pytest.mark.parametrize(
    "name", ["zero-byte.png", "png-bad-idat-crc.png", "bomb-100000x100000.png", "jpeg-cut-in-half.jpg"]
)
def test_broken_files_in_a_real_process(corpus, tmp_path, name):
    folder, _ = corpus
    proc = poolcli_subprocess("run", folder / name, "--out", tmp_path / "o", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = err_lines(proc.stderr)
    assert len(lines) == 1 and name in lines[0]


def test_odd_file_in_a_real_process(corpus, tmp_path):
    folder, _ = corpus
    out = tmp_path / "o"
    proc = poolcli_subprocess("run", folder / "exif-rotated.jpg", "--out", out, "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "report.json").read_text(encoding="utf-8"))["inputs"][0]
    assert rec["input_shape"] == [1, 36, 20]


# ----------------------------------------------------------------------------- (b) a folder of good and bad


def test_folder_of_good_and_bad(corpus, tmp_path):
    folder, cases = corpus
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed, symlinks=True, ignore=lambda d, names: [n for n in names if n == "fifo.png"])
    if hasattr(os, "mkfifo"):
        os.mkfifo(mixed / "fifo.png")
    good = {f"good-{i}.png": write_image(mixed / f"good-{i}.png", "L", (16, 20), seed=i) for i in range(3)}
    write_image(mixed / "sub" / "deeper.png", "RGB", (10, 12), seed=9)
    out = tmp_path / "out"
    proc = poolcli_subprocess("run", mixed, "--out", out, "-q", "--workers", "2", cwd=tmp_path, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout

    # a-folder.png is an (empty) sub-folder here: walked, not an input
    bad = sorted(n for n, e in cases.items() if e == "fail" and n != "a-folder.png")
    ok = sorted([n for n, e in cases.items() if e == "ok"] + list(good) + ["sub/deeper.png"])
    lines = err_lines(proc.stderr)
    assert len(lines) == len(bad), lines
    for name in bad:
        assert sum(name in ln for ln in lines) == 1, (name, lines)

    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    failed = sorted(Path(f["path"]).relative_to(mixed).as_posix() for f in rep["failures"])
    assert failed == bad
    done = sorted(Path(r["path"]).relative_to(mixed).as_posix() for r in rep["inputs"])
    assert done == ok
    assert rep["summary"]["failed"] == len(bad) and rep["summary"]["processed"] == len(ok)

    # every output inside --out, one folder per input, distinct (also case-insensitively)
    dirs = [r["out_dir"] for r in rep["inputs"]]
    assert len({d.lower() for d in dirs}) == len(dirs)
    root = out.resolve()
    for r in rep["inputs"]:
        d = (out / r["out_dir"]).resolve()
        assert d.is_relative_to(root) and d != root
        assert all(len(part) <= 120 for part in Path(r["out_dir"]).parts)
        for s in r["stages"]:
            for f in [s["npy"], *s["png"], *([s["unpool_indices"], *s["unpool_png"]] if "unpool_indices" in s else [])]:
                assert (out / f).resolve().is_relative_to(d) and (out / f).is_file()
    # nothing for the failures, nothing temporary, nothing outside the expected folders
    assert not leftovers(out)
    expected = {"report.json", "shapes.csv"} | {Path(d).parts[0] for d in dirs}
    assert {p.name for p in out.iterdir()} == expected
    for name in bad:
        stem = name.replace(".", "_")
        assert not (out / stem).exists(), name


# ----------------------------------------------------------------------------- (c) odd paths given directly


def test_directory_named_like_an_image(corpus, tmp_path):
    folder, _ = corpus
    result = runner.invoke(app, ["run", str(folder / "a-folder.png"), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    lines = err_lines(result.stderr)
    assert len(lines) == 1 and "a-folder.png" in lines[0]
    assert "Traceback" not in result.output


def test_missing_path(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = err_lines(result.stderr)
    assert len(lines) == 1 and "nope.png" in lines[0] and "not found" in lines[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_given_directly_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    proc = poolcli_subprocess("run", fifo, "--out", tmp_path / "o", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    lines = err_lines(proc.stderr)
    assert len(lines) == 1 and "pipe.png" in lines[0] and "not a regular file" in lines[0]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_given_directly_does_not_hang(tmp_path):
    proc = poolcli_subprocess("run", "/dev/zero", "--out", tmp_path / "o", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    lines = err_lines(proc.stderr)
    assert len(lines) == 1 and "/dev/zero" in lines[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file(tmp_path, gray_png):
    gray_png.chmod(0)
    try:
        result = runner.invoke(app, ["run", str(gray_png), "--out", str(tmp_path / "o")])
    finally:
        gray_png.chmod(0o644)
    assert result.exit_code == 1
    lines = err_lines(result.stderr)
    assert len(lines) == 1 and "gray.png" in lines[0] and "permission denied" in lines[0]
