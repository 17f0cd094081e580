"""The invariance pictures (matplotlib, the optional extra ``poolcli[plot]``).

What this module knows: how the records of an ``invariance`` run look as
figures (PNG bytes), the fixed colour of each pooling method, and whether
matplotlib is installed. Imports matplotlib (and NumPy) lazily and nothing
from poolcli; :mod:`poolcli.jobs.invariance` writes the files.
``PLOT_HINT`` contains ``[plot]``: print it as plain text, not Rich markup.

The palette (every picture, whatever the order of ``--compare``): max
black-blue, avg orange, min grey, lp olive, blurpool green, blur light green,
aps red, median purple, quantile pink, mixed brown, softpool cyan, stochastic
gold, gem navy. A method with arguments (``blurpool(peer=kornia)``) takes its
base method's colour and a dashed, dotted or dash-dot line. Each method also
has its own marker (:data:`MARKERS`), so that lines of similar colours (max and
gem, blurpool and blur) stay apart when many methods are compared.

The legend of the line plot is outside the panels, to the right of them (the
figure is widened to hold it), in as many columns as its height needs: it never
covers a curve or a band. A line that lies under later-drawn ones everywhere
(nearly equal values, e.g. ``mixed`` and ``gem``) is named so in the legend:
``mixed (under gem)``.
"""

from __future__ import annotations

import io
from typing import Any

PLOT_HINT = "install the plot extra for invariance.png: pip install 'poolcli[plot]'"

#: One colour per pooling method (Tableau-like, colour-blind aware where possible).
PALETTE = {
    "max": "#1f3b73", "avg": "#ff7f0e", "min": "#7f7f7f", "lp": "#bcbd22", "blurpool": "#2ca02c",
    "blur": "#98df8a", "aps": "#d62728", "median": "#9467bd", "quantile": "#e377c2", "mixed": "#8c564b",
    "softpool": "#17becf", "stochastic": "#c9a100", "gem": "#000080",
}
OTHER = "#444444"
VARIANT_STYLES = ("--", ":", "-.")
#: One marker per pooling method, the same in every picture (a variant keeps its base method's).
MARKERS = {
    "max": "o", "avg": "s", "min": "v", "lp": "^", "blurpool": "D", "blur": "P", "aps": "X", "median": "<",
    "quantile": ">", "mixed": "p", "softpool": "h", "stochastic": "*", "gem": "d",
}


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def method_style(method: str, methods: list[str]) -> tuple[str, str]:
    """(colour, line style) of ``method``: its base method's colour; a variant with arguments a broken line.

    >>> method_style("avg", ["max", "avg"]), method_style("blurpool(peer=kornia)", ["blurpool", "blurpool(peer=kornia)"])
    (('#ff7f0e', '-'), ('#2ca02c', '--'))
    """
    base = method.split("(", 1)[0].strip()
    colour = PALETTE.get(base, OTHER)
    if "(" not in method:
        return colour, "-"
    variants = sorted(m for m in methods if m.split("(", 1)[0].strip() == base and "(" in m)
    return colour, VARIANT_STYLES[variants.index(method) % len(VARIANT_STYLES)]


def method_marker(method: str) -> str:
    """The marker of ``method``'s base method (``"o"`` for one not in :data:`MARKERS`).

    >>> method_marker("max"), method_marker("blurpool(peer=kornia)"), method_marker("identity")
    ('o', 'D', 'o')
    """
    return MARKERS.get(method.split("(", 1)[0].strip(), "o")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_DPI = 110  # the PNGs' resolution


def _fit_width(fig, text: str, fontsize: float) -> str:
    """``text`` with each line broken between words where it would run past the figure's edge (a title
    or caption wider than a one-panel figure was cut off); a line that fits is left as it is."""
    from matplotlib.font_manager import FontProperties

    saved = fig.dpi
    fig.set_dpi(_DPI)  # measured at the resolution the PNG is saved at: text does not scale with dpi exactly
    try:
        renderer = fig.canvas.get_renderer()
        prop = FontProperties(size=fontsize)
        room = fig.bbox.width * 0.97
    finally:
        fig.set_dpi(saved)

    def width(s: str) -> float:
        return renderer.get_text_width_height_descent(s, prop, ismath=False)[0]

    out: list[str] = []
    for line in text.split("\n"):
        cur = ""
        for word in line.split(" "):
            candidate = word if not cur else cur + " " + word
            if cur and width(candidate) > room:
                out.append(cur)
                cur = word
            else:
                cur = candidate
        out.append(cur)
    return "\n".join(out)


