"""The Typer face of poolcli: options, help, printing. No numeric logic lives here.

Errors are translated once: a :class:`~poolcli.errors.PoolcliError` (or a bad
option value) becomes one line on stderr and a named exit code; a traceback
appears only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Iterator, NamedTuple, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import ExitStatus, PoolcliError, UsageError

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
    blurpool = "blurpool"
    blur = "blur"
    aps = "aps"
    median = "median"
    quantile = "quantile"
    mixed = "mixed"
    softpool = "softpool"
    stochastic = "stochastic"
    gem = "gem"
    fractional = "fractional"
    learned = "learned"
    none = "none"


class NanPolicy(str, Enum):
    error = "error"
    propagate = "propagate"
    zero = "zero"


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
        return "identity"
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


# The single-stage options and the stack-language parameter each one sets.
_OPTION_PARAMS = {
    "--size": "size",
    "--stride": "stride",
    "--padding": "padding",
    "--dilation": "dilation",
    "--ceil-mode": "ceil_mode",
    "--no-count-include-pad": "count_include_pad",
    "--divisor-override": "divisor_override",
    "--p": "p",
    "--blur-size": "blur_size",
    "--q": "q",
    "--alpha": "alpha",
    "--train/--no-train": "train",
    "--seed": "seed",
    "--ratio": "ratio",
    "--weights": "weights",
}
# Options a mode cannot do without: (option, message).
_REQUIRED = {
    "lp": ("--p", "lp pooling needs a norm, e.g. --p 2"),
    "quantile": ("--q", "quantile pooling needs the quantile in [0, 1], e.g. --q 0.25"),
    "fractional": ("--ratio", "fractional pooling needs an output ratio in (0, 1], e.g. --ratio 0.7"),
    "learned": ("--weights", "learned pooling needs a weights file (.npy, shape (k, k) or (C, k, k)), e.g. --weights w.npy"),
}


def _modes_taking(param: str) -> list[str]:
    from .stack import op_specs

    specs = op_specs()
    return [m.value for m in PoolMode if m.value in specs and any(q.name == param for q in specs[m.value].params)]


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
    p: Any = None,
    blur_size: Any = None,
    q: Any = None,
    alpha: Any = None,
    train: Optional[bool] = None,
    seed: Any = None,
    ratio: Any = None,
    weights: Optional[str] = None,
):
    """One Stack from the command line: --stack, --preset, --config, or the single-stage options.

    Raises :class:`~poolcli.errors.UsageError` (one line, exit code 2) for any
    bad value, an option the chosen ``--pool`` mode does not take, or a
    missing required one (``--p`` for lp, ``--q`` for quantile, ``--ratio``
    for fractional, ``--weights`` for learned).
    """
    from .errors import StackSpecError
    from .stack import (
        _blur_size,
        _bool_value,
        _divisor_value,
        _fmt_value,
        _padding_value,
        _pos_pair,
        _positive_float,
        _ratio,
        _seed,
        _string,
        _unit_float,
        check_padding,
        op_specs,
        parse_stack,
        preset as get_preset,
    )

    sources = [n for n, v in (("--stack", stack), ("--preset", preset), ("--config", config)) if v is not None]
    if len(sources) > 1:
        raise UsageError(f"{' and '.join(sources)} cannot be combined: give one of them")
    given = {
        "--size": size,
        "--stride": stride,
        "--padding": padding,
        "--dilation": dilation,
        "--ceil-mode": True if ceil_mode else None,
        "--no-count-include-pad": None if count_include_pad else False,
        "--divisor-override": divisor_override,
        "--p": p,
        "--blur-size": blur_size,
        "--q": q,
        "--alpha": alpha,
        "--train/--no-train": train,
        "--seed": seed,
        "--ratio": ratio,
        "--weights": weights,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if sources:
        single = {"--filter": filters, "--kernel": kernel, "--pool": pool}
        clash = [k for k, v in single.items() if v is not None] + list(given)
        if clash:
            raise UsageError(f"{sources[0]} cannot be combined with {', '.join(clash)}: put those in the stack instead")
        if stack is not None:
            return parse_stack(stack)
        if preset is not None:
            return get_preset(preset)
        return parse_stack(_config_stack(config))  # type: ignore[arg-type]

    mode = str(pool or "max").strip().lower()
    known_modes = [m.value for m in PoolMode]
    if mode not in known_modes:
        raise UsageError(f"--pool: invalid value {pool!r}; known: {', '.join(known_modes)}")

    # --kernel alone replaces the default filter; with --filter it joins the bank.
    items = [_filter_item(f, boundary, conv_stride, conv_dilation) for f in (filters or ([] if kernel else ["sobel"]))]
    if kernel is not None:
        items.append(_filter_item(f"conv(kernel={_fmt_value(kernel)})", boundary, conv_stride, conv_dilation))
    if len(items) == 1 and items[0] == "identity":
        items = []  # --filter none: pool the image itself
    parts = [" + ".join(items)] if items else []
    if activation != "none":
        parts.append(activation)
    if mode == "none":
        if given:
            raise UsageError(f"{next(iter(given))}: does not apply to --pool none (no pooling stage)")
    else:
        names = {prm.name for prm in op_specs()[mode].params}
        for option in given:
            param = _OPTION_PARAMS[option]
            if param not in names:
                takers = _modes_taking(param)
                if option == "--p":
                    raise UsageError(f"--p: only lp and gem pooling take a norm, got --pool {mode}")
                if option == "--blur-size":
                    raise UsageError(f"--blur-size: only blurpool, blur and aps take a blur, got --pool {mode}")
                raise UsageError(f"{option}: does not apply to --pool {mode} (only to: {', '.join(takers) or 'none'})")
        if mode in _REQUIRED and _REQUIRED[mode][0] not in given:
            option, message = _REQUIRED[mode]
            raise UsageError(f"{option}: {message}")
        kw: dict[str, Any] = {}
        if "size" in names and (size is not None or mode != "fractional"):
            kw["size"] = _opt_value("--size", size or "2", _pos_pair)
        converters = (
            ("--stride", stride, _pos_pair, "stride"),
            ("--padding", padding.replace(",", "x") if padding is not None else None, _padding_value, "padding"),
            ("--dilation", dilation, _pos_pair, "dilation"),
        )
        for option, raw, conv, key in converters:
            if raw is not None:
                kw[key] = _opt_value(option, raw, conv)
        if isinstance(kw.get("padding"), tuple) and "size" in kw:
            try:
                check_padding(kw["size"], kw.get("dilation", (1, 1)), kw["padding"])
            except ValueError as exc:
                raise UsageError(f"--padding: invalid value {padding!r}: {exc}") from None
        if ceil_mode:
            kw["ceil_mode"] = True
        if not count_include_pad:
            kw["count_include_pad"] = False
        scalars = (
            ("--divisor-override", divisor_override, _divisor_value, "divisor_override"),
            ("--blur-size", blur_size, _blur_size, "blur_size"),
            ("--p", p, _positive_float, "p"),
            ("--q", q, _unit_float, "q"),
            ("--alpha", alpha, _unit_float, "alpha"),
            ("--train/--no-train", train, _bool_value, "train"),
            ("--seed", seed, _seed, "seed"),
            ("--ratio", ratio, _ratio, "ratio"),
            ("--weights", weights, _string, "weights"),
        )
        for option, raw, conv, key in scalars:
            if raw is not None:
                kw[key] = _opt_value(option, raw if isinstance(raw, bool) else str(raw), conv)
        parts.append(f"{mode}({', '.join(f'{k}={_fmt_value(v)}' for k, v in kw.items())})")
    if not parts:
        raise UsageError("the stack is empty: give --pool, --filter, --stack, --preset or --config")
    try:
        return parse_stack(" | ".join(parts))
    except StackSpecError as exc:  # one line: the options, not a caret into a string the user never typed
        raise UsageError(f"invalid options: {str(exc).splitlines()[0]}") from None


# ----------------------------------------------------------------------------- commands

PathsArg = Annotated[
    list[Path],
    typer.Argument(help="Image files (PNG, JPEG, TIFF, BMP, GIF, WebP, ...) or folders of them.", show_default=False),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder.", rich_help_panel=OUTPUT_PANEL)]
FilterOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--filter",
        "-f",
        help="Filter before pooling; repeat for several channels (a filter bank). "
        "E.g. sobel, sobel-x, gaussian:sigma=2, none. Default: sobel. See 'poolcli filters'.",
        rich_help_panel=FILTER_PANEL,
        show_default=False,
    ),
]
KernelOpt = Annotated[
    Optional[str],
    typer.Option(
        help="Custom kernel, inline ('1,0,-1;2,0,-2;1,0,-1': rows by ';') or a .npy/.txt file. "
        "Applied as cross-correlation (CNN semantics: no flip).",
        rich_help_panel=FILTER_PANEL,
        show_default=False,
    ),
]
BoundaryOpt = Annotated[
    Boundary,
    typer.Option(
        help="Filter boundary mode (scipy.ndimage names; PyTorch's 'reflect' padding is 'mirror', "
        "'replicate' is 'nearest', 'circular' is 'wrap', zeros is 'constant').",
        rich_help_panel=FILTER_PANEL,
    ),
]
ConvStrideOpt = Annotated[
    str, typer.Option(help="Filter stride: a strided convolution, the alternative to pooling.", rich_help_panel=FILTER_PANEL)
]
ConvDilationOpt = Annotated[str, typer.Option(help="Filter dilation (atrous).", rich_help_panel=FILTER_PANEL)]
ActivationOpt = Annotated[Activation, typer.Option(help="Activation after filtering.", rich_help_panel=FILTER_PANEL)]
PoolOpt = Annotated[
    Optional[PoolMode],
    typer.Option(
        help="Pooling mode \\[default: max]. quantile needs --q, lp needs --p, fractional needs --ratio, "
        "learned needs --weights; more parameters (fractional overlapping, ...) through --stack.",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
SizeOpt = Annotated[
    Optional[str],
    typer.Option(help="Window size: 2 or 2x3 (H x W) \\[default: 2].", rich_help_panel=POOL_PANEL, show_default=False),
]
StrideOpt = Annotated[
    Optional[str], typer.Option(help="Stride \\[default: the size].", rich_help_panel=POOL_PANEL, show_default=False)
]
PaddingOpt = Annotated[
    Optional[str],
    typer.Option(
        help="Padding: 1, 1x2, top,bottom,left,right, 'same' (TensorFlow) or 'valid' \\[default: 0].",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
DilationOpt = Annotated[
    Optional[str], typer.Option(help="Dilation \\[default: 1].", rich_help_panel=POOL_PANEL, show_default=False)
]
CeilOpt = Annotated[bool, typer.Option("--ceil-mode", help="Round the output size up.", rich_help_panel=POOL_PANEL)]
CountPadOpt = Annotated[bool, typer.Option(help="avg: count padded zeros in the divisor.", rich_help_panel=POOL_PANEL)]
DivisorOpt = Annotated[
    Optional[int], typer.Option(help="avg: divide by this instead.", rich_help_panel=POOL_PANEL, show_default=False)
]
NormOpt = Annotated[
    Optional[float],
    typer.Option(
        "--p",
        "--norm",
        help="lp: the norm p (required); gem: the exponent \\[default: 3].",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
BlurSizeOpt = Annotated[
    Optional[int],
    typer.Option(
        help="blurpool/blur/aps: taps of the binomial blur, 1-7 \\[default: 3; aps: 1].",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
QOpt = Annotated[
    Optional[float],
    typer.Option(
        "--q",
        help="quantile: which quantile of each window, in [0, 1] (0.5 = median).",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
AlphaOpt = Annotated[
    Optional[float],
    typer.Option(
        help="mixed: alpha * max + (1 - alpha) * avg, alpha in [0, 1] \\[default: 0.5].",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
TrainOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--train/--no-train",
        help="stochastic: draw one activation per window (training) instead of the expectation "
        "sum(p_i * a_i) (inference) \\[default: --no-train].",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
SeedOpt = Annotated[
    Optional[int],
    typer.Option(
        help="stochastic --train, fractional: the random seed \\[default: 0].",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
RatioOpt = Annotated[
    Optional[float],
    typer.Option(
        help="fractional: output size / input size, in (0, 1] (required for it).",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
WeightsOpt = Annotated[
    Optional[str],
    typer.Option(
        metavar="FILE",
        help="learned: the pooling weights, a .npy of shape (k, k) or (C, k, k) (required for it).",
        rich_help_panel=POOL_PANEL,
        show_default=False,
    ),
]
LOAD_PANEL = "Input limits"
NanOpt = Annotated[
    NanPolicy,
    typer.Option(
        help="NaN or infinite pixels (float TIFFs): error refuses the file, propagate keeps them "
        "(max pooling propagates NaN, as PyTorch), zero replaces them with 0.",
        rich_help_panel=LOAD_PANEL,
    ),
]
MaxPixelsOpt = Annotated[
    Optional[int],
    typer.Option(
        min=1,
        help="Refuse images with more pixels than this (the decompression-bomb check). "
        "\\[default: Pillow's limit, 89,478,485]",
        rich_help_panel=LOAD_PANEL,
        show_default=False,
    ),
]
MaxFramesOpt = Annotated[
    Optional[int],
    typer.Option(
        min=1,
        help="Refuse multi-frame files (GIF, APNG, TIFF, WebP) with more frames than this; only the first "
        "frame is ever decoded. \\[default: no limit]",
        rich_help_panel=LOAD_PANEL,
        show_default=False,
    ),
]
StackOpt = Annotated[
    Optional[str],
    typer.Option(
        help="A whole stack, e.g. \"sobel | relu | max(2) | avg(3, stride=2, padding=1)\".",
        rich_help_panel=STACK_PANEL,
        show_default=False,
    ),
]
PresetOpt = Annotated[
    Optional[str], typer.Option(help="A named stack: see 'poolcli presets'.", rich_help_panel=STACK_PANEL, show_default=False)
]
ConfigOpt = Annotated[
    Optional[Path],
    typer.Option(help="A TOML file with stack = \"...\" or \\[\\[stage]] tables.", rich_help_panel=STACK_PANEL, show_default=False),
]
ColorOpt = Annotated[
    Color, typer.Option(help="gray: ITU-R 601 luminance; keep: every channel its own map.", rich_help_panel=STACK_PANEL)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON report to stdout instead of tables.", rich_help_panel=OUTPUT_PANEL)]
BATCH_PANEL = "Batch (folders, parallel workers, resume, Dask)"
RecursiveOpt = Annotated[bool, typer.Option(help="Look into sub-folders of folder inputs.", rich_help_panel=BATCH_PANEL)]
GlobOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--glob",
        metavar="PATTERN",
        help="Which files found in folders are inputs, e.g. '*.png' (repeat for several; case-insensitive; "
        "matched against the file name, or against the path under the folder when it contains a '/'). "
        "Other files are skipped and counted. \\[default: every extension Pillow reads]",
        rich_help_panel=BATCH_PANEL,
        show_default=False,
    ),
]
WorkersOpt = Annotated[
    Optional[int],
    typer.Option(
        "--workers",
        "-j",
        min=1,
        help="Images processed in parallel, one process each; 1 runs in this process. "
        "With --scheduler local: the Dask workers. \\[default: the number of cores]",
        rich_help_panel=BATCH_PANEL,
        show_default=False,
    ),
]
ThreadsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--threads",
        min=1,
        help="Threads each process gives the pooling and filter cores (NumPy releases the GIL). "
        "\\[default: the number of cores, divided among --workers processes]",
        rich_help_panel=BATCH_PANEL,
        show_default=False,
    ),
]
SchedulerOpt = Annotated[
    Optional[str],
    typer.Option(
        metavar="local|tcp://HOST:PORT",
        help="Run on Dask distributed (pip install 'poolcli\\[dask]'): 'local' for a LocalCluster of --workers "
        "processes on this machine, or a scheduler's address. Workers write to --out: it must be a folder they share.",
        rich_help_panel=BATCH_PANEL,
        show_default=False,
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Finish an interrupted run into the same --out: inputs whose outputs are complete (same options, "
        "unchanged file) are skipped; the report covers all inputs.",
        rich_help_panel=BATCH_PANEL,
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Overwrite the outputs of an earlier run in --out.", rich_help_panel=BATCH_PANEL)
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No tables, no progress; failures and errors only.", rich_help_panel=OUTPUT_PANEL)
]
DebugOpt = Annotated[bool, typer.Option(help="Show tracebacks.", rich_help_panel=OUTPUT_PANEL)]


@app.command()
def run(
    paths: PathsArg,
    out: OutOpt = Path("poolcli-out"),
    filter_: FilterOpt = None,
    kernel: KernelOpt = None,
    boundary: BoundaryOpt = Boundary.reflect,
    conv_stride: ConvStrideOpt = "1",
    conv_dilation: ConvDilationOpt = "1",
    activation: ActivationOpt = Activation.none,
    pool: PoolOpt = None,
    size: SizeOpt = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = None,
    dilation: DilationOpt = None,
    ceil_mode: CeilOpt = False,
    count_include_pad: CountPadOpt = True,
    divisor_override: DivisorOpt = None,
    p: NormOpt = None,
    blur_size: BlurSizeOpt = None,
    q: QOpt = None,
    alpha: AlphaOpt = None,
    train: TrainOpt = None,
    seed: SeedOpt = None,
    ratio: RatioOpt = None,
    weights: WeightsOpt = None,
    stack: StackOpt = None,
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    color: ColorOpt = Color.gray,
    nan: NanOpt = NanPolicy.error,
    max_pixels: MaxPixelsOpt = None,
    max_frames: MaxFramesOpt = None,
    dense_units: Annotated[
        int, typer.Option(min=1, help="Units of the dense layer whose parameters the report counts.", rich_help_panel=OUTPUT_PANEL)
    ] = 128,
    json_out: JsonOpt = False,
    png: Annotated[bool, typer.Option(help="Write a PNG per map channel.", rich_help_panel=OUTPUT_PANEL)] = True,
    montage: Annotated[bool, typer.Option(help="Write a montage PNG per input.", rich_help_panel=OUTPUT_PANEL)] = True,
    unpool: Annotated[
        bool,
        typer.Option(
            help="For every max-pooling stage, also write the stage's input with each kept maximum in place and "
            "zeros elsewhere (max_unpool2d): what max pooling kept and threw away.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = True,
    recursive: RecursiveOpt = True,
    glob: GlobOpt = None,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    scheduler: SchedulerOpt = None,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Filter and pool images; write every stage's maps (.npy, PNG), a montage, report.json and shapes.csv.

    Example: poolcli run photo.png --pool max --size 2 --stride 2

    Folders: poolcli run photos/ --workers 4 (then --resume after Ctrl-C).
    """
    with _errors(debug):
        st = build_stack(**_stack_args(locals()))
        batch = BatchArgs(recursive, glob, workers, scheduler, resume, force, threads)
        load = LoadArgs(nan.value, max_pixels, max_frames)
        code = _run(paths, st, out, color.value, dense_units, json_out, png, montage, unpool, load, batch, quiet, debug)
    raise typer.Exit(code)


