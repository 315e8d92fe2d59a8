"""Outfit tone ("in dark clothes" / "in light clothes"), one hue among neutrals, and colours read
as a viewer sees them under lamplight or in a dim picture (engine.scene.people), on drawn figures."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.scene import masks
from engine.scene.facts import describe_image
from engine.scene.people import balanced, region_color
from engine.scene.synthetic import PALETTE
from engine.scene.synthetic_people import BACKGROUND, SKIN_TONES, figure, finish

W, H = 480, 360


def _describe(rgb: np.ndarray, shapes) -> dict[str, dict]:
    rows = [{"instance_id": iid, "image_id": "img", "category": "person", "supercategory": "person",
             "iscrowd": False, "rle": masks.encode(m)} for iid, m in shapes]
    facts, _ = describe_image({"image_id": "img", "width": W, "height": H}, pd.DataFrame(rows), rgb)
    return {f["instance_id"]: f for f in facts}


def _people(*outfits, skin="medium"):
    img = Image.new("RGB", (W, H), BACKGROUND)
    shapes = [(f"p{k}", figure(img, 20 + 150 * k, 20, 320, skin, up, low)) for k, (up, low) in enumerate(outfits)]
    return img, shapes


@pytest.mark.parametrize("skin", sorted(SKIN_TONES))
def test_dark_and_light_outfits_whatever_the_skin(skin):
    img, shapes = _people(("black", "black"), ("white", "white"), ("red", "blue"), skin=skin)
    f = _describe(finish(img), shapes)
    assert [f[p]["outfit_tone"] for p in ("p0", "p1", "p2")] == ["dark", "light", ""]
    # every person's shares are kept for the margins: the red-and-blue one is neither
    assert "dark:0.9" in f["p0"]["tone_hist"] or "dark:1.00" in f["p0"]["tone_hist"]


@pytest.mark.parametrize("skin", sorted(SKIN_TONES))
def test_bare_skin_is_never_dark_or_light_clothes(skin):
    """A shirtless figure in skin-coloured shorts: no outfit tone for any skin, very dark included."""
    img, shapes = _people((None, None), skin=skin)
    assert _describe(finish(img), shapes)["p0"]["outfit_tone"] == ""


def test_a_dim_picture_is_read_against_its_own_white():
    """At 45% exposure a gray outfit is as dark as black cloth in daylight; beside a white
    figure a viewer still sees gray, and black still reads dark."""
    img, shapes = _people(("gray", "gray"), ("white", "white"), ("black", "black"))
    dim = (finish(img).astype(np.float64) * 0.45).astype(np.uint8)
    f = _describe(dim, shapes)
    assert f["p0"]["outfit_tone"] == "" and f["p2"]["outfit_tone"] == "dark"


def test_lamplight_is_taken_out_before_clothes_are_named():
    """Warm light turns a white shirt cream-yellow (and skin-like): read partly balanced it is
    white again; a figure on a green lawn with no white in sight is left as it is."""
    img, shapes = _people(("white", "black"), ("blue", "white"))
    warm = np.clip(finish(img).astype(np.float64) * np.array([1.0, 0.86, 0.55]), 0, 255).astype(np.uint8)
    f = _describe(warm, shapes)
    assert (f["p0"]["upper_color"], f["p0"]["lower_color"], f["p1"]["upper_color"]) == ("white", "black", "blue")
    assert f["p1"]["lower_color"] != "yellow"      # unbalanced, both white garments read yellow
    lawn = finish(_people(("red", "blue"))[0])
    assert np.array_equal(balanced(lawn), lawn)


def test_one_hue_among_neutrals_is_the_garment_colour_but_two_hues_are_not():
    green, white, black = (np.array(PALETTE[c]) for c in ("green", "white", "black"))
    stripes = np.array([green] * 260 + [white] * 200 + [black] * 140, dtype=np.uint8)   # green 43%
    assert region_color(stripes)[0] == "green"
    two = np.array([green] * 260 + [PALETTE["red"]] * 160 + [white] * 180, dtype=np.uint8)
    assert region_color(two)[0] == ""
    speck = np.array([green] * 120 + [white] * 480, dtype=np.uint8)     # a logo on a white shirt
    assert region_color(speck)[0] == "white"
