"""build-dataset: ingest -> Ray fan-out of the per-unit stages -> release -> (training).

As a deployment (see flows/serve.py):

    prefect deployment run build-dataset/default --param source=../shared/data/coco-sample --param output=out/r

Directly, on the embedded defaults (Prefect's ephemeral API, a local Ray), with a live
progress display and the summary table at the end:

    python -m flows.build_dataset --source ../shared/data/coco-sample --output out/release [--set ingest.unit_size=8]

Finished units are kept in the work directory (default `.sam3i-work/<hash of output>`), so a
killed build run again redoes only the units that had not finished and publishes the same
release an uninterrupted build would have.
"""
from __future__ import annotations

import argparse
import os
import sys

from prefect import flow
from prefect.logging import get_run_logger

from engine.build import add_build_arguments, sources_of, unit_store
from flows import progress
from flows.common import (TRAIN_DEPLOYMENT, RunSummary, fanout_task, flow_config, planned_release_id,
                          publish_artifact, publish_task, refuse_other_release, start_run, training_output)


def trigger_training(release_uri: str, output: str, overrides: list[str] | None = None) -> str:
    """Start train-curriculum on a release: through its deployment when one exists, else as a
    subflow in this process (embedded mode). `output` is where training writes its plan and
    checkpoints; `overrides` go to the trainer's config. Returns what was done, for the summary."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    log = get_run_logger()
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
    fan = fanout_task(data, cfg, store)
    rep, info = publish_task(output, data, store, cfg, sources)
    msg = (f"release {info.release_id} {'was already published' if info.reused else 'published'} at {output}: "
           f"{rep['instructions']['accepted']} accepted instructions, {len(fan.run)}/{fan.units_total} units processed")
    summary = RunSummary("build-dataset", output, info.uri, info.release_id, not info.reused, fan.units_total,
                         fan.run, fan.reused, len(data.quarantine), msg, rep, len(fan.workers))
    if trigger_training:
        summary.training = _trigger(info.uri, training_output(wd, info.release_id), training_overrides)
    publish_artifact(summary)
    return summary.to_dict()


_trigger = trigger_training  # the flow's parameter shadows the function's name inside it


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.build_dataset", description=__doc__.split("\n\n")[0])
    add_build_arguments(ap)
    # The flag names are the flow's parameter names (--trigger-training: trigger_training),
    # so a command line carries over to `prefect deployment run ... --param`; --set's
    # parameter is `overrides`, accepted here under that name too.
    ap.add_argument("--overrides", dest="overrides", action="append", metavar="KEY=VALUE", help="same as --set")
    ap.add_argument("--trigger-training", action="store_true",
                    help="start train-curriculum on the release (its deployment if one exists, else a subflow)")
    args = ap.parse_args(argv)
    # Embedded mode starts a temporary Prefect server; it has nobody to send telemetry to.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from engine.sources.ingest import IngestError
    from engine.report import print_report

    try:  # bad arguments fail here, before a Prefect server and Ray start
        flow_config(args.config, args.overrides, args.seed)
        sources_of(args.source, args.images)
    except (IngestError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    # a killed build cannot stop its temporary Prefect server and local Ray: a watcher does
    from flows.reaper import watch

    watch()
    with progress.use(progress.RichProgress()) as p, p:
        try:
            result = build_dataset(source=args.source, output=args.output, images=args.images, config=args.config,
                                   overrides=args.overrides, seed=args.seed, trigger_training=args.trigger_training,
                                   workdir=args.workdir)
        except Exception as e:  # the flow run already logged the traceback
            p.bars.stop()
            print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    print_report(result["report"])
    print(result["message"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
