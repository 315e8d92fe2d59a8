"""Work units: fixed batches in original-id order, ids that follow content."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from engine.config import IngestConfig
from engine.sources.ingest import ingest, resolve_source
from engine.sources.units import assign_units, unit_id
from tests.coco_fixtures import COCO_SAMPLE, PANOPTIC_SAMPLE


@pytest.fixture(scope="module")
def built():
    return ingest([resolve_source(str(COCO_SAMPLE)), resolve_source(str(PANOPTIC_SAMPLE))], IngestConfig())


def _units(images: pd.DataFrame, size: int, instances=None) -> dict[str, str]:
    return dict(zip(images["image_id"], assign_units(images, size, instances)))


def _members(mapping: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for image_id, unit in mapping.items():
        out.setdefault(unit, set()).add(image_id)
    return out


def test_fixed_batches_in_orig_id_order_per_source(built):
    size = 8
    mapping = _units(built.images, size)
    groups = _members(mapping)
    for source, imgs in built.images.groupby("source_id"):
        ordered = list(imgs.sort_values("orig_id")["image_id"])
        batches = [ordered[i:i + size] for i in range(0, len(ordered), size)]
        assert len(batches) == math.ceil(len(ordered) / size)
        for batch in batches:
            assert groups[mapping[batch[0]]] == set(batch)
    # units never mix sources
    source_of = dict(zip(built.images.image_id, built.images.source_id))
    assert all(len({source_of[i] for i in members}) == 1 for members in groups.values())


def test_ids_are_content_hashes_of_members(built):
    mapping = _units(built.images, 8)
    rows = built.images.set_index("image_id")
    for unit, members in _members(mapping).items():
        assert unit == unit_id([(i, rows.loc[i, "sha256"], "") for i in members])
        assert unit.startswith("u-") and len(unit) == 18


def test_row_order_and_index_do_not_matter(built):
    shuffled = built.images.sample(frac=1, random_state=3)
    shuffled.index = range(100, 100 + len(shuffled))
    out = assign_units(shuffled, 8)
    assert list(out.index) == list(shuffled.index)
    assert dict(zip(shuffled.image_id, out)) == _units(built.images, 8)


def test_appending_higher_ids_keeps_full_units(built):
    coco = built.images[built.images.source_id == "coco-sample"].sort_values("orig_id")
    size = 8
    before = _units(coco.iloc[:20], size)   # two full units and a partial one
    after = _units(coco, size)
    ordered = list(coco["image_id"])
    for image_id in ordered[:16]:
        assert before[image_id] == after[image_id]
    assert before[ordered[16]] != after[ordered[16]]  # the partial unit filled up: new id
    # and the other source's units are untouched by a change in this one
    both_before = _units(pd.concat([coco.iloc[:20], built.images[built.images.source_id != "coco-sample"]]), size)
    both_after = _units(built.images, size)
    pano = built.images.image_id[built.images.source_id != "coco-sample"]
    assert all(both_before[i] == both_after[i] for i in pano)


def test_insertion_in_the_middle_keeps_earlier_units(built):
    coco = built.images[built.images.source_id == "coco-sample"].sort_values("orig_id")
    size = 8
    without = coco.drop(coco.index[12])
    a, b = _units(without, size), _units(coco, size)
    ordered = list(coco["image_id"])
    assert all(a[i] == b[i] for i in ordered[:8])
    assert a[ordered[8]] != b[ordered[8]]


def test_changed_bytes_change_only_their_unit(built):
    changed = built.images.copy()
    target = changed.index[5]
    changed.loc[target, "sha256"] = "0" * 64
    a, b = _units(built.images, 8), _units(changed, 8)
    moved = {i for i in a if a[i] != b[i]}
    assert moved == _members(a)[a[built.images.loc[target, "image_id"]]]


def test_changed_annotations_change_the_unit_when_instances_given(built):
    inst = built.instances.copy()
    target_image = inst.loc[0, "image_id"]
    inst.loc[0, "category"] = "something else"
    a, b = _units(built.images, 8, built.instances), _units(built.images, 8, inst)
    moved = {i for i in a if a[i] != b[i]}
    assert moved == _members(a)[a[target_image]]
    # ingest uses the instance-aware ids
    assert dict(zip(built.images.image_id, built.images.unit_id)) == _units(built.images, 64, built.instances)


def test_edge_cases(built):
    assert assign_units(built.images.iloc[:0], 8).empty
    with pytest.raises(ValueError, match="unit_size"):
        assign_units(built.images, 0)
    assert len(set(assign_units(built.images, 1))) == len(built.images)
