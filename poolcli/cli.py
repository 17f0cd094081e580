"""The Typer face of poolcli: options, help, printing. No numeric logic lives here.

Errors are translated once: a :class:`~poolcli.errors.PoolcliError` (or a bad
option value) becomes one line on stderr and a named exit code; a traceback
appears only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import ExitStatus, InputError, PoolcliError, UsageError

app = typer.Typer(
    name="poolcli",
    help=(
        "See, on real images, what the pooling layers of a CNN do: PyTorch-exact max/avg/lp pooling, "
        "edge filters feeding them, shape reports and stacked hierarchies."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

out_console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

STACK_PANEL = "Stack (filters -> activation -> pooling)"
POOL_PANEL = "Pooling (torch.nn.functional semantics)"
FILTER_PANEL = "Filters (cross-correlation, no kernel flip)"
OUTPUT_PANEL = "Output"


class PoolMode(str, Enum):
    max = "max"
    avg = "avg"
    min = "min"
    lp = "lp"
    none = "none"


class Boundary(str, Enum):
    reflect = "reflect"
    mirror = "mirror"
    nearest = "nearest"
    constant = "constant"
    wrap = "wrap"


class Activation(str, Enum):
    none = "none"
    relu = "relu"
    abs = "abs"


class Color(str, Enum):
    gray = "gray"
    keep = "keep"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"poolcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """See, on real images, what the pooling layers of a CNN do."""


def _fail(message: str, code: int) -> None:
    err_console.print(f"[bold red]poolcli:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


@contextlib.contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """Translate domain errors into one line and an exit code; ``--debug`` re-raises."""
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        if debug:
            raise
        err_console.print("poolcli: interrupted", highlight=False)
        raise typer.Exit(ExitStatus.CTRL_C) from None
    except PoolcliError as exc:
        if debug:
            raise
        _fail(_escape(str(exc)), exc.exit_code)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        if debug:
            raise
        _fail(_escape(f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)"), ExitStatus.ERROR)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# ----------------------------------------------------------------------------- stack options


def _opt_value(option: str, raw: str, convert) -> Any:
    from .stack import _Bad

    try:
        return convert(raw)
    except _Bad as exc:
        raise UsageError(f"{option}: invalid value {raw!r}: {exc}") from None


def _filter_item(text: str, boundary: str, conv_stride: str, conv_dilation: str) -> str:
    """``gaussian:sigma=2`` or ``gaussian(sigma=2)`` -> a stack-language filter item."""
    t = text.strip()
    if ":" in t and "(" not in t:
        name, _, rest = t.partition(":")
        args = [a.strip() for a in rest.split(",") if a.strip()]
    elif t.endswith(")") and "(" in t:
        name, _, rest = t[:-1].partition("(")
        args = [a.strip() for a in rest.split(",") if a.strip()]
    else:
        name, args = t, []
    if name.strip().lower() in ("none", "identity") and not args:
        return "none"
    extra = []
    if boundary != "reflect":
        extra.append(f"mode={boundary}")
    if conv_stride != "1":
        extra.append(f"stride={conv_stride}")
    if conv_dilation != "1":
        extra.append(f"dilation={conv_dilation}")
    all_args = args + extra
    return f"{name.strip()}({', '.join(all_args)})" if all_args else name.strip()


def _config_stack(path: Path) -> str:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--config: {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config: {path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config: {path}: not valid TOML ({exc})") from None
    from .stack import PRESETS, _fmt_value

    if "stack" in data:
        if not isinstance(data["stack"], str):
            raise UsageError(f"--config: {path}: 'stack' must be a string")
        return data["stack"]
    if "preset" in data:
        if str(data["preset"]) not in PRESETS:
            raise UsageError(f"--config: {path}: unknown preset {data['preset']!r}; known: {', '.join(PRESETS)}")
        return PRESETS[str(data["preset"])][1]
    stages = data.get("stage") or data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise UsageError(f"--config: {path}: expected 'stack = \"...\"', 'preset = \"...\"' or [[stage]] tables")
    parts = []
    for i, st in enumerate(stages, start=1):
        if not isinstance(st, dict) or "op" not in st:
            raise UsageError(f"--config: {path}: stage {i} needs an 'op' key")
        ops = st["op"] if isinstance(st["op"], list) else [st["op"]]
        args = ", ".join(
            f"{k}={_fmt_value(tuple(v) if isinstance(v, list) else v)}" for k, v in st.items() if k != "op"
        )
        parts.append(" + ".join(f"{o}({args})" if args else str(o) for o in ops))
    return " | ".join(parts)


def build_stack(
    *,
    stack: Optional[str],
    preset: Optional[str],
    config: Optional[Path],
    filters: Optional[list[str]],
    kernel: Optional[str],
    boundary: str,
    conv_stride: str,
    conv_dilation: str,
    activation: str,
    pool: Optional[str],
    size: Optional[str],
    stride: Optional[str],
    padding: Optional[str],
    dilation: Optional[str],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
    p: Optional[float],
):
    """One Stack from the command line: --stack, --preset, --config, or the single-stage options."""
    from .stack import (
        _bool_value,
        _divisor_value,
        _fmt_value,
        _padding_value,
        _pos_pair,
        _positive_float,
        parse_stack,
        preset as get_preset,
    )

    sources = [n for n, v in (("--stack", stack), ("--preset", preset), ("--config", config)) if v is not None]
    if len(sources) > 1:
        raise UsageError(f"{' and '.join(sources)} cannot be combined: give one of them")
    single = {
        "--filter": filters,
        "--kernel": kernel,
        "--pool": pool,
        "--size": size,
        "--stride": stride,
        "--padding": padding,
        "--dilation": dilation,
        "--divisor-override": divisor_override,
        "--p": p,
    }
    if sources:
        clash = [k for k, v in single.items() if v is not None]
        if ceil_mode:
            clash.append("--ceil-mode")
        if clash:
            raise UsageError(f"{sources[0]} cannot be combined with {', '.join(clash)}: put those in the stack instead")
        if stack is not None:
            return parse_stack(stack)
        if preset is not None:
            return get_preset(preset)
        return parse_stack(_config_stack(config))  # type: ignore[arg-type]

    items = [_filter_item(f, boundary, conv_stride, conv_dilation) for f in (filters or ["sobel"])]
    if kernel is not None:
        items = [i for i in items if i != "none"] if filters is None else items
        if filters is None:
            items = []
        items.append(_filter_item(f"conv(kernel={_fmt_value(kernel)})", boundary, conv_stride, conv_dilation))
    items = [i for i in items if i != "none"]
    parts = [" + ".join(items)] if items else []
    if activation != "none":
        parts.append(activation)
    mode = pool or "max"
    if mode != "none":
        kw: dict[str, Any] = {"size": _opt_value("--size", size or "2", _pos_pair)}
        if stride is not None:
            kw["stride"] = _opt_value("--stride", stride, _pos_pair)
        if padding is not None:
            kw["padding"] = _opt_value("--padding", padding.replace(",", "x"), _padding_value)
        if dilation is not None:
            kw["dilation"] = _opt_value("--dilation", dilation, _pos_pair)
        if ceil_mode:
            kw["ceil_mode"] = True
        if not count_include_pad:
            kw["count_include_pad"] = False
        if divisor_override is not None:
            kw["divisor_override"] = _opt_value("--divisor-override", str(divisor_override), _divisor_value)
        if mode == "lp":
            if p is None:
                raise UsageError("--p: lp pooling needs a norm, e.g. --p 2")
            kw["p"] = _opt_value("--p", str(p), _positive_float)
        elif p is not None:
            raise UsageError(f"--p: only lp pooling takes a norm, got --pool {mode}")
        parts.append(f"{mode}({', '.join(f'{k}={_fmt_value(v)}' for k, v in kw.items())})")
    del _bool_value
    if not parts:
        raise UsageError("the stack is empty: give --pool, --filter, --stack, --preset or --config")
    return parse_stack(" | ".join(parts))


# ----------------------------------------------------------------------------- commands

PathsArg = Annotated[
    list[Path],
    typer.Argument(help="Image files (PNG, JPEG, TIFF, BMP, GIF, WebP, ...) or folders of them.", show_default=False),
]


@app.command()
def run(
    paths: PathsArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.", rich_help_panel=OUTPUT_PANEL)] = Path(
        "poolcli-out"
    ),
    filter_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--filter",
            "-f",
            help="Filter before pooling; repeat for several channels (a filter bank). "
            "E.g. sobel, sobel-x, gaussian:sigma=2, none. Default: sobel. See 'poolcli filters'.",
            rich_help_panel=FILTER_PANEL,
            show_default=False,
        ),
    ] = None,
    kernel: Annotated[
        Optional[str],
        typer.Option(
            help="Custom kernel, inline ('1,0,-1;2,0,-2;1,0,-1': rows by ';') or a .npy/.txt file. "
            "Applied as cross-correlation (CNN semantics: no flip).",
            rich_help_panel=FILTER_PANEL,
            show_default=False,
        ),
    ] = None,
    boundary: Annotated[
        Boundary,
        typer.Option(
            help="Filter boundary mode (scipy.ndimage names; PyTorch's 'reflect' padding is 'mirror', "
            "'replicate' is 'nearest', 'circular' is 'wrap', zeros is 'constant').",
            rich_help_panel=FILTER_PANEL,
        ),
    ] = Boundary.reflect,
    conv_stride: Annotated[
        str, typer.Option(help="Filter stride: a strided convolution, the alternative to pooling.", rich_help_panel=FILTER_PANEL)
    ] = "1",
    conv_dilation: Annotated[str, typer.Option(help="Filter dilation (atrous).", rich_help_panel=FILTER_PANEL)] = "1",
    activation: Annotated[
        Activation, typer.Option(help="Activation after filtering.", rich_help_panel=FILTER_PANEL)
    ] = Activation.none,
    pool: Annotated[
        Optional[PoolMode],
        typer.Option(help="Pooling mode [default: max].", rich_help_panel=POOL_PANEL, show_default=False),
    ] = None,
    size: Annotated[
        Optional[str], typer.Option(help="Window size: 2 or 2x3 (H x W) [default: 2].", rich_help_panel=POOL_PANEL, show_default=False)
    ] = None,
    stride: Annotated[
        Optional[str], typer.Option(help="Stride [default: the size].", rich_help_panel=POOL_PANEL, show_default=False)
    ] = None,
    padding: Annotated[
        Optional[str],
        typer.Option(
            help="Padding: 1, 1x2, top,bottom,left,right, 'same' (TensorFlow) or 'valid' [default: 0].",
            rich_help_panel=POOL_PANEL,
            show_default=False,
        ),
    ] = None,
    dilation: Annotated[
        Optional[str], typer.Option(help="Dilation [default: 1].", rich_help_panel=POOL_PANEL, show_default=False)
    ] = None,
    ceil_mode: Annotated[bool, typer.Option("--ceil-mode", help="Round the output size up.", rich_help_panel=POOL_PANEL)] = False,
    count_include_pad: Annotated[
        bool, typer.Option(help="avg: count padded zeros in the divisor.", rich_help_panel=POOL_PANEL)
    ] = True,
    divisor_override: Annotated[
        Optional[int], typer.Option(help="avg: divide by this instead.", rich_help_panel=POOL_PANEL, show_default=False)
    ] = None,
    p: Annotated[
        Optional[float], typer.Option("--p", "--norm", help="lp: the norm p.", rich_help_panel=POOL_PANEL, show_default=False)
    ] = None,
    stack: Annotated[
        Optional[str],
        typer.Option(
            help="A whole stack, e.g. \"sobel | relu | max(2) | avg(3, stride=2, padding=1)\".",
            rich_help_panel=STACK_PANEL,
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        Optional[str], typer.Option(help="A named stack: see 'poolcli presets'.", rich_help_panel=STACK_PANEL, show_default=False)
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option(help="A TOML file with stack = \"...\" or [[stage]] tables.", rich_help_panel=STACK_PANEL, show_default=False),
    ] = None,
    color: Annotated[
        Color, typer.Option(help="gray: ITU-R 601 luminance; keep: every channel its own map.", rich_help_panel=STACK_PANEL)
    ] = Color.gray,
    dense_units: Annotated[
        int, typer.Option(min=1, help="Units of the dense layer whose parameters the report counts.", rich_help_panel=OUTPUT_PANEL)
    ] = 128,
    json_out: Annotated[bool, typer.Option("--json", help="Print report.json to stdout instead of tables.", rich_help_panel=OUTPUT_PANEL)] = False,
    png: Annotated[bool, typer.Option(help="Write a PNG per map channel.", rich_help_panel=OUTPUT_PANEL)] = True,
    montage: Annotated[bool, typer.Option(help="Write a montage PNG per input.", rich_help_panel=OUTPUT_PANEL)] = True,
    recursive: Annotated[bool, typer.Option(help="Look into sub-folders of folder inputs.", rich_help_panel=OUTPUT_PANEL)] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No tables; errors only.", rich_help_panel=OUTPUT_PANEL)] = False,
    debug: Annotated[bool, typer.Option(help="Show tracebacks.", rich_help_panel=OUTPUT_PANEL)] = False,
) -> None:
    """Filter and pool images; write every stage's maps (.npy, PNG), a montage, report.json and shapes.csv.

    Example: poolcli run photo.png --pool max --size 2 --stride 2
    """
    with _errors(debug):
        st = build_stack(
            stack=stack,
            preset=preset,
            config=config,
            filters=filter_,
            kernel=kernel,
            boundary=boundary.value,
            conv_stride=conv_stride,
            conv_dilation=conv_dilation,
            activation=activation.value,
            pool=pool.value if pool is not None else None,
            size=size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
            divisor_override=divisor_override,
            p=p,
        )
        code = _run(paths, st, out, color.value, dense_units, json_out, png, montage, recursive, quiet, debug)
    raise typer.Exit(code)


def _run(paths, st, out, color, dense_units, json_out, png, montage, recursive, quiet, debug) -> int:
    from .batch import RunOptions, discover, run_one
    from .outputs import check_writable, save_csv, save_json
    from .report import SHAPES_CSV_HEADER, shape_table, shapes_csv_rows

    out_dir = check_writable(out)
    items = discover(list(paths), recursive=recursive)
    if not items:
        raise UsageError("no images found in " + ", ".join(str(p) for p in paths))
    opts = RunOptions(stack=st, out_dir=out_dir, color=color, dense_units=dense_units, png=png, montage=montage)
    records, failures = [], []
    t0 = time.perf_counter()
    shown_shapes: set[tuple] = set()
    for item in items:
        try:
            rec = run_one(item, opts)
        except InputError as exc:
            if debug:
                raise
            failures.append({"path": str(item.path), "error": exc.reason})
            err_console.print(f"[bold red]poolcli:[/] {_escape(str(exc))}", highlight=False)
            continue
        records.append(rec)
        if not (json_out or quiet):
            key = tuple(rec["input_shape"])
            if key not in shown_shapes:  # one shape report per distinct input size
                shown_shapes.add(key)
                out_console.print(shape_table(rec, dense_units))
    report = {
        "poolcli_version": __version__,
        "stack": str(st),
        "color": color,
        "dense_units": dense_units,
        "out_dir": str(out_dir),
        "inputs": records,
        "failures": failures,
        "summary": {
            "found": len(items),
            "processed": len(records),
            "failed": len(failures),
            "seconds": round(time.perf_counter() - t0, 3),
        },
    }
    save_json(out_dir / "report.json", report)
    save_csv(out_dir / "shapes.csv", SHAPES_CSV_HEADER, shapes_csv_rows(records))
    if json_out:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    elif not quiet:
        out_console.print(f"stack: [bold]{_escape(str(st))}[/]")
        out_console.print(
            f"{len(records)} of {len(items)} image(s) processed, {len(failures)} failed; "
            f"outputs in {_escape(str(out_dir))}/ (report.json, shapes.csv)",
            highlight=False,
        )
    return ExitStatus.ERROR if failures else ExitStatus.SUCCESS


@app.command("filters")
def filters_cmd() -> None:
    """List the named filters and print their kernels (applied as cross-correlation, no flip)."""
    import numpy as np
    from rich.table import Table

    from .filters import list_filters

    t = Table(title="Filters (--filter NAME, or in a stack)", show_lines=True)
    t.add_column("name")
    t.add_column("what it does")
    t.add_column("kernel(s)", no_wrap=True)
    for f in list_filters():
        with np.printoptions(precision=4, suppress=True, linewidth=200):
            ks = "\n\n".join(str(np.asarray(k)) for k in f.kernels)
        if f.combine == "magnitude":
            ks = "sqrt(a^2 + b^2) of\n" + ks
        t.add_row(f.label, f.description, ks)
    out_console.print(t)


@app.command("presets")
def presets_cmd() -> None:
    """List the preset stacks with their stack strings."""
    from rich.table import Table

    from .stack import PRESETS

    t = Table(title="Presets (--preset NAME)", show_lines=True)
    t.add_column("name")
    t.add_column("what it shows")
    t.add_column("stack", overflow="fold")
    for name, (desc, spec) in PRESETS.items():
        t.add_row(name, desc, spec)
    out_console.print(t)


def _click_exception() -> type[Exception]:
    """Click's ``ClickException``, wherever this Typer keeps it (it vendors Click since 0.22)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: Click's usage errors become one line and exit code 2."""
    click_exception = _click_exception()
    try:
        rv = app(args=argv, prog_name="poolcli", standalone_mode=False)
    except KeyboardInterrupt:
        err_console.print("poolcli: interrupted", highlight=False)
        sys.exit(ExitStatus.CTRL_C)
    except click_exception as exc:
        msg = exc.format_message().replace("\n", " ")  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        err_console.print(f"poolcli: error: {msg}{hint}", highlight=False, markup=False)
        sys.exit(getattr(exc, "exit_code", ExitStatus.USAGE))
    except Exception as exc:
        if type(exc).__name__ == "Abort":  # Click's Ctrl-C / EOF at a prompt
            err_console.print("poolcli: interrupted", highlight=False)
            sys.exit(ExitStatus.CTRL_C)
        raise
    sys.exit(rv if isinstance(rv, int) else 0)
