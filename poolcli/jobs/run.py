"""The ``run`` job: every stage's maps of each input, a montage, then report.json and shapes.csv.

:func:`run_one` is the whole single-image pipeline: load (with the NaN policy
and the pixel / frame limits of the options), run every stage, then write each
stage's ``.npy`` and PNGs, the unpool map of every plain max-pooling stage and
the montage (atomically; nothing is written for an input that fails), and
return the record that ``report.json`` stores. :class:`RunJob` (also known as
``RunOptions``) is the job: its options, where its marker lives
(``<out>/<out_rel>/record.json``, beside the maps it vouches for) and how its
report is assembled.

Imports: :mod:`poolcli.jobs.base`, :mod:`poolcli.batch` (``InputItem``),
:mod:`poolcli.outputs`, :mod:`poolcli.stack`, :mod:`poolcli.errors`; lazily
numpy, :mod:`poolcli.images`, :mod:`poolcli.pooling` (unpool maps) and
:mod:`poolcli.report` (the CSV rows). Nothing here prints.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Optional

from ..batch import InputItem
from ..errors import InputError, PoolcliError, UsageError
from ..outputs import atomic_write, name_fields, raw_name, safe_name, save_csv, save_json, save_npy
from ..stack import Stack, apply_stage
from .base import files_key, Job, JobOutcome, load_input

__all__ = [
    "RunJob",
    "RunOptions",
    "run_one",
    "stage_facts",
    "unpool_geometry",
    "unpool_map",
    "check_stack",
    "RUN_MARKER",
]

RUN_MARKER = "record.json"


@dataclass(frozen=True)
class RunJob(Job):
    """``poolcli run``: the options that shape each input's outputs (``out_dir`` is set per task)."""

    name: ClassVar[str] = "run"
    report_name: ClassVar[str] = "report.json"

    stack: Stack
    out_dir: Optional[Path] = None  # where run_one writes; the executor gives each task --out
    color: str = "gray"
    dense_units: int = 128
    png: bool = True
    montage: bool = True
    unpool: bool = True  # an unpool map per max-pooling stage (indices + PNG)
    unpool_dense: bool = False  # also the dense full-size unpool map as .npy (unpool_npy)
    nan: str = "error"  # images.load_image's NaN policy
    max_pixels: Optional[int] = None
    max_frames: Optional[int] = None
    normalize: str = "per-map"  # the montage's scale: per-map or shared (per channel row)
    zoom: Optional[str] = None  # the montage's zoom region "x,y,w,h"; None: chosen per input
    html: bool = False  # report.html: only the report, not in options_key
    max_memory: Optional[int] = None  # bytes for the run (None: half the memory available); not fingerprinted
    memory_share: int = 1  # inputs processed at once (set by execute): each gets max_memory / memory_share

    def options_key(self) -> dict[str, Any]:
        return {
            "command": self.name,
            "stack": str(self.stack),
            "color": self.color,
            "dense_units": self.dense_units,
            "png": self.png,
            "montage": self.montage,
            "unpool": self.unpool,
            # how unpool maps are stored (int32 indices since 0.1.0+; older markers are redone)
            **({"unpool_store": "indices+dense" if self.unpool_dense else "indices"} if self.unpool else {}),
            "nan": self.nan,
            "max_pixels": self.max_pixels,
            "max_frames": self.max_frames,
            **files_key(self.stack),
            # the montage's options, only when not the default (older markers stay valid)
            **({"normalize": self.normalize} if self.normalize != "per-map" else {}),
            **({"zoom": self.zoom} if self.zoom is not None else {}),
        }

    def check(self) -> None:
        """--zoom must be x,y,w,h; --html needs jinja2 (one line, exit 2)."""
        from ..html import check_html
        from ..images import parse_zoom

        try:
            parse_zoom(self.zoom)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if self.html:
            check_html()

    def produce(self, item: InputItem, out_dir: Path) -> dict:
        """One input's outputs. An input folder left by an earlier run (``--force``, or ``--resume`` of a
        mismatched input) is replaced whole: the new set is written beside it, swapped in, the old one
        removed, so the folder never mixes two runs' files."""
        folder = out_dir / item.out_rel
        if not folder.exists():
            return run_one(item, replace(self, out_dir=out_dir))
        staging = Path(tempfile.mkdtemp(prefix=".poolcli-new-", dir=out_dir))
        try:
            record = run_one(item, replace(self, out_dir=staging))
            old = Path(tempfile.mkdtemp(prefix=".poolcli-old-", dir=out_dir))
            os.replace(folder, old / "x")
            os.replace(staging / item.out_rel, folder)
            shutil.rmtree(old, ignore_errors=True)
            return record
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def marker_path(cls, out_dir: Path, item: InputItem) -> Path:
        return out_dir / item.out_rel / RUN_MARKER

    def result_from_marker(self, doc: dict[str, Any]) -> Any:
        rec = doc.get(self.marker_key)
        return rec if isinstance(rec, dict) else None

    def outputs_of(self, result: Any) -> list[str]:
        stages = result.get("stages", [])
        files = [s.get("npy") for s in stages]
        files += [png for s in stages for png in s.get("png", [])]
        files += [s.get("unpool_npy") for s in stages] + [s.get("unpool_indices") for s in stages]
        files += [png for s in stages for png in s.get("unpool_png", [])]
        files.append(result.get("montage"))
        return [f for f in files if f is not None]

    @classmethod
    def previous_output(cls, out_dir: Path, item: InputItem) -> str | None:
        d = out_dir / item.out_rel
        try:
            if any(f.is_file() for f in d.iterdir()):
                return d.relative_to(out_dir).as_posix() + "/"
        except OSError:
            pass
        return None

    def finish(self, outcome: JobOutcome) -> dict[str, Any]:
        """report.json and shapes.csv."""
        from ..report import SHAPES_CSV_HEADER, shapes_csv_rows
        from .. import __version__

        out_dir = outcome.out_dir
        records = outcome.records
        # The seconds each input took in this run (None: resumed), in report.json only: record.json
        # markers and every map stay byte-identical from run to run.
        inputs = [{**outcome.results[i], "seconds": outcome.timings.get(i)} for i in sorted(outcome.results)]
        report = {
            "poolcli_version": __version__,
            "stack": str(self.stack),
            "color": self.color,
            "dense_units": self.dense_units,
            "nan": self.nan,
            "max_pixels": self.max_pixels,
            "max_frames": self.max_frames,
            "out_dir": outcome.out_name,
            "inputs": inputs,
            "failures": outcome.failures,
            "summary": outcome.counts,
            "interrupted": outcome.interrupted,
            "execution": outcome.execution,
        }
        save_json(out_dir / self.report_name, report)
        # The CSV holds each name's own bytes (a name that is not UTF-8 too): the file is the names' encoding.
        raw = [{**r, "path": raw_name(r)} if "path_bytes" in r else r for r in records]
        save_csv(out_dir / "shapes.csv", SHAPES_CSV_HEADER, shapes_csv_rows(raw))
        outcome.written += [self.report_name, "shapes.csv"]
        if self.html and not outcome.interrupted:
            from ..html import write_run_html

            outcome.written += write_run_html(out_dir, report)
        return report


