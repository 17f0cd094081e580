"""Running one task per image: in-process, in a process pool, or on a Dask cluster; progress; Ctrl-C.

:func:`run_batch` is the loop behind ``poolcli run DIR`` and ``poolcli
invariance DIR``. It takes the inputs, skips those whose completion marker
matches (``--resume``), runs the rest with a bounded number of tasks in
flight (``2 x workers``: memory stays flat in the number of images; a task
returns a small record, never a map), reports progress, and returns the
outcomes by input index, so that reports keep the input order whatever the
completion order. Ctrl-C (or SIGTERM) stops the workers, removes their
temporary files and returns what was done with ``interrupted=True``.

Executors
---------
* ``workers == 1`` (or a single input): in this process, no pool.
* ``workers > 1``: :class:`concurrent.futures.ProcessPoolExecutor` with the
  ``fork`` start method on Linux (``spawn`` elsewhere). All workers are forked
  when the pool is created, before the progress bar's refresh thread starts,
  so no fork happens while another Python thread may hold a lock (OpenBLAS
  has its own fork handlers). Fork starts a pool in ~0.1 s where ``spawn`` /
  ``forkserver`` re-import numpy, scipy and Pillow in every worker (~1-2 s);
  ``POOLCLI_START_METHOD=forkserver|spawn`` overrides it.
  Workers ignore SIGINT (Ctrl-C is the parent's to handle), turn SIGTERM
  into a clean stop that deletes the temporary file being written, and die
  with their parent (``PR_SET_PDEATHSIG`` on Linux). ``OMP_NUM_THREADS=1``
  and friends are set in each worker; they only take effect with spawn or
  forkserver (a forked worker keeps the parent's BLAS), and matter little:
  the hot path (scipy.ndimage filters, strided-view pooling, PNG encoding)
  does not use BLAS threads.
* ``scheduler``: Dask distributed (``poolcli[dask]``): ``"local"`` for a
  LocalCluster of ``workers`` processes with one thread each on 127.0.0.1
  (no dashboard), or a scheduler address such as ``tcp://host:8786``. The
  workers need poolcli installed and write to the shared ``--out``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .batch import InputItem, fingerprint, load_marker, options_key
from .errors import OutputError, UsageError

__all__ = ["BatchResult", "run_batch", "check_scheduler", "Progress", "DASK_HINT"]

DASK_HINT = "pip install 'poolcli[dask]'"


# ----------------------------------------------------------------------------- progress


class Progress:
    """Progress on stderr: ``mode`` is ``bar`` (Rich, on a terminal), ``lines`` or ``none``.

    Failures are always printed, one line each; ``lines`` prints
    ``[k/N] path: ok`` for the others too. Only this object prints.
    """

    def __init__(self, console: Any, mode: str, total: int, description: str = "images"):
        self.console = console
        self.mode = mode
        self.total = total
        self.done = 0
        self._bar = None
        self._task = None
        self._description = description

    def __enter__(self) -> "Progress":
        if self.mode == "bar" and self.total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress as RichProgress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = RichProgress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._description, total=self.total, rate="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def note(self, text: str) -> None:
        """A one-off message (e.g. how many inputs a resume skips); not in ``none`` mode."""
        if self.mode != "none":
            self._print(text)

    def advance(self, label: str, error: str | None) -> None:
        from rich.markup import escape

        self.done += 1
        if self.mode == "lines":
            status = "ok" if error is None else f"FAILED {error}"
            self._print(escape(f"[{self.done}/{self.total}] {label}: {status}"))
        elif error is not None:
            self._print(f"[bold red]poolcli:[/] {escape(f'{label}: {error}')}")
        if self._bar is not None:
            task = self._bar.tasks[0]
            speed = task.finished_speed or task.speed
            rate = f"{speed:.1f} img/s" if speed else ""
            self._bar.update(self._task, advance=1, rate=rate)

    def _print(self, text: str) -> None:
        (self._bar.console if self._bar is not None else self.console).print(text, highlight=False, soft_wrap=True)


# ----------------------------------------------------------------------------- results


@dataclass
class BatchResult:
    """What a batch did. ``results`` and ``errors`` are keyed by input index."""

    results: dict[int, Any] = field(default_factory=dict)  # index -> record (run) or list of records
    errors: dict[int, str] = field(default_factory=dict)  # index -> reason
    resumed: int = 0
    processed: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    workers: int = 1
    scheduler: str | None = None
    mismatched: int = 0  # markers found that did not match (options or input changed)

    def counts(self, found: int, non_images: int) -> dict[str, Any]:
        """The summary block of a report."""
        failed = len(self.errors)
        return {
            "found": found,
            "processed": self.processed,
            "skipped": self.resumed + non_images,
            "resumed": self.resumed,
            "non_images": non_images,
            "failed": failed,
            "remaining": found - self.processed - self.resumed - failed,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.processed / self.seconds, 2) if self.seconds > 0 else 0.0,
        }


# ----------------------------------------------------------------------------- executors


def check_scheduler(scheduler: str | None) -> None:
    """Reject a bad ``--scheduler`` or a missing Dask before any work (exit code 2)."""
    if scheduler is None:
        return
    if scheduler != "local" and "://" not in scheduler:
        raise UsageError(f"--scheduler: invalid value {scheduler!r}: give 'local' or an address like tcp://HOST:8786")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(f"--scheduler needs Dask, which is not installed: {DASK_HINT}") from None


_IN_TASK = False


def _on_sigterm(signum: int, frame: Any) -> None:
    if _IN_TASK:
        raise KeyboardInterrupt  # unwinds through atomic writes, which delete their temp file
    os._exit(128 + signum)


def _worker_init() -> None:
    """Runs first in every pool worker."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except Exception:  # pragma: no cover - best effort
            pass


