"""engine.scene.unmarked: piles whose unmarked members look like the marked ones."""
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from engine.scene import masks
from engine.scene.facts import describe_image

W, H = 400, 300
ORANGE, GREEN, SKY, WHITE = (235, 140, 20), (60, 140, 50), (110, 170, 230), (245, 245, 240)


def _photo(background, discs, seed=0, speckle=0.0):
    """A picture with discs (cx, cy, r, colour) on a background, photo noise, and optionally a
    speckled texture of the discs' colour in the background (grass blades, marble veins)."""
    img = Image.new("RGB", (W, H), background)
    d = ImageDraw.Draw(img)
    for cx, cy, r, col in discs:
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=col)
    rng = np.random.default_rng(seed)
    arr = np.array(img).astype(float) + rng.normal(0, 5, (H, W, 3))
    if speckle:
        dots = rng.random((H, W)) < speckle
        arr[dots] = ORANGE
    return np.clip(arr, 0, 255).astype(np.uint8)


def _mask(cx, cy, r):
    m = Image.new("L", (W, H), 0)
    ImageDraw.Draw(m).ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    return np.array(m) > 0


def _facts(rgb, marked, category="orange", crowd=None):
    rows = [{"instance_id": f"o{k}", "image_id": "img", "category": category, "supercategory": "food",
             "iscrowd": False, "rle": masks.encode(_mask(*disc[:3]))} for k, disc in enumerate(marked)]
    if crowd is not None:
        rows.append({"instance_id": "crowd", "image_id": "img", "category": category, "supercategory": "food",
                     "iscrowd": True, "rle": masks.encode(crowd)})
    facts, _ = describe_image({"image_id": "img", "width": W, "height": H}, pd.DataFrame(rows), rgb)
    return {f["instance_id"]: f for f in facts}


PILE = [(60 + 70 * (k % 5), 70 + 80 * (k // 5), 30, ORANGE) for k in range(10)]


def test_a_pile_with_half_its_oranges_marked_is_flagged_and_a_fully_marked_one_is_not():
    rgb = _photo(WHITE, PILE)
    half = _facts(rgb, PILE[::2])
    assert all(f["unmarked_kin"] for f in half.values())
    full = _facts(rgb, PILE)
    assert not any(f["unmarked_kin"] for f in full.values())


def test_a_texture_or_a_sky_of_the_same_colour_is_not_an_unmarked_member():
    """Speckle of orange in the background is texture, not oranges; kites against a sky of
    their own blue are three kites in one sky, not a pile of unmarked kites."""
    oranges = PILE[:4]
    assert not any(f["unmarked_kin"] for f in _facts(_photo(GREEN, oranges, speckle=0.08), oranges).values())
    kites = [(80, 80, 20, SKY), (200, 150, 20, SKY), (320, 90, 20, SKY)]
    assert not any(f["unmarked_kin"] for f in _facts(_photo(SKY, kites), kites, category="kite").values())
    # a sky brightening towards the horizon: its bands of colour are long, not kite-shaped
    graded = _photo(SKY, kites)
    graded = np.clip(graded.astype(float) + np.linspace(-40, 40, H)[:, None, None], 0, 255).astype(np.uint8)
    assert not any(f["unmarked_kin"] for f in _facts(graded, kites, category="kite").values())


def test_two_marked_things_or_a_category_with_a_crowd_region_are_never_flagged():
    rgb = _photo(WHITE, PILE)
    assert not any(f["unmarked_kin"] for f in _facts(rgb, PILE[:2]).values())
    crowd = np.zeros((H, W), dtype=bool)
    crowd[150:, :] = True
    assert not any(f["unmarked_kin"] for f in _facts(rgb, PILE[:4], crowd=crowd).values())


def test_on_the_shared_yolo_fruit_the_orange_pile_gets_no_target_and_the_cut_oranges_do():
    """fruits_yoloseg: a photo of an orange pile with eight oranges outlined among many, and a
    photo of one orange, a half and two wedges, all outlined. The pile's oranges are no target
    ("every orange", "the leftmost orange" would be wrong); the other photo's still are."""
    from engine.config import EngineConfig
    from engine.sources.ingest import ingest, resolve_source
    from engine.stages import UnitWorker
    from tests.custom_data import YOLOSEG

    data = ingest([resolve_source(str(YOLOSEG))], EngineConfig().ingest)
    res = UnitWorker(EngineConfig()).run("u", data.images.assign(unit_id="u"), data.instances)
    acc = res.instructions[res.instructions["accepted"]]
    oranges = res.facts[res.facts["category"] == "orange"]
    piles = set(oranges[oranges["unmarked_kin"]]["image_id"])
    whole = set(oranges[~oranges["unmarked_kin"]]["image_id"])
    assert len(piles) == 1 and whole
    pile_targets = acc[acc["image_id"].isin(piles) & (acc["category"] == "orange") & (acc["cardinality"] != "negative")]
    assert pile_targets.empty, pile_targets["text"].tolist()
    assert (acc["image_id"].isin(whole) & (acc["category"] == "orange") & (acc["cardinality"] == "1:1")).any()


def test_colour_bins_of_a_window_are_the_frames_bins_there():
    """unmarked_kin bins only the box around the piles: binning is per pixel, so a window's bins
    equal the whole frame's bins cut to it."""
    import numpy as np

    from engine.scene.unmarked import colour_bins
    rgb = np.random.default_rng(2).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    assert np.array_equal(colour_bins(rgb[17:61, 33:104]), colour_bins(rgb)[17:61, 33:104])
