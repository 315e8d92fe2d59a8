"""Overfit SAM3-I's stage 1 on a handful of instructions (bench/overfit_sam3i.py, tests).

The test that model, loss and trainer work together: a few single-target simple instructions,
trained long enough, must end far better segmented than by the untrained model.
"""
from __future__ import annotations

import json
import tempfile

from model import metrics
from model.config import load_train_config
from model.data import ReleaseData
from model.evaluate import evaluate_items
from model.predict import Segmenter
from model.train import make_model, run_training


def overfit_items(data: ReleaseData, images: int, per_image: int = 1) -> list:
    """Up to `per_image` single-target simple instructions on each of the first `images` images
    that have one besides other instances (so another instance's mask can stand in as a wrong
    answer), each of a distinct target."""
    chosen, seen = [], {}
    for it in data.tier_items(("simple",)):
        if it.key not in seen and len(seen) == images:
            continue
        if len(it.target_ids) == 1 and len(data.instances[it.key]) > 1 and seen.get(it.key, 0) < per_image and \
                all(c.target_ids != it.target_ids for c in chosen if c.key == it.key):
            chosen.append(it)
            seen[it.key] = seen.get(it.key, 0) + 1
    return chosen


def overfit(release: str, images: int = 3, epochs: int = 150, lr: float = 1e-2, output: str | None = None,
            per_image: int = 1, say=print):
    """Train stage 1 on a few instructions; returns (model, data, result, before, after, loss log)."""
    out = output or tempfile.mkdtemp(prefix="sam3i-overfit-")
    cfg = load_train_config(None, [f"data.release={release}", f"train.output={out}",
                                   f"train.stage1.epochs={epochs}", f"train.stage1.lr={lr}", "train.stage2.epochs=0",
                                   "train.stage3.epochs=0", "train.grad_clip=1.0", "train.warmup_steps=10",
                                   "train.weight_decay=0", "data.batch_size=4", "train.log_every=1000",
                                   "train.checkpoint_every=100000"])
    data = ReleaseData(release, "train", 4 * images)
    data.items = overfit_items(data, images, per_image)
    model = make_model(cfg)
    before = metrics.summarize(evaluate_items(Segmenter(model), data))
    result = run_training(cfg, data=data, model=model, say=say)
    model.eval()
    after = metrics.summarize(evaluate_items(Segmenter(model), data))
    log = [json.loads(line) for line in open(f"{out}/loss_log.jsonl").read().splitlines()]
    return model, data, result, before, after, log
