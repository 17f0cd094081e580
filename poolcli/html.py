"""report.html: one page per run to browse offline (Jinja2, the optional extra ``poolcli[html]``).

What this module knows: how a ``run`` or ``invariance`` report (the dicts
:mod:`poolcli.jobs.run` and :mod:`poolcli.jobs.invariance` write as JSON)
looks as HTML pages, and whether Jinja2 is installed. The pages reference
images by relative path, carry their CSS and script inline and load nothing
from the network, so the --out folder can be opened, moved or archived as it
is. For a batch, ``report.html`` is a gallery of the inputs (sortable by
reduction, time or worst equivariance error) linking to one page per input.

Imports Jinja2 lazily, :mod:`poolcli.errors`, :mod:`poolcli.outputs` and
:mod:`poolcli.report` (number and shape texts); no NumPy, no PIL.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import UsageError
from .outputs import atomic_write_bytes
from .report import human_bytes, printable, reduction_text, shape_text

__all__ = ["HTML_HINT", "HTML_NAME", "check_html", "have_jinja2", "write_run_html", "write_invariance_html"]

HTML_NAME = "report.html"
HTML_HINT = "--html needs Jinja2: pip install 'poolcli[html]'"


def have_jinja2() -> bool:
    try:
        import jinja2  # noqa: F401
    except ImportError:
        return False
    return True


def check_html() -> None:
    """Raise the one-line usage error (exit 2) when Jinja2 is missing."""
    if not have_jinja2():
        raise UsageError(HTML_HINT)


def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("poolcli", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(shape=shape_text, reduction=reduction_text, human_bytes=human_bytes, name=printable,
                       num=_num)
    return env


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if v != 0 else "0"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _rel(path: str | None, page_dir: str) -> str | None:
    """``path`` (relative to --out, posix) as seen from a page in ``page_dir`` (relative to --out)."""
    if path is None:
        return None
    return PurePosixPath(os.path.relpath(path, page_dir or ".")).as_posix()


def _write(out_dir: Path, rel: str, text: str) -> str:
    atomic_write_bytes(out_dir / rel, text.encode("utf-8"))
    return rel


# ----------------------------------------------------------------------------- run


def _run_input_view(rec: dict[str, Any], page_dir: str) -> dict[str, Any]:
    """What a run input's page shows, with every file path relative to the page."""
    stages = []
    for s in rec.get("stages", []):
        stages.append({**s, "png_rel": [_rel(p, page_dir) for p in s.get("png", [])],
                       "unpool_rel": [_rel(p, page_dir) for p in s.get("unpool_png", [])]})
    return {**rec, "stages": stages, "montage_rel": _rel(rec.get("montage"), page_dir)}


THUMB_BOX = (96, 72)
"""The gallery thumbnail's box (CSS pixels): a map is drawn as large as fits, pixelated."""
THUMB_MIN = 12
"""Neither side of a thumbnail is drawn thinner than this: a 1x2500 map is a 96x12 bar, not a hairline."""


def _thumbnail(rec: dict[str, Any]) -> tuple[str | None, tuple[int, int] | None]:
    """The gallery's picture of an input: its most reduced map's first channel PNG (with the size to draw
    it at, :func:`thumb_size`), else its montage (at its own size, within the box)."""
    stages = [s for s in rec.get("stages", []) if s.get("png")]
    if stages:
        best = max(stages, key=lambda s: (s.get("reduction", 1), s["index"]))
        shape = best.get("shape") or []
        return best["png"][0], thumb_size(shape[-2], shape[-1]) if len(shape) >= 2 else None
    return rec.get("montage"), None


def thumb_size(height: int, width: int) -> tuple[int, int]:
    """``(width, height)`` in CSS pixels to draw an ``height x width`` map in :data:`THUMB_BOX`: scaled
    (up or down) to fit, the aspect kept, except that no side is thinner than :data:`THUMB_MIN`."""
    box_w, box_h = THUMB_BOX
    scale = min(box_w / max(1, width), box_h / max(1, height))
    return (min(box_w, max(THUMB_MIN, round(width * scale))), min(box_h, max(THUMB_MIN, round(height * scale))))


