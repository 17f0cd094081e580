"""A corpus of hostile and odd image files, generated (never stored as binaries).

``build(folder)`` writes every case and returns ``{name: expectation}``; an
expectation is ``"ok"`` (loads and runs), or ``"fail"`` (one line naming the
file, exit code 1, nothing else disturbed). Run as a script to write the
corpus to a folder and try it by hand::

    python tests/hostile.py /tmp/hostile && poolcli run /tmp/hostile --out /tmp/o
"""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

RNG = np.random.default_rng(2024)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header(w: int, h: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _rgb(h: int = 24, w: int = 32) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))


def build(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, str] = {}

    def put(name: str, data: bytes, expect: str) -> None:
        (folder / name).write_bytes(data)
        cases[name] = expect

    good_png = _save(_rgb(), "PNG")
    good_jpg = _save(_rgb(), "JPEG", quality=90)
    # --- broken: each must fail with one line -------------------------------------------
    put("zero-byte.png", b"", "fail")
    put("text.png", b"this is not an image\n" * 20, "fail")
    put("text.jpg", b"GIF89a? no, just text\n", "fail")
    put("html.png", b"<!doctype html><html><body>404</body></html>", "fail")
    put("png-cut-after-signature.png", good_png[:8], "fail")
    put("png-cut-after-header.png", good_png[:33], "fail")
    put("png-cut-in-half.png", good_png[: len(good_png) // 2], "fail")
    put("jpeg-cut-in-half.jpg", good_jpg[: len(good_jpg) // 2], "fail")
    idat = good_png.index(b"IDAT")
    bad_crc = bytearray(good_png)
    end = idat + 4 + struct.unpack(">I", good_png[idat - 4 : idat])[0]
    bad_crc[end] ^= 0xFF  # the IDAT checksum
    put("png-bad-idat-crc.png", bytes(bad_crc), "fail")
    put("png-0x0.png", _png_header(0, 0) + _png_chunk(b"IEND", b""), "fail")
    bomb_payload = _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + _png_chunk(b"IEND", b"")
    put("bomb-100000x100000.png", _png_header(100000, 100000) + bomb_payload, "fail")
    gif = _save(_rgb().convert("P"), "GIF")
    put("gif-truncated.gif", gif[: len(gif) // 3], "fail")
    bmp = _save(_rgb(), "BMP")
    put("bmp-header-only.bmp", bmp[:30], "fail")
    put("tiff-garbage.tif", b"II*\x00" + RNG.integers(0, 256, 200, dtype=np.uint8).tobytes(), "fail")
    webp = _save(_rgb(), "WEBP")
    put("webp-truncated.webp", webp[: len(webp) // 2], "fail")
    put("random-bytes.tiff", RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "fail")
    (folder / "a-folder.png").mkdir(exist_ok=True)
    cases["a-folder.png"] = "fail"
    fifo = folder / "fifo.png"
    if hasattr(os, "mkfifo"):
        if not fifo.exists():
            os.mkfifo(fifo)
        cases["fifo.png"] = "fail"
    put("one-pixel.png", _save(Image.new("L", (1, 1), 7), "PNG"), "fail")  # smaller than the 2x2 window
    nan = np.ones((16, 16), np.float32)
    nan[3, 4] = np.nan
    nan[5, 6] = np.inf
    put("float-nan.tif", _save(Image.fromarray(nan, mode="F"), "TIFF"), "fail")  # --nan error (default)

    # --- odd but fine: each must load, convert and run ----------------------------------
    frames = [Image.fromarray(np.full((20, 24), i % 256, np.uint8)).convert("P") for i in range(1000)]
    put("gif-1000-frames.gif", _save(frames[0], "GIF", save_all=True, append_images=frames[1:]), "ok")
    apng = [_rgb(16, 16) for _ in range(3)]
    put("animated.png", _save(apng[0], "PNG", save_all=True, append_images=apng[1:]), "ok")
    pages = [Image.fromarray(RNG.integers(0, 256, (18, 22), dtype=np.uint8)) for _ in range(3)]
    put("multi-page.tif", _save(pages[0], "TIFF", save_all=True, append_images=pages[1:]), "ok")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW
    put("exif-rotated.jpg", _save(_rgb(20, 36), "JPEG", exif=exif.tobytes()), "ok")
    put("16-bit.png", _save(Image.fromarray(RNG.integers(0, 65536, (20, 20), dtype=np.uint16)), "PNG"), "ok")
    put("i16.tif", _save(Image.fromarray(RNG.integers(0, 65536, (20, 20), dtype=np.uint16)), "TIFF"), "ok")
    put("int32.tif", _save(Image.fromarray(RNG.integers(-(2**20), 2**20, (20, 20), dtype=np.int32), mode="I"), "TIFF"), "ok")
    put("float32.tif", _save(Image.fromarray(RNG.standard_normal((20, 20)).astype(np.float32), mode="F"), "TIFF"), "ok")
    put("cmyk.jpg", _save(_rgb().convert("CMYK"), "JPEG"), "ok")
    put("palette-transparent.png", _save(_rgb().convert("P"), "PNG", transparency=3), "ok")
    put("la.png", _save(_rgb().convert("LA"), "PNG"), "ok")
    put("mode-1.png", _save(_rgb().convert("1"), "PNG"), "ok")
    put("constant.png", _save(Image.new("L", (16, 16), 128), "PNG"), "ok")
    put("rgba.webp", _save(_rgb().convert("RGBA"), "WEBP", lossless=True), "ok")
    put("tiny-2x2.bmp", _save(Image.new("RGB", (2, 2), (1, 2, 3)), "BMP"), "ok")
    # hostile names: they must stay inside --out and stay distinct
    put("café ☕.png", good_png, "ok")
    put("..dots.png", good_png, "ok")
    put(("long-" * 45) + ".png", good_png, "ok")
    put("Same.png", good_png, "ok")
    put("same.PNG", good_png, "ok")
    return cases


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile")
    for name, expect in sorted(build(out).items()):
        print(f"{expect:4}  {name}")
