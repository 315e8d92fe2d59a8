"""The trainer reads a release from s3:// (a real S3-compatible server, SeaweedFS) through
engine.release.reader, exactly as it reads the same release from a local folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import storage
from model.config import load_train_config
from model.data import ReleaseData
from model.train import run_training
from tests.s3_server import s3_env, s3_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def test_stage1_trains_from_an_s3_release(coco_release, s3_env, tmp_path):
    uri = f"s3://{s3_env}/releases/coco"
    root = Path(coco_release)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        storage.write_bytes(f"{uri}/{f.relative_to(root).as_posix()}", f.read_bytes())
    local, remote = ReleaseData(coco_release, "train", 2), ReleaseData(uri, "train", 2)
    assert remote.items == local.items and remote.images == local.images
    cfg = load_train_config(None, [f"data.release={uri}", "data.max_samples=2", f"train.output={tmp_path / 'run'}",
                                   "train.stage1.epochs=1", "train.stage2.epochs=0", "train.stage3.epochs=0"])
    result = run_training(cfg, say=lambda *_: None)
    assert Path(result["checkpoints"][1]).exists()
    assert result["steps"] == -(-len(local.tier_items(("simple",))) // 2)