def _row(k: int, path: str, *, page: str | None = None, thumb: str | None = None,
         thumb_size: tuple[int, int] | None = None, status: str = "ok", reduction: float | None = None,
         seconds: float | None = None, shape: Any = None, worst: Any = None, **extra: Any) -> dict[str, Any]:
    """One row of a gallery table (gallery.html.j2, invariance.html.j2): every key, None where it has none."""
    return {"k": k, "path": path, "page": page, "thumb": thumb, "thumb_size": thumb_size, "status": status,
            "reduction": reduction, "seconds": seconds, "shape": shape, "worst": worst, **extra}


def _failure_rows(report: dict[str, Any], start: int) -> list[dict[str, Any]]:
    """The gallery rows of the report's failed inputs, numbered from ``start``."""
    return [_row(start + i, f.get("path", ""), status="failed", error=f.get("error", ""))
            for i, f in enumerate(report.get("failures", []))]


def write_run_html(out_dir: Path, report: dict[str, Any]) -> list[str]:
    """report.html (and, for several inputs, ``<input folder>/report.html`` each); the names written."""
    env = _env()
    inputs = report.get("inputs", [])
    common = {"report": report, "title": "poolcli run", "stack": report.get("stack", "")}
    if len(inputs) == 1 and not report.get("failures"):
        page = env.get_template("run_input.html.j2").render(**common, rec=_run_input_view(inputs[0], ""), back=None)
        return [_write(out_dir, HTML_NAME, page)]
    written = []
    rows = []
    for k, rec in enumerate(inputs):
        page_dir = rec["out_dir"]
        rel = f"{page_dir}/{HTML_NAME}"
        page = env.get_template("run_input.html.j2").render(
            **common, rec=_run_input_view(rec, page_dir), back=_rel(HTML_NAME, page_dir))
        written.append(_write(out_dir, rel, page))
        last = rec["stages"][-1] if rec.get("stages") else {}
        thumb, size = _thumbnail(rec)
        rows.append(_row(k, rec["path"], page=rel, thumb=thumb, thumb_size=size, reduction=last.get("reduction"),
                         seconds=rec.get("seconds"), shape=last.get("shape")))
    rows += _failure_rows(report, len(rows))
    page = env.get_template("gallery.html.j2").render(**common, rows=rows, kind="run")
    return [_write(out_dir, HTML_NAME, page)] + written


# ----------------------------------------------------------------------------- invariance


def _per_input(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per input: the worst equiv_rel_l2, per method its stages' specs, and per method, stage and shift, the
    value."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        d = out.setdefault(r["input"], {"worst": None, "cells": {}, "methods": [], "stages": {}, "shifts": []})
        v = r.get("equiv_rel_l2")
        if v is not None and (d["worst"] is None or v > d["worst"]):
            d["worst"] = v
        if r["method"] not in d["methods"]:
            d["methods"].append(r["method"])
        d["stages"].setdefault(r["method"], {}).setdefault(r["stage"], r["spec"])  # each method's own stack
        shift = tuple(r["shift"])
        if shift not in d["shifts"]:
            d["shifts"].append(shift)
        d["cells"][(r["method"], r["stage"], shift)] = v
    return out


def write_invariance_html(out_dir: Path, report: dict[str, Any], pictures: list[str],
                          input_pictures: dict[str, str], markers: dict[str, str]) -> list[str]:
    """report.html: the summary and aggregate tables, the pictures, a gallery of inputs (each linking to
    its own page beside its marker, ``markers[input]`` relative to --out, with its table and its
    difference-map picture ``input_pictures[input]``); the names written."""
    env = _env()
    per = _per_input(report.get("records", []))
    common = {"report": report, "title": "poolcli invariance", "stack": report.get("stack", "")}
    written, rows = [], []
    for k, (name, d) in enumerate(per.items()):
        rel = markers[name]
        page_dir = str(PurePosixPath(rel).parent)
        pic = input_pictures.get(name)
        page = env.get_template("invariance_input.html.j2").render(
            **common, name=name, d=d, picture=_rel(pic, page_dir), back=_rel(HTML_NAME, page_dir))
        written.append(_write(out_dir, rel, page))
        rows.append(_row(k, name, page=rel, thumb=pic, worst=d["worst"]))
    rows += _failure_rows(report, len(rows))
    page = env.get_template("invariance.html.j2").render(**common, rows=rows, pictures=pictures, kind="invariance")
    return [_write(out_dir, HTML_NAME, page)] + written
