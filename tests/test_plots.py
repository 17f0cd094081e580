"""The invariance pictures (issue 12): fixed colours, bands and n, heat maps, skipped zero stages."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from poolcli.plots import PALETTE, difference_plot, invariance_plot, method_style  # noqa: E402


def records(inputs=("a.png", "b.png"), methods=("max", "avg"), shifts=((0, 0), (0, 1), (0, 2))):
    out = []
    for k, name in enumerate(inputs):
        for m, method in enumerate(methods):
            for stage in (1, 2):
                for dy, dx in shifts:
                    v = 0.0 if stage == 1 or (dy + dx) % 2 == 0 else 0.1 * (k + 1) * (m + 1)
                    out.append({"input": name, "method": method, "stage": stage, "stage_name": "sobel" if stage == 1
                                else method, "spec": "sobel" if stage == 1 else f"{method}(2)", "shift": [dy, dx],
                                "equiv_rel_l2": v})
    return out


def test_every_method_has_its_own_colour_and_variants_keep_it():
    assert len(set(PALETTE.values())) == len(PALETTE)
    for m in ("max", "avg", "min", "lp", "blurpool", "blur", "aps", "median", "quantile", "mixed", "softpool",
              "stochastic", "gem"):
        assert m in PALETTE
    methods = ["avg", "blurpool", "blurpool(peer=kornia)"]
    assert method_style("avg", methods) == method_style("avg", ["blurpool", "avg"])  # not the --compare order
    colour, style = method_style("blurpool(peer=kornia)", methods)
    assert colour == PALETTE["blurpool"] and style != "-"


def test_line_plot_and_grid_heat_map_are_pngs():
    one = Image.open(io.BytesIO(invariance_plot(records(), title="t")))
    grid = Image.open(io.BytesIO(invariance_plot(records(shifts=((0, 0), (0, 1), (1, 0), (1, 1))), title="t")))
    assert one.format == grid.format == "PNG" and one.width > 300 and grid.height > 200


def test_difference_plot():
    import numpy as np

    rows = [{"method": "max", "stage": "2 (max)", "shift": (0, 1), "error": 0.2, "fx": np.random.rand(20, 30),
             "diff": np.random.rand(20, 30)}]
    assert Image.open(io.BytesIO(difference_plot(rows, "x"))).format == "PNG"
    assert Image.open(io.BytesIO(difference_plot([], "x"))).format == "PNG"
