"""The terminal never lies: whole names and numbers at any width, readable help, suggestions, previews.

Widths are set with ``COLUMNS`` in a subprocess (Rich reads it when the
console is created); ``| cat`` is a subprocess whose stdout is a pipe. The
preview test drives a real terminal: tmux (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES, SUBPROCESS_ENV

WIDTHS = (40, 60, 80, 200)


def poolcli(*args: str, columns: int = 80, **kw) -> subprocess.CompletedProcess:
    env = {**SUBPROCESS_ENV, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "poolcli", *args], capture_output=True, text=True, env=env,
                          timeout=120, **kw)


def _option_names(command: str) -> list[str]:
    from click import Command
    from typer.main import get_command

    from poolcli.cli import app

    group = get_command(app)
    cmd: Command = group.commands[command]  # type: ignore[attr-defined]
    names = []
    for p in cmd.params:
        names += [o for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
    return names


@pytest.mark.parametrize("command", ["run", "invariance"])
@pytest.mark.parametrize("columns", [60, 80, 120])  # at 40 two long names side by side cannot fit
def test_help_shows_every_option_name_whole(command, columns):
    out = poolcli(command, "--help", columns=columns).stdout
    assert "…" not in out
    words = set(re.findall(r"--[a-z][a-z0-9-]*", out))
    missing = [n for n in _option_names(command) if n not in words]
    assert missing == []


@pytest.mark.parametrize("columns", [60, 80])
def test_narrow_help_puts_the_help_below_the_names(columns):
    """At 80 columns the Output panel's names and metavars left its help a 17-cell column (one or two words
    a line): such a panel prints each option's names on a line and its help below, at the full width."""
    out = poolcli("run", "--help", columns=columns).stdout
    lines = [line.strip("│ ") for line in out.splitlines()]
    at = lines.index("--montage / --no-montage")
    assert lines[at + 1].startswith("Write a montage PNG per input.")
    assert "--out, -o TEXT" in lines and "--preview-protocol [auto|kitty|sixel|blocks]" in lines
    unpool = lines.index("--unpool / --no-unpool")
    assert len(lines[unpool + 1]) >= columns - 20  # a whole line of words, not two
    for line in out.splitlines():
        assert len(line) <= columns


def test_wide_help_keeps_the_table():
    out = poolcli("run", "--help", columns=200).stdout
    row = next(line for line in out.splitlines() if "--no-montage" in line)
    assert re.search(r"--montage\s+--no-montage\s+Write a montage PNG per input", row)


def test_help_table_stacks_only_what_is_too_narrow():
    """_HelpTable on its own: beside the names while the help gets MIN_HELP cells, below them when not."""
    from rich.console import Console
    from rich.text import Text

    from poolcli._help import MIN_HELP, _HelpTable

    def render(width: int) -> list[str]:
        table = _HelpTable(show_header=False, expand=True, box=None, padding=(0, 1), pad_edge=False)
        table.add_row(Text("--preview-protocol"), Text(""), Text("--no-preview-protocol"), Text(""),
                      Text("[auto|kitty|sixel|blocks]"), Text("auto: what the terminal speaks, else half blocks."))
        table.add_row(Text("--out"), Text("-o"), Text(""), Text(""), Text("TEXT"), Text("Output folder."))
        console = Console(width=width, record=True, color_system=None)
        console.print(table)
        return [line.rstrip() for line in console.export_text().splitlines()]

    stacked = ["--preview-protocol / --no-preview-protocol [auto|kitty|sixel|blocks]",
               "    auto: what the terminal speaks, else half blocks.", "--out, -o TEXT", "    Output folder."]
    layouts = []
    for width in range(70, 160, 3):
        lines = render(width)
        if lines[0].startswith("--preview-protocol /"):
            assert lines == stacked, width
            layouts.append("stacked")
        else:  # the table: the help column at least MIN_HELP cells wide
            assert width - lines[0].index("auto:") >= MIN_HELP, width
            assert lines[-1].startswith("--out") and lines[-1].endswith("Output folder."), width
            layouts.append("table")
    assert layouts[0] == "stacked" and layouts[-1] == "table"
    assert layouts == sorted(layouts)  # stacked below one width, a table from it on


