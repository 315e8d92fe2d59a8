"""Starting or joining Ray, and what each stage's actors ask of it.

`cfg.ray.stages[<stage>]` says how many CPUs/GPUs one actor of that stage takes and how many
actors to run, so a model-backed stage (vLLM generator, SAM3-I checker) becomes a GPU actor
pool by config alone. Locally (`cfg.ray.address` is None and RAY_ADDRESS unset) Ray starts
its own small instance sized to the stage; with an address it joins that cluster and ships
the project as the job's working_dir.

Secrets never go into the runtime environment: Ray writes `runtime_env` (env_vars included) in
plaintext to its logs (runtime_env_agent.log, mode 0644). Ray's guidance for secrets is to keep
them out of runtime_env and give them to the processes another way:
- local Ray (started here): the raylet and its workers are this process's children and inherit
  its environment, credentials included, without anything being written down;
- a cluster: each node's own credentials (instance role, its environment, ~/.aws/credentials
  or AWS_SHARED_CREDENTIALS_FILE on a shared volume); only non-secret settings (endpoint,
  region, retries, the Prefect API URL) are forwarded.
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
# Non-secret settings Ray workers need to reach the same services as the driver. Only these
# go into runtime_env (which Ray logs); secrets reach workers as the module doc says.
FORWARDED_ENV = ("PREFECT_API_URL", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_MAX_ATTEMPTS", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")
# Never forwarded, whatever FORWARDED_ENV says: a guard against it growing a secret.
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PREFECT_API_KEY",
              "OPENAI_API_KEY", "HF_TOKEN")

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


def _secret_name(name: str) -> bool:
    return name in SECRET_ENV or any(w in name.upper() for w in ("SECRET", "TOKEN", "PASSWORD", "API_KEY"))


def forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k) and not _secret_name(k)}


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
        held = sorted(k for k in SECRET_ENV if os.environ.get(k))
        if held:  # names only: never a value
            log.warning("joining Ray at %s: %s stay on this machine (secrets are never put in Ray's runtime "
                        "environment); cluster nodes need their own credentials", address, ", ".join(held))
        ray.init(address=address, runtime_env=runtime_env(on_cluster=True), log_to_driver=True)
    else:
        # local: workers inherit this process's environment, credentials included
        from pipelines.vllm_replicas import extra_cpus   # the engines' actors need their CPUs too

        ray.init(address="local", num_cpus=local_num_cpus(res) + int(round(extra_cpus(cfg) + 0.49)),
                 include_dashboard=False,
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
