"""Basic colour names for pixels, and the dominant colour name of a masked region.

Each pixel gets one of eleven basic colour terms (Berlin & Kay's set) from its HSV values:
low chroma -> black / gray / white by value; otherwise a hue bin, with two corrections people
make: dark or desaturated orange/red reads as brown, light desaturated red reads as pink.
The thresholds were chosen on named web colours and on shaded photo pixels (tests/engine/scene/test_colors.py).
"""
from __future__ import annotations

import numpy as np

COLOR_NAMES = ("black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")
_IDX = {n: i for i, n in enumerate(COLOR_NAMES)}

BLACK_V = 0.20          # darker than this is black whatever the hue
ACHROMATIC_S = 0.18     # less saturated than this is black / gray / white
WARM_ACHROMATIC_S = 0.25  # ... for orange / yellow hues (white under warm light)
ACHROMATIC_C = 0.08     # ... and so is a small chroma (max - min), which catches dark noisy pixels
WHITE_V = 0.80          # achromatic and at least this bright is white
DARK_GRAY_V = 0.30      # achromatic and darker than this is black
MAX_SAMPLES = 40_000    # pixels classified per region; a strided sample beyond that


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, 3) uint8 -> hue in degrees [0, 360), saturation, value, chroma (all float32)."""
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    v = x.max(axis=1)
    c = v - x.min(axis=1)
    s = np.where(v > 0, c / np.maximum(v, 1e-6), 0.0)
    safe_c = np.maximum(c, 1e-6)
    h = np.where(v == r, ((g - b) / safe_c) % 6.0,
                 np.where(v == g, (b - r) / safe_c + 2.0, (r - g) / safe_c + 4.0)) * 60.0
    return h % 360.0, s, v, c


def classify(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 pixels -> (N,) indices into COLOR_NAMES."""
    rgb = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    h, s, v, c = _hsv(rgb)
    out = np.empty(len(rgb), dtype=np.int8)

    # chromatic hue bins (degrees)
    out[:] = _IDX["pink"]
    out[(h < 12) | (h >= 345)] = _IDX["red"]
    out[(h >= 12) & (h < 40)] = _IDX["orange"]
    out[(h >= 40) & (h < 68)] = _IDX["yellow"]
    out[(h >= 68) & (h < 165)] = _IDX["green"]
    out[(h >= 165) & (h < 255)] = _IDX["blue"]
    out[(h >= 255) & (h < 300)] = _IDX["purple"]
    # dark magenta (e.g. 128,0,128) is purple, bright magenta is pink
    out[(h >= 300) & (h < 345) & (v < 0.6)] = _IDX["purple"]

    red = (h < 12) | (h >= 345)
    orange = (h >= 12) & (h < 40)
    # brown: dark orange, desaturated orange (tan, wood), very dark red, dull dark gold
    dull_gold = (h >= 40) & (h < 55) & (v < 0.5) & (s < 0.6)
    # ... and muted mid-bright orange (tan, copper: a kiwi's skin) that people call brown
    brown = (orange & ((v < 0.65) | (s < 0.5) | ((v < 0.8) & (s < 0.75)))) | (red & (v < 0.4)) | dull_gold
    out[brown] = _IDX["brown"]
    # very dark yellow-green (olive) is green; shaded but saturated yellow stays yellow
    out[(h >= 55) & (h < 68) & (v < 0.4)] = _IDX["green"]
    # light, desaturated red (light pink, rose)
    out[red & (s < 0.5) & (v > 0.7)] = _IDX["pink"]

    # warm light makes white and gray things slightly orange: a wider achromatic band there
    warm = (h >= 12) & (h < 55)
    achromatic = (s < ACHROMATIC_S) | (c < ACHROMATIC_C) | (warm & (s < WARM_ACHROMATIC_S))
    out[achromatic] = _IDX["gray"]
    out[achromatic & (v >= WHITE_V)] = _IDX["white"]
    out[achromatic & (v < DARK_GRAY_V)] = _IDX["black"]
    out[v < BLACK_V] = _IDX["black"]
    return out


_MEMO: np.ndarray | None = None   # packed 24-bit colour -> class index, -1 until first seen


def classify_memo(rgb: np.ndarray) -> np.ndarray:
    """classify(), remembering every colour's class in a 16 MB table for this process: photos
    repeat colours, so after the first images most pixels are one table lookup instead of
    thirty array passes. Same answers as classify()."""
    global _MEMO
    if _MEMO is None:
        _MEMO = np.full(1 << 24, -1, dtype=np.int8)
    rgb = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    packed = (rgb[:, 0].astype(np.int32) << 16) | (rgb[:, 1].astype(np.int32) << 8) | rgb[:, 2]
    out = _MEMO[packed]
    unseen = out < 0
    if unseen.any():
        new = np.unique(packed[unseen])
        _MEMO[new] = classify(np.stack([new >> 16, (new >> 8) & 255, new & 255], axis=1).astype(np.uint8))
        out = _MEMO[packed]
    return out


def color_name(rgb) -> str:
    """The basic colour name of one (r, g, b) pixel."""
    return COLOR_NAMES[int(classify(np.asarray(rgb, dtype=np.uint8).reshape(1, 3))[0])]


PALETTE_MIN_SHARE = 0.05   # colour names below this share of a region are noise, not a part of it


def parse_palette(text: str) -> dict[str, float]:
    """"red:0.55,white:0.30" -> {"red": 0.55, "white": 0.30} (empty text: no palette)."""
    out = {}
    for part in str(text or "").split(","):
        if ":" in part:
            name, share = part.split(":")
            out[name] = float(share)
    return out


def color_summary(rgb: np.ndarray, mask: np.ndarray) -> tuple[str, float, str]:
    """(dominant colour name, its share, palette) of the masked pixels. The palette names every
    colour with at least PALETTE_MIN_SHARE of the pixels, "red:0.55,white:0.30": a bottle with a
    large red label is not safe to call "not red" even when its glass is mostly gray."""
    counts = _counts(rgb, mask)
    if counts is None:
        return "", 0.0, ""
    shares = counts / counts.sum()
    best = int(counts.argmax())
    palette = ",".join(f"{COLOR_NAMES[i]}:{shares[i]:.2f}" for i in np.argsort(-shares, kind="stable")
                       if shares[i] >= PALETTE_MIN_SHARE)
    return COLOR_NAMES[best], float(shares[best]), palette


def _counts(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    if rgb.shape[:2] != mask.shape:
        raise ValueError(f"image {rgb.shape[:2]} and mask {mask.shape} differ in size")
    n = int(np.count_nonzero(mask))
    if n == 0:
        return None
    if n <= MAX_SAMPLES:
        pixels = rgb[mask]
    else:
        # every step-th masked pixel in row order, picked before gathering: a large region's
        # pixels are not all copied to keep a tenth of them
        idx = np.flatnonzero(mask)[:: -(-n // MAX_SAMPLES)]
        pixels = rgb[np.unravel_index(idx, mask.shape)]
    return np.bincount(classify_memo(pixels), minlength=len(COLOR_NAMES))


def dominant_color(rgb: np.ndarray, mask: np.ndarray) -> tuple[str, float]:
    """The most frequent colour name among the masked pixels, and the share of pixels with it.

    `rgb` is HxWx3 uint8 and `mask` HxW bool of the same size (pass bbox crops of both: it is
    cheaper). An empty mask gives ("", 0.0).
    """
    name, share, _ = color_summary(rgb, mask)
    return name, share
