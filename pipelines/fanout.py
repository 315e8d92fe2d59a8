"""Fan the per-unit stages out over a pool of Ray actors.

`run_units_on_ray` has the signature of `engine.build.run_units_locally` and plugs into
`engine.build.build(..., run_units=run_units_on_ray)` or a Prefect task. Each actor builds one
`UnitWorker` (lexicon, generator, checkers and, in model backends, the model) once and then
processes unit after unit, writing each unit's tables to the shared work directory itself, so
only unit ids, the unit's own rows and small stats cross the object store.

The pool is driven with `ray.wait` rather than `ray.util.ActorPool` because ActorPool keeps
handing work to an actor that has died; here a dead actor is replaced and its unit retried.
A unit that still fails after `cfg.ray.max_retries` retries is reported, with every other
failure, in one `UnitsFailedError` raised after all other units have finished and been stored:
nothing is silently dropped, and a rerun only redoes the failed units. An actor whose
constructor fails (a backend that cannot load) does not use up the unit's retries; once more
than `max_retries` actors have failed to start, no further unit is dispatched and
`WorkersCannotStartError` names the constructor's error and every unit left undone.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Callable

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError

from engine.config import EngineConfig
from engine.workdir import UnitStore
from pipelines.resources import actor_options, check_stages, ensure_ray, pool_size, stage_resources

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitStats:
    unit_id: str
    images: int
    instructions: int
    accepted: int
    seconds: float
    pid: int
    node: str
    attempt: int = 0
    cpu_seconds: float = 0.0   # the actor process's CPU time for the unit (wall minus waiting)

    def to_dict(self) -> dict:
        return asdict(self)


class UnitsFailedError(RuntimeError):
    """Some units failed on every attempt; `failures` maps unit id -> last error."""

    def __init__(self, failures: dict[str, str], done: list[str], headline: str | None = None):
        self.failures = dict(sorted(failures.items()))
        self.done = done
        lines = "\n".join(f"  {u}: {err}" for u, err in self.failures.items())
        head = headline or f"{len(self.failures)} unit(s) failed after all retries"
        super().__init__(f"{head} ({len(done)} others finished and are stored):\n{lines}")


class WorkersCannotStartError(UnitsFailedError):
    """The stage's actors fail in their constructor (bad backend config, model that will not
    load): no unit can run, so the units left are reported as not run, with the cause once."""


class UnitActor:
    """One worker process: a UnitWorker built once, writing each unit it runs to the store."""

    def __init__(self, cfg_json: str, store_root: str, worker_cls=None):
        from engine.build import UNIT_STAGE

        if worker_cls is None:
            from engine.stages import UnitWorker as worker_cls
        self.stage = UNIT_STAGE
        self.worker = worker_cls(EngineConfig.model_validate_json(cfg_json))
        self.store = UnitStore(store_root)
        self.node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"

    def run(self, unit_id: str, images, instances, attempt: int = 0) -> UnitStats:
        t0, c0 = time.perf_counter(), time.process_time()
        result = self.worker.run(unit_id, images, instances)
        self.store.write(self.stage, unit_id, result.tables(), validated=getattr(result, "validated", False))  # test doubles may not say
        instr = result.instructions
        return UnitStats(unit_id, len(images), len(instr), int(instr["accepted"].sum()) if len(instr) else 0,
                         time.perf_counter() - t0, os.getpid(), self.node, attempt, time.process_time() - c0)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def describe_error(e: Exception) -> str:
    """One line saying what went wrong in a worker, with the worker's own exception when known."""
    if isinstance(e, RayTaskError) and e.cause is not None:
        cause = e.cause
        return f"{type(cause).__name__}: {cause}"
    lines = [ln.strip() for ln in _ANSI.sub("", str(e)).splitlines() if ln.strip()]
    if isinstance(e, RayActorError) and e.actor_init_failed:
        # Ray's message is its own header plus the constructor's traceback; the last line is
        # the constructor's exception ("ValueError: ...").
        return f"worker could not start: {lines[-1] if lines else type(e).__name__}"
    if isinstance(e, RayActorError):
        # header, tab-indented ids, then why the process died (exit type and detail)
        why = [ln for ln in lines[1:] if not ln.startswith(("class_name:", "actor_id:", "pid:", "name:",
                                                             "namespace:", "ip:"))]
        return f"worker process died ({type(e).__name__}: {' '.join(why) or (lines[0] if lines else '')})"
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


