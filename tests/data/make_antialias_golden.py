"""Generate tests/data/golden_antialias.npz: PyTorch golden outputs for poolcli.antialias.

Run with the oracle interpreter (torch is never a dependency of poolcli or its tests):

    ~/.venvs/oracle/bin/python tests/data/make_antialias_golden.py

The layers are rebuilt here with torch ops exactly as the reference code builds them:

* adobe/antialiased-cnns ``antialiased_cnns/blurpool.py``: ``BlurPool(C, pad_type, filt_size=m,
  stride=s)`` = ``pad_sizes = [int((m-1)/2), int(ceil((m-1)/2))] * 2`` given to
  ``nn.ReflectionPad2d`` (``'reflect'``), the filter ``torch.Tensor(a[:, None] * a[None, :])``
  divided by its sum and repeated ``(C, 1, 1, 1)``, then ``F.conv2d(pad(x), filt, stride=s,
  groups=C)``; for ``m == 1`` the identity path ``x[:, :, ::s, ::s]``. MaxBlurPool is
  ``nn.MaxPool2d(kernel_size=k, stride=1)`` followed by that BlurPool. float64 cases convert the
  filter buffer to float64 (what ``model.double()`` does; the filter entries are dyadic, exact).
* The circular variants follow achaman2/truly_shift_invariant_cnns: ``circular_pad(pad_sizes)`` is
  ``F.pad(x, pad_sizes, mode='circular')`` with the same ``[floor, ceil, floor, ceil]`` split, and
  the circular max stage is ``circular_pad([0, k-1, 0, k-1])`` + ``nn.MaxPool2d(k, 1)`` (the
  reference's ``[0, 1, 0, 1]`` for k = 2).
* APS is ``ApsPool(C, pad_type='circular', filt_size=m, stride=2)`` of
  ``imagenet_exps/models_imagenet/aps_models/apspool.py`` (``aps_pad``, ``permute_polyphase``,
  ``aps_downsample_v2`` with the ``'l2'`` criterion, ``.cuda()`` dropped; square inputs, as the
  reference assumes). Its component order is (0,0), (1,0), (0,1), (1,1); the chosen index is stored
  as a phase ``(i, j)`` per sample. Inputs are random normals, so no two component norms tie.

Deterministic: inputs come from ``numpy.random.default_rng(SEED)``. The npz holds, for case ``i``:

* ``c{i:03d}_x`` the input (2-D, 3-D or 4-D; torch sees it as (N, C, H, W), 2-D/3-D as one
  sample), ``c{i:03d}_y`` torch's output in the input's layout, ``c{i:03d}_phase`` (APS cases) the
  (N, 2) phases;
* ``cases``: JSON list of ``{id, op, kwargs, dtype, shape, error, torch}`` where ``op`` is the
  ``poolcli.antialias`` function and ``kwargs`` its keywords; ``error`` is torch's message when
  torch raised (poolcli must raise ``ValueError`` there), else null;
* ``meta``: JSON with the torch and numpy versions, the seed and the command.

torch is imported inside ``main`` only, so pytest's ``--doctest-modules`` can import this file.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

SEED = 20240717
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_antialias.npz")
TAPS = {m: np.array([math.comb(m - 1, k) for k in range(m)], dtype=np.float64) for m in range(1, 8)}


def build_layers(torch):
    nn, F = torch.nn, torch.nn.functional

    def circular_pad(pad_sizes):
        return lambda t: F.pad(t, pad=list(pad_sizes), mode="circular")

    def blurpool(channels, pad_type, filt_size, stride, dtype):
        """antialiased-cnns' BlurPool (reflect) / truly_shift_invariant_cnns' (circular)."""
        pad_sizes = [int(1.0 * (filt_size - 1) / 2), int(np.ceil(1.0 * (filt_size - 1) / 2))] * 2
        a = TAPS[filt_size]
        filt = torch.Tensor(a[:, None] * a[None, :])
        filt = filt / torch.sum(filt)
        filt = filt[None, None, :, :].repeat((channels, 1, 1, 1)).to(dtype)
        pad = nn.ReflectionPad2d(pad_sizes) if pad_type == "reflect" else circular_pad(pad_sizes)
        sh, sw = stride

        def forward(t):
            if filt_size == 1:
                return t[:, :, ::sh, ::sw]
            return F.conv2d(pad(t), filt, stride=(sh, sw), groups=t.shape[1])

        return forward

    def max_blur_pool(channels, k, stride, filt_size, circular, dtype):
        kh, kw = k
        mp = nn.MaxPool2d(kernel_size=(kh, kw), stride=1)
        bp = blurpool(channels, "circular" if circular else "reflect", filt_size, stride, dtype)
        if circular:
            cp = circular_pad([0, kw - 1, 0, kh - 1])
            return lambda t: bp(mp(cp(t)))
        return lambda t: bp(mp(t))

    def aps_pad(t):
        n1, n2 = t.shape[2:4]
        if n1 % 2 != 0:
            t = F.pad(t, (0, 0, 0, 1), mode="circular")
        if n2 % 2 != 0:
            t = F.pad(t, (0, 1, 0, 0), mode="circular")
        return t

    def permute_polyphase(n):
        base_even = 2 * torch.arange(int(n / 2))[None, :]
        base_odd = 1 + 2 * torch.arange(int(n / 2))[None, :]
        even_inc = 2 * n * torch.arange(int(n / 2))[:, None]
        odd_inc = n + 2 * n * torch.arange(int(n / 2))[:, None]
        p0 = (base_even + even_inc).view(-1)
        p1 = (base_even + odd_inc).view(-1)
        p2 = (base_odd + even_inc).view(-1)
        p3 = (base_odd + odd_inc).view(-1)
        return torch.cat([p0, p1, p2, p3], dim=0)

    def aps_downsample_v2(t):
        b, c, n, _ = t.shape
        n_poly, nb2 = int(n**2 / 4), int(n / 2)
        idx = permute_polyphase(n).long()
        t = t.reshape(b, c, -1)
        t = torch.index_select(t, dim=2, index=idx).view(b, c, 4, n_poly).permute(0, 2, 1, 3)
        norms = torch.norm(t, dim=(2, 3), p=2)
        poly = torch.argmax(norms, dim=1)
        out = t[torch.arange(b), poly, :, :].view(b, c, nb2, nb2)
        return out, poly

    def aps_pool(channels, filt_size, dtype):
        pad_sizes = [int(1.0 * (filt_size - 1) / 2), int(np.ceil(1.0 * (filt_size - 1) / 2))] * 2
        pad = circular_pad(pad_sizes)
        if filt_size > 1:
            a = TAPS[filt_size]
            filt = torch.Tensor(a[:, None] * a[None, :])
            filt = (filt / torch.sum(filt))[None, None, :, :].repeat((channels, 1, 1, 1)).to(dtype)

        def forward(t):
            if filt_size > 1:
                t = F.conv2d(pad(t), filt, stride=1, groups=t.shape[1])
            return aps_downsample_v2(aps_pad(t))

        return forward

    def max_aps_pool(channels, k, filt_size, dtype):
        """The APS ResNet's max pool: circular_pad([0,k-1,0,k-1]), MaxPool2d(k, 1), ApsPool."""
        mp = nn.MaxPool2d(kernel_size=k, stride=1)
        cp = circular_pad([0, k - 1, 0, k - 1])
        ap = aps_pool(channels, filt_size, dtype)
        return lambda t: ap(mp(cp(t)))

    return dict(blurpool=blurpool, max_blur_pool=max_blur_pool, aps_pool=aps_pool, max_aps_pool=max_aps_pool)


