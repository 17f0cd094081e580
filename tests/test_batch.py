"""Folders of images: discovery, parallel workers, failures, Ctrl-C, --resume, --force, aggregates.

The batch here is ~60 generated images (32..64 px, PNG and JPEG, gray and RGB)
in nested folders, plus three broken files and a text file. Runs go through
the real entry point in-process (``main`` / the CliRunner, so worker processes
are forked from pytest), except the Ctrl-C test, which sends a real SIGINT to
``python -m poolcli`` in a subprocess.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import SUBPROCESS_ENV
from poolcli.batch import scan
from poolcli.cli import app, main
from poolcli.parallel import Progress

runner = CliRunner()

SUBDIRS = ["", "a", "a/b", "c", "c/d/e"]
BROKEN = ["a/text.png", "c/truncated.png", "zero.jpg"]


# ----------------------------------------------------------------------------- helpers


def make_tree(root: Path, n: int = 60, seed: int = 42) -> list[Path]:
    """``n`` good images in nested folders, the BROKEN files, and a text file; returns the good paths."""
    rng = np.random.default_rng(seed)
    good = []
    for i in range(n):
        folder = root / SUBDIRS[i % len(SUBDIRS)]
        folder.mkdir(parents=True, exist_ok=True)
        h, w = 32 + (i * 7) % 33, 32 + (i * 11) % 33
        if i % 2:
            img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), mode="RGB")
        else:
            img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), mode="L")
        path = folder / f"img{i:02d}{'.jpg' if i % 3 == 0 else '.png'}"
        img.save(path)
        good.append(path)
    (root / "a" / "text.png").write_text("this is not a PNG\n")
    data = good[1].read_bytes()
    (root / "c" / "truncated.png").write_bytes(data[: len(data) // 2])
    (root / "zero.jpg").write_bytes(b"")
    (root / "a" / "notes.txt").write_text("not an image\n")
    return good


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def via_main(capsys, *args: object) -> tuple[int, str, str]:
    """The real entry point in-process: (exit code, stderr, stdout)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    cap = capsys.readouterr()
    return exc.value.code, cap.err, cap.out


def leftovers(root: Path) -> list[Path]:
    """Temporary or hidden files anywhere under ``root``."""
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def files(out: Path, skip: tuple[str, ...] = ("report.json", "invariance.json")) -> dict[str, object]:
    """Every output file's content, by path relative to ``out`` (the reports are compared apart): its bytes, or
    for a PNG its mode, size and pixels. The deflate stream of a PNG is not compared: ISA-L (the `fast` extra)
    once wrote one unpool PNG of a resumed run with other bytes than the same run from scratch (the same
    length, the same decompressed rows), as tests/regression/record_outputs.py already allows for."""
    def content(p: Path) -> object:
        if p.suffix == ".png":
            with Image.open(p) as im:
                return im.mode, im.size, im.tobytes(), im.getpalette() if im.mode == "P" else None
        return p.read_bytes()

    return {p.relative_to(out).as_posix(): content(p) for p in sorted(out.rglob("*")) if p.is_file() and p.name not in skip}


PER_INVOCATION = ("seconds", "images_per_second", "processed", "resumed", "skipped")


def stable(report_path: Path, per_invocation: bool = True) -> dict:
    """A report without what differs between equal runs: timings, --out, the executor
    (and, with ``per_invocation``, this invocation's own counts: processed / resumed)."""
    r = json.loads(report_path.read_text(encoding="utf-8"))
    r.pop("out_dir", None)
    r.pop("execution")
    r.pop("seconds", None)
    for rec in r.get("inputs", []):
        rec.pop("seconds", None)  # the time each input took in this run
    summary = r["summary"] if "batch_summary" not in r else r["batch_summary"]
    for k in PER_INVOCATION if per_invocation else ("seconds", "images_per_second"):
        summary.pop(k)
    return r


# ----------------------------------------------------------------------------- one batch, run once


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("batch") / "photos"
    return root, make_tree(root)


