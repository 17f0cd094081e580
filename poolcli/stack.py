"""Pooling stacks: stages, the stack language, presets and ``apply_stack``.

A stack is a sequence of stages joined by ``|``; each stage is one operation
``name(args)``, and filters joined by ``+`` form a bank whose outputs are
stacked as channels::

    sobel-x + sobel-y | relu | max(2) | avg(3, stride=2, padding=1, ceil)

Arguments are positional (in the order listed below) or ``key=value``. Values
are ints, floats, ``true``/``false``, pairs written ``2x3`` (height x width),
four-tuples ``1x0x1x0`` (top x bottom x left x right), words (``same``,
``mirror``) or quoted strings. A bare flag name (``ceil``) means ``true``.

=============================  ==========================================================
stage                          arguments
=============================  ==========================================================
``max min avg lp``             size, stride, padding, dilation, ceil, count_include_pad,
                               divisor_override, p (lp only)
``adaptive-max adaptive-avg``  output_size (``7``, ``7x5``)
``global-max global-avg``      (none)
filters (``poolcli filters``)  their own (sigma, size) and mode, cval, stride, dilation
``conv``                       kernel (``"1,0,-1;2,0,-2;1,0,-1"`` or a .npy/.txt path),
                               mode, cval, stride, dilation
``relu abs``                   (none)
=============================  ==========================================================

The canonical form (``str(stack)``) spells every stage with keywords and only
non-default values; ``parse_stack(str(stack)) == stack`` always holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import StackSpecError

# ----------------------------------------------------------------------------- values


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        if len(v) == 2 and v[0] == v[1]:
            return _fmt_value(v[0])
        return "x".join(_fmt_value(i) for i in v)
    if isinstance(v, float):
        # No '+' in exponents: '+' joins filters in the stack language.
        return repr(int(v)) + ".0" if v.is_integer() and abs(v) < 1e16 else repr(v).replace("e+", "e")
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-/]*", s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Bad(ValueError):
    """A value that does not fit its parameter (turned into a StackSpecError)."""


def _int_value(raw: Any) -> int:
    if isinstance(raw, bool):
        raise _Bad("expected an int")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"[+-]?\d+", raw.strip()):
        return int(raw)
    raise _Bad("expected an int")


def _tuple_value(raw: Any, lengths: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(raw, tuple):
        items = raw
    elif isinstance(raw, str) and "x" in raw.lower():
        items = tuple(raw.lower().split("x"))
    else:
        items = (raw,)
    vals = tuple(_int_value(i) for i in items)
    if len(vals) == 1 and 2 in lengths:
        vals = (vals[0], vals[0])
    if len(vals) not in lengths:
        raise _Bad(f"expected {' or '.join(str(n) for n in lengths)} values like 2x3")
    return vals


def _pos_pair(raw: Any) -> tuple[int, int]:
    v = _tuple_value(raw, (2,))
    if min(v) < 1:
        raise _Bad("must be >= 1")
    return v  # type: ignore[return-value]


def _padding_value(raw: Any) -> Any:
    if isinstance(raw, str) and raw.strip().lower() in ("same", "valid"):
        return raw.strip().lower()
    v = _tuple_value(raw, (2, 4))
    if min(v) < 0:
        raise _Bad("must be >= 0")
    return v


def _bool_value(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    s = str(raw).strip().lower()
    if s in ("true", "yes", "on", "1"):
        return True
    if s in ("false", "no", "off", "0"):
        return False
    raise _Bad("expected true or false")


def _float_value(raw: Any) -> float:
    if isinstance(raw, bool):
        raise _Bad("expected a number")
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise _Bad("expected a number") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise _Bad("expected a finite number")
    return v


def _positive_float(raw: Any) -> float:
    v = _float_value(raw)
    if v <= 0:
        raise _Bad("must be > 0")
    return v


def _divisor_value(raw: Any) -> int:
    v = _int_value(raw)
    if v == 0:
        raise _Bad("must be a non-zero int")
    return v


def _output_size(raw: Any) -> tuple[int, int]:
    return _pos_pair(raw)


def _word(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def conv(raw: Any) -> str:
        s = str(raw).strip().lower()
        if s not in choices:
            raise _Bad(f"expected one of {', '.join(choices)}")
        return s

    return conv


def _string(raw: Any) -> str:
    s = str(raw)
    if not s.strip():
        raise _Bad("must not be empty")
    return s


BOUNDARY_MODES = ("reflect", "mirror", "nearest", "constant", "wrap")


@dataclass(frozen=True)
class Param:
    """One argument of a stage: its name, converter, default and aliases."""

    name: str
    convert: Callable[[Any], Any]
    default: Any = None
    required: bool = False
    aliases: tuple[str, ...] = ()
    flag: bool = False  # may be written bare (``ceil``) to mean true


def _blur_size(raw: Any) -> int:
    v = _int_value(raw)
    if not 1 <= v <= 7:
        raise _Bad("must be 1 to 7 (binomial taps)")
    return v


def _sigma(raw: Any) -> float:
    v = _positive_float(raw)
    if v > 256:
        raise _Bad("must be at most 256 (a kernel of about 2000 taps)")
    return v


def _box_size(raw: Any) -> tuple[int, int]:
    v = _pos_pair(raw)
    if max(v) > 1025:
        raise _Bad("must be at most 1025")
    return v


def _unit_float(raw: Any) -> float:
    v = _float_value(raw)
    if not 0.0 <= v <= 1.0:
        raise _Bad("must be in [0, 1]")
    return v


def _ratio(raw: Any) -> float:
    v = _float_value(raw)
    if not 0.0 < v <= 1.0:
        raise _Bad("must be in (0, 1]")
    return v


def _seed(raw: Any) -> int:
    v = _int_value(raw)
    if v < 0:
        raise _Bad("must be >= 0")
    return v


# Every parameter once; each stage's list below is built from these.
_SIZE = Param("size", _pos_pair, required=True, aliases=("k", "kernel_size"))
_STRIDE = Param("stride", _pos_pair, aliases=("s",))
_PADDING = Param("padding", _padding_value, (0, 0), aliases=("pad",))
_DILATION = Param("dilation", _pos_pair, (1, 1), aliases=("d",))
_CEIL = Param("ceil_mode", _bool_value, False, aliases=("ceil",), flag=True)
_COUNT_PAD = Param("count_include_pad", _bool_value, True, flag=True)
_PADDING_MODE = Param("padding_mode", _word(("default", "circular")), "default")
_SEED = Param("seed", _seed, 0)


def _blur(default: int) -> Param:
    return Param("blur_size", _blur_size, default, aliases=("blur", "m", "filt_size"))


_GEOMETRY = (_SIZE, _STRIDE, _PADDING, _DILATION, _CEIL)
_POOL_PARAMS = _GEOMETRY + (_COUNT_PAD, Param("divisor_override", _divisor_value, None), _PADDING_MODE)
_LP_PARAMS = _POOL_PARAMS + (Param("p", _positive_float, required=True, aliases=("norm", "norm_type")),)
# Anti-aliased pooling (Zhang 2019) and adaptive polyphase sampling (Chaman & Dokmanic 2021).
_BLURPOOL_PARAMS = (_SIZE, _STRIDE, _PADDING, _DILATION, _blur(3), _PADDING_MODE)
_BLUR_PARAMS = (_SIZE, _STRIDE, _blur(3), _PADDING_MODE)
_APS_PARAMS = (_SIZE, _STRIDE, _blur(1), _PADDING_MODE)
_FILTER_COMMON = (
    Param("mode", _word(BOUNDARY_MODES), "reflect", aliases=("boundary",)),
    Param("cval", _float_value, 0.0),
    Param("stride", _pos_pair, (1, 1), aliases=("s",)),
    _DILATION,
)
_FILTER_OWN = {
    "gaussian": (Param("sigma", _sigma, 1.0),),
    "box": (Param("size", _box_size, (3, 3)),),
}
# The rest of the family (poolcli.pooling_family).
_FAMILY_PARAMS = {
    "median": _GEOMETRY + (_PADDING_MODE,),
    "quantile": _GEOMETRY + (Param("q", _unit_float, required=True), _PADDING_MODE),
    "mixed": _GEOMETRY + (_COUNT_PAD, Param("alpha", _unit_float, 0.5), _PADDING_MODE),
    "softpool": _GEOMETRY + (_PADDING_MODE,),
    "stochastic": _GEOMETRY + (Param("train", _bool_value, False, flag=True), _SEED, _PADDING_MODE),
    "gem": _GEOMETRY + (Param("p", _positive_float, 3.0, aliases=("norm",)), _PADDING_MODE),
}
_FRACTIONAL_PARAMS = (
    Param("size", _pos_pair, (2, 2), aliases=("k", "kernel_size")),
    Param("output_size", _pos_pair, None, aliases=("out",)),
    Param("ratio", _ratio, None, aliases=("output_ratio",)),
    _SEED,
    Param("overlapping", _bool_value, False, flag=True),
    Param("pseudo_random", _bool_value, True, flag=True),
)
_LEARNED_PARAMS = (Param("weights", _string, required=True, aliases=("file", "w")), _STRIDE, _PADDING)


@dataclass(frozen=True)
class OpSpec:
    kind: str  # 'pool' | 'adaptive' | 'global' | 'filter' | 'activation'
    params: tuple[Param, ...] = ()


def _op_specs() -> dict[str, OpSpec]:
    specs: dict[str, OpSpec] = {
        "max": OpSpec("pool", _POOL_PARAMS),
        "min": OpSpec("pool", _POOL_PARAMS),
        "avg": OpSpec("pool", _POOL_PARAMS),
        "lp": OpSpec("pool", _LP_PARAMS),
        "blurpool": OpSpec("pool", _BLURPOOL_PARAMS),
        "blur": OpSpec("pool", _BLUR_PARAMS),
        "aps": OpSpec("pool", _APS_PARAMS),
        **{name: OpSpec("pool", params) for name, params in _FAMILY_PARAMS.items()},
        "fractional": OpSpec("fractional", _FRACTIONAL_PARAMS),
        "learned": OpSpec("learned", _LEARNED_PARAMS),
        "adaptive-max": OpSpec("adaptive", (Param("output_size", _output_size, required=True, aliases=("size",)),)),
        "adaptive-avg": OpSpec("adaptive", (Param("output_size", _output_size, required=True, aliases=("size",)),)),
        "global-max": OpSpec("global"),
        "global-avg": OpSpec("global"),
        "relu": OpSpec("activation"),
        "abs": OpSpec("activation"),
        "conv": OpSpec("filter", (Param("kernel", _string, required=True),) + _FILTER_COMMON),
    }
    from .filters import FILTERS  # numpy-only module; stays off the --help path

    for name in FILTERS:
        specs[name] = OpSpec("filter", _FILTER_OWN.get(name, ()) + _FILTER_COMMON)
    return specs


_ALIASES = {
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
}

_SPECS: dict[str, OpSpec] | None = None


def op_specs() -> dict[str, OpSpec]:
    """Every stage name the stack language knows, with its parameters."""
    global _SPECS
    if _SPECS is None:
        _SPECS = _op_specs()
    return _SPECS


# ----------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class Op:
    """One operation: a canonical name and its non-default parameters, in declared order."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kind(self) -> str:
        return op_specs()[self.name].kind

    def get(self, key: str) -> Any:
        for k, v in self.params:
            if k == key:
                return v
        for p in op_specs()[self.name].params:
            if p.name == key:
                return p.default
        raise KeyError(key)

    def __str__(self) -> str:
        spec = op_specs()[self.name]
        shown = list(self.params)
        if spec.kind == "pool" and not any(k == "stride" for k, _ in shown):
            # Always spell the stride of a pool: "max(size=2, stride=2)" reads at a glance.
            i = 1 if shown and shown[0][0] == "size" else 0
            shown.insert(i, ("stride", self.get("size")))
        if not shown:
            return self.name
        return f"{self.name}({', '.join(f'{k}={_fmt_value(v)}' for k, v in shown)})"


