"""Applying a stack: every stage's registry function on a (C, H, W) float array.

Imports: :mod:`poolcli.stack.model`, :mod:`poolcli.stack.sources` (to load a
file a stack built by hand still names as a path), NumPy.
"""

from __future__ import annotations

from .model import Op, Stack, Stage
from .sources import load_file_arg, names_file

__all__ = ["apply_op", "apply_stage", "apply_stack"]


def apply_op(x, op: Op):
    """Apply one op to a (C, H, W) float array: the registry's function with every parameter filled in."""
    values = {k: (load_file_arg(op, k, v).array if names_file(op, k, v) else v) for k, v in op.values().items()}
    return op.spec.apply(x, **values)


def apply_stage(x, stage: Stage):
    """Apply one stage; a filter bank concatenates its filters' outputs as channels."""
    import numpy as np

    outs = [apply_op(x, op) for op in stage.ops]
    return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)


def apply_stack(x, stack: Stack) -> list:
    """Run ``stack`` on a (C, H, W) float array; return every stage's output, in order.

    >>> import numpy as np
    >>> from poolcli.stack import parse_stack
    >>> maps = apply_stack(np.ones((1, 8, 8), np.float32), parse_stack("max(2) | avg(2)"))
    >>> [m.shape for m in maps]
    [(1, 4, 4), (1, 2, 2)]
    """
    outs = []
    for stage in stack.stages:
        x = apply_stage(x, stage)
        outs.append(x)
    return outs
