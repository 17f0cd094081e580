"""Report records and their Rich tables and CSV rows. Nothing here prints."""

from __future__ import annotations

from typing import Any

from rich import box
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


def _shape(s: list[int]) -> str:
    return "x".join(str(v) for v in s)


def _reduction(r: float) -> str:
    return "1x" if r == 1 else (f"{r:.4g}x" if r >= 1 else f"1/{1 / r:.4g}x")


def shape_table(record: dict[str, Any], dense_units: int) -> Table:
    """The shape report of one input: what each stage does to size and downstream parameters."""
    t = Table(title=f"{record['path']}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("#", justify="right", style="dim", no_wrap=True)
    t.add_column("stage", overflow="fold", min_width=16)
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
            s["spec"],
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
