"""Release conformance: replay what SAM3-I's trainer and SAM3's SA-Co reader do with every
export file of a release, and report each entry that would crash or mis-train.

Replayed behaviour (read from debby-0527/SAM3-I @9d3a4c7 and facebookresearch/sam3; no code
of theirs is used here):
- loading (`Sam3ImageDataset` + `COCO_FROM_JSON`): the file is read as JSON; every `images[]`
  entry becomes one query per category of the file, in category-id order, whose targets are the
  entry's annotations of that category and whose text is the entry's `text_inst_input`;
  annotations need a 4-number `bbox` and a segmentation that decodes (polygon or RLE);
- train transforms (`FilterCrowds`): annotations with `iscrowd` are removed from the targets
  while the query stays the same;
- `Sam3Image.forward`: `random.choice(text_inst_input[k])` for the keys of the file's stage
  (`1_1` simple_query, `1_2` complex_query, `3` concept, simple_query, complex_query), with
  `concept[0]` used as the class label in stage 3;
- evaluation: a whole file is scored in one mode (1to1: top-1 mask; multi_inst: union);
  negatives by no-target accuracy. Oracle predictions (the target masks) must score 100;
- SA-Co reader (`SAM3_EVAL_API_FROM_JSON_NP`): `int(queried_category)`, `text_input`.

A problem is reported for: an entry that would crash (empty sampled tier, bad bbox or mask,
unparsable `queried_category`, dangling ids), a contradictory query (an entry turned into a
query whose targets are not the entry's targets, or into several queries), a target changed
by crowd filtering, a `concept[0]` that is not the one canonical spelling of its category, a
file mixing cardinalities or negatives, a file that is not ASCII-safe JSON, and a file listed
for a stage that has no entry. Run it with `python -m engine.verify RELEASE --integrity` or
`python -m engine.verify.conformance RELEASE`.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pycocotools import mask as mask_utils

from engine import storage
from engine.release.sam3i_export import STAGE_DIRS, STAGE_KEYS
from engine.verify.sam3i_metrics import evaluate, headline, oracle_predictions

MAX_PER_KIND = 5        # problems of one kind listed per file; the rest are counted


@dataclass
class ConformanceReport:
    files: dict[str, dict] = field(default_factory=dict)    # path -> {"kind", "stages", "entries", "queries", "oracle"}
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"files": self.files, "problems": self.problems}


class _Problems:
    """Collects a file's problems, listing a few of each kind and counting the rest."""

    def __init__(self, path: str):
        self.path = path
        self.by_kind: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, text: str) -> None:
        self.by_kind[kind].append(text)

    def lines(self) -> list[str]:
        out = []
        for kind, items in self.by_kind.items():
            out += [f"{self.path}: {kind}: {t}" for t in items[:MAX_PER_KIND]]
            if len(items) > MAX_PER_KIND:
                out.append(f"{self.path}: {kind}: ... {len(items) - MAX_PER_KIND} more ({len(items)} in all)")
        return out


def decode_json(data: bytes, probs: _Problems):
    try:
        data.decode("ascii")
    except UnicodeDecodeError as e:
        probs.add("encoding", f"byte {e.start} is not ASCII: a reader using the platform's default encoding "
                              f"(e.g. cp1252) misreads it; write it ensure_ascii")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        probs.add("crash", f"not valid UTF-8 JSON ({e})")
        return None


def _segmentation_ok(seg, h: int, w: int) -> str | None:
    try:
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, h, w)
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), str):
            if list(seg.get("size", [])) != [h, w]:
                return f"RLE size {seg.get('size')} is not the image size [{h}, {w}]"
            rle = {"size": seg["size"], "counts": seg["counts"].encode()}
        else:
            return f"segmentation of type {type(seg).__name__} is neither polygon nor RLE"
        mask_utils.decode(rle)
    except Exception as e:
        return f"segmentation does not decode ({type(e).__name__}: {e})"
    return None


def _entries(coco: dict, probs: _Problems) -> tuple[list[dict], dict[int, list[dict]], dict[int, str]] | None:
    """Structural replay of the COCO loader: entries, annotations per entry, categories."""
    try:
        images, anns, cats = coco["images"], coco["annotations"], coco["categories"]
        categories = {int(c["id"]): str(c["name"]) for c in cats}
    except (KeyError, TypeError, ValueError) as e:
        probs.add("crash", f"not a COCO file the loader reads ({type(e).__name__}: {e})")
        return None
    by_id: dict[int, dict] = {}
    for img in images:
        try:
            iid = img["id"]
            _ = (str(img["file_name"]), int(img["width"]), int(img["height"]))
        except (KeyError, TypeError, ValueError) as e:
            probs.add("crash", f"entry {img.get('id') if isinstance(img, dict) else img!r}: "
                               f"missing or bad id/file_name/width/height ({type(e).__name__}: {e})")
            continue
        if iid in by_id:
            probs.add("crash", f"entry id {iid} appears twice")
        by_id[iid] = img
    per_entry: dict[int, list[dict]] = defaultdict(list)
    for a in anns:
        img = by_id.get(a.get("image_id"))
        where = f"annotation {a.get('id')}"
        if img is None:
            probs.add("crash", f"{where} refers to entry {a.get('image_id')}, which the file does not hold")
            continue
        if a.get("category_id") not in categories:
            probs.add("crash", f"{where}: category_id {a.get('category_id')} is not in categories")
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            probs.add("crash", f"{where}: bbox {bbox!r} is not 4 numbers")
        bad = _segmentation_ok(a.get("segmentation"), int(img["height"]), int(img["width"]))
        if bad:
            probs.add("crash", f"{where} of entry {img['id']}: {bad}")
        per_entry[img["id"]].append(a)
    return list(by_id.values()), per_entry, categories


