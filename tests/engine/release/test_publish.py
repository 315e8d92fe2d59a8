import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pycocotools.coco import COCO

from engine.scene import masks
from engine.config import ReleaseConfig
from engine.release.publish import (NotAReleaseError, ReleaseError, ReleaseExistsError, ReleaseLockedError, build_release,
                            open_release, release_id_for)
from engine.release.sam3i_export import SAM3I_TIER_KEYS
from engine.release.shard import iter_shard_members
from engine.release.split import assign_splits, split_of
from tests.release_data import CARD, COCO_SAMPLE, coco_tables, make_instructions

CFG = ReleaseConfig(shard_max_count=4, val_fraction=0.25)


def _build(out, images=None, instances=None, instructions=None, cfg=CFG, fp="fp-1", **kw):
    if images is None:
        images, instances = coco_tables()
    if instructions is None:
        instructions = make_instructions(images, instances)
    return build_release(str(out), images, instances, instructions, CARD, cfg, fp, "code-1", **kw)


@pytest.fixture(scope="module")
def inputs():
    images, instances = coco_tables()
    return images, instances, make_instructions(images, instances)


@pytest.fixture(scope="module")
def release(tmp_path_factory, inputs):
    out = tmp_path_factory.mktemp("rel") / "v1"
    _build(out, *inputs)
    return open_release(str(out))


def _shard_samples(rel) -> dict[str, dict]:
    """sample key -> {"shard", "json", "image", "ext"} read straight from the tar files."""
    out = {}
    for entry in rel.index["shardlist"]:
        for key, ext, data in iter_shard_members(rel.file_uri(entry["url"])):
            s = out.setdefault(key, {"shard": entry["url"]})
            assert s["shard"] == entry["url"], f"{key} in two shards"
            if ext == "json":
                s["json"] = json.loads(data)
            else:
                s["image"], s["ext"] = data, ext
    return out


def test_manifest_is_exactly_the_accepted_instructions(release, inputs):
    _, _, instructions = inputs
    m = release.manifest
    acc = instructions[instructions["accepted"]]
    assert sorted(m["instruction_id"]) == sorted(acc["instruction_id"])
    merged = m.merge(acc, on="instruction_id", suffixes=("", "_in"))
    lineage = ("source_id", "unit_id", "backend", "model", "prompt_version", "seed", "rounds", "checks")
    for col in ("text", "tier", "subtype", "cardinality", "category", "image_id", "spec_id", "program") + lineage:
        assert (merged[col] == merged[f"{col}_in"]).all(), col
    assert (merged["target_ids"].map(list) == merged["target_ids_in"].map(list)).all()
    sha = dict(zip(inputs[0]["image_id"], inputs[0]["sha256"]))
    assert (m["image_sha256"] == m["image_id"].map(sha)).all()
    rej = release.rejected
    assert sorted(rej["instruction_id"]) == sorted(instructions.loc[~instructions["accepted"], "instruction_id"])
    assert (rej["reject_reason"] != "").all()


def test_every_manifest_row_is_in_its_shard_sample(release):
    samples = _shard_samples(release)
    for row in release.manifest.itertuples(index=False):
        s = samples[row.sample_key]
        assert s["shard"] == row.shard
        found = [(g, r) for g in s["json"]["targets"] for r in g["instructions"][row.tier]
                 if r["instruction_id"] == row.instruction_id]
        assert len(found) == 1, row.instruction_id
        group, rec = found[0]
        assert rec["text"] == row.text and rec["cardinality"] == row.cardinality
        assert group["target_ids"] == sorted(row.target_ids)
        # varying-shape fields stay the manifest's JSON strings: one sample schema for every loader
        assert rec["program"] == row.program and rec["checks"] == row.checks
        assert s["json"]["image"]["image_id"] == row.image_id


