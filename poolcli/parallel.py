"""Running a job on many inputs: in-process, in a process pool, or on a Dask cluster; progress; Ctrl-C.

What this module knows: executors, the bounded loop over tasks, resume
(which inputs a matching marker already covers), progress output and signals.
It knows no job kind: :func:`run_batch` takes any :class:`poolcli.jobs.base.Job`
and runs ``job.process(item, fingerprint, out_dir)`` for each input, through
the module-level :func:`process_one` (picklable, for pool and Dask workers).

Imports: :mod:`poolcli.batch` (inputs, fingerprints, markers) and
:mod:`poolcli.errors`; lazily Rich (progress), ``concurrent.futures`` /
``multiprocessing`` and Dask ``distributed``. Only :class:`Progress` prints.

:func:`run_batch` is the loop behind every batch command. It takes the
inputs, skips those whose completion marker matches (``--resume``), runs the
rest with a bounded number of tasks in flight (``2 x workers``: memory stays
flat in the number of images; a task returns a small record, never a map),
reports progress, and returns the outcomes by input index, so that reports
keep the input order whatever the completion order. Ctrl-C (or SIGTERM) stops
the workers, removes their temporary files and returns what was done with
``interrupted=True``.

Signals (:class:`Interrupts`)
-----------------------------
While a batch runs, SIGINT and SIGTERM raise ``KeyboardInterrupt`` in the main
thread. From the moment the loop ends (done, or stopped by that first signal)
until the caller has written its reports and leaves the ``Interrupts`` block,
a further signal is held back: the report files are never left half-written
or out of step with each other. A signal held back after a batch that was
*not* interrupted is raised as ``KeyboardInterrupt`` when the block ends,
after the reports are complete.

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

import dataclasses
import gc
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from ._malloc import bound_heap
from .batch import InputItem, fingerprint, load_marker
from .errors import InputError, OutputError, UsageError

__all__ = ["BatchResult", "run_batch", "process_one", "check_scheduler", "Progress", "Interrupts", "DASK_HINT"]

DASK_HINT = "pip install 'poolcli[dask]'"


# ----------------------------------------------------------------------------- progress


def _short(label: str, limit: int = 40) -> str:
    """The end of a file name, for the progress bar (the name of the last input done), on one line."""
    from .report import printable

    name = printable(label)
    return name if len(name) <= limit else "…" + name[-(limit - 1):]


class Progress:
    """Progress on stderr: ``mode`` is ``bar`` (Rich, on a terminal), ``lines`` or ``none``.

    Failures are always printed, one line each; ``lines`` prints
    ``[k/N] path: ok`` for the others too. Only this object prints; with
    ``console=None`` it prints nothing at all.
    """

    def __init__(self, console: Any, mode: str, total: int, description: str = "images"):
        self.console = console
        self.mode = mode
        self.total = total
        self.done = 0
        self.failed = 0
        self._bar = None
        self._task = None
        self._description = description
        self._last_width = 40

    def __enter__(self) -> "Progress":
        if self.mode == "bar" and self.total:
            from rich.progress import Progress as RichProgress

            columns, self._last_width = self._columns(self.console.width)
            self._bar = RichProgress(*columns, console=self.console, transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self._description, total=self.total, rate="", failed="", last="")
        return self

    def _columns(self, width: int) -> tuple[list, int]:
        """The bar's columns for a terminal ``width`` wide, and the room left for the last file's name.

        Every column gets the width its widest value needs (the counts, the times, the rate never lose
        a digit); what does not fit is given up in this order: the bar narrowed to 20, the last file's
        name, the bar narrowed to 10, the bar, the rate, the percentage, the time left, the elapsed time.
        """
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        digits = len(str(self.total))

        def fixed(n: int) -> Column:
            return Column(no_wrap=True, min_width=n, max_width=n, justify="right")

        keep = {"description": len(self._description), "bar": 40, "count": 2 * digits + 1, "percent": 4,
                "rate": 13, "elapsed": 8, "eta": 12, "failed": digits + 7, "last": 12}  # name -> width
        order = list(keep)
        give_up = [("bar", 20), ("last", 0), ("bar", 10), ("bar", 0), ("rate", 0), ("percent", 0), ("eta", 0),
                   ("elapsed", 0)]

        def used() -> int:
            return sum(keep.values()) + len(keep) - 1

        for name, narrower in give_up:
            if used() <= width:
                break
            if name not in keep:
                continue
            if narrower:
                keep[name] = max(narrower, keep[name] - (used() - width))
            else:
                del keep[name]
        room = (width - used() + keep["last"]) if "last" in keep else 0
        columns = []
        for name in order:
            if name not in keep:
                continue
            if name == "description":
                columns.append(TextColumn("[progress.description]{task.description}",
                                          table_column=Column(no_wrap=True)))
            elif name == "bar":
                columns.append(BarColumn(bar_width=keep["bar"]))
            elif name == "count":
                columns.append(MofNCompleteColumn(table_column=fixed(keep["count"])))
            elif name == "percent":
                columns.append(TaskProgressColumn(table_column=fixed(4)))
            elif name == "rate":
                columns.append(TextColumn("{task.fields[rate]}", table_column=fixed(13)))
            elif name == "elapsed":
                columns.append(TimeElapsedColumn(table_column=fixed(8)))
            elif name == "eta":
                columns += [TextColumn("ETA", table_column=Column(no_wrap=True)),
                            TimeRemainingColumn(table_column=fixed(8))]
            elif name == "failed":
                columns.append(TextColumn("{task.fields[failed]}", style="bold red", table_column=fixed(digits + 7)))
            else:
                columns.append(TextColumn("{task.fields[last]}", style="dim", markup=False,  # the name as it is
                                          table_column=Column(no_wrap=True, max_width=room, overflow="crop")))
        return columns, room

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

        from .report import printable

        self.done += 1
        if self.mode == "lines":
            status = "ok" if error is None else f"FAILED {error}"
            self._print(escape(f"[{self.done}/{self.total}] {printable(f'{label}: {status}')}"))  # one line
        elif error is not None:
            self._print(f"[bold red]poolcli:[/] {escape(printable(f'{label}: {error}'))}")
        if self._bar is not None:
            task = self._bar.tasks[0]
            speed = task.finished_speed or task.speed
            rate = f"{speed:.1f} img/s" if speed else ""
            self.failed += error is not None
            self._bar.update(self._task, advance=1, rate=rate, failed=f"{self.failed} failed" if self.failed else "",
                             last=_short(label, self._last_width) if self._last_width > 1 else "")

    def _print(self, text: str) -> None:
        if self.console is None:
            return
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
    timings: dict[int, float] = field(default_factory=dict)  # index -> seconds the input took (not resumed ones)

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
    if scheduler != "local":
        scheduler_address(scheduler)
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(f"--scheduler needs Dask, which is not installed: {DASK_HINT}") from None


#: How long poolcli waits for a scheduler that does not answer (a refused connection fails at once).
SCHEDULER_TIMEOUT = 10.0


def scheduler_address(scheduler: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` (or ``tls://``) as (host, port); a malformed value is a usage error (exit 2)."""
    from urllib.parse import urlsplit

    bad = UsageError(f"--scheduler: invalid value {scheduler[:80]!r}: give 'local' or an address like tcp://HOST:8786")
    try:
        parts = urlsplit(scheduler)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise bad from None
    if parts.scheme not in ("tcp", "tls") or not host or port is None:
        raise bad
    return host, port


