"""The job protocol: what a batch command is, to discovery, resume markers and the executors.

A *job* is one batch command (``run``, ``invariance``, later an HTML report
or ``compare``) with its options: a frozen, picklable object (it travels to
worker processes and Dask workers with every task). :class:`Job` is what the
rest of poolcli may ask of it:

========================================  ==========================================================
``name``, ``report_name``                 the command, and the report file ``--resume``/``--force`` guard
``options_key()``                         every option that changes an input's outputs (fingerprints)
``check()``                               refuse bad options before any work (optional)
``produce(item, out_dir)``                one input: compute, write its files, return its result
``marker_path(out_dir, item)``            where the input's completion marker lives
``marker_record(fp, result)``             what the marker holds
``result_from_marker(doc)``               the result back from a marker (None: not trusted)
``outputs_of(result)``                    the files the result names (relative to ``--out``)
``previous_output(out_dir, item)``        an earlier run's files, other than marker and report
``guard_path(out_dir, item)``             what must resolve inside ``--out`` before anything is written
``finish(outcome)``                       assemble and atomically write the report files; the report
========================================  ==========================================================

:meth:`Job.process` is the same for every job: the task a worker runs for one
input (delete the marker, ``produce``, write the marker last; never raises for
a bad input). :class:`BatchArgs` and :class:`LoadArgs` are the option groups
every batch command shares; :class:`JobOutcome` is what ``execute`` returns.

Imports: :mod:`poolcli.batch` (``InputItem``), :mod:`poolcli.outputs`,
:mod:`poolcli.errors`. Nothing here prints.
"""

from __future__ import annotations

import time

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

from ..batch import InputItem
from ..errors import interrupt_status, ExitStatus, InputError, OutputError, PoolcliError
from ..outputs import inside, name_fields, save_json

__all__ = ["Job", "BatchArgs", "LoadArgs", "JobOutcome", "load_input"]


@dataclass(frozen=True)
class LoadArgs:
    """How inputs are loaded (``images.load_image``'s keyword options)."""

    nan: str = "error"
    max_pixels: Optional[int] = None
    max_frames: Optional[int] = None


@dataclass(frozen=True)
class BatchArgs:
    """The batch options every batch command shares."""

    recursive: bool = True
    globs: Optional[list[str]] = None
    workers: Optional[int] = None  # None: the number of cores
    scheduler: Optional[str] = None  # Dask: "local" or an address
    resume: bool = False
    force: bool = False
    threads: Optional[int] = None  # None: the cores divided among the workers
    storage_options: Optional[dict] = None  # fsspec options for URL inputs and --out (--storage-option)


class Job(ABC):
    """One batch command and its options (subclass as a frozen dataclass; see the module docstring)."""

    name: ClassVar[str]  # the command, e.g. "run"
    report_name: ClassVar[str]  # e.g. "report.json"
    marker_key: ClassVar[str] = "record"  # the key of the result in a marker

    @abstractmethod
    def options_key(self) -> dict[str, Any]:
        """Every option that changes an input's outputs, as plain JSON values (fingerprinted)."""

    def check(self) -> None:
        """Raise a :class:`~poolcli.errors.UsageError` for options that cannot work, before any work."""

    @abstractmethod
    def produce(self, item: InputItem, out_dir: Path) -> Any:
        """Process one input and write its files under ``out_dir``; return its (JSON-able) result.

        Raise :class:`~poolcli.errors.InputError` for an input that cannot be
        processed; write nothing then.
        """

    @abstractmethod
    def marker_path(self, out_dir: Path, item: InputItem) -> Path:
        """Where the completion marker of ``item`` lives (under ``out_dir``)."""

    def guard_path(self, out_dir: Path, item: InputItem) -> Path:
        """The path that must resolve inside ``out_dir`` before anything is written (default: the marker's folder)."""
        return self.marker_path(out_dir, item).parent

    def marker_record(self, fp: str | None, result: Any) -> dict[str, Any]:
        """What the marker of one finished input holds."""
        return {"fingerprint": fp, self.marker_key: result}

    def result_from_marker(self, doc: dict[str, Any]) -> Any:
        """The result a marker holds, or None when it does not look like one of this job's results."""
        return doc.get(self.marker_key)

    def outputs_of(self, result: Any) -> list[str]:
        """The files (relative to ``--out``) a result names; a marker is trusted only when they all exist."""
        return []

    @classmethod
    def previous_output(cls, out_dir: Path, item: InputItem) -> str | None:
        """Files of an earlier run for ``item`` besides its marker (what ``--force`` would overwrite), or None.

        (The built-in jobs answer this and ``marker_path`` on the class: where
        files live depends on no option. An instance method is fine too.)
        """
        return None

    @abstractmethod
    def finish(self, outcome: "JobOutcome") -> dict[str, Any]:
        """Assemble the report from ``outcome``, write the report files atomically, return the report.

        May add to ``outcome.written`` (the report files, as the CLI lists
        them) and ``outcome.notes`` (lines for stderr).
        """

    def process(self, item: InputItem, fp: str | None, out_dir: Path) -> dict[str, Any]:
        """One input, in a worker: ``{"ok": True, "result": ...}`` or ``{"ok": False, "error": reason}``.

        ``{"fatal": message}`` when an output cannot be written (the batch
        stops). Never raises for a bad input. The marker is deleted first and
        written last (when ``fp`` is given), atomically.
        """
        if item.error:  # known to fail from the scan (a folder that cannot be read)
            return {"ok": False, "error": item.error}
        marker = self.marker_path(out_dir, item)
        if not inside(out_dir, self.guard_path(out_dir, item)):
            return {"ok": False, "error": f"output folder {item.out_rel.as_posix()} would leave --out"}
        start = time.perf_counter()
        try:
            marker.unlink(missing_ok=True)  # outputs are about to change: the old marker no longer vouches
            result = self.produce(item, out_dir)
            if fp is not None:
                save_json(marker, self.marker_record(fp, result))  # last, atomically
        except InputError as exc:
            return {"ok": False, "error": exc.reason}
        except OutputError as exc:  # disk full, permissions: the batch cannot go on
            return {"fatal": str(exc)}
        except PoolcliError as exc:
            return {"ok": False, "error": str(exc)}
        except MemoryError:
            return {"ok": False, "error": "out of memory"}
        except OSError as exc:
            return {"fatal": f"{marker.parent}: {exc.strerror or exc}"}
        except Exception as exc:  # a bug on one odd input must not stop 10,000 others
            import traceback

            # the traceback travels with the outcome (a string: from any worker), for --debug to show
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()}
        return {"ok": True, "result": result, "seconds": round(time.perf_counter() - start, 4)}


