"""What reaches the terminal after a job: tables that are never cut, one summary per batch, notes.

:mod:`poolcli.report` builds the tables; this module decides how they reach
the reader (:func:`show`: natural width in a pipe, the table when it fits
the terminal, else one block per row) and what a batch prints:

* ``run``: the shape table of each distinct stack geometry (the first input
  of each group; every input with ``--verbose``), then, for more than one
  input, one summary table across inputs (input, size in, size out of the
  last stage, reduction, seconds, status) that for long batches shows the
  first and last rows, the failures and the slowest, and says where the full
  list is;
* ``invariance``: a table per method, the ranking, the aggregates over inputs.

Messages and notes are plain text (``markup=False``): a bracket prints as typed.

Imports: rich, :mod:`poolcli.report`; nothing numeric.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .report import batch_summary_line, fit, natural_width

#: A batch summary longer than this shows its head, tail, failures and slowest rows only.
SUMMARY_ROWS = 20


def silence(stream) -> None:
    """Point ``stream``'s file descriptor at /dev/null (a reader that went away: ``| head``), so that later
    writes, and Python's flush at exit, go nowhere instead of raising BrokenPipeError."""
    import os

    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(null, fd)
    except OSError:
        pass
    finally:
        os.close(null)


class PipeSafeConsole(Console):
    """A Rich console that goes quiet when its reader goes away (``poolcli run photos/ | head -2``).

    Rich's own answer to a broken pipe is to exit (SystemExit from inside the print), which stopped a
    batch after two inputs and left no report. Here what is printed is what is lost, nothing else: the
    batch goes on, writes its outputs and reports, and exits with its own status.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence(self.file)


def show(console: Console, table: Table, keys: int = 1) -> None:
    """Print a table whole: natural width in a pipe, the table if it fits the terminal, else blocks.

    Rich wraps a table's title and caption to the table's width ("...non-zero" / "shifts)" above a
    62-column ranking, even in a pipe). One wider than the table is printed on its own line instead:
    whole in a pipe, wrapped between words to the terminal's width on a terminal.
    """
    renderable, width = fit(table, console, keys)
    if renderable is not table:  # blocks (a narrow terminal): the title and caption are lines of their own
        console.print(renderable)
        return
    drawn = width if width is not None else min(natural_width(table, console)[1], console.width)
    title, caption = _loose(console, table.title, drawn), _loose(console, table.caption, drawn)
    if title is not None:
        console.print(title, soft_wrap=not console.is_terminal, style=table.title_style or "table.title")
    saved = table.title, table.caption, console.width
    table.title = None if title is not None else table.title
    table.caption = None if caption is not None else table.caption
    try:
        if width is None:
            console.print(table)
        else:  # Rich never prints wider than the console: widen it for this table
            console.width = max(width, console.width)
            console.print(table, crop=False)
    finally:
        table.title, table.caption, console.width = saved
    if caption is not None:
        console.print(caption, soft_wrap=not console.is_terminal, style=table.caption_style or "table.caption")


def _loose(console: Console, annotation: Any, width: int) -> Text | None:
    """A table's title or caption as text of its own (left-justified) if it is wider than the ``width``
    columns the table is drawn in, else None (Rich draws it with the table, as before)."""
    if not annotation:
        return None
    text = console.render_str(annotation, highlight=False) if isinstance(annotation, str) else annotation
    if max(cell_len(line) for line in text.plain.split("\n")) <= width:
        return None
    return text


def plain(console: Console, text: str, style: str | None = None) -> None:
    """Plain text (no markup: brackets print as typed); wrapped between words on a terminal, whole in a pipe."""
    console.print(text, markup=False, highlight=False, style=style, soft_wrap=not console.is_terminal)


def print_json(report: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (| head): the report files are written all the same
        silence(sys.stdout)


def _geometry(record: dict[str, Any]) -> tuple:
    """What the shape table of a record shows apart from sizes: channels and rounded reductions per stage."""
    return tuple((s["shape"][0], round(s["reduction"], 1)) for s in record["stages"])


def run_tables(console: Console, report: dict[str, Any], verbose: bool = False) -> None:
    """The shape tables of a run: one per distinct geometry (first input shown), all with ``verbose``."""
    from .report import shape_table

    records = report["inputs"]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault(_geometry(rec), []).append(rec)
    for members in groups.values():
        for rec in members if verbose else members[:1]:
            table = shape_table(rec, report["dense_units"])
            if not verbose and len(members) > 1:
                table.caption = f"the same stages for {len(members) - 1} more input(s); --verbose shows each"
            show(console, table, keys=2)


def _summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for rec in report["inputs"]:
        last = rec["stages"][-1] if rec["stages"] else rec["input"]
        rows.append({"input": rec["path"], "in": rec["input"]["shape"], "out": last["shape"],
                     "reduction": last["reduction"], "seconds": rec.get("seconds"), "status": "ok"})
    rows += [{"input": f["path"], "in": None, "out": None, "reduction": None, "seconds": None,
              "status": f"failed: {f['error']}"} for f in report["failures"]]
    return rows


def _pick(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The rows a long summary shows: first and last 5, every failure (up to 10), the 5 slowest."""
    if len(rows) <= SUMMARY_ROWS:
        return rows, 0
    keep = set(range(5)) | set(range(len(rows) - 5, len(rows)))
    keep |= set([i for i, r in enumerate(rows) if r["status"] != "ok"][:10])
    timed = sorted((i for i, r in enumerate(rows) if r["seconds"] is not None), key=lambda i: -rows[i]["seconds"])
    keep |= set(timed[:5])
    return [rows[i] for i in sorted(keep)], len(rows) - len(keep)


