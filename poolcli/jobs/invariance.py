"""The ``invariance`` job: shift-invariance metrics per method, stage and shift; invariance.json/.csv/.png.

:func:`invariance_one` measures one image: for every compared method (the
stack with its pooling swapped, see :func:`method_stacks`), every shift and
every stage, it compares the maps of the image and of its shifted copy
(:func:`poolcli.invariance.compare`). :class:`InvarianceJob` (also known as
``InvarianceOptions``) is the job: its options, its marker
(``<out>/invariance-records/<out_rel>.json``, which holds the records: the
job writes no other file per input) and its report (invariance.json,
invariance.csv, invariance_aggregates.csv and, with matplotlib,
invariance.png).

Imports: :mod:`poolcli.jobs.base`, :mod:`poolcli.batch` (``InputItem``),
:mod:`poolcli.outputs`, :mod:`poolcli.stack`, :mod:`poolcli.errors`; lazily
numpy, :mod:`poolcli.invariance` (shifts and metrics), :mod:`poolcli.report`
(summaries, aggregates, CSV rows) and :mod:`poolcli.plots`. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..batch import InputItem
from ..errors import InputError, PoolcliError
from ..outputs import atomic_write_bytes, name_fields, raw_name, save_csv, save_json
from ..stack import Stack
from .base import files_key, Job, JobOutcome, load_input

__all__ = [
    "InvarianceJob",
    "InvarianceOptions",
    "invariance_one",
    "method_stacks",
    "crop_to_stride",
    "total_strides",
    "shift_mode_note",
    "INVARIANCE_MARKERS",
]

INVARIANCE_MARKERS = "invariance-records"
DIFFERENCE_MAPS = "invariance-maps"  # per input, with the plot extra: |f(Tx) - S f(x)| at the worst shift

NOTES = {
    "circular": "circular: shifts are np.roll; every padding and boundary in the stack was made circular (filters "
    "wrap, pools pad by wrapping), and each image was cropped (bottom/right) to a multiple of the stack's total "
    "stride so that shifts wrap onto the pooling grid: borders do not pollute the measurement",
    "crop": "crop: two equal-size crops whose offsets differ by the shift (Zhang 2019); the stack runs as configured",
}


def shift_mode_note(shift_mode: str) -> str:
    """What a shift mode measures, in one sentence (the report's ``note``)."""
    return NOTES["circular"] if shift_mode == "circular" else NOTES["crop"]


@dataclass(frozen=True)
class InvarianceJob(Job):
    """``poolcli invariance``: the stack, the shifts, the methods compared; ``plot``: write invariance.png."""

    name: ClassVar[str] = "invariance"
    report_name: ClassVar[str] = "invariance.json"
    marker_key: ClassVar[str] = "records"

    stack: Stack
    shifts: tuple[tuple[int, int], ...]
    methods: tuple[str, ...] = ()  # empty: the stack as given
    shift_mode: str = "circular"  # or "crop"
    color: str = "gray"
    nan: str = "error"  # images.load_image's NaN policy
    max_pixels: int | None = None
    max_frames: int | None = None
    max_memory: int | None = None  # bytes for the run (None: half the memory available); not fingerprinted
    memory_share: int = 1  # inputs processed at once (set by execute): each gets max_memory / memory_share
    plot: bool = True  # only the report: not in options_key
    html: bool = False  # report.html: only the report, not in options_key

    def options_key(self) -> dict[str, Any]:
        return {
            "command": self.name,
            "stack": str(self.stack),
            "shifts": [list(s) for s in self.shifts],
            "methods": list(self.methods),
            "shift_mode": self.shift_mode,
            "color": self.color,
            "nan": self.nan,
            "max_pixels": self.max_pixels,
            "max_frames": self.max_frames,
            **files_key(self.stack),
        }

    def check(self) -> None:
        method_stacks(self)  # an unknown method is a usage error now, not a failure per input
        if self.html:
            from ..html import check_html

            check_html()

    def produce(self, item: InputItem, out_dir: Path) -> list[dict]:
        records, x, base, shared = measure_invariance(item, self)
        if self.plot and records:
            write_differences(item, self, out_dir, records, (x, base, shared))
        return records

    @classmethod
    def marker_path(cls, out_dir: Path, item: InputItem) -> Path:
        rel = item.out_rel
        return out_dir / INVARIANCE_MARKERS / rel.with_name(rel.name + ".json")

    def guard_path(self, out_dir: Path, item: InputItem) -> Path:
        return self.marker_path(out_dir, item)  # the marker is this job's only file per input

    def result_from_marker(self, doc: dict[str, Any]) -> Any:
        recs = doc.get(self.marker_key)
        return recs if isinstance(recs, list) else None

    def finish(self, outcome: JobOutcome) -> dict[str, Any]:
        """invariance.json, invariance.csv, invariance_aggregates.csv; invariance.png unless interrupted."""
        from ..report import INVARIANCE_AGG_CSV_HEADER, INVARIANCE_CSV_HEADER, invariance_aggregate_csv_rows
        from ..report import invariance_csv_rows

        out_dir = outcome.out_dir
        report = self.report(outcome)
        records, aggregates = report["records"], report["aggregates"]
        save_json(out_dir / self.report_name, report)
        raw = [{**r, "input": raw_name(r, "input")} if "input_bytes" in r else r for r in records]  # names' own bytes
        save_csv(out_dir / "invariance.csv", INVARIANCE_CSV_HEADER, invariance_csv_rows(raw))
        save_csv(out_dir / "invariance_aggregates.csv", INVARIANCE_AGG_CSV_HEADER, invariance_aggregate_csv_rows(aggregates))
        outcome.written += [self.report_name, "invariance.csv", "invariance_aggregates.csv"]
        if self.plot and records and not outcome.interrupted:
            self.write_plot(outcome, records)
        if self.html and not outcome.interrupted:
            self.write_html(outcome, report)
        return report

    def write_html(self, outcome: JobOutcome, report: dict[str, Any]) -> None:
        """report.html: the tables, the pictures, one page per input beside its marker."""
        from ..html import write_invariance_html

        out_dir = outcome.out_dir
        pictures = [{"title": "equiv_rel_l2 per method, stage and shift", "path": "invariance.png"}]
        pictures = [p for p in pictures if outcome.has_file(p["path"])]
        markers, diffs = {}, {}
        for item in outcome.items:
            rel = item.out_rel.as_posix()
            name = name_fields(item.label, "input")["input"]  # as the records name it
            markers[name] = f"{INVARIANCE_MARKERS}/{rel}.html"
            if outcome.has_file(f"{DIFFERENCE_MAPS}/{rel}.png"):
                diffs[name] = f"{DIFFERENCE_MAPS}/{rel}.png"
        outcome.written += write_invariance_html(out_dir, report, pictures, diffs, markers)

    def report(self, outcome: JobOutcome) -> dict[str, Any]:
        """The invariance.json document."""
        from .. import __version__
        from ..report import invariance_aggregates, summarize_methods

        records: list[dict] = [r for recs in outcome.records for r in recs]
        counts = outcome.counts
        return {
            "poolcli_version": __version__,
            "stack": str(self.stack),
            "shift_mode": self.shift_mode,
            "nan": self.nan,
            "max_pixels": self.max_pixels,
            "max_frames": self.max_frames,
            "note": shift_mode_note(self.shift_mode),
            "methods": {m: str(s) for m, s in method_stacks(self)},
            "shifts": [list(s) for s in self.shifts],
            "records": records,
            "summary": summarize_methods(records),
            "aggregates": invariance_aggregates(records),
            "failures": outcome.failures,
            "seconds": counts["seconds"],
            "batch_summary": counts,
            "interrupted": outcome.interrupted,
            "execution": outcome.execution,
        }

    def write_plot(self, outcome: JobOutcome, records: list[dict]) -> None:
        """invariance.png, or a note saying how to get it."""
        from ..plots import PLOT_HINT, have_matplotlib, invariance_plot
        from ..report import printable

        if have_matplotlib():
            records = [{**r, "input": printable(r["input"])} for r in records]  # names drawn on one line
            png = invariance_plot(records, title=f"{str(self.stack)} ({self.shift_mode})")
            atomic_write_bytes(outcome.out_dir / "invariance.png", png)
            outcome.written.append("invariance.png")
        else:
            outcome.notes.append(f"poolcli: no plot: {PLOT_HINT}")


InvarianceOptions = InvarianceJob  # the name cli.py and users know


def method_stacks(opts: InvarianceJob) -> list[tuple[str, Stack]]:
    """(method name, stack as measured) for every method compared."""
    from ..stack import circular_stack, swap_pooling

    if opts.methods:
        pairs = [(m, swap_pooling(opts.stack, m)) for m in opts.methods]
    else:
        pools = [s.ops[0].name for s in opts.stack.stages if s.kind == "pool"]
        pairs = [("+".join(dict.fromkeys(pools)) or "stack", opts.stack)]
    if opts.shift_mode == "circular":
        pairs = [(m, circular_stack(st)) for m, st in pairs]
    return pairs


def total_strides(stack: Stack) -> list[tuple[int, int]]:
    """The stride of the stack up to each stage, from the input."""
    out, sy, sx = [], 1, 1
    for stage in stack.stages:
        a, b = stage.stride()
        sy, sx = sy * a, sx * b
        out.append((sy, sx))
    return out


def crop_to_stride(x, stacks: list[tuple[str, Stack]]):
    """Crop (bottom/right) to a multiple of every stack's total stride.

    A circular shift of an image whose size is not a multiple of the total
    stride wraps off the pooling grid (a 427-row photo through a stride-2
    pool: the wrapped row pairs were never pooled together), so even shifts
    by multiples of the stride would not only move the maps. Measured on
    such a photo: equiv_rel_l2 0.13 at a 2-pixel shift before, 0 after.
    """
    import math

    import numpy as np

    sy = sx = 1
    for _, st in stacks:
        if st.stages:
            ty, tx = total_strides(st)[-1]
            sy, sx = math.lcm(sy, ty), math.lcm(sx, tx)
    h, w = x.shape[-2:]
    hh, ww = h - h % sy, w - w % sx
    if (hh, ww) == (h, w) or hh == 0 or ww == 0:
        return x
    return np.ascontiguousarray(x[..., :hh, :ww])


def invariance_one(item: InputItem, opts: InvarianceJob) -> list[dict]:
    """Shift-invariance records of one image: every method, stage and shift.

    ``f`` is the stack up to a stage; ``x`` the image and ``Tx`` its shifted
    copy (``np.roll`` in circular mode; in crop mode two equal crops whose
    offsets differ by the shift). See :func:`poolcli.invariance.compare`.
    """
    return measure_invariance(item, opts)[0]


class _Shared:
    """The work the methods of one invariance run share (the same records as stack by stack, bit for bit).

    The stages every method's stack begins with (``sobel`` before the pooling that differs) run once per
    shift, not once per method, and their metrics are computed once; ``f(x)`` of each (method, stage) is
    prepared once (:class:`poolcli.invariance.Reference`) for every shift; and in circular mode the shift
    (0, 0) is ``T x = x``, so ``f(T x)`` is ``f(x)``, not evaluated again.
    """

    def __init__(self, stacks: list, base, mode: str):
        from ..invariance import Reference

        stages = [st.stages for _, st in stacks]
        self.n = 0  # the common prefix
        while self.n < min(len(s) for s in stages) and len({str(s[self.n]) for s in stages}) == 1:
            self.n += 1
        self.prefix = stages[0][: self.n]
        self.rests = [s[self.n:] for s in stages]
        self.fx_prefix = _run(base, self.prefix)
        start = self.fx_prefix[-1] if self.n else base
        self.fx_rests = [_run(start, rest, self.n + 1) for rest in self.rests]
        strides = [total_strides(st) for _, st in stacks]
        self.ref_prefix = [Reference(f, strides[0][i], mode, copy=False) for i, f in enumerate(self.fx_prefix)]
        self.ref_rests = [[Reference(f, strides[k][self.n + i], mode, copy=False) for i, f in enumerate(fr)]
                          for k, fr in enumerate(self.fx_rests)]

    def fx(self, k: int) -> list:
        """``f(x)`` at every stage of method ``k``."""
        return self.fx_prefix + self.fx_rests[k]

    def ftx(self, k: int, shift, tx) -> list:
        """``f(T x)`` at every stage of method ``k`` (the common prefix kept for the last shift asked)."""
        if getattr(self, "_shift", None) != shift:
            self._shift, self._tx_prefix = shift, _run(tx, self.prefix)
        return self._tx_prefix + _run(self._tx_prefix[-1] if self.n else tx, self.rests[k], self.n + 1)

    def metrics(self, tx, shift, same: bool) -> list[list[dict]]:
        """Per method, per stage: the metrics of ``f(T x)`` against ``f(x)`` (``same``: ``T x`` is ``x``)."""
        tx_prefix = self.fx_prefix if same else _run(tx, self.prefix)
        shared = [_compare(ref, f, shift) for ref, f in zip(self.ref_prefix, tx_prefix)]
        start = tx_prefix[-1] if self.n else tx
        out = []
        for k, rest in enumerate(self.rests):
            ftx = self.fx_rests[k] if same else _run(start, rest, self.n + 1)
            out.append([dict(m) for m in shared] + [_compare(ref, f, shift) for ref, f in zip(self.ref_rests[k], ftx)])
        return out


def _compare(ref, ftx, shift) -> dict:
    """``ref.compare``, its map-sized scratch freed after (one comparison's scratch at a time, as before)."""
    try:
        return ref.compare(ftx, shift)
    finally:
        ref.release()


def _run(x, stages, first: int = 1) -> list:
    """Every stage's output; a stage that cannot run on ``x`` is named as ``poolcli run`` names it
    (``stage 2 (max(size=2, stride=2)): ...``; ``first``: the number of ``stages[0]`` in its stack)."""
    from ..stack import apply_stage

    out = []
    for i, stage in enumerate(stages, start=first):
        try:
            x = apply_stage(x, stage)
        except ValueError as exc:
            raise ValueError(f"stage {i} ({stage}): {exc}") from None
        out.append(x)
    return out


def measure_invariance(item: InputItem, opts: InvarianceJob):
    """``(records, the image, its unshifted crop, the shared work)`` of one input (see :func:`invariance_one`)."""
    import numpy as np

    from ..invariance import circular_shift, crop_pair

    stacks = method_stacks(opts)
    x = load_input(item, opts, [st for _, st in stacks])
    circular = opts.shift_mode == "circular"
    m = 0 if circular else max(max(abs(dy), abs(dx)) for dy, dx in opts.shifts)
    by_key: dict[tuple, dict] = {}
    try:
        with np.errstate(all="ignore"):
            if circular:
                x = base = crop_to_stride(x, stacks)
            else:
                base = crop_pair(x, 0, 0, m)[0]
            shared = _Shared(stacks, base, opts.shift_mode)
            for dy, dx in opts.shifts:
                same = circular and (dy, dx) == (0, 0)
                tx = x if same else circular_shift(x, dy, dx) if circular else crop_pair(x, dy, dx, m)[1]
                for k, per_stage in enumerate(shared.metrics(tx, (dy, dx), same)):
                    for i, metrics in enumerate(per_stage):
                        by_key[(k, (dy, dx), i)] = metrics
    except PoolcliError:
        raise
    except ValueError as exc:
        raise InputError(item.path, str(exc)) from None
    records = []
    for k, (method, st) in enumerate(stacks):  # method by method, shift by shift, stage by stage
        for dy, dx in opts.shifts:
            for i, stage in enumerate(st.stages):
                records.append({**name_fields(item.label, "input"), "method": method, "stage": i + 1,
                                "stage_name": stage.name, "spec": str(stage), "shift": [dy, dx],
                                **by_key[(k, (dy, dx), i)]})
    return records, x, base, shared


def difference_rows(item: InputItem, opts: InvarianceJob, records: list[dict], measured=None) -> list[dict]:
    """Per method, at its worst (stage, shift): ``f(x)`` and ``|f(Tx) - S f(x)|`` (first channel), recomputed
    for that shift only; methods whose error is 0 at every shift are left out. ``measured``: the image, its
    unshifted crop and ``f(x)`` of :func:`measure_invariance`, so that only ``f(T x)`` is computed again."""
    import numpy as np

    from ..images import reduce_map
    from ..invariance import circular_shift, crop_pair
    from ..plots import DIFF_SIDE
    from ..stack import apply_stack

    x = load_input(item, opts) if measured is None else measured[0]
    stacks = method_stacks(opts)
    circular = opts.shift_mode == "circular"
    rows = []
    for k, (method, st) in enumerate(stacks):
        mine = [r for r in records if r["method"] == method and r["equiv_rel_l2"]]
        if not mine:
            continue
        w = max(mine, key=lambda r: r["equiv_rel_l2"])
        dy, dx = w["shift"]
        with np.errstate(all="ignore"):
            if circular:
                base = crop_to_stride(x, stacks)
                tx = circular_shift(base, dy, dx)
            else:
                m = max(max(abs(a), abs(b)) for a, b in opts.shifts)
                base, tx = crop_pair(x, 0, 0, m)[0], crop_pair(x, dy, dx, m)[1]
            fx = (apply_stack(base, st) if measured is None else measured[2].fx(k))[w["stage"] - 1][0]
            ftx = (apply_stack(tx, st) if measured is None else measured[2].ftx(k, (dy, dx), tx))[w["stage"] - 1][0]
            offset = w.get("equiv_offset") or [0, 0]
            moved = np.roll(fx, tuple(offset), axis=(-2, -1))
            if moved.shape != ftx.shape:
                continue
            diff = np.abs(ftx - moved)
            # drawn at about DIFF_SIDE pixels a side: reduced first, the differences by their block maximum
            factor = max(1, -(-max(fx.shape) // DIFF_SIDE))
            if factor > 1:
                fx, diff = reduce_map(fx, factor), reduce_map(diff, factor, "absmax")
        rows.append({"method": method, "stage": f"{w['stage']} ({w['stage_name']})", "shift": (dy, dx),
                     "error": w["equiv_rel_l2"], "fx": fx, "diff": diff, "reduced": factor})
    return rows


def write_differences(item: InputItem, opts: InvarianceJob, out_dir: Path, records: list[dict], measured=None) -> None:
    """``invariance-maps/<input>.png``: where in the image a shift changes each method's map (plot extra)."""
    from ..plots import difference_plot, have_matplotlib
    from ..report import printable

    if not have_matplotlib():
        return
    rows = difference_rows(item, opts, records, measured)
    rel = item.out_rel
    computed = [r for r in records if r["equiv_rel_l2"] is not None]  # (this input's records)
    empty = ("error 0 at every shift for every method" if len(computed) == len(records) else
             "error 0 wherever it could be computed" if computed else
             "no error could be computed: NaN or infinite values in the maps")
    png = difference_plot(rows, title=f"{printable(item.label)}: where a shift changes the map ({opts.shift_mode})",
                          empty=empty)
    atomic_write_bytes(out_dir / DIFFERENCE_MAPS / rel.with_name(rel.name + ".png"), png)
