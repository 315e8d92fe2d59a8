"""Unmarked look-alikes: a category whose annotated instances lie among more of their kind that
nobody marked (an orange pile with eight of its oranges outlined, ten kiwis marked in an orchard
of hundreds, the umbrellas of a shop window). "Every orange" or "the leftmost orange" is then
wrong for a viewer, whatever the masks say; the planner treats such a category as not marked in
full in that image (Scene.incomplete), as it does LVIS's not-exhaustive lists.

The sign is read from the picture where the category's own instances lie: within the box
around them, the pixels outside every annotated mask that have the category's typical colours
(the colour bins holding TYPICAL_SHARE of its masks' pixels) and form solid blobs of an
instance's size and extent (LOOKALIKE_SIZE times the median instance area, no longer or wider
than the largest instance by that factor; a sky or a wall behind them is one far larger region
or long bands of its gradient, a texture only speckles that the opening removes). A category of at least
MIN_MEMBERS instances is flagged when such blobs add up to FLAG_SHARE of its annotated area.
Only collections are checked: one or two objects are what a photo is of, not a pile of them;
nor a category with a crowd region, whose annotators marked the rest of it as a crowd.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from engine.scene.colors import _hsv

MIN_MEMBERS = 3            # a category with this many instances may be a pile with unmarked members
TYPICAL_SHARE = 0.7        # the colour bins holding this share of the category's pixels are its colours
LOOKALIKE_SIZE = (0.5, 2.0)  # a look-alike blob: this range of the median instance area
FLAG_SHARE = 0.12          # look-alike blobs adding up to this share of the annotated area
OPENING = 2                # iterations of the opening that removes texture speckle
SOLID = 0.5                # a look-alike blob fills this share of its box
BLUR = 5                   # box blur (pixels) before the colours are binned
HUE_BINS, SAT_BINS, VAL_BINS = 18, 4, 4


def colour_bins(rgb: np.ndarray) -> np.ndarray:
    """HxW coarse HSV bin index per pixel."""
    h, s, v, _ = _hsv(rgb.reshape(-1, 3))
    hb = np.minimum((h / (360 / HUE_BINS)).astype(np.int32), HUE_BINS - 1)
    sb = np.minimum((s * SAT_BINS).astype(np.int32), SAT_BINS - 1)
    vb = np.minimum((v * VAL_BINS).astype(np.int32), VAL_BINS - 1)
    return ((hb * SAT_BINS + sb) * VAL_BINS + vb).reshape(rgb.shape[:2])


def _typical(bins_in: np.ndarray) -> np.ndarray:
    counts = np.bincount(bins_in, minlength=HUE_BINS * SAT_BINS * VAL_BINS)
    order = np.argsort(-counts, kind="stable")
    cum = np.cumsum(counts[order]) / max(1, counts.sum())
    return order[:int(np.searchsorted(cum, TYPICAL_SHARE)) + 1]


def unmarked_kin(items, rgb: np.ndarray) -> set[str]:
    """Categories of `items` (engine.scene.facts decoded instances) with unmarked look-alikes
    among their instances in this picture (see the module docstring)."""
    by_cat: dict[str, list] = {}
    for it in items:
        if not it.crowd:
            by_cat.setdefault(it.row["category"], []).append(it)
    # a crowd region says the annotators marked the rest of that kind as a crowd
    crowded = {it.row["category"] for it in items if it.crowd}
    piles = {c: m for c, m in by_cat.items() if len(m) >= MIN_MEMBERS and c not in crowded}
    if not piles:
        return set()
    height, width = rgb.shape[:2]
    marked = np.zeros((height, width), dtype=bool)
    for it in items:
        x0, y0, x1, y1 = it.px
        marked[y0:y1, x0:x1] |= it.crop
    # photo noise moves pixels across bin edges: bins of a lightly blurred picture, binned only
    # within the box around the piles (binning is per pixel: the same bins there as binning
    # the whole frame, the blur still sees the whole frame)
    ox = min(it.px[0] for m in piles.values() for it in m)
    oy = min(it.px[1] for m in piles.values() for it in m)
    ex = max(it.px[2] for m in piles.values() for it in m)
    ey = max(it.px[3] for m in piles.values() for it in m)
    bins = colour_bins(ndimage.uniform_filter(rgb, size=(BLUR, BLUR, 1))[oy:ey, ox:ex])
    out = set()
    for cat, members in sorted(piles.items()):
        own = np.concatenate([bins[it.px[1] - oy:it.px[3] - oy, it.px[0] - ox:it.px[2] - ox][it.crop]
                              for it in members])
        x0 = min(it.px[0] for it in members)
        y0 = min(it.px[1] for it in members)
        x1 = max(it.px[2] for it in members)
        y1 = max(it.px[3] for it in members)
        like = np.isin(bins[y0 - oy:y1 - oy, x0 - ox:x1 - ox], _typical(own)) & ~marked[y0:y1, x0:x1]
        like = ndimage.binary_opening(like, iterations=OPENING)
        labels, n = ndimage.label(like)
        if n == 0:
            continue
        median = float(np.median([it.area for it in members]))
        big_w = max(it.px[2] - it.px[0] for it in members)
        big_h = max(it.px[3] - it.px[1] for it in members)
        found = 0
        for k, sl in enumerate(ndimage.find_objects(labels), 1):
            size = int((labels[sl] == k).sum())
            bh, bw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            # shaped like one of them: an instance's area, no longer or wider than the largest
            # (a band of a sky's gradient spans the region), filling its box as a solid thing does
            if LOOKALIKE_SIZE[0] * median <= size <= LOOKALIKE_SIZE[1] * median and bw <= LOOKALIKE_SIZE[1] * big_w \
                    and bh <= LOOKALIKE_SIZE[1] * big_h and size >= SOLID * bw * bh:
                found += size
        if found >= FLAG_SHARE * sum(it.area for it in members):
            out.add(cat)
    return out
