#!/usr/bin/env python
"""Invariance metrics against the stacks they measure (issue 13, item 1), in one process.

    python benchmarks/bench_invariance.py [--size 2048] [--repeats 3] [--command] [--skip-old]

Builds a photo-like ``size x size`` image (``sample_images/scene.png`` upscaled
with Pillow LANCZOS, plus Gaussian noise, seed 13), computes the map set of
``poolcli invariance IMG --pool max --size 2 --stride 2 --compare
max,avg,blurpool,aps --shifts 0:5`` (per method: ``sobel | <method>(2)`` made
circular, ``f(x)`` and ``f(T x)`` for 6 x-shifts, 2 stages: 48 comparisons)
and times, on the same maps:

* ``old``: the pre-issue-13 ``compare`` (:func:`old_compare`, kept below
  verbatim as the reference), once per (method, stage, shift);
* ``compare``: today's :func:`poolcli.invariance.compare`, called the same way
  (what the invariance job does);
* ``Reference``: one :class:`poolcli.invariance.Reference` per (method, stage),
  its ``compare`` per shift (what the job can do);
* ``stacks``: the 28 stack evaluations the job runs (4 methods x (1 + 6 shifts));
* ``plan``: :func:`shared_plan`, stacks and metrics computed the way the job
  can share work (the ``sobel`` stage once per shift for all methods and its
  metrics once, no evaluation for shift 0, a ``Reference`` per ``f(x)``);
* ``run``: one evaluation of ``poolcli run``'s default stack (``sobel | max(2)``).

Every new result is checked to be identical (==, floats bit for bit) to the
old one, and the shared plan's records to the per-pair ones. Ratios are
against the 28 stack evaluations. ``--command`` also times the whole
commands (``/usr/bin/time -v``: wall and max RSS) on the image written as
``/tmp/poolcli-bench-invariance-<size>.png``.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("max", "avg", "blurpool", "aps")
SHIFTS = [(0, s) for s in range(6)]

# --------------------------------------------------------------------------- the old implementation (reference)


def old_finite(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def old_ratio(num: float, den: float) -> float | None:
    """num / den with 0 / 0 = 0 and x / 0 = None (never NaN or inf)."""
    if not (math.isfinite(num) and math.isfinite(den)):
        return None
    if num == 0.0:
        return 0.0
    if den == 0.0:
        return None
    return old_finite(num / den)


def old_norm(a: np.ndarray) -> float:
    return float(np.sqrt(np.sum(a * a)))


def old_as_map(f: Any, name: str) -> np.ndarray:
    a = np.asarray(f)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (C, h, w) or (h, w), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    return a.astype(np.float64)


def old_descriptor(f: np.ndarray) -> np.ndarray:
    """Per channel (mean, max) over space; the mean summed in sorted order."""
    flat = np.sort(f.reshape(f.shape[0], -1), axis=1)  # NaN sorts last and propagates
    return np.stack([flat.sum(axis=1) / flat.shape[1], flat[:, -1]], axis=1).ravel()


def old_overlap(fx: np.ndarray, ftx: np.ndarray, u: int, v: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(ftx[i, j], fx[i - u, j - v]) over the indices where both exist."""
    h, w = fx.shape[-2:]
    if abs(u) >= h or abs(v) >= w:
        return None
    rt = slice(max(u, 0), h + min(u, 0))
    rf = slice(max(-u, 0), h + min(-u, 0))
    ct = slice(max(v, 0), w + min(v, 0))
    cf = slice(max(-v, 0), w + min(-v, 0))
    return ftx[:, rt, ct], fx[:, rf, cf]


