"""Large photos, whole processes: wall time and peak memory of ``poolcli run`` with and without unpool/montage.

    python benchmarks/bench_large.py [--repeat 3] [--size 8192] [--rgb 6000]

Generates (once, cached in the temporary folder's ``poolcli-bench``) an ``--size``² grayscale PNG and an ``--rgb``² RGB PNG
(smooth structure plus noise, like an upscaled photo), then runs, interleaved, ``--repeat`` times each:

* ``run gray.png --pool max --size 2 --stride 2`` (default outputs: maps, PNGs, unpool, montage)
* the same with ``--no-montage --no-unpool``
* ``run rgb.png --color keep`` (default stack and outputs)

and prints the median wall time and the largest peak RSS (``/usr/bin/time -v``), against issue 13's
targets: the default gray run under 4x its float32 size + 100 MiB and within 1.5x the
``--no-montage --no-unpool`` run; the RGB run under 4x its float32 size (all channels) + 100 MiB.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CACHE = Path(tempfile.gettempdir()) / "poolcli-bench"  # as benchmarks/bench.py
Image.MAX_IMAGE_PIXELS = None


def photo(size: int, channels: int, seed: int) -> Path:
    path = CACHE / f"large_{size}_{channels}.png"
    if path.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    small = rng.random((size // 64 + 1, size // 64 + 1, channels)) * 255  # structure, upscaled: a smooth photo
    im = Image.fromarray(small.astype(np.uint8).squeeze()).resize((size, size), Image.BICUBIC)
    a = np.asarray(im).astype(np.int16) + rng.integers(-12, 13, (size, size, channels)[: 2 if channels == 1 else 3],
                                                       dtype=np.int16)
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, compress_level=1)
    return path


def timed(args: list[str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        res = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "poolcli", "run", *args,
                              "--out", str(Path(tmp) / "o"), "-q"], capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"poolcli run {' '.join(args)} failed:\n{res.stderr[-2000:]}")
    return seconds, int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1)) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--rgb", type=int, default=6000)
    a = ap.parse_args()
    if not shutil.which("/usr/bin/time"):
        raise SystemExit("needs /usr/bin/time (GNU time) for the peak memory")
    gray, rgb = photo(a.size, 1, 0), photo(a.rgb, 3, 1)
    runs = {
        "gray default": [str(gray), "--pool", "max", "--size", "2", "--stride", "2"],
        "gray --no-montage --no-unpool": [str(gray), "--pool", "max", "--size", "2", "--stride", "2",
                                          "--no-montage", "--no-unpool"],
        "rgb --color keep": [str(rgb), "--color", "keep"],
    }
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    for _ in range(a.repeat):
        for name, args in runs.items():
            got[name].append(timed(args))
    med = {k: statistics.median(s for s, _ in v) for k, v in got.items()}
    peak = {k: max(m for _, m in v) for k, v in got.items()}
    gray_f32, rgb_f32 = a.size * a.size * 4 / 2**20, a.rgb * a.rgb * 3 * 4 / 2**20
    print(f"{'run':32s} {'median s':>8s} {'peak MiB':>9s}   (of {a.repeat}, interleaved)")
    for k in runs:
        print(f"{k:32s} {med[k]:8.2f} {peak[k]:9.0f}")
    ratio = med["gray default"] / med["gray --no-montage --no-unpool"]
    print(f"gray default peak {peak['gray default']:.0f} MiB vs target {4 * gray_f32 + 100:.0f} MiB; "
          f"wall {ratio:.2f}x the --no-montage --no-unpool run (target <= 1.5x)")
    print(f"rgb --color keep peak {peak['rgb --color keep']:.0f} MiB vs target {4 * rgb_f32 + 100:.0f} MiB")


if __name__ == "__main__":
    main()