RunOptions = RunJob  # the name cli.py and users know


def check_stack(stack: Stack) -> None:
    """Reject an empty stack before any work starts."""
    if not stack.stages:
        raise UsageError("the stack is empty: give --pool, --filter, --stack, --preset or --config")


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
    ``unpool2d(out, idx, size, stride, padding, output_size=(H, W))``: the
    dense map, whole (:func:`unpool_view` serves it in bands instead).
    """
    import numpy as np

    return np.asarray(unpool_view(x, geometry))


def unpool_view(x, geometry: dict):
    """The unpool map of a max stage as a :class:`~poolcli.pooling.torch_ops.UnpoolView`: its pooled values
    and int32 indices (pooled size), the dense (C, H, W) map served in bands of rows."""
    from ..pooling.torch_ops import UnpoolView, max_pool2d_with_indices

    g = geometry
    out, idx = max_pool2d_with_indices(x, g["size"], g["stride"], g["padding"], 1, g["ceil_mode"], int32=True)
    return UnpoolView(out, idx, g["size"], g["stride"], g["padding"], 1, tuple(x.shape[-2:]))


def compute_stages(item: InputItem, x, opts: RunJob) -> list[tuple]:
    """``(index, stage, output, unpool view or None)`` for every stage; nothing written yet."""
    import numpy as np

    computed = []
    for index, stage in enumerate(opts.stack.stages, start=1):
        try:
            with np.errstate(all="ignore"):
                geometry = unpool_geometry(stage) if opts.unpool else None
                unpooled = None
                if geometry is None:
                    y = np.ascontiguousarray(apply_stage(x, stage), dtype=np.float32)
                else:
                    # the pooling with indices gives the stage's maps too (both equal PyTorch's max_pool2d bit
                    # for bit: tests/test_golden.py, tests/test_fast_paths.py): pooled once, not twice
                    unpooled = unpool_view(x, geometry)
                    y = unpooled.values = np.ascontiguousarray(unpooled.values, dtype=np.float32)
        except PoolcliError:
            raise
        except ValueError as exc:
            raise InputError(item.path, f"stage {index} ({stage}): {exc}") from None
        computed.append((index, stage, y, unpooled))
        x = y
    return computed


def run_one(item: InputItem, opts: RunJob) -> dict:
    """Run the stack on one image and write its outputs under ``opts.out_dir``; return its report record.

    Every stage is computed before anything is written, so an input that fails
    (unreadable, or too small for a pooling window) leaves no files behind.
    For each plain max-pooling stage (see :func:`unpool_geometry`) an unpool
    map is written too (``stageNN_<name>_unpool.npy`` and ``_unpool_c<k>.png``,
    the record's ``unpool_npy`` and ``unpool_png``) unless ``opts.unpool`` is
    false; the montage shows it after the stage (reduced with the block
    maximum when large, so the kept values stay visible).

    Raises :class:`~poolcli.errors.InputError` for an unreadable image or one
    the stack cannot process (e.g. smaller than a pooling window).
    """
    from .. import images

    x = source = load_input(item, opts, [opts.stack])
    input_shape = tuple(int(v) for v in x.shape)
    if opts.montage and opts.zoom is not None:  # before anything is written: no montage without its region
        zx, zy = images.parse_zoom(opts.zoom)[:2]
        if zx >= input_shape[2] or zy >= input_shape[1]:
            raise InputError(item.path, f"--zoom {opts.zoom}: the region starts outside this "
                                        f"{input_shape[2]}x{input_shape[1]} image (x < {input_shape[2]}, "
                                        f"y < {input_shape[1]})")
    computed = compute_stages(item, x, opts)
    record = {
        **name_fields(item.label),  # "path" (and "path_bytes" for a name that is not UTF-8)
        "out_dir": item.out_rel.as_posix(),
        "input_shape": list(input_shape),
        "input": stage_facts(input_shape, input_shape, opts.dense_units),
    }
    with PngWriter() as pngs:  # the maps' PNGs are encoded while the next maps and the montage are made
        record["stages"], panels = write_stages(item, computed, input_shape, opts, pngs)
        if opts.montage:
            png = opts.out_dir / item.out_rel / "montage.png"
            names = input_channels(opts.color, source.shape[0])
            pngs.submit(png, *images.montage_canvas(source, panels, normalize=opts.normalize,
                                                    zoom=images.parse_zoom(opts.zoom), channel_names=names))
            record["montage"] = _rel(item, "montage.png")
    return record


def _rel(item: InputItem, name: str) -> str:
    """``name``'s path in ``item``'s output folder, relative to ``--out``, with ``/`` (what the records
    say): the strings ``(out / rel / name).relative_to(out).as_posix()`` gives, without its pathlib
    objects (a dozen per image)."""
    folder = item.out_rel.as_posix()
    return name if folder == "." else f"{folder}/{name}"


def _write_png(path: Path, pixels, palette=None) -> None:
    from .. import images

    atomic_write(path, lambda fh: images.write_png(fh, pixels, palette))


class PngWriter:
    """PNG encoding and writing on background threads (this process's share of the cores), one image at
    a time each; :meth:`submit` waits while they are all busy (memory: one uint8 image per thread).

    Pillow's encoder releases the GIL (two 4096x8192 encodes: 2.6 s in turn, 1.3 s on two threads,
    measured), so PNGs are encoded side by side while the next map's ``.npy`` and gray levels, and the
    montage, are made. Leaving the block waits for every PNG and raises the first error; after an exception
    (Ctrl-C included) the images not started are dropped and the one being written finishes whole.
    With one thread (this process's share of the cores is one core, e.g. ``--workers 2`` on two cores)
    each PNG is written at once, on the calling thread: a second thread on the same core only passed the
    GIL back and forth.
    """

    def __init__(self, threads: int | None = None):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        from .._threads import get_num_threads

        threads = threads or get_num_threads()  # this process's share of the cores (--threads)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="poolcli-png") if threads > 1 else None
        self._slots = threading.BoundedSemaphore(threads)
        self._futures: list = []

    def submit(self, path: Path, pixels, palette=None) -> None:
        """Encode ``pixels`` (uint8; with ``palette``, its indices: see :func:`poolcli.images.encode_png`) and
        write it to ``path``, atomically."""
        if self._pool is None:
            _write_png(path, pixels, palette)
            return
        self._slots.acquire()
        try:
            self._futures.append(self._pool.submit(self._write, path, pixels, palette))
        except BaseException:
            self._slots.release()
            raise

    def _write(self, path: Path, pixels, palette) -> None:
        try:
            _write_png(path, pixels, palette)
        finally:
            self._slots.release()

    def __enter__(self) -> "PngWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._pool is None:
            return
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)
        if exc_type is None:
            for f in self._futures:
                f.result()


def write_stages(item: InputItem, computed: list[tuple], input_shape: tuple, opts: RunJob,
                 pngs: PngWriter) -> tuple[list, list]:
    """Write every stage's maps (and unpool maps); return (the stage records, the montage panels)."""
    from .. import images

    out_dir = opts.out_dir / item.out_rel

    def write_maps(stem: str, maps, npy: bool = True) -> tuple[str | None, list[str]]:
        if npy:
            save_npy(out_dir / f"{stem}.npy", maps)
        written = []
        if opts.png:
            for c in range(maps.shape[0]):
                pngs.submit(out_dir / f"{stem}_c{c}.png", images.to_uint8(maps[c]))
                written.append(_rel(item, f"{stem}_c{c}.png"))
        return (_rel(item, f"{stem}.npy") if npy else None), written

    stages = []
    panels: list[tuple] = []
    names = input_channels(opts.color, input_shape[0])
    for index, stage, y, unpooled in computed:
        stem = f"stage{index:02d}_{safe_name(stage.name, 40)}"
        npy_rel, png_rels = write_maps(stem, y)
        rec = {
            "index": index,
            "name": stage.name,
            "spec": str(stage),
            "stride": list(stage.stride()),
            **stage_facts(y.shape, input_shape, opts.dense_units),
            "npy": npy_rel,
            "png": png_rels,
        }
        shape_txt = "x".join(str(v) for v in y.shape)
        before = names
        names = stage_channels(names, stage, y.shape[0])
        if unpooled is not None:
            rec.update(write_unpool(out_dir, f"{stem}_unpool", unpooled, npy_rel, write_maps, opts))
        panels += montage_panels(index, stage.name, shape_txt, y, names, unpooled, before)
        stages.append(rec)
    return stages, panels


def write_unpool(out_dir: Path, stem: str, view, npy_rel: str, write_maps, opts: RunJob) -> dict:
    """An unpool map as what it is: int32 indices at pooled size beside the stage's values, the PNG
    rendered in bands; the dense ``.npy`` (``unpool_npy``) only with ``opts.unpool_dense``."""
    rec = {}
    save_npy(out_dir / f"{stem}_indices.npy", view.indices)
    rec["unpool_indices"] = f"{npy_rel[: npy_rel.rfind('/') + 1]}{stem}_indices.npy"  # beside the values
    rec["unpool_values"] = npy_rel  # the stage's own maps are the pooled values (compute_stages)
    rec["unpool_shape"] = list(view.shape)
    if opts.unpool_dense:
        rec["unpool_npy"], rec["unpool_png"] = write_maps(stem, view)
    else:
        rec["unpool_png"] = write_maps(stem, view, npy=False)[1]
    return rec


# ----------------------------------------------------------------------------- montage panels

CHANNEL_NAMES = {1: ["gray"], 2: ["L", "A"], 3: ["R", "G", "B"], 4: ["R", "G", "B", "A"]}


def input_channels(color: str, channels: int) -> list[str]:
    """The names of the input's channels: gray, or R, G, B (and A with --color keep-alpha)."""
    if color == "gray" or channels == 1:
        return ["gray"]
    return CHANNEL_NAMES.get(channels, [f"c{k}" for k in range(channels)])


def stage_channels(names: list[str], stage, channels: int) -> list[str]:
    """The names of a stage's output channels from its input's: a filter bank names its filters
    (``sobel-x``, ``sobel-y``; ``R sobel-x`` ... on several input channels), a custom kernel ``c<k>``;
    stages that keep the channel count keep the names."""
    ops = [op.name for op in stage.ops]
    if stage.kind == "filter" and len(ops) > 1 and channels == len(ops) * len(names):
        if all(op == "conv" for op in ops):
            return [f"c{k}" for k in range(channels)]
        return [op if len(names) == 1 else f"{n} {op}" for op in ops for n in names]
    if stage.kind == "filter" and len(names) == 1 and channels == 1 and ops[0] != "conv":
        return [ops[0]]
    if channels == len(names):
        return names
    return [f"c{k}" for k in range(channels)]


def montage_panels(index: int, name: str, shape: str, y, names: list[str], unpooled, before: list[str]) -> list[tuple]:
    """The montage panels of one stage: its maps, then, for a max stage, its unpool map (always: the
    montage reduces it with the block maximum, so the kept values stay visible at any size)."""
    panels = [(f"{index}: {name} {shape}", y, {"channels": names})]
    if unpooled is not None:
        ushape = "x".join(str(v) for v in unpooled.shape)
        panels.append((f"{index}: unpool {ushape}", unpooled, {"channels": before, "unpool": True}))
    return panels
