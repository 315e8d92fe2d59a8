"""Coverage per tier on the shared custom exports, bare and with their lexicon extensions.

    .venv/bin/python bench/quality_custom_sets.py [--samples 20] [--set plan.min_area_px=0]

For each set in ../shared/data/custom (Roboflow COCO bottles, LabelMe->COCO fruit and nuts,
Roboflow YOLOv8-seg fruit) it runs ingest and the per-unit stages in-process (no Ray, no
release), once with the default lexicon only ("bare": the base file and its everyday-noun
fallback, engine/data/lexicon_common.yaml) and once with
the reviewed extension in examples/lexicons/, and prints: coverage of eligible instances per
tier (any cardinality and 1:1), the issue's targets (simple 1:1 >= 90%, complex 1:1 >= 60%),
per-category accepted counts, whether any negative names a category the source does not
annotate or any text shows an underscore or CamelCase, and N sampled accepted instructions.
"""
from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

import pandas as pd

from engine.config import load_config
from engine.scene.facts import describe
from engine.generate.base import SpecView
from engine.sources.ingest import ingest, resolve_source
from engine.report import quality_report
from engine.stages import UnitWorker

ROOT = Path(__file__).resolve().parent.parent
CUSTOM = ROOT.parent / "shared" / "data" / "custom"
SETS = {  # name -> (source, images, extension)
    "crystl_bottles": (CUSTOM / "crystl_bottles" / "test", None, "crystl_bottles"),
    "fruits_nuts": (CUSTOM / "fruits_nuts" / "data" / "trainval.json", CUSTOM / "fruits_nuts" / "data" / "images", "fruits_nuts"),
    "fruits_yoloseg": (CUSTOM / "fruits_yoloseg", None, "fruits_yoloseg"),
}
CAMEL_OR_SNAKE = re.compile(r"_|[a-z][A-Z]")


def run(source, images, overrides):
    cfg = load_config(None, overrides)
    t0 = time.perf_counter()
    data = ingest([resolve_source(str(source), str(images) if images else None)], cfg.ingest)
    worker = UnitWorker(cfg)
    facts, relations = describe(data.images, data.instances, cfg.facts)
    scenes = worker.scenes(data.images, facts, relations)
    specs = worker.plan(scenes, "bench")
    img = {r["image_id"]: r for r in data.images.to_dict("records")}
    rows = [worker.generate_and_check(SpecView.from_row(s), scenes[s["image_id"]], img[s["image_id"]])
            for s in specs.to_dict("records")]
    instr = pd.DataFrame(worker.dedup(rows))
    return data, instr, quality_report(instr, facts, cfg.plan), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    print(f"{'set':<16}{'lexicon':<10}{'eligible':>9}{'concept':>9}{'simple':>8}{'complex':>9}"
          f"{'simple 1:1':>12}{'complex 1:1':>13}{'accepted':>10}{'targets':>9}{'s':>6}")
    samples = {}
    for name, (source, images, ext) in SETS.items():
        for mode in ("bare", "extended"):
            extra = [f"lexicon.extend=[{ROOT / 'examples' / 'lexicons' / (ext + '.yaml')}]"] if mode == "extended" else []
            data, instr, rep, secs = run(source, images, args.overrides + extra)
            cov, one = rep["coverage"], rep["coverage_1to1"]
            ok = one["simple"] >= 0.9 and one["complex"] >= 0.6
            print(f"{name:<16}{mode:<10}{rep['eligible_instances']:>9}{cov['concept']:>9.0%}{cov['simple']:>8.0%}"
                  f"{cov['complex']:>9.0%}{one['simple']:>12.0%}{one['complex']:>13.0%}"
                  f"{rep['instructions']['accepted']:>10}{'met' if ok else 'MISSED':>9}{secs:>6.1f}")
            acc = instr[instr["accepted"]]
            cats = set(data.instances["category"])
            neg = acc[acc["cardinality"] == "negative"]
            outside = set(",".join(neg["category"]).split(",")) - cats - {""}
            shown = acc[acc["text"].str.contains(CAMEL_OR_SNAKE)]
            missing = [c for c in sorted(cats) if not {"concept", "simple"} <= set(acc[acc["category"] == c]["tier"])]
            print(f"{'':<16}{'':<10}negatives outside the vocabulary: {sorted(outside) or 'none'}; "
                  f"texts with _ or CamelCase: {len(shown)}; categories lacking concept/simple: {missing or 'none'}")
            print(f"{'':<26}per category (concept/simple/complex accepted): " + ", ".join(
                f"{c} {sum((acc['category'] == c) & (acc['tier'] == 'concept'))}/"
                f"{sum((acc['category'] == c) & (acc['tier'] == 'simple'))}/{sum((acc['category'] == c) & (acc['tier'] == 'complex'))}"
                for c in sorted(cats)))
            samples[(name, mode)] = acc
    rng = random.Random(args.seed)
    for (name, mode), acc in samples.items():
        rows = acc.to_dict("records")
        print(f"\n## {name} ({mode} lexicon): {args.samples} of {len(rows)} accepted")
        for r in sorted(rng.sample(rows, min(args.samples, len(rows))), key=lambda r: (r["tier"], r["cardinality"])):
            print(f"- [{r['image_id']}] {r['tier']} {r['cardinality']}: {r['text']}")


if __name__ == "__main__":
    main()
