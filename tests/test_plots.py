"""The invariance pictures (issue 12): fixed colours, bands and n, heat maps, skipped zero stages."""

from __future__ import annotations

import io

import numpy as np
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


METHODS_15 = ["max", "avg", "min", "lp(p=2.0)", "blurpool", "blur", "aps", "median", "quantile(q=0.9)", "mixed",
              "softpool", "stochastic", "gem", "blurpool(peer=kornia)", "aps(criterion=l1)"]


def many(methods, n_stages, inputs=("a.png",), shifts=tuple((0, dx) for dx in range(5))):
    """Records of ``methods`` over ``n_stages`` pooling stages after a filter that is exact at every shift."""
    out = []
    for k, name in enumerate(inputs):
        for m, method in enumerate(methods):
            for stage in range(1, n_stages + 2):
                for dy, dx in shifts:
                    v = 0.0 if stage == 1 or dx % 2 == 0 else 0.05 + 0.04 * m + 0.01 * k + 0.02 * stage
                    out.append({"input": name, "method": method, "stage": stage, "stage_name": "sobel" if stage == 1
                                else method, "spec": "sobel" if stage == 1 else f"{method}(2)", "shift": [dy, dx],
                                "equiv_rel_l2": v})
    return out


def _figure_of(monkeypatch, recs, **kw):
    """(figure, renderer) of the invariance plot of ``recs``, as it is when saved."""
    import poolcli.plots as plots

    seen = []
    original = plots._png

    def capture(fig):
        fig.canvas.draw()
        seen.append((fig, fig.canvas.get_renderer()))
        return original(fig)

    monkeypatch.setattr(plots, "_png", capture)
    invariance_plot(recs, **kw)
    (got,) = seen
    return got


