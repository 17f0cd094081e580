"""Batches on object storage, end to end: URL inputs and --out, read and written by the workers.

Real parts, all on 127.0.0.1 and all stopped by the tests: an S3-protocol
server (``python -m moto.server``, the ``s3_endpoint`` fixture of conftest),
Dask's LocalCluster (``--scheduler local``), and a real ``dask scheduler``
with ``dask worker`` processes whose working directory is not the client's
and whose environment holds no credentials (they come with each task, from
``--storage-option``). ``memory://`` serves the quick in-process checks.

What must hold: the outputs of a store run are byte for byte those of the
same run on a local folder (the reports differ only where they name the
inputs and --out); every bad object is recorded and the batch goes on; a
killed batch finishes with ``--resume`` to the same final state; a store
that cannot be reached fails with one line and exit 1; no credential value
is written anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("s3fs", reason="the test extra installs poolcli[cloud]")
pytest.importorskip("distributed", reason="the test extra installs poolcli[dask]")

from typer.testing import CliRunner  # noqa: E402

from conftest import SUBPROCESS_ENV, free_port  # noqa: E402
from poolcli.batch import scan  # noqa: E402
from poolcli.cli import app  # noqa: E402
from test_batch import files, make_tree, stable  # noqa: E402
from test_dask import scheduler  # noqa: E402,F401  (the fixture: a real scheduler and two workers)

runner = CliRunner()
SECRET = "S3CR3T-poolcli-test-value-9f2c"
KEY_ID = "AKIAPOOLCLITESTKEY77"
# The environment of every poolcli process here: no AWS variables (the credentials travel as options).
ENV = {k: v for k, v in SUBPROCESS_ENV.items() if not k.startswith("AWS_")}


def options(endpoint: str) -> list[str]:
    return ["--storage-option", f"endpoint_url={endpoint}", "--storage-option", f"key={KEY_ID}",
            "--storage-option", f"secret={SECRET}"]


def s3(endpoint: str):
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY_ID, secret=SECRET, skip_instance_cache=True)


def poolcli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "poolcli", *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def bucket(s3_endpoint, tmp_path_factory):
    """A bucket with the batch tree of test_batch (good photos, broken files, a text file) under photos/."""
    fs = s3(s3_endpoint)
    name = "poolcli-test"
    fs.mkdir(name)
    root = tmp_path_factory.mktemp("cloud") / "photos"
    make_tree(root, n=12)
    fs.put(str(root) + "/", f"{name}/photos/", recursive=True)
    return name, root, fs


def fetch(fs, prefix: str, dest: Path) -> Path:
    """Download everything under ``prefix`` into ``dest`` (what a user would see with ``aws s3 sync``)."""
    for key in fs.find(prefix):
        target = dest / key[len(prefix):].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(key, str(target))
    return dest


def as_local(text: str, url: str, folder: Path) -> str:
    """A report's text with the store's names written as the local run's."""
    return text.replace(url, str(folder))


def same_as_local(store_out: Path, local_out: Path, url: str, folder: Path) -> None:
    """Every output file identical; markers and reports identical once the inputs' names are mapped.

    invariance's plots draw the inputs' names in their titles: those are compared by size; the JSON
    files (markers) after the names are mapped.
    """
    skip = ("report.json", "invariance.json", "record.json", "shapes.csv", "invariance.csv")
    got, ref = files(store_out, skip), files(local_out, skip)
    assert sorted(got) == sorted(ref)
    titled = {k for k in ref if k == "invariance.png" or k.startswith("invariance-maps/") or k.endswith(".json")}
    assert {k: v for k, v in got.items() if k not in titled} == {k: v for k, v in ref.items() if k not in titled}
    for k in titled - {k for k in titled if k.endswith(".json")}:
        assert Image.open(store_out / k).size == Image.open(local_out / k).size
    for marker in sorted(local_out.rglob("*.json")):
        rel = marker.relative_to(local_out)
        if marker.name in ("report.json", "invariance.json"):
            continue
        a = json.loads(as_local((store_out / rel).read_text(), url, folder))
        b = json.loads(marker.read_text())
        a.pop("fingerprint"), b.pop("fingerprint")  # URL inputs: from the listing, not the local file
        assert a == b, rel
    for csv in ("shapes.csv", "invariance.csv"):
        if (local_out / csv).exists():
            assert as_local((store_out / csv).read_text(), url, folder) == (local_out / csv).read_text()


