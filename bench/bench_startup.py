"""Fixed start-up of the README command (issue 16): what a build costs beyond its own work.

    python bench/bench_startup.py [--repo PATH] [--repeat 2] [--] [extra flows.build_dataset args]

Runs the README command (`python -m flows.build_dataset --source coco-sample --output ...`,
fresh output and work directory) and, alternating with it, the same build's own work measured
inside one process (`bench/build_once.py`: ingest, units and release after imports). The
fixed cost is the difference: imports, orchestration (Prefect server, Ray) and teardown.
Extra arguments go to the README command (e.g. `-- --orchestrator prefect --set ray.min_units=1`
for the Prefect flow run and Ray path). Prints medians, the fixed cost last.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_data import COCO_SAMPLE, REPO, env_for, load_average, python  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=REPO)
    ap.add_argument("--source", type=Path, default=COCO_SAMPLE)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = env_for(args.repo)
    env["PREFECT_HOME"] = str(tmp / "prefect-home")
    env.pop("PREFECT_API_URL", None)
    walls, work = [], []
    try:
        print(f"code tree {args.repo}; README command extra args {args.extra}; load average {load_average()}")
        for k in range(args.repeat):
            cmd = [python(args.repo), "-m", "flows.build_dataset", "--source", str(args.source),
                   "--output", str(tmp / f"out{k}"), "--workdir", str(tmp / f"wd{k}"), *args.extra]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, cwd=args.repo, env=env, capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise RuntimeError(f"README command failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
            r = subprocess.run([python(args.repo), str(REPO / "bench" / "build_once.py"), "--source", str(args.source),
                                "--output", str(tmp / f"in{k}"), "--workdir", str(tmp / f"iw{k}")],
                               cwd=args.repo, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(r.stderr[-3000:])
            work.append(json.loads(r.stdout.strip().splitlines()[-1]))
        wall = statistics.median(walls)
        own = statistics.median(w["build_s"] for w in work)
        imports = statistics.median(w["import_s"] for w in work)
        print(f"README command      : {wall:6.2f} s wall (runs: {', '.join(f'{w:.1f}' for w in walls)})")
        print(f"build's own work    : {own:6.2f} s (in one process, after {imports:.1f} s of engine imports)")
        print(f"load average after  : {load_average()}")
        print(f"fixed start-up      : {wall - own:6.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
