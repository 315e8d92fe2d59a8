"""Main-process peak memory of a build at two dataset sizes (issue 16).

    python bench/bench_memory.py [--sizes 900 3000] [--repo PATH]

Each size is built with `engine.build` (ingest, units and release in one process, the most
the main process ever holds) in a fresh process on a replicated coco-sample set
(bench/perf_data.py); the peak is that process's VmHWM. Prints each peak and the ratio of the
largest to the smallest last (flat memory: close to 1).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_data import REPO, env_for, load_average, python, replicate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[900, 3000])
    ap.add_argument("--repo", type=Path, default=REPO)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    peaks = {}
    try:
        for n in args.sizes:
            src = replicate(n, tmp / f"src{n}")
            out = subprocess.run([python(args.repo), str(REPO / "bench" / "build_once.py"), "--source", str(src),
                                  "--output", str(tmp / f"r{n}"), "--workdir", str(tmp / f"w{n}")],
                                 cwd=args.repo, env=env_for(args.repo), capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-3000:])
            r = json.loads(out.stdout.strip().splitlines()[-1])
            peaks[n] = r["peak_rss_mb"]
            print(f"{n:5d} images: peak RSS {r['peak_rss_mb']:7.1f} MB, build {r['build_s']:.1f} s; "
                  f"load average {load_average()}")
            shutil.rmtree(src, ignore_errors=True)
            shutil.rmtree(tmp / f"r{n}", ignore_errors=True)
            shutil.rmtree(tmp / f"w{n}", ignore_errors=True)
        lo, hi = min(args.sizes), max(args.sizes)
        print(f"peak memory {hi} / {lo} images: {peaks[hi] / peaks[lo]:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
