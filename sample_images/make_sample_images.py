"""Generate the sample images in ``sample_images/``.

Deterministic (fixed seeds, no network, no time stamps): running it twice gives
byte-identical files. Usage, from the repository root::

    python sample_images/make_sample_images.py [OUT_DIR]

Files (all PNG, each asserted to be under 200 KB):

- ``checkerboard.png``: L, 256x256, 16 px squares.
- ``shapes.png``: RGB, 256x256, hard-edged circles, rectangles and triangles.
- ``gradient.png``: 16-bit grayscale (mode I;16), 256x256, a smooth diagonal
  gradient with a gentle radial bump, using the whole 0..65535 range.
- ``texture.png``: RGB, 256x256, multi-octave 1/f ("pink") noise shaped into
  a bark/lichen-like texture with fine detail (max-pooling aliasing shows).
- ``scene.png``: RGB, 320x240, a photograph-like landscape: sky gradient with
  clouds, a sun, noisy hills, trees and grass.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

MAX_BYTES = 200_000


def pink_noise(shape: tuple[int, int], seed: int, beta: float = 1.0) -> np.ndarray:
    """Zero-mean, unit-std noise with a 1/f**beta amplitude spectrum."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    spectrum = np.fft.rfft2(white) / f**beta
    spectrum[0, 0] = 0.0
    noise = np.fft.irfft2(spectrum, s=shape)
    return (noise - noise.mean()) / noise.std()


