"""The steps build-dataset and nightly-refresh share, as coarse Prefect tasks.

One task per stage (ingest, fan-out, publish): Prefect records and retries stages, Ray does
the per-unit work inside the fan-out task (DESIGN.md section 5). Tables pass between tasks in
memory, so no task caches or persists results (cache_policy=NO_CACHE): resume comes from the
engine's work directory, where every finished unit has a completion marker.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from engine import storage
from engine.build import (UNIT_STAGE, Ingested, default_workdir, engine_config, publish, release_fingerprint,
                          run_ingest, run_units_locally, sources_of)
from engine.config import EngineConfig
from engine.sources.ingest import SourceSpec
from engine.report import report_markdown
from engine.version import code_version
from engine.workdir import UnitStore
from flows import progress

LATEST = "LATEST.json"
TRAIN_DEPLOYMENT = "train-curriculum/default"


# ------------------------------------------------------------------ in-process path

# Set by `inline_run()`: the flow's body runs as a plain function in this process, its tasks
# as plain calls. A small job then pays for no temporary Prefect server (DESIGN.md section 8:
# its start-up is most of a small build); with a Prefect API configured the CLI runs the flow.
_INLINE = contextvars.ContextVar("sam3i_inline_run", default=False)


@contextlib.contextmanager
def inline_run():
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


def inline() -> bool:
    return _INLINE.get()


def step(task_obj, *args, **kwargs):
    """Run a coarse task: a Prefect task run, or on the in-process path a plain call."""
    return task_obj.fn(*args, **kwargs) if inline() else task_obj(*args, **kwargs)


def run_logger():
    """The flow run's logger, or a plain one on the in-process path."""
    return logging.getLogger("flows") if inline() else get_run_logger()


def use_ray(cfg: EngineConfig, pending: list[str]) -> bool:
    """Fan units out on Ray unless the job is too small for it to pay: fewer pending units than
    `ray.min_units` (one unit runs on one actor anyway), with no cluster address and no GPU
    stage configured (those always go to Ray)."""
    if cfg.ray.address or os.environ.get("RAY_ADDRESS"):
        return True
    if any(r.num_gpus > 0 for r in cfg.ray.stages.values()):
        return True
    return len(pending) >= cfg.ray.min_units


# ------------------------------------------------------------------ parameters


def flow_config(config: str | None, overrides: list[str] | str | None, seed: int | None) -> EngineConfig:
    """The engine config of a run, refused before any work if it sets resources for a Ray
    stage that does not exist."""
    from pipelines.resources import check_stages

    cfg = engine_config(config, overrides, seed)
    check_stages(cfg)
    return cfg


def absolute(uri: str) -> str:
    return uri if storage.is_s3(uri) else os.path.abspath(os.path.expanduser(uri))


def workdir_for(workdir: str | None, output: str) -> Path:
    """The work directory persists between runs (that is what makes reruns incremental)."""
    return Path(workdir).resolve() if workdir else default_workdir(output).resolve()


def training_output(workdir: Path, release_id: str) -> str:
    """Where a triggered training run writes its plan and checkpoints (releases are immutable)."""
    return str(workdir / "training" / release_id)


@contextlib.contextmanager
def prefect_api_in_env():
    """PREFECT_API_URL in the environment while Ray starts, so its workers (which inherit it, or
    get it through the runtime env) report to this run's API; restored afterwards so that an
    ephemeral server's address does not outlive it."""
    from prefect.settings import PREFECT_API_URL

    url, before = PREFECT_API_URL.value(), os.environ.get("PREFECT_API_URL")
    if url and not before:
        os.environ["PREFECT_API_URL"] = url
    try:
        yield
    finally:
        if url and not before:
            os.environ.pop("PREFECT_API_URL", None)


# ------------------------------------------------------------------ tasks


@dataclass
class FanoutSummary:
    units_total: int
    reused: list[str]
    run: list[str]
    stats: list[dict] = field(default_factory=list)

    @property
    def workers(self) -> set[tuple[str, int]]:
        return {(s["node"], s["pid"]) for s in self.stats}


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(sources: list[SourceSpec], cfg: EngineConfig, workdir: Path) -> Ingested:
    p = progress.current()
    p.start("ingest", note=", ".join(s.source_id for s in sources))
    data = run_ingest(sources, cfg, workdir)
    p.finish("ingest", f"{data.n_images} images, {data.n_instances} instances, "
                       f"{len(data.unit_ids())} units, {data.n_quarantined} quarantined")
    return data


@dataclass
class RunStart:
    """What both build flows do first: config, absolute output, sources, work dir, ingest."""
    cfg: EngineConfig
    output: str
    sources: list[SourceSpec]
    workdir: Path
    data: Ingested


def start_run(source, output: str, images, config, overrides, seed, workdir) -> RunStart:
    cfg = flow_config(config, overrides, seed)
    output = absolute(output)
    sources = sources_of(source, images)
    wd = workdir_for(workdir, output)
    return RunStart(cfg, output, sources, wd, step(ingest_task, sources, cfg, wd))


