"""Alias kept for users' imports: anti-aliased pooling now lives in :mod:`poolcli.pooling.antialias`.

``from poolcli.antialias import blur2d`` keeps working; this module only
re-exports the public names (see :mod:`poolcli.pooling.antialias` for the
conventions and references).
"""

from __future__ import annotations

from .pooling.antialias import (
    BLUR_SIZES,
    aps_downsample,
    aps_pool2d,
    blur2d,
    blur_kernel,
    max_blur_pool2d,
)

__all__ = [
    "BLUR_SIZES",
    "blur_kernel",
    "blur2d",
    "max_blur_pool2d",
    "aps_downsample",
    "aps_pool2d",
]
