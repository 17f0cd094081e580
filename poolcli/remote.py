"""Batches on object storage: URL inputs and a URL ``--out``, read and written by the workers themselves.

:mod:`poolcli.storage` is the store (fsspec); this module is what a batch
does with it. Nothing is shared between the client and the workers but the
store: the client lists the inputs and the markers, each task carries URLs
(and the storage options), and each worker

1. downloads its own input into a local temporary folder (an input given as
   a URL; a local input is read where it is);
2. deletes the input's old marker in the store (it no longer vouches), runs
   the job into a local staging folder exactly as for a local ``--out``;
3. removes what an earlier run left in the input's output folder, uploads
   the new files (each one PUT of a finished file: an object appears only
   whole), and the marker last.

The client gets the small records back, writes the reports into a local
staging folder, and uploads them. ``--resume`` reads the markers from the
store and trusts one when its fingerprint matches and every file it names
is in the store's listing (one paginated listing, not one request per file).

Fingerprints of URL inputs come from the listing (size, and ETag or
modification time where the backend gives one), so that ``--resume`` never
downloads an image to decide whether it is done.

Imports: :mod:`poolcli.storage`, :mod:`poolcli.batch`, :mod:`poolcli.outputs`,
:mod:`poolcli.errors`. Not the jobs: the job object arrives with each call.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .batch import InputItem, Discovery, distinct_outputs, matches, out_name
from .errors import OutputError, UsageError
from .outputs import kept_in_cache
from .storage import Store, is_url, redact

__all__ = ["Target", "scan_url", "process", "RemoteOut", "url_fingerprint_fields"]


NOT_FOUND = "not found"


class StoreUnreachable(OutputError):
    """A store (input URL or --out) that cannot be reached or listed: exit 1, one line naming the URL."""


@dataclass(frozen=True)
class Target:
    """Where one task writes, and how it reaches the stores: sent with every task (small, picklable).

    ``out`` is the ``--out`` store, or None for a local ``--out`` (``local``,
    a folder the workers share, as without object storage).
    """

    options: dict[str, Any] = field(default_factory=dict)
    out: Store | None = None
    local: Path | None = None


# ----------------------------------------------------------------------------- discovery


def _meta(info: dict[str, Any]) -> str:
    """What identifies an object's content in a listing: size plus ETag / mtime (whichever the backend gives)."""
    keep = {"size": info.get("size")}
    for k in ("ETag", "etag", "md5Hash", "content_settings", "LastModified", "last_modified", "mtime", "created"):
        v = info.get(k)
        if v is not None:
            keep[k] = str(v)
    return json.dumps(keep, sort_keys=True)


def scan_url(url: str, options: dict[str, Any], recursive: bool, globs: Sequence[str] | None,
             several: bool, exclude: str | None = None) -> Discovery:
    """The inputs under a URL (a prefix, listed recursively and sorted, or one object), named as :func:`batch.scan` names
    files of a folder; ``exclude`` (a URL ``--out``) is never listed as input."""
    from .images import OPENABLE

    store = Store(url, options)
    try:
        fs = store.fs
        root = store.path().rstrip("/")
        if fs.isfile(root):
            info = fs.info(root)
            name = posixpath.basename(root)
            return Discovery([InputItem(Path(name), Path(out_name(name)), display=store.url, url=store.url,
                                        meta=_meta(info))], 0, False)
        listing = fs.find(root, detail=True, maxdepth=None if recursive else 1)
    except RuntimeError as exc:
        raise StoreUnreachable(str(exc)) from None
    except Exception as exc:
        raise StoreUnreachable(str(store.fail("list it", exc))) from None
    if not listing and not _exists(fs, root):  # stays an input, failing with its reason, like a missing file
        name = posixpath.basename(root) or "root"
        return Discovery([InputItem(Path(name), Path(out_name(name)), display=store.url, url=store.url,
                                    error=NOT_FOUND)], 0, False)
    skip = Store(exclude, options).path().rstrip("/") + "/" if exclude and is_url(exclude) else None
    prefix = Path(out_name(posixpath.basename(root) or "root")) if several else Path()
    items, skipped = [], 0
    for key in sorted(listing):
        info = listing[key]
        if info.get("type") == "directory" or not key.startswith(root + "/"):
            continue
        if skip is not None and (key + "/").startswith(skip):
            continue
        rel = key[len(root) + 1:]
        if not matches(rel, posixpath.basename(rel), globs, OPENABLE):
            skipped += 1
            continue
        parts = [out_name(p) for p in rel.split("/")]
        items.append(InputItem(Path(rel), prefix.joinpath(*parts), display=store.url_of(rel),
                               url=store.url_of(rel), meta=_meta(info)))
    return Discovery(distinct_outputs(items), skipped, True)


def _exists(fs: Any, root: str) -> bool:
    try:
        return bool(fs.exists(root))
    except Exception:
        return False


def url_fingerprint_fields(item: InputItem) -> dict[str, Any]:
    """What a URL input's fingerprint holds instead of a local file's stat and hash."""
    return {"input": item.url, "listing": item.meta}


# ----------------------------------------------------------------------------- the task


