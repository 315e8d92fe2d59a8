"""Issue 9, problems 2 and 8, on real builds (Prefect's temporary server, a local Ray):
no planted secret reaches any log or file the build writes, Ray workers still get the
credentials, and a SIGKILLed build leaves no server or Ray process behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.coco_fixtures import make_case
from tests.flows.test_resume_after_kill import cli_env, kill_session, session_members

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAPLANTEDK3Y9Q7XZ",
    "AWS_SECRET_ACCESS_KEY": "planted/SecretKey+9f3Qx7Lw2VbN8mT4rY6uZ1aC5dE0gH",
    "AWS_SESSION_TOKEN": "plantedSessionToken4Jx8Vq2Nw7Rt3Ym",
    "OPENAI_API_KEY": "sk-planted-0123456789abcdefABCDEF",
}


def _env(tmp_path: Path) -> dict:
    # the temporary server's 20 s start-up limit is short on a loaded 2-core machine
    return {**cli_env(tmp_path), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}


def _build_cmd(source: str, output: Path, workdir: Path, *sets: str) -> list[str]:
    # a Prefect flow run (temporary server) and a local Ray even for one unit: what is tested
    # here is that those services leak nothing and are stopped
    cmd = [sys.executable, "-m", "flows.build_dataset", "--source", source, "--output", str(output),
           "--workdir", str(workdir), "--orchestrator", "prefect", "--set", "ray.min_units=1"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def _files(*roots: Path):
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for n in names:
                p = Path(dirpath) / n
                if p.is_file() and not p.is_symlink():
                    yield p


def test_planted_secrets_reach_no_log_or_file_and_workers_still_get_them(tmp_path):
    case = make_case(tmp_path, n_images=2)
    spec = case.write()
    # Ray's own folder kept short (unix socket paths) and private to this test, so that every
    # session log of this run is searched
    ray_tmp = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))
    env = {**_env(tmp_path), **SECRETS, "RAY_TMPDIR": str(ray_tmp)}
    out, wd = tmp_path / "release", tmp_path / "work"
    try:
        proc = subprocess.run(_build_cmd(spec.annotations_uri, out, wd), cwd=tmp_path, env=env,
                              capture_output=True, timeout=600)
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        assert (out / "_RELEASE.json").exists()
        # the same Ray start the build uses, asked whether a worker sees the credentials (it
        # answers yes/no, never the value)
        probe = ("import os, ray\n"
                 "from engine.config import EngineConfig\n"
                 "from pipelines.resources import ensure_ray\n"
                 "ensure_ray(EngineConfig())\n"
                 "@ray.remote\n"
                 "def sees():\n"
                 "    return {k: os.environ.get(k) == v for k, v in %r.items()}\n"
                 "print(ray.get(sees.remote()))\n"
                 "ray.shutdown()\n") % SECRETS
        seen = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env={**env, "PYTHONPATH": str(REPO)},
                              capture_output=True, timeout=300)
        assert seen.returncode == 0, seen.stderr.decode()[-3000:]
        assert seen.stdout.decode().strip() == str({k: True for k in SECRETS})

        sessions = list((ray_tmp / "ray").glob("session_2*"))
        assert len(sessions) == 2, sessions  # the build's and the probe's
        logs = [p for p in _files(*sessions) if p.suffix in (".log", ".out", ".err", ".json", ".txt")]
        assert any(p.name.startswith("runtime_env") for p in logs), "Ray wrote no runtime_env log to search"
        searched = 0
        for p in _files(tmp_path, ray_tmp):
            data = p.read_bytes()
            searched += 1
            for name, value in SECRETS.items():
                assert value.encode() not in data, f"{name} in {p}"
        assert searched > 50  # release, work dir, Prefect home and both Ray sessions
        for stream in (proc.stdout, proc.stderr, seen.stdout, seen.stderr):
            for name, value in SECRETS.items():
                assert value.encode() not in stream, f"{name} printed"
    finally:
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)


def test_killed_build_leaves_no_prefect_server_or_ray_behind(tmp_path):
    case = make_case(tmp_path, n_images=6)
    spec = case.write()
    wd = tmp_path / "work"
    log = open(tmp_path / "build.log", "wb")
    proc = subprocess.Popen(_build_cmd(spec.annotations_uri, tmp_path / "release", wd, "ingest.unit_size=1"),
                            cwd=tmp_path, env=_env(tmp_path), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not list(wd.glob("cfg-*/units/*.done")):  # Prefect server and Ray are up by now
            assert proc.poll() is None, (tmp_path / "build.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no unit finished in time"
            time.sleep(0.05)
        started = set(session_members(proc.pid)) - {proc.pid}
        assert len(started) >= 3, started  # at least the server and Ray's own processes
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        deadline = time.monotonic() + 60
        while left := session_members(proc.pid):
            assert time.monotonic() < deadline, f"still running after the build was killed: {left}"
            time.sleep(0.2)
    finally:
        kill_session(proc.pid)
        log.close()
