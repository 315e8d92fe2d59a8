"""Garment colours and posture of people (engine.scene.people) on drawn figures with known
clothes, skin tones and poses."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.scene import masks
from engine.scene.facts import describe_image
from engine.scene.people import region_color, skin_mask
from engine.scene.synthetic import PALETTE
from engine.scene.synthetic_people import BACKGROUND, SKIN_TONES, chair, figure, finish

W, H = 480, 360


def _describe(img: Image.Image, shapes: list[tuple[str, str, np.ndarray]], seed: int = 0) -> dict[str, dict]:
    rows = [{"instance_id": iid, "image_id": "img", "category": cat,
             "supercategory": "person" if cat == "person" else "furniture", "iscrowd": False,
             "rle": masks.encode(m)} for iid, cat, m in shapes]
    facts, _ = describe_image({"image_id": "img", "width": W, "height": H}, pd.DataFrame(rows),
                              finish(img, seed))
    return {f["instance_id"]: f for f in facts}


def _canvas() -> Image.Image:
    return Image.new("RGB", (W, H), BACKGROUND)


@pytest.mark.parametrize("skin", sorted(SKIN_TONES))
@pytest.mark.parametrize("upper,lower", [("red", "blue"), ("white", "black"), ("green", "gray"),
                                         ("yellow", "white"), ("black", "blue"), ("purple", "black")])
def test_standing_figure_gives_its_garment_colours_whatever_the_skin(skin, upper, lower):
    img = _canvas()
    m = figure(img, 100, 20, 320, skin, upper, lower)
    f = _describe(img, [("p", "person", m)])["p"]
    assert (f["upper_color"], f["lower_color"], f["posture"]) == (upper, lower, "standing")
    assert f["color"]                      # the whole-mask colour is still computed, never said of people


@pytest.mark.parametrize("skin", sorted(SKIN_TONES))
def test_bare_skin_never_becomes_a_garment_colour(skin):
    """A shirtless figure in shorts of skin colour: no garment colour at all, for every tone."""
    img = _canvas()
    m = figure(img, 100, 20, 320, skin, None, None)
    f = _describe(img, [("p", "person", m)])["p"]
    assert f["upper_color"] == "" and f["lower_color"] == ""


@pytest.mark.parametrize("skin", sorted(SKIN_TONES))
def test_skin_model_covers_light_to_dark_tones_and_spares_vivid_clothes(skin):
    rng = np.random.default_rng(0)
    tone = np.array(SKIN_TONES[skin], dtype=float)
    # shaded and lit versions of the tone
    pixels = np.clip(tone[None, :] * rng.uniform(0.75, 1.15, (500, 1)) + rng.normal(0, 4, (500, 3)), 0, 255)
    assert skin_mask(pixels.astype(np.uint8)).mean() > 0.9
    clothes = np.array([PALETTE[c] for c in ("red", "blue", "green", "white", "black", "gray", "purple", "pink",
                                             "yellow")], dtype=np.uint8)
    assert not skin_mask(clothes).any()


def test_a_region_of_mixed_colours_or_mostly_skin_gets_no_colour():
    red, blue = np.array(PALETTE["red"]), np.array(PALETTE["blue"])
    stripes = np.array([red] * 300 + [blue] * 300, dtype=np.uint8)
    assert region_color(stripes)[0] == ""
    mostly_skin = np.array([SKIN_TONES["dark"]] * 500 + [PALETTE["black"]] * 200, dtype=np.uint8)
    assert region_color(mostly_skin)[0] == ""   # dark skin in shade and black cloth look alike
    assert region_color(np.array([red] * 400, dtype=np.uint8))[0] == "red"


def test_sitting_on_a_chair_and_lying_are_decided_and_a_cut_figure_is_not():
    img = _canvas()
    seat = chair(img, 60, 186, 170, 226)
    sitter = figure(img, 40, 40, 240, "dark", "red", "blue", posture="sitting")
    lier = figure(img, 220, 290, 240, "light", "green", "black", posture="lying")
    cut = figure(img, 360, 150, 320, "medium", "white", "black")      # feet below the frame
    f = _describe(img, [("s", "person", sitter), ("c", "chair", seat), ("l", "person", lier), ("x", "person", cut)])
    assert f["s"]["posture"] == "sitting" and f["s"]["upper_color"] == "red"
    assert f["l"]["posture"] == "lying"
    assert f["x"]["posture"] == "" and "sitting" in f["x"]["posture_maybe"].split(",")
    assert f["x"]["lower_color"] == ""     # the legs band of a cut figure is not known
    assert f["c"]["posture"] == "" and f["c"]["upper_color"] == ""   # not a person


def test_a_tall_figure_without_a_seat_is_not_maybe_sitting_and_a_seated_one_not_standing():
    img = _canvas()
    seat = chair(img, 60, 186, 170, 226)
    sitter = figure(img, 40, 40, 240, "medium", "blue", "black", posture="sitting")
    stander = figure(img, 300, 10, 340, "very_dark", "white", "blue")
    f = _describe(img, [("s", "person", sitter), ("c", "chair", seat), ("t", "person", stander)])
    assert f["t"]["posture"] == "standing" and f["t"]["posture_maybe"] == "standing"
    assert f["s"]["posture_maybe"] == "sitting"


def test_a_torso_cut_off_by_something_unannotated_is_not_standing_and_has_no_legs_colour():
    """A tall, narrow torso whose mask stops at the hips (a counter in front, not annotated):
    the lowest rows are as wide as the torso and show no legs, so no posture and no trousers."""
    img = _canvas()
    m = np.zeros((H, W), dtype=bool)
    m[40:70, 110:140] = True                     # head
    m[70:320, 95:155] = True                     # shirt down to the bottom of the mask
    arr = np.array(img)
    arr[40:70, 110:140] = SKIN_TONES["medium"]
    arr[70:320, 95:155] = PALETTE["red"]
    f = _describe(Image.fromarray(arr), [("p", "person", m)])["p"]
    assert f["posture"] == "" and f["lower_color"] == ""


def test_a_dark_olive_top_in_shade_is_not_called_black():
    olive = np.array([[48, 50, 36]] * 400, dtype=np.uint8)     # dark olive drab
    assert region_color(olive)[0] != "black"
    assert region_color(np.array([[18, 18, 20]] * 400, dtype=np.uint8))[0] == "black"


def test_a_whole_figure_whose_feet_are_hidden_still_gives_top_and_trousers():
    """A box in front of one foot: posture is not decided (the feet may be anywhere), but the
    figure is whole and tall and ends in legs, so torso and legs are where a standing figure's are."""
    img = _canvas()
    m = figure(img, 100, 20, 320, "medium", "red", "blue")
    box = np.zeros((H, W), dtype=bool)
    box[290:345, 90:143] = True
    arr = np.array(img)
    arr[box] = (200, 180, 60)
    m &= ~box
    f = _describe(Image.fromarray(arr), [("p", "person", m), ("b", "suitcase", box)])["p"]
    assert f["posture"] == ""
    assert (f["upper_color"], f["lower_color"]) == ("red", "blue")