def old_compare(fx: Any, ftx: Any, shift: Any, total_stride: Any, mode: str = "circular") -> dict[str, Any]:
    """The pre-issue-13 ``poolcli.invariance.compare`` (commit 5423f28), verbatim but for the names."""
    dy, dx = int(shift[0]), int(shift[1])
    sy, sx = (total_stride, total_stride) if isinstance(total_stride, int) else map(int, total_stride)
    a = old_as_map(fx, "fx")
    b = old_as_map(ftx, "ftx")
    if a.shape != b.shape:
        raise ValueError(f"fx and ftx must have the same shape, got {a.shape} and {b.shape}")

    with np.errstate(all="ignore"):
        na, nb = old_norm(a), old_norm(b)
        cosine = None
        if na > 0 and nb > 0 and math.isfinite(na) and math.isfinite(nb):
            c = old_finite(np.sum(a * b) / (na * nb))
            cosine = None if c is None else min(1.0, max(-1.0, c))
        rel = old_ratio(old_norm(b - a), na)

        # equivariance over the offset window
        us = range(dy // sy - 1, -(-dy // sy) + 2)
        vs = range(dx // sx - 1, -(-dx // sx) + 2)
        best_key, best = None, None
        any_overlap = False
        for u in us:
            for v in vs:
                if mode == "circular":
                    ref, cur = np.roll(a, (u, v), axis=(-2, -1)), b
                else:
                    ov = old_overlap(a, b, u, v)
                    if ov is None:
                        continue
                    cur, ref = ov
                any_overlap = True
                err = old_ratio(old_norm(cur - ref), old_norm(ref))
                if err is None:
                    continue
                dist = (u * sy - dy) ** 2 * sx * sx + (v * sx - dx) ** 2 * sy * sy  # exact, scaled
                key = (err, dist, u, v)
                if best_key is None or key < best_key:
                    best_key, best = key, [u, v]
        if not any_overlap:
            raise ValueError(
                f"no offset in the window overlaps the map: shift={(dy, dx)}, total_stride={(sy, sx)}, "
                f"map (h, w) = {a.shape[-2:]}"
            )

        da, db = old_descriptor(a), old_descriptor(b)
        glob = old_ratio(old_norm(db - da), old_norm(da))

    return {
        "cosine": cosine,
        "rel_l2": rel,
        "equiv_rel_l2": None if best_key is None else float(best_key[0]),
        "equiv_offset": best,
        "global_rel_diff": glob,
    }


# --------------------------------------------------------------------------- the measurement


def photo(size: int) -> np.ndarray:
    """A photo-like gray ``size x size`` image in [0, 255], as uint8 (deterministic)."""
    with Image.open(ROOT / "sample_images" / "scene.png") as im:
        big = im.convert("L").resize((size, size), Image.LANCZOS)
    rng = np.random.default_rng(13)
    return np.clip(np.asarray(big, np.float64) + rng.normal(0, 6, (size, size)), 0, 255).astype(np.uint8)


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls (seconds) and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def method_maps(x, method: str, plain):
    """(stack, f(x), [f(T x) per shift]) of one method, as the invariance job computes them today."""
    from poolcli.invariance import circular_shift
    from poolcli.stack import apply_stack, circular_stack, swap_pooling

    st = circular_stack(swap_pooling(plain, method))
    return st, apply_stack(x, st), [apply_stack(circular_shift(x, *s), st) for s in SHIFTS]


def shared_plan(x, plain) -> list[dict]:
    """The invariance records computed the way the job can share work (same values as per pair).

    1. Stages before the first one that differs between the methods (here
       ``sobel``) are evaluated once per shift, not once per method, and
       their metrics computed once and reused for every method.
    2. Shift (0, 0) is ``T x = x`` in circular mode: ``f(T x)`` is ``f(x)``,
       not evaluated again.
    3. One :class:`poolcli.invariance.Reference` per distinct ``f(x)`` map,
       its ``compare`` for every shift.
    """
    from poolcli.invariance import Reference, circular_shift
    from poolcli.stack import apply_stage, circular_stack, swap_pooling

    stacks = [circular_stack(swap_pooling(plain, m)) for m in METHODS]
    n = 0
    while n < len(stacks[0].stages) and len({str(st.stages[n]) for st in stacks}) == 1:
        n += 1
    strides = [(1, 1), (2, 2)]  # sobel | <pool>(2)
    records: dict[tuple, dict] = {}

    def run(img, stages):
        out = []
        for stage in stages:
            img = apply_stage(img, stage)
            out.append(img)
        return out

    fx_prefix = run(x, stacks[0].stages[:n])
    fx_rest = [run(fx_prefix[-1] if n else x, st.stages[n:]) for st in stacks]
    refs_prefix = [Reference(f, strides[i], "circular") for i, f in enumerate(fx_prefix)]
    refs_rest = [[Reference(f, strides[n + i], "circular") for i, f in enumerate(fr)] for fr in fx_rest]
    for s in SHIFTS:
        tx_prefix = fx_prefix if s == (0, 0) else run(circular_shift(x, *s), stacks[0].stages[:n])
        shared = [refs_prefix[i].compare(f, s) for i, f in enumerate(tx_prefix)]
        for k, st in enumerate(stacks):
            rest = fx_rest[k] if s == (0, 0) else run(tx_prefix[-1] if n else circular_shift(x, *s), st.stages[n:])
            for i, r in enumerate(shared):
                records[(METHODS[k], i, s)] = r
            for i, f in enumerate(rest):
                records[(METHODS[k], n + i, s)] = refs_rest[k][i].compare(f, s)
    return [records[(m, i, s)] for m in METHODS for s in SHIFTS for i in range(len(stacks[0].stages))]


def measure(size: int, repeats: int, skip_old: bool) -> dict[str, float]:
    from poolcli.invariance import Reference, compare
    from poolcli.stack import apply_stack, parse_stack

    x = (photo(size).astype(np.float32) / 255.0)[None]
    plain = parse_stack("sobel | max(2)")
    t = {"run": timed(lambda: apply_stack(x, plain), repeats)[0], "stacks": 0.0, "old": 0.0, "compare": 0.0,
         "Reference": 0.0}
    per_pair_all = []
    for method in METHODS:
        t0 = time.perf_counter()
        st, fx, ftx = method_maps(x, method, plain)
        t["stacks"] += time.perf_counter() - t0
        strides = [(1, 1), (2, 2)]
        pairs = [(i, s, f[i]) for s, f in zip(SHIFTS, ftx) for i in range(2)]

        def per_pair():
            return [compare(fx[i], f, s, strides[i], "circular") for i, s, f in pairs]

        def shared():
            refs = [Reference(fx[i], strides[i], "circular") for i in range(2)]
            return [refs[i].compare(f, s) for i, s, f in pairs]

        dt, new = timed(per_pair, repeats)
        t["compare"] += dt
        dt, new_shared = timed(shared, repeats)
        t["Reference"] += dt
        per_pair_all += new
        if not skip_old:
            dt, old = timed(lambda: [old_compare(fx[i], f, s, strides[i], "circular") for i, s, f in pairs], 1)
            t["old"] += dt
            bad = [k for k, (a, b, c) in enumerate(zip(old, new, new_shared)) if not a == b == c]
            if bad:
                raise SystemExit(f"{method}: results differ from the old compare at pairs {bad}")
        del fx, ftx
        print(f"  {method}: done", file=sys.stderr)
    t["plan"], plan = timed(lambda: shared_plan(x, plain), repeats)
    if plan != per_pair_all:
        raise SystemExit("the shared plan's records differ from the per-pair ones")
    t.update(measure_crop(x, plain, repeats, skip_old))
    return t


def measure_crop(x, plain, repeats: int, skip_old: bool) -> dict[str, float]:
    """Crop mode, max pooling only (12 comparisons): old compare, compare, Reference."""
    from poolcli.invariance import Reference, compare, crop_pair
    from poolcli.stack import apply_stack

    m = max(abs(v) for s in SHIFTS for v in s)
    fx = apply_stack(crop_pair(x, 0, 0, m)[0], plain)
    ftx = [apply_stack(crop_pair(x, *s, m)[1], plain) for s in SHIFTS]
    pairs = [(i, s, f[i]) for s, f in zip(SHIFTS, ftx) for i in range(2)]
    strides = [(1, 1), (2, 2)]
    t = {}
    t["crop compare"], new = timed(lambda: [compare(fx[i], f, s, strides[i], "crop") for i, s, f in pairs], repeats)

    def shared():
        refs = [Reference(fx[i], strides[i], "crop") for i in range(2)]
        return [refs[i].compare(f, s) for i, s, f in pairs]

    t["crop Reference"], new_shared = timed(shared, repeats)
    t["crop old"] = float("nan")
    if not skip_old:
        t["crop old"], old = timed(lambda: [old_compare(fx[i], f, s, strides[i], "crop") for i, s, f in pairs], 1)
        if not old == new == new_shared:
            raise SystemExit("crop mode: results differ from the old compare")
    return t


def command(size: int) -> dict[str, tuple[float, float]]:
    """(wall s, max RSS MiB) of the whole ``poolcli run`` and ``poolcli invariance`` commands."""
    path = Path(tempfile.gettempdir()) / f"poolcli-bench-invariance-{size}.png"
    if not path.exists():
        Image.fromarray(photo(size)).save(path)
    out = {}
    py = [sys.executable, "-m", "poolcli"]
    cmds = {
        "run": py + ["run", str(path), "-o", "/tmp/poolcli-bench-run", "--force", "-q"],
        "invariance": py + ["invariance", str(path), "--pool", "max", "--size", "2", "--stride", "2", "--compare",
                            "max,avg,blurpool,aps", "--shifts", "0:5", "-o", "/tmp/poolcli-bench-inv", "--force", "-q"],
    }
    for name, cmd in cmds.items():
        res = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=True)
        wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", res.stderr)
        h, m, s = (float(g) if g else 0.0 for g in wall.groups())
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1))
        out[name] = (h * 3600 + m * 60 + s, rss / 1024)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3, help="median of this many (the old compare: once)")
    ap.add_argument("--skip-old", action="store_true", help="do not time (or check against) the old compare")
    ap.add_argument("--command", action="store_true", help="also time the whole commands with /usr/bin/time -v")
    args = ap.parse_args(argv)
    t = measure(args.size, args.repeats, args.skip_old)
    base = t["stacks"]
    print(f"invariance metrics, {args.size}x{args.size}, 4 methods x 2 stages x 6 shifts (48 comparisons)")
    print(f"{'what':<58} {'s':>8} {'x 28 stacks':>12}")
    rows = [("old compare (pre-issue-13), 48 calls", "old"), ("compare, 48 calls (what the job does today)", "compare"),
            ("Reference per (method, stage), 48 compares", "Reference"),
            ("28 stack evaluations (the job today)", "stacks"),
            ("shared plan: stacks + metrics, all 48 records", "plan"),
            ("1 evaluation of the run's stack (sobel | max(2))", "run")]
    for label, key in rows:
        if key == "old" and args.skip_old:
            continue
        print(f"{label:<58} {t[key]:>8.3f} {t[key] / base:>11.2f}x")
    for label, key in [("crop mode, max only (12): old compare", "crop old"), ("  compare", "crop compare"),
                       ("  Reference per stage", "crop Reference")]:
        if not (key == "crop old" and args.skip_old):
            print(f"{label:<58} {t[key]:>8.3f} {t[key] / base:>11.2f}x")
    if not args.skip_old:
        print(f"metrics speed-up: {t['old'] / t['compare']:.1f}x (compare), "
              f"{t['old'] / t['Reference']:.1f}x (Reference); values identical to the old compare")
    print(f"job today (stacks + compare): {t['stacks'] + t['compare']:.2f} s; shared plan: {t['plan']:.2f} s "
          f"(same records)")
    if args.command:
        c = command(args.size)
        print(f"{'command':<46} {'wall s':>8} {'max RSS MiB':>12}")
        for name, (wall, rss) in c.items():
            print(f"{'poolcli ' + name:<46} {wall:>8.2f} {rss:>12.0f}")
        print(f"invariance / run: {c['invariance'][0] / c['run'][0]:.2f}x (target <= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
