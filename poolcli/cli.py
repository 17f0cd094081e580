"""The Typer face of poolcli: parse options, call the domain, print. No numeric logic lives here.

Options are defined once in :mod:`poolcli.cmdoptions` and assembled per
command; the stack is built by :func:`poolcli.sources.from_options` (public
constructors, no text round trip); a job (:mod:`poolcli.jobs`) runs the
inputs and writes the reports; this module prints what came back.

Errors are translated once: a :class:`~poolcli.errors.PoolcliError` (or a bad
option value) becomes one line on stderr and a named exit code; a traceback
appears only with ``--debug``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .cmdoptions import (
    COMMON,
    INV_PANEL,
    OUTPUT_PANEL,
    Boundary,  # noqa: F401  (re-exported for users of poolcli.cli)
    Direction,
    PoolMode,  # noqa: F401
    PreviewProtocol,
    ShiftMode,
    command,
    stack_options,
)
from ._help import install as install_help
from .errors import ExitStatus, PoolcliError, UsageError, interrupt_status
from .terminal import PipeSafeConsole, invariance_output, plain, print_json, run_output, show

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

# emoji=False: a file named "a:smile:.png" is printed as it is named, not with an emoji in it
# PipeSafeConsole: a reader that goes away (| head) silences the console, it does not stop the batch
out_console = PipeSafeConsole(emoji=False)
err_console = PipeSafeConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False)
install_help()


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
    # one line in a pipe or a log; on a terminal wrapped between words (the terminal cut words in two)
    err_console.print(f"[bold red]poolcli:[/] {escape(message)}", markup=True, highlight=False,
                      soft_wrap=not err_console.is_terminal)
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
        err_console.print("poolcli: interrupted", highlight=False, markup=False)
        raise typer.Exit(interrupt_status()) from None
    except PoolcliError as exc:
        if debug:
            raise
        _fail(str(exc), exc.exit_code)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        if debug:
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)", ExitStatus.ERROR)


def build_stack(**options: Any):
    """One Stack from the command-line options (see :func:`poolcli.sources.from_options`)."""
    from .stack.sources import from_options

    return from_options(**options)


def _stack(o: SimpleNamespace):
    return build_stack(**stack_options(o))


# ----------------------------------------------------------------------------- run


@command(app, *COMMON, name="run")
def run(
    paths: list[Path],
    dense_units: Annotated[
        int, typer.Option(min=1, help="Units of the dense layer whose parameters the report counts.", rich_help_panel=OUTPUT_PANEL)
    ] = 128,
    png: Annotated[bool, typer.Option(help="Write a PNG per map channel.", rich_help_panel=OUTPUT_PANEL)] = True,
    montage: Annotated[bool, typer.Option(help="Write a montage PNG per input.", rich_help_panel=OUTPUT_PANEL)] = True,
    unpool: Annotated[
        bool,
        typer.Option(
            help="For every max-pooling stage, also show the stage's input with each kept maximum in place and "
            "zeros elsewhere (max_unpool2d): what max pooling kept and threw away. Stored as the PNG and the "
            "int32 indices of the maxima (_unpool_indices.npy; unpool2d rebuilds the map).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = True,
    unpool_dense: Annotated[
        bool, typer.Option("--unpool-dense", help="Also write the full-size unpool map as .npy (float32, mostly zeros).",
                           rich_help_panel=OUTPUT_PANEL)] = False,
    preview: Annotated[
        bool, typer.Option(help="Show the input and each stage's map in the terminal (needs poolcli\\[preview]).",
                           rich_help_panel=OUTPUT_PANEL)] = False,
    preview_protocol: Annotated[
        PreviewProtocol, typer.Option(help="auto: what the terminal speaks (Kitty, Sixel), else half blocks.",
                                      rich_help_panel=OUTPUT_PANEL)] = PreviewProtocol.auto,
    *,
    o: SimpleNamespace,
) -> None:
    """Filter and pool images; write every stage's maps (.npy, PNG), a montage, report.json and shapes.csv.

    Example: poolcli run photo.png --pool max --size 2 --stride 2

    Folders: poolcli run photos/ --workers 4 (then --resume after Ctrl-C).
    """
    from .jobs.run import RunJob

    with _errors(o.debug):
        st = _stack(o)
        if preview:
            _check_preview(o.out)
        job = RunJob(stack=st, color=o.color.value, dense_units=dense_units, png=png, montage=montage, unpool=unpool,
                     unpool_dense=unpool_dense,
                     html=o.html, zoom=o.zoom, normalize=o.normalize.value, **_load(o))
        code = _execute(job, paths, o, lambda outcome: run_output(
            out_console, outcome.report, outcome.written, outcome.out_name, o.verbose))
        if preview and code in (ExitStatus.SUCCESS, ExitStatus.ERROR) and not o.json_out:
            _preview(o.out, preview_protocol.value, debug=o.debug)
    raise typer.Exit(code)


def _load(o: SimpleNamespace) -> dict[str, Any]:
    from .stack.memory import parse_size

    try:
        max_memory = None if o.max_memory is None else parse_size(o.max_memory)
    except ValueError as exc:
        raise UsageError(f"--max-memory: {exc}") from None
    return {"nan": o.nan.value, "max_pixels": o.max_pixels, "max_frames": o.max_frames, "max_memory": max_memory}


def _execute(job, paths: list[Path], o: SimpleNamespace, present) -> int:
    """Run ``job`` on ``paths``; print its report (or JSON) and notes; return the exit code."""
    from .jobs import BatchArgs, execute

    if o.no_color:
        out_console.no_color = err_console.no_color = True
    paths, out, options = _places(paths, o)
    batch = BatchArgs(o.recursive, o.glob, o.workers, o.scheduler, o.resume, o.force, o.threads, options)
    outcome = execute(job, paths, out, batch, progress=lambda found, total: _progress(o.quiet, found, total),
                      debug=o.debug)
    if outcome.interrupted:
        plain(err_console, outcome.interrupted_message)
        return outcome.exit_code
    if o.json_out:
        print_json(outcome.report)
    elif not o.quiet:
        present(outcome)
    if not o.json_out:
        for line in outcome.notes:
            plain(err_console, line)
    return outcome.exit_code


def _places(paths: list[str], o: SimpleNamespace) -> tuple[list, Any, dict | None]:
    """``(paths, out, storage options)``: local paths as Path, URLs (s3://...) as given."""
    from .storage import is_url, local_path, parse_storage_options

    try:
        options = parse_storage_options(o.storage_option or []) if o.storage_option else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    places = [p if is_url(p) else local_path(p) for p in paths]
    return places, (o.out if is_url(o.out) else local_path(o.out)), options


def _progress(quiet: bool, found, total: int):
    from .parallel import Progress

    if quiet:
        mode = "none"
    elif err_console.is_terminal and not err_console.is_dumb_terminal:
        mode = "bar"
    else:  # plain lines in logs, for folder batches; named files keep the one-line-per-failure output
        mode = "lines" if found.folders else "none"
    return Progress(err_console, mode, total)


def _check_preview(out: str) -> None:
    from .preview import PREVIEW_HINT, available
    from .storage import is_url

    if is_url(out):
        raise UsageError("--preview shows the files of a local --out; with a URL --out, open them from the store")
    if not available():
        raise UsageError(f"--preview needs textual-image: {PREVIEW_HINT}")


def _preview(out: str, protocol: str, report_name: str = "report.json", color: str | None = None,
             debug: bool = False) -> None:
    """Print the preview of the report just written in ``out`` (``color``: the run's, when the report has none).

    The outputs are written by then: a preview that cannot be drawn (a terminal that reports 0 columns made
    textual-image divide by zero) is a one-line note, not a failure of the run (its traceback with --debug).
    """
    try:
        _draw_preview(out, protocol, report_name, color)
    except Exception as exc:
        if debug:
            raise
        err_console.print(f"poolcli: no preview: {type(exc).__name__}: {exc}", highlight=False, markup=False)


def _draw_preview(out: str, protocol: str, report_name: str, color: str | None) -> None:
    import json

    from .preview import invariance_preview, run_preview
    from .storage import local_path

    out = local_path(out)
    report = json.loads((out / report_name).read_text(encoding="utf-8"))
    if color is not None:
        report.setdefault("color", color)  # invariance.json does not record it: the maps must be the measured ones
    shown = run_preview(report, out, out_console, protocol) if report_name == "report.json" else \
        invariance_preview(report, out_console, protocol)
    try:
        for renderable in shown:
            out_console.print(renderable)
    except BrokenPipeError:  # textual-image writes Kitty images to sys.__stdout__ itself, past Rich (| head)
        import sys

        from .terminal import silence

        silence(sys.__stdout__)


# ----------------------------------------------------------------------------- invariance


def _methods(compare: Optional[str], st) -> tuple[str, ...]:
    """``--compare`` as canonical method specs (``max``, ``blurpool(peer=kornia)``), checked against the stack.

    Methods are split on commas outside parentheses; a plain name is checked as before, a name with
    arguments is parsed as the stack language does (:func:`poolcli.stack.model.method_spec`).
    """
    if compare is None:
        return ()
    from .ops import STAGE_ALIASES
    from .stack import POOL_METHODS
    from .stack.model import method_name, method_spec

    pieces, depth, cur = [], 0, ""
    for ch in compare:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth <= 0:
            pieces.append(cur)
            cur = ""
        else:
            cur += ch
    pieces.append(cur)
    methods, bad = [], []
    for raw in (m.strip() for m in pieces if m.strip()):
        if "(" not in raw:
            m = STAGE_ALIASES.get(raw.lower(), raw.lower())
            if m not in POOL_METHODS:  # a window mode that needs a value (quantile): swap_pooling says which
                try:
                    m = method_name(*method_spec(raw))
                except UsageError:
                    bad.append(raw)  # as typed: 'none', not its alias 'identity'
                    continue
            methods.append(m)
            continue
        try:
            methods.append(method_name(*method_spec(raw)))
        except UsageError as exc:
            raise UsageError(f"--compare: invalid method {raw!r}: {exc}") from None
    if bad or not methods:
        raise UsageError(
            f"--compare: invalid value {compare!r}: unknown method(s) {', '.join(bad) or '(none)'}; "
            f"known: {', '.join(_compare_names())}"
        )
    if not any(s.kind == "pool" for s in st.stages):
        raise UsageError("--compare needs a stack with at least one pooling stage to swap")
    from .stack import swap_pooling

    for m in methods:  # a value the method needs and the stack cannot give (quantile's q) is named here
        try:
            swap_pooling(st, m)
        except UsageError as exc:
            raise UsageError(f"--compare: {exc}") from None
    return tuple(dict.fromkeys(methods))


def _compare_names() -> tuple[str, ...]:
    """The methods ``--compare`` takes, as its help and its error list them (quantile included: it names
    the q it needs when given without one)."""
    from .pooling.modes import modes_in

    return tuple(modes_in("torch", "antialiased", "family"))


def _compare_help() -> str:
    names = _compare_names()
    return ("Pooling methods to swap into the stack's pooling stages, side by side, e.g. max,avg,blurpool,aps; "
            f"any of {', '.join(names)}, with arguments in the stack language if wanted, e.g. "
            "\"max,blurpool(peer=kornia),aps(criterion=l1)\" (the stack keeps the window and stride).")


@command(app, *COMMON, name="invariance")
def invariance(
    paths: list[Path],
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
        Optional[str], typer.Option(help=_compare_help(), rich_help_panel=INV_PANEL, show_default=False)
    ] = None,
    plot: Annotated[bool, typer.Option(help="Write invariance.png (needs poolcli\\[plot]).", rich_help_panel=OUTPUT_PANEL)] = True,
    preview: Annotated[
        bool, typer.Option(help="Show, per method, the last map beside the map at its worst shift, in the terminal "
                           "(needs poolcli\\[preview]).", rich_help_panel=OUTPUT_PANEL)] = False,
    preview_protocol: Annotated[
        PreviewProtocol, typer.Option(help="auto: what the terminal speaks (Kitty, Sixel), else half blocks.",
                                      rich_help_panel=OUTPUT_PANEL)] = PreviewProtocol.auto,
    *,
    o: SimpleNamespace,
) -> None:
    """How shift-invariant is each pooling stack? Metrics per method, stage and shift.

    Example: poolcli invariance photo.png --pool max --size 2 --stride 2 --compare max,avg,blurpool,aps
    """
    from .jobs.invariance import InvarianceJob

    with _errors(o.debug):
        from .invariance import parse_shifts, shift_pairs

        st = _stack(o)
        try:
            pairs = shift_pairs(parse_shifts(shifts), direction.value)
        except ValueError as exc:
            raise UsageError(f"--shifts: {exc}") from None
        job = InvarianceJob(stack=st, shifts=tuple(pairs), methods=_methods(compare, st), shift_mode=shift_mode.value,
                            color=o.color.value, plot=plot, html=o.html, **_load(o))
        if preview:
            _check_preview(o.out)
        code = _execute(job, paths, o, lambda outcome: invariance_output(
            out_console, outcome.report, outcome.written, outcome.out_name))
        if preview and code in (ExitStatus.SUCCESS, ExitStatus.ERROR) and not o.json_out:
            _preview(o.out, preview_protocol.value, "invariance.json", color=o.color.value, debug=o.debug)
    raise typer.Exit(code)