def common_folder(paths: list[str]) -> str:
    """The folder every path lies in, as typed (ending in its separator), or "" (one path, or none shared).

    >>> common_folder(["/data/photos/a.png", "/data/photos/sub/b.png"]), common_folder(["a.png", "b.png"])
    ('/data/photos/', '')
    >>> common_folder(["s3://bucket/x/a.png", "s3://bucket/y.png"]), common_folder(["/a.png", "/b.png"])
    ('s3://bucket/', '')
    """
    if len(paths) < 2:
        return ""
    prefix = os.path.commonprefix(paths)
    folder = prefix[: max(prefix.rfind("/"), prefix.rfind(os.sep)) + 1]
    bare = folder.rstrip("/" + os.sep)
    return "" if bare in ("", ".") or bare.endswith(":") else folder  # not the root, ./, nor a URL's scheme


def summary_table(report: dict[str, Any]) -> Table:
    """One row per input (or a chosen few of a long batch): input, sizes, reduction, seconds, status.

    The folder all inputs share is named once, in the title (``6 inputs in /data/photos/``), and each row
    gives the rest of its path: long absolute paths had folded every row over two lines at 80 columns.
    """
    from rich import box

    from .report import printable, reduction_text, shape_text

    every = _summary_rows(report)
    rows, hidden = _pick(every)
    folder = common_folder([r["input"] for r in every])
    t = Table(title=f"{len(every)} inputs"
                    + (f" in {printable(folder)}" if folder else ""), title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    names = [printable(r["input"][len(folder):]) for r in rows]
    # a name is folded only when it is long: the status wraps first ("checkerboard.p" / "ng" at 80 columns)
    t.add_column("input", overflow="fold", min_width=min(32, max((cell_len(n) for n in names), default=1)))
    for name in ("size in", "size out", "reduction", "seconds"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("status")
    for name, r in zip(names, rows):
        t.add_row(Text(name), shape_text(r["in"]), shape_text(r["out"]),
                  reduction_text(r["reduction"]),
                  "-" if r["seconds"] is None else f"{r['seconds']:.2f}", Text(printable(r["status"])))
    if hidden:
        t.caption = (f"{hidden} more inputs not shown (first and last, failures and slowest are); "
                     "every input is in report.json and shapes.csv")
    return t


def run_output(console: Console, report: dict[str, Any], written: list[str], out_dir: Any, verbose: bool) -> None:
    """Everything ``poolcli run`` prints after the batch (not with --json or --quiet)."""
    run_tables(console, report, verbose)
    if len(report["inputs"]) + len(report["failures"]) > 1:
        show(console, summary_table(report))
    plain(console, f"stack: {report['stack']}", style="bold")
    plain(console, batch_summary_line(report["summary"]))
    plain(console, f"outputs in {out_dir}/ ({', '.join(written) or 'report.json, shapes.csv'})")


def invariance_output(console: Console, report: dict[str, Any], written: list[str], out_dir: Any) -> None:
    """Everything ``poolcli invariance`` prints after the batch (not with --json or --quiet)."""
    from .report import aggregate_table, invariance_table, summary_table as ranking_table

    plain(console, f"stack: {report['stack']}   shift mode: {report['shift_mode']}")
    plain(console, report["note"], style="dim")
    for method in report["methods"]:
        show(console, invariance_table(report["records"], method), keys=2)
    show(console, ranking_table(report["summary"]), keys=2)
    n_ok = len({r["input"] for r in report["records"]})
    if n_ok > 1:
        show(console, aggregate_table(report["aggregates"], n_ok), keys=3)
    plain(console, f"outputs in {out_dir}/ ({', '.join(written)})")
    plain(console, batch_summary_line(report["batch_summary"]))
