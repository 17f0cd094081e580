"""Atomic writes and safe output paths.

Every file poolcli writes goes to a temporary file in the destination folder
first and is moved into place with ``os.replace``: a reader, a crash, a full
disk or Ctrl-C never leaves a half-written file under its final name.

What this module knows: files (atomic writes of bytes, text, ``.npy``, JSON,
CSV; written files leaving the page cache once on disk, when asked:
:class:`_DropBehind`), file-name components that cannot escape a folder,
whether a path stays inside ``--out``, and whether ``--out`` is writable. It
knows no command and no image format. Imports: :mod:`poolcli.errors` (and
numpy lazily, for ``.npy``). Nothing here prints.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import io
import itertools
import json
import os
import re
import tempfile
import threading
import unicodedata
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from .errors import OutputError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "save_npy",
    "save_json",
    "save_csv",
    "safe_name",
    "inside",
    "check_writable",
    "name_fields",
    "raw_name",
]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, then ``os.replace`` it to ``path``.

    For what is written piece by piece (an ``.npy`` streamed from its array, without
    a second copy in memory); the same guarantees as :func:`atomic_write_bytes`.
    """
    path = Path(path)
    try:
        try:  # the folder usually exists: no mkdir call per file (a 512x512 run writes a dozen files)
            fd, tmp = _temp_file(path)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = _temp_file(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "wb", closefd=False) as fh:  # the descriptor outlives it: drop-behind below
            write(fh)
        os.replace(tmp, path)
    except BaseException as exc:  # also KeyboardInterrupt: never leave the temp file behind
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        raise
    _drop_behind.written(fd)
    return path


def drop_behind_wanted() -> bool:
    """Whether written files leave the page cache once on disk (:class:`_DropBehind`): only when asked,
    with ``POOLCLI_DROP_BEHIND=1`` (and where ``os.posix_fadvise`` exists)."""
    return hasattr(os, "posix_fadvise") and os.environ.get("POOLCLI_DROP_BEHIND", "").strip() == "1"


class _DropBehind:
    """Outputs leave the page cache once they are on disk: a long batch keeps at most ``keep`` bytes of
    what it wrote in memory, per process, instead of every byte until the kernel needs the memory.
    On with ``POOLCLI_DROP_BEHIND=1`` (:func:`drop_behind_wanted`).

    A written file of at least ``least`` bytes gets ``posix_fadvise(DONTNEED)`` at once, which on Linux
    starts its writeback (without waiting for it), and its descriptor joins a queue; once the queue holds
    more than ``keep`` bytes (or ``files`` descriptors), the oldest file gets ``DONTNEED`` again, which
    now frees its pages (those written back), and is closed. The next files' pages are then the ones
    just freed.

    Files above a quarter of ``keep`` are left to the kernel too: their pages could not be freed before
    the files after them push them out, and starting a large file's writeback waits for the disk's queue
    (an 8192x8192 run's 256 MB ``.npy``: 4.2-5.6 s against 3.4-4.4 s, peak memory 896 against 816 MB).

    Why it is not on by default (measured on this project's 2-core VM, whose host takes free guest
    memory back: a page the guest has not used for a while costs 10-14 us the first time the kernel
    uses it again): a 200-image 512x512 default run writes 440 MB. Timed in turn with and without it,
    in the benchmark suite's order (after the PyTorch script and a lean run), the run took 2.72 against
    3.09 s (system time 0.79 against 1.60 s) in one run of the suite, 3.01 against 2.81 s in the next;
    by hand 3.00 against 3.39 s once, then 2.63-2.91 against 2.49-2.70 s three times and 3.47 against
    3.33 s (medians of 3 to 6); 1,000 images (2.2 GB) 13.4 against 15.7 s, 12.1 against 12.2 s and 12.8
    against 11.5 s. Its cost is the writeback, started in the run's own time instead of later; what it
    saves depends on how much free memory the host has taken back at the time. What it always does:
    the page cache grew by 114 MB instead of 2.1 GB over those 1,000 images. Files under ``least``
    bytes (a record, a small PNG) are left as they are. A forked worker starts with an empty queue.
    """

    def __init__(self, keep: int = 16 << 20, least: int = 64 << 10, files: int = 64):
        self.keep, self.least, self.files = keep, least, files  # (files: open descriptors held, at most)
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[int, int]] = collections.deque()
        self._bytes = 0
        self._on: bool | None = None  # POOLCLI_DROP_BEHIND, read at the first file
        self._paused = 0

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Files written in this block stay in the page cache: e.g. a staging folder uploaded at once, then
        deleted (writing it to disk first would be wasted)."""
        with self._lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1

    def after_fork(self) -> None:
        """In a forked child (``os.register_at_fork``): a lock of its own (the parent's may have been held
        by another thread), and none of the parent's files (its copies of their descriptors closed)."""
        self._lock = threading.Lock()
        for fd, _ in self._queue:
            try:
                os.close(fd)
            except OSError:
                pass
        self._queue.clear()
        self._bytes = 0

    def written(self, fd: int) -> None:
        """A file just written to ``fd``: this object closes ``fd``, now or later."""
        with self._lock:
            if self._on is None:
                self._on = drop_behind_wanted()
            if not self._on or self._paused:
                os.close(fd)
                return
            size = os.fstat(fd).st_size
            if not self.least <= size <= self.keep // 4 or not self._advise(fd):
                os.close(fd)
                return
            self._queue.append((fd, size))
            self._bytes += size
            while self._bytes > self.keep or len(self._queue) > self.files:
                old, n = self._queue.popleft()
                self._bytes -= n
                self._advise(old)
                os.close(old)

    def flush(self) -> None:
        """Close every descriptor still queued (their pages stay cached)."""
        with self._lock:
            while self._queue:
                os.close(self._queue.popleft()[0])
            self._bytes = 0

    @staticmethod
    def _advise(fd: int) -> bool:
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            return True
        except OSError:  # e.g. a pipe or a file system that refuses: nothing to drop
            return False


