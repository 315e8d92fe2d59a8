"""A release read as is by the common loaders: webdataset, wids, HuggingFace `datasets` and
pycocotools, on a real-photo source mixing JPEG, PNG and WEBP."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from engine.build import build
from engine.config import load_config
from engine.sources.ingest import resolve_source
from engine.release.publish import open_release
from engine.release.shard import SAMPLE_SCHEMA, iter_shard_members, schema_problems
from tests.release_data import mixed_format_source


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("loaders")
    src = mixed_format_source(root / "src")
    res = build([resolve_source(str(src))], str(root / "release"), load_config(), workdir=root / "work")
    return src, open_release(res.release_uri)


def _shard_json(rel) -> dict[str, tuple[str, dict]]:
    """sample key -> (image extension, json) straight from the tars."""
    out: dict[str, list] = {}
    for entry in rel.index["shardlist"]:
        for key, ext, data in iter_shard_members(rel.file_uri(entry["url"])):
            s = out.setdefault(key, [None, None])
            if ext == "json":
                s[1] = json.loads(data)
            else:
                s[0] = ext
    return {k: tuple(v) for k, v in out.items()}


def test_every_sample_json_has_the_one_schema(mixed):
    _, rel = mixed
    samples = _shard_json(rel)
    assert {ext for ext, _ in samples.values()} == {"jpg", "png", "webp"}
    for key, (_, meta) in samples.items():
        assert schema_problems(meta) == [], key
    assert schema_problems({**meta, "extra": 1}) and schema_problems({**meta, "image": {**meta["image"], "width": "1"}})


def test_webdataset_reads_every_format(mixed):
    import webdataset as wds

    _, rel = mixed
    urls = [rel.file_uri(e["url"]) for e in rel.index["shardlist"] if e["split"] == "train"]
    ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8").to_tuple("jpg;png;webp", "json")
    seen = [(img.shape, meta) for img, meta in ds]
    assert len(seen) == sum(e["nsamples"] for e in rel.index["shardlist"] if e["split"] == "train")
    for shape, meta in seen:
        assert shape == (meta["image"]["height"], meta["image"]["width"], 3)


def test_wids_reads_each_split_from_its_own_index(mixed, tmp_path):
    import wids

    _, rel = mixed
    samples = _shard_json(rel)
    for split in ("train", "val"):
        ds = wids.ShardListDataset(rel.file_uri(f"index-{split}.json"), cache_dir=str(tmp_path / "wids"))
        keys = []
        for i in range(len(ds)):
            s = ds[i]  # default transformations: json parsed, jpg/png to PIL, other formats left as bytes
            ext = next(e for e in (".jpg", ".png", ".webp") if e in s)
            meta = s[".json"]
            img = s[ext] if isinstance(s[ext], Image.Image) else Image.open(s[ext])
            assert img.size == (meta["image"]["width"], meta["image"]["height"])
            assert meta["image"]["split"] == split and samples[meta["image"]["sample_key"]] == (ext[1:], meta)
            keys.append(meta["image"]["sample_key"])
        assert sorted(keys) == sorted(k for k, (_, m) in samples.items() if m["image"]["split"] == split)


def test_huggingface_load_dataset_of_the_release_dir(mixed, tmp_path):
    import datasets

    _, rel = mixed
    # a cache of its own: pytest reuses temporary paths, and HuggingFace's cache would serve an
    # earlier run's release from the same path
    ds = datasets.load_dataset(rel.uri, cache_dir=str(tmp_path / "hf"))
    assert set(ds) == {"train", "val"}
    samples = _shard_json(rel)
    manifest = rel.manifest.set_index("instruction_id")
    n = 0
    for split in ("train", "val"):
        assert len(ds[split]) == rel.counts["samples"][split]
        for row in ds[split]:
            ext, meta = samples[row["__key__"]]
            assert row["json"] == meta                      # unchanged: no keys added, no types changed
            assert row[ext] is not None and row[ext].size == (meta["image"]["width"], meta["image"]["height"])
            assert [e for e in ("jpg", "png", "webp") if row[e] is not None] == [ext]
            for group in row["json"]["targets"]:
                for tier, recs in group["instructions"].items():
                    for r in recs:
                        m = manifest.loc[r["instruction_id"]]
                        assert (r["text"], r["program"], r["checks"], tier) == (m.text, m.program, m.checks, m.tier)
                        n += 1
    assert n == len(manifest)


def test_pycocotools_masks_equal_the_source_masks(mixed):
    src, rel = mixed
    source = COCO(str(src / "instances.json"))
    by_instance = {}
    for _, (_, meta) in _shard_json(rel).items():
        for inst in meta["instances"]:
            by_instance[inst["instance_id"]] = inst["orig_id"]
    checked = 0
    for row in rel.sam3i_datasets["files"]:
        coco = COCO(rel.file_uri(row["path"]))
        for ann in coco.anns.values():
            want = source.annToMask(source.anns[by_instance[ann["instance_id"]]]).astype(bool)
            assert np.array_equal(coco.annToMask(ann).astype(bool), want)
            checked += 1
    saco = COCO(rel.file_uri("saco/saco_val.json"))
    for ann in saco.anns.values():
        want = source.annToMask(source.anns[by_instance[ann["instance_id"]]]).astype(bool)
        assert np.array_equal(saco.annToMask(ann).astype(bool), want)
    assert checked > 100


def test_sam3i_files_are_ascii_safe_json(mixed):
    _, rel = mixed
    for path in list(rel.info["files"]):
        if path.endswith(".json") and (path.startswith("sam3i/") or path.startswith("saco/")):
            Path(rel.file_uri(path)).read_bytes().decode("ascii")