def test_samples_are_the_images_with_accepted_instructions_once_each(release, inputs):
    images, _, instructions = inputs
    samples = _shard_samples(release)
    with_accepted = set(instructions.loc[instructions["accepted"], "image_id"])
    assert len(with_accepted) < len(images)  # the rules leave one image without any
    assert sorted(s["json"]["image"]["image_id"] for s in samples.values()) == sorted(with_accepted)
    # original bytes, with the extension of their real format
    uri = dict(zip(images["image_id"], images["uri"]))
    for s in samples.values():
        assert s["image"] == Path(uri[s["json"]["image"]["image_id"]]).read_bytes()
        assert s["ext"] == "jpg" and s["image"][:3] == b"\xff\xd8\xff"


def test_shard_masks_equal_the_source_masks(release):
    coco = COCO(str(COCO_SAMPLE / "instances.json"))
    n = 0
    for s in _shard_samples(release).values():
        img = s["json"]["image"]
        shard_ids = {i["orig_id"] for i in s["json"]["instances"]}
        assert shard_ids == set(coco.getAnnIds(imgIds=[img["orig_id"]]))
        for inst in s["json"]["instances"]:
            ann = coco.anns[inst["orig_id"]]
            h, w = inst["segmentation"]["size"]
            decoded = masks.decode(inst["segmentation"]["counts"], h, w)
            assert np.array_equal(decoded, coco.annToMask(ann).astype(bool)), inst["instance_id"]
            assert inst["iscrowd"] == bool(ann["iscrowd"]) and inst["category"] == coco.cats[ann["category_id"]]["name"]
            n += 1
    assert n > 300


def test_sam3i_files_hold_every_manifest_row(release, inputs):
    """Every accepted instruction is in the files of each stage that samples its tier, in the
    file of its target's cardinality, under its entry id; annotations are its target masks."""
    _, instances, _ = inputs
    by_instance = instances.set_index("instance_id")
    cats = {c["id"]: c["name"] for c in json.loads(Path(release.file_uri("sam3i/categories.json")).read_text())}
    rows = release.sam3i_datasets["files"]
    entries, anns = {}, {}
    for r in rows:
        coco = json.loads(Path(release.file_uri(r["path"])).read_text())
        assert coco["categories"] == [{"id": 1, "name": "object", "supercategory": "object"}]
        for e in coco["images"]:
            entries.setdefault(e["id"], {})[r["path"]] = e
            anns.setdefault((r["path"], e["id"]), [])
        for a in coco["annotations"]:
            anns[(r["path"], a["image_id"])].append(a)
    n_files = 0
    for row in release.manifest.itertuples(index=False):
        by_path = entries.get(row.sam3i_id, {})
        key = SAM3I_TIER_KEYS[row.tier]
        n_targets = len(row.target_ids)
        card = "negative" if not n_targets else "1to1" if n_targets == 1 else None
        for path, e in by_path.items():
            n_files += 1
            assert e["category"] == row.category and cats[int(e["queried_category"])] == row.category
            assert e["text_inst_input"]["concept"][0] == row.category
            if card:
                assert f"/{card}/" in path
            if row.text in e["text_inst_input"][key]:
                pos = e["text_inst_input"][key].index(row.text)
                assert e["instruction_ids"][key][pos] in (row.instruction_id, None)
            got = anns[(path, e["id"])]
            assert sorted(a["instance_id"] for a in got) == sorted(row.target_ids)
            for a in got:
                inst = by_instance.loc[a["instance_id"]]
                assert a["bbox"] == [inst["bbox_x"], inst["bbox_y"], inst["bbox_w"], inst["bbox_h"]]
                assert a["area"] == inst["area"] and a["iscrowd"] == 0 == int(inst["iscrowd"])
                assert a["segmentation"] == {"size": [int(inst["height"]), int(inst["width"])], "counts": inst["rle"]}
        # each stage's file that samples this tier holds it, unless another tier it samples is empty
        stages_with_tier = {r["stage"] for r in rows for p in by_path if r["path"] == p}
        if row.tier == "simple" and by_path:
            assert "1_1" in stages_with_tier
        if row.tier == "complex" and by_path:
            assert "1_2" in stages_with_tier
    assert n_files > len(release.manifest) // 2


