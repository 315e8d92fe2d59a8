"""YOLO segmentation exports: data.yaml + polygon rows, into the same tables and quarantine."""
import pytest

from engine.config import IngestConfig
from engine.sources.ingest import IngestError, ingest, resolve_source
from engine.sources import detect_format
from tests.custom_data import YOLOSEG, yoloseg_copy


def test_real_roboflow_export_reads_with_its_odd_split_paths():
    spec = resolve_source(str(YOLOSEG))
    assert spec.format == "yolo_seg" and detect_format(str(YOLOSEG / "data.yaml")) == "yolo_seg"
    res = ingest([spec], IngestConfig(verify_pixels=False))
    assert (len(res.images), len(res.instances)) == (12, 49) and res.quarantine.empty
    assert res.instances.groupby("category").size().to_dict() == {"kivi": 27, "mango": 8, "orange": 14}
    assert set(res.images["license_name"]) == {"CC BY 4.0"}
    # polygons are denormalised to pixels: masks inside the 640x640 images, areas recomputed
    assert (res.instances["bbox_x"] + res.instances["bbox_w"] <= 640).all() and (res.instances["area"] > 0).all()
    assert 0.002 < (res.instances["area"] / (640 * 640)).min() and (res.instances["area"] / (640 * 640)).max() < 0.5


def test_each_bad_row_is_quarantined_with_its_reason(tmp_path):
    root = yoloseg_copy(tmp_path)
    labels = sorted((root / "valid" / "labels").iterdir())
    first = labels[0]
    good = first.read_text().splitlines()
    first.write_text("\n".join(good + [
        "7 0.1 0.1 0.2 0.1 0.2 0.2",          # class id not in names
        "0 0.5 0.5 0.2 0.2",                  # a box row
        "0 0.1 0.1 0.2 0.1 0.2",              # odd count
        "0 0.1 0.1 0.2 0.2",                  # 2 points
        "zero 0.1 0.1 0.2 0.1 0.2 0.2",       # not numbers
        "0 0.1 0.1 5.0 0.1 0.2 0.2",          # far outside the image: ingest's polygon check
        "",
    ]))
    (root / "valid" / "labels" / "orphan.txt").write_text("0 0.1 0.1 0.2 0.1 0.2 0.2\n")
    res = ingest([resolve_source(str(root))], IngestConfig(verify_pixels=False))
    q = res.quarantine
    by = {(r.record_type, r.reason) for r in q.itertuples()}
    assert ("annotation", "unknown_category") in by and ("annotation", "bad_record") in by
    assert ("image", "missing_image") in by
    bad_poly = q[q["reason"] == "bad_polygon"]["detail"].tolist()
    assert len(bad_poly) == 4 and any("box row" in d for d in bad_poly) and any("odd count" in d for d in bad_poly)
    assert any("margin" in d for d in bad_poly)                   # the same rule as COCO polygons
    # the adapter's rows name the label file and line; ingest's own name the data.yaml and the row's id
    adapter = q[(q["record_type"] == "annotation") & ~q["detail"].str.contains("margin")]
    assert len(adapter) == 5 and all(f.endswith(first.name) for f in adapter["file"])
    assert all(rid.endswith(tuple(f"#{n}" for n in range(len(good) + 1, len(good) + 7))) for rid in adapter["record_id"])
    assert len(res.instances) == 49                                # every good row is kept


def test_unreadable_data_yaml_and_missing_splits_are_clear_errors(tmp_path):
    root = yoloseg_copy(tmp_path)
    (root / "data.yaml").write_text("names: [a, b]\nnc: 3\nval: ../valid/images\n")
    with pytest.raises(IngestError, match="nc is 3 but 'names' lists 2"):
        ingest([resolve_source(str(root))])
    (root / "data.yaml").write_text("names: [a]\nval: ../nowhere/images\n")
    with pytest.raises(IngestError, match="none of the split folders"):
        ingest([resolve_source(str(root))])
    (root / "data.yaml").write_text("names: [a\n")
    with pytest.raises(IngestError, match="not valid YAML"):
        ingest([resolve_source(str(root))])


def test_missing_image_pixels_are_quarantined_like_coco(tmp_path):
    root = yoloseg_copy(tmp_path)
    img = sorted((root / "valid" / "images").iterdir())[0]
    img.write_bytes(b"not an image")
    res = ingest([resolve_source(str(root))], IngestConfig(verify_pixels=False))
    q = res.quarantine
    assert list(q[q["record_type"] == "image"]["reason"]) == ["unreadable_image"]
    assert len(res.images) == 11