def test_dark_trousers_under_a_striped_top_are_not_dark_clothes():
    """Black trousers and a black top with gray stripes: most of the outfit is dark, but the top
    is not, so no "in dark clothes"; all black is."""
    img = _canvas()
    m = figure(img, 100, 20, 320, "light", "black", "black")
    arr = np.array(img)
    for r in range(20 + 52, 20 + 160, 12):         # gray stripes across the torso, a quarter of it
        arr[r:r + 3][m[r:r + 3]] = (125, 125, 125)
    striped = _describe(Image.fromarray(arr), [("p", "person", m)])["p"]
    plain = _describe(img, [("p", "person", m)])["p"]
    assert plain["outfit_tone"] == "dark"
    assert striped["lower_color"] == "black" and striped["outfit_tone"] == ""


def test_the_remembered_skin_answers_and_the_looked_up_lab_values_are_the_computed_ones():
    from engine.scene.people import _skin, rgb_to_lab
    px = np.random.default_rng(3).integers(0, 256, (200_000, 3), dtype=np.uint8)
    assert np.array_equal(skin_mask(px), _skin(px))
    assert np.array_equal(skin_mask(px[::-1]), _skin(px[::-1]))      # answered from the table
    assert np.array_equal(rgb_to_lab(px), rgb_to_lab(px.astype(np.float64)))
