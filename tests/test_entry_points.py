"""One mode, three doors: ``pool2d(x, m, ...)``, the stack's ``m(...)`` and ``poolcli run --pool m`` agree.

For every pooling mode the registry knows, with its defaults (the aps blur
included) and with non-default options, the three entry points must give the
same map, bit for bit. Defaults are written once, in the core function's
signature; this test is what keeps the doors from drifting apart again.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from poolcli.cli import app
from poolcli.ops import pool_mode_names, registry
from poolcli.pooling import pool2d
from poolcli.pooling.modes import MODES
from poolcli.stack import apply_stack, parse_stack

runner = CliRunner()

# Per mode: (pool2d keywords, stack arguments, CLI options) that say the same thing.
CASES = {
    "max": [({}, "", []), (dict(stride=1, padding=1, ceil_mode=True), "stride=1, padding=1, ceil", ["--stride", "1", "--padding", "1", "--ceil-mode"])],
    "avg": [({}, "", []), (dict(size=3, stride=2, padding=1, count_include_pad=False),
                           "stride=2, padding=1, count_include_pad=false",
                           ["--size", "3", "--stride", "2", "--padding", "1", "--no-count-include-pad"])],
    "min": [({}, "", [])],
    "lp": [(dict(p=2.0), "p=2", ["--p", "2"])],
    "blurpool": [({}, "", []), (dict(blur_size=5), "blur_size=5", ["--blur-size", "5"])],
    "blur": [({}, "", [])],
    "aps": [({}, "", []), (dict(blur_size=3), "blur_size=3", ["--blur-size", "3"])],
    "median": [({}, "", [])],
    "quantile": [(dict(q=0.25), "q=0.25", ["--q", "0.25"])],
    "mixed": [({}, "", []), (dict(alpha=0.3), "alpha=0.3", ["--alpha", "0.3"])],
    "softpool": [({}, "", [])],
    "stochastic": [({}, "", []), (dict(train=True, seed=3), "train, seed=3", ["--train", "--seed", "3"])],
    "gem": [({}, "", []), (dict(p=4.0), "p=4", ["--p", "4"])],
    "fractional": [(dict(ratio=0.7), "ratio=0.7", ["--ratio", "0.7"])],
    "learned": [],  # needs a weights file: below
}


def test_every_mode_has_cases():
    assert set(CASES) == set(pool_mode_names()) == set(MODES)


def _image(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (23, 30), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(img).save(path)
    return path, img.astype(np.float32)[None] / np.float32(255)


def _cli_map(tmp_path, path, options):
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(path), "--filter", "none", "-q", "--force", "-o", str(out), *options])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    return np.load(out / report["inputs"][0]["stages"][-1]["npy"]), report["stack"]


@pytest.mark.parametrize("mode,case", [(m, c) for m, cs in CASES.items() for c in cs], ids=str)
def test_pool2d_stack_and_cli_agree(tmp_path, mode, case):
    kw, stack_args, options = case
    path, x = _image(tmp_path)
    size = kw.pop("size", 2) if mode != "fractional" else kw.pop("size", None)
    via_pool2d = pool2d(x, mode, size, **kw) if size is not None else pool2d(x, mode, **kw)
    spec = f"{mode}({', '.join(a for a in ([str(size)] if size is not None else []) + ([stack_args] if stack_args else []))})"
    via_stack = apply_stack(x, parse_stack(spec))[-1]
    via_cli, canonical = _cli_map(tmp_path, path, ["--pool", mode, *options])
    np.testing.assert_array_equal(via_pool2d, via_stack)
    np.testing.assert_array_equal(via_pool2d, via_cli)
    assert parse_stack(canonical) == parse_stack(spec)


def test_learned_through_every_door(tmp_path):
    path, x = _image(tmp_path)
    w = np.array([[0.1, 0.2, 0.0], [0.3, -0.4, 0.5], [0.25, 0.0, 0.05]])
    np.save(tmp_path / "w.npy", w)
    via_pool2d = pool2d(x, "learned", weights=w, stride=2)
    via_stack = apply_stack(x, parse_stack(f"learned(weights={tmp_path / 'w.npy'}, stride=2)"))[-1]
    via_cli, _ = _cli_map(tmp_path, path, ["--pool", "learned", "--weights", str(tmp_path / "w.npy"), "--stride", "2"])
    np.testing.assert_array_equal(via_pool2d, via_stack)
    np.testing.assert_array_equal(via_pool2d, via_cli)


@pytest.mark.parametrize("mode", pool_mode_names())
def test_defaults_are_the_core_signature(mode):
    """The registry's default of every parameter is the core function's default, converted."""
    sig = inspect.signature(MODES[mode].function)
    spec = registry()[mode]
    assert [p.name for p in spec.params] == list(sig.parameters)[1:]
    for p in spec.params:
        d = sig.parameters[p.name].default
        if d is inspect.Parameter.empty:
            assert p.required
        else:
            assert p.default == (None if d is None else p.convert(d))


def test_aps_blur_default_is_one_everywhere():
    x = np.random.default_rng(1).random((1, 12, 12)).astype(np.float32)
    from poolcli.pooling import aps_pool2d

    # aps_pool2d pads circularly by default (the official APS layer); with that padding they agree
    np.testing.assert_array_equal(pool2d(x, "aps", 2, padding_mode="circular"), aps_pool2d(x, 2))
    np.testing.assert_array_equal(pool2d(x, "aps", 2), apply_stack(x, parse_stack("aps(2)"))[-1])
    np.testing.assert_array_equal(pool2d(x, "aps", 2), pool2d(x, "aps", 2, blur_size=1))