def _stack_args(args: dict[str, Any]) -> dict[str, Any]:
    """The stack-building options of a command, as ``build_stack`` takes them."""
    return {
        "stack": args["stack"],
        "preset": args["preset"],
        "config": args["config"],
        "filters": args["filter_"],
        "kernel": args["kernel"],
        "boundary": args["boundary"].value,
        "conv_stride": args["conv_stride"],
        "conv_dilation": args["conv_dilation"],
        "activation": args["activation"].value,
        "pool": args["pool"].value if args["pool"] is not None else None,
        "size": args["size"],
        "stride": args["stride"],
        "padding": args["padding"],
        "dilation": args["dilation"],
        "ceil_mode": args["ceil_mode"],
        "count_include_pad": args["count_include_pad"],
        "divisor_override": args["divisor_override"],
        "p": args["p"],
        "blur_size": args["blur_size"],
        "q": args["q"],
        "alpha": args["alpha"],
        "train": args["train"],
        "seed": args["seed"],
        "ratio": args["ratio"],
        "weights": args["weights"],
    }


class LoadArgs(NamedTuple):
    """How inputs are loaded (images.load_image's keyword options)."""

    nan: str = "error"
    max_pixels: Optional[int] = None
    max_frames: Optional[int] = None


class BatchArgs(NamedTuple):
    """The batch options shared by run and invariance."""

    recursive: bool = True
    globs: Optional[list[str]] = None
    workers: Optional[int] = None
    scheduler: Optional[str] = None
    resume: bool = False
    force: bool = False
    threads: Optional[int] = None


