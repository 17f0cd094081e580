"""Batch commands as jobs: :func:`execute` runs any :class:`~poolcli.jobs.base.Job` over PATH arguments.

One module per command (:mod:`~poolcli.jobs.run`, :mod:`~poolcli.jobs.invariance`)
implements the protocol of :mod:`~poolcli.jobs.base`; discovery and markers
(:mod:`poolcli.batch`) and the executors (:mod:`poolcli.parallel`) serve
every job alike. A new batch command is one new module here.

:func:`execute` is the whole life of a batch command short of printing:

1. :func:`prepare`: ``--resume`` with ``--force`` is refused, ``--scheduler``
   and ``--out`` are checked, the PATHs are scanned (``--out`` excluded), and
   an earlier run's outputs are refused without ``--resume``/``--force``; then
   ``job.check()``. All before any work; errors are
   :class:`~poolcli.errors.UsageError` / :class:`~poolcli.errors.OutputError`.
2. the numeric thread count per process, then :func:`poolcli.parallel.run_batch`;
3. ``job.finish(outcome)``: the report files, written while Ctrl-C is held
   back (see :class:`poolcli.parallel.Interrupts`).

It returns a :class:`~poolcli.jobs.base.JobOutcome`: the report, what
happened, the exit code and the lines for stderr; the CLI prints.

Imports: :mod:`poolcli.jobs.base`, :mod:`poolcli.batch`, :mod:`poolcli.parallel`,
:mod:`poolcli.outputs`, :mod:`poolcli.errors`, :mod:`poolcli._threads` (lazily).
Not the job modules: import them yourself (``from poolcli.jobs.run import RunJob``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from ..batch import Discovery, previous_outputs, scan
from ..errors import OutputError, PoolcliError, UsageError
from ..report import printable
from ..outputs import check_writable
from ..parallel import Interrupts, Progress, check_scheduler, run_batch
from .base import BatchArgs, Job, JobOutcome, LoadArgs


class InputMissing(PoolcliError):
    """Every input named on the command line is missing: exit 1, and nothing is created."""

__all__ = ["execute", "prepare", "thread_count", "BatchArgs", "LoadArgs", "Job", "JobOutcome", "ProgressFactory"]

ProgressFactory = Callable[[Discovery, int], Progress]  # (what the scan found, number of inputs) -> Progress


def prepare(job: Job, paths: Sequence[Path], out: Path, batch: BatchArgs) -> tuple[Path, Discovery]:
    """Check the options, find the inputs, refuse to overwrite an earlier run: ``(out_dir, discovery)``."""
    if batch.resume and batch.force:
        raise UsageError("--resume and --force cannot be combined: --resume keeps finished outputs, --force redoes them")
    check_scheduler(batch.scheduler)
    missing = [p for p in paths if not os.path.lexists(p)]
    if missing and len(missing) == len(paths):  # nothing to do: create nothing
        raise InputMissing(f"{printable(str(missing[0]))}: file not found"
                           + (f" (and {len(missing) - 1} more inputs)" if len(missing) > 1 else ""))
    out_dir = check_writable(out)
    found = scan(list(paths), recursive=batch.recursive, globs=batch.globs, exclude=[out_dir])
    if not found.items:
        raise UsageError("no images found in " + ", ".join(printable(str(p)) for p in paths))
    if not (batch.resume or batch.force):
        prev = previous_outputs(out_dir, found.items, job)
        if prev is not None:
            raise UsageError(
                f"--out {out_dir} already holds outputs of an earlier run ({prev}): "
                "add --resume to finish that run, or --force to overwrite it"
            )
    job.check()
    return out_dir, found


def thread_count(batch: BatchArgs, n_inputs: int) -> tuple[int, int]:
    """``(workers, threads per process)``: ``--workers`` or the cores; ``--threads`` or the cores shared out."""
    cores = os.cpu_count() or 1
    workers = batch.workers or cores
    return workers, batch.threads if batch.threads else max(1, cores // min(workers, max(1, n_inputs)))


def execute(
    job: Job,
    paths: Sequence[Path],
    out: Path,
    batch: BatchArgs = BatchArgs(),
    *,
    progress: Optional[ProgressFactory] = None,
    debug: bool = False,
) -> JobOutcome:
    """Run ``job`` on the images under ``paths`` into ``out``; write its reports; return the outcome.

    ``progress(found, total)`` builds the :class:`~poolcli.parallel.Progress`
    that reports each input (``found`` is the :class:`~poolcli.batch.Discovery`,
    ``total`` the number of inputs); None: silent. With ``debug``, a failing
    input or Ctrl-C raises instead of being recorded. A Ctrl-C that arrives
    after the last input, while the reports are written, is raised as
    ``KeyboardInterrupt`` once they are complete.
    """
    from ..storage import is_url

    if is_url(out) or any(is_url(p) for p in paths):
        return _execute_stored(job, paths, out, batch, progress, debug)
    out_dir, found = prepare(job, [Path(p) for p in paths], Path(out), batch)
    with lock_out(out_dir):
        return _run_locked(job, out_dir, found, batch, progress, debug)


def _execute_stored(job: Job, paths: Sequence, out, batch: BatchArgs, progress, debug: bool) -> JobOutcome:
    """:func:`execute` with URL inputs and/or a URL ``--out`` (:mod:`poolcli.remote`): the workers do the I/O."""
    from .. import remote
    from ..storage import is_url

    options = batch.storage_options or {}
    if batch.resume and batch.force:
        raise UsageError("--resume and --force cannot be combined: --resume keeps finished outputs, --force redoes them")
    check_scheduler(batch.scheduler)
    batch = _in_process_for_memory(paths, out, batch)
    stored = remote.RemoteOut(str(out), options) if is_url(out) else None
    try:
        found = _scan_mixed(paths, batch, options, str(out) if stored is not None else None,
                            None if stored is not None else Path(out))
        if stored is not None:  # after the scan: a run whose inputs all do not exist creates nothing
            stored.check()
        out_dir = stored.local if stored is not None else check_writable(out)
        if not found.items:
            raise UsageError("no images found in " + ", ".join(printable(str(p)) for p in paths))
        if not (batch.resume or batch.force):
            prev = stored.previous(found.items, job) if stored is not None else previous_outputs(out_dir, found.items, job)
            if prev is not None:
                raise UsageError(f"--out {out} already holds outputs of an earlier run ({prev}): "
                                 "add --resume to finish that run, or --force to overwrite it")
        job.check()
        target = remote.Target(options, stored.store if stored is not None else None,
                               None if stored is not None else out_dir)
        if stored is None:
            with lock_out(out_dir):
                return _run_locked(job, out_dir, found, batch, progress, debug, target=target)
        outcome = _run_locked(job, out_dir, found, batch, progress, debug, target=target, stored=stored)
        stored.publish()
        return outcome
    finally:
        if stored is not None:
            stored.close()


def _in_process_for_memory(paths: Sequence, out, batch: BatchArgs) -> BatchArgs:
    """``memory://`` lives in this process: its batches run here, one input at a time."""
    import dataclasses

    if not any(str(p).lower().startswith("memory://") for p in [*paths, out]):
        return batch
    if batch.scheduler is not None or (batch.workers or 1) > 1:
        raise UsageError("memory:// URLs live in this process: use --workers 1, without --scheduler")
    return dataclasses.replace(batch, workers=1)


