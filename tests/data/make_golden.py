"""Generate tests/data/golden_pool2d.npz: PyTorch golden outputs for poolcli's pooling.

Run with the oracle interpreter (torch is never a dependency of poolcli or its tests):

    ~/.venvs/oracle/bin/python tests/data/make_golden.py

Deterministic: inputs come from ``numpy.random.default_rng(SEED)``; torch is only
called on them (and seeded anyway). The npz holds, for case ``i``:

* ``c{i:04d}_x`` the input, ``c{i:04d}_y`` torch's output (absent for error cases);
* ``cases``: a JSON list of dicts ``{id, op, mode, kwargs, dtype, error, torch}``
  where ``kwargs`` are poolcli keywords (``pool2d``: size, stride, padding,
  dilation, ceil_mode, count_include_pad, divisor_override, p; ``adaptive``:
  output_size), ``error`` is torch's message when torch raised (else null) and
  ``torch`` the call that produced the output;
* ``meta``: JSON with the torch and numpy versions, the seed and the command.

torch is imported inside ``main`` only, so pytest's ``--doctest-modules``
collection can import this file without torch.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

SEED = 20240601
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_pool2d.npz")


def out_len(n, k, s, d, p, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1 + ((s - 1) if ceil_mode else 0)
    out = num // s + 1
    dropped = False
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
        dropped = True
    return out, dropped


class Builder:
    def __init__(self, torch):
        self.torch = torch
        self.F = torch.nn.functional
        self.rng = np.random.default_rng(SEED)
        self.arrays: dict[str, np.ndarray] = {}
        self.cases: list[dict] = []

    # ------------------------------------------------------------------ inputs
    def make_x(self, shape, dtype, kind):
        rng = self.rng
        if kind == "normal":
            x = rng.standard_normal(shape)
        elif kind == "ties":
            x = rng.integers(0, 4, size=shape).astype(np.float64)
        elif kind == "nonneg":
            x = np.abs(rng.standard_normal(shape)) + rng.uniform(0, 0.1, size=shape)
        elif kind == "special":  # NaN and -inf sprinkled in (max / min / adaptive max)
            x = rng.standard_normal(shape)
            m = rng.random(shape)
            x[m < 0.06] = np.nan
            x[(m >= 0.06) & (m < 0.14)] = -np.inf
            x[(m >= 0.14) & (m < 0.18)] = np.inf
        else:
            raise ValueError(kind)
        return np.ascontiguousarray(x.astype(dtype))

    def rand_shape(self, H, W):
        r = self.rng.integers(0, 3)
        if r == 0:
            return (int(self.rng.integers(1, 4)), H, W)  # (C, H, W)
        return (int(self.rng.integers(1, 3)), int(self.rng.integers(1, 3)), H, W)  # (N, C, H, W)

    # ------------------------------------------------------------------ record
    def add(self, op, mode, kwargs, x, fn, call, expect_error=False):
        torch = self.torch
        i = len(self.cases)
        t = torch.from_numpy(x.copy())
        error = None
        y = None
        try:
            with torch.no_grad():
                y = fn(t)
        except Exception as e:  # noqa: BLE001 - we record whatever torch says
            error = f"{type(e).__name__}: {e}".strip().splitlines()[0][:300]
        if expect_error != (error is not None):
            return None  # not the kind of case we wanted; the caller retries
        self.arrays[f"c{i:04d}_x"] = x
        if error is None:
            y = y.numpy()
            assert y.dtype == x.dtype, (call, y.dtype, x.dtype)
            self.arrays[f"c{i:04d}_y"] = np.ascontiguousarray(y)
        self.cases.append(
            dict(id=f"c{i:04d}", op=op, mode=mode, kwargs=kwargs, dtype=str(x.dtype),
                 shape=list(x.shape), error=error, torch=call)
        )
        return i

    # -------------------------------------------------------------- pool2d ops
    def pool(self, mode, H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode, cip=True, div=None,
             p=None, dtype=np.float64, kind="normal", stride_none=False, expect_error=False,
             shape=None):
        F = self.F
        shape = shape or self.rand_shape(H, W)
        x = self.make_x(shape, dtype, kind)
        k = [kh, kw]
        s = None if stride_none else [sh, sw]
        pad = [ph, pw]
        dil = [dh, dw]
        kwargs = dict(size=k, stride=s, ceil_mode=ceil_mode)
        if mode in ("max", "min"):
            kwargs.update(padding=pad, dilation=dil)
            sign = "" if mode == "max" else "-"
            call = (f"{sign}F.max_pool2d({sign}x, kernel_size={k}, stride={s}, padding={pad}, "
                    f"dilation={dil}, ceil_mode={ceil_mode})")
            if mode == "max":
                fn = lambda t: F.max_pool2d(t, k, s, pad, dil, ceil_mode)  # noqa: E731
            else:
                fn = lambda t: -F.max_pool2d(-t, k, s, pad, dil, ceil_mode)  # noqa: E731
        elif mode == "avg":
            kwargs.update(padding=pad, count_include_pad=cip, divisor_override=div)
            call = (f"F.avg_pool2d(x, kernel_size={k}, stride={s}, padding={pad}, "
                    f"ceil_mode={ceil_mode}, count_include_pad={cip}, divisor_override={div})")
            fn = lambda t: F.avg_pool2d(t, k, s, pad, ceil_mode, cip, div)  # noqa: E731
        elif mode == "lp":
            kwargs.update(p=p)
            call = f"F.lp_pool2d(x, norm_type={p}, kernel_size={k}, stride={s}, ceil_mode={ceil_mode})"
            fn = lambda t: F.lp_pool2d(t, p, k, s, ceil_mode)  # noqa: E731
        else:
            raise ValueError(mode)
        return self.add("pool2d", mode, kwargs, x, fn, call, expect_error)

    def adaptive(self, mode, H, W, output_size, dtype, kind):
        F = self.F
        x = self.make_x(self.rand_shape(H, W), dtype, kind)
        fname = "adaptive_max_pool2d" if mode == "max" else "adaptive_avg_pool2d"
        f = getattr(F, fname)
        osz = list(output_size) if isinstance(output_size, (tuple, list)) else output_size
        call = f"F.{fname}(x, output_size={osz})"
        fn = lambda t: f(t, tuple(osz) if isinstance(osz, list) else osz)  # noqa: E731
        return self.add("adaptive", mode, dict(output_size=osz), x, fn, call)


def random_pool_params(rng, mode, allow_dilation=True):
    """Random valid PyTorch parameters (pad <= k//2, output >= 1)."""
    while True:
        H, W = int(rng.integers(1, 24)), int(rng.integers(1, 24))
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        if rng.random() < 0.3:
            kw = kh
        sh, sw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        if rng.random() < 0.3:
            ph = pw = 0
        dh = dw = 1
        if allow_dilation and rng.random() < 0.4:
            dh, dw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        ceil_mode = bool(rng.random() < 0.5)
        oh, _ = out_len(H, kh, sh, dh, ph, ceil_mode)
        ow, _ = out_len(W, kw, sw, dw, pw, ceil_mode)
        if oh >= 1 and ow >= 1:
            return H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode


def main():
    import torch

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    B = Builder(torch)
    rng = B.rng
    dtypes = [np.float32, np.float64]
    counts: dict[str, int] = {}

    def bump(key, i):
        if i is not None:
            counts[key] = counts.get(key, 0) + 1
        return i

    # ---------------------------------------------------------------- max_pool2d
    for n in range(110):
        H, W, kh, kw, sh, sw, ph, pw, dh, dw, cm = random_pool_params(rng, "max")
        kind = ["normal", "ties", "special"][n % 3]
        bump("max", B.pool("max", H, W, kh, kw, sh, sw, ph, pw, dh, dw, cm, dtype=dtypes[n % 2],
                           kind=kind, stride_none=(n % 11 == 0)))
    # ---------------------------------------------------------------- min (-max(-x))
    for n in range(40):
        H, W, kh, kw, sh, sw, ph, pw, dh, dw, cm = random_pool_params(rng, "min")
        kind = ["normal", "ties", "special"][n % 3]
        bump("min", B.pool("min", H, W, kh, kw, sh, sw, ph, pw, dh, dw, cm, dtype=dtypes[n % 2],
                           kind=kind, stride_none=(n % 9 == 0)))
    # ---------------------------------------------------------------- avg_pool2d
    for n in range(130):
        H, W, kh, kw, sh, sw, ph, pw, _, _, cm = random_pool_params(rng, "avg", allow_dilation=False)
        cip = bool(n % 2)
        div = None if n % 4 else int(rng.integers(1, 12))
        kind = ["normal", "ties"][n % 2 if n % 5 else 0]
        bump("avg", B.pool("avg", H, W, kh, kw, sh, sw, ph, pw, 1, 1, cm, cip=cip, div=div,
                           dtype=dtypes[(n // 2) % 2], kind=kind, stride_none=(n % 13 == 0)))
    # ---------------------------------------------------------------- lp_pool2d
    for p in (1, 2, 3, 1.5):
        for n in range(16):
            H, W, kh, kw, sh, sw, _, _, _, _, cm = random_pool_params(rng, "lp", allow_dilation=False)
            if p in (1, 2) and n % 2 == 0:
                kind = "normal"  # negatives: fine for integer p (p=1 may give negative averages)
            else:
                kind = "nonneg" if n % 3 else "ties"
            bump(f"lp{p}", B.pool("lp", H, W, kh, kw, sh, sw, 0, 0, 1, 1, cm, p=p,
                                  dtype=dtypes[n % 2], kind=kind, stride_none=(n % 5 == 0)))
    # ------------------------------------- ceil_mode cases where the drop rule fires
    drop_cfgs = []
    for H in range(1, 16):
        for k in range(1, 5):
            for s in range(1, 6):
                for p in range(0, k // 2 + 1):
                    for d in (1, 2):
                        o, dropped = out_len(H, k, s, d, p, True)
                        if dropped and o >= 1:
                            drop_cfgs.append((H, k, s, p, d))
    order = rng.permutation(len(drop_cfgs))
    n_drop = 0
    for n, idx in enumerate(order[:48]):
        H, k, s, p, d = drop_cfgs[idx]
        W = int(rng.integers(1, 12))
        kw = int(rng.integers(1, 4))
        if out_len(W, kw, 1, 1, 0, True)[0] < 1:
            continue
        mode = ["max", "avg", "min", "lp", "avg", "max"][n % 6]
        dt = dtypes[n % 2]
        if mode == "lp":
            if p != 0 or d != 1:
                mode = "avg"
        if mode == "avg" and d != 1:
            mode = "max"
        i = B.pool(mode, H, W, k, kw, s, 1, p if mode != "lp" else 0, 0, d, 1, True,
                   cip=bool(n % 2), div=None, p=2 if mode == "lp" else None, dtype=dt,
                   kind="normal" if n % 3 else "ties")
        n_drop += bump(f"ceil_drop_{mode}", i) is not None
    # also transposed (the drop firing along W)
    for n, idx in enumerate(order[48:60]):
        H, k, s, p, d = drop_cfgs[idx]
        mode = ["max", "avg"][n % 2]
        if mode == "avg" and d != 1:
            mode = "max"
        i = B.pool(mode, 5, H, 2, k, 2, s, 1, p, 1, d, True, cip=bool(n % 3), dtype=dtypes[n % 2])
        n_drop += bump(f"ceil_drop_{mode}", i) is not None
    # lp with pad 0 needs stride > kernel for the rule to fire
    for n in range(6):
        while True:
            H, k, s = int(rng.integers(1, 16)), int(rng.integers(1, 4)), int(rng.integers(2, 6))
            o, dropped = out_len(H, k, s, 1, 0, True)
            if dropped and o >= 1:
                break
        i = B.pool("lp", H, 6, k, 2, s, 2, 0, 0, 1, 1, True, p=[1, 2, 3][n % 3],
                   dtype=dtypes[n % 2], kind="nonneg")
        n_drop += bump("ceil_drop_lp", i) is not None

    # ---------------------------------------------------------------- headline facts
    for H, W in ((2, 2), (4, 6), (8, 8), (22, 14)):
        for mode in ("max", "avg"):
            bump(mode, B.pool(mode, H, W, 2, 2, 2, 2, 0, 0, 1, 1, False, dtype=np.float32))

    # ---------------------------------------------------------------- adaptive
    specials = [(7, 7, 1), (7, 5, (3, 2)), (5, 5, (7, 8)), (10, 6, (None, 4)), (9, 13, (4, None)),
                (1, 1, (3, 3)), (23, 17, (5, 7)), (6, 6, (6, 6)), (12, 8, (5, 3)), (3, 11, (2, 11)),
                (4, 4, (None, None)), (2, 9, (5, 4))]
    for mode in ("max", "avg"):
        for n in range(40):
            if n < len(specials):
                H, W, osz = specials[n]
            else:
                H, W = int(rng.integers(1, 24)), int(rng.integers(1, 24))
                r = rng.random()
                if r < 0.15:
                    osz = int(rng.integers(1, 8))
                else:
                    oh = int(rng.integers(1, H + 4))
                    ow = int(rng.integers(1, W + 4))
                    osz = (None if rng.random() < 0.1 else oh, None if rng.random() < 0.1 else ow)
            kind = ["normal", "ties", "special"][n % 3] if mode == "max" else ["normal", "ties"][n % 2]
            bump(f"adaptive_{mode}", B.adaptive(mode, H, W, osz, dtypes[n % 2], kind))

    # ---------------------------------------------------------------- error cases
    E = dict(expect_error=True)
    err_specs = [
        # (mode, H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil, cip, div, p)
        ("max", 8, 8, 3, 3, 1, 1, 2, 2, 1, 1, False, True, None, None),   # pad > k//2
        ("max", 8, 8, 3, 3, 1, 1, 2, 0, 2, 2, False, True, None, None),   # pad > k//2 despite dilation
        ("max", 8, 8, 2, 4, 1, 1, 0, 3, 1, 1, False, True, None, None),
        ("min", 8, 8, 1, 1, 1, 1, 1, 0, 1, 1, False, True, None, None),
        ("avg", 8, 8, 3, 3, 1, 1, 2, 2, 1, 1, False, True, None, None),
        ("avg", 8, 8, 4, 2, 2, 2, 0, 2, 1, 1, True, False, None, None),
        ("avg", 8, 8, 1, 1, 1, 1, 1, 1, 1, 1, False, True, None, None),
        ("max", 2, 5, 3, 3, 1, 1, 0, 0, 1, 1, False, True, None, None),   # output too small
        ("max", 5, 2, 2, 3, 1, 1, 0, 0, 1, 1, True, True, None, None),
        ("max", 5, 5, 3, 3, 1, 1, 0, 0, 3, 3, False, True, None, None),   # dilated kernel too big
        ("min", 1, 9, 2, 2, 1, 1, 0, 0, 1, 1, False, True, None, None),
        ("avg", 2, 2, 3, 3, 1, 1, 0, 0, 1, 1, False, True, None, None),
        ("avg", 3, 7, 5, 2, 2, 2, 0, 0, 1, 1, True, False, None, None),
        ("lp", 2, 6, 3, 3, 1, 1, 0, 0, 1, 1, False, True, None, 2),
        ("lp", 4, 1, 2, 2, 1, 1, 0, 0, 1, 1, True, True, None, 1),
        ("max", 6, 6, 0, 2, 1, 1, 0, 0, 1, 1, False, True, None, None),   # zero kernel
        ("avg", 6, 6, 2, 0, 1, 1, 0, 0, 1, 1, False, True, None, None),
        ("max", 6, 6, 2, 2, 0, 1, 0, 0, 1, 1, False, True, None, None),   # zero stride
        ("avg", 6, 6, 2, 2, 1, 0, 0, 0, 1, 1, False, True, None, None),
        ("min", 6, 6, 2, 2, 0, 0, 0, 0, 1, 1, False, True, None, None),
        ("max", 6, 6, 2, 2, 1, 1, 0, 0, 0, 1, False, True, None, None),   # zero dilation
        ("max", 6, 6, 2, 2, 1, 1, 0, 0, 1, 0, False, True, None, None),
        ("max", 6, 6, 3, 3, 1, 1, -1, 0, 1, 1, False, True, None, None),  # negative padding
        ("avg", 6, 6, 3, 3, 1, 1, 0, -1, 1, 1, False, True, None, None),
        ("avg", 6, 6, 2, 2, 1, 1, 0, 0, 1, 1, False, True, 0, None),      # divisor_override 0
        ("max", 6, 6, -1, 2, 1, 1, 0, 0, 1, 1, False, True, None, None),  # negative kernel
        ("avg", 6, 6, 2, 2, -2, 1, 0, 0, 1, 1, False, True, None, None),  # negative stride
        ("lp", 6, 6, 2, 2, 1, 1, 0, 0, 1, 1, False, True, None, 0),       # p = 0
        ("lp", 6, 6, 0, 2, 1, 1, 0, 0, 1, 1, False, True, None, 2),
        ("lp", 6, 6, 2, 2, 0, 2, 0, 0, 1, 1, False, True, None, 2),
    ]
    for spec in err_specs:
        mode, H, W, kh, kw, sh, sw, ph, pw, dh, dw, cm, cip, div, p = spec
        i = B.pool(mode, H, W, kh, kw, sh, sw, ph, pw, dh, dw, cm, cip=cip, div=div, p=p,
                   dtype=np.float32, shape=(1, 1, H, W), **E)
        if i is None:
            print("torch did not raise for", spec, file=sys.stderr)
        bump("error", i)

    meta = dict(torch=torch.__version__, numpy=np.__version__, seed=SEED,
                command="~/.venvs/oracle/bin/python tests/data/make_golden.py",
                n_cases=len(B.cases), counts=counts)
    np.savez_compressed(OUT, cases=np.array(json.dumps(B.cases)), meta=np.array(json.dumps(meta)),
                        **B.arrays)
    print(json.dumps(meta, indent=1))
    print(f"wrote {OUT}: {os.path.getsize(OUT) / 1e6:.2f} MB, {len(B.cases)} cases, "
          f"{n_drop} ceil-mode drop-rule cases")


if __name__ == "__main__":
    main()
