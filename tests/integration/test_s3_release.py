"""Releases on a real S3-compatible server (SeaweedFS `weed mini`, started by the tests)."""
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds

from engine.scene import masks
from engine import storage
from engine.config import ReleaseConfig
from engine.release.reader import make_dataset
from engine.release.publish import (NotAReleaseError, PublishError, ReleaseLockedError, build_release,
                            open_release)
from tests.release_data import CARD, coco_tables, make_instructions
from tests.s3_server import s3_env, s3_server, start_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def two_sources():
    """coco-sample ingested as two sources: 60 images, enough for a shard over 5 MiB."""
    images, instances = coco_tables(("coco", "copy"))
    return images, instances, make_instructions(images, instances)


def _cfg(**kw):
    # one shard per split (not per work unit), so the train shard is big enough for multipart
    base = dict(shard_max_count=1000, shard_max_bytes=10**9, val_fraction=0.2, shard_by_unit=False,
                multipart_threshold=5 * MiB, upload_attempts=2, upload_backoff_s=0.1)
    return ReleaseConfig(**{**base, **kw})


def _keys(bucket: str, prefix: str) -> list[str]:
    return [u.split(f"s3://{bucket}/", 1)[1] for u in storage.list_prefix(f"s3://{bucket}/{prefix}")]


def test_release_round_trip_through_s3(s3_env, two_sources, tmp_path, monkeypatch):
    bucket, cfg = s3_env, _cfg()
    uri = f"s3://{bucket}/releases/v1"
    info = build_release(uri, *two_sources, CARD, cfg, "fp", "code")
    local = build_release(str(tmp_path / "v1"), *two_sources, CARD, cfg, "fp", "code")
    assert info.files == local.files  # the same bytes, wherever they are published

    rel = open_release(uri)
    assert rel.verify_checksums() == []
    listed = {k.removeprefix("releases/v1/") for k in _keys(bucket, "releases/v1")}
    assert listed == set(info.files) | {"_RELEASE.json"}  # no lock or temp objects left

    big = [e for e in rel.index["shardlist"] if e["filesize"] > cfg.multipart_threshold]
    assert big, "no shard exceeds the multipart threshold"
    head = storage.s3_client().head_object(Bucket=bucket, Key=f"releases/v1/{big[0]['url']}")
    assert head["ContentLength"] == big[0]["filesize"]
    assert "-" in head["ETag"]  # a multipart upload's ETag is "<md5 of part md5s>-<parts>"

    images, instances, _ = two_sources
    inst = instances.set_index("instance_id")
    keys = []
    for s in make_dataset(rel, decode_image=False):
        keys.append(s["key"])
        src = images.loc[images["image_id"] == s["meta"]["image_id"], "uri"].iloc[0]
        assert s["image"] == Path(src).read_bytes()
        for iid in s["masks"]:
            r = inst.loc[iid]
            assert np.array_equal(s["masks"][iid], masks.decode(r["rle"], r["height"], r["width"]))
    assert sorted(keys) == sorted(set(rel.manifest["sample_key"])) and len(keys) == len(set(keys))
    # where webdataset forbids pipe: URLs (WDS_SECURE=1), shards are downloaded to a cache
    monkeypatch.setattr(wds.utils, "enforce_security", True)
    cached = sorted(s["key"] for s in make_dataset(rel, "val", decode_image=False, cache_dir=tmp_path / "cache"))
    assert cached == sorted(set(rel.manifest.loc[rel.manifest["split"] == "val", "sample_key"]))
    assert list((tmp_path / "cache").rglob("val-*.tar"))
    assert rel.manifest.equals(open_release(str(tmp_path / "v1")).manifest)


def test_lock_held_elsewhere_is_refused(s3_env, two_sources):
    bucket = s3_env
    holder = {"user": "bob", "host": "ray-head", "pid": 99, "since": "2026-02-02T00:00:00Z", "lock_id": "z"}
    storage.write_bytes(f"s3://{bucket}/rel/_LOCK", json.dumps(holder).encode())
    with pytest.raises(ReleaseLockedError, match=r"bob@ray-head \(pid 99\).*rel/_LOCK"):
        build_release(f"s3://{bucket}/rel", *two_sources, CARD, _cfg(), "fp", "code")
    assert _keys(bucket, "rel") == ["rel/_LOCK"]  # nothing written, the other build's lock kept


