"""Generate tests/data/peer_*.npz: outputs of each peer's own anti-aliased layer, for tests/test_peers.py.

Run with the oracle interpreter (no peer is ever a dependency of poolcli or its tests)::

    python -m venv ~/.venvs/oracle
    ~/.venvs/oracle/bin/pip install torch==2.13.0 numpy
    ~/.venvs/oracle/bin/pip install --no-deps antialiased-cnns==0.3 kornia==0.9.0 kornia_rs packaging \
        timm==1.0.31 pyyaml safetensors
    ~/.venvs/oracle/bin/python tests/data/make_peer_golden.py

(``--no-deps``: timm and kornia would otherwise pull another torch and torchvision.)

What runs, per file:

* ``peer_antialiased_cnns.npz``: the ``antialiased_cnns`` package's own ``BlurPool(C, pad_type, filt_size,
  stride, pad_off)`` for pad_type reflect / repl / zero and pad_off 0..2 (poolcli: ``blur2d(x, stride, m,
  blur_pad=..., pad_off=...)``) and ``nn.Sequential(nn.MaxPool2d(k, 1), BlurPool(...))`` (poolcli:
  ``max_blur_pool2d``). float64 cases call ``.double()`` on the layer, as a float64 model would.
* ``peer_kornia.npz``: ``kornia.filters.BlurPool2D(m, stride)`` and ``MaxBlurPool2D(m, stride,
  max_pool_size=k)`` (poolcli: ``peer='kornia'``, zero padding).
* ``peer_timm.npz``: ``timm.layers.blur_pool.BlurPool2d(C, filt_size, stride, pad_mode)`` for pad_mode
  'reflect' (poolcli ``peer='timm'``) and 'constant' (timm's 'blurpc'; poolcli ``peer='timm',
  blur_pad='zero'``), and timm's anti-aliased max pool ``nn.MaxPool2d(3, 1, padding=1)`` + BlurPool2d
  (poolcli ``blurpool(3, stride=2, padding=1, peer=timm)``). timm's package ``__init__`` imports
  torchvision (not installed: it pins another torch), so the three modules the layer needs
  (``timm/layers/{typing,padding,blur_pool}.py``) are loaded from the installed package under stub
  parent packages: timm's own code runs, unchanged.
* ``peer_aps.npz``: the APS layer of achaman2/truly_shift_invariant_cnns (``models/aps_models/apspool.py``:
  ``ApsPool``, ``aps_downsample_v2``, ``get_polyphase_indices_v2``, ``aps_pad``, ``permute_polyphase``).
  That repository carries no licence file, so its code is not copied here: ``OfficialAps`` below
  re-implements the documented behaviour with the same torch operations (blur: the pad layer of
  ``pad_type`` + ``F.conv2d`` of the normalised binomial; ``aps_pad``; the components gathered in the
  order (0,0), (1,0), (0,1), (1,1); the criterion ``l2`` / ``l1`` = ``torch.norm(p=2 / 1)``, ``l_infty`` /
  ``non_abs_max`` = ``torch.max`` of ``|x|`` / ``x``, ``l2_min`` / ``l1_min`` = ``torch.argmin`` of the
  norms; ``polyphase_indices`` given from outside), ``.cuda()`` dropped. Random cases whose two best
  scores lie within 1e-4 (relative) are drawn again, so float32 rounding decides no choice; the tie
  cases use small integers, whose norms are exact in float32, so exact ties are real ties.

Every case: ``{id}_x`` the input (N, C, H, W), ``{id}_y`` the peer's output, ``{id}_phase`` (APS) the
(N, 2) phases; ``cases`` a JSON list of ``{id, op, kwargs, dtype, shape, peer}`` where ``op`` is the
poolcli function (``blur2d``, ``max_blur_pool2d``, ``aps_pool2d`` in :mod:`poolcli.pooling.antialias`, or
``mode:<name>`` for :func:`poolcli.pooling.pool2d` keywords) and ``kwargs`` its keywords; ``meta`` the
versions. Deterministic (``numpy.random.default_rng(SEED)``). The peers are imported inside ``main``
only, so pytest's ``--doctest-modules`` can import this file.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import types

import numpy as np

SEED = 20250315
HERE = os.path.dirname(os.path.abspath(__file__))


class Recorder:
    def __init__(self, torch, rng):
        self.torch = torch
        self.rng = rng
        self.arrays: dict[str, np.ndarray] = {}
        self.cases: list[dict] = []

    def x(self, h, w, dtype, integers=False):
        n, c = int(self.rng.integers(1, 3)), int(self.rng.integers(1, 4))
        if integers:
            return self.rng.integers(-2, 3, (n, c, h, w)).astype(dtype)
        return self.rng.standard_normal((n, c, h, w)).astype(dtype)

    def add(self, op, kwargs, x, y, peer, phase=None):
        i = f"c{len(self.cases):03d}"
        self.arrays[f"{i}_x"] = np.ascontiguousarray(x)
        self.arrays[f"{i}_y"] = np.ascontiguousarray(y)
        assert y.dtype == x.dtype, (peer, y.dtype)
        if phase is not None:
            self.arrays[f"{i}_phase"] = np.asarray(phase, dtype=np.int64)
        self.cases.append(dict(id=i, op=op, kwargs=kwargs, dtype=str(x.dtype), shape=list(x.shape), peer=peer))

    def run(self, layer, x):
        torch = self.torch
        with torch.no_grad():
            return layer(torch.from_numpy(x.copy()))

    def save(self, name, versions):
        meta = dict(versions, numpy=np.__version__, seed=SEED, python=sys.version.split()[0],
                    command="~/.venvs/oracle/bin/python tests/data/make_peer_golden.py", n_cases=len(self.cases))
        path = os.path.join(HERE, name)
        np.savez_compressed(path, cases=np.array(json.dumps(self.cases)), meta=np.array(json.dumps(meta)), **self.arrays)
        print(f"wrote {path}: {len(self.cases)} cases, {os.path.getsize(path)} bytes")


def _dtype(torch, dt):
    return torch.float64 if dt == np.float64 else torch.float32


# ----------------------------------------------------------------------------- antialiased-cnns


def antialiased_cnns_cases(torch, rng):
    from antialiased_cnns.blurpool import BlurPool

    nn = torch.nn
    R = Recorder(torch, rng)
    pads = {"reflect": "reflect", "repl": "replicate", "zero": "zero"}
    n = 0
    for pad_type, blur_pad in pads.items():
        for m in range(1, 8):
            for s in (2, 3):
                for off in (0, 1, 2):
                    dt = (np.float32, np.float64)[n % 2]
                    lo = m // 2 + off + 1  # ReflectionPad2d needs pad < side
                    h, w = int(rng.integers(max(lo, 3), 15)), int(rng.integers(max(lo, 3), 15))
                    x = R.x(h, w, dt)
                    layer = BlurPool(x.shape[1], pad_type=pad_type, filt_size=m, stride=s, pad_off=off)
                    layer = layer.double() if dt == np.float64 else layer
                    y = R.run(layer, x).numpy()
                    kw = dict(stride=s, blur_size=m, blur_pad=blur_pad, pad_off=off)
                    R.add("blur2d", kw, x, y, f"BlurPool(C, pad_type={pad_type!r}, filt_size={m}, stride={s}, pad_off={off})")
                    n += 1
        for k, m, s in ((2, 3, 2), (3, 4, 2), (2, 5, 3), (3, 1, 2)):
            dt = (np.float32, np.float64)[n % 2]
            x = R.x(int(rng.integers(k + 3, 15)), int(rng.integers(k + 3, 15)), dt)
            layer = nn.Sequential(nn.MaxPool2d(k, stride=1), BlurPool(x.shape[1], pad_type=pad_type, filt_size=m, stride=s))
            layer = layer.double() if dt == np.float64 else layer
            y = R.run(layer, x).numpy()
            kw = dict(size=k, stride=s, blur_size=m, blur_pad=blur_pad)
            R.add("max_blur_pool2d", kw, x, y,
                  f"nn.Sequential(nn.MaxPool2d({k}, stride=1), BlurPool(C, pad_type={pad_type!r}, filt_size={m}, stride={s}))")
            n += 1
    # the mode with the peer shorthand (pool2d / stack / --pool): blurpool(k, stride=s, peer=antialiased-cnns)
    for k, m, s in ((2, 3, 2), (2, 4, 2), (3, 5, 2)):
        x = R.x(13, 11, np.float32)
        layer = nn.Sequential(nn.MaxPool2d(k, stride=1), BlurPool(x.shape[1], filt_size=m, stride=s))
        y = R.run(layer, x).numpy()
        kw = dict(size=k, stride=s, blur_size=m, peer="antialiased-cnns")
        R.add("mode:blurpool", kw, x, y, f"nn.Sequential(nn.MaxPool2d({k}, stride=1), BlurPool(C, filt_size={m}, stride={s}))")
    import antialiased_cnns  # noqa: F401

    R.save("peer_antialiased_cnns.npz", dict(torch=torch.__version__, peer="antialiased-cnns 0.3 (pip)"))


# ----------------------------------------------------------------------------- kornia


def kornia_cases(torch, rng):
    import kornia
    from kornia.filters import BlurPool2D, MaxBlurPool2D

    R = Recorder(torch, rng)
    n = 0
    for m in range(1, 8):
        for s in (1, 2, 3):
            dt = (np.float32, np.float64)[n % 2]
            x = R.x(int(rng.integers(2, 15)), int(rng.integers(2, 15)), dt)
            y = R.run(BlurPool2D(m, stride=s), x).numpy()
            R.add("blur2d", dict(stride=s, blur_size=m, peer="kornia"), x, y, f"kornia.filters.BlurPool2D({m}, stride={s})")
            n += 1
    for k, m, s in ((2, 3, 2), (2, 1, 2), (3, 4, 2), (2, 5, 3), (3, 7, 2), (2, 2, 2)):
        dt = (np.float32, np.float64)[n % 2]
        x = R.x(int(rng.integers(k + 2, 15)), int(rng.integers(k + 2, 15)), dt)
        y = R.run(MaxBlurPool2D(m, stride=s, max_pool_size=k), x).numpy()
        call = f"kornia.filters.MaxBlurPool2D({m}, stride={s}, max_pool_size={k})"
        R.add("max_blur_pool2d", dict(size=k, stride=s, blur_size=m, peer="kornia"), x, y, call)
        R.add("mode:blurpool", dict(size=k, stride=s, blur_size=m, peer="kornia"), x, y, call)
        n += 1
    x = np.ones((1, 1, 4, 4), np.float32)  # the example: [[0.5625, 0.75], [0.75, 1]]
    R.add("mode:blur", dict(size=2, blur_size=3, peer="kornia"), x, R.run(BlurPool2D(3, stride=2), x).numpy(),
          "kornia.filters.BlurPool2D(3, stride=2) on ones(4, 4)")
    R.save("peer_kornia.npz", dict(torch=torch.__version__, peer=f"kornia {kornia.__version__} (pip)"))


# ----------------------------------------------------------------------------- timm


def _load_timm_blur_pool():
    """timm/layers/blur_pool.py (and the two modules it imports) without timm's package __init__."""
    spec = importlib.util.find_spec("timm")
    root = os.path.dirname(spec.origin)
    for pkg, path in (("timm", root), ("timm.layers", os.path.join(root, "layers"))):
        mod = types.ModuleType(pkg)
        mod.__path__ = [path]
        sys.modules[pkg] = mod
    from timm.layers.blur_pool import BlurPool2d  # noqa: E402

    return BlurPool2d


