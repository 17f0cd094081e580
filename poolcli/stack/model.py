"""The stack model (Op, Stage, Stack, FileArg), the one op constructor, and the pure parser.

A stack is a sequence of stages joined by ``|``; each stage is one operation
``name(args)``, and filters joined by ``+`` form a bank whose outputs are
stacked as channels::

    sobel-x + sobel-y | relu | max(2) | avg(3, stride=2, padding=1, ceil)

Arguments are positional (in the order ``poolcli modes`` / the registry lists)
or ``key=value``. Values are ints, floats, ``true``/``false``, pairs written
``2x3`` (height x width), four-tuples ``1x0x1x0`` (top x bottom x left x
right), words (``same``, ``mirror``) or quoted strings. A bare flag name
(``ceil``) means ``true``.

Which stages exist and what they take is the registry's
(:mod:`poolcli.ops`); this module holds no stage names. Parsing does no I/O:
a kernel or weights file named in a stack stays a path here until a stack
source (:mod:`poolcli.sources`) loads it into a :class:`FileArg`.
:func:`poolcli.stack.parse_stack` is that source for a string.

The canonical form (``str(stack)``) spells every stage with keywords and only
non-default values; ``parse_stack(str(stack)) == stack`` always holds.

Imports: :mod:`poolcli.ops`, :mod:`poolcli.errors` (and :mod:`poolcli.filters` to check a filter's values).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import StackSpecError, UsageError
from ..ops import (
    BOUNDARY_MODES,
    STAGE_ALIASES,
    BadValue,
    OpSpec,
    Param,
    closest,
    excerpt,
    format_value,
    registry,
)

__all__ = [
    "Op",
    "Stage",
    "Stack",
    "FileArg",
    "ArgError",
    "PRESETS",
    "op_specs",
    "make_op",
    "canonical_name",
    "parse",
    "circular_stack",
    "swap_pooling",
    "method_spec",
    "method_name",
    "swappable_modes",
    "check_padding",
]


def op_specs() -> dict[str, OpSpec]:
    """Every stage name the stack language knows, with its spec (:func:`poolcli.ops.registry`)."""
    return registry()


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True, eq=False)
class FileArg:
    """A file a stage reads (a kernel or weights): the path as written, and its content once loaded.

    It prints as its path, so the canonical form is unchanged, and compares
    equal to that path (and to a FileArg of the same path and content).
    """

    path: str
    array: Any = field(default=None, repr=False)
    sha256: str = ""

    def __str__(self) -> str:
        return self.path

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileArg):
            return self.path == other.path and (not self.sha256 or not other.sha256 or self.sha256 == other.sha256)
        if isinstance(other, str):
            return self.path == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.path)


@dataclass(frozen=True)
class Op:
    """One operation: a canonical name and its non-default parameters, in declared order."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def spec(self) -> OpSpec:
        return registry()[self.name]

    @property
    def kind(self) -> str:
        return self.spec.kind

    def get(self, key: str) -> Any:
        for k, v in self.params:
            if k == key:
                return v
        for p in self.spec.params:
            if p.name == key:
                return p.default
        raise KeyError(key)

    def values(self) -> dict[str, Any]:
        """Every parameter of the op, defaults filled in, in declared order."""
        return {p.name: self.get(p.name) for p in self.spec.params}

    def __str__(self) -> str:
        shown = list(self.params)
        if self.kind == "pool" and not any(k == "stride" for k, _ in shown):
            # Always spell the stride of a pool: "max(size=2, stride=2)" reads at a glance.
            i = 1 if shown and shown[0][0] == "size" else 0
            shown.insert(i, ("stride", self.get("size")))
        if not shown:
            return self.name
        return f"{self.name}({', '.join(f'{k}={format_value(v)}' for k, v in shown)})"


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
            w = op.get("weights")
            if not isinstance(w, FileArg) or w.array is None:
                raise ValueError(f"learned: the weights {str(w)!r} are not loaded (build the stack with parse_stack)")
            k = w.array.shape[-2:]
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

    def files(self) -> list[FileArg]:
        """Every file the stack reads (kernels, weights), as loaded by its source."""
        return [v for s in self.stages for op in s.ops for _, v in op.params if isinstance(v, FileArg)]


# ----------------------------------------------------------------------------- building one op


