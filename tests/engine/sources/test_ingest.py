"""Ingest on the real samples, and one test per kind of bad input."""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from engine.scene import masks
from engine.config import IngestConfig
from engine.sources.ingest import (
    IngestError,
    SourceSpec,
    ingest,
    load_coco,
    read_tables,
    resolve_source,
    safe_relative_path,
    write_tables,
)
from schemas.quarantine import REASONS
from tests.coco_fixtures import COCO_SAMPLE, PANOPTIC_SAMPLE, load_sample, make_case, png_header_only


@pytest.fixture(scope="module")
def coco():
    return ingest([resolve_source(str(COCO_SAMPLE))], IngestConfig())


@pytest.fixture(scope="module")
def panoptic():
    return ingest([resolve_source(str(PANOPTIC_SAMPLE))], IngestConfig())


def _json_rle(seg: dict | list, h: int, w: int):
    """pycocotools' own reading of a COCO segmentation, as the reference."""
    if isinstance(seg, dict) and isinstance(seg["counts"], str):
        return {"size": seg["size"], "counts": seg["counts"].encode()}
    rle = mask_utils.frPyObjects(seg, h, w)
    return mask_utils.merge(rle) if isinstance(rle, list) else rle


# ---------------------------------------------------------------- real data


def test_coco_sample_images_counts_and_hashes(coco):
    src = load_sample(COCO_SAMPLE)
    assert len(coco.images) == len(src["images"]) == 30
    assert len(coco.instances) == len(src["annotations"]) == 370
    assert coco.instances["iscrowd"].sum() == sum(a["iscrowd"] for a in src["annotations"]) == 11
    assert coco.quarantine.empty
    for row in coco.images.itertuples():
        data = (COCO_SAMPLE / "images" / row.file_name).read_bytes()
        assert row.sha256 == hashlib.sha256(data).hexdigest()
        assert row.n_bytes == len(data)
        with Image.open(COCO_SAMPLE / "images" / row.file_name) as im:
            assert (row.width, row.height) == im.size
        assert row.image_id == f"coco-sample:{row.orig_id}"
        assert row.uri == os.path.realpath(COCO_SAMPLE / "images" / row.file_name)  # the real path read
    assert coco.images["unit_id"].str.fullmatch(r"u-[0-9a-f]{16}").all()


