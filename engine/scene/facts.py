"""describe: per-instance scene facts and pairwise spatial relations (DESIGN.md section 3).

Facts come from the decoded mask and the pixels under it, never from captions. Every mask is
decoded once and kept as a crop to its bounding box; pairwise work only looks at pairs whose
boxes are near (relations) or intersect (occlusion), and only inside the boxes' intersection.

Coordinates are normalised to [0, 1] by the image width / height. A mask's bbox spans its
pixels' edges (x0 = left pixel / W, x1 = (right pixel + 1) / W); its centroid is the mean of
its pixels' centres.

Per-instance facts beyond geometry:
- size_rank / ordinal_x / ordinal_y: 1-based among non-crowd instances (ordinals within the
  category, by centroid; ties broken by instance id); crowd regions get 0.
- truncated: the mask comes within BORDER_PX pixels of an image edge (rasterised polygons
  often stop a pixel short of the edge they were drawn against).
- occlusion: share of the instance's bbox covered by the union of the other instances'
  masks. A proxy: it cannot tell "in front" from "behind", and a non-convex object's bbox
  also holds its neighbours; 0 means nothing else is annotated within its box.
- outline_contact: "id=share;..." the share of the outline along each touching neighbour's
  mask (the object may go on behind it; engine.scene.interactions.outline_contact).
- unmarked_kin: its category has unmarked look-alikes among its instances in this picture
  (a pile of oranges with some outlined; engine.scene.unmarked): not marked in full here.
- color / color_frac / color_palette: engine.scene.colors.color_summary over the masked pixels.
- upper_/lower_color, _frac, _hist, posture, posture_maybe: people only (engine.scene.people).

Relations (subject <relation> object), for pairs of nearby instances only (see `_pairs`):
- left_of / right_of: the subject's box ends left of the object's box start (within a small
  tolerance), or the boxes overlap vertically and each centroid lies outside the other's box
  on the proper side. right_of(b, a) is emitted exactly when left_of(a, b) is.
- above / below: the same along y.
- next_to (symmetric): left_of or right_of, the boxes share at least half of the smaller
  height, and the horizontal gap is below near_distance.
- on: the subject's lower edge rests on the object's upper part (between a small contact
  tolerance above the object's top and the object's middle), most of the subject's width lies
  over the object, the subject is not much wider than the object, it rises above the object's
  top, and the masks touch: in ON_MIN_CONTACT of the subject's columns the object's mask
  reaches the subject's lowest pixel. A picture cannot tell support from occlusion (a chair
  behind a horse also "rests on" it), so `on` is a proxy too.
- inside: at least INSIDE_MIN of the subject's mask lies within the object's mask with its
  holes filled (COCO masks are modal: a container's mask has a hole where its content is).
- overlapping (symmetric): the masks share at least OVERLAP_MIN of the smaller mask and
  neither is inside the other.
Crowd regions get facts and take part in relations; they get rank and ordinal 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from scipy import ndimage

from engine.scene import interactions, masks
from engine.scene.colors import color_summary
from engine.scene.people import people_facts
from engine.scene.unmarked import unmarked_kin
from engine.records import records
from engine.config import FactsConfig
from engine.sources.imageio import load_rgb
from schemas.facts import FACTS, POS_X, POS_Y, RELATIONS_TABLE

BORDER_PX = 2        # a mask within this many pixels of an edge touches it (rasterised polygons stop short)
SIDE_TOL = 0.10      # left_of / above: boxes may interpenetrate by this share of the smaller extent
ON_CONTACT = 0.10    # on: the subject's bottom may float this share of its height above the object
ON_MAX_WIDTH = 1.2   # on: the subject is at most this much wider than its support
ON_MIN_CONTACT = 0.3  # on: share of the subject's columns whose lowest pixel meets the object's mask
INSIDE_MIN = 0.90    # inside: share of the subject's mask within the object's filled mask
OVERLAP_MIN = 0.05   # overlapping: intersection as a share of the smaller mask
SIDES = ("left", "right", "top", "bottom")


@dataclass
class _Inst:
    """One decoded instance: its row, its mask cropped to the pixel box [y0:y1, x0:x1]."""
    row: dict
    crop: np.ndarray
    px: tuple[int, int, int, int]          # x0, y0, x1, y1 in pixels, end-exclusive
    area: int
    cx: float                              # normalised centroid
    cy: float
    box: tuple[float, float, float, float]  # normalised x0, y0, x1, y1
    _filled: np.ndarray | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.row["instance_id"]

    @property
    def crowd(self) -> bool:
        return bool(self.row["iscrowd"])

    @property
    def filled(self) -> np.ndarray:
        if self._filled is None:
            self._filled = ndimage.binary_fill_holes(self.crop)
        return self._filled


def _decode(row: dict, width: int, height: int) -> _Inst:
    box = (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"]) if "bbox_w" in row else None
    found = masks.decode_crop(row["rle"], height, width, box)
    if found is None:
        raise ValueError(f"instance {row['instance_id']} of image {row['image_id']}: empty mask")
    crop, x0, y0 = found
    x1, y1 = x0 + crop.shape[1], y0 + crop.shape[0]
    # the centroid from per-column and per-row pixel counts: the same exact integer sums (and
    # so the same means) as averaging every pixel's coordinates, without listing them
    cols, rows = crop.sum(axis=0), crop.sum(axis=1)
    area = int(cols.sum())
    cx = (x0 + int(cols @ np.arange(len(cols))) / area + 0.5) / width
    cy = (y0 + int(rows @ np.arange(len(rows))) / area + 0.5) / height
    return _Inst(row, crop, (x0, y0, x1, y1), area, float(cx), float(cy),
                 (x0 / width, y0 / height, x1 / width, y1 / height))


def _third(v: float, names: tuple[str, str, str]) -> str:
    return names[0] if v < 1 / 3 else names[1] if v < 2 / 3 else names[2]


def _ranks(items: list[_Inst], key) -> dict[str, int]:
    """1-based rank of non-crowd items by key (ties broken by instance id); crowd -> 0."""
    ranked = sorted((i for i in items if not i.crowd), key=lambda i: (key(i), i.id))
    out = {i.id: 0 for i in items}
    out.update({i.id: k for k, i in enumerate(ranked, 1)})
    return out


def _overlap_slices(a: _Inst, b: _Inst):
    """Slices of a's and b's crops covering the intersection of their pixel boxes, or None."""
    x0, y0 = max(a.px[0], b.px[0]), max(a.px[1], b.px[1])
    x1, y1 = min(a.px[2], b.px[2]), min(a.px[3], b.px[3])
    if x0 >= x1 or y0 >= y1:
        return None
    sa = (slice(y0 - a.px[1], y1 - a.px[1]), slice(x0 - a.px[0], x1 - a.px[0]))
    sb = (slice(y0 - b.px[1], y1 - b.px[1]), slice(x0 - b.px[0], x1 - b.px[0]))
    return sa, sb


def _boxes(items: list[_Inst]) -> np.ndarray:
    return np.array([i.px for i in items], dtype=np.int64).reshape(-1, 4)


def _occlusion(items: list[_Inst]) -> dict[str, float]:
    """Share of each instance's bbox covered by the union of the other instances' masks.
    Only instances whose boxes intersect are looked at (found with one vectorised test per
    instance), so the work follows the overlaps, not the square of the instance count."""
    px = _boxes(items)
    out = {}
    for k, a in enumerate(items):
        hits = np.flatnonzero((px[:, 0] < a.px[2]) & (px[:, 2] > a.px[0]) & (px[:, 1] < a.px[3]) & (px[:, 3] > a.px[1]))
        covered = np.zeros(a.crop.shape, dtype=bool)
        for j in hits:
            if j == k:
                continue
            b = items[j]
            s = _overlap_slices(a, b)
            if s is not None:
                covered[s[0]] |= b.crop[s[1]]
        out[a.id] = float(covered.sum() / covered.size)
    return out


# -- relations -------------------------------------------------------------------------------

def _left_of(a: _Inst, b: _Inst) -> bool:
    ax0, ay0, ax1, ay1 = a.box
    bx0, by0, bx1, by1 = b.box
    tol = SIDE_TOL * min(ax1 - ax0, bx1 - bx0)
    if ax1 <= bx0 + tol:
        return True
    v_overlap = min(ay1, by1) - max(ay0, by0)
    return v_overlap > 0 and a.cx <= bx0 and b.cx >= ax1


def _above(a: _Inst, b: _Inst) -> bool:
    ax0, ay0, ax1, ay1 = a.box
    bx0, by0, bx1, by1 = b.box
    tol = SIDE_TOL * min(ay1 - ay0, by1 - by0)
    # over it in the picture: sharing columns (a thing high up and far to the side is not
    # "above" another, it is elsewhere in the frame)
    h_overlap = min(ax1, bx1) - max(ax0, bx0)
    return h_overlap > 0 and (ay1 <= by0 + tol or (a.cy <= by0 and b.cy >= ay1))


def _on(a: _Inst, b: _Inst) -> bool:
    ax0, ay0, ax1, ay1 = a.box
    bx0, by0, bx1, by1 = b.box
    h_overlap = min(ax1, bx1) - max(ax0, bx0)
    contact = ON_CONTACT * (ay1 - ay0)
    return (h_overlap >= 0.5 * (ax1 - ax0)
            and ax1 - ax0 <= ON_MAX_WIDTH * (bx1 - bx0)
            and by0 - contact <= ay1 <= by0 + 0.5 * (by1 - by0)
            and ay0 < by0 and a.cy < b.cy
            and _rests_on(a, b))


def _rests_on(a: _Inst, b: _Inst) -> bool:
    """Mask contact for `on`: in enough of the shared columns, the object's mask reaches the
    row of the subject's lowest pixel (within a small tolerance)."""
    x0, x1 = max(a.px[0], b.px[0]), min(a.px[2], b.px[2])
    if x0 >= x1:
        return False
    ca = a.crop[:, x0 - a.px[0]:x1 - a.px[0]]
    cb = b.crop[:, x0 - b.px[0]:x1 - b.px[0]]
    has_a, has_b = ca.any(axis=0), cb.any(axis=0)
    low = a.px[1] + ca.shape[0] - 1 - np.argmax(ca[::-1], axis=0)   # subject's lowest row per column
    top = b.px[1] + np.argmax(cb, axis=0)                            # object's first / last row
    bottom = b.px[1] + cb.shape[0] - 1 - np.argmax(cb[::-1], axis=0)
    tol = max(BORDER_PX, ON_CONTACT * ca.shape[0])
    touching = has_a & has_b & (top <= low + tol) & (bottom >= low - tol)
    return touching.sum() >= ON_MIN_CONTACT * a.crop.any(axis=0).sum()