def _pooled(fn: Callable[..., dict], args: tuple) -> dict:
    global _IN_TASK
    _IN_TASK = True
    try:
        return fn(*args)
    except KeyboardInterrupt:
        os._exit(128 + signal.SIGTERM)  # stopped by the parent: temp files are already gone
    finally:
        _IN_TASK = False


_PRELOAD = ("poolcli.batch", "poolcli.images", "poolcli.stack", "poolcli.invariance", "poolcli.parallel")


def start_method() -> str:
    env = os.environ.get("POOLCLI_START_METHOD")
    if env:
        return env
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _bounded(
    submit: Callable, wait_one: Callable, jobs: Iterator, limit: int, pending: dict[Any, int]
) -> Iterator[tuple[int, dict]]:
    """Keep at most ``limit`` jobs in flight (in ``pending``); yield ``(index, outcome)`` as they complete."""

    def fill() -> None:
        while len(pending) < limit:
            try:
                index, args = next(jobs)
            except StopIteration:
                return
            pending[submit(index, args)] = index

    fill()
    while pending:
        for fut in wait_one(pending):
            index = pending.pop(fut)
            yield index, fut.result()
        fill()


class _Pool:
    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = start_method()
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":  # the server imports the numeric stack once; workers fork from it warm
            ctx.set_forkserver_preload(list(_PRELOAD))
        self.workers = workers
        self.pending: dict[Any, int] = {}
        self.ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)
        if method == "fork":
            # Fork every worker now, while this process has no other Python thread (the
            # progress bar's refresh thread starts later): the first submit launches them all.
            self.ex.submit(int).result()

    def run(self, fn: Callable, jobs: Iterator) -> Iterator[tuple[int, dict]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        def wait_one(pending):
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            return sorted(done, key=lambda f: pending[f])

        try:
            yield from _bounded(lambda i, a: self.ex.submit(_pooled, fn, a), wait_one, jobs, 2 * self.workers, self.pending)
        except BrokenProcessPool:
            raise OutputError("a worker process died (out of memory?); finish with --resume, or use fewer --workers") from None

    def harvest(self) -> list[tuple[int, dict]]:
        return _harvest(self.pending)

    def close(self, abort: bool) -> None:
        if not abort:
            self.ex.shutdown(wait=True)
            return
        procs = list((getattr(self.ex, "_processes", None) or {}).values())
        for p in procs:
            try:
                p.terminate()  # SIGTERM: a worker in a task deletes its temp file and exits
            except Exception:
                pass
        self.ex.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + 10
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)


class _Dask:
    def __init__(self, scheduler: str, workers: int):
        import logging
        import warnings

        import distributed

        self.distributed = distributed
        self.cluster = None
        if scheduler == "local":
            with warnings.catch_warnings():  # e.g. "Port 8787 is already in use": it picks another
                warnings.simplefilter("ignore")
                self.cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(scheduler)  # timeout: distributed.comm.timeouts.connect
            except (OSError, TimeoutError) as exc:
                raise UsageError(f"--scheduler: cannot reach {scheduler!r}: {exc}") from None
        nthreads = sum(self.client.nthreads().values())
        self.workers = nthreads or workers
        self.futures: set = set()
        self.pending: dict[Any, int] = {}

    def run(self, fn: Callable, jobs: Iterator) -> Iterator[tuple[int, dict]]:
        import uuid

        distributed = self.distributed
        tag = uuid.uuid4().hex[:12]
        ac = distributed.as_completed()

        def submit(index, args):
            fut = self.client.submit(fn, *args, key=f"poolcli-{tag}-{index}", pure=False)
            ac.add(fut)
            self.futures.add(fut)
            return fut

        def wait_one(pending):
            fut = next(ac)
            self.futures.discard(fut)
            return [fut]

        yield from _bounded(submit, wait_one, jobs, 2 * max(1, self.workers), self.pending)

    def harvest(self) -> list[tuple[int, dict]]:
        return _harvest(self.pending)

    def close(self, abort: bool) -> None:
        try:
            if abort:
                try:
                    self.client.cancel(list(self.futures))
                except Exception:
                    pass
            self.client.close(timeout=10)
        finally:
            if self.cluster is not None:
                self.cluster.close(timeout=20)