def test_coco_sample_masks_match_pycocotools_and_json(coco):
    src = load_sample(COCO_SAMPLE)
    anns = {a["id"]: a for a in src["annotations"]}
    cats = {c["id"]: c for c in src["categories"]}
    sizes = coco.images.set_index("image_id")[["height", "width"]]
    for row in coco.instances.itertuples():
        ann = anns[row.orig_id]
        h, w = sizes.loc[row.image_id]
        assert (row.height, row.width) == (h, w)
        mask = masks.decode(row.rle, h, w)
        assert mask.shape == (h, w)
        expected = mask_utils.decode(_json_rle(ann["segmentation"], h, w)).astype(bool)
        assert np.array_equal(mask, expected), row.instance_id
        assert row.area == mask.sum()
        ys, xs = np.nonzero(mask)
        assert (row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h) == (
            xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        if not ann["iscrowd"]:  # rasterised polygons differ from the json area along the border
            assert abs(row.area - ann["area"]) <= 2 * math.sqrt(ann["area"]) + 1, row.instance_id
        assert row.category == cats[ann["category_id"]]["name"]
        assert row.supercategory == cats[ann["category_id"]]["supercategory"]
        assert row.iscrowd == bool(ann["iscrowd"])
        assert row.image_id == f"coco-sample:{ann['image_id']}"


def test_panoptic_sample_compressed_rle(panoptic):
    src = load_sample(PANOPTIC_SAMPLE)
    assert len(src["categories"]) == 133
    assert len(panoptic.images) == 2 and len(panoptic.instances) == 50
    assert panoptic.quarantine.empty
    names = {c["id"]: c["name"] for c in src["categories"]}
    anns = {a["id"]: a for a in src["annotations"]}
    for row in panoptic.instances.itertuples():
        ann = anns[row.orig_id]
        expected = mask_utils.decode(_json_rle(ann["segmentation"], row.height, row.width)).astype(bool)
        assert np.array_equal(masks.decode(row.rle, row.height, row.width), expected)
        assert row.area == ann["area"]  # panoptic areas are exact pixel counts
        assert row.category == names[ann["category_id"]]
    assert panoptic.instances["category"].nunique() == len({a["category_id"] for a in src["annotations"]})


def test_two_sources_in_one_build_are_namespaced(coco, panoptic):
    both = ingest([resolve_source(str(COCO_SAMPLE)), resolve_source(str(PANOPTIC_SAMPLE))])
    assert len(both.images) == 32 and len(both.instances) == 420
    assert both.images["image_id"].is_unique and both.instances["instance_id"].is_unique
    for df in (both.images, both.instances):
        assert (df["image_id"].str.split(":").str[0] == df["source_id"]).all()
    # each source's rows are what it gives alone
    alone = pd.concat([coco.instances, panoptic.instances], ignore_index=True)
    pd.testing.assert_frame_equal(both.instances, alone)


def test_same_ids_in_two_sources_do_not_collide(tmp_path):
    a, b = make_case(tmp_path, name="a"), make_case(tmp_path, name="b")
    res = ingest([a.write(), b.write()])
    assert len(res.images) == 2 * len(a.images)
    assert res.images["image_id"].is_unique and res.instances["instance_id"].is_unique
    assert set(res.images["orig_id"][res.images.source_id == "a"]) == set(res.images["orig_id"][res.images.source_id == "b"])
    # different ids -> different work units, even with identical bytes
    assert not set(res.images.unit_id[res.images.source_id == "a"]) & set(res.images.unit_id[res.images.source_id == "b"])


def test_duplicate_source_ids_are_refused(tmp_path):
    a = make_case(tmp_path, name="a").write()
    with pytest.raises(IngestError, match="'a' is used by two sources"):
        ingest([a, SourceSpec("a", a.annotations_uri, a.images_uri)])


def test_output_is_deterministic_and_independent_of_record_order(tmp_path):
    case = make_case(tmp_path, n_images=4)
    first = ingest([case.write()], IngestConfig(unit_size=2))
    rng = random.Random(0)
    for key in ("images", "annotations", "categories"):
        rng.shuffle(case.coco[key])
    second = ingest([case.write()], IngestConfig(unit_size=2))
    for name in ("images", "instances", "quarantine"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert list(first.images["orig_id"]) == sorted(first.images["orig_id"])
    assert list(first.instances["orig_id"]) == sorted(first.instances["orig_id"])
    assert first.images["unit_id"].nunique() == 2


def test_write_and_read_tables_round_trip(tmp_path, coco):
    paths = write_tables(coco, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())
    back = read_tables(tmp_path / "out")
    for name in ("images", "instances", "quarantine"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(coco, name), check_dtype=False)
    write_tables(coco, tmp_path / "out")  # overwrite in place, no temp files left
    assert len(list((tmp_path / "out").iterdir())) == 3


# ---------------------------------------------------------------- sources


def test_resolve_source_folder_and_json(tmp_path):
    spec = resolve_source(str(COCO_SAMPLE))
    assert spec == SourceSpec("coco-sample", str(COCO_SAMPLE / "instances.json"), str(COCO_SAMPLE / "images"))
    assert resolve_source(str(COCO_SAMPLE / "instances.json")) == spec
    case = make_case(tmp_path, name="My Data:v1")
    case.write()
    case.json_path.rename(case.root / "val.json")
    other = resolve_source(str(case.root / "val.json"))
    assert other.source_id == "My-Data-v1-val"
    assert other.images_uri == str(case.images_dir)
    assert resolve_source(str(COCO_SAMPLE), images=str(tmp_path), source_id="x").images_uri == str(tmp_path)


def test_resolve_source_missing_files_name_them(tmp_path):
    with pytest.raises(IngestError, match=str(tmp_path / "instances.json")):
        resolve_source(str(tmp_path))
    (tmp_path / "instances.json").write_text("{}")
    with pytest.raises(IngestError, match="image folder not found"):
        resolve_source(str(tmp_path))


# ---------------------------------------------------------------- bad files


def test_malformed_json_names_file_line_and_column(tmp_path):
    case = make_case(tmp_path)
    spec = case.write()
    text = json.dumps(case.coco, indent=1).splitlines()
    text.insert(5, '  "oops": ,')
    case.json_path.write_text("\n".join(text))
    with pytest.raises(IngestError) as err:
        ingest([spec])
    msg = str(err.value)
    assert str(case.json_path) in msg and "line 6, column 11" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained traceback


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key_is_named(tmp_path, key):
    case = make_case(tmp_path)
    del case.coco[key]
    spec = case.write()
    with pytest.raises(IngestError, match=f"{case.json_path}: missing required key\\(s\\) '{key}'"):
        ingest([spec])


def test_top_level_not_an_object(tmp_path):
    p = tmp_path / "instances.json"
    p.write_text("[1, 2]")
    with pytest.raises(IngestError, match="top level is a JSON list"):
        load_coco(str(p))


# ---------------------------------------------------------------- bad records


def _build(case, cfg=None):
    return ingest([case.write()], cfg or IngestConfig())


def _reasons(res, record_type, record_id):
    q = res.quarantine
    return list(q.reason[(q.record_type == record_type) & (q.record_id == str(record_id))])


def _assert_rest_ingested(res, case, bad_images=(), bad_anns=(), file=None):
    """Everything not named bad was ingested, everything named bad was not."""
    bad_images = set(bad_images)
    bad_anns = set(bad_anns) | {a["id"] for a in case.annotations if a["image_id"] in bad_images}
    want_images = {r["id"] for r in case.images} - bad_images
    want_anns = {a["id"] for a in case.annotations} - bad_anns
    assert set(res.images.orig_id) == want_images
    assert set(res.instances.orig_id) == want_anns
    assert want_images and want_anns
    assert set(res.quarantine.reason) <= set(REASONS)
    assert (res.quarantine.file == (file or str(case.json_path))).all()


def _image_quarantined(res, case, image, reason, file=None):
    assert _reasons(res, "image", image["id"]) == [reason]
    for ann in case.anns_of(image):
        assert _reasons(res, "annotation", ann["id"]) == ["unknown_image"]
    details = res.quarantine.detail[res.quarantine.record_type == "annotation"]
    assert details.str.contains(reason).all()
    _assert_rest_ingested(res, case, bad_images=[image["id"]], file=file)


def test_missing_image(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    case.image_path(img).unlink()
    res = _build(case)
    _image_quarantined(res, case, img, "missing_image")
    q = res.quarantine
    assert str(case.image_path(img)) in q.detail[q.record_type == "image"].item()


def test_truncated_image(tmp_path):
    case = make_case(tmp_path)
    img = case.images[1]
    data = case.image_path(img).read_bytes()
    case.image_path(img).write_bytes(data[: len(data) // 2])
    res = _build(case)
    _image_quarantined(res, case, img, "unreadable_image")
    assert res.quarantine.detail.str.contains("truncated").any()
    # the header alone is fine: without verify_pixels the image passes
    lax = _build(case, IngestConfig(verify_pixels=False))
    assert img["id"] in set(lax.images.orig_id) and lax.quarantine.empty


def test_not_an_image(tmp_path):
    case = make_case(tmp_path)
    img = case.images[2]
    case.image_path(img).write_bytes(b"<html>not a jpeg</html>")
    _image_quarantined(_build(case), case, img, "unreadable_image")


def test_decompression_bomb_by_configured_limit(tmp_path):
    case = make_case(tmp_path)
    limit = min(r["width"] * r["height"] for r in case.images)
    res = _build(case, IngestConfig(max_pixels=limit))
    big = [r["id"] for r in case.images if r["width"] * r["height"] > limit]
    assert big and len(big) < len(case.images)
    for rid in big:
        assert _reasons(res, "image", rid) == ["decompression_bomb"]
    _assert_rest_ingested(res, case, bad_images=big)


@pytest.mark.parametrize("side", [10_000, 20_000])  # our header check; PIL's own hard limit
def test_decompression_bomb_big_png_header(tmp_path, side):
    case = make_case(tmp_path)
    img = case.add_image({"id": case.next_id(case.images), "file_name": "bomb.png",
                          "width": side, "height": side}, png_header_only(side, side))
    res = _build(case)
    assert _reasons(res, "image", img["id"]) == ["decompression_bomb"]
    _assert_rest_ingested(res, case, bad_images=[img["id"]])


def test_size_mismatch(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    img["width"] += 1
    res = _build(case)
    _image_quarantined(res, case, img, "size_mismatch")
    assert res.quarantine.detail.str.contains(f"json says {img['width']}x{img['height']}").any()


def _first_polygon_ann(case):
    return next(a for a in case.annotations if not a["iscrowd"] and len(case.anns_of(
        next(i for i in case.images if i["id"] == a["image_id"]))) > 1)


@pytest.mark.parametrize("segmentation", [
    [[10.0, 10.0, 20.0, 20.0]],                       # 2 points
    [[10.0, 10.0, 20.0, 10.0, float("nan"), 30.0]],   # NaN
    [[10.0, 10.0, 20.0, 10.0, 20.0]],                 # odd coordinate count
    [[10.0, 10.0, 5000.0, 10.0, 20.0, 30.0]],         # far outside the image
    [[10.0, 10.0, "x", 10.0, 20.0, 30.0]],            # not numbers
    [],                                               # no polygon
])
def test_bad_polygon(tmp_path, segmentation):
    case = make_case(tmp_path)
    ann = _first_polygon_ann(case)
    ann["segmentation"] = segmentation
    res = _build(case)
    assert _reasons(res, "annotation", ann["id"]) == ["bad_polygon"]
    _assert_rest_ingested(res, case, bad_anns=[ann["id"]])


def test_polygon_margin_admits_points_just_outside(tmp_path):
    case = make_case(tmp_path)
    ann = _first_polygon_ann(case)
    w = next(i for i in case.images if i["id"] == ann["image_id"])["width"]
    ann["segmentation"] = [[w - 20.0, 10.0, w * 1.05, 10.0, w - 20.0, 40.0]]
    assert _build(case).quarantine.empty
    assert _reasons(_build(case, IngestConfig(polygon_margin=0.01)), "annotation", ann["id"]) == ["bad_polygon"]


def _crowd_ann(case):
    return next(a for a in case.annotations if a["iscrowd"])


def test_rle_size_mismatch(tmp_path):
    case = make_case(tmp_path)
    ann = _crowd_ann(case)
    ann["segmentation"]["size"] = [ann["segmentation"]["size"][0] + 1, ann["segmentation"]["size"][1]]
    res = _build(case)
    assert _reasons(res, "annotation", ann["id"]) == ["rle_size_mismatch"]
    _assert_rest_ingested(res, case, bad_anns=[ann["id"]])


@pytest.mark.parametrize("counts", [
    "short",           # uncompressed runs that stop before the image ends
    "compressed-short",  # a compressed string that does the same
    "negative",
    "garbage",
])
def test_rle_runs_must_cover_the_image(tmp_path, counts):
    case = make_case(tmp_path)
    ann = _crowd_ann(case)
    h, w = ann["segmentation"]["size"]
    seg = {"size": [h, w]}
    if counts == "short":
        seg["counts"] = [10, 5]
    elif counts == "compressed-short":
        seg["counts"] = mask_utils.encode(np.asfortranarray(np.ones((2, 2), np.uint8)))["counts"].decode()
    elif counts == "negative":
        seg["counts"] = [h * w + 5, -5]
    else:
        seg["counts"] = "\u00e9\u00e9"
    ann["segmentation"] = seg
    res = _build(case)
    assert _reasons(res, "annotation", ann["id"]) == ["bad_segmentation"]
    _assert_rest_ingested(res, case, bad_anns=[ann["id"]])


@pytest.mark.parametrize("segmentation", [None, "polygon", 42])
def test_segmentation_of_wrong_type(tmp_path, segmentation):
    case = make_case(tmp_path)
    ann = case.annotations[0]
    ann["segmentation"] = segmentation
    res = _build(case)
    assert _reasons(res, "annotation", ann["id"]) == ["bad_segmentation"]
    _assert_rest_ingested(res, case, bad_anns=[ann["id"]])


@pytest.mark.parametrize("kind", ["collinear", "empty_rle"])
def test_zero_area(tmp_path, kind):
    case = make_case(tmp_path)
    ann = _crowd_ann(case)
    h, w = ann["segmentation"]["size"]
    ann["segmentation"] = [[10.0, 10.0, 20.0, 10.0, 30.0, 10.0]] if kind == "collinear" else {"size": [h, w], "counts": [h * w]}
    res = _build(case)
    assert _reasons(res, "annotation", ann["id"]) == ["zero_area"]
    _assert_rest_ingested(res, case, bad_anns=[ann["id"]])


def test_duplicate_image_id_with_different_content(tmp_path):
    case = make_case(tmp_path)
    a, b = case.images[0], case.images[1]
    b_old = b["id"]
    for ann in case.anns_of(b):
        ann["image_id"] = a["id"]
    b["id"] = a["id"]
    res = _build(case)
    assert _reasons(res, "image", a["id"]) == ["duplicate_image_id", "duplicate_image_id"]
    anns = [x for x in case.annotations if x["image_id"] == a["id"]]
    assert all(_reasons(res, "annotation", x["id"]) == ["unknown_image"] for x in anns)
    assert set(res.images.orig_id) == {r["id"] for r in case.images} - {a["id"], b_old}
    assert set(res.instances.orig_id) == {x["id"] for x in case.annotations} - {x["id"] for x in anns}


def test_duplicate_image_id_identical_repeat_keeps_first(tmp_path):
    case = make_case(tmp_path)
    case.images.append(dict(case.images[0]))
    res = _build(case)
    assert _reasons(res, "image", case.images[0]["id"]) == ["duplicate_image_id"]
    assert "first copy kept" in res.quarantine.detail.iloc[0]
    _assert_rest_ingested(res, case)


def test_duplicate_annotation_id(tmp_path):
    case = make_case(tmp_path)
    first, second = case.annotations[0], case.annotations[1]
    second["id"] = first["id"]
    res = _build(case)
    assert _reasons(res, "annotation", first["id"]) == ["duplicate_annotation_id"] * 2
    _assert_rest_ingested(res, case, bad_anns=[first["id"]])
    # an identical repeat keeps one copy
    case.annotations[1] = dict(first)
    res = _build(case)
    assert _reasons(res, "annotation", first["id"]) == ["duplicate_annotation_id"]
    assert first["id"] in set(res.instances.orig_id)


def test_unknown_category(tmp_path):
    case = make_case(tmp_path)
    ann = case.annotations[3]
    ann["category_id"] = max(c["id"] for c in case.coco["categories"]) + 1000
    res = _build(case)
    assert _reasons(res, "annotation", ann["id"]) == ["unknown_category"]
    _assert_rest_ingested(res, case, bad_anns=[ann["id"]])


def test_annotation_of_unknown_image(tmp_path):
    case = make_case(tmp_path)
    ann = case.annotations[4]
    ann["image_id"] = case.next_id(case.images) + 1000
    res = _build(case)
    assert _reasons(res, "annotation", ann["id"]) == ["unknown_image"]
    assert res.quarantine.detail.str.contains("is not in 'images'").any()
    _assert_rest_ingested(res, case, bad_anns=[ann["id"]])


@pytest.mark.parametrize("file_name", ["../instances.json", "/etc/passwd", "sub/../../x.jpg",
                                       "..\\x.jpg", "C:\\data\\x.jpg", "s3://bucket/x.jpg", ""])
def test_unsafe_path(tmp_path, file_name):
    case = make_case(tmp_path)
    img = case.images[1]
    img["file_name"] = file_name
    res = _build(case)
    _image_quarantined(res, case, img, "unsafe_path")


def test_safe_relative_paths_are_normalised():
    assert safe_relative_path("a/./b/../c.jpg") == "a/c.jpg"
    assert safe_relative_path("sub\\x.jpg") == "sub/x.jpg"
    assert safe_relative_path("a/../../b.jpg") is None


@pytest.mark.parametrize("field,value", [("width", 0), ("height", None), ("id", "12")])
def test_image_record_with_bad_fields(tmp_path, field, value):
    case = make_case(tmp_path)
    img = case.images[0]
    orig_id = img["id"]
    img[field] = value
    res = _build(case)
    assert set(res.quarantine.reason[res.quarantine.record_type == "image"]) == {"bad_record"}
    assert set(res.quarantine.reason[res.quarantine.record_type == "annotation"]) == {"unknown_image"}
    _assert_rest_ingested(res, case, bad_images=[orig_id, img["id"]])


def test_quarantine_rows_name_file_record_and_detail(tmp_path):
    case = make_case(tmp_path)
    case.annotations[0]["category_id"] = -1
    case.image_path(case.images[2]).unlink()
    res = _build(case)
    q = res.quarantine
    assert not q.empty
    assert (q.source_id == case.source_id).all() and (q.file == str(case.json_path)).all()
    assert (q.detail.str.len() > 10).all() and q.record_id.str.len().gt(0).all()


def test_s3_source_reads_through_storage(tmp_path, monkeypatch):
    """An s3:// source resolves and ingests like a local one; a missing key is missing_image.

    engine.storage is pointed at the case folder (a real S3 server is the integration suite's job).
    """
    from botocore.exceptions import ClientError

    from engine import storage

    case = make_case(tmp_path, name="bucket-src")
    local = ingest([case.write()])
    case.image_path(case.images[0]).unlink()
    prefix = "s3://bucket/data/bucket-src"
    reads = []

    def to_local(uri):
        assert uri.startswith(prefix + "/"), uri
        return case.root / uri[len(prefix) + 1:]

    def read_bytes(uri):
        reads.append(uri)
        path = to_local(uri)
        if not path.exists():
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no such key"}}, "GetObject")
        return path.read_bytes()

    monkeypatch.setattr(storage, "read_bytes", read_bytes)
    monkeypatch.setattr(storage, "open_read", lambda uri: io.BytesIO(read_bytes(uri)))  # images stream, capped
    monkeypatch.setattr(storage, "exists", lambda uri: to_local(uri).exists())
    spec = resolve_source(prefix + "/")
    assert spec == SourceSpec("bucket-src", f"{prefix}/instances.json", f"{prefix}/images")
    res = ingest([spec])
    assert _reasons(res, "image", case.images[0]["id"]) == ["missing_image"]
    kept = local.images[local.images.orig_id != case.images[0]["id"]].reset_index(drop=True)
    assert list(res.images.uri) == [f"{prefix}/images/{f}" for f in kept.file_name]
    assert list(res.images.sha256) == list(kept.sha256)
    assert len(reads) == 1 + len(case.images)  # the json once, each image once


def _failing_open(monkeypatch, case, img, error):
    """Local images are opened with os.open (checked path, no FIFO wait): fail that one."""
    import engine.sources.ingest as ingest_mod

    real_open, target = os.open, os.path.realpath(case.image_path(img))

    def failing(path, *a, **k):
        if str(path) == target:
            raise error
        return real_open(path, *a, **k)

    monkeypatch.setattr(ingest_mod.os, "open", failing)


def test_unreadable_file_permissions(tmp_path, monkeypatch):
    case = make_case(tmp_path)
    img = case.images[0]
    _failing_open(monkeypatch, case, img, PermissionError(13, "Permission denied", str(case.image_path(img))))
    res = _build(case)
    _image_quarantined(res, case, img, "unreadable_image")
    assert res.quarantine.detail.str.contains("Permission denied").any()


def test_annotation_file_gone(tmp_path):
    with pytest.raises(IngestError, match=f"{tmp_path / 'gone.json'}: annotation file not found"):
        load_coco(str(tmp_path / "gone.json"))


# ---------------------------------------------------------------- json edge cases


def _raw_case(tmp_path, mutate, replace):
    """A case whose json text gets a literal json cannot express through Python (a huge int)."""
    case = make_case(tmp_path)
    mutate(case)
    spec = case.write()
    case.json_path.write_text(case.json_path.read_text().replace('"HUGE"', replace))
    return case, spec


def test_polygon_coordinate_too_large_for_a_float(tmp_path):
    ann = {}

    def mutate(case):
        ann.update(_first_polygon_ann(case))
        next(a for a in case.annotations if a["id"] == ann["id"])["segmentation"] = [[10, 10, 20, 10, "HUGE", 30]]

    case, spec = _raw_case(tmp_path, mutate, "1" + "0" * 400)
    res = ingest([spec])
    assert _reasons(res, "annotation", ann["id"]) == ["bad_polygon"]
    assert res.quarantine.detail.str.contains("too large for a float").any()
    _assert_rest_ingested(res, case, bad_anns=[ann["id"]])


@pytest.mark.parametrize("where", ["image", "annotation"])
def test_ids_beyond_int64_are_bad_records(tmp_path, where):
    huge = 2**70
    picked = {}

    def mutate(case):
        rec = case.images[0] if where == "image" else case.annotations[0]
        picked["old"] = rec["id"]
        rec["id"] = "HUGE"

    case, spec = _raw_case(tmp_path, mutate, str(huge))
    res = ingest([spec])
    assert _reasons(res, where, huge) == ["bad_record"]
    if where == "image":  # its annotations still point at the old id, which is gone
        assert set(res.quarantine.reason[res.quarantine.record_type == "annotation"]) == {"unknown_image"}
        _assert_rest_ingested(res, case, bad_images=[picked["old"], "HUGE"])  # the case still holds the placeholder
    else:
        _assert_rest_ingested(res, case, bad_anns=["HUGE"])


@pytest.mark.parametrize("value", ["no", 2, None, [1]])
def test_iscrowd_must_be_0_or_1(tmp_path, value):
    case = make_case(tmp_path)
    ann = case.annotations[2]
    ann["iscrowd"] = value
    res = _build(case)
    assert _reasons(res, "annotation", ann["id"]) == ["bad_record"]
    assert res.quarantine.detail.str.contains("iscrowd must be 0 or 1").all()
    _assert_rest_ingested(res, case, bad_anns=[ann["id"]])


def test_licences_are_resolved_from_the_source_list(tmp_path, coco):
    src = load_sample(COCO_SAMPLE)
    lic = {x["id"]: x for x in src["licenses"]}
    by_id = {r["id"]: r for r in src["images"]}
    for row in coco.images.itertuples():
        want = lic[by_id[row.orig_id]["license"]]
        assert (row.license, row.license_name, row.license_url) == (str(want["id"]), want["name"], want["url"])
    # an unknown licence id, a malformed list entry and a source without a list give no name
    case = make_case(tmp_path)
    case.coco["licenses"] = [{"id": 1, "name": " CC BY ", "url": "https://x/by"}, {"name": "no id"}, 7]
    case.images[0]["license"], case.images[1]["license"] = 1, 99
    res = _build(case).images.set_index("orig_id")
    assert tuple(res.loc[case.images[0]["id"], ["license", "license_name", "license_url"]]) == ("1", "CC BY", "https://x/by")
    assert res.loc[case.images[1]["id"], "license"] == "99" and pd.isna(res.loc[case.images[1]["id"], "license_name"])
    del case.coco["licenses"]
    assert _build(case).images["license_name"].isna().all()


# ---------------------------------------------------------------- storage failures


def test_local_read_error_quarantines_that_image(tmp_path, monkeypatch):
    case = make_case(tmp_path)
    img = case.images[1]
    _failing_open(monkeypatch, case, img, OSError(5, "Input/output error"))
    res = _build(case)
    _image_quarantined(res, case, img, "unreadable_image")
    assert res.quarantine.detail.str.contains("Input/output error").any()


def test_s3_access_denied_quarantines_but_an_outage_stops_the_build(tmp_path, monkeypatch):
    """A 403 on one object is that record's problem; a store that does not answer is not, and
    must not turn into 'every image quarantined'."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    from engine import storage

    case = make_case(tmp_path)
    case.write()
    prefix = "s3://bucket/src"
    denied = f"{prefix}/images/{case.images[0]['file_name']}"
    outage = {"on": False}

    def read_bytes(uri):
        if outage["on"] and "/images/" in uri:
            raise EndpointConnectionError(endpoint_url="http://s3.example")
        if uri == denied:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")
        return (case.root / uri[len(prefix) + 1:]).read_bytes()

    monkeypatch.setattr(storage, "read_bytes", read_bytes)
    monkeypatch.setattr(storage, "open_read", lambda uri: io.BytesIO(read_bytes(uri)))
    monkeypatch.setattr(storage, "exists", lambda uri: (case.root / uri[len(prefix) + 1:]).exists())
    spec = SourceSpec("src", f"{prefix}/instances.json", f"{prefix}/images")
    res = ingest([spec])
    _image_quarantined(res, case, case.images[0], "unreadable_image", file=spec.annotations_uri)
    assert res.quarantine.detail.str.contains(f"cannot read {denied}: AccessDenied", regex=False).any()
    outage["on"] = True
    with pytest.raises(IngestError, match=rf"{prefix}/instances.json: image {case.images[0]['id']}: cannot read "
                                          rf"{denied} \(EndpointConnectionError"):
        ingest([spec])


def test_unreadable_annotation_file_is_named(tmp_path, monkeypatch):
    from engine import storage

    case = make_case(tmp_path)
    spec = case.write()

    def denied(uri):
        raise PermissionError(13, "Permission denied", uri)

    monkeypatch.setattr(storage, "read_bytes", denied)
    with pytest.raises(IngestError, match=f"{case.json_path}: cannot read the annotation file .*Permission denied"):
        ingest([spec])
    monkeypatch.setattr(storage, "exists", denied)
    with pytest.raises(IngestError, match=f"{case.json_path}: cannot check the annotation file"):
        resolve_source(str(case.root))