def _scan_mixed(paths: Sequence, batch: BatchArgs, options: dict, out_url: str | None, out_dir: Path | None) -> Discovery:
    """:func:`poolcli.batch.scan` over local paths and URLs alike, in the order given, with its naming rules."""
    from .. import remote
    from ..batch import distinct_outputs
    from ..storage import is_url

    several = len(paths) > 1
    items, skipped, folders, missing = [], 0, False, []
    for p in paths:
        if is_url(p):
            remote.check_url_input(str(p), options)
            part = remote.scan_url(str(p), options, batch.recursive, batch.globs, several, exclude=out_url)
            if part.items and all(it.error == remote.NOT_FOUND for it in part.items):
                missing.append(str(p))
        else:
            if not os.path.lexists(p):
                missing.append(str(p))
            part = scan([Path(p)], recursive=batch.recursive, globs=batch.globs,
                        exclude=[out_dir] if out_dir is not None else [], several=several)
        items += part.items
        skipped += part.skipped
        folders = folders or part.folders
    if missing and len(missing) == len(paths):
        raise InputMissing(f"{printable(missing[0])}: not found"
                           + (f" (and {len(missing) - 1} more inputs)" if len(missing) > 1 else ""))
    return Discovery(distinct_outputs(items), skipped, folders)


LOCK_NAME = ".poolcli.lock"


class OutLocked(OutputError):
    """Another poolcli run writes into the same --out (exit 1)."""


@contextlib.contextmanager
def lock_out(out_dir: Path) -> Iterator[None]:
    """One writer per ``--out``: an advisory lock (``fcntl.flock``) on ``<out>/.poolcli.lock``.

    The file says who holds it (pid and host). The kernel drops the lock when
    its process dies, so a lock left by a killed run is stale and taken over.
    The file is removed when the run ends.
    """
    import fcntl
    import socket

    path = out_dir / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = printable(os.read(fd, 200).decode("utf-8", "replace").strip()) or "another process"
            os.close(fd)
            raise OutLocked(f"--out {out_dir} is in use by another poolcli run ({holder}); wait for it, or use "
                            "another --out") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except OSError:
            same = False
        if same:
            break
        os.close(fd)  # the run that held it removed the file meanwhile: lock the file that is there now
    try:
        _sweep_staging(out_dir)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        try:
            yield
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass
    finally:
        os.close(fd)


def _sweep_staging(out_dir: Path) -> None:
    """Remove what a killed run left while replacing an input's folder (``.poolcli-new-*``, ``.poolcli-old-*``)."""
    import shutil

    for p in out_dir.glob(".poolcli-*-*"):
        if p.name.startswith((".poolcli-new-", ".poolcli-old-")) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def _run_locked(job: Job, out_dir: Path, found: Discovery, batch: BatchArgs, progress, debug: bool,
                target=None, stored=None) -> JobOutcome:
    from .._threads import set_num_threads

    items = found.items
    workers, threads = thread_count(batch, len(items))
    if hasattr(job, "memory_share") and batch.scheduler in (None, "local"):  # processes sharing this machine
        import dataclasses

        job = dataclasses.replace(job, memory_share=max(1, min(workers, len(items))))
    # Set before the worker processes fork, so that they inherit it; several
    # processes share the cores rather than each starting one thread per core.
    set_num_threads(threads)
    bar = progress(found, len(items)) if progress is not None else Progress(None, "none", len(items))
    with Interrupts() as interrupts:
        res = run_batch(
            items, job, out_dir=out_dir, workers=workers, scheduler=batch.scheduler, resume=batch.resume,
            progress=bar, debug=debug, interrupts=interrupts, target=target, markers=stored,
        )
        outcome = JobOutcome(
            out_dir=out_dir,
            items=items,
            report_name=job.report_name,
            results=res.results,
            errors=res.errors,
            counts=res.counts(len(items), found.skipped),
            interrupted=res.interrupted,
            execution={"workers": res.workers, "scheduler": res.scheduler},
            timings=res.timings,
        )
        if stored is not None:
            outcome.out_url, outcome.stored = stored.url, stored.listing_after()
        outcome.report = job.finish(outcome)
    return outcome
