"""Record, or check, every output of poolcli on the README examples and presets.

The redesign of issue 10 promised "every output byte identical". This script
runs a fixed list of commands (every README example, every preset, every
``--pool`` mode, a folder batch, ``invariance`` runs) on the sample images and
reduces each output file to a digest of what it holds:

* ``.npy``: dtype, shape and the array's bytes;
* ``.png``: mode, size and the decoded pixels (not the zlib stream);
* ``.json``: the parsed document without timings, fingerprints (they hold
  absolute paths and mtimes) and the absolute ``out_dir``;
* ``.csv``: the rows without the ``seconds`` column.

Usage (from the repository root)::

    python tests/regression/record_outputs.py --record   # writes tests/regression/outputs.json
    python tests/regression/record_outputs.py            # compares, exits 1 on a difference

``tests/test_regression_outputs.py`` runs the comparison in the test suite.
Record again only for an intended change of outputs, and say so in the commit.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = Path(__file__).with_name("outputs.json")
SAMPLES = ("scene.png", "texture.png", "shapes.png", "checkerboard.png", "gradient.png")

# (name, argv) — run with the working directory set to a scratch folder that
# holds in/<sample images> and w.npy, so that no absolute path enters a report.
_RUN = ["run", "in/scene.png", "-q", "--out"]
CASES: list[tuple[str, list[str]]] = [
    ("readme-max", _RUN + ["o", "--pool", "max", "--size", "2", "--stride", "2"]),
    ("readme-avg", _RUN + ["o", "--pool", "avg", "--size", "3", "--stride", "2", "--padding", "1", "--no-count-include-pad"]),
    ("readme-bank", _RUN + ["o", "--filter", "sobel-x", "--filter", "sobel-y", "--activation", "relu", "--pool", "max"]),
    ("readme-lp", _RUN + ["o", "--filter", "none", "--pool", "lp", "--p", "2", "--size", "2"]),
    ("readme-conv", _RUN + ["o", "--kernel", "-1,0,1;-2,0,2;-1,0,1", "--conv-stride", "2", "--pool", "none"]),
    ("readme-median", _RUN + ["o", "--pool", "median", "--size", "3", "--stride", "1", "--padding", "1"]),
    ("readme-quantile", _RUN + ["o", "--pool", "quantile", "--q", "0.9"]),
    ("readme-mixed", _RUN + ["o", "--pool", "mixed", "--alpha", "0.3"]),
    ("readme-softpool", _RUN + ["o", "--pool", "softpool"]),
    ("readme-gem", _RUN + ["o", "--pool", "gem", "--p", "3"]),
    ("readme-fractional", _RUN + ["o", "--pool", "fractional", "--ratio", "0.7"]),
    ("readme-learned", _RUN + ["o", "--pool", "learned", "--weights", "w.npy"]),
    ("readme-stochastic", _RUN + ["o", "--pool", "stochastic", "--train", "--seed", "3"]),
    ("readme-stochastic-inference", _RUN + ["o", "--pool", "stochastic"]),
    ("pool-min", _RUN + ["o", "--pool", "min", "--size", "3", "--stride", "2", "--ceil-mode"]),
    ("pool-blurpool", _RUN + ["o", "--pool", "blurpool", "--size", "2"]),
    ("pool-blurpool-5", _RUN + ["o", "--pool", "blurpool", "--size", "3", "--stride", "2", "--padding", "1", "--blur-size", "5"]),
    ("pool-blur", _RUN + ["o", "--pool", "blur", "--size", "2"]),
    ("pool-aps", _RUN + ["o", "--pool", "aps", "--size", "2"]),
    ("pool-aps-blur3", _RUN + ["o", "--pool", "aps", "--size", "2", "--blur-size", "3"]),
    ("pool-avg-same", _RUN + ["o", "--pool", "avg", "--size", "3", "--stride", "2", "--padding", "same"]),
    ("pool-max-dilation", _RUN + ["o", "--pool", "max", "--size", "3", "--stride", "2", "--dilation", "2"]),
    ("pool-avg-divisor", _RUN + ["o", "--pool", "avg", "--size", "2", "--divisor-override", "3"]),
    ("filter-gaussian", _RUN + ["o", "--filter", "gaussian:sigma=2", "--boundary", "mirror", "--pool", "max"]),
    ("color-keep", _RUN + ["o", "--color", "keep", "--pool", "avg", "--filter", "none"]),
    ("preset-lenet5", _RUN + ["o", "--preset", "lenet5"]),
    ("preset-vgg", _RUN + ["o", "--preset", "vgg"]),
    ("preset-resnet-stem", _RUN + ["o", "--preset", "resnet-stem"]),
    ("preset-strided-conv", _RUN + ["o", "--preset", "strided-conv"]),
    ("preset-hierarchy", _RUN + ["o", "--preset", "hierarchy"]),
    ("readme-stack", _RUN + ["o", "--stack", "sobel | relu | max(3, stride=2, padding=1) | adaptive-avg(7)"]),
    ("stack-family", _RUN + ["o", "--stack", "sobel-x + sobel-y | abs | median(3) | gem(2, p=4) | global-avg"]),
    ("stack-adaptive-max", _RUN + ["o", "--stack", "laplace | adaptive-max(5x7) | global-max"]),
    ("config", _RUN + ["o", "--config", "stack.toml"]),
    ("folder", ["run", "in", "-q", "--out", "o", "--workers", "1"]),
    ("folder-invariance", ["invariance", "in", "-q", "--out", "o", "--workers", "1", "--shifts", "0:2",
                           "--compare", "max,avg"]),
    ("readme-invariance", ["invariance", "in/scene.png", "-q", "--out", "o", "--pool", "max", "--size", "2",
                           "--compare", "max,avg,blurpool,aps"]),
    ("readme-invariance-stack", ["invariance", "in/scene.png", "-q", "--out", "o", "--stack",
                                 "sobel | max(2) | max(2)", "--compare", "max,avg,blurpool,aps,blur",
                                 "--shifts", "0:5"]),
    ("invariance-family", ["invariance", "in/texture.png", "-q", "--out", "o", "--shifts", "0:3",
                           "--compare", "min,lp,median,mixed,softpool,gem,stochastic"]),
    # a 48x64 input: the montage enlarges its tiles (4x) and shades them before enlarging
    ("tiny-enlarged", ["run", "small/tiny.png", "-q", "--out", "o", "--stack", "sobel | max(2) | max(2)"]),
    ("tiny-enlarged-zoom", ["run", "small/tiny.png", "-q", "--out", "o", "--color", "keep", "--pool", "max",
                            "--zoom", "10,8,20,12"]),
    ("invariance-crop-grid", ["invariance", "in/shapes.png", "-q", "--out", "o", "--shifts", "0:2",
                              "--direction", "grid", "--shift-mode", "crop", "--compare", "max,blurpool"]),
]

_DROP_KEYS = {"seconds", "images_per_second", "fingerprint"}


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if k not in _DROP_KEYS}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def _digest_file(path: Path) -> str:
    h = hashlib.sha256()
    suffix = path.suffix.lower()
    if suffix == ".npy":
        a = np.load(path, allow_pickle=False)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    elif suffix == ".png":
        with Image.open(path) as im:
            h.update(f"{im.mode}{im.size}".encode())
            h.update(im.tobytes())
            if im.mode == "P":  # a gray montage: its palette too
                h.update(bytes(im.getpalette() or []))
    elif suffix == ".json":
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("out_dir") not in (None, "o") and not str(doc["out_dir"]).endswith("_png"):
            doc["out_dir"] = "<out>"
        h.update(json.dumps(_clean(doc), sort_keys=True).encode())
    elif suffix == ".csv":
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        drop = {i for i, name in enumerate(rows[0]) if name in _DROP_KEYS} if rows else set()
        for row in rows:
            h.update(json.dumps([c for i, c in enumerate(row) if i not in drop]).encode())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


def _scratch(root: Path) -> None:
    (root / "in").mkdir(parents=True)
    for name in SAMPLES:
        shutil.copy2(ROOT / "sample_images" / name, root / "in" / name)
    (root / "small").mkdir()
    with Image.open(ROOT / "sample_images" / "scene.png") as im:
        im.convert("RGB").crop((100, 60, 164, 108)).save(root / "small" / "tiny.png")
    w = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float64)
    np.save(root / "w.npy", w)
    (root / "stack.toml").write_text(
        '[[stage]]\nop = ["sobel-x", "sobel-y"]\n\n[[stage]]\nop = "relu"\n\n'
        '[[stage]]\nop = "avg"\nsize = 3\nstride = 2\npadding = 1\n',
        encoding="utf-8",
    )


def run_case(argv: list[str], scratch: Path) -> dict[str, str]:
    """Run one command in ``scratch`` (a fresh ``o/`` each time); digest every file it wrote."""
    from typer.testing import CliRunner

    from poolcli.cli import app

    out = scratch / "o"
    shutil.rmtree(out, ignore_errors=True)
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        result = CliRunner().invoke(app, argv)
    finally:
        os.chdir(cwd)
    digests = {"exit_code": str(result.exit_code)}
    if out.is_dir():
        for f in sorted(out.rglob("*")):
            if f.is_file():
                digests[f.relative_to(out).as_posix()] = _digest_file(f)
    return digests


def run_all(names: list[str] | None = None) -> dict[str, dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="poolcli-regression-") as tmp:
        scratch = Path(tmp)
        _scratch(scratch)
        return {name: run_case(argv, scratch) for name, argv in CASES if names is None or name in names}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help="write the manifest instead of comparing")
    args = ap.parse_args()
    got = run_all()
    if args.record:
        MANIFEST.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"recorded {sum(len(v) for v in got.values())} digests of {len(got)} cases in {MANIFEST}")
        return 0
    want = json.loads(MANIFEST.read_text(encoding="utf-8"))
    bad = 0
    for name in want:
        if got.get(name) != want[name]:
            bad += 1
            g, w = got.get(name, {}), want[name]
            diff = sorted(k for k in set(g) | set(w) if g.get(k) != w.get(k))
            print(f"DIFFERS {name}: {', '.join(diff)}")
    print(f"{len(want) - bad} of {len(want)} cases identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