@pytest.mark.parametrize("n_methods", [1, 4, 13, 15])
@pytest.mark.parametrize("n_stages", [1, 2, 6])
@pytest.mark.parametrize("inputs", [("a.png",), ("a.png", "b.png", "c.png")], ids=["one", "three"])
def test_the_legend_never_covers_a_panel(monkeypatch, n_methods, n_stages, inputs):
    """The legend sat inside the first panel, over the curves (13 methods) or the avg band (README's picture):
    it is outside every panel, inside the figure, clear of the title and caption, and names every method."""
    methods = METHODS_15[:n_methods]
    fig, renderer = _figure_of(monkeypatch, many(methods, n_stages, inputs), title="sobel | max(2)")
    legends = [a.get_legend() for a in fig.axes if a.get_legend() is not None] + list(fig.legends)
    assert len(legends) == 1
    (legend,) = legends
    box = legend.get_window_extent(renderer)
    assert [t.get_text() for t in legend.get_texts()] == methods
    panels = [a for a in fig.axes if a.axison]
    assert len(panels) == n_stages
    for ax in panels:  # the panel with its tick labels, axis labels and title
        panel = ax.get_tightbbox(renderer, bbox_extra_artists=[])
        assert not box.overlaps(panel), (ax.get_title(), box, panel)
    for text in [fig._suptitle, *fig.texts]:
        if text is not None and text.get_text():
            assert not box.overlaps(text.get_window_extent(renderer)), text.get_text()
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1
    # a long legend is laid out in columns rather than growing past the panels
    assert box.height <= max(a.get_window_extent(renderer).height for a in panels) * (-(-n_stages // 4)) + 60


@pytest.mark.parametrize("n_stages, grid", [(1, (1, 1)), (4, (1, 4)), (5, (2, 3)), (6, (2, 3)), (7, (2, 4)),
                                             (9, (3, 3)), (10, (3, 4))])
def test_stage_panels_fill_their_rows_evenly(monkeypatch, n_stages, grid):
    """At most four panels a row, the rows filled evenly: VGG's six drawn stages are 3 + 3 panels (they were
    4 + 2, with two empty slots beside the second row)."""
    fig, _ = _figure_of(monkeypatch, many(["max", "avg"], n_stages))
    panels = [a for a in fig.axes if a.get_title()]
    assert len(panels) == n_stages
    rows = sorted({round(a.get_position().y0, 3) for a in panels}, reverse=True)
    cols = sorted({round(a.get_position().x0, 3) for a in panels})
    assert (len(rows), len(cols)) == grid
    assert len([a for a in fig.axes if not a.axison]) == grid[0] * grid[1] - n_stages  # the empty slots


def test_the_figure_grows_to_hold_the_legend_the_panels_keep_their_width(monkeypatch):
    one, r1 = _figure_of(monkeypatch, many(["max"], 1))
    monkeypatch.undo()
    lots, r2 = _figure_of(monkeypatch, many(METHODS_15, 1))
    assert lots.get_figwidth() > one.get_figwidth()
    (a1,), (a2,) = [[a for a in f.axes if a.axison] for f in (one, lots)]
    assert abs(a1.get_window_extent(r1).width - a2.get_window_extent(r2).width) < 40


def test_every_line_has_its_colour_and_marker_pair(monkeypatch):
    from poolcli.plots import MARKERS

    assert len(set(MARKERS.values())) == len(MARKERS) and set(MARKERS) == set(PALETTE)
    fig, _ = _figure_of(monkeypatch, many(METHODS_15, 1))
    (ax,) = [a for a in fig.axes if a.axison]
    looks = [(line.get_color(), line.get_marker(), line.get_linestyle()) for line in ax.get_lines()]
    assert len(looks) == 15 and len(set(looks)) == 15
    assert len({m for _, m, _ in looks}) == 13  # a variant keeps its base method's marker, and breaks its line


def _shown_ticks(ax) -> list[float]:
    lo, hi = sorted(ax.get_xlim())
    return [t for t in ax.get_xticks() if lo <= t <= hi]


@pytest.mark.parametrize("shifts", ["0:2", "0:3", "1,2,3", "0:8:2", "0:5", "-2:2"])
@pytest.mark.parametrize("n_stages", [1, 6])
def test_the_shift_axis_has_ticks_at_whole_pixels_only(monkeypatch, shifts, n_stages):
    """--preset vgg (narrow panels) or a folder put ticks at 0.5, 1.5, 2.5 px: shifts that cannot be."""
    from poolcli.invariance import parse_shifts

    measured = parse_shifts(shifts)
    fig, _ = _figure_of(monkeypatch, many(["max", "avg"], n_stages, ("a.png", "b.png"),
                                          shifts=tuple((0, dx) for dx in measured)))
    for ax in (a for a in fig.axes if a.axison):
        assert _shown_ticks(ax) == sorted(measured)
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert labels and all(label.lstrip("−-").isdigit() for label in labels), labels


def test_many_shifts_get_integer_ticks_too(monkeypatch):
    fig, _ = _figure_of(monkeypatch, many(["max"], 6, shifts=tuple((0, dx) for dx in range(0, 31))))
    for ax in (a for a in fig.axes if a.axison):
        ticks = _shown_ticks(ax)
        assert 2 <= len(ticks) <= 12 and all(float(t).is_integer() for t in ticks), ticks


def test_the_grid_heat_map_has_whole_pixel_ticks(monkeypatch):
    import poolcli.plots as plots

    seen = []
    monkeypatch.setattr(plots, "_png", lambda fig: seen.append(fig) or b"")
    shifts = tuple((dy, dx) for dy in range(3) for dx in range(4))
    invariance_plot(many(["max", "avg"], 2, shifts=shifts))
    (fig,) = seen
    panels = [a for a in fig.axes if a.get_images()]
    assert len(panels) == 4
    for ax in panels:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]


def _legend_texts(monkeypatch, recs) -> list[str]:
    fig, _ = _figure_of(monkeypatch, recs)
    (legend,) = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    return [t.get_text() for t in legend.get_texts()]


def _lines(values: dict[str, list[float]], n_stages: int = 1) -> list[dict]:
    """Records with the given equiv_rel_l2 per method at shifts 0, 1, 2, ... (every pooling stage alike)."""
    out = []
    for method, vs in values.items():
        for stage in range(1, n_stages + 2):
            for dx, v in enumerate(vs):
                out.append({"input": "a.png", "method": method, "stage": stage, "shift": [0, dx],
                            "stage_name": "sobel" if stage == 1 else method, "spec": "sobel" if stage == 1
                            else method, "equiv_rel_l2": 0.0 if stage == 1 else v})
    return out


def test_a_line_covered_by_a_later_one_says_so_in_the_legend(monkeypatch):
    """blurpool and blurpool(peer=kornia) give the same numbers with circular shifts, mixed and gem nearly
    the same on scene.png: the later line is drawn over the earlier, which could not be seen at all."""
    texts = _legend_texts(monkeypatch, _lines({"max": [0, 0.4, 0, 0.4], "blurpool": [0, 0.2, 0, 0.2],
                                               "blurpool(peer=kornia)": [0, 0.2, 0, 0.2], "aps": [0, 0, 0, 0]}))
    assert texts == ["max", "blurpool (under blurpool(peer=kornia))", "blurpool(peer=kornia)", "aps"]
    monkeypatch.undo()
    # under one line at some shifts and another at the others: both named, the one covering more first
    texts = _legend_texts(monkeypatch, _lines({"mixed": [0, 0.3, 0.1, 0.3], "gem": [0, 0.3, 0.5, 0.3001],
                                               "max": [0, 0.6, 0.1, 0.6]}))
    assert texts == ["mixed (under gem, max)", "gem", "max"]


def test_lines_apart_somewhere_are_not_called_covered(monkeypatch):
    texts = _legend_texts(monkeypatch, _lines({"max": [0, 0.3, 0, 0.3], "avg": [0, 0.3, 0, 0.33],
                                               "aps": [0, 0, 0, 0]}, n_stages=2))
    assert texts == ["max", "avg", "aps"]  # avg is 0.03 above max at shift 3; aps is 0 but the others are not
    monkeypatch.undo()
    texts = _legend_texts(monkeypatch, _lines({"max": [0, 0.3], "avg": [0, 0.3]}) +
                          [r for r in _lines({"max": [0, 0.5], "avg": [0, 0.2]}, n_stages=2) if r["stage"] == 3])
    assert texts == ["max", "avg"]  # the same in stage 2, apart in stage 3


def test_captions_name_the_band_only_where_one_is_drawn():
    """Line plots say which band they draw; the heat maps of the mean draw none and say so without a
    dangling 'mean over n=3 images;'."""
    from poolcli.plots import _caption

    facts = {"n": 3, "worst": None, "zero": [], "stages": []}
    assert _caption(facts, "min-max") == "mean over n=3 images; band: min-max over the images"
    assert _caption(facts, None) == "mean over n=3 images"
    assert _caption({**facts, "n": 1}, None) == ""


def _long_caption_records(methods, shifts):
    """Records whose caption is long: five stages at 0 everywhere (named in 'not drawn: ...'), one pooling."""
    out = []
    for method in methods:
        for stage in range(1, 7):
            for dy, dx in shifts:
                v = 0.0 if stage < 6 or (dy + dx) % 2 == 0 else 0.1
                spec = "sobel-x(mode=wrap) + sobel-y(mode=wrap)" if stage == 1 else \
                    ("gaussian(sigma=1.5, mode=wrap)" if stage % 2 else "relu") if stage < 6 else f"{method}(2)"
                out.append({"input": "a.png", "method": method, "stage": stage, "stage_name": spec, "spec": spec,
                            "shift": [dy, dx], "equiv_rel_l2": v})
    return out


@pytest.mark.parametrize("methods", [("max",), ("max", "avg", "blurpool", "aps")])
@pytest.mark.parametrize("shifts", [((0, 0), (0, 1), (0, 2)), ((0, 0), (0, 1), (1, 0), (1, 1))], ids=["line", "grid"])
def test_no_text_runs_off_the_saved_png(methods, shifts):
    """Measured in the PNG as saved (110 dpi): text does not scale exactly with the dpi, and a caption wrapped
    to the figure's width at 100 dpi was cut at the right edge of the file (a one-method grid)."""
    png = Image.open(io.BytesIO(invariance_plot(_long_caption_records(methods, shifts), title="t")))
    ink = np.asarray(png.convert("L")) < 200
    cols = np.flatnonzero(ink.any(axis=0))
    rows = np.flatnonzero(ink.any(axis=1))
    assert cols.max() < png.width - 2 and rows.max() < png.height - 2
    assert cols.min() > 1 and rows.min() > 1


def test_grid_heat_maps_put_methods_side_by_side():
    """Over (dy, dx): one column per method (to compare them), one row per stage; the caption below."""
    shifts = ((0, 0), (0, 1), (1, 0), (1, 1))
    wide = Image.open(io.BytesIO(invariance_plot(records(methods=("max", "avg", "blurpool", "aps"), shifts=shifts))))
    assert wide.width > 2 * wide.height
    recs = [r for r in _long_caption_records(("max", "avg"), shifts)]
    for r in recs:
        if r["stage"] < 6 and (r["shift"][0] + r["shift"][1]) % 2:
            r["equiv_rel_l2"] = 0.05  # every stage drawn: six rows
    tall = Image.open(io.BytesIO(invariance_plot(recs)))
    assert tall.height > 2 * tall.width


def test_one_method_far_above_the_rest_does_not_flatten_them(monkeypatch):
    """13 methods on gradient.png: min reached 7.3 and the other twelve (0-0.7) lay along the zero line. The
    y-axis now holds the others, curves and bands whole; min leaves the panel at the top, marked there with
    its value, and the legend says so."""
    values = {"max": [0, 0.5, 0, 0.5], "avg": [0, 0.69, 0, 0.69], "min": [0, 7.3, 0, 7.1], "blurpool": [0, 0.4, 0, 0.4],
              "aps": [0, 0, 0, 0]}
    recs = _lines(values, n_stages=2)
    fig, _ = _figure_of(monkeypatch, recs)
    panels = [a for a in fig.axes if a.axison]
    (legend,) = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    assert [t.get_text() for t in legend.get_texts()] == ["max", "avg", "min (off scale: up to 7.3)", "blurpool", "aps"]
    for ax in panels:
        lo, hi = ax.get_ylim()
        assert 0.69 < hi < 1.0 and lo <= 0  # the others whole, using the panel's height
        marks = [t.get_text() for t in ax.texts]
        assert marks == ["\u2191 min 7.3"], marks  # at its highest point, once per panel
        (mark,) = ax.texts
        assert mark.xy[0] == 1  # the shift of that point
    # several images: the bands of the others stay inside; min's mark is its mean curve's peak
    monkeypatch.undo()
    two = recs + [{**r, "input": "b.png", "equiv_rel_l2": r["equiv_rel_l2"] * (0.5 if r["method"] == "min" else 1.2)}
                  for r in recs]
    fig, _ = _figure_of(monkeypatch, two)
    for ax in [a for a in fig.axes if a.axison]:
        assert ax.get_ylim()[1] > 0.69 * 1.2  # avg's band top (b.png)
        assert [t.get_text() for t in ax.texts] == [f"\u2191 min {(7.3 + 3.65) / 2:.3g}"]


@pytest.mark.parametrize("values", [
    {"max": [0, 0.5, 0, 0.5], "min": [0, 7.3, 0, 7.3]},                          # two methods: both drawn whole
    {"max": [0, 0.5, 0, 0.5], "avg": [0, 0.7, 0, 0.7], "blurpool": [0, 0.3, 0, 0.3]},  # no outlier
    {"max": [0, 0.5, 0, 0.5], "min": [0, 7.3, 0, 7.3], "lp": [0, 6.0, 0, 6.0], "aps": [0, 0, 0, 0]},  # half high
])
def test_the_axis_holds_every_curve_when_no_method_is_an_outlier(monkeypatch, values):
    fig, _ = _figure_of(monkeypatch, _lines(values))
    (ax,) = [a for a in fig.axes if a.axison]
    assert ax.get_ylim()[1] >= max(max(v) for v in values.values())
    assert not ax.texts
    (legend,) = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    assert not any("off scale" in t.get_text() for t in legend.get_texts())


def test_the_heat_maps_scale_to_the_methods_that_are_not_outliers(monkeypatch):
    import poolcli.plots as plots

    shifts = ((0, 0), (0, 1), (1, 0), (1, 1))
    recs = []
    for method, v in {"max": 0.5, "avg": 0.7, "min": 9.0, "aps": 0.0}.items():
        for dy, dx in shifts:
            recs.append({"input": "a.png", "method": method, "stage": 2, "stage_name": method, "spec": method,
                         "shift": [dy, dx], "equiv_rel_l2": 0.0 if (dy, dx) == (0, 0) else v})
    seen = []
    original = plots._png
    monkeypatch.setattr(plots, "_png", lambda fig: seen.append(fig) or original(fig))
    invariance_plot(recs)
    (fig,) = seen
    heat = [a for a in fig.axes if a.images]
    assert {a.images[0].get_clim() for a in heat} == {(0, 0.7)}  # avg's peak sets the colour scale
    titles = [a.get_title() for a in heat]
    assert titles[2] == "min, stage 2\n(off scale: up to 9)" and "off scale" not in " ".join(titles[:2] + titles[3:])
    (bar,) = [a.images[0].colorbar for a in heat if a.images[0].colorbar is not None]
    assert bar.extend == "max"  # the arrow: min's cells are beyond it


def test_difference_colours_are_set_by_the_interior_and_clip_with_an_arrow():
    """On a real photo the difference picture was black: a few strong pixels (and a circular shift's seam on
    the map's edge) set the scale. The colours stop at the 99.5th percentile of the interior."""
    from poolcli.plots import _clip_range

    rng = np.random.default_rng(0)
    diff = rng.random((200, 200)) * 0.1
    diff[:, -1] = 5.0  # the seam: the last column
    diff[100, 100] = 3.0  # one hot pixel inside
    lo, hi, clipped = _clip_range(diff, low=False)
    assert lo == 0 and 0.09 < hi < 0.1 and clipped  # the 99.5th percentile of the inside, not 5 or 3
    fx = rng.random((200, 200))
    fx[0, :] = -9.0
    lo, hi, _ = _clip_range(fx, low=True)
    assert 0 < lo < 0.01 and 0.99 < hi < 1  # the edge row's -9 does not set black
    # two values (a checkerboard's map), tiny maps, NaN, nothing finite: min to max, no arrow
    assert _clip_range(np.kron(np.eye(2), np.ones((20, 20))), low=True) == (0.0, 1.0, False)
    assert _clip_range(np.array([[0.0, 0.5], [2.0, 1.0]]), low=False) == (0.0, 2.0, False)
    assert _clip_range(np.array([[np.nan, 1.0], [np.inf, 3.0]]), low=True) == (1.0, 3.0, False)
    assert _clip_range(np.full((3, 3), np.nan), low=False) == (0.0, 1.0, False)
    assert _clip_range(np.zeros((30, 30)), low=False) == (0.0, 1.0, False)  # all zero: a span, drawn black


def test_difference_plot_draws_the_clipped_scale_and_says_so(monkeypatch):
    import poolcli.plots as plots

    rng = np.random.default_rng(1)
    diff = rng.random((100, 100)) * 0.1
    diff[50, 50] = 4.0
    rows = [{"method": "max", "stage": "2 (max)", "shift": (0, 1), "error": 0.4, "fx": rng.random((100, 100)),
             "diff": diff, "reduced": 4},
            {"method": "aps", "stage": "2 (aps)", "shift": (0, 1), "error": 0.01, "fx": rng.random((100, 100)),
             "diff": np.kron(np.eye(2), np.ones((50, 50))), "reduced": 4}]
    seen = []
    original = plots._png
    monkeypatch.setattr(plots, "_png", lambda fig: seen.append(fig) or original(fig))
    difference_plot(rows, "t")
    (fig,) = seen
    images = [a.images[0] for a in fig.axes if a.images]
    assert len(images) == 4
    assert images[1].get_clim()[1] < 0.1 and images[1].colorbar.extend == "max"
    assert images[3].get_clim() == (0, 1.0) and images[3].colorbar.extend == "neither"
    caption = " ".join(" ".join(t.get_text() for t in fig.texts).split())
    assert "reduced by 4 per side" in caption and "block maximum" in caption and "99.5th" in caption


def test_difference_maps_of_a_large_input_are_reduced_keeping_the_largest_difference(tmp_path, monkeypatch):
    """A 1400x1400 input: its stage-2 maps (700x700) are drawn at most 320 pixels a side, the differences by
    their block maximum (the largest stays), f(x) by the block mean."""
    from PIL import Image

    from poolcli.batch import InputItem
    from poolcli.jobs.invariance import InvarianceJob, difference_rows, measure_invariance
    from poolcli.plots import DIFF_SIDE
    from poolcli.stack import parse_stack

    rng = np.random.default_rng(2)
    path = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 256, (1400, 1400), dtype=np.uint8)).save(path)
    job = InvarianceJob(parse_stack("sobel | max(2)"), ((0, 0), (0, 1)), methods=("max",))
    item = InputItem(path, tmp_path / "o")
    records = measure_invariance(item, job)[0]
    (row,) = difference_rows(item, job, records)
    assert row["reduced"] == 3 and max(row["fx"].shape) <= DIFF_SIDE and row["diff"].shape == row["fx"].shape
    import poolcli.plots as plots

    monkeypatch.setattr(plots, "DIFF_SIDE", 10**6)  # the maps as they are
    (whole,) = difference_rows(item, job, records)
    assert whole["reduced"] == 1 and whole["fx"].shape == (700, 700)
    assert row["diff"].max() == whole["diff"].max() > 0  # the strongest difference is still drawn
    assert row["diff"][0, 0] == whole["diff"][:3, :3].max()  # block maximum
    assert row["fx"][0, 0] == pytest.approx(whole["fx"][:3, :3].astype(np.float64).mean(), rel=1e-12)  # block mean


