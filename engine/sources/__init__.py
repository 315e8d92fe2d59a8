"""Source adapters: every annotation format a team brings, read into one COCO-shaped document.

Each adapter turns its format into the COCO dict that engine.sources.ingest checks record by record
(ids, references, paths, then pixels and masks per image), so every format gets the same
canonical tables and the same quarantine rules. What only an adapter can see (a YOLO label
row with a class id out of range, a LabelMe rectangle that is a box and not a mask, a label
file without its image) it quarantines itself, with the same reason codes.

Formats (`SourceSpec.format`, detected by `detect_format`):
- `coco`: a COCO json (also Roboflow, CVAT and LabelMe->COCO converters: ids from 0, a
  placeholder parent category, `area` equal to the box area, `extra` fields);
- `yolo_seg`: a YOLO segmentation export (`data.yaml` + `images/` and `labels/` folders of
  normalised polygon rows);
- `labelme`: a folder of LabelMe json files (one per image, polygons in pixels).

Whatever the format, ingest recomputes `area` from the decoded mask (COCO's own field is not
trusted), and a category whose name names nothing ("none", "background") is dropped with its
annotations quarantined (engine.sources.coco.drop_placeholders).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

FORMATS = ("coco", "yolo_seg", "labelme")


@dataclass
class SourceDoc:
    """A source read into COCO shape, and the records its adapter already quarantined."""
    doc: dict
    quarantine: list[dict] = field(default_factory=list)


def qrow(source_id: str, file: str, record_type: str, record_id, reason: str, detail: str) -> dict:
    return {"source_id": source_id, "file": file, "record_type": record_type,
            "record_id": str(record_id), "reason": reason, "detail": detail}


def detect_format(path: str) -> str:
    """'yolo_seg' for a data.yaml or a folder holding one, 'labelme' for a folder of LabelMe
    json files, else 'coco'."""
    if path.endswith((".yaml", ".yml")):
        return "yolo_seg"
    if "://" in path or not os.path.isdir(path):
        return "coco"
    if any(os.path.exists(os.path.join(path, n)) for n in ("data.yaml", "data.yml")):
        return "yolo_seg"
    if os.path.exists(os.path.join(path, "instances.json")):
        return "coco"
    from engine.sources.labelme import is_labelme_folder
    from engine.sources.coco import find_coco_json
    if find_coco_json(path) is None and is_labelme_folder(path):
        return "labelme"
    return "coco"


def read_source(spec) -> SourceDoc:
    """The source's COCO-shaped document (an engine.sources.ingest.SourceSpec in, by its format)."""
    fmt = getattr(spec, "format", "coco")
    if fmt == "coco":
        from engine.sources.coco import read_coco
        return read_coco(spec)
    if fmt == "yolo_seg":
        from engine.sources.yolo_seg import read_yolo_seg
        return read_yolo_seg(spec)
    if fmt == "labelme":
        from engine.sources.labelme import read_labelme
        return read_labelme(spec)
    from engine.sources.ingest import IngestError
    raise IngestError(f"{spec.annotations_uri}: unknown source format {fmt!r}; expected one of {FORMATS}")
