"""From paths to records: input discovery, output naming, and one image through a stack.

``run_one`` is the whole single-image pipeline: load, run every stage, write
each stage's ``.npy`` and PNGs and the montage (atomically), and return the
record that ``report.json`` stores. Nothing here prints; the CLI does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import InputError, PoolcliError, UsageError
from .outputs import atomic_write_bytes, safe_name, save_npy
from .stack import Stack, apply_stage

__all__ = ["RunOptions", "InputItem", "discover", "run_one", "stage_facts"]


@dataclass(frozen=True)
class RunOptions:
    stack: Stack
    out_dir: Path
    color: str = "gray"
    dense_units: int = 128
    png: bool = True
    montage: bool = True


@dataclass(frozen=True)
class InputItem:
    path: Path  # the file to read
    out_rel: Path  # its output folder, relative to --out


def _out_name(name: str) -> str:
    """``cat.png`` -> ``cat_png``: distinct for cat.png and cat.jpg, never a dot-name."""
    return safe_name(name.replace(".", "_"))


def _image_files(root: Path, recursive: bool) -> Iterator[Path]:
    from .images import IMAGE_EXTENSIONS

    seen: set[tuple[int, int]] = set()

    def walk(folder: Path) -> Iterator[Path]:
        try:
            st = folder.stat()
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a symlink loop, or a folder reached twice
            return
        seen.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            p = Path(e.path)
            if e.is_dir(follow_symlinks=True):
                if recursive:
                    yield from walk(p)
            elif p.suffix.lower() in IMAGE_EXTENSIONS:
                yield p

    yield from walk(root)


def discover(paths: list[Path], recursive: bool = True) -> list[InputItem]:
    """Expand files and folders into inputs with distinct output folders.

    A file given by name gets ``<name>_<ext>/``; files found in a folder mirror
    the folder's tree (prefixed with the folder's name when several paths are
    given). A path that does not exist stays in the list, so that it fails
    with its own message and the others still run.
    """
    items: list[InputItem] = []
    several = len(paths) > 1
    for p in paths:
        if p.is_dir():
            prefix = Path(_out_name(p.resolve().name or "root")) if several else Path()
            for f in _image_files(p, recursive):
                rel = f.relative_to(p)
                parts = [_out_name(part) for part in rel.parts]
                items.append(InputItem(f, prefix.joinpath(*parts)))
        else:
            items.append(InputItem(p, Path(_out_name(p.name))))
    # Two inputs never share an output folder.
    used: set[str] = set()
    unique = []
    for it in items:
        rel = it.out_rel
        key = rel.as_posix().lower()
        n = 2
        while key in used:
            rel = it.out_rel.with_name(f"{it.out_rel.name}-{n}")
            key = rel.as_posix().lower()
            n += 1
        used.add(key)
        unique.append(InputItem(it.path, rel))
    return unique


def stage_facts(shape: tuple[int, ...], input_shape: tuple[int, ...], dense_units: int) -> dict:
    """Elements, memory, spatial reduction and downstream dense parameters of one map."""
    c, h, w = (int(v) for v in shape)
    elements = c * h * w
    return {
        "shape": [c, h, w],
        "elements": elements,
        "bytes": elements * 4,
        "reduction": (input_shape[1] * input_shape[2]) / (h * w),
        "dense_params": elements * dense_units + dense_units,
    }


def run_one(item: InputItem, opts: RunOptions) -> dict:
    """Run the stack on one image and write its outputs; return its report record.

    Raises :class:`~poolcli.errors.InputError` for an unreadable image or one
    the stack cannot process (e.g. smaller than a pooling window).
    """
    import numpy as np

    from . import images

    x = source = images.load_image(item.path, opts.color)
    input_shape = tuple(int(v) for v in x.shape)
    out_dir = opts.out_dir / item.out_rel
    stages = []
    panels = []
    for index, stage in enumerate(opts.stack.stages, start=1):
        try:
            with np.errstate(all="ignore"):
                x = np.ascontiguousarray(apply_stage(x, stage), dtype=np.float32)
        except PoolcliError:
            raise
        except ValueError as exc:
            raise InputError(item.path, f"stage {index} ({stage}): {exc}") from None
        stem = f"stage{index:02d}_{safe_name(stage.name, 40)}"
        npy = out_dir / f"{stem}.npy"
        save_npy(npy, x)
        pngs = []
        if opts.png:
            for c in range(x.shape[0]):
                png = out_dir / f"{stem}_c{c}.png"
                atomic_write_bytes(png, images.encode_png(images.to_uint8(x[c])))
                pngs.append(png.relative_to(opts.out_dir).as_posix())
        rec = {
            "index": index,
            "name": stage.name,
            "spec": str(stage),
            "stride": list(stage.stride()),
            **stage_facts(x.shape, input_shape, opts.dense_units),
            "npy": npy.relative_to(opts.out_dir).as_posix(),
            "png": pngs,
        }
        stages.append(rec)
        shape_txt = "x".join(str(v) for v in x.shape)
        panels.append((f"{index}: {stage.name} {shape_txt}", x))
    record = {
        "path": str(item.path),
        "out_dir": item.out_rel.as_posix(),
        "input_shape": list(input_shape),
        "input": stage_facts(input_shape, input_shape, opts.dense_units),
        "stages": stages,
    }
    if opts.montage:
        png = out_dir / "montage.png"
        atomic_write_bytes(png, images.montage(source, panels))
        record["montage"] = png.relative_to(opts.out_dir).as_posix()
    return record


def check_stack(stack: Stack) -> None:
    """Reject an empty stack before any work starts."""
    if not stack.stages:
        raise UsageError("the stack is empty: give --pool, --filter, --stack, --preset or --config")


# ----------------------------------------------------------------------------- invariance


@dataclass(frozen=True)
class InvarianceOptions:
    stack: Stack
    shifts: tuple[tuple[int, int], ...]
    methods: tuple[str, ...] = ()  # empty: the stack as given
    shift_mode: str = "circular"  # or "crop"
    color: str = "gray"


def method_stacks(opts: InvarianceOptions) -> list[tuple[str, Stack]]:
    """(method name, stack as measured) for every method compared."""
    from .stack import circular_stack, swap_pooling

    if opts.methods:
        pairs = [(m, swap_pooling(opts.stack, m)) for m in opts.methods]
    else:
        pools = [s.ops[0].name for s in opts.stack.stages if s.kind == "pool"]
        pairs = [("+".join(dict.fromkeys(pools)) or "stack", opts.stack)]
    if opts.shift_mode == "circular":
        pairs = [(m, circular_stack(st)) for m, st in pairs]
    return pairs


def _total_strides(stack: Stack) -> list[tuple[int, int]]:
    out, sy, sx = [], 1, 1
    for stage in stack.stages:
        a, b = stage.stride()
        sy, sx = sy * a, sx * b
        out.append((sy, sx))
    return out


def invariance_one(item: InputItem, opts: InvarianceOptions) -> list[dict]:
    """Shift-invariance records of one image: every method, stage and shift.

    ``f`` is the stack up to a stage; ``x`` the image and ``Tx`` its shifted
    copy (``np.roll`` in circular mode; in crop mode two equal crops whose
    offsets differ by the shift). See :func:`poolcli.invariance.compare`.
    """
    import numpy as np

    from . import images
    from .invariance import circular_shift, compare, crop_pair
    from .stack import apply_stack

    x = images.load_image(item.path, opts.color)
    circular = opts.shift_mode == "circular"
    records: list[dict] = []
    try:
        if circular:
            base = x
        else:
            m = max(max(abs(dy), abs(dx)) for dy, dx in opts.shifts)
            base = crop_pair(x, 0, 0, m)[0]
        for method, st in method_stacks(opts):
            strides = _total_strides(st)
            with np.errstate(all="ignore"):
                fx = apply_stack(base, st)
                for dy, dx in opts.shifts:
                    tx = circular_shift(x, dy, dx) if circular else crop_pair(x, dy, dx, m)[1]
                    ftx = apply_stack(tx, st)
                    for i, stage in enumerate(st.stages):
                        metrics = compare(fx[i], ftx[i], (dy, dx), strides[i], opts.shift_mode)
                        records.append(
                            {
                                "input": str(item.path),
                                "method": method,
                                "stage": i + 1,
                                "stage_name": stage.name,
                                "spec": str(stage),
                                "shift": [dy, dx],
                                **metrics,
                            }
                        )
    except PoolcliError:
        raise
    except ValueError as exc:
        raise InputError(item.path, str(exc)) from None
    return records