def test_stages_without_any_value_are_not_called_error_free(monkeypatch):
    """--nan propagate on an image with NaN: every equiv_rel_l2 is None (not computable). The caption said
    'error 0 at every shift for every method' and the difference picture too."""
    import poolcli.plots as plots
    from poolcli.plots import _caption, _facts

    recs = [{**r, "equiv_rel_l2": None} for r in records(inputs=("a.png",))]
    f = _facts(recs)
    assert f["zero"] == [] and f["unmeasured"] == [1, 2]
    text = _caption(f, None)
    assert "no value: stage 1" in text and "error 0" not in text
    seen = []
    original = plots._png
    monkeypatch.setattr(plots, "_png", lambda fig: seen.append(fig) or original(fig))
    invariance_plot(recs)
    (fig,) = seen
    (panel,) = [a for a in fig.axes if a.axison]
    assert [t.get_text() for t in panel.texts] == ["no value at any shift\n(NaN or infinite values in the maps)"]
    # a stage measured as 0 everywhere is still 'error 0'; one with values is drawn
    mixed = [{**r, "equiv_rel_l2": None} if r["stage"] == 2 and r["method"] == "avg" else r
             for r in records(inputs=("a.png",))]
    f = _facts(mixed)
    assert f["zero"] == [1] and f["unmeasured"] == []
    seen.clear()
    difference_plot([], "t", empty="no error could be computed: NaN or infinite values in the maps")
    (fig,) = seen
    assert "no error could be computed: NaN or infinite values in the maps" in [t.get_text() for t in fig.texts]
    assert not any("error 0" in t.get_text() for t in fig.texts)