@dataclass
class JobOutcome:
    """What a batch did, for ``job.finish`` and then for the CLI to print.

    ``results`` and ``errors`` are keyed by input index; ``records`` and
    ``failures`` list them in input order. ``counts`` is the report's summary
    block (found, processed, skipped, resumed, failed, remaining, seconds, ...).
    """

    out_dir: Path
    items: list[InputItem]
    report_name: str
    results: dict[int, Any] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    execution: dict[str, Any] = field(default_factory=dict)  # {"workers": n, "scheduler": ...}
    timings: dict[int, float] = field(default_factory=dict)  # input index -> seconds (inputs done in this run)
    report: dict[str, Any] = field(default_factory=dict)  # set from job.finish
    written: list[str] = field(default_factory=list)  # report files job.finish wrote, by name
    notes: list[str] = field(default_factory=list)  # plain-text lines for stderr (e.g. "poolcli: no plot: ...")
    out_url: str = ""  # a URL --out: out_dir is then the local folder the reports are written in before upload
    stored: Optional[set] = None  # a URL --out: the files in the store (relative), for has_file

    @property
    def out_name(self) -> str:
        """``--out`` as the user gave it: the URL, or the folder."""
        return self.out_url or str(self.out_dir)

    def has_file(self, rel: str) -> bool:
        """Whether ``--out`` holds the file ``rel`` (in the store for a URL --out, else under out_dir)."""
        if (self.out_dir / rel).is_file():
            return True
        return self.stored is not None and rel in self.stored

    @property
    def records(self) -> list[Any]:
        """The result of every input that succeeded (or was resumed), in input order."""
        return [self.results[i] for i in sorted(self.results)]

    @property
    def failures(self) -> list[dict[str, str]]:
        """``{"path": label, "error": reason}`` for every input that failed, in input order.

        A name that is not UTF-8 gets ``path_bytes`` too (:func:`poolcli.outputs.name_fields`).
        """
        return [{**name_fields(self.items[i].label), "error": self.errors[i]} for i in sorted(self.errors)]

    @property
    def succeeded(self) -> int:
        return len(self.results)

    @property
    def exit_code(self) -> ExitStatus:
        """130 when interrupted, 1 when an input failed, else 0."""
        if self.interrupted:
            return interrupt_status()
        return ExitStatus.ERROR if self.errors else ExitStatus.SUCCESS

    @property
    def interrupted_message(self) -> str | None:
        """The line for stderr when interrupted (plain text, not Rich markup), else None."""
        if not self.interrupted:
            return None
        return f"poolcli: interrupted; {self.out_name.rstrip('/')}/{self.report_name} lists what was done; run the same command with --resume to finish"


def files_key(stack: Any) -> dict[str, Any]:
    """The content of every file the stack reads (kernels, weights), for the resume fingerprint.

    ``{}`` for a stack that reads none, so that those fingerprints are as
    before; else ``{"files": {path: sha256}}``: rewriting ``k.npy`` makes
    ``--resume`` redo the inputs instead of keeping maps of the old kernel.
    """
    files = {f.path: f.sha256 for st in (stack,) for f in st.files()}
    return {"files": files} if files else {}


def load_input(item: InputItem, opts: Any, stacks: Any = ()):
    """``item``'s image as float32 (C, H, W), with ``opts``'s color, NaN policy and pixel / frame limits.

    For the jobs that read images (``opts`` has ``color``, ``nan``,
    ``max_pixels``, ``max_frames`` and ``max_memory``); raises
    :class:`~poolcli.errors.InputError`. Before decoding, each of ``stacks``
    is checked against its share of ``--max-memory`` (``opts.memory_share``
    inputs run at once) for the image's size, read from its
    header (:mod:`poolcli.stack.memory`): a stack that would not fit is
    refused in a second instead of being killed by the kernel after minutes.
    """
    from .. import images
    from ..stack import memory

    def check(shape: tuple[int, int, int]) -> None:  # from the header, before decoding (the file opened once)
        total = getattr(opts, "max_memory", None) or memory.default_limit()
        share = max(1, getattr(opts, "memory_share", 1))
        note = f" ({memory.human(total)} shared by {share} workers)" if share > 1 else ""
        for st in stacks:
            try:
                memory.check(st, shape, total // share, note)
            except ValueError as exc:
                raise InputError(item.path, str(exc)) from None

    return images.load_image(item.path, opts.color, max_pixels=opts.max_pixels, max_frames=opts.max_frames, nan=opts.nan,
                             before_decode=check if stacks else None)
