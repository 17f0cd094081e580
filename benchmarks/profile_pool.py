#!/usr/bin/env python
"""Where the time of one ``poolcli.pooling.pool2d`` call goes: cProfile plus a phase breakdown.

    python benchmarks/profile_pool.py avg k2s2 1x4096x4096 [more as MODE CFG SHAPE ...]

cProfile sees Python frames and NumPy's C functions called as functions
(np.full, ndarray.copy ...), but a ufunc call (``acc += view``,
``np.maximum(a, b, out=a)``) is charged to the Python function that made it.
So the breakdown below re-runs the steps of ``_reduce_extreme`` / ``_avg``
(the unbanded engine of commit 487957e and earlier, with poolcli's own helpers ``_padded``, ``_taps``,
``_tap_counts``) with a clock around each, checks that the replica's output
equals ``pool2d``'s bit for bit, and prints each phase's time, its share, the
bytes it reads + writes and the bandwidth that implies (compare with the
memcpy line: a phase far below memcpy bandwidth is bound by something other
than memory: strided access, temporaries, page faults on fresh output).
From 364f535 on (banded, threaded engine: ``pooling._run_bands``) the replica
is skipped; pool2d is then also timed and profiled with ``set_num_threads(1)``
and, for avg, the full-size divisor map is timed on its own.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from bench import CONFIGS  # noqa: E402

from poolcli import pooling as P  # noqa: E402


class Clock:
    def __init__(self):
        self.phases: dict[str, list[float]] = {}
        self.bytes: dict[str, int] = {}
        self._t = time.perf_counter()

    def lap(self, name: str, nbytes: int = 0):
        t = time.perf_counter()
        self.phases.setdefault(name, []).append(t - self._t)
        self.bytes[name] = nbytes
        self._t = t


def replica_extreme(a, g, ufunc, fill, c: Clock):
    xp = P._padded(a, g, fill)
    c.lap("pad (_padded: np.full + copy)" if xp is not a else "pad (none needed)", 0 if xp is a else 2 * xp.nbytes)
    cols = None
    n = 0
    for view in P._taps(xp, 2, g.size[1], g.stride[1], g.dilation[1], g.out[1]):
        if cols is None:
            cols = view.copy()
        else:
            ufunc(cols, view, out=cols)
        n += 1
    c.lap(f"W pass: {n} strided taps into (P, Hp, OW)", n * xp.nbytes + (2 * n - 1) * cols.nbytes)
    out = None
    n = 0
    for view in P._taps(cols, 1, g.size[0], g.stride[0], g.dilation[0], g.out[0]):
        if out is None:
            out = view.copy()
        else:
            ufunc(out, view, out=out)
        n += 1
    c.lap(f"H pass: {n} strided taps into (P, OH, OW)", n * out.nbytes * cols.shape[2] // out.shape[2] + (2 * n - 1) * out.nbytes)
    return out


def replica_avg(a, g, c: Clock):
    xp = P._padded(a, g, 0.0)
    c.lap("pad (_padded: np.full + copy)" if xp is not a else "pad (none needed)", 0 if xp is a else 2 * xp.nbytes)
    kh, kw = g.size
    (sh, sw), (dh, dw), (oh, ow) = g.stride, g.dilation, g.out
    acc = np.zeros((a.shape[0], oh, ow), dtype=a.dtype)
    c.lap("np.zeros accumulator", acc.nbytes)
    for i in range(kh):
        rows = xp[:, i * dh : i * dh + (oh - 1) * sh + 1 : sh, :]
        for j in range(kw):
            acc += rows[:, :, j * dw : j * dw + (ow - 1) * sw + 1 : sw]
    c.lap(f"{kh * kw} taps: acc += strided 2-D view", kh * kw * (acc.nbytes * xp.shape[2] // ow + 2 * acc.nbytes))
    h, w = a.shape[1:]
    top, bottom, left, right = g.pads
    ch = P._tap_counts(h, oh, kh, sh, dh, top, -top, h + bottom)
    cw = P._tap_counts(w, ow, kw, sw, dw, left, -left, w + right)
    div = np.multiply.outer(ch, cw).astype(a.dtype)
    c.lap("divisor map (_tap_counts, int64 outer, astype)", 5 * div.nbytes)
    out = np.divide(acc, div, out=np.zeros_like(acc), where=div != 0)
    c.lap("np.divide(where=div != 0) into np.zeros_like", 22 * acc.nbytes // 4)
    return out


def profile(mode: str, cfg: str, shape: tuple[int, ...], repeats: int = 5) -> None:
    k, s, p, d = CONFIGS[cfg]
    x = np.random.default_rng(5).random(shape, dtype=np.float32)
    ref = P.pool2d(x, mode, k, s, p, d)
    planes = x.reshape(-1, *x.shape[-2:])
    g = P.pool_geometry(planes.shape[1:], k, s, p, d)
    print(f"\n=== pool2d(x{'x'.join(map(str, shape))}, {mode!r}, {k}, stride={s}, padding={p}, dilation={d}) "
          f"-> {ref.shape} ===")

    dst = np.empty_like(x)
    np.copyto(dst, x)
    mc = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, x)
        mc.append(time.perf_counter() - t)
    mcm = statistics.median(mc)
    print(f"memcpy of the input: {mcm * 1e3:.2f} ms = {2 * x.nbytes / mcm / 1e9:.1f} GB/s (read + write)")

    tot = []
    for _ in range(repeats):
        t = time.perf_counter()
        P.pool2d(x, mode, k, s, p, d)
        tot.append(time.perf_counter() - t)
    total = statistics.median(tot)
    print(f"pool2d: median {total * 1e3:.2f} ms = {total / mcm:.2f}x memcpy")

    banded = hasattr(P, "_run_bands")  # 364f535 on: banded, threaded engine
    if banded:
        P.set_num_threads(1)
        t1 = []
        for _ in range(repeats):
            t = time.perf_counter()
            P.pool2d(x, mode, k, s, p, d)
            t1.append(time.perf_counter() - t)
        print(f"pool2d with set_num_threads(1): median {statistics.median(t1) * 1e3:.2f} ms "
              "(cProfile below runs single-threaded, so band work is charged to its Python frame)")
    pr = cProfile.Profile()
    pr.enable()
    P.pool2d(x, mode, k, s, p, d)
    pr.disable()
    if banded:
        P.set_num_threads(None)
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(8)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    print("cProfile (tottime; ufunc calls are charged to their caller):")
    for ln in lines[start : start + 9]:
        print("  " + ln)

    if mode == "avg":  # the divisor map, built at full output size before any band runs
        tt = []
        for _ in range(repeats):
            t = time.perf_counter()
            ch = P._tap_counts(planes.shape[1], g.out[0], k, s, d, g.pads[0], -g.pads[0], planes.shape[1] + g.pads[1])
            cw = P._tap_counts(planes.shape[2], g.out[1], k, s, d, g.pads[2], -g.pads[2], planes.shape[2] + g.pads[3])
            div = np.multiply.outer(ch, cw).astype(x.dtype)
            (div == 0).any()
            tt.append(time.perf_counter() - t)
        print(f"divisor map alone (int64 np.multiply.outer {g.out[0]}x{g.out[1]} + astype + ==0): "
              f"{statistics.median(tt) * 1e3:.2f} ms = {statistics.median(tt) / total:.0%} of pool2d")
    if banded:
        print("phase replica skipped: it mirrors the unbanded engine of 487957e and earlier")
        return
    c = Clock()
    for _ in range(repeats):
        c._t = time.perf_counter()
        if mode == "max":
            out = replica_extreme(planes, g, np.maximum, -np.inf, c)
        else:
            out = replica_avg(planes, g, c)
    assert np.array_equal(out.reshape(ref.shape), ref), "phase replica differs from pool2d: update profile_pool.py"
    tsum = sum(statistics.median(v) for v in c.phases.values())
    print(f"phases (replica of the pool2d steps, output identical; sum {tsum * 1e3:.2f} ms):")
    for name, v in c.phases.items():
        m = statistics.median(v)
        nb = c.bytes[name]
        bw = f"{nb / m / 1e9:6.1f} GB/s" if nb and m > 0 else "          "
        print(f"  {m * 1e3:8.2f} ms  {100 * m / tsum:5.1f}%  {bw}  {name}")


def main(argv: list[str]) -> int:
    if not argv or len(argv) % 3:
        print(__doc__)
        return 2
    for i in range(0, len(argv), 3):
        mode, cfg, shape = argv[i : i + 3]
        profile(mode, cfg, tuple(int(v) for v in shape.split("x")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
