"""Train/val split by a hash of each image's source identity.

The identity is `source_id + "/" + file_name`: it survives refreshes (new images do not move
old ones between splits, unlike a split by position) and re-ingests (orig ids can be
renumbered by a source export; file names rarely are). A hash of the identity mapped to [0, 1)
below `val_fraction` means val.

Images with identical bytes (the same photo in two sources, e.g. COCO and LVIS) are forced into
one split, the split of the smallest identity among them, so val never leaks into train.
"""
from __future__ import annotations

import hashlib

import pandas as pd

SPLITS = ("train", "val")


def split_of(identity: str, val_fraction: float) -> str:
    h = int.from_bytes(hashlib.sha256(identity.encode("utf-8")).digest()[:8], "big")
    return "val" if h / 2**64 < val_fraction else "train"


def assign_splits(images: pd.DataFrame, val_fraction: float) -> pd.Series:
    """Split name per row of an IMAGES frame, indexed like `images`."""
    identity = images["source_id"].astype(str) + "/" + images["file_name"].astype(str)
    # one identity per distinct image content, so duplicates share a split
    canonical = identity.groupby(images["sha256"]).transform("min")
    return canonical.map(lambda ident: split_of(ident, val_fraction)).rename("split")