def test_filters_and_modes_names_whole_in_a_pipe_and_at_80():
    from poolcli.filters import FILTERS
    from poolcli.pooling.modes import MODES

    for columns in (40, 80):
        out = poolcli("filters", columns=columns).stdout
        assert "…" not in out
        for name in FILTERS:
            if name != "none":
                assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", out), (columns, name)
        modes = poolcli("modes", columns=columns).stdout
        for name in MODES:
            assert re.search(rf"(?<![\w-]){name}(?![\w-])", modes), (columns, name)


def test_help_prints_brackets_as_typed():
    out = " ".join(poolcli("invariance", "--help", columns=200).stdout.split())
    assert "poolcli[plot]" in out
    assert "[[stage]]" in " ".join(poolcli("run", "--help", columns=200).stdout.split())


def test_command_typo_is_suggested_once():
    err = poolcli("rn").stderr
    assert err.count("Did you mean 'run'?") == 1 and len(err.strip().splitlines()) == 1


def test_stage_typo_gets_suggestions(tmp_path):
    r = poolcli("run", str(SAMPLES / "scene.png"), "--stack", "sobl | max(2)", "-o", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "did you mean 'sobel'" in r.stderr


def test_derivative_descriptions_match_their_kernels():
    """'x-derivative (right - left)' is positive on a ramp rising to the right; likewise y (bottom - top)."""
    from poolcli.filters import FILTERS, apply_filter

    ramp = np.tile(np.arange(9.0), (9, 1))
    for name, factory in FILTERS.items():
        f = factory()
        if "x-derivative" in f.description:
            assert "(right - left)" in f.description
            assert apply_filter(ramp, f, mode="nearest")[4, 4] > 0, name
        if "y-derivative" in f.description:
            assert "(bottom - top)" in f.description
            assert apply_filter(ramp.T, f, mode="nearest")[4, 4] > 0, name


# ----------------------------------------------------------------------------- previews


def test_preview_protocol_escape_output_sixel():
    """The Sixel path sends the image as one DCS sequence: ESC P ... q <sixel data> ESC \\."""
    from rich.console import Console

    from poolcli.preview import image_class

    console = Console(force_terminal=True, width=80, color_system="truecolor", no_color=False,
                      file=open(os.devnull, "w"))
    with console.capture() as cap:
        console.print(image_class("sixel")(_pil(), width=8, height="auto"))
    out = cap.get()
    start = out.index("\x1bP")
    assert "q" in out[start:start + 16] and out.index("\x1b\\", start) > start + 16  # pixels between DCS and ST


def test_preview_protocol_escape_output_blocks():
    from rich.console import Console

    from poolcli.preview import image_class

    console = Console(force_terminal=True, width=80, color_system="truecolor", no_color=False,
                      file=open(os.devnull, "w"))
    with console.capture() as cap:
        console.print(image_class("blocks")(_pil(), width=8, height="auto"))
    out = cap.get()
    assert "▀" in out and "\x1b[38;2;" in out  # true-colour foreground (upper pixel) and background (lower)


def _pil():
    from PIL import Image

    return Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)


def _tmux() -> str:
    path = shutil.which("tmux")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed: .ci/run installs it")
        pytest.skip("tmux is not installed (apt-get install tmux)")
    return path


