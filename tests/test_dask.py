"""The Dask path against a real scheduler and workers started as subprocesses on loopback.

``dask scheduler`` and two ``dask worker`` processes (one thread each, no
dashboard, bound to 127.0.0.1) are started once for the module and always
terminated in the fixture's finalizer. The Dask runs must give the same
outputs, byte for byte, and the same report (apart from timings, --out and
the executor) as the local path on the same folder. Needs ``poolcli[dask]``,
which the ``test`` extra installs; skipped only where it is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from typer.testing import CliRunner  # noqa: E402

from conftest import SUBPROCESS_ENV, stop  # noqa: E402
from poolcli.cli import app  # noqa: E402
from test_batch import files, leftovers, make_tree, stable  # noqa: E402

runner = CliRunner()
START_TIMEOUT = 60


def _stop(procs: list[subprocess.Popen]) -> None:
    """Workers first, each to its end, then the scheduler (a worker whose scheduler is gone waits for it)."""
    for p in reversed(procs):
        stop(p)


def _start_scheduler(d: Path, env: dict, log, procs: list[subprocess.Popen]) -> str:
    """Start ``dask scheduler`` on loopback (appended to ``procs``); its ``tcp://127.0.0.1:PORT``."""
    sched_file = d / "scheduler.json"
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sched_file)],
            cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    )
    deadline = time.monotonic() + START_TIMEOUT
    address = None
    while address is None:
        if procs[-1].poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the dask scheduler did not start: {(d / 'cluster.log').read_text()[-2000:]}")
        try:
            address = json.loads(sched_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    assert address.startswith("tcp://127.0.0.1:")
    return address


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """``tcp://127.0.0.1:PORT`` of a scheduler with two single-threaded workers."""
    d = tmp_path_factory.mktemp("dask")
    env = dict(SUBPROCESS_ENV)
    log = open(d / "cluster.log", "w")
    procs: list[subprocess.Popen] = []
    try:
        address = _start_scheduler(d, env, log, procs)
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                     "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
                     "--local-directory", str(d / f"w{i}"), "--death-timeout", "60"],
                    cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT,
                )
            )
        with distributed.Client(address, timeout=START_TIMEOUT) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        yield address
    finally:
        _stop(procs)
        log.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dask-in") / "photos"
    make_tree(root, n=20, seed=7)
    return root


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_dask_run_equals_local_run_byte_for_byte(scheduler, folder, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "dask"
    r1 = invoke("run", folder, "--out", local, "--workers", "1", "-q")
    r2 = invoke("run", folder, "--out", remote, "--scheduler", scheduler, "-q")
    assert r1.exit_code == r2.exit_code == 1, (r1.output, r2.output)  # the broken files fail the same way
    rep = json.loads((remote / "report.json").read_text())
    assert rep["execution"] == {"workers": 2, "scheduler": scheduler}
    assert len(rep["inputs"]) == 20 and len(rep["failures"]) == 3
    f1, f2 = files(local), files(remote)
    assert f1.keys() == f2.keys() and len(f1) > 20 * 4
    assert [k for k in f1 if f1[k] != f2[k]] == []
    assert stable(local / "report.json", False) == stable(remote / "report.json", False)
    assert leftovers(remote) == []
    # and --resume works across executors: nothing left to do
    r3 = invoke("run", folder, "--out", remote, "--scheduler", scheduler, "-q", "--resume")
    assert r3.exit_code == 1
    assert json.loads((remote / "report.json").read_text())["summary"]["resumed"] == 20


def test_dask_invariance_equals_local(scheduler, folder, tmp_path):
    args = ["invariance", folder / "a", "--shifts", "0:2", "--compare", "max,avg", "--no-plot", "-q"]
    r1 = invoke(*args, "--out", tmp_path / "local", "--workers", "1")
    r2 = invoke(*args, "--out", tmp_path / "dask", "--scheduler", scheduler)
    assert r1.exit_code == r2.exit_code == 1
    assert files(tmp_path / "local") == files(tmp_path / "dask")
    a = stable(tmp_path / "local" / "invariance.json", False)
    b = stable(tmp_path / "dask" / "invariance.json", False)
    assert a == b and a["aggregates"]


def test_dask_local_cluster(folder, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "lc"
    r1 = invoke("run", folder / "c", "--out", local, "--workers", "1", "-q")
    r2 = invoke("run", folder / "c", "--out", remote, "--scheduler", "local", "--workers", "2", "-q")
    assert r1.exit_code == r2.exit_code == 1, r2.output
    assert files(local) == files(remote)
    assert stable(local / "report.json", False) == stable(remote / "report.json", False)
    assert json.loads((remote / "report.json").read_text())["execution"] == {"workers": 2, "scheduler": "local"}


def test_unreachable_scheduler_fails_fast_with_exit_1(folder, tmp_path):
    """A well-formed address of a cluster that is down: exit 1 (not a usage error), refused within seconds."""
    import socket
    import time

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    r = invoke("run", folder / "a" / "b", "--out", tmp_path / "o", "--scheduler", f"tcp://127.0.0.1:{port}", "-q")
    assert time.monotonic() - start < 20  # the bound is 5 s; generous on a loaded machine
    assert r.exit_code == 1
    assert "--scheduler" in r.output and "refused" in r.output


@pytest.mark.parametrize("address", ["tcp://[::1", "foo://host:1", "tcp://", "tcp://host", "nonsense"])
def test_malformed_scheduler_is_a_usage_error(folder, tmp_path, address):
    r = invoke("run", folder / "a" / "b", "--out", tmp_path / "o", "--scheduler", address, "-q")
    assert r.exit_code == 2 and "--scheduler" in r.output


def test_a_cluster_without_workers_says_it_waits_and_goes_on_when_one_connects(folder, tmp_path):
    """A scheduler with no worker (all killed, or not started yet) ran nothing and printed nothing until
    Ctrl-C: the run says that it waits for a worker, and goes on and finishes when one connects."""
    import threading

    d = tmp_path / "dask"
    d.mkdir()
    env = dict(SUBPROCESS_ENV)
    log = open(d / "cluster.log", "w")
    procs: list[subprocess.Popen] = []
    run = None
    try:
        address = _start_scheduler(d, env, log, procs)  # and no worker
        run = subprocess.Popen(
            [sys.executable, "-m", "poolcli", "run", str(folder), "--out", str(tmp_path / "out"), "--scheduler",
             address],
            env={**env, "POOLCLI_DASK_IDLE_NOTE": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        said = threading.Event()

        def read() -> None:
            for line in run.stdout:
                lines.append(line)
                if "no Dask worker is connected" in line:
                    said.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert said.wait(START_TIMEOUT), "".join(lines)[-2000:]
        assert not list((tmp_path / "out").rglob("record.json"))  # nothing ran meanwhile
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
             "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(d / "w")],
            cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT))
        assert run.wait(timeout=240) == 1, "".join(lines)[-3000:]  # the folder's broken files fail, the rest runs
        reader.join(timeout=10)
        text = "".join(lines)
        assert "a Dask worker is connected: going on" in text
        assert text.count("no Dask worker is connected") == 1
        assert len(list((tmp_path / "out").rglob("record.json"))) == 20  # every good image of the folder
    finally:
        if run is not None and run.poll() is None:
            run.kill()
        _stop(procs)
        log.close()