def test_sam3i_files_load_in_pycocotools_and_masks_match(release):
    manifest = release.manifest
    row = next(r for r in release.sam3i_datasets["files"] if r["eval_mode"] == "multi_inst" and r["split"] == "train")
    coco = COCO(release.file_uri(row["path"]))
    assert len(coco.imgs) == row["entries"]
    for img_id in list(coco.imgs)[:3]:
        ann_ids = coco.getAnnIds(imgIds=[img_id])
        targets = manifest.loc[manifest["sam3i_id"] == img_id, "target_ids"].iloc[0]
        assert len(ann_ids) == len(targets) >= 2
        assert all(coco.annToMask(coco.anns[a]).any() for a in ann_ids)


def test_saco_export_is_one_entry_per_image_and_noun_phrase(release):
    cats = {c["name"]: c["id"] for c in json.loads(Path(release.file_uri("sam3i/categories.json")).read_text())}
    man = release.manifest
    for split in ("train", "val"):
        saco = release.saco(split)
        pairs = [(e["sample_key"], e["text_input"]) for e in saco["images"]]
        assert len(pairs) == len(set(pairs))
        have = {e["id"] for e in saco["images"]} & {a["image_id"] for a in saco["annotations"]}
        m = man[man["split"] == split]
        want = set(zip(m["sample_key"], m["category"]))
        assert set(pairs) == want
        for e in saco["images"]:
            assert int(e["queried_category"]) == cats[e["text_input"]]
            neg = m[(m["sample_key"] == e["sample_key"]) & (m["category"] == e["text_input"])]
            if (neg["cardinality"] == "negative").all():
                assert e["id"] not in have and e["is_instance_exhaustive"] == 1
            else:
                assert e["id"] in have
        for a in saco["annotations"]:
            assert all(0 <= v <= 1 for v in a["bbox"]) and a["category_id"] == 1


def test_index_checksums_match_files(release):
    idx = release.index
    assert "wids_version" not in idx and len(idx["shardlist"]) == sum(release.counts["shards"].values())
    for split in ("train", "val"):  # the wids indexes: one per split
        wids_idx = json.loads(Path(release.file_uri(f"index-{split}.json")).read_text())
        assert wids_idx["wids_version"] == 1
        assert [e["url"] for e in wids_idx["shardlist"]] == [e["url"] for e in idx["shardlist"] if e["split"] == split]
    total = 0
    for e in idx["shardlist"]:
        data = Path(release.file_uri(e["url"])).read_bytes()
        assert e["filesize"] == len(data) and e["sha256"] == hashlib.sha256(data).hexdigest()
        keys = {k for k, _, _ in iter_shard_members(release.file_uri(e["url"]))}
        assert e["nsamples"] == len(keys) <= CFG.shard_max_count
        assert Path(e["url"]).name.startswith(e["split"] + "-")
        total += e["nsamples"]
    assert total == release.manifest["sample_key"].nunique()
    assert release.verify_checksums() == []


def test_verify_checksums_reports_a_changed_file(release, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(release.uri, copy)
    shard = copy / release.index["shardlist"][0]["url"]
    data = bytearray(shard.read_bytes())
    data[1000] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = open_release(str(copy)).verify_checksums()
    assert len(problems) == 1 and str(shard) in problems[0]


def test_counts_and_card(release):
    m, c = release.manifest, release.counts
    for tier in ("concept", "simple", "complex"):
        for card, n in c["by_tier_cardinality"][tier].items():
            assert n == ((m["tier"] == tier) & (m["cardinality"] == card)).sum()
    assert c["by_split"] == {s: int((m["split"] == s).sum()) for s in ("train", "val")}
    assert c["by_split"]["val"] > 0 and c["by_split"]["train"] > c["by_split"]["val"]
    readme = Path(release.file_uri("README.md")).read_text()
    for name, body in CARD.items():
        assert f"## {name}" in readme and body in readme
    assert f"| concept | 0 | 0 | {c['by_tier_cardinality']['concept']['1:All']} |" in readme
    assert release.release_id in readme


def test_building_twice_gives_byte_identical_files(tmp_path, inputs):
    images, instances, instructions = inputs
    a = _build(tmp_path / "a", images, instances, instructions)
    # same content in another row order: still the same bytes
    shuffled = instructions.sample(frac=1.0, random_state=3).reset_index(drop=True)
    b = _build(tmp_path / "b", images.iloc[::-1].reset_index(drop=True), instances.sample(frac=1.0, random_state=1),
               shuffled)
    assert a.release_id == b.release_id
    assert a.files == b.files
    shards = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / "shards").iterdir())
    assert len(shards) > 2
    for rel in shards:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert (tmp_path / "a" / "_RELEASE.json").read_bytes() == (tmp_path / "b" / "_RELEASE.json").read_bytes()


