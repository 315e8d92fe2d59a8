"""Evaluate SAM3-I adapters on a release split: `python -m model.evaluate --release R --adapters A`.

Every accepted instruction of the split is segmented at its own tier (concept through the
untouched SAM3 path); the predicted union mask is scored against the union of its target masks
at the image's full size (model.metrics): gIoU, cIoU and P@0.5 per tier, per cardinality and
per both, and no-target accuracy for negatives. Prints a table; writes JSON with `--json`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from model import metrics
from model.config import TrainConfig, load_train_config
from model.data import ReleaseData
from model.predict import Segmenter
from model.sam3i import load_adapters


def evaluate_items(segmenter: Segmenter, data: ReleaseData, items=None, batch: int = 8) -> list[dict]:
    records = []
    by_image: dict[tuple[str, str], list] = {}
    for it in items if items is not None else data.items:
        by_image.setdefault((it.key, it.tier), []).append(it)
    for (key, tier), its in by_image.items():
        rgb = data.rgb(key)
        h, w = rgb.shape[:2]
        for k in range(0, len(its), batch):
            chunk = its[k:k + batch]
            preds = segmenter.segment(rgb, [i.text for i in chunk], tier, [i.cardinality for i in chunk])
            for it, pred in zip(chunk, preds):
                target = data.target_masks(it, h, w).any(0) if it.target_ids else np.zeros((h, w), bool)
                records.append(metrics.record(pred, target, tier=it.tier, cardinality=it.cardinality,
                                              key=it.key, text=it.text))
    return records


def evaluate_release(cfg: TrainConfig, adapters: str | None, split: str = "val", json_path: str | None = None,
                     max_samples: int | None = None, device: str | None = None) -> dict:
    from model.train import make_model, pick_device

    data = ReleaseData(cfg.data.release, split, max_samples)
    model = make_model(cfg)
    if adapters:
        load_adapters(model, adapters)
    seg = Segmenter(model, device or pick_device(cfg.train.device))
    records = evaluate_items(seg, data)
    result = {"release": cfg.data.release, "split": split, "adapters": adapters, "base": cfg.model.base,
              "table": metrics.table(records)}
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=1))
    return result


def render(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"SAM3-I on {result['release']} [{result['split']}]")
    for col in ("group", "samples", "gIoU", "cIoU", "P@0.5", "negatives", "no-target acc"):
        t.add_column(col, justify="left" if col == "group" else "right", no_wrap=True)

    def f(v):
        return "-" if v is None else f"{100 * v:.1f}"

    for name, m in result["table"].items():
        t.add_row(name, str(m["samples"]), f(m.get("gIoU")), f(m.get("cIoU")), f(m.get("P@0.5")),
                  str(m["negatives"]), f(m.get("no_target_accuracy")))
    Console(width=None if sys.stdout.isatty() else 140).print(t)   # piped: do not squeeze columns


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--release", required=True)
    p.add_argument("--adapters", help="adapter checkpoint (e.g. <run>/checkpoints/stage3.pt); none = untrained adapters")
    p.add_argument("--split", default="val")
    p.add_argument("--config", help="the training YAML (for model.base and adapter sizes)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", help="write the metrics here")
    p.add_argument("--max-samples", type=int)
    a = p.parse_args(argv)
    cfg = load_train_config(a.config, a.overrides + [f"data.release={a.release}"])
    if a.adapters and a.config is None:      # the checkpoint knows the model it was trained with
        saved = torch.load(a.adapters, map_location="cpu", weights_only=False).get("config")
        if saved:
            cfg = load_train_config(None, a.overrides + [f"data.release={a.release}"])
            cfg = cfg.model_copy(update={"model": TrainConfig.model_validate(saved).model})
    try:
        result = evaluate_release(cfg, a.adapters, a.split, a.json, a.max_samples)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    render(result)
    if a.json:
        print(f"metrics written to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
