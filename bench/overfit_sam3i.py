"""Overfit the tiny SAM3-I on a handful of samples: train gIoU before vs after.

    PYTHONPATH=. .venv/bin/python bench/overfit_sam3i.py --release out/release [--images 3 --epochs 60]

Takes the simple (stage-1) instructions with one target from the first few images of the
release's train split, trains stage 1 only on them (tiny random SAM3 base, CPU), and prints the
loss and the train gIoU / P@0.5 of the untrained and the trained model on those same
instructions. A working model + loss + trainer drives gIoU far up; a broken one does not.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from model import metrics
from model.config import load_train_config
from model.data import ReleaseData
from model.evaluate import evaluate_items
from model.predict import Segmenter
from model.train import make_model, run_training


def overfit_items(data: ReleaseData, per_image: int = 2) -> list:
    """Up to `per_image` single-target simple instructions per image, each of a distinct target."""
    chosen, seen = [], {}
    for it in data.tier_items(("simple",)):
        if len(it.target_ids) == 1 and seen.get(it.key, 0) < per_image and \
                all(c.target_ids != it.target_ids for c in chosen if c.key == it.key):
            chosen.append(it)
            seen[it.key] = seen.get(it.key, 0) + 1
    return chosen


def overfit(release: str, images: int = 3, epochs: int = 60, lr: float = 3e-3, output: str | None = None,
            per_image: int = 2, say=print):
    """Train stage 1 on a few instructions; returns (model, data, items, before, after, log)."""
    out = output or tempfile.mkdtemp(prefix="sam3i-overfit-")
    cfg = load_train_config(None, [f"data.release={release}", f"data.max_samples={images}", f"train.output={out}",
                                   f"train.stage1.epochs={epochs}", f"train.stage1.lr={lr}", "train.stage2.epochs=0",
                                   "train.stage3.epochs=0", "train.grad_clip=1.0", "train.warmup_steps=10",
                                   "train.weight_decay=0", "data.batch_size=4", "train.log_every=1000",
                                   "train.checkpoint_every=100000"])
    data = ReleaseData(release, "train", images)
    data.items = overfit_items(data, per_image)
    model = make_model(cfg)
    before = metrics.summarize(evaluate_items(Segmenter(model), data))
    result = run_training(cfg, data=data, model=model, say=say)
    model.eval()
    after = metrics.summarize(evaluate_items(Segmenter(model), data))
    log = [line for line in __import__("json").loads("[" + ",".join(
        open(f"{out}/loss_log.jsonl").read().splitlines()) + "]")]
    return model, data, result, before, after, log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--release", required=True)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--lr", type=float, default=3e-3)
    a = ap.parse_args()
    t = time.time()
    _, data, _, before, after, log = overfit(a.release, a.images, a.epochs, a.lr, say=lambda *_: None)
    first, last = np.mean([r["loss"] for r in log[:3]]), np.mean([r["loss"] for r in log[-3:]])
    print(f"{len(data.items)} simple instructions on {a.images} images, {len(log)} steps, {time.time() - t:.0f} s")
    print(f"loss        {first:8.3f} -> {last:8.3f}  (x{last / first:.2f})")
    for k in ("gIoU", "cIoU", "P@0.5"):
        print(f"train {k:5s} {100 * before[k]:7.1f} -> {100 * after[k]:7.1f}")


if __name__ == "__main__":
    main()
