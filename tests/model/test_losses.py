"""Losses: Hungarian matching for 1:1, 1:N and negatives; set loss pieces; alignment losses."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from model.losses import LossWeights, alignment_loss, generalized_iou, hungarian_match, info_nce, margin_anchor, set_loss

W = LossWeights()


def square(x0, y0, x1, y1, size=16):
    m = torch.zeros(size, size)
    m[int(y0 * size):int(y1 * size), int(x0 * size):int(x1 * size)] = 1
    return m


def outputs(boxes, logits, masks, presence=0.0):
    q = len(boxes)
    logit_masks = torch.stack([m * 20 - 10 for m in masks])      # confident masks
    return SimpleNamespace(pred_logits=torch.tensor([logits]), pred_boxes=torch.tensor([boxes]),
                           pred_masks=logit_masks[None], presence_logits=torch.tensor([[presence]]),
                           semantic_seg=torch.full((1, 1, 16, 16), -10.0)), q


def test_generalized_iou_known_values():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    assert generalized_iou(a, a).item() == pytest.approx(1.0)
    b = torch.tensor([[0.25, 0.0, 0.75, 0.5]])
    assert generalized_iou(a, b).item() == pytest.approx((0.125 / 0.375))        # IoU 1/3, hull = union
    far = torch.tensor([[0.5, 0.5, 1.0, 1.0]])
    assert generalized_iou(a, far).item() == pytest.approx(0 - (1 - 0.5) / 1)     # disjoint: negative


@pytest.mark.parametrize("n_targets", [1, 2, 3])
def test_matching_finds_the_queries_that_fit_the_targets(n_targets):
    # 4 queries; targets equal queries 2, 0, 3 (in that order); query 1 is elsewhere
    qboxes = [[0.0, 0.0, 0.25, 0.25], [0.4, 0.4, 0.6, 0.6], [0.5, 0.0, 1.0, 0.5], [0.0, 0.5, 0.5, 1.0]]
    qmasks = [square(*b) for b in qboxes]
    out, _ = outputs(qboxes, [0.0] * 4, qmasks)
    order = [2, 0, 3][:n_targets]
    tb = torch.tensor([qboxes[k] for k in order])
    tm = torch.stack([qmasks[k] for k in order])
    q, t = hungarian_match(out.pred_logits[0], out.pred_boxes[0], out.pred_masks[0], tb, tm, W)
    assert dict(zip(t.tolist(), q.tolist())) == {i: k for i, k in enumerate(order)}       # 1:1 assignment
    # and the set loss is lower for these predictions than for the same queries shuffled
    good, _ = set_loss(out, [{"masks": tm, "boxes": tb}], W)
    bad_out, _ = outputs(qboxes[::-1][:1] * 4, [0.0] * 4, [qmasks[1]] * 4)
    bad, _ = set_loss(bad_out, [{"masks": tm, "boxes": tb}], W)
    assert good < bad


def test_negative_trains_towards_nothing():
    qboxes = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]
    masks = [square(*b) for b in qboxes]
    neg = [{"masks": torch.zeros(0, 16, 16), "boxes": torch.zeros(0, 4)}]
    confident, _ = outputs(qboxes, [5.0, 5.0], masks, presence=5.0)
    quiet, _ = outputs(qboxes, [-5.0, -5.0], masks, presence=-5.0)
    q, t = hungarian_match(confident.pred_logits[0], confident.pred_boxes[0], confident.pred_masks[0],
                           neg[0]["boxes"], neg[0]["masks"], W)
    assert len(q) == len(t) == 0
    loud_loss, parts = set_loss(confident, neg, W)
    quiet_loss, _ = set_loss(quiet, neg, W)
    assert quiet_loss < loud_loss and parts["box_l1"] == 0 and parts["mask_dice"] == 0
    assert parts["presence"] > 1.0                          # "something is here" is wrong for a negative


def test_infonce_and_anchor():
    torch.manual_seed(0)
    s = torch.randn(4, 8)
    assert info_nce(s, s, 0.1) < info_nce(s, s.roll(1, 0), 0.1)               # matched pairs score best
    assert info_nce(s, s, 0.1) < 0.1
    c = s.clone()
    assert margin_anchor(s, c, 0.2) == 0                                         # within the margin: no loss
    assert margin_anchor(-s, c, 0.2) == pytest.approx(1.8, abs=1e-5)             # opposite: 1 - 0.2 + 1
    s.requires_grad_(True)
    total, parts = alignment_loss(s, s.roll(1, 0), c, W)
    total.backward()
    assert s.grad.abs().sum() > 0 and set(parts) == {"infonce", "anchor"}