def _download(item: InputItem, options: dict[str, Any], folder: Path) -> InputItem | str:
    """``item`` with ``path`` the local copy of its object, or the reason it cannot be had."""
    parent, _, name = item.url.rpartition("/")
    store = Store(parent, options)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        local = store.download(name, folder)
    except FileNotFoundError:
        return "object not found (deleted since it was listed?)"
    except RuntimeError as exc:
        return str(exc).split(": ", 1)[-1] if str(exc).startswith(store.url) else str(exc)
    except Exception as exc:  # a backend error the store did not wrap
        return redact(f"cannot download ({type(exc).__name__}: {exc})", options)[:300]
    return dataclasses.replace(item, path=local)


def process(job: Any, item: InputItem, fp: str | dict | None, target: Target) -> dict[str, Any]:
    """One input, in a worker, with a URL input and/or a URL ``--out`` (see the module docstring)."""
    from .batch import fingerprint

    if item.error:  # known to fail from the listing (not found)
        return {"ok": False, "error": item.error}
    with tempfile.TemporaryDirectory(prefix="poolcli-task-") as tmp:
        if item.url:
            got = _download(item, target.options, Path(tmp) / "in")
            if isinstance(got, str):
                return {"ok": False, "error": got}
            item = got
        if isinstance(fp, dict):
            fp = fingerprint(item, fp)
        if target.out is None:
            return job.process(item, fp, target.local)
        stage = Path(tmp) / "out"
        stage.mkdir()
        return _to_store(job, item, fp, stage, target.out)


def _to_store(job: Any, item: InputItem, fp: str | None, stage: Path, out: Store) -> dict[str, Any]:
    marker = job.marker_path(stage, item).relative_to(stage).as_posix()
    folder = job.guard_path(stage, item).relative_to(stage).as_posix()
    try:
        out.remove_file(marker)  # the outputs are about to change: the old marker no longer vouches
        with kept_in_cache():  # read back for the upload, then deleted: no writeback to disk first
            outcome = job.process(item, fp, stage)
        if not outcome.get("ok"):
            return outcome
        if folder and folder != marker:  # the input's folder is replaced whole, never merged
            out.remove(folder)
        out.upload_tree(stage, "", last=[marker])
    except RuntimeError as exc:  # the store went away or refused a write: the batch cannot go on
        return {"fatal": str(exc)}
    return outcome


# ----------------------------------------------------------------------------- the client's view of a URL --out


class RemoteOut:
    """A URL ``--out`` seen from the client: its listing, its markers, the reports' upload.

    ``local`` is the client's staging folder: the reports are written there (by
    the job's ``finish``, as for a local ``--out``), then :meth:`publish` uploads them.
    """

    def __init__(self, url: str, options: dict[str, Any]):
        self.store = Store(url, options)
        self.local = Path(tempfile.mkdtemp(prefix="poolcli-out-"))
        self._listing: set[str] | None = None

    @property
    def url(self) -> str:
        return self.store.url

    def check(self) -> None:
        try:
            self.store.check(create=True)
        except RuntimeError as exc:
            raise StoreUnreachable(str(exc)) from None

    def listing(self) -> set[str]:
        if self._listing is None:
            try:
                self._listing = set(self.store.find())
            except RuntimeError as exc:
                raise StoreUnreachable(str(exc)) from None
        return self._listing

    def __contains__(self, rel: str) -> bool:
        return rel in self.listing()

    def listing_after(self) -> "RemoteOut":
        """This view with the listing taken anew when next asked (after the workers uploaded)."""
        self._listing = None
        return self

    def rel(self, path: Path) -> str:
        return path.relative_to(self.local).as_posix()

    def previous(self, items: Iterable[InputItem], job: Any) -> str | None:
        """What in the store a run of ``job`` on ``items`` would overwrite (None: nothing)."""
        found = self.listing()
        if job.report_name in found:
            return job.report_name
        folders = {key.rsplit("/", 1)[0] for key in found if "/" in key}
        for it in items:
            m = self.rel(job.marker_path(self.local, it))
            if m in found:
                return m
            if it.out_rel.as_posix() in folders:
                return it.out_rel.as_posix() + "/"
        return None

    def load_marker(self, item: InputItem, job: Any, fp: str | None) -> Any:
        """The cached result of ``item``: its marker in the store matches ``fp`` and every file it names is listed."""
        rel = self.rel(job.marker_path(self.local, item))
        if fp is None or rel not in self.listing():
            return None
        try:
            doc = self.store.read_json(rel)
        except RuntimeError as exc:
            raise StoreUnreachable(str(exc)) from None
        if not isinstance(doc, dict) or doc.get("fingerprint") != fp:
            return None
        result = job.result_from_marker(doc)
        if result is None or not all(f in self.listing() for f in job.outputs_of(result)):
            return None
        return result

    def marked(self, item: InputItem, job: Any) -> bool:
        return self.rel(job.marker_path(self.local, item)) in self.listing()

    def publish(self) -> None:
        """Upload the reports written into the staging folder (then forget the listing)."""
        try:
            self.store.upload_tree(self.local, "")
        except RuntimeError as exc:
            raise OutputError(str(exc)) from None
        self._listing = None

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.local, ignore_errors=True)


def check_url_input(url: str, options: dict[str, Any]) -> None:
    """A URL PATH whose store cannot be reached fails at once (one line naming the URL)."""
    store = Store(url, options)
    try:
        store.check()
    except RuntimeError as exc:
        msg = str(exc)
        if "no such bucket or prefix" in msg:
            return  # a missing object is that input's failure, like a missing file
        raise StoreUnreachable(msg) from None


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    from .storage import parse_storage_options

    try:
        return parse_storage_options(pairs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
