"""Command-line options, defined once and grouped; commands assemble the groups they take.

The model is pip's ``cli/cmdoptions.py``: each option is written once, the
groups (stack, filters, pooling, input limits, batch, output) are shared by
``poolcli run`` and ``poolcli invariance``, and :func:`command` builds a
Typer command whose signature is the command's own parameters plus its
groups. The implementation receives the group options as one namespace
(``o.size``, ``o.workers``, ...), so no command repeats an option list.

The pooling options are generated from the registry's parameters
(:data:`poolcli.ops.PARAMS`): their names, types and help texts live there,
beside the converter that checks them. Choice lists (``--pool``,
``--boundary``, ``--activation``) come from the registry too.

Imports: typer, :mod:`poolcli.ops`, :mod:`poolcli.sources` (no NumPy).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Callable, Optional

import typer

from .ops import ACTIVATIONS, BOUNDARY_MODES, PARAMS
from .stack.sources import POOL_CHOICES

STACK_PANEL = "Stack (filters -> activation -> pooling)"
POOL_PANEL = "Pooling (torch.nn.functional semantics)"
FILTER_PANEL = "Filters (cross-correlation, no kernel flip)"
LOAD_PANEL = "Input limits"
BATCH_PANEL = "Batch (folders, parallel workers, resume, Dask)"
OUTPUT_PANEL = "Output"
INV_PANEL = "Shifts and methods"


def _choices(name: str, values) -> type[Enum]:
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


PoolMode = _choices("PoolMode", POOL_CHOICES)
Boundary = _choices("Boundary", BOUNDARY_MODES)
Activation = _choices("Activation", ("none",) + ACTIVATIONS)
NanPolicy = _choices("NanPolicy", ("error", "propagate", "zero"))
Color = _choices("Color", ("gray", "keep", "keep-alpha"))
Normalize = _choices("Normalize", ("per-map", "shared"))
Direction = _choices("Direction", ("x", "y", "diag", "grid"))
ShiftMode = _choices("ShiftMode", ("circular", "crop"))
PreviewProtocol = _choices("PreviewProtocol", ("auto", "kitty", "sixel", "blocks"))


@dataclass(frozen=True)
class Opt:
    """One option: the Python name the implementation reads, its annotated type, its default."""

    name: str
    annotation: Any
    default: Any = None


def _opt(name: str, type_: Any, default: Any, *decls: str, panel: str, help: str, **kw: Any) -> Opt:
    kw.setdefault("show_default", False if default is None else True)
    return Opt(name, Annotated[type_, typer.Option(*decls, help=help, rich_help_panel=panel, **kw)], default)


# ----------------------------------------------------------------------------- groups

STACK_OPTIONS = (
    _opt("stack", Optional[str], None, panel=STACK_PANEL,
         help="A whole stack, e.g. \"sobel | relu | max(2) | avg(3, stride=2, padding=1)\"."),
    _opt("preset", Optional[str], None, panel=STACK_PANEL, help="A named stack: see 'poolcli presets'."),
    _opt("config", Optional[Path], None, panel=STACK_PANEL,
         help="A TOML file with stack = \"...\" or \\[\\[stage]] tables."),
    _opt("color", Color, Color.gray, panel=STACK_PANEL,
         help="gray: ITU-R 601 luminance; keep: every colour channel its own map (alpha dropped); "
         "keep-alpha: alpha too."),
)

FILTER_OPTIONS = (
    _opt("filter_", Optional[list[str]], None, "--filter", "-f", panel=FILTER_PANEL,
         help="Filter before pooling; repeat for several channels (a filter bank). "
         "E.g. sobel, sobel-x, gaussian:sigma=2, none. Default: sobel. See 'poolcli filters'."),
    _opt("kernel", Optional[str], None, panel=FILTER_PANEL,
         help="Custom kernel, inline ('1,0,-1;2,0,-2;1,0,-1': rows by ';') or a .npy/.txt file. "
         "Applied as cross-correlation (CNN semantics: no flip)."),
    _opt("boundary", Boundary, Boundary.reflect, panel=FILTER_PANEL,
         help="Filter boundary mode (scipy.ndimage names; PyTorch's 'reflect' padding is 'mirror', "
         "'replicate' is 'nearest', 'circular' is 'wrap', zeros is 'constant')."),
    _opt("conv_stride", str, "1", panel=FILTER_PANEL,
         help="Filter stride: a strided convolution, the alternative to pooling."),
    _opt("conv_dilation", str, "1", panel=FILTER_PANEL, help="Filter dilation (atrous)."),
    _opt("activation", Activation, Activation.none, panel=FILTER_PANEL, help="Activation after filtering."),
)

# How Click spells the registry's pooling parameters that are not plain "--name VALUE".
_DECLS = {
    "p": ("--p", "--norm"),
    "count_include_pad": ("--count-include-pad/--no-count-include-pad",),
    "train": ("--train/--no-train",),
}
_BOOL_DEFAULTS = {"ceil_mode": False, "count_include_pad": True}


def _pool_option(name: str) -> Opt:
    p = PARAMS[name]
    decls = _DECLS.get(name, (p.option,))
    if name in _BOOL_DEFAULTS:
        return _opt(name, bool, _BOOL_DEFAULTS[name], *decls, panel=POOL_PANEL, help=p.help)
    kw = {"metavar": "FILE"} if name == "weights" else {}
    return _opt(name, Optional[p.cli_type], None, *decls, panel=POOL_PANEL, help=p.help, **kw)


POOL_OPTIONS = (
    _opt("pool", Optional[PoolMode], None, metavar="MODE", panel=POOL_PANEL,
         help=f"Pooling mode: {', '.join(POOL_CHOICES)} \\[default: max]. lp needs --p, quantile --q, "
         "fractional --ratio, learned --weights; 'poolcli modes' lists every mode's parameters and "
         "defaults; more through --stack."),
) + tuple(_pool_option(name) for name, p in PARAMS.items() if p.option)

LOAD_OPTIONS = (
    _opt("nan", NanPolicy, NanPolicy.error, panel=LOAD_PANEL,
         help="NaN or infinite pixels (float TIFFs): error refuses the file, propagate keeps them "
         "(max pooling propagates NaN, as PyTorch), zero replaces them with 0."),
    _opt("max_pixels", Optional[int], None, min=1, panel=LOAD_PANEL,
         help="Refuse images with more pixels than this (the decompression-bomb check). "
         "\\[default: Pillow's limit, 89,478,485]"),
    _opt("max_memory", Optional[str], None, metavar="SIZE", panel=LOAD_PANEL,
         help="Refuse an input whose stack would need more working memory than this (e.g. 4G, 512M), "
         "naming the stage and its estimate, before any work. \\[default: half the memory available]"),
    _opt("max_frames", Optional[int], None, min=1, panel=LOAD_PANEL,
         help="Refuse multi-frame files (GIF, APNG, TIFF, WebP) with more frames than this; only the first "
         "frame is ever decoded. \\[default: no limit]"),
)

BATCH_OPTIONS = (
    _opt("recursive", bool, True, panel=BATCH_PANEL, help="Look into sub-folders of folder inputs."),
    _opt("glob", Optional[list[str]], None, "--glob", metavar="PATTERN", panel=BATCH_PANEL,
         help="Which files found in folders are inputs, e.g. '*.png' (repeat for several; case-insensitive; "
         "matched against the file name, or against the path under the folder when it contains a '/'). "
         "Other files are skipped and counted. \\[default: every extension Pillow reads]"),
    _opt("workers", Optional[int], None, "--workers", "-j", min=1, panel=BATCH_PANEL,
         help="Images processed in parallel, one process each; 1 runs in this process. "
         "With --scheduler local: the Dask workers. \\[default: the number of cores]"),
    _opt("threads", Optional[int], None, "--threads", min=1, panel=BATCH_PANEL,
         help="Threads each process gives the pooling and filter cores (NumPy releases the GIL). "
         "\\[default: the number of cores, divided among --workers processes]"),
    _opt("scheduler", Optional[str], None, metavar="local|tcp://HOST:PORT", panel=BATCH_PANEL,
         help="Run on Dask distributed (pip install 'poolcli\\[dask]'): 'local' for a LocalCluster of --workers "
         "processes on this machine, or a scheduler's address. The workers read the inputs and write --out "
         "themselves: a folder they share, or a URL (s3://...) on object storage."),
    _opt("resume", bool, False, "--resume", panel=BATCH_PANEL,
         help="Finish an interrupted run into the same --out: inputs whose outputs are complete (same options, "
         "unchanged file) are skipped; the report covers all inputs."),
    _opt("force", bool, False, "--force", panel=BATCH_PANEL, help="Overwrite the outputs of an earlier run in --out."),
    _opt("storage_option", Optional[list[str]], None, "--storage-option", metavar="KEY=VALUE", panel=BATCH_PANEL,
         help="An fsspec option for URL inputs and --out, e.g. endpoint_url=http://127.0.0.1:9000 or anon=true "
         "(repeat for several; client_kwargs.region_name=... for nested ones). Credentials also come from each "
         "backend's own environment and config; values are never written to a report or printed."),
)

OUTPUT_OPTIONS = (
    # str, not Path: a URL keeps its '//' (s3://bucket/maps); local paths become Path in the CLI.
    _opt("out", str, "poolcli-out", "--out", "-o", panel=OUTPUT_PANEL,
         help="Output folder, or a URL on object storage (s3://bucket/maps, needs poolcli\\[cloud])."),
    _opt("json_out", bool, False, "--json", panel=OUTPUT_PANEL, help="Print the JSON report to stdout instead of tables."),
    _opt("quiet", bool, False, "--quiet", "-q", panel=OUTPUT_PANEL, help="No tables, no progress; failures and errors only."),
    _opt("verbose", bool, False, "--verbose", "-v", panel=OUTPUT_PANEL,
         help="Every input's shape table (default: one per distinct stack geometry, and a summary across inputs)."),
    _opt("no_color", bool, False, "--no-color", panel=OUTPUT_PANEL,
         help="No colour (also with NO_COLOR set; colour is only ever used on a terminal)."),
    _opt("debug", bool, False, panel=OUTPUT_PANEL, help="Show tracebacks: the first input that fails stops the batch, with its traceback."),
    _opt("html", bool, False, "--html", panel=OUTPUT_PANEL,
         help="Also write report.html in --out: one page to browse offline (needs poolcli\\[html])."),
    _opt("zoom", Optional[str], None, metavar="X,Y,W,H", panel=OUTPUT_PANEL,
         help="The montage's zoom region, in input pixels. \\[default: the 64x64 window with the most structure]"),
    _opt("normalize", Normalize, Normalize("per-map"), panel=OUTPUT_PANEL,
         help="The montage's gray scale: per-map (each tile its own min..max) or shared (one scale per channel row)."),
)

#: The groups ``run`` and ``invariance`` share, in the order ``--help`` shows them.
COMMON = (STACK_OPTIONS, FILTER_OPTIONS, POOL_OPTIONS, LOAD_OPTIONS, BATCH_OPTIONS, OUTPUT_OPTIONS)

PATHS = Opt(
    "paths",
    # readable=False: an unreadable file or folder is a failure of that input (exit 1, the batch goes on),
    # not a usage error that stops the batch before it starts.
    Annotated[list[str], typer.Argument(help="Image files (PNG, JPEG, TIFF, BMP, GIF, WebP, ...) or folders of them, "
                                        "or URLs on object storage (s3://bucket/photos/, needs poolcli\\[cloud]).",
                                         show_default=False, readable=False)],
    inspect.Parameter.empty,
)

# ----------------------------------------------------------------------------- assembling commands

STACK_KEYS = ("stack", "preset", "config", "filter_", "kernel", "boundary", "conv_stride", "conv_dilation",
              "activation", "pool") + tuple(name for name, p in PARAMS.items() if p.option)


def stack_options(o: SimpleNamespace) -> dict[str, Any]:
    """The options that describe the stack, as :func:`poolcli.sources.from_options` takes them."""
    kw = {k: getattr(o, k) for k in STACK_KEYS}
    kw["filters"] = kw.pop("filter_")
    for k, v in kw.items():
        if isinstance(v, Enum):
            kw[k] = v.value
    return kw


def command(app: typer.Typer, *groups: tuple[Opt, ...], name: str | None = None) -> Callable:
    """Register ``impl(paths, <own options>, o)`` as a command taking ``paths``, its own options and ``groups``.

    ``impl``'s own keyword parameters (annotated for Typer) come first in
    ``--help``; the group options are collected into the namespace ``o``.
    """

    def register(impl: Callable) -> Callable:
        own = [p for p in inspect.signature(impl, eval_str=True).parameters.values() if p.name not in ("paths", "o")]
        opts = [opt for group in groups for opt in group]
        params = [inspect.Parameter(PATHS.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=PATHS.annotation)]
        params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params += [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=o.annotation)
                   for o in opts]
        group_names = {o.name for o in opts}

        @functools.wraps(impl)
        def wrapper(paths: list[str], **kw: Any) -> Any:
            o = SimpleNamespace(**{k: v for k, v in kw.items() if k in group_names})
            return impl(paths, o=o, **{k: v for k, v in kw.items() if k not in group_names})

        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # Typer must read the assembled signature, not impl's
        return app.command(name)(wrapper)

    return register
