"""``--preview``: the input and every stage's map, inline in the terminal, at their relative scale.

The images are drawn by textual-image (``pip install 'poolcli[preview]'``), a
maintained library that speaks the terminal graphics protocols (Kitty's TGP,
Sixel: real pixels) and falls back to Unicode half blocks (two pixels per
character cell) where a terminal speaks neither, or when ``--preview blocks``
asks for it. poolcli writes no escape sequence by hand.

Each picture is labelled with the stage's spec and shape; a pooled map is drawn
at its size relative to the input (a 2x2 pool halves the width), so the
downsampling is what one sees. Maps are read back from the ``.npy`` files the
run wrote and scaled to 0..255 as the PNGs are (:func:`poolcli.images.to_uint8`).

Imports: rich, numpy, :mod:`poolcli.images`; textual-image when asked to draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.text import Text

PREVIEW_HINT = "pip install 'poolcli[preview]'"
PROTOCOLS = ("auto", "kitty", "sixel", "blocks")
MIN_CELLS = 4  # the narrowest picture, in character cells
MAX_ROWS = 40  # the tallest picture, in character rows (a 3x5000 strip is not drawn 20,000 rows tall)


def available() -> bool:
    """Whether textual-image is installed."""
    try:
        import textual_image  # noqa: F401
    except ImportError:
        return False
    return True


def image_class(protocol: str = "auto") -> Any:
    """The textual-image renderable for ``protocol`` (``auto``: what the terminal answers it speaks)."""
    import logging

    # A terminal that does not answer textual-image's queries (a pty under script(1), an editor's shell) is
    # not an error: it logs a warning with a traceback, which Python's last-resort handler put on stderr.
    logging.getLogger("textual_image").addHandler(logging.NullHandler())
    if protocol == "kitty":
        from textual_image.renderable.tgp import Image
    elif protocol == "sixel":
        from textual_image.renderable.sixel import Image
    elif protocol == "blocks":
        from textual_image.renderable.halfcell import Image
    else:
        from textual_image.renderable import Image
    return Image


def _as_pil(plane_u8: Any) -> Any:
    from PIL import Image as PILImage

    return PILImage.fromarray(plane_u8)


def _picture(array: Any) -> Any:
    """A (C, H, W) float map as an 8-bit PIL image: RGB when it has 3 channels, else channel 0."""
    import numpy as np

    from .images import to_uint8

    if array.shape[0] == 3:
        return _as_pil(np.stack([to_uint8(c) for c in array], axis=-1))
    return _as_pil(to_uint8(array[0]))


def _image(Image: Any, picture: Any, width: int) -> Any:
    """``picture`` ``width`` cells wide, its height from its aspect (``auto``), but at least one row and at
    most :data:`MAX_ROWS` (half blocks: a cell is 1 pixel wide and 2 tall; graphics protocols are close)."""
    w, h = picture.size
    rows = width * h / w / 2
    if rows < 1.5:  # auto would round a 5000x3 strip to 0 rows, which textual-image cannot draw
        return Image(picture, width=width, height=1)
    if rows > MAX_ROWS:
        return Image(picture, width=max(1, round(MAX_ROWS * 2 * w / h)), height=MAX_ROWS)
    return Image(picture, width=width, height="auto")


def _label(title: str, shape: list[int], channels_note: str, width: int = 24) -> Text:
    """Title and shape, wrapped between words to about the picture's width (so pictures sit side by side)."""
    import textwrap

    lines = textwrap.wrap(title, max(width, 16), break_long_words=False, break_on_hyphens=False) or [""]
    return Text.assemble(("\n".join(lines), "bold"), "\n", ("x".join(map(str, shape)), "cyan"), channels_note)


