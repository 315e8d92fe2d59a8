"""Small COCO sources built in a test's tmp_path from the real samples, ready to be broken.

    case = make_case(tmp_path)           # 3 real images + their real annotations
    case.images[0]["file_name"] = "../x.jpg"
    spec = case.write()                  # -> SourceSpec for engine.sources.ingest.ingest

The real data lives in ../shared/data beside the repository and is never copied into it;
only into pytest's tmp_path.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.sources.ingest import SourceSpec

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = Path(os.environ.get("SAM3I_SAMPLE_DATA", REPO.parent / "shared" / "data"))
COCO_SAMPLE = SAMPLE_DATA / "coco-sample"
PANOPTIC_SAMPLE = SAMPLE_DATA / "panoptic-sample"


@lru_cache(maxsize=None)
def _load(sample: Path) -> str:
    return (sample / "instances.json").read_text()


def load_sample(sample: Path = COCO_SAMPLE) -> dict:
    """A fresh (mutable) copy of a sample's instances.json."""
    return json.loads(_load(sample))


@dataclass
class CocoCase:
    root: Path
    coco: dict
    source_id: str

    @property
    def images(self) -> list[dict]:
        return self.coco["images"]

    @property
    def annotations(self) -> list[dict]:
        return self.coco["annotations"]

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def json_path(self) -> Path:
        return self.root / "instances.json"

    def anns_of(self, image: dict) -> list[dict]:
        return [a for a in self.annotations if a["image_id"] == image["id"]]

    def image_path(self, image: dict) -> Path:
        return self.images_dir / image["file_name"]

    def add_image(self, image: dict, data: bytes) -> dict:
        """Append an image record (and its file) to the source."""
        self.images.append(image)
        self.image_path(image).write_bytes(data)
        return image

    def next_id(self, records: list[dict]) -> int:
        return max(r["id"] for r in records) + 1

    def write(self) -> SourceSpec:
        self.json_path.write_text(json.dumps(self.coco))
        return SourceSpec(self.source_id, str(self.json_path), str(self.images_dir))


def make_case(tmp_path: Path, sample: Path = COCO_SAMPLE, n_images: int = 3,
              name: str = "case") -> CocoCase:
    """The first n_images of a sample (by id) with their annotations and image files."""
    coco = load_sample(sample)
    images = sorted(coco["images"], key=lambda r: r["id"])[:n_images]
    keep = {r["id"] for r in images}
    root = tmp_path / name
    (root / "images").mkdir(parents=True)
    for r in images:
        shutil.copyfile(sample / "images" / r["file_name"], root / "images" / r["file_name"])
    case_coco = {
        "info": coco.get("info", {}),
        "images": copy.deepcopy(images),
        "annotations": [a for a in coco["annotations"] if a["image_id"] in keep],
        "categories": coco["categories"],
    }
    return CocoCase(root=root, coco=case_coco, source_id=name)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny (invalid) body: cheap bomb bait."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