class _InProcess:
    workers = 1
    pending: dict = {}

    def run(self, fn: Callable, jobs: Iterator) -> Iterator[tuple[int, dict]]:
        for index, args in jobs:
            yield index, fn(*args)

    def harvest(self) -> list[tuple[int, dict]]:
        return []

    def close(self, abort: bool) -> None:
        pass


def _harvest(pending: dict[Any, int]) -> list[tuple[int, dict]]:
    """Outcomes of tasks that finished but were not collected when the batch stopped."""
    out = []
    for fut, index in sorted(pending.items(), key=lambda kv: kv[1]):
        try:
            if fut.done() and not fut.cancelled():
                out.append((index, fut.result(timeout=0)))
        except BaseException:
            pass
    return out


# ----------------------------------------------------------------------------- the batch loop


def _sweep_temp(folders: Iterable[Path]) -> None:
    """Delete temporary files (``.name.XXXX.tmp``) a stopped worker may have left in these folders."""
    for d in folders:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith(".") and e.name.endswith(".tmp") and e.is_file(follow_symlinks=False):
                try:
                    os.unlink(e.path)
                except OSError:
                    pass


class _Interrupt:
    """SIGTERM behaves like Ctrl-C while a batch runs (main thread only)."""

    def __enter__(self) -> None:
        self.old = None
        try:
            self.old = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread
            pass

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


def run_batch(
    items: Sequence[InputItem],
    opts: Any,
    *,
    command: str,
    out_dir: Path,
    workers: int,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Progress,
    debug: bool = False,
) -> BatchResult:
    """Run ``command`` (``run`` or ``invariance``) on every input; see the module docstring."""
    from .batch import invariance_task, marker_path, run_task

    t0 = time.perf_counter()
    res = BatchResult(scheduler=scheduler)
    key = options_key(opts)
    fps = [fingerprint(it, key) for it in items]
    todo: list[int] = []
    for i, it in enumerate(items):
        cached = load_marker(out_dir, it, command, fps[i]) if resume else None
        if cached is not None:
            res.results[i] = cached
            res.resumed += 1
        else:
            if resume and marker_path(out_dir, it, command).exists():
                res.mismatched += 1
            todo.append(i)
    progress.total = len(todo)
    if res.resumed:
        progress.note(f"resume: {res.resumed} of {len(items)} input(s) already done, {len(todo)} to go")
    if res.mismatched:
        progress.note(f"resume: {res.mismatched} earlier result(s) no longer match the options or the input; redoing them")

    dask_items = scheduler is not None
    if dask_items:  # remote workers need absolute paths; reports keep the paths as given
        run_items = [InputItem(Path(os.path.abspath(it.path)), it.out_rel, it.label) for it in items]
        target = Path(os.path.abspath(out_dir))
    else:
        run_items, target = list(items), out_dir
    if command == "run":
        from dataclasses import replace

        task_opts = replace(opts, out_dir=target)
        fn: Callable[..., dict] = run_task
        make_args = lambda i: (run_items[i], task_opts, fps[i])  # noqa: E731
    else:
        fn = invariance_task
        make_args = lambda i: (run_items[i], opts, fps[i], target)  # noqa: E731

    n_workers = max(1, workers)
    if scheduler is not None:
        executor: Any = _Dask(scheduler, n_workers)
    elif n_workers > 1 and len(todo) > 1:
        executor = _Pool(min(n_workers, len(todo)))
    else:
        executor = _InProcess()
    res.workers = executor.workers
    in_flight: set[int] = set()
    jobs_iter = iter(todo)

    def jobs() -> Iterator[tuple[int, tuple]]:
        for i in jobs_iter:
            in_flight.add(i)
            yield i, make_args(i)

    def take(index: int, outcome: dict) -> None:
        in_flight.discard(index)
        if "fatal" in outcome:
            raise OutputError(outcome["fatal"])
        if outcome["ok"]:
            res.results[index] = outcome["result"]
            res.processed += 1
            progress.advance(items[index].label, None)
        else:
            if debug:
                from .errors import InputError

                raise InputError(items[index].path, outcome["error"])
            res.errors[index] = outcome["error"]
            progress.advance(items[index].label, outcome["error"])

    abort = True
    try:
        with _Interrupt(), progress:
            for index, outcome in executor.run(fn, jobs()):
                take(index, outcome)
        abort = False
    except KeyboardInterrupt:
        if debug:
            raise
        res.interrupted = True
        for index, outcome in executor.harvest():  # finished while we were being interrupted
            if index not in res.results and index not in res.errors and "fatal" not in outcome:
                take(index, outcome)
    finally:
        try:
            executor.close(abort)
        finally:
            if abort:
                folders = {(out_dir / items[i].out_rel) for i in in_flight}
                if command == "invariance":
                    folders = {marker_path(out_dir, items[i], command).parent for i in in_flight}
                _sweep_temp(folders | {out_dir})
    res.seconds = time.perf_counter() - t0
    return res
