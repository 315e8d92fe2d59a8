"""YOLO segmentation exports (Ultralytics / Roboflow "YOLOv8"): data.yaml + polygon txt files.

data.yaml names the classes (`names`: a list, ids from 0, or an {id: name} mapping) and the
split folders (`train`, `val`, `test`: image folders, or lists of them). Paths are tried
relative to the yaml's folder, and Roboflow's "../train/images" also as "train/images" (its
exports are unpacked one level up from where the yaml says); a split that exists in neither
place is skipped, and no split at all is an error. Each image `<split>/images/x.jpg` has its
labels in `<split>/labels/x.txt`, one instance per row: `class x1 y1 x2 y2 ...`, coordinates
normalised to [0, 1]. An image without a label file has no annotated instances.

Quarantined here (same reason codes as COCO): a row that is not numbers (bad_record), a class
id not in `names` (unknown_category), a box row of 4 numbers or fewer than 3 points
(bad_polygon: a box is not a mask), an odd coordinate count (bad_polygon), a label file whose
image is missing (missing_image), an image whose header cannot be read (unreadable_image).
Coordinates far outside [0, 1] are left to ingest's polygon check, which names the margin.
"""
from __future__ import annotations

import math
import os
import warnings

import yaml
from PIL import Image, UnidentifiedImageError

from engine.sources import SourceDoc, qrow

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SPLITS = ("train", "val", "valid", "test")


def _error(msg: str):
    from engine.sources.ingest import IngestError
    return IngestError(msg)


def load_data_yaml(path: str) -> dict:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise _error(f"{path}: data.yaml not found") from None
    except yaml.YAMLError as e:
        raise _error(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict) or "names" not in data:
        raise _error(f"{path}: expected a mapping with 'names' (the class names) and split folders")
    return data


def class_names(data: dict, path: str) -> dict[int, str]:
    names = data["names"]
    if isinstance(names, list):
        out = dict(enumerate(names))
    elif isinstance(names, dict):
        try:
            out = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            raise _error(f"{path}: 'names' keys must be class ids (integers)") from None
    else:
        raise _error(f"{path}: 'names' must be a list or an {{id: name}} mapping, got {type(names).__name__}")
    bad = [k for k, v in out.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise _error(f"{path}: class ids {bad} have no name")
    nc = data.get("nc")
    if nc is not None and nc != len(out):
        raise _error(f"{path}: nc is {nc} but 'names' lists {len(out)} classes")
    return {k: v.strip() for k, v in out.items()}


def image_folders(data: dict, root: str) -> list[str]:
    """Existing image folders of the splits data.yaml names (relative to `root`)."""
    base = data.get("path")
    base = os.path.join(root, base) if isinstance(base, str) and not os.path.isabs(base) else (base or root)
    out: list[str] = []
    for split in SPLITS:
        entries = data.get(split)
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, str):
                continue
            for cand in (os.path.join(base, entry), os.path.join(root, entry.lstrip("./").lstrip("/")),
                         os.path.join(root, entry.replace("../", "", 1))):
                cand = os.path.normpath(cand)
                if os.path.isdir(cand) and os.path.realpath(cand).startswith(os.path.realpath(root)):
                    if cand not in out:
                        out.append(cand)
                    break
    return out


def _labels_dir(images_dir: str) -> str:
    head, tail = os.path.split(images_dir)
    return os.path.join(head, "labels") if tail == "images" else images_dir


def _header_size(path: str) -> tuple[int, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:     # reads the header only
            return im.size


def parse_row(line: str, names: dict[int, str], w: int, h: int) -> tuple[int, list[float]]:
    """(class id, pixel polygon) of one label row; ValueError(reason, detail) when unusable."""
    parts = line.split()
    try:
        cls_f = float(parts[0])
        coords = [float(v) for v in parts[1:]]
    except ValueError:
        raise ValueError("bad_record", f"row {line[:60]!r} is not numbers") from None
    if not cls_f.is_integer() or int(cls_f) not in names:
        raise ValueError("unknown_category", f"class id {parts[0]} is not in data.yaml names (ids {sorted(names)})")
    if len(coords) == 4:
        raise ValueError("bad_polygon", "a box row (x y w h), not a polygon: no mask to ingest")
    if len(coords) % 2:
        raise ValueError("bad_polygon", f"{len(coords)} coordinates: an odd count")
    if len(coords) < 6:
        raise ValueError("bad_polygon", f"{len(coords) // 2} points; a polygon needs 3")
    if not all(math.isfinite(v) for v in coords):
        raise ValueError("bad_polygon", "a coordinate is NaN or infinite")
    poly = [v * (w if i % 2 == 0 else h) for i, v in enumerate(coords)]
    return int(cls_f), poly


def read_yolo_seg(spec) -> SourceDoc:
    path = spec.annotations_uri
    if "://" in path:
        raise _error(f"{path}: YOLO sources are read from a local folder (copy it from object storage first)")
    data = load_data_yaml(path)
    names = class_names(data, path)
    root = spec.images_uri
    folders = image_folders(data, root)
    if not folders:
        raise _error(f"{path}: none of the split folders it names ({', '.join(str(data.get(s)) for s in SPLITS if data.get(s))}) "
                     f"exists under {root}")
    sid = spec.source_id
    quarantine: list[dict] = []
    images, annotations = [], []
    for folder in folders:
        labels = _labels_dir(folder)
        stems = {}
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(IMAGE_EXTS):
                stems[os.path.splitext(name)[0]] = name
        for name in sorted(os.listdir(labels)) if os.path.isdir(labels) else []:
            stem, ext = os.path.splitext(name)
            if ext == ".txt" and stem not in stems:
                quarantine.append(qrow(sid, os.path.join(labels, name), "image", stem, "missing_image",
                                       f"label file {name} has no image {stem}.* in {folder}"))
        for stem, name in stems.items():
            image_id = len(images)
            rel = os.path.relpath(os.path.join(folder, name), root)
            label_file = os.path.join(labels, stem + ".txt")
            try:
                w, h = _header_size(os.path.join(folder, name))
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
                quarantine.append(qrow(sid, label_file, "image", rel, "unreadable_image",
                                       f"cannot read the image header of {rel}: {e}"))
                continue
            images.append({"id": image_id, "file_name": rel, "width": w, "height": h})
            if not os.path.exists(label_file):
                continue
            with open(label_file, errors="replace") as f:
                rows = f.read().splitlines()
            for n, line in enumerate(rows, 1):
                if not line.strip():
                    continue
                rid = f"{rel}#{n}"
                try:
                    cls, poly = parse_row(line, names, w, h)
                except ValueError as e:
                    reason, detail = e.args
                    quarantine.append(qrow(sid, label_file, "annotation", rid, reason, f"line {n}: {detail}"))
                    continue
                annotations.append({"id": len(annotations), "image_id": image_id, "category_id": cls,
                                    "segmentation": [poly], "iscrowd": 0, "_row": rid})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": k, "name": v, "supercategory": ""} for k, v in sorted(names.items())]}
    licence = (data.get("roboflow") or {}).get("license") if isinstance(data.get("roboflow"), dict) else None
    if isinstance(licence, str):
        doc["licenses"] = [{"id": 1, "name": licence, "url": (data.get("roboflow") or {}).get("url")}]
        for im in images:
            im["license"] = 1
    return SourceDoc(doc, quarantine)
