"""Pooling stacks: the model, where stacks come from, and how they are applied.

* :mod:`~poolcli.stack.model`: Op / Stage / Stack, :func:`make_op` (the one
  constructor every source goes through), the pure parser (no I/O), presets,
  and the transformations ``invariance`` uses (:func:`circular_stack`,
  :func:`swap_pooling`);
* :mod:`~poolcli.stack.sources`: a stack from a string (:func:`parse_stack`),
  a preset, a TOML config or command-line options; files named by stages are
  loaded here;
* :mod:`~poolcli.stack.apply`: :func:`apply_stack` runs the registry's functions.

Imports go model <- sources <- apply <- this package; the registry
(:mod:`poolcli.ops`) is below all three.
"""

from __future__ import annotations

from typing import Any

from ..ops import BOUNDARY_MODES, OpSpec, Param
from .apply import apply_op, apply_stack, apply_stage
from .model import (
    PRESETS,
    ArgError,
    FileArg,
    Op,
    Stack,
    Stage,
    check_padding,
    circular_stack,
    make_op,
    op_specs,
    parse,
    swap_pooling,
    swappable_modes,
)
from .sources import from_config, from_options, from_preset, from_string, one_stage_stack, parse_stack

preset = from_preset  # the name users know

__all__ = [
    "Op", "Stage", "Stack", "FileArg", "ArgError", "OpSpec", "Param", "BOUNDARY_MODES", "PRESETS",
    "POOL_METHODS", "op_specs", "make_op", "parse", "parse_stack", "preset", "one_stage_stack",
    "from_string", "from_preset", "from_config", "from_options", "circular_stack", "swap_pooling",
    "swappable_modes", "check_padding", "apply_op", "apply_stage", "apply_stack",
]


def __getattr__(name: str) -> Any:
    if name == "POOL_METHODS":  # the modes --compare can swap in, built from the registry on first use
        return swappable_modes()
    raise AttributeError(f"module 'poolcli.stack' has no attribute {name!r}")