@pytest.fixture(scope="module")
def runs(tree, tmp_path_factory):
    """The same folder with --workers 1 and --workers 2 (quiet)."""
    root, _ = tree
    base = tmp_path_factory.mktemp("runs")
    res = {}
    for w in (1, 2):
        out = base / f"w{w}"
        r = invoke("run", root, "--out", out, "--workers", w, "--quiet")
        res[w] = (r, out)
    return res


def test_every_good_image_processed_and_broken_ones_recorded(tree, runs):
    root, good = tree
    result, out = runs[2]
    assert result.exit_code == 1, result.output
    report = json.loads((out / "report.json").read_text())
    assert [rec["path"] for rec in report["inputs"]] == [str(p) for p in sorted_walk(root, good)]
    assert sorted(f["path"] for f in report["failures"]) == sorted(str(root / b) for b in BROKEN)
    assert all(f["error"] for f in report["failures"])
    s = report["summary"]
    assert (s["found"], s["processed"], s["failed"], s["non_images"], s["skipped"]) == (63, 60, 3, 1, 1)
    assert s["resumed"] == 0 and s["remaining"] == 0 and s["images_per_second"] > 0
    assert report["interrupted"] is False and report["execution"]["workers"] == 2
    for rec in report["inputs"]:
        assert (out / rec["out_dir"] / "record.json").is_file()
        assert (out / rec["montage"]).is_file()
        for st in rec["stages"]:
            assert (out / st["npy"]).is_file() and all((out / p).is_file() for p in st["png"])
    for b in BROKEN:  # a broken input leaves nothing behind
        rel = Path(b)
        assert not (out / rel.parent / rel.name.replace(".", "_")).exists()
    assert leftovers(out) == []


def sorted_walk(root: Path, good: list[Path]) -> list[Path]:
    """The documented order: each folder's entries sorted by name, sub-folders walked in place."""
    def key(p: Path):
        return p.relative_to(root).parts

    return sorted(good, key=key)


def test_workers_two_equals_workers_one_byte_for_byte(runs):
    (r1, o1), (r2, o2) = runs[1], runs[2]
    assert r1.exit_code == r2.exit_code == 1
    f1, f2 = files(o1), files(o2)
    assert f1.keys() == f2.keys() and len(f1) > 60 * 4
    assert [k for k in f1 if f1[k] != f2[k]] == []
    assert stable(o1 / "report.json", per_invocation=False) == stable(o2 / "report.json", per_invocation=False)
    assert json.loads((o1 / "report.json").read_text())["execution"] == {"workers": 1, "scheduler": None}


def test_each_broken_file_named_once_with_plain_progress_lines(tree, tmp_path, capsys):
    root, _ = tree
    code, err, out = via_main(capsys, "run", root, "--out", tmp_path / "o", "--workers", "2")
    assert code == 1
    for b in BROKEN:
        assert err.count(str(root / b)) == 1, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 63  # not a terminal: one line per input
    assert all(ln.startswith("[") and "/63] " in ln for ln in lines)
    assert sum(ln.endswith(": ok") for ln in lines) == 60
    failed = [ln for ln in lines if ": FAILED " in ln]
    assert len(failed) == 3 and "Traceback" not in err
    # the summary, and one shape table per distinct input size
    assert "63 found, 60 processed, 1 skipped (0 resumed, 1 not images), 3 failed in" in out
    assert "images/s" in out


def test_quiet_prints_failures_only(tree, tmp_path, capsys):
    root, _ = tree
    code, err, out = via_main(capsys, "run", root / "a", "--out", tmp_path / "o", "-q", "--workers", "2")
    assert code == 1 and out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(root / "a" / "text.png") in lines[0]


def test_all_good_exit_zero(tree, tmp_path):
    root, _ = tree
    r = invoke("run", root / "a" / "b", "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o" / "report.json").read_text())["failures"] == []


# ----------------------------------------------------------------------------- existing outputs


def test_refuses_to_overwrite_without_force_or_resume(runs, tree, tmp_path, capsys):
    _, out = runs[1]
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in copy.rglob("*") if p.is_file()}
    root, _ = tree
    code, err, stdout = via_main(capsys, "run", root, "--out", copy)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--resume" in lines[0] and "--force" in lines[0] and "report.json" in lines[0]
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in copy.rglob("*") if p.is_file()}
    assert after == before
    # markers alone (no report.json: a killed run) are refused too
    (copy / "report.json").unlink()
    code, err, _ = via_main(capsys, "run", root, "--out", copy, "-q")
    assert code == 2 and "record.json" in err