def _check_queried_category(img: dict, probs: _Problems) -> None:
    try:
        int(img["queried_category"])
    except (KeyError, TypeError, ValueError):
        probs.add("queried_category", f"entry {img['id']}: queried_category {img.get('queried_category')!r} "
                                      f"is not an integer string; SAM3's reader does int(queried_category)")


def _kind(n: int) -> str:
    return "negative" if n == 0 else "1to1" if n == 1 else "multi"


def check_sam3i_file(path: str, coco: dict, stages: list[str], eval_mode: str | None,
                     probs: _Problems) -> dict:
    """Replay loader, FilterCrowds, forward per stage and oracle evaluation on one SAM3-I file."""
    parsed = _entries(coco, probs)
    if parsed is None:
        return {}
    entries, per_entry, categories = parsed
    if not entries:
        probs.add("empty", f"holds no entry, yet it is given to stage(s) {stages}")
    queries = contradictory = 0
    spellings: dict[str, set[str]] = defaultdict(set)
    for img in entries:
        eid, anns = img["id"], per_entry.get(img["id"], [])
        _check_queried_category(img, probs)
        # COCO_FROM_JSON: one query per category of the file
        targets = {c: [a for a in anns if a.get("category_id") == c] for c in sorted(categories)}
        queries += len(targets)
        if len(targets) > 1:
            probs.add("contradictory query", f"entry {eid} becomes {len(targets)} queries (one per category of "
                                              f"the file), all carrying its instructions")
        for c, t in targets.items():
            if anns and len(t) != len(anns):
                contradictory += 1
                probs.add("contradictory query", f"entry {eid}: the query for category {categories[c]!r} has "
                                                  f"{len(t)} of the entry's {len(anns)} target(s)")
        # FilterCrowds
        crowd = [a.get("id") for a in anns if a.get("iscrowd")]
        if crowd:
            probs.add("crowd", f"entry {eid}: FilterCrowds removes target annotation(s) {crowd} while the "
                               f"instruction still asks for them")
        # forward: random.choice per stage
        tii = img.get("text_inst_input")
        if not isinstance(tii, dict):
            probs.add("crash", f"entry {eid}: text_inst_input is {type(tii).__name__}, not a dict")
            continue
        for stage in stages:
            for key in STAGE_KEYS[stage]:
                texts = tii.get(key)
                if not isinstance(texts, list) or not texts:
                    probs.add("crash", f"entry {eid}: stage {stage} draws random.choice(text_inst_input[{key!r}]) "
                                       f"from {texts!r}: IndexError")
                elif not all(isinstance(t, str) and t.strip() for t in texts):
                    probs.add("crash", f"entry {eid}: text_inst_input[{key!r}] holds an empty or non-string text")
        if "3" in stages and isinstance(tii.get("concept"), list) and tii["concept"]:
            concept0 = tii["concept"][0]
            spellings[str(img.get("category", img.get("queried_category")))].add(concept0)
            if "category" in img and concept0 != img["category"]:
                probs.add("concept[0]", f"entry {eid}: concept[0] {concept0!r} is not its category "
                                        f"{img['category']!r}, the class label stage 3 anchors to")
    for cat, names in sorted(spellings.items()):
        if len(names) > 1:
            probs.add("concept[0]", f"category {cat!r} is spelled {sorted(names)} in concept[0] of its entries; "
                                    f"stage 3 uses concept[0] as one class label")
    # cardinalities: a file is scored in one mode
    kinds = {_kind(len(per_entry.get(img["id"], []))) for img in entries}
    labels = {img.get("cardinality") for img in entries if "cardinality" in img}
    if len(kinds) > 1 or len(labels) > 1:
        probs.add("mixed cardinality", f"mixes {sorted(kinds)} entries"
                                       + (f" (cardinality {sorted(labels)})" if len(labels) > 1 else "")
                                       + ": no single eval mode scores it right")
    modes = [eval_mode] if eval_mode else (["no_target"] if kinds == {"negative"} else ["1to1", "multi_inst"])
    oracle = {}
    for mode in modes:
        if not entries:
            break
        if mode != "no_target" and kinds == {"negative"}:
            continue
        scores = evaluate(coco, oracle_predictions(coco), mode)
        oracle[mode] = scores
        if headline(scores) < 100.0 - 1e-9:
            probs.add("oracle", f"perfect predictions score {headline(scores):.1f} "
                                f"({'no-target accuracy' if mode == 'no_target' else 'gIoU'}) in mode {mode}")
        if mode == "no_target" and kinds != {"negative"}:
            probs.add("oracle", "scored by no-target accuracy but holds entries with targets")
    return {"entries": len(entries), "queries": queries, "contradictory_queries": contradictory, "oracle": oracle}