_drop_behind = _DropBehind()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _drop_behind.after_fork())  # (the instance of the moment)


def kept_in_cache() -> contextlib.AbstractContextManager[None]:
    """A block whose files stay in the page cache (see :class:`_DropBehind`)."""
    return _drop_behind.paused()


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_temp_count = itertools.count()


def _temp_file(path: Path) -> tuple[int, str]:
    """A new file beside ``path`` (``.<name>.<pid><n>.tmp``), opened for writing: as ``tempfile.mkstemp``
    (``O_EXCL``: never an existing file; another name on a clash, e.g. with another host's process on a
    shared folder) but with the mode a new file gets (``0666 & ~umask``, no ``fchmod``) and without
    mkstemp's random names (20 of 70 us per file, measured; a 512x512 run writes a dozen files)."""
    prefix = f"{path.parent}{os.sep}.{path.name[:40]}.{os.getpid():x}"
    for attempt in range(100):
        tmp = f"{prefix}{next(_temp_count):x}{'' if not attempt else os.urandom(4).hex()}.tmp"
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", prefix)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def save_npy(path: str | os.PathLike[str], array: Any) -> Path:
    """Save one array as ``.npy``, atomically, streamed to the file (no copy of it in memory).

    ``array`` may also be a map served in bands of rows (``lazy_rows``, e.g.
    :class:`poolcli.pooling.torch_ops.UnpoolView`): it is written band by band,
    the same bytes ``np.save`` writes for the dense array.
    """
    import numpy as np

    if getattr(array, "lazy_rows", False):
        return atomic_write(path, lambda fh: _write_npy_rows(fh, array))
    array = np.ascontiguousarray(array)
    if array.dtype.kind in "biuf":
        return atomic_write(path, lambda fh: _write_npy(fh, array))
    return atomic_write(path, lambda fh: np.save(fh, array, allow_pickle=False))


def _write_npy(fh: BinaryIO, array: Any) -> None:
    """``np.save``'s bytes for a C-contiguous array of numbers: its version 1.0 header, then the buffer in
    one ``write`` (``np.save`` duplicated the descriptor, sought and wrote through ``tofile``: 0.1 of
    0.8 ms for the five maps of a 512x512 run, measured; the same bytes, tested)."""
    import numpy as np

    np.lib.format.write_array_header_1_0(
        fh, {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape})
    fh.write(memoryview(array.reshape(-1)).cast("B"))


