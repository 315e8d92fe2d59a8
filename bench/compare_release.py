"""Do the speed-ups change any accepted instruction? Build the same source with two code trees
and compare the releases (issue 16).

    python bench/compare_release.py --base /tmp/base-tree [--source ../shared/data/coco-sample]

`--base` is a code tree of the commit before the change (e.g. `git archive 58a7aa1 | tar -x
-C /tmp/base-tree`); the other tree is this checkout. Each is built with `engine.build` in a
fresh process. Prints manifest rows only in one release, rows that differ per column,
rejected-candidate counts, and which shard and export files are byte-identical. The release
ids differ by design (they hash the code version). Exit 0 when the manifests hold the same rows.
Intended difference: with several work units, shards are cut at unit boundaries
(`release.shard_by_unit`), so the `shard` column differs; `--head-set release.shard_by_unit=false`
turns that off for this tree.
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
from perf_data import COCO_SAMPLE, REPO, env_for, python  # noqa: E402


def build(repo: Path, source: Path, out: Path, overrides: list[str]) -> Path:
    cmd = [python(repo), "-m", "engine.build", "--source", str(source), "--output", str(out / "release"),
           "--workdir", str(out / "wd")]
    for o in overrides:
        cmd += ["--set", o]
    r = subprocess.run(cmd, cwd=repo, env=env_for(repo), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"build with {repo} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return out / "release"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="code tree of the commit before the change")
    ap.add_argument("--source", type=Path, default=COCO_SAMPLE)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override for both builds")
    ap.add_argument("--head-set", dest="head_overrides", action="append", default=[],
                    help="config override for this tree only (e.g. release.shard_by_unit=false)")
    args = ap.parse_args()

    import pandas as pd

    tmp = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    try:
        a = build(args.base.resolve(), args.source, tmp / "base", args.overrides)
        b = build(REPO, args.source, tmp / "head", args.overrides + args.head_overrides)
        ma = pd.read_parquet(a / "manifest.parquet")
        mb = pd.read_parquet(b / "manifest.parquet")
        cols = [c for c in ma.columns if c in mb.columns]
        extra = sorted(set(ma.columns) ^ set(mb.columns))

        def rows(m):
            return {json.dumps([str(v) if not hasattr(v, "tolist") else v.tolist() for v in r], default=str)
                    for r in m[cols].itertuples(index=False)}
        ra, rb = rows(ma), rows(mb)
        print(f"manifest rows: base {len(ma)}, head {len(mb)}; only in base {len(ra - rb)}, only in head {len(rb - ra)}")
        if extra:
            print(f"columns in one manifest only: {extra}")
        ja, jb = ma.set_index("instruction_id"), mb.set_index("instruction_id")
        common = ja.index.intersection(jb.index)
        for c in cols:
            if c == "instruction_id":
                continue
            diff = int((ja.loc[common, c].astype(str) != jb.loc[common, c].astype(str)).sum())
            if diff:
                print(f"  column {c}: {diff} of {len(common)} shared instructions differ")
        rja, rjb = pd.read_parquet(a / "rejected.parquet"), pd.read_parquet(b / "rejected.parquet")
        print(f"rejected candidates: base {len(rja)}, head {len(rjb)}; same ids: "
              f"{set(rja['instruction_id']) == set(rjb['instruction_id'])}")
        fa = json.loads((a / "_RELEASE.json").read_text())["files"]
        fb = json.loads((b / "_RELEASE.json").read_text())["files"]
        same = sorted(f for f in fa if f in fb and fa[f]["sha256"] == fb[f]["sha256"])
        differ = sorted(f for f in fa if f in fb and fa[f]["sha256"] != fb[f]["sha256"])
        print(f"files byte-identical: {len(same)}; differing: {differ}; "
              f"only base: {sorted(set(fa) - set(fb))}; only head: {sorted(set(fb) - set(fa))}")
        for f in differ:   # export files: the same entries, the same annotations but for their ids?
            if f.endswith(".json") and (f.startswith("sam3i/stage") or f.startswith("saco/")):
                da, db = (json.loads((r / f).read_text()) for r in (a, b))
                for d in (da, db):
                    for ann in d["annotations"]:
                        ann.pop("id")
                ids = [x["id"] for x in json.loads((b / f).read_text())["annotations"]]
                print(f"  {f}: {'same' if da == db else 'DIFFERENT'} entries and annotations but for annotation "
                      f"ids; head's ids unique: {len(set(ids)) == len(ids)}")
        ok = ra == rb and not extra
        cols = [c for c in cols if c != "shard"]
        print(f"same rows but for the shard column (release.shard_by_unit): {rows(ma) == rows(mb)}")
        print(f"same manifest rows  : {ok}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