@task(name="fan-out units", cache_policy=NO_CACHE)
def fanout_task(data: Ingested, cfg: EngineConfig, store: UnitStore) -> FanoutSummary:
    from pipelines.fanout import run_units_on_ray

    units = data.unit_ids()
    pending = [u for u in units if not store.is_done(UNIT_STAGE, u)]
    reused = sorted(set(units) - set(pending))
    p = progress.current()
    p.start("units", total=len(units), done=len(reused), note=f"{len(reused)} reused")
    if use_ray(cfg, pending):
        with prefect_api_in_env():
            stats = run_units_on_ray(data, pending, cfg, store, on_done=lambda u: p.advance("units"))
        where = f"on {len({(s.node, s.pid) for s in stats})} Ray workers"
    else:
        run_units_locally(data, pending, cfg, store, on_done=lambda u: p.advance("units"))
        stats, where = [], "in this process (fewer than ray.min_units)"
    p.finish("units", f"{len(pending)} run {where}, {len(reused)} reused")
    return FanoutSummary(len(units), reused, pending, [s.to_dict() for s in stats])


@task(name="publish release", cache_policy=NO_CACHE)
def publish_task(output: str, data: Ingested, store: UnitStore, cfg: EngineConfig,
                 sources: list[SourceSpec], previous: dict | None = None) -> tuple[dict, object]:
    """`previous`: the LATEST.json entry of the release before (its unchanged shards carry over)."""
    p = progress.current()
    p.start("release", note=output)
    rep, info = publish(output, data, store, cfg, sources, previous=previous["uri"] if previous else None)
    p.finish("release", f"{info.release_id}" + (" (already published)" if info.reused else ""))
    return rep, info


# ------------------------------------------------------------------ releases at an output root


def planned_release_id(data: Ingested, cfg: EngineConfig) -> str:
    from engine.release.publish import release_id_for

    return release_id_for(release_fingerprint(data, cfg), cfg.release, code_version())


def refuse_other_release(output: str, release_id: str) -> None:
    """Fail before any unit runs when `output` already holds another release: releases are
    immutable, and publishing there would otherwise fail only after all the work."""
    from engine.release.publish import NotAReleaseError, ReleaseExistsError, open_release

    try:
        existing = open_release(output)
    except NotAReleaseError:
        return  # nothing published there (publishing checks the rest)
    if existing.release_id != release_id:
        raise ReleaseExistsError(f"{output} already holds release {existing.release_id}; releases are immutable, "
                                 f"so release {release_id} must go to a new path (nothing was processed)")


def read_latest(output_root: str) -> dict | None:
    raw = storage.read_or_none(storage.join(output_root, LATEST))
    return json.loads(raw) if raw is not None else None


def write_latest(output_root: str, info, fingerprint: str) -> None:
    payload = {"release_id": info.release_id, "uri": info.uri, "inputs_fingerprint": fingerprint}
    storage.write_bytes(storage.join(output_root, LATEST), json.dumps(payload, indent=1, sort_keys=True).encode())


# ------------------------------------------------------------------ reporting


@dataclass
class RunSummary:
    flow: str
    output: str
    release_uri: str | None
    release_id: str | None
    published: bool
    units_total: int
    units_run: list[str]
    units_reused: list[str]
    quarantined: int
    message: str
    report: dict | None = None
    ray_workers: int = 0
    training: str = ""
    release_counts: dict | None = None  # from _RELEASE.json, when nothing was built this run

    def to_dict(self) -> dict:
        return asdict(self)


def summary_markdown(s: RunSummary) -> str:
    lines = [f"# {s.flow}: {s.message}", "",
             f"- release: `{s.release_uri}`" + (f" (id `{s.release_id}`)" if s.release_id else ""),
             f"- published: {'yes' if s.published else 'no'}",
             f"- units: {len(s.units_run)} processed, {len(s.units_reused)} reused, {s.units_total} total"
             + (f" ({s.ray_workers} Ray workers)" if s.ray_workers else ""),
             f"- input records quarantined: {s.quarantined}"]
    if s.training:
        lines.append(f"- training: {s.training}")
    if s.report:
        lines += ["", report_markdown(s.report)]
    elif s.release_counts:
        c = s.release_counts
        lines += ["", f"## Release `{s.release_id}` (unchanged)", "", "| tier | accepted |", "|---|---|"]
        lines += [f"| {t} | {n} |" for t, n in c.get("by_tier", {}).items()]
        lines += ["", "| rejection reason | count |", "|---|---|"]
        lines += [f"| {r or '(none given)'} | {n} |" for r, n in c.get("rejected_by_reason", {}).items()]
    return "\n".join(lines) + "\n"


def publish_artifact(s: RunSummary) -> None:
    if not inline():  # the in-process path has no Prefect API to hold an artifact
        create_markdown_artifact(summary_markdown(s), key=s.flow, description=f"{s.flow}: {s.message}")
    run_logger().info(s.message)
