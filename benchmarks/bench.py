#!/usr/bin/env python
"""poolcli performance suite (issue 5): poolcli's cores against peers, in one process.

    python benchmarks/bench.py [--quick] [--only pool|filter|e2e|startup|memory] [--json out.json]

Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (see benchmarks/README.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py --json bench.json

Every implementation is first checked against poolcli's output (max: bit-exact;
avg: |a - ref| <= 1e-6 |ref|; filters: |a - ref| <= 1e-5 max|ref|, since
poolcli filters in float64 and the peers in float32); one that fails is
reported as "mismatch" and not timed. Times: time.perf_counter, one warm-up
call, then the median (and min) of N calls. Ratios are speed-ups of poolcli
over the peer, t_peer / t_poolcli (> 1: poolcli is faster), except the
memcpy column, which is t_poolcli / t_memcpy (the hardware floor: 1.0 is
as fast as copying the input once).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("POOLCLI_BENCH_CACHE", Path(tempfile.gettempdir()) / "poolcli-bench"))

# --------------------------------------------------------------------------- optional peers
NOTES: list[str] = []


def _try_import(name: str):
    try:
        return __import__(name, fromlist=["_"])
    except Exception as exc:  # noqa: BLE001 - any failure means "not installed"
        NOTES.append(f"{name} not available ({type(exc).__name__}: {exc}); its columns are skipped")
        return None


torch = _try_import("torch")
cv2 = _try_import("cv2")
skimage_measure = _try_import("skimage.measure")
ndi = _try_import("scipy.ndimage")
if torch is not None:
    import torch.nn.functional as TF

from _machine import page_reporting  # noqa: E402 (this folder: bench.py runs as a script)
from poolcli import kernels as K  # noqa: E402
from poolcli.filters import apply_filter, correlate2d, get_filter  # noqa: E402
from poolcli.pooling import pool2d, pool_geometry  # noqa: E402

TORCH_THREADS = torch.get_num_threads() if torch is not None else None


# --------------------------------------------------------------------------- timing
@dataclass
class Timing:
    status: str  # "ok", "mismatch", "n/a" (peer lacks the op), "skipped" (peer not installed)
    median: float = math.nan
    min: float = math.nan
    note: str = ""


def time_fn(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def check(ref: np.ndarray, out: np.ndarray, kind: str, interior: int = 0) -> tuple[bool, str]:
    """Compare ``out`` to poolcli's ``ref``; ``interior`` trims that many border pixels first."""
    out = np.asarray(out)
    if out.shape != ref.shape:
        return False, f"shape {out.shape} != {ref.shape}"
    if interior:
        sl = (Ellipsis, slice(interior, -interior), slice(interior, -interior))
        ref, out = ref[sl], out[sl]
    a, b = ref.astype(np.float64), out.astype(np.float64)
    if kind == "exact":
        ok = np.array_equal(ref, out)
        return ok, "" if ok else f"{int((a != b).sum())} values differ"
    err = np.abs(a - b)
    if kind == "rel1e-6":
        ok = bool(np.all(err <= 1e-6 * np.abs(a)))
        return ok, "" if ok else f"max rel err {float((err / np.maximum(np.abs(a), 1e-30)).max()):.2e}"
    if kind == "scale1e-5":  # float32 arithmetic vs poolcli's float64: relative to the map's scale
        scale = float(np.abs(a).max()) or 1.0
        ok = bool(err.max() <= 1e-5 * scale)
        return ok, "" if ok else f"max err {float(err.max()) / scale:.2e} of max|ref|"
    raise ValueError(kind)


@dataclass
class Impl:
    name: str
    make: Callable[[], Callable[[], Any]] | None  # None: the peer lacks this op
    kind: str = "exact"
    interior: int = 0
    pre: Callable[[], None] | None = None
    post: Callable[[], None] | None = None
    note: str = ""
    missing: str = ""  # set: the peer is not installed


def run_impls(ref: np.ndarray, impls: list[Impl], repeats: int) -> dict[str, Timing]:
    res: dict[str, Timing] = {}
    for im in impls:
        if im.missing:
            res[im.name] = Timing("skipped", note=im.missing)
            continue
        if im.make is None:
            res[im.name] = Timing("n/a", note=im.note)
            continue
        if im.pre:
            im.pre()
        try:
            fn = im.make()
            ok, why = check(ref, fn(), im.kind, im.interior)
            if not ok:
                res[im.name] = Timing("mismatch", note=why)
                continue
            med, mn = time_fn(fn, repeats)
            res[im.name] = Timing("ok", med, mn, im.note)
        finally:
            if im.post:
                im.post()
    return res


