"""Everything model/ takes from the engine, in one place (engine/ is to be reorganised), and the
turning of release samples into training items and tensors.

A release sample (engine.release.reader) holds an image, its instances (RLE masks) and accepted
instructions per tier, each with `target_ids`. One `Item` is one instruction of one sample; its
targets are the masks of `target_ids` (none for a negative).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.config import apply_overrides            # noqa: F401  (re-exported for model.config)
from engine.sources.imageio import decode_rgb
from engine.scene.masks import decode as decode_rle
from engine.release.reader import make_dataset

TIER_ORDER = ("concept", "simple", "complex")


@dataclass(frozen=True)
class Item:
    key: str                      # sample key in the release
    tier: str
    text: str
    target_ids: tuple[str, ...]
    cardinality: str
    target_key: str


class ReleaseData:
    """The instructions of one split of a release, with each image kept as its encoded bytes.

    `rank` / `world` are not applied here: every process indexes the whole split, and the trainer
    deals items out, so all ranks take the same number of steps whatever the shard count."""

    def __init__(self, release: str, split: str | None = "train", max_samples: int | None = None):
        self.release = release
        self.images: dict[str, bytes] = {}
        self.instances: dict[str, dict[str, dict]] = {}
        self.items: list[Item] = []
        for sample in make_dataset(release, split, decode_image=False, distributed=False):
            if max_samples is not None and len(self.images) >= max_samples:
                break
            key = sample["key"]
            self.images[key] = sample["image"]
            self.instances[key] = {i["instance_id"]: i for i in sample["instances"]}
            for tier in TIER_ORDER:
                for r in sample["instructions"][tier]:
                    missing = [t for t in r["target_ids"] if t not in self.instances[key]]
                    if missing:
                        raise ValueError(f"{release}: sample {key}, instruction {r.get('instruction_id')}: "
                                         f"targets {missing} are not instances of the sample")
                    self.items.append(Item(key, tier, r["text"], tuple(r["target_ids"]), r["cardinality"],
                                           r["target_key"]))
        if not self.items:
            raise ValueError(f"{release}: no instructions in split {split!r}")

    def tier_items(self, tiers: tuple[str, ...]) -> list[Item]:
        return [i for i in self.items if i.tier in tiers]

    def target_groups(self) -> list[tuple[Item | None, Item | None, Item | None]]:
        """(concept, simple, complex) instructions of one target (None where the target has none
        of that tier), for every target with a simple or a complex instruction: stage 3's items."""
        by_target: dict[tuple[str, str], dict[str, Item]] = {}
        for it in self.items:
            by_target.setdefault((it.key, it.target_key), {}).setdefault(it.tier, it)
        return [(d.get("concept"), d.get("simple"), d.get("complex")) for d in by_target.values()
                if "simple" in d or "complex" in d]

    def rgb(self, key: str) -> np.ndarray:
        return decode_rgb(self.images[key])

    def target_masks(self, item: Item, h: int, w: int) -> np.ndarray:
        """[N, h, w] bool masks of the item's targets at the image's full size."""
        inst = self.instances[item.key]
        out = [decode_rle(inst[t]["segmentation"]["counts"], h, w).astype(bool) for t in item.target_ids]
        return np.stack(out) if out else np.zeros((0, h, w), bool)


def pixels(rgb: np.ndarray, size: int) -> torch.Tensor:
    """HxWx3 uint8 -> [3, size, size] float, SAM3's normalisation (mean = std = 0.5)."""
    im = Image.fromarray(rgb).resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - 0.5) / 0.5


def mask_targets(masks: np.ndarray, mask_size: int) -> dict[str, torch.Tensor]:
    """Full-size bool masks -> soft masks at the prediction resolution and xyxy boxes in [0, 1]."""
    n, h, w = masks.shape
    if n == 0:
        return {"masks": torch.zeros(0, mask_size, mask_size), "boxes": torch.zeros(0, 4)}
    m = torch.from_numpy(masks.astype(np.float32))[:, None]
    small = F.interpolate(m, size=(mask_size, mask_size), mode="area")[:, 0]
    boxes = []
    for k in range(n):
        ys, xs = np.nonzero(masks[k])
        boxes.append([xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h] if len(xs) else [0, 0, 0, 0])
    return {"masks": small, "boxes": torch.tensor(boxes, dtype=torch.float32)}


def deal(items: list, seed: int, rank: int, world: int) -> list:
    """Shuffle with `seed`, then give each rank the same number of items."""
    items = list(items)
    random.Random(seed).shuffle(items)
    per_rank = len(items) // world
    if per_rank == 0:
        raise ValueError(f"{len(items)} items cannot be dealt to {world} workers")
    return items[rank * per_rank:(rank + 1) * per_rank]


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]
