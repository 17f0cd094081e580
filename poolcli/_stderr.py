"""What C libraries write to the process's stderr (file descriptor 2) while a file is decoded.

libtiff, libjpeg and friends report damaged data by printing to fd 2
(``Fax4Decode: Bad code word at line 3 of strip 0``), below Python: those
lines would reach the terminal around poolcli's own output, and the decode
would count as a success. :func:`captured` points fd 2 at a temporary file
for the duration of a block and restores it after (also on an exception);
what was written is then the input's to report, in one line.

One capture at a time per process (a lock): fd 2 is shared by every thread.
A line another thread writes meanwhile (a progress bar's refresh) lands in
the capture; :func:`useful` keeps only plain-text lines without terminal
control characters, so such a line is dropped rather than quoted.

Imports: the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from typing import Iterator

__all__ = ["captured", "useful", "errors_of"]

_LOCK = threading.Lock()
_KEEP = 64 << 10  # bytes of a capture read back
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# libtiff names the stream Pillow hands it "tempfile.tif" (or the like): a file that does not exist.
_FAKE_NAME = re.compile(r"^(?:\S*tempfile\.tiff?|<[^>]*>):\s*")


@contextlib.contextmanager
def captured() -> Iterator[list[str]]:
    """Capture fd 2 during the block; the yielded list holds the :func:`useful` lines afterwards.

    Where fd 2 cannot be redirected (closed, no temporary file), the block
    runs uncaptured and the list stays empty.
    """
    lines: list[str] = []
    with _LOCK:
        try:
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass
        try:
            saved = os.dup(2)
        except OSError:
            yield lines
            return
        try:
            tmp = tempfile.TemporaryFile()
        except OSError:
            os.close(saved)
            yield lines
            return
        try:
            os.dup2(tmp.fileno(), 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                tmp.seek(0)
                lines[:] = useful(tmp.read(_KEEP))
        finally:
            os.close(saved)
            tmp.close()


def useful(data: bytes) -> list[str]:
    """The lines of a capture worth quoting: decoded, stripped, no control characters, no repeats."""
    out: list[str] = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or _CONTROL.search(line):
            continue
        line = _FAKE_NAME.sub("", line)
        if line and line not in out:
            out.append(line)
    return out


def errors_of(lines: list[str]) -> list[str]:
    """The lines that report errors, not warnings (libtiff writes ``Module: Warning, ...`` for those)."""
    return [ln for ln in lines if not re.search(r"\bwarning\b", ln, re.IGNORECASE)]
