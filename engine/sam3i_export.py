"""Export a release to the SAM3-I trainer's format: `sam3i_train.json` and `sam3i_val.json`.

Mapping from the engine's data to the COCO-style files the SAM3-I trainer loads:

- `images[]`: one entry per (image, target) pair, where a target is the set of instance ids
  that its instructions select (1:1, 1:N or 1:All). Negative instructions (nothing in the image
  matches) get one entry per absent concept, with no annotations: the model must return no mask.
  - `id`: 1, 2, ... within each file, in (sample key, target key) order.
  - `file_name`: `<source_id>/<file name in the source>`; `reader.extract_images` writes the
    images from the shards to exactly these paths, or point the trainer at a folder holding
    each source's images under its source id.
  - `width`, `height`: pixels of the original image.
  - `queried_category`: the target's category name (for negatives, the absent concept).
  - `text_inst_input`: {"concept": [...], "simple_query": [...], "complex_query": [...]} -
    the accepted instructions of the engine's tiers concept / simple / complex for this target.
  - extra keys the trainer ignores, for tracing back: `image_id` (engine id), `sample_key`
    (the webdataset key), `target_key`, `target_ids`, `cardinality` (1:1 | 1:N | 1:All |
    negative, "," joined if instructions disagree) and `instruction_ids`, parallel to
    `text_inst_input`.
- `annotations[]`: one per target instance of an entry: `id` (1, 2, ... within each file),
  `image_id` (the entry's id), `category_id`, `bbox` (pixel xywh of the mask), `segmentation`
  (compressed RLE {size: [h, w], counts}), `iscrowd` (0/1), `area` (mask pixels), plus
  `instance_id` (engine id).
- `categories[]`: {id, name, supercategory}, identical in both files. Ids are assigned 1..K in
  order of category name, because several sources may use the same id for different things.
"""
from __future__ import annotations

from schemas.specs import TIERS

SAM3I_TIER_KEYS = {"concept": "concept", "simple": "simple_query", "complex": "complex_query"}


def categories_of(metas: list[dict]) -> list[dict]:
    """The category list shared by both files: every targeted category and negative concept."""
    supercat: dict[str, str] = {}
    for meta in metas:
        for inst in meta["instances"]:
            supercat.setdefault(inst["category"], inst["supercategory"])
    names = {g["category"] for meta in metas for g in meta["targets"]}
    names |= {inst["category"] for meta in metas for g in meta["targets"]
              for inst in meta["instances"] if inst["instance_id"] in set(g["target_ids"])}
    return [{"id": i, "name": n, "supercategory": supercat.get(n, "")} for i, n in enumerate(sorted(names), 1)]


def export_split(metas: list[dict], categories: list[dict]) -> tuple[dict, dict[str, int]]:
    """COCO-style dict for one split, and instruction_id -> images[].id.

    `metas` are the shard json payloads of this split's samples, in shard order."""
    cat_id = {c["name"]: c["id"] for c in categories}
    images, annotations, where = [], [], {}
    for meta in metas:
        img = meta["image"]
        by_id = {inst["instance_id"]: inst for inst in meta["instances"]}
        for group in meta["targets"]:
            entry_id = len(images) + 1
            texts = {SAM3I_TIER_KEYS[t]: [r["text"] for r in group["instructions"][t]] for t in TIERS}
            ids = {SAM3I_TIER_KEYS[t]: [r["instruction_id"] for r in group["instructions"][t]] for t in TIERS}
            images.append({
                "id": entry_id,
                "file_name": f"{img['source_id']}/{img['file_name']}",
                "width": img["width"],
                "height": img["height"],
                "queried_category": group["category"],
                "text_inst_input": texts,
                "image_id": img["image_id"],
                "sample_key": img["sample_key"],
                "target_key": group["target_key"],
                "target_ids": group["target_ids"],
                "cardinality": ",".join(group["cardinalities"]),
                "instruction_ids": ids,
            })
            for iid in ids.values():
                where.update({i: entry_id for i in iid})
            for instance_id in group["target_ids"]:
                inst = by_id[instance_id]
                annotations.append({
                    "id": len(annotations) + 1,
                    "image_id": entry_id,
                    "category_id": cat_id[inst["category"]],
                    "bbox": inst["bbox"],
                    "segmentation": inst["segmentation"],
                    "iscrowd": int(inst["iscrowd"]),
                    "area": inst["area"],
                    "instance_id": instance_id,
                })
    return {"images": images, "annotations": annotations, "categories": categories}, where
