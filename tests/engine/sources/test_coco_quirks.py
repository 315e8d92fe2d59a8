"""COCO exports from Roboflow and LabelMe converters: their quirks are read, not rejected."""
import json

import pytest

from engine.config import IngestConfig
from engine.sources.ingest import ingest, resolve_source
from engine.sources import detect_format
from tests.custom_data import BOTTLES, FRUITS_NUTS_IMAGES, FRUITS_NUTS_JSON


@pytest.fixture(scope="module")
def bottles():
    return ingest([resolve_source(str(BOTTLES))], IngestConfig(verify_pixels=False))


def test_roboflow_folder_is_found_with_images_beside_the_json():
    spec = resolve_source(str(BOTTLES))
    assert spec.format == "coco" and spec.annotations_uri.endswith("_annotations.coco.json")
    assert spec.images_uri == str(BOTTLES) and spec.source_id == "crystl_bottles-test"
    assert detect_format(str(BOTTLES)) == "coco"


def test_roboflow_ids_from_zero_placeholder_parent_and_box_area(bottles):
    doc = json.loads((BOTTLES / "_annotations.coco.json").read_text())
    assert len(bottles.images) == 16 and len(bottles.instances) == 54 and bottles.quarantine.empty
    assert 0 in set(bottles.images["orig_id"]) and 0 in set(bottles.instances["orig_id"])   # id 0 is an id
    assert "Bottle" not in set(bottles.instances["category"])        # the unused parent is no category here
    # `area` in the json is the box area; ingest recomputes it from the mask
    box_area = {a["id"]: a["area"] for a in doc["annotations"]}
    ratios = [box_area[r.orig_id] / r.area for r in bottles.instances.itertuples()]
    assert min(ratios) > 1.05 and all(abs(r.area - r.bbox_w * r.bbox_h) > 1 for r in bottles.instances.itertuples())


def test_labelme_to_coco_export_reads(tmp_path):
    res = ingest([resolve_source(str(FRUITS_NUTS_JSON), str(FRUITS_NUTS_IMAGES))], IngestConfig(verify_pixels=False))
    assert (len(res.images), len(res.instances)) == (18, 165)
    assert sorted(res.instances["category"].unique()) == ["date", "fig", "hazelnut"]


def test_placeholder_categories_are_dropped_and_their_annotations_quarantined(tmp_path):
    doc = json.loads((BOTTLES / "_annotations.coco.json").read_text())
    doc["categories"].append({"id": 9, "name": "background", "supercategory": "none"})
    doc["annotations"][0]["category_id"] = 9
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    res = ingest([resolve_source(str(tmp_path / "ann.json"), str(BOTTLES))], IngestConfig(verify_pixels=False))
    q = res.quarantine
    cat = q[q["record_type"] == "category"]
    assert list(cat["record_id"]) == ["9"] and "names no concept" in cat["detail"].iloc[0]
    ann = q[q["record_type"] == "annotation"]
    assert list(ann["reason"]) == ["unknown_category"] and list(ann["record_id"]) == [str(doc["annotations"][0]["id"])]
    assert len(res.instances) == 53
