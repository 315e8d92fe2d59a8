"""SAM3-I's segmentation metrics (SAM3I_REFERENCE.md), for scoring predictions on an export file.

- gIoU: mean of per-entry IoU; cIoU: total intersection over total union; P@0.5: share of
  entries with IoU >= 0.5. The union of predicted masks scoring at least the detection
  threshold (0.5) is scored; in `1to1` mode only the top-1 mask. An entry whose prediction and
  target are both empty has IoU 0 in these means (union 0), as an IoU-mean has no better value:
  that is why negatives are never scored by them.
- negatives (`no_target` mode): no-target accuracy, the share of entries with no mask above
  the threshold.

Predictions are COCO result records: {"image_id", "segmentation" (RLE), "score"}.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from pycocotools import mask as mask_utils

THRESHOLD = 0.5
MODES = ("1to1", "multi_inst", "no_target")


def _rle(seg: dict, h: int, w: int) -> dict:
    if isinstance(seg, list):
        return mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    if isinstance(seg.get("counts"), list):
        return mask_utils.frPyObjects(seg, h, w)
    return {"size": seg["size"], "counts": seg["counts"].encode() if isinstance(seg["counts"], str) else seg["counts"]}


def _union(segs: list[dict], h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w), dtype=bool)
    for s in segs:
        out |= mask_utils.decode(_rle(s, h, w)).astype(bool)
    return out


def evaluate(coco: dict, predictions: list[dict], mode: str, threshold: float = THRESHOLD) -> dict:
    """Scores of `predictions` on the entries of one export file, in one eval mode."""
    if mode not in MODES:
        raise ValueError(f"unknown eval mode {mode!r}; expected one of {MODES}")
    gt = defaultdict(list)
    for a in coco["annotations"]:
        gt[a["image_id"]].append(a["segmentation"])
    preds = defaultdict(list)
    for p in predictions:
        if p["score"] >= threshold:
            preds[p["image_id"]].append(p)
    n = len(coco["images"])
    if mode == "no_target":
        empty = sum(1 for img in coco["images"] if not preds.get(img["id"]))
        return {"mode": mode, "entries": n, "no_target_accuracy": 100.0 * empty / n if n else 0.0}
    ious, inter_total, union_total = [], 0, 0
    for img in coco["images"]:
        h, w = img["height"], img["width"]
        chosen = sorted(preds.get(img["id"], []), key=lambda p: -p["score"])
        if mode == "1to1":
            chosen = chosen[:1]
        p = _union([c["segmentation"] for c in chosen], h, w)
        g = _union(gt.get(img["id"], []), h, w)
        inter, union = int((p & g).sum()), int((p | g).sum())
        ious.append(inter / union if union else 0.0)
        inter_total += inter
        union_total += union
    return {"mode": mode, "entries": n,
            "gIoU": 100.0 * float(np.mean(ious)) if ious else 0.0,
            "cIoU": 100.0 * inter_total / union_total if union_total else 0.0,
            "P@0.5": 100.0 * float(np.mean([i >= 0.5 for i in ious])) if ious else 0.0}


def oracle_predictions(coco: dict) -> list[dict]:
    """Perfect predictions: every target mask, score 1."""
    return [{"image_id": a["image_id"], "segmentation": a["segmentation"], "score": 1.0} for a in coco["annotations"]]


def headline(scores: dict) -> float:
    return scores["no_target_accuracy"] if scores["mode"] == "no_target" else scores["gIoU"]
