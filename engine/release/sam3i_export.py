"""Export a release to the SAM3-I trainer's COCO-style files, laid out so the trainer consumes
them as configured (behaviour read from debby-0527/SAM3-I @9d3a4c7 and facebookresearch/sam3):

- `COCO_FROM_JSON` makes one query per category *of the file* for every `images[]` entry, each
  query carrying that entry's `text_inst_input` and, as targets, the entry's annotations of that
  category. So every file has ONE category ("object", id 1) and every annotation uses it: an
  entry becomes exactly one query whose targets are all its annotations. The real category is
  kept in the extra key `category` and, as a string of its release-wide id (the form SAM3's
  readers parse with `int()`), in `queried_category`; `sam3i/categories.json` maps the ids.
- `Sam3Image.forward` draws `random.choice(text_inst_input[...])` per `inst_stage`: `1_1` from
  `simple_query`, `1_2` from `complex_query`, `3` `concept[0]` plus one simple and one complex.
  So files are written per stage, holding only entries whose sampled tiers are non-empty:
  `sam3i/stage1_1/...` (simple), `sam3i/stage1_2/...` (complex), `sam3i/stage3/...` (all three).
  `concept[0]` is always the canonical category name (stage 3 uses it as the class anchor);
  the accepted concept-tier instructions that spell it differently follow it.
- Their evaluation scores a whole file in one mode (1to1: top-1 mask; multi_inst: union), so
  cardinalities and negatives go to separate files: `<stage>/{1to1,1toN,1toAll,negative}/`.
  The file is chosen by the number of targets: 1 -> 1to1, several -> 1toAll when the planner
  labelled the target 1:All, else 1toN, none -> negative.
- The train transforms run `FilterCrowds`, which removes crowd regions from a query's targets
  while the instruction stays the same. An entry that targets a crowd region, and a 1:All entry
  whose category has a crowd region in the image (its target is not "all X"), would be changed
  by it: they are left out of these files and listed in `sam3i/datasets.json` with the reason.

Each file is `<stage dir>/<cardinality dir>/sam3i_<split>.json`, i.e. the trainer's
`<root>/<Dataset>/sam3i_{train,val}.json` with Dataset = `<stage dir>/<cardinality dir>`; a
file is only written when it has entries. Entries keep one id across every file
(`images[].id` = the manifest's `sam3i_id`), `file_name` is `<source_id>/<file name>` (the
paths `reader.extract_images` writes), and extra keys trace back to the release:
`category`, `sample_key`, `target_key`, `target_ids`, `cardinality`, `instruction_ids`
(parallel to `text_inst_input`; null for the canonical concept[0] when no accepted concept
instruction spells it so). Annotations: pixel xywh `bbox`, RLE `segmentation`, `area`,
`iscrowd` 0, `category_id` 1, plus `instance_id`.

JSON is written as UTF-8 with every non-ASCII character escaped, so any platform's default
decoding reads it. `sam3i/datasets.json` lists every file with its stage, split, cardinality,
eval mode and entry count; `sam3i/hydra_datasets.yaml` is the ready-to-paste dataset list.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from schemas.specs import TIERS

SAM3I_TIER_KEYS = {"concept": "concept", "simple": "simple_query", "complex": "complex_query"}
# the text lists Sam3Image.forward samples per inst_stage
STAGE_KEYS = {"1_1": ("simple_query",), "1_2": ("complex_query",), "3": ("concept", "simple_query", "complex_query")}
STAGE_DIRS = {"1_1": "stage1_1", "1_2": "stage1_2", "3": "stage3"}
CARDINALITY_DIRS = {"1:1": "1to1", "1:N": "1toN", "1:All": "1toAll", "negative": "negative"}
# how each file is scored: their evaluate.py modes, and no-target accuracy for negatives
EVAL_MODES = {"1to1": "1to1", "1toN": "multi_inst", "1toAll": "multi_inst", "negative": "no_target"}
FILE_CATEGORY = {"id": 1, "name": "object", "supercategory": "object"}
EXPORT_DIR = "sam3i"
SPLITS = ("train", "val")


def dumps(obj) -> bytes:
    """Canonical, ASCII-safe JSON bytes (sorted keys, non-ASCII escaped): readable as UTF-8 or
    as any ASCII-compatible platform encoding."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


