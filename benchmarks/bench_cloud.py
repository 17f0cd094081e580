"""Object storage end to end: the same batch from a local folder, from S3 (moto on loopback), and on Dask.

    python benchmarks/bench_cloud.py [--images 40] [--size 512] [--workers 2]

Starts moto's S3 server on 127.0.0.1 (``pip install 'poolcli[test]'``), fills a bucket with generated
photos, then times whole ``poolcli run`` processes (``/usr/bin/time -v`` for the peak RSS of the
client; Dask workers are separate processes, their peak is read from the scheduler's worker metrics):

* local folder -> local --out, ``--workers N``
* s3:// -> s3:// , ``--workers N`` (process pool on this machine)
* s3:// -> s3:// , ``--scheduler local --workers N`` (Dask LocalCluster)

and prints images/s and the ratio to the local run. moto is an in-process Python server on the same two
cores, so the store runs here are a pessimistic bound for a real object store on its own machines.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo(seed: int, size: int) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = 128 + 60 * np.sin(12 * x + 7 * y + seed) + rng.normal(0, 20, (size, size))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def timed(args: list[str], env: dict) -> tuple[float, float]:
    """(seconds, max RSS MiB) of one whole poolcli process."""
    start = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "poolcli", "run", *args, "-q"],
                         capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"poolcli {' '.join(args)} failed:\n{res.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1)) / 1024
    return seconds, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    import s3fs

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        opts = ["--storage-option", f"endpoint_url={endpoint}", "--storage-option", "key=bench",
                "--storage-option", "secret=bench"]
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="bench", secret="bench")
        fs.mkdir("bench")
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "photos"
            src.mkdir()
            for i in range(a.images):
                (src / f"p{i:04d}.png").write_bytes(photo(i, a.size))
            fs.put(str(src) + "/", "bench/photos/", recursive=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            w = ["--workers", str(a.workers)]
            runs = [
                ("local folder -> local folder", [str(src), "--out", str(Path(tmp) / "out"), *w]),
                ("s3 -> s3, process pool", ["s3://bench/photos", "--out", "s3://bench/maps1", *w, *opts]),
                ("s3 -> s3, Dask LocalCluster", ["s3://bench/photos", "--out", "s3://bench/maps2", *w,
                                                 "--scheduler", "local", *opts]),
            ]
            rows = [(name, *timed(args, env)) for name, args in runs]
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"{a.images} PNGs of {a.size}x{a.size}, default stack and outputs, --workers {a.workers}")
    print(f"{'run':32s} {'s':>6s} {'img/s':>6s} {'client maxRSS MiB':>18s} {'vs local':>8s}")
    base = rows[0][1]
    for name, s, rss in rows:
        print(f"{name:32s} {s:6.2f} {a.images / s:6.1f} {rss:18.0f} {base / s:7.2f}x")


if __name__ == "__main__":
    main()
