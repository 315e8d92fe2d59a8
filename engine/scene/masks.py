"""Mask encode/decode, all through pycocotools. Masks are stored as compressed RLE strings."""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def encode(mask: np.ndarray) -> str:
    """Binary HxW mask -> compressed RLE counts string."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return rle["counts"].decode("ascii")


def decode(rle: str, height: int, width: int) -> np.ndarray:
    """Compressed RLE counts string -> bool HxW mask."""
    m = mask_utils.decode({"size": [int(height), int(width)], "counts": rle.encode("ascii")})
    return m.astype(bool)


def area(rle: str, height: int, width: int) -> int:
    return int(mask_utils.area({"size": [int(height), int(width)], "counts": rle.encode("ascii")}))


def bbox(rle: str, height: int, width: int) -> list[float]:
    """Pixel xywh of the mask."""
    return [float(v) for v in mask_utils.toBbox({"size": [int(height), int(width)], "counts": rle.encode("ascii")})]


def to_coco_rle(rle: str, height: int, width: int) -> dict:
    """The COCO json form: {"size": [h, w], "counts": str}."""
    return {"size": [int(height), int(width)], "counts": rle}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
