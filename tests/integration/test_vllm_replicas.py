"""generate.backend=vllm end to end: the build starts two vLLM CPU replicas as Ray actors,
runs the free-language loop (write -> multiple-choice check -> regenerate) on real COCO
photos, survives losing a replica's engine and a replica's actor mid-build, publishes a
release with nothing lost or duplicated, and leaves no server running.

The model is the tiny random *text* model of infra/vllm-cpu (tiny-chat): vLLM 0.32's CPU build
cannot serve a Qwen2-VL/2.5-VL/3-VL model here, because those model modules import torchvision
and PyPI's torchvision wheel does not load against the CPU torch (the CPU wheel's index is
unreachable); infra/vllm-cpu/build_tiny_vlm.py builds the VL model for a machine that has it.
So no image goes into the requests here (generate.send_image=false); everything else is the
path a GPU build takes. A random model's text is gibberish and its multiple-choice answers are
arbitrary: the test checks the plumbing and the bookkeeping, not the language.
"""
from __future__ import annotations

import json
import os
import signal
import time

import pandas as pd
import pytest
import ray

from engine.build import UNIT_STAGE, build, collect, run_ingest, unit_store
from engine.config import load_config
from pipelines import vllm_replicas
from pipelines.fanout import run_units_on_ray
from tests.coco_fixtures import make_case
from tests.vllm_server import SERVED_NAME, ensure_vllm_home

pytestmark = pytest.mark.integration
N_IMAGES = 4
TIERS = ("concept", "simple", "complex", "negative")


def build_cfg(home):
    policy = [f"check.policy.{t}=[program, mllm_choice]" for t in TIERS]
    return load_config(None, [
        "generate.backend=vllm", "generate.mode=free", "generate.prompt_version=free_v1",
        f"generate.vllm.model={home / 'tiny-chat'}", f"generate.vllm.python={home / 'venv' / 'bin' / 'python'}",
        f"generate.vllm.served_model_name={SERVED_NAME}", "generate.vllm.replicas=2", "generate.vllm.num_gpus=0",
        "generate.vllm.num_cpus=0.5", "generate.vllm.chunked_prefill=false", "generate.vllm.health_interval_s=1", "generate.vllm.max_restarts=2",
        "generate.concurrency=8", "generate.max_tokens=400", "generate.temperature=1.0", "generate.seed=5",
        # while both replicas are down, requests wait: 1+2+...+64 s of back-off
        "generate.retries=7", "generate.retry_backoff_s=1.0", "check.mllm.retries=7", "check.mllm.retry_backoff_s=1.0",
        "check.mllm.temperature=1.0", "check.max_rounds=2", *policy,
        "ingest.unit_size=1", "ray.stages.unit.concurrency=2", "ray.max_retries=2",
        "plan.programs_per_target=1", "plan.negatives_per_image=1",
    ])


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    home, _ = ensure_vllm_home()
    root = tmp_path_factory.mktemp("replicas")
    source = make_case(root, n_images=N_IMAGES).write()
    cfg = build_cfg(home)
    events: dict = {"pgids": set(), "killed_engine": None, "killed_actor": None, "done": []}

    def on_done(unit_id: str) -> None:
        events["done"].append(unit_id)
        pool = vllm_replicas.ACTIVE[-1]
        events["pgids"].update(i["pgid"] for i in pool.infos)
        if events["killed_engine"] is None:
            # at once: the engine of replica 0 dies (OOM, a crash), which its actor's watchdog
            # restarts; and the actor of replica 1 dies (its node is lost), which the pool
            # replaces. Until one is back, requests wait with back-off; units may be retried.
            events["killed_engine"] = pool.infos[0]["pgid"]
            os.killpg(events["killed_engine"], signal.SIGKILL)
            events["killed_actor"] = pool.infos[1]["actor_pid"]
            ray.kill(pool.actors[1], no_restart=True)
            # hold the driver (the units in flight go on) until both replicas are back, so the
            # rest of the build runs on the restarted engine and the replacement actor
            t0 = time.monotonic()
            while not (pool.infos[0]["restarts"] >= 1 and pool.infos[0]["healthy"] and pool.replaced >= 1):
                assert time.monotonic() - t0 < 600, f"replicas not back after 600 s: {pool.infos}"
                time.sleep(1)
            events["recovery_s"] = time.monotonic() - t0
            events["restarts"], events["replaced"] = pool.infos[0]["restarts"], pool.replaced
            print(f"\nboth replicas back {events['recovery_s']:.0f}s after the kills")

    def run_units(data, pending, cfg_, store):
        events["pending"] = list(pending)
        return run_units_on_ray(data, pending, cfg_, store, on_done=on_done,
                                on_stats=lambda s: events.setdefault("stats", []).append(s))

    try:
        result = build([source], str(root / "release"), cfg, workdir=root / "work", run_units=run_units)
    finally:
        for pool in list(vllm_replicas.ACTIVE):
            pool.stop()
        if ray.is_initialized():
            ray.shutdown()
    data = run_ingest([source], cfg, root / "work")
    specs, instructions = [], []
    store = unit_store(root / "work", cfg)
    for u in data.unit_ids():
        specs.append(pd.read_parquet(store.root / UNIT_STAGE / "specs" / f"{u}.parquet"))
    facts, instructions = collect(store, data.unit_ids())
    return result, events, pd.concat(specs), instructions, root / "release", cfg


