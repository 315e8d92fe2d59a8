"""Referring-segmentation metrics on hand-made masks with known IoU."""
from __future__ import annotations

import numpy as np
import pytest

from model import metrics


def box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_iou_of_known_overlaps():
    a = box(10, 10, 0, 10, 0, 5)          # 50 px
    b = box(10, 10, 0, 10, 2, 7)          # 50 px, overlap 30
    assert metrics.iou(a, b) == pytest.approx(30 / 70)
    assert metrics.iou(a, a) == 1.0
    assert metrics.iou(a, ~a) == 0.0
    assert metrics.iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0     # nothing predicted for nothing
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.iou(a, np.zeros((5, 5)))


def test_giou_ciou_precision_and_no_target_accuracy():
    t1, p1 = box(10, 10, 0, 10, 0, 5), box(10, 10, 0, 10, 2, 7)       # IoU 30/70
    t2, p2 = box(20, 20, 0, 20, 0, 20), box(20, 20, 0, 20, 0, 10)     # IoU 200/400
    t3, p3 = box(10, 10, 0, 2, 0, 2), box(10, 10, 0, 2, 0, 2)         # IoU 1 (4 px)
    neg_ok, neg_bad = np.zeros((5, 5), bool), box(5, 5, 0, 1, 0, 1)
    recs = [metrics.record(p1, t1, tier="simple", cardinality="1:1"),
            metrics.record(p2, t2, tier="complex", cardinality="1:N"),
            metrics.record(p3, t3, tier="simple", cardinality="1:1"),
            metrics.record(neg_ok, np.zeros((5, 5), bool), tier="simple", cardinality="negative"),
            metrics.record(neg_bad, np.zeros((5, 5), bool), tier="complex", cardinality="negative")]
    s = metrics.summarize(recs)
    assert s["gIoU"] == pytest.approx((30 / 70 + 0.5 + 1) / 3)
    assert s["cIoU"] == pytest.approx((30 + 200 + 4) / (70 + 400 + 4))
    assert s["P@0.5"] == pytest.approx(2 / 3)                      # 0.43 misses, 0.5 counts
    assert s["no_target_accuracy"] == 0.5 and s["negatives"] == 2 and s["positives"] == 3
    tab = metrics.table(recs)
    assert tab["tier=simple"]["gIoU"] == pytest.approx((30 / 70 + 1) / 2)
    assert tab["tier=complex cardinality=1:N"]["gIoU"] == pytest.approx(0.5)
    assert tab["cardinality=negative"]["no_target_accuracy"] == 0.5 and "gIoU" not in tab["cardinality=negative"]
    assert list(tab)[0] == "all"
