"""Judged precision on the shared photos: build, sample, picture, and read back a person's verdicts.

    .venv/bin/python bench/judged_precision.py [--sets coco-sample panoptic-sample ...]
        [--per-stratum 12] [--seed 0] [--out /tmp/judged] [--set plan.x=y] [--filter people]
        [--facts interaction depth contrast] [--new-since /tmp/judged-before]

For each set it builds a release in-process (engine.build), samples it with engine.verify
(stratified tier x cardinality, pictures in <out>/<set>/report/items/), and matches the sample
against the verdict files in bench/judgements/<set>.csv. Verdicts are keyed by what a person
judged — image, target instances, tier, cardinality and text — not by the release id, so they
carry over to later builds that produce the same instruction; a changed instruction needs a new
verdict. Items without one are written to <out>/<set>/to_judge.csv (with their picture paths):
look at each picture, decide whether the text picks out exactly the highlighted mask(s) for a
reader who has not seen the facts, and append a row to the verdict file.

`--filter people` keeps only the sampled items whose targets are people (use a large
--per-stratum: the filter applies after sampling).

With --new-since OUT, every accepted positive instruction that the release built earlier under
OUT (same photos, the code before a change) does not hold is pictured and counted, stratum
"new": what a planner or generator change added.

With --facts, every instruction whose program uses one of the named instance fact types
(interaction: riding / holding, depth: in front of / behind, contrast: a negated relation) is
pictured and counted, one stratum per fact type.

Prints, per set and stratum, judged / correct / precision with its 95% Wilson interval, and the
overall figure last.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.build import main as build_main  # noqa: E402
from engine.verify.cli import main as verify_main  # noqa: E402
from engine.verify.sample import item_id  # noqa: E402
from engine.verify.stats import wilson  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
JUDGEMENTS = ROOT / "bench" / "judgements"
COLUMNS = ["image_id", "target_ids", "tier", "cardinality", "text", "verdict", "reason", "note"]
# name -> (source, images folder or None), under ../shared/data
SETS = {
    "coco-sample": ("coco-sample", None),
    "panoptic-sample": ("panoptic-sample", None),
    "custom/crystl_bottles": ("custom/crystl_bottles/test", None),
    "custom/fruits_nuts": ("custom/fruits_nuts/data/trainval.json", "custom/fruits_nuts/data/images"),
    "custom/fruits_yoloseg": ("custom/fruits_yoloseg", None),
}
DEFAULT_SETS = tuple(SETS)


def key(image_id: str, target_ids, tier: str, cardinality: str, text: str) -> tuple:
    ids = target_ids if isinstance(target_ids, str) else " ".join(sorted(target_ids))
    return image_id, ids, tier, cardinality, text.strip()


def read_verdicts(path: Path) -> dict[tuple, dict]:
    if not path.exists():
        return {}
    out = {}
    with path.open(newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            if row["verdict"] not in ("correct", "wrong"):
                raise SystemExit(f"{path}:{n}: verdict must be correct or wrong, got {row['verdict']!r}")
            out[key(row["image_id"], row["target_ids"], row["tier"], row["cardinality"], row["text"])] = row
    return out


# instance fact types (issue 14), by the relation names / constraint kinds that say them
FACT_TYPES = {"interaction": ("riding", "holding"), "depth": ("in_front_of", "behind"), "contrast": ("not_relation",)}


def fact_types(program: str) -> set[str]:
    """The instance fact types a program uses (any depth: a related object's own program too)."""
    found = set()

    def walk(constraints):
        for c in constraints:
            for name, marks in FACT_TYPES.items():
                if c.get("rel") in marks or c.get("kind") in marks:
                    found.add(name)
            if c.get("obj"):
                walk(c["obj"])
    walk(json.loads(program))
    return found


def fact_items(release: Path, out: Path, facts: list[str]) -> pd.DataFrame:
    """Every accepted instruction using one of `facts`, with a picture: the photo with the targets
    tinted beside the plain photo (what engine.verify draws, for these items only)."""
    m = pd.read_parquet(release / "manifest.parquet")
    return picture_items(release, out, m[[bool(fact_types(p) & set(facts)) for p in m["program"]]], "facts")


def new_items(release: Path, out: Path, base: Path) -> pd.DataFrame:
    """Every accepted positive instruction of `release` that the base release (another build of the
    same photos, e.g. before a planner change) does not hold, with a picture: judge what a change
    added, not a sample of what it left alone."""
    m = pd.read_parquet(release / "manifest.parquet")
    b = pd.read_parquet(base / "manifest.parquet")
    old = {key(r.image_id, list(r.target_ids), r.tier, r.cardinality, r.text) for r in b.itertuples(index=False)}
    m = m[[r.cardinality != "negative" and key(r.image_id, list(r.target_ids), r.tier, r.cardinality, r.text) not in old
           for r in m.itertuples(index=False)]]
    return picture_items(release, out, m, "new")


def picture_items(release: Path, out: Path, m: pd.DataFrame, stratum: str) -> pd.DataFrame:
    import numpy as np
    from PIL import Image

    from engine.scene import masks
    work = out / "work" / "ingest"
    images = pd.read_parquet(work / "images.parquet").set_index("image_id")
    instances = pd.read_parquet(work / "instances.parquet").set_index("instance_id")
    release_id = json.loads((release / "_RELEASE.json").read_text())["release_id"]
    pics = out / "report" / stratum
    pics.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in m.itertuples(index=False):
        img = images.loc[r.image_id]
        w, h = int(img["width"]), int(img["height"])
        rgb = np.asarray(Image.open(img["uri"]).convert("RGB").resize((w, h)), dtype=np.float32)
        tinted = rgb.copy()
        for t in r.target_ids:
            mk = masks.decode(instances.loc[t, "rle"], h, w)
            tinted[mk] = 0.45 * tinted[mk] + 0.55 * np.array([255, 0, 255])
        both = Image.new("RGB", (2 * w + 10, h), "white")
        both.paste(Image.fromarray(tinted.astype(np.uint8)), (0, 0))
        both.paste(Image.fromarray(rgb.astype(np.uint8)), (w + 10, 0))
        both.thumbnail((1400, 700))
        path = pics / f"{r.instruction_id}.png"
        both.save(path)
        rows.append({"item_id": item_id(release_id, r.instruction_id), "tier": r.tier, "cardinality": r.cardinality,
                     "text": r.text, "stratum": stratum, "picture": str(path.relative_to(out / "report"))})
    return pd.DataFrame(rows, columns=["item_id", "tier", "cardinality", "text", "stratum", "picture"])


def run_set(name: str, args) -> dict[str, list[int]]:
    out = Path(args.out) / name.replace("/", "_")
    release = out / "release"
    overrides = [x for o in args.overrides for x in ("--set", o)]
    if args.rebuild and release.exists():
        shutil.rmtree(release)   # our own scratch copy; releases are immutable, so make a new one
    if not (release / "_RELEASE.json").exists():
        source, images = SETS.get(name, (name, None))
        rc = build_main(["--source", str(SHARED / source), *(["--images", str(SHARED / images)] if images else []),
                         "--output", str(release), "--workdir", str(out / "work"), *overrides])
        if rc:
            raise SystemExit(f"build of {name} failed ({rc})")
    report = out / "report"
    if args.new_since:
        items = new_items(release, out, Path(args.new_since) / name.replace("/", "_") / "release")
    elif args.facts:
        items = fact_items(release, out, args.facts)
    else:
        verify_main([str(release), "--per-stratum", str(args.per_stratum), "--seed", str(args.seed),
                     "--format", "png", "--out", str(report), "--verdicts", str(out / "verdicts")])
        items = pd.read_csv(report / "labels_template.csv", dtype=str, keep_default_na=False)
    verdicts = read_verdicts(JUDGEMENTS / f"{name.replace('/', '_')}.csv")
    m = pd.read_parquet(release / "manifest.parquet")
    # by the sample's item id: the same text ("person") in two images is two items
    release_id = json.loads((release / "_RELEASE.json").read_text())["release_id"]
    by_item = {item_id(release_id, r.instruction_id): r for r in m.itertuples(index=False)}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    todo = []
    considered = 0
    for it in items.itertuples(index=False):
        r = by_item[it.item_id]
        if args.filter == "people" and r.category != "person":
            continue
        strata = [it.stratum]
        if args.facts:
            strata = sorted(fact_types(r.program) & set(args.facts))
            if not strata:
                continue
        considered += 1
        k = key(r.image_id, list(r.target_ids), r.tier, r.cardinality, r.text)
        v = verdicts.get(k)
        if v is None:
            todo.append({"image_id": k[0], "target_ids": k[1], "tier": k[2], "cardinality": k[3], "text": k[4],
                         "verdict": "", "reason": "", "note": "", "picture": str(report / it.picture)})
            continue
        for stratum in strata:
            counts[stratum][0] += 1
            counts[stratum][1] += v["verdict"] == "correct"
        if args.show_wrong and v["verdict"] == "wrong":
            print(f"  wrong [{it.stratum}] {r.image_id}: {r.text!r} ({v['reason']}: {v['note']})")
    if todo:
        pd.DataFrame(todo).to_csv(out / "to_judge.csv", index=False)
    print(f"\n## {name}: {considered} sampled" + (f" ({args.filter})" if args.filter else "")
          + f", {considered - len(todo)} judged, {len(todo)} to judge"
          + (f" ({out / 'to_judge.csv'})" if todo else ""))
    for stratum in sorted(counts):
        n, k = counts[stratum]
        lo, hi = wilson(k, n)
        print(f"  {stratum:20s} {k:4d}/{n:<4d} precision {k / n:.3f}  95% [{lo:.3f}, {hi:.3f}]")
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    ap.add_argument("--per-stratum", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/judged")
    ap.add_argument("--rebuild", action="store_true", help="rebuild releases that exist")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--filter", choices=["people"], help="judge only items about people")
    ap.add_argument("--new-since", metavar="OUT",
                    help="judge every accepted instruction not in the release under OUT/<set>/release "
                         "(an earlier run of this script, e.g. before a planner change)")
    ap.add_argument("--facts", nargs="+", choices=sorted(FACT_TYPES), default=[],
                    help="judge every instruction using these instance fact types, one stratum per type")
    ap.add_argument("--show-wrong", action="store_true", help="list the sampled items judged wrong, with notes")
    args = ap.parse_args()
    total: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name in args.sets:
        for stratum, (n, k) in run_set(name, args).items():
            total[stratum][0] += n
            total[stratum][1] += k
    print("\n## all sets")
    for stratum in sorted(total):
        n, k = total[stratum]
        lo, hi = wilson(k, n)
        print(f"  {stratum:20s} {k:4d}/{n:<4d} precision {k / n:.3f}  95% [{lo:.3f}, {hi:.3f}]")
    n = sum(v[0] for v in total.values())
    k = sum(v[1] for v in total.values())
    if n:
        lo, hi = wilson(k, n)
        print(f"  {'overall':20s} {k:4d}/{n:<4d} precision {k / n:.3f}  95% [{lo:.3f}, {hi:.3f}]")


if __name__ == "__main__":
    main()