def geomean(xs: list[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else math.nan


# --------------------------------------------------------------------------- tables
def fmt_ms(t: Timing) -> str:
    if t.status != "ok":
        return t.status
    return f"{t.median * 1e3:.2f} [{t.min * 1e3:.2f}]" if t.median < 0.1 else f"{t.median * 1e3:.0f} [{t.min * 1e3:.0f}]"


def fmt_ratio(r: float) -> str:
    return "-" if not math.isfinite(r) else f"{r:.2f}x"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    out = [title, line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    return "\n".join(out)


def emit(text: str = "") -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- pooling
SHAPES = [(1, 1024, 1024), (1, 4096, 4096), (3, 2048, 2048), (64, 128, 128)]
# name -> (kernel, stride, padding, dilation)
CONFIGS = {
    "k2s2": (2, 2, 0, 1),
    "k3s2p1": (3, 2, 1, 1),
    "k3s1p1": (3, 1, 1, 1),
    "k5s1": (5, 1, 0, 1),
    "k2s2d2": (2, 2, 0, 2),
}
POOL_PEERS = ["torch", "torch-1t", "opencv", "skimage", "scipy"]


def _window_slices(k: int, s: int, p: int, d: int, oh: int, ow: int):
    """Where a centred-anchor sliding filter (OpenCV, scipy.ndimage) holds the pooling windows.

    Both put a filter of (dilated) size ``K`` at ``[i - K // 2, i - K // 2 + K - 1]``;
    pooling window ``o`` starts at ``o * s - p``, so it is the filter output at
    ``i = o * s - p + K // 2``, every ``s``-th value from ``c0 = K // 2 - p``.
    """
    ke = d * (k - 1) + 1
    c0 = ke // 2 - p
    return slice(c0, c0 + (oh - 1) * s + 1, s), slice(c0, c0 + (ow - 1) * s + 1, s), ke


def pool_impls(x: np.ndarray, mode: str, k: int, s: int, p: int, d: int) -> list[Impl]:
    c, h, w = x.shape
    oh, ow = pool_geometry((h, w), k, s, p, d).out
    rs, cs, ke = _window_slices(k, s, p, d, oh, ow)
    full = rs == slice(0, h, 1) and cs == slice(0, w, 1)
    avg_kind = "rel1e-6"
    kind = "exact" if mode == "max" else avg_kind
    impls = [Impl("poolcli", lambda: lambda: pool2d(x, mode, k, s, p, d), kind)]

    # PyTorch
    if torch is None:
        impls += [Impl("torch", None, missing="not installed"), Impl("torch-1t", None, missing="not installed")]
    else:
        t = torch.from_numpy(x)[None]  # (1, C, H, W), shares memory
        if mode == "max":
            tf = lambda: TF.max_pool2d(t, k, s, p, d)[0].numpy()  # noqa: E731
        elif d == 1:
            tf = lambda: TF.avg_pool2d(t, k, s, p)[0].numpy()  # noqa: E731
        else:
            tf = None
        note = "avg_pool2d has no dilation"
        impls.append(Impl("torch", (lambda: tf) if tf else None, kind, note=note if tf is None else ""))
        impls.append(
            Impl(
                "torch-1t",
                (lambda: tf) if tf else None,
                kind,
                pre=lambda: torch.set_num_threads(1),
                post=lambda: torch.set_num_threads(TORCH_THREADS),
                note=note if tf is None else "",
            )
        )

    # OpenCV: a sliding filter over each plane, then the window positions (strided copy).
    if cv2 is None:
        impls.append(Impl("opencv", None, missing="not installed"))
    elif mode == "avg" and d > 1:
        impls.append(Impl("opencv", None, note="cv2.blur has no dilation"))
    else:
        kern = np.zeros((ke, ke), np.uint8)
        kern[::d, ::d] = 1

        def cv_fn():
            out = np.empty((c, oh, ow), np.float32)
            for i in range(c):
                if mode == "max":  # BORDER_CONSTANT with the default border value: -inf for dilate
                    if full:
                        cv2.dilate(x[i], kern, dst=out[i], borderType=cv2.BORDER_CONSTANT)
                    else:
                        out[i] = cv2.dilate(x[i], kern, borderType=cv2.BORDER_CONSTANT)[rs, cs]
                else:  # zero border, divisor k*k: count_include_pad=True
                    if full:
                        cv2.blur(x[i], (k, k), dst=out[i], borderType=cv2.BORDER_CONSTANT)
                    else:
                        out[i] = cv2.blur(x[i], (k, k), borderType=cv2.BORDER_CONSTANT)[rs, cs]
            return out

        impls.append(Impl("opencv", lambda: cv_fn, kind))

    # scikit-image block_reduce: non-overlapping blocks only.
    if skimage_measure is None:
        impls.append(Impl("skimage", None, missing="not installed"))
    elif (k, s, p, d) == (2, 2, 0, 1):
        red = np.max if mode == "max" else np.mean
        impls.append(Impl("skimage", lambda: lambda: skimage_measure.block_reduce(x, (1, 2, 2), red), kind))
    else:
        impls.append(Impl("skimage", None, note="block_reduce: k2s2 only"))

    # scipy.ndimage: maximum_filter / uniform_filter (correlate for dilated avg) + slicing.
    if ndi is None:
        impls.append(Impl("scipy", None, missing="not installed"))
    else:
        foot = np.zeros((1, ke, ke), bool)
        foot[0, ::d, ::d] = True
        if mode == "max":
            if d == 1:
                sf = lambda: ndi.maximum_filter(x, size=(1, k, k), mode="constant", cval=-np.inf)  # noqa: E731
            else:
                sf = lambda: ndi.maximum_filter(x, footprint=foot, mode="constant", cval=-np.inf)  # noqa: E731
        elif d == 1:
            sf = lambda: ndi.uniform_filter(x, size=(1, k, k), mode="constant", cval=0.0)  # noqa: E731
        else:
            wts = foot.astype(np.float32) / np.float32(k * k)
            sf = lambda: ndi.correlate(x, wts, mode="constant", cval=0.0)  # noqa: E731
        impls.append(
            Impl("scipy", lambda: (lambda: sf() if full else np.ascontiguousarray(sf()[:, rs, cs])), kind)
        )
    return impls


def bench_pool(quick: bool, results: dict) -> None:
    rng = np.random.default_rng(5)
    rows_t, rows_r, recs = [], [], []
    for shape in SHAPES:
        x = rng.random(shape, dtype=np.float32)
        big = x.size >= 4_000_000
        reps = (3 if quick else 5) if big else (5 if quick else 11)
        dst = np.empty_like(x)
        memcpy = time_fn(lambda: np.copyto(dst, x), reps + 2)
        for mode in ("max", "avg"):
            for cname, (k, s, p, d) in CONFIGS.items():
                ref = pool2d(x, mode, k, s, p, d)
                res = run_impls(ref, pool_impls(x, mode, k, s, p, d), reps)
                base = res["poolcli"]
                ratios = {
                    n: (res[n].median / base.median if res[n].status == "ok" else math.nan) for n in POOL_PEERS
                }
                ratios["memcpy"] = base.median / memcpy[0]
                label = "x".join(map(str, shape))
                recs.append(
                    {
                        "shape": shape,
                        "mode": mode,
                        "config": cname,
                        "memcpy_s": {"median": memcpy[0], "min": memcpy[1]},
                        "times": {n: t.__dict__ for n, t in res.items()},
                        "speedup_vs": {n: ratios[n] for n in POOL_PEERS},
                        "poolcli_over_memcpy": ratios["memcpy"],
                    }
                )
                rows_t.append(
                    [label, mode, cname, fmt_ms(base)]
                    + [fmt_ms(res[n]) for n in POOL_PEERS]
                    + [fmt_ms(Timing("ok", *memcpy))]
                )
                rows_r.append([label, mode, cname] + [fmt_ratio(ratios[n]) for n in POOL_PEERS + ["memcpy"]])
                emit(f"  pool {label} {mode} {cname}: poolcli {fmt_ms(base)} ms | "
                     + ", ".join(f"{n} {fmt_ratio(ratios[n])}" for n in POOL_PEERS + ["memcpy"]))
                for n, t in res.items():
                    if t.status == "mismatch":
                        emit(f"    ! {n} mismatch: {t.note}")
    emit()
    emit(table("Pooling: median [min] ms, float32, N repeats after 1 warm-up",
               ["shape", "mode", "cfg", "poolcli"] + POOL_PEERS + ["memcpy"], rows_t))
    emit()
    emit(table("Pooling: speed-up of poolcli = t_peer / t_poolcli (>1: poolcli faster); "
               "memcpy column = t_poolcli / t_memcpy",
               ["shape", "mode", "cfg"] + POOL_PEERS + ["memcpy"], rows_r))
    results["pool"] = recs

    # Summary
    def g(peer):
        return geomean([r["speedup_vs"][peer] for r in recs])

    vs_t = [(r["speedup_vs"]["torch"], r) for r in recs if math.isfinite(r["speedup_vs"]["torch"])]
    worst = sorted(vs_t, key=lambda z: z[0])[:3]
    summ = {
        "geomean_vs_torch": g("torch"),
        "geomean_vs_torch_1t": g("torch-1t"),
        "geomean_vs_opencv": g("opencv"),
        "geomean_vs_scipy": g("scipy"),
        "geomean_vs_skimage": g("skimage"),
        "n_configs_vs_torch": len(vs_t),
        "n_configs_vs_opencv": sum(math.isfinite(r["speedup_vs"]["opencv"]) for r in recs),
        "worst_vs_torch": [
            {"shape": r["shape"], "mode": r["mode"], "config": r["config"], "speedup": v} for v, r in worst
        ],
    }
    k2 = [r for r in recs if r["shape"] == (1, 4096, 4096) and r["mode"] == "max" and r["config"] == "k2s2"]
    summ["k2s2_max_4096_over_memcpy"] = k2[0]["poolcli_over_memcpy"] if k2 else math.nan
    results["pool_summary"] = summ
    emit()
    emit(f"Geometric mean speed-up of poolcli over {summ['n_configs_vs_torch']} configurations: "
         f"torch (default {TORCH_THREADS} threads) {summ['geomean_vs_torch']:.2f}x, "
         f"torch 1 thread {summ['geomean_vs_torch_1t']:.2f}x; over OpenCV ({summ['n_configs_vs_opencv']} configs) "
         f"{summ['geomean_vs_opencv']:.2f}x; scipy {summ['geomean_vs_scipy']:.2f}x; skimage (k2s2) "
         f"{summ['geomean_vs_skimage']:.2f}x")
    for v, r in worst:
        emit(f"  slowest vs torch: {'x'.join(map(str, r['shape']))} {r['mode']} {r['config']}: {v:.2f}x "
             f"(poolcli takes {1 / v:.2f}x torch's time)")


# --------------------------------------------------------------------------- filters
def _torch_filter(x2d: np.ndarray, kernels: list[np.ndarray], magnitude: bool):
    """conv2d with replicate padding ((K-1)//2 each side) = scipy 'reflect' for 3x3 kernels."""
    t = torch.from_numpy(x2d)[None, None]
    wt = torch.from_numpy(np.stack(kernels).astype(np.float32))[:, None]
    r = (kernels[0].shape[0] - 1) // 2

    def fn():
        with torch.inference_mode():
            y = TF.conv2d(TF.pad(t, (r, r, r, r), mode="replicate"), wt)
            y = torch.hypot(y[:, :1], y[:, 1:]) if magnitude else y
            return y[0].numpy()

    return fn


def filter_cases(x: np.ndarray) -> list[tuple[str, Callable[[], np.ndarray], list[Impl]]]:
    x2d = x[0]
    f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    sx, sy = f32(K.SOBEL_X), f32(K.SOBEL_Y)
    bin3 = f32(K.outer(K.binomial(3)) / 16.0)
    g1 = K.gaussian(1.0)
    tol = "scale1e-5"
    cases = []
    have_cv, have_nd, have_t = cv2 is not None, ndi is not None, torch is not None
    R = cv2.BORDER_REFLECT if have_cv else None  # fedcba|abcdef = scipy 'reflect'
    miss = "not installed"

    def I(name, make, have, **kw):  # noqa: E743
        return Impl(name, make if have else None, tol, missing="" if have else miss, **kw)

    # ndi.sobel smooths along *every* other axis, the plane axis of a (1, H, W) array too
    # (4x the 2-D result with mode="reflect"): it gets the (H, W) plane.
    # 1. Sobel-x alone: one 3x3 kernel.
    cases.append((
        "sobel-x 3x3",
        lambda: correlate2d(x, K.SOBEL_X),
        [
            I("cv2.filter2D", lambda: lambda: cv2.filter2D(x2d, -1, sx, borderType=R)[None], have_cv),
            I("cv2.Sobel", lambda: lambda: cv2.Sobel(x2d, cv2.CV_32F, 1, 0, ksize=3, borderType=R)[None], have_cv),
            I("ndi.correlate", lambda: lambda: ndi.correlate(x, sx[None], mode="reflect"), have_nd),
            I("ndi.sobel", lambda: lambda: ndi.sobel(x2d, axis=-1, mode="reflect")[None], have_nd),
            I("torch.conv2d", lambda: _torch_filter(x2d, [sx], False), have_t),
        ],
    ))
    # 2. Sobel gradient magnitude, what `--filter sobel` computes.
    cases.append((
        "sobel magnitude",
        lambda: apply_filter(x, get_filter("sobel")),
        [
            I("cv2.filter2D", lambda: lambda: cv2.magnitude(cv2.filter2D(x2d, -1, sx, borderType=R),
                                                              cv2.filter2D(x2d, -1, sy, borderType=R))[None], have_cv),
            I("cv2.Sobel", lambda: lambda: cv2.magnitude(cv2.Sobel(x2d, cv2.CV_32F, 1, 0, ksize=3, borderType=R),
                                                           cv2.Sobel(x2d, cv2.CV_32F, 0, 1, ksize=3, borderType=R))[None], have_cv),
            I("ndi.correlate", lambda: lambda: np.hypot(ndi.correlate(x, sx[None], mode="reflect"),
                                                        ndi.correlate(x, sy[None], mode="reflect")), have_nd),
            I("ndi.sobel", lambda: lambda: np.hypot(ndi.sobel(x2d, axis=-1, mode="reflect"),
                                                    ndi.sobel(x2d, axis=-2, mode="reflect"))[None], have_nd),
            I("torch.conv2d", lambda: _torch_filter(x2d, [sx, sy], True), have_t),
        ],
    ))
    # 3. 3x3 Gaussian: the binomial [1 2 1]/4 x [1 2 1]/4, cv2.GaussianBlur's fixed 3x3 kernel (sigma=0).
    cases.append((
        "gaussian 3x3",
        lambda: correlate2d(x, K.outer(K.binomial(3)) / 16.0),
        [
            I("cv2.filter2D", lambda: lambda: cv2.filter2D(x2d, -1, bin3, borderType=R)[None], have_cv),
            I("cv2.GaussianBlur", lambda: lambda: cv2.GaussianBlur(x2d, (3, 3), 0, borderType=R)[None], have_cv),
            I("ndi.correlate", lambda: lambda: ndi.correlate(x, bin3[None], mode="reflect"), have_nd),
            I("torch.conv2d", lambda: _torch_filter(x2d, [bin3], False), have_t),
        ],
    ))
    # 4. The CLI's default Gaussian: sigma=1, radius 4 (9x9), scipy's taps.
    g9 = f32(K.outer(g1))
    cases.append((
        "gaussian s=1 9x9",
        lambda: apply_filter(x, get_filter("gaussian", sigma=1.0)),
        [
            I("cv2.filter2D", lambda: lambda: cv2.filter2D(x2d, -1, g9, borderType=R)[None], have_cv),
            I("cv2.sepFilter2D", lambda: lambda: cv2.sepFilter2D(x2d, -1, f32(g1), f32(g1), borderType=R)[None], have_cv),
            I("cv2.GaussianBlur", lambda: lambda: cv2.GaussianBlur(x2d, (9, 9), 1.0, borderType=R)[None], have_cv),
            I("ndi.gaussian", lambda: lambda: ndi.gaussian_filter(x, (0, 1.0, 1.0), mode="reflect", truncate=4.0), have_nd),
        ],
    ))
    return cases


def bench_filter(quick: bool, results: dict) -> None:
    x = np.random.default_rng(7).random((1, 4096, 4096), dtype=np.float32)
    reps = 3 if quick else 5
    dst = np.empty_like(x)
    memcpy = time_fn(lambda: np.copyto(dst, x), reps + 2)
    rows, recs = [], []
    for name, poolcli_fn, peers in filter_cases(x):
        ref = poolcli_fn()
        res = run_impls(ref, [Impl("poolcli", lambda f=poolcli_fn: f, "exact")] + peers, reps)
        base = res["poolcli"]
        rec = {"filter": name, "memcpy_s": memcpy[0], "times": {n: t.__dict__ for n, t in res.items()},
               "poolcli_over_peer": {}, "poolcli_over_memcpy": base.median / memcpy[0]}
        for n, t in res.items():
            if n == "poolcli":
                rows.append([name, "poolcli", "", fmt_ms(t), "1.00x", fmt_ratio(base.median / memcpy[0])])
                continue
            r = base.median / t.median if t.status == "ok" else math.nan
            rec["poolcli_over_peer"][n] = r
            rows.append([name, n, t.note if t.status == "ok" else (t.status + (": " + t.note if t.note else "")),
                         fmt_ms(t), fmt_ratio(r), fmt_ratio(t.median / memcpy[0]) if t.status == "ok" else "-"])
        recs.append(rec)
        emit(f"  filter {name}: poolcli {fmt_ms(base)} ms ({base.median / memcpy[0]:.1f}x memcpy)")
    emit()
    emit(table(f"Filters on 1x4096x4096 float32 (memcpy {memcpy[0] * 1e3:.2f} ms): median [min] ms; "
               "poolcli/peer = t_poolcli / t_peer (<1: poolcli faster)",
               ["filter", "impl", "note", "ms", "poolcli/peer", "t/memcpy"], rows))
    results["filter"] = recs


# --------------------------------------------------------------------------- CLI processes
def poolcli_exe() -> list[str]:
    exe = Path(sys.executable).with_name("poolcli")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("poolcli")
    return [found] if found else [sys.executable, "-m", "poolcli"]


def compile_sources(*checkouts: str | Path | None) -> None:
    """Byte-compile poolcli's modules (``python -m compileall``) in this tree and in any baseline checkout.

    A ``pip install`` compiles them at install time; an editable checkout run under
    ``PYTHONDONTWRITEBYTECODE=1`` (as on this project's machines) compiled every
    module from source on every run: 0.1 s of each start-up (0.41 vs 0.31 s for
    one image, measured), in the timed poolcli runs and not in the PyTorch
    script's (its packages were compiled when pip installed them).
    """
    import poolcli

    dirs = [Path(poolcli.__file__).parent] + [Path(c) / "poolcli" for c in checkouts if c]
    for d in dirs:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(d)], check=True, capture_output=True,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})


