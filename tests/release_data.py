"""Release-writer inputs built from the real coco-sample: images/instances through engine.sources.ingest,
instructions by simple deterministic rules (no generator or checker involved), so release tests
exercise every tier, cardinality, negatives and rejected rows.

Rules per image (instances in orig-id order, crowd instances never targeted):
- simple 1:1 "the <category> number <k>" for each non-crowd instance;
- concept 1:All "<category>" for each category (its non-crowd instances);
- complex 1:N "the first two of those things" where a category has >= 3 non-crowd instances;
- concept negative: the first category of ABSENT missing from the image;
- every 5th row (by instruction id) is rejected, and every row of the first image (by id) too,
  so one image has no accepted instruction.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import pandas as pd

from engine.config import IngestConfig
from engine.sources.ingest import SourceSpec, ingest
from schemas.instructions import INSTRUCTIONS

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = Path(os.environ.get("SAM3I_SAMPLE_DATA", REPO.parent / "shared" / "data"))
COCO_SAMPLE = SAMPLE_DATA / "coco-sample"
ABSENT = ("giraffe", "zebra", "toaster", "surfboard", "kite")


@lru_cache(maxsize=None)
def _ingest(source_ids: tuple[str, ...]):
    specs = [SourceSpec(s, str(COCO_SAMPLE / "instances.json"), str(COCO_SAMPLE / "images")) for s in source_ids]
    r = ingest(specs, IngestConfig())
    assert len(r.quarantine) == 0, r.quarantine
    return r.images, r.instances


def coco_tables(source_ids: tuple[str, ...] = ("coco",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """images, instances of coco-sample ingested once per source id (fresh copies)."""
    images, instances = _ingest(tuple(source_ids))
    return images.copy(), instances.copy()


def _row(img, tier, subtype, cardinality, targets, category, text) -> dict:
    iid = hashlib.sha1(json.dumps([img.image_id, tier, text, sorted(targets)]).encode()).hexdigest()[:16]
    return {
        "instruction_id": iid, "spec_id": "s-" + iid, "image_id": img.image_id, "source_id": img.source_id,
        "unit_id": img.unit_id, "tier": tier, "subtype": subtype, "cardinality": cardinality,
        "target_ids": list(targets), "category": category,
        "program": json.dumps([{"kind": "category", "value": category}]), "text": text,
        "backend": "template", "model": "test-rules", "prompt_version": "v1", "seed": 7, "rounds": 1,
        "checks": json.dumps([{"checker": "program", "verdict": "pass", "reason": ""}]),
        "accepted": True, "reject_reason": "",
    }


def make_instructions(images: pd.DataFrame, instances: pd.DataFrame) -> pd.DataFrame:
    rows = []
    by_image = dict(tuple(instances.sort_values("orig_id").groupby("image_id")))
    for img in images.sort_values("image_id").itertuples(index=False):
        inst = by_image.get(img.image_id, instances.iloc[:0])
        good = inst[~inst["iscrowd"]]
        for cat, grp in good.groupby("category", sort=True):
            ids = list(grp["instance_id"])
            for k, iid in enumerate(ids, 1):
                rows.append(_row(img, "simple", "ordinal", "1:1", [iid], cat, f"the {cat} number {k}"))
            rows.append(_row(img, "concept", "category", "1:All", ids, cat, cat))
            if len(ids) >= 3:
                rows.append(_row(img, "complex", "function", "1:N", ids[:2], cat, "the first two of those things"))
        absent = next(c for c in ABSENT if c not in set(inst["category"]))
        rows.append(_row(img, "concept", "category", "negative", [], absent, absent))
    df = pd.DataFrame(rows).sort_values("instruction_id").reset_index(drop=True)
    first_image = images["image_id"].min()
    reject = (df.index % 5 == 4) | (df["image_id"] == first_image)
    df.loc[reject, "accepted"] = False
    df.loc[reject, "reject_reason"] = "program: selects a different set than the target"
    df.loc[reject, "checks"] = json.dumps([{"checker": "program", "verdict": "fail",
                                            "reason": "selects a different set than the target"}])
    return INSTRUCTIONS.validate(df)


CARD = {
    "Quality report": "All instructions were written by deterministic test rules.",
    "Sources": "- coco-sample: MS-COCO 2017 val, annotations CC BY 4.0, images under Flickr licences",
    "Configuration": "```yaml\nrelease:\n  val_fraction: 0.2\n```",
    "Code version": "`test`",
}


def mixed_format_source(dest: Path) -> Path:
    """coco-sample with a third of its photos re-encoded as PNG and a third as lossless WEBP
    (same pixels, new file names in instances.json): a source mixing image formats."""
    from PIL import Image

    dest = Path(dest)
    (dest / "images").mkdir(parents=True, exist_ok=True)
    coco = json.loads((COCO_SAMPLE / "instances.json").read_text())
    for k, img in enumerate(sorted(coco["images"], key=lambda i: i["id"])):
        src = COCO_SAMPLE / "images" / img["file_name"]
        fmt = ("jpg", "png", "webp")[k % 3]
        name = Path(img["file_name"]).with_suffix("." + fmt).name
        if fmt == "jpg":
            (dest / "images" / name).write_bytes(src.read_bytes())
        else:
            with Image.open(src) as im:
                im.save(dest / "images" / name, **({"lossless": True} if fmt == "webp" else {}))
        img["file_name"] = name
    (dest / "instances.json").write_text(json.dumps(coco))
    return dest
