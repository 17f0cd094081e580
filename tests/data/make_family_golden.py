"""Generate tests/data/golden_family.npz: PyTorch golden outputs for poolcli.pooling_family.

Run with the oracle interpreter (torch is never a dependency of poolcli or its tests):

    ~/.venvs/oracle/bin/python tests/data/make_family_golden.py

Deterministic: inputs, samples, weights and parameters come from
``numpy.random.default_rng(SEED)``; torch is only called on them. Four ops:

* ``frac``: ``F.fractional_max_pool2d(x, size, output_size | output_ratio,
  return_indices=True, _random_samples=s)``; arrays ``_x``, ``_s``, ``_y``, ``_idx``;
* ``maxidx``: ``F.max_pool2d(x, ..., return_indices=True)``; ``_x``, ``_y``, ``_idx``;
* ``unpool``: ``F.max_unpool2d(pooled, idx, size, stride, padding, output_size)``;
  ``_pooled``, ``_idx``, ``_y`` (indices from a max pool, or random with duplicates);
* ``learned``: ``F.conv2d(F.pad(x, ...), w[:, None] (or shared, expanded), stride,
  groups=C)``; ``_x``, ``_w``, ``_y``.

``cases`` is a JSON list of ``{id, op, kwargs, dtype, shape, kind, torch}`` with
poolcli keywords in ``kwargs``; ``meta`` holds the versions, the seed and the command.
torch is imported inside ``main`` only, so pytest's doctest collection can import
this file without torch.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

SEED = 20240921
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_family.npz")


def out_len(n, k, s, d, p, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1 + ((s - 1) if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


class Builder:
    def __init__(self, torch):
        self.torch = torch
        self.F = torch.nn.functional
        self.rng = np.random.default_rng(SEED)
        self.arrays: dict[str, np.ndarray] = {}
        self.cases: list[dict] = []

    def make_x(self, shape, dtype, kind):
        rng = self.rng
        if kind == "normal":
            x = rng.standard_normal(shape)
        elif kind == "ties":
            x = rng.integers(0, 3, size=shape).astype(np.float64)
        elif kind == "special":  # NaN, -inf, +inf sprinkled in
            x = rng.standard_normal(shape)
            m = rng.random(shape)
            x[m < 0.08] = np.nan
            x[(m >= 0.08) & (m < 0.2)] = -np.inf
            x[(m >= 0.2) & (m < 0.23)] = np.inf
        elif kind == "zeros":  # signed zeros and ties: the sign of the first maximum
            x = rng.choice([-0.0, 0.0, -1.0], size=shape)
        elif kind == "neginf":  # mostly -inf: windows whose max is -inf
            x = np.where(rng.random(shape) < 0.85, -np.inf, rng.standard_normal(shape))
        else:
            raise ValueError(kind)
        return np.ascontiguousarray(x.astype(dtype))

    def rand_lead(self):
        r = self.rng.integers(0, 3)
        if r == 0:
            return (int(self.rng.integers(1, 4)),)
        return (int(self.rng.integers(1, 3)), int(self.rng.integers(1, 4)))

    def record(self, op, kwargs, arrays, call, kind):
        i = len(self.cases)
        cid = f"{op[:2]}{i:03d}"
        for k, v in arrays.items():
            self.arrays[f"{cid}_{k}"] = np.ascontiguousarray(v)
        x = arrays.get("x", arrays.get("pooled"))
        self.cases.append(dict(id=cid, op=op, kwargs=kwargs, dtype=str(x.dtype), shape=list(x.shape),
                               kind=kind, torch=call))

    # ------------------------------------------------------------------ fractional
    def frac(self, n):
        rng, torch, F = self.rng, self.torch, self.F
        dtype = [np.float32, np.float64][n % 2]
        kind = ["normal", "ties", "special", "normal"][n % 4]
        while True:
            H, W = int(rng.integers(2, 21)), int(rng.integers(2, 21))
            kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            if n % 5 == 0:
                kw = kh
            if kh > H or kw > W:
                continue
            if n % 3 == 2:  # output_ratio (PyTorch: n_out = int(n_in * ratio))
                ratio = [round(float(rng.uniform(0.3, 0.95)), 3), round(float(rng.uniform(0.3, 0.95)), 3)]
                if n % 6 == 2:
                    ratio = [ratio[0], ratio[0]]
                oh, ow = int(H * ratio[0]), int(W * ratio[1])
                osz = None
            else:
                oh, ow = int(rng.integers(1, H - kh + 2)), int(rng.integers(1, W - kw + 2))
                osz = [oh, ow]
                ratio = None
            if 1 <= oh and 1 <= ow and oh + kh - 1 <= H and ow + kw - 1 <= W:
                break
        lead = self.rand_lead()
        x = self.make_x(lead + (H, W), dtype, kind)
        nb = 1 if len(lead) == 1 else lead[0]
        extra = 1 if n % 7 == 3 else 0  # PyTorch ignores extra sample rows
        s = rng.random((nb + extra, lead[-1], 2))
        if n % 8 == 5:
            s[..., 0] = 0.0
            s[..., 1] = np.nextafter(1.0, 0.0)
        s = s.astype(dtype)
        with torch.no_grad():
            y, idx = F.fractional_max_pool2d(torch.from_numpy(x.copy()), [kh, kw],
                                             output_size=osz, output_ratio=ratio,
                                             return_indices=True,
                                             _random_samples=torch.from_numpy(s.copy()))
        kwargs = dict(size=[kh, kw])
        if osz is not None:
            kwargs["output_size"] = osz
        else:
            kwargs["output_ratio"] = ratio
        call = (f"F.fractional_max_pool2d(x, {[kh, kw]}, output_size={osz}, output_ratio={ratio}, "
                f"return_indices=True, _random_samples=s)")
        self.record("frac", kwargs, dict(x=x, s=s, y=y.numpy(), idx=idx.numpy()), call, kind)

    # ------------------------------------------------------------------ max + indices
    def maxidx(self, n):
        rng, torch, F = self.rng, self.torch, self.F
        dtype = [np.float32, np.float64][n % 2]
        kind = ["normal", "ties", "special", "zeros", "neginf", "ties"][n % 6]
        while True:
            H, W = int(rng.integers(1, 16)), int(rng.integers(1, 16))
            kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            if n % 10 == 0:  # stride=None: PyTorch's default, the window size
                sh, sw = kh, kw
            ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
            dh = dw = 1
            if n % 3 == 1:
                dh, dw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            cm = bool(n % 4 >= 2)
            if out_len(H, kh, sh, dh, ph, cm) >= 1 and out_len(W, kw, sw, dw, pw, cm) >= 1:
                break
        stride = None if n % 10 == 0 else [sh, sw]
        x = self.make_x(self.rand_lead() + (H, W), dtype, kind)
        with torch.no_grad():
            y, idx = F.max_pool2d(torch.from_numpy(x.copy()), [kh, kw], stride, [ph, pw], [dh, dw], cm,
                                  return_indices=True)
        kwargs = dict(size=[kh, kw], stride=stride, padding=[ph, pw], dilation=[dh, dw], ceil_mode=cm)
        call = (f"F.max_pool2d(x, {[kh, kw]}, {stride}, {[ph, pw]}, {[dh, dw]}, ceil_mode={cm}, "
                "return_indices=True)")
        self.record("maxidx", kwargs, dict(x=x, y=y.numpy(), idx=idx.numpy()), call, kind)

    # ------------------------------------------------------------------ unpool
    def unpool(self, n, duplicates=False):
        rng, torch, F = self.rng, self.torch, self.F
        dtype = [np.float32, np.float64][n % 2]
        while True:
            H, W = int(rng.integers(2, 14)), int(rng.integers(2, 14))
            kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            if n % 9 == 0:  # stride=None
                sh, sw = kh, kw
            ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
            cm = bool(n % 5 == 4)
            oh, ow = out_len(H, kh, sh, 1, ph, cm), out_len(W, kw, sw, 1, pw, cm)
            dh_, dw_ = (oh - 1) * sh + kh - 2 * ph, (ow - 1) * sw + kw - 2 * pw
            if oh >= 1 and ow >= 1 and dh_ >= 1 and dw_ >= 1:
                break
        stride = None if n % 9 == 0 else [sh, sw]
        lead = self.rand_lead()
        osz = None
        if n % 3 == 1:  # an explicit output size within PyTorch's range (often the input's)
            osz = [H, W] if (dh_ - sh < H < dh_ + sh and dw_ - sw < W < dw_ + sw) else [dh_, dw_]
            if n % 6 == 1:
                osz = list(lead[:1]) + list(lead[1:]) + osz if len(lead) == 2 else [1, lead[0]] + osz
        size_out = osz[-2:] if osz is not None else [dh_, dw_]
        if duplicates:  # random indices with repeats and distinct values: the last write wins
            pooled = self.make_x(lead + (oh, ow), dtype, "normal")
            hi = max(1, min(size_out[0] * size_out[1], 5))
            idx = rng.integers(0, hi, size=pooled.shape).astype(np.int64)
            kind = "duplicates"
        else:
            x = self.make_x(lead + (H, W), dtype, ["normal", "ties"][n % 2])
            with torch.no_grad():
                p_t, i_t = F.max_pool2d(torch.from_numpy(x), [kh, kw], stride, [ph, pw], 1, cm,
                                        return_indices=True)
            pooled, idx = p_t.numpy(), i_t.numpy()
            kind = "from_max_pool"
            if (idx >= size_out[0] * size_out[1]).any():
                return self.unpool(n, duplicates)  # ceil-mode windows past the unpooled size
        with torch.no_grad():
            y = F.max_unpool2d(torch.from_numpy(pooled.copy()), torch.from_numpy(idx.copy()), [kh, kw],
                               stride, [ph, pw], output_size=osz)
        kwargs = dict(size=[kh, kw], stride=stride, padding=[ph, pw], output_size=osz)
        call = f"F.max_unpool2d(pooled, idx, {[kh, kw]}, {stride}, {[ph, pw]}, output_size={osz})"
        self.record("unpool", kwargs, dict(pooled=pooled, idx=idx, y=y.numpy()), call, kind)

    # ------------------------------------------------------------------ learned (depthwise conv)
    def learned(self, n):
        rng, torch, F = self.rng, self.torch, self.F
        dtype = [np.float32, np.float64][n % 2]
        while True:
            H, W = int(rng.integers(3, 16)), int(rng.integers(3, 16))
            kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            if n % 3 == 0:
                kw = kh
            sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            if n % 5 == 0:  # stride=None
                sh, sw = kh, kw
            if n % 4 == 3:  # per side (top, bottom, left, right), each < k
                pad = [int(rng.integers(0, kh)), int(rng.integers(0, kh)),
                       int(rng.integers(0, kw)), int(rng.integers(0, kw))]
            else:
                ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
                pad = [ph, ph, pw, pw]
            if (H + pad[0] + pad[1] - kh) // sh + 1 >= 1 and (W + pad[2] + pad[3] - kw) // sw + 1 >= 1:
                break
        stride = None if n % 5 == 0 else [sh, sw]
        lead = self.rand_lead()
        C = lead[-1]
        x = self.make_x(lead + (H, W), dtype, "normal")
        shared = n % 2 == 1
        w = rng.standard_normal((kh, kw) if shared else (C, kh, kw)).astype(dtype)
        wt = np.broadcast_to(w, (C, kh, kw))[:, None].copy()
        xt = torch.from_numpy(x.copy())
        if xt.ndim == 3:
            xt = xt[None]
        with torch.no_grad():
            xt = F.pad(xt, (pad[2], pad[3], pad[0], pad[1]))
            y = F.conv2d(xt, torch.from_numpy(wt), stride=stride or [kh, kw], groups=C)
        y = y.numpy().reshape(lead + y.shape[-2:])
        padding = pad if n % 4 == 3 else [pad[0], pad[2]]
        kwargs = dict(stride=stride, padding=padding)
        call = (f"F.conv2d(F.pad(x, {(pad[2], pad[3], pad[0], pad[1])}), w{'(shared)' if shared else ''}"
                f"[:, None], stride={stride or [kh, kw]}, groups={C})")
        self.record("learned", kwargs, dict(x=x, w=w, y=y), call, "shared" if shared else "per_channel")


def main():
    import torch

    torch.manual_seed(SEED)
    # max_unpool2d is flagged nondeterministic (duplicate indices on CUDA); on one
    # CPU thread it writes serially, so warn only and pin the threads.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(1)
    import warnings

    warnings.filterwarnings("ignore", message=".*deterministic.*")
    B = Builder(torch)
    for n in range(40):
        B.frac(n)
    for n in range(64):
        B.maxidx(n)
    for n in range(26):
        B.unpool(n)
    for n in range(6):
        B.unpool(n, duplicates=True)
    for n in range(22):
        B.learned(n)
    counts: dict[str, int] = {}
    for c in B.cases:
        counts[c["op"]] = counts.get(c["op"], 0) + 1
    meta = dict(torch=torch.__version__, numpy=np.__version__, seed=SEED, counts=counts,
                command="~/.venvs/oracle/bin/python tests/data/make_family_golden.py",
                python=sys.version.split()[0])
    np.savez_compressed(OUT, cases=np.array(json.dumps(B.cases)), meta=np.array(json.dumps(meta)), **B.arrays)
    print(f"wrote {OUT}: {counts}, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