def test_force_overwrites(tree, tmp_path):
    root, _ = tree
    out = tmp_path / "o"
    assert invoke("run", root / "a" / "b", "--out", out, "-q").exit_code == 0
    r = invoke("run", root / "a" / "b", "--out", out, "-q", "--force", "--pool", "avg")
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["stack"].endswith("avg(size=2, stride=2)")
    assert invoke("run", root / "a" / "b", "--out", out, "--force", "--resume").exit_code == 2


# ----------------------------------------------------------------------------- resume


def test_resume_after_partial_run_gives_the_same_final_report(runs, tree, tmp_path):
    root, _ = tree
    _, full = runs[2]
    out = tmp_path / "resumed"
    shutil.copytree(full, out)
    report = json.loads((out / "report.json").read_text())
    # an interrupted run: a third of the inputs unfinished (no marker, some outputs gone)
    for i, rec in enumerate(report["inputs"]):
        if i % 3 == 0:
            (out / rec["out_dir"] / "record.json").unlink()
            if i % 2 == 0:
                (out / rec["stages"][-1]["npy"]).unlink()
    # a kept marker whose output went missing is not trusted either
    victim = report["inputs"][1]
    (out / victim["montage"]).unlink()
    kept = {rec["out_dir"]: (out / rec["out_dir"] / "record.json").stat().st_mtime_ns
            for i, rec in enumerate(report["inputs"]) if i % 3 and rec is not victim}
    r = invoke("run", root, "--out", out, "--workers", "2", "--resume", "-q")
    assert r.exit_code == 1, r.output
    final = json.loads((out / "report.json").read_text())
    assert final["summary"]["resumed"] == len(kept) and final["summary"]["processed"] == 60 - len(kept)
    assert final["summary"]["skipped"] == len(kept) + 1
    assert stable(out / "report.json") == stable(full / "report.json")
    assert files(out) == files(full)
    for d, mtime in kept.items():  # resumed inputs were not redone
        assert (out / d / "record.json").stat().st_mtime_ns == mtime


def test_resume_redoes_inputs_whose_options_or_file_changed(tree, tmp_path):
    root, _ = tree
    src = tmp_path / "src"
    shutil.copytree(root / "a" / "b", src)
    out = tmp_path / "o"
    assert invoke("run", src, "--out", out, "-q").exit_code == 0
    first = sorted(src.iterdir())[0]
    os.utime(first, ns=(time.time_ns(), time.time_ns() + 10**9))  # the file changed
    r = invoke("run", src, "--out", out, "-q", "--resume")
    rep = json.loads((out / "report.json").read_text())
    assert r.exit_code == 0 and rep["summary"]["processed"] == 1 and rep["summary"]["resumed"] == len(rep["inputs"]) - 1
    r = invoke("run", src, "--out", out, "-q", "--resume", "--pool", "avg")  # other options: nothing trusted
    rep = json.loads((out / "report.json").read_text())
    assert r.exit_code == 0 and rep["summary"]["resumed"] == 0


