"""build-dataset: ingest -> Ray fan-out of the per-unit stages -> release -> (training).

As a deployment (see flows/serve.py):

    prefect deployment run build-dataset/default --param source=../shared/data/coco-sample --param output=out/r

Directly, with a live progress display and the summary table at the end (flows/cli.py: the
flow runs in this process unless a Prefect API is configured or `--orchestrator prefect` asks
for a flow run; units go to a local Ray when there are at least `ray.min_units` of them):

    python -m flows.build_dataset --source ../shared/data/coco-sample --output out/release [--set ingest.unit_size=8]

Finished units are kept in the work directory (default `.sam3i-work/<hash of output>`), so a
killed build run again redoes only the units that had not finished and publishes the same
release an uninterrupted build would have.
"""
from __future__ import annotations

import sys

from prefect import flow

from engine.build import unit_store
from flows import progress
from flows.common import (TRAIN_DEPLOYMENT, RunSummary, fanout_task, planned_release_id,
                          publish_artifact, publish_task, refuse_other_release, run_logger, start_run, step,
                          training_output)


def trigger_training(release_uri: str, output: str, overrides: list[str] | None = None) -> str:
    """Start train-curriculum on a release: through its deployment when one exists, else as a
    subflow in this process (embedded mode). `output` is where training writes its plan and
    checkpoints; `overrides` go to the trainer's config. Returns what was done, for the summary."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    log = run_logger()
    p = progress.current()
    p.start("training", note=release_uri)
    try:
        # timeout=0: start it and return; training outlives the build.
        params = {"release_uri": release_uri, "output": output} | ({"overrides": overrides} if overrides else {})
        run = run_deployment(TRAIN_DEPLOYMENT, parameters=params, timeout=0)
        log.info(f"started {TRAIN_DEPLOYMENT} as flow run {run.name} ({run.id})")
        done = f"deployment {TRAIN_DEPLOYMENT} started (flow run {run.name})"
    except ObjectNotFound:
        log.info(f"no {TRAIN_DEPLOYMENT} deployment; running train-curriculum as a subflow")
        from flows.train_curriculum import train_curriculum

        plan = train_curriculum(release_uri=release_uri, output=output, overrides=overrides)
        done = f"subflow train-curriculum: {plan['status']}"
    p.finish("training", done)
    return done


@flow(name="build-dataset", log_prints=True)
def build_dataset(source: list[str] | str, output: str, images: list[str] | str | None = None,
                  config: str | None = None, overrides: list[str] | None = None, seed: int | None = None,
                  trigger_training: bool = False, workdir: str | None = None,
                  training_overrides: list[str] | None = None) -> dict:
    """Build a release at `output` from COCO-style `source`(s); reuse finished units.
    `trigger_training` then starts train-curriculum on it, with `training_overrides` for the trainer."""
    run = start_run(source, output, images, config, overrides, seed, workdir)
    cfg, output, sources, wd, data = run.cfg, run.output, run.sources, run.workdir, run.data
    refuse_other_release(output, planned_release_id(data, cfg))
    store = unit_store(wd, cfg)
    fan = step(fanout_task, data, cfg, store)
    rep, info = step(publish_task, output, data, store, cfg, sources)
    msg = (f"release {info.release_id} {'was already published' if info.reused else 'published'} at {output}: "
           f"{rep['instructions']['accepted']} accepted instructions, {len(fan.run)}/{fan.units_total} units processed")
    summary = RunSummary("build-dataset", output, info.uri, info.release_id, not info.reused, fan.units_total,
                         fan.run, fan.reused, data.n_quarantined, msg, rep, len(fan.workers))
    if trigger_training:
        summary.training = _trigger(info.uri, training_output(wd, info.release_id), training_overrides)
    publish_artifact(summary)
    return summary.to_dict()


_trigger = trigger_training  # the flow's parameter shadows the function's name inside it


def main(argv: list[str] | None = None) -> int:
    from flows.cli import run_flow_cli

    return run_flow_cli(build_dataset, "python -m flows.build_dataset", __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    sys.exit(main())
