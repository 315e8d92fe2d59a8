"""Colour names: named web colours, pure noisy patches, shaded objects, dominant share."""
from __future__ import annotations

import colorsys

import numpy as np
import pytest

from engine.scene.colors import COLOR_NAMES, MAX_SAMPLES, classify, color_name, dominant_color
from engine.scene.synthetic import PALETTE

# CSS / X11 named colours and a few photo-like shades, grouped by the basic name people use.
NAMED = {
    "black": [(0, 0, 0), (30, 30, 35), (60, 50, 45), (20, 25, 45)],
    "white": [(255, 255, 255), (240, 240, 245), (220, 225, 235), (235, 225, 205)],
    "gray": [(128, 128, 128), (192, 192, 192), (90, 90, 95), (150, 160, 170), (140, 130, 115)],
    "red": [(255, 0, 0), (200, 20, 30), (139, 0, 0), (178, 34, 34), (220, 20, 60)],
    "orange": [(255, 165, 0), (255, 140, 0), (255, 127, 80), (230, 120, 40)],
    "yellow": [(255, 255, 0), (255, 215, 0), (240, 220, 60), (250, 240, 140), (120, 100, 30)],
    "green": [(0, 255, 0), (0, 128, 0), (34, 139, 34), (85, 107, 47), (60, 179, 113), (154, 205, 50), (80, 80, 10)],
    "blue": [(0, 0, 255), (0, 0, 128), (70, 130, 180), (135, 206, 235), (0, 255, 255), (0, 128, 128), (30, 60, 120)],
    "purple": [(128, 0, 128), (75, 0, 130), (147, 112, 219), (138, 43, 226), (102, 51, 153)],
    "pink": [(255, 192, 203), (255, 182, 193), (255, 105, 180), (255, 20, 147), (219, 112, 147), (255, 0, 255)],
    "brown": [(139, 69, 19), (160, 82, 45), (210, 180, 140), (101, 67, 33), (90, 40, 30), (150, 110, 70), (110, 95, 60)],
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_colours(name):
    got = {rgb: color_name(rgb) for rgb in NAMED[name]}
    assert all(v == name for v in got.values()), got


def test_every_name_is_reachable_and_classify_is_vectorised():
    pixels = np.array([rgb for rgbs in NAMED.values() for rgb in rgbs], dtype=np.uint8)
    idx = classify(pixels)
    assert idx.shape == (len(pixels),)
    assert {COLOR_NAMES[i] for i in idx} == set(COLOR_NAMES)
    assert [COLOR_NAMES[i] for i in idx] == [color_name(p) for p in pixels]


@pytest.mark.parametrize("name", sorted(PALETTE))
def test_noisy_pure_patch(name):
    rng = np.random.default_rng(0)
    patch = np.clip(np.array(PALETTE[name]) + rng.normal(0, 6, (40, 40, 3)), 0, 255).astype(np.uint8)
    got, share = dominant_color(patch, np.ones((40, 40), bool))
    assert got == name
    assert share > 0.95


@pytest.mark.parametrize("hue,name", [(0.0, "red"), (0.33, "green"), (0.62, "blue"), (0.14, "yellow"), (0.08, "orange")])
def test_shaded_object_keeps_its_name(hue, name):
    """A saturated object lit from one side: value falls from 1.0 to 0.45 across it."""
    values = np.linspace(1.0, 0.45, 50)
    row = np.array([colorsys.hsv_to_rgb(hue, 0.85, v) for v in values]) * 255
    patch = np.repeat(row[None], 20, axis=0).astype(np.uint8)
    got, share = dominant_color(patch, np.ones(patch.shape[:2], bool))
    assert got == name
    assert share > 0.5


def test_dark_and_light_variants():
    # dark orange reads brown, light desaturated red reads pink, dark desaturated anything black
    assert color_name((140, 75, 20)) == "brown"
    assert color_name((186, 125, 61)) == "brown"     # a kiwi's tan skin (judged: not "orange")
    assert color_name((200, 110, 20)) == "orange"    # an orange in shade stays orange
    assert color_name((250, 200, 200)) == "pink"
    assert color_name((40, 30, 35)) == "black"
    # warm-lit white (a sheep, a wall) is white, not brown
    assert color_name((235, 220, 200)) == "white"


def test_dominant_colour_uses_only_masked_pixels_and_reports_share():
    img = np.zeros((10, 10, 3), np.uint8)
    img[:, :3] = PALETTE["red"]
    img[:, 3:] = PALETTE["blue"]
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True  # 30 red + 20 blue pixels
    assert dominant_color(img, mask) == ("red", pytest.approx(0.6))
    mask[:] = False
    mask[0, 9] = True
    assert dominant_color(img, mask) == ("blue", 1.0)


def test_large_region_is_sampled_without_changing_the_answer():
    n = 300  # 90_000 pixels > MAX_SAMPLES
    assert n * n > MAX_SAMPLES
    img = np.zeros((n, n, 3), np.uint8)
    img[:, : n // 4] = PALETTE["green"]
    img[:, n // 4:] = PALETTE["purple"]
    name, share = dominant_color(img, np.ones((n, n), bool))
    assert name == "purple"
    assert share == pytest.approx(0.75, abs=0.02)


def test_empty_mask_and_size_mismatch():
    img = np.zeros((4, 4, 3), np.uint8)
    assert dominant_color(img, np.zeros((4, 4), bool)) == ("", 0.0)
    with pytest.raises(ValueError, match="differ in size"):
        dominant_color(img, np.zeros((4, 5), bool))


def test_palette_lists_every_colour_with_a_real_share_and_parses_back():
    from engine.scene.colors import color_summary, parse_palette
    img = np.zeros((10, 10, 3), np.uint8)
    img[:, :6] = PALETTE["red"]
    img[:, 6:9] = PALETTE["blue"]
    img[0, 9] = PALETTE["green"]          # 1 pixel of 100: noise, below the 5% floor
    img[1:, 9] = PALETTE["yellow"]        # 9 pixels
    name, share, palette = color_summary(img, np.ones((10, 10), bool))
    assert (name, share) == ("red", pytest.approx(0.6))
    assert parse_palette(palette) == {"red": 0.6, "blue": 0.3, "yellow": 0.09}
    assert color_summary(img, np.zeros((10, 10), bool)) == ("", 0.0, "")
