"""The shared custom exports (../shared/data/custom) and folders built from them in tmp_path.

There is no LabelMe folder among the shared sets, so `labelme_folder` writes one from the
fruits-and-nuts photos: their LabelMe->COCO polygons turned back into one LabelMe json per
image (the format labelme2coco read them from), beside copies of the real photos.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.coco_fixtures import SAMPLE_DATA

CUSTOM = SAMPLE_DATA / "custom"
FRUITS_NUTS_JSON = CUSTOM / "fruits_nuts" / "data" / "trainval.json"
FRUITS_NUTS_IMAGES = CUSTOM / "fruits_nuts" / "data" / "images"
BOTTLES = CUSTOM / "crystl_bottles" / "test"
YOLOSEG = CUSTOM / "fruits_yoloseg"


def labelme_folder(tmp_path: Path, n_images: int = 4) -> Path:
    doc = json.loads(FRUITS_NUTS_JSON.read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    out = tmp_path / "labelme"
    out.mkdir()
    for im in sorted(doc["images"], key=lambda i: i["id"])[:n_images]:
        shutil.copy(FRUITS_NUTS_IMAGES / im["file_name"], out / im["file_name"])
        shapes = []
        for a in doc["annotations"]:
            if a["image_id"] == im["id"]:
                for poly in a["segmentation"]:
                    shapes.append({"label": names[a["category_id"]], "group_id": None, "shape_type": "polygon",
                                   "flags": {}, "points": [[poly[i], poly[i + 1]] for i in range(0, len(poly), 2)]})
        (out / (Path(im["file_name"]).stem + ".json")).write_text(json.dumps({
            "version": "5.2.1", "flags": {}, "shapes": shapes, "imagePath": im["file_name"], "imageData": None,
            "imageHeight": im["height"], "imageWidth": im["width"]}))
    return out


def yoloseg_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "yolo"
    shutil.copytree(YOLOSEG, dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    dst.chmod(0o755)
    return dst