def test_shards_rotate_by_bytes(tmp_path, inputs):
    cfg = ReleaseConfig(shard_max_count=1000, shard_max_bytes=400_000, val_fraction=0.0)
    _build(tmp_path / "r", *inputs, cfg=cfg)
    rel = open_release(str(tmp_path / "r"))
    sizes = [(e["filesize"], e["nsamples"]) for e in rel.index["shardlist"]]
    assert len(sizes) > 5 and all(e["split"] == "train" for e in rel.index["shardlist"])
    # over the limit only when one sample alone is larger (plus the tar's end padding)
    assert all(size <= cfg.shard_max_bytes + 10240 or n == 1 for size, n in sizes)
    assert [e["url"] for e in rel.index["shardlist"]] == [f"shards/train-{i:06d}.tar" for i in range(len(sizes))]


def test_rebuilding_the_same_release_is_a_no_op_and_another_is_refused(tmp_path, inputs):
    out = tmp_path / "r"
    first = _build(out, *inputs)
    marker_mtime = (out / "_RELEASE.json").stat().st_mtime_ns
    again = _build(out, *inputs)
    assert again.reused and again.release_id == first.release_id
    assert (out / "_RELEASE.json").stat().st_mtime_ns == marker_mtime
    with pytest.raises(ReleaseExistsError, match="immutable"):
        _build(out, *inputs, fp="fp-2")
    assert release_id_for("fp-1", CFG, "code-1") != release_id_for("fp-1", CFG, "code-2")
    # upload tuning is not content: same release id
    assert release_id_for("fp-1", CFG, "c") == release_id_for("fp-1", CFG.model_copy(update={"upload_attempts": 9}), "c")


def test_lock_held_by_another_build_is_refused_with_its_holder(tmp_path, inputs):
    out = tmp_path / "r"
    holder = {"user": "alice", "host": "gpu-7", "pid": 4242, "since": "2026-01-01T00:00:00Z", "lock_id": "x"}
    (tmp_path / "r.lock").write_text(json.dumps(holder))
    with pytest.raises(ReleaseLockedError, match=r"alice@gpu-7 \(pid 4242\)") as e:
        _build(out, *inputs)
    assert "r.lock" in str(e.value)
    assert not out.exists()


def test_a_second_build_cannot_interleave_with_a_running_one(tmp_path, inputs):
    out = tmp_path / "r"
    refused = []

    def second_build(rel_path):
        if not refused:  # while the first build still holds the lock
            with pytest.raises(ReleaseLockedError, match=f"pid {os.getpid()}") as e:
                _build(out, *inputs)
            refused.append(str(e.value))

    _build(out, *inputs, on_published=second_build)
    assert refused and open_release(str(out)).verify_checksums() == []
    assert not (tmp_path / "r.lock").exists()


def test_failed_build_leaves_no_release_no_lock_no_staging(tmp_path, inputs):
    images, instances, instructions = inputs
    bad = instructions.copy()
    i = bad.index[bad["accepted"] & (bad["cardinality"] == "1:1")][0]
    other = instances.loc[instances["image_id"] != bad.at[i, "image_id"], "instance_id"].iloc[0]
    bad.at[i, "target_ids"] = [other]
    with pytest.raises(ValueError, match=f"instruction {bad.at[i, 'instruction_id']} targets instance {other}"):
        _build(tmp_path / "r", images, instances, bad)
    assert list(tmp_path.iterdir()) == []


