"""The registry: every stage kind poolcli knows, described once.

One :class:`OpSpec` per stage name holds its kind (``pool``, ``fractional``,
``learned``, ``adaptive``, ``global``, ``filter``, ``activation``), its
parameters (:class:`Param`: converter, default, aliases, whether required,
the command-line option that sets it) and the function that applies it. The
stack parser, the canonical form, ``--pool``'s choices and per-mode option
checks, the required-option messages, ``poolcli filters`` / ``presets`` and
:func:`poolcli.stack.apply_op` all read this table; nothing else lists
stage names.

Where the facts come from:

* pooling modes: :data:`poolcli.pooling.modes.MODES` (the one list of mode
  names); a mode's parameters, their order and their defaults are the
  signature of its core function, so a default is written once, in the core;
* filters: :data:`poolcli.filters.FILTERS` (the one list of filter names);
* adaptive / global pooling, activations, ``conv``: here.

Importing this module costs no NumPy: the parameter table and the names are
plain Python; :func:`registry` imports the numeric cores the first time it
builds the full table.

Imports: :mod:`poolcli.pooling.modes` (numpy-free) at import time;
:mod:`poolcli.pooling`, :mod:`poolcli.filters` lazily.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, replace
from typing import Any, Callable

from .pooling.modes import MODES

__all__ = [
    "BadValue",
    "Param",
    "OpSpec",
    "PARAMS",
    "STAGE_ALIASES",
    "BOUNDARY_MODES",
    "ACTIVATIONS",
    "format_value",
    "excerpt",
    "MAX_INT",
    "registry",
    "pool_mode_names",
    "modes_taking",
    "closest",
]


class BadValue(ValueError):
    """A value that does not fit its parameter (the message says what was expected)."""


#: The largest int a size, stride, dilation, padding or output size may be: far above any image
#: (Pillow refuses more than 2**31 pixels), and small enough that no index arithmetic overflows.
MAX_INT = 2**31 - 1
#: The largest |divisor_override| (PyTorch's is an int64).
MAX_DIVISOR = 2**63 - 1


def excerpt(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut in the middle to about ``limit`` characters: messages quote values, never whole
    files, and a long path keeps its end (the file name).

    >>> excerpt("x" * 10)
    "'xxxxxxxxxx'"
    >>> excerpt("/very/long/folder/" * 4 + "k.npy", limit=30)
    "'/very/lo…(77 chars)…er/k.npy'"
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    n = len(value) if isinstance(value, (str, bytes)) else len(text)
    half = max(4, (limit - 12) // 2)
    return f"{text[:half]}…({n} chars)…{text[-half:]}"


# ----------------------------------------------------------------------------- values


def format_value(v: Any) -> str:
    """A parameter value as the stack language writes it (``2``, ``2x3``, ``true``, ``"a b"``).

    >>> format_value((2, 2)), format_value((1, 0, 1, 0)), format_value(1e20), format_value("a b")
    ('2', '1x0x1x0', '1e20', '"a b"')
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        if len(v) == 2 and v[0] == v[1]:
            return format_value(v[0])
        return "x".join(format_value(i) for i in v)
    if isinstance(v, float):
        # No '+' in exponents: '+' joins filters in the stack language.
        return repr(int(v)) + ".0" if v.is_integer() and abs(v) < 1e16 else repr(v).replace("e+", "e")
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-/]*", s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise BadValue("expected an int")
    if isinstance(raw, int):
        v = raw
    elif isinstance(raw, float) and raw.is_integer():
        v = int(raw)
    elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d{1,40}", raw.strip()):
        v = int(raw)
    else:
        raise BadValue("expected an int")
    if abs(v) > MAX_DIVISOR:
        raise BadValue(f"must be between -{MAX_DIVISOR} and {MAX_DIVISOR}")
    return v


def _bounded(v: int) -> int:
    if v > MAX_INT:
        raise BadValue(f"must be at most {MAX_INT}")
    return v


