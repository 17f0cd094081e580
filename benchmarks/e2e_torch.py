#!/usr/bin/env python
"""The PyTorch equivalent of ``poolcli run DIR --stack "sobel | max(2) | max(2)" --no-montage``.

For every PNG in DIR (sorted): PIL load (grayscale, float32 / 255) -> Sobel
gradient magnitude by ``torch.nn.functional.conv2d`` (x and y kernels as two
output channels, cross-correlation, replicate padding of 1 = scipy/poolcli
``reflect`` for a 3x3 kernel) -> ``max_pool2d(2)`` twice; each of the three
stages saved as ``.npy`` and as a min-max normalised 8-bit PNG, in the same
layout poolcli uses (``OUT/<name>_png/stage01_sobel.npy`` ...), so that
``benchmarks/bench.py`` can check the outputs against poolcli's.

Usage: python benchmarks/e2e_torch.py DIR OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
WEIGHT = torch.stack([SOBEL_X, SOBEL_X.T])[:, None]  # (2, 1, 3, 3): gx, gy


def to_uint8(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.clip(np.rint((a.astype(np.float64) - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)


def main(src: Path, out: Path) -> int:
    files = sorted(p for p in src.iterdir() if p.suffix.lower() == ".png")
    out.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        for path in files:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("L"), dtype=np.float32) / np.float32(255)
            x = torch.from_numpy(arr)[None, None]  # (1, 1, H, W)
            g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), WEIGHT)
            s1 = torch.hypot(g[:, :1], g[:, 1:])
            s2 = F.max_pool2d(s1, 2)
            s3 = F.max_pool2d(s2, 2)
            d = out / f"{path.stem}_png"
            d.mkdir(exist_ok=True)
            for i, (name, t) in enumerate((("sobel", s1), ("max", s2), ("max", s3)), start=1):
                a = t[0].numpy()  # (1, H, W)
                np.save(d / f"stage{i:02d}_{name}.npy", a)
                Image.fromarray(to_uint8(a[0])).save(d / f"stage{i:02d}_{name}_c0.png", compress_level=6)
    print(f"{len(files)} images")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