def _inside(a: _Inst, b: _Inst, s) -> bool:
    if s is None or a.area >= b.area:
        return False
    in_box = a.crop[s[0]]
    if in_box.sum() < INSIDE_MIN * a.area:  # cheap bound before the hole filling
        return False
    return (in_box & b.filled[s[1]]).sum() >= INSIDE_MIN * a.area


def _pair_relations(a: _Inst, b: _Inst, near_distance: float) -> list[tuple[str, str, str]]:
    out = []
    a_left, b_left = _left_of(a, b), _left_of(b, a)
    if a_left:
        out += [(a.id, "left_of", b.id), (b.id, "right_of", a.id)]
    if b_left:
        out += [(b.id, "left_of", a.id), (a.id, "right_of", b.id)]
    if _above(a, b):
        out += [(a.id, "above", b.id), (b.id, "below", a.id)]
    if _above(b, a):
        out += [(b.id, "above", a.id), (a.id, "below", b.id)]
    if a_left or b_left:
        v_overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
        gap_x = max(a.box[0], b.box[0]) - min(a.box[2], b.box[2])
        if v_overlap >= 0.5 * min(a.box[3] - a.box[1], b.box[3] - b.box[1]) and gap_x < near_distance:
            out += [(a.id, "next_to", b.id), (b.id, "next_to", a.id)]
    s = _overlap_slices(a, b)
    a_in_b = _inside(a, b, s)
    b_in_a = s is not None and _inside(b, a, (s[1], s[0]))
    if a_in_b:
        out.append((a.id, "inside", b.id))
    if b_in_a:
        out.append((b.id, "inside", a.id))
    if not (a_in_b or b_in_a):
        if _on(a, b):
            out.append((a.id, "on", b.id))
        if _on(b, a):
            out.append((b.id, "on", a.id))
        if s is not None:
            inter = int((a.crop[s[0]] & b.crop[s[1]]).sum())
            if inter >= OVERLAP_MIN * min(a.area, b.area):
                out += [(a.id, "overlapping", b.id), (b.id, "overlapping", a.id)]
    return out