def _ints(raw: Any, lengths: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(raw, tuple):
        items = raw
    elif isinstance(raw, str) and "x" in raw.lower():
        items = tuple(raw.lower().split("x"))
    else:
        items = (raw,)
    if len(items) > 4:
        raise BadValue(f"expected {' or '.join(str(n) for n in lengths)} values like 2x3")
    vals = tuple(_bounded(to_int(i)) for i in items)
    if len(vals) == 1 and 2 in lengths:
        vals = (vals[0], vals[0])
    if len(vals) not in lengths:
        raise BadValue(f"expected {' or '.join(str(n) for n in lengths)} values like 2x3")
    return vals


def positive_pair(raw: Any) -> tuple[int, int]:
    v = _ints(raw, (2,))
    if min(v) < 1:
        raise BadValue("must be >= 1")
    return v  # type: ignore[return-value]


def padding_value(raw: Any) -> Any:
    if isinstance(raw, str) and raw.strip().lower() in ("same", "valid"):
        return raw.strip().lower()
    v = _ints(raw, (2, 4))
    if min(v) < 0:
        raise BadValue("must be >= 0")
    return v


def to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    s = str(raw).strip().lower()
    if s in ("true", "yes", "on", "1"):
        return True
    if s in ("false", "no", "off", "0"):
        return False
    raise BadValue("expected true or false")


def to_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise BadValue("expected a number")
    try:
        v = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise BadValue("expected a number") from None
    if not math.isfinite(v):
        raise BadValue("expected a finite number")
    return v


def _norm(raw: Any) -> float:
    """A norm or exponent p: > 0 and at most 1e6 (beyond that x**p overflows for any pixel above 1)."""
    v = _positive_float(raw)
    if v > 1e6:
        raise BadValue("must be at most 1e6")
    return v


def _positive_float(raw: Any) -> float:
    v = to_float(raw)
    if v <= 0:
        raise BadValue("must be > 0")
    return v


def _in_range(lo: float, hi: float, *, open_lo: bool = False) -> Callable[[Any], float]:
    def conv(raw: Any) -> float:
        v = to_float(raw)
        if not (lo < v <= hi if open_lo else lo <= v <= hi):
            raise BadValue(f"must be in {'(' if open_lo else '['}{lo:g}, {hi:g}]")
        return v

    return conv


def _int_range(lo: int, hi: int, what: str = "") -> Callable[[Any], int]:
    def conv(raw: Any) -> int:
        v = to_int(raw)
        if not lo <= v <= hi:
            raise BadValue(f"must be {lo} to {hi}{what}")
        return v

    return conv


def _divisor(raw: Any) -> int:
    v = to_int(raw)
    if v == 0:
        raise BadValue("must be a non-zero int")
    return v  # to_int bounds it to an int64, as PyTorch's


def _seed(raw: Any) -> int:
    v = to_int(raw)
    if not 0 <= v < 2**63:
        raise BadValue("must be >= 0 and below 2**63")
    return v


def _sigma(raw: Any) -> float:
    v = _positive_float(raw)
    if v > 256:
        raise BadValue("must be at most 256 (a kernel of about 2000 taps)")
    return v


def _box_size(raw: Any) -> tuple[int, int]:
    v = positive_pair(raw)
    if max(v) > 1025:
        raise BadValue("must be at most 1025")
    return v


def _word(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def conv(raw: Any) -> str:
        s = str(raw).strip().lower()
        if s not in choices:
            raise BadValue(f"expected one of {', '.join(choices)}")
        return s

    return conv


def _alias_word(choices: tuple[str, ...], aliases: dict[str, str]) -> Callable[[Any], str]:
    """A word among ``choices`` or an alias of one (case, ``_`` and ``-`` folded)."""

    def conv(raw: Any) -> str:
        s = str(raw).strip().lower().replace("_", "-")
        s = aliases.get(s, s)
        canon = {c.replace("_", "-"): c for c in choices}
        if s not in canon:
            raise BadValue(f"expected one of {', '.join(choices)}")
        return canon[s]

    return conv


# The anti-aliased modes' words (pooling/antialias.py checks the same lists: BLUR_PADS, PEERS,
# APS_CRITERIA, APS_TIES; tests/test_peers.py holds them equal).
BLUR_PADS = ("reflect", "replicate", "zero", "circular")
PEERS = ("none", "antialiased-cnns", "kornia", "timm")
APS_CRITERIA = ("l2", "l1", "linf", "max", "l2_min", "l1_min")
APS_TIES = ("first", "official")
_BLUR_PAD_ALIASES = {"refl": "reflect", "repl": "replicate", "constant": "zero", "zeros": "zero",
                     "wrap": "circular", "mirror": "reflect", "nearest": "replicate", "edge": "replicate"}
_PEER_ALIASES = {"antialiasedcnns": "antialiased-cnns", "adobe": "antialiased-cnns"}
_CRITERION_ALIASES = {"l-infty": "linf", "l-inf": "linf", "non-abs-max": "max"}


def _string(raw: Any) -> str:
    s = str(raw)
    if not s.strip():
        raise BadValue("must not be empty")
    return s


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Param:
    """One argument of a stage.

    ``option`` is the command-line option that sets it in ``poolcli run`` /
    ``invariance`` (None: only through ``--stack``), ``cli_type`` the Python
    type Click parses that option as, ``needs`` and ``example`` the words of
    the message when a mode requires it and it is missing.
    """

    name: str
    convert: Callable[[Any], Any]
    default: Any = None
    required: bool = False
    aliases: tuple[str, ...] = ()
    flag: bool = False  # may be written bare (``ceil``) to mean true
    option: str | None = None
    cli_type: type = str
    help: str = ""
    needs: str = ""
    example: str = ""

    def with_default(self, default: Any) -> "Param":
        """This parameter with another default (converted), or required when ``default`` is ``inspect._empty``."""
        if default is inspect.Parameter.empty:
            return replace(self, default=None, required=True)
        return replace(self, default=None if default is None else self.convert(default), required=False)


BOUNDARY_MODES = ("reflect", "mirror", "nearest", "constant", "wrap")
ACTIVATIONS = ("relu", "abs")

# Every parameter once. A pooling mode takes those its core function's
# signature names; the defaults come from that signature.
PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("size", positive_pair, aliases=("k", "kernel_size"), option="--size",
              help="Window size: 2 or 2x3 (H x W) \\[default: 2]."),
        Param("stride", positive_pair, aliases=("s",), option="--stride", help="Stride \\[default: the size]."),
        Param("padding", padding_value, (0, 0), aliases=("pad",), option="--padding",
              help="Padding: 1, 1x2, top,bottom,left,right, 'same' (TensorFlow) or 'valid' \\[default: 0]."),
        Param("dilation", positive_pair, (1, 1), aliases=("d",), option="--dilation", help="Dilation \\[default: 1]."),
        Param("ceil_mode", to_bool, False, aliases=("ceil",), flag=True, option="--ceil-mode", cli_type=bool,
              help="Round the output size up."),
        Param("count_include_pad", to_bool, True, flag=True, option="--no-count-include-pad", cli_type=bool,
              help="avg: count padded zeros in the divisor."),
        Param("divisor_override", _divisor, option="--divisor-override", cli_type=int,
              help="avg: divide by this instead."),
        Param("padding_mode", _word(("default", "circular")), "default"),
        Param("p", _norm, aliases=("norm", "norm_type"), option="--p", cli_type=float,
              help="lp: the norm p (required); gem: the exponent \\[default: 3].", needs="a norm", example="2"),
        Param("blur_size", _int_range(1, 7, " (binomial taps)"), 3, aliases=("blur", "m", "filt_size"),
              option="--blur-size", cli_type=int,
              help="blurpool/blur/aps: taps of the binomial blur, 1-7 \\[default: 3; aps: 1]."),
        Param("blur_pad", _alias_word(BLUR_PADS, _BLUR_PAD_ALIASES), aliases=("pad_type",), option="--blur-pad",
              help="blurpool/blur/aps: how the blur pads: reflect, replicate, zero or circular "
              "\\[default: the --peer's, else reflect; circular padding_mode wins]."),
        Param("pad_off", _int_range(0, 64), 0, option="--pad-off", cli_type=int,
              help="blurpool/blur/aps: antialiased-cnns' pad_off, added to every side's blur pad \\[default: 0]."),
        Param("peer", _alias_word(PEERS, _PEER_ALIASES), "none", option="--peer",
              help="blurpool/blur/aps: pad the blur as antialiased-cnns, kornia (zeros) or timm (symmetric) "
              "does; an explicit --blur-pad wins \\[default: none = antialiased-cnns]."),
        Param("criterion", _alias_word(APS_CRITERIA, _CRITERION_ALIASES), "l2", aliases=("apspool_criterion",),
              option="--criterion", help="aps: keep the component of largest l2, l1, linf (max |x|) or max x, "
              "or of smallest l2/l1 (l2_min, l1_min) \\[default: l2]."),
        Param("ties", _word(APS_TIES), "first", option="--ties",
              help="aps: exact ties go to the first component row-major (first) or in the official "
              "APS code's order (official) \\[default: first]."),
        Param("q", _in_range(0.0, 1.0), option="--q", cli_type=float,
              help="quantile: which quantile of each window, in \\[0, 1] (0.5 = median).",
              needs="the quantile in [0, 1]", example="0.25"),
        Param("alpha", _in_range(0.0, 1.0), 0.5, option="--alpha", cli_type=float,
              help="mixed: alpha * max + (1 - alpha) * avg, alpha in \\[0, 1] \\[default: 0.5]."),
        Param("train", to_bool, False, flag=True, option="--train/--no-train", cli_type=bool,
              help="stochastic: draw one activation per window (training) instead of the expectation "
              "sum(p_i * a_i) (inference) \\[default: --no-train]."),
        Param("seed", _seed, 0, option="--seed", cli_type=int,
              help="stochastic --train, fractional: the random seed \\[default: 0]."),
        Param("output_size", positive_pair, aliases=("out",)),
        Param("ratio", _in_range(0.0, 1.0, open_lo=True), aliases=("output_ratio",), option="--ratio",
              cli_type=float, help="fractional: output size / input size, in (0, 1] (required for it).",
              needs="an output ratio in (0, 1]", example="0.7"),
        Param("overlapping", to_bool, False, flag=True),
        Param("pseudo_random", to_bool, True, flag=True),
        Param("weights", _string, aliases=("file", "w"), option="--weights",
              help="learned: the pooling weights, a .npy of shape (k, k) or (C, k, k) (required for it).",
              needs="a weights file (.npy, shape (k, k) or (C, k, k))", example="w.npy"),
    )
}

