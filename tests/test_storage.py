"""poolcli.storage against real parts: fsspec's memory:// and an S3-protocol server (moto) on 127.0.0.1.

The server is started by the tests themselves (``python -m moto.server`` on a
free loopback port) and stopped at the end of the module.
"""

from __future__ import annotations

import pytest

from conftest import free_port

from poolcli.storage import Store, is_url, parse_storage_options, redact

SECRET = "s3cr3t-VALUE-that-must-never-appear"


def s3_options(endpoint: str) -> dict:
    return {"endpoint_url": endpoint, "key": "testing", "secret": SECRET}


def test_is_url():
    assert is_url("s3://b/x") and is_url("memory://x") and not is_url("/tmp/x") and not is_url("file:///tmp/x")
    assert not is_url("photos/a.png") and not is_url("C:/x")


def test_storage_options_and_redaction():
    opts = parse_storage_options(["endpoint_url=http://127.0.0.1:9", f"secret={SECRET}", "anon=false"])
    assert opts == {"endpoint_url": "http://127.0.0.1:9", "secret": SECRET, "anon": False}
    assert SECRET not in redact(f"bad secret {SECRET} here", opts)
    with pytest.raises(ValueError) as exc:
        parse_storage_options([f"{SECRET}"])
    assert SECRET not in str(exc.value)


def test_memory_store_lists_sorted_and_uploads_marker_last(tmp_path):
    store = Store("memory://poolcli-test-a")
    store.check(create=True)
    for name in ("b/2.png", "a/1.png", "a/0.png"):
        store.fs.pipe(store.path(f"in/{name}"), b"x")
    assert Store("memory://poolcli-test-a/in").find() == ["a/0.png", "a/1.png", "b/2.png"]
    (tmp_path / "d").mkdir()
    for name in ("record.json", "map.npy", "z.png"):
        (tmp_path / "d" / name).write_text(name)
    order = store.upload_tree(tmp_path / "d", "out/img", last=["record.json"])
    assert order[-1] == "out/img/record.json" and len(order) == 3
    assert store.read_bytes("out/img/z.png") == b"z.png"
    assert store.read_bytes("out/missing.json") is None


def test_s3_store_round_trip_and_pagination(s3_endpoint, tmp_path):
    pytest.importorskip("s3fs")
    store = Store("s3://poolcli-bucket/photos", s3_options(s3_endpoint))
    store.fs.makedirs("poolcli-bucket", exist_ok=True)  # the bucket is its owner's to make; check() makes prefixes
    store.check(create=True)
    names = [f"p{i:04d}.png" for i in range(1100)]  # more than one page of ListObjectsV2 (1000)
    store.fs.pipe({store.path(n): b"1" for n in names})
    assert store.find() == sorted(names)
    local = store.download("p0007.png", tmp_path)
    assert local.read_bytes() == b"1"


def test_unreachable_endpoint_fails_fast_in_one_line_without_secrets():
    pytest.importorskip("s3fs")
    store = Store("s3://bucket/photos", s3_options(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(RuntimeError) as exc:  # fails rather than hangs: S3_CONFIG bounds connects and retries
        store.check()
    msg = str(exc.value)
    assert "s3://bucket/photos" in msg and "\n" not in msg and SECRET not in msg
