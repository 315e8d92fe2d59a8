"""The ingest image cache (issue 16): a second ingest of an unchanged source reads no image and
gives the same tables; a changed file or a changed annotation is read and decoded again."""
from __future__ import annotations

import os

import pandas as pd
from PIL import Image

from engine.config import IngestConfig
from engine.sources import ingest as ingest_mod
from engine.sources.ingest import ImageCache, ingest
from tests.coco_fixtures import make_case


def _count_reads(monkeypatch) -> list[str]:
    reads: list[str] = []
    real = ingest_mod._read_local
    monkeypatch.setattr(ingest_mod, "_read_local", lambda job, cap: reads.append(job.record["file_name"]) or real(job, cap))
    return reads


def test_unchanged_images_are_not_read_again_and_changes_are(tmp_path, monkeypatch):
    case = make_case(tmp_path, n_images=4)
    spec = case.write()
    path = tmp_path / "cache.pkl"
    cache = ImageCache(path)
    first = ingest([spec], IngestConfig(), cache=cache)
    cache.save()

    reads = _count_reads(monkeypatch)
    again = ingest([spec], IngestConfig(), cache=ImageCache(path), workers=1)
    assert reads == []
    pd.testing.assert_frame_equal(first.images, again.images)
    pd.testing.assert_frame_equal(first.instances, again.instances)

    # one file re-encoded (same picture size, other bytes), one annotation moved to another category
    imgs = sorted(case.images, key=lambda r: r["id"])
    changed, edited = imgs[0], imgs[1]
    with Image.open(case.image_path(changed)) as im:
        im.convert("RGB").save(case.image_path(changed), format="JPEG", quality=40)
    os.utime(case.image_path(changed), ns=(1, 1))        # even an old mtime: size and ctime differ
    ann = case.anns_of(edited)[0]
    ann["category_id"] = next(c["id"] for c in case.coco["categories"] if c["id"] != ann["category_id"])
    case.write()
    cache = ImageCache(path)
    third = ingest([spec], IngestConfig(), cache=cache, workers=1)
    assert sorted(reads) == sorted([changed["file_name"], edited["file_name"]])
    assert cache.hits == 2
    sha = dict(zip(third.images["orig_id"], third.images["sha256"]))
    assert sha[changed["id"]] != dict(zip(first.images["orig_id"], first.images["sha256"]))[changed["id"]]
    # a fresh ingest without any cache agrees with the cached one
    fresh = ingest([spec], IngestConfig())
    pd.testing.assert_frame_equal(fresh.images, third.images)
    pd.testing.assert_frame_equal(fresh.instances, third.instances)


def test_a_damaged_cache_file_only_costs_the_reads(tmp_path, monkeypatch):
    case = make_case(tmp_path, n_images=2)
    spec = case.write()
    path = tmp_path / "cache.pkl"
    path.write_bytes(b"not a pickle")
    reads = _count_reads(monkeypatch)
    res = ingest([spec], IngestConfig(), cache=ImageCache(path), workers=1)
    assert len(reads) == 2 and len(res.images) == 2
