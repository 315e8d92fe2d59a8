"""Issue 9, problem 7: a source whose every record is quarantined fails the build with a clear
message and publishes nothing (no empty release, no exit 0)."""
from __future__ import annotations


import pytest

from engine.build import NothingToPublishError, build, main
from engine.config import EngineConfig
from tests.coco_fixtures import make_case


def test_images_list_empty_fails_with_a_message_and_no_release(tmp_path, capsys):
    case = make_case(tmp_path)
    case.coco["images"] = []
    spec = case.write()
    out = tmp_path / "release"
    rc = main(["--source", spec.annotations_uri, "--output", str(out), "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"source {case.source_id!r}" in err and "every record was quarantined" in err
    assert "unknown_image" in err and "nothing was published" in err
    assert not out.exists()


def test_every_image_missing_names_the_reasons(tmp_path):
    case = make_case(tmp_path)
    for img in case.images:
        case.image_path(img).unlink()
    with pytest.raises(NothingToPublishError, match=r"missing_image: 3.*nothing was published"):
        build([case.write()], str(tmp_path / "release"), EngineConfig(), workdir=tmp_path / "w")
    assert not (tmp_path / "release" / "_RELEASE.json").exists()


def test_one_dead_source_among_good_ones_fails_too(tmp_path):
    good, dead = make_case(tmp_path, name="good"), make_case(tmp_path, name="dead")
    for img in dead.images:
        img["width"] += 1  # size_mismatch everywhere
    with pytest.raises(NothingToPublishError, match=r"source 'dead'.*size_mismatch: 3"):
        build([good.write(), dead.write()], str(tmp_path / "release"), EngineConfig(), workdir=tmp_path / "w")
    assert not (tmp_path / "release").exists()


def test_no_accepted_instruction_publishes_nothing(tmp_path):
    case = make_case(tmp_path, n_images=1)
    # nothing is planned: every instance is below the size floor, no 1:All, no negatives
    cfg = EngineConfig.model_validate({"plan": {"min_area_frac": 1.0, "min_area_px": 0, "one_to_all": False,
                                                "negatives_per_image": 0}})
    with pytest.raises(NothingToPublishError, match="no instruction was accepted"):
        build([case.write()], str(tmp_path / "release"), cfg, workdir=tmp_path / "w")
    assert not (tmp_path / "release").exists()
    # what was ingested stays in the work dir for inspection
    assert (tmp_path / "w" / "ingest" / "quarantine.parquet").exists()
