"""The sam3i checker inside the engine's acceptance policy: a real build of the COCO sample with
`check.policy.simple=[program, sam3i]` and the untrained tiny SAM3-I, which cannot segment
most of what it is asked for, rejects nearly every positive simple instruction with the IoU in its
reason and lineage, keeps only those it happens to re-segment (targets filling most of the photo)
with their IoU recorded, and leaves the tiers whose policy does not name sam3i untouched."""
from __future__ import annotations

import json

import pandas as pd

from engine.build import build, engine_config, sources_of
from engine.release.publish import open_release
from tests.model.conftest import SAMPLE


def test_policy_requiring_sam3i_rejects_what_the_model_cannot_segment(tmp_path):
    cfg = engine_config(None, ["check.policy.simple=[program,sam3i]", "check.sam3i.device=cpu", "check.max_rounds=1"])
    build(sources_of(str(SAMPLE)), str(tmp_path / "rel"), cfg, tmp_path / "work")
    release = open_release(str(tmp_path / "rel"))
    manifest = release.manifest
    rejected = pd.read_parquet(tmp_path / "rel" / "rejected.parquet")

    positive_simple = rejected[(rejected["tier"] == "simple") & (rejected["cardinality"] != "negative")]
    assert len(positive_simple) > 50
    assert positive_simple["reject_reason"].str.startswith("sam3i: SAM3-I's mask for this simple instruction has IoU").all()
    for checks in positive_simple["checks"].head(20):
        s = next(c for c in json.loads(checks) if c["checker"] == "sam3i")
        assert s["verdict"] == "fail" and s["detail"]["iou"] < 0.5 and s["detail"]["tier"] == "simple"
    kept = manifest[(manifest["tier"] == "simple") & (manifest["cardinality"] != "negative")]
    assert len(kept) < len(positive_simple) / 5
    for checks in kept["checks"]:
        s = next(c for c in json.loads(checks) if c["checker"] == "sam3i")
        assert s["verdict"] == "pass" and s["detail"]["iou"] >= 0.5
    negatives = manifest[(manifest["tier"] == "simple") & (manifest["cardinality"] == "negative")]
    assert len(negatives) > 0 and not negatives["checks"].str.contains('"sam3i"').any()   # their own policy
    others = manifest[manifest["tier"] != "simple"]
    assert len(others) > 100
    assert not others["checks"].str.contains('"sam3i"').any()   # not run where the policy does not ask
