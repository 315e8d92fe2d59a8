"""From model outputs to one predicted mask per instruction (what evaluation and the checker score).

As SAM3-I scores (SAM3I_REFERENCE.md, "Metrics"): a query counts when sigmoid(class logit) *
sigmoid(presence logit) >= `threshold`, and the union of the counted queries' masks (upsampled to
the image) is the prediction; for a 1:1 instruction the top-1 query's mask is the prediction.
Nothing counted -> an empty mask (the right answer for a negative).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from model.data import pixels
from model.sam3i import Sam3I, image_size
from model.tokenizer import tokenize


def union_masks(out, sizes: list[tuple[int, int]], cardinalities: list[str], threshold: float = 0.5) -> list[np.ndarray]:
    scores = out.pred_logits.float().sigmoid() * out.presence_logits.float().sigmoid().reshape(-1, 1)
    result = []
    for i, (h, w) in enumerate(sizes):
        if cardinalities[i] == "1:1":
            keep = scores[i].argmax().reshape(1)
        else:
            keep = (scores[i] >= threshold).nonzero().flatten()
        if len(keep) == 0:
            result.append(np.zeros((h, w), bool))
            continue
        m = F.interpolate(out.pred_masks[i, keep].float()[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        result.append((m > 0).any(0).cpu().numpy())
    return result


class Segmenter:
    """Segment instructions on one image with a Sam3I model, by tier."""

    def __init__(self, model: Sam3I, device: str = "cpu", threshold: float = 0.5):
        self.model = model.to(device).eval()
        self.device, self.threshold = device, threshold
        self.size = image_size(model)

    @torch.no_grad()
    def segment(self, rgb: np.ndarray, texts: list[str], tier: str, cardinalities: list[str] | None = None) -> list[np.ndarray]:
        h, w = rgb.shape[:2]
        x = pixels(rgb, self.size)[None].to(self.device)
        vision = self.model.vision(x)
        ids, am = tokenize(texts)
        n = len(texts)
        vision_n = type(vision)(**{k: (tuple(t.expand(n, *t.shape[1:]) for t in v) if isinstance(v, tuple) else v)
                                   for k, v in vision.items()})
        out = self.model(tier, ids.to(self.device), am.to(self.device), vision_embeds=vision_n)
        return union_masks(out, [(h, w)] * n, cardinalities or ["1:N"] * n, self.threshold)