_OUTPUT_SIZE = Param("output_size", positive_pair, required=True, aliases=("size",))
_FILTER_COMMON = (
    Param("mode", _word(BOUNDARY_MODES), "reflect", aliases=("boundary",)),
    Param("cval", to_float, 0.0),
    Param("stride", positive_pair, (1, 1), aliases=("s",)),
    PARAMS["dilation"],
)
_FILTER_OWN = {
    "gaussian": (Param("sigma", _sigma, 1.0),),
    "box": (Param("size", _box_size, (3, 3)),),
}
_CONV = (Param("kernel", _string, required=True),) + _FILTER_COMMON

# Other spellings of stage names (added freely; never removed).
STAGE_ALIASES = {
    "maxpool": "max",
    "avgpool": "avg",
    "average": "avg",
    "mean": "avg",
    "minpool": "min",
    "lppool": "lp",
    "maxblurpool": "blurpool",
    "max-blur": "blurpool",
    "antialiased-max": "blurpool",
    "gmax": "global-max",
    "gavg": "global-avg",
    "global-mean": "global-avg",
    "adaptive-mean": "adaptive-avg",
    "amax": "adaptive-max",
    "aavg": "adaptive-avg",
    "none": "identity",
}

# ----------------------------------------------------------------------------- the table

_GROUP_KIND = {"fractional": "fractional", "learned": "learned"}  # the rest of the modes: "pool"
_ADAPTIVE = ("max", "avg")