def reach_scheduler(scheduler: str) -> None:
    """Fail fast, one line, exit 1, when the scheduler's port cannot be reached (refused: at once)."""
    import socket

    host, port = scheduler_address(scheduler)
    try:
        with socket.create_connection((host, port), timeout=SCHEDULER_TIMEOUT):
            pass
    except OSError as exc:
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc) or "timed out")
        raise SchedulerUnreachable(f"--scheduler: cannot reach {scheduler!r}: {reason}") from None


class SchedulerUnreachable(OutputError):
    """The cluster is down or unreachable: the option was well formed (exit 1, not 2)."""


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


def process_one(job: Any, item: InputItem, fp: str | dict | None, out_dir: Path) -> dict:
    """The task of one input, for any executor: ``job.process(item, fp, out_dir)`` (module-level: picklable).

    ``fp`` may be the job's options key (a dict): the worker then computes the fingerprint itself, so the
    input's bytes are hashed where they are read, in parallel, not all up front in the main process.
    ``out_dir`` may be a :class:`poolcli.remote.Target` (a URL input or ``--out``): the worker then
    downloads its input and uploads its outputs itself.
    """
    bound_heap()  # map-sized arrays back to the OS when freed: peak memory that does not depend on thread timing
    if not isinstance(out_dir, Path):
        from .remote import process

        return process(job, item, fp, out_dir)
    if isinstance(fp, dict):
        fp = fingerprint(item, fp)
    return job.process(item, fp, out_dir)


