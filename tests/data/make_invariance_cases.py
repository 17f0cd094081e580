"""Record ``poolcli.invariance.compare`` outputs on many cases into ``invariance_cases.npz``.

The fixture pins the metric values of the implementation that rolled and
re-normed whole maps for every candidate offset (before issue 13's rewrite):
``tests/test_invariance_fast.py`` checks the current implementation against
it (1e-9 relative, exact zeros exact, ``None`` stays ``None``, identical
``equiv_offset``). It was recorded at commit 5423f28 (numpy 2.4.6); running
this script again with the current code must reproduce it (the test checks
that, too, to 1e-9).

Cases: random maps of several shapes and dtypes (float64, float32, int),
constant and zero maps, 1..4 channels, total strides 1/2/4 and anisotropic,
shifts incl. 0, negative and multiples of the stride, both shift modes,
exact rolls (equivariant), rolls plus noise, and the maps of the real sample
images (crops of ``sample_images/*.png`` through circular / crop stacks with
max, avg, blurpool and aps pooling).

Usage (from the repository root)::

    python tests/data/make_invariance_cases.py          # writes tests/data/invariance_cases.npz
    python tests/data/make_invariance_cases.py --print  # case count and size only

The npz holds the maps as ``m{k:04d}`` arrays (each stored once, in its own
dtype) and a JSON ``cases`` index: ``[fx key, ftx key, shift, stride, mode,
expected dict]`` per case (floats as ``repr``, i.e. exact).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("invariance_cases.npz")
SEED = 20261128


class _Maps:
    """Deduplicating store of the input maps."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, a: np.ndarray) -> str:
        key = f"m{len(self.arrays):04d}"
        self.arrays[key] = np.ascontiguousarray(a)
        return key


def _random_cases(rng: np.random.Generator, maps: _Maps) -> list[tuple]:
    """(fx key, ftx key, shift, stride, mode) for the synthetic maps."""
    out = []
    shapes = [(1, 5, 7), (2, 8, 8), (3, 6, 9), (4, 12, 10), (1, 16, 16), (2, 3, 4), (1, 1, 6), (3, 17, 13)]
    strides = [(1, 1), (2, 2), (4, 4), (2, 1), (1, 4)]
    shifts = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (0, 4), (4, 0), (-1, 2), (3, -2), (-4, -4), (8, 8), (5, 3)]
    for i, shape in enumerate(shapes):
        for dtype in (np.float64, np.float32):
            fx = rng.standard_normal(shape).astype(dtype)
            if i % 3 == 1:
                fx = np.abs(fx) * 7 + 1  # positive maps (after relu / max): nearer rolls
            kx = maps.add(fx)
            for j, (dy, dx) in enumerate(shifts):
                s = strides[(i + j) % len(strides)]
                u, v = dy // s[0], dx // s[1]
                rolled = np.roll(fx, (u, v), axis=(-2, -1))
                variants = [rolled, rolled + dtype(1e-3) * rng.standard_normal(shape).astype(dtype)]
                variants.append(rng.standard_normal(shape).astype(dtype))
                for k, ftx in enumerate(variants):
                    if k == 2 and j % 3:
                        continue
                    kt = maps.add(ftx)
                    for mode in ("circular", "crop"):
                        out.append((kx, kt, (dy, dx), s, mode))
    return out