@dataclass(frozen=True)
class OpSpec:
    """One stage kind: name, kind, parameters in positional order, and how to apply it."""

    name: str
    kind: str  # 'pool' | 'fractional' | 'learned' | 'adaptive' | 'global' | 'filter' | 'activation'
    params: tuple[Param, ...] = ()
    apply: Callable[..., Any] | None = None  # apply(x, **params) on a (C, H, W) float array
    summary: str = ""

    def param(self, name: str) -> Param | None:
        """The parameter called ``name`` or one of its aliases."""
        for p in self.params:
            if p.name == name or name in p.aliases:
                return p
        return None


def pool_mode_names() -> tuple[str, ...]:
    """Every pooling mode (``--pool``'s choices but ``none``), without importing NumPy."""
    return tuple(MODES)


def _mode_params(function: Callable[..., Any]) -> tuple[Param, ...]:
    sig = inspect.signature(function)
    return tuple(PARAMS[name].with_default(p.default) for name, p in list(sig.parameters.items())[1:])


def _pool_spec(name: str) -> OpSpec:
    mode = MODES[name]
    function = mode.function
    return OpSpec(name, _GROUP_KIND.get(mode.group, "pool"), _mode_params(function), function, mode.summary)


def _filter_spec(name: str, summary: str) -> OpSpec:
    from . import filters

    def apply(x, *, mode, cval, stride, dilation, **own):
        return filters.apply_filter(x, filters.get_filter(name, **own), mode=mode, cval=cval, stride=stride,
                                    dilation=dilation).astype(x.dtype, copy=False)

    return OpSpec(name, "filter", _FILTER_OWN.get(name, ()) + _FILTER_COMMON, apply, summary)