def has_workers() -> bool:
    out = subprocess.run(poolcli_exe() + ["run", "--help"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "200"})
    return "--workers" in out.stdout


def time_proc(cmd: list[str] | Callable[[int], list[str]], repeats: int, warmup: int = 1,
              before: Callable[[], None] | None = None, timev: bool = False, env: dict | None = None,
              cwd: str | None = None) -> dict:
    """Median / min wall time of a whole process; with ``timev`` also its max RSS (/usr/bin/time -v).

    ``cmd`` may be a function of the run's number (0, 1, ...) giving the command: e.g. a new output
    folder for every run (see :func:`bench_e2e`).

    Each run starts after ``os.sync()``: on this machine a 200-image run writes about 460 MB, and its
    writeback (and that of deleting it) otherwise fell into the next run's time (system time of one and
    the same run measured 0.6-1.7 s)."""
    ts, rss, cpu = [], [], []
    for i in range(warmup + repeats):
        if before:
            before()
        # every run starts with nothing left to write back: the previous run's hundreds of MB of outputs
        # (and their deletion by `before`) were otherwise written back during the next run, in its time
        os.sync()
        argv = cmd(i) if callable(cmd) else cmd
        full = (["/usr/bin/time", "-v"] + argv) if timev else argv
        t0 = time.perf_counter()
        p = subprocess.run(full, capture_output=True, text=True, env=env, cwd=cwd)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
        if i >= warmup:
            ts.append(dt)
            if timev:
                m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
                rss.append(int(m[1]) / 1024 if m else math.nan)
                u, s = (re.search(rf"{k} time \(seconds\): ([\d.]+)", p.stderr) for k in ("User", "System"))
                cpu.append((float(u[1]) if u else math.nan, float(s[1]) if s else math.nan))
    out = {"median": statistics.median(ts), "min": min(ts), "n": len(ts)}
    if timev:
        out["max_rss_mib"] = max(rss)
        # CPU time of the process and its children: user, and system (the kernel: on this VM mostly copying
        # written bytes into new page-cache pages, which varied 2-4x from run to run with the machine's state)
        out["user_s"] = statistics.median(c[0] for c in cpu)
        out["sys_s"] = statistics.median(c[1] for c in cpu)
    return out