def _bottom_caption(fig, text: str) -> float:
    """``text`` as a small caption at the figure's bottom left, wrapped to its width; the height it takes,
    as a fraction of the figure's (``tight_layout``'s ``rect`` bottom; 0 without text)."""
    if not text:
        return 0.0
    text = _fit_width(fig, text, 7)
    fig.text(0.01, 0.005, text, fontsize=7, va="bottom", color="#333")
    return (0.125 * (text.count("\n") + 1) + 0.04) / fig.get_figheight()


def _png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _facts(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Methods, stages, shifts, per-(method, stage, shift) values over inputs, the stages always at 0."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    stages: dict[int, str] = {}
    for r in records:
        stages.setdefault(r["stage"], r["spec"] if r["method"] == records[0]["method"] else r["stage_name"])
    shifts = list(dict.fromkeys(tuple(r["shift"]) for r in records))
    cell: dict[tuple, list[float]] = {}
    for r in records:
        if r["equiv_rel_l2"] is not None:
            cell.setdefault((r["method"], r["stage"], tuple(r["shift"])), []).append(r["equiv_rel_l2"])
    measured = {st for (_, st, _), vs in cell.items() if vs}
    zero = [s for s in stages if s in measured and all(v == 0 for (m, st, sh), vs in cell.items() if st == s
                                                       for v in vs)]
    unmeasured = [s for s in stages if s not in measured]  # no value at any shift: NaN or inf in the maps
    pooled = {s for s in stages if len({r["stage_name"] for r in records if r["stage"] == s}) > 1}
    worst = max((r for r in records if r["equiv_rel_l2"] is not None), key=lambda r: r["equiv_rel_l2"], default=None)
    inputs = list(dict.fromkeys(r.get("input", "") for r in records))
    ordered = sorted(stages.items())
    # the stages drawn: not those at 0 or with no value everywhere (the caption names them), else the last
    drawn = [(i, sp) for i, sp in ordered if i not in zero and i not in unmeasured] or ordered[-1:]
    return {"methods": methods, "stages": ordered, "shifts": shifts, "cell": cell, "zero": zero,
            "unmeasured": unmeasured, "drawn": drawn, "pooled": pooled, "worst": worst, "n": len(inputs)}


def _caption(f: dict[str, Any], band: str | None) -> str:
    lines = []
    if f["n"] > 1:
        lines.append(f"mean over n={f['n']} images" + (f"; band: {band} over the images" if band else ""))
    w = f["worst"]
    if w is not None and f["n"] > 1:
        lines.append(f"worst image: {w.get('input', '?')} ({w['method']}, stage {w['stage']}, shift "
                     f"{w['shift'][0]},{w['shift'][1]}: {w['equiv_rel_l2']:.3g})")
    if f.get("unmeasured"):
        names = ", ".join(f"{s} ({dict(f['stages'])[s]})" for s in f["unmeasured"])
        lines.append(f"no value: stage {names}: the error could not be computed at any shift (NaN or infinite "
                     "values in the maps)")
    if f["zero"]:
        names = ", ".join(f"{s} ({dict(f['stages'])[s]})" for s in f["zero"])
        lines.append(f"not drawn: stage {names}: error 0 at every shift for every method")
    return "\n".join(lines)


def invariance_plot(records: list[dict[str, Any]], title: str = "", band: str = "min-max") -> bytes:
    """PNG bytes: ``equiv_rel_l2`` against shift, one panel per stage, one line per method in its colour.

    Several images: the mean per method with a band (``"min-max"`` or ``"std"``: +-1 standard deviation)
    and n in the title. Shifts over a (dy, dx) grid: heat maps, see :func:`grid_plot`. Stages whose
    error is 0 at every shift are left out, and the caption says so.
    """
    import numpy as np

    f = _facts(records)
    if not _one_axis(f["shifts"]):
        return grid_plot(records, title)
    plt = _pyplot()
    stages = f["drawn"]
    xs = [max(dy, dx, key=abs) for dy, dx in f["shifts"]]
    rows = -(-len(stages) // 4)  # at most 4 panels a row, the rows filled evenly (6 stages: 3 + 3, not 4 + 2)
    cols = -(-len(stages) // rows)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.0 * rows + 0.6), squeeze=False, sharey=True)
    drawn: dict[str, list] = {m: [] for m in f["methods"]}  # per method: (panel, xs, curve, its top) for the y-scale
    for k, (index, spec) in enumerate(stages):
        ax = axes[k // cols][k % cols]
        for method in f["methods"]:
            colour, style = method_style(method, f["methods"])
            vals = [np.array(f["cell"].get((method, index, s), [np.nan]), dtype=float) for s in f["shifts"]]
            mean = np.array([v.mean() for v in vals])
            ax.plot(xs, mean, marker=method_marker(method), ms=4, color=colour, linestyle=style, label=method)
            top = mean
            if f["n"] > 1:
                if band == "std":
                    lo, hi = mean - [v.std() for v in vals], mean + [v.std() for v in vals]
                else:
                    lo, hi = [v.min() for v in vals], [v.max() for v in vals]
                ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, linewidth=0)
                top = np.fmax(mean, np.asarray(hi, dtype=float))
            drawn[method].append((ax, xs, mean, top))
        ax.set_title(f"stage {index}: " + ("pooling (per method)" if index in f["pooled"] else spec), fontsize=8)
        if index in f["unmeasured"]:  # drawn only when no stage has a value: say so where the lines would be
            ax.text(0.5, 0.5, "no value at any shift\n(NaN or infinite values in the maps)", transform=ax.transAxes,
                    ha="center", va="center", fontsize=8, color="#333")
        ax.set_xlabel("shift (px)")
        _integer_ticks(ax, xs)
        ax.grid(alpha=0.3)
    for k in range(len(stages), rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].set_ylabel("equiv_rel_l2" + (" (mean)" if f["n"] > 1 else ""))
    off = _scale_without_outliers(drawn)
    _legend_beside(axes[0][cols - 1], *axes[0][0].get_legend_handles_labels(), room=3.0 * rows - 0.5)
    head = title + (f"  (n={f['n']} images)" if f["n"] > 1 else "")
    if head:
        fig.suptitle(_fit_width(fig, head, 9), fontsize=9)
    caption = _caption(f, "+-1 std" if band == "std" else "min-max")
    bottom = _bottom_caption(fig, caption)
    fig.tight_layout(rect=(0, bottom, 1, 1))  # the legend counts: the panels leave it room on the right
    panels = [axes[k // cols][k % cols] for k in range(len(stages))]
    under = _hidden_under(panels, f["methods"])
    if under or off:  # say where a line is that another one covers everywhere (nearly equal values)
        legend = axes[0][cols - 1].get_legend()
        renderer = fig.canvas.get_renderer()
        before = legend.get_window_extent(renderer).width
        for text, method in zip(legend.get_texts(), f["methods"]):
            notes = [f"under {', '.join(under[method])}"] if method in under else []
            notes += [f"off scale: up to {off[method]:.3g}"] if method in off else []
            if notes:
                text.set_text(f"{method} ({'; '.join(notes)})")
        grow = legend.get_window_extent(renderer).width - before
        fig.set_size_inches(fig.get_figwidth() + grow / fig.dpi, fig.get_figheight())
        fig.tight_layout(rect=(0, bottom, 1, 1))
    return _png(fig)


def _outliers(peaks: dict[str, float], ratio: float = 3.0) -> list[str]:
    """The methods whose highest values are more than ``ratio`` times every other method's, when fewer than
    half of the methods are: on a scale that holds them, the others' curves would lie flat along the zero
    line (``min`` on a smooth image: 7.3 against 0.1-0.7 for the twelve others).

    >>> _outliers({"max": 0.5, "avg": 0.7, "min": 7.3, "aps": 0.0})
    ['min']
    >>> _outliers({"max": 0.5, "min": 7.3}), _outliers({"max": 0.5, "avg": 0.7, "aps": 0.2})
    ([], [])
    """
    order = sorted(((p, m) for m, p in peaks.items() if p == p), reverse=True)
    for i in range(len(order) - 1):
        if 2 * (i + 1) >= len(order):
            break
        if order[i + 1][0] > 0 and order[i][0] > ratio * order[i + 1][0]:
            return [m for _, m in order[: i + 1]]
    return []


def _scale_without_outliers(drawn: dict[str, list]) -> dict[str, float]:
    """Scale the (shared) y-axis to the methods that are not :func:`_outliers` (their curves and bands whole);
    the outliers' lines leave the panels at the top, and each panel marks where, in the method's colour:
    ``↑ min 7.31`` at the curve's highest point. ``drawn``: per method, (panel, xs, curve, top) with top the
    curve or its band's top. Returns ``{outlier: its curve's highest value}`` for the legend (empty: the axis
    as Matplotlib chose it)."""
    import numpy as np

    def peak(parts, which: int) -> float:
        return max((float(np.nanmax(p[which])) for p in parts if np.isfinite(p[which]).any()), default=float("nan"))

    peaks = {m: peak(parts, 3) for m, parts in drawn.items()}
    off = _outliers(peaks)
    if not off:
        return {}
    rest = [float(np.nanmin(p[2])) for m, parts in drawn.items() if m not in off for p in parts
            if np.isfinite(p[2]).any()]
    lo, hi = min(rest + [0.0]), max(p for m, p in peaks.items() if m not in off and p == p)
    span = hi - lo
    top = hi + 0.3 * span  # room above the others' curves for the marks
    axes = {id(p[0]): p[0] for parts in drawn.values() for p in parts}
    for ax in axes.values():  # shared: each panel the same
        ax.set_ylim(lo - 0.05 * span, top)
    for k, method in enumerate(off):
        colour = method_style(method, list(drawn))[0]
        for ax, xs, values, _ in drawn[method]:
            if not np.isfinite(values).any() or np.nanmax(values) <= top:
                continue
            j = int(np.nanargmax(values))
            ax.annotate(f"\u2191 {method} {values[j]:.3g}", xy=(xs[j], 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, -3 - 9 * k), textcoords="offset points", ha="center", va="top", fontsize=7,
                        color=colour, clip_on=True)
    return {m: peak(drawn[m], 2) for m in off}


def _hidden_under(panels: list, methods: list[str], tolerance_pt: float = 1.0) -> dict[str, list[str]]:
    """``{method: [methods drawn over it]}`` for each line that, at every point of every panel, lies within
    ``tolerance_pt`` (vertically) of a line drawn after it, i.e. on top: such a line cannot be seen. The
    covering methods are named greedily, the one covering the most points first (the topmost on ties).
    Lines are compared at their points; between two points they are straight, so they stay as close."""
    import numpy as np

    tol = tolerance_pt * panels[0].figure.dpi / 72
    n = len(methods)
    ys = []  # per panel: n x points, in pixels
    for ax in panels:
        lines = ax.get_lines()[:n]
        ys.append(np.array([ax.transData.transform(np.column_stack(line.get_data()))[:, 1] for line in lines]))
    y = np.concatenate(ys, axis=1)
    out: dict[str, list[str]] = {}
    for i in range(n):
        points = np.isfinite(y[i])
        if not points.any():
            continue
        close = np.abs(y[i + 1:] - y[i]) <= tol  # (later lines) x points; NaN compares False
        close &= points
        if not (close.any(axis=0) | ~points).all():
            continue
        left, names = points.copy(), []
        while left.any():
            counts = (close & left).sum(axis=1)
            j = len(counts) - 1 - int(np.argmax(counts[::-1]))  # the most points; the topmost on ties
            names.append(methods[i + 1 + j])
            left &= ~close[j]
        out[methods[i]] = names
    return out


def _integer_ticks(ax, xs: list[int]) -> None:
    """Ticks on the shift axis only at whole pixels: at each measured shift when there are few (a narrow panel
    put them at 0, 0.5, 1, 1.5 for shifts 0:2), else at integers Matplotlib chooses."""
    from matplotlib.ticker import MaxNLocator

    measured = sorted(set(xs))
    if len(measured) <= 12:
        ax.set_xticks(measured)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _legend_beside(ax, handles: list, labels: list[str], room: float):
    """The legend of ``handles`` outside ``ax`` (the last panel of the first row), to its right, top-aligned.

    The figure is widened by the legend's width, so that the panels keep theirs; the legend takes as many
    columns as it needs to be at most ``room`` inches tall (about the panels' height): it never lies over a
    panel, however many methods there are.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    for ncols in range(1, max(1, len(labels)) + 1):
        legend = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.04, 1.0), borderaxespad=0.0,
                           fontsize=8, ncols=ncols, frameon=False, handlelength=2.6, columnspacing=1.2)
        box = legend.get_window_extent(renderer)
        if box.height / fig.dpi <= room:
            break
    fig.set_size_inches(fig.get_figwidth() + box.width / fig.dpi + 0.25, fig.get_figheight())
    return legend


def _one_axis(shifts) -> bool:
    return all(dy == 0 for dy, _ in shifts) or all(dx == 0 for _, dx in shifts) or all(dy == dx for dy, dx in shifts)


def grid_plot(records: list[dict[str, Any]], title: str = "") -> bytes:
    """PNG bytes: heat maps of the mean ``equiv_rel_l2`` over (dy, dx), one column per method (side by side,
    to compare), one row per stage, one colour scale; laid out by matplotlib's constrained layout, so titles,
    tick labels and the colour bar never overlap."""
    import numpy as np

    f = _facts(records)
    plt = _pyplot()
    stages = f["drawn"]
    dys = sorted({dy for dy, _ in f["shifts"]})
    dxs = sorted({dx for _, dx in f["shifts"]})
    peaks = {m: max((float(np.mean(v)) for (mm, st, _), v in f["cell"].items() if mm == m and v and st in
                     dict(stages)), default=float("nan")) for m in f["methods"]}
    off = _outliers(peaks)  # drawn saturated (the colour bar's arrow), not setting the scale for all
    vmax = max((p for m, p in peaks.items() if m not in off and p == p), default=1.0) or 1.0
    rows, cols = len(stages), len(f["methods"])
    caption = _caption(f, None)  # heat maps of the mean: no band
    side = 1.9  # inches per heat map
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols + 1.4, side * rows + 0.9 + 0.16 * caption.count("\n")),
                             squeeze=False, layout="constrained")
    im = None
    for r, (index, spec) in enumerate(stages):
        for c, method in enumerate(f["methods"]):
            grid = np.full((len(dys), len(dxs)), np.nan)
            for (dy, dx) in f["shifts"]:
                vs = f["cell"].get((method, index, (dy, dx)))
                if vs:
                    grid[dys.index(dy), dxs.index(dx)] = float(np.mean(vs))
            ax = axes[r][c]
            im = ax.imshow(grid, cmap="magma", vmin=0, vmax=vmax, origin="upper")
            ax.set_xticks(range(len(dxs)), dxs, fontsize=6)
            ax.set_yticks(range(len(dys)), dys, fontsize=6)
            name = f"{method}, stage {index}" + (f"\n(off scale: up to {peaks[method]:.3g})" if method in off else "")
            ax.set_title(name, fontsize=7, color=method_style(method, f["methods"])[0])
            if c == 0:
                ax.set_ylabel("dy", fontsize=7)
            if r == rows - 1:
                ax.set_xlabel("dx", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.8, label="equiv_rel_l2" + (" (mean)" if f["n"] > 1 else ""),
                 extend="max" if off else "neither")
    head = title + (f"  (n={f['n']} images)" if f["n"] > 1 else "")
    if head:
        fig.suptitle(_fit_width(fig, head, 9), fontsize=9)
    if caption:  # as the figure's x label: the constrained layout keeps room for it below the heat maps
        fig.supxlabel(_fit_width(fig, caption, 7), x=0.01, ha="left", fontsize=7, color="#333")
    return _png(fig)


#: Pixels per side a map of the difference picture is drawn at, about (its panels are ~3 inches at 110 dpi):
#: larger maps are reduced first (block mean; the differences by their block maximum, so that a few strong
#: pixels stay visible instead of falling between the screen's pixels).
DIFF_SIDE = 320
CLIP_PERCENTILE = 99.5  #: colours of the difference picture stop here (the colour bar's arrow says so)


def _clip_range(values, low: bool):
    """``(vmin, vmax, clipped)``: the finite values' 0.5th (``low``; else 0) to 99.5th percentile, or their
    min to max where that leaves no span (a two-valued map) or they are few; ``clipped``: values lie above.
    The percentiles leave out a frame of 2% of each side: where a circular shift wraps the image round,
    its seam makes the map's edge rows and columns the brightest (a crop's border, too), and they set the
    scale for everything."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    h, w = v.shape[-2:]
    fy, fx = (max(1, h // 50) if h >= 20 else 0), (max(1, w // 50) if w >= 20 else 0)
    inner = v[..., fy : h - fy, fx : w - fx]
    v, inner = v[np.isfinite(v)], inner[np.isfinite(inner)]
    if not v.size:
        return 0.0, 1.0, False
    lo, hi = float(v.min()) if low else 0.0, float(v.max())
    if inner.size >= 100:
        plo, phi = np.percentile(inner, [100 - CLIP_PERCENTILE, CLIP_PERCENTILE])
        if phi > (plo if low else 0.0):
            return (float(plo) if low else 0.0), float(phi), bool(phi < hi)
    return lo, (hi if hi > lo else lo + 1.0), False


def difference_plot(rows: list[dict[str, Any]], title: str = "",
                    empty: str = "error 0 at every shift for every method") -> bytes:
    """PNG bytes: per method, ``f(x)`` beside ``|f(Tx) - S f(x)|`` at its worst shift (where aliasing is).

    ``rows``: dicts with ``method``, ``stage`` (index and spec text), ``shift``, ``offset``, ``error``
    (equiv_rel_l2), ``fx`` and ``diff`` (2-D arrays, first channel), and ``reduced`` (the factor the caller
    reduced both by, see :data:`DIFF_SIDE`; 1 if not). Colours span the values up to their 99.5th
    percentile (f(x): from the 0.5th), so that a handful of extreme pixels does not leave the rest black;
    the colour bar's arrow and the caption say where that clipped. ``empty``: what the picture says when
    there is no row.
    """
    plt = _pyplot()
    n = max(1, len(rows))
    fig, axes = plt.subplots(n, 2, figsize=(7.2, 3.0 * n + 0.5), squeeze=False)
    clipped = False
    for r, row in enumerate(rows):
        colour = method_style(row["method"], [x["method"] for x in rows])[0]
        a, b = axes[r]
        lo, hi, _ = _clip_range(row["fx"], low=True)
        a.imshow(row["fx"], cmap="gray", interpolation="nearest", vmin=lo, vmax=hi)
        a.set_title(f"{row['method']}: f(x), stage {row['stage']}", fontsize=8, color=colour)
        _, top, over = _clip_range(row["diff"], low=False)
        clipped |= over
        im = b.imshow(row["diff"], cmap="magma", interpolation="nearest", vmin=0, vmax=top)
        dy, dx = row["shift"]
        # two lines: one ran past the figure's edge above a narrow map (a 2000x40 input)
        b.set_title(f"|f(Tx) - S f(x)| at shift {dy},{dx}\n(equiv_rel_l2 {row['error']:.3g})", fontsize=8)
        fig.colorbar(im, ax=b, shrink=0.8, extend="max" if over else "neither")
        for ax in (a, b):
            ax.set_xticks([])
            ax.set_yticks([])
    if not rows:
        fig.text(0.5, 0.5, empty, ha="center", va="center")
        for ax in axes[0]:
            ax.axis("off")
    if title:
        fig.suptitle(_fit_width(fig, title, 9), fontsize=9)
    notes = []
    factors = sorted({row.get("reduced", 1) for row in rows} - {1})
    if factors:
        notes.append(f"maps drawn reduced by {', '.join(map(str, factors))} per side (f(x): block mean; the "
                     "differences: block maximum)")
    if rows:
        notes.append(f"grays span f(x)'s 0.5th to {CLIP_PERCENTILE:g}th percentile"
                     + (f", colours stop at the differences' {CLIP_PERCENTILE:g}th (the bar's arrow)" if clipped else "")
                     + ", measured inside a 2% frame (the maps' edges hold the boundary effects)")
    bottom = _bottom_caption(fig, "\n".join(notes))
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return _png(fig)
