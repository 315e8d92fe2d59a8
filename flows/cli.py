"""The command line shared by `python -m flows.build_dataset` and `python -m flows.nightly_refresh`.

Both take engine.build's arguments (--source, --output, --config, --set, --seed, --workdir)
under the flow's parameter names, check them before anything starts, and run the flow with a
live progress display. Where the flow runs (`--orchestrator`):
- `prefect`: a Prefect flow run; with no PREFECT_API_URL, Prefect starts a temporary server
  for the run (seconds of start-up and teardown);
- `inline`: the same flow body in this process with its tasks as plain calls: no server, and
  nothing recorded in Prefect;
- `auto` (default): `prefect` when a Prefect API is configured (a long-running server records
  the run), else `inline`.
Independently, units fan out on Ray only when there are at least `ray.min_units` pending
units (or a cluster address or GPU stage is configured); a one-unit job starts no Ray.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from engine.build import add_build_arguments

ORCHESTRATORS = ("auto", "prefect", "inline")


def add_flow_arguments(ap: argparse.ArgumentParser) -> None:
    add_build_arguments(ap)
    # The flag names are the flow's parameter names (--trigger-training: trigger_training),
    # so a command line carries over to `prefect deployment run ... --param`; --set's
    # parameter is `overrides`, accepted here under that name too.
    ap.add_argument("--overrides", dest="overrides", action="append", metavar="KEY=VALUE", help="same as --set")
    ap.add_argument("--trigger-training", action="store_true",
                    help="start train-curriculum on the release (its deployment if one exists, else a subflow)")
    ap.add_argument("--orchestrator", choices=ORCHESTRATORS, default="auto",
                    help="prefect: a Prefect flow run (a temporary server when no PREFECT_API_URL is set); "
                         "inline: the flow in this process, no server; auto: prefect if an API is configured, "
                         "else inline (default)")


def orchestrator(choice: str) -> str:
    if choice != "auto":
        return choice
    from prefect.settings import PREFECT_API_URL

    return "prefect" if PREFECT_API_URL.value() else "inline"


def run_flow_cli(flow, prog: str, description: str, argv: list[str] | None = None,
                 params: Callable[[argparse.Namespace], dict] | None = None) -> int:
    """Parse, check, run `flow` with a progress display; print its report. Returns the exit code."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    add_flow_arguments(ap)
    args = ap.parse_args(argv)
    # Embedded mode starts a temporary Prefect server; it has nobody to send telemetry to.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from engine.build import sources_of
    from engine.report import print_report
    from engine.sources.ingest import IngestError
    from flows import progress
    from flows.common import flow_config, inline_run

    try:  # bad arguments fail here, before a Prefect server and Ray start
        flow_config(args.config, args.overrides, args.seed)
        sources_of(args.source, args.images)
    except (IngestError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    # a killed build cannot stop its temporary Prefect server and local Ray: a watcher does
    from flows.reaper import watch

    watch()
    kwargs = dict(source=args.source, output=args.output, images=args.images, config=args.config,
                  overrides=args.overrides, seed=args.seed, trigger_training=args.trigger_training,
                  workdir=args.workdir)
    how = orchestrator(args.orchestrator)
    with progress.use(progress.RichProgress()) as p, p:
        try:
            if how == "inline":
                with inline_run():
                    result = flow.fn(**kwargs)
            else:
                result = flow(**kwargs)
        except Exception as e:  # a flow run already logged the traceback
            p.bars.stop()
            print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    if result.get("report"):
        print_report(result["report"])
    print(result["message"])
    return 0
