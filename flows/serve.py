"""Register and serve the deployments against a running Prefect server.

    prefect server start &                       # schedules only fire with a real server
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python -m flows.serve --nightly-source ../shared/data/coco-sample --nightly-output out/nightly
    prefect deployment run build-dataset/default --param source=../shared/data/coco-sample --param output=out/r

Deployments: build-dataset/default, nightly-refresh/default (cron, default "0 3 * * *"; its
schedule is registered inactive until a source and output are configured, since a scheduled
run needs them) and train-curriculum/default (what build-dataset's trigger_training starts).
This process runs the flow runs itself (`prefect.serve`); for work pools use infra/prefect.yaml.
"""
from __future__ import annotations

import argparse
import os
import sys

from prefect import serve
from prefect.deployments.runner import EntrypointType
from prefect.schedules import Cron

from flows.build_dataset import build_dataset
from flows.nightly_refresh import nightly_refresh
from flows.train_curriculum import train_curriculum

DEFAULT_CRON = "0 3 * * *"
TAGS = ["sam3i"]


def deployments(nightly_source: list[str] | None = None, nightly_output: str | None = None,
                cron: str = DEFAULT_CRON, timezone: str = "UTC", nightly_overrides: list[str] | None = None):
    """The three RunnerDeployments (module entrypoints, so any checkout on PYTHONPATH can run them)."""
    common = {"tags": TAGS, "entrypoint_type": EntrypointType.MODULE_PATH}
    nightly_params = {k: v for k, v in {"source": nightly_source or None, "output": nightly_output,
                                        "overrides": nightly_overrides or None}.items() if v}
    scheduled = bool(nightly_source and nightly_output)
    return [
        build_dataset.to_deployment("default", description="Build a release from COCO-style sources.", **common),
        nightly_refresh.to_deployment(
            "default", schedule=Cron(cron, timezone=timezone, active=scheduled, slug="nightly"),
            parameters=nightly_params, description="Incremental refresh: only new or changed units; "
            "publishes nothing when inputs and config are unchanged.", **common),
        train_curriculum.to_deployment("default", description="SAM3-I three-stage curriculum on a release.", **common),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nightly-source", action="append", default=None, help="source(s) for the scheduled refresh")
    ap.add_argument("--nightly-output", default=None, help="release root for the scheduled refresh")
    ap.add_argument("--nightly-set", dest="nightly_overrides", action="append", default=None, metavar="KEY=VALUE")
    ap.add_argument("--cron", default=DEFAULT_CRON)
    ap.add_argument("--timezone", default="UTC")
    ap.add_argument("--limit", type=int, default=None, help="most flow runs at once (default: no limit)")
    args = ap.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print("warning: PREFECT_API_URL is not set; deployments need a running Prefect server "
              "(prefect server start) and schedules never fire on the ephemeral API", file=sys.stderr)
    serve(*deployments(args.nightly_source, args.nightly_output, args.cron, args.timezone, args.nightly_overrides),
          limit=args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
