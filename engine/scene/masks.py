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


def decode_crop(rle: str, height: int, width: int,
                box: tuple[float, float, float, float] | None = None) -> tuple[np.ndarray, int, int] | None:
    """The mask cropped to its pixels' bounding box: (bool crop, x0, y0), None when empty.

    `box` (pixel xywh, e.g. the instances table's bbox) says where to look, so only that window
    is scanned and copied, not the whole frame; it is checked against the RLE's area, and a
    box that misses pixels falls back to scanning the frame."""
    obj = {"size": [int(height), int(width)], "counts": rle.encode("ascii")}
    full = mask_utils.decode(obj).view(bool)   # 0/1 bytes read as bool: no full-frame copy
    window, ox, oy = full, 0, 0
    if box is not None:
        x, y, w, h = box
        ox, oy = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
        window = full[oy:min(int(height), int(np.ceil(y + h))), ox:min(int(width), int(np.ceil(x + w)))]
        if int(np.count_nonzero(window)) != int(mask_utils.area(obj)):
            window, ox, oy = full, 0, 0
    ys = np.flatnonzero(window.any(axis=1))
    if len(ys) == 0:
        return None
    xs = np.flatnonzero(window.any(axis=0))
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    return window[y0:y1, x0:x1].copy(), ox + x0, oy + y0   # a copy: a view keeps the frame alive


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
