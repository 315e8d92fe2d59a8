"""LabelMe folders: one json per image, into the same tables and quarantine."""
import json

import pytest

from engine.config import IngestConfig
from engine.sources.ingest import IngestError, ingest, resolve_source
from engine.sources import detect_format
from tests.custom_data import labelme_folder


def test_a_labelme_folder_of_real_photos_reads(tmp_path):
    folder = labelme_folder(tmp_path, 3)
    spec = resolve_source(str(folder))
    assert spec.format == "labelme" and detect_format(str(folder)) == "labelme"
    res = ingest([spec], IngestConfig())
    assert len(res.images) == 3 and res.quarantine.empty
    assert set(res.instances["category"]) <= {"date", "fig", "hazelnut"} and len(res.instances) > 20


def test_each_bad_shape_is_quarantined_with_its_reason(tmp_path):
    folder = labelme_folder(tmp_path, 2)
    path = sorted(folder.glob("*.json"))[0]
    doc = json.loads(path.read_text())
    poly = doc["shapes"][0]["points"]
    n_good = len(doc["shapes"])
    doc["shapes"] += [
        {"label": "date", "shape_type": "rectangle", "points": [[10, 10], [50, 50]]},     # a box, not a mask
        {"label": "date", "shape_type": "line", "points": [[10, 10], [50, 50]]},
        {"label": "", "shape_type": "polygon", "points": poly},                           # no label
        {"label": "fig", "shape_type": "polygon", "points": [["a", 1], [2, 3], [4, 5]]},  # not numbers
        {"label": "fig", "shape_type": "polygon", "points": [[1, 1], [2, 2]]},            # 2 points: ingest's rule
        {"label": "__background__", "shape_type": "polygon", "points": poly},             # a placeholder
        {"label": "fig", "shape_type": "circle", "points": [[100, 100], [120, 100]]},     # a circle is a mask
        {"label": "fig", "group_id": 7, "shape_type": "polygon", "points": [[200, 200], [240, 200], [240, 240]]},
        {"label": "fig", "group_id": 7, "shape_type": "polygon", "points": [[300, 300], [340, 300], [340, 340]]},
    ]
    path.write_text(json.dumps(doc))
    (folder / "notes.json").write_text(json.dumps({"comment": "not labelme"}))
    res = ingest([resolve_source(str(folder))], IngestConfig())
    q = res.quarantine
    reasons = sorted(q["reason"])
    assert reasons == ["bad_polygon", "bad_polygon", "bad_polygon", "bad_record", "bad_record", "bad_record", "bad_record"]
    assert any("rectangle shape is not a mask" in d for d in q["detail"])
    assert any("not a LabelMe file" in d for d in q["detail"]) and any("notes.json" in f for f in q["file"])
    assert any("needs an even count >= 6" in d for d in q["detail"])         # the COCO polygon rule
    mine = res.instances[res.instances["image_id"].isin(res.images[res.images["file_name"] == doc["imagePath"]]["image_id"])]
    assert len(mine) == n_good + 2            # + the circle, + one instance of two grouped parts
    grouped = mine[(mine["bbox_x"] - 200).abs() <= 2]
    assert len(grouped) == 1 and grouped["bbox_w"].iloc[0] > 100          # both parts in one mask


def test_wrong_image_size_and_missing_image_are_quarantined_like_coco(tmp_path):
    folder = labelme_folder(tmp_path, 2)
    a, b = sorted(folder.glob("*.json"))
    doc = json.loads(a.read_text())
    doc["imageWidth"] = 801
    a.write_text(json.dumps(doc))
    doc = json.loads(b.read_text())
    doc["imagePath"] = "gone.jpg"
    b.write_text(json.dumps(doc))
    res = ingest([resolve_source(str(folder))], IngestConfig())
    img = res.quarantine[res.quarantine["record_type"] == "image"]
    assert sorted(img["reason"]) == ["missing_image", "size_mismatch"] and res.images.empty


def test_a_folder_without_labelme_files_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(IngestError, match="no LabelMe json files"):
        ingest([resolve_source(str(tmp_path), format="labelme")])
