"""Referring-segmentation metrics on boolean masks (pure numpy; SAM3I_REFERENCE.md, "Metrics").

gIoU: mean of per-sample IoU. cIoU: total intersection over total union. P@0.5: share of
samples with IoU >= 0.5. An empty prediction on an empty target scores IoU 1 (a correct
"nothing"), which is how negatives count in gIoU; `no_target_accuracy` reports them apart.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np


def intersection_union(pred: np.ndarray, target: np.ndarray) -> tuple[int, int]:
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    return int((pred & target).sum()), int((pred | target).sum())


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    inter, union = intersection_union(pred, target)
    return 1.0 if union == 0 else inter / union


def summarize(records: list[dict]) -> dict:
    """records: {"inter", "union", "iou", "negative": bool, "predicted_empty": bool} -> metrics."""
    pos = [r for r in records if not r["negative"]]
    neg = [r for r in records if r["negative"]]
    out = {"samples": len(records), "positives": len(pos), "negatives": len(neg)}
    if pos:
        ious = np.array([r["iou"] for r in pos])
        union = sum(r["union"] for r in pos)
        out |= {"gIoU": float(ious.mean()), "cIoU": float(sum(r["inter"] for r in pos) / union) if union else 1.0,
                "P@0.5": float((ious >= 0.5).mean())}
    if neg:
        out["no_target_accuracy"] = float(np.mean([r["predicted_empty"] for r in neg]))
    return out


def record(pred: np.ndarray, target: np.ndarray, **labels) -> dict:
    inter, union = intersection_union(pred, target)
    negative = not np.asarray(target, bool).any()
    return {"inter": inter, "union": union, "iou": 1.0 if union == 0 else inter / union,
            "negative": negative, "predicted_empty": not np.asarray(pred, bool).any(), **labels}


def table(records: list[dict], keys: tuple[str, ...] = ("tier", "cardinality")) -> dict[str, dict]:
    """Metrics overall, per tier, per cardinality and per (tier, cardinality)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups["all"].append(r)
        for k in keys:
            groups[f"{k}={r[k]}"].append(r)
        groups[" ".join(f"{k}={r[k]}" for k in keys)].append(r)
    return {name: summarize(rs) for name, rs in sorted(groups.items(), key=lambda kv: (kv[0] != "all", kv[0]))}
