"""Overfit the tiny SAM3-I on a handful of samples: train gIoU before vs after.

    PYTHONPATH=. .venv/bin/python bench/overfit_sam3i.py --release out/release [--images 3 --epochs 150]

Takes the simple (stage-1) instructions with one target from the first few images of the
release's train split, trains stage 1 only on them (tiny random SAM3 base, CPU), and prints the
loss and the train gIoU / P@0.5 of the untrained and the trained model on those same
instructions. A working model + loss + trainer drives gIoU far up; a broken one does not.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from model.overfit import overfit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--release", required=True)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--lr", type=float, default=1e-2)
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
