"""What a stack will need, before it runs: each stage's output shape and working memory (no NumPy).

A stage's working memory is modelled from what its core allocates, measured
with tracemalloc on a 600x600 float32 plane (peaks, as multiples of the
input): the window-sorting modes (median, quantile) hold about 3.5 copies of
``k * k * output`` elements; every other stage at most 8 copies of the larger
of its input and its output (blur and the family reducers ~5-8, max ~2, avg
~1). The estimate is an upper bound of that model for float32 maps; it
exists to refuse, in a second, a run the kernel would otherwise kill after
minutes (a 6000x6000 image through ``median(9, stride=1)`` needs ~70 GiB).

``--max-memory`` (default: half the memory available when the run starts,
:func:`default_limit`) is the limit for the run: each of the inputs processed
at once (``--workers`` local processes) gets an equal share.

Imports: :mod:`poolcli.stack.model` (shapes only), the standard library.
"""

from __future__ import annotations

import math
import os
from typing import Any

from .model import Stack

__all__ = ["stage_estimates", "check", "default_limit", "parse_size", "human"]

_ITEM = 4  # float32 maps
_SORTING = ("median", "quantile")


def _out_hw(stage: Any, h: int, w: int) -> tuple[int, int]:
    op = stage.ops[0]
    if stage.kind == "adaptive":
        return tuple(op.get("output_size"))  # type: ignore[return-value]
    if stage.kind == "global":
        return 1, 1
    if stage.kind == "fractional" and op.get("output_size") is not None:
        return tuple(op.get("output_size"))  # type: ignore[return-value]
    if stage.kind == "fractional":
        r = op.get("ratio")
        return max(1, int(h * r)), max(1, int(w * r))
    try:
        sy, sx = stage.stride()
    except ValueError:  # learned weights not loaded: assume no subsampling (an upper bound)
        sy = sx = 1
    return max(1, math.ceil(h / sy)), max(1, math.ceil(w / sx))


def stage_estimates(stack: Stack, shape: tuple[int, int, int]) -> list[tuple[int, str, int, tuple[int, int, int]]]:
    """``(index, spec, bytes, output shape)`` per stage for a (C, H, W) float32 input."""
    c, h, w = shape
    out = []
    for index, stage in enumerate(stack.stages, start=1):
        oh, ow = _out_hw(stage, h, w)
        oc = c * len(stage.ops) if stage.kind == "filter" else c
        op = stage.ops[0]
        if op.name in _SORTING:
            kh, kw = op.get("size")
            need = 3.5 * kh * kw * oc * oh * ow * _ITEM
        else:
            need = 8 * max(c * h * w, oc * oh * ow) * _ITEM
        out.append((index, str(stage), int(need), (oc, oh, ow)))
        c, h, w = oc, oh, ow
    return out


def check(stack: Stack, shape: tuple[int, int, int], limit: int, note: str = "") -> None:
    """Raise ValueError naming the first stage whose estimate exceeds ``limit`` bytes (``note`` follows the limit)."""
    for index, spec, need, _ in stage_estimates(stack, shape):
        if need > limit:
            spec = spec if len(spec) <= 80 else spec[:50] + "…" + spec[-25:]
            raise ValueError(f"stage {index} ({spec}) needs about {human(need)} for a "
                             f"{shape[0]}x{shape[1]}x{shape[2]} input, over --max-memory {human(limit)}{note}")


def available() -> int | None:
    """Memory available now (``MemAvailable``, else free pages), in bytes; None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_limit() -> int:
    """Half the memory available when the run starts (8 GiB when that is unknown)."""
    avail = available()
    return avail // 2 if avail else 8 << 30


def parse_size(text: str) -> int:
    """``"4G"``, ``"512M"``, ``"2.5GiB"``, ``"1000000"`` -> bytes; ValueError for anything else.

    >>> parse_size("4G"), parse_size("512MiB"), parse_size("1000")
    (4294967296, 536870912, 1000)
    """
    t = str(text).strip().lower().removesuffix("ib").removesuffix("b")
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in "kmgt" else t
    try:
        v = float(number)
    except ValueError:
        raise ValueError(f"expected a size like 4G or 512M, got {str(text)[:20]!r}") from None
    if not math.isfinite(v) or v <= 0 or v * scale > 1 << 60:
        raise ValueError(f"expected a positive size like 4G, got {str(text)[:20]!r}")
    return int(v * scale)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"