def to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def checkerboard(size: int = 256, square: int = 16) -> Image.Image:
    yy, xx = np.indices((size, size))
    board = ((yy // square + xx // square) % 2).astype(np.uint8) * 255
    return Image.fromarray(board)


def shapes() -> Image.Image:
    im = Image.new("RGB", (256, 256), (236, 228, 210))
    draw = ImageDraw.Draw(im)
    draw.rectangle((18, 20, 110, 92), fill=(40, 90, 170))
    draw.ellipse((140, 16, 236, 112), fill=(200, 40, 40))
    draw.polygon([(30, 236), (124, 236), (77, 132)], fill=(40, 150, 70))
    draw.ellipse((150, 150, 190, 190), fill=(250, 200, 30))
    draw.rectangle((196, 140, 240, 240), fill=(30, 30, 30))
    draw.polygon([(140, 200), (180, 244), (130, 244)], fill=(150, 60, 170))
    draw.rectangle((60, 110, 66, 116), fill=(0, 0, 0))  # a 7x7 dot: pooling food
    draw.line((120, 30, 120, 120), fill=(0, 0, 0), width=1)  # a 1 px line
    return im


def gradient(size: int = 256) -> Image.Image:
    yy, xx = np.indices((size, size), dtype=np.float64) / (size - 1)
    ramp = 0.5 * (xx + yy)
    bump = np.exp(-((xx - 0.65) ** 2 + (yy - 0.35) ** 2) / 0.05)
    value = 0.85 * ramp + 0.15 * bump
    value = (value - value.min()) / (value.max() - value.min())
    im = Image.fromarray(np.rint(value * 65535).astype(np.uint16))
    assert im.mode == "I;16", im.mode
    return im


def texture(size: int = 256) -> Image.Image:
    shape = (size, size)
    coarse = pink_noise(shape, seed=1, beta=1.3)
    fine = pink_noise(shape, seed=2, beta=0.6)
    # Bark: vertical ridges (noise stretched along y) plus fine grain.
    yy, xx = np.indices(shape, dtype=np.float64)
    warp = 6.0 * pink_noise(shape, seed=3, beta=1.6)
    ridges = 0.5 + 0.5 * np.sin((xx + warp) * 2 * np.pi / 11.0)
    lum = 0.45 + 0.12 * coarse + 0.07 * fine + 0.18 * (ridges - 0.5)
    lichen = np.clip(pink_noise(shape, seed=4, beta=1.2) - 0.8, 0, None)
    r = lum * 0.95 + 0.10 * lichen
    g = lum * 0.80 + 0.22 * lichen
    b = lum * 0.62 + 0.05 * lichen
    rgb = np.stack([r, g, b], axis=-1)
    # Quantise to 6 bits: keeps the detail, helps the size limit.
    return Image.fromarray((to_u8(np.clip(rgb, 0, 1)) >> 2) << 2)


def scene(width: int = 320, height: int = 240) -> Image.Image:
    yy, xx = np.indices((height, width), dtype=np.float64)
    t = yy / (height - 1)
    # Sky: deep blue at the top to pale near the horizon, soft clouds.
    sky = np.stack(
        [0.30 + 0.55 * t, 0.50 + 0.40 * t, 0.85 + 0.12 * t], axis=-1
    )
    clouds = np.clip(pink_noise((height, width), seed=10, beta=1.8) * 0.5 + 0.1, 0, 1)
    clouds *= np.clip(1.2 - 2.0 * t, 0, 1)
    img = sky * (1 - clouds[..., None]) + clouds[..., None] * 0.97
    # Sun with a soft glow.
    sun_d = np.hypot(xx - 250, yy - 45)
    glow = np.exp(-(sun_d / 40.0) ** 2)[..., None]
    img = img * (1 - 0.4 * glow) + 0.4 * glow * np.array([1.0, 0.95, 0.75])
    img[sun_d < 16] = (1.0, 0.97, 0.80)
    # Two ranges of hills: 1-D 1/f profiles, textured with 2-D noise.
    rng = np.random.default_rng(11)
    for base, amp, colour, seed in (
        (120, 30, (0.35, 0.45, 0.55), 12),
        (150, 22, (0.22, 0.42, 0.20), 13),
    ):
        profile = pink_noise((1, width), seed=seed, beta=1.8)[0]
        ridge = base - amp * profile / np.abs(profile).max()
        mask = yy > ridge[None, :]
        shade = 1.0 + 0.10 * pink_noise((height, width), seed=seed + 100, beta=1.0)
        img[mask] = (np.array(colour)[None, :] * shade[mask][:, None])
    # Grass: bright green noise with vertical streaks in the foreground.
    grass_top = 185
    streaks = pink_noise((height, width), seed=20, beta=0.8)
    streaks = 0.5 * streaks + 0.5 * np.roll(streaks, 2, axis=0)
    mask = yy >= grass_top + 3 * np.sin(xx / 17.0)
    depth = np.clip((yy - grass_top) / (height - grass_top), 0, 1)
    grass = np.stack(
        [0.20 + 0.08 * streaks, 0.45 + 0.12 * streaks + 0.1 * depth, 0.12 + 0.04 * streaks],
        axis=-1,
    )
    img[mask] = grass[mask]
    out = Image.fromarray(to_u8(np.clip(img, 0, 1)))
    # Trees: trunks and noisy, layered crowns (random but seeded).
    draw = ImageDraw.Draw(out)
    for _ in range(7):
        x = int(rng.integers(10, width - 10))
        ground = int(rng.integers(178, 200))
        h = int(rng.integers(35, 70))
        draw.rectangle((x - 2, ground - h // 3, x + 2, ground), fill=(70, 50, 30))
        for layer in range(4):
            cy = ground - h // 3 - layer * h // 6
            rad = (h // 3) - layer * 3
            green = (int(rng.integers(25, 60)), int(rng.integers(80, 120)), 35)
            draw.polygon([(x - rad, cy), (x + rad, cy), (x, cy - rad - 6)], fill=green)
    return out


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {
        "checkerboard.png": checkerboard(),
        "shapes.png": shapes(),
        "gradient.png": gradient(),
        "texture.png": texture(),
        "scene.png": scene(),
    }
    for name, image in images.items():
        data = png_bytes(image)
        assert len(data) < MAX_BYTES, f"{name} is {len(data)} bytes (limit {MAX_BYTES})"
        (out_dir / name).write_bytes(data)
        print(f"{name}: {image.mode} {image.width}x{image.height}, {len(data)} bytes")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else here)
