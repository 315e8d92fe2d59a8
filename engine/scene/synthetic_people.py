"""Drawn people with known garment colours, skin tones and postures, for tests of engine.scene.people.

`figure(canvas, mask, x, y, height, ...)` draws one person (head, neck, torso, arms, legs) into an
RGB canvas and its own boolean mask; `scene(...)` lays out several with a seat where one sits.
Skin tones run from very light to very dark (SKIN_TONES); a bare torso or short sleeves show skin
where a garment would be, so a test can check that skin never becomes a garment colour.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from engine.scene.synthetic import PALETTE

# Fitzpatrick-like range, light to very dark (sRGB)
SKIN_TONES = {"very_light": (250, 224, 205), "light": (234, 192, 160), "medium": (198, 140, 100),
              "tan": (160, 105, 70), "dark": (105, 65, 40), "very_dark": (60, 38, 26)}
HAIR = (30, 22, 18)
BACKGROUND = (120, 150, 120)


def _shade(rgb: np.ndarray, rng: np.random.Generator, sigma: float = 6.0) -> np.ndarray:
    """Photo-like noise and a vertical light gradient, so colours are not flat."""
    h = rgb.shape[0]
    grad = np.linspace(1.05, 0.9, h)[:, None, None]
    noisy = rgb.astype(np.float32) * grad + rng.normal(0, sigma, rgb.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def figure(img: Image.Image, x: int, y: int, height: int, skin: str, upper: str | None, lower: str | None,
           posture: str = "standing") -> np.ndarray:
    """Draw one person with its top-left at (x, y); returns its mask (bool, image size).

    upper / lower: PALETTE colour names of top and trousers, or None for bare skin."""
    s = SKIN_TONES[skin]
    top = PALETTE[upper] if upper else s
    legs = PALETTE[lower] if lower else s
    m = Image.new("L", img.size, 0)
    d, dm = ImageDraw.Draw(img), ImageDraw.Draw(m)
    u = height / 8.0                       # head height: a figure is about eight heads tall

    def both(kind, box, fill):
        getattr(d, kind)(box, fill=fill)
        getattr(dm, kind)(box, fill=255)

    if posture == "lying":                 # the standing figure turned on its side, head on the left
        both("ellipse", (x, y, x + u, y + u), s)
        both("rectangle", (x + u, y + 0.1 * u, x + 4 * u, y + 1.1 * u), top)
        both("rectangle", (x + 4 * u, y + 0.15 * u, x + 8 * u, y + 1.0 * u), legs)
        return np.array(m) > 0
    cx = x + 1.1 * u
    both("ellipse", (cx - 0.45 * u, y, cx + 0.45 * u, y + u), s)                 # head
    d.chord((cx - 0.47 * u, y - 0.05 * u, cx + 0.47 * u, y + 0.7 * u), 180, 360, fill=HAIR)
    both("rectangle", (cx - 0.15 * u, y + u, cx + 0.15 * u, y + 1.3 * u), s)    # neck
    both("rectangle", (cx - 0.9 * u, y + 1.3 * u, cx + 0.9 * u, y + 4.0 * u), top)   # torso
    both("rectangle", (cx - 1.2 * u, y + 1.4 * u, cx - 0.9 * u, y + 3.8 * u), top if upper else s)  # arms
    both("rectangle", (cx + 0.9 * u, y + 1.4 * u, cx + 1.2 * u, y + 3.8 * u), top if upper else s)
    if posture == "sitting":               # thighs forward, shins down
        both("rectangle", (cx - 0.8 * u, y + 4.0 * u, cx + 2.6 * u, y + 4.9 * u), legs)
        both("rectangle", (cx + 1.8 * u, y + 4.9 * u, cx + 2.6 * u, y + 6.6 * u), legs)
    else:
        both("rectangle", (cx - 0.8 * u, y + 4.0 * u, cx - 0.05 * u, y + 7.6 * u), legs)
        both("rectangle", (cx + 0.05 * u, y + 4.0 * u, cx + 0.8 * u, y + 7.6 * u), legs)
        both("rectangle", (cx - 0.9 * u, y + 7.6 * u, cx + 0.9 * u, y + 8.0 * u), (20, 20, 20))  # shoes
    return np.array(m) > 0


def chair(img: Image.Image, x0: int, y0: int, x1: int, y1: int, color=(110, 70, 40)) -> np.ndarray:
    """A seat (box) under a sitting figure; returns its mask."""
    m = Image.new("L", img.size, 0)
    ImageDraw.Draw(img).rectangle((x0, y0, x1, y1), fill=color)
    ImageDraw.Draw(m).rectangle((x0, y0, x1, y1), fill=255)
    return np.array(m) > 0


def finish(img: Image.Image, seed: int = 0) -> np.ndarray:
    return _shade(np.array(img), np.random.default_rng(seed))