def start_method() -> str:
    env = os.environ.get("POOLCLI_START_METHOD")
    if env:
        return env
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _bounded(
    submit: Callable, wait_one: Callable, jobs: Iterator, limit: int, pending: dict[Any, int],
    result: Callable[[Any], dict] = lambda fut: fut.result(),
) -> Iterator[tuple[int, dict]]:
    """Keep at most ``limit`` jobs in flight (in ``pending``); yield ``(index, outcome)`` as they complete.

    A future whose ``result`` raises stays in ``pending`` (the caller sees what was lost).
    """

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
            index = pending[fut]
            outcome = result(fut)
            del pending[fut]
            yield index, outcome
        fill()


def _lost(exc: BaseException) -> dict:
    """The outcome of a task whose worker was lost (Dask: KilledWorker, a worker's connection closed, ...)."""
    return {"ok": False, "error": f"worker lost ({type(exc).__name__}: {str(exc)[:160]})"}


def _death(procs: Sequence[Any]) -> str:
    """How a pool's worker died, from the exit codes of its processes: ``killed by SIGKILL`` or ``exited``."""
    for p in procs:
        code = getattr(p, "exitcode", None)
        if code is None and hasattr(p, "join"):  # dead but not yet reaped: wait a moment for its status
            try:
                p.join(timeout=1)
                code = p.exitcode
            except (AssertionError, ValueError, OSError):
                code = None
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    return "died"


