"""LabelMe folders: one json per image (`imagePath`, `imageWidth`, `imageHeight`, `shapes`).

A shape is one instance, except that shapes sharing a label and a non-null `group_id` are the
parts of one instance (LabelMe's way to draw an occluded object in pieces). Categories are the
labels, numbered 1..K in sorted order. `polygon` shapes are masks; a `circle` (centre, rim
point) is rasterised as a 32-gon. Quarantined here: a `rectangle`, `line`, `linestrip` or
`point` (bad_polygon: no mask), a label that names nothing (bad_record), a json that is not a
LabelMe file (bad_record, naming the file), a shape without a label or with non-numeric points
(bad_record). Image sizes are the json's own; ingest checks them against the file.
"""
from __future__ import annotations

import json
import math
import os

from engine.language.names import is_placeholder
from engine.sources import SourceDoc, qrow

MASK_SHAPES = ("polygon", "circle")


def _is_labelme(doc) -> bool:
    return isinstance(doc, dict) and "shapes" in doc and "imagePath" in doc


def is_labelme_folder(folder: str) -> bool:
    for name in sorted(os.listdir(folder))[:50]:
        if name.endswith(".json"):
            try:
                with open(os.path.join(folder, name)) as f:
                    return _is_labelme(json.load(f))
            except (OSError, ValueError):
                continue
    return False


def _circle(points) -> list[float]:
    (cx, cy), (px, py) = points[0], points[1]
    r = math.hypot(px - cx, py - cy)
    return [v for k in range(32) for v in (cx + r * math.cos(2 * math.pi * k / 32), cy + r * math.sin(2 * math.pi * k / 32))]


def _polygon(shape) -> list[float]:
    pts = shape.get("points")
    if not isinstance(pts, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pts):
        raise ValueError("bad_record", "points must be a list of [x, y] pairs")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for p in pts for v in p):
        raise ValueError("bad_record", "points must be numbers")
    kind = shape.get("shape_type") or "polygon"
    if kind == "circle":
        if len(pts) != 2:
            raise ValueError("bad_polygon", f"a circle needs 2 points (centre, rim), has {len(pts)}")
        return _circle(pts)
    return [float(v) for p in pts for v in p]


def read_labelme(spec) -> SourceDoc:
    folder = spec.annotations_uri
    if "://" in folder:
        raise _error(f"{folder}: LabelMe sources are read from a local folder")
    sid = spec.source_id
    quarantine: list[dict] = []
    parsed: list[tuple[str, dict]] = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            quarantine.append(qrow(sid, path, "image", name, "bad_record", f"not a readable json: {e}"))
            continue
        if not _is_labelme(doc):
            quarantine.append(qrow(sid, path, "image", name, "bad_record",
                                   "not a LabelMe file (needs 'imagePath' and 'shapes')"))
            continue
        parsed.append((path, doc))
    if not parsed and not quarantine:
        raise _error(f"{folder}: no LabelMe json files in the folder")
    labels = sorted({s.get("label").strip() for _, d in parsed for s in d["shapes"] if isinstance(s, dict)
                     and isinstance(s.get("label"), str) and s["label"].strip() and not is_placeholder(s["label"])})
    cat_id = {label: k for k, label in enumerate(labels, 1)}
    images, annotations = [], []
    for path, d in parsed:
        image_id = len(images)
        rel = os.path.relpath(os.path.normpath(os.path.join(os.path.dirname(path), str(d["imagePath"]).replace("\\", "/"))),
                              spec.images_uri)
        images.append({"id": image_id, "file_name": rel, "width": d.get("imageWidth"), "height": d.get("imageHeight")})
        groups: dict[tuple, list[float]] = {}
        for k, shape in enumerate(d["shapes"]):
            rid = f"{os.path.basename(path)}#{k}"
            try:
                if not isinstance(shape, dict):
                    raise ValueError("bad_record", "a shape must be an object")
                label = shape.get("label")
                if not isinstance(label, str) or not label.strip():
                    raise ValueError("bad_record", "a shape needs a label")
                if label.strip() not in cat_id:
                    raise ValueError("bad_record", f"label {label!r} names no concept (a placeholder)")
                kind = shape.get("shape_type") or "polygon"
                if kind not in MASK_SHAPES:
                    raise ValueError("bad_polygon", f"a {kind} shape is not a mask")
                poly = _polygon(shape)
            except ValueError as e:
                reason, detail = e.args
                quarantine.append(qrow(sid, path, "annotation", rid, reason, f"shape {k}: {detail}"))
                continue
            gid = shape.get("group_id")
            key = (label.strip(), gid) if gid is not None else (label.strip(), f"#{k}")
            if key in groups:
                groups[key]["segmentation"].append(poly)
            else:
                groups[key] = {"id": len(annotations), "image_id": image_id, "category_id": cat_id[label.strip()],
                               "segmentation": [poly], "iscrowd": 0}
                annotations.append(groups[key])
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": v, "name": k, "supercategory": ""} for k, v in cat_id.items()]}
    return SourceDoc(doc, quarantine)


def _error(msg: str):
    from engine.sources.ingest import IngestError
    return IngestError(msg)