def _workers_of(out: Path) -> list[int]:
    """PIDs of processes whose command line mentions ``out`` (the CLI and its forked workers)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(out).encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:  # the process ended while we looked
                continue
    return pids


def _small_pipe() -> tuple[int, int, int]:
    """(read end, write end, capacity) of a pipe made as small as the kernel allows (one page)."""
    import fcntl

    import contextlib

    r, w = os.pipe()
    with contextlib.suppress(OSError):  # else the default capacity (64 KiB): more inputs below
        fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    return r, w, fcntl.fcntl(w, getattr(fcntl, "F_GETPIPE_SZ", 1032))


def _read_to_end(fd: int, into: list[str]) -> None:
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as fh:
        into.append(fh.read())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and POSIX signals")
def test_real_sigint_then_resume(tmp_path):
    """A real SIGINT to ``python -m poolcli run DIR --workers 2`` midway, then ``--resume``.

    Midway by construction, not by timing: the batch's progress lines
    (``[k/N] <path>: ok``, one per input, on stderr) go to a pipe that holds
    one page and that nobody reads until the signal has been sent. A whole
    run prints three times that, so the batch stalls on a full pipe after a
    few inputs and cannot finish before the SIGINT, however fast the machine.
    """
    src = tmp_path / ("in-" + "x" * 120)  # long paths: long progress lines, fewer inputs fill the pipe
    r, w, capacity = _small_pipe()
    n = max(24, 3 * capacity // len(f"[99/99] {src}/x/p000.png: ok\n") + 2)
    rng = np.random.default_rng(3)
    for i in range(n):
        p = src / ("x" if i % 2 else "y") / f"p{i:03d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (96, 96), dtype=np.uint8)).save(p)
    out = tmp_path / "out"
    args = ["run", str(src), "--preset", "vgg", "--workers", "2", "--out", str(out)]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "poolcli", *args], cwd=tmp_path, env=SUBPROCESS_ENV,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w,
        )
    finally:
        os.close(w)
    err: list[str] = []
    reader = threading.Thread(target=_read_to_end, args=(r, err), daemon=True)
    try:
        deadline = time.monotonic() + 120  # a safety net only: the stall comes after some inputs
        while len(list(out.rglob("record.json"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the batch finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        reader.start()  # the pipe drains: the batch stops, writes its report and exits
        proc.wait(timeout=60)
        reader.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if reader.ident is None:  # never started: the read end is still ours to close
            os.close(r)
    stderr = err[0] if err else "(stderr not read)"
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    time.sleep(0.2)
    assert _workers_of(out) == []  # no orphaned worker
    assert leftovers(out) == []  # no temp file
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is True
    s = report["summary"]
    assert 1 <= s["processed"] < n and s["remaining"] == n - s["processed"] == n - len(report["inputs"])
    done_before = {rec["out_dir"] for rec in report["inputs"]}
    markers = {p.parent.relative_to(out).as_posix() for p in out.rglob("record.json")}
    assert done_before <= markers  # (a task may finish on disk just as the parent is interrupted)
    # --resume finishes the rest; the final report is the one an uninterrupted run writes
    r = invoke(*args, "--resume", "-q")
    assert r.exit_code == 0, r.output
    final = json.loads((out / "report.json").read_text())
    assert final["interrupted"] is False
    assert final["summary"]["resumed"] == len(markers)
    ref = tmp_path / "ref"
    assert invoke("run", src, "--preset", "vgg", "--workers", "2", "--out", ref, "-q").exit_code == 0
    assert stable(out / "report.json") == stable(ref / "report.json")
    assert files(out) == files(ref)


@pytest.mark.parametrize("closed", ["stdout", "stdout and stderr"])
@pytest.mark.parametrize("extra", [[], ["--json"], ["--workers", "2"]])
def test_a_reader_that_goes_away_loses_the_printing_only(tmp_path, closed, extra):
    """``poolcli run DIR | head -2`` (or ``2>&1 | head``): the pipe closes while the batch prints. Rich's
    answer was to exit from inside the print: the batch stopped after two inputs with no report. Now
    only what is printed is lost: every input processed, the reports written, the batch's own status
    (1: one input is broken), no traceback. The read end is closed before poolcli starts, so every write
    meets a closed pipe (deterministic, whatever the machine's speed)."""
    src = tmp_path / "in"
    rng = np.random.default_rng(5)
    for i in range(6):
        p = src / f"p{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(p)
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    r, w = os.pipe()
    os.close(r)  # the reader went away before the first line
    err = tmp_path / "stderr.txt"
    try:
        with open(err, "wb") as fh:
            proc = subprocess.run(
                [sys.executable, "-m", "poolcli", "run", str(src), "--out", str(out), *extra], cwd=tmp_path,
                env=SUBPROCESS_ENV, stdin=subprocess.DEVNULL, stdout=w, stderr=w if closed != "stdout" else fh,
                timeout=300,
            )
    finally:
        os.close(w)
    stderr = err.read_text(errors="replace")
    assert proc.returncode == 1, stderr  # the broken input, as without the pipe
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr
    if closed == "stdout":
        assert "broken.png" in stderr  # stderr still says what failed
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is False
    assert report["summary"]["processed"] == 6 and report["summary"]["failed"] == 1
    assert (out / "shapes.csv").is_file() and len(list(out.rglob("montage.png"))) == 6
    assert leftovers(out) == []


# ----------------------------------------------------------------------------- discovery


def test_collisions_get_distinct_outputs(tmp_path):
    src = tmp_path / "src"
    for rel in ("a/cat.png", "b/cat.png", "cat.png", "cat.jpg", "CAT.png", "cat_png/x.png", "cat.png-2/y.png"):
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), 7, np.uint8)).save(p, format="PNG")
    out = tmp_path / "out"
    r = invoke("run", src, "--out", out, "-q", "--pool", "none", "--no-png")
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    dirs = [rec["out_dir"] for rec in rep["inputs"]]
    assert len(rep["inputs"]) == 7
    assert len({d.lower() for d in dirs}) == 7
    assert len({rec["stages"][0]["npy"].lower() for rec in rep["inputs"]}) == 7
    assert all(".." not in d and not d.startswith("/") for d in dirs)
    # every input's outputs are its own: the montage of each record exists and no two share a file
    montages = [rec["montage"] for rec in rep["inputs"]]
    assert len(set(montages)) == 7 and all((out / m).is_file() for m in montages)


