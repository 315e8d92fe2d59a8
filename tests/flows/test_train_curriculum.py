"""train-curriculum: per-stage sample counts from a real release, the plan file, the plain
"no trainer installed" status, the hand-off to model.train.train_curriculum when present (and
its failure, recorded), and the refusal of a release whose files fail their checksums."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Before anything imports prefect: its import creates PREFECT_HOME (default ~/.prefect).
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-home-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], True)

import importlib.machinery
import json
import sys
import types

import pytest
from prefect.settings import PREFECT_HOME, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from engine.config import ReleaseConfig
from engine.release.publish import NotAReleaseError, build_release, open_release
from flows.train_curriculum import TRAINER_MODULE, curriculum_plan, train_curriculum
from tests.release_data import CARD, coco_tables, make_instructions


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    with temporary_settings({PREFECT_HOME: str(tmp_path_factory.mktemp("prefect-home"))}):
        with prefect_test_harness(server_startup_timeout=120):
            yield


@pytest.fixture(scope="module")
def release_uri(tmp_path_factory) -> str:
    images, instances = coco_tables()
    instructions = make_instructions(images, instances)
    out = str(tmp_path_factory.mktemp("rel") / "release")
    build_release(out, images, instances, instructions, CARD, ReleaseConfig(), inputs_fingerprint="fp-train",
                  code_version="test")
    return out


def _expected(release_uri: str) -> dict[int, int]:
    m = open_release(release_uri).manifest
    return {1: int((m["tier"] == "simple").sum()), 2: int((m["tier"] == "complex").sum()), 3: len(m)}


def test_plan_counts_samples_per_stage(release_uri):
    plan = curriculum_plan(open_release(release_uri))
    want = _expected(release_uri)
    assert {s["stage"]: s["instructions"] for s in plan["stages"]} == want
    assert all(v > 0 for v in want.values()) and want[3] > want[1] + want[2]  # concept rows only in stage 3
    for s in plan["stages"]:
        assert sum(s["by_split"].values()) == s["instructions"]
        assert sum(s["by_cardinality"].values()) == s["instructions"]
    assert [s["tiers"] for s in plan["stages"]] == [["simple"], ["complex"], ["concept", "simple", "complex"]]


def test_flow_without_trainer_writes_plan_and_says_so(prefect_api, release_uri, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("flows.train_curriculum.TRAINER_MODULE", "model.not_installed_trainer")
    plan = train_curriculum(release_uri=release_uri, output=str(tmp_path / "train"))
    assert plan["status"].startswith("no trainer installed")
    written = json.loads((tmp_path / "train" / "training_plan.json").read_text())
    assert {s["stage"]: s["instructions"] for s in written["stages"]} == _expected(release_uri)
    assert written["release_id"] == open_release(release_uri).release_id and written["checksums_verified"] is True
    assert any("No trainer is installed" in r.getMessage() for r in caplog.records)


def test_flow_calls_installed_trainer(prefect_api, release_uri, tmp_path, monkeypatch):
    calls = []

    def fake_train(release_uri, plan, output_dir):
        calls.append((release_uri, plan["stages"], output_dir))
        return {"trained_stages": len(plan["stages"])}

    mod = types.ModuleType(TRAINER_MODULE)
    mod.__spec__ = importlib.machinery.ModuleSpec(TRAINER_MODULE, None)
    mod.train_curriculum = fake_train
    monkeypatch.setitem(sys.modules, TRAINER_MODULE, mod)
    plan = train_curriculum(release_uri=release_uri, output=str(tmp_path / "t"))
    assert len(calls) == 1 and calls[0][0] == release_uri and calls[0][2] == str(tmp_path / "t")
    assert [s["instructions"] for s in calls[0][1]] == list(_expected(release_uri).values())
    assert plan["trainer_result"] == {"trained_stages": 3}
    assert "called and returned" in plan["status"]
    written = json.loads((tmp_path / "t" / "training_plan.json").read_text())   # the file says so too
    assert written["trainer_result"] == {"trained_stages": 3} and written["status"] == plan["status"]


def test_a_failing_trainer_fails_the_flow_and_the_plan_file_says_why(prefect_api, release_uri, tmp_path, monkeypatch):
    def broken(release_uri, output_dir):
        raise RuntimeError("CUDA out of memory")

    mod = types.ModuleType(TRAINER_MODULE)
    mod.__spec__ = importlib.machinery.ModuleSpec(TRAINER_MODULE, None)
    mod.train_curriculum = broken
    monkeypatch.setitem(sys.modules, TRAINER_MODULE, mod)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        train_curriculum(release_uri=release_uri, output=str(tmp_path / "t"))
    written = json.loads((tmp_path / "t" / "training_plan.json").read_text())
    assert written["status"].endswith("failed: RuntimeError: CUDA out of memory")


def test_flow_refuses_a_damaged_release(prefect_api, release_uri, tmp_path, monkeypatch):
    monkeypatch.setattr("flows.train_curriculum.TRAINER_MODULE", "model.not_installed_trainer")
    damaged = tmp_path / "damaged"
    shutil.copytree(release_uri, damaged)
    shard = next((damaged / "shards").glob("*.tar"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="refusing to train on a damaged release") as err:
        train_curriculum(release_uri=str(damaged), output=str(tmp_path / "t"))
    assert shard.name in str(err.value)
    assert not (tmp_path / "t" / "training_plan.json").exists()
    plan = train_curriculum(release_uri=str(damaged), output=str(tmp_path / "t"), verify=False)  # asked not to
    assert plan["checksums_verified"] is False


def test_flow_refuses_unpublished_release(prefect_api, tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(NotAReleaseError):
        train_curriculum(release_uri=str(tmp_path / "half"), output=str(tmp_path / "t"))


def test_flow_runs_the_real_trainer_and_publishes_checkpoints_and_evaluation(prefect_api, release_uri, tmp_path):
    """model.train.train_curriculum, not a stand-in: three stages on the tiny SAM3-I, then the
    evaluation table; both become Prefect artifacts."""
    from prefect.client.orchestration import get_client

    small = ["data.max_samples=4", "train.stage1.epochs=1", "train.stage2.epochs=1", "train.stage3.epochs=1"]
    plan = train_curriculum(release_uri=release_uri, output=str(tmp_path / "t"), overrides=small)
    assert "called and returned" in plan["status"]
    result = plan["trainer_result"]
    assert sorted(result["checkpoints"]) == [1, 2, 3] or sorted(result["checkpoints"]) == ["1", "2", "3"]
    for path in result["checkpoints"].values():
        assert os.path.getsize(path) > 10_000
    table = result["evaluation"]["table"]
    assert table["all"]["samples"] > 0 and "tier=simple" in table
    assert json.loads((tmp_path / "t" / "evaluation.json").read_text())["table"] == table
    with get_client(sync_client=True) as c:
        arts = {a.key: a for a in c.read_latest_artifacts()}
    md = arts["train-curriculum"].data
    assert "stage3.pt" in md and "## Evaluation" in md and "| all |" in md
    rows = arts["train-curriculum-eval"].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    assert rows[0]["group"] == "all" and {r["group"] for r in rows} >= {"tier=concept", "tier=simple"}