def test_build_completes_with_nothing_lost_or_duplicated(built):
    result, events, specs, rows, out, _ = built
    assert events["killed_engine"] is not None and events["killed_actor"] is not None, events
    assert events["restarts"] >= 1 and events["replaced"] >= 1, events     # both came back
    assert len(events["done"]) > 1                  # and units finished after they were back
    # every unit ran and was recorded once; every planned spec has exactly one final row
    assert sorted(events["done"]) == sorted(events["pending"]) and len(events["done"]) == N_IMAGES
    assert len(specs) > 20 and specs["spec_id"].is_unique
    assert sorted(rows["spec_id"]) == sorted(specs["spec_id"])
    assert rows["instruction_id"].is_unique
    manifest = pd.read_parquet(out / "manifest.parquet")
    rejected = pd.read_parquet(out / "rejected.parquet")
    assert manifest["instruction_id"].is_unique and len(manifest) == int(rows["accepted"].sum()) > 0
    assert set(manifest["instruction_id"]) | set(rejected["instruction_id"]) == set(rows["instruction_id"])
    assert not set(manifest["instruction_id"]) & set(rejected["instruction_id"])


def test_rows_record_the_engines_and_the_checks_that_verified_them(built):
    _, _, _, rows, out, _ = built
    assert set(rows["backend"]) == {"vllm"} and set(rows["model"]) == {SERVED_NAME}
    assert set(rows["prompt_version"]) == {"free_v1"}
    for row in rows.itertuples():
        checks = {c["checker"]: c for c in json.loads(row.checks)}
        assert checks["mllm_choice"]["required"] and checks["program"]["required"]
        assert not checks["lexical"]["required"]          # run and recorded, not what verifies free text
        if row.accepted:
            assert all(c["verdict"] == "pass" for c in checks.values() if c["required"])
        elif not row.reject_reason.startswith("dedup: "):
            # a rejection says which option the reader picked and which was right
            assert row.rounds == 2 and "mllm_choice: picked option" in row.reject_reason
            assert checks["mllm_choice"]["verdict"] != "pass"
    manifest = pd.read_parquet(out / "manifest.parquet")
    for checks in manifest["checks"]:
        verified = {c["checker"] for c in json.loads(checks) if c["required"] and c["verdict"] == "pass"}
        assert verified >= {"program", "mllm_choice"}


def test_regeneration_carries_the_choice_failure(built):
    _, _, _, rows, _, _ = built
    # the random model picks arbitrary options: some texts fail round 1 and are rewritten
    print(f"\n{len(rows)} specs, {rows['rounds'].mean():.2f} rounds per spec, {rows['accepted'].mean():.1%} accepted "
          f"(random model: the reader's pick is arbitrary)")
    second = rows[rows["rounds"] == 2]
    assert len(second) > 0 and (rows["rounds"] <= 2).all()
    assert rows["accepted"].any() and (~rows["accepted"]).any()


def test_no_engine_outlives_the_build(built):
    _, events, _, _, _, _ = built
    assert vllm_replicas.ACTIVE == []
    assert events["pgids"] and not [p for p in events["pgids"] if _alive(p)]