def test_two_explicit_files_with_the_same_name(tmp_path, capsys):
    a = tmp_path / "a" / "cat.png"
    b = tmp_path / "b" / "cat.png"
    for p in (a, b):
        p.parent.mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(p)
    items = scan([a, b]).items
    assert [i.out_rel.as_posix() for i in items] == ["cat_png", "cat_png-2"]


def test_symlink_loops_and_linked_folders_are_walked_once(tmp_path):
    src = tmp_path / "src"
    (src / "real").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(src / "real" / "one.png")
    (src / "real" / "loop").symlink_to(src, target_is_directory=True)  # real/loop -> src
    (src / "self").symlink_to(".", target_is_directory=True)
    (src / "link").symlink_to(src / "real", target_is_directory=True)  # a second way into real/
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("d", scan([src])), daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "discovery did not terminate on a symlink loop"
    assert [i.path.name for i in box["d"].items] == ["one.png"]


def test_glob_and_no_recursive(tree, tmp_path):
    root, good = tree
    d = scan([root], globs=["*.JPG"])
    assert {i.path.suffix for i in d.items} == {".jpg"}
    assert len(d.items) == sum(p.suffix == ".jpg" for p in good) + 1  # + zero.jpg
    assert d.skipped == 60 + 3 + 1 - len(d.items)  # everything else is counted, not fatal
    d = scan([root], globs=["a/b/*"])
    assert d.items and all(i.path.parent == root / "a" / "b" for i in d.items)
    top = scan([root], recursive=False)
    assert {i.path.parent for i in top.items} == {root}
    r = invoke("run", root, "--glob", "*.jpg", "--no-recursive", "--out", tmp_path / "o", "-q")
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert {Path(i["path"]).parent for i in rep["inputs"]} == {root}
    assert all(i["path"].endswith(".jpg") for i in rep["inputs"])
    assert [f["path"] for f in rep["failures"]] == [str(root / "zero.jpg")] and r.exit_code == 1


def test_out_inside_the_input_folder_is_not_an_input(tmp_path):
    src = tmp_path / "src"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(_mk(src / "one.png"))
    out = src / "poolcli-out"
    assert invoke("run", src, "--out", out, "-q").exit_code == 0
    r = invoke("run", src, "--out", out, "-q", "--force")
    assert r.exit_code == 0
    assert [Path(i["path"]).name for i in json.loads((out / "report.json").read_text())["inputs"]] == ["one.png"]


def test_output_never_leaves_out_through_a_symlink(tmp_path):
    src = tmp_path / "src"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(_mk(src / "sub" / "one.png"))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(_mk(src / "two.png"))
    out = tmp_path / "out"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)
    r = invoke("run", src, "--out", out, "-q", "--force")
    assert r.exit_code == 1
    rep = json.loads((out / "report.json").read_text())
    assert [f["path"] for f in rep["failures"]] == [str(src / "sub" / "one.png")]
    assert "leave --out" in rep["failures"][0]["error"]
    assert list(outside.iterdir()) == []


