"""Fuzz the image loader: mutated image bytes may only ever raise ``InputError``.

Run for a bounded time, outside the test suite::

    pip install atheris            # optional: coverage-guided (libFuzzer)
    python tests/fuzz/fuzz_loader.py --seconds 60

With atheris installed it drives ``poolcli.images.load_image`` through
libFuzzer, seeded with one small file of every format poolcli reads; without
it, the same seeds go through a simple random mutator (bit flips, truncations,
splices, byte runs) for the same time. Either way, any exception other than
``poolcli.errors.InputError`` (and any hang past the time limit) is a bug: the
input is saved under ``tests/fuzz/crashes/`` and the run exits non-zero.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def seeds() -> list[bytes]:
    """One small image per format and mode the loader handles."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    gray = rgb.convert("L")
    for im, fmt, kw in [
        (gray, "PNG", {}),
        (rgb, "PNG", {}),
        (rgb.convert("P"), "PNG", {"transparency": 0}),
        (Image.fromarray(rng.integers(0, 65535, (8, 9), dtype=np.uint16)), "PNG", {}),
        (rgb, "JPEG", {"quality": 80}),
        (rgb.convert("CMYK"), "JPEG", {}),
        (rgb, "TIFF", {}),
        (Image.fromarray(rng.standard_normal((6, 7)).astype(np.float32)), "TIFF", {}),
        (rgb, "BMP", {}),
        (rgb, "GIF", {"save_all": True, "append_images": [gray.convert("P")]}),
        (rgb, "WEBP", {"lossless": True}),
        (gray.convert("1"), "PNG", {}),
        (rgb.convert("LA"), "PNG", {}),
    ]:
        buf = io.BytesIO()
        try:
            im.save(buf, fmt, **kw)
        except (OSError, KeyError, ValueError):  # a Pillow without that codec
            continue
        out.append(buf.getvalue())
    return out


def mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.randrange(5)
        if op == 0 and b:  # flip bits
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
        elif op == 1 and b:  # truncate
            del b[rnd.randrange(len(b)) :]
        elif op == 2:  # insert a run of one byte
            i = rnd.randrange(len(b) + 1)
            b[i:i] = bytes([rnd.choice([0, 0xFF, 0x7F, 0x80])]) * rnd.randint(1, 64)
        elif op == 3 and b:  # overwrite with "interesting" 32-bit values (sizes, lengths)
            i = rnd.randrange(len(b))
            b[i : i + 4] = rnd.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x00\x01\x86\xa0"])
        elif op == 4 and len(b) > 8:  # splice a chunk elsewhere
            i, j = sorted(rnd.sample(range(len(b)), 2))
            k = rnd.randrange(len(b))
            b[k:k] = b[i:j]
    return bytes(b)


def check_one(data: bytes, path: Path) -> None:
    from poolcli.errors import InputError
    from poolcli.images import load_image

    path.write_bytes(data)
    for color in ("gray", "keep"):
        try:
            x = load_image(path, color)
        except InputError:
            return
        assert x.ndim == 3 and x.dtype.name == "float32", (x.shape, x.dtype)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-atheris", action="store_true", help="use the simple mutator even if atheris is installed")
    args, rest = ap.parse_known_args()
    tmp = Path(tempfile.mkdtemp(prefix="poolcli-fuzz-"))
    target = tmp / "input.img"
    corpus = seeds()

    try:
        if args.no_atheris:
            raise ImportError
        import atheris
    except ImportError:
        atheris = None

    if atheris is not None:
        corpus_dir = tmp / "corpus"
        corpus_dir.mkdir()
        for i, data in enumerate(corpus):
            (corpus_dir / f"seed{i}").write_bytes(data)
        with atheris.instrument_imports():
            import poolcli.images  # noqa: F401

        def one(data: bytes) -> None:
            check_one(data, target)

        atheris.Setup([sys.argv[0], f"-max_total_time={int(args.seconds)}", str(corpus_dir), *rest], one)
        atheris.Fuzz()
        return 0

    rnd = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    n = 0
    while time.monotonic() < deadline:
        data = mutate(rnd.choice(corpus), rnd)
        try:
            check_one(data, target)
        except BaseException as exc:  # noqa: BLE001 - anything but InputError is a finding
            crashes = HERE / "crashes"
            crashes.mkdir(exist_ok=True)
            out = crashes / f"crash-{args.seed}-{n}.bin"
            out.write_bytes(data)
            print(f"FOUND after {n} inputs: {type(exc).__name__}: {exc} (saved {out})", file=sys.stderr)
            return 1
        n += 1
    print(f"{n} mutated inputs in {args.seconds:.0f} s: every one loaded or raised InputError")
    os.unlink(target) if target.exists() else None
    return 0


if __name__ == "__main__":
    sys.exit(main())