def panels(record: dict[str, Any], out_dir: Path, input_map: Any, console: Console, protocol: str = "auto") -> RenderableType:
    """The input and each stage of one run record, labelled, side by side (wrapping), at relative scale.

    ``input_map`` is the (C, H, W) float image the stack read. The input is
    drawn a third of the terminal wide (16 to 64 cells); every stage at
    ``its width / input width`` of that, so a 2x2 pool is half as wide.
    """
    import numpy as np
    from rich.columns import Columns

    Image = image_class(protocol)
    width_cells = max(16, min(console.width // 3, 64))
    in_h, in_w = input_map.shape[-2:]
    width_cells = max(1, min(width_cells, int(MAX_ROWS * 2 * in_w / in_h)))  # a tall input fits MAX_ROWS
    shown = [("input", list(input_map.shape), input_map)]
    for stage in record["stages"]:
        shown.append((f"{stage['index']} {stage['spec']}", stage["shape"], np.load(out_dir / stage["npy"], mmap_mode="r")))
    cells: list[RenderableType] = []
    for title, shape, array in shown:
        array = np.asarray(array)
        note = "" if array.shape[0] in (1, 3) else f" (channel 0 of {array.shape[0]})"
        width = max(MIN_CELLS, round(width_cells * array.shape[-1] / in_w))
        cells.append(Group(_label(title, shape, note, width), _image(Image, _picture(array), width)))
    return Group(Text(printable_name(record["path"]), style="bold"), Columns(_aligned(cells), padding=(1, 2)))


def run_preview(report: dict[str, Any], out_dir: Path, console: Console, protocol: str = "auto",
                max_inputs: int = 3) -> list[RenderableType]:
    """What ``poolcli run --preview`` prints: :func:`panels` for the first ``max_inputs`` inputs."""
    from .images import load_image

    shown: list[RenderableType] = []
    for record in report["inputs"][:max_inputs]:
        x = load_image(record["path"], report["color"], max_pixels=report.get("max_pixels"),
                       max_frames=report.get("max_frames"), nan="zero")
        shown.append(panels(record, out_dir, x, console, protocol))
    if len(report["inputs"]) > max_inputs:
        shown.append(Text(f"(preview of the first {max_inputs} of {len(report['inputs'])} inputs)", style="dim"))
    return shown


def _worst_shift(records: list[dict[str, Any]], label: str, method: str) -> tuple[list[int], float | None]:
    """The shift with the largest equiv_rel_l2 at the last stage of ``method`` for input ``label``."""
    rows = [r for r in records if r["input"] == label and r["method"] == method]
    last = max((r["stage"] for r in rows), default=0)
    rows = [r for r in rows if r["stage"] == last and r["equiv_rel_l2"] is not None and any(r["shift"])]
    if not rows:
        return [0, 0], None
    worst = max(rows, key=lambda r: r["equiv_rel_l2"])  # the first non-zero shift when all are equal
    return worst["shift"], worst["equiv_rel_l2"]


def invariance_preview(report: dict[str, Any], console: Console, protocol: str = "auto") -> list[RenderableType]:
    """What ``poolcli invariance --preview`` prints: per method, the last stage's map of the first input
    beside the map of the input shifted by the method's worst shift (largest ``equiv_rel_l2``)."""
    import numpy as np
    from rich.columns import Columns

    from .images import load_image
    from .invariance import circular_shift, crop_pair
    from .jobs.invariance import crop_to_stride
    from .stack import apply_stack, parse_stack

    if not report["records"]:
        return []
    label = report["records"][0]["input"]
    x = load_image(label, report.get("color", "gray"), max_pixels=report.get("max_pixels"),
                   max_frames=report.get("max_frames"), nan="zero")
    stacks = [(m, parse_stack(spec)) for m, spec in report["methods"].items()]
    circular = report["shift_mode"] == "circular"
    reach = max(max(abs(dy), abs(dx)) for dy, dx in report["shifts"])
    x = crop_to_stride(x, stacks) if circular else x
    base = x if circular else crop_pair(x, 0, 0, reach)[0]
    Image = image_class(protocol)
    width = max(12, min(console.width // 4 - 2, 40))
    cells: list[RenderableType] = []
    for method, st in stacks:
        (dy, dx), err = _worst_shift(report["records"], label, method)
        shifted = circular_shift(x, dy, dx) if circular else crop_pair(x, dy, dx, reach)[1]
        with np.errstate(all="ignore"):
            fx, ftx = apply_stack(base, st)[-1], apply_stack(shifted, st)[-1]
        note = "" if err is None else f"  equiv_rel_l2 {err:.3g}"
        for title, m in ((f"{method}: f(x)", fx), (f"{method}: f(x shifted {dy},{dx}){note}", ftx)):
            cells.append(Group(_label(title, list(m.shape), "", width), _image(Image, _picture(m), width)))
    return [Text(printable_name(label), style="bold"), Columns(_aligned(cells), padding=(1, 2))]


def _aligned(cells: list[Any]) -> list[Any]:
    """Labels padded to the same number of lines, so that the pictures of a row start on one line."""
    labels = [c.renderables[0] for c in cells]
    lines = max(len(t.plain.splitlines()) for t in labels)
    for t in labels:
        t.append("\n" * (lines - len(t.plain.splitlines())))
    return cells


def printable_name(label: str) -> str:
    from .report import printable

    return printable(label)
