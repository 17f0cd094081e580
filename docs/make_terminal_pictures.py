"""Regenerate the terminal pictures in docs/ (README: "In the terminal").

Runs poolcli in-process with a recording Rich console of a fixed width that
behaves as a terminal, and saves what it printed as SVG:

* ``docs/terminal-60.svg``: ``poolcli run sample_images/scene.png --preset vgg`` in 60 columns;
* ``docs/preview.svg``: ``poolcli run sample_images/scene.png --preset hierarchy --preview`` (half blocks).

Usage: ``python docs/make_terminal_pictures.py`` from the repository root
(needs the preview extra: ``pip install '.[preview]'``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

import poolcli.cli as cli

ROOT = Path(__file__).resolve().parents[1]


def record(args: list[str], width: int, title: str, out: Path) -> None:
    console = Console(record=True, force_terminal=True, width=width, color_system="truecolor", file=open("/dev/null", "w"))
    saved = cli.out_console
    cli.out_console = console
    try:
        result = CliRunner().invoke(cli.app, args)
    finally:
        cli.out_console = saved
    assert result.exit_code == 0, result.output
    out.write_text(console.export_svg(title=title), encoding="utf-8")
    print(f"wrote {out}")


def main() -> None:
    scene = str(ROOT / "sample_images" / "scene.png")
    with tempfile.TemporaryDirectory() as tmp:
        record(["run", "sample_images/scene.png", "--preset", "vgg", "-o", f"{tmp}/a", "--no-png", "--no-montage"], 60,
               "poolcli run scene.png --preset vgg   (60 columns)", ROOT / "docs" / "terminal-60.svg")
        record(["run", "sample_images/scene.png", "--preset", "hierarchy", "-q", "--preview", "--preview-protocol", "blocks",
                "-o", f"{tmp}/b"], 110, "poolcli run scene.png --preset hierarchy --preview", ROOT / "docs" / "preview.svg")


if __name__ == "__main__":
    main()