def check_saco_file(path: str, coco: dict, probs: _Problems) -> dict:
    parsed = _entries(coco, probs)
    if parsed is None:
        return {}
    entries, per_entry, _ = parsed
    for img in entries:
        eid = img["id"]
        _check_queried_category(img, probs)
        if not isinstance(img.get("text_input"), str) or not img["text_input"].strip():
            probs.add("crash", f"entry {eid}: text_input {img.get('text_input')!r} is not a noun phrase")
        for flag in ("is_instance_exhaustive", "is_pixel_exhaustive"):
            if img.get(flag) not in (0, 1, True, False):
                probs.add("exhaustiveness", f"entry {eid}: {flag} is {img.get(flag)!r}, not 0/1")
        anns = per_entry.get(eid, [])
        if any(a.get("iscrowd") for a in anns) and img.get("is_instance_exhaustive"):
            probs.add("crowd", f"entry {eid}: holds a crowd region but claims is_instance_exhaustive")
        for a in anns:
            b = a.get("bbox") or []
            if len(b) == 4 and not all(-1e-6 <= v <= 1 + 1e-6 for v in b):
                probs.add("bbox", f"annotation {a.get('id')}: bbox {b} is not normalised to the image size")
    return {"entries": len(entries), "negatives": sum(1 for i in entries if not per_entry.get(i["id"]))}


def _stage_of_path(path: str) -> list[str] | None:
    parts = PurePosixPath(path).parts
    for stage, d in STAGE_DIRS.items():
        if d in parts:
            return [stage]
    return None


def _is_sam3i(coco) -> bool:
    return isinstance(coco, dict) and any(isinstance(i, dict) and "text_inst_input" in i
                                          for i in coco.get("images", [])[:50])


def check_release(release) -> ConformanceReport:
    """Check every export file the release lists (SAM3-I-shaped JSON anywhere, SA-Co files)."""
    report = ConformanceReport()
    listed = {}
    try:
        listed = {r["path"]: r for r in release.sam3i_datasets["files"]}
    except Exception as e:
        report.problems.append(f"sam3i/datasets.json: cannot read the dataset list ({type(e).__name__}: {e})")
    files = sorted(p for p in release.info.get("files", {}) if p.endswith(".json"))
    for path in listed:
        if path not in release.info.get("files", {}):
            report.problems.append(f"{path}: listed in sam3i/datasets.json but not in the release")
            files.append(path)
    for path in files:
        if path in ("index.json", "index-train.json", "index-val.json", "_RELEASE.json") \
                or path.startswith("sam3i/categories") or path.startswith("sam3i/datasets"):
            continue
        probs = _Problems(path)
        try:
            data = storage.read_bytes(release.file_uri(path))
        except Exception as e:
            report.problems.append(f"{path}: cannot read ({type(e).__name__}: {e})")
            continue
        coco = decode_json(data, probs)
        if coco is None:
            report.problems += probs.lines()
            continue
        if path.startswith("saco/"):
            info = {"kind": "saco", **check_saco_file(path, coco, probs)}
        elif _is_sam3i(coco) or path.startswith("sam3i/"):
            row = listed.get(path)
            stages = [row["stage"]] if row else (_stage_of_path(path) or list(STAGE_KEYS))
            if row is None and path.startswith("sam3i/"):
                probs.add("unlisted", "not in sam3i/datasets.json, so no stage config points at it")
            info = {"kind": "sam3i", "stages": stages,
                    **check_sam3i_file(path, coco, stages, row["eval_mode"] if row else None, probs)}
        else:
            continue
        report.files[path] = info
        report.problems += probs.lines()
    if not report.files:
        report.problems.append("the release holds no SAM3-I or SA-Co export file")
    return report


def main(argv: list[str] | None = None) -> int:
    from engine.release.publish import open_release

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m engine.verify.conformance RELEASE_URI", file=sys.stderr)
        return 2
    report = check_release(open_release(argv[0]))
    for path, info in report.files.items():
        oracle = ", ".join(f"{m} {headline(s):.1f}" for m, s in info.get("oracle", {}).items())
        print(f"{path}: {info.get('entries', 0)} entries" + (f", oracle {oracle}" if oracle else ""))
    for p in report.problems:
        print(f"PROBLEM {p}")
    print("conformance: OK" if report.ok else f"conformance: {len(report.problems)} problem(s)")
    return 0 if report.ok else 4


if __name__ == "__main__":
    raise SystemExit(main())