def test_s3_run_with_two_workers_is_the_local_run(bucket, s3_endpoint, tmp_path):
    name, root, fs = bucket
    url = f"s3://{name}/photos"
    local = poolcli("run", str(root), "--out", str(tmp_path / "local"), "--workers", "2", "-q")
    res = poolcli("run", url, "--out", f"s3://{name}/maps-w2", "--workers", "2", "-q", *options(s3_endpoint))
    assert res.returncode == local.returncode == 1, res.stderr  # the broken files fail; the rest is done
    assert len(res.stderr.strip().splitlines()) == 3  # one line per broken object
    assert all(line.startswith(f"poolcli: {url}/") for line in res.stderr.strip().splitlines())
    got = fetch(fs, f"{name}/maps-w2", tmp_path / "got")
    same_as_local(got, tmp_path / "local", url, root)
    report, ref = stable(got / "report.json"), stable(tmp_path / "local" / "report.json")
    assert json.loads(as_local(json.dumps(report), url, root)) == ref
    assert json.loads((got / "report.json").read_text())["out_dir"] == f"s3://{name}/maps-w2"
    assert sorted(f["path"] for f in report["failures"]) == sorted(
        f"{url}/{p}" for p in ("a/text.png", "c/truncated.png", "zero.jpg"))


def test_s3_invariance_is_the_local_run(bucket, s3_endpoint, tmp_path):
    name, root, fs = bucket
    url = f"s3://{name}/photos/a/b"
    args = ["--compare", "max,blurpool", "--shifts", "0:2", "--workers", "1"]
    local = poolcli("invariance", str(root / "a" / "b"), "--out", str(tmp_path / "local"), *args)
    res = poolcli("invariance", url, "--out", f"s3://{name}/inv", *args, *options(s3_endpoint))
    assert res.returncode == local.returncode == 0, res.stderr
    got = fetch(fs, f"{name}/inv", tmp_path / "got")
    same_as_local(got, tmp_path / "local", url, root / "a" / "b")


def test_local_cluster_and_a_real_scheduler_write_the_store(bucket, s3_endpoint, scheduler, tmp_path):  # noqa: F811
    """LocalCluster, then a scheduler and workers in another folder without credentials in their environment."""
    name, root, fs = bucket
    url = f"s3://{name}/photos/a"
    local = poolcli("run", str(root / "a"), "--out", str(tmp_path / "local"), "--workers", "1")
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    for k, where in enumerate(("local", scheduler)):
        out = f"s3://{name}/dask{k}"
        res = poolcli("run", url, "--out", out, "--scheduler", where, "--workers", "2", *options(s3_endpoint),
                      cwd=client_dir)
        assert res.returncode == local.returncode == 1, res.stderr  # a/text.png is broken
        got = fetch(fs, f"{name}/dask{k}", tmp_path / f"got{k}")
        same_as_local(got, tmp_path / "local", url, root / "a")
        assert json.loads((got / "report.json").read_text())["execution"]["scheduler"] == where
    assert list(client_dir.iterdir()) == []  # the client wrote nothing locally


