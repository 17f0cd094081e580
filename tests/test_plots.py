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


@pytest.mark.parametrize("shifts", [((0, 0), (0, 1), (0, 2)), ((0, 0), (0, 1), (1, 0), (1, 1))], ids=["line", "grid"])
def test_title_and_caption_stay_inside_a_one_panel_figure(monkeypatch, shifts):
    """One pooling stage makes a 3.8 inch wide figure: a long stack title and the caption ran off its edges."""
    import poolcli.plots as plots

    seen = []
    original = plots._png

    def capture(fig):
        renderer = fig.canvas.get_renderer()
        texts = [t for t in [fig._suptitle, *fig.texts] if t is not None and t.get_text()]
        seen.append([(t.get_text(), t.get_window_extent(renderer), fig.bbox) for t in texts])
        return original(fig)

    monkeypatch.setattr(plots, "_png", capture)
    recs = [r for r in records(inputs=("a_rather_long_file_name_for_a_picture.png", "b.png"), shifts=shifts)]
    title = "gaussian(sigma=2.0) | relu | max(size=3, stride=2, padding=1) (circular)"
    invariance_plot(recs, title=title)
    assert seen and len(seen[0]) >= 2
    for text, box, fig_box in seen[0]:
        assert box.x0 >= fig_box.x0 - 0.5 and box.x1 <= fig_box.x1 + 0.5, (text, box, fig_box)
    assert " ".join(" ".join(t.split()) for t, _, _ in seen[0]).count("every shift for every method") == 1
