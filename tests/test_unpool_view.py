"""Unpool maps stored as what they are, and large runs in bounded memory (issue 13).

* :class:`UnpoolView` serves ``unpool2d`` in bands of rows: every band, every
  channel, every sampled crop equals the dense map, for any pooling geometry
  (hypothesis, with ties, NaN and -inf); the int32 indices equal the int64 ones.
* What is made from a view (the ``.npy``, the gray levels of the PNG, the
  montage) equals what was made from the dense map, byte for byte.
* A whole ``poolcli run`` (a subprocess reporting its own peak RSS) stays under
  issue 13's ceiling: 4x the float32 input (all channels) + 100 MiB, with
  every output on (unpool and montage included).
"""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import SUBPROCESS_ENV
from poolcli import images
from poolcli.outputs import save_npy
from poolcli.pooling.torch_ops import UnpoolView, max_pool2d_with_indices, unpool2d


@st.composite
def pooled_cases(draw):
    c = draw(st.integers(1, 3))
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 4))
    p = draw(st.integers(0, k // 2))
    h = draw(st.integers(k, 23))
    w = draw(st.integers(k, 23))
    ceil = draw(st.booleans())
    levels = draw(st.sampled_from([3, 256]))  # few levels: many ties
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = (rng.integers(0, levels, (c, h, w)) / levels).astype(np.float32)
    specials = draw(st.lists(st.sampled_from([np.nan, -np.inf, np.inf, -0.0]), max_size=3))
    for v in specials:
        x[rng.integers(c), rng.integers(h), rng.integers(w)] = v
    return x, k, s, p, ceil


@settings(max_examples=300)
@given(pooled_cases(), st.data())
def test_view_bands_equal_the_dense_unpool(case, data):
    x, k, s, p, ceil = case
    out, idx64 = max_pool2d_with_indices(x, k, s, p, 1, ceil)
    out32, idx32 = max_pool2d_with_indices(x, k, s, p, 1, ceil, int32=True)
    assert idx32.dtype == np.int32 and np.array_equal(idx32, idx64)
    assert np.array_equal(out32.view(np.uint32), out.view(np.uint32))
    h, w = x.shape[1:]
    dense = unpool2d(out, idx64, k, s, p, output_size=(h, w))
    view = UnpoolView(out32, idx32, k, s, p, 1, (h, w))
    assert view.shape == dense.shape
    np.testing.assert_array_equal(np.asarray(view), dense)
    r0 = data.draw(st.integers(0, h - 1))
    r1 = data.draw(st.integers(r0 + 1, h))
    np.testing.assert_array_equal(view.rows(r0, r1), dense[:, r0:r1])
    c = data.draw(st.integers(0, x.shape[0] - 1))
    np.testing.assert_array_equal(view[c][r0:r1], dense[c, r0:r1])
    rows = np.array(sorted(data.draw(st.lists(st.integers(0, h - 1), min_size=1, max_size=5))))
    cols = np.array(data.draw(st.lists(st.integers(0, w - 1), min_size=1, max_size=5)))
    np.testing.assert_array_equal(view[c][np.ix_(rows, cols)], dense[c][np.ix_(rows, cols)])


def _large_case(h: int = 2100, w: int = 2101):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, h, w)).astype(np.float32)
    x[1, 17, 23] = np.nan
    out, idx = max_pool2d_with_indices(x, 3, 2, 1, 1, True, int32=True)
    return x, out, idx, UnpoolView(out, idx, 3, 2, 1, 1, (h, w)), unpool2d(out, idx, 3, 2, 1, output_size=(h, w))


@pytest.mark.parametrize("h,w", [(40, 33), (2100, 2101)])  # the whole-map and the banded paths of to_uint8
def test_gray_levels_npy_and_montage_from_a_view_equal_the_dense_ones(tmp_path, h, w):
    x, out, idx, view, dense = _large_case(h, w)
    for c in range(2):
        np.testing.assert_array_equal(images.to_uint8(view[c]), images.to_uint8(dense[c]))
    save_npy(tmp_path / "v.npy", view)
    buf = io.BytesIO()
    np.save(buf, dense, allow_pickle=False)
    assert (tmp_path / "v.npy").read_bytes() == buf.getvalue()
    panel = ("1: unpool", None, {"unpool": True})
    a = images.montage(x, [(panel[0], view, panel[2])])
    b = images.montage(x, [(panel[0], dense, panel[2])])
    assert a == b


def _peak_rss_mib(tmp_path, *args: str) -> float:
    # VmHWM, the peak RSS of this process's memory since its exec (getrusage's ru_maxrss would keep the
    # pytest parent's size from the fork: Linux preserves it across execve)
    code = ("import re, sys\nfrom poolcli.cli import main\n"
            f"sys.argv = ['poolcli', 'run', *{list(args)!r}, '--out', {str(tmp_path / 'o')!r}, '-q']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "status = open('/proc/self/status').read()\n"
            "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) / 1024)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert res.returncode == 0, res.stderr
    return float(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("shape,mode,extra", [
    ((4096, 4096), "L", ["--pool", "max", "--size", "2", "--stride", "2"]),
    ((2048, 2048, 3), "RGB", ["--color", "keep"]),
    ((2048, 2048, 3), "RGB", ["--color", "keep", "--stack", "gaussian(sigma=2) | max(3, stride=2, padding=1) | avg(2) | max(2)"]),
])
def test_a_large_run_with_every_output_stays_under_4x_its_float32_input(tmp_path, shape, mode, extra):
    img = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8), mode).save(img, compress_level=1)
    f32_mib = np.prod(shape) * 4 / 2**20
    peak = _peak_rss_mib(tmp_path, str(img), *extra)
    assert peak < 4 * f32_mib + 100, f"peak {peak:.0f} MiB for a {f32_mib:.0f} MiB float32 input"
    assert len(list((tmp_path / "o").rglob("*_unpool_c*.png"))) >= 1 and list((tmp_path / "o").rglob("montage.png"))
