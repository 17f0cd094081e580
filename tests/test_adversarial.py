"""Tried as an attacker and a careless user would (issue 16): each case states what must hold.

Names that are not UTF-8, every input missing, signals (SIGINT 130, SIGTERM 143,
quickly, with a report), bad values that must be usage errors (2), FIFOs,
huge kernels, and a hypothesis fuzz of the command line.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from conftest import SAMPLES, SUBPROCESS_ENV


def poolcli(*args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "poolcli", *map(str, args)], capture_output=True, text=True,
                          env=SUBPROCESS_ENV, cwd=cwd, timeout=timeout)


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# ----------------------------------------------------------------------------- names


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_a_non_utf8_name_keeps_the_whole_report(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    bad = os.fsencode(str(d)) + b"/bad\xff\x1b[2J.png"
    shutil.copy(SAMPLES / "scene.png", bad)
    shutil.copy(SAMPLES / "shapes.png", d / "good.png")
    r = poolcli("run", d, "-o", tmp_path / "o", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout + r.stderr  # the escape sequence is shown escaped, never sent
    report = json.loads((tmp_path / "o" / "report.json").read_bytes().decode("utf-8"))  # strict UTF-8
    by_name = {rec["path"]: rec for rec in report["inputs"]}
    assert set(by_name) == {str(d / "good.png"), str(d) + "/bad\\xff\x1b[2J.png"}  # escaped, valid UTF-8
    assert "path_bytes" not in by_name[str(d / "good.png")]  # a UTF-8 name stays as it was
    assert base64.b64decode(by_name[str(d) + "/bad\\xff\x1b[2J.png"]["path_bytes"]) == bad  # lossless
    marker = json.loads((tmp_path / "o" / "bad_2J_png" / "record.json").read_bytes().decode("utf-8"))
    assert base64.b64decode(marker["record"]["path_bytes"]) == bad
    assert b"bad\xff" in (tmp_path / "o" / "shapes.csv").read_bytes()  # the name's own bytes
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2 and "FAILED" not in r.stderr  # one progress line per input, the newline escaped


def test_every_input_missing_creates_nothing(tmp_path):
    r = poolcli("run", tmp_path / "nope.png", tmp_path / "nope2.png", "-o", tmp_path / "o")
    assert r.returncode == 1
    assert "nope.png" in one_line(r.stderr)
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- signals


def _long_run(tmp_path: Path) -> subprocess.Popen:
    img = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (2500, 2500), dtype=np.uint8)).save(img)
    stack = " | ".join(["gaussian(sigma=20)"] * 6 + ["avg(5, 1)"] * 4)
    return subprocess.Popen([sys.executable, "-m", "poolcli", "run", str(img), "-o", str(tmp_path / "o"), "-q",
                             "--stack", stack], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=SUBPROCESS_ENV)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_one_signal_stops_a_long_compute_quickly_with_a_report(tmp_path, sig, code):
    proc = _long_run(tmp_path)
    try:
        time.sleep(2.5)
        assert proc.poll() is None, "the compute finished before the signal"
        sent = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert waited < 10  # the bound is 2 s; generous on a shared machine
    assert "Traceback" not in err and "interrupted" in err
    assert json.loads((tmp_path / "o" / "report.json").read_text())["interrupted"] is True


# ----------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("args", [
    ["--stack", "gaussian(sigma=1e-300)"],  # a valid tiny sigma: the kernel is [1]
], ids=["tiny-sigma"])
def test_extreme_but_valid_values_run(tmp_path, args):
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "-q", *args)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args", [
    ["--pool", "avg", "--divisor-override", "99999999999999999999"],
    ["--stack", "adaptive-avg(output_size=9223372036854775808)"],
    ["--pool", "aps", "--stride", "9223372036854775808"],
    ["--stack", "lp(2, p=1e300)"],
    ["--kernel", "1" + ",1" * 2000],
    ["--scheduler", "tcp://[::1"],
    ["--scheduler", "foo://x"],
    ["--scheduler", "tcp://"],
])
def test_bad_values_are_usage_errors(tmp_path, args):
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "-q", *args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    first, *rest = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(first) < 400
    if args[0] == "--stack":  # the stack, then a caret under the bad part
        assert len(rest) == 2 and rest[1].strip() == "^"
    else:
        assert rest == []


def test_empty_kernel_file_and_fifo_config_are_usage_errors(tmp_path):
    (tmp_path / "k.npy").write_bytes(b"")
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "--kernel", tmp_path / "k.npy")
    assert r.returncode == 2 and "k.npy" in one_line(r.stderr)
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "--config", fifo, timeout=30)
    assert r.returncode == 2 and "not a regular file" in one_line(r.stderr)


def test_huge_custom_kernel_is_refused_before_any_work(tmp_path):
    np.save(tmp_path / "k.npy", np.ones((1, 5000)))
    start = time.monotonic()
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "--kernel", tmp_path / "k.npy")
    assert r.returncode == 2 and "1025" in one_line(r.stderr)
    assert time.monotonic() - start < 30


# ----------------------------------------------------------------------------- fuzz

_VALUES = st.one_of(st.integers(1, 4).map(str), st.integers(-3, 9).map(str),
                    st.sampled_from(["2x3", "same", "0", "1e400", "-0", "nan", "x", "", "2,1", "1x1"]))
_VALID_STAGES = ["sobel", "max(2)", "avg(3, 2, 1)", "median(3)", "gem(2)", "blurpool(2)", "aps(2)", "max(2, ceil)",
                 "adaptive-avg(3)", "lp(2, p=2)", "sobel-x + sobel-y", "relu", "global-max", "quantile(2, q=0.25)",
                 "mixed(2, alpha=0.3)", "softpool(2)", "fractional(2, ratio=0.7)", "gaussian(sigma=1)", "laplace",
                 "stochastic(2)", "min(3, 1, 1)", "avg(2, padding_mode=circular)", "box(3)"]
_STACKS = st.one_of(
    st.lists(st.sampled_from(_VALID_STAGES), min_size=1, max_size=4).map(" | ".join),  # most pass parsing
    st.lists(st.sampled_from(_VALID_STAGES), min_size=1, max_size=3).map(" | ".join),
    st.text(alphabet="maxvgsobel()|,=23 ", max_size=24),
)
_MODES = ["max", "avg", "lp", "median", "gem", "blurpool", "aps", "quantile", "mixed", "softpool", "min"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(stack=_STACKS, mode=st.sampled_from(_MODES), option=st.sampled_from(["--size", "--stride", "--padding",
       "--dilation", None, None]), value=_VALUES, color=st.sampled_from(["gray", "keep"]))
def test_cli_fuzz_exit_codes(tmp_path, capsys, stack, mode, option, value, color):
    out = tmp_path / uuid.uuid4().hex
    args = ["run", str(SAMPLES / "gradient.png"), "-o", str(out), "-q", "--no-png", "--no-montage", "--color", color]
    args += ["--stack", stack] if option is None else ["--pool", mode, option, value]
    code, err = _main(args, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code in (0, 1, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:  # one line, or a stack error: the message, the stack and a caret
        assert len(lines) in (1, 3), err
    else:  # the input was processed (or failed): the report exists, one line per failure
        assert (out / "report.json").is_file()
        assert len(lines) == code, err


# ----------------------------------------------------------------------------- memory and resume


def test_a_stage_that_would_not_fit_is_refused_before_decoding(tmp_path):
    img = tmp_path / "huge.png"
    Image.fromarray(np.zeros((6000, 6000), dtype=np.uint8)).save(img)
    start = time.monotonic()
    r = poolcli("run", img, "-o", tmp_path / "o", "-q", "--stack", "median(9, stride=1)", "--max-memory", "2G")
    assert time.monotonic() - start < 15  # the bound is 1 s; generous on a shared machine
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "stage 1 (median(size=9, stride=1))" in line and "GiB" in line and "--max-memory" in line


def test_max_memory_is_a_usage_error_when_malformed(tmp_path):
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "--max-memory", "lots")
    assert r.returncode == 2 and "--max-memory" in one_line(r.stderr)


def test_resume_redoes_inputs_when_a_kernel_file_changes(tmp_path):
    k = tmp_path / "k.npy"
    np.save(k, np.array([[1.0, 0.0, -1.0]]))
    args = ["run", SAMPLES / "scene.png", "-o", tmp_path / "o", "-q", "--kernel", k, "--pool", "none"]
    assert poolcli(*args).returncode == 0
    first = np.load(next((tmp_path / "o").rglob("stage01_conv.npy")))
    np.save(k, np.array([[2.0, 0.0, -2.0]]))
    assert poolcli(*args, "--resume").returncode == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["summary"]["resumed"] == 0 and report["summary"]["processed"] == 1
    np.testing.assert_array_equal(np.load(next((tmp_path / "o").rglob("stage01_conv.npy"))), 2 * first)


# ----------------------------------------------------------------------------- one run per folder


def _listing(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("again", [["--force"], ["--resume"]])
def test_a_rerun_with_another_stack_leaves_exactly_the_files_the_report_lists(tmp_path, again):
    out = tmp_path / "o"
    assert poolcli("run", SAMPLES / "scene.png", "-o", out, "-q", "--stack", "sobel | max(2)").returncode == 0
    assert poolcli("run", SAMPLES / "scene.png", "-o", out, "-q", "--stack", "sobel | avg(2)", *again).returncode == 0
    report = json.loads((out / "report.json").read_text())
    (rec,) = report["inputs"]
    listed = {"record.json", "montage.png"}
    for s in rec["stages"]:
        listed |= {Path(s["npy"]).name, *(Path(p).name for p in s["png"])}
    assert _listing(out / rec["out_dir"]) == listed
    assert not [p for p in out.iterdir() if p.name.startswith(".poolcli")]


def test_a_second_concurrent_run_on_the_same_out_refuses(tmp_path):
    proc = _long_run(tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "o" / ".poolcli.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "-q", "--force")
        assert proc.poll() is None, "the first run ended before the second started"
    finally:
        proc.kill()
        proc.wait()
    assert r.returncode == 1
    assert "in use by another poolcli run" in one_line(r.stderr)
    # the first run was killed (-9): its lock is stale and a new run takes it over
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "-q", "--force")
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- lost processes


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _images(folder: Path, n: int, side: int = 1200) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (side, side), dtype=np.uint8)).save(folder / f"i{i}.png")


_SLOW = " | ".join(["gaussian(sigma=12)"] * 3 + ["avg(3, 1)"])


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
def test_a_worker_killed_by_sigkill_does_not_lose_the_batch(tmp_path):
    _images(tmp_path / "in", 4)
    proc = subprocess.Popen([sys.executable, "-m", "poolcli", "run", str(tmp_path / "in"), "-o", str(tmp_path / "o"),
                             "-q", "--workers", "2", "--stack", _SLOW, "--no-png", "--no-montage"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=SUBPROCESS_ENV)
    try:
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)  # inside a task
        victims = _children(proc.pid)
        assert victims and proc.poll() is None, "the batch ended before a worker could be killed"
        os.kill(victims[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err  # the lost input was run again, alone, and succeeded
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["summary"]["processed"] == 4 and report["failures"] == []


def test_kill_9_of_the_main_process_then_resume_rebuilds_the_report(tmp_path):
    _images(tmp_path / "in", 3, side=900)
    args = ["run", tmp_path / "in", "-o", tmp_path / "o", "-q", "--workers", "1", "--stack", _SLOW]
    proc = subprocess.Popen([sys.executable, "-m", "poolcli", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=SUBPROCESS_ENV)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "o").rglob("record.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the batch ended before it could be killed"
    finally:
        proc.kill()  # SIGKILL: no clean-up at all
        proc.wait()
    assert not (tmp_path / "o" / "report.json").exists()
    r = poolcli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert len(report["inputs"]) == 3 and report["summary"]["resumed"] >= 1
    assert report["summary"]["resumed"] + report["summary"]["processed"] == 3


# ----------------------------------------------------------------------------- Ctrl-C twice


def test_a_second_ctrl_c_while_bands_finish_prints_no_traceback(tmp_path):
    img = tmp_path / "mid.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1500, 1500), dtype=np.uint8)).save(img)
    np.save(tmp_path / "k.npy", np.random.default_rng(1).random((1025, 1025)))  # seconds per band
    proc = subprocess.Popen([sys.executable, "-m", "poolcli", "run", str(img), "-o", str(tmp_path / "o"), "-q",
                             "--kernel", str(tmp_path / "k.npy"), "--pool", "none", "--threads", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=SUBPROCESS_ENV)
    try:
        time.sleep(3)
        assert proc.poll() is None, "the compute finished before the signal"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert waited < 10  # the bound is 2 s (measured 0.3 s); generous on a shared machine
    assert json.loads((tmp_path / "o" / "report.json").read_text())["interrupted"] is True


# ----------------------------------------------------------------------------- permissions


_AS_NOBODY = """
import encodings.ascii, encodings.latin_1, encodings.idna, os, sys
from poolcli.cli import main
warm = sys.argv[1]
# import, as root, every module a run loads lazily: nobody may not read the interpreter's own folder (nor
# a checkout under a private folder, e.g. mktemp -d). --workers 1 runs the task in this process (what a
# worker imports lazily, forked workers then inherit); --workers 2 loads the process pool's modules.
for workers in ("1", "2"):
    try:
        main(["run", warm + "/w1.png", warm + "/w2.png", "-o", warm + "/o", "-q", "--workers", workers, "--force"])
    except SystemExit as exc:
        assert exc.code == 0, exc.code
