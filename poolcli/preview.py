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


def available() -> bool:
    """Whether textual-image is installed."""
    try:
        import textual_image  # noqa: F401
    except ImportError:
        return False
    return True


def image_class(protocol: str = "auto") -> Any:
    """The textual-image renderable for ``protocol`` (``auto``: what the terminal answers it speaks)."""
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


def _label(title: str, shape: list[int], channels_note: str) -> Text:
    return Text.assemble((title, "bold"), "\n", ("x".join(map(str, shape)), "cyan"), channels_note)


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
    in_w = input_map.shape[-1]
    shown = [("input", list(input_map.shape), input_map)]
    for stage in record["stages"]:
        shown.append((f"{stage['index']} {stage['spec']}", stage["shape"], np.load(out_dir / stage["npy"], mmap_mode="r")))
    cells: list[RenderableType] = []
    for title, shape, array in shown:
        array = np.asarray(array)
        note = "" if array.shape[0] in (1, 3) else f" (channel 0 of {array.shape[0]})"
        width = max(MIN_CELLS, round(width_cells * array.shape[-1] / in_w))
        cells.append(Group(_label(title, shape, note), Image(_picture(array), width=width, height="auto")))
    return Group(Text(str(record["path"]), style="bold"), Columns(cells, padding=(1, 2)))


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
