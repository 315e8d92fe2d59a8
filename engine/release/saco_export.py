"""Export a release to SAM3's own SA-Co format (`saco/saco_{train,val}.json`), so SAM3's
evaluation (cgF1, `SAM3_EVAL_API_FROM_JSON_NP`) runs on it.

SA-Co is COCO-style with one `images[]` entry per (image, noun phrase):
- the noun phrases of an image are the categories its release targets name (positive) and the
  concepts its negatives name (nothing matches: the entry has no annotations);
- a positive noun phrase is annotated exhaustively: every instance of that category in the
  image; a crowd region is kept with `iscrowd: 1` and the entry is flagged
  `is_instance_exhaustive: 0, is_pixel_exhaustive: 0` (its instances are not separated);
- `text_input` is the noun phrase, `queried_category` the string of its release-wide id
  (`sam3i/categories.json`; SAM3's reader does `int(queried_category)`), plus the extra keys
  `category` and `sample_key`;
- annotations as SA-Co writes them: `bbox` [x, y, w, h] and `area` normalised by the image
  size, RLE `segmentation`, `category_id` 1 (one "object" category: the text is the prompt).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from engine.release.sam3i_export import FILE_CATEGORY, SPLITS, dumps

EXPORT_DIR = "saco"


def split_entries(metas: Iterable[dict], cat_id: dict[str, int], first_id: int = 1) -> Iterator[tuple[dict, list[dict]]]:
    """(images[] record, its annotations without ids) per (image, noun phrase), ids from first_id."""
    entry_id = first_id - 1
    for meta in metas:
        img = meta["image"]
        w, h = img["width"], img["height"]
        phrases: dict[str, bool] = {}              # noun phrase -> positive
        for g in meta["targets"]:
            phrases[g["category"]] = phrases.get(g["category"], False) or bool(g["target_ids"])
        for np_, positive in sorted(phrases.items()):
            insts = [i for i in meta["instances"] if i["category"] == np_] if positive else []
            crowd = any(i["iscrowd"] for i in insts)
            entry_id += 1
            image = {
                "id": entry_id,
                "file_name": f"{img['source_id']}/{img['file_name']}",
                "width": w,
                "height": h,
                "text_input": np_,
                "queried_category": str(cat_id[np_]),
                "is_instance_exhaustive": 0 if crowd else 1,
                "is_pixel_exhaustive": 0 if crowd else 1,
                "category": np_,
                "sample_key": img["sample_key"],
            }
            anns = []
            for inst in insts:
                x, y, bw, bh = inst["bbox"]
                anns.append({
                    "image_id": entry_id,
                    "category_id": FILE_CATEGORY["id"],
                    "bbox": [x / w, y / h, bw / w, bh / h],
                    "area": inst["area"] / (w * h),
                    "segmentation": inst["segmentation"],
                    "iscrowd": int(inst["iscrowd"]),
                    "instance_id": inst["instance_id"],
                })
            yield image, anns


def export_split(metas: Iterable[dict], cat_id: dict[str, int], first_id: int = 1) -> dict:
    """One split's SA-Co file as a dict (write_export streams the same content to disk)."""
    images, annotations = [], []
    for image, anns in split_entries(metas, cat_id, first_id):
        images.append(image)
        annotations += [{"id": len(annotations) + k, **a} for k, a in enumerate(anns, 1)]
    return {"images": images, "annotations": annotations, "categories": [FILE_CATEGORY]}


def write_export(root, metas_by_split: dict[str, Iterable[dict]], categories: list[dict]) -> tuple[dict[str, int], dict]:
    """Write `saco/saco_<split>.json` entry by entry (hashed while written); returns the entry
    count per split and {relative path: {"sha256", "size"}}."""
    from engine.release.streamed import CocoWriter

    cat_id = {c["name"]: c["id"] for c in categories}
    counts, hashes, next_id = {}, {}, 1
    for split in SPLITS:
        rel = f"{EXPORT_DIR}/saco_{split}.json"
        w = CocoWriter(Path(root) / rel, [FILE_CATEGORY])
        try:
            for image, anns in split_entries(metas_by_split.get(split, []), cat_id, next_id):
                for a in anns:
                    w.add_annotation({"id": w.annotations + 1, **a})
                w.add_image(image)
        except BaseException:
            w.abort()
            raise
        sha, size = w.close()
        hashes[rel] = {"sha256": sha, "size": size}
        next_id += w.images
        counts[split] = w.images
    return counts, hashes