def _pairs(items: list[_Inst], near_distance: float, max_partners: int) -> list[tuple[int, int]]:
    """Unordered index pairs to relate: each instance with its max_partners nearest neighbours
    whose boxes are closer than near_distance (Euclidean gap between boxes, 0 when they touch;
    ties by centroid distance). The union is taken so that relations stay symmetric: an
    instance may therefore have more partners when it is among others' nearest.

    One row of distances at a time: memory is linear in the instance count (an n x n matrix
    of 20,000 instances would be 3 GB), and at most max_partners pairs are kept per instance."""
    n = len(items)
    if n < 2:
        return []
    box = np.array([i.box for i in items])
    c = np.array([(i.cx, i.cy) for i in items])
    ids = [i.id for i in items]
    chosen = set()
    for i in range(n):
        gx = np.maximum(0, np.maximum(box[i, 0], box[:, 0]) - np.minimum(box[i, 2], box[:, 2]))
        gy = np.maximum(0, np.maximum(box[i, 1], box[:, 1]) - np.minimum(box[i, 3], box[:, 3]))
        gap = np.hypot(gx, gy)
        gap[i] = np.inf
        cand = np.flatnonzero(gap < near_distance)
        if len(cand) > max_partners:  # keep the nearest few before the exact sort below
            cut = np.partition(gap[cand], max_partners - 1)[max_partners - 1]
            cand = cand[gap[cand] <= cut]
        dist = np.hypot(c[cand, 0] - c[i, 0], c[cand, 1] - c[i, 1])
        order = sorted(range(len(cand)), key=lambda k: (gap[cand[k]], dist[k], ids[cand[k]]))
        chosen.update((min(i, int(cand[k])), max(i, int(cand[k]))) for k in order[:max_partners])
    return sorted(chosen)