os.setgid(65534)
os.setuid(65534)
main(sys.argv[2:])
"""


def _unprivileged(args: list[str], warm: Path) -> subprocess.CompletedProcess:
    """poolcli as a user without root's read-everything: this user, or ``nobody`` when we are root."""
    if os.geteuid() != 0:
        return poolcli(*args)
    return subprocess.run([sys.executable, "-c", _AS_NOBODY, str(warm), *map(str, args)], capture_output=True,
                          text=True, env=SUBPROCESS_ENV, timeout=120)


@pytest.fixture
def shared_dir():
    """A folder ``nobody`` can use (pytest's tmp_path is private to root)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="poolcli-perm-"))
    d.chmod(0o777)
    yield d
    for p in [d, *d.rglob("*")]:
        with contextlib.suppress(OSError):
            p.chmod(0o777)
    shutil.rmtree(d, ignore_errors=True)


def _can_drop_root() -> bool:
    if not hasattr(os, "geteuid"):
        return False
    if os.geteuid() != 0:
        return True
    r = subprocess.run([sys.executable, "-c", "import os; os.setgid(65534); os.setuid(65534)"], capture_output=True)
    return r.returncode == 0


def test_unreadable_files_and_folders_are_failures_of_those_inputs(shared_dir):
    if not _can_drop_root():
        if os.environ.get("CI") == "true":
            pytest.fail("CI must be able to test permissions as a non-root user")
        pytest.skip("cannot run as a non-root user here")
    warm = shared_dir / "warm"
    warm.mkdir()
    for name in ("w1.png", "w2.png"):
        shutil.copy(SAMPLES / "gradient.png", warm / name)
    src = shared_dir / "in"
    (src / "sub").mkdir(parents=True)
    (src / "locked").mkdir()
    for rel in ("ok.png", "noread.png", "sub/x.png", "locked/y.png"):
        shutil.copy(SAMPLES / "gradient.png", src / rel)
    (src / "noread.png").chmod(0)
    (src / "locked").chmod(0)
    for p in [src, src / "sub", src / "ok.png", src / "sub" / "x.png"]:
        p.chmod(0o777 if p.is_dir() else 0o644)
    out = shared_dir / "o1"
    r = _unprivileged(["run", src / "ok.png", src / "noread.png", "-o", out, "-q"], warm)  # named directly
    assert r.returncode == 1, r.stderr
    assert "noread.png" in one_line(r.stderr) and "permission denied" in r.stderr
    report = json.loads((out / "report.json").read_text())
    assert len(report["inputs"]) == 1 and report["summary"]["failed"] == 1
    out = shared_dir / "o2"
    r = _unprivileged(["run", src, "-o", out, "-q"], warm)  # found in a scan
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2 and "Traceback" not in r.stderr, r.stderr
    assert (out / "report.json").exists(), r.stderr
    report = json.loads((out / "report.json").read_text())
    failed = {Path(f["path"]).name: f["error"] for f in report["failures"]}
    assert set(failed) == {"noread.png", "locked"} and "cannot be read" in failed["locked"]
    assert report["summary"]["found"] == 4 and report["summary"]["processed"] == 2
    r = _unprivileged(["run", src / "locked", "-o", shared_dir / "o3", "-q"], warm)  # an unreadable folder given
    assert r.returncode == 1 and "locked" in one_line(r.stderr)


# ----------------------------------------------------------------------------- decoders and files


def test_a_tiff_whose_decode_prints_libtiff_errors_is_one_failure_line(tmp_path):
    from PIL import features

    if not features.check("libtiff"):
        pytest.skip("Pillow without libtiff")
    bits = np.random.default_rng(0).random((64, 64)) > 0.5
    Image.fromarray(bits.astype(np.uint8) * 255).convert("1").save(tmp_path / "g4.tif", compression="group4")
    data = bytearray((tmp_path / "g4.tif").read_bytes())
    for i in range(20, len(data) - 200, 3):
        data[i] ^= 0x5A
    (tmp_path / "bad.tif").write_bytes(bytes(data))
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    img.save(tmp_path / "lzw.tif", compression="tiff_lzw")
    data = bytearray((tmp_path / "lzw.tif").read_bytes())
    data[18:len(data) - 200] = b"\xff" * (len(data) - 218)
    (tmp_path / "badlzw.tif").write_bytes(bytes(data))
    r = poolcli("run", tmp_path / "bad.tif", tmp_path / "badlzw.tif", SAMPLES / "gradient.png", "-o", tmp_path / "o")
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2 and all(ln.startswith("poolcli: ") for ln in lines), r.stderr
    assert any("Fax4Decode" in ln for ln in lines) and "tempfile.tif" not in r.stderr  # any completion order
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert len(report["inputs"]) == 1 and report["summary"]["failed"] == 2


def test_weights_that_are_not_npy_are_not_called_pickled(tmp_path):
    (tmp_path / "k.txt").write_text("1 2 3\n")
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "--pool", "learned", "--weights", tmp_path / "k.txt")
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert "not a .npy file" in line and "pickle" not in line


def test_a_config_key_of_100000_dotted_parts_is_refused_at_once(tmp_path):
    (tmp_path / "c.toml").write_text("a" + ".a" * 100_000 + " = 1\n")
    start = time.monotonic()
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "--config", tmp_path / "c.toml")
    assert time.monotonic() - start < 20  # took over 120 s before
    assert r.returncode == 2 and "dotted parts" in one_line(r.stderr)


def test_config_of_deeply_nested_arrays_and_dev_zero_are_usage_errors(tmp_path):
    (tmp_path / "n.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    for config in (tmp_path / "n.toml", "/dev/zero"):
        if not os.path.exists(config):
            continue
        r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "--config", config, timeout=60)
        assert r.returncode == 2 and "--config" in one_line(r.stderr)


def test_out_inside_an_input_folder_is_not_read_back(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLES / "scene.png", src / "scene.png")
    for again in ([], ["--force"]):
        r = poolcli("run", src, "-o", src / "out", "-q", *again)
        assert r.returncode == 0, r.stderr
        assert json.loads((src / "out" / "report.json").read_text())["summary"]["found"] == 1


# ----------------------------------------------------------------------------- the cluster


def test_an_unreachable_scheduler_exits_1_quickly(tmp_path):
    pytest.importorskip("distributed")
    start = time.monotonic()
    r = poolcli("run", SAMPLES / "scene.png", "-o", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:1")
    assert time.monotonic() - start < 20  # the bound is 5 s; measured 2.5 s with the interpreter's start
    assert r.returncode == 1 and "cannot reach" in one_line(r.stderr)
    assert not (tmp_path / "o" / "report.json").exists()


# ----------------------------------------------------------------------------- extreme numbers through the CLI

_EDGE_INTS = ["0", "-1", "1", "2", "3", "2147483648", "9223372036854775807", "9223372036854775808",
              "-9223372036854775809", "18446744073709551616", "99999999999999999999", "1" + "0" * 400]
_EDGE_FLOATS = ["0", "-0.0", "1e-320", "5e-324", "1e-300", "0.5", "1.5", "1e300", "1e308", "1e309", "-1e309", "nan",
                "inf", "-inf", "1e400", "0x10", "1_000"]
_NUMBERS = st.one_of(st.sampled_from(_EDGE_INTS + _EDGE_FLOATS), st.integers(-2**70, 2**70).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))
# (option, the --pool mode that takes it, the name the error must show)
_NUMERIC_OPTIONS = [
    ("--size", "max", "--size"), ("--stride", "max", "--stride"), ("--padding", "avg", "--padding"),
    ("--dilation", "max", "--dilation"), ("--divisor-override", "avg", "--divisor-override"),
    ("--blur-size", "blurpool", "--blur-size"), ("--pad-off", "blurpool", "--pad-off"), ("--q", "quantile", "--q"),
    ("--alpha", "mixed", "--alpha"), ("--seed", "stochastic", "--seed"), ("--ratio", "fractional", "--ratio"),
    ("--p", "lp", "--p"), ("--stride", "aps", "--stride"), ("--max-pixels", "max", "--max-pixels"),
    ("--max-frames", "max", "--max-frames"), ("--max-memory", "max", "--max-memory"), ("--threads", "max", "--threads"),
    ("--dense-units", "max", "--dense-units"),
]
_STACK_TEMPLATES = ["max({})", "avg(3, stride={})", "max(2, padding={})", "gaussian(sigma={})", "lp(2, p={})",
                    "quantile(3, q={})", "adaptive-avg(output_size={})", "fractional(2, ratio={})", "mixed(2, alpha={})",
                    "blurpool(2, blur_size={})", "median({}, stride=2)", "avg(2, divisor_override={})"]


def _main(args: list[str], capsys) -> tuple[int, str]:
    """``poolcli.cli.main(args)`` in this process (the entry point: Click's errors as one line): (code, stderr)."""
    from poolcli.cli import main

    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(_NUMERIC_OPTIONS), value=_NUMBERS)
def test_extreme_numbers_in_options_are_usage_errors_naming_the_option(tmp_path, capsys, option, value):
    name, mode, shown = option
    out = tmp_path / uuid.uuid4().hex  # hypothesis replays examples: a fresh --out each time
    code, err = _main(["run", str(SAMPLES / "gradient.png"), "-o", str(out), "-q", "--no-png", "--no-montage",
                       "--pool", mode, name, value], capsys)
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err and "internal error" not in err
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and shown in lines[0], err
    else:
        assert (out / "report.json").is_file()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(template=st.sampled_from(_STACK_TEMPLATES), value=_NUMBERS)
def test_extreme_numbers_in_stack_strings_are_usage_errors(tmp_path, capsys, template, value):
    out = tmp_path / uuid.uuid4().hex
    stack = template.format(value)
    code, err = _main(["run", str(SAMPLES / "gradient.png"), "-o", str(out), "-q", "--no-png", "--no-montage",
                       "--stack", stack], capsys)
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err and "internal error" not in err
    if code == 2:  # the message, then the stack with a caret under the bad part (or the message alone)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) in (1, 3) and template.split("(")[0] in err, err
    else:
        assert (out / "report.json").is_file()
        if code == 1:  # the input failed: one line
            assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
