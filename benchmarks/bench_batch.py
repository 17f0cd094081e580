"""How much faster is ``poolcli run DIR --workers 2`` than ``--workers 1``?

Writes 200 generated 512x512 PNGs (smooth texture plus noise, gray and RGB)
to a temporary folder, then times ``python -m poolcli run DIR --workers N
--out OUT -q`` in a subprocess, median of 3 runs per setting (interleaved),
each into a fresh ``--out``. Prints wall-clock seconds, images per second (wall clock,
start-up included, and the batch loop's own rate from report.json) and the
speed-up of 2 workers over 1.

    python benchmarks/bench_batch.py                   # the default stack (sobel | max 2x2)
    python benchmarks/bench_batch.py --images 100 --repeat 5 --stack "sobel | max(2) | avg(2)"
    python benchmarks/bench_batch.py --start-methods fork,forkserver,spawn   # pool start-up cost

The speed-up can only approach the number of *free* cores: run it on an idle
machine (``uptime``'s load average well under the core count).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        fx, fy = rng.uniform(2, 12, 2)
        base = 0.5 + 0.25 * np.sin(2 * np.pi * (fx * xx + rng.random())) * np.cos(2 * np.pi * (fy * yy + rng.random()))
        img = np.clip(base + rng.normal(0, 0.08, base.shape), 0, 1)
        sub = folder / f"set{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        if i % 2:
            rgb = np.stack([img, np.roll(img, 7, 0), np.roll(img, 7, 1)], axis=-1)
            Image.fromarray((rgb * 255).astype(np.uint8), "RGB").save(sub / f"img{i:04d}.png")
        else:
            Image.fromarray((img * 255).astype(np.uint8), "L").save(sub / f"img{i:04d}.png")


def one_run(src: Path, out: Path, workers: int, extra: list[str], env: dict[str, str]) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "poolcli", "run", str(src), "--workers", str(workers), "--out", str(out), "-q", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
    summary = json.loads((out / "report.json").read_text())["summary"]
    return wall, summary["images_per_second"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts; the first is the baseline")
    ap.add_argument("--stack", default=None, help="a --stack string (default: poolcli's default stack)")
    ap.add_argument("--start-methods", default="", help="also time --workers 2 with these POOLCLI_START_METHOD values")
    args = ap.parse_args()
    extra = ["--stack", args.stack] if args.stack else []
    counts = [int(w) for w in args.workers.split(",")]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="poolcli-bench-") as tmp:
        tmp_path = Path(tmp)
        src = tmp_path / "images"
        make_images(src, args.images, args.size)
        print(f"{args.images} PNGs of {args.size}x{args.size} in {src}; median of {args.repeat} runs each")
        settings = [(w, None) for w in counts] + [(2, m) for m in args.start_methods.split(",") if m]
        walls: dict = {s: [] for s in settings}
        rates: dict = {s: [] for s in settings}
        run_id = 0
        for _ in range(args.repeat):  # round-robin, so that a change in machine load hits every setting alike
            for w, method in settings:
                env = dict(os.environ)
                if method:
                    env["POOLCLI_START_METHOD"] = method
                run_id += 1
                wall, rate = one_run(src, tmp_path / f"out{run_id}", w, extra, env)
                walls[(w, method)].append(wall)
                rates[(w, method)].append(rate)
        results = {}
        for w, method in settings:
            wall, rate = statistics.median(walls[(w, method)]), statistics.median(rates[(w, method)])
            results[(w, method)] = wall
            label = f"--workers {w}" + (f" ({method})" if method else "")
            print(
                f"{label:28s} {wall:7.2f} s wall  {args.images / wall:6.1f} images/s (wall)  "
                f"{rate:6.1f} images/s (batch loop)  runs: {', '.join(f'{x:.2f}' for x in walls[(w, method)])}"
            )
        base = results[(counts[0], None)]
        for w in counts[1:]:
            print(f"speed-up of --workers {w} over --workers {counts[0]}: {base / results[(w, None)]:.2f}x (wall clock)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
