"""Starting or joining Ray, and what each stage's actors ask of it.

`cfg.ray.stages[<stage>]` says how many CPUs/GPUs one actor of that stage takes and how many
actors to run, so a model-backed stage (vLLM generator, SAM3-I checker) becomes a GPU actor
pool by config alone. Locally (`cfg.ray.address` is None and RAY_ADDRESS unset) Ray starts
its own small instance sized to the stage; with an address it joins that cluster and ships
the project as the job's working_dir.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import ray

from engine.config import EngineConfig, StageResources

REPO_ROOT = Path(__file__).resolve().parent.parent
# Never shipped to a cluster: environments, caches, work dirs, built releases.
WORKING_DIR_EXCLUDES = [".git", ".venv", "**/__pycache__", ".pytest_cache", ".hypothesis",
                        ".sam3i-work", "out", "*.egg-info", "*.tar", "*.parquet"]
# Environment variables Ray workers need to report to the same services as the driver.
FORWARDED_ENV = ("PREFECT_API_URL", "PREFECT_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_MAX_ATTEMPTS")

log = logging.getLogger(__name__)


# The Ray stages the fan-out runs. Today the whole per-unit chain (describe -> plan -> generate
# -> check -> dedup) is one stage, "unit": its actors hold the generator and checkers, so a
# model-backed backend gets a GPU with `ray.stages.unit.num_gpus`.
STAGES = ("unit",)


def stage_resources(cfg: EngineConfig, stage: str = "unit") -> StageResources:
    return cfg.ray.stages.get(stage, StageResources())


def check_stages(cfg: EngineConfig, *running: str) -> None:
    """Refuse resources configured for a stage that does not exist, rather than ignore them
    (`ray.stages.generate.num_gpus=1` would otherwise silently leave generation on CPUs)."""
    unknown = sorted(set(cfg.ray.stages) - set(STAGES) - set(running))
    if unknown:
        raise ValueError(f"ray.stages.{unknown[0]}: no such Ray stage; the fan-out runs "
                         f"{', '.join(repr(s) for s in dict.fromkeys(STAGES + running))} (set resources "
                         f"with ray.stages.unit.num_cpus / num_gpus / concurrency)")


def actor_options(res: StageResources) -> dict:
    """`.options(...)` for one actor of a stage."""
    return {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus}


def forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}


def runtime_env(on_cluster: bool) -> dict:
    """Locally the workers see this checkout through PYTHONPATH; a cluster gets it uploaded."""
    env = forwarded_env()
    if on_cluster:
        return {"working_dir": str(REPO_ROOT), "excludes": WORKING_DIR_EXCLUDES, "env_vars": env}
    paths = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"env_vars": {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


def local_num_cpus(res: StageResources) -> int:
    """Enough CPUs for the stage's actors and nothing more: the machine may be shared."""
    return max(1, int(round(res.num_cpus * res.concurrency + 0.49)))


def ensure_ray(cfg: EngineConfig, stage: str = "unit") -> bool:
    """Start or join Ray unless this process already did. Returns True if this call started it.

    PREFECT_API_URL must be set before this runs, so Ray workers report to the same server.
    """
    if ray.is_initialized():
        return False
    res = stage_resources(cfg, stage)
    address = cfg.ray.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env=runtime_env(on_cluster=True), log_to_driver=True)
    else:
        ray.init(address="local", num_cpus=local_num_cpus(res), include_dashboard=False,
                 runtime_env=runtime_env(on_cluster=False), log_to_driver=True,
                 object_store_memory=256 * 1024 * 1024)
    return True


def pool_size(res: StageResources, total: dict | None = None) -> int:
    """Actors to start: the configured concurrency, capped by what the cluster (`total`, default
    the connected one) can hold at once.

    Raises when not even one actor fits (e.g. a GPU stage on a CPU-only cluster), instead of
    leaving the actors pending forever.
    """
    total = ray.cluster_resources() if total is None else total
    fits = []
    if res.num_cpus > 0:
        fits.append(int(total.get("CPU", 0) // res.num_cpus))
    if res.num_gpus > 0:
        fits.append(int(total.get("GPU", 0) // res.num_gpus))
    n = min([res.concurrency, *fits])
    if n < 1:
        raise RuntimeError(f"one actor needs num_cpus={res.num_cpus}, num_gpus={res.num_gpus}, but the Ray "
                           f"cluster has CPU={total.get('CPU', 0)}, GPU={total.get('GPU', 0)}; "
                           "lower cfg.ray.stages or join a cluster with GPUs (cfg.ray.address)")
    return n
