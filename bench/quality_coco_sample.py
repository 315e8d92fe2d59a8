"""Engine quality on real photos: coverage per tier, counts, timing, and sampled instructions.

    .venv/bin/python bench/quality_coco_sample.py [--source ../shared/data/coco-sample] [--samples 20]

Runs ingest + the per-unit stages in-process (no Ray, no release) and prints the quality
report, the seconds per stage, and N randomly sampled accepted instructions per tier with
their image ids, so a reader can judge them.
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from engine.config import load_config
from engine.scene.facts import describe
from engine.sources.ingest import ingest, resolve_source
from engine.report import print_report, quality_report
from engine.stages import UnitWorker

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(ROOT.parent / "shared/data/coco-sample"))
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    cfg = load_config(None, args.overrides)

    t0 = time.perf_counter()
    data = ingest([resolve_source(args.source)], cfg.ingest)
    t1 = time.perf_counter()
    worker = UnitWorker(cfg)
    facts, relations = describe(data.images, data.instances, cfg.facts)
    t2 = time.perf_counter()
    scenes = worker.scenes(data.images, facts, relations)
    specs = worker.plan(scenes, "bench")
    t3 = time.perf_counter()
    from engine.generate.base import SpecView
    img = {r["image_id"]: {**r} for r in data.images.to_dict("records")}
    rows = [worker.generate_and_check(SpecView.from_row(s), scenes[s["image_id"]], img[s["image_id"]])
            for s in specs.to_dict("records")]
    t4 = time.perf_counter()
    rows = worker.dedup(rows)
    t5 = time.perf_counter()
    import pandas as pd
    instr = pd.DataFrame(rows)
    rep = quality_report(instr, facts, cfg.plan)
    print_report(rep)
    print(f"\nseconds: ingest {t1-t0:.2f}  describe {t2-t1:.2f}  plan {t3-t2:.2f}  "
          f"generate+check {t4-t3:.2f}  dedup {t5-t4:.2f}  ({len(specs)} specs, {len(data.images)} images)")
    acc = instr[instr["accepted"]]
    rng = random.Random(args.seed)
    for tier in ("concept", "simple", "complex"):
        t = acc[acc["tier"] == tier].to_dict("records")
        print(f"\n## {tier}: {args.samples} of {len(t)} accepted")
        for r in rng.sample(t, min(args.samples, len(t))):
            print(f"- [{r['image_id']}] ({r['cardinality']}, {r['subtype']}) {r['text']}")
    rej = instr[~instr["accepted"]].to_dict("records")
    print(f"\n## rejected: 10 of {len(rej)}")
    for r in rng.sample(rej, min(10, len(rej))):
        print(f"- [{r['image_id']}] ({r['tier']}) {r['text']!r}: {r['reject_reason'][:150]}")


if __name__ == "__main__":
    main()
