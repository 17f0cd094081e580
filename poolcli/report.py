"""Report records and their Rich tables and CSV rows. Nothing here prints.

Every table is built so that no number, shape or name is ever cut: number
and shape columns never wrap, text columns wrap only between words, and
:func:`fit` chooses how a table reaches the reader: whole at its natural
width when the output is not a terminal (a pipe or a log: lines are as long
as they need), as a table when it fits the terminal, else as one block of
``column value`` items per row, which wraps only between items.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

SHAPES_CSV_HEADER = [
    "input",
    "stage",
    "name",
    "spec",
    "channels",
    "height",
    "width",
    "elements",
    "reduction",
    "bytes",
    "dense_params",
    "npy",
]


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    >>> human_bytes(1536), human_bytes(10), human_bytes(3 * 2**20)
    ('1.5 KiB', '10 B', '3.0 MiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def printable(name: str) -> str:
    """A file name as one safe line: control characters and undecodable bytes as backslash escapes.

    >>> printable("a\\nb\\x1b[2J.png"), printable("caf\\udce9.png")
    ('a\\\\nb\\\\x1b[2J.png', 'caf\\\\xe9.png')
    """
    out = []
    for ch in str(name):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(repr(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out)


def shape_text(s: list[int] | None) -> str:
    """``[1, 240, 320]`` -> ``'1x240x320'`` (``'-'`` for None)."""
    return "-" if s is None else "x".join(str(v) for v in s)


def reduction_text(r: float | None) -> str:
    """How many times fewer elements: ``'4x'``, ``'1x'``, ``'1/2x'`` (``'-'`` for None)."""
    if r is None:
        return "-"
    return "1x" if r == 1 else (f"{r:.4g}x" if r >= 1 else f"1/{1 / r:.4g}x")


_shape, _reduction = shape_text, reduction_text


def shape_table(record: dict[str, Any], dense_units: int) -> Table:
    """The shape report of one input: what each stage does to size and downstream parameters."""
    t = Table(title=Text(printable(record["path"])), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("#", justify="right", style="dim", no_wrap=True)
    t.add_column("stage", overflow="fold")
    t.add_column("C x H x W", justify="right", no_wrap=True)
    t.add_column("spatial÷", justify="right", no_wrap=True)
    t.add_column("elements", justify="right", no_wrap=True)
    t.add_column("memory", justify="right", no_wrap=True)
    t.add_column(f"dense({dense_units})\nparams", justify="right", no_wrap=True)
    inp = record["input"]
    t.add_row("0", "input", _shape(inp["shape"]), "1x", f"{inp['elements']:,}", human_bytes(inp["bytes"]), f"{inp['dense_params']:,}")
    for s in record["stages"]:
        t.add_row(
            str(s["index"]),
            Text(s["spec"]),
            _shape(s["shape"]),
            Text(_reduction(s["reduction"]), style="bold green" if s["reduction"] > 1 else ""),
            f"{s['elements']:,}",
            human_bytes(s["bytes"]),
            f"{s['dense_params']:,}",
        )
    return t


def shapes_csv_rows(records: list[dict[str, Any]]):
    """One row per input and stage (stage 0 is the input itself)."""
    for r in records:
        inp = r["input"]
        c, h, w = inp["shape"]
        yield [r["path"], 0, "input", "", c, h, w, inp["elements"], 1.0, inp["bytes"], inp["dense_params"], ""]
        for s in r["stages"]:
            c, h, w = s["shape"]
            yield [
                r["path"],
                s["index"],
                s["name"],
                s["spec"],
                c,
                h,
                w,
                s["elements"],
                round(s["reduction"], 6),
                s["bytes"],
                s["dense_params"],
                s["npy"],
            ]


# ----------------------------------------------------------------------------- invariance

INVARIANCE_CSV_HEADER = [
    "input",
    "method",
    "stage",
    "stage_name",
    "spec",
    "shift",
    "cosine",
    "rel_l2",
    "equiv_rel_l2",
    "equiv_offset",
    "global_rel_diff",
]


def _num(v: Any) -> str:
    return "" if v is None else repr(float(v))


def invariance_csv_rows(records: list[dict[str, Any]]):
    """The records as CSV rows; ``shift`` and ``equiv_offset`` as ``"dy dx"``."""
    for r in records:
        yield [
            r["input"],
            r["method"],
            r["stage"],
            r["stage_name"],
            r["spec"],
            f"{r['shift'][0]} {r['shift'][1]}",
            _num(r["cosine"]),
            _num(r["rel_l2"]),
            _num(r["equiv_rel_l2"]),
            "" if r["equiv_offset"] is None else f"{r['equiv_offset'][0]} {r['equiv_offset'][1]}",
            _num(r["global_rel_diff"]),
        ]


def _shift_label(shift) -> str:
    dy, dx = shift
    return f"{dy},{dx}"


def _style(v: float | None) -> str:
    if v is None:
        return "dim"
    if v < 1e-6:
        return "bold green"
    if v < 0.05:
        return "yellow"
    if v < 0.2:
        return "dark_orange"
    return "bold red"


def _fmt_metric(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "0"
    return f"{v:.1e}" if v < 1e-3 else f"{v:.3f}"


def invariance_table(records: list[dict[str, Any]], method: str, metric: str = "equiv_rel_l2") -> Table:
    """Rows: stages; columns: shifts (dy,dx); cells: the metric, coloured by magnitude."""
    rows = [r for r in records if r["method"] == method]
    shifts = list(dict.fromkeys(tuple(r["shift"]) for r in rows))
    stages = list(dict.fromkeys((r["stage"], r["spec"]) for r in rows))
    t = Table(title=f"{method}: {metric} by stage and shift (dy,dx)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("#", justify="right", style="dim", no_wrap=True)
    t.add_column("stage", overflow="fold")
    for s in shifts:
        t.add_column(_shift_label(s), justify="right", no_wrap=True)
    cell: dict[tuple, list[float | None]] = {}
    for r in rows:
        cell.setdefault((r["stage"], tuple(r["shift"])), []).append(r[metric])
    for index, spec in stages:
        values = []
        for s in shifts:
            vs = [v for v in cell.get((index, s), []) if v is not None]
            v = sum(vs) / len(vs) if vs else None
            values.append(Text(_fmt_metric(v), style=_style(v)))
        t.add_row(str(index), spec, *values)
    return t


def summarize_methods(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method, over every stage and non-zero shift: mean and worst metrics, ranked best first.

    The rank key is the mean ``equiv_rel_l2`` (how far the maps are from
    merely moving with the input); ties keep the order given.
    """
    out = []
    for method in dict.fromkeys(r["method"] for r in records):
        rows = [r for r in records if r["method"] == method and any(r["shift"])]
        last = max((r["stage"] for r in rows), default=0)

        def mean(key, rs):
            vs = [r[key] for r in rs if r[key] is not None]
            return sum(vs) / len(vs) if vs else None

        def worst(key, rs):
            vs = [r[key] for r in rs if r[key] is not None]
            return max(vs) if vs else None

        final = [r for r in rows if r["stage"] == last]
        out.append(
            {
                "method": method,
                "mean_equiv_rel_l2": mean("equiv_rel_l2", rows),
                "worst_equiv_rel_l2": worst("equiv_rel_l2", rows),
                "mean_rel_l2": mean("rel_l2", rows),
                "mean_global_rel_diff": mean("global_rel_diff", rows),
                "final_cosine": mean("cosine", final),
            }
        )
    key = lambda d: (d["mean_equiv_rel_l2"] is None, d["mean_equiv_rel_l2"] or 0.0)  # noqa: E731
    return sorted(out, key=key)