def test_a_nan_image_writes_its_pictures(tmp_path):
    """Through the CLI: a float TIFF with NaN, --nan propagate (every metric None): both pictures written."""
    from PIL import Image
    from typer.testing import CliRunner

    from poolcli.cli import app

    a = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    a[10:12, 10:12] = np.nan
    Image.fromarray(a, mode="F").save(tmp_path / "nan.tif")
    r = CliRunner().invoke(app, ["invariance", str(tmp_path / "nan.tif"), "--nan", "propagate", "--compare",
                                 "max,aps", "--shifts", "0:2", "-q", "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "invariance.png").is_file() and (tmp_path / "o" / "invariance-maps" / "nan_tif.png").is_file()


@pytest.mark.parametrize("shape", [(500, 5), (5, 500), (100, 150)], ids=["tall", "wide", "photo"])
def test_no_text_of_the_difference_picture_runs_off_it(shape):
    """Above a narrow map (a 2000x40 input) the difference panel's title ran past the figure's right edge."""
    rng = np.random.default_rng(3)
    rows = [{"method": m, "stage": "2 (max)", "shift": (0, 1), "error": 0.243, "fx": rng.random(shape),
             "diff": rng.random(shape), "reduced": 4} for m in ("max", "blurpool(peer=kornia)")]
    png = Image.open(io.BytesIO(difference_plot(rows, "/a/rather/long/path/to/a/picture.png: where a shift changes "
                                                      "the map (circular)")))
    ink = np.asarray(png.convert("L")) < 200
    cols = np.flatnonzero(ink.any(axis=0))
    rows_ = np.flatnonzero(ink.any(axis=1))
    assert cols.min() > 1 and cols.max() < png.width - 2, (cols.min(), cols.max(), png.width)
    assert rows_.min() > 1 and rows_.max() < png.height - 2
