import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine.sources import imageio
from engine.scene import masks
from engine.config import ReleaseConfig
from engine.release.reader import extract_images, iter_release, make_dataset
from engine.release.publish import NotAReleaseError, build_release, open_release
from tests.release_data import CARD, coco_tables, make_instructions


@pytest.fixture(scope="module")
def tables():
    images, instances = coco_tables()
    return images, instances, make_instructions(images, instances)


@pytest.fixture(scope="module")
def release(tmp_path_factory, tables):
    out = tmp_path_factory.mktemp("rel") / "v1"
    build_release(str(out), *tables, CARD, ReleaseConfig(shard_max_count=3, val_fraction=0.25), "fp", "code")
    return open_release(str(out))


def _expected_keys(release, split=None):
    m = release.manifest
    return sorted(set(m.loc[m["split"] == split, "sample_key"] if split else m["sample_key"]))


def test_yields_every_sample_once_per_split(release):
    for split in ("train", "val"):
        keys = [s["key"] for s in make_dataset(release, split, decode_image=False)]
        assert sorted(keys) == _expected_keys(release, split)
    assert sorted(s["key"] for s in iter_release(release.uri, decode_image=False)) == _expected_keys(release)


def test_samples_carry_pixels_masks_and_instructions(release, tables):
    images, instances, _ = tables
    uri = dict(zip(images["image_id"], images["uri"]))
    inst = instances.set_index("instance_id")
    m = release.manifest
    seen = 0
    for s in iter_release(release):
        img_id = s["meta"]["image_id"]
        assert np.array_equal(s["image"], imageio.load_rgb(uri[img_id]))
        assert s["image"].shape == (s["meta"]["height"], s["meta"]["width"], 3)
        assert set(s["masks"]) == set(inst.index[inst["image_id"] == img_id])
        for iid in list(s["masks"])[:5]:  # lazy: decoded on access
            r = inst.loc[iid]
            assert np.array_equal(s["masks"][iid], masks.decode(r["rle"], r["height"], r["width"]))
        rows = m[m["sample_key"] == s["key"]]
        for tier in ("concept", "simple", "complex"):
            got = sorted((r["instruction_id"], r["text"], tuple(r["target_ids"])) for r in s["instructions"][tier])
            want = sorted((r.instruction_id, r.text, tuple(sorted(r.target_ids)))
                          for r in rows[rows["tier"] == tier].itertuples())
            assert got == want
            # the shards store program/checks as JSON strings; training code gets them parsed
            by_id = rows.set_index("instruction_id")
            for r in s["instructions"][tier]:
                assert r["program"] == json.loads(by_id.loc[r["instruction_id"], "program"])
                assert r["checks"] == json.loads(by_id.loc[r["instruction_id"], "checks"])
                assert isinstance(r["program"], list)
        assert s["shard"] == rows["shard"].iloc[0]
        seen += 1
    assert seen == len(_expected_keys(release))


def test_two_nodes_two_workers_partition_the_samples(release, monkeypatch):
    n_shards = len(release.index["shardlist"])
    assert n_shards >= 4
    parts = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("NUM_WORKERS", "2")
    for rank in range(2):
        for worker in range(2):
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("WORKER", str(worker))
            parts[rank, worker] = [s["key"] for s in make_dataset(release, decode_image=False)]
    assert all(parts.values())  # every node/worker gets work
    counts = Counter(k for keys in parts.values() for k in keys)
    assert sorted(counts) == _expected_keys(release) and set(counts.values()) == {1}


def test_torch_dataloader_workers_see_each_sample_once(release):
    import torch
    ds = make_dataset(release, "train", decode_image=False).map(lambda s: s["key"])
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    keys = list(loader)
    assert sorted(keys) == _expected_keys(release, "train") and len(keys) == len(set(keys))


def test_refuses_a_release_without_marker(release, tmp_path):
    copy = tmp_path / "partial"
    shutil.copytree(release.uri, copy)
    (copy / "_RELEASE.json").unlink()
    with pytest.raises(NotAReleaseError, match="no _RELEASE.json"):
        make_dataset(str(copy))
    with pytest.raises(NotAReleaseError):
        list(iter_release(str(copy)))


def test_extract_images_matches_sam3i_file_names(release, tables, tmp_path):
    images = tables[0]
    n = extract_images(release, tmp_path / "img")
    assert n == len(_expected_keys(release))
    uri = {f"{r.source_id}/{r.file_name}": r.uri for r in images.itertuples()}
    for split in ("train", "val"):
        for e in (e for coco in release.sam3i(split).values() for e in coco["images"]):
            assert (tmp_path / "img" / e["file_name"]).read_bytes() == Path(uri[e["file_name"]]).read_bytes()


def test_iter_release_reads_everything_even_inside_a_distributed_job(release, monkeypatch):
    """iter_release / extract_images are single-process tools: RANK / WORLD_SIZE of a
    surrounding job must not make them skip the other ranks' shards."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert sorted(s["key"] for s in iter_release(release, decode_image=False)) == _expected_keys(release)
    assert len(list(make_dataset(release, decode_image=False))) < len(_expected_keys(release))  # this one splits


def test_to_sample_refuses_formats_outside_the_accepted_list_and_ambiguous_members():
    """One list of formats (engine.sources.imageio.FORMATS) for ingest, release, reader and verify: a
    PPM member is refused, naming shard and sample."""
    import hashlib
    import io
    import json

    from PIL import Image

    from engine.release.reader import ShardReadError, to_sample

    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (10, 20, 30)).save(buf, format="PNG")
    meta = {"image": {"image_id": "s:1", "sha256": hashlib.sha256(buf.getvalue()).hexdigest(), "width": 4, "height": 3},
            "instances": [], "targets": []}
    raw = {"__key__": "s_1", "__url__": "shards/train-000000.tar", "png": buf.getvalue(), "json": json.dumps(meta)}
    s = to_sample(raw)
    assert s["image_format"] == "png" and s["image"].shape == (3, 4, 3) and (s["image"] == (10, 20, 30)).all()
    with pytest.raises(ShardReadError, match=r"shards/train-000000.tar: sample s_1: image member .ppm is not an accepted"):
        to_sample({**{k: v for k, v in raw.items() if k != "png"}, "ppm": b"P6 4 3 255 "})
    with pytest.raises(ValueError, match=r"shards/train-000000.tar: sample s_1 .* found \['png', 'ppm'\]"):
        to_sample({**raw, "ppm": b"x"})
    with pytest.raises(ValueError, match="found none"):
        to_sample({k: v for k, v in raw.items() if k != "png"})