def test_preview_in_a_real_terminal(tmp_path):
    """poolcli run --preview inside tmux: the half-block fallback draws every stage, labelled."""
    tmux = _tmux()
    session = f"poolcli-preview-{os.getpid()}"
    out = tmp_path / "o"
    done = tmp_path / "done"
    cmd = (f"{sys.executable} -m poolcli run {SAMPLES / 'scene.png'} --preset hierarchy -q --preview "
           f"-o {out}; echo $? > {done}; sleep 60")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).parents[1]), env.get("PYTHONPATH")) if p)
    subprocess.run([tmux, "-L", session, "new-session", "-d", "-s", session, "-x", "120", "-y", "60", cmd],
                   env=env, check=True)
    try:
        deadline = time.monotonic() + 60
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        screen = subprocess.run([tmux, "-L", session, "capture-pane", "-p", "-t", session],
                                capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run([tmux, "-L", session, "kill-server"], capture_output=True)
    assert done.exists() and done.read_text().strip() == "0", screen
    assert "▀" in screen
    for label in ("input", "1x240x320", "5 max(size=2,", "1x15x20"):
        assert label in screen, (label, screen)


@pytest.mark.parametrize("h, w", [(3, 5000), (5000, 3)])
def test_preview_of_a_thin_strip_is_drawn_at_least_one_row_and_at_most_a_screen(tmp_path, h, w):
    """A 5000x3 strip crashed the preview (textual-image asked for 0 rows: 'internal error: ValueError'); a
    3x5000 one printed 43,000 lines. Both draw, a few lines, and the run exits 0."""
    pytest.importorskip("textual_image")
    from PIL import Image

    src = tmp_path / "strip.png"
    Image.fromarray((np.arange(h * w) % 251).astype(np.uint8).reshape(h, w)).save(src)
    r = poolcli("run", str(src), "--stack", "sobel | max(1)", "--no-montage", "-q", "--preview",
                "--preview-protocol", "blocks", "-o", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "internal error" not in r.stderr and "▀" in r.stdout
    assert len(r.stdout.splitlines()) < 120, len(r.stdout.splitlines())


def test_preview_without_the_extra_says_how_to_get_it(tmp_path, monkeypatch):
    import poolcli.preview as preview
    from typer.testing import CliRunner

    from poolcli.cli import app

    monkeypatch.setattr(preview, "available", lambda: False)
    r = CliRunner().invoke(app, ["run", str(SAMPLES / "scene.png"), "--preview", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "pip install 'poolcli[preview]'" in r.output


def test_a_preview_that_cannot_be_drawn_is_a_note_not_a_failed_run(tmp_path, monkeypatch):
    """The outputs are written before the preview: a preview the terminal library cannot draw (a terminal
    reporting 0 columns made textual-image divide by zero: 'internal error', exit 1) is one line on stderr
    and the run's own exit code; --debug shows the traceback."""
    pytest.importorskip("textual_image")
    import poolcli.preview as preview
    from typer.testing import CliRunner

    from poolcli.cli import app

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(preview, "run_preview", broken)
    out = tmp_path / "o"
    r = CliRunner().invoke(app, ["run", str(SAMPLES / "scene.png"), "--preview", "-q", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "poolcli: no preview: ZeroDivisionError: division by zero" in r.output
    assert "internal error" not in r.output and (out / "report.json").is_file()
    r = CliRunner().invoke(app, ["run", str(SAMPLES / "scene.png"), "--preview", "-q", "-o", str(tmp_path / "d"),
                                 "--debug"])
    assert isinstance(r.exception, ZeroDivisionError)


# ----------------------------------------------------------------------------- whole numbers at any width


def _photo(path: Path, size: int, seed: int = 0) -> Path:
    """A photo-like RGB image: smooth colour fields plus texture."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-20, 21, (size, size, 3))
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)
    return path


def _printed(args: list[str], columns: int | None) -> str:
    """stdout of ``poolcli *args``: on a terminal ``columns`` wide (a forced Rich terminal), or piped (None)."""
    if columns is None:
        return poolcli(*args, columns=80).stdout
    code, out = _printed_any(args, columns)
    assert code == 0, out
    return out


@pytest.fixture(scope="module")
def big_photo(tmp_path_factory):
    return _photo(tmp_path_factory.mktemp("photo") / "photo.png", 1411)


@pytest.mark.parametrize("columns", [*WIDTHS, None], ids=[*map(str, WIDTHS), "piped"])
def test_every_number_of_the_report_is_printed_whole(tmp_path, big_photo, columns):
    import json

    out = tmp_path / "o"
    text = _printed(["run", str(big_photo), "--preset", "vgg", "--color", "keep", "-o", str(out), "--no-png",
                     "--no-montage", "--no-unpool", "--workers", "1"], columns)
    assert "…" not in text
    flat = " ".join(text.split())  # a wrapped spec joins up again; a cut number never does
    tokens = set(re.split(r"[\s│┃]+", text))
    report = json.loads((out / "report.json").read_text())
    rec = report["inputs"][0]
    for entry in [rec["input"], *rec["stages"]]:
        for value in (f"{entry['elements']:,}", f"{entry['dense_params']:,}", "x".join(map(str, entry["shape"]))):
            assert value in tokens, (columns, value)
    for stage in rec["stages"]:
        assert stage["spec"] in flat, (columns, stage["spec"])


@pytest.mark.parametrize("columns", [*WIDTHS, None], ids=[*map(str, WIDTHS), "piped"])
def test_invariance_aggregates_are_printed_whole(tmp_path, columns):
    import json

    from poolcli.report import _fmt_metric

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        _photo(folder / f"p{i}.png", 64 + 8 * i, seed=i)
    out = tmp_path / "o"
    text = _printed(["invariance", str(folder), "--compare", "max,avg,blurpool", "--shifts", "0:2", "-o", str(out),
                     "--no-plot", "--workers", "1"], columns)
    assert "…" not in text
    tokens = set(re.split(r"[\s│┃()]+", text))
    report = json.loads((out / "invariance.json").read_text())
    assert report["aggregates"]
    for a in report["aggregates"]:
        mean, std = a["equiv_rel_l2_mean"], a["equiv_rel_l2_std"]
        assert f"{_fmt_metric(mean)}±{_fmt_metric(std)}" in tokens, (columns, a)
        assert a["method"] in tokens


def test_a_long_batch_prints_a_short_summary(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    from PIL import Image

    rng = np.random.default_rng(1)
    for i in range(200):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(folder / f"img{i:03d}.png")
    (folder / "img999.png").write_bytes(b"not a png at all")
    r = poolcli("run", str(folder), "-o", str(tmp_path / "o"), "--no-png", "--no-montage", "--workers", "1", "-q")
    assert r.returncode == 1
    r = poolcli("run", str(folder), "-o", str(tmp_path / "o2"), "--no-png", "--no-montage", "--workers", "1")
    assert r.returncode == 1
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) <= 40, r.stdout
    assert "img999.png" in r.stdout and "failed" in r.stdout
    assert "report.json" in r.stdout


def test_invariance_preview_shows_each_method_at_its_worst_shift(tmp_path):
    r = poolcli("invariance", str(SAMPLES / "scene.png"), "--compare", "max,aps", "--shifts", "0:2", "--preview",
                "--preview-protocol", "blocks", "-q", "-o", str(tmp_path / "o"), columns=160)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "max: f(x)" in text and "max: f(x shifted 0,1) equiv_rel_l2" in text
    assert "aps: f(x shifted 0,1) equiv_rel_l2 0" in text  # aps: the map only moves
    assert "▀" in r.stdout


def test_plot_hint_keeps_its_brackets(tmp_path, monkeypatch):
    import poolcli.plots as plots
    from typer.testing import CliRunner

    from poolcli.cli import app

    monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    r = CliRunner().invoke(app, ["invariance", str(SAMPLES / "scene.png"), "--shifts", "0:1", "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "pip install 'poolcli[plot]'" in r.output


# ----------------------------------------------------------------------------- nothing cropped or squeezed away


def _printed_any(args: list[str], columns: int) -> tuple[int, str]:
    """(exit code, stdout) of ``poolcli *args`` on a forced Rich terminal ``columns`` wide."""
    import io

    from rich.console import Console
    from typer.testing import CliRunner

    import poolcli.cli as cli

    buf = io.StringIO()
    saved = cli.out_console
    cli.out_console = Console(file=buf, force_terminal=True, width=columns, color_system=None)
    try:
        result = CliRunner().invoke(cli.app, args)
    finally:
        cli.out_console = saved
    return result.exit_code, buf.getvalue()


@pytest.mark.parametrize("columns", [40, 60, 80, 100, 120])
def test_filters_descriptions_are_shown_at_any_width(columns):
    """A never-wrapping kernel column squeezed the description column to nothing (60-100 columns), and
    blocks cropped a description at the terminal's edge (40)."""
    from poolcli.filters import list_filters

    code, text = _printed_any(["filters"], columns)
    assert code == 0
    assert max(len(line) for line in text.splitlines()) <= columns
    tokens = set(re.split(r"[\s│┃]+", text))  # a table wraps a description between words, in its cell
    for f in list_filters():
        missing = [w for w in f.description.split() if w not in tokens]
        assert missing == [], (columns, f.label, missing)


@pytest.mark.parametrize("columns", [40, 60])
def test_modes_parameters_are_shown_whole_in_blocks(columns):
    from poolcli.report import modes_table

    code, text = _printed_any(["modes"], columns)
    assert code == 0
    assert max(len(line) for line in text.splitlines()) <= columns
    flat = " ".join(text.split())
    table = modes_table()
    for summary, params in zip(table.columns[1].cells, table.columns[2].cells):
        assert " ".join(str(summary).split()) in flat and str(params) in flat, (columns, params)


def test_a_long_failure_in_the_batch_summary_is_wrapped_not_cropped(tmp_path):
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(folder / "dot.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "ok.png")
    code, text = _printed_any(["run", str(folder), "-o", str(tmp_path / "o"), "--workers", "1", "--no-png",
                               "--no-montage"], 60)
    assert code == 1
    assert max(len(line) for line in text.splitlines()) <= 60
    flat = " ".join(text.split())
    assert "so the output would be 0x0; use a smaller size or more padding" in flat, text


def test_invariance_preview_draws_the_maps_of_the_measured_colour_channels(tmp_path):
    """invariance.json has no "color": the preview recomputed the maps in gray (1xHxW) after a --color keep run."""
    img = _photo(tmp_path / "rgb.png", 48)
    r = poolcli("invariance", str(img), "--color", "keep", "--compare", "max,aps", "--shifts", "0:1", "--preview",
                "--preview-protocol", "blocks", "-q", "--no-plot", "-o", str(tmp_path / "o"), columns=160)
    assert r.returncode == 0, r.stderr
    shapes = re.findall(r"\b(\d+)x24x24\b", r.stdout)
    assert shapes and set(shapes) == {"3"}, r.stdout


# ----------------------------------------------------------------------------- titles and captions

RANKED = "Methods ranked by mean equiv_rel_l2 (all stages, non-zero shifts)"
RANKED_CAPTION = "lower equiv = the maps only move with the input; global = what a global-pooling head sees"


@pytest.fixture(scope="module")
def two_photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two")
    for i in range(2):
        _photo(folder / f"p{i}.png", 48, seed=i)
    return folder


def _invariance_args(folder: Path, out: Path) -> list[str]:
    return ["invariance", str(folder), "--compare", "max,avg,blurpool,aps", "--shifts", "0:2", "--no-plot",
            "--workers", "1", "-o", str(out)]


def test_invariance_titles_and_captions_are_whole_lines_in_a_pipe(tmp_path, two_photos):
    """README: in a pipe, tables print at their natural width, no wrapping. The ranking's title and caption
    were wrapped to the 62-column table ("...non-zero" / "shifts)"), the aggregates' caption centred in two."""
    from typer.testing import CliRunner

    from poolcli.cli import app
    from poolcli.report import aggregate_table

    r = CliRunner().invoke(app, _invariance_args(two_photos, tmp_path / "o"))  # stdout is not a terminal
    assert r.exit_code == 0, r.output
    lines = [line.strip() for line in r.stdout.splitlines()]
    aggregates = aggregate_table([], 2)
    for whole in (RANKED, RANKED_CAPTION, str(aggregates.title), str(aggregates.caption)):
        assert whole in lines, (whole, r.stdout)


@pytest.mark.parametrize("columns", [60, 64, 100])
def test_invariance_titles_and_captions_wrap_to_the_terminal(tmp_path, two_photos, columns):
    """On a terminal they wrap between words to its width (60: the tables print as blocks; 64: the ranking is
    a table narrower than its title), and not narrower than it: at 100 the ranking's title is one line."""
    code, text = _printed_any(_invariance_args(two_photos, tmp_path / "o"), columns)
    assert code == 0
    assert max(len(line) for line in text.splitlines()) <= columns, text
    flat = " ".join(text.split())
    assert RANKED in flat and RANKED_CAPTION in flat
    lines = [line.strip() for line in text.splitlines()]
    assert (RANKED in lines) == (columns >= len(RANKED))
    assert (RANKED_CAPTION in lines) == (columns >= len(RANKED_CAPTION))


def test_show_keeps_a_title_that_fits_inside_the_table():
    """A title no wider than the table is drawn by Rich as before (left or centred over it)."""
    import io

    from rich.console import Console
    from rich.table import Table

    from poolcli.terminal import show

    def table(title, caption=None, justify="left"):
        t = Table(title=title, caption=caption, title_justify=justify)
        t.add_column("a rather wide column")
        t.add_column("another one")
        t.add_row("1", "2")
        return t

    for terminal in (False, True):
        for args in (("short",), ("short", "a caption", "center"), ("a title, [bold]marked up[/bold]",)):
            shown, plain_rich = io.StringIO(), io.StringIO()
            show(Console(file=shown, force_terminal=terminal, width=80, color_system=None), table(*args))
            Console(file=plain_rich, force_terminal=terminal, width=80, color_system=None).print(table(*args))
            assert shown.getvalue() == plain_rich.getvalue()
    long = "a title far wider than the two narrow columns of this table, " * 2
    for terminal, width in ((False, 30), (True, 30), (True, 200)):
        buf = io.StringIO()
        t = table(long.strip(), long.replace("title", "caption").strip())
        show(Console(file=buf, force_terminal=terminal, width=width, color_system=None), t)
        lines = buf.getvalue().splitlines()
        assert t.title == long.strip()  # the table is left as it was given
        if terminal:
            assert max(len(line) for line in lines) <= width
            assert long.strip() in " ".join(buf.getvalue().split())
        else:
            assert long.strip() in lines and long.replace("title", "caption").strip() in lines


def test_kitty_preview_into_a_closed_pipe_is_not_an_internal_error(tmp_path):
    """textual-image writes Kitty images to sys.__stdout__ itself: a reader that went away (| head) made the
    run end with 'internal error: BrokenPipeError' and exit 1. The outputs are written; the run exits 0."""
    pytest.importorskip("textual_image")
    read, write = os.pipe()
    os.close(read)  # every write to stdout fails with EPIPE, as after `| head -5` has exited
    try:
        r = subprocess.run([sys.executable, "-m", "poolcli", "run", str(SAMPLES / "scene.png"), "--preview", "-q",
                            "--preview-protocol", "kitty", "-o", str(tmp_path / "o")],
                           stdout=write, stderr=subprocess.PIPE, text=True, env=SUBPROCESS_ENV, timeout=120)
    finally:
        os.close(write)
    assert "internal error" not in r.stderr and r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "report.json").exists()


def test_preview_in_a_terminal_that_does_not_answer_prints_no_traceback(tmp_path):
    """In a pty nobody answers (script(1), an editor's shell) textual-image's cell-size query times out and
    it logs a warning with a traceback; that went to stderr through Python's last-resort handler."""
    pytest.importorskip("textual_image")
    import pty

    import fcntl
    import struct
    import termios

    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 100, 0, 0))  # 100 columns, no pixel size
    env = {k: v for k, v in SUBPROCESS_ENV.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "poolcli", "run", str(SAMPLES / "scene.png"), "--preview", "-q",
                             "-o", str(tmp_path / "o")], stdin=sub, stdout=sub, stderr=sub, env=env,
                            start_new_session=True)
    os.close(sub)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    rc = proc.wait(timeout=120)
    os.close(main)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert rc == 0, screen
    assert "Traceback" not in screen and "Failed to get cell size" not in screen, screen[:2000]
    assert "▀" in screen


def _deep_folder(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "a_rather_long_folder_name_for_photos_of_the_summer_holiday_2026"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for name in ("IMG_2041.png", "checkerboard.png", "scene.png"):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / name)
    (folder / "IMG_2042.png").write_bytes(b"not a png")
    return folder


@pytest.mark.parametrize("columns", [80, 200, None], ids=["80", "200", "piped"])
def test_the_batch_summary_names_the_shared_folder_once(tmp_path, columns):
    """Every row of the summary repeated the long folder all inputs share: at 80 columns each input became a
    block of three lines. The title names it once; the rows give the file names, whole."""
    folder = _deep_folder(tmp_path)
    args = ["run", str(folder), "-o", str(tmp_path / "o"), "--workers", "1", "--no-png", "--no-montage"]
    if columns is None:
        r = poolcli(*args, columns=80)
        code, text = r.returncode, r.stdout
    else:
        code, text = _printed_any(args, columns)
    assert code == 1
    squeezed = "".join(text.split())  # the title folded where the folder is wider than the terminal
    assert f"4inputsin{folder}{os.sep}" in squeezed
    rows = [ln for ln in text.splitlines() if ln.split() and ln.split()[0] in
            ("IMG_2041.png", "checkerboard.png", "scene.png", "IMG_2042.png")]
    assert len(rows) == 4, text  # a table row each (the name whole, at the start), not a block
    assert all(("ok" in ln) != ("failed" in ln) for ln in rows), text
    assert str(folder / "scene.png") not in text  # the folder is not repeated on every row
    if columns is not None:
        assert max(len(line) for line in text.splitlines()) <= columns


def test_the_summary_keeps_whole_paths_when_the_inputs_share_no_folder(tmp_path):
    from poolcli.terminal import common_folder

    assert common_folder([str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "y.png")]) == f"{tmp_path}{os.sep}"
    assert common_folder(["x.png", "y.png"]) == "" and common_folder([str(tmp_path / "x.png")]) == ""
    assert common_folder(["/x.png", "/y.png"]) == "" and common_folder(["s3://b/x.png", "s3://c/y.png"]) == ""
    assert common_folder(["photos/cat.png", "photos_old/dog.png"]) == ""  # a shared prefix is not a folder
    assert common_folder(["./cat.png", "./dog.png"]) == "" and common_folder(["./a/x.png", "./a/y.png"]) == "./a/"