def summary_table(summary: list[dict[str, Any]]) -> Table:
    t = Table(
        title="Methods ranked by mean equiv_rel_l2 (all stages, non-zero shifts)",
        caption="lower equiv = the maps only move with the input; global = what a global-pooling head sees",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for name, justify in (
        ("#", "right"),
        ("method", "left"),
        ("mean\nequiv", "right"),
        ("worst\nequiv", "right"),
        ("mean\nrel_l2", "right"),
        ("mean\nglobal", "right"),
        ("cosine\nlast stage", "right"),
    ):
        t.add_column(name, justify=justify, no_wrap=True)
    for i, s in enumerate(summary, start=1):
        t.add_row(
            str(i),
            s["method"],
            Text(_fmt_metric(s["mean_equiv_rel_l2"]), style=_style(s["mean_equiv_rel_l2"])),
            Text(_fmt_metric(s["worst_equiv_rel_l2"]), style=_style(s["worst_equiv_rel_l2"])),
            _fmt_metric(s["mean_rel_l2"]),
            Text(_fmt_metric(s["mean_global_rel_diff"]), style=_style(s["mean_global_rel_diff"])),
            "-" if s["final_cosine"] is None else f"{s['final_cosine']:.6f}",
        )
    if any(v is None for s in summary for k, v in s.items() if k != "method"):
        t.caption += "; - = no value (no shift but 0,0, or NaN or infinite values in the maps)"
    return t


# ----------------------------------------------------------------------------- aggregates over a folder

# Each metric and which end is the worst case.
AGGREGATE_METRICS: tuple[tuple[str, str], ...] = (
    ("cosine", "min"),
    ("rel_l2", "max"),
    ("equiv_rel_l2", "max"),
    ("global_rel_diff", "max"),
)

INVARIANCE_AGG_CSV_HEADER = ["method", "stage", "stage_name", "spec", "shift", "n"] + [
    f"{m}_{s}" for m, _ in AGGREGATE_METRICS for s in ("mean", "std", "worst")
]


def invariance_aggregates(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method, stage and shift, over every input: ``n`` and the mean, std and worst of each metric.

    ``std`` is the population standard deviation (``ddof=0``); the worst case
    is the minimum for ``cosine`` and the maximum for the others. Metrics that
    are ``None`` for an input (undefined) are left out of its statistics; a
    statistic over no values is ``None``. Groups keep the records' order.

    >>> recs = [{"method": "max", "stage": 1, "stage_name": "max", "spec": "max(2)", "shift": [0, 1],
    ...          "cosine": c, "rel_l2": r, "equiv_rel_l2": r, "global_rel_diff": 0.0}
    ...         for c, r in ((1.0, 0.1), (0.5, 0.3))]
    >>> (a,) = invariance_aggregates(recs)
    >>> a["n"], a["cosine_mean"], a["cosine_worst"], round(a["rel_l2_std"], 6), a["rel_l2_worst"]
    (2, 0.75, 0.5, 0.1, 0.3)
    """
    import math

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["method"], r["stage"], tuple(r["shift"])), []).append(r)
    out = []
    for (method, stage, shift), rows in groups.items():
        agg: dict[str, Any] = {
            "method": method,
            "stage": stage,
            "stage_name": rows[0]["stage_name"],
            "spec": rows[0].get("spec", ""),
            "shift": list(shift),
            "n": len(rows),
        }
        for metric, worst in AGGREGATE_METRICS:
            vs = [float(r[metric]) for r in rows if r.get(metric) is not None]
            if vs:
                mean = math.fsum(vs) / len(vs)
                std = math.sqrt(math.fsum((v - mean) ** 2 for v in vs) / len(vs))
                agg[f"{metric}_mean"] = mean
                agg[f"{metric}_std"] = std
                agg[f"{metric}_worst"] = min(vs) if worst == "min" else max(vs)
            else:
                agg[f"{metric}_mean"] = agg[f"{metric}_std"] = agg[f"{metric}_worst"] = None
        out.append(agg)
    return out


def invariance_aggregate_csv_rows(aggregates: list[dict[str, Any]]):
    """One row per method, stage and shift (``shift`` as ``"dy dx"``), in INVARIANCE_AGG_CSV_HEADER order."""
    for a in aggregates:
        yield [
            a["method"],
            a["stage"],
            a["stage_name"],
            a["spec"],
            f"{a['shift'][0]} {a['shift'][1]}",
            a["n"],
            *(_num(a[k]) for k in INVARIANCE_AGG_CSV_HEADER[6:]),
        ]


def aggregate_table(aggregates: list[dict[str, Any]], n_inputs: int) -> Table:
    """The folder-wide table: per method, stage and shift, each metric's mean ± std over the images
    and, below it, the worst image (max; min for cosine)."""
    t = Table(
        title=f"Over {n_inputs} images: mean ± std, and (worst), per method, stage and shift (dy,dx)",
        caption="worst = the largest value over the images (the smallest for cosine); std with ddof=0",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    t.add_column("method", overflow="fold")
    t.add_column("stage", overflow="fold")
    t.add_column("shift", justify="right", no_wrap=True)
    for name in ("equiv_rel_l2", "rel_l2", "global_rel_diff", "cosine"):
        t.add_column(name.replace("_", "_\n", 1) if name != "rel_l2" else name, justify="right", no_wrap=True)

    def cell(a: dict[str, Any], metric: str, styled: bool = True) -> Text:
        mean, std, worst = a[f"{metric}_mean"], a[f"{metric}_std"], a[f"{metric}_worst"]
        if mean is None:
            return Text("-", style="dim")
        fmt = (lambda v: f"{v:.4f}") if metric == "cosine" else _fmt_metric
        return Text(
            f"{fmt(mean)}±{_fmt_metric(std)}\n({fmt(worst)})",
            style=_style(mean) if styled else "",
        )

    for a in aggregates:
        t.add_row(
            a["method"],
            f"{a['stage']} {a['stage_name']}",
            _shift_label(a["shift"]),
            cell(a, "equiv_rel_l2"),
            cell(a, "rel_l2", styled=False),
            cell(a, "global_rel_diff"),
            cell(a, "cosine", styled=False),
        )
    return t


def batch_summary_line(summary: dict[str, Any]) -> str:
    """``'300 found, 290 processed, 8 skipped (5 resumed, 3 not images), 2 failed in 12.3 s (23.6 images/s)'``."""
    s = summary
    return (
        f"{s['found']} found, {s['processed']} processed, {s['skipped']} skipped "
        f"({s['resumed']} resumed, {s['non_images']} not images), {s['failed']} failed"
        + (f", {s['remaining']} not done" if s.get("remaining") else "")
        + f" in {s['seconds']:.1f} s ({s['images_per_second']:.1f} images/s)"
    )


# ----------------------------------------------------------------------------- listings


def filters_table() -> Table:
    """``poolcli filters``: every named filter, what it does, its kernel(s)."""
    import numpy as np

    from .filters import list_filters

    t = Table(title="Filters (--filter NAME, or in a stack)", show_lines=True)
    t.add_column("name", no_wrap=True)
    t.add_column("what it does")
    t.add_column("kernel(s)", no_wrap=True)
    for f in list_filters():
        with np.printoptions(precision=4, suppress=True, linewidth=200):
            ks = "\n\n".join(str(np.asarray(k)) for k in f.kernels)
        if f.combine == "magnitude":
            ks = "sqrt(a^2 + b^2) of\n" + ks
        t.add_row(f.label, f.description, ks)
    return t


def presets_table() -> Table:
    """``poolcli presets``: every preset with its stack string."""
    from .stack import PRESETS

    t = Table(title="Presets (--preset NAME)", show_lines=True)
    t.add_column("name", no_wrap=True)
    t.add_column("what it shows")
    t.add_column("stack", overflow="fold")
    for name, (desc, spec) in PRESETS.items():
        t.add_row(name, desc, spec)
    return t


def modes_table() -> Table:
    """``poolcli modes``: every pooling mode, what it computes, its parameters in positional order with defaults."""
    from .ops import format_value, pool_mode_names, registry

    t = Table(title="Pooling modes (--pool NAME, or NAME(...) in a stack)", show_lines=True)
    t.add_column("mode", no_wrap=True)
    t.add_column("what it computes")
    t.add_column("parameters (positional order; = default)")
    specs = registry()
    for name in pool_mode_names():
        spec = specs[name]
        params = ", ".join(
            p.name + ("" if p.required else "=" + ("the size" if p.name == "stride" and p.default is None
                                                   else "none" if p.default is None else format_value(p.default)))
            for p in spec.params
        )
        t.add_row(name, spec.summary, params)
    return t


# ----------------------------------------------------------------------------- fitting a table to the reader

def natural_width(table: Table, console: Console) -> tuple[int, int]:
    """(minimum, maximum) width of ``table``: the minimum wraps text columns between words only."""
    m = Measurement.get(console, console.options.update_width(1 << 16), table)
    return m.minimum, m.maximum


def _cell_text(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _pack(items: list[str], width: int, indent: str = "  ", gap: str = "   ") -> list[str]:
    """Items greedily packed into lines of at most ``width`` columns; an item is split only when it is
    wider than a line by itself, and then between words (continuation lines indented twice)."""
    lines: list[str] = []
    line = ""
    for item in items:
        candidate = item if not line else line + gap + item
        if line and cell_len(indent + candidate) > width:
            lines.append(indent + line)
            line = item
        else:
            line = candidate
    if line:
        lines.append(indent + line)
    return [part for ln in lines for part in _wrap_words(ln, width, indent + indent)]


def _wrap_words(line: str, width: int, indent: str) -> list[str]:
    """``line`` as is if it fits ``width``, else broken between words (a word wider than a line is folded)."""
    if cell_len(line) <= width:
        return [line]
    import textwrap

    return textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False, replace_whitespace=False) \
        or [line]


def as_blocks(table: Table, width: int, keys: int = 1) -> RenderableType:
    """The table as one block per row: the first ``keys`` cells as a heading, then ``header value`` items
    packed into lines of ``width`` (a line breaks between items, never inside one)."""
    columns = table.columns
    headers = [_cell_text(c.header).replace("_\n", "_").replace("\n", " ").strip() for c in columns]
    cells = [list(c.cells) for c in columns]
    parts: list[RenderableType] = []
    if table.title:
        parts.append(Text(_cell_text(table.title), style="bold"))
    for row in range(table.row_count):
        heading = " ".join(_cell_text(cells[i][row]) for i in range(min(keys, len(columns))))
        items, blocks = [], []
        for i in range(keys, len(columns)):
            value = _cell_text(cells[i][row])
            if value.count("\n") == 1:  # "mean±std" over "(worst)": one item
                value = value.replace("\n", " ")
            if "\n" in value:  # a multi-line cell (a kernel) keeps its lines
                blocks.append(Text(f"  {headers[i]}:\n" + "\n".join("    " + v for v in value.splitlines())))
            else:
                items.append(f"{headers[i]} {value}".strip())
        parts.append(Text(heading, style="bold"))
        parts.extend(Text(line, no_wrap=True, overflow="ignore") for line in _pack(items, width))
        parts.extend(blocks)
    if table.caption:
        parts.append(Text(_cell_text(table.caption), style="dim"))
    return Group(*parts)


def fit(table: Table, console: Console, keys: int = 1) -> tuple[RenderableType, int | None]:
    """How to print ``table`` whole: ``(renderable, width)`` for ``console.print(renderable, width=width)``.

    Not a terminal: the table at its natural width. A terminal it fits (text
    columns wrapping between words): the table. Else :func:`as_blocks`.
    """
    for column in table.columns:  # a column that never wraps needs its widest line, header or cell
        if column.no_wrap:
            texts = [_cell_text(column.header), *(_cell_text(c) for c in column.cells)]
            widest = max(cell_len(line) for text in texts for line in text.split("\n"))
            column.min_width = max(column.min_width or 0, widest)
    minimum, maximum = natural_width(table, console)
    if not console.is_terminal:
        return table, maximum
    if minimum <= console.width:
        return table, None
    return as_blocks(table, console.width, keys), None
