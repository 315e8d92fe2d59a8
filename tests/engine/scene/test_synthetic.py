"""Synthetic scenes: deterministic, valid COCO, clean for ingest, shapes apart unless intended."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from engine.sources.ingest import SourceSpec, ingest
from engine.scene.synthetic import GROUPS, PALETTE, describe_dataset, load_dataset, make_dataset


def _digest(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("syn") / "d", n_images=12, seed=3)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = make_dataset(tmp_path / "a", 4, seed=5)
    b = make_dataset(tmp_path / "b", 4, seed=5)
    c = make_dataset(tmp_path / "c", 4, seed=6)
    assert _digest(a.root) == _digest(b.root)
    assert _digest(a.root) != _digest(c.root)
    assert a.truth == b.truth
    assert load_dataset(a.root).truth == a.truth


def test_valid_coco_with_every_group_kind(dataset):
    coco = COCO(str(dataset.annotations))
    assert len(coco.getImgIds()) == 12
    kinds = {t["group"] for t in dataset.truth["instances"].values()}
    assert kinds == set(GROUPS)
    for img in coco.dataset["images"]:
        with Image.open(dataset.images_dir / img["file_name"]) as im:
            assert im.size == (img["width"], img["height"])
    for ann in coco.dataset["annotations"]:
        m = coco.annToMask(ann)
        assert m.sum() == ann["area"] > 0
        assert str(ann["id"]) in dataset.truth["instances"]
        if ann["iscrowd"]:
            assert isinstance(ann["segmentation"]["counts"], list)  # uncompressed, as COCO crowds are


def test_polygons_flag_switches_to_rle(tmp_path):
    poly = make_dataset(tmp_path / "p", 3, seed=1)
    rle = make_dataset(tmp_path / "r", 3, seed=1, polygons=False)
    kinds = lambda ds: {type(a["segmentation"]).__name__
                        for a in json.loads(ds.annotations.read_text())["annotations"] if not a["iscrowd"]}
    assert "list" in kinds(poly)
    assert kinds(rle) == {"dict"}


def test_shapes_do_not_overlap_unless_the_scene_asks(dataset):
    coco = COCO(str(dataset.annotations))
    truth = dataset.truth["instances"]
    for img_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        ms = {a["id"]: coco.annToMask(a).astype(bool) for a in anns}
        for a in anns:
            for b in anns:
                if a["id"] >= b["id"]:
                    continue
                inter = (ms[a["id"]] & ms[b["id"]]).sum()
                both_overlap = truth[str(a["id"])]["group"] == truth[str(b["id"])]["group"] == "overlap"
                if inter and not both_overlap:
                    # rasterised polygons may share an edge pixel row with a neighbour in their group
                    assert inter <= 0.02 * min(ms[a["id"]].sum(), ms[b["id"]].sum()), (img_id, a["id"], b["id"])


def test_drawn_pixels_have_the_truth_colour(dataset):
    """Centre pixel of each single shape is (noisy) palette colour of its truth entry."""
    coco = COCO(str(dataset.annotations))
    for ann in coco.dataset["annotations"]:
        t = dataset.truth["instances"][str(ann["id"])]
        if t["group"] != "single":
            continue
        img = coco.imgs[ann["image_id"]]
        rgb = np.asarray(Image.open(dataset.images_dir / img["file_name"]).convert("RGB")).astype(int)
        m = coco.annToMask(ann).astype(bool)
        assert np.abs(rgb[m].mean(axis=0) - PALETTE[t["color"]]).max() < 8


def test_ingest_accepts_it_cleanly(dataset):
    result = ingest([SourceSpec("syn", str(dataset.annotations), str(dataset.images_dir))])
    assert len(result.quarantine) == 0
    assert len(result.images) == 12
    assert set(result.instances["instance_id"]) == set(dataset.instance_truth("syn"))
    assert set(result.images["license_name"]) == {"CC0 1.0 (generated scenes)"}  # the card can name it


def test_describe_dataset_gives_scene_ready_tables(dataset):
    from engine.language.programs import Constraint, P, Scene, evaluate

    t = describe_dataset(dataset, "syn")
    assert set(t.facts["instance_id"]) == set(dataset.instance_truth("syn"))
    on = dataset.relation_truth("syn")
    image_id, cup, rel, table = next(r for r in sorted(on) if r[2] == "on")
    scene = Scene.from_tables(image_id, t.facts, t.relations)
    program = P(Constraint("category", "cup"),
                Constraint("relation", rel="on", obj=P(Constraint("category", "dining table"))))
    assert cup in evaluate(program, scene)


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown group kind 'tree'"):
        make_dataset(tmp_path, 1, kinds=("single", "tree"))