def category_table(metas: Iterable[dict]) -> list[dict]:
    """Release-wide categories (every targeted category and negative concept), ids 1..K by name
    (several sources may use one id for different things)."""
    seen = CategorySeen()
    for meta in metas:
        seen.note(meta)
    return seen.table()


class CategorySeen:
    """category_table built one sample at a time, in any order: `rank` (e.g. (split index,
    sample key)) says where the sample stands in release order (train then val, each by
    sample key), and a category's supercategory is the one its first instance in that order
    gives, as when the samples are noted in order. The samples need not be kept."""

    def __init__(self):
        self.supercat: dict[str, tuple] = {}     # category -> (rank, supercategory)
        self.names: set[str] = set()
        self._n = 0

    def note(self, meta: dict, rank: tuple | None = None) -> None:
        if rank is None:
            rank, self._n = (self._n,), self._n + 1
        for inst in meta["instances"]:
            got = self.supercat.get(inst["category"])
            if got is None or rank < got[0]:
                self.supercat[inst["category"]] = (rank, inst["supercategory"])
        self.names.update(g["category"] for g in meta["targets"])

    def table(self) -> list[dict]:
        return [{"id": i, "name": n, "supercategory": self.supercat[n][1] if n in self.supercat else ""}
                for i, n in enumerate(sorted(self.names), 1)]


def file_cardinality(group: dict) -> str:
    n = len(group["target_ids"])
    if n == 0:
        return "negative"
    if n == 1:
        return "1:1"
    return "1:All" if "1:All" in group["cardinalities"] else "1:N"


def crowd_problem(group: dict, instances: dict[str, dict], cardinality: str) -> str | None:
    """Why FilterCrowds would change this target, or None."""
    crowd = [i for i in group["target_ids"] if instances[i]["iscrowd"]]
    if crowd:
        return f"targets crowd region(s) {crowd}, which FilterCrowds removes from the target"
    if cardinality == "1:All":
        same = sorted(i for i, inst in instances.items()
                      if inst["iscrowd"] and inst["category"] == group["category"])
        if same:
            return f"'all {group['category']}' while crowd region(s) {same} of that category are not in the target"
    return None


@dataclass
class Entry:
    split: str
    cardinality: str
    image: dict                                   # the images[] record
    annotations: list[dict]                        # without ids
    excluded: str | None = None
    instruction_ids: list[str] = field(default_factory=list)


def _texts(group: dict) -> tuple[dict, dict]:
    canonical = group["category"]
    texts = {k: [] for k in SAM3I_TIER_KEYS.values()}
    ids = {k: [] for k in SAM3I_TIER_KEYS.values()}
    texts["concept"].append(canonical)
    ids["concept"].append(None)
    for tier in TIERS:
        key = SAM3I_TIER_KEYS[tier]
        for r in group["instructions"][tier]:
            if tier == "concept" and r["text"].strip() == canonical:
                ids["concept"][0] = r["instruction_id"]
                continue
            texts[key].append(r["text"])
            ids[key].append(r["instruction_id"])
    return texts, ids


def build_entries(metas_by_split: dict[str, Iterable[dict]], categories: list[dict]) -> list[Entry]:
    """One entry per (image, target) of every split, ids 1.. in (split, sample, target) order."""
    return list(iter_entries(metas_by_split, categories))