def _special_cases(rng: np.random.Generator, maps: _Maps) -> list[tuple]:
    """Zero, constant, integer, tiny-difference and 2-D maps."""
    out = []
    z = maps.add(np.zeros((2, 6, 6)))
    c = maps.add(np.full((2, 6, 6), 3.5))
    c32 = maps.add(np.full((1, 8, 8), -1.25, np.float32))
    r = rng.standard_normal((2, 6, 6))
    rk = maps.add(r)
    ints = maps.add(rng.integers(-5, 6, (3, 7, 7)))
    ints_r = maps.add(np.roll(maps.arrays[ints], (1, 2), axis=(-2, -1)))
    half = np.zeros((1, 8, 8))
    half[:, 4:, :] = 1.0
    hk = maps.add(half)
    two_d = maps.add(rng.standard_normal((9, 11)))
    two_d_r = maps.add(np.roll(maps.arrays[two_d], (2, -3), axis=(-2, -1)))
    near = r + 1e-12 * rng.standard_normal(r.shape)  # |a - Sb| tiny against |a|
    nk = maps.add(np.roll(near, (0, 1), axis=(-2, -1)))
    big = maps.add(rng.standard_normal((1, 10, 10)) * 1e150)
    small = maps.add(rng.standard_normal((1, 10, 10)) * 1e-160)
    pairs = [(z, z), (z, rk), (rk, z), (c, c), (c, rk), (rk, c), (c32, c32), (ints, ints_r), (hk, hk),
             (two_d, two_d_r), (rk, nk), (big, big), (small, small), (z, c)]
    for kx, kt in pairs:
        for shift, s in [((0, 0), (1, 1)), ((1, 2), (1, 1)), ((2, 0), (2, 2)), ((0, 1), (1, 2)), ((2, -3), (1, 1))]:
            for mode in ("circular", "crop"):
                if maps.arrays[kx].shape[-2:] == maps.arrays[kt].shape[-2:]:
                    out.append((kx, kt, shift, s, mode))
    return out


def _sample_cases(maps: _Maps) -> list[tuple]:
    """Maps of the real sample images through the invariance job's stacks."""
    from poolcli.invariance import circular_shift, crop_pair
    from poolcli.stack import apply_stack, circular_stack, parse_stack

    out = []
    specs = ["sobel | max(2)", "avg(2) | max(2)", "blurpool(2)", "aps(2) | max(2)"]
    names = ["scene.png", "texture.png", "shapes.png", "checkerboard.png", "gradient.png"]
    for n, name in enumerate(names):
        with Image.open(ROOT / "sample_images" / name) as im:
            g = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        x = np.ascontiguousarray(g[None, :64, :64])  # the top-left corner, a real image still
        spec = specs[n % len(specs)]
        for mode in ("circular", "crop"):
            st = parse_stack(spec)
            st = circular_stack(st) if mode == "circular" else st
            strides = [(1, 1)]
            for stage in st.stages:
                a, b = stage.stride()
                strides.append((strides[-1][0] * a, strides[-1][1] * b))
            base = x if mode == "circular" else crop_pair(x, 0, 0, 3)[0]
            fx = apply_stack(base, st)
            keys = [maps.add(f) for f in fx]
            for dy, dx in [(0, 0), (0, 1), (1, 1), (2, 0), (3, 3), (-2, 1)]:
                tx = circular_shift(x, dy, dx) if mode == "circular" else crop_pair(x, dy, dx, 3)[1]
                for i, f in enumerate(apply_stack(tx, st)):
                    out.append((keys[i], maps.add(f), (dy, dx), strides[i + 1], mode))
    return out


def build() -> tuple[dict[str, np.ndarray], list]:
    from poolcli.invariance import compare

    rng = np.random.default_rng(SEED)
    maps = _Maps()
    raw = _random_cases(rng, maps) + _special_cases(rng, maps) + _sample_cases(maps)
    cases = []
    for kx, kt, shift, s, mode in raw:
        try:
            got = compare(maps.arrays[kx], maps.arrays[kt], shift, s, mode)
        except ValueError as exc:
            got = {"error": str(exc)}
        cases.append([kx, kt, list(shift), list(s), mode, got])
    return maps.arrays, cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--print", action="store_true", help="print the case count and size, write nothing")
    args = ap.parse_args()
    arrays, cases = build()
    buf = io.BytesIO()
    meta = {"seed": SEED, "numpy": np.__version__, "recorded_at": "5423f28"}
    np.savez_compressed(buf, cases=np.array(json.dumps(cases)), meta=np.array(json.dumps(meta)), **arrays)
    print(f"{len(cases)} cases, {len(arrays)} maps, {buf.tell() / 1024:.0f} KiB")
    if not args.print:
        OUT.write_bytes(buf.getvalue())
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
