"""The job protocol: a new batch command is one Job subclass; discovery, markers and executors need no change.

``SizesJob`` below is a third command defined only here: it writes one text
file per input (the input's size in bytes) and a ``sizes.json`` report. It
runs through :func:`poolcli.jobs.execute` in this process, in a process pool
and with ``--resume``, exactly as ``run`` and ``invariance`` do.
"""

from __future__ import annotations

import ast
import json
import os
import signal
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console

from poolcli.batch import InputItem
from poolcli.errors import ExitStatus, InputError, UsageError
from poolcli.jobs import BatchArgs, Job, JobOutcome, LoadArgs, execute
from poolcli.outputs import atomic_write_text, save_json
from poolcli.parallel import Interrupts, Progress

PKG = Path(__file__).resolve().parents[1] / "poolcli"


@dataclass(frozen=True)
class SizesJob(Job):
    """A third batch command: ``<out>/sizes/<out_rel>.txt`` holds the input's size and ``suffix``."""

    name: ClassVar[str] = "sizes"
    report_name: ClassVar[str] = "sizes.json"

    suffix: str = "!"
    interrupt_at: str = ""  # tests: send this process a SIGINT while producing the input of this name

    def options_key(self) -> dict[str, Any]:
        return {"command": self.name, "suffix": self.suffix}

    def produce(self, item: InputItem, out_dir: Path) -> dict:
        if item.path.name == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        data = item.path.read_bytes()
        if not data:
            raise InputError(item.path, "empty file")
        rel = Path("sizes") / item.out_rel.with_name(item.out_rel.name + ".txt")
        atomic_write_text(out_dir / rel, f"{len(data)}{self.suffix}\n")
        return {"path": item.label, "bytes": len(data), "file": rel.as_posix(), "pid": os.getpid()}

    def marker_path(self, out_dir: Path, item: InputItem) -> Path:
        return out_dir / "sizes-done" / item.out_rel.with_name(item.out_rel.name + ".json")

    def outputs_of(self, result: Any) -> list[str]:
        return [result["file"]]

    def finish(self, outcome: JobOutcome) -> dict[str, Any]:
        report = {
            "inputs": outcome.records,
            "failures": outcome.failures,
            "summary": outcome.counts,
            "interrupted": outcome.interrupted,
        }
        save_json(outcome.out_dir / self.report_name, report)
        outcome.written.append(self.report_name)
        return report


@dataclass(frozen=True)
class SlowFinishJob(SizesJob):
    """Ctrl-C arrives while the reports are written (between the two files)."""

    def finish(self, outcome: JobOutcome) -> dict[str, Any]:
        save_json(outcome.out_dir / "first.json", {"n": len(outcome.records)})
        os.kill(os.getpid(), signal.SIGINT)
        save_json(outcome.out_dir / "second.json", {"n": len(outcome.records)})
        return super().finish(outcome)