@dataclass(frozen=True)
class Stage:
    """One stage of a stack: one op, or several filters whose outputs become channels."""

    ops: tuple[Op, ...]

    @property
    def kind(self) -> str:
        return self.ops[0].kind

    @property
    def name(self) -> str:
        """A short name for file names and tables: ``max``, ``sobel-x+sobel-y``."""
        return "+".join(op.name for op in self.ops)

    def __str__(self) -> str:
        return " + ".join(str(op) for op in self.ops)

    def stride(self) -> tuple[int, int]:
        """The subsampling factor of this stage (1 for adaptive and global stages)."""
        op = self.ops[0]
        if self.kind in ("pool", "filter"):
            s = op.get("stride")
            return s if s is not None else op.get("size")
        if self.kind == "learned":
            if op.get("stride") is not None:
                return op.get("stride")
            from .pooling_family import load_weights

            k = load_weights(op.get("weights")).shape[-2:]
            return (int(k[0]), int(k[1]))
        if self.kind == "fractional" and op.get("ratio") is not None:
            s = max(1, round(1 / op.get("ratio")))
            return (s, s)
        return (1, 1)


@dataclass(frozen=True)
class Stack:
    """An ordered, immutable sequence of stages. ``str()`` is the canonical form."""

    stages: tuple[Stage, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return " | ".join(str(s) for s in self.stages) if self.stages else "identity"

    def __len__(self) -> int:
        return len(self.stages)

    def __iter__(self):
        return iter(self.stages)


def _with_params(op: Op, changes: dict[str, Any]) -> Op:
    """``op`` with some parameters replaced (dropping those equal to the default)."""
    spec = op_specs()[op.name]
    merged = dict(op.params)
    merged.update(changes)
    params = tuple(
        (p.name, merged[p.name]) for p in spec.params if p.name in merged and merged[p.name] != p.default
    )
    return Op(op.name, params)


def circular_stack(stack: Stack) -> Stack:
    """Every padding and boundary made circular (filters wrap, pools pad by wrapping).

    With it, every stage commutes with circular shifts by multiples of its
    stride, so what ``poolcli invariance`` measures is the stack, not its borders.
    """
    stages = []
    for stage in stack.stages:
        ops = []
        for op in stage.ops:
            names = {p.name for p in op_specs()[op.name].params}
            if "mode" in names and op.kind == "filter":
                op = _with_params(op, {"mode": "wrap"})
            elif "padding_mode" in names:
                op = _with_params(op, {"padding_mode": "circular"})
            ops.append(op)
        stages.append(Stage(tuple(ops)))
    return Stack(tuple(stages))


POOL_METHODS = ("max", "avg", "min", "lp", "blurpool", "blur", "aps", "median", "mixed", "softpool", "gem", "stochastic")


def swap_pooling(stack: Stack, method: str, *, p: float = 2.0) -> Stack:
    """The same stack with every pooling stage done by ``method`` (window and stride kept).

    Parameters the new method does not take are dropped; ``lp`` gets norm ``p``.

    >>> str(swap_pooling(parse_stack("sobel | max(3, stride=2, padding=1)"), "blurpool"))
    'sobel | blurpool(size=3, stride=2, padding=1)'
    """
    method = _ALIASES.get(method.strip().lower(), method.strip().lower())
    if method not in POOL_METHODS:
        from .errors import UsageError

        raise UsageError(f"unknown pooling method {method!r}; known: {', '.join(POOL_METHODS)}")
    spec = op_specs()[method]
    names = {q.name for q in spec.params}
    stages = []
    for stage in stack.stages:
        op = stage.ops[0]
        if stage.kind != "pool":
            stages.append(stage)
            continue
        params = {k: v for k, v in op.params if k in names}
        params["size"] = op.get("size")
        if "stride" not in params:
            params["stride"] = op.get("stride") if op.get("stride") is not None else op.get("size")
        if method == "lp":
            params["p"] = p
        kept = tuple((q.name, params[q.name]) for q in spec.params if q.name in params and params[q.name] != q.default)
        if params["stride"] == params["size"]:
            kept = tuple((k, v) for k, v in kept if k != "stride")
        stages.append(Stage((Op(method, kept),)))
    return Stack(tuple(stages))


# ----------------------------------------------------------------------------- parser

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<punct>[()|+,=])
    | (?P<word>[^\s()|+,="']+)
    )""",
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int
    value: Any = None


def _tokenize(spec: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(spec):
        if spec[i].isspace():
            i += 1
            continue
        m = _TOKEN.match(spec, i)
        if not m or m.end() == i:
            raise StackSpecError(f"unexpected character {spec[i]!r}", spec, i)
        kind = m.lastgroup or "word"
        text = m.group(kind)
        pos = m.start(kind)
        value: Any = text
        if kind == "str":
            body = text[1:-1]
            value = re.sub(r"\\(.)", r"\1", body)
        toks.append(_Tok(kind, text, pos, value))
        i = m.end()
    toks.append(_Tok("end", "", len(spec)))
    return toks


class _Parser:
    def __init__(self, spec: str):
        self.spec = spec
        self.toks = _tokenize(spec)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, msg: str, pos: int) -> StackSpecError:
        return StackSpecError(msg, self.spec, pos)

    def expect(self, text: str) -> _Tok:
        t = self.take()
        if t.text != text or t.kind not in ("punct",):
            got = "the end" if t.kind == "end" else repr(t.text)
            raise self.error(f"expected {text!r}, got {got}", t.pos)
        return t

    def parse(self) -> Stack:
        if self.peek().kind == "end":
            raise self.error("empty stack", 0)
        stages = [self.stage()]
        while self.peek().text == "|" and self.peek().kind == "punct":
            self.take()
            stages.append(self.stage())
        t = self.peek()
        if t.kind != "end":
            raise self.error(f"expected '|' between stages, got {t.text!r}", t.pos)
        return Stack(tuple(s for s in stages if s is not None))

    def stage(self) -> Stage | None:
        positions = [self.peek().pos]
        ops = [self.op()]
        while self.peek().text == "+" and self.peek().kind == "punct":
            self.take()
            positions.append(self.peek().pos)
            ops.append(self.op())
        if len(ops) > 1:
            for op, pos in zip(ops, positions):
                if op.kind != "filter":
                    raise self.error(f"only filters can be joined with '+' (a filter bank), got {op.name!r}", pos)
        elif ops[0].name == "identity":
            return None  # a lone identity stage does nothing
        return Stage(tuple(ops))

    def op(self) -> Op:
        t = self.take()
        if t.kind != "word":
            got = "the end" if t.kind == "end" else repr(t.text)
            raise self.error(f"expected a stage name, got {got}", t.pos)
        name = t.text.lower().replace("_", "-")
        name = _ALIASES.get(name, name)
        specs = op_specs()
        if name == "none":
            name = "identity"
        if name not in specs:
            known = ", ".join(sorted(specs))
            raise self.error(f"unknown stage {t.text!r}; known: {known}", t.pos)
        args: list[tuple[str | None, Any, int]] = []
        if self.peek().text == "(" and self.peek().kind == "punct":
            self.take()
            if self.peek().text != ")":
                args.append(self.arg())
                while self.peek().text == ",":
                    self.take()
                    args.append(self.arg())
            self.expect(")")
        return self.build(name, args, t.pos)

    def arg(self) -> tuple[str | None, Any, int]:
        t = self.take()
        if t.kind not in ("word", "str"):
            got = "the end" if t.kind == "end" else repr(t.text)
            raise self.error(f"expected an argument, got {got}", t.pos)
        if t.kind == "word" and self.peek().text == "=" and self.peek().kind == "punct":
            self.take()
            v = self.take()
            if v.kind not in ("word", "str"):
                got = "the end" if v.kind == "end" else repr(v.text)
                raise self.error(f"expected a value after '{t.text}=', got {got}", v.pos)
            return t.text.lower(), v.value, t.pos
        return None, (t.value if t.kind == "str" else t.text), t.pos

    def build(self, name: str, args, pos: int) -> Op:
        spec = op_specs()[name]
        by_name: dict[str, Param] = {}
        for p in spec.params:
            by_name[p.name] = p
            for a in p.aliases:
                by_name[a] = p
        given: dict[str, tuple[Any, int]] = {}
        positional = [p for p in spec.params]
        n_pos = 0
        for key, raw, apos in args:
            if key is None:
                lowered = str(raw).lower()
                if lowered in by_name and by_name[lowered].flag:
                    key, raw = by_name[lowered].name, True
                else:
                    if n_pos >= len(positional):
                        raise self.error(f"{name} takes at most {len(positional)} positional argument(s)", apos)
                    key = positional[n_pos].name
                    n_pos += 1
            p = by_name.get(key)
            if p is None:
                known = ", ".join(q.name for q in spec.params) or "none"
                raise self.error(f"{name}: unknown argument {key!r} (known: {known})", apos)
            if p.name in given:
                raise self.error(f"{name}: argument {p.name!r} given twice", apos)
            try:
                given[p.name] = (p.convert(raw), apos)
            except _Bad as exc:
                raise self.error(f"{name}: {p.name}={raw!r}: {exc}", apos) from None
        for p in spec.params:
            if p.required and p.name not in given:
                raise self.error(f"{name}: missing required argument {p.name!r}", pos)
        if spec.kind == "pool" and "stride" in given and given["stride"][0] == given["size"][0]:
            del given["stride"]  # the default stride is the size: one canonical spelling
        params = tuple(
            (p.name, given[p.name][0])
            for p in spec.params
            if p.name in given and given[p.name][0] != p.default
        )
        op = Op(name, params)
        try:
            _validate(op)
        except _PaddingError as exc:
            raise self.error(f"{name}: {exc}", given["padding"][1] if "padding" in given else pos) from None
        except (ValueError, MemoryError) as exc:
            msg = "too large to build" if isinstance(exc, MemoryError) else str(exc)
            raise self.error(f"{name}: {msg}", pos) from None
        return op


class _PaddingError(ValueError):
    pass


def check_padding(size: tuple[int, int], dilation: tuple[int, int], pad: Any) -> None:
    """The padding rules of :func:`poolcli.pooling.pool2d`, checked before any image is read.

    An int or pair: at most ``size // 2`` (PyTorch's rule, on the undilated
    window); four sides: each smaller than the dilated window.
    """
    if isinstance(pad, tuple) and len(pad) == 2 and (pad[0] > size[0] // 2 or pad[1] > size[1] // 2):
        raise _PaddingError(
            f"padding={_fmt_value(pad)} should be at most half of size={_fmt_value(size)} (PyTorch's rule)"
        )
    if isinstance(pad, tuple) and len(pad) == 4:
        eff = [d * (k - 1) + 1 for k, d in zip(size, dilation)]
        if pad[0] >= eff[0] or pad[1] >= eff[0] or pad[2] >= eff[1] or pad[3] >= eff[1]:
            raise _PaddingError(
                f"padding={_fmt_value(pad)}: each side must be smaller than the window "
                f"({eff[0]}x{eff[1]} with dilation), or a window would hold only padding"
            )


def _validate(op: Op) -> None:
    """Checks that need the numeric modules (the filter's own params, a kernel file)."""
    names = {p.name for p in op_specs()[op.name].params}
    if op.kind == "filter":
        _filter_of(op)
    elif op.kind == "pool" and "padding" in names:
        check_padding(op.get("size"), op.get("dilation"), op.get("padding"))
    elif op.kind == "fractional":
        if (op.get("output_size") is None) == (op.get("ratio") is None):
            raise ValueError("give exactly one of output_size and ratio (e.g. fractional(ratio=0.7))")
    elif op.kind == "learned":
        from .pooling_family import load_weights

        try:
            load_weights(op.get("weights"))
        except FileNotFoundError:
            raise ValueError(f"weights file {op.get('weights')!r} not found") from None


def parse_stack(spec: str) -> Stack:
    """Parse a stack string; raise :class:`~poolcli.errors.StackSpecError` pointing at the bad part.

    >>> s = parse_stack("sobel | relu | max(2)")
    >>> str(s)
    'sobel | relu | max(size=2, stride=2)'
    >>> parse_stack(str(s)) == s
    True
    >>> str(parse_stack("avg(3, 2, 1, ceil)"))
    'avg(size=3, stride=2, padding=1, ceil_mode=true)'
    """
    if not isinstance(spec, str):
        raise StackSpecError(f"a stack must be a string, got {type(spec).__name__}")
    return _Parser(spec).parse()


# ----------------------------------------------------------------------------- presets

PRESETS: dict[str, tuple[str, str]] = {
    "lenet5": (
        "LeNet-5 (1998): convolution then average pooling, twice",
        "sobel-x + sobel-y | abs | avg(size=2, stride=2) | gaussian(sigma=1.0) | abs | avg(size=2, stride=2)",
    ),
    "vgg": (
        "VGG (2014): two convolutions then 2x2 max pooling, repeated",
        "sobel-x + sobel-y | relu | gaussian(sigma=1.0) | relu | max(size=2, stride=2)"
        " | laplace | relu | gaussian(sigma=1.0) | relu | max(size=2, stride=2)",
    ),
    "resnet-stem": (
        "ResNet stem (2015): a stride-2 convolution then 3x3 max pooling with stride 2",
        "sobel(stride=2) | relu | max(size=3, stride=2, padding=1)",
    ),
    "strided-conv": (
        "No pooling: stride-2 convolutions do the downsampling (all-convolutional nets)",
        "sobel-x + sobel-y | relu | box(size=2, stride=2) | relu | box(size=2, stride=2)",
    ),
    "hierarchy": (
        "Stacked 2x2 max pooling: each stage sees a 2x larger region of the input",
        "sobel | max(size=2, stride=2) | max(size=2, stride=2) | max(size=2, stride=2) | max(size=2, stride=2)",
    ),
}


def preset(name: str) -> Stack:
    """The named preset stack (``poolcli presets`` lists them)."""
    key = name.strip().lower()
    if key not in PRESETS:
        from .errors import UsageError

        raise UsageError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return parse_stack(PRESETS[key][1])


def one_stage_stack(
    filters: list[str] | None = None,
    activation: str = "none",
    pool: str | None = "max",
    size: Any = 2,
    **pool_params: Any,
) -> Stack:
    """The stack the plain command-line options describe: filter bank | activation | pool.

    ``filters`` are stack-language filter items (``"sobel"``, ``"gaussian(sigma=2)"``).
    """
    parts = []
    items = [f for f in (filters or []) if f.strip().lower() not in ("none", "identity")]
    if items:
        parts.append(" + ".join(items))
    if activation and activation != "none":
        parts.append(activation)
    if pool and pool != "none":
        pool_params = {"size": size, **pool_params}
        args = ", ".join(f"{k}={_fmt_value(v)}" for k, v in pool_params.items() if v is not None)
        parts.append(f"{pool}({args})" if args else pool)
    return parse_stack(" | ".join(parts)) if parts else Stack(())


# ----------------------------------------------------------------------------- apply


def _filter_of(op: Op):
    from .filters import custom_filter, get_filter, load_kernel, parse_kernel

    if op.name == "conv":
        text = op.get("kernel")
        import os

        if re.search(r"\.(npy|txt|csv)$", text.strip(), re.IGNORECASE) or os.path.isfile(text):
            return custom_filter(load_kernel(text), name="conv")
        return custom_filter(parse_kernel(text), name="conv")
    own = {p.name for p in _FILTER_OWN.get(op.name, ())}
    return get_filter(op.name, **{k: v for k, v in op.params if k in own})


def apply_op(x, op: Op):
    """Apply one op to a (C, H, W) float array."""
    import numpy as np

    from . import filters as F
    from . import pooling as P

    kind = op.kind
    if kind == "pool" and op.name in _FAMILY_PARAMS:
        return P.pool2d(
            x,
            op.name,
            op.get("size"),
            op.get("stride"),
            op.get("padding"),
            op.get("dilation"),
            op.get("ceil_mode"),
            op.get("count_include_pad") if op.name == "mixed" else True,
            p=op.get("p") if op.name == "gem" else None,
            padding_mode=op.get("padding_mode"),
            q=op.get("q") if op.name == "quantile" else None,
            alpha=op.get("alpha") if op.name == "mixed" else None,
            train=op.get("train") if op.name == "stochastic" else False,
            seed=op.get("seed") if op.name == "stochastic" else None,
        )
    if kind == "fractional":
        from .pooling_family import fractional_max_pool2d

        return fractional_max_pool2d(
            x,
            op.get("size"),
            output_size=op.get("output_size"),
            output_ratio=op.get("ratio"),
            seed=op.get("seed"),
            overlapping=op.get("overlapping"),
            pseudo_random=op.get("pseudo_random"),
        )
    if kind == "learned":
        from .pooling_family import learned_pool2d, load_weights

        return learned_pool2d(x, load_weights(op.get("weights")), op.get("stride"), op.get("padding"))
    if kind == "pool" and op.name in ("blurpool", "blur", "aps"):
        return P.pool2d(
            x,
            op.name,
            op.get("size"),
            op.get("stride"),
            op.get("padding") if op.name == "blurpool" else 0,
            op.get("dilation") if op.name == "blurpool" else 1,
            padding_mode=op.get("padding_mode"),
            blur_size=op.get("blur_size"),
        )
    if kind == "pool":
        return P.pool2d(
            x,
            op.name,
            op.get("size"),
            op.get("stride"),
            op.get("padding"),
            op.get("dilation"),
            op.get("ceil_mode"),
            op.get("count_include_pad"),
            op.get("divisor_override"),
            op.get("p") if op.name == "lp" else None,
            padding_mode=op.get("padding_mode"),
        )
    if kind == "adaptive":
        return P.adaptive_pool2d(x, op.name.split("-", 1)[1], op.get("output_size"))
    if kind == "global":
        return P.global_pool2d(x, op.name.split("-", 1)[1])
    if kind == "activation":
        return F.activate(x, op.name)
    if kind == "filter":
        out = F.apply_filter(
            x,
            _filter_of(op),
            mode=op.get("mode"),
            cval=op.get("cval"),
            stride=op.get("stride"),
            dilation=op.get("dilation"),
        )
        return np.asarray(out, dtype=x.dtype)
    raise AssertionError(kind)


def apply_stage(x, stage: Stage):
    """Apply one stage; a filter bank concatenates its filters' outputs as channels."""
    import numpy as np

    outs = [apply_op(x, op) for op in stage.ops]
    return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)


def apply_stack(x, stack: Stack) -> list:
    """Run ``stack`` on a (C, H, W) float array; return every stage's output, in order.

    >>> import numpy as np
    >>> maps = apply_stack(np.ones((1, 8, 8), np.float32), parse_stack("max(2) | avg(2)"))
    >>> [m.shape for m in maps]
    [(1, 4, 4), (1, 2, 2)]
    """
    outs = []
    for stage in stack.stages:
        x = apply_stage(x, stage)
        outs.append(x)
    return outs