def iter_entries(metas_by_split: dict[str, Iterable[dict]], categories: list[dict]) -> Iterator[Entry]:
    """build_entries one entry at a time (the metas may be read back from disk as they go)."""
    cat_id = {c["name"]: c["id"] for c in categories}
    n = 0
    for split in SPLITS:
        for meta in metas_by_split.get(split, []):
            img = meta["image"]
            by_id = {inst["instance_id"]: inst for inst in meta["instances"]}
            for group in meta["targets"]:
                card = file_cardinality(group)
                texts, ids = _texts(group)
                n += 1
                record = {
                    "id": n,
                    "file_name": f"{img['source_id']}/{img['file_name']}",
                    "width": img["width"],
                    "height": img["height"],
                    "queried_category": str(cat_id[group["category"]]),
                    "category": group["category"],
                    "text_inst_input": texts,
                    "instruction_ids": ids,
                    "sample_key": img["sample_key"],
                    "target_key": group["target_key"],
                    "target_ids": group["target_ids"],
                    "cardinality": card,
                }
                anns = [{
                    "image_id": record["id"],
                    "category_id": FILE_CATEGORY["id"],
                    "bbox": by_id[i]["bbox"],
                    "segmentation": by_id[i]["segmentation"],
                    "iscrowd": 0,
                    "area": by_id[i]["area"],
                    "instance_id": i,
                } for i in group["target_ids"]]
                iids = [i for tier in TIERS for i in (r["instruction_id"] for r in group["instructions"][tier])]
                yield Entry(split, card, record, anns, crowd_problem(group, by_id, card), iids)


def file_path(stage: str, cardinality: str, split: str) -> str:
    return f"{EXPORT_DIR}/{STAGE_DIRS[stage]}/{CARDINALITY_DIRS[cardinality]}/sam3i_{split}.json"


def export_files(entries: list[Entry]) -> tuple[dict[str, dict], list[dict]]:
    """{relative path: COCO dict} for every non-empty (stage, cardinality, split) file, and the
    datasets list (one row per file)."""
    files: dict[str, dict] = {}
    rows: list[dict] = []
    for stage, keys in STAGE_KEYS.items():
        for card, card_dir in CARDINALITY_DIRS.items():
            for split in SPLITS:
                chosen = [e for e in entries if e.split == split and e.cardinality == card and e.excluded is None
                          and all(e.image["text_inst_input"][k] for k in keys)]
                if not chosen:
                    continue
                anns = []
                for e in chosen:   # ids 1.. over the file (one per annotation, as COCO indexes them)
                    anns += [{"id": len(anns) + k, **a} for k, a in enumerate(e.annotations, 1)]
                path = file_path(stage, card, split)
                files[path] = {"images": [e.image for e in chosen], "annotations": anns,
                               "categories": [FILE_CATEGORY]}
                rows.append({"path": path, "stage": stage, "split": split, "cardinality": card,
                             "dataset": f"{STAGE_DIRS[stage]}/{card_dir}", "eval_mode": EVAL_MODES[card_dir],
                             "entries": len(chosen), "annotations": len(anns)})
    return files, rows


def hydra_yaml(rows: list[dict], release_id: str) -> str:
    """The dataset list for the SAM3-I Hydra configs: per stage, the train datasets and the val
    datasets with the eval mode each must be scored in."""
    lines = [
        f"# SAM3-I datasets of sam3i-engine release {release_id}; paste into your SAM3-I config.",
        "# Set paths.sam3i_engine_release to this release folder and extract the images into",
        "# <release>/images (python -c 'from engine.release.reader import extract_images; "
        "extract_images(\"<release>\", \"<release>/images\")').",
        "# Each entry is a Sam3ImageDataset read with COCO_FROM_JSON; use `train` under",
        "# trainer.data.train for that inst_stage and `val` for evaluation in the given eval_mode",
        "# (1to1: top-1 mask; multi_inst: union of masks; no_target: share of entries with no mask).",
        "paths:",
        "  sam3i_engine_release: ???",
        "sam3i_engine:",
    ]
    for stage in STAGE_KEYS:
        lines.append(f"  stage_{stage}:  # inst_stage {stage}: samples {', '.join(STAGE_KEYS[stage])}")
        for split in SPLITS:
            chosen = [r for r in rows if r["stage"] == stage and r["split"] == split]
            if not chosen:
                lines.append(f"    {split}: []")
                continue
            lines.append(f"    {split}:")
            for r in chosen:
                lines += [
                    f"      - _target_: sam3.train.data.sam3_image_dataset.Sam3ImageDataset"
                    f"  # {r['dataset']}: {r['entries']} entries, eval_mode {r['eval_mode']}",
                    "        img_folder: ${paths.sam3i_engine_release}/images",
                    f"        ann_file: ${{paths.sam3i_engine_release}}/{r['path']}",
                    "        coco_json_loader:",
                    "          _target_: sam3.train.data.coco_json_loaders.COCO_FROM_JSON",
                    "          include_negatives: true",
                    "          _partial_: true",
                    f"        training: {'true' if split == 'train' else 'false'}",
                ]
    return "\n".join(lines) + "\n"


