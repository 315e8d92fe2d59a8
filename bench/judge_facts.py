"""Judge the instance facts themselves, fact by fact, across every shared photo set.

    .venv/bin/python bench/judge_facts.py gather [--sets ...] [--types interaction depth contrast]
        [--per-type 0] [--out /tmp/judged]
    .venv/bin/python bench/judge_facts.py record <out>/facts/to_judge.csv --wrong "N:note" ...

An instruction can only be as right as the fact under it, and the stratified sample of a
release holds few instructions that use a rare fact, so the facts are judged on their own too:
`gather` builds (or reuses) each set's release the way bench/judged_precision.py does, and
collects every fact of each type the masks decided:
- interaction: (person, riding / holding, object) triples;
- depth: (front, in_front_of, back), one per pair (`behind` is the same fact read the other way);
- contrast: (instance, not_<relation>, category) wherever the planner's reader is sure that an
  instance does not do what another of its kind does ("the person not holding an umbrella"):
  what a `not_relation` constraint stands on, for instances large enough to be a target.
Each fact gets a picture: the photo with the subject tinted magenta and the object(s) cyan,
beside the plain photo, and its statement in words. Facts with a verdict in
bench/judgements/facts_issue14.csv are counted, the rest go to <out>/facts/to_judge.csv, with
contact sheets from bench/judge_sheet.py (`sheets`). `record` appends every item of that CSV
to the verdict file (the numbers given with --wrong as wrong, the rest as correct). Prints per
type: facts found, judged, correct, precision with its 95% Wilson interval.
`gather --candidates` pictures instead the touching person-object pairs whose category pair has
an interaction prior but which the masks left undecided; `record --candidates` stores whether
the relation does hold (verdict correct) in bench/judgements/facts_candidates_issue14.csv, and
`gather` then prints the interaction recall over those pairs.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine.lexicon.interactions import INTERACTIONS  # noqa: E402
from engine.verify.stats import wilson  # noqa: E402

VERDICTS = ROOT / "bench" / "judgements" / "facts_issue14.csv"
# undecided pairs judged for recall: verdict correct = the relation does hold in the picture
CANDIDATES = ROOT / "bench" / "judgements" / "facts_candidates_issue14.csv"
COLUMNS = ["image_id", "subject_id", "subject", "relation", "object_id", "object", "verdict", "note"]
TYPES = ("interaction", "depth", "contrast")
MAGENTA, CYAN = (255, 0, 255), (0, 230, 255)


def fact_type(relation: str) -> str | None:
    if relation in INTERACTIONS:
        return "interaction"
    if relation == "in_front_of":
        return "depth"
    if relation.startswith("not_"):
        return "contrast"
    return None


def _tables(work: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    def cat(kind):
        parts = sorted(work.glob(f"cfg-*/units/{kind}/*.parquet"))
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else pd.DataFrame()
    return cat("facts"), cat("relations")


def contrast_facts(facts: pd.DataFrame, relations: pd.DataFrame) -> list[dict]:
    """(t, not_rel, category C) where another instance of t's kind has `rel` with a C and a reader
    is sure t has it with none (the planner's margin reading of a not_relation constraint)."""
    from engine.config import PlanConfig
    from engine.language.margins import evaluate_with_margin
    from engine.language.plan import INSTANCE_RELATIONS, eligible_ids
    from engine.language.programs import Constraint as C, Program, Scene
    out = []
    for image_id, rr in relations.groupby("image_id"):
        scene = Scene.from_tables(image_id, facts, relations)
        inst = scene.instances
        targets = eligible_ids(list(inst.values()), PlanConfig())   # what an instruction may be about
        pairs = sorted({(inst[s]["category"], rel, inst[o]["category"]) for s, rel, o in scene.relations
                        if rel in INSTANCE_RELATIONS and inst[s]["category"] != inst[o]["category"]})
        for kind, rel, ocat in pairs:
            prog = Program((C("category", kind), C("not_relation", rel=rel, obj=Program((C("category", ocat),)))))
            sure, _ = evaluate_with_margin(prog, scene, 0.01, 0.10)
            for t in sorted(sure):
                if t not in targets:
                    continue
                out.append({"image_id": image_id, "subject_id": t, "subject": kind, "relation": f"not_{rel}",
                            "object_id": " ".join(sorted(i for i, f in inst.items() if f["category"] == ocat)),
                            "object": ocat})
    return out


def set_facts(out: Path) -> list[dict]:
    facts, relations = _tables(out / "work")
    if relations.empty:
        return []
    cat = facts.set_index("instance_id")["category"]
    rows = [{"image_id": r.image_id, "subject_id": r.subject_id, "subject": cat[r.subject_id], "relation": r.relation,
             "object_id": r.object_id, "object": cat[r.object_id]}
            for r in relations.itertuples(index=False) if fact_type(r.relation) in ("interaction", "depth")]
    return rows + contrast_facts(facts, relations)


def candidates(out: Path) -> list[dict]:
    """Touching (subject, object) pairs whose categories have an interaction prior but whose
    interaction the masks did not decide: what a reader might still call riding or holding.
    Judged for recall (does the relation hold in the picture?), never counted as facts."""
    from engine.lexicon.interactions import INTERACTION_PRIORS
    facts, relations = _tables(out / "work")
    if relations.empty:
        return []
    f = facts.set_index("instance_id")
    have = set(zip(relations["subject_id"], relations["relation"], relations["object_id"]))
    rows = []
    for r in relations[relations["relation"] == "touching"].itertuples(index=False):
        prior = INTERACTION_PRIORS.get((f.loc[r.subject_id, "category"], f.loc[r.object_id, "category"]))
        if prior is None or f.loc[r.subject_id, "iscrowd"] or (r.subject_id, prior[0], r.object_id) in have:
            continue
        rows.append({"image_id": r.image_id, "subject_id": r.subject_id, "subject": f.loc[r.subject_id, "category"],
                     "relation": prior[0], "object_id": r.object_id, "object": f.loc[r.object_id, "category"]})
    return rows


def picture(out: Path, row: dict, target: Path) -> None:
    import numpy as np
    from PIL import Image

    from engine.scene import masks
    work = out / "work" / "ingest"
    images = pd.read_parquet(work / "images.parquet").set_index("image_id")
    instances = pd.read_parquet(work / "instances.parquet").set_index("instance_id")
    img = images.loc[row["image_id"]]
    w, h = int(img["width"]), int(img["height"])
    rgb = np.asarray(Image.open(img["uri"]).convert("RGB").resize((w, h)), dtype=np.float32)
    tinted = rgb.copy()
    for ids, colour in ((row["object_id"].split(), CYAN), ([row["subject_id"]], MAGENTA)):
        for i in ids:
            mk = masks.decode(instances.loc[i, "rle"], h, w)
            tinted[mk] = 0.4 * tinted[mk] + 0.6 * np.array(colour)
    both = Image.new("RGB", (2 * w + 10, h), "white")
    both.paste(Image.fromarray(tinted.astype(np.uint8)), (0, 0))
    both.paste(Image.fromarray(rgb.astype(np.uint8)), (w + 10, 0))
    both.thumbnail((1400, 700))
    both.save(target)


def statement(row: dict) -> str:
    rel = row["relation"]
    if rel.startswith("not_"):
        return (f"the magenta {row['subject']} is NOT {rel[4:].replace('_', ' ')} any {row['object']} (cyan), "
                f"though another {row['subject']} is")
    return f"the magenta {row['subject']} is {rel.replace('_', ' ')} the cyan {row['object']}"


def fact_key(row: dict) -> tuple:
    return row["image_id"], row["subject_id"], row["relation"], row["object_id"]


def read_verdicts() -> dict[tuple, dict]:
    if not VERDICTS.exists():
        return {}
    with VERDICTS.open(newline="", encoding="utf-8") as f:
        return {fact_key(r): r for r in csv.DictReader(f)}


def gather(args) -> None:
    from judged_precision import SETS, run_set
    verdicts = read_verdicts()
    todo, counts = [], defaultdict(lambda: [0, 0, 0])   # type -> found, judged, correct
    pics = Path(args.out) / "facts"
    pics.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        out = Path(args.out) / name.replace("/", "_")
        if not (out / "release" / "_RELEASE.json").exists():
            run_set(name, argparse.Namespace(out=args.out, overrides=[], rebuild=False, facts=list(TYPES),
                                             filter=None, per_stratum=12, seed=0))
        per_type = defaultdict(int)
        if args.candidates:
            found = candidates(out)
            for row in found:
                target = pics / f"{len(todo):04d}.png"
                picture(out, row, target)
                todo.append({**row, "tier": "undecided", "cardinality": "recall",
                             "text": "undecided: " + statement(row) + "?", "picture": str(target)})
            print(f"{name}: {len(found)} undecided pairs")
            continue
        for row in set_facts(out):
            t = fact_type(row["relation"])
            if t not in args.types or (args.per_type and per_type[t] >= args.per_type):
                continue
            per_type[t] += 1
            counts[t][0] += 1
            v = verdicts.get(fact_key(row))
            if v is not None:
                counts[t][1] += 1
                counts[t][2] += v["verdict"] == "correct"
                continue
            target = pics / f"{len(todo):04d}.png"
            picture(out, row, target)
            todo.append({**row, "tier": "fact", "cardinality": t, "text": statement(row), "picture": str(target)})
        print(f"{name}: " + ", ".join(f"{t} {per_type[t]}" for t in args.types))
    if todo:
        pd.DataFrame(todo).to_csv(pics / ("candidates.csv" if args.candidates else "to_judge.csv"), index=False)
    if args.candidates:
        print(f"\n{len(todo)} undecided pairs pictured ({pics / 'candidates.csv'})")
        return
    print(f"\n{len(todo)} facts to judge" + (f" ({pics / 'to_judge.csv'})" if todo else ""))
    if CANDIDATES.exists() and "interaction" in args.types:
        # recall among touching pairs with a prior: decided and right, over that plus the
        # undecided pairs a viewer says do hold
        with CANDIDATES.open(newline="", encoding="utf-8") as f:
            missed = sum(r["verdict"] == "correct" for r in csv.DictReader(f))
        hit = counts["interaction"][2]
        print(f"  interaction recall on touching pairs with a prior: {hit}/{hit + missed} "
              f"(undecided pairs judged to hold: {missed}, {CANDIDATES.name})")
    for t in args.types:
        found, n, k = counts[t]
        if n:
            lo, hi = wilson(k, n)
            print(f"  {t:12s} found {found:3d}  judged {n:3d}  correct {k:3d}  precision {k / n:.3f}  "
                  f"95% [{lo:.3f}, {hi:.3f}]")
        else:
            print(f"  {t:12s} found {found:3d}  judged   0")


def record(path: Path, wrong: list[str], verdicts: Path = VERDICTS) -> None:
    with path.open(newline="", encoding="utf-8") as f:
        items = list(csv.DictReader(f))
    notes = {}
    for w in wrong:
        num, _, note = w.partition(":")
        if not 1 <= int(num) <= len(items):
            raise SystemExit(f"--wrong {w!r}: item number out of 1..{len(items)}")
        notes[int(num)] = note
    new = not verdicts.exists()
    with verdicts.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for n, item in enumerate(items, 1):
            writer.writerow({**{c: item[c] for c in COLUMNS[:6]}, "verdict": "wrong" if n in notes else "correct",
                             "note": notes.get(n, "")})
    print(f"{len(items)} fact verdicts ({len(notes)} wrong) appended to {verdicts}")


def main() -> None:
    from judged_precision import DEFAULT_SETS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gather", help="collect every decided fact, picture the unjudged ones, print precision")
    g.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    g.add_argument("--types", nargs="+", choices=TYPES, default=list(TYPES))
    g.add_argument("--per-type", type=int, default=0, help="at most this many facts per type and set (0: all)")
    g.add_argument("--out", default="/tmp/judged")
    g.add_argument("--candidates", action="store_true",
                   help="picture instead the touching pairs with an interaction prior the masks left undecided "
                        "(recall: judge whether the relation holds; verdicts go to facts_candidates_issue14.csv)")
    r = sub.add_parser("record", help="append verdicts for every item of a to_judge.csv")
    r.add_argument("to_judge")
    r.add_argument("--wrong", action="append", default=[], help="N:note for each wrong item (1-based)")
    r.add_argument("--candidates", action="store_true",
                   help="the CSV holds undecided pairs: --wrong marks those where the relation does not hold")
    args = ap.parse_args()
    if args.cmd == "gather":
        gather(args)
    else:
        record(Path(args.to_judge), args.wrong, CANDIDATES if args.candidates else VERDICTS)


if __name__ == "__main__":
    main()
