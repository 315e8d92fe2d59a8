"""generate.backend=vllm: Ray actors that own vLLM engines, one replica per GPU.

Engine ownership: each `VllmReplica` actor reserves its GPU(s) (`generate.vllm.num_gpus`) and
starts one vLLM OpenAI-compatible server process bound to it (engine/serving/vllm_process.py):
the process inherits the actor's CUDA_VISIBLE_DEVICES, so it sees exactly the GPUs Ray gave
the actor. Not an in-process `vllm.LLM`: vLLM lives in its own environment (DESIGN.md §8; its
torch/transformers pins conflict with the project's), which a server process can run from its
own interpreter and an in-process engine cannot. The same reason rules out Ray Data LLM
(`ray.data.llm.build_processor` + `vLLMEngineProcessorConfig`) as the engine here: it imports
vLLM into the Ray worker's environment. What it gives (engines as long-lived GPU actors, batches
fed by CPU stages, continuous batching inside vLLM) this module gives with the server process.

Lifecycle, all tied to the build (`owned_engines`):
- started: N actors at once (N = generate.vllm.replicas, or the cluster's GPUs / num_gpus);
  the build waits until every one answers /health, and fails with the server's log tail if one
  cannot start;
- health-checked and restarted: a watchdog thread in each actor polls /health and restarts
  its server (same port) when the process died or stopped answering, up to max_restarts;
- a replica whose actor dies (node lost, killed) is replaced by the pool's monitor with a new
  actor on the same port, after its orphaned server's process group is killed;
- stopped with the build, also when the build fails (`finally`).

The unit actors stay CPU actors (describe, plan, checks, dedup, release run there, no GPU
held); they send each unit's requests concurrently (generate.concurrency) to the replicas'
endpoints (engine.generate.replicas.ReplicaClient: image affinity for the prefix cache,
fail-over while a replica restarts), so the GPUs are fed by all unit actors at once.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from pathlib import Path

import ray
from ray.exceptions import GetTimeoutError, RayError

from engine.config import EngineConfig, VllmConfig
from engine.serving.vllm_process import VllmProcess, VllmStartError, kill_group, stop_groups

log = logging.getLogger(__name__)
UNHEALTHY_CHECKS = 3          # consecutive failed /health checks of a live process before a restart
ACTIVE: list["VllmReplicas"] = []   # the pools this driver owns now (tests and diagnostics read it)


class VllmReplica:
    """A Ray actor owning one vLLM server process (see the module docstring)."""

    def __init__(self, vllm_json: str, index: int, log_dir: str, seed: int, port: int | None = None):
        self.cfg = VllmConfig.model_validate_json(vllm_json)
        self.index = index
        self.proc = VllmProcess(self.cfg, Path(log_dir) / f"replica-{index}.log", port=port, seed=seed)
        self.restarts = 0
        self.given_up: str | None = None
        self.proc.start()
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, name=f"vllm-watchdog-{index}", daemon=True)
        self._watch.start()

    def _watchdog(self) -> None:
        misses = 0
        while not self._stop.wait(self.cfg.health_interval_s):
            if self.proc.healthy(timeout=max(2.0, self.cfg.health_interval_s)):
                misses = 0
                continue
            misses += 1
            if self.proc.alive() and misses < UNHEALTHY_CHECKS:
                continue                  # a busy engine may miss one check; a dead one may not
            if self._stop.is_set():
                return
            if self.restarts >= self.cfg.max_restarts:
                self.given_up = f"replica {self.index} failed {self.restarts + 1} times; not restarted again"
                log.error(self.given_up)
                self.proc.stop()
                return
            self.restarts += 1
            log.warning("vLLM replica %d on port %d is %s: restarting (%d/%d)", self.index, self.proc.port,
                        "unresponsive" if self.proc.alive() else "dead", self.restarts, self.cfg.max_restarts)
            self.proc.stop()
            try:
                self.proc.start()
                misses = 0
            except VllmStartError as e:
                log.error("vLLM replica %d did not restart: %s", self.index, str(e)[:500])

    def info(self) -> dict:
        return {"index": self.index, "base_url": self.proc.base_url, "port": self.proc.port, "pgid": self.proc.pgid,
                "host": socket.gethostname(), "actor_pid": os.getpid(), "restarts": self.restarts,
                "healthy": self.proc.healthy(timeout=2), "given_up": self.given_up, "startup_s": self.proc.startup_s,
                "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", "")}

    def stop(self) -> None:
        self._stop.set()
        self.proc.stop()


def replica_count(cfg: VllmConfig, total: dict | None = None) -> int:
    """generate.vllm.replicas, or one per `num_gpus` GPUs of the cluster."""
    if cfg.replicas:
        return cfg.replicas
    total = ray.cluster_resources() if total is None else total
    gpus = total.get("GPU", 0)
    if cfg.num_gpus <= 0 or gpus < cfg.num_gpus:
        raise RuntimeError(f"generate.vllm.replicas=0 means one replica per {cfg.num_gpus} GPU(s), but the Ray "
                           f"cluster has GPU={gpus}; set generate.vllm.replicas (and num_gpus=0 for CPU replicas)")
    return int(gpus // cfg.num_gpus)


class VllmReplicas:
    """The build's engines: start, monitor (replace dead actors), stop."""

    def __init__(self, cfg: EngineConfig, log_dir: str | Path):
        self.cfg, self.vcfg = cfg, cfg.generate.vllm
        self.log_dir = Path(log_dir)
        self.actors: list = []
        self.infos: list[dict] = []
        self.replaced = 0                  # actors replaced after dying
        self.starting: list = []           # replacements still starting
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self._remote = ray.remote(VllmReplica).options(num_cpus=self.vcfg.num_cpus, num_gpus=self.vcfg.num_gpus,
                                                       max_restarts=0, max_concurrency=4)

    @property
    def endpoints(self) -> list[str]:
        return [i["base_url"] for i in self.infos]

    def _new(self, index: int, port: int | None = None):
        return self._remote.remote(self.vcfg.model_dump_json(), index, str(self.log_dir), self.cfg.generate.seed, port)

    def start(self) -> "VllmReplicas":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        n = replica_count(self.vcfg)
        log.info("starting %d vLLM replica(s) (num_gpus=%s, num_cpus=%s each), model %s", n, self.vcfg.num_gpus,
                 self.vcfg.num_cpus, self.vcfg.model)
        t0 = time.monotonic()
        self.actors = [self._new(i) for i in range(n)]
        ACTIVE.append(self)
        try:
            self.infos = ray.get([a.info.remote() for a in self.actors], timeout=self.vcfg.startup_timeout_s + 60)
        except (RayError, GetTimeoutError) as e:
            self.stop()
            raise RuntimeError(f"vLLM replicas did not start (logs in {self.log_dir}): {_cause(e)}") from None
        log.info("%d vLLM replica(s) up in %.0fs: %s", n, time.monotonic() - t0, ", ".join(self.endpoints))
        self._monitor = threading.Thread(target=self._watch, name="vllm-replicas", daemon=True)
        self._monitor.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.vcfg.health_interval_s):
            for k, actor in enumerate(list(self.actors)):
                try:
                    self.infos[k] = ray.get(actor.info.remote(), timeout=60)
                except GetTimeoutError:
                    continue                          # busy (restarting its server): the watchdog has it
                except RayError as e:
                    if self._stop.is_set():
                        return
                    self._replace(k, e)

    def _replace(self, k: int, why: Exception) -> None:
        old = self.infos[k]
        log.warning("vLLM replica %d's actor died (%s): replacing it on port %d", k, _cause(why), old["port"])
        if old.get("pgid") and old.get("host") == socket.gethostname():
            kill_group(old["pgid"], timeout=10)       # its server outlived it: free the port and memory
        actor = self._new(k, old["port"])
        self.starting.append(actor)
        try:
            info = ray.get(actor.info.remote(), timeout=self.vcfg.startup_timeout_s + 60)
        except (RayError, GetTimeoutError) as e:
            log.error("replacement for vLLM replica %d did not start: %s", k, _cause(e))
            with contextlib.suppress(Exception):
                ray.kill(actor)
            return                                     # the next pass tries again
        finally:
            self.starting.remove(actor)
        with self._lock:
            self.actors[k], self.infos[k] = actor, info
            self.replaced += 1

    def stop(self) -> None:
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=120)
        stops = [a.stop.remote() for a in self.actors]
        with contextlib.suppress(RayError, GetTimeoutError):
            ray.get(stops, timeout=60)
        for a in self.actors + self.starting:
            with contextlib.suppress(Exception):
                ray.kill(a)
        # servers whose actor died before stop() or was killed while starting one: every group
        # a replica on this machine started is recorded in the log folder
        left = stop_groups(self.log_dir)
        if left:
            log.warning("stopped %d vLLM process group(s) that outlived their replica: %s", len(left), left)
        if self in ACTIVE:
            ACTIVE.remove(self)


def _cause(e: Exception) -> str:
    from pipelines.fanout import describe_error
    return describe_error(e) if isinstance(e, Exception) else str(e)


@contextlib.contextmanager
def owned_engines(cfg: EngineConfig, log_dir: str | Path):
    """The config the unit workers need: with generate.backend=vllm, replicas started for the
    block and their endpoints in generate.endpoints; otherwise, or when generate.endpoints is
    set already (engines someone else runs, e.g. a bench that keeps them across runs), `cfg`."""
    if cfg.generate.backend != "vllm" or cfg.generate.endpoints:
        yield cfg
        return
    pool = VllmReplicas(cfg, log_dir).start()
    try:
        yield cfg.model_copy(update={"generate": cfg.generate.model_copy(update={"endpoints": pool.endpoints})})
    finally:
        pool.stop()


def extra_cpus(cfg: EngineConfig) -> float:
    """CPUs the replicas reserve, for sizing a local Ray instance."""
    if cfg.generate.backend != "vllm":
        return 0
    v = cfg.generate.vllm
    return v.num_cpus * (v.replicas or 1)
