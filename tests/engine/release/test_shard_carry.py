"""Shards of an earlier release carried into the next one (issue 16): a shard whose samples did
not change is hard-linked from the earlier release with its recorded checksum instead of being
rewritten, a changed shard is written afresh, and the new release still passes every check."""
from __future__ import annotations

import os

import pandas as pd

from engine.config import ReleaseConfig
from engine.release import shard
from engine.release.publish import build_release, open_release
from engine.release.reader import make_dataset
from tests.release_data import CARD, coco_tables, make_instructions

CFG = ReleaseConfig(shard_max_count=4, val_fraction=0.0)


def _build(out, images, instances, previous=None):
    # instructions made once for the whole sample: make_instructions' "every 5th row is
    # rejected" would otherwise move with the number of images
    instr = make_instructions(*coco_tables())
    instr = instr[instr["image_id"].isin(set(images["image_id"]))]
    fp = "fp-" + str(len(images))
    return build_release(str(out), images, instances, instr, CARD, CFG, fp, "code-1", previous=previous)


def test_unchanged_shards_are_carried_over_and_the_release_still_verifies(tmp_path, monkeypatch):
    images, instances = coco_tables()
    images = images.sort_values("image_id").reset_index(drop=True)
    first = images.iloc[:-3]            # the last three images arrive later
    a = _build(tmp_path / "a", first, instances[instances["image_id"].isin(first["image_id"])])
    reads = []
    real_read = shard._write_tar
    monkeypatch.setattr(shard, "_write_tar", lambda group, path: reads.append(path.name) or real_read(group, path))
    b = _build(tmp_path / "b", images, instances, previous=a.uri)

    ia, ib = open_release(a.uri).index["shardlist"], open_release(b.uri).index["shardlist"]
    same = [s for s in ib if any(s["content"] == t["content"] for t in ia)]
    assert same and len(same) < len(ib)      # some shards unchanged, the last one(s) not
    for s in same:
        old = tmp_path / "a" / next(t["url"] for t in ia if t["content"] == s["content"])
        new = tmp_path / "b" / s["url"]
        assert os.stat(old).st_ino == os.stat(new).st_ino          # one file, two releases
        assert s["url"].split("/")[-1] not in reads                 # and not written again
    assert sorted(reads) == sorted(s["url"].split("/")[-1] for s in ib if s not in same)

    # a fresh build without the previous release writes the very same bytes
    c = _build(tmp_path / "c", images, instances)
    assert {s["url"]: s["sha256"] for s in open_release(c.uri).index["shardlist"]} == \
        {s["url"]: s["sha256"] for s in ib}
    rb = open_release(b.uri)
    assert rb.verify_checksums() == []
    keys = [s["__key__"] for s in make_dataset(b.uri, split="train")]
    assert sorted(keys) == sorted(pd.read_parquet(tmp_path / "b" / "manifest.parquet")["sample_key"].unique())


def test_a_damaged_earlier_shard_is_not_carried(tmp_path):
    images, instances = coco_tables()
    a = _build(tmp_path / "a", images, instances)
    victim = tmp_path / "a" / open_release(a.uri).index["shardlist"][0]["url"]
    data = bytearray(victim.read_bytes())
    victim.chmod(0o644)
    victim.write_bytes(bytes(data[:-512]))      # size no longer what the release recorded
    b = _build(tmp_path / "b", images, instances.copy(), previous=a.uri)
    first = open_release(b.uri).index["shardlist"][0]
    assert os.stat(tmp_path / "b" / first["url"]).st_ino != os.stat(victim).st_ino
    assert open_release(b.uri).verify_checksums() == []
