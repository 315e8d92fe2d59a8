"""The release's exports are written sample by sample from a spill file (engine/release/streamed.py):
they must be byte-identical to the in-memory exports of the same samples."""
import json

import pytest

from engine.release import saco_export, sam3i_export
from engine.release.sam3i_export import FILE_CATEGORY, dumps
from engine.release.streamed import CocoWriter, MetaSpill
from tests.engine.release.test_publish import _shard_samples, inputs, release  # noqa: F401  (fixtures)


def _metas_by_split(rel) -> dict[str, list[dict]]:
    out = {"train": [], "val": []}
    for key, s in sorted(_shard_samples(rel).items()):
        out[s["json"]["image"]["split"]].append(s["json"])
    return out


def test_streamed_exports_equal_the_in_memory_exports(release):  # noqa: F811
    metas = _metas_by_split(release)
    assert metas["train"] and metas["val"]
    categories = sam3i_export.category_table(metas["train"] + metas["val"])
    with open(release.file_uri("sam3i/categories.json")) as f:
        assert json.load(f) == categories
    files, rows = sam3i_export.export_files(sam3i_export.build_entries(metas, categories))
    assert files, "the fixture release has SAM3-I files"
    for rel_path, coco in files.items():
        with open(release.file_uri(rel_path), "rb") as f:
            assert f.read() == dumps(coco), rel_path
    assert release.sam3i_datasets["files"] == rows
    cat_id = {c["name"]: c["id"] for c in categories}
    first = 1
    for split in ("train", "val"):
        coco = saco_export.export_split(metas[split], cat_id, first)
        first += len(coco["images"])
        with open(release.file_uri(f"saco/saco_{split}.json"), "rb") as f:
            assert f.read() == dumps(coco), split
    # hashed while written: _RELEASE.json's checksums are those of the files on disk
    assert release.verify_checksums() == []


def test_categories_noted_out_of_order_match_the_in_order_table():
    def meta(cat, sup, target=True):
        return {"instances": [{"category": cat, "supercategory": sup}],
                "targets": [{"category": cat}] if target else []}
    in_order = [meta("dog", "animal"), meta("dog", "pet"), meta("cup", "kitchen", False), meta("cup", "ware")]
    want = sam3i_export.category_table(in_order)
    assert want[1] == {"id": 2, "name": "dog", "supercategory": "animal"}
    seen = sam3i_export.CategorySeen()
    for rank in (3, 1, 2, 0):        # the order shards are planned in differs from the exports'
        seen.note(in_order[rank], (0, f"k{rank}"))
    assert seen.table() == want


def test_spill_reads_samples_back_per_split_in_key_order(tmp_path):
    with MetaSpill(tmp_path / "s.spill") as spill:
        for split, key in [("train", "b"), ("val", "a"), ("train", "a"), ("train", "c")]:
            spill.add(split, key, dumps({"k": key, "s": split}))
        assert [m["k"] for m in spill.metas("train")] == ["a", "b", "c"]
        assert [m["s"] for m in spill.metas("val")] == ["val"]
        assert list(spill.metas("test")) == []
    assert not (tmp_path / "s.spill").exists()


@pytest.mark.parametrize("n", [0, 1, 3])
def test_coco_writer_is_byte_identical_to_dumps(tmp_path, n):
    images = [{"id": i + 1, "file_name": f"x/{i}.jpg", "text": "caf\u00e9"} for i in range(n)]
    anns = [{"id": i + 1, "image_id": i + 1, "bbox": [0.5, 1, 2, 3]} for i in range(n)]
    w = CocoWriter(tmp_path / "a" / "f.json", [FILE_CATEGORY])
    for img, ann in zip(images, anns):
        w.add_annotation(ann)
        w.add_image(img)
    sha, size = w.close()
    want = dumps({"images": images, "annotations": anns, "categories": [FILE_CATEGORY]})
    data = (tmp_path / "a" / "f.json").read_bytes()
    assert data == want and size == len(want)
    import hashlib
    assert sha == hashlib.sha256(want).hexdigest()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["f.json"]   # no scratch file left


def test_annotation_ids_are_unique_in_every_export_file(release):  # noqa: F811
    """COCO (pycocotools, the SAM3-I trainer's loader) indexes annotations by id: a repeated id
    silently drops a target's mask (before issue 16's streaming, the targets of one entry
    shared an id)."""
    paths = [r["path"] for r in release.sam3i_datasets["files"]] + ["saco/saco_train.json", "saco/saco_val.json"]
    multi = 0
    for p in paths:
        with open(release.file_uri(p)) as f:
            coco = json.load(f)
        ids = [a["id"] for a in coco["annotations"]]
        assert ids == list(range(1, len(ids) + 1)), p
        per_image = {}
        for a in coco["annotations"]:
            per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
        multi += sum(n > 1 for n in per_image.values())
    assert multi, "the fixture has entries with several targets"
