"""Shared test set-up: a fixed terminal for Rich, and small generated images.

The environment is pinned *before* anything imports ``poolcli.cli``: its Rich
consoles read ``COLUMNS`` / ``TERM`` / ``NO_COLOR`` when they are created (at
import), so output checks do not depend on the terminal running the tests
(the same trick as fastapi-cli's ``tests/conftest.py``).

Tests that drive the CLI use a module-level runner::

    from typer.testing import CliRunner
    from poolcli.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["run", str(image), "--out", str(tmp_path / "out")])
"""

from __future__ import annotations

import os

os.environ["COLUMNS"] = "120"
os.environ["LINES"] = "50"
os.environ["TERM"] = "dumb"
os.environ["NO_COLOR"] = "1"

from hypothesis import settings  # noqa: E402

# CI runs on shared, noisy machines: no per-example deadline, and the same
# examples every run (HYPOTHESIS_PROFILE=explore for fresh random ones).
settings.register_profile("ci", deadline=None, derandomize=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
os.environ.pop("FORCE_COLOR", None)

from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"

# The environment a subprocess run of poolcli gets: the same pinned terminal.
SUBPROCESS_ENV = {**os.environ, "COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1"}


def _noise(h: int, w: int, channels: int | None = None, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hi = np.iinfo(dtype).max
    shape = (h, w) if channels is None else (h, w, channels)
    return rng.integers(0, hi + 1, shape, dtype=np.int64).astype(dtype)


def write_image(path: Path, kind: str = "L", size: tuple[int, int] = (12, 16), seed: int = 0) -> Path:
    """Write a small random image; ``size`` is (H, W); ``kind`` is L, RGB, I;16, jpg or tiny.

    Returns the path. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    if kind == "L":
        Image.fromarray(_noise(h, w, seed=seed), mode="L").save(path)
    elif kind == "RGB":
        Image.fromarray(_noise(h, w, 3, seed=seed), mode="RGB").save(path)
    elif kind == "I;16":
        im = Image.frombytes("I;16", (w, h), _noise(h, w, seed=seed, dtype=np.uint16).astype("<u2").tobytes())
        im.save(path)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return path


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """A factory: ``make_image("sub/a.png", "RGB", (8, 10))`` -> a path under tmp_path."""

    def make(rel: str, kind: str = "L", size: tuple[int, int] = (12, 16), seed: int = 0) -> Path:
        return write_image(tmp_path / rel, kind, size, seed)

    return make


@pytest.fixture
def gray_png(tmp_path: Path) -> Path:
    """An 8-bit grayscale (L) PNG, 12 x 16 (H x W), random values."""
    return write_image(tmp_path / "imgs" / "gray.png", "L", (12, 16), seed=1)


@pytest.fixture
def odd_png(tmp_path: Path) -> Path:
    """An L PNG of odd size 7 x 9: every pooling edge case shows on it."""
    return write_image(tmp_path / "imgs" / "odd.png", "L", (7, 9), seed=2)


@pytest.fixture
def rgb_png(tmp_path: Path) -> Path:
    """An RGB PNG, 10 x 14."""
    return write_image(tmp_path / "imgs" / "rgb.png", "RGB", (10, 14), seed=3)


@pytest.fixture
def i16_png(tmp_path: Path) -> Path:
    """A 16-bit grayscale (I;16) PNG, 8 x 12."""
    return write_image(tmp_path / "imgs" / "deep.png", "I;16", (8, 12), seed=4)


@pytest.fixture
def preset_png(tmp_path: Path) -> Path:
    """A 48 x 64 L PNG: big enough for every preset's stack."""
    return write_image(tmp_path / "imgs" / "preset.png", "L", (48, 64), seed=5)


@pytest.fixture
def broken_png(tmp_path: Path) -> Path:
    """A text file named .png."""
    p = tmp_path / "imgs" / "broken.png"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("this is not a PNG, just text\n")
    return p


@pytest.fixture
def truncated_png(tmp_path: Path) -> Path:
    """A real PNG cut in half."""
    full = write_image(tmp_path / "imgs" / "full-for-truncation.png", "L", (32, 32), seed=6)
    data = full.read_bytes()
    full.unlink()
    p = tmp_path / "imgs" / "truncated.png"
    p.write_bytes(data[: len(data) // 2])
    return p


@pytest.fixture
def tiny_png(tmp_path: Path) -> Path:
    """A 1 x 1 image: smaller than a 2 x 2 pooling window."""
    return write_image(tmp_path / "imgs" / "tiny.png", "L", (1, 1), seed=7)


# ----------------------------------------------------------------------------- an S3-protocol server on loopback


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """``http://127.0.0.1:PORT`` of moto's standalone S3 server (``moto[server]``), started here, stopped at the end.

    Any key and secret are accepted; nothing leaves the machine.
    """
    import socket
    import subprocess
    import sys
    import time

    pytest.importorskip("moto", reason="the test extra installs moto[server]")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto's S3 server did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def stop(proc, timeout: float = 20) -> None:
    """End a server the tests started: SIGTERM, then SIGKILL if it has not ended within ``timeout``."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