def _timm_version():
    from importlib.metadata import version

    return version("timm")


def timm_cases(torch, rng):
    BlurPool2d = _load_timm_blur_pool()
    nn = torch.nn
    R = Recorder(torch, rng)
    n = 0
    for pad_mode, blur_pad in (("reflect", None), ("constant", "zero")):
        for m in range(2, 8):
            for s in (1, 2, 3):
                dt = (np.float32, np.float64)[n % 2]
                p = ((s - 1) + (m - 1)) // 2
                x = R.x(int(rng.integers(max(p + 1, 3), 15)), int(rng.integers(max(p + 1, 3), 15)), dt)
                layer = BlurPool2d(x.shape[1], filt_size=m, stride=s, pad_mode=pad_mode, dtype=_dtype(torch, dt))
                y = R.run(layer, x).numpy()
                kw = dict(size=s, blur_size=m, peer="timm")
                if blur_pad:
                    kw["blur_pad"] = blur_pad
                R.add("mode:blur", kw, x, y, f"timm BlurPool2d(C, filt_size={m}, stride={s}, pad_mode={pad_mode!r})")
                n += 1
    for pad_mode, blur_pad in (("reflect", None), ("constant", "zero")):
        for m in (3, 5):
            x = R.x(int(rng.integers(6, 15)), int(rng.integers(6, 15)), np.float32)
            layer = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                  BlurPool2d(x.shape[1], filt_size=m, stride=2, pad_mode=pad_mode))
            y = R.run(layer, x).numpy()
            kw = dict(size=3, stride=2, padding=1, blur_size=m, peer="timm")
            if blur_pad:
                kw["blur_pad"] = blur_pad
            R.add("mode:blurpool", kw, x, y,
                  f"nn.Sequential(nn.MaxPool2d(3, 1, padding=1), timm BlurPool2d(C, filt_size={m}, stride=2, pad_mode={pad_mode!r}))")
    R.save("peer_timm.npz", dict(torch=torch.__version__, peer=f"timm {_timm_version()} (pip), timm/layers/blur_pool.py"))


