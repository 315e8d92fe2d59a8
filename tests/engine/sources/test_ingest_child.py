"""A build ingests in a child process and keeps only the summary and per-unit tables on disk
(issue 16): the child gives what ingest in this process gives, its IngestError reaches the
caller with its message, and quarantine still works (counts in the summary, rows on disk)."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from engine.build import NothingToPublishError, run_ingest
from engine.config import load_config
from engine.sources.ingest import IngestError, SourceSpec, ingest, inputs_fingerprint, resolve_source
from tests.release_data import COCO_SAMPLE

CFG = load_config(None, ["ingest.unit_size=8"])


def _broken_copy(tmp_path):
    """coco-sample with one image missing from the folder and one annotation of an unknown image."""
    doc = json.loads((COCO_SAMPLE / "instances.json").read_text())
    doc["annotations"].append({**doc["annotations"][0], "id": 999999999, "image_id": 424242})
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    missing = doc["images"][0]["file_name"]
    for img in doc["images"]:
        if img["file_name"] != missing:
            shutil.copyfile(COCO_SAMPLE / "images" / img["file_name"], src / "images" / img["file_name"])
    (src / "instances.json").write_text(json.dumps(doc))
    return src


def test_child_and_in_process_ingest_agree_and_quarantine_is_kept(tmp_path):
    src = resolve_source(str(_broken_copy(tmp_path)))
    child = run_ingest([src], CFG, tmp_path / "a", in_process=False)
    here = run_ingest([src], CFG, tmp_path / "b", in_process=True)
    assert child.summary == here.summary
    whole = ingest([src], CFG.ingest)
    assert child.n_images == len(whole.images) == 29 and child.n_quarantined == len(whole.quarantine) > 2
    assert child.quarantine_counts() == whole.quarantine.groupby("reason").size().to_dict()
    assert child.quarantine_counts()["missing_image"] == 1
    pd.testing.assert_frame_equal(child.quarantine, whole.quarantine)
    assert child.summary["inputs_fingerprint"] == inputs_fingerprint(whole.images, whole.instances)
    # one unit at a time, together the whole tables
    units = child.unit_ids()
    assert len(units) == 4
    imgs = pd.concat([child.unit(u)[0] for u in units]).sort_values(["source_id", "orig_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(imgs, whole.images)
    insts = pd.concat([child.unit(u)[1] for u in units]).sort_values(["source_id", "orig_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(insts, whole.instances)


def test_an_unreadable_source_fails_with_its_message_from_the_child(tmp_path):
    bad = tmp_path / "bad"
    (bad / "images").mkdir(parents=True)
    (bad / "instances.json").write_text('{"images": [}')
    with pytest.raises(IngestError, match="malformed JSON at line 1"):
        run_ingest([SourceSpec("bad", str(bad / "instances.json"), str(bad / "images"))], CFG, tmp_path / "w",
                   in_process=False)


def test_a_source_without_any_usable_image_is_refused_with_the_reasons(tmp_path):
    doc = json.loads((COCO_SAMPLE / "instances.json").read_text())
    src = tmp_path / "empty"
    (src / "images").mkdir(parents=True)
    (src / "instances.json").write_text(json.dumps(doc))
    with pytest.raises(NothingToPublishError, match="missing_image: 30"):
        run_ingest([resolve_source(str(src))], CFG, tmp_path / "w", in_process=False)


def test_small_local_coco_sources_ingest_in_the_driver_and_the_rest_in_a_child(tmp_path, monkeypatch):
    import engine.build as build_mod
    coco = resolve_source(str(COCO_SAMPLE))
    assert build_mod._small([coco])                      # 240 KB of json: not worth a process
    monkeypatch.setattr(build_mod, "SMALL_SOURCE_BYTES", 1000)
    assert not build_mod._small([coco])
    assert not build_mod._small([SourceSpec("lm", str(tmp_path), str(tmp_path), "labelme")])
