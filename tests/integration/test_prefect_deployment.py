"""The deployments on a real Prefect server: `python -m flows.serve` registers them, the
README's `prefect deployment run build-dataset/default --param ...` builds a release, the
build starts train-curriculum through its deployment, and nightly-refresh carries its cron."""
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
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine.release.publish import open_release
from tests.coco_fixtures import COCO_SAMPLE

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
# the tiny SAM3-I, a few images, one epoch per stage: the real trainer, sized for a CPU test
TRAIN_SMALL = ["data.max_samples=3", "train.stage1.epochs=1", "train.stage2.epochs=1", "train.stage3.epochs=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A subprocess in its own process group, logging to a file, stopped with its children."""

    def __init__(self, name: str, args: list[str], cwd: Path, env: dict, logs: Path):
        self.log_path = logs / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.p = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def tail(self, n: int = 4000) -> str:
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.p.pid, signal.SIGKILL)  # anything the group left behind
        except ProcessLookupError:
            pass


def wait_for(what: str, check, timeout: float, proc: Proc | None = None, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if proc is not None and not proc.alive():
            raise AssertionError(f"{what}: process exited early:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f":\n{proc.tail()}" if proc else ""))
        time.sleep(every)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prefect-stack")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAY_"))}
    env.update(PREFECT_HOME=str(tmp / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_UI_ENABLED="false", PYTHONPATH=str(REPO))
    server = Proc("server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
                  tmp, env, tmp)
    procs = [server]
    try:
        wait_for("Prefect server health", lambda: healthy(api), 120, server)
        env = {**env, "PREFECT_API_URL": api}
        served = tmp / "served"  # the serve process's working directory: work dirs land here
        served.mkdir()
        nightly_out = tmp / "nightly"
        procs.append(Proc("serve", [sys.executable, "-m", "flows.serve", "--nightly-source", str(COCO_SAMPLE),
                                    "--nightly-output", str(nightly_out)], served, env, tmp))
        yield {"env": env, "api": api, "tmp": tmp, "served": served, "serve": procs[-1],
               "nightly_out": str(nightly_out)}
    finally:
        for p in reversed(procs):
            p.stop()


def prefect_cli(stack, *args: str, timeout: float = 60) -> str:
    r = subprocess.run([PREFECT, *args], cwd=stack["tmp"], env=stack["env"], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"prefect {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def client(stack):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    class _Ctx:
        def __enter__(self):
            self.s = temporary_settings({PREFECT_API_URL: stack["api"], PREFECT_HOME: str(stack["tmp"] / "home")})
            self.s.__enter__()
            self.c = get_client(sync_client=True)
            return self.c.__enter__()

        def __exit__(self, *exc):
            self.c.__exit__(*exc)
            self.s.__exit__(*exc)

    return _Ctx()


def deployment(stack, name: str):
    from prefect.exceptions import ObjectNotFound

    with client(stack) as c:
        try:
            return c.read_deployment_by_name(name)
        except ObjectNotFound:
            return None


def final_run(stack, run_id: str, timeout: float):
    def done():
        with client(stack) as c:
            run = c.read_flow_run(run_id)
        return run if run.state and run.state.is_final() else None

    return wait_for(f"flow run {run_id}", done, timeout, stack["serve"], every=2)


def test_deployment_run_builds_release_and_triggers_training(stack):
    for name in ("build-dataset/default", "nightly-refresh/default", "train-curriculum/default"):
        wait_for(f"deployment {name}", lambda: deployment(stack, name), 90, stack["serve"])

    nightly = deployment(stack, "nightly-refresh/default")
    assert [(s.schedule.cron, s.active) for s in nightly.schedules] == [("0 3 * * *", True)]
    assert nightly.parameters["output"] == stack["nightly_out"]

    output = stack["tmp"] / "release"
    out = prefect_cli(stack, "deployment", "run", "build-dataset/default",
                      "--param", f"source={COCO_SAMPLE}", "--param", f"output={output}",
                      "--param", 'overrides=["ingest.unit_size=8"]', "--param", "trigger_training=true",
                      "--param", f"training_overrides={json.dumps(TRAIN_SMALL)}")
    run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)
    run = final_run(stack, run_id, 240)
    assert run.state.is_completed(), f"{run.state}\n{stack['serve'].tail()}"

    release = open_release(str(output))
    assert len(release.manifest) > 0 and release.verify_checksums() == []

    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    train = deployment(stack, "train-curriculum/default")
    with client(stack) as c:
        runs = c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[train.id])))
    assert len(runs) == 1 and runs[0].parent_task_run_id is not None  # linked to the build
    assert final_run(stack, str(runs[0].id), 400).state.is_completed()
    plans = list(stack["served"].glob(f".sam3i-work/*/training/{release.release_id}/training_plan.json"))
    assert len(plans) == 1
    # the real trainer ran all three stages (model.train) and evaluated on the val split
    plan = json.loads(plans[0].read_text())
    assert "called and returned" in plan["status"], plan["status"]
    for path in plan["trainer_result"]["checkpoints"].values():
        assert Path(path).stat().st_size > 10_000
    assert plan["trainer_result"]["evaluation"]["table"]["all"]["samples"] > 0

    with client(stack) as c:
        artifacts = {a.key: a.data for a in c.read_latest_artifacts()}
    assert {"build-dataset", "train-curriculum"} <= set(artifacts)
    built = artifacts["build-dataset"]  # release URI, counts per tier, rejection reasons
    assert str(output) in built and "rejection reason" in built
    assert all(f"| {t} | {n} |" in built for t, n in release.counts["by_tier"].items())
    assert release.release_id in artifacts["train-curriculum"]
    assert "stage3.pt" in artifacts["train-curriculum"] and "## Evaluation" in artifacts["train-curriculum"]
    assert "train-curriculum-eval" in artifacts

    # Last, as it re-registers the same three deployments: infra/prefect.yaml, to a work pool.
    prefect_cli(stack, "work-pool", "create", "sam3i", "--type", "process")
    env = {**stack["env"], "PWD": str(REPO), "SAM3I_NIGHTLY_SOURCE": "s3://bucket/coco",
           "SAM3I_NIGHTLY_OUTPUT": "s3://bucket/nightly"}
    r = subprocess.run([PREFECT, "--no-prompt", "deploy", "--prefect-file", "infra/prefect.yaml", "--all"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("build-dataset/default", "nightly-refresh/default", "train-curriculum/default"):
        d = deployment(stack, name)
        assert d.work_pool_name == "sam3i", name
        assert d.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    nightly = deployment(stack, "nightly-refresh/default")
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in nightly.schedules] == [("0 3 * * *", "UTC", True)]
    assert nightly.parameters == {"source": "s3://bucket/coco", "output": "s3://bucket/nightly"}