def test_killed_midway_then_resume_ends_as_one_clean_run(s3_endpoint, tmp_path):
    fs = s3(s3_endpoint)
    fs.mkdir("poolcli-kill")
    rng = np.random.default_rng(7)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (160, 160), dtype=np.uint8)).save(src / f"p{i:02d}.png")
    fs.put(str(src) + "/", "poolcli-kill/photos/", recursive=True)
    url, out = "s3://poolcli-kill/photos", "s3://poolcli-kill/maps"
    args = ["--stack", "gaussian(sigma=2) | median(5) | max(2)", "--workers", "1", *options(s3_endpoint)]
    proc = subprocess.Popen([sys.executable, "-m", "poolcli", "run", url, "--out", out, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len([k for k in fs.find("poolcli-kill/maps") if k.endswith("record.json")]) >= 3:
                break
            time.sleep(0.05)
            fs.invalidate_cache()
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    fs.invalidate_cache()
    assert "poolcli-kill/maps/report.json" not in fs.find("poolcli-kill/maps")
    again = poolcli("run", url, "--out", out, "--resume", *args)
    assert again.returncode == 0, again.stderr
    assert "already done" in again.stderr or "resumed" in again.stdout
    clean = poolcli("run", url, "--out", "s3://poolcli-kill/clean", *args)
    assert clean.returncode == 0, clean.stderr
    fs.invalidate_cache()
    a, b = fetch(fs, "poolcli-kill/maps", tmp_path / "a"), fetch(fs, "poolcli-kill/clean", tmp_path / "b")
    assert files(a) == files(b)
    ra, rb = stable(a / "report.json"), stable(b / "report.json")
    assert json.loads(json.dumps(ra).replace("/maps", "/clean")) == rb
    assert json.loads((a / "report.json").read_text())["summary"]["resumed"] >= 3


def test_unreachable_endpoint_is_one_line_and_exit_1(tmp_path):
    port = free_port()  # nothing listens there: the connection is refused
    for args in (["s3://b/photos", "--out", str(tmp_path / "o")], [str(tmp_path), "--out", "s3://b/maps"]):
        res = poolcli("run", *args, *options(f"http://127.0.0.1:{port}"), timeout=30)
        assert res.returncode == 1, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot" in lines[0] and "s3://b/" in lines[0], lines
        assert SECRET not in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()


def test_an_out_bucket_that_does_not_exist_is_one_line_and_not_created(bucket, s3_endpoint, tmp_path):
    """--out s3://typo/maps: s3fs's makedirs created the bucket 'typo' and wrote into it (exit 0). Now one
    line naming the bucket, exit 1, no bucket made; a missing prefix in an existing bucket is still created."""
    name, root, fs = bucket
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(src / "a.png")
    res = poolcli("run", str(src), "--out", "s3://poolcli-no-such-bucket/maps", *options(s3_endpoint), timeout=60)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "poolcli-no-such-bucket" in lines[0] and "does not exist" in lines[0], lines
    fs.invalidate_cache()
    assert not fs.exists("poolcli-no-such-bucket")
    res = poolcli("run", str(src), "--out", f"s3://{name}/new/prefix", *options(s3_endpoint), "-q", timeout=60)
    assert res.returncode == 0, res.stderr
    fs.invalidate_cache()
    assert fs.exists(f"{name}/new/prefix/report.json")


def test_no_credential_value_is_written_anywhere(bucket, s3_endpoint, tmp_path):
    name, root, fs = bucket
    out = f"s3://{name}/secret-check"
    res = poolcli("run", f"s3://{name}/photos/a/b", "--out", out, "--html", "--json", *options(s3_endpoint),
                  cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    inv = poolcli("invariance", f"s3://{name}/photos/a/b", "--out", f"{out}-inv", "--compare", "max,avg",
                  *options(s3_endpoint), cwd=tmp_path)
    assert inv.returncode == 0, inv.stderr
    written = [fs.cat_file(k) for k in fs.find(out) + fs.find(f"{out}-inv")]
    written += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 10
    for blob in written + [res.stdout.encode(), res.stderr.encode(), inv.stdout.encode(), inv.stderr.encode()]:
        assert SECRET.encode() not in blob and KEY_ID.encode() not in blob


# ----------------------------------------------------------------------------- memory://: naming, markers, resume


def _put(fs, key: str, data: bytes) -> None:
    fs.pipe_file(key, data)


def _png(seed: int, size: int = 24) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def memfs():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    yield fs
    fs.store.clear()


def test_memory_store_names_outputs_as_a_folder_would(memfs, tmp_path):
    tree = {"a/cat.png": 1, "a/CAT.png": 2, "b/cat.png": 3, "x.png": 4, "x_png/y.png": 5, "c/../up.png": 6}
    local = tmp_path / "photos"
    for rel, seed in tree.items():
        _put(memfs, f"/in/photos/{rel}", _png(seed))
    _put(memfs, "/in/photos/notes.txt", b"text")
    _put(memfs, "/in/photos/bad.png", b"\x89PNG\r\n\x1a\n broken")
    for rel in tree:  # the same tree on disk ('..' cannot be a file name there: the store's key is kept as is)
        if ".." not in rel:
            (local / rel).parent.mkdir(parents=True, exist_ok=True)
            (local / rel).write_bytes(memfs.cat_file(f"/in/photos/{rel}"))
    res = runner.invoke(app, ["run", "memory://in/photos", "--out", "memory://out", "--workers", "1"])
    assert res.exit_code == 1, res.output  # bad.png
    keys = sorted(k[len("/out/"):] for k in memfs.find("/out"))
    folders = sorted({k.rsplit("/", 1)[0] for k in keys if "/" in k})
    assert folders == ["a/CAT_png", "a/cat_png-2", "b/cat_png", "c/_/up_png", "x_png-2", "x_png/y_png"]
    on_disk = sorted(it.out_rel.as_posix() for it in scan([local]).items)  # the same rules as for a folder
    assert on_disk == [f for f in folders if f != "c/_/up_png"]
    assert all(not k.startswith(("/", "..")) for k in keys)  # nothing outside --out
    report = json.loads(memfs.cat_file("/out/report.json"))
    assert report["summary"]["found"] == 7 and report["summary"]["failed"] == 1
    assert report["failures"][0]["path"] == "memory://in/photos/bad.png"
    # --resume: nothing to redo; a changed object is redone
    again = runner.invoke(app, ["run", "memory://in/photos", "--out", "memory://out", "--workers", "1", "--resume"])
    assert json.loads(memfs.cat_file("/out/report.json"))["summary"]["resumed"] == 6, again.output
    _put(memfs, "/in/photos/x.png", _png(99, 30))
    runner.invoke(app, ["run", "memory://in/photos", "--out", "memory://out", "--workers", "1", "--resume"])
    report = json.loads(memfs.cat_file("/out/report.json"))
    assert report["summary"]["resumed"] == 5 and report["summary"]["processed"] == 1
    rec = next(r for r in report["inputs"] if r["path"] == "memory://in/photos/x.png")
    assert rec["input_shape"] == [1, 30, 30]


def test_memory_store_refuses_an_earlier_run_and_replaces_a_folder_whole_with_force(memfs):
    _put(memfs, "/in/p/a.png", _png(1, 32))
    args = ["run", "memory://in/p", "--out", "memory://o", "--workers", "1"]
    assert runner.invoke(app, args).exit_code == 0
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--resume" in refused.output
    assert runner.invoke(app, [*args, "--force", "--stack", "avg(2) | avg(2)"]).exit_code == 0
    keys = sorted(k.rsplit("/", 1)[-1] for k in memfs.find("/o/a_png"))
    report = json.loads(memfs.cat_file("/o/report.json"))
    listed = sorted({f.rsplit("/", 1)[-1] for s in report["inputs"][0]["stages"]
                     for f in [s.get("npy")] + s.get("png", []) if f} | {"montage.png", "record.json"})
    assert keys == listed  # no file of the first stack's run is left


def test_a_missing_object_is_that_input_failure_and_all_missing_creates_nothing(memfs):
    _put(memfs, "/in/ok.png", _png(3))
    res = runner.invoke(app, ["run", "memory://in/ok.png", "memory://in/gone.png", "--out", "memory://o2",
                              "--workers", "1"])
    assert res.exit_code == 1 and "memory://in/gone.png: not found" in res.output
    assert len(json.loads(memfs.cat_file("/o2/report.json"))["inputs"]) == 1
    res = runner.invoke(app, ["run", "memory://in/none.png", "--out", "memory://o3"])
    assert res.exit_code == 1 and not memfs.exists("/o3")


def test_memory_urls_need_one_process():
    res = runner.invoke(app, ["run", "memory://in", "--out", "memory://o", "--workers", "2"])
    assert res.exit_code == 2 and "memory://" in res.output


def test_discovery_of_100000_objects_is_sorted_and_named(memfs):
    from fsspec.implementations.memory import MemoryFile

    from poolcli.remote import scan_url

    n = 100_000
    for i in range(n):
        key = f"/big/d{i % 7}/img{i:06d}.png"
        memfs.store[key] = MemoryFile(memfs, key, b"")
    found = scan_url("memory://big", {}, recursive=True, globs=None, several=False)
    assert len(found.items) == n
    labels = [it.label for it in found.items]
    assert labels == sorted(labels)
    assert len({it.out_rel for it in found.items}) == n


def test_storage_option_without_equals_is_a_usage_error_that_quotes_no_value():
    res = runner.invoke(app, ["run", "memory://in", "--out", "memory://o", "--storage-option", SECRET])
    assert res.exit_code == 2 and SECRET not in res.output