def _image(h: int, w: int, seed: int) -> np.ndarray:
    """A photo-like uint8 test image: smooth shapes plus noise (compresses like a photo, not like noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w), np.float32)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.05, 0.4) * min(h, w)
        img += rng.uniform(40, 120) * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
    img += 60 * np.sin(xx / rng.uniform(10, 60)) * np.cos(yy / rng.uniform(10, 60))
    img += rng.normal(0, 8, (h, w)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def image_dir(n: int, size: int) -> Path:
    from PIL import Image

    d = CACHE / f"imgs_{n}_{size}"
    if d.is_dir() and len(list(d.glob("*.png"))) == n:
        return d
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(_image(size, size, i)).save(d / f"img{i:03d}.png")
    return d


E2E_STACK = "sobel | max(2) | max(2)"


def _compare_e2e(a: Path, b: Path) -> tuple[bool, str]:
    """poolcli's stage maps (a) vs the PyTorch script's (b): .npy to 1e-5 of the map's scale, PNG within 1 level."""
    from PIL import Image

    worst, worst_png, n = 0.0, 0, 0
    for npy in sorted(a.glob("*/stage*.npy")):
        other = b / npy.parent.name / npy.name
        if not other.exists():
            return False, f"PyTorch script wrote no {other.relative_to(b)}"
        ra, rb = np.load(npy), np.load(other)
        if ra.shape != rb.shape:
            return False, f"{npy.name}: shape {rb.shape} != {ra.shape}"
        worst = max(worst, float(np.abs(ra.astype(np.float64) - rb).max() / (np.abs(ra).max() or 1)))
        pa, pb = npy.with_name(npy.stem + "_c0.png"), other.with_name(other.stem + "_c0.png")
        ia, ib = np.asarray(Image.open(pa), np.int16), np.asarray(Image.open(pb), np.int16)
        worst_png = max(worst_png, int(np.abs(ia - ib).max()))
        n += 1
    ok = n > 0 and worst <= 1e-5 and worst_png <= 1
    return ok, f"{n} maps; max .npy err {worst:.1e} of the map's max, max PNG diff {worst_png} level(s)"