def _mk(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


# ----------------------------------------------------------------------------- options


def test_scheduler_without_dask_is_a_usage_error(tree, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    code, err, _ = via_main(capsys, "run", tree[0], "--scheduler", "local", "--out", tmp_path / "o")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "pip install 'poolcli[dask]'" in lines[0]
    assert not (tmp_path / "o" / "report.json").exists()


def test_bad_scheduler_and_workers(tree, tmp_path, capsys):
    code, err, _ = via_main(capsys, "run", tree[0], "--scheduler", "nowhere", "--out", tmp_path / "o")
    assert code == 2 and "--scheduler" in err
    code, err, _ = via_main(capsys, "run", tree[0], "--workers", "0", "--out", tmp_path / "o")
    assert code == 2 and "--workers" in err


def test_progress_lines_and_bar():
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    p = Progress(Console(file=buf, width=100), "lines", 2)
    with p:
        p.advance("a.png", None)
        p.advance("[b].png", "broken")
    assert buf.getvalue().splitlines() == ["[1/2] a.png: ok", "[2/2] [b].png: FAILED broken"]
    buf = StringIO()
    p = Progress(Console(file=buf, width=100, force_terminal=True), "bar", 2)
    with p:
        p.advance("a.png", None)
        p.advance("b.png", "broken")
    text = buf.getvalue()
    assert "2/2" in text and "b.png: broken" in text


@pytest.mark.parametrize("total", [7, 1234, 10**6])
@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_progress_bar_never_cuts_a_number(total, width):
    """The bar on a terminal of any width: counts, times and the rate whole (columns that do not fit
    are left out, the last file's name first), the line within the width."""
    import re
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    with Progress(Console(file=buf, width=width, force_terminal=True), "bar", total) as p:
        for i in range(3):
            p.advance(f"photos/holiday/a_rather_long_name_of_a_photo_{i}.png", "unreadable" if i == 1 else None)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue())
    line = [part for part in re.split(r"[\r\n]", text) if part.strip()][-1]  # the bar's last state
    assert len(line) <= width
    assert f"3/{total}" in line and "1 failed" in line
    numbers = line.split(" failed")[0]  # what comes before the last file's name
    assert "…" not in numbers
    for t in re.findall(r"[\d:-]+:[\d-]+", numbers):
        assert re.fullmatch(r"\d+:\d\d:\d\d", t), t
    if width >= 60:
        assert re.search(r"\d:\d\d:\d\d", numbers)  # the elapsed time
    if width >= 120:
        assert "photo_2.png" in line
    if width >= 80:
        assert "img/s" in line and "ETA" in line


def test_file_names_with_emoji_codes_are_printed_as_named(tmp_path):
    """Rich would turn ':smile:' into an emoji: in the progress bar, the failure lines and the table."""
    import re
    import shutil
    import subprocess
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    with Progress(Console(file=buf, width=200, force_terminal=True, emoji=False), "bar", 2) as p:
        p.advance("photos/a:smile:b.png", None)
        p.advance("photos/c:thumbs_up:[b].png", "broken")
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue())
    assert "poolcli: photos/c:thumbs_up:[b].png: broken" in text  # the failure line
    assert "1 failed photos/c:thumbs_up:[b].png" in text  # the bar's last file
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(Path(__file__).parents[1] / "sample_images" / "gradient.png", src / "a:smile:b.png")
    (src / "c:thumbs_up:.png").write_bytes(b"junk")
    r = subprocess.run([sys.executable, "-m", "poolcli", "run", str(src), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, encoding="utf-8")
    assert r.returncode == 1
    assert "c:thumbs_up:.png" in r.stderr and "a:smile:b.png" in r.stdout + r.stderr
    assert "\N{SMILING FACE WITH OPEN MOUTH AND SMILING EYES}" not in r.stdout + r.stderr
    assert "\N{THUMBS UP SIGN}" not in r.stdout + r.stderr


# ----------------------------------------------------------------------------- invariance on a folder


@pytest.fixture(scope="module")
def inv_runs(tree, tmp_path_factory):
    root, _ = tree
    base = tmp_path_factory.mktemp("inv")
    res = {}
    for w in (1, 2):
        out = base / f"w{w}"
        r = invoke("invariance", root / "a", "--shifts", "0:2", "--compare", "max,blurpool", "--no-plot",
                   "--out", out, "--workers", w)
        res[w] = (r, out)
    return res


def test_invariance_folder_aggregates(inv_runs):
    r, out = inv_runs[2]
    assert r.exit_code == 1  # a/text.png
    rep = json.loads((out / "invariance.json").read_text())
    n_images = len({rec["input"] for rec in rep["records"]})
    assert n_images == 24 and rep["batch_summary"]["failed"] == 1
    aggs = rep["aggregates"]
    assert len(aggs) == 2 * 2 * 3  # methods x stages x shifts
    keys = {"method", "stage", "stage_name", "shift", "n"} | {
        f"{m}_{s}" for m in ("cosine", "rel_l2", "equiv_rel_l2", "global_rel_diff") for s in ("mean", "std", "worst")
    }
    for a in aggs:
        assert keys <= set(a) and a["n"] == n_images
        vals = [rec for rec in rep["records"] if rec["method"] == a["method"] and rec["stage"] == a["stage"]
                and rec["shift"] == a["shift"]]
        eq = np.array([v["equiv_rel_l2"] for v in vals])
        cos = np.array([v["cosine"] for v in vals])
        assert a["equiv_rel_l2_mean"] == pytest.approx(eq.mean(), abs=1e-12)
        assert a["equiv_rel_l2_std"] == pytest.approx(eq.std(), abs=1e-12)
        assert a["equiv_rel_l2_worst"] == eq.max() and a["cosine_worst"] == cos.min()
    rows = list(csv.DictReader((out / "invariance_aggregates.csv").open()))
    assert len(rows) == len(aggs) and rows[0]["shift"] == "0 0" and float(rows[-1]["n"]) == n_images
    assert "Over 24 images" in r.stdout and "(worst)" in r.stdout
    assert (out / "invariance-records" / "b").is_dir()  # markers mirror the tree under the folder given


def test_invariance_workers_and_resume_agree(inv_runs, tree, tmp_path):
    (_, o1), (_, o2) = inv_runs[1], inv_runs[2]
    assert files(o1) == files(o2)
    assert stable(o1 / "invariance.json", False) == stable(o2 / "invariance.json", False)
    out = tmp_path / "resumed"
    shutil.copytree(o2, out)
    recs = sorted((out / "invariance-records").rglob("*.json"))
    for p in recs[::2]:
        p.unlink()
    root, _ = tree
    args = ["invariance", root / "a", "--shifts", "0:2", "--compare", "max,blurpool", "--no-plot", "--out", out]
    assert invoke(*args, "-q").exit_code == 2  # refuses without --resume
    r = invoke(*args, "-q", "--resume", "--workers", "2")
    assert r.exit_code == 1
    rep = json.loads((out / "invariance.json").read_text())
    assert rep["batch_summary"]["resumed"] == len(recs) - len(recs[::2])
    assert stable(out / "invariance.json") == stable(o2 / "invariance.json")
    assert files(out) == files(o2)


def test_a_file_named_twice_is_one_input(tmp_path, monkeypatch):
    """`run a.png a.png` (also as ./a.png, or a folder holding it given too) processes a.png once, at its
    first mention; two names of one file (a symlink) stay two inputs, as named."""
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(d / name)
    (d / "link.png").symlink_to(d / "a.png")
    monkeypatch.chdir(tmp_path)
    items = scan([Path("photos/a.png"), d / "a.png", Path("./photos/../photos/a.png"), d]).items
    assert [it.path.name for it in items] == ["a.png", "b.png", "link.png"]
    assert [it.out_rel.as_posix() for it in items] == ["a_png", "photos/b_png", "photos/link_png"]
    out = tmp_path / "out"
    r = invoke("run", "photos/a.png", "photos/a.png", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["a_png"]
    assert json.loads((out / "report.json").read_text())["summary"]["processed"] == 1
