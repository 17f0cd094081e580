"""The old call shapes of poolcli.batch, mapped onto the jobs (goes when nothing uses them).

Before :mod:`poolcli.jobs`, ``poolcli.batch`` held the options and the
per-input functions of both commands, and callers named a command by a
string (``previous_outputs(out, items, "run")``). :mod:`poolcli.batch` finds
the names listed in :data:`MOVED_FROM_BATCH` here (by module name, at first
use: it never imports a job), and :func:`job_named` turns a command's name
into its job class (which answers ``marker_path`` and ``previous_output``).
This is the only module that lists the jobs by name.

Imports: :mod:`poolcli.jobs.run`, :mod:`poolcli.jobs.invariance`, :mod:`poolcli.batch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..batch import InputItem
from .invariance import (
    INVARIANCE_MARKERS,
    InvarianceJob,
    InvarianceOptions,
    crop_to_stride,
    invariance_one,
    method_stacks,
)
from .run import RUN_MARKER, RunJob, RunOptions, check_stack, run_one, stage_facts, unpool_geometry, unpool_map

JOBS: dict[str, type] = {RunJob.name: RunJob, InvarianceJob.name: InvarianceJob}

MOVED_FROM_BATCH = frozenset(
    {
        "RunOptions",
        "InvarianceOptions",
        "run_one",
        "invariance_one",
        "run_task",
        "invariance_task",
        "method_stacks",
        "crop_to_stride",
        "stage_facts",
        "unpool_geometry",
        "unpool_map",
        "check_stack",
        "RUN_MARKER",
        "INVARIANCE_MARKERS",
    }
)


def job_named(name: str) -> type:
    """The job class of a command's name (``"run"``, ``"invariance"``)."""
    try:
        return JOBS[name]
    except KeyError:
        raise ValueError(f"unknown job {name!r}; known: {', '.join(JOBS)}") from None


def run_task(item: InputItem, opts: RunJob, fp: str | None) -> dict[str, Any]:
    """The old ``batch.run_task``: ``opts.process(item, fp, opts.out_dir)``."""
    return opts.process(item, fp, Path(opts.out_dir))


def invariance_task(item: InputItem, opts: InvarianceJob, fp: str | None, out_dir: Path) -> dict[str, Any]:
    """The old ``batch.invariance_task``: ``opts.process(item, fp, out_dir)``."""
    return opts.process(item, fp, out_dir)


__all__ = sorted(MOVED_FROM_BATCH | {"JOBS", "job_named"})
