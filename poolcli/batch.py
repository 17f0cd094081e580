"""Inputs and their bookkeeping: discovery, output naming, fingerprints, completion markers.

What this module knows: files and folders (which files are inputs, in which
order, under which output folder), the fingerprint of an input under a set
of options, and the generic life of a completion marker. It knows no job
kind: where a job's marker lives, what it holds and which files it vouches
for, the job says (:class:`poolcli.jobs.base.Job`); this module only asks.

Imports: :mod:`poolcli.outputs` (safe names) and, lazily, :mod:`poolcli.images`
(the extensions Pillow reads) and ``poolcli.__version__``. Nothing here
prints. The names that moved to :mod:`poolcli.jobs` (the options, the
per-input functions, the old task wrappers) are still importable from here,
through :func:`__getattr__` and :mod:`poolcli.jobs.compat`, looked up by
module name at first use (so importing this module loads no job).

Completion markers (what ``--resume`` trusts)
--------------------------------------------
Each input of a job has one marker file (``job.marker_path(out, item)``)
holding ``job.marker_record(fingerprint, result)``; the fingerprint is a
SHA-256 of the poolcli version, the job's ``options_key()`` (every option
that changes an output), the input's path, size, mtime and content (SHA-256),
and its output folder. A marker is deleted before an input's outputs are rewritten and
written (atomically) after the last of them, so it exists only beside a
complete set of outputs of exactly these options. :func:`load_marker` trusts
one only when the fingerprint matches, ``job.result_from_marker`` accepts
what it holds, and every file of ``job.outputs_of(result)`` exists.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from .outputs import safe_name

__all__ = [
    "InputItem",
    "Discovery",
    "discover",
    "scan",
    "fingerprint",
    "content_digest",
    "options_key",
    "marker_path",
    "load_marker",
    "previous_outputs",
]

_COMPAT = "poolcli.jobs.compat"  # where the names that moved to poolcli.jobs are found (see __getattr__)


def __getattr__(name: str) -> Any:
    """The names that moved to :mod:`poolcli.jobs` (``RunOptions``, ``run_one``, ``method_stacks``, ...).

    Kept for code written against the old module; import them from
    ``poolcli.jobs.run`` / ``poolcli.jobs.invariance`` instead. Looked up by
    module name, at first use, so that this lower module never imports a job.
    """
    if name.startswith("__"):
        raise AttributeError(name)
    compat = importlib.import_module(_COMPAT)
    if name in compat.MOVED_FROM_BATCH:
        return getattr(compat, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _job(job: Any) -> Any:
    """``job`` itself, or (compatibility: the CLI before it called poolcli.jobs) the job class of that name."""
    if isinstance(job, str):
        return importlib.import_module(_COMPAT).job_named(job)
    return job


@dataclass(frozen=True)
class InputItem:
    path: Path  # the file to read
    out_rel: Path  # its output folder, relative to --out
    display: str = ""  # the path as reports show it (default: str(path))
    error: str = ""  # set by the scan for what is known to fail (a folder it cannot read): the input's reason
    url: str = ""  # an object in a store (s3://...): the worker downloads it to ``path`` (poolcli.remote)
    meta: str = ""  # a URL input's size and ETag / mtime from the listing: its fingerprint (no download)

    @property
    def label(self) -> str:
        return self.display or str(self.path)


@dataclass
class Discovery:
    """What a scan of the PATH arguments found."""

    items: list[InputItem]
    skipped: int = 0  # files in folders that are not images (or do not match --glob)
    folders: bool = False  # at least one PATH was a folder


def _unreadable(exc: OSError) -> str:
    return "folder cannot be read (" + (exc.strerror or type(exc).__name__).lower() + ")"


def _out_name(name: str) -> str:
    """``cat.png`` -> ``cat_png``: distinct for cat.png and cat.jpg, never a dot-name."""
    return safe_name(name.replace(".", "_"))


def _matches(rel: str, name: str, globs: Sequence[str] | None, extensions: Iterable[str]) -> bool:
    """Case-insensitive: a pattern with a '/' matches the path relative to the folder, else the name."""
    if not globs:
        return os.path.splitext(name)[1].lower() in extensions
    for g in globs:
        g = g.lower()
        target = rel.lower() if "/" in g else name.lower()
        if fnmatch.fnmatchcase(target, g):
            return True
    return False


def _image_files(
    root: Path,
    recursive: bool,
    globs: Sequence[str] | None,
    seen: set[tuple[int, int]],
    skipped: list[int],
) -> Iterator[tuple[Path, str]]:
    """``(file, "")`` under ``root`` in sorted order; folders reached twice (symlink loops) are walked once.

    A folder that cannot be listed (permissions) is yielded as ``(folder, reason)``: it becomes an input
    that fails with that reason, counted and reported, instead of vanishing from the batch.
    """
    from .images import OPENABLE

    def walk(folder: Path, rel: str) -> Iterator[tuple[Path, str]]:
        try:
            st = folder.stat()
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a symlink loop, a folder reached twice, or --out itself
            return
        seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield folder, _unreadable(exc)
            return
        for e in entries:
            p = Path(e.path)
            r = f"{rel}{e.name}"
            try:
                is_dir = e.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if recursive:
                    yield from walk(p, r + "/")
            elif _matches(r, e.name, globs, OPENABLE):
                yield p, ""
            else:
                skipped[0] += 1

    yield from walk(root, "")


def scan(
    paths: Sequence[Path],
    recursive: bool = True,
    globs: Sequence[str] | None = None,
    exclude: Sequence[Path] = (),
    several: bool | None = None,
) -> Discovery:
    """Expand files and folders into inputs with distinct output folders.

    A file given by name is always an input and gets ``<name>_<ext>/``; files
    found in a folder (recursively unless ``recursive=False``) are inputs when
    their extension is one Pillow reads (or, with ``globs``, when their name
    matches one of the patterns, case-insensitively) and mirror the folder's
    tree (prefixed with the folder's name when several paths are given); the
    other files are counted in ``skipped``. Folders in ``exclude`` (--out) are
    never entered. A path that does not exist stays in the list, so that it
    fails with its own message and the others still run. ``several``: whether
    folders are prefixed with their names (default: when ``paths`` has more than one).

    Output folders are unique, also on a case-insensitive file system:
    ``a/cat.png`` and ``b/cat.png`` mirror their folders, ``cat.png`` and
    ``cat.jpg`` become ``cat_png`` and ``cat_jpg``, and ``CAT.png`` beside
    ``cat.png`` becomes ``cat_png-2``. A file named twice (or named and found
    in a folder also given) is one input, at its first mention.
    """
    items: list[InputItem] = []
    several = len(paths) > 1 if several is None else several
    seen: set[tuple[int, int]] = set()
    for ex in exclude:
        try:
            st = Path(ex).stat()
            seen.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    skipped = [0]
    folders = False
    for p in paths:
        p = Path(p)
        if p.is_dir():
            folders = True
            prefix = Path(_out_name(p.resolve().name or "root")) if several else Path()
            for f, error in _image_files(p, recursive, globs, seen, skipped):
                rel = f.relative_to(p)
                parts = [_out_name(part) for part in rel.parts]
                if not parts:  # the folder given itself cannot be read
                    parts = [] if several else [_out_name(p.resolve().name or "root")]
                items.append(InputItem(f, prefix.joinpath(*parts), error=error))
        else:
            items.append(InputItem(p, Path(_out_name(p.name))))
    return Discovery(_distinct(_once(items)), skipped[0], folders)


def _once(items: list[InputItem]) -> list[InputItem]:
    """Each file once, at its first mention: ``run a.png a.png``, or a folder and a file in it, processed it
    twice into ``a_png`` and ``a_png-2`` (as pytest does with a test file named twice). The same absolute
    path, not the same file: two names of one file (a link) stay two inputs, as named."""
    import os

    seen: set[str] = set()
    kept = []
    for it in items:
        key = os.path.normpath(os.path.abspath(it.path))
        if key not in seen:
            seen.add(key)
            kept.append(it)
    return kept


def _distinct(items: list[InputItem]) -> list[InputItem]:
    """Two inputs never share an output folder (compared case-insensitively), and no input's folder is a
    folder another input's folder lies in (``x.png`` beside a folder ``x_png/``): an input's folder is
    replaced whole by a later run, so it must hold that input alone."""
    parents = {anc.as_posix().lower() for it in items for anc in it.out_rel.parents if anc != Path(".")}
    used: set[str] = set()
    unique = []
    for it in items:
        rel = it.out_rel
        key = rel.as_posix().lower()
        n = 2
        while key in used or key in parents:
            rel = it.out_rel.with_name(f"{it.out_rel.name}-{n}")
            key = rel.as_posix().lower()
            n += 1
        used.add(key)
        unique.append(dataclasses.replace(it, out_rel=rel))
    return unique


# The naming rules, for the discovery of other sources (poolcli.remote lists stores with them).
out_name = _out_name
matches = _matches
distinct_outputs = _distinct


def discover(paths: list[Path], recursive: bool = True, globs: Sequence[str] | None = None) -> list[InputItem]:
    """The inputs of :func:`scan`, without the counts."""
    return scan(paths, recursive, globs).items


# ----------------------------------------------------------------------------- fingerprints and markers


def options_key(job: Any) -> dict[str, Any]:
    """Every option of ``job`` that changes an input's outputs, as plain JSON values: ``job.options_key()``."""
    return job.options_key()


def content_digest(path: str | os.PathLike[str]) -> tuple[int, str] | None:
    """``(size, SHA-256)`` of a regular file's bytes; None for what is not one or cannot be read."""
    import stat

    try:
        with open(path, "rb", buffering=0) as f:  # a FIFO opens (O_RDONLY blocks) only after the check below
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            h = hashlib.sha256()
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
            return st.st_size, h.hexdigest()
    except OSError:
        return None


def fingerprint(item: InputItem, key: dict[str, Any]) -> str | None:
    """SHA-256 of version, options, the input's path, size, mtime, content and output folder; None if unreadable.

    The input's bytes are hashed too: an image rewritten in place is redone by ``--resume`` even when its
    size and mtime were kept (``cp -p``, ``touch -r``).
    """
    from . import __version__

    import stat

    if item.url:  # an object in a store: what its listing says (size, ETag / mtime), never a download
        if item.error:
            return None
        doc = {"poolcli_version": __version__, "options": key, "input": item.url, "listing": item.meta,
               "label": item.label, "out_rel": item.out_rel.as_posix()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    try:
        st = os.stat(item.path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):  # never open a FIFO or a device
        return None
    digest = content_digest(item.path)
    if digest is None or item.error:
        return None
    doc = {
        "poolcli_version": __version__,
        "options": key,
        "input": os.path.abspath(item.path),
        "label": item.label,
        "size": digest[0],
        "mtime_ns": st.st_mtime_ns,
        "sha256": digest[1],
        "out_rel": item.out_rel.as_posix(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def marker_path(out_dir: Path, item: InputItem, job: Any) -> Path:
    """Where the completion marker of ``item`` lives: ``job.marker_path(out_dir, item)``.

    ``job`` may also be a job's name (compatibility).
    """
    return _job(job).marker_path(out_dir, item)


def load_marker(out_dir: Path, item: InputItem, job: Any, fp: str | None) -> Any:
    """The cached result of ``item`` when its marker matches ``fp`` and the files it names exist, else None."""
    if fp is None:
        return None
    try:
        doc = json.loads(job.marker_path(out_dir, item).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("fingerprint") != fp:
        return None
    result = job.result_from_marker(doc)
    if result is None:
        return None
    for f in job.outputs_of(result):
        if not (out_dir / f).is_file():
            return None
    return result


def previous_outputs(out_dir: Path, items: Sequence[InputItem], job: Any) -> str | None:
    """What in ``out_dir`` a run of ``job`` on ``items`` would overwrite (None: nothing).

    Its report (``job.report_name``), a marker of one of the inputs, or what
    ``job.previous_output(out_dir, item)`` finds. ``job`` may also be a job's
    name (compatibility).
    """
    job = _job(job)
    report = out_dir / job.report_name
    if report.exists():
        return report.name
    for it in items:
        m = job.marker_path(out_dir, it)
        if m.exists():
            return m.relative_to(out_dir).as_posix()
        found = job.previous_output(out_dir, it)
        if found is not None:
            return found
    return None