# -- public ----------------------------------------------------------------------------------

def describe_image(image_row: dict, instances: pd.DataFrame, rgb: np.ndarray,
                   cfg: FactsConfig | None = None) -> tuple[list[dict], list[dict]]:
    """Facts rows (schemas.facts.FACTS) and relation rows (RELATIONS_TABLE) for one image.

    `instances` holds that image's rows of schemas.instances.INSTANCES; `rgb` is its HxWx3 pixels.
    """
    cfg = cfg or FactsConfig()
    image_id = image_row["image_id"]
    width, height = int(image_row["width"]), int(image_row["height"])
    if rgb.shape[:2] != (height, width):
        raise ValueError(f"image {image_id} ({image_row.get('uri')}): pixels are {rgb.shape[1]}x{rgb.shape[0]}, "
                         f"the images table says {width}x{height}")
    items = [_decode(r, width, height) for r in records(instances)]
    if not items:
        return [], []

    size_rank = _ranks(items, lambda i: -i.area)
    rank_in_cat, ord_x, ord_y, count = {}, {}, {}, {}
    for cat in {i.row["category"] for i in items}:
        group = [i for i in items if i.row["category"] == cat]
        rank_in_cat.update(_ranks(group, lambda i: -i.area))
        ord_x.update(_ranks(group, lambda i: i.cx))
        ord_y.update(_ranks(group, lambda i: i.cy))
        n = sum(not i.crowd for i in group)
        count.update({i.id: n for i in group})
    occlusion = _occlusion(items)
    touch_pairs = interactions.touching_pairs(items) if len(items) > 1 else {}
    contact = interactions.outline_contact(items, touch_pairs)
    people = people_facts(items, rgb, width, height, BORDER_PX)   # garments and posture (engine.scene.people)
    kin = unmarked_kin(items, rgb)      # piles with unmarked members (engine.scene.unmarked)

    image_area = float(width * height)
    facts = []
    for it in items:
        x0, y0, x1, y1 = it.px
        color, color_frac, palette = color_summary(rgb[y0:y1, x0:x1], it.crop)
        touching = (x0 < BORDER_PX, x1 > width - BORDER_PX, y0 < BORDER_PX, y1 > height - BORDER_PX)
        area_frac = it.area / image_area
        facts.append({
            "instance_id": it.id,
            "image_id": image_id,
            "category": it.row["category"],
            "supercategory": it.row["supercategory"],
            "iscrowd": it.crowd,
            "area": float(it.area),
            "area_frac": area_frac,
            "size_rank": size_rank[it.id],
            "size_rank_in_category": rank_in_cat[it.id],
            "size_label": "small" if area_frac < cfg.small_frac else "large" if area_frac > cfg.large_frac else "medium",
            "cx": it.cx, "cy": it.cy,
            "x0": it.box[0], "y0": it.box[1], "x1": it.box[2], "y1": it.box[3],
            "pos_x": _third(it.cx, POS_X),
            "pos_y": _third(it.cy, POS_Y),
            "ordinal_x": ord_x[it.id],
            "ordinal_y": ord_y[it.id],
            "category_count": count[it.id],
            "color": color,
            "color_frac": color_frac,
            "color_palette": palette,
            "truncated": any(touching),
            "truncated_sides": ",".join(s for s, t in zip(SIDES, touching) if t),
            "occlusion": occlusion[it.id],
            "outline_contact": contact[it.id],
            "unmarked_kin": it.row["category"] in kin,
            **people[it.id],
        })

    triples = set()
    for i, j in _pairs(items, cfg.near_distance, cfg.max_relation_partners):
        triples.update(_pair_relations(items[i], items[j], cfg.near_distance))
    triples |= interactions.relate(items, float(width * height), touch_pairs)     # riding, holding, in front of / behind, touching
    relations = [{"image_id": image_id, "subject_id": s, "relation": r, "object_id": o}
                 for s, r, o in sorted(triples)]
    return facts, relations