def test_changed_image_bytes_are_refused(tmp_path, inputs):
    images, instances, instructions = inputs
    row = images.index[images["image_id"] == instructions.loc[instructions["accepted"], "image_id"].iloc[0]][0]
    src = Path(images.at[row, "uri"])
    changed = tmp_path / src.name
    changed.write_bytes(src.read_bytes() + b"\0")
    imgs = images.copy()
    imgs.at[row, "uri"] = str(changed)
    with pytest.raises(ValueError, match=f"{changed}.*changed since ingest"):
        _build(tmp_path / "r", imgs, instances, instructions)
    assert not (tmp_path / "r").exists()


def test_partial_release_is_refused_and_replaced_by_the_next_build(tmp_path, inputs):
    out = tmp_path / "r"
    (out / "shards").mkdir(parents=True)
    (out / "shards" / "train-000000.tar").write_bytes(b"half a shard")
    with pytest.raises(NotAReleaseError, match="no _RELEASE.json"):
        open_release(str(out))
    _build(out, *inputs)
    assert open_release(str(out)).verify_checksums() == []


def test_refuses_to_publish_over_unrelated_files(tmp_path, inputs):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ReleaseError, match="not part of a release.*notes.txt"):
        _build(out, *inputs)
    assert (out / "notes.txt").read_text() == "keep me" and sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_split_is_stable_and_keeps_duplicate_images_together():
    images, _ = coco_tables(("coco", "copy"))
    splits = assign_splits(images, 0.3)
    assert set(splits) == {"train", "val"}
    # a refresh that adds images does not move the old ones
    first = images["source_id"] == "coco"
    assert splits[first].tolist() == assign_splits(images[first], 0.3).tolist()
    # the same bytes in two sources land in one split
    by_sha = pd.DataFrame({"sha": images["sha256"], "split": splits}).groupby("sha")["split"].nunique()
    assert (by_sha == 1).all()
    fractions = [np.mean([split_of(f"s/{i}.jpg", f) == "val" for i in range(4000)]) for f in (0.1, 0.5)]
    assert abs(fractions[0] - 0.1) < 0.02 and abs(fractions[1] - 0.5) < 0.03


def test_a_release_where_everything_was_rejected(tmp_path, inputs):
    from engine.release.reader import iter_release

    images, instances, instructions = inputs
    none = instructions.assign(accepted=False, reject_reason="lexical: category noun missing")
    info = _build(tmp_path / "r", images, instances, none)
    rel = open_release(str(tmp_path / "r"))
    assert info.counts["samples"] == {"train": 0, "val": 0} and rel.index["shardlist"] == []
    assert len(rel.manifest) == 0 and len(rel.rejected) == len(instructions)
    assert rel.sam3i("train") == {} and list(iter_release(rel)) == []
    assert rel.saco("train")["images"] == []
    readme = Path(rel.file_uri("README.md")).read_text()
    assert f"| lexical: category noun missing | {len(instructions)} |" in readme


def test_card_lists_sources_with_their_licences(release, inputs):
    images, _, _ = inputs
    used = images[images["image_id"].isin(set(release.manifest["image_id"]))]
    rows = release.counts["images_by_source_licence"]
    assert sum(r["images"] for r in rows) == len(used) == sum(release.counts["samples"].values())
    want = used.groupby(["license", "license_name", "license_url"]).size()
    assert {(r["license"], r["license_name"], r["license_url"]): r["images"] for r in rows} == want.to_dict()
    readme = Path(release.file_uri("README.md")).read_text()
    assert "## Images per source and licence" in readme
    for r in rows:
        assert f"| coco | {r['license']} | {r['license_name']} | {r['license_url']} | {r['images']} |" in readme
    # the licence travels with each sample too
    sample = next(iter(_shard_samples(release).values()))["json"]["image"]
    row = images.set_index("image_id").loc[sample["image_id"]]
    assert (sample["license_name"], sample["license_url"]) == (row["license_name"], row["license_url"])