def test_failed_publish_leaves_no_marker_and_releases_the_lock(s3_env, two_sources):
    bucket, uri = s3_env, f"s3://{s3_env}/rel"

    def fail_after_first_shard(rel_path):
        if rel_path.startswith("shards/"):
            raise RuntimeError("simulated crash")

    with pytest.raises(PublishError, match="failed at shards/train-000000.tar.*simulated crash"):
        build_release(uri, *two_sources, CARD, _cfg(shard_max_count=20), "fp", "code",
                      on_published=fail_after_first_shard)
    assert _keys(bucket, "rel") == ["rel/shards/train-000000.tar"]  # partial, unmarked, unlocked
    with pytest.raises(NotAReleaseError):
        open_release(uri)
    # a clean rerun finishes the release, with a different shard layout: stale objects go
    info = build_release(uri, *two_sources, CARD, _cfg(shard_max_count=1000), "fp", "code")
    assert {k.removeprefix("rel/") for k in _keys(bucket, "rel")} == set(info.files) | {"_RELEASE.json"}


class _ActMidUpload:
    """Wraps the S3 client so that `action` runs once `after_bytes` of an upload_file have been
    sent: the server can then be killed in the middle of a (multipart) upload."""

    def __init__(self, client, after_bytes: int, action):
        self._client, self._after, self._action = client, after_bytes, action

    def __getattr__(self, name):
        return getattr(self._client, name)

    def upload_file(self, *args, **kwargs):
        sent = 0

        def progress(n):
            nonlocal sent
            sent += n
            if sent >= self._after and _ActMidUpload.fired is False:
                _ActMidUpload.fired = True
                self._action()

        return self._client.upload_file(*args, Callback=progress, **kwargs)


def _kill_mid_upload(monkeypatch, server, after_bytes, then=lambda: None):
    real = storage.s3_client
    _ActMidUpload.fired = False
    monkeypatch.setattr(storage, "s3_client", lambda: _ActMidUpload(real(), after_bytes, lambda: (server.kill(), then())))


def _pending_uploads(client, bucket) -> list:
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_server_killed_mid_upload(tmp_path, monkeypatch, two_sources):
    """The server dies while the first shard is half uploaded (multipart): the build fails
    cleanly (PublishError naming the file), leaves no _RELEASE.json and no visible shard, and
    the next build (after the operator clears the dead build's lock) completes."""
    server = start_server(tmp_path)
    try:
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        server.client().create_bucket(Bucket="crash")
        uri, cfg = "s3://crash/rel", _cfg()  # one train shard of ~8 MiB: two 5 MiB parts
        _kill_mid_upload(monkeypatch, server, after_bytes=6 * MiB)
        t0 = time.monotonic()
        with pytest.raises(PublishError, match=r"failed at shards/train-000000.tar.*No _RELEASE.json was written"):
            build_release(uri, *two_sources, CARD, cfg, "fp", "code")
        assert _ActMidUpload.fired and time.monotonic() - t0 < 40
        monkeypatch.undo()

        server.start()  # same data folder: what did the crash leave?
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        assert not storage.exists(f"{uri}/_RELEASE.json")
        assert _keys("crash", "rel") == ["rel/_LOCK"]  # the half-sent shard is not an object
        with pytest.raises(NotAReleaseError, match="no _RELEASE.json"):
            open_release(uri)
        with pytest.raises(NotAReleaseError):
            make_dataset(uri)
        assert [u["Key"] for u in _pending_uploads(server.client(), "crash")] == ["rel/shards/train-000000.tar"]
        # the dead build could not remove its lock: the next build names it, and after the
        # operator deletes it the build completes and clears the unfinished upload's parts
        with pytest.raises(ReleaseLockedError, match=r"pid \d+.*delete s3://crash/rel/_LOCK"):
            build_release(uri, *two_sources, CARD, cfg, "fp", "code")
        storage.delete(f"{uri}/_LOCK")
        info = build_release(uri, *two_sources, CARD, cfg, "fp", "code")
        assert open_release(uri).verify_checksums() == []
        assert {k.removeprefix("rel/") for k in _keys("crash", "rel")} == set(info.files) | {"_RELEASE.json"}
        assert _pending_uploads(server.client(), "crash") == []
    finally:
        server.stop()


def test_upload_retries_through_a_short_outage(tmp_path, monkeypatch, two_sources, caplog):
    """The server dies mid-upload and is back a second later: the retries with backoff carry
    the build through, and the release is complete and intact."""
    server = start_server(tmp_path)
    try:
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        server.client().create_bucket(Bucket="blip")
        uri = "s3://blip/rel"
        restart = threading.Timer(1.0, server.start)
        _kill_mid_upload(monkeypatch, server, after_bytes=6 * MiB, then=restart.start)
        info = build_release(uri, *two_sources, CARD, _cfg(upload_attempts=6, upload_backoff_s=0.5), "fp", "code")
        restart.join()
        assert _ActMidUpload.fired
        assert any("shards/train-000000.tar: attempt 1/6 failed" in r.getMessage() for r in caplog.records)
        rel = open_release(uri)
        assert rel.release_id == info.release_id and rel.verify_checksums() == []
        assert {k.removeprefix("rel/") for k in _keys("blip", "rel")} == set(info.files) | {"_RELEASE.json"}
        assert _pending_uploads(server.client(), "blip") == []
    finally:
        server.stop()
