"""Outputs (issue 6): atomic writes under disk-full and Ctrl-C, an unwritable --out, safe output names.

A full disk is simulated by a file object whose ``write`` stores half the
bytes and then raises ``OSError(ENOSPC)``; Ctrl-C by one that raises
``KeyboardInterrupt`` mid-write. Neither may leave the final file or a
temporary file behind, in the library or through the CLI.
"""

from __future__ import annotations

import errno
import json
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image
from typer.testing import CliRunner

from poolcli import outputs
from poolcli.batch import InputItem, scan
from poolcli.jobs import run as run_job
from poolcli.jobs.run import RunJob
from poolcli.cli import app
from poolcli.errors import OutputError
from poolcli.outputs import atomic_write_bytes, inside, safe_name, save_json, save_npy
from poolcli.stack import parse_stack

runner = CliRunner()


def everything(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


class _Failing:
    """Wraps a real file: after ``after`` bytes, ``write`` writes part of the data then raises ``exc``."""

    def __init__(self, fh, exc: BaseException, after: int = 0):
        self.fh, self.exc, self.after, self.written = fh, exc, after, 0

    def write(self, data) -> int:
        if self.written + len(data) > self.after:
            self.fh.write(data[: max(0, len(data) // 2)])
            self.fh.flush()
            raise self.exc
        self.written += len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()
        return False


def failing_fdopen(monkeypatch, exc: BaseException, after_calls: int = 0):
    """Make the ``after_calls``-th and later atomic writes fail mid-write with ``exc``."""
    real = os.fdopen
    calls = {"n": 0}

    def fake(fd, *args, **kw):
        fh = real(fd, *args, **kw)
        calls["n"] += 1
        if calls["n"] > after_calls:
            return _Failing(fh, exc)
        return fh

    monkeypatch.setattr(outputs.os, "fdopen", fake)
    return calls


# ----------------------------------------------------------------------------- atomic writes, in the library

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_mid_write_raises_output_error_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "d" / "a.npy"
    failing_fdopen(monkeypatch, ENOSPC)
    with pytest.raises(OutputError) as err:
        save_npy(target, np.arange(10000, dtype=np.float32))
    assert "No space left on device" in str(err.value) and "a.npy" in str(err.value)
    assert everything(tmp_path) == ["d"]


def test_disk_full_keeps_the_previous_version_intact(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    save_json(target, {"v": 1})
    failing_fdopen(monkeypatch, ENOSPC)
    with pytest.raises(OutputError):
        save_json(target, {"v": 2, "pad": "x" * 10000})
    assert json.loads(target.read_text()) == {"v": 1}
    assert everything(tmp_path) == ["r.json"]


def test_ctrl_c_mid_write_leaves_nothing(tmp_path, monkeypatch):
    failing_fdopen(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "x.png", b"\x89PNG" + b"\0" * 5000)
    assert everything(tmp_path) == []


def test_unwritable_destination_folder_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as err:
        atomic_write_bytes(blocker / "sub" / "a.bin", b"data")
    assert "cannot write" in str(err.value)


def test_dev_full_as_a_target_folder_is_an_output_error():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(OutputError):
        atomic_write_bytes(Path("/dev/full") / "a.bin", b"data")


# ----------------------------------------------------------------------------- atomic writes, through the CLI


def test_disk_full_during_run_one_line_exit_1_no_partial_files(tmp_path, gray_png, monkeypatch):
    out = tmp_path / "out"
    failing_fdopen(monkeypatch, ENOSPC, after_calls=2)  # the first two files go through, the third fails
    result = runner.invoke(app, ["run", str(gray_png), "--out", str(out), "--workers", "1", "-q"])
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "No space left on device" in lines[0], lines
    assert "Traceback" not in result.output
    assert not leftovers(out)
    # no marker: --resume will redo this input
    assert not (out / "gray_png" / "record.json").exists()


def test_ctrl_c_during_run_exit_130_no_temp_files(tmp_path, gray_png, monkeypatch):
    out = tmp_path / "out"
    failing_fdopen(monkeypatch, KeyboardInterrupt(), after_calls=1)
    result = runner.invoke(app, ["run", str(gray_png), "--out", str(out), "--workers", "1", "-q"])
    assert result.exit_code == 130, result.output
    assert not leftovers(out)
    assert not (out / "gray_png" / "record.json").exists()


def test_out_is_a_regular_file_reported_before_any_work(tmp_path, gray_png, monkeypatch):
    calls = []
    monkeypatch.setattr(run_job, "run_one", lambda *a, **k: calls.append(a))
    out = tmp_path / "out"
    out.write_text("not a folder")
    result = runner.invoke(app, ["run", str(gray_png), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(out) in lines[0] and "not a folder" in lines[0]
    assert calls == []
    assert out.read_text() == "not a folder"


def test_out_under_a_regular_file_reported_before_any_work(tmp_path, gray_png, monkeypatch):
    calls = []
    monkeypatch.setattr(run_job, "run_one", lambda *a, **k: calls.append(a))
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    result = runner.invoke(app, ["invariance", str(gray_png), "--out", str(blocker / "out"), "--workers", "1"])
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not writable" in lines[0]
    assert calls == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes everywhere")
def test_read_only_out_reported_before_any_work(tmp_path, gray_png, monkeypatch):
    calls = []
    monkeypatch.setattr(run_job, "run_one", lambda *a, **k: calls.append(a))
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = runner.invoke(app, ["run", str(gray_png), "--out", str(out), "--workers", "1"])
    finally:
        out.chmod(0o755)
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not writable" in lines[0]
    assert calls == []


# ----------------------------------------------------------------------------- safe names


HOSTILE_NAMES = [
    "../../x.png",
    "..",
    ".",
    "",
    "/etc/passwd",
    "a/../../b.png",
    "..\\..\\win.png",
    ".hidden.png",
    "...png",
    "-rf.png",
    "nul\x00byte.png",
    "new\nline.png",
    "tab\tname.png",
    "space name .png",
    "é" * 300,
    "x" * 1000 + ".png",
    "☕🐍.png",
    "CON.png",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_safe_name_stays_one_safe_component(tmp_path, name):
    s = safe_name(name)
    assert s and "/" not in s and "\\" not in s and "\x00" not in s and "\n" not in s
    assert not s.startswith(".")
    assert s not in (".", "..")
    assert len(s) <= 120
    assert inside(tmp_path, tmp_path / s)
    (tmp_path / s).write_bytes(b"ok")  # a real, creatable file name


def test_long_names_stay_distinct():
    a = safe_name("x" * 300 + "a.png")
    b = safe_name("x" * 300 + "b.png")
    assert a != b and len(a) == len(b) == 120


def test_nfc_and_nfd_names_collide_in_safe_name():
    nfc = unicodedata.normalize("NFC", "café.png")
    nfd = unicodedata.normalize("NFD", "café.png")
    assert nfc != nfd and safe_name(nfc) == safe_name(nfd)


def test_scan_gives_distinct_folders_inside_out_for_hostile_names(tmp_path):
    src = tmp_path / "src"
    names = [
        unicodedata.normalize("NFC", "café.png"),
        unicodedata.normalize("NFD", "café.png"),
        "Same.png",
        "same.PNG",
        "SAME.png",
        "..dots.png",
        "dots.png",  # '..dots.png' and 'dots.png' must not share a folder either
        "x" * 200 + "1.png",
        "x" * 200 + "2.png",
        "a b.png",
        "a_b.png",
        "-dash.png",
    ]
    for n in names:
        write_image(src / n, "L", (4, 4))
    write_image(src / "sub" / "same.png", "L", (4, 4))
    items = scan([src]).items
    assert len(items) == len(names) + 1
    rels = [it.out_rel.as_posix() for it in items]
    assert len({r.lower() for r in rels}) == len(rels), rels
    assert len({unicodedata.normalize("NFC", r).lower() for r in rels}) == len(rels)
    out = tmp_path / "out"
    out.mkdir()
    for r in rels:
        assert inside(out, out / r) and not r.startswith(".") and ".." not in Path(r).parts
        assert all(len(part) <= 120 for part in Path(r).parts)
    # the files named directly (several paths): the same guarantees
    direct = scan([src / n for n in names]).items
    drels = [it.out_rel.as_posix() for it in direct]
    assert len({unicodedata.normalize("NFC", r).lower() for r in drels}) == len(drels)
    assert all("/" not in r for r in drels)


def test_run_writes_hostile_names_inside_out_and_distinct(tmp_path):
    src = tmp_path / "src"
    names = [
        unicodedata.normalize("NFC", "café.png"),
        unicodedata.normalize("NFD", "café.png"),
        "Same.png",
        "same.PNG",
        "..dots.png",
        "x" * 220 + ".png",
    ]
    for i, n in enumerate(names):
        write_image(src / n, "L", (8, 8), seed=i)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(src), "--out", str(out), "-q", "--workers", "1"])
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    dirs = [r["out_dir"] for r in rep["inputs"]]
    assert len(dirs) == len(names) and len({d.lower() for d in dirs}) == len(dirs)
    for r in rep["inputs"]:
        d = (out / r["out_dir"]).resolve()
        assert d.is_relative_to(out.resolve())
        # each input's maps are its own: stage 1 of the run equals stage 1 of that file alone
        assert (d / "montage.png").is_file()
    assert not leftovers(out)
    # everything under --out, nothing written next to the inputs
    assert sorted(p.name for p in src.iterdir()) == sorted(names)


def test_task_refuses_an_output_folder_outside_out(tmp_path, gray_png):
    out = tmp_path / "out"
    out.mkdir()
    job = RunJob(stack=parse_stack("max(2)"))
    outcome = job.process(InputItem(gray_png, Path("..") / "escaped"), "fp", out)
    assert outcome == {"ok": False, "error": "output folder ../escaped would leave --out"}
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_files_get_the_mode_of_a_new_file(tmp_path, mask):
    """A written output has the mode any new file gets (0666 & ~umask), as from ``open``; no temporary file stays."""
    import os

    from poolcli.outputs import atomic_write_bytes, save_npy

    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        save_npy(tmp_path / "b.npy", np.zeros(3))
        (tmp_path / "c.ref").write_bytes(b"")  # a file made by open(): the mode to have
    finally:
        os.umask(old)
    want = (tmp_path / "c.ref").stat().st_mode & 0o777
    assert want == 0o666 & ~mask
    for name in ("a.bin", "b.npy"):
        assert (tmp_path / name).stat().st_mode & 0o777 == want, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.npy", "c.ref"]


def test_atomic_write_takes_another_temporary_name_on_a_clash(tmp_path, monkeypatch):
    """A temporary name that exists (left by a killed process with this pid, or another host's on a shared
    folder) is neither overwritten nor fatal: the next name is taken."""
    import itertools
    import os

    from poolcli import outputs

    monkeypatch.setattr(outputs, "_temp_count", itertools.count(7))
    clash = tmp_path / f".a.bin.{os.getpid():x}7.tmp"
    clash.write_bytes(b"someone else's")
    outputs.atomic_write_bytes(tmp_path / "a.bin", b"mine")
    assert (tmp_path / "a.bin").read_bytes() == b"mine"
    assert clash.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == [clash.name, "a.bin"]


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(1, 3, 4),
        np.arange(12, dtype=np.float64).reshape(3, 4).T,  # not C-contiguous
        np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        np.arange(5, dtype=">f4"),  # big-endian
        np.array([True, False, True]),
        np.arange(4, dtype=np.float16),
        np.arange(7, dtype=np.uint8),
        np.int64(-3),  # 0-d
        np.zeros((0, 4), dtype=np.float32),  # empty
        np.zeros((2, 0, 3), dtype=np.int64),
        np.array([1 + 2j, 3 - 4j]),  # complex: through np.save
        np.array([("a", 1)], dtype=[("n", "U1"), ("v", "i4")]),  # structured: through np.save
    ],
    ids=lambda a: f"{a.dtype.str}{a.shape}",
)
def test_save_npy_writes_np_save_bytes(tmp_path, array):
    """save_npy's own writer gives exactly the bytes of ``np.save`` (which reads them back as the array)."""
    import io

    ref = io.BytesIO()
    np.save(ref, np.ascontiguousarray(array), allow_pickle=False)
    save_npy(tmp_path / "a.npy", array)
    assert (tmp_path / "a.npy").read_bytes() == ref.getvalue()
    back = np.load(tmp_path / "a.npy")
    want = np.ascontiguousarray(array)  # (a 0-d array is saved 1-d, as before)
    assert back.dtype == want.dtype and back.shape == want.shape and np.array_equal(back, want)


# ----------------------------------------------------------------------------- drop-behind (outputs leave the page cache)

needs_fadvise = pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise on this OS")


def _open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.fixture
def behind(monkeypatch):
    """A fresh drop-behind queue (150 kB files, the largest it takes: the budget holds four) and the advice
    it gives, recorded."""
    calls: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def record(fd, offset, length, advice):
        calls.append((os.fstat(fd).st_size, advice))
        return real(fd, offset, length, advice)

    monkeypatch.setattr(outputs.os, "posix_fadvise", record)
    monkeypatch.setenv("POOLCLI_DROP_BEHIND", "1")  # asked for
    queue = outputs._DropBehind(keep=600_000, least=100_000)
    monkeypatch.setattr(outputs, "_drop_behind", queue)
    yield queue, calls
    queue.flush()


@needs_fadvise
def test_drop_behind_advises_large_files_and_closes_them_past_the_budget(tmp_path, behind):
    """Each large file: DONTNEED once written (its writeback starts), DONTNEED again and closed once the
    files written after it fill the budget; a small file is closed at once, never advised; the bytes are
    the bytes written, and the descriptors held stay within the budget whatever the number of files."""
    queue, calls = behind
    before = _open_fds()
    data = [bytes([k]) * 150_000 for k in range(40)]
    for k, d in enumerate(data):
        atomic_write_bytes(tmp_path / f"{k}.bin", d)
        assert _open_fds() - before <= 4, k  # 600 kB of 150 kB files
    atomic_write_bytes(tmp_path / "small.json", b"{}")
    atomic_write_bytes(tmp_path / "large.bin", b"L" * 150_001)  # above a quarter of the budget: left alone
    assert all(size == 150_000 and advice == os.POSIX_FADV_DONTNEED for size, advice in calls)
    # written: 40 advices; pushed out of the 600 kB budget: all but the last four
    assert len(calls) == 40 + 36
    assert _open_fds() - before == 4
    queue.flush()
    assert _open_fds() == before
    assert [(tmp_path / f"{k}.bin").read_bytes() for k in range(40)] == data
    assert (tmp_path / "small.json").read_bytes() == b"{}" and (tmp_path / "large.bin").stat().st_size == 150_001


@needs_fadvise
def test_drop_behind_off_by_environment_and_in_a_staging_block(tmp_path, behind, monkeypatch):
    queue, calls = behind
    before = _open_fds()
    with outputs.kept_in_cache():  # e.g. a staging folder uploaded at once (poolcli.remote)
        for k in range(5):
            atomic_write_bytes(tmp_path / f"s{k}.bin", b"x" * 150_000)
    assert calls == [] and _open_fds() == before
    monkeypatch.setenv("POOLCLI_DROP_BEHIND", "0")
    fresh = outputs._DropBehind(keep=300_000, least=100_000)  # read once per process
    monkeypatch.setattr(outputs, "_drop_behind", fresh)
    for k in range(5):
        atomic_write_bytes(tmp_path / f"e{k}.bin", b"y" * 150_000)
    assert calls == [] and _open_fds() == before
    assert all((tmp_path / f"e{k}.bin").read_bytes() == b"y" * 150_000 for k in range(5))


@needs_fadvise
def test_drop_behind_a_forked_child_leaves_the_parents_files_alone(tmp_path, behind):
    """A worker forked with files in its parent's queue starts with its own empty queue and lock (its
    copies of the parent's descriptors closed); the parent's queue and descriptors are untouched."""
    queue, calls = behind
    atomic_write_bytes(tmp_path / "parent.bin", b"p" * 150_000)
    assert len(queue._queue) == 1
    inherited = queue._queue[0][0]
    pid = os.fork()
    if pid == 0:  # the child: an empty queue, its copy of the parent's descriptor closed
        code = 1
        try:
            try:
                os.fstat(inherited)
                code = 3
            except OSError:
                atomic_write_bytes(tmp_path / "child.bin", b"c" * 150_000)
                code = 0 if len(queue._queue) == 1 and queue._bytes == 150_000 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(queue._queue) == 1 and os.fstat(queue._queue[0][0]).st_size == 150_000  # still open here
    assert (tmp_path / "child.bin").read_bytes() == b"c" * 150_000


def test_drop_behind_only_when_asked(monkeypatch):
    for value, want in (("1", True), ("0", False), ("", False), ("yes", False)):
        monkeypatch.setenv("POOLCLI_DROP_BEHIND", value)
        assert outputs.drop_behind_wanted() is (want and hasattr(os, "posix_fadvise"))
    monkeypatch.delenv("POOLCLI_DROP_BEHIND")
    assert outputs.drop_behind_wanted() is False


@needs_fadvise
def test_drop_behind_holds_a_bounded_number_of_descriptors(tmp_path, behind, monkeypatch):
    """Many files just over the size floor: the queue closes the oldest past ``files`` descriptors too
    (a low ``ulimit -n`` is never reached through it)."""
    queue = outputs._DropBehind(keep=1 << 30, least=1000, files=5)
    monkeypatch.setattr(outputs, "_drop_behind", queue)
    before = _open_fds()
    for k in range(30):
        atomic_write_bytes(tmp_path / f"{k}.bin", b"z" * 1500)
        assert _open_fds() - before <= 5
    assert len(queue._queue) == 5
    queue.flush()
    assert _open_fds() == before


@needs_fadvise
def test_a_batch_with_drop_behind_writes_what_it_writes_without(tmp_path):
    """A user's batch (``python -m poolcli run``, two workers, every output) with drop-behind on and off:
    the same files, the same arrays, the same pixels, and no temporary file left."""
    import subprocess
    import sys

    from PIL import Image

    src = tmp_path / "in"
    for k in range(6):
        write_image(src / f"p{k}.png", "RGB" if k % 2 else "L", size=(300 + 7 * k, 260), seed=k)
    outs = {}
    for flag in ("1", "0"):
        out = tmp_path / f"out{flag}"
        env = {**os.environ, "POOLCLI_DROP_BEHIND": flag}
        done = subprocess.run([sys.executable, "-m", "poolcli", "run", str(src), "--stack", "sobel | max(2) | max(2)",
                               "--workers", "2", "-q", "-o", str(out)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        outs[flag] = out
    names = {flag: sorted(p.relative_to(o).as_posix() for p in o.rglob("*")) for flag, o in outs.items()}
    assert names["1"] == names["0"] and not [n for n in names["1"] if n.endswith(".tmp")]
    assert sum(n.endswith(".npy") for n in names["1"]) == 6 * 5
    for name in names["1"]:
        a, b = outs["1"] / name, outs["0"] / name
        if name.endswith(".npy"):
            assert a.read_bytes() == b.read_bytes(), name
        elif name.endswith(".png"):
            assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), name
