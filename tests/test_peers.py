"""Every peer option reproduces the peer's own layer (issue 15).

The fixtures tests/data/peer_*.npz hold outputs of antialiased-cnns' ``BlurPool``, kornia's
``BlurPool2D`` / ``MaxBlurPool2D``, timm's ``BlurPool2d`` and the official APS layer (re-implemented,
see tests/data/make_peer_golden.py), made by that script in the oracle venv. No peer is imported here.

Bitwise where the arithmetic allows (no blur: max and subsampling; APS choices and the phases),
else within 1e-6 relative plus a few roundings of max|x| (torch's conv accumulates in the input
dtype in its own order, poolcli in float64, rounded once).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from poolcli import ops
from poolcli.pooling import antialias, pool2d
from poolcli.stack import apply_stack, parse_stack

DATA = os.path.join(os.path.dirname(__file__), "data")
FILES = ("peer_antialiased_cnns.npz", "peer_kornia.npz", "peer_timm.npz", "peer_aps.npz")


def _load(name):
    z = np.load(os.path.join(DATA, name))
    cases = json.loads(str(z["cases"]))
    return [(name, c, {k: z[k] for k in z.files if k.startswith(c["id"] + "_")}) for c in cases], json.loads(str(z["meta"]))


ALL = [case for name in FILES for case in _load(name)[0]]


def _close(got, want, x, m, msg):
    assert got.shape == want.shape, (msg, got.shape, want.shape)
    assert got.dtype == want.dtype, msg
    if m == 1:
        np.testing.assert_array_equal(got, want, err_msg=msg)
    else:
        atol = 2 * m * np.finfo(x.dtype).eps * float(np.abs(x).max())
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=atol, err_msg=msg)


def _run(case, arrays):
    op, kw = case["op"], dict(case["kwargs"])
    x = arrays[case["id"] + "_x"]
    if op.startswith("mode:"):
        return pool2d(x, op[5:], **kw), None
    if op == "aps_pool2d":
        if kw.pop("phase_from", None):
            _, phase = antialias.aps_pool2d(arrays[case["id"] + "_x_choose"], **kw, return_phase=True)
            return antialias.aps_pool2d(x, **kw, phase=phase, return_phase=True)
        return antialias.aps_pool2d(x, **kw, return_phase=True)
    return getattr(antialias, op)(x, **kw), None


def test_fixtures_present():
    for name in FILES:
        cases, meta = _load(name)
        assert len(cases) >= 30 and meta["torch"].startswith("2.")
        assert os.path.getsize(os.path.join(DATA, name)) < 1_000_000


@pytest.mark.parametrize("name,case,arrays", ALL, ids=[f"{n[5:-4]}-{c['id']}" for n, c, _ in ALL])
def test_reproduces_peer(name, case, arrays):
    x, want = arrays[case["id"] + "_x"], arrays[case["id"] + "_y"]
    got, phase = _run(case, arrays)
    if phase is not None:
        np.testing.assert_array_equal(phase.reshape(-1, 2), arrays[case["id"] + "_phase"], err_msg=case["peer"])
    _close(got, want, x, case["kwargs"].get("blur_size", 3), case["peer"])


@pytest.mark.parametrize("name,case,arrays", [a for a in ALL if a[1]["op"].startswith("mode:")][::3],
                         ids=lambda v: v["id"] if isinstance(v, dict) and "id" in v else "")
def test_stack_language_agrees(name, case, arrays):
    """``blurpool(3, stride=2, padding=1, peer=timm)`` in a stack is pool2d with those keywords."""
    kw = dict(case["kwargs"])
    mode, size = case["op"][5:], kw.pop("size")
    spec = f"{mode}({size}, " + ", ".join(f"{k}={ops.format_value(v)}" for k, v in kw.items()) + ")"
    x = arrays[case["id"] + "_x"][0]
    np.testing.assert_array_equal(apply_stack(x, parse_stack(spec))[-1], pool2d(x, mode, size, **kw))


# ----------------------------------------------------------------------------- the options themselves


def test_issue_examples():
    ones = np.ones((4, 4))
    np.testing.assert_array_equal(pool2d(ones, "blur", 2, peer="kornia"), [[0.5625, 0.75], [0.75, 1]])
    np.testing.assert_array_equal(pool2d(ones, "blur", 2), [[1, 1], [1, 1]])
    assert antialias.blur2d(ones, 2, 3, pad_off=1).shape == (3, 3)
    x = np.zeros((4, 4)); x[0, 1] = x[1, 2] = 1
    assert antialias.aps_downsample(x, return_phase=True)[1].tolist() == [0, 1]
    assert antialias.aps_downsample(x, ties="official", return_phase=True)[1].tolist() == [1, 0]


def test_explicit_blur_pad_wins_over_peer():
    """peer sets the pad sizes and a default mode; blur_pad, when given, replaces the mode only."""
    x = np.random.default_rng(0).standard_normal((2, 9, 10))
    for peer in ("kornia", "timm", "antialiased-cnns"):
        for bp in ("reflect", "replicate", "zero", "circular"):
            got = antialias.blur2d(x, 2, 4, peer=peer, blur_pad=bp)
            same_sizes = "timm" if peer == "timm" else "none"
            np.testing.assert_array_equal(got, antialias.blur2d(x, 2, 4, peer=same_sizes, blur_pad=bp))
    np.testing.assert_array_equal(antialias.blur2d(x, 2, 3, peer="kornia"), antialias.blur2d(x, 2, 3, blur_pad="zero"))
    # the stack and the CLI words say the same
    assert str(parse_stack("blurpool(2, peer=kornia, blur_pad=reflect)")) == "blurpool(size=2, stride=2, blur_pad=reflect, peer=kornia)"


def test_circular_padding_mode_wins():
    """padding_mode='circular' (what invariance sets) pads by wrapping as before, whatever the peer or blur_pad."""
    x = np.random.default_rng(1).standard_normal((1, 8, 8))
    base = pool2d(x, "blurpool", 2, padding_mode="circular")
    for kw in (dict(peer="kornia"), dict(peer="timm"), dict(blur_pad="zero"), dict(pad_off=2)):
        np.testing.assert_array_equal(pool2d(x, "blurpool", 2, padding_mode="circular", **kw), base)


def test_defaults_unchanged():
    x = np.random.default_rng(2).standard_normal((2, 11, 9)).astype(np.float32)
    for mode in ("blurpool", "blur", "aps"):
        ref = pool2d(x, mode, 2)
        for kw in (dict(peer="antialiased-cnns"), dict(blur_pad="reflect", pad_off=0), dict(peer="none")):
            np.testing.assert_array_equal(pool2d(x, mode, 2, **kw), ref)
    np.testing.assert_array_equal(pool2d(x, "aps", 2, criterion="l2", ties="first"), pool2d(x, "aps", 2))


def test_aps_criteria_by_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.standard_normal((2, 3, 6, 8))
        comps = [x[..., i::2, j::2].reshape(2, -1) for i in range(2) for j in range(2)]
        score = {
            "l2": [(c**2).sum(1) for c in comps], "l1": [np.abs(c).sum(1) for c in comps],
            "linf": [np.abs(c).max(1) for c in comps], "max": [c.max(1) for c in comps],
        }
        for crit, s in score.items():
            for suffix, pick in (("", np.argmax), ("_min", np.argmin)):
                if suffix and crit not in ("l2", "l1"):
                    continue
                _, phase = antialias.aps_downsample(x, criterion=crit + suffix, return_phase=True)
                idx = pick(np.stack(s, 1), axis=1)
                assert (phase[:, 0] * 2 + phase[:, 1]).tolist() == idx.tolist(), crit + suffix


def test_aps_official_names_and_phase():
    x = np.random.default_rng(4).standard_normal((1, 2, 8, 8))
    for official, ours in (("l_infty", "linf"), ("non_abs_max", "max"), ("l2_min", "l2_min")):
        np.testing.assert_array_equal(antialias.aps_downsample(x, criterion=official),
                                      antialias.aps_downsample(x, criterion=ours))
        assert ops.PARAMS["criterion"].convert(official) == ours
    y, phase = antialias.aps_pool2d(x, return_phase=True)
    z = np.random.default_rng(5).standard_normal(x.shape)
    pre = antialias.max_blur_pool2d(z, 2, 1, 1, circular=True)  # aps_pool2d's max stage
    np.testing.assert_array_equal(antialias.aps_pool2d(z, phase=phase), antialias.aps_downsample(pre, phase=phase))
    np.testing.assert_array_equal(antialias.aps_pool2d(x, phase=phase), y)
    with pytest.raises(ValueError, match="phase"):
        antialias.aps_downsample(x, phase=(2, 0))
    with pytest.raises(ValueError, match="criterion"):
        antialias.aps_downsample(x, criterion="l3")


def test_word_lists_agree():
    """ops (numpy-free) and the core check the same words."""
    assert ops.BLUR_PADS == antialias.BLUR_PADS
    assert ops.PEERS == antialias.PEERS
    assert ops.APS_CRITERIA == antialias.APS_CRITERIA
    assert ops.APS_TIES == antialias.APS_TIES
    x = np.random.default_rng(6).standard_normal((7, 9))
    for raw, canon in (("refl", "reflect"), ("repl", "replicate"), ("constant", "zero"), ("wrap", "circular")):
        assert ops.PARAMS["blur_pad"].convert(raw) == canon
        np.testing.assert_array_equal(antialias.blur2d(x, 2, 4, blur_pad=raw), antialias.blur2d(x, 2, 4, blur_pad=canon))


def test_errors():
    with pytest.raises(ValueError, match="blur_pad"):
        pool2d(np.ones((4, 4)), "blur", 2, blur_pad="mirror-ish")
    with pytest.raises(ValueError, match="pad_off"):
        antialias.blur2d(np.ones((4, 4)), pad_off=-1)
    with pytest.raises(ValueError, match="peer"):
        antialias.blur2d(np.ones((4, 4)), peer="torchvision")
    with pytest.raises(ValueError, match="reflection padding"):
        antialias.blur2d(np.ones((3, 3)), 2, 3, pad_off=2)


# ----------------------------------------------------------------------------- the command line


def _image(tmp_path):
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (24, 28), dtype=np.uint8)).save(path)
    return path


def test_run_options_reproduce_the_peer(tmp_path):
    from typer.testing import CliRunner

    from poolcli.cli import app

    path = _image(tmp_path)
    res = CliRunner().invoke(app, ["run", str(path), "--filter", "none", "-q", "-o", str(tmp_path / "o"), "--pool",
                                   "blurpool", "--blur-pad", "zero", "--pad-off", "1", "--peer", "timm"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["stack"] == "blurpool(size=2, stride=2, blur_pad=zero, pad_off=1, peer=timm)"
    got = np.load(tmp_path / "o" / report["inputs"][0]["stages"][-1]["npy"])
    from PIL import Image

    x = np.asarray(Image.open(path), dtype=np.float32)[None] / np.float32(255)
    np.testing.assert_array_equal(got, pool2d(x, "blurpool", 2, blur_pad="zero", pad_off=1, peer="timm"))


def test_compare_takes_stack_language_specs(tmp_path):
    from typer.testing import CliRunner

    from poolcli.cli import app

    path = _image(tmp_path)
    res = CliRunner().invoke(app, ["invariance", str(path), "-q", "--no-plot", "-o", str(tmp_path / "o"), "--compare",
                                   "max, blurpool(peer=kornia),blurpool,aps(criterion=l1), maxpool, blurpool(blur_size=3)"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "o" / "invariance.json").read_text())
    assert list(report["methods"]) == ["max", "blurpool(peer=kornia)", "blurpool", "aps(criterion=l1)"]
    assert report["methods"]["blurpool(peer=kornia)"].endswith("blurpool(size=2, stride=2, padding_mode=circular, peer=kornia)")
    assert report["methods"]["aps(criterion=l1)"].endswith("aps(size=2, stride=2, padding_mode=circular, criterion=l1)")
    assert {r["method"] for r in report["records"]} == set(report["methods"])
    for bad in ("blurpool(peer=foo)", "blurpool(3)", "blurpool(peer=kornia", "maxx"):
        res = CliRunner().invoke(app, ["invariance", str(path), "-q", "--no-plot", "-o", str(tmp_path / "p"),
                                       "--compare", bad])
        assert res.exit_code == 2, (bad, res.output)


# ----------------------------------------------------------------------------- adaptive avg on large bins


def _sequential_adaptive_avg(x, oh, ow):
    """PyTorch's CPU kernel, literally: each bin summed row-major, one value at a time, in x's dtype."""
    h, w = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (oh, ow), x.dtype)
    for i in range(oh):
        r0, r1 = i * h // oh, -(-(i + 1) * h // oh)
        for j in range(ow):
            c0, c1 = j * w // ow, -(-(j + 1) * w // ow)
            s = np.cumsum(np.concatenate([np.zeros(x.shape[:-2] + (1,), x.dtype),
                                          x[..., r0:r1, c0:c1].reshape(x.shape[:-2] + (-1,))], -1), -1, dtype=x.dtype)
            out[..., i, j] = s[..., -1] / x.dtype.type(r1 - r0) / x.dtype.type(c1 - c0)
    return out


def test_adaptive_avg_torch_summation():
    from poolcli.pooling import adaptive_pool2d

    x = np.full((1000, 1000), 0.1, np.float32)
    # F.adaptive_avg_pool2d(torch.full((1, 1000, 1000), 0.1), 2) with torch 2.13.0+cpu: 0.09975985 (bits 1036799716)
    torch_sum = adaptive_pool2d(x, "avg", 2, summation="torch")
    assert torch_sum.view(np.uint32).tolist() == [[1036799716] * 2] * 2
    assert adaptive_pool2d(x, "avg", 2).tolist() == [[np.float32(0.1)] * 2] * 2  # the default: float64, documented
    rng = np.random.default_rng(11)
    for shape, o, dt in (((2, 70, 93), (3, 5), np.float32), ((1, 40, 33), (2, 3), np.float64), ((37, 29), (3, 2), np.float32)):
        x = (rng.standard_normal(shape) * 10).astype(dt)
        np.testing.assert_array_equal(adaptive_pool2d(x, "avg", o, summation="torch"), _sequential_adaptive_avg(x, *o))
    with pytest.raises(ValueError, match="summation"):
        adaptive_pool2d(x, "avg", 2, summation="kahan")