def _machine_state(folder: Path) -> str:
    """The state that moved the e2e times most on the 2-core VM: the output disk's free space (ext4 at 96%
    full: system time of a default run 1.45 s against 0.81 s after 52 GB were freed) and free memory (page
    cache written into memory that the VM's host took back costs 2.5-3.5 ms per MB; reused, 0.3-0.5)."""
    du = shutil.disk_usage(folder)
    text = f"disk {du.free / 2**30:.0f} GiB available, {100 * du.used / (du.used + du.free):.0f}% used (as df counts)"
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        free, cached = (int(info[k].split()[0]) / 2**20 for k in ("MemFree", "Cached"))
        text += f"; memory {free:.1f} GiB free, {cached:.1f} GiB page cache"
    except (OSError, KeyError, ValueError):
        pass
    return f"{text}; {page_reporting()}"


def bench_e2e(quick: bool, results: dict) -> None:
    n = 40 if quick else 200
    src = image_dir(n, 512)
    work = Path(tempfile.mkdtemp(prefix="poolcli-bench-e2e-"))
    reps = 1 if quick else 3
    rec: dict[str, Any] = {"images": n, "size": 512, "stack": E2E_STACK}
    try:
        base = poolcli_exe() + ["run", str(src), "--stack", E2E_STACK, "-q"]
        lean = ["--no-montage", "--no-unpool"]  # the PyTorch script's outputs exactly
        workers = has_workers()
        rec["workers_supported"] = workers
        # issue 13: with default outputs too (unpool maps and montage: what users get)
        variants = [("poolcli --workers 1", ["--workers", "1", *lean]), ("poolcli --workers 2", ["--workers", "2", *lean]),
                    ("poolcli --workers 2, default outputs", ["--workers", "2"])] \
            if workers else [("poolcli", lean)]
        # The same default run with drop-behind (poolcli.outputs._DropBehind, POOLCLI_DROP_BEHIND=1: written
        # files leave the page cache once on disk): what it changes, measured in the same rounds.
        drop = "poolcli --workers 2, default outputs, POOLCLI_DROP_BEHIND=1"
        variant_env = {drop: {**os.environ, "POOLCLI_DROP_BEHIND": "1"}}
        if workers:
            variants.append((drop, ["--workers", "2"]))
        if not workers:
            NOTES.append("`poolcli run --help` has no --workers option: the end-to-end run is timed without it")
        # Every timed run writes into a new folder, and nothing is deleted until all are timed: deleting a
        # run's ~2,600 files made every file the next run created cost more (ext4 skips inodes deleted in
        # the last minute when it allocates one: `recently_deleted` was 7% of a run's samples in `perf`),
        # a cost of the benchmark itself that grew with the number of files a tool writes. Disk: about
        # 0.5 GB per timed run, all removed at the end.
        runs = itertools.count()
        fresh = lambda: work / f"out{next(runs)}"  # noqa: E731
        rows = []
        torch_cmd = lambda i: [sys.executable, str(HERE / "e2e_torch.py"), str(src), str(fresh())]  # noqa: E731
        if torch is None:
            rec["torch"] = {"status": "skipped", "note": "torch not installed"}
        else:
            # Check first, on the folder's first 10 images (same files): both produce the same maps.
            few = image_dir(10, 512)
            subprocess.run(poolcli_exe() + ["run", str(few), "--stack", E2E_STACK, "--no-montage", "--no-unpool", "-q",
                                            "-o", str(work / "chk_pc")], check=True, capture_output=True)
            subprocess.run([sys.executable, str(HERE / "e2e_torch.py"), str(few), str(work / "chk_t")],
                           check=True, capture_output=True)
            ok, why = _compare_e2e(work / "chk_pc", work / "chk_t")
            rec["check"] = why
            if not ok:
                rec["torch"] = {"status": "mismatch", "note": why}
        before = os.environ.get("POOLCLI_BASELINE")  # an older checkout, timed in the same run (ratios of today)
        if before and workers:
            variants += [(f"baseline {Path(before).name} --workers 2", ["--workers", "2", *lean]),
                         (f"baseline {Path(before).name} --workers 2, default outputs", ["--workers", "2"])]
        if before and workers:
            # `python -m` puts the working directory first on sys.path: run from the baseline checkout, and
            # check which poolcli that imports (run from this tree, it silently timed this tree's code)
            where = subprocess.run([sys.executable, "-c", "import poolcli; print(poolcli.__file__)"], cwd=before,
                                   env={**os.environ, "PYTHONPATH": before}, capture_output=True, text=True)
            if not Path(where.stdout.strip()).resolve().is_relative_to(Path(before).resolve()):
                raise SystemExit(f"POOLCLI_BASELINE={before}: python imports poolcli from {where.stdout.strip()!r}")
        # Round robin: every repetition times the PyTorch script and each poolcli variant once, in turn, so
        # that the machine's slow spells (on this shared 2-core VM the same run's wall time drifted by
        # 20-40% within minutes: the script 7.3-11.3 s) fall on all of them alike, not on whichever was timed
        # in a block of its own; each reported time is the median of its `reps` runs.
        timed: dict[str, list[dict]] = {}
        runs_of = []
        if "torch" not in rec:
            runs_of.append(("torch", lambda i: time_proc(torch_cmd, 1, warmup=0, timev=True)))
        for label, extra in variants:
            old = label.startswith("baseline")
            cmd = ([sys.executable, "-m", "poolcli"] + base[len(poolcli_exe()):]) if old else base
            env = {**os.environ, "PYTHONPATH": before} if old else variant_env.get(label)
            runs_of.append((label, lambda i, cmd=cmd, extra=extra, env=env, cwd=before if old else None: time_proc(
                lambda _: cmd + extra + ["-o", str(fresh())], 1, warmup=0, timev=True, env=env, cwd=cwd)))
        for i in range(reps):
            for label, run in runs_of:
                timed.setdefault(label, []).append(run(i))
        for label, ts in timed.items():
            walls = [t["median"] for t in ts]
            t = {"median": statistics.median(walls), "min": min(walls), "n": len(walls),
                 "max_rss_mib": max(t["max_rss_mib"] for t in ts),
                 "user_s": statistics.median(t["user_s"] for t in ts), "sys_s": statistics.median(t["sys_s"] for t in ts)}
            rec[label] = {"status": "ok", **t, "images_per_s": n / t["median"]}
        tips = rec["torch"].get("images_per_s", math.nan)
        for label in [v[0] for v in variants] + ["torch"]:
            r = rec[label]
            if r["status"] != "ok":
                rows.append([label, r["status"], "", "", "", r.get("note", "")])
                continue
            rows.append([label, f"{r['median']:.2f} [{r['min']:.2f}]", f"{r['user_s']:.2f} + {r['sys_s']:.2f}",
                         f"{r['images_per_s']:.1f}", f"{r['max_rss_mib']:.0f}",
                         fmt_ratio(r["images_per_s"] / tips) if label != "torch" else "1.00x"])
        emit()
        rec["machine"] = _machine_state(work)
        emit(f"Machine at the end: {rec['machine']}")
        emit(table(f"End to end: {n} PNGs 512x512, `{E2E_STACK}` + .npy and PNG per stage, whole processes "
                   f"(median [min] of {reps}); check: {rec.get('check', '-')}",
                   ["run", "s", "CPU s user + sys", "img/s", "maxRSS MiB", "vs torch"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["e2e"] = rec


def bench_startup(quick: bool, results: dict) -> None:
    from PIL import Image

    reps = 5
    img = CACHE / "startup_256.png"
    CACHE.mkdir(parents=True, exist_ok=True)
    if not img.exists():
        Image.fromarray(_image(256, 256, 1)).save(img)
    out = Path(tempfile.mkdtemp(prefix="poolcli-bench-start-"))
    try:
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("python -c 'import numpy'", [sys.executable, "-c", "import numpy"]),
            ("python -c 'import numpy, scipy.ndimage, PIL.Image'",
             [sys.executable, "-c", "import numpy, scipy.ndimage, PIL.Image"]),
            ("poolcli --help", poolcli_exe() + ["--help"]),
            ("poolcli run 256x256.png", poolcli_exe() + ["run", str(img), "-o", str(out / "o"), "-q"]),
        ]
        rec, rows = {}, []
        for label, cmd in cases:
            t = time_proc(cmd, reps, warmup=1, before=lambda: shutil.rmtree(out / "o", ignore_errors=True))
            rec[label] = t
            rows.append([label, f"{t['median'] * 1e3:.0f}", f"{t['min'] * 1e3:.0f}"])
        emit()
        emit(table(f"Start-up: whole processes, median and min of {reps} after 1 warm-up (ms)",
                   ["command", "median", "min"], rows))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    results["startup"] = rec


def bench_memory(quick: bool, results: dict) -> None:
    from PIL import Image

    side = 8192
    img = CACHE / f"gray_{side}.png"
    CACHE.mkdir(parents=True, exist_ok=True)
    if not img.exists():
        Image.fromarray(_image(side, side, 3)).save(img)
    out = Path(tempfile.mkdtemp(prefix="poolcli-bench-mem-"))
    rec: dict[str, Any] = {}
    try:
        limit = 4 * side * side * 4 / 2**20 + 100
        t = time_proc(poolcli_exe() + ["run", str(img), "-o", str(out / "o"), "-q"], 1, warmup=0, timev=True)
        rec["run_8192"] = {**t, "limit_mib": limit}
        rows = [[f"poolcli run {side}x{side} gray PNG (default stack)", f"{t['median']:.1f}",
                 f"{t['max_rss_mib']:.0f}", f"{limit:.0f}"]]
        # Batch: peak memory should not grow with the number of images.
        for n in (10, 60):
            d = image_dir(n, 512)
            shutil.rmtree(out / "o", ignore_errors=True)
            t = time_proc(poolcli_exe() + ["run", str(d), "--stack", E2E_STACK, "-o", str(out / "o"), "-q"], 1,
                          warmup=0, timev=True)
            rec[f"batch_{n}"] = t
            rows.append([f"poolcli run folder of {n} 512x512 PNGs", f"{t['median']:.1f}", f"{t['max_rss_mib']:.0f}", ""])
        emit()
        emit(table("Memory: max RSS from /usr/bin/time -v (MiB); target for 8192^2: 4 x float32 image + 100 MiB",
                   ["run", "s", "maxRSS", "target"], rows))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    results["memory"] = rec


# --------------------------------------------------------------------------- environment and targets
def environment() -> dict:
    env: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "<unset>"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "<unset>"),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            m = re.search(r"model name\s*:\s*(.*)", fh.read())
            env["cpu"] = m[1] if m else env["cpu"]
    except OSError:
        pass
    try:  # which poolcli was measured
        root = Path(__import__("poolcli").__file__).resolve().parent.parent
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "poolcli"],
                               capture_output=True, text=True)
        env["poolcli_commit"] = (rev.stdout.strip() + (" (poolcli/ modified)" if dirty.stdout.strip() else "")
                                 if rev.returncode == 0 else f"{root} (not a git checkout)")
    except OSError:
        env["poolcli_commit"] = "unknown"
    import scipy

    env["scipy"] = scipy.__version__
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_threads"] = TORCH_THREADS
    if cv2 is not None:
        env["opencv"] = cv2.__version__
        env["opencv_threads"] = cv2.getNumThreads()
    if skimage_measure is not None:
        import skimage

        env["skimage"] = skimage.__version__
    try:
        from threadpoolctl import threadpool_info

        env["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "architecture", "filepath")}
            for p in threadpool_info()
        ]
    except ImportError:
        env["threadpools"] = "threadpoolctl not installed"
    return env


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, PASS/FAIL/n/a) for issue 5's targets that this run measured."""
    out = []
    pf = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    s = results.get("pool_summary")
    if s:
        out.append(("pooling geomean >= 6x PyTorch (default threads)", f"{s['geomean_vs_torch']:.2f}x",
                    pf(s["geomean_vs_torch"] >= 6)))
        w = s["worst_vs_torch"][0]
        out.append(("no pooling config slower than 1.5x PyTorch",
                    f"worst {'x'.join(map(str, w['shape']))} {w['mode']} {w['config']}: {1 / w['speedup']:.2f}x torch's time",
                    pf(1 / w["speedup"] <= 1.5)))
        out.append(("pooling geomean >= OpenCV's (where OpenCV has the op)", f"{s['geomean_vs_opencv']:.2f}x",
                    pf(s["geomean_vs_opencv"] >= 1)))
        out.append(("2x2/s2 max on 1x4096x4096 within 1.5x memcpy", f"{s['k2s2_max_4096_over_memcpy']:.2f}x memcpy",
                    pf(s["k2s2_max_4096_over_memcpy"] <= 1.5)))
    for rec in results.get("filter", []):
        if "3x3" in rec["filter"] and "cv2.filter2D" in rec["poolcli_over_peer"]:
            r = rec["poolcli_over_peer"]["cv2.filter2D"]
            out.append((f"3x3 filter within 1.5x cv2.filter2D: {rec['filter']}", fmt_ratio(r) + " filter2D's time",
                        pf(r <= 1.5) if math.isfinite(r) else "n/a"))
    if "filter" in results:
        try:  # where poolcli decides separability today (private helper; may move)
            from poolcli.filters import _factor

            sep = _factor(np.asarray(K.SOBEL_X)) is not None and _factor(np.asarray(K.outer(K.gaussian(1.0)))) is not None
            out.append(("separable kernels detected and used", "sobel, gaussian factored" if sep else "no", pf(sep)))
        except ImportError:
            pass
    e = results.get("e2e")
    if e and e.get("torch", {}).get("status") == "ok":
        key = "poolcli --workers 2" if e.get("workers_supported") else "poolcli"
        r = e[key]["images_per_s"] / e["torch"]["images_per_s"]
        note = "" if e.get("workers_supported") else " (no --workers option: single process)"
        out.append(("end to end >= 3x PyTorch script img/s with --workers 2", f"{r:.2f}x{note}", pf(r >= 3)))
        full = e.get("poolcli --workers 2, default outputs")
        if full and full.get("status") == "ok":
            rf = full["images_per_s"] / e["torch"]["images_per_s"]
            out.append(("issue 13: end to end with default outputs (unpool, montage) >= 3x PyTorch, --workers 2",
                        f"{rf:.2f}x", pf(rf >= 3)))
        old = next((v for k, v in e.items() if k.startswith("baseline") and k.endswith("--workers 2")), None)
        if old and old.get("status") == "ok":  # POOLCLI_BASELINE: the checkout before, timed in this run
            rb = e["poolcli --workers 2"]["images_per_s"] / old["images_per_s"]
            out.append(("issue 13: --no-montage --no-unpool >= 1.5x the baseline checkout's rate, --workers 2",
                        f"{rb:.2f}x", pf(rb >= 1.5)))
    st = results.get("startup")
    if st:
        h, r = st["poolcli --help"]["median"], st["poolcli run 256x256.png"]["median"]
        out.append(("`poolcli --help` < 0.15 s", f"{h:.3f} s", pf(h < 0.15)))
        out.append(("`poolcli run` 256x256 < 0.5 s", f"{r:.3f} s", pf(r < 0.5)))
    m = results.get("memory")
    if m:
        r = m["run_8192"]
        out.append(("8192^2 run peak < 4x float32 image + 100 MiB",
                    f"{r['max_rss_mib']:.0f} MiB vs {r['limit_mib']:.0f} MiB", pf(r["max_rss_mib"] < r["limit_mib"])))
        a, b = m["batch_10"]["max_rss_mib"], m["batch_60"]["max_rss_mib"]
        out.append(("batch peak memory flat in the number of images (10 vs 60 images, within 10%)",
                    f"{a:.0f} vs {b:.0f} MiB", pf(b <= 1.1 * a)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a 40-image end-to-end folder")
    ap.add_argument("--only", choices=["pool", "filter", "e2e", "startup", "memory"], action="append",
                    help="run only this section (repeatable)")
    ap.add_argument("--json", type=Path, help="write every number to this JSON file")
    args = ap.parse_args(argv)
    sections = args.only or ["pool", "filter", "e2e", "startup", "memory"]
    t0 = time.perf_counter()
    env = environment()
    emit(f"poolcli benchmarks  {env['date']}  nproc={env['nproc']} (affinity {env['affinity']})  {env['cpu']}")
    emit("  " + "  ".join(f"{k}={env[k]}" for k in
                          ("poolcli_commit", "python", "numpy", "scipy", "torch", "torch_threads", "opencv", "opencv_threads", "skimage")
                          if k in env))
    emit(f"  OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}  OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']}")
    if isinstance(env["threadpools"], list):
        for p in env["threadpools"]:
            emit(f"  threadpool: {p['internal_api']} {p['version']} arch={p['architecture']} "
                 f"threads={p['num_threads']} ({Path(p['filepath']).name})")
    else:
        emit(f"  threadpools: {env['threadpools']}")
    if env["OPENBLAS_CORETYPE"] != "<unset>" or env["OPENBLAS_L2_SIZE"] != "<unset>":
        NOTES.append("OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set: run with `env -u OPENBLAS_CORETYPE "
                     "-u OPENBLAS_L2_SIZE` (see README)")
    for n in NOTES:
        emit(f"  note: {n}")
    results: dict[str, Any] = {"env": env, "quick": args.quick}
    compile_sources(os.environ.get("POOLCLI_BASELINE"))  # timed as installed: with bytecode (see compile_sources)
    for sec in sections:
        emit(f"\n== {sec} ==")
        ts = time.perf_counter()
        {"pool": bench_pool, "filter": bench_filter, "e2e": bench_e2e, "startup": bench_startup,
         "memory": bench_memory}[sec](args.quick, results)
        emit(f"({sec}: {time.perf_counter() - ts:.0f} s)")
    tg = targets(results)
    results["targets"] = [{"target": a, "measured": b, "result": c} for a, b, c in tg]
    results["notes"] = NOTES
    if tg:
        emit()
        emit(table("Issue 5 targets", ["target", "measured", "result"], [list(t) for t in tg]))
    if NOTES:
        emit()
        for n in dict.fromkeys(NOTES):
            emit(f"note: {n}")
    emit(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