class ArgError(ValueError):
    """A bad argument of :func:`make_op`; ``index`` is the argument's position in ``args`` (None: the op)."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


def canonical_name(word: str) -> str:
    """The registry name of a stage word (case, ``_`` and aliases folded); raise ArgError if unknown."""
    name = word.strip().lower().replace("_", "-")
    name = STAGE_ALIASES.get(name, name)
    specs = registry()
    if name not in specs:
        near = closest(name, [n for n in specs if n != "none"] + list(STAGE_ALIASES))
        near = list(dict.fromkeys(STAGE_ALIASES.get(n, n) for n in near))
        words = [repr(n) for n in near]
        hint = f"; did you mean {', '.join(words[:-1]) + ' or ' + words[-1] if len(words) > 1 else words[0]}?" if near else ""
        raise ArgError(f"unknown stage {excerpt(word)}{hint} (known: {', '.join(sorted(specs))})")
    return name


def _assign(spec: OpSpec, args: list[tuple[str | None, Any]]) -> dict[str, tuple[Any, int]]:
    """Raw arguments (positional or keyword) -> converted values by parameter name, with their index."""
    name = spec.name
    given: dict[str, tuple[Any, int]] = {}
    n_pos = 0
    for i, (key, raw) in enumerate(args):
        if key is None:
            p = spec.param(str(raw).lower())
            if p is not None and p.flag:
                key, raw = p.name, True
            else:
                if n_pos >= len(spec.params):
                    raise ArgError(f"{name} takes at most {len(spec.params)} positional argument(s)", i)
                key = spec.params[n_pos].name
                n_pos += 1
        p = spec.param(key.lower())
        if p is None:
            known = ", ".join(q.name for q in spec.params) or "none"
            raise ArgError(f"{name}: unknown argument {excerpt(key)} (known: {known})", i)
        if p.name in given:
            raise ArgError(f"{name}: argument {p.name!r} given twice", i)
        try:
            given[p.name] = (p.convert(raw), i)
        except BadValue as exc:
            raise ArgError(f"{name}: {p.name}={excerpt(raw)}: {exc}", i) from None
    return given


def make_op(name: str, args: list[tuple[str | None, Any]] | dict[str, Any] = ()) -> Op:
    """Build and validate one op from raw arguments, exactly as the parser does.

    ``args`` is a list of ``(keyword or None, raw value)`` (positional when
    None) or a dict of keyword arguments. Raises :class:`ArgError` naming
    the op and the parameter; ``ArgError.index`` points at the argument.

    >>> str(make_op("avg", {"size": "3", "stride": 2, "ceil": True}))
    'avg(size=3, stride=2, ceil_mode=true)'
    """
    if isinstance(args, dict):
        args = list(args.items())
    spec = registry()[canonical_name(name)]
    given = _assign(spec, list(args))
    for p in spec.params:
        if p.required and p.name not in given:
            raise ArgError(f"{spec.name}: missing required argument {p.name!r}")
    if spec.kind == "pool" and "stride" in given and given["stride"][0] == given["size"][0]:
        del given["stride"]  # the default stride is the size: one canonical spelling
    op = Op(spec.name, tuple((p.name, given[p.name][0]) for p in spec.params
                             if p.name in given and given[p.name][0] != p.default))
    try:
        _validate(op)
    except _PaddingError as exc:
        raise ArgError(f"{spec.name}: {exc}", given["padding"][1] if "padding" in given else None) from None
    except (ValueError, MemoryError, OverflowError, ZeroDivisionError) as exc:
        msg = "too large to build" if isinstance(exc, MemoryError) else str(exc)[:300]
        raise ArgError(f"{spec.name}: {msg}") from None
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
            f"padding={format_value(pad)} should be at most half of size={format_value(size)} (PyTorch's rule)"
        )
    if isinstance(pad, tuple) and len(pad) == 4:
        eff = [d * (k - 1) + 1 for k, d in zip(size, dilation)]
        if pad[0] >= eff[0] or pad[1] >= eff[0] or pad[2] >= eff[1] or pad[3] >= eff[1]:
            raise _PaddingError(
                f"padding={format_value(pad)}: each side must be smaller than the window "
                f"({eff[0]}x{eff[1]} with dilation), or a window would hold only padding"
            )


def _validate(op: Op) -> None:
    """Checks of an op's values together (no I/O: files, and a conv kernel, are the sources' to check)."""
    spec = op.spec
    if op.kind == "filter" and op.name != "conv":
        from ..filters import get_filter

        own = {p.name for p in spec.params} - {"mode", "cval", "stride", "dilation"}
        get_filter(op.name, **{k: v for k, v in op.params if k in own})
    elif op.kind == "pool" and spec.param("padding") is not None and spec.param("dilation") is not None:
        check_padding(op.get("size"), op.get("dilation"), op.get("padding"))
    elif op.kind == "fractional":
        if (op.get("output_size") is None) == (op.get("ratio") is None):
            raise ValueError("give exactly one of output_size and ratio (e.g. fractional(ratio=0.7))")


# ----------------------------------------------------------------------------- parser (pure: no I/O)

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
        value: Any = re.sub(r"\\(.)", r"\1", text[1:-1]) if kind == "str" else text
        toks.append(_Tok(kind, text, m.start(kind), value))
        i = m.end()
    toks.append(_Tok("end", "", len(spec)))
    return toks


def _got(t: _Tok) -> str:
    return "the end" if t.kind == "end" else repr(t.text)


class _Parser:
    """Recursive descent over the tokens; every op goes through :func:`make_op`, then ``resolve``."""

    def __init__(self, spec: str, resolve=None):
        self.spec = spec
        self.toks = _tokenize(spec)
        self.i = 0
        self.resolve = resolve

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at(self, text: str) -> bool:
        t = self.peek()
        return t.kind == "punct" and t.text == text

    def error(self, msg: str, pos: int) -> StackSpecError:
        return StackSpecError(msg, self.spec, pos)

    def parse(self) -> Stack:
        if self.peek().kind == "end":
            raise self.error("empty stack", 0)
        stages = [self.stage()]
        while self.at("|"):
            self.take()
            stages.append(self.stage())
        t = self.peek()
        if t.kind != "end":
            raise self.error(f"expected '|' between stages, got {t.text!r}", t.pos)
        return Stack(tuple(s for s in stages if s is not None))

    def stage(self) -> Stage | None:
        positions = [self.peek().pos]
        ops = [self.op()]
        while self.at("+"):
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
            raise self.error(f"expected a stage name, got {_got(t)}", t.pos)
        args: list[tuple[str | None, Any]] = []
        positions: list[int] = []
        if self.at("("):
            self.take()
            if not self.at(")"):
                self.arg(args, positions)
                while self.at(","):
                    self.take()
                    self.arg(args, positions)
            close = self.take()
            if not (close.kind == "punct" and close.text == ")"):
                raise self.error(f"expected ')', got {_got(close)}", close.pos)
        try:
            op = make_op(t.text, args)
            return self.resolve(op) if self.resolve else op
        except ArgError as exc:
            raise self.error(str(exc), t.pos if exc.index is None else positions[exc.index]) from None

    def arg(self, args: list, positions: list) -> None:
        t = self.take()
        if t.kind not in ("word", "str"):
            raise self.error(f"expected an argument, got {_got(t)}", t.pos)
        positions.append(t.pos)
        if t.kind == "word" and self.at("="):
            self.take()
            v = self.take()
            if v.kind not in ("word", "str"):
                raise self.error(f"expected a value after '{t.text}=', got {_got(v)}", v.pos)
            args.append((t.text.lower(), v.value))
        else:
            args.append((None, t.value if t.kind == "str" else t.text))


def parse(spec: str, resolve=None) -> Stack:
    """Parse a stack string without any I/O (files stay paths); ``resolve(op) -> op`` may load them.

    Raises :class:`~poolcli.errors.StackSpecError` pointing at the bad part.
    """
    if not isinstance(spec, str):
        raise StackSpecError(f"a stack must be a string, got {type(spec).__name__}")
    return _Parser(spec, resolve).parse()


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


# ----------------------------------------------------------------------------- transformations


def _with_params(op: Op, changes: dict[str, Any]) -> Op:
    """``op`` with some parameters replaced (dropping those equal to the default)."""
    merged = dict(op.params)
    merged.update(changes)
    params = tuple(
        (p.name, merged[p.name]) for p in op.spec.params if p.name in merged and merged[p.name] != p.default
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
            if op.kind == "filter" and op.spec.param("mode") is not None:
                op = _with_params(op, {"mode": "wrap"})
            elif op.spec.param("padding_mode") is not None:
                op = _with_params(op, {"padding_mode": "circular"})
            ops.append(op)
        stages.append(Stage(tuple(ops)))
    return Stack(tuple(stages))


def swappable_modes() -> tuple[str, ...]:
    """Pooling modes that can replace any window pooling stage: window modes needing no extra value (lp gets p)."""
    return tuple(
        name for name, spec in registry().items()
        if spec.kind == "pool" and all(not p.required or p.name in ("size", "p") for p in spec.params)
    )


def method_spec(method: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """A ``--compare`` method, ``name`` or ``name(key=value, ...)``: its mode and its own non-default arguments.

    The window, stride and padding come from the stack, so a method may not give ``size`` or
    ``stride``; :func:`method_name` spells the result canonically. Raises UsageError.

    >>> method_spec("maxblurpool(peer=Kornia, blur_size=3)")
    ('blurpool', (('peer', 'kornia'),))
    """
    parser = _Parser(method)
    t = parser.take()
    if t.kind != "word":
        raise UsageError(f"expected a pooling method like blurpool(peer=kornia), got {excerpt(method)}")
    args: list[tuple[str | None, Any]] = []
    if parser.at("("):
        parser.take()
        while not parser.at(")"):
            parser.arg(args, [])
            if parser.at(","):
                parser.take()
            elif not parser.at(")"):
                raise UsageError(f"{excerpt(method)}: expected ',' or ')' at {_got(parser.peek())}")
        parser.take()
    if parser.peek().kind != "end":
        raise UsageError(f"{excerpt(method)}: unexpected {_got(parser.peek())} after the method")
    try:
        spec = registry()[canonical_name(t.text)]
        given = _assign(spec, [(k, v) for k, v in args]) if args else {}
    except ArgError as exc:
        raise UsageError(str(exc)) from None
    if spec.kind != "pool" or given.keys() & {"size", "stride"}:
        raise UsageError(f"{excerpt(method)}: a --compare method is a window pooling mode whose size and stride "
                         f"come from the stack, e.g. blurpool(peer=kornia)")
    return spec.name, tuple((q.name, given[q.name][0]) for q in spec.params
                            if q.name in given and given[q.name][0] != q.default)


def method_name(name: str, params: tuple[tuple[str, Any], ...]) -> str:
    """The canonical spelling of a method: ``blurpool``, ``blurpool(peer=kornia)``."""
    return f"{name}({', '.join(f'{k}={format_value(v)}' for k, v in params)})" if params else name


def swap_pooling(stack: Stack, method: str, *, p: float = 2.0) -> Stack:
    """The same stack with every pooling stage done by ``method`` (window and stride kept).

    ``method`` is a mode name or a mode with its own arguments (``blurpool(peer=kornia)``,
    ``aps(criterion=l1)``, see :func:`method_spec`); they replace the stage's. Parameters the
    new method does not take are dropped; ``lp`` gets norm ``p`` unless the method gives one.

    >>> str(swap_pooling(parse("sobel | max(3, stride=2, padding=1)"), "blurpool"))
    'sobel | blurpool(size=3, stride=2, padding=1)'
    >>> str(swap_pooling(parse("max(2)"), "blurpool(peer=kornia)"))
    'blurpool(size=2, stride=2, peer=kornia)'
    """
    plain = "(" not in method
    key = STAGE_ALIASES.get(method.strip().lower(), method.strip().lower())
    methods = swappable_modes()
    own: tuple[tuple[str, Any], ...] = ()
    if not plain or key not in methods:
        try:  # a window mode with arguments, or one that needs a value: 'quantile' -> give q below
            key, own = method_spec(method)
        except UsageError:
            if not plain:
                raise
            raise UsageError(f"unknown pooling method {method!r}; known: {', '.join(methods)}") from None
    spec = registry()[key]
    stages = []
    for stage in stack.stages:
        op = stage.ops[0]
        if stage.kind != "pool":
            stages.append(stage)
            continue
        params = {k: v for k, v in op.params if spec.param(k) is not None and spec.param(k).name == k}
        params["size"] = op.get("size")
        if "stride" not in params:
            params["stride"] = op.get("stride") if op.get("stride") is not None else op.get("size")
        if spec.param("p") is not None and spec.param("p").required:
            params["p"] = p
        params.update(own)
        missing = [q.name for q in spec.params if q.required and q.name not in params]
        if missing:
            raise UsageError(f"{method}: give {', '.join(missing)} in the method, e.g. {key}({missing[0]}=...)")
        kept = tuple((q.name, params[q.name]) for q in spec.params if q.name in params and params[q.name] != q.default)
        if params["stride"] == params["size"]:
            kept = tuple((k, v) for k, v in kept if k != "stride")
        stages.append(Stage((Op(key, kept),)))
    return Stack(tuple(stages))