def _conv(x, *, kernel, mode, cval, stride, dilation):
    """``conv(kernel=...)``: the kernel is inline text or an array the stack source loaded."""
    from . import filters

    k = filters.parse_kernel(kernel) if isinstance(kernel, str) else kernel
    f = filters.custom_filter(k, name="conv")
    return filters.apply_filter(x, f, mode=mode, cval=cval, stride=stride, dilation=dilation).astype(x.dtype, copy=False)


def _build() -> dict[str, OpSpec]:
    from . import filters, pooling

    specs = {name: _pool_spec(name) for name in MODES}
    for m in _ADAPTIVE:
        specs[f"adaptive-{m}"] = OpSpec(
            f"adaptive-{m}", "adaptive", (_OUTPUT_SIZE,),
            lambda x, output_size, m=m: pooling.adaptive_pool2d(x, m, output_size),
            f"adaptive {m} pooling to a fixed output size (F.adaptive_{m}_pool2d)",
        )
        specs[f"global-{m}"] = OpSpec(
            f"global-{m}", "global", (), lambda x, m=m: pooling.global_pool2d(x, m), f"global {m} pooling: one value per channel"
        )
    for name in ACTIVATIONS:
        specs[name] = OpSpec(name, "activation", (), lambda x, name=name: filters.activate(x, name), f"activation: {name}")
    specs["conv"] = OpSpec("conv", "filter", _CONV, _conv, "a custom kernel (cross-correlation)")
    for name, factory in filters.FILTERS.items():
        specs[name] = _filter_spec(name, factory().description)
    return specs


_REGISTRY: dict[str, OpSpec] | None = None


def registry() -> dict[str, OpSpec]:
    """Every stage name the stack language knows, with its spec (built once)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _build()
    return _REGISTRY


def modes_taking(param: str) -> list[str]:
    """The pooling modes whose parameters include ``param``."""
    specs = registry()
    return [m for m in MODES if specs[m].param(param) is not None and specs[m].param(param).name == param]


def closest(word: str, known: list[str] | tuple[str, ...], n: int = 3) -> list[str]:
    """The known names closest to ``word`` (difflib), for 'did you mean' hints."""
    import difflib

    return difflib.get_close_matches(word, list(known), n=n, cutoff=0.6)
