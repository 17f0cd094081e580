"""Drop-behind (``poolcli.outputs._DropBehind``): writing a batch's files with and without it.

    python benchmarks/bench_drop_behind.py [--images 400] [--rounds 3] [--dir /tmp]

Writes the files of ``--images`` 512x512 default runs (the sizes a real run writes: the montage, the
record, three stage maps as ``.npy`` and PNG, two unpool PNGs and index files; random bytes) through
``poolcli.outputs.atomic_write_bytes`` into a new folder, once with drop-behind forced on
(``POOLCLI_DROP_BEHIND=1``) and once off, alternated for ``--rounds`` rounds; prints the time and CPU per
image and how much the page cache grew. Nothing is deleted until every round is timed (deleting
frees pages, which makes the next writes cheaper on a VM whose host takes free memory back).

What it shows depends on the machine: where the host takes free memory back (``host takes free
memory back: yes``), new page-cache pages cost a fault into the host once the memory the guest keeps
free is used up; drop-behind reuses the pages of the files already on disk instead, and starts their
writeback in the writer's own time. (Off by default in poolcli: see ``poolcli.outputs._DropBehind``.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import page_reporting  # noqa: E402
from poolcli import outputs  # noqa: E402

# A 512x512 input's files with `sobel | max(2) | max(2)` and every output (bytes), as a run wrote them
SIZES = [196535, 2435, 1048704, 152357, 262272, 40347, 86987, 262272, 65664, 10853, 22783, 65664]


def cached_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Cached:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_batch(folder: Path, images: int, payloads: list[bytes], drop: bool) -> dict:
    os.environ["POOLCLI_DROP_BEHIND"] = "1" if drop else "0"
    outputs._drop_behind = outputs._DropBehind()  # reads the environment at its first file
    before = cached_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(images):
        for i, data in enumerate(payloads):
            outputs.atomic_write_bytes(folder / f"{k:05d}" / f"f{i:02d}.bin", data)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    outputs._drop_behind.flush()
    return {"ms": 1e3 * wall / images, "cpu_ms": 1e3 * cpu / images, "cache_mb": cached_mb() - before}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the files go (a local disk)")
    args = ap.parse_args()
    if not hasattr(os, "posix_fadvise"):
        raise SystemExit("no posix_fadvise on this OS: drop-behind is off here")
    payloads = [os.urandom(n) for n in SIZES]
    work = Path(tempfile.mkdtemp(prefix="poolcli-bench-drop-", dir=args.dir))
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    try:
        for r in range(args.rounds):
            for label in (("off", "on") if r % 2 == 0 else ("on", "off")):  # either goes first in turn
                os.sync()
                runs[label].append(write_batch(work / f"{label}{r}", args.images, payloads, label == "on"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(page_reporting())
    print(f"{args.images} images x {len(SIZES)} files ({sum(SIZES) / 1e6:.2f} MB an image), {args.rounds} rounds; "
          "median [all]")
    print(f"{'drop-behind':12s} {'ms/image':>28s} {'CPU ms/image':>14s} {'page cache growth MB':>26s}")
    for label, rs in runs.items():
        ms = [x["ms"] for x in rs]
        print(f"{label:12s} {statistics.median(ms):8.2f} {str([round(v, 2) for v in ms]):>19s} "
              f"{statistics.median(x['cpu_ms'] for x in rs):14.2f} "
              f"{statistics.median(x['cache_mb'] for x in rs):10.0f} {str([round(x['cache_mb']) for x in rs]):>15s}")


if __name__ == "__main__":
    main()