class _Pool:
    """A process pool that survives a worker lost to a signal or the OOM killer (``BrokenProcessPool``).

    The inputs in flight when a worker died are run again once, each alone in
    a fresh one-worker pool (so a second death names its input); an input
    that kills its worker twice fails with the reason, and the batch goes on
    in a new pool.
    """

    def __init__(self, workers: int, preload: Sequence[str] = ()):
        self.workers = workers
        self.preload = preload
        self.pending: dict[Any, int] = {}
        self.ex, self.procs = self._start(workers)

    def _start(self, workers: int) -> tuple[Any, list]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = start_method()
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":  # the server imports the numeric stack once; workers fork from it warm
            ctx.set_forkserver_preload(list(_PRELOAD) + list(self.preload))
        ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)
        if method == "fork":
            # Everything imported and made so far is never garbage: out of the collector's sight (gc.freeze,
            # as Python's documentation advises before a fork), here and in the workers, which then do not
            # copy those objects' pages on write when a collection walks them (the main process of a
            # 200-image run: 18% of its CPU time in the collector, measured with perf).
            gc.freeze()
            # Fork every worker now, while this process has no other Python thread (the
            # progress bar's refresh thread starts later): the first submit launches them all.
            ex.submit(int).result()
        return ex, list((getattr(ex, "_processes", None) or {}).values())

    def run(self, fn: Callable, jobs: Iterator) -> Iterator[tuple[int, dict]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        def wait_one(pending):
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            return sorted(done, key=lambda f: pending[f])

        open_args: dict[int, tuple] = {}  # submitted, not yet reported: what a broken pool loses

        def tracked() -> Iterator[tuple[int, tuple]]:
            for index, args in jobs:
                open_args[index] = args
                yield index, args

        stream = tracked()
        while True:
            try:
                for index, outcome in _bounded(lambda i, a: self.ex.submit(_pooled, fn, a), wait_one, stream,
                                               2 * self.workers, self.pending):
                    open_args.pop(index, None)
                    yield index, outcome
                return
            except BrokenProcessPool:
                how = _death(self.procs + list((getattr(self.ex, "_processes", None) or {}).values()))
                lost = sorted(open_args.items())
                open_args.clear()
                self.pending.clear()
                self._replace(1)
                for index, args in lost:
                    yield index, self._again(fn, args, how)
                self._replace(self.workers)

    def _replace(self, workers: int) -> None:
        self.ex.shutdown(wait=False, cancel_futures=True)
        self.ex, self.procs = self._start(workers)

    def _again(self, fn: Callable, args: tuple, how: str) -> dict:
        """One input whose worker died, run again alone (in the one-worker pool)."""
        from concurrent.futures.process import BrokenProcessPool

        fut = self.ex.submit(_pooled, fn, args)
        self.pending[fut] = -1
        try:
            return fut.result()
        except BrokenProcessPool:
            again = _death(self.procs + list((getattr(self.ex, "_processes", None) or {}).values()))
            self._replace(1)
            return {"ok": False, "error": f"worker process {again} while processing it; it had also {how} "
                                          "the first time (retried once)"}
        finally:
            self.pending.pop(fut, None)

    def harvest(self) -> list[tuple[int, dict]]:
        return _harvest({f: i for f, i in self.pending.items() if i >= 0})

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
            reach_scheduler(scheduler)
            try:
                self.client = distributed.Client(scheduler, timeout=SCHEDULER_TIMEOUT)
            except Exception as exc:  # refused, timed out, or something that is not a Dask scheduler answered
                raise SchedulerUnreachable(f"--scheduler: cannot reach a Dask scheduler at {scheduler[:80]!r}: "
                                           f"{type(exc).__name__}: {str(exc)[:120]}") from None
        nthreads = sum(self.client.nthreads().values())
        self.workers = nthreads or workers
        self.futures: set = set()
        self.pending: dict[Any, int] = {}
        self.note: Callable[[str], None] | None = None  # set by the driver: where "waiting for a worker" goes
        # seconds without any result and without a worker before the run says that it waits for one
        self.idle_note = float(os.environ.get("POOLCLI_DASK_IDLE_NOTE", "10"))

    def _no_worker(self) -> bool:
        try:
            return not self.client.nthreads()
        except Exception:  # the scheduler itself is unreachable now: the next result says so
            return False

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
            # a cluster whose workers are all gone (or not yet started) runs nothing and says nothing: the run
            # says that it waits for a worker, and that it goes on when one connects
            waiting = False
            while True:
                try:
                    distributed.wait(list(self.futures), timeout=self.idle_note, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    if not waiting and self.note is not None and self._no_worker():
                        self.note("no Dask worker is connected to the scheduler: waiting for one "
                                  "(Ctrl-C stops; --resume finishes what is left later)")
                        waiting = True
                    continue
                except Exception:  # e.g. a cancelled future: as_completed hands it over, result() says what
                    pass
                fut = next(ac)
                self.futures.discard(fut)
                if waiting and self.note is not None:
                    self.note("a Dask worker is connected: going on")
                return [fut]

        def result(fut) -> dict:
            try:
                return fut.result()
            except Exception as exc:  # a worker killed (KilledWorker) or lost: that input fails, the batch goes on
                return _lost(exc)

        yield from _bounded(submit, wait_one, jobs, 2 * max(1, self.workers), self.pending, result)

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



class Interrupts:
    """SIGINT and SIGTERM while a batch runs and its reports are written (main thread only).

    Until :meth:`defer` (or the first signal), a signal raises
    ``KeyboardInterrupt``; after it, signals are held back (``pending``). On
    leaving the block the old handlers come back, and a held-back signal is
    raised as ``KeyboardInterrupt`` unless the batch already stopped for one
    (``honoured``) or an exception is on its way out. See the module docstring.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.deferring = False
        self.pending = False
        self.honoured = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "Interrupts":
        for sig in self.SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals are not ours to handle
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        from .errors import note_signal

        note_signal(signum)
        if self.deferring:
            self.pending = True
            return
        self.deferring = True  # the batch winds down now; a second Ctrl-C waits for the reports
        raise KeyboardInterrupt

    def defer(self) -> None:
        """From now on, hold signals back until the block ends."""
        self.deferring = True

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old.clear()
        if self.pending and not self.honoured and exc_type is None:
            raise KeyboardInterrupt


def _resumable(items: Sequence[InputItem], job: Any, out_dir: Path, resume: bool, res: BatchResult,
               markers: Any = None):
    """(fingerprints, indices still to do); inputs a matching marker covers go into ``res`` now.

    Only inputs with a marker are fingerprinted here (``--resume``); for the others the task carries the
    options key and the worker fingerprints the input (see :func:`process_one`). ``markers``: where the
    markers are read when not under ``out_dir`` (a :class:`poolcli.remote.RemoteOut`).
    """
    if markers is None:
        has_marker = lambda it: job.marker_path(out_dir, it).exists()  # noqa: E731
        cached_result = lambda it, fp: load_marker(out_dir, it, job, fp)  # noqa: E731
    else:
        has_marker = lambda it: markers.marked(it, job)  # noqa: E731
        cached_result = lambda it, fp: markers.load_marker(it, job, fp)  # noqa: E731
    key = job.options_key()
    fps: list[Any] = [key] * len(items)
    todo: list[int] = []
    for i, it in enumerate(items):
        marked = resume and not it.error and has_marker(it)
        if marked:
            fps[i] = fingerprint(it, key)
        cached = cached_result(it, fps[i]) if marked else None
        if cached is not None:
            res.results[i] = cached
            res.resumed += 1
        else:
            res.mismatched += marked
            todo.append(i)
    return fps, todo


def _executor(scheduler: str | None, workers: int, tasks: int, preload: Sequence[str]) -> Any:
    n_workers = max(1, workers)
    if scheduler is not None:
        return _Dask(scheduler, n_workers)
    if n_workers > 1 and tasks > 1:
        return _Pool(min(n_workers, tasks), preload)
    return _InProcess()


class _WorkerTraceback(Exception):
    """The traceback of an exception in a task (perhaps in another process), as text: printed by
    ``--debug`` as the cause of the input's error (what concurrent.futures does with its own)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text.rstrip()}\n"""'


def _take(index: int, outcome: dict, items: Sequence[InputItem], res: BatchResult, progress: Progress, debug: bool) -> None:
    """Record one task's outcome (``{"fatal": ...}`` stops the batch with an OutputError)."""
    if "fatal" in outcome:
        raise OutputError(outcome["fatal"])
    if outcome["ok"]:
        res.results[index] = outcome["result"]
        if outcome.get("seconds") is not None:
            res.timings[index] = outcome["seconds"]
        res.processed += 1
        progress.advance(items[index].label, None)
    else:
        if debug:  # --debug: the first failing input stops the batch, with the worker's traceback if it has one
            error = InputError(items[index].path, outcome["error"])
            if outcome.get("traceback"):
                raise error from _WorkerTraceback(outcome["traceback"])
            raise error
        res.errors[index] = outcome["error"]
        progress.advance(items[index].label, outcome["error"])


def run_batch(
    items: Sequence[InputItem],
    job: Any,
    *,
    out_dir: Path,
    workers: int,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Progress,
    debug: bool = False,
    interrupts: Interrupts | None = None,
    command: str | None = None,
    target: Any = None,
    markers: Any = None,
) -> BatchResult:
    """Run ``job`` on every input; see the module docstring.

    ``interrupts``: the caller's :class:`Interrupts` block, so that signals
    stay held back while it writes its reports; without it, one around the
    batch alone. ``command`` is ignored (the job knows what it is; kept for
    callers written before the jobs). ``target`` (a :class:`poolcli.remote.Target`)
    and ``markers`` (a :class:`poolcli.remote.RemoteOut`): URL inputs or a URL ``--out``.
    """
    if interrupts is None:
        with Interrupts() as own:
            return run_batch(
                items, job, out_dir=out_dir, workers=workers, scheduler=scheduler, resume=resume,
                progress=progress, debug=debug, interrupts=own, target=target, markers=markers,
            )
    t0 = time.perf_counter()
    res = BatchResult(scheduler=scheduler)
    fps, todo = _resumable(items, job, out_dir, resume, res, markers)
    progress.total = len(todo)
    if res.resumed:
        progress.note(f"resume: {res.resumed} of {len(items)} input(s) already done, {len(todo)} to go")
    if res.mismatched:
        progress.note(f"resume: {res.mismatched} earlier result(s) no longer match the options or the input; redoing them")
    if scheduler is not None:  # remote workers need absolute paths; reports keep the paths as given
        task_items = [it if it.url else dataclasses.replace(it, path=Path(os.path.abspath(it.path)), display=it.label)
                      for it in items]
        if target is None:
            target = Path(os.path.abspath(out_dir))
        elif target.local is not None:
            target = dataclasses.replace(target, local=Path(os.path.abspath(target.local)))
    else:
        task_items, target = list(items), out_dir if target is None else target
    tasks = ((i, (job, task_items[i], fps[i], target)) for i in todo)
    _drive(job, items, tasks, len(todo), res, out_dir, workers, scheduler, progress, debug, interrupts)
    res.seconds = time.perf_counter() - t0
    return res


def _drive(
    job: Any,
    items: Sequence[InputItem],
    tasks: Iterator[tuple[int, tuple]],
    n_tasks: int,
    res: BatchResult,
    out_dir: Path,
    workers: int,
    scheduler: str | None,
    progress: Progress,
    debug: bool,
    interrupts: Interrupts,
) -> None:
    """The executor loop: start the executor, run the tasks, stop cleanly on Ctrl-C / SIGTERM."""
    in_flight: set[int] = set()

    def tracked() -> Iterator[tuple[int, tuple]]:
        for index, args in tasks:
            in_flight.add(index)
            yield index, args

    executor = None
    abort = True
    try:
        executor = _executor(scheduler, workers, n_tasks, (type(job).__module__,))
        res.workers = executor.workers
        if hasattr(executor, "note"):
            executor.note = progress.note
        with progress:
            for index, outcome in executor.run(process_one, tracked()):
                in_flight.discard(index)
                _take(index, outcome, items, res, progress, debug)
        interrupts.defer()  # done: from here a signal waits until the reports are written
        abort = False
    except KeyboardInterrupt:
        interrupts.defer()
        if debug:
            raise
        res.interrupted = interrupts.honoured = True
        for index, outcome in executor.harvest() if executor is not None else ():  # finished as we stopped
            if index not in res.results and index not in res.errors and "fatal" not in outcome:
                in_flight.discard(index)
                _take(index, outcome, items, res, progress, debug)
    finally:
        interrupts.defer()  # an OutputError on its way out: close and sweep undisturbed
        if executor is not None:
            try:
                executor.close(abort)
            finally:
                if abort:
                    _sweep_temp({job.marker_path(out_dir, items[i]).parent for i in in_flight} | {out_dir})
