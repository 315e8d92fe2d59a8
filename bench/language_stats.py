"""Language statistics of releases, and a sample of their instructions per tier.

    .venv/bin/python bench/language_stats.py RELEASE [RELEASE ...] [--sample 20] [--seed 0] [--workdir WORK]

Prints, per release, the table engine.verify.language_stats writes into the quality report
(distinct-1/2 and word types over 400 random positive instructions, exact-duplicate share,
words per instruction, per tier; kind-fact share, people's instance-fact share, related share)
beside the human reference figures, then `--sample` accepted positive instructions per tier
drawn at random: compare a release before and after a change of the planner or the generator.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.verify.language_stats import markdown, release_language  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("releases", nargs="+")
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", help="the build's work folder: facts for 'images with two or more objects' "
                                      "(without it the related share counts every one-instance instruction)")
    args = ap.parse_args()
    for rel in args.releases:
        m = pd.read_parquet(Path(rel) / "manifest.parquet")
        facts = None
        if args.workdir:
            parts = sorted(Path(args.workdir).glob("cfg-*/units/facts/*.parquet"))
            facts = pd.concat([pd.read_parquet(p, columns=["image_id"]) for p in parts]) if parts else None
        print(f"# {rel}\n")
        print(markdown(release_language(m, facts)))
        pos = m[m["cardinality"] != "negative"]
        for tier in ("simple", "complex"):
            t = pos[pos["tier"] == tier]
            print(f"\n## {tier}: {min(args.sample, len(t))} of {len(t)} accepted positive instructions\n")
            for text in t.sample(min(args.sample, len(t)), random_state=args.seed)["text"]:
                print(f"- {text}")
        print()


if __name__ == "__main__":
    main()
