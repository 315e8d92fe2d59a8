"""The `sam3i` checker: re-segment the candidate with SAM3-I at its tier and compare masks.

The instruction is segmented on its image by a SAM3-I model (model/: a SAM3 base plus trained
adapters, check.sam3i) through the route of the spec's tier; the predicted union mask is compared
with the union of the spec's target masks at full image size. Pass when IoU >= check.sam3i_iou;
a negative passes when nothing is predicted. The IoU, the predicted and target pixel counts and
the reason go into the result (and so into the instruction's `checks` lineage).

torch, transformers and model/ are imported when the first candidate is checked, never at engine
import: the engine stays light, and only workers that run this check load a model. The model
lives on the worker that holds the checker, so give the unit stage a GPU
(`ray.stages.unit.num_gpus`) to run it there (`check.sam3i.device=auto` picks it up).
"""
from __future__ import annotations

import numpy as np

from engine.checks.base import CheckResult
from engine.config import Sam3iCheckConfig
from engine.generate.base import SpecView
from engine.sources.imageio import load_rgb
from engine.generate.llm_client import UnitImages
from engine.language.programs import Scene


class Sam3iChecker:
    name = "sam3i"

    def __init__(self, cfg: Sam3iCheckConfig, iou_threshold: float, load=load_rgb, model=None):
        self.cfg, self.iou_threshold = cfg, iou_threshold
        self.images = UnitImages(load, "check.sam3i")
        self._model = model            # a ready model.sam3i.Sam3I (tests); else built from cfg
        self._segmenter = None

    def bind_unit(self, images, instances) -> None:
        self.images.bind(images, instances)

    def segmenter(self):
        if self._segmenter is None:
            import torch

            from model.predict import Segmenter
            from model.sam3i import build_model, load_adapters

            model = self._model
            if model is None:
                model = build_model(self.cfg.base)
                if self.cfg.adapters:
                    load_adapters(model, self.cfg.adapters)
            device = self.cfg.device if self.cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
            self._segmenter = Segmenter(model, device, self.cfg.score_threshold)
        return self._segmenter

    def check(self, text: str, spec: SpecView, scene: Scene) -> CheckResult:
        rgb = self.images.pixels(spec.image_id, spec.spec_id)
        h, w = rgb.shape[:2]
        pred = self.segmenter().segment(rgb, [text], spec.tier, [spec.cardinality])[0]
        target = np.zeros((h, w), bool)
        for iid in spec.target_ids:
            target |= self.images.mask(iid, h, w)
        inter, union = int((pred & target).sum()), int((pred | target).sum())
        iou = 1.0 if union == 0 else inter / union
        detail = {"iou": round(iou, 4), "predicted_pixels": int(pred.sum()), "target_pixels": int(target.sum()),
                  "tier": spec.tier, "threshold": self.iou_threshold}
        if not spec.target_ids:
            if pred.any():
                return CheckResult(self.name, "fail", f"a negative, but SAM3-I segments {int(pred.sum())} pixels "
                                                      f"for it at the {spec.tier} tier", detail)
            return CheckResult(self.name, "pass", "a negative, and SAM3-I segments nothing", detail)
        if iou >= self.iou_threshold:
            return CheckResult(self.name, "pass", f"SAM3-I re-segments the target at IoU {iou:.2f} "
                                                  f"(>= {self.iou_threshold})", detail)
        return CheckResult(self.name, "fail", f"SAM3-I's mask for this {spec.tier} instruction has IoU {iou:.2f} "
                                              f"with the target (< {self.iou_threshold})", detail)