def write_export(root, metas_by_split: dict[str, Iterable[dict]], categories: list[dict], release_id: str) -> dict:
    """Write `sam3i/` under the staging root, entry by entry (engine/release/streamed.py: the
    files are byte-identical to `dumps` of export_files' dicts, and hashed while written).
    Returns {"first_entry": sample key -> id of its first entry (its targets' entries follow in
    target-key order; per sample, not per instruction, so it stays small), "entries": {split: count}, "files": rows,
    "excluded": count, "hashes": {relative path: {"sha256", "size"}}}."""
    from engine.release.streamed import CocoWriter, write_hashed

    root = Path(root)
    writers: dict[tuple[str, str, str], CocoWriter] = {}
    first_entry: dict[str, int] = {}
    counts = {s: 0 for s in SPLITS}
    excluded: list[dict] = []
    try:
        for e in iter_entries(metas_by_split, categories):
            counts[e.split] += 1
            first_entry.setdefault(e.image["sample_key"], e.image["id"])
            if e.excluded is not None:
                excluded.append({"id": e.image["id"], "split": e.split, "sample_key": e.image["sample_key"],
                                 "target_key": e.image["target_key"], "reason": e.excluded})
                continue
            for stage, keys in STAGE_KEYS.items():
                if not all(e.image["text_inst_input"][k] for k in keys):
                    continue
                w = writers.get((stage, e.cardinality, e.split))
                if w is None:
                    w = writers[(stage, e.cardinality, e.split)] = CocoWriter(
                        root / file_path(stage, e.cardinality, e.split), [FILE_CATEGORY])
                for a in e.annotations:
                    w.add_annotation({"id": w.annotations + 1, **a})
                w.add_image(e.image)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    rows, hashes = [], {}
    for stage in STAGE_KEYS:      # the datasets list in export_files' order
        for card, card_dir in CARDINALITY_DIRS.items():
            for split in SPLITS:
                w = writers.get((stage, card, split))
                if w is None:
                    continue
                path = file_path(stage, card, split)
                sha, size = w.close()
                hashes[path] = {"sha256": sha, "size": size}
                rows.append({"path": path, "stage": stage, "split": split, "cardinality": card,
                             "dataset": f"{STAGE_DIRS[stage]}/{card_dir}", "eval_mode": EVAL_MODES[card_dir],
                             "entries": w.images, "annotations": w.annotations})
    base = root / EXPORT_DIR
    small = {"categories.json": dumps(categories),
             "datasets.json": dumps({"release_id": release_id, "files": rows, "excluded": excluded,
                                     "stages": {s: list(k) for s, k in STAGE_KEYS.items()}}),
             "hydra_datasets.yaml": hydra_yaml(rows, release_id).encode("utf-8")}
    for name, data in small.items():
        sha, size = write_hashed(base / name, data)
        hashes[f"{EXPORT_DIR}/{name}"] = {"sha256": sha, "size": size}
    return {"first_entry": first_entry, "entries": counts, "files": rows, "excluded": len(excluded), "hashes": hashes}
