"""COCO json sources, with the quirks of the converters that write them.

Roboflow puts `_annotations.coco.json` beside the images and adds an unused parent category
with id 0 ("Bottle", supercategory "none") whose name the real categories carry as their
supercategory; CVAT and LabelMe converters start ids at 0 and may write `area` as the box area;
images carry `extra` fields. None of that is an error: ids of 0 are ids, `area` is recomputed
from the mask at ingest, extra fields are ignored, and an unused category is simply not part of
the source's vocabulary (engine.sources.vocabulary). Only a category whose name names nothing
("none", "background", "objects") is dropped, with its annotations quarantined.
"""
from __future__ import annotations

import os

from engine.language.names import is_placeholder
from engine.sources import SourceDoc, qrow

ROBOFLOW_JSON = "_annotations.coco.json"


def find_coco_json(folder: str) -> str | None:
    """The COCO json a folder holds: instances.json, Roboflow's _annotations.coco.json, or the
    only *.json in it that has images / annotations / categories keys."""
    for name in ("instances.json", ROBOFLOW_JSON):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def drop_placeholders(doc: dict, source_id: str, file: str) -> list[dict]:
    """Remove categories whose name names no concept; their annotations are quarantined
    (unknown_category) by the record pass, and each dropped category is reported here."""
    out = []
    keep = []
    for c in doc.get("categories", []):
        if isinstance(c, dict) and isinstance(c.get("name"), str) and is_placeholder(c["name"]):
            out.append(qrow(source_id, file, "category", c.get("id"), "bad_record",
                            f"category {c['name']!r} names no concept (an export tool's placeholder); "
                            "its annotations are quarantined"))
        else:
            keep.append(c)
    doc["categories"] = keep
    return out


def read_coco(spec) -> SourceDoc:
    from engine.sources.ingest import load_coco
    doc = load_coco(spec.annotations_uri)
    return SourceDoc(doc, drop_placeholders(doc, spec.source_id, spec.annotations_uri))