# ----------------------------------------------------------------------------- APS (re-implemented, see above)


class OfficialAps:
    """ApsPool(C, pad_type, filt_size, stride=2, apspool_criterion) as apspool.py behaves (not copied)."""

    ORDER = ((0, 0), (1, 0), (0, 1), (1, 1))

    def __init__(self, torch, pad_type="circular", filt_size=1, criterion="l2"):
        self.torch, self.pad_type, self.m, self.criterion = torch, pad_type, filt_size, criterion

    def blur(self, t):
        torch, F, nn = self.torch, self.torch.nn.functional, self.torch.nn
        m = self.m
        p = [(m - 1) // 2, math.ceil((m - 1) / 2)] * 2
        layers = {"reflect": nn.ReflectionPad2d, "repl": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}
        padded = F.pad(t, p, mode="circular") if self.pad_type == "circular" else layers[self.pad_type](p)(t)
        a = torch.tensor([math.comb(m - 1, k) for k in range(m)], dtype=torch.float64)
        filt = torch.Tensor((a[:, None] * a[None, :]).numpy())
        filt = (filt / torch.sum(filt))[None, None].repeat((t.shape[1], 1, 1, 1)).to(t.dtype)
        return F.conv2d(padded, filt, stride=1, groups=t.shape[1])

    def components(self, t):
        """(B, 4, C, N*N/4) in the reference's order."""
        F = self.torch.nn.functional
        if t.shape[2] % 2:
            t = F.pad(t, (0, 0, 0, 1), mode="circular")
        if t.shape[3] % 2:
            t = F.pad(t, (0, 1, 0, 0), mode="circular")
        return self.torch.stack([t[:, :, i::2, j::2].reshape(t.shape[0], t.shape[1], -1) for i, j in self.ORDER], 1)

    def choose(self, comps):
        torch, b, c = self.torch, comps.shape[0], self.criterion
        if c in ("l2", "l1", "l2_min", "l1_min"):
            scores = torch.norm(comps, dim=(2, 3), p=2 if c.startswith("l2") else 1)
            return (torch.argmin if c.endswith("_min") else torch.argmax)(scores, dim=1), scores
        vals = comps.reshape(b, 4, -1)
        scores = torch.max(vals.abs() if c == "l_infty" else vals, dim=2).values
        return torch.argmax(scores, dim=1), scores

    def __call__(self, t, polyphase_indices=None):
        if self.m > 1:
            t = self.blur(t)
        comps = self.components(t)
        scores = None
        if polyphase_indices is None:
            polyphase_indices, scores = self.choose(comps)
        n2 = (t.shape[2] + 1) // 2
        out = comps[self.torch.arange(t.shape[0]), polyphase_indices].reshape(t.shape[0], t.shape[1], n2, n2)
        return out, polyphase_indices, scores


def _clear_choice(scores, criterion) -> bool:
    """No near tie between the chosen score and the next (float32 rounding must not decide)."""
    s = np.sort(scores.numpy().astype(np.float64), axis=1)
    a, b = (s[:, 0], s[:, 1]) if criterion.endswith("_min") else (s[:, -1], s[:, -2])
    return bool(np.all(np.abs(a - b) > 1e-4 * np.maximum(np.abs(a), 1e-30)))


def aps_cases(torch, rng):
    R = Recorder(torch, rng)
    order = np.array(OfficialAps.ORDER, dtype=np.int64)
    names = {"l2": "l2", "l1": "l1", "l_infty": "linf", "non_abs_max": "max", "l2_min": "l2_min", "l1_min": "l1_min"}
    n = 0
    for official, ours in names.items():
        for pad_type, m, N in (("circular", 1, 8), ("circular", 3, 9), ("reflect", 3, 10), ("repl", 4, 8),
                               ("zero", 5, 11), ("circular", 2, 6)):
            dt = (np.float32, np.float64)[n % 2]
            layer = OfficialAps(torch, pad_type, m, official)
            while True:
                x = R.x(N, N, dt)
                out, idx, scores = layer(torch.from_numpy(x.copy()))
                if _clear_choice(scores, official):
                    break
            blur_pad = {"repl": "replicate"}.get(pad_type, pad_type)
            kw = dict(size=1, stride=2, blur_size=m, circular=False, blur_pad=blur_pad, criterion=official)
            call = f"ApsPool(C, pad_type={pad_type!r}, filt_size={m}, stride=2, apspool_criterion={official!r})"
            R.add("aps_pool2d", kw, x, out.numpy(), call, order[idx.numpy()])
            n += 1
        # exact ties: small integers; the official code keeps the first in its order
        for N in (4, 6):
            x = R.x(N, N, np.float64, integers=True)
            x[:, :, ::2, ::2] = 0  # (0, 0) scores low, so the ties fall among the others
            out, idx, _ = OfficialAps(torch, "circular", 1, official)(torch.from_numpy(x.copy()))
            kw = dict(size=1, stride=2, blur_size=1, criterion=ours, ties="official")
            R.add("aps_pool2d", kw, x, out.numpy(), f"ApsPool(C, filt_size=1, apspool_criterion={official!r}) on integers",
                  order[idx.numpy()])
    # the example: two equal ones at (0, 1) and (1, 2) of a 4x4 input; official keeps (1, 0)
    x = np.zeros((1, 1, 4, 4)); x[0, 0, 0, 1] = x[0, 0, 1, 2] = 1
    out, idx, _ = OfficialAps(torch)(torch.from_numpy(x.copy()))
    R.add("aps_pool2d", dict(size=1, stride=2, blur_size=1, ties="official"), x, out.numpy(),
          "ApsPool(C, filt_size=1) on the 4x4 tie of issue 15", order[idx.numpy()])
    # polyphase_indices from outside: the choice of one map applied to another
    for k in range(3):
        x, x2 = R.x(8, 8, np.float32), None
        _, idx, _ = OfficialAps(torch, "circular", 3)(torch.from_numpy(x.copy()))
        x2 = rng.standard_normal(x.shape).astype(np.float32)
        out2, _, _ = OfficialAps(torch, "circular", 3)(torch.from_numpy(x2.copy()), idx)
        kw = dict(size=1, stride=2, blur_size=3, phase_from="x")
        R.add("aps_pool2d", kw, x2, out2.numpy(), "ApsPool(C, filt_size=3)({'inp': x2, 'polyphase_indices': idx(x)})",
              order[idx.numpy()])
        R.arrays[f"{R.cases[-1]['id']}_x_choose"] = x
    R.save("peer_aps.npz", dict(torch=torch.__version__,
                                peer="achaman2/truly_shift_invariant_cnns models/aps_models/apspool.py at 9c319a2 (re-implemented, no licence)"))


def main():
    import torch

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    antialiased_cnns_cases(torch, rng)
    kornia_cases(torch, rng)
    timm_cases(torch, rng)
    aps_cases(torch, rng)


if __name__ == "__main__":
    main()
