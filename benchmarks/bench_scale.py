"""Does a batch scale? 10,000 small images: the rate per thousand from the first to the last, then --resume.

    python benchmarks/bench_scale.py [--images 10000] [--size 64] [--workers 2] [--keep DIR]

Writes ``--images`` generated PNGs of ``--size``x``--size`` (in 10 sub-folders) to a temporary folder
(or ``--keep DIR``, reused when it already holds them), runs ``python -m poolcli run DIR --out OUT
--workers N`` with stderr piped (poolcli then prints one ``[k/N] path: ok`` line per input), stamps
every line as it arrives and prints the images per second of each thousand. Then times ``--resume``
of the finished run (every input resumed) as a whole process. Issue 13's targets: the last thousand's
rate within 20% of the first thousand's; the resume under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_images(folder: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / f"d{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(sub / f"img{i:05d}.png",
                                                                                  compress_level=1)


def stamped_run(args: list[str]) -> tuple[list[float], float, int]:
    """(arrival time of each progress line, total seconds, exit code) of one poolcli process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "poolcli", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env={**os.environ, "COLUMNS": "200"})
    stamps = []
    for line in proc.stderr:
        if line.startswith("["):
            stamps.append(time.perf_counter() - start)
    code = proc.wait()
    return stamps, time.perf_counter() - start, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="a folder for the images, kept for the next run")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = a.keep or Path(tmp) / "photos"
        if not src.is_dir() or sum(1 for _ in src.rglob("*.png")) != a.images:
            make_images(src, a.images, a.size)
        out = Path(tmp) / "out"
        stamps, total, code = stamped_run(["run", str(src), "--out", str(out), "--workers", str(a.workers)])
        if code != 0 or len(stamps) != a.images:
            raise SystemExit(f"the run exited {code} after {len(stamps)} of {a.images} inputs")
        print(f"{a.images} PNGs of {a.size}x{a.size}, --workers {a.workers}: {total:.1f} s in all")
        print("thousand  images/s")
        rates = []
        edges = [0.0] + stamps
        for k in range(0, a.images, 1000):
            last = min(a.images, k + 1000)
            rate = (last - k) / (edges[last] - edges[k])
            rates.append(rate)
            print(f"{k // 1000 + 1:8d}  {rate:8.1f}")
        print(f"last / first thousand: {rates[-1] / rates[0]:.2f} (target >= 0.80)")
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "poolcli", "run", str(src), "--out", str(out), "--workers",
                              str(a.workers), "--resume", "-q"], capture_output=True, text=True)
        resume = time.perf_counter() - t
        summary = json.loads((out / "report.json").read_text())["summary"]
        print(f"--resume of the finished run: {resume:.1f} s, exit {res.returncode}, "
              f"resumed {summary['resumed']} of {summary['found']} (target < 10 s)")


if __name__ == "__main__":
    main()
