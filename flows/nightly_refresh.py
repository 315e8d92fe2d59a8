"""nightly-refresh: the incremental build, on a cron schedule (flows/serve.py, infra/prefect.yaml).

From the command line (the arguments of `python -m flows.build_dataset`, flows/cli.py):

    python -m flows.nightly_refresh --source ../shared/data/coco-sample --output out/nightly

`output` is a release *root*: each refresh that changes something publishes an immutable
release to `<output>/releases/<release_id>` and then points `<output>/LATEST.json` at it.

What makes it incremental:
- unit ids are content hashes and the work directory persists between runs (default
  `.sam3i-work/<hash of output>`), so only units whose images or annotations are new or
  changed are processed; every other unit's outputs are reused;
- the new release carries over every shard of the previous one whose samples did not change
  (hard-linked or copied, checksums kept: engine/release/publish.py);
- the release id is derived from the inputs + config fingerprint (plus release config and code
  version). When it equals the id LATEST.json points at, nothing changed: no unit runs, nothing
  is published, and the run's log and artifact say so.
"""
from __future__ import annotations

import sys

from prefect import flow

from engine import storage
from engine.build import release_fingerprint, unit_store
from flows.common import (RunSummary, fanout_task, planned_release_id, publish_artifact, publish_task,
                          read_latest, start_run, step, training_output, write_latest)

RELEASES = "releases"


def release_uri(output_root: str, release_id: str) -> str:
    return storage.join(output_root, RELEASES, release_id)


def _latest_counts(latest: dict) -> dict | None:
    """The counts of the release LATEST.json points at, or None if it is not intact there."""
    from engine.release.publish import NotAReleaseError, open_release

    try:
        release = open_release(latest["uri"])
    except NotAReleaseError:
        return None
    return release.counts if release.release_id == latest["release_id"] else None


@flow(name="nightly-refresh", log_prints=True)
def nightly_refresh(source: list[str] | str, output: str, images: list[str] | str | None = None,
                    config: str | None = None, overrides: list[str] | None = None, seed: int | None = None,
                    trigger_training: bool = False, workdir: str | None = None) -> dict:
    """Process only new or changed units and publish a new release under `output` if anything changed."""
    run = start_run(source, output, images, config, overrides, seed, workdir)
    cfg, output, sources, wd, data = run.cfg, run.output, run.sources, run.workdir, run.data
    store = unit_store(wd, cfg)
    release_id = planned_release_id(data, cfg)
    latest = read_latest(output)
    units = data.unit_ids()

    counts = _latest_counts(latest) if latest and latest["release_id"] == release_id else None
    if counts is not None:
        msg = (f"inputs and config unchanged since release {release_id} ({latest['uri']}): "
               f"nothing processed, nothing published")
        summary = RunSummary("nightly-refresh", output, latest["uri"], release_id, False, len(units), [], units,
                             data.n_quarantined, msg, release_counts=counts)
        publish_artifact(summary)
        return summary.to_dict()

    before = f"release {latest['release_id']}" if latest else "no release yet"
    fan = step(fanout_task, data, cfg, store)
    target = release_uri(output, release_id)
    rep, info = step(publish_task, target, data, store, cfg, sources, previous=latest)
    write_latest(output, info, release_fingerprint(data, cfg))
    msg = (f"published release {info.release_id} at {target} (was: {before}); "
           f"{len(fan.run)} new or changed units processed, {len(fan.reused)} reused")
    summary = RunSummary("nightly-refresh", output, info.uri, info.release_id, not info.reused, fan.units_total,
                         fan.run, fan.reused, data.n_quarantined, msg, rep, len(fan.workers))
    if trigger_training:
        from flows.build_dataset import trigger_training as start_training

        summary.training = start_training(info.uri, training_output(wd, info.release_id))
    publish_artifact(summary)
    return summary.to_dict()


def main(argv: list[str] | None = None) -> int:
    from flows.cli import run_flow_cli

    return run_flow_cli(nightly_refresh, "python -m flows.nightly_refresh", __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    sys.exit(main())