def describe(images: pd.DataFrame, instances: pd.DataFrame, cfg: FactsConfig | None = None,
             load: Callable[[str, tuple[int, int]], np.ndarray] = load_rgb) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Facts and relations tables for all images (schemas.facts FACTS, RELATIONS_TABLE).

    Images without instances contribute nothing and are not read. `load(uri, (width, height))`
    returns an image's HxWx3 uint8 pixels as drawn at that size (engine.sources.imageio.load_rgb).
    """
    cfg = cfg or FactsConfig()
    unknown = set(instances["image_id"]) - set(images["image_id"])
    if unknown:
        raise ValueError(f"instances refer to images missing from the images table: {sorted(unknown)[:5]}")
    groups = dict(tuple(instances.groupby("image_id", sort=False)))
    facts, relations = [], []
    for row in images.to_dict("records"):
        group = groups.get(row["image_id"])
        if group is None:
            continue
        try:
            # the size the masks were drawn at decides EXIF orientation (engine.sources.imageio)
            rgb = load(row["uri"], (int(row["width"]), int(row["height"])))
        except Exception as e:
            raise ValueError(f"{row['uri']}: cannot read pixels of image {row['image_id']}: {e}") from e
        f, r = describe_image(row, group, rgb, cfg)
        facts += f
        relations += r
    return FACTS.from_records(facts), RELATIONS_TABLE.from_records(relations)
