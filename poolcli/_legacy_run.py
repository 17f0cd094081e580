"""TEMPORARY: the batch/report code that lived in cli.py, until the jobs package takes it."""
from __future__ import annotations
import json, os, sys
from pathlib import Path
from typing import NamedTuple, Optional
from rich.console import Console
from . import __version__
from .errors import ExitStatus, UsageError
from rich.markup import escape as _escape
out_console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
class LoadArgs(NamedTuple):
    """How inputs are loaded (images.load_image's keyword options)."""

    nan: str = "error"
    max_pixels: Optional[int] = None
    max_frames: Optional[int] = None


class BatchArgs(NamedTuple):
    """The batch options shared by run and invariance."""

    recursive: bool = True
    globs: Optional[list[str]] = None
    workers: Optional[int] = None
    scheduler: Optional[str] = None
    resume: bool = False
    force: bool = False
    threads: Optional[int] = None


def _prepare_batch(command: str, paths: list[Path], out: Path, batch: BatchArgs):
    """Check the options, find the inputs, and refuse to overwrite an earlier run: all before any work."""
    from .batch import previous_outputs, scan
    from .outputs import check_writable
    from .parallel import check_scheduler

    if batch.resume and batch.force:
        raise UsageError("--resume and --force cannot be combined: --resume keeps finished outputs, --force redoes them")
    check_scheduler(batch.scheduler)
    out_dir = check_writable(out)
    found = scan(list(paths), recursive=batch.recursive, globs=batch.globs, exclude=[out_dir])
    if not found.items:
        raise UsageError("no images found in " + ", ".join(str(p) for p in paths))
    if not (batch.resume or batch.force):
        prev = previous_outputs(out_dir, found.items, command)
        if prev is not None:
            raise UsageError(
                f"--out {out_dir} already holds outputs of an earlier run ({prev}): "
                "add --resume to finish that run, or --force to overwrite it"
            )
    return out_dir, found


def _progress(quiet: bool, found, total: int):
    from .parallel import Progress

    if quiet:
        mode = "none"
    elif err_console.is_terminal and not err_console.is_dumb_terminal:
        mode = "bar"
    else:  # plain lines in logs, for folder batches; named files keep the one-line-per-failure output
        mode = "lines" if found.folders else "none"
    return Progress(err_console, mode, total)