# ----------------------------------------------------------------------------- listings


@app.command("filters")
def filters_cmd() -> None:
    """List the named filters and print their kernels (applied as cross-correlation, no flip)."""
    from .report import filters_table

    show(out_console, filters_table())


@app.command("presets")
def presets_cmd() -> None:
    """List the preset stacks with their stack strings."""
    from .report import presets_table

    show(out_console, presets_table())


@app.command("modes")
def modes_cmd() -> None:
    """List the pooling modes with their parameters and defaults (positional order), as --stack takes them."""
    from .report import modes_table

    show(out_console, modes_table())


# ----------------------------------------------------------------------------- entry point


def _click_exception() -> type[Exception]:
    """Click's ``ClickException``, wherever this Typer keeps it (it vendors Click since 0.22)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _once(message: str) -> str:
    """The message with a sentence repeated back to back said once ("Did you mean 'run'?" twice, from Click and Typer)."""
    import re

    parts = re.split(r"(?<=[.?!])\s+", message)
    kept = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
    return " ".join(kept)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: Click's usage errors become one line and exit code 2."""
    import os
    import sys

    # Before NumPy is imported (the commands import it lazily): poolcli makes no BLAS call worth a thread
    # (no matrix products; the invariance search's dot products are short, einsum for long ones), yet
    # OpenBLAS starts one per core at import, and they spin-wait beside the pool's workers (0.1 s of a
    # core in a 200-image --workers 2 run, measured with perf). A value the user set is kept.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    click_exception = _click_exception()
    try:
        rv = app(args=argv, prog_name="poolcli", standalone_mode=False)
    except KeyboardInterrupt:
        err_console.print("poolcli: interrupted", highlight=False, markup=False)
        _leave(interrupt_status())
    except click_exception as exc:
        msg = _once(exc.format_message().replace("\n", " "))  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        plain(err_console, f"poolcli: error: {msg}{hint}")
        sys.exit(getattr(exc, "exit_code", ExitStatus.USAGE))
    except Exception as exc:
        if type(exc).__name__ == "Abort":  # Click's Ctrl-C / EOF at a prompt
            err_console.print("poolcli: interrupted", highlight=False, markup=False)
            sys.exit(ExitStatus.CTRL_C)
        raise
    _leave(rv if isinstance(rv, int) else 0)


def _leave(code: int) -> None:
    """Exit with ``code``; after a signal, without waiting for bands still running on threads.

    The reports are written by then; the bands in flight only compute. A
    further Ctrl-C while the output is flushed is ignored (no traceback).
    """
    import os
    import signal
    import sys

    if code in (ExitStatus.CTRL_C, ExitStatus.TERM) and "poolcli._threads" in sys.modules:
        from ._threads import stopped

        if stopped():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(int(code))
    sys.exit(code)
