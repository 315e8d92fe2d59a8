"""nightly-refresh and build-dataset on the embedded stack (ephemeral Prefect API, local Ray):
a refresh after new images and an edited annotation processes only the new and changed units,
an unchanged refresh publishes nothing, and build-dataset reuses the same finished units and hands its release to training."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Before anything imports prefect: its import creates PREFECT_HOME (default ~/.prefect).
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-home-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], True)

import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_HOME, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from engine.build import run_ingest
from engine.config import load_config
from engine.sources.ingest import resolve_source
from engine.release.publish import ReleaseExistsError, open_release
from flows.build_dataset import build_dataset
from flows.common import LATEST
from flows.nightly_refresh import RELEASES, nightly_refresh
from tests.coco_fixtures import COCO_SAMPLE, load_sample, make_case

pytestmark = pytest.mark.integration

OVERRIDES = ["ingest.unit_size=4"]
FIRST = 20


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    with temporary_settings({PREFECT_HOME: str(tmp_path_factory.mktemp("prefect-home"))}):
        with prefect_test_harness(server_startup_timeout=120):
            yield


def grow_to_full_sample(case) -> int:
    """Append the sample's remaining images (all with higher ids) and their annotations."""
    full = load_sample()
    have = {r["id"] for r in case.images}
    new = sorted((r for r in full["images"] if r["id"] not in have), key=lambda r: r["id"])
    assert new and min(r["id"] for r in new) > max(have)
    for r in new:
        shutil.copyfile(COCO_SAMPLE / "images" / r["file_name"], case.images_dir / r["file_name"])
    case.images.extend(new)
    case.annotations.extend(a for a in full["annotations"] if a["image_id"] in {r["id"] for r in new})
    case.write()
    return len(new)


def unit_ids(source: Path, tmp: Path) -> set[str]:
    return set(run_ingest([resolve_source(str(source))], load_config(None, OVERRIDES), tmp).unit_ids())


def test_refresh_processes_only_new_units_then_nothing(prefect_api, tmp_path, monkeypatch):
    monkeypatch.setattr("flows.train_curriculum.TRAINER_MODULE", "model.not_installed_trainer")
    case = make_case(tmp_path, n_images=FIRST, name="src")
    case.write()
    out, wd = tmp_path / "nightly", tmp_path / "work"
    params = dict(source=str(case.root), output=str(out), overrides=OVERRIDES, workdir=str(wd))

    first = nightly_refresh(**params)
    units_first = unit_ids(case.root, tmp_path / "i1")
    assert first["published"] and set(first["units_run"]) == units_first and first["units_reused"] == []
    assert first["ray_workers"] == 2

    # one annotation of the first image changes, and the rest of the sample is appended
    edited = case.anns_of(min(case.images, key=lambda r: r["id"]))[0]
    edited["category_id"] = next(c["id"] for c in case.coco["categories"] if c["id"] != edited["category_id"])
    assert grow_to_full_sample(case) > 0
    units_all = unit_ids(case.root, tmp_path / "i2")
    new_units = units_all - units_first
    changed = units_first - units_all
    assert len(changed) == 1  # only the edited image's unit; appended images leave the others as they were
    assert len(new_units) > 1  # that unit under its new id, and the units of the appended images
    second = nightly_refresh(**params)
    assert second["published"]
    assert set(second["units_run"]) == new_units
    assert set(second["units_reused"]) == units_first - changed
    assert second["release_id"] != first["release_id"]
    assert json.loads((out / LATEST).read_text())["release_id"] == second["release_id"]
    r1, r2 = open_release(first["release_uri"]), open_release(second["release_uri"])  # both intact
    assert set(r1.manifest["image_id"]) < set(r2.manifest["image_id"])
    n_first_images = r1.counts["images_in"]
    assert (n_first_images, r2.counts["images_in"]) == (FIRST, len(case.images))

    third = nightly_refresh(**params)
    assert not third["published"] and third["units_run"] == []
    assert third["release_id"] == second["release_id"]
    assert "unchanged" in third["message"] and "nothing published" in third["message"]
    assert sorted(p.name for p in (out / RELEASES).iterdir()) == sorted([first["release_id"], second["release_id"]])

    # build-dataset over the same source and work dir reuses every unit and makes the same
    # release (same inputs + config), then starts training as a subflow (no deployment here).
    single = build_dataset(source=str(case.root), output=str(tmp_path / "single"), overrides=OVERRIDES,
                           workdir=str(wd), trigger_training=True)
    assert single["units_run"] == [] and set(single["units_reused"]) == units_all
    assert single["release_id"] == second["release_id"]
    assert single["training"].startswith("subflow train-curriculum: no trainer installed")
    plan = json.loads((wd / "training" / single["release_id"] / "training_plan.json").read_text())
    assert plan["stages"][2]["instructions"] == len(open_release(single["release_uri"]).manifest)

    # A release is immutable: building other inputs into the first release's folder is refused
    # before any unit runs.
    with pytest.raises(ReleaseExistsError, match="nothing was processed"):
        build_dataset(source=str(case.root), output=first["release_uri"], overrides=OVERRIDES,
                      workdir=str(tmp_path / "fresh-work"))
    assert not (tmp_path / "fresh-work" / next(wd.glob("cfg-*")).name).exists()

    # Each run leaves a markdown artifact: release URI, counts per tier, rejection reasons.
    with get_client(sync_client=True) as c:
        latest = {a.key: a.data for a in c.read_latest_artifacts()}
    counts = r2.counts["by_tier"]
    assert "unchanged" in latest["nightly-refresh"] and second["release_uri"] in latest["nightly-refresh"]
    assert all(f"| {t} | {n} |" in latest["nightly-refresh"] for t, n in counts.items())
    assert single["release_uri"] in latest["build-dataset"] and "rejection reason" in latest["build-dataset"]
    assert all(f"| {t} | {n} |" in latest["build-dataset"] for t, n in counts.items())
    assert "no trainer installed" in latest["train-curriculum"]
