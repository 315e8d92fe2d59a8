"""SAM3-I training losses: SAM3's set-prediction loss and the stage-3 alignment losses.

Per image the predictions (Q queries: class logit, box, mask) are matched 1:1 to the target
instances (one for 1:1, several for 1:N / 1:All, none for a negative) by the Hungarian algorithm on
classification + box L1 + GIoU + mask dice costs. Matched queries get box L1 + GIoU and mask
focal + dice losses; every query gets a focal classification loss (1 for matched, 0 otherwise);
the presence token gets BCE against "has any target"; the semantic map gets focal + dice
against the union of the target masks. Negatives thus train everything towards "nothing".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from model.config import LossSection as LossWeights  # the weights are the config's loss section


def box_area(b: torch.Tensor) -> torch.Tensor:
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def generalized_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU of xyxy boxes a [N,4] and b [M,4] -> [N,M]."""
    lt, rb = torch.max(a[:, None, :2], b[None, :, :2]), torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    iou = inter / union.clamp(min=1e-7)
    lt_c, rb_c = torch.min(a[:, None, :2], b[None, :, :2]), torch.max(a[:, None, 2:], b[None, :, 2:])
    hull = (rb_c - lt_c).clamp(min=0).prod(-1)
    return iou - (hull - union) / hull.clamp(min=1e-7)


def sigmoid_focal(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Elementwise focal loss (not reduced)."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    return (alpha * targets + (1 - alpha) * (1 - targets)) * loss


def dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row dice loss of flattened masks [N, P]."""
    p = logits.sigmoid()
    num = 2 * (p * targets).sum(-1) + 1
    return 1 - num / (p.sum(-1) + targets.sum(-1) + 1)


def pairwise_dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    p = logits.sigmoid()
    num = 2 * p @ targets.T + 1
    return 1 - num / (p.sum(-1)[:, None] + targets.sum(-1)[None, :] + 1)


@torch.no_grad()
def hungarian_match(logits, boxes, masks, t_boxes, t_masks, w: LossWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """Query indices and target indices of the optimal 1:1 assignment for one image."""
    if len(t_boxes) == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    prob = logits.float().sigmoid()[:, None]
    cost = (-w.cls * prob + w.box_l1 * torch.cdist(boxes.float(), t_boxes, p=1)
            - w.giou * generalized_iou(boxes.float(), t_boxes)
            + w.mask_dice * pairwise_dice_cost(masks.flatten(1).float(), t_masks.flatten(1)))
    q, t = linear_sum_assignment(cost.cpu().numpy())
    return torch.as_tensor(q, dtype=torch.long), torch.as_tensor(t, dtype=torch.long)


def set_loss(out, targets: list[dict], w: LossWeights) -> tuple[torch.Tensor, dict[str, float]]:
    """SAM3's detection + segmentation loss for one batch.

    `targets[i]`: {"masks": [N, h, w] float at the pred-mask resolution, "boxes": [N, 4] xyxy in
    [0, 1]}; N = 0 for a negative."""
    logits, boxes, masks = out.pred_logits.float(), out.pred_boxes.float(), out.pred_masks.float()
    presence, semantic = out.presence_logits.float().reshape(-1), out.semantic_seg.float()
    dev = logits.device
    n_total = max(1, sum(len(t["boxes"]) for t in targets))
    cls_t = torch.zeros_like(logits)
    l1 = giou = m_focal = m_dice = sem = logits.new_zeros(())
    for i, t in enumerate(targets):
        tb, tm = t["boxes"].to(dev), t["masks"].to(dev)
        q, k = hungarian_match(logits[i], boxes[i], masks[i], tb, tm, w)
        if len(q):
            q, k = q.to(dev), k.to(dev)
            cls_t[i, q] = 1.0
            l1 = l1 + F.l1_loss(boxes[i, q], tb[k], reduction="sum")
            giou = giou + (1 - torch.diag(generalized_iou(boxes[i, q], tb[k]))).sum()
            pm, gm = masks[i, q].flatten(1), tm[k].flatten(1)
            m_focal = m_focal + sigmoid_focal(pm, gm).mean(-1).sum()
            m_dice = m_dice + dice(pm, gm).sum()
        union = tm.amax(0) if len(tm) else torch.zeros(semantic.shape[-2:], device=dev)
        s = semantic[i, 0].flatten()[None]
        sem = sem + sigmoid_focal(s, union.flatten()[None]).mean() + (dice(s, union.flatten()[None]).sum() if len(tm) else 0)
    cls = sigmoid_focal(logits, cls_t).sum() / n_total
    has = torch.tensor([float(len(t["boxes"]) > 0) for t in targets], device=dev)
    pres = F.binary_cross_entropy_with_logits(presence, has)
    parts = {"cls": cls, "presence": pres, "box_l1": l1 / n_total, "giou": giou / n_total,
             "mask_focal": m_focal / n_total, "mask_dice": m_dice / n_total, "semantic": sem / len(targets)}
    total = sum(getattr(w, k) * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of `a` should match row i of `b` among all rows of the batch."""
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    logits = a @ b.T / temperature
    labels = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def margin_anchor(x: torch.Tensor, concept: torch.Tensor, margin: float) -> torch.Tensor:
    """Keep an instruction embedding within `margin` (cosine) of its target's concept embedding."""
    cos = F.cosine_similarity(x.float(), concept.detach().float(), dim=-1)
    return F.relu(1 - margin - cos).mean()


def alignment_loss(simple: torch.Tensor, complex_: torch.Tensor, concept: torch.Tensor | None,
                   w: LossWeights, anchor_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """InfoNCE between the simple and complex embeddings of the same targets, plus the concept
    anchor; `concept` holds the rows `anchor_rows` (default: all) of targets that have one."""
    nce = info_nce(simple, complex_, w.temperature)
    if concept is not None:
        s, c = (simple, complex_) if anchor_rows is None else (simple[anchor_rows], complex_[anchor_rows])
        anchor = (margin_anchor(s, concept, w.margin) + margin_anchor(c, concept, w.margin)) / 2
    else:
        anchor = nce.new_zeros(())
    return w.infonce * nce + w.anchor * anchor, {"infonce": float(nce.detach()), "anchor": float(anchor.detach())}