def _prepare_batch(command: str, paths: list[Path], out: Path, batch: BatchArgs):
    """Check the options, find the inputs, and refuse to overwrite an earlier run: all before any work."""
    from .batch import previous_outputs, scan
    from .outputs import check_writable
    from .parallel import check_scheduler

    if batch.resume and batch.force:
        raise UsageError("--resume and --force cannot be combined: --resume keeps finished outputs, --force redoes them")
    check_scheduler(batch.scheduler)
    out_dir = check_writable(out)
    found = scan(list(paths), recursive=batch.recursive, globs=batch.globs, exclude=[out_dir])
    if not found.items:
        raise UsageError("no images found in " + ", ".join(str(p) for p in paths))
    if not (batch.resume or batch.force):
        prev = previous_outputs(out_dir, found.items, command)
        if prev is not None:
            raise UsageError(
                f"--out {out_dir} already holds outputs of an earlier run ({prev}): "
                "add --resume to finish that run, or --force to overwrite it"
            )
    return out_dir, found


def _progress(quiet: bool, found, total: int):
    from .parallel import Progress

    if quiet:
        mode = "none"
    elif err_console.is_terminal and not err_console.is_dumb_terminal:
        mode = "bar"
    else:  # plain lines in logs, for folder batches; named files keep the one-line-per-failure output
        mode = "lines" if found.folders else "none"
    return Progress(err_console, mode, total)


