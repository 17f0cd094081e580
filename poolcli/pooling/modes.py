"""The pooling-mode table: the one place pooling mode names are listed.

Knows: every mode's name, the core function that computes it (a
``module:function`` path inside :mod:`poolcli.pooling`), its group and a
one-line summary. A mode's parameters, their order and their defaults are
that function's signature (after the first positional ``x``), so a default
is written once, in the core; :func:`poolcli.pooling.pool2d`, the stack
registry (:mod:`poolcli.ops`) and ``poolcli run --pool`` all read this table.

Importing this module costs no NumPy: the names are plain Python, and a
:class:`PoolMode` (with its function) is built the first time a mode is
looked up (``MODES[name]``, ``MODES.values()``); iterating ``MODES`` or
``tuple(MODES)`` only reads names.

Imports: the standard library only; the cores (:mod:`.torch_ops`,
:mod:`.antialias`, :mod:`.family`) on first lookup.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["PoolMode", "MODES", "POOL_MODES", "GROUPS", "FAMILY_MODES", "ANTIALIASED_MODES", "modes_in"]


@dataclass(frozen=True)
class PoolMode:
    """One pooling mode.

    Attributes
    ----------
    name : str
    function : callable
        ``function(x, <params>) -> ndarray``; ``x`` is (H, W), (C, H, W) or
        (N, C, H, W). Its signature lists the mode's parameters.
    group : {'torch', 'antialiased', 'family', 'fractional', 'learned'}
    summary : str
        One line: what it computes.
    """

    name: str
    function: Callable[..., Any]
    group: str
    summary: str


GROUPS = ("torch", "antialiased", "family", "fractional", "learned")

# name, "module:function" in poolcli.pooling, group, summary; in this order.
_TABLE: tuple[tuple[str, str, str, str], ...] = (
    ("max", "torch_ops:max_pool2d", "torch", "max of each window (F.max_pool2d)"),
    ("avg", "torch_ops:avg_pool2d", "torch", "mean of each window (F.avg_pool2d)"),
    ("min", "torch_ops:min_pool2d", "torch", "min of each window (-F.max_pool2d(-x))"),
    ("lp", "torch_ops:lp_pool2d", "torch", "p-norm of each window (F.lp_pool2d)"),
    ("blurpool", "antialias:blurpool_mode", "antialiased",
     "max with stride 1, then a binomial blur and subsampling (MaxBlurPool, Zhang 2019; peer= antialiased-cnns, "
     "kornia or timm padding)"),
    ("blur", "antialias:blur_mode", "antialiased",
     "binomial blur and subsampling (BlurPool, Zhang 2019; peer= antialiased-cnns, kornia or timm padding)"),
    ("aps", "antialias:aps_mode", "antialiased",
     "max with stride 1, then adaptive polyphase sampling (APS, Chaman & Dokmanic 2021; criterion= l2, l1, linf, ...)"),
    ("median", "family:median_pool2d", "family", "median of each window's input taps"),
    ("quantile", "family:quantile_pool2d", "family", "q-quantile of each window's input taps"),
    ("mixed", "family:mixed_pool2d", "family", "alpha * max + (1 - alpha) * avg of each window (Yu et al. 2014)"),
    ("softpool", "family:softpool2d", "family", "softmax-weighted sum of each window (SoftPool, Stergiou et al. 2021)"),
    ("stochastic", "family:stochastic_mode", "family",
     "probability-weighted mean, or one draw per window with train (Zeiler & Fergus 2013)"),
    ("gem", "family:gem_mode", "family", "generalised mean (mean a^p)^(1/p) of each window (GeM, Radenovic et al. 2018)"),
    ("fractional", "family:fractional_mode", "fractional",
     "max over pseudo-random regions, output size a fraction of the input (Graham 2014)"),
    ("learned", "family:learned_mode", "learned",
     "depthwise strided cross-correlation with given weights (F.conv2d, groups=C)"),
)


class _ModeTable(Mapping):
    """``{name: PoolMode}`` whose functions are imported on first lookup."""

    def __init__(self, table: tuple[tuple[str, str, str, str], ...]) -> None:
        self._rows = {row[0]: row for row in table}
        self._built: dict[str, PoolMode] = {}

    def __getitem__(self, name: str) -> PoolMode:
        mode = self._built.get(name)
        if mode is None:
            _, target, group, summary = self._rows[name]
            module, _, attr = target.partition(":")
            function = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
            mode = self._built[name] = PoolMode(name, function, group, summary)
        return mode

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def group_of(self, name: str) -> str:
        """A mode's group without importing its function."""
        return self._rows[name][2]

    def __repr__(self) -> str:
        return f"MODES({', '.join(self._rows)})"


#: Every pooling mode, in order: name -> :class:`PoolMode`.
MODES: Mapping[str, PoolMode] = _ModeTable(_TABLE)
#: The mode names (kept for compatibility).
POOL_MODES = tuple(MODES)


def modes_in(*groups: str) -> tuple[str, ...]:
    """The names of the modes in ``groups``, in table order (no NumPy import)."""
    return tuple(name for name in MODES if MODES.group_of(name) in groups)  # type: ignore[attr-defined]


FAMILY_MODES = modes_in("family")
ANTIALIASED_MODES = modes_in("antialiased")
