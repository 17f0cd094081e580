"""From paths to records: input discovery, output naming, one image through a stack, resume markers.

``run_one`` is the whole single-image pipeline: load (with the NaN policy and
the pixel / frame limits of the options), run every stage, then write each
stage's ``.npy`` and PNGs, the unpool map of every plain max-pooling stage and
the montage (atomically; nothing is written for an input that fails), and
return the record that ``report.json`` stores. ``invariance_one`` is the same for the
shift-invariance metrics. ``run_task`` / ``invariance_task`` wrap them for a
worker process (or a Dask worker): they never raise for a bad input, they
return a small outcome dict, and they write the input's completion marker
last, so that ``--resume`` can trust it. Nothing here prints; the CLI does.

Completion markers (what ``--resume`` trusts)
--------------------------------------------
``run``: ``<out>/<out_rel>/record.json``; ``invariance``:
``<out>/invariance-records/<out_rel>.json``. Each holds
``{"fingerprint": ..., "record"|"records": ...}``; the fingerprint is a
SHA-256 of the poolcli version, the command, the canonical stack and every
option that changes an output, the input's path, size and mtime, and its
output folder. A marker is deleted before an input's outputs are rewritten
and written (atomically) after the last of them, so it exists only beside a
complete set of outputs of exactly these options.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from .errors import InputError, OutputError, PoolcliError, UsageError
from .outputs import atomic_write_bytes, inside, safe_name, save_json, save_npy
from .stack import Stack, apply_stage

__all__ = [
    "RunOptions",
    "InvarianceOptions",
    "InputItem",
    "Discovery",
    "discover",
    "scan",
    "run_one",
    "invariance_one",
    "run_task",
    "invariance_task",
    "fingerprint",
    "load_marker",
    "marker_path",
    "previous_outputs",
    "stage_facts",
]

RUN_MARKER = "record.json"
_MONTAGE_TILE = 256  # images.montage's default tile height; larger maps are subsampled there
INVARIANCE_MARKERS = "invariance-records"


@dataclass(frozen=True)
class RunOptions:
    stack: Stack
    out_dir: Path
    color: str = "gray"
    dense_units: int = 128
    png: bool = True
    montage: bool = True
    unpool: bool = True  # an unpool map per max-pooling stage
    nan: str = "error"  # images.load_image's NaN policy
    max_pixels: int | None = None
    max_frames: int | None = None


@dataclass(frozen=True)
class InputItem:
    path: Path  # the file to read
    out_rel: Path  # its output folder, relative to --out
    display: str = ""  # the path as reports show it (default: str(path))

    @property
    def label(self) -> str:
        return self.display or str(self.path)


@dataclass
class Discovery:
    """What a scan of the PATH arguments found."""

    items: list[InputItem]
    skipped: int = 0  # files in folders that are not images (or do not match --glob)
    folders: bool = False  # at least one PATH was a folder


def _out_name(name: str) -> str:
    """``cat.png`` -> ``cat_png``: distinct for cat.png and cat.jpg, never a dot-name."""
    return safe_name(name.replace(".", "_"))


def _matches(rel: str, name: str, globs: Sequence[str] | None, extensions: Iterable[str]) -> bool:
    """Case-insensitive: a pattern with a '/' matches the path relative to the folder, else the name."""
    if not globs:
        return os.path.splitext(name)[1].lower() in extensions
    for g in globs:
        g = g.lower()
        target = rel.lower() if "/" in g else name.lower()
        if fnmatch.fnmatchcase(target, g):
            return True
    return False


def _image_files(
    root: Path,
    recursive: bool,
    globs: Sequence[str] | None,
    seen: set[tuple[int, int]],
    skipped: list[int],
) -> Iterator[Path]:
    """Files under ``root`` in sorted order; folders reached twice (symlink loops) are walked once."""
    from .images import IMAGE_EXTENSIONS

    def walk(folder: Path, rel: str) -> Iterator[Path]:
        try:
            st = folder.stat()
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a symlink loop, a folder reached twice, or --out itself
            return
        seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            p = Path(e.path)
            r = f"{rel}{e.name}"
            try:
                is_dir = e.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if recursive:
                    yield from walk(p, r + "/")
            elif _matches(r, e.name, globs, IMAGE_EXTENSIONS):
                yield p
            else:
                skipped[0] += 1

    yield from walk(root, "")


def scan(
    paths: Sequence[Path],
    recursive: bool = True,
    globs: Sequence[str] | None = None,
    exclude: Sequence[Path] = (),
) -> Discovery:
    """Expand files and folders into inputs with distinct output folders.

    A file given by name is always an input and gets ``<name>_<ext>/``; files
    found in a folder (recursively unless ``recursive=False``) are inputs when
    their extension is one Pillow reads (or, with ``globs``, when their name
    matches one of the patterns, case-insensitively) and mirror the folder's
    tree (prefixed with the folder's name when several paths are given); the
    other files are counted in ``skipped``. Folders in ``exclude`` (--out) are
    never entered. A path that does not exist stays in the list, so that it
    fails with its own message and the others still run.

    Output folders are unique, also on a case-insensitive file system:
    ``a/cat.png`` and ``b/cat.png`` mirror their folders, ``cat.png`` and
    ``cat.jpg`` become ``cat_png`` and ``cat_jpg``, and ``CAT.png`` beside
    ``cat.png`` becomes ``cat_png-2``.
    """
    items: list[InputItem] = []
    several = len(paths) > 1
    seen: set[tuple[int, int]] = set()
    for ex in exclude:
        try:
            st = Path(ex).stat()
            seen.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    skipped = [0]
    folders = False
    for p in paths:
        p = Path(p)
        if p.is_dir():
            folders = True
            prefix = Path(_out_name(p.resolve().name or "root")) if several else Path()
            for f in _image_files(p, recursive, globs, seen, skipped):
                rel = f.relative_to(p)
                parts = [_out_name(part) for part in rel.parts]
                items.append(InputItem(f, prefix.joinpath(*parts)))
        else:
            items.append(InputItem(p, Path(_out_name(p.name))))
    # Two inputs never share an output folder (compared case-insensitively).
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
    return Discovery(unique, skipped[0], folders)


def discover(paths: list[Path], recursive: bool = True, globs: Sequence[str] | None = None) -> list[InputItem]:
    """The inputs of :func:`scan`, without the counts."""
    return scan(paths, recursive, globs).items


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


def _load(item: InputItem, opts: RunOptions | InvarianceOptions):
    from . import images

    return images.load_image(
        item.path, opts.color, max_pixels=opts.max_pixels, max_frames=opts.max_frames, nan=opts.nan
    )


def unpool_geometry(stage) -> dict | None:
    """The max-pooling parameters of ``stage`` when it gets an unpool map, else None.

    Plain max pooling only: one ``max`` op with the default padding mode and
    dilation 1 (what ``max_pool2d_with_indices`` / ``max_unpool2d`` describe).
    """
    if stage.kind != "pool" or len(stage.ops) != 1:
        return None
    op = stage.ops[0]
    if op.name != "max" or op.get("padding_mode") != "default" or tuple(op.get("dilation")) != (1, 1):
        return None
    return {key: op.get(key) for key in ("size", "stride", "padding", "ceil_mode")}


def unpool_map(x, geometry: dict):
    """The input ``x`` (C, H, W) of a max stage with every kept maximum in place, zeros elsewhere.

    ``pool2d(x, "max", ..., return_indices=True)`` then
    ``unpool2d(out, idx, size, stride, padding, output_size=(H, W))``.
    """
    from .pooling import pool2d
    from .pooling_family import unpool2d

    g = geometry
    out, idx = pool2d(x, "max", g["size"], g["stride"], g["padding"], 1, g["ceil_mode"], return_indices=True)
    return unpool2d(out, idx, g["size"], g["stride"], g["padding"], output_size=tuple(x.shape[-2:]))


def run_one(item: InputItem, opts: RunOptions) -> dict:
    """Run the stack on one image and write its outputs; return its report record.

    Every stage is computed before anything is written, so an input that fails
    (unreadable, or too small for a pooling window) leaves no files behind.
    For each plain max-pooling stage (see :func:`unpool_geometry`) an unpool
    map is written too (``stageNN_<name>_unpool.npy`` and ``_unpool_c<k>.png``,
    the record's ``unpool_npy`` and ``unpool_png``) unless ``opts.unpool`` is
    false; the montage shows it after the stage when it fits without
    subsampling (at most 256 rows and 1024 columns).

    Raises :class:`~poolcli.errors.InputError` for an unreadable image or one
    the stack cannot process (e.g. smaller than a pooling window).
    """
    import numpy as np

    from . import images

    x = source = _load(item, opts)
    input_shape = tuple(int(v) for v in x.shape)
    out_dir = opts.out_dir / item.out_rel
    computed = []  # (index, stage, output, unpool map or None)
    for index, stage in enumerate(opts.stack.stages, start=1):
        try:
            with np.errstate(all="ignore"):
                y = np.ascontiguousarray(apply_stage(x, stage), dtype=np.float32)
                geometry = unpool_geometry(stage) if opts.unpool else None
                unpooled = None
                if geometry is not None:
                    unpooled = np.ascontiguousarray(unpool_map(x, geometry), dtype=np.float32)
        except PoolcliError:
            raise
        except ValueError as exc:
            raise InputError(item.path, f"stage {index} ({stage}): {exc}") from None
        computed.append((index, stage, y, unpooled))
        x = y

    def write_maps(stem: str, maps) -> tuple[str, list[str]]:
        npy = out_dir / f"{stem}.npy"
        save_npy(npy, maps)
        pngs = []
        if opts.png:
            for c in range(maps.shape[0]):
                png = out_dir / f"{stem}_c{c}.png"
                atomic_write_bytes(png, images.encode_png(images.to_uint8(maps[c])))
                pngs.append(png.relative_to(opts.out_dir).as_posix())
        return npy.relative_to(opts.out_dir).as_posix(), pngs

    stages = []
    panels = []
    for index, stage, y, unpooled in computed:
        stem = f"stage{index:02d}_{safe_name(stage.name, 40)}"
        npy_rel, pngs = write_maps(stem, y)
        rec = {
            "index": index,
            "name": stage.name,
            "spec": str(stage),
            "stride": list(stage.stride()),
            **stage_facts(y.shape, input_shape, opts.dense_units),
            "npy": npy_rel,
            "png": pngs,
        }
        shape_txt = "x".join(str(v) for v in y.shape)
        panels.append((f"{index}: {stage.name} {shape_txt}", y))
        if unpooled is not None:
            rec["unpool_npy"], rec["unpool_png"] = write_maps(f"{stem}_unpool", unpooled)
            if unpooled.shape[-2] <= _MONTAGE_TILE and unpooled.shape[-1] <= 4 * _MONTAGE_TILE:
                # only where the montage shows it pixel for pixel: subsampled, a sparse map would lie
                panels.append((f"{index}: unpool", unpooled))
        stages.append(rec)
    record = {
        "path": item.label,
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
    nan: str = "error"  # images.load_image's NaN policy
    max_pixels: int | None = None
    max_frames: int | None = None


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


def crop_to_stride(x, stacks: list[tuple[str, Stack]]):
    """Crop (bottom/right) to a multiple of every stack's total stride.

    A circular shift of an image whose size is not a multiple of the total
    stride wraps off the pooling grid (a 427-row photo through a stride-2
    pool: the wrapped row pairs were never pooled together), so even shifts
    by multiples of the stride would not only move the maps. Measured on
    such a photo: equiv_rel_l2 0.13 at a 2-pixel shift before, 0 after.
    """
    import math

    import numpy as np

    sy = sx = 1
    for _, st in stacks:
        if st.stages:
            ty, tx = _total_strides(st)[-1]
            sy, sx = math.lcm(sy, ty), math.lcm(sx, tx)
    h, w = x.shape[-2:]
    hh, ww = h - h % sy, w - w % sx
    if (hh, ww) == (h, w) or hh == 0 or ww == 0:
        return x
    return np.ascontiguousarray(x[..., :hh, :ww])


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

    x = _load(item, opts)
    circular = opts.shift_mode == "circular"
    records: list[dict] = []
    stacks = method_stacks(opts)
    try:
        if circular:
            x = crop_to_stride(x, stacks)
            base = x
        else:
            m = max(max(abs(dy), abs(dx)) for dy, dx in opts.shifts)
            base = crop_pair(x, 0, 0, m)[0]
        for method, st in stacks:
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
                                "input": item.label,
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


# ----------------------------------------------------------------------------- resume markers and tasks


def options_key(opts: RunOptions | InvarianceOptions) -> dict[str, Any]:
    """Every option that changes an input's outputs, as plain JSON values (``out_dir`` excluded)."""
    if isinstance(opts, RunOptions):
        return {
            "command": "run",
            "stack": str(opts.stack),
            "color": opts.color,
            "dense_units": opts.dense_units,
            "png": opts.png,
            "montage": opts.montage,
            "unpool": opts.unpool,
            "nan": opts.nan,
            "max_pixels": opts.max_pixels,
            "max_frames": opts.max_frames,
        }
    return {
        "command": "invariance",
        "stack": str(opts.stack),
        "shifts": [list(s) for s in opts.shifts],
        "methods": list(opts.methods),
        "shift_mode": opts.shift_mode,
        "color": opts.color,
        "nan": opts.nan,
        "max_pixels": opts.max_pixels,
        "max_frames": opts.max_frames,
    }


def fingerprint(item: InputItem, key: dict[str, Any]) -> str | None:
    """SHA-256 of version, options, the input's path/size/mtime and output folder; None if unreadable."""
    from . import __version__

    try:
        st = os.stat(item.path)
    except OSError:
        return None
    doc = {
        "poolcli_version": __version__,
        "options": key,
        "input": os.path.abspath(item.path),
        "label": item.label,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "out_rel": item.out_rel.as_posix(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def marker_path(out_dir: Path, item: InputItem, command: str) -> Path:
    """Where the completion marker of ``item`` lives (see the module docstring)."""
    if command == "run":
        return out_dir / item.out_rel / RUN_MARKER
    rel = item.out_rel
    return out_dir / INVARIANCE_MARKERS / rel.with_name(rel.name + ".json")


def load_marker(out_dir: Path, item: InputItem, command: str, fp: str | None) -> Any:
    """The cached record(s) of ``item`` when its marker matches ``fp`` (and, for run, its files exist)."""
    if fp is None:
        return None
    path = marker_path(out_dir, item, command)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("fingerprint") != fp:
        return None
    if command == "run":
        rec = doc.get("record")
        if not isinstance(rec, dict):
            return None
        files = [s.get("npy") for s in rec.get("stages", [])]
        files += [png for s in rec.get("stages", []) for png in s.get("png", [])]
        files += [s.get("unpool_npy") for s in rec.get("stages", [])]
        files += [png for s in rec.get("stages", []) for png in s.get("unpool_png", [])]
        files.append(rec.get("montage"))
        for f in files:
            if f is not None and not (out_dir / f).is_file():
                return None
        return rec
    recs = doc.get("records")
    return recs if isinstance(recs, list) else None


def previous_outputs(out_dir: Path, items: Sequence[InputItem], command: str) -> str | None:
    """What in ``out_dir`` a run of ``command`` on ``items`` would overwrite (None: nothing)."""
    report = out_dir / ("report.json" if command == "run" else "invariance.json")
    if report.exists():
        return report.name
    for it in items:
        m = marker_path(out_dir, it, command)
        if m.exists():
            return m.relative_to(out_dir).as_posix()
        if command == "run":
            d = out_dir / it.out_rel
            try:
                if any(f.is_file() for f in d.iterdir()):
                    return d.relative_to(out_dir).as_posix() + "/"
            except OSError:
                pass
    return None


def _task(item: InputItem, opts: RunOptions | InvarianceOptions, fp: str | None, out_dir: Path) -> dict[str, Any]:
    command = "run" if isinstance(opts, RunOptions) else "invariance"
    marker = marker_path(out_dir, item, command)
    if not inside(out_dir, marker.parent if command == "run" else marker):
        return {"ok": False, "error": f"output folder {item.out_rel.as_posix()} would leave --out"}
    try:
        marker.unlink(missing_ok=True)  # outputs are about to change: the old marker no longer vouches
        if command == "run":
            result: Any = run_one(item, opts)  # type: ignore[arg-type]
            doc: dict[str, Any] = {"fingerprint": fp, "record": result}
        else:
            result = invariance_one(item, opts)  # type: ignore[arg-type]
            doc = {"fingerprint": fp, "records": result}
        if fp is not None:
            save_json(marker, doc)  # last, atomically
    except InputError as exc:
        return {"ok": False, "error": exc.reason}
    except OutputError as exc:  # disk full, permissions: the batch cannot go on
        return {"fatal": str(exc)}
    except PoolcliError as exc:
        return {"ok": False, "error": str(exc)}
    except MemoryError:
        return {"ok": False, "error": "out of memory"}
    except OSError as exc:
        return {"fatal": f"{marker.parent}: {exc.strerror or exc}"}
    except Exception as exc:  # a bug on one odd input must not stop 10,000 others
        return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
    return {"ok": True, "result": result}


def run_task(item: InputItem, opts: RunOptions, fp: str | None) -> dict[str, Any]:
    """:func:`run_one` for a worker: ``{"ok": True, "result": record}`` or ``{"ok": False, "error": reason}``.

    ``{"fatal": message}`` when an output cannot be written. Writes the
    completion marker last when ``fp`` is given.
    """
    return _task(item, opts, fp, opts.out_dir)


def invariance_task(item: InputItem, opts: InvarianceOptions, fp: str | None, out_dir: Path) -> dict[str, Any]:
    """:func:`invariance_one` for a worker; the marker caches the records under ``out_dir``."""
    return _task(item, opts, fp, out_dir)