def _write_npy_rows(fh: BinaryIO, view: Any) -> None:
    import numpy as np

    c, h, w = view.shape
    np.lib.format.write_array_header_1_0(
        fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(view.dtype)), "fortran_order": False, "shape": (c, h, w)})
    rows = max(1, (1 << 22) // max(1, w))
    for k in range(c):
        for r in range(0, h, rows):
            fh.write(np.ascontiguousarray(view.rows(r, r + rows, slice(k, k + 1))).tobytes())


def save_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Save ``obj`` as JSON (UTF-8), atomically.

    A file name that is not valid UTF-8 reaches Python as a str with lone
    surrogates (``os.fsdecode``'s surrogateescape). Such a document is written
    with ASCII escapes (``"bad\\udcff.png"``): valid JSON, and lossless:
    ``os.fsencode(json.load(f)["path"])`` gives the name's bytes back.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = (json.dumps(obj, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")
    return atomic_write_bytes(path, data)


def name_fields(name: str, key: str = "path") -> dict[str, str]:
    """A file name for a report: ``{key: name}``, valid UTF-8 always, lossless always.

    A name that is not valid UTF-8 (its undecodable bytes reach Python as lone
    surrogates, ``os.fsdecode``'s surrogateescape) becomes ``{key: text with
    each such byte as \\xNN, key + "_bytes": base64 of the name's bytes}``:
    ``os.fsdecode(base64.b64decode(doc["path_bytes"]))`` is the name itself.

    >>> name_fields("cat.png")
    {'path': 'cat.png'}
    >>> name_fields(os.fsdecode(b"bad\\xff.png"))
    {'path': 'bad\\\\xff.png', 'path_bytes': 'YmFk/y5wbmc='}
    """
    try:
        name.encode("utf-8")
        return {key: name}
    except UnicodeEncodeError:
        import base64

        raw = os.fsencode(name)
        return {key: raw.decode("utf-8", "backslashreplace"), f"{key}_bytes": base64.b64encode(raw).decode("ascii")}


def raw_name(doc: dict[str, Any], key: str = "path") -> str:
    """The name :func:`name_fields` described, as the OS gave it (lone surrogates for undecodable bytes)."""
    if f"{key}_bytes" in doc:
        import base64

        return os.fsdecode(base64.b64decode(doc[f"{key}_bytes"]))
    return doc[key]


def save_csv(path: str | os.PathLike[str], header: list[str], rows: Iterable[Iterable[Any]]) -> Path:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    # A file name that is not valid UTF-8 is written as the bytes it has on disk (surrogateescape).
    return atomic_write_bytes(path, buf.getvalue().encode("utf-8", "surrogateescape"))


_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


def safe_name(name: str, max_len: int = 120) -> str:
    """A file-name component that cannot escape a folder or clash with specials.

    >>> safe_name("../../etc/passwd")
    'etc_passwd'
    >>> safe_name("cat.png")
    'cat.png'
    >>> safe_name("")
    '_'
    """
    s = unicodedata.normalize("NFC", str(name))
    s = _UNSAFE.sub("_", s.replace(os.sep, "_").replace("/", "_"))
    s = re.sub(r"_+", "_", s).strip("._") or "_"
    if len(s) > max_len:
        import hashlib

        digest = hashlib.sha1(s.encode()).hexdigest()[:8]
        s = s[: max_len - 9] + "_" + digest
    return s


def inside(root: Path, path: Path) -> bool:
    """True when ``path`` resolves inside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def check_writable(out_dir: str | os.PathLike[str]) -> Path:
    """Create ``out_dir`` if needed and prove it is writable, before any work starts."""
    out = Path(out_dir)
    try:
        if out.exists() and not out.is_dir():
            raise OutputError(f"{out}: --out exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".poolcli-write-test.", dir=out)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"{out}: output folder is not writable ({exc.strerror or exc})") from exc
    return out
