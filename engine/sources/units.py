"""Stable work units: fixed batches of images whose id is a hash of what they contain.

Membership. Within each source, images are sorted by their original (COCO) id and cut into
consecutive batches of `unit_size`. COCO exports hand out ids in increasing order, so the
common refresh — new images appended with higher ids — only fills the last, partial unit and
opens new ones after it; every full unit keeps its members and its id. An image inserted or
removed in the middle shifts the batches after it: those units get new ids and are recomputed
(correct, only more work). Content-defined chunking would localise such edits too, at the
cost of variable unit sizes; fixed sizes keep per-unit resources predictable.

Identity. A unit's id is "u-" + the first 16 hex digits of sha256 over its members' sorted
(image_id, image sha256, annotation digest) lines. So the id changes whenever anything a
later stage reads changes: an image's bytes, or (when instances are given) its masks,
categories or crowd flags. Same content, same id — on any machine, in any run.
"""
from __future__ import annotations

import hashlib

import pandas as pd

UNIT_PREFIX = "u-"
_DIGEST_COLUMNS = ("instance_id", "category_id", "category", "supercategory", "iscrowd", "rle")


def annotation_digests(instances_df: pd.DataFrame) -> dict[str, str]:
    """image_id -> sha256 over that image's instances (order-independent)."""
    lines: dict[str, list[str]] = {}
    for row in instances_df[["image_id", *_DIGEST_COLUMNS]].itertuples(index=False):
        lines.setdefault(row.image_id, []).append("\t".join(str(v) for v in row[1:]))
    return {
        image_id: hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()
        for image_id, rows in lines.items()
    }


def unit_id(members: list[tuple[str, ...]]) -> str:
    """Id of a unit from its members' (image_id, sha256[, annotation digest]) tuples."""
    payload = "\n".join("\t".join(m) for m in sorted(members))
    return UNIT_PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:16]


def assign_units(
    images_df: pd.DataFrame, unit_size: int, instances_df: pd.DataFrame | None = None
) -> pd.Series:
    """unit_id for every row of images_df (same index).

    images_df needs source_id, orig_id, image_id and sha256. Pass instances_df (the INSTANCES
    table) so that annotation edits change the unit id, which an incremental refresh needs.
    """
    if unit_size <= 0:
        raise ValueError(f"unit_size must be positive, got {unit_size}")
    out = pd.Series(index=images_df.index, dtype=object, name="unit_id")
    if images_df.empty:
        return out.astype(str)
    digests = annotation_digests(instances_df) if instances_df is not None else {}
    ordered = images_df.sort_values(["source_id", "orig_id"], kind="stable")
    for _, group in ordered.groupby("source_id", sort=True):
        for start in range(0, len(group), unit_size):
            batch = group.iloc[start:start + unit_size]
            members = [
                (image_id, sha, digests.get(image_id, ""))
                for image_id, sha in zip(batch["image_id"], batch["sha256"])
            ]
            out.loc[batch.index] = unit_id(members)
    return out.astype(str)
