"""People in a release: 1:1 coverage and how they are told apart (issue 17).

    .venv/bin/python bench/people_coverage.py RELEASE [RELEASE ...] [--samples 20] [--seed 0]

For each release (its manifest.parquet): eligible people are not counted here (the same for
any build of a source); printed are the people targets with at least one accepted 1:1
instruction (simple tier, any tier), the share of people's 1:1 simple instructions that use
clothing or posture (garment / posture constraints), and a sample of people's 1:1 instructions.
"""
from __future__ import annotations

import argparse
import json

import pandas as pd


def people_rows(release: str) -> pd.DataFrame:
    m = pd.read_parquet(f"{release}/manifest.parquet")
    return m[(m["category"] == "person") & (m["cardinality"] == "1:1")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("releases", nargs="+")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for rel in args.releases:
        p = people_rows(rel)
        simple = p[p["tier"] == "simple"]
        kinds = simple["program"].map(lambda s: {c["kind"] for c in json.loads(s)})
        worn = kinds.map(lambda k: bool(k & {"garment", "posture"}))
        targets = lambda d: {t for ts in d["target_ids"] for t in ts}
        print(f"## {rel}")
        print(f"  people 1:1 targets covered: any tier {len(targets(p))}, simple {len(targets(simple))}, "
              f"complex {len(targets(p[p['tier'] == 'complex']))}")
        print(f"  people 1:1 instructions: {len(p)} (simple {len(simple)}, complex {(p['tier'] == 'complex').sum()})")
        if len(simple):
            print(f"  simple 1:1 using clothing or posture: {int(worn.sum())}/{len(simple)} = {worn.mean():.2f}")
        sample = p[p["tier"] != "concept"].sample(min(args.samples, len(p[p["tier"] != "concept"])), random_state=args.seed)
        for r in sample.itertuples():
            print(f"    [{r.tier}] {r.image_id} {r.target_ids[0]}: {r.text}")


if __name__ == "__main__":
    main()