@contextlib.contextmanager
def ray_session(cfg: EngineConfig, stage: str = "unit"):
    """Ray for the duration of the block; shut down afterwards only if this block started it."""
    started = ensure_ray(cfg, stage)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def run_units_on_ray(data, pending: list[str], cfg: EngineConfig, store: UnitStore,
                     on_done: Callable[[str], None] | None = None, *, worker_cls=None,
                     stage: str = "unit", on_stats: Callable[[UnitStats], None] | None = None) -> list[UnitStats]:
    """Run every pending unit on an actor pool; return per-unit stats in completion order.

    `data` is an `engine.build.Ingested` (anything with `.unit(unit_id) -> (images, instances)`).
    `worker_cls(cfg)` must give an object with `.run(unit_id, images, instances) -> UnitResult`;
    the default is `engine.stages.UnitWorker`.
    """
    check_stages(cfg, stage)
    if not pending:
        return []
    from pipelines.vllm_replicas import owned_engines

    with ray_session(cfg, stage):
        # generate.backend=vllm: the build's own engines, up for the units and stopped after
        with owned_engines(cfg, store.root.parent / "vllm-logs") as run_cfg:
            return _drive_pool(data, list(pending), run_cfg, store, on_done, worker_cls, stage, on_stats)


def _drive_pool(data, pending, cfg, store, on_done, worker_cls, stage, on_stats) -> list[UnitStats]:
    res = stage_resources(cfg, stage)
    remote_cls = ray.remote(UnitActor).options(**actor_options(res), max_restarts=0, max_concurrency=1)
    args = (cfg.model_dump_json(), str(store.root.resolve()), worker_cls)

    n = min(pool_size(res), len(pending))
    actors = [remote_cls.remote(*args) for _ in range(n)]
    idle = list(actors)
    queue = deque((u, 0) for u in pending)
    inflight: dict = {}
    stats: list[UnitStats] = []
    failures: dict[str, str] = {}
    start_failures: list[str] = []   # constructor errors: the worker's fault, not the unit's
    cannot_start = False
    log.info("running %d units on %d %s actors (num_cpus=%s, num_gpus=%s)", len(pending), n, stage,
             res.num_cpus, res.num_gpus)
    try:
        while inflight or (queue and not cannot_start):
            while idle and queue and not cannot_start:
                actor = idle.pop()
                unit_id, attempt = queue.popleft()
                images, instances = data.unit(unit_id)
                inflight[actor.run.remote(unit_id, images, instances, attempt)] = (actor, unit_id, attempt)
            [ref], _ = ray.wait(list(inflight), num_returns=1)
            actor, unit_id, attempt = inflight.pop(ref)
            try:
                st = ray.get(ref)
            except RayError as e:
                error = describe_error(e)
                if isinstance(e, RayActorError):
                    # The process is gone: replace it so the pool keeps its size.
                    actors.remove(actor)
                    actor = remote_cls.remote(*args)
                    actors.append(actor)
                idle.append(actor)
                if isinstance(e, RayActorError) and e.actor_init_failed:
                    start_failures.append(error)
                    log.warning("a %s worker could not start (%d time(s)): %s", stage, len(start_failures), error)
                    queue.appendleft((unit_id, attempt))  # the unit never ran
                    cannot_start = len(start_failures) > cfg.ray.max_retries
                elif attempt < cfg.ray.max_retries:
                    log.warning("unit %s failed (attempt %d), retrying: %s", unit_id, attempt + 1, error)
                    queue.append((unit_id, attempt + 1))
                else:
                    log.error("unit %s failed after %d attempts: %s", unit_id, attempt + 1, error)
                    failures[unit_id] = error
                continue
            idle.append(actor)
            stats.append(st)
            if on_stats:
                on_stats(st)
            if on_done:
                on_done(unit_id)
    finally:
        for a in actors:
            ray.kill(a)
    done = [s.unit_id for s in stats]
    if cannot_start:
        failures.update({u: "not run: no worker could start" for u, _ in queue})
        raise WorkersCannotStartError(failures, done, headline=(
            f"the {stage} workers fail to start ({len(start_failures)} tries): "
            f"{start_failures[-1].removeprefix('worker could not start: ')}; "
            f"{len(failures)} unit(s) not done"))
    if failures:
        raise UnitsFailedError(failures, done)
    return stats
