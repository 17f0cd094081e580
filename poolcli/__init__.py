"""poolcli: see, on real images, what the pooling layers of a CNN do.

The numeric API is imported lazily (PEP 562), so that ``poolcli --help`` never
pays for NumPy, SciPy or Pillow::

    from poolcli import pool2d, adaptive_pool2d, global_pool2d, correlate2d, Stack
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "pool2d": "poolcli.pooling",
    "MODES": "poolcli.pooling",
    "adaptive_pool2d": "poolcli.pooling",
    "global_pool2d": "poolcli.pooling",
    "pool_geometry": "poolcli.pooling",
    "set_num_threads": "poolcli.pooling",
    "unpool2d": "poolcli.pooling_family",
    "max_pool2d_with_indices": "poolcli.pooling_family",
    "fractional_max_pool2d": "poolcli.pooling_family",
    "learned_pool2d": "poolcli.pooling_family",
    "blur2d": "poolcli.antialias",
    "aps_pool2d": "poolcli.antialias",
    "correlate2d": "poolcli.filters",
    "apply_filter": "poolcli.filters",
    "get_filter": "poolcli.filters",
    "Stack": "poolcli.stack",
    "parse_stack": "poolcli.stack",
    "apply_stack": "poolcli.stack",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'poolcli' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
