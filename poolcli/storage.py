"""Object storage (S3 and compatibles, GCS, Azure, memory://): inputs and --out as fsspec URLs.

poolcli's jobs read and write local files. A URL input or ``--out`` is served
by staging, so that nothing else changes and every local guarantee holds on a
store:

* discovery lists the store recursively (fsspec ``find``, paginated by the
  backend), sorted, and names outputs as for folders;
* a worker downloads its own input to a local temporary file (the client
  never downloads images), runs the job into a local staging folder, then
  uploads that input's outputs, the completion marker last: an object appears
  only whole (each upload is one PUT of a finished local file), and the
  marker vouches for a complete set;
* ``--resume`` reads the markers from the store; the reports are written
  locally, then uploaded.

Which backend: fsspec picks it from the URL's scheme (``s3://`` needs
``poolcli[cloud]``: s3fs; ``gs://`` gcsfs; ``az://`` adlfs). Storage options
come from each backend's standard environment and configuration (AWS
variables and profiles, ...) plus ``--storage-option key=value``. A store
that cannot be reached fails fast: connect timeout 5 s, read timeout 30 s,
two attempts (S3); the message names the URL, never a credential
(:func:`redact`).

Imports: fsspec (lazily); the standard library.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "CLOUD_HINT",
    "is_url",
    "parse_storage_options",
    "redact",
    "Store",
]

CLOUD_HINT = "pip install 'poolcli[cloud]'"
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
#: S3 timeouts: a refused connection fails at once, a silent endpoint within about 2 x (5 + 30) s.
S3_CONFIG = {"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 2, "mode": "standard"}}
#: Option names whose values are secrets: never printed, never written.
SECRET_KEYS = re.compile(r"secret|token|password|key$|key_id|credential|sas|connection_string", re.IGNORECASE)


def is_url(path: Any) -> bool:
    """A URL poolcli hands to fsspec (``s3://``, ``memory://``, ...); ``file://`` and plain paths are local."""
    m = _URL.match(str(path))
    return bool(m) and m.group(1).lower() != "file"


def local_path(path: Any) -> Path:
    """A local path, from a plain path or a ``file://`` URL."""
    text = str(path)
    return Path(text[len("file://"):]) if text.lower().startswith("file://") else Path(text)


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if re.fullmatch(r"[+-]?\d{1,18}", low):
        return int(low)
    return text


def parse_storage_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``["endpoint_url=http://h:9000", "anon=true"]`` -> ``{"endpoint_url": ..., "anon": True}``.

    Raises ValueError (the option name, never the value) for a pair without ``=``.

    >>> parse_storage_options(["anon=true", "client_kwargs.region_name=eu-west-1"])
    {'anon': True, 'client_kwargs': {'region_name': 'eu-west-1'}}
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:  # no '=': the text may be a secret, so it is not quoted
            raise ValueError(f"--storage-option: expected key=value (option {len(out) + 1} has no key or no '=')")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:  # client_kwargs.region_name=... -> {"client_kwargs": {"region_name": ...}}
            node = node.setdefault(p, {})
        node[leaf] = _value(value)
    return out


def _secrets(options: dict[str, Any]) -> list[str]:
    found = []
    for k, v in options.items():
        if isinstance(v, dict):
            found += _secrets(v)
        elif isinstance(v, str) and len(v) >= 4 and SECRET_KEYS.search(k):
            found.append(v)
    return found


def redact(text: str, options: dict[str, Any]) -> str:
    """``text`` with every secret option value replaced by ``***`` (messages, logs)."""
    for secret in _secrets(options):
        text = text.replace(secret, "***")
    return text


#: Schemes whose first path part is a bucket (container): created by its owner, never by poolcli.
BUCKETS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl")


class Store:
    """One URL root (an input folder or ``--out``) and its filesystem; picklable for workers.

    ``root`` is the URL without a trailing slash; paths below it are
    relative POSIX strings.
    """

    def __init__(self, url: str, options: dict[str, Any] | None = None):
        self.url = str(url).rstrip("/")
        self.options = dict(options or {})
        self._fs = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "options": self.options, "_fs": None}

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0].lower()

    @property
    def fs(self):
        if self._fs is None:
            self._fs = self._connect()
        return self._fs

    def _connect(self):
        try:
            import fsspec
        except ImportError:
            raise RuntimeError(f"{self.url.split('://')[0]}:// URLs need fsspec: {CLOUD_HINT}") from None
        options = dict(self.options)
        if self.protocol in ("s3", "s3a"):
            options.setdefault("config_kwargs", {})
            options["config_kwargs"] = {**S3_CONFIG, **options["config_kwargs"]}
        try:
            fs, _ = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as exc:
            raise RuntimeError(f"{self.protocol}:// URLs need a backend ({exc.name or exc}): {CLOUD_HINT}") from None
        except ValueError as exc:
            raise RuntimeError(f"{self.url}: {redact(str(exc), self.options)}") from None
        return fs

    def path(self, rel: str = "") -> str:
        """The filesystem path (no scheme) of ``rel`` below the root."""
        root = self.fs._strip_protocol(self.url)
        return f"{root}/{rel}" if rel else root

    def url_of(self, rel: str) -> str:
        return f"{self.url}/{rel}" if rel else self.url

    def fail(self, what: str, exc: BaseException) -> RuntimeError:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return RuntimeError(f"{self.url}: cannot {what} ({redact(reason, self.options)[:200]})")

    def check(self, create: bool = False) -> None:
        """Reach the store now (fail fast, one line): the root exists, or can be created with ``create``."""
        try:
            if create:
                bucket = self.path().split("/", 1)[0]
                if self.protocol in BUCKETS and bucket and not self.fs.exists(bucket):
                    # makedirs would create the bucket: a typo in --out made a new bucket (billing, policies)
                    raise FileNotFoundError(f"bucket {bucket!r} does not exist; poolcli makes folders, not buckets")
                self.fs.makedirs(self.path(), exist_ok=True)
            elif not self.fs.exists(self.path()):
                raise FileNotFoundError("no such bucket or prefix")
        except RuntimeError:
            raise
        except Exception as exc:  # connection refused, DNS, credentials, timeouts: all one line
            raise self.fail("reach it", exc) from None

    def find(self) -> list[str]:
        """Every object below the root, as sorted relative paths (listing is paginated by the backend)."""
        try:
            root = self.path().rstrip("/")
            found = self.fs.find(root, detail=False)
        except Exception as exc:
            raise self.fail("list it", exc) from None
        rels = [p[len(root):].lstrip("/") for p in found if p.startswith(root)]
        return sorted(r for r in rels if r)

    def read_bytes(self, rel: str) -> bytes | None:
        """An object's bytes, or None when it does not exist."""
        try:
            return self.fs.cat_file(self.path(rel))
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self.fail(f"read {rel}", exc) from None

    def read_json(self, rel: str) -> Any:
        data = self.read_bytes(rel)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    def download(self, rel: str, folder: str | os.PathLike[str]) -> Path:
        """Copy one object into a local ``folder`` (keeping its file name); return the local path."""
        dest = Path(folder) / Path(rel).name
        try:
            self.fs.get_file(self.path(rel), str(dest))
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise self.fail(f"download {rel}", exc) from None
        return dest

    def upload_file(self, local: str | os.PathLike[str], rel: str) -> None:
        try:
            self.fs.put_file(str(local), self.path(rel))
        except Exception as exc:
            raise self.fail(f"upload {rel}", exc) from None

    def upload_tree(self, local_dir: str | os.PathLike[str], rel_dir: str, last: Iterable[str] = ()) -> list[str]:
        """Upload every file under ``local_dir`` to ``rel_dir``; the names in ``last`` (markers) after all others."""
        base = Path(local_dir)
        files = sorted(p for p in base.rglob("*") if p.is_file())
        late = {str(n) for n in last}
        ordered = [p for p in files if p.relative_to(base).as_posix() not in late]
        ordered += [p for p in files if p.relative_to(base).as_posix() in late]
        done = []
        for p in ordered:
            rel = f"{rel_dir}/{p.relative_to(base).as_posix()}" if rel_dir else p.relative_to(base).as_posix()
            self.upload_file(p, rel)
            done.append(rel)
        return done

    def remove_file(self, rel: str) -> None:
        """Delete one object (one request; nothing to do when it does not exist)."""
        try:
            self.fs.rm_file(self.path(rel))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self.fail(f"remove {rel}", exc) from None

    def remove(self, rel: str) -> None:
        try:
            self.fs.rm(self.path(rel), recursive=True)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self.fail(f"remove {rel}", exc) from None


def staging_dir(prefix: str = "poolcli-stage-") -> Path:
    """A fresh local folder for one input's outputs before they are uploaded."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def remove_local(path: str | os.PathLike[str]) -> None:
    shutil.rmtree(path, ignore_errors=True)