def _batch(command: str, items, opts, out_dir: Path, batch: BatchArgs, quiet: bool, found, debug: bool):
    from ._threads import set_num_threads
    from .parallel import run_batch

    cores = os.cpu_count() or 1
    workers = batch.workers or cores
    # Set before the worker processes fork, so that they inherit it; several
    # processes share the cores rather than each starting one thread per core.
    set_num_threads(batch.threads if batch.threads else max(1, cores // min(workers, max(1, len(items)))))

    return run_batch(
        items,
        opts,
        command=command,
        out_dir=out_dir,
        workers=workers,
        scheduler=batch.scheduler,
        resume=batch.resume,
        progress=_progress(quiet, found, len(items)),
        debug=debug,
    )


def _interrupted(out_dir: Path, report_name: str) -> int:
    err_console.print(
        f"poolcli: interrupted; {_escape(str(out_dir / report_name))} lists what was done; "
        "run the same command with --resume to finish",
        highlight=False,
    )
    return ExitStatus.CTRL_C


def _run(
    paths, st, out, color, dense_units, json_out, png, montage, unpool, load: LoadArgs, batch: BatchArgs, quiet, debug
) -> int:
    from .batch import RunOptions
    from .outputs import save_csv, save_json
    from .report import SHAPES_CSV_HEADER, batch_summary_line, shape_table, shapes_csv_rows

    out_dir, found = _prepare_batch("run", paths, out, batch)
    items = found.items
    opts = RunOptions(
        stack=st,
        out_dir=out_dir,
        color=color,
        dense_units=dense_units,
        png=png,
        montage=montage,
        unpool=unpool,
        nan=load.nan,
        max_pixels=load.max_pixels,
        max_frames=load.max_frames,
    )
    res = _batch("run", items, opts, out_dir, batch, quiet, found, debug)
    records = [res.results[i] for i in sorted(res.results)]
    failures = [{"path": items[i].label, "error": res.errors[i]} for i in sorted(res.errors)]
    report = {
        "poolcli_version": __version__,
        "stack": str(st),
        "color": color,
        "dense_units": dense_units,
        "nan": load.nan,
        "max_pixels": load.max_pixels,
        "max_frames": load.max_frames,
        "out_dir": str(out_dir),
        "inputs": records,
        "failures": failures,
        "summary": res.counts(len(items), found.skipped),
        "interrupted": res.interrupted,
        "execution": {"workers": res.workers, "scheduler": res.scheduler},
    }
    save_json(out_dir / "report.json", report)
    save_csv(out_dir / "shapes.csv", SHAPES_CSV_HEADER, shapes_csv_rows(records))
    if res.interrupted:
        return _interrupted(out_dir, "report.json")
    if json_out:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    elif not quiet:
        shown_shapes: set[tuple] = set()
        for rec in records:  # one shape report per distinct input size, in input order
            key = tuple(rec["input_shape"])
            if key not in shown_shapes:
                shown_shapes.add(key)
                out_console.print(shape_table(rec, dense_units))
        out_console.print(f"stack: [bold]{_escape(str(st))}[/]")
        out_console.print(batch_summary_line(report["summary"]), highlight=False)
        out_console.print(f"outputs in {_escape(str(out_dir))}/ (report.json, shapes.csv)", highlight=False)
    return ExitStatus.ERROR if failures else ExitStatus.SUCCESS


def _invariance(
    paths, st, pairs, methods, shift_mode, out, color, json_out, plot, load: LoadArgs, batch: BatchArgs, quiet, debug
) -> int:
    from .batch import InvarianceOptions, method_stacks
    from .outputs import atomic_write_bytes, save_csv, save_json
    from .plots import PLOT_HINT, have_matplotlib, invariance_plot
    from .report import (
        INVARIANCE_AGG_CSV_HEADER,
        INVARIANCE_CSV_HEADER,
        aggregate_table,
        batch_summary_line,
        invariance_aggregate_csv_rows,
        invariance_aggregates,
        invariance_csv_rows,
        invariance_table,
        summarize_methods,
        summary_table,
    )

    out_dir, found = _prepare_batch("invariance", paths, out, batch)
    items = found.items
    opts = InvarianceOptions(
        stack=st,
        shifts=tuple(pairs),
        methods=methods,
        shift_mode=shift_mode,
        color=color,
        nan=load.nan,
        max_pixels=load.max_pixels,
        max_frames=load.max_frames,
    )
    stacks = method_stacks(opts)
    res = _batch("invariance", items, opts, out_dir, batch, quiet, found, debug)
    records: list[dict] = [r for i in sorted(res.results) for r in res.results[i]]
    failures = [{"path": items[i].label, "error": res.errors[i]} for i in sorted(res.errors)]
    summary = summarize_methods(records)
    aggregates = invariance_aggregates(records)
    note = (
        "circular: shifts are np.roll; every padding and boundary in the stack was made circular (filters wrap, "
        "pools pad by wrapping), and each image was cropped (bottom/right) to a multiple of the stack's total "
        "stride so that shifts wrap onto the pooling grid: borders do not pollute the measurement"
        if shift_mode == "circular"
        else "crop: two equal-size crops whose offsets differ by the shift (Zhang 2019); the stack runs as configured"
    )
    counts = res.counts(len(items), found.skipped)
    report = {
        "poolcli_version": __version__,
        "stack": str(st),
        "shift_mode": shift_mode,
        "nan": load.nan,
        "max_pixels": load.max_pixels,
        "max_frames": load.max_frames,
        "note": note,
        "methods": {m: str(s) for m, s in stacks},
        "shifts": [list(s) for s in pairs],
        "records": records,
        "summary": summary,
        "aggregates": aggregates,
        "failures": failures,
        "seconds": counts["seconds"],
        "batch_summary": counts,
        "interrupted": res.interrupted,
        "execution": {"workers": res.workers, "scheduler": res.scheduler},
    }
    save_json(out_dir / "invariance.json", report)
    save_csv(out_dir / "invariance.csv", INVARIANCE_CSV_HEADER, invariance_csv_rows(records))
    save_csv(out_dir / "invariance_aggregates.csv", INVARIANCE_AGG_CSV_HEADER, invariance_aggregate_csv_rows(aggregates))
    if res.interrupted:
        return _interrupted(out_dir, "invariance.json")
    plot_msg = None
    if plot and records:
        if have_matplotlib():
            atomic_write_bytes(out_dir / "invariance.png", invariance_plot(records, title=f"{str(st)} ({shift_mode})"))
        else:
            plot_msg = f"no plot: {PLOT_HINT}"
    n_ok = len(res.results)
    if json_out:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    elif not quiet:
        out_console.print(f"stack: [bold]{_escape(str(st))}[/]   shift mode: {shift_mode}", highlight=False)
        out_console.print(f"[dim]{_escape(note)}[/]")
        for method, _ in stacks:
            out_console.print(invariance_table(records, method))
        out_console.print(summary_table(summary))
        if n_ok > 1:
            out_console.print(aggregate_table(aggregates, n_ok))
        written = "invariance.json, invariance.csv, invariance_aggregates.csv" + (
            ", invariance.png" if plot and records and not plot_msg else ""
        )
        out_console.print(f"outputs in {_escape(str(out_dir))}/ ({written})", highlight=False)
        out_console.print(batch_summary_line(counts), highlight=False)
    if plot_msg and not json_out:
        err_console.print(f"poolcli: {plot_msg}", highlight=False)
    return ExitStatus.ERROR if failures else ExitStatus.SUCCESS


