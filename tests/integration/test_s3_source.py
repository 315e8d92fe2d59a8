"""A source read from a real S3-compatible server ingests exactly like the same files on disk,
and a whole build reads from s3:// and publishes to s3://."""
from pathlib import Path

import pytest

from engine import storage
from engine.build import build, sources_of
from engine.config import EngineConfig, load_config
from engine.sources.ingest import ingest, resolve_source
from engine.release.publish import open_release
from tests.s3_server import s3_env, s3_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
COCO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco-sample"


def _upload_source(bucket: str) -> str:
    prefix = f"s3://{bucket}/datasets/coco-sample"
    storage.write_bytes(f"{prefix}/instances.json", (COCO / "instances.json").read_bytes())
    for img in sorted((COCO / "images").iterdir()):
        storage.write_bytes(f"{prefix}/images/{img.name}", img.read_bytes())
    return prefix


def test_s3_source_ingests_like_the_local_copy(s3_env):
    uri = _upload_source(s3_env)
    # a missing object is quarantined like a missing file, not a crash
    storage.delete(f"{uri}/images/000000074646.jpg")
    remote = ingest([resolve_source(uri)], EngineConfig().ingest)
    local = ingest([resolve_source(str(COCO))], EngineConfig().ingest)
    assert len(remote.images) == len(local.images) - 1 == 29
    q = remote.quarantine
    assert "coco-sample:74646" not in set(remote.images["image_id"])
    assert (q[q["record_type"] == "image"]["reason"] == "missing_image").all()
    keep = local.images[local.images["image_id"] != "coco-sample:74646"]
    assert sorted(remote.images["sha256"]) == sorted(keep["sha256"])
    assert set(remote.images["uri"].str.slice(0, 5)) == {"s3://"}
    lost = set(local.instances[local.instances["image_id"] == "coco-sample:74646"]["instance_id"])
    assert set(remote.instances["instance_id"]) == set(local.instances["instance_id"]) - lost
    local_rle = local.instances.set_index("instance_id")["rle"]
    assert all(local_rle[i] == r for i, r in zip(remote.instances["instance_id"], remote.instances["rle"]))


def test_build_from_s3_to_s3(s3_env, tmp_path):
    src = _upload_source(s3_env)
    out = f"s3://{s3_env}/releases/r1"
    res = build(sources_of(src), out, load_config(None, ["release.multipart_threshold=5242880"]), tmp_path / "work")
    rel = open_release(out)
    assert rel.release_id == res.release_id
    assert rel.verify_checksums() == []
    assert len(rel.manifest) == res.report["instructions"]["accepted"] > 500
