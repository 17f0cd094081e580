"""Alias kept for users' imports: the pooling family now lives in :mod:`poolcli.pooling`.

``from poolcli.pooling_family import median_pool2d`` keeps working; new code
imports from :mod:`poolcli.pooling` (or :mod:`poolcli.pooling.family`,
:mod:`poolcli.pooling.geometry`, :mod:`poolcli.pooling.torch_ops`). This
module only re-exports public names.
"""

from __future__ import annotations

from .pooling.family import (
    FAMILY_MODES,
    family_pool2d,
    fractional_max_pool2d,
    fractional_sequence,
    gem_pool2d,
    learned_pool2d,
    load_weights,
    median_pool2d,
    mixed_pool2d,
    quantile_pool2d,
    softpool2d,
    stochastic_pool2d,
)
from .pooling.geometry import window_mask, window_view
from .pooling.torch_ops import max_pool2d_with_indices, unpool2d

__all__ = [
    "FAMILY_MODES",
    "window_view",
    "window_mask",
    "quantile_pool2d",
    "median_pool2d",
    "mixed_pool2d",
    "softpool2d",
    "stochastic_pool2d",
    "gem_pool2d",
    "family_pool2d",
    "fractional_sequence",
    "fractional_max_pool2d",
    "learned_pool2d",
    "load_weights",
    "max_pool2d_with_indices",
    "unpool2d",
]
