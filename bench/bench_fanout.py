"""Per-unit stages in one process vs fanned out on Ray actors, over the same units.

    python bench/bench_fanout.py [--source ../shared/data/coco-sample] [--copies 4] [--unit-size 4]
                                 [--concurrency 2] [--repeat 2] [--address ray://... | auto]

Prints wall time for the in-process loop (engine.build.run_units_locally) and for the Ray
actor pool (pipelines.fanout.run_units_on_ray), Ray's start-up separately, the speed-up, and
how many distinct worker processes ran units (more than one: the units ran in parallel).
Each timed run writes to a fresh work directory, so nothing is reused.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ray  # noqa: E402

from engine.build import UNIT_STAGE, run_ingest, run_units_locally, unit_store  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.sources.ingest import resolve_source  # noqa: E402
from pipelines.fanout import run_units_on_ray  # noqa: E402
from pipelines.resources import ensure_ray  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "coco-sample"))
    ap.add_argument("--unit-size", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--copies", type=int, default=4, help="ingest the source this many times (as distinct "
                    "sources) for more units; actor start-up is paid once per run")
    ap.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    args = ap.parse_args()

    overrides = [f"ingest.unit_size={args.unit_size}", f"ray.stages.unit.concurrency={args.concurrency}"]
    if args.address:
        overrides.append(f"ray.address={args.address}")
    cfg = load_config(None, overrides)
    tmp = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    sources = [resolve_source(args.source, source_id=f"copy{k}") for k in range(args.copies)]
    data = run_ingest(sources, cfg, tmp / "ingest")
    units = data.unit_ids()
    print(f"{data.n_images} images, {data.n_instances} instances, {len(units)} units of {args.unit_size}")

    local = []
    for k in range(args.repeat):
        store = unit_store(tmp / f"local-{k}", cfg)
        t0 = time.perf_counter()
        run_units_locally(data, units, cfg, store)
        local.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    ensure_ray(cfg)
    startup = time.perf_counter() - t0
    fan, workers = [], set()
    try:
        for k in range(args.repeat):
            store = unit_store(tmp / f"ray-{k}", cfg)
            t0 = time.perf_counter()
            stats = run_units_on_ray(data, units, cfg, store)
            fan.append(time.perf_counter() - t0)
            assert all(store.is_done(UNIT_STAGE, u) for u in units)
            workers |= {(s.node, s.pid) for s in stats}
            per_unit = statistics.mean(s.seconds for s in stats)
        resources = ray.cluster_resources()
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

    best_local, best_fan = min(local), min(fan)
    print(f"in-process loop     : {best_local:6.2f} s  ({best_local / len(units):.2f} s/unit)")
    print(f"ray start-up        : {startup:6.2f} s  (CPU={resources.get('CPU')}, GPU={resources.get('GPU', 0)})")
    print(f"ray actor pool      : {best_fan:6.2f} s  ({per_unit:.2f} s/unit inside actors, pool of "
          f"{args.concurrency}, includes actor start)")
    print(f"speed-up            : {best_local / best_fan:6.2f}x")
    print(f"distinct workers    : {len(workers)}  {sorted(p for _, p in workers)}")
    return 0 if len(workers) > 1 or args.concurrency == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
