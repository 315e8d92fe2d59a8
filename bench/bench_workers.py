"""Units stage on 1 vs 2 Ray workers, with CPU time per unit (issue 16).

    python bench/bench_workers.py [--images 900] [--unit-size 64] [--workers 1 2]

Ingests a replicated coco-sample set (bench/perf_data.py) once, starts a local Ray sized for
the largest pool, then runs every unit on a pool of each size into a fresh work directory
(actor start included, Ray's own start excluded). Prints wall time, the mean CPU and wall
seconds per unit inside the actors (CPU time per unit should not grow with the pool; when it
does, the workers compete for cores or memory bandwidth), the load average, and the speed-up
of the largest pool over one worker last. Measure with nothing else running: another job on
the cores caps the speed-up however well the pool scales.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_data import REPO, load_average, replicate  # noqa: E402

sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=900)
    ap.add_argument("--unit-size", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    import ray

    from engine.build import UNIT_STAGE, run_ingest, unit_store
    from engine.config import load_config
    from engine.sources.ingest import resolve_source
    from pipelines.fanout import run_units_on_ray
    from pipelines.resources import ensure_ray

    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    most = max(args.workers)
    try:
        src = replicate(args.images, tmp / "src")
        base = [f"ingest.unit_size={args.unit_size}"]
        data = run_ingest([resolve_source(str(src))], load_config(None, base), tmp / "ingest")
        units = data.unit_ids()
        print(f"{data.n_images} images, {len(units)} units of {args.unit_size}; load average {load_average()}")
        ensure_ray(load_config(None, base + [f"ray.stages.unit.concurrency={most}"]))
        walls = {}
        for n in args.workers:
            cfg = load_config(None, base + [f"ray.stages.unit.concurrency={n}"])
            store = unit_store(tmp / f"w{n}", cfg)
            t0 = time.perf_counter()
            stats = run_units_on_ray(data, units, cfg, store)
            walls[n] = time.perf_counter() - t0
            assert all(store.is_done(UNIT_STAGE, u) for u in units)
            pids = {s.pid for s in stats}
            print(f"{n} worker(s)          : {walls[n]:7.2f} s wall, CPU {statistics.mean(s.cpu_seconds for s in stats):6.2f} s"
                  f" / wall {statistics.mean(s.seconds for s in stats):6.2f} s per unit inside the actors, "
                  f"{len(pids)} processes; load average {load_average()}")
        ray.shutdown()
        lo = min(args.workers)
        print(f"speed-up {most} vs {lo} worker(s): {walls[lo] / walls[most]:6.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