def _batch(command: str, items, opts, out_dir: Path, batch: BatchArgs, quiet: bool, found, debug: bool):
    from ._threads import set_num_threads
    from .parallel import run_batch

    cores = os.cpu_count() or 1
    workers = batch.workers or cores
    # Set before the worker processes fork, so that they inherit it; several
    # processes share the cores rather than each starting one thread per core.
    set_num_threads(batch.threads if batch.threads else max(1, cores // min(workers, max(1, len(items)))))

    return run_batch(
        items,
        opts,
        command=command,
        out_dir=out_dir,
        workers=workers,
        scheduler=batch.scheduler,
        resume=batch.resume,
        progress=_progress(quiet, found, len(items)),
        debug=debug,
    )


def _interrupted(out_dir: Path, report_name: str) -> int:
    err_console.print(
        f"poolcli: interrupted; {_escape(str(out_dir / report_name))} lists what was done; "
        "run the same command with --resume to finish",
        highlight=False,
    )
    return ExitStatus.CTRL_C


def _run(
    paths, st, out, color, dense_units, json_out, png, montage, unpool, load: LoadArgs, batch: BatchArgs, quiet, debug
) -> int:
    from .batch import RunOptions
    from .outputs import save_csv, save_json
    from .report import SHAPES_CSV_HEADER, batch_summary_line, shape_table, shapes_csv_rows

    out_dir, found = _prepare_batch("run", paths, out, batch)
    items = found.items
    opts = RunOptions(
        stack=st,
        out_dir=out_dir,
        color=color,
        dense_units=dense_units,
        png=png,
        montage=montage,
        unpool=unpool,
        nan=load.nan,
        max_pixels=load.max_pixels,
        max_frames=load.max_frames,
    )
    res = _batch("run", items, opts, out_dir, batch, quiet, found, debug)
    records = [res.results[i] for i in sorted(res.results)]
    failures = [{"path": items[i].label, "error": res.errors[i]} for i in sorted(res.errors)]
    report = {
        "poolcli_version": __version__,
        "stack": str(st),
        "color": color,
        "dense_units": dense_units,
        "nan": load.nan,
        "max_pixels": load.max_pixels,
        "max_frames": load.max_frames,
        "out_dir": str(out_dir),
        "inputs": records,
        "failures": failures,
        "summary": res.counts(len(items), found.skipped),
        "interrupted": res.interrupted,
        "execution": {"workers": res.workers, "scheduler": res.scheduler},
    }
    save_json(out_dir / "report.json", report)
    save_csv(out_dir / "shapes.csv", SHAPES_CSV_HEADER, shapes_csv_rows(records))
    if res.interrupted:
        return _interrupted(out_dir, "report.json")
    if json_out:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    elif not quiet:
        shown_shapes: set[tuple] = set()
        for rec in records:  # one shape report per distinct input size, in input order
            key = tuple(rec["input_shape"])
            if key not in shown_shapes:
                shown_shapes.add(key)
                out_console.print(shape_table(rec, dense_units))
        out_console.print(f"stack: [bold]{_escape(str(st))}[/]")
        out_console.print(batch_summary_line(report["summary"]), highlight=False)
        out_console.print(f"outputs in {_escape(str(out_dir))}/ (report.json, shapes.csv)", highlight=False)
    return ExitStatus.ERROR if failures else ExitStatus.SUCCESS


class Direction(str, Enum):
    x = "x"
    y = "y"
    diag = "diag"
    grid = "grid"


class ShiftMode(str, Enum):
    circular = "circular"
    crop = "crop"


INV_PANEL = "Shifts and methods"


@app.command()
def invariance(
    paths: PathsArg,
    shifts: Annotated[
        str, typer.Option(help="Shifts in pixels: 0:5 (a range, both ends), 1,2,3, or 0:8:2.", rich_help_panel=INV_PANEL)
    ] = "0:4",
    direction: Annotated[
        Direction, typer.Option(help="x, y, diag (dy = dx) or grid (every dy, dx pair).", rich_help_panel=INV_PANEL)
    ] = Direction.x,
    shift_mode: Annotated[
        ShiftMode,
        typer.Option(
            help="circular: np.roll, with every padding and boundary of the stack made circular; "
            "crop: two equal crops whose offsets differ by the shift (Zhang 2019), stack as configured.",
            rich_help_panel=INV_PANEL,
        ),
    ] = ShiftMode.circular,
    compare: Annotated[
        Optional[str],
        typer.Option(
            help="Pooling methods to swap into the stack's pooling stages, side by side: "
            "max,avg,min,lp,blurpool,blur,aps,median,mixed,softpool,gem,stochastic.",
            rich_help_panel=INV_PANEL,
            show_default=False,
        ),
    ] = None,
    out: OutOpt = Path("poolcli-out"),
    filter_: FilterOpt = None,
    kernel: KernelOpt = None,
    boundary: BoundaryOpt = Boundary.reflect,
    conv_stride: ConvStrideOpt = "1",
    conv_dilation: ConvDilationOpt = "1",
    activation: ActivationOpt = Activation.none,
    pool: PoolOpt = None,
    size: SizeOpt = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = None,
    dilation: DilationOpt = None,
    ceil_mode: CeilOpt = False,
    count_include_pad: CountPadOpt = True,
    divisor_override: DivisorOpt = None,
    p: NormOpt = None,
    blur_size: BlurSizeOpt = None,
    q: QOpt = None,
    alpha: AlphaOpt = None,
    train: TrainOpt = None,
    seed: SeedOpt = None,
    ratio: RatioOpt = None,
    weights: WeightsOpt = None,
    stack: StackOpt = None,
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    color: ColorOpt = Color.gray,
    nan: NanOpt = NanPolicy.error,
    max_pixels: MaxPixelsOpt = None,
    max_frames: MaxFramesOpt = None,
    json_out: JsonOpt = False,
    plot: Annotated[bool, typer.Option(help="Write invariance.png (needs poolcli[plot]).", rich_help_panel=OUTPUT_PANEL)] = True,
    recursive: RecursiveOpt = True,
    glob: GlobOpt = None,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    scheduler: SchedulerOpt = None,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """How shift-invariant is each pooling stack? Metrics per method, stage and shift.

    Example: poolcli invariance photo.png --pool max --size 2 --stride 2 --compare max,avg,blurpool,aps
    """
    with _errors(debug):
        from .invariance import parse_shifts, shift_pairs

        st = build_stack(**_stack_args(locals()))
        try:
            pairs = shift_pairs(parse_shifts(shifts), direction.value)
        except ValueError as exc:
            raise UsageError(f"--shifts: {exc}") from None
        methods: tuple[str, ...] = ()
        if compare is not None:
            from .stack import POOL_METHODS, _ALIASES

            methods = tuple(m.strip().lower() for m in compare.split(",") if m.strip())
            methods = tuple(_ALIASES.get(m, m) for m in methods)
            bad = [m for m in methods if m not in POOL_METHODS]
            if bad or not methods:
                raise UsageError(
                    f"--compare: invalid value {compare!r}: unknown method(s) {', '.join(bad) or '(none)'}; "
                    f"known: {', '.join(POOL_METHODS)}"
                )
            methods = tuple(dict.fromkeys(methods))
            if not any(s.kind == "pool" for s in st.stages):
                raise UsageError("--compare needs a stack with at least one pooling stage to swap")
        batch = BatchArgs(recursive, glob, workers, scheduler, resume, force, threads)
        load = LoadArgs(nan.value, max_pixels, max_frames)
        code = _invariance(
            paths, st, pairs, methods, shift_mode.value, out, color.value, json_out, plot, load, batch, quiet, debug
        )
    raise typer.Exit(code)


def _invariance(
    paths, st, pairs, methods, shift_mode, out, color, json_out, plot, load: LoadArgs, batch: BatchArgs, quiet, debug
) -> int:
    from .batch import InvarianceOptions, method_stacks
    from .outputs import atomic_write_bytes, save_csv, save_json
    from .plots import PLOT_HINT, have_matplotlib, invariance_plot
    from .report import (
        INVARIANCE_AGG_CSV_HEADER,
        INVARIANCE_CSV_HEADER,
        aggregate_table,
        batch_summary_line,
        invariance_aggregate_csv_rows,
        invariance_aggregates,
        invariance_csv_rows,
        invariance_table,
        summarize_methods,
        summary_table,
    )

    out_dir, found = _prepare_batch("invariance", paths, out, batch)
    items = found.items
    opts = InvarianceOptions(
        stack=st,
        shifts=tuple(pairs),
        methods=methods,
        shift_mode=shift_mode,
        color=color,
        nan=load.nan,
        max_pixels=load.max_pixels,
        max_frames=load.max_frames,
    )
    stacks = method_stacks(opts)
    res = _batch("invariance", items, opts, out_dir, batch, quiet, found, debug)
    records: list[dict] = [r for i in sorted(res.results) for r in res.results[i]]
    failures = [{"path": items[i].label, "error": res.errors[i]} for i in sorted(res.errors)]
    summary = summarize_methods(records)
    aggregates = invariance_aggregates(records)
    note = (
        "circular: shifts are np.roll; every padding and boundary in the stack was made circular (filters wrap, "
        "pools pad by wrapping), and each image was cropped (bottom/right) to a multiple of the stack's total "
        "stride so that shifts wrap onto the pooling grid: borders do not pollute the measurement"
        if shift_mode == "circular"
        else "crop: two equal-size crops whose offsets differ by the shift (Zhang 2019); the stack runs as configured"
    )
    counts = res.counts(len(items), found.skipped)
    report = {
        "poolcli_version": __version__,
        "stack": str(st),
        "shift_mode": shift_mode,
        "nan": load.nan,
        "max_pixels": load.max_pixels,
        "max_frames": load.max_frames,
        "note": note,
        "methods": {m: str(s) for m, s in stacks},
        "shifts": [list(s) for s in pairs],
        "records": records,
        "summary": summary,
        "aggregates": aggregates,
        "failures": failures,
        "seconds": counts["seconds"],
        "batch_summary": counts,
        "interrupted": res.interrupted,
        "execution": {"workers": res.workers, "scheduler": res.scheduler},
    }
    save_json(out_dir / "invariance.json", report)
    save_csv(out_dir / "invariance.csv", INVARIANCE_CSV_HEADER, invariance_csv_rows(records))
    save_csv(out_dir / "invariance_aggregates.csv", INVARIANCE_AGG_CSV_HEADER, invariance_aggregate_csv_rows(aggregates))
    if res.interrupted:
        return _interrupted(out_dir, "invariance.json")
    plot_msg = None
    if plot and records:
        if have_matplotlib():
            atomic_write_bytes(out_dir / "invariance.png", invariance_plot(records, title=f"{str(st)} ({shift_mode})"))
        else:
            plot_msg = f"no plot: {PLOT_HINT}"
    n_ok = len(res.results)
    if json_out:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    elif not quiet:
        out_console.print(f"stack: [bold]{_escape(str(st))}[/]   shift mode: {shift_mode}", highlight=False)
        out_console.print(f"[dim]{_escape(note)}[/]")
        for method, _ in stacks:
            out_console.print(invariance_table(records, method))
        out_console.print(summary_table(summary))
        if n_ok > 1:
            out_console.print(aggregate_table(aggregates, n_ok))
        written = "invariance.json, invariance.csv, invariance_aggregates.csv" + (
            ", invariance.png" if plot and records and not plot_msg else ""
        )
        out_console.print(f"outputs in {_escape(str(out_dir))}/ ({written})", highlight=False)
        out_console.print(batch_summary_line(counts), highlight=False)
    if plot_msg and not json_out:
        err_console.print(f"poolcli: {plot_msg}", highlight=False)
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
