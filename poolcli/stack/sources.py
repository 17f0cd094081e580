"""Where stacks come from: a string, a preset, a TOML config, or command-line options.

Each source builds the :class:`~poolcli.stack.Stack` through the same
constructor (:func:`poolcli.stack.make_op`), so every value is validated
exactly as the parser validates it, whatever the source; the options are
never re-encoded as text. Sources are also where files are read: a kernel
or weights file named by a stage is loaded here into a
:class:`~poolcli.stack.FileArg` (path, array, SHA-256), so a stack that a
source returns is complete, and the model and the parser do no I/O.

Errors: :class:`~poolcli.errors.StackSpecError` (with a caret) for strings,
:class:`~poolcli.errors.UsageError` naming the option or the config file for
the others; both exit with code 2.

Imports: :mod:`poolcli.stack.model`, :mod:`poolcli.ops`, :mod:`poolcli.errors`;
the numeric loaders (:func:`poolcli.filters.load_kernel`,
:func:`poolcli.pooling.load_weights`) when a file is named.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Any, Mapping

from ..errors import StackSpecError, UsageError
from ..ops import PARAMS, BadValue, closest, excerpt, format_value, pool_mode_names, registry
from .model import PRESETS, ArgError, FileArg, Op, Stack, Stage, make_op, parse

__all__ = [
    "from_string",
    "from_preset",
    "from_config",
    "from_options",
    "parse_stack",
    "one_stage_stack",
    "load_file_arg",
    "names_file",
    "resolve",
    "POOL_CHOICES",
]

#: ``--pool``'s choices: every pooling mode, and ``none`` for no pooling stage.
POOL_CHOICES = pool_mode_names() + ("none",)


# ----------------------------------------------------------------------------- files


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: The largest file a stack reads: a config, a kernel, weights. A config is a few hundred bytes; a
#: 1025 x 1025 float64 kernel (the named filters' largest) is 8 MiB.
MAX_CONFIG_BYTES = 1 << 20
MAX_ARRAY_BYTES = 64 << 20
#: The largest custom kernel, per side: the named filters' cap (box and gaussian stop at 1025 taps).
MAX_KERNEL_SIDE = 1025


def check_regular_file(path: str, what: str, limit: int) -> None:
    """Refuse what is not a regular file (a FIFO would block forever, a device never ends) or is too big.

    Raises ValueError (one line naming ``what`` and the path); FileNotFoundError when it does not exist.
    """
    st = os.stat(path)  # FileNotFoundError / PermissionError go to the caller
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {excerpt(path)} is not a regular file")
    if st.st_size > limit:
        raise ValueError(f"{what} {excerpt(path)} is {st.st_size:,} bytes: at most {limit:,}")


def _loaded(key: str, path: str) -> Any:
    if key == "weights":
        from ..pooling import load_weights as load
    else:
        from ..filters import load_kernel as load
    check_regular_file(path, f"{key} file", MAX_ARRAY_BYTES)
    if key == "weights":
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":  # numpy would call any other file "pickled data"
                raise ValueError(f"weights file {excerpt(path)} is not a .npy file (save the weights with numpy.save)")
    array = load(path)
    if key == "kernel" and max(array.shape) > MAX_KERNEL_SIDE:
        raise ValueError(_too_large(path, array.shape))
    return array


def _too_large(what: str, shape: tuple) -> str:
    return (f"kernel {excerpt(what, 40)} is {'x'.join(map(str, shape))} taps: at most {MAX_KERNEL_SIDE} per side, "
            "like the named filters")


def load_file_arg(op: Op, key: str, value: Any) -> FileArg:
    """The file that parameter ``key`` of ``op`` names, loaded (a FileArg that is loaded is returned as is).

    Raises ValueError with a one-line reason (not found, not a regular file, too large, bad content).
    """
    if isinstance(value, FileArg) and value.array is not None:
        return value
    path = str(value)
    try:
        array = _loaded(key, path)
        digest = _digest(path)
    except FileNotFoundError:
        raise ValueError(f"{key} file {excerpt(path)} not found") from None
    except PermissionError:
        raise ValueError(f"{key} file {excerpt(path)}: permission denied") from None
    except MemoryError:
        raise ValueError(f"{key} file {excerpt(path)}: too large to load") from None
    except ValueError as exc:
        raise ValueError(str(exc).splitlines()[0][:300]) from None
    except Exception as exc:  # a damaged file: EOFError, pickle and zip errors, ...
        raise ValueError(f"{key} file {excerpt(path)} cannot be read ({type(exc).__name__}: {str(exc)[:120]})") from None
    return FileArg(path, array, digest)


def names_file(op: Op, key: str, value: Any) -> bool:
    """Whether parameter ``key`` of ``op`` names a file: learned weights, or a conv kernel that is a path.

    A kernel is a path when it ends in .npy, .txt or .csv or names an
    existing file; otherwise it is inline numbers (``"1,0,-1;2,0,-2"``).
    """
    if isinstance(value, FileArg):
        return True
    if key == "weights":
        return op.kind == "learned"
    return op.name == "conv" and key == "kernel" and (
        bool(re.search(r"\.(npy|txt|csv)$", str(value).strip(), re.IGNORECASE)) or os.path.isfile(str(value))
    )


def resolve(op: Op) -> Op:
    """``op`` with every file it names loaded, and its inline kernel checked."""
    changed = False
    params = []
    for key, value in op.params:
        if op.name == "conv" and key == "kernel" and not names_file(op, key, value):
            from ..filters import parse_kernel

            try:
                k = parse_kernel(str(value))
            except (ValueError, MemoryError, OverflowError) as exc:
                raise ArgError(f"conv: {str(exc).splitlines()[0][:300]}") from None
            if max(k.shape) > MAX_KERNEL_SIDE:
                raise ArgError(f"conv: {_too_large(str(value), k.shape)}")
        elif names_file(op, key, value):
            try:
                value = load_file_arg(op, key, value)
            except (ValueError, MemoryError) as exc:
                raise ArgError(f"{op.name}: {exc}") from None
            changed = True
        params.append((key, value))
    return Op(op.name, tuple(params)) if changed else op


# ----------------------------------------------------------------------------- sources


def from_string(spec: str) -> Stack:
    """A stack string, parsed and with its files loaded (:func:`poolcli.stack.parse_stack`)."""
    return parse(spec, resolve=resolve)


def parse_stack(spec: str) -> Stack:
    """Parse a stack string and load the files it names (the public string source).

    >>> s = parse_stack("sobel | relu | max(2)")
    >>> str(s)
    'sobel | relu | max(size=2, stride=2)'
    >>> parse_stack(str(s)) == s
    True
    >>> str(parse_stack("avg(3, 2, 1, ceil)"))
    'avg(size=3, stride=2, padding=1, ceil_mode=true)'
    """
    return from_string(spec)



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
        args = ", ".join(f"{k}={format_value(v)}" for k, v in pool_params.items() if v is not None)
        parts.append(f"{pool}({args})" if args else pool)
    return parse_stack(" | ".join(parts)) if parts else Stack(())


def from_preset(name: str) -> Stack:
    """The named preset (``poolcli presets``)."""
    key = str(name).strip().lower()
    if key not in PRESETS:
        near = closest(key, list(PRESETS))
        hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
        raise UsageError(f"unknown preset {name!r}{hint} (known: {', '.join(PRESETS)})")
    return from_string(PRESETS[key][1])


def _toml_value(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _config_stage(where: str, i: int, table: Any) -> Stage:
    if not isinstance(table, dict) or "op" not in table:
        raise UsageError(f"{where}: stage {i} needs an 'op' key")
    names = table["op"] if isinstance(table["op"], list) else [table["op"]]
    args = {k: _toml_value(v) for k, v in table.items() if k != "op"}
    ops = []
    for name in names:
        try:
            ops.append(resolve(make_op(str(name), dict(args))))
        except ArgError as exc:
            raise UsageError(f"{where}: stage {i}: {exc}") from None
    if len(ops) > 1 and any(op.kind != "filter" for op in ops):
        raise UsageError(f"{where}: stage {i}: only filters can form a bank (a list of ops)")
    return Stage(tuple(ops))


#: The most parts a dotted TOML key may have (tomllib takes minutes on 100,000; a real config has 2 or 3).
MAX_KEY_PARTS = 64


def _check_keys(text: str) -> None:
    """Refuse, before tomllib sees it, a key of more than :data:`MAX_KEY_PARTS` dotted parts (ValueError)."""
    for line in text.splitlines():
        key = line.split("=", 1)[0] if not line.lstrip().startswith("[") else line
        if key.count(".") >= MAX_KEY_PARTS:
            raise ValueError(f"a key of {key.count('.') + 1:,} dotted parts: at most {MAX_KEY_PARTS}")


def from_config(path: Path) -> Stack:
    """A TOML file: ``stack = "..."``, ``preset = "..."`` or ``[[stage]]`` tables (``op`` and its arguments)."""
    import tomllib

    where = f"--config: {excerpt(str(path))[1:-1]}"
    try:
        check_regular_file(str(path), "the file", MAX_CONFIG_BYTES)
        text = Path(path).read_text(encoding="utf-8")
        _check_keys(text)
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise UsageError(f"{where}: file not found") from None
    except ValueError as exc:  # not a regular file, too large
        raise UsageError(f"{where}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read ({str(exc)[:200]})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML ({str(exc)[:200]})") from None
    except RecursionError:
        raise UsageError(f"{where}: not valid TOML (nested too deeply)") from None
    if "stack" in data:
        if not isinstance(data["stack"], str):
            raise UsageError(f"{where}: 'stack' must be a string")
        return from_string(data["stack"])
    if "preset" in data:
        if str(data["preset"]) not in PRESETS:
            raise UsageError(f"{where}: unknown preset {data['preset']!r}; known: {', '.join(PRESETS)}")
        return from_preset(str(data["preset"]))
    stages = data.get("stage") or data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise UsageError(f"{where}: expected 'stack = \"...\"', 'preset = \"...\"' or [[stage]] tables")
    built = [_config_stage(where, i, t) for i, t in enumerate(stages, start=1)]
    return Stack(tuple(s for s in built if not (len(s.ops) == 1 and s.ops[0].name == "identity")))


# ----------------------------------------------------------------------------- options


def _filter_op(text: str, filter_args: Mapping[str, Any]) -> Op | None:
    """``--filter`` text (``gaussian:sigma=2``, ``gaussian(sigma=2)`` or a name) -> an op, None for ``none``."""
    t = text.strip()
    if ":" in t and "(" not in t:
        name, _, rest = t.partition(":")
    elif t.endswith(")") and "(" in t:
        name, _, rest = t[:-1].partition("(")
    else:
        name, rest = t, ""
    args: list[tuple[str | None, Any]] = []
    for item in (a.strip() for a in rest.split(",") if a.strip()):
        key, eq, value = item.partition("=")
        args.append((key.strip(), value.strip()) if eq else (None, item))
    if name.strip().lower() in ("none", "identity") and not args and not filter_args.keys() & {"stride", "dilation"}:
        return None  # with --conv-stride, 'none' is the identity kernel, strided (a plain subsampling)
    try:
        op = make_op(name, args + [(k, v) for k, v in filter_args.items()])
    except ArgError as exc:
        raise UsageError(f"--filter: invalid value {excerpt(text)}: {exc}") from None
    if op.kind != "filter":
        raise UsageError(f"--filter: {text!r} is not a filter (see 'poolcli filters')")
    return op


def _filter_stage(filters, kernel, boundary: str, conv_stride: str, conv_dilation: str) -> list[Stage]:
    """The filter bank of the options: ``--filter`` items (default sobel) and ``--kernel``."""
    filter_args = {k: v for k, v, default in (("mode", boundary, "reflect"), ("stride", conv_stride, "1"),
                                              ("dilation", conv_dilation, "1")) if str(v) != default}
    for option, key in (("--conv-stride", "stride"), ("--conv-dilation", "dilation")):
        if key in filter_args:  # named as the option given, not as the default filter the user never typed
            try:
                make_op("identity", [(key, filter_args[key])])
            except ArgError as exc:
                reason = str(exc).partition("': ")[2] or str(exc)
                raise UsageError(f"{option}: invalid value {excerpt(str(filter_args[key]))}: {reason}") from None
    ops = [_filter_op(f, filter_args) for f in (filters or ([] if kernel else ["sobel"]))]
    if kernel is not None:
        try:
            ops.append(resolve(make_op("conv", [("kernel", kernel)] + list(filter_args.items()))))
        except ArgError as exc:
            raise UsageError(f"--kernel: invalid value {excerpt(kernel)}: {str(exc).removeprefix('conv: ')}") from None
    ops = [op for op in ops if op is not None] if len(ops) == 1 else [op or make_op("identity") for op in ops]
    return [Stage(tuple(ops))] if ops else []


def _check_mode_options(mode: str, given: dict[str, Any]) -> None:
    """Options the mode does not take, and required ones it lacks: one line each, naming the option."""
    spec = registry()[mode]
    for name in given:
        p = spec.param(name)
        if p is None or p.name != name:
            option = PARAMS[name].option
            if name == "p":
                raise UsageError(f"--p: only {_and(_takers('p'))} pooling take a norm, got --pool {mode}")
            if name == "blur_size":
                raise UsageError(f"--blur-size: only {_and(_takers('blur_size'))} take a blur, got --pool {mode}")
            raise UsageError(f"{option}: does not apply to --pool {mode} (only to: {', '.join(_takers(name)) or 'none'})")
    for p in spec.params:
        if p.needs and p.name not in given and (p.required or p.default is None):
            raise UsageError(f"{p.option}: {mode} pooling needs {p.needs}, e.g. {p.option} {p.example}")


def _and(words: list[str]) -> str:
    return " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " and " + words[-1]


def _takers(name: str) -> list[str]:
    return [m for m in pool_mode_names() if (q := registry()[m].param(name)) is not None and q.name == name]


def _pool_op(mode: str, given: dict[str, Any]) -> Op:
    """The pooling op of ``--pool mode`` and its options; a bad value names its option."""
    spec = registry()[mode]
    args: dict[str, Any] = {}
    if spec.param("size") is not None and ("size" in given or spec.param("size").required):
        args["size"] = given.get("size", "2")
    for name, raw in given.items():
        if name != "size":
            args[name] = raw.replace(",", "x") if name == "padding" else raw

    def bad(name: str, why: str) -> UsageError:
        return UsageError(f"{PARAMS[name].option}: invalid value {str(given.get(name, args[name]))!r}: {why}")

    for name, raw in args.items():  # each value on its own first
        try:
            PARAMS[name].convert(raw)
        except BadValue as exc:
            raise bad(name, str(exc)) from None
    try:
        return resolve(make_op(mode, args))
    except ArgError as exc:
        if exc.index is not None:
            raise bad(list(args)[exc.index], str(exc).split(": ", 1)[-1]) from None
        raise UsageError(f"invalid options: {exc}") from None


def from_options(
    *,
    stack: str | None = None,
    preset: str | None = None,
    config: Path | None = None,
    filters: list[str] | None = None,
    kernel: str | None = None,
    boundary: str = "reflect",
    conv_stride: str = "1",
    conv_dilation: str = "1",
    activation: str = "none",
    pool: str | None = None,
    **pool_options: Any,
) -> Stack:
    """One Stack from the command line: ``--stack``, ``--preset``, ``--config``, or the single-stage options.

    ``pool_options`` are the pooling parameters by their registry names
    (``size``, ``stride``, ``padding``, ``ceil_mode``, ``count_include_pad``,
    ``p``, ``q``, ...); None (and a boolean at its default) means not given.
    Raises :class:`~poolcli.errors.UsageError` (one line, exit code 2) for
    any bad value, an option the chosen ``--pool`` mode does not take, or a
    missing required one.
    """
    given = {k: v for k, v in pool_options.items() if v is not None and not (
        isinstance(v, bool) and PARAMS[k].default is not None and v == PARAMS[k].default
        and k in ("ceil_mode", "count_include_pad"))}
    sources = [n for n, v in (("--stack", stack), ("--preset", preset), ("--config", config)) if v is not None]
    if len(sources) > 1:
        raise UsageError(f"{' and '.join(sources)} cannot be combined: give one of them")
    if sources:
        clash = [o for o, v in (("--filter", filters), ("--kernel", kernel), ("--pool", pool)) if v is not None]
        clash += [PARAMS[k].option for k in given]
        if clash:
            raise UsageError(f"{sources[0]} cannot be combined with {', '.join(clash)}: put those in the stack instead")
        if stack is not None:
            return from_string(stack)
        return from_preset(preset) if preset is not None else from_config(config)  # type: ignore[arg-type]
    mode = str(pool or "max").strip().lower()
    if mode not in POOL_CHOICES:
        near = closest(mode, list(POOL_CHOICES))
        hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
        raise UsageError(f"--pool: invalid value {pool!r}{hint}; known: {', '.join(POOL_CHOICES)}")
    stages = _filter_stage(filters, kernel, boundary, conv_stride, conv_dilation)
    if activation != "none":
        stages.append(Stage((make_op(activation),)))
    if mode == "none":
        if given:
            raise UsageError(f"{PARAMS[next(iter(given))].option}: does not apply to --pool none (no pooling stage)")
    else:
        _check_mode_options(mode, given)
        stages.append(Stage((_pool_op(mode, given),)))
    if not stages:
        raise UsageError("the stack is empty: give --pool, --filter, --stack, --preset or --config")
    return Stack(tuple(stages))
