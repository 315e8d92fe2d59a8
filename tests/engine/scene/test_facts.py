"""describe: facts against synthetic ground truth, consistency on real photos, hand-made relations."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from engine.scene import masks
from engine.scene.colors import dominant_color
from engine.config import FactsConfig
from engine.scene.facts import BORDER_PX, describe, describe_image
from engine.sources.imageio import load_rgb
from engine.sources.ingest import SourceSpec, ingest
from engine.scene.synthetic import EXCLUSIVE, describe_dataset, make_dataset
from schemas.facts import FACTS, RELATIONS, RELATIONS_TABLE
from schemas.instances import INSTANCES
from tests.coco_fixtures import COCO_SAMPLE, PANOPTIC_SAMPLE

CONVERSE = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above",
            "next_to": "next_to", "overlapping": "overlapping"}


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    ds = make_dataset(tmp_path_factory.mktemp("syn") / "d", n_images=24, seed=11)
    return ds, describe_dataset(ds, "syn")


def _describe_sample(sample):
    result = ingest([SourceSpec(sample.name, str(sample / "instances.json"), str(sample / "images"))])
    assert len(result.quarantine) == 0
    start = time.perf_counter()
    facts, relations = describe(result.images, result.instances, FactsConfig())
    return result, facts, relations, time.perf_counter() - start


@pytest.fixture(scope="module")
def coco():
    return _describe_sample(COCO_SAMPLE)


@pytest.fixture(scope="module")
def panoptic():
    return _describe_sample(PANOPTIC_SAMPLE)


def _triples(relations: pd.DataFrame) -> set[tuple[str, str, str, str]]:
    return set(zip(relations["image_id"], relations["subject_id"], relations["relation"], relations["object_id"]))


# -- synthetic scenes: exact ground truth ----------------------------------------------------

def test_synthetic_facts_match_ground_truth(synthetic):
    ds, t = synthetic
    facts = t.facts.set_index("instance_id")
    checked = 0
    for iid, truth in ds.instance_truth("syn").items():
        row = facts.loc[iid]
        for key in ("color", "pos_x", "pos_y", "ordinal_x", "ordinal_y", "category_count", "iscrowd", "category"):
            if truth[key] is not None:  # None: the generator marks the truth ambiguous
                assert row[key] == truth[key], (iid, key, truth)
                checked += 1
    assert checked > 0.9 * 8 * len(facts)


def test_synthetic_relations_match_ground_truth(synthetic):
    ds, t = synthetic
    got, want = _triples(t.relations), ds.relation_truth("syn")
    assert {r[2] for r in want} >= {"on", "inside", "overlapping", "left_of", "right_of", "above", "below", "next_to"}
    assert want - got == set()
    # on / inside / overlapping hold exactly where the scene put them
    assert {r for r in got if r[2] in EXCLUSIVE} == {r for r in want if r[2] in EXCLUSIVE}


def test_synthetic_crowd_and_composite_facts(synthetic):
    ds, t = synthetic
    f = t.facts
    crowd = f[f["iscrowd"]]
    assert len(crowd) > 0
    assert (crowd[["size_rank", "size_rank_in_category", "ordinal_x", "ordinal_y"]] == 0).all().all()
    # the bowl around an apple is occluded by it (share of its box covered by the apple)
    truth = ds.instance_truth("syn")
    bowls = f[f["instance_id"].map(lambda i: truth[i]["role"] == "nested_outer")]
    assert len(bowls) and (bowls["occlusion"] > 0.02).all()
    singles = f[f["instance_id"].map(lambda i: truth[i]["group"] == "single")]
    assert (singles["occlusion"] == 0).all()
    assert not f["truncated"].any()  # the layout keeps every shape off the border


# -- real photos: internal consistency -------------------------------------------------------

def _decoded(result):
    inst = result.instances
    return {r.instance_id: masks.decode(r.rle, r.height, r.width) for r in inst.itertuples()}


@pytest.mark.parametrize("which", ["coco", "panoptic"])
def test_real_photos_facts_are_consistent_with_masks(which, request):
    result, facts, relations, _ = request.getfixturevalue(which)
    FACTS.validate(facts)
    RELATIONS_TABLE.validate(relations)
    assert len(facts) == len(result.instances)
    decoded = _decoded(result)
    images = result.images.set_index("image_id")
    f = facts.set_index("instance_id")
    cfg = FactsConfig()
    for iid, m in decoded.items():
        row = f.loc[iid]
        h, w = m.shape
        assert (images.loc[row["image_id"], "height"], images.loc[row["image_id"], "width"]) == (h, w)
        assert row["area"] == m.sum()
        assert row["area_frac"] * w * h == pytest.approx(row["area"])
        ys, xs = np.nonzero(m)
        assert row["cx"] == pytest.approx((xs.mean() + 0.5) / w)
        assert row["cy"] == pytest.approx((ys.mean() + 0.5) / h)
        assert (row["x0"], row["y0"], row["x1"], row["y1"]) == pytest.approx(
            (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h))
        assert row["pos_x"] == ("left", "center", "right")[min(2, int(row["cx"] * 3))]
        assert row["pos_y"] == ("top", "middle", "bottom")[min(2, int(row["cy"] * 3))]
        sides = {"left": xs.min() < BORDER_PX, "right": xs.max() >= w - BORDER_PX,
                 "top": ys.min() < BORDER_PX, "bottom": ys.max() >= h - BORDER_PX}
        assert row["truncated"] == any(sides.values())
        assert row["truncated_sides"] == ",".join(s for s, on in sides.items() if on)
        expected_label = "small" if row["area_frac"] < cfg.small_frac else "large" if row["area_frac"] > cfg.large_frac else "medium"
        assert row["size_label"] == expected_label
    assert f["truncated"].any() and not f["truncated"].all()


@pytest.mark.parametrize("which", ["coco", "panoptic"])
def test_real_photos_ranks_ordinals_counts(which, request):
    result, facts, _, _ = request.getfixturevalue(which)
    decoded = _decoded(result)
    area = {i: int(m.sum()) for i, m in decoded.items()}
    cx = {i: np.nonzero(m)[1].mean() for i, m in decoded.items()}
    cy = {i: np.nonzero(m)[0].mean() for i, m in decoded.items()}
    for _, img in facts.groupby("image_id"):
        crowd = img[img["iscrowd"]]
        assert (crowd[["size_rank", "size_rank_in_category", "ordinal_x", "ordinal_y"]] == 0).all().all()
        solid = img[~img["iscrowd"]]
        by_rank = solid.sort_values("size_rank")["instance_id"].tolist()
        assert solid["size_rank"].tolist() and sorted(solid["size_rank"]) == list(range(1, len(solid) + 1))
        assert [area[i] for i in by_rank] == sorted((area[i] for i in by_rank), reverse=True)
        for cat, group in img.groupby("category"):
            solid_cat = group[~group["iscrowd"]]
            assert (group["category_count"] == len(solid_cat)).all()
            for col, coord in (("ordinal_x", cx), ("ordinal_y", cy), ("size_rank_in_category", None)):
                order = solid_cat.sort_values(col)["instance_id"].tolist()
                assert sorted(solid_cat[col]) == list(range(1, len(solid_cat) + 1))
                values = [coord[i] for i in order] if coord else [-area[i] for i in order]
                assert values == sorted(values), (cat, col)


def test_real_photos_colour_and_occlusion(coco):
    result, facts, _, _ = coco
    decoded = _decoded(result)
    f = facts.set_index("instance_id")
    for image_id, inst in result.instances.groupby("image_id"):
        rgb = load_rgb(result.images.set_index("image_id").loc[image_id, "uri"])
        stack = np.zeros(rgb.shape[:2], np.int32)
        for i in inst["instance_id"]:
            stack += decoded[i]
        for i in inst["instance_id"]:
            m = decoded[i]
            assert (f.loc[i, "color"], f.loc[i, "color_frac"]) == pytest.approx(dominant_color(rgb, m))
            ys, xs = np.nonzero(m)
            others = (stack - m)[ys.min():ys.max() + 1, xs.min():xs.max() + 1] > 0
            assert f.loc[i, "occlusion"] == pytest.approx(others.mean())
    assert (facts["occlusion"] > 0).any()


@pytest.mark.parametrize("which", ["coco", "panoptic"])
def test_real_photos_relations_are_consistent(which, request):
    result, facts, relations, _ = request.getfixturevalue(which)
    triples = _triples(relations)
    assert len(triples) == len(relations)  # no duplicates
    image_of = dict(zip(facts["instance_id"], facts["image_id"]))
    for image_id, s, rel, o in triples:
        assert s != o
        assert image_of[s] == image_of[o] == image_id
        if rel in CONVERSE:
            assert (image_id, o, CONVERSE[rel], s) in triples, (s, rel, o)
        if rel in ("left_of", "above", "inside", "on"):
            assert (image_id, o, rel, s) not in triples, (s, rel, o)
        if rel == "inside":
            assert (image_id, s, "overlapping", o) not in triples
    assert set(relations["relation"]) <= set(RELATIONS)
    assert {"left_of", "above", "next_to"} <= set(relations["relation"])


def test_coco_sample_has_crowd_relations_and_describes_fast(coco):
    result, facts, relations, seconds = coco
    crowd_ids = set(facts.loc[facts["iscrowd"], "instance_id"])
    assert len(crowd_ids) == int(result.instances["iscrowd"].sum()) > 0
    assert crowd_ids & (set(relations["subject_id"]) | set(relations["object_id"]))
    assert seconds < 10, f"describe took {seconds:.1f}s for {len(facts)} instances"


# -- hand-made scenes ------------------------------------------------------------------------

H, W = 100, 200


def _scene(shapes: list[tuple[str, tuple[int, int, int, int]]], crowd=(), image_id="t:1"):
    """An image row, instance rows and pixels from (category, box) rectangles (x0, y0, x1, y1 end-exclusive)."""
    rows = []
    for k, (cat, (x0, y0, x1, y1)) in enumerate(shapes):
        m = np.zeros((H, W), bool)
        m[y0:y1, x0:x1] = True
        rows.append(_row(image_id, k, cat, m, k in crowd))
    return _image(image_id), pd.DataFrame(rows), np.full((H, W, 3), 128, np.uint8)


def _row(image_id: str, k: int, cat: str, m: np.ndarray, crowd: bool = False) -> dict:
    rle = masks.encode(m)
    x, y, w, h = masks.bbox(rle, H, W)
    return {"instance_id": f"{image_id}:{k}", "image_id": image_id, "source_id": "t", "orig_id": k,
            "category_id": 1, "category": cat, "supercategory": "thing", "iscrowd": crowd,
            "area": float(m.sum()), "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h,
            "rle": rle, "height": H, "width": W}


def _image(image_id: str) -> dict:
    return {"image_id": image_id, "width": W, "height": H, "uri": f"/nowhere/{image_id}.png"}


def _rels(relations: list[dict]) -> set[tuple[int, str, int]]:
    return {(int(r["subject_id"].split(":")[-1]), r["relation"], int(r["object_id"].split(":")[-1])) for r in relations}


def test_side_by_side_far_apart_and_stacked():
    img, inst, rgb = _scene([
        ("box", (10, 40, 40, 70)),     # 0
        ("box", (45, 40, 75, 70)),     # 1: right of 0, small gap
        ("box", (170, 5, 195, 20)),    # 2: far away from both
        ("cup", (50, 10, 65, 30)),     # 3: above 1, floating 10 px over it
    ])
    _, rels = describe_image(img, inst, rgb, FactsConfig())
    got = _rels(rels)
    assert {(0, "left_of", 1), (1, "right_of", 0), (0, "next_to", 1), (1, "next_to", 0)} <= got
    assert {(3, "above", 1), (1, "below", 3)} <= got
    assert (3, "on", 1) not in got          # no contact
    assert not {r for r in got if 2 in (r[0], r[2])}  # beyond near_distance
    assert (3, "next_to", 1) not in got


def test_on_inside_overlapping_from_masks():
    table = np.zeros((H, W), bool)
    table[60:90, 20:180] = True
    cup = np.zeros((H, W), bool)
    cup[40:61, 50:70] = True            # bottom row meets the table's top row
    table &= ~cup                       # modal masks: the cup hides a strip of the table
    ring = np.zeros((H, W), bool)
    ring[5:45, 120:170] = True
    ring[15:35, 135:155] = False        # the bowl's visible pixels around its content
    content = np.zeros((H, W), bool)
    content[17:33, 137:153] = True
    a = np.zeros((H, W), bool)
    a[5:30, 5:35] = True
    b = np.zeros((H, W), bool)
    b[10:35, 25:50] = True              # overlaps a by 10 x 20 px
    inst = pd.DataFrame([_row("t:1", k, c, m) for k, (c, m) in
                         enumerate([("table", table), ("cup", cup), ("bowl", ring), ("apple", content),
                                    ("book", a), ("book", b)])])
    facts, rels = describe_image(_image("t:1"), inst, np.zeros((H, W, 3), np.uint8), FactsConfig())
    got = _rels(rels)
    assert (1, "on", 0) in got and (0, "on", 1) not in got
    assert (3, "inside", 2) in got and (2, "inside", 3) not in got
    assert {(4, "overlapping", 5), (5, "overlapping", 4)} <= got
    assert not {r for r in got if r[1] == "overlapping" and {r[0], r[2]} != {4, 5}}
    assert {r for r in got if r[1] == "on"} == {(1, "on", 0)}
    f = {r["instance_id"]: r for r in facts}
    assert f["t:1:2"]["occlusion"] == pytest.approx(content.sum() / (40 * 50))
    assert f["t:1:4"]["ordinal_x"] == 1 and f["t:1:5"]["ordinal_x"] == 2


def test_on_needs_mask_contact_not_just_boxes():
    table = np.zeros((H, W), bool)
    table[60:90, 20:180] = True
    lamp = np.zeros((H, W), bool)
    lamp[30:50, 50:70] = True           # floats 10 px over the table...
    lamp[50:60, 60] = True              # ...but a 1-px cord reaches it: the box touches, the mask barely
    cup = lamp.copy()
    cup[50:60, 50:70] = True            # a solid cup standing on the table
    for mask, expect_on in ((lamp, False), (cup, True)):
        inst = pd.DataFrame([_row("t:1", 0, "table", table), _row("t:1", 1, "thing", mask)])
        got = _rels(describe_image(_image("t:1"), inst, np.zeros((H, W, 3), np.uint8), FactsConfig())[1])
        assert ((1, "on", 0) in got) == expect_on
        assert (1, "above", 0) in got


def test_partner_cap_keeps_nearest_pairs_and_stays_symmetric():
    # ten boxes in a row, 4 px apart: all within near_distance of each other
    shapes = [("box", (5 + 19 * k, 40, 20 + 19 * k, 60)) for k in range(10)]
    img, inst, rgb = _scene(shapes)
    cfg = FactsConfig(near_distance=0.9, max_relation_partners=2)
    _, rels = describe_image(img, inst, rgb, cfg)
    got = _rels(rels)
    pairs = {frozenset((s, o)) for s, _, o in got}
    # each box is related to its nearest two (ties by centroid distance), no box to one 3+ slots away
    assert all(frozenset((k, k + 1)) in pairs for k in range(9))
    assert all(abs(a - b) <= 2 for a, b in map(tuple, pairs))
    for s, rel, o in got:
        if rel in CONVERSE:
            assert (o, CONVERSE[rel], s) in got
    uncapped = _rels(describe_image(img, inst, rgb, FactsConfig(near_distance=0.9, max_relation_partners=20))[1])
    assert (0, "left_of", 9) in uncapped and (0, "left_of", 9) not in got


def test_crowd_gets_facts_but_no_rank():
    img, inst, rgb = _scene([("person", (10, 10, 60, 90)), ("person", (80, 10, 100, 50)),
                             ("person", (110, 10, 190, 90))], crowd={2})
    facts, rels = describe_image(img, inst, rgb, FactsConfig())
    f = {r["instance_id"]: r for r in facts}
    assert [f[f"t:1:{k}"]["size_rank"] for k in range(3)] == [1, 2, 0]
    assert [f[f"t:1:{k}"]["ordinal_x"] for k in range(3)] == [1, 2, 0]
    assert {f[f"t:1:{k}"]["category_count"] for k in range(3)} == {2}
    assert (1, "left_of", 2) in _rels(rels)
    assert f["t:1:0"]["color"] == "gray" and f["t:1:0"]["color_frac"] == 1.0


def test_bad_input_is_named():
    img, inst, rgb = _scene([("box", (10, 10, 30, 30))])
    with pytest.raises(ValueError, match="t:1.*pixels are 100x50"):
        describe_image(img, inst, rgb[:50, :100], FactsConfig())
    images = pd.DataFrame([img])
    with pytest.raises(ValueError, match="missing from the images table"):
        describe(images.iloc[:0], inst)

    def broken(uri, size=None):
        raise OSError("disk on fire")

    with pytest.raises(ValueError, match="/nowhere/t:1.png.*disk on fire"):
        describe(images, inst, load=broken)


def test_describe_reads_only_images_with_instances():
    img, inst, rgb = _scene([("box", (10, 10, 30, 30))])
    empty = _image("t:2")
    read = []

    def load(uri, size=None):
        read.append(uri)
        return rgb

    facts, relations = describe(pd.DataFrame([img, empty]), INSTANCES.validate(inst), load=load)
    assert read == [img["uri"]]
    assert facts["image_id"].tolist() == ["t:1"] and len(relations) == 0
    empty_facts, empty_rel = describe(pd.DataFrame([empty]), inst.iloc[:0], load=load)
    assert list(empty_facts.columns) == FACTS.columns and len(empty_facts) == 0 and len(empty_rel) == 0