def test_card_section_that_brings_its_own_heading_is_not_doubled():
    from engine.release.publish import render_card

    counts = {"instructions": 0, "samples": {"train": 0, "val": 0}, "by_split": {"train": 0, "val": 0},
              "rejected": 0, "by_tier_cardinality": {t: {} for t in ("concept", "simple", "complex")},
              "by_tier": {t: 0 for t in ("concept", "simple", "complex")}, "by_subtype": {}, "by_category": {},
              "shards": {"train": 0, "val": 0}, "sam3i_entries": {"train": 0, "val": 0}, "rejected_by_reason": {}}
    text = render_card({"Quality report": "## Quality report\n\n- fine", "Notes": "## Other\nkept"}, counts, "r1")
    assert text.count("## Quality report") == 1 and "- fine" in text
    assert "## Notes\n\n## Other\nkept" in text  # a different heading is the body's own business
    assert "No image in this release." in text


@pytest.mark.parametrize("marker,problem", [(b'{"release_id": ', "not valid JSON"),
                                            (b'{"format": "other/9"}', "unknown format 'other/9'"),
                                            (b"[1]", "unknown format 'list'")])
def test_a_damaged_marker_is_refused_by_name(tmp_path, inputs, marker, problem):
    out = tmp_path / "r"
    out.mkdir()
    (out / "_RELEASE.json").write_bytes(marker)
    with pytest.raises(NotAReleaseError, match=f"{out / '_RELEASE.json'}: {problem}"):
        open_release(str(out))
    with pytest.raises(NotAReleaseError, match=problem):  # and a build will not publish over it
        _build(out, *inputs)


def test_lock_of_a_killed_build_on_this_host_is_taken_over(tmp_path, inputs, caplog):
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "r"
    holder = {"user": "me", "host": socket.gethostname(), "pid": gone.pid, "since": "2026-01-01T00:00:00Z",
              "lock_id": "dead"}
    (tmp_path / "r.lock").write_text(json.dumps(holder))
    _build(out, *inputs)
    assert open_release(str(out)).verify_checksums() == [] and not (tmp_path / "r.lock").exists()
    assert "no longer running" in caplog.text
    # a live process on this host keeps its lock
    alive = {**holder, "pid": os.getppid()}
    (tmp_path / "r2.lock").write_text(json.dumps(alive))
    with pytest.raises(ReleaseLockedError, match=f"pid {os.getppid()}"):
        _build(tmp_path / "r2", *inputs)


def test_huggingface_webdataset_builder_reads_the_shards_unchanged(release):
    """`load_dataset("webdataset", data_files=...)` infers its schema from a few samples: with
    one sample schema (program/checks as JSON strings) every sample loads with its json as written."""
    import datasets

    samples = _shard_samples(release)
    files = {s: [release.file_uri(e["url"]) for e in release.index["shardlist"] if e["split"] == s]
             for s in ("train", "val")}
    ds = datasets.load_dataset("webdataset", data_files=files)
    for split in files:
        assert len(ds[split]) == release.counts["samples"][split]
        for row in ds[split]:
            assert row["json"] == samples[row["__key__"]]["json"]


def test_hydra_dataset_list_names_every_sam3i_file_for_its_stage(release):
    import yaml

    cfg = yaml.safe_load(Path(release.file_uri("sam3i/hydra_datasets.yaml")).read_text())
    assert cfg["paths"]["sam3i_engine_release"] == "???"  # the user sets it
    rows = release.sam3i_datasets["files"]
    listed = []
    for stage in ("1_1", "1_2", "3"):
        for split in ("train", "val"):
            for node in cfg["sam3i_engine"][f"stage_{stage}"][split]:
                assert node["_target_"] == "sam3.train.data.sam3_image_dataset.Sam3ImageDataset"
                assert node["coco_json_loader"]["_target_"] == "sam3.train.data.coco_json_loaders.COCO_FROM_JSON"
                assert node["training"] is (split == "train")
                rel_path = node["ann_file"].replace("${paths.sam3i_engine_release}/", "")
                assert Path(release.file_uri(rel_path)).is_file()
                listed.append((stage, split, rel_path))
    assert sorted(listed) == sorted((r["stage"], r["split"], r["path"]) for r in rows)
    readme = Path(release.file_uri("README.md")).read_text()
    assert "sam3i/hydra_datasets.yaml" in readme and all(f"`{r['path']}`" in readme for r in rows)