#: the reference's component order (permute_polyphase) as (row, column) phases
REF_PHASES = np.array([(0, 0), (1, 0), (0, 1), (1, 1)], dtype=np.int64)


class Builder:
    def __init__(self, torch):
        self.torch = torch
        self.L = build_layers(torch)
        self.rng = np.random.default_rng(SEED)
        self.arrays: dict[str, np.ndarray] = {}
        self.cases: list[dict] = []

    def make_x(self, H, W, dtype, ndim=None):
        rng = self.rng
        ndim = ndim or int(rng.choice([2, 3, 4, 4]))
        if ndim == 2:
            shape = (H, W)
        elif ndim == 3:
            shape = (int(rng.integers(1, 4)), H, W)
        else:
            shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), H, W)
        return np.ascontiguousarray(rng.standard_normal(shape).astype(dtype))

    def add(self, op, kwargs, x, make_fn, call, aps=False):
        torch = self.torch
        i = len(self.cases)
        x4 = x.reshape((1,) * (4 - x.ndim) + x.shape)  # 2-D / 3-D input: one sample
        t = torch.from_numpy(x4.copy())
        dtype = t.dtype
        error, y, phase = None, None, None
        try:
            with torch.no_grad():
                res = make_fn(x4.shape[1], dtype)(t)
            if aps:
                res, poly = res
                phase = REF_PHASES[poly.numpy()]
            y = res.numpy()
        except Exception as e:  # noqa: BLE001 - we record whatever torch says
            error = f"{type(e).__name__}: {e}".strip().splitlines()[0][:300]
        self.arrays[f"c{i:03d}_x"] = x
        if error is None:
            assert y.dtype == x.dtype, (call, y.dtype, x.dtype)
            self.arrays[f"c{i:03d}_y"] = np.ascontiguousarray(y.reshape(x.shape[:-2] + y.shape[-2:]))
            if phase is not None:
                self.arrays[f"c{i:03d}_phase"] = phase
        self.cases.append(
            dict(id=f"c{i:03d}", op=op, kwargs=kwargs, dtype=str(x.dtype), shape=list(x.shape),
                 error=error, torch=call)
        )
        return i

    # ------------------------------------------------------------------ ops
    def blur(self, H, W, m, stride, circular, dtype, ndim=None):
        x = self.make_x(H, W, dtype, ndim)
        pad_type = "circular" if circular else "reflect"
        s = list(stride) if isinstance(stride, tuple) else [stride, stride]
        call = f"BlurPool(C, pad_type={pad_type!r}, filt_size={m}, stride={s})"
        fn = lambda c, dt: self.L["blurpool"](c, pad_type, m, tuple(s), dt)  # noqa: E731
        kw = dict(stride=s if isinstance(stride, tuple) else stride, blur_size=m, circular=circular)
        return self.add("blur2d", kw, x, fn, call)

    def maxblur(self, H, W, k, stride, m, circular, dtype, ndim=None):
        x = self.make_x(H, W, dtype, ndim)
        kk = list(k) if isinstance(k, tuple) else [k, k]
        s = list(stride) if isinstance(stride, tuple) else [stride, stride]
        pre = f"circular_pad([0, {kk[1] - 1}, 0, {kk[0] - 1}]), " if circular else ""
        pad_type = "circular" if circular else "reflect"
        call = f"{pre}nn.MaxPool2d({kk}, stride=1), BlurPool(C, pad_type={pad_type!r}, filt_size={m}, stride={s})"
        fn = lambda c, dt: self.L["max_blur_pool"](c, tuple(kk), tuple(s), m, circular, dt)  # noqa: E731
        kw = dict(size=kk if isinstance(k, tuple) else k, stride=s if isinstance(stride, tuple) else stride,
                  blur_size=m, circular=circular)
        return self.add("max_blur_pool2d", kw, x, fn, call)

    def aps(self, N, k, m, dtype, ndim=None):
        x = self.make_x(N, N, dtype, ndim)
        if k == 1:
            call = f"ApsPool(C, pad_type='circular', filt_size={m}, stride=2)"
            fn = lambda c, dt: self.L["aps_pool"](c, m, dt)  # noqa: E731
        else:
            call = f"circular_pad([0, {k - 1}, 0, {k - 1}]), nn.MaxPool2d({k}, stride=1), ApsPool(C, filt_size={m}, stride=2)"
            fn = lambda c, dt: self.L["max_aps_pool"](c, k, m, dt)  # noqa: E731
        kw = dict(size=k, stride=2, blur_size=m, circular=True)
        return self.add("aps_pool2d", kw, x, fn, call, aps=True)


