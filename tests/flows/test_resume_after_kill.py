"""A build killed mid-way (SIGKILL of the flow process) and run again publishes the same release
as an uninterrupted build, reusing the units that had finished."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from engine.build import build
from engine.config import load_config
from engine.sources.ingest import resolve_source
from engine.release.publish import open_release
from tests.coco_fixtures import COCO_SAMPLE

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OVERRIDES = ["ingest.unit_size=4"]


def cli_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAY_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(REPO), COLUMNS="120",
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def build_cmd(output: Path, workdir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "flows.build_dataset", "--source", str(COCO_SAMPLE),
           "--output", str(output), "--workdir", str(workdir), "--orchestrator", "prefect"]
    for o in OVERRIDES:
        cmd += ["--set", o]
    return cmd


def markers(workdir: Path) -> list[Path]:
    return sorted(workdir.glob("cfg-*/units/*.done"))


def session_members(sid: int) -> list[int]:
    """Live processes of a session (Ray workers get process groups of their own, not sessions)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def kill_session(sid: int, timeout: float = 30) -> None:
    """Kill what the killed build left running (its Ray processes, the ephemeral Prefect server),
    so that no orphan finishes a unit behind the test's back."""
    deadline = time.monotonic() + timeout
    while members := session_members(sid):
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert time.monotonic() < deadline, f"processes {members} survive SIGKILL"
        time.sleep(0.1)


def release_files(uri: str) -> dict:
    r = open_release(uri)
    return {"release_id": r.release_id, "code_version": r.info["code_version"], "manifest": r.manifest, "index": r.index,
            "train": r.sam3i("train"), "val": r.sam3i("val"), "files": r.info["files"]}


def test_killed_build_resumes_to_the_same_release(tmp_path):
    out, wd = tmp_path / "resumed", tmp_path / "work"
    log = open(tmp_path / "killed.log", "wb")
    proc = subprocess.Popen(build_cmd(out, wd), cwd=tmp_path, env=cli_env(tmp_path), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not markers(wd):
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no unit finished in time"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        kill_session(proc.pid)
        log.close()
    done_at_kill = {p.stem for p in markers(wd)}
    n_images = len(json.loads((COCO_SAMPLE / "instances.json").read_text())["images"])
    units_total = -(-n_images // 4)
    assert 1 <= len(done_at_kill) < units_total, "the build should have been killed mid-way"
    assert not (out / "_RELEASE.json").exists()

    rerun = subprocess.run(build_cmd(out, wd), cwd=tmp_path, env=cli_env(tmp_path), capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    processed = units_total - len(done_at_kill)
    assert f"{processed}/{units_total} units processed" in rerun.stdout + rerun.stderr
    assert "accepted" in rerun.stdout  # the summary table
    progress_line = next(line for line in rerun.stdout.splitlines() if line.strip().startswith("units"))
    assert f"{units_total}/{units_total}" in progress_line and f"{len(done_at_kill)} reused" in progress_line

    cfg = load_config(None, OVERRIDES)
    straight = build([resolve_source(str(COCO_SAMPLE))], str(tmp_path / "straight"), cfg, workdir=tmp_path / "w2")
    assert straight.units_total == units_total and len(straight.units_run) == units_total

    got, want = release_files(str(out)), release_files(str(tmp_path / "straight"))
    assert got["code_version"] == want["code_version"], \
        "engine/, schemas/ or pipelines/ changed while this test ran; the two builds ran different code"
    assert got["release_id"] == want["release_id"]
    pd.testing.assert_frame_equal(got["manifest"], want["manifest"])
    assert got["manifest"]["instruction_id"].is_unique and len(got["manifest"]) > 0
    for key in ("index", "train", "val", "files"):
        assert json.dumps(got[key], sort_keys=True) == json.dumps(want[key], sort_keys=True), key
