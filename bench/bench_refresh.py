"""Nightly refresh with a few new images against a full build (issue 16).

    python bench/bench_refresh.py [--images 900] [--new-share 0.05] [--repo PATH]

Builds a replicated coco-sample set (bench/perf_data.py) with `python -m flows.nightly_refresh`
into a fresh output root and work directory (the full build), appends `new-share` more images
with higher ids, and runs the refresh again on the same output and work directory. Each run is
a fresh process, start-up included in both. A code tree without the command line (the commit
before issue 16) runs the flow through `python -c`. Prints both times, the units run, the
shards carried over, and the ratio refresh / full last.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_data import REPO, env_for, extend, load_average, python, replicate  # noqa: E402


def run(repo: Path, src: Path, out: Path, wd: Path, env: dict) -> tuple[float, str]:
    if "def main(" in (repo / "flows" / "nightly_refresh.py").read_text():
        cmd = [python(repo), "-m", "flows.nightly_refresh", "--source", str(src), "--output", str(out),
               "--workdir", str(wd)]
    else:
        call = (f"from flows.nightly_refresh import nightly_refresh; "
                f"print(nightly_refresh(source={str(src)!r}, output={str(out)!r}, workdir={str(wd)!r})['message'])")
        cmd = [python(repo), "-c", call]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"refresh failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return wall, r.stdout.strip().splitlines()[-1]


def shards(out: Path) -> dict[str, dict]:
    latest = json.loads((out / "LATEST.json").read_text())
    index = json.loads((Path(latest["uri"]) / "index.json").read_text())
    return {s["url"]: {**s, "path": Path(latest["uri"]) / s["url"]} for s in index["shardlist"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=900)
    ap.add_argument("--new-share", type=float, default=0.05)
    ap.add_argument("--repo", type=Path, default=REPO)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    env = env_for(args.repo)
    env["PREFECT_HOME"] = str(tmp / "prefect-home")
    try:
        src = replicate(args.images, tmp / "src")
        out, wd = tmp / "out", tmp / "wd"
        print(f"code tree {args.repo}; {args.images} images then +{args.new_share:.0%}; load average {load_average()}")
        full, msg = run(args.repo, src, out, wd, env)
        print(f"full build          : {full:7.2f} s  ({msg})")
        before = shards(out)
        extend(src, max(1, round(args.images * args.new_share)))
        refresh, msg = run(args.repo, src, out, wd, env)
        after = shards(out)
        inodes = {s["path"].stat().st_ino for s in before.values()}
        carried = [u for u, s in after.items() if s["path"].stat().st_ino in inodes]
        same = [u for u, s in after.items() if any(s["sha256"] == b["sha256"] for b in before.values())]
        print(f"refresh             : {refresh:7.2f} s  ({msg})")
        print(f"shards              : {len(after)} in the new release, {len(same)} byte-identical to the previous "
              f"release's, {len(carried)} of them carried over (hard links)")
        print(f"load average after  : {load_average()}")
        print(f"ratio refresh/full  : {refresh / full:7.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