GOOD = ["a/one.png", "a/two.png", "b/three.png", "four.png", "five.jpg"]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for i, rel in enumerate(GOOD):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * (10 + i))  # never decoded: this job only counts bytes
    (root / "b" / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an input\n")
    return root


def stable(report: dict) -> dict:
    r = json.loads(json.dumps(report))
    for rec in r["inputs"]:
        rec.pop("pid")
    for k in ("seconds", "images_per_second"):
        r["summary"].pop(k)
    return r


def outputs(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_new_job_runs_through_execute(src, tmp_path, workers):
    out = tmp_path / f"w{workers}"
    outcome = execute(SizesJob(), [src], out, BatchArgs(workers=workers))
    assert outcome.exit_code == ExitStatus.ERROR and not outcome.interrupted
    assert outcome.failures == [{"path": str(src / "b" / "empty.png"), "error": "empty file"}]
    labels = [rec["path"] for rec in outcome.records]
    assert labels == sorted(labels) and len(labels) == len(GOOD)  # input order, whatever the completion order
    assert outcome.report == json.loads((out / "sizes.json").read_text())
    assert outcome.written == ["sizes.json"] and outcome.execution["workers"] == workers
    assert outcome.counts["found"] == 6 and outcome.counts["non_images"] == 1 and outcome.counts["failed"] == 1
    assert (out / "sizes" / "a" / "one_png.txt").read_text() == "10!\n"
    assert len(list((out / "sizes-done").rglob("*.json"))) == len(GOOD)  # one marker per good input
    if workers == 2:  # really in worker processes
        assert {rec["pid"] for rec in outcome.records} - {os.getpid()}
    ref = execute(SizesJob(), [src], tmp_path / "ref", BatchArgs(workers=1)) if workers == 2 else outcome
    assert stable(outcome.report) == stable(ref.report)


def test_a_new_job_resumes(src, tmp_path):
    out = tmp_path / "out"
    first = execute(SizesJob(), [src], out, BatchArgs(workers=2))
    with pytest.raises(UsageError, match=r"already holds outputs of an earlier run \(sizes.json\)"):
        execute(SizesJob(), [src], out)
    (out / "sizes.json").unlink()
    with pytest.raises(UsageError, match=r"sizes-done/"):  # markers alone are refused too
        execute(SizesJob(), [src], out)
    (out / "sizes" / "a" / "one_png.txt").unlink()  # its marker no longer vouches: a file it names is gone
    (out / "sizes-done" / "b" / "three_png.json").unlink()  # no marker
    again = execute(SizesJob(), [src], out, BatchArgs(workers=2, resume=True))
    c = again.counts
    assert (c["resumed"], c["processed"], c["failed"]) == (len(GOOD) - 2, 2, 1)
    assert stable(again.report) | {"summary": None} == stable(first.report) | {"summary": None}
    other = execute(SizesJob(suffix="?"), [src], out, BatchArgs(workers=1, resume=True))  # options changed
    assert other.counts["resumed"] == 0 and other.counts["processed"] == len(GOOD)
    assert (out / "sizes" / "a" / "one_png.txt").read_text() == "10?\n"


def test_progress_factory_gets_the_discovery_and_the_total(src, tmp_path):
    buf = StringIO()
    seen = []

    def factory(found, total):
        seen.append((found.folders, found.skipped, total))
        return Progress(Console(file=buf, width=200), "lines", total)

    execute(SizesJob(), [src], tmp_path / "out", BatchArgs(workers=1), progress=factory)
    assert seen == [(True, 1, 6)]
    lines = buf.getvalue().splitlines()
    assert len(lines) == 6 and lines[0].startswith("[1/6] ") and "FAILED empty file" in "".join(lines)


def test_ctrl_c_midway_is_an_interrupted_outcome(src, tmp_path):
    out = tmp_path / "out"
    outcome = execute(SizesJob(interrupt_at="two.png"), [src], out, BatchArgs(workers=1))
    assert outcome.interrupted and outcome.exit_code == ExitStatus.CTRL_C == 130
    assert outcome.report["interrupted"] is True and len(outcome.records) == 1  # a/one.png only
    assert outcome.counts["remaining"] == 5
    assert outcome.interrupted_message == (
        f"poolcli: interrupted; {out / 'sizes.json'} lists what was done; run the same command with --resume to finish"
    )
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    done = execute(SizesJob(), [src], out, BatchArgs(resume=True, workers=1))
    assert done.counts["resumed"] == 1 and done.counts["processed"] == len(GOOD) - 1


def test_ctrl_c_while_the_reports_are_written_waits_for_them(src, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        execute(SlowFinishJob(), [src], out, BatchArgs(workers=1))
    assert json.loads((out / "second.json").read_text()) == {"n": len(GOOD)}
    report = json.loads((out / "sizes.json").read_text())
    assert report["interrupted"] is False and len(report["inputs"]) == len(GOOD)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_interrupts_hold_a_late_signal_until_the_block_ends():
    with pytest.raises(KeyboardInterrupt):
        with Interrupts() as it:
            it.defer()
            os.kill(os.getpid(), signal.SIGINT)
            reached = True
    assert reached
    with Interrupts() as it:  # the batch already stopped for a signal: a second one changes nothing
        it.defer()
        it.honoured = True
        os.kill(os.getpid(), signal.SIGINT)
    assert it.pending


def test_option_groups_and_the_shipped_jobs():
    from poolcli.jobs.invariance import InvarianceJob
    from poolcli.jobs.run import RunJob
    from poolcli.stack import parse_stack

    assert BatchArgs(True, ["*.png"], 2, None, True, False, 3).globs == ["*.png"]
    assert LoadArgs() == LoadArgs("error", None, None)
    st = parse_stack("max(2)")
    # the fingerprinted options (unpool_store since the unpool maps are stored as indices: older markers
    # vouch for dense maps, so those inputs are redone)
    assert RunJob(st).options_key() == {
        "command": "run", "stack": str(st), "color": "gray", "dense_units": 128, "png": True, "montage": True,
        "unpool": True, "unpool_store": "indices", "nan": "error", "max_pixels": None, "max_frames": None,
    }
    assert RunJob(st, unpool_dense=True).options_key()["unpool_store"] == "indices+dense"
    assert "unpool_store" not in RunJob(st, unpool=False).options_key()
    assert InvarianceJob(st, ((0, 1),), plot=False).options_key() == {
        "command": "invariance", "stack": str(st), "shifts": [[0, 1]], "methods": [], "shift_mode": "circular",
        "color": "gray", "nan": "error", "max_pixels": None, "max_frames": None,
    }
    item = InputItem(Path("x.png"), Path("d/x_png"))
    assert RunJob.marker_path(Path("o"), item) == Path("o/d/x_png/record.json")
    assert InvarianceJob.marker_path(Path("o"), item) == Path("o/invariance-records/d/x_png.json")


def test_old_names_still_import_from_batch():
    from poolcli import batch
    from poolcli.batch import (  # noqa: F401
        InvarianceOptions,
        RunOptions,
        discover,
        invariance_one,
        marker_path,
        method_stacks,
        options_key,
        previous_outputs,
        run_one,
        scan,
    )
    from poolcli.jobs.invariance import InvarianceJob
    from poolcli.jobs.run import RunJob

    assert RunOptions is RunJob and InvarianceOptions is InvarianceJob
    item = InputItem(Path("x.png"), Path("x_png"))
    assert marker_path(Path("o"), item, "run") == Path("o/x_png/record.json")
    with pytest.raises(AttributeError):
        batch.no_such_name  # noqa: B018


def _string_constants(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


@pytest.mark.parametrize("module", ["batch.py", "parallel.py"])
def test_discovery_markers_and_executors_know_no_job_kind(module):
    text = (PKG / module).read_text(encoding="utf-8")
    assert not {"run", "invariance", "report.json", "invariance.json"} & _string_constants(PKG / module)
    assert "from .jobs" not in text and "import poolcli.jobs" not in text


# ----------------------------------------------------------------------------- a worker lost (issue 16)


@dataclass(frozen=True)
class KillerJob(SizesJob):
    """The worker producing ``kill_at`` is killed with SIGKILL (as the OOM killer does); with ``flag``, only
    while that file does not exist yet (the first attempt creates it)."""

    kill_at: str = ""
    flag: str = ""

    def produce(self, item: InputItem, out_dir: Path) -> dict:
        if item.path.name == self.kill_at and not (self.flag and os.path.exists(self.flag)):
            if self.flag:
                Path(self.flag).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().produce(item, out_dir)


def test_a_worker_killed_twice_fails_its_input_alone_and_the_report_is_written(src, tmp_path):
    out = tmp_path / "o"
    outcome = execute(KillerJob(kill_at="two.png"), [src], out, BatchArgs(workers=2))
    assert not outcome.interrupted and outcome.exit_code == ExitStatus.ERROR
    failed = {Path(f["path"]).name: f["error"] for f in outcome.failures}
    assert set(failed) == {"two.png", "empty.png"}
    assert "killed by SIGKILL" in failed["two.png"] and "retried once" in failed["two.png"]
    assert len(outcome.records) == len(GOOD) - 1  # every other input done, in a new pool
    report = json.loads((out / "sizes.json").read_text())
    assert report["summary"]["failed"] == 2 and len(report["inputs"]) == len(GOOD) - 1


def test_a_worker_killed_once_is_retried_and_its_input_succeeds(src, tmp_path):
    outcome = execute(KillerJob(kill_at="two.png", flag=str(tmp_path / "killed-once")), [src], tmp_path / "o",
                      BatchArgs(workers=2))
    assert (tmp_path / "killed-once").exists()  # the worker was killed
    assert [Path(f["path"]).name for f in outcome.failures] == ["empty.png"]
    assert len(outcome.records) == len(GOOD)