def main():
    import torch

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    B = Builder(torch)
    rng = B.rng
    dts = [np.float32, np.float64]
    n = 0

    def size_for(m, parity):
        lo = m // 2 + 1  # ReflectionPad2d needs pad < size
        v = int(rng.integers(max(lo, 3), 17))
        return v if v % 2 == parity else v + 1

    # BlurPool (reflect): every filter size, strides 2 and 3, odd and even H / W
    for m in range(1, 8):
        for s in (2, 3):
            for parity in (0, 1):
                B.blur(size_for(m, parity), size_for(m, 1 - parity), m, s, False, dts[n % 2])
                n += 1
    B.blur(9, 10, 3, (2, 3), False, np.float32)
    B.blur(11, 8, 5, (3, 2), False, np.float64)
    # BlurPool (circular padding, truly_shift_invariant_cnns' circular_pad)
    for m, s in ((2, 2), (3, 2), (4, 3), (5, 2), (7, 2), (6, 3)):
        B.blur(size_for(m, n % 2), size_for(m, 0), m, s, True, dts[n % 2])
        n += 1
    # MaxBlurPool: nn.MaxPool2d(k, 1) + BlurPool
    for k in (2, 3):
        for s in (2, 3):
            for m in ((1, 3, 4) if s == 2 else (2, 5, 7)):
                H, W = int(rng.integers(k + m // 2 + 1, 18)), int(rng.integers(k + m // 2 + 1, 18))
                B.maxblur(H, W, k, s, m, False, dts[n % 2])
                n += 1
    B.maxblur(10, 9, (2, 3), (2, 3), 3, False, np.float64)
    # MaxBlurPool, circular: circular_pad([0, k-1, 0, k-1]) + MaxPool2d(k, 1) + circular BlurPool
    for k, s, m in ((2, 2, 3), (3, 2, 4), (2, 3, 5), (3, 3, 2), (2, 2, 7), (4, 2, 3)):
        B.maxblur(int(rng.integers(3, 17)), int(rng.integers(3, 17)), k, s, m, True, dts[n % 2])
        n += 1
    # APS: ApsPool alone (size 1) and the APS ResNet max pool (size 2), square inputs
    for k, m, N in ((1, 1, 8), (1, 1, 7), (1, 3, 10), (1, 5, 9), (2, 1, 8), (2, 1, 11),
                    (2, 3, 12), (2, 4, 6), (2, 2, 13), (3, 3, 10)):
        B.aps(N, k, m, dts[n % 2], ndim=4 if n % 3 else 3)
        n += 1
    # errors: torch raises (reflection padding too large, window larger than the input)
    B.blur(2, 6, 5, 2, False, np.float32)
    B.blur(5, 3, 7, 2, False, np.float64)
    B.maxblur(3, 8, 2, 2, 5, False, np.float32)
    B.maxblur(2, 8, 3, 2, 3, False, np.float64)

    errors = [c for c in B.cases if c["error"] is not None]
    assert len(errors) == 4, [c["torch"] for c in errors]
    meta = dict(
        torch=torch.__version__, numpy=np.__version__, seed=SEED, python=sys.version.split()[0],
        command="~/.venvs/oracle/bin/python tests/data/make_antialias_golden.py",
        n_cases=len(B.cases), n_errors=len(errors),
    )
    np.savez_compressed(OUT, cases=np.array(json.dumps(B.cases)), meta=np.array(json.dumps(meta)), **B.arrays)
    print(f"wrote {OUT}: {len(B.cases)} cases ({len(errors)} torch errors), {os.path.getsize(OUT)} bytes")
    ops: dict[str, int] = {}
    for c in B.cases:
        ops[c["op"]] = ops.get(c["op"], 0) + 1
    print(ops)


if __name__ == "__main__":
    main()
