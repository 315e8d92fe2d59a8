"""Drawn scenes with exact ground truth: a COCO source for the offline demo and for tests.

`make_dataset(out_dir, n_images, seed)` writes `instances.json` (COCO: polygons for fully
visible polygonal shapes, compressed RLE otherwise, uncompressed RLE for crowd regions),
`images/*.png` and `truth.json`, and returns a `SyntheticDataset`. Same seed, same bytes.

Layout: the image is a 3x3 grid of slots, one per (pos_y, pos_x) third. Each used slot holds
one *group* inside a box of at most SLOT_BOX x SLOT_BOX (normalised) around the slot centre,
shifted a little per row / column so that same-category instances never share a centroid x or
y. Groups never touch each other (gaps >= 1/3 - SLOT_BOX - shifts); inside a group:
  single   one shape
  pair     two shapes side by side with a small gap    -> left_of / right_of, next_to
  stack    a cup standing on a dining table            -> cup on / above table
  nested   an apple drawn inside a bowl                -> apple inside bowl (bowl mask has a hole)
  overlap  two shapes overlapping (amodal masks)       -> overlapping both ways, left_of / right_of
  crowd    a flock of dots annotated as one iscrowd region
Shapes use COCO category names and ids so that the lexicon applies.

`truth.json` holds, per annotation id: category, colour name, pos_x / pos_y and ordinal_x /
ordinal_y among same-category non-crowd instances (null where the intended geometry is too
close to a boundary or a tie to be unambiguous), category_count, iscrowd; and `relations`, the
intended [image_id, subject_ann_id, relation, object_ann_id] that must hold. The relations in
EXCLUSIVE (on, inside, overlapping) hold exactly where listed. The truth assumes the default
facts thresholds (near_distance >= 0.1).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from engine.scene import masks

PALETTE = {
    "red": (215, 35, 35), "orange": (245, 140, 25), "yellow": (240, 215, 40), "green": (40, 165, 65),
    "blue": (40, 85, 215), "purple": (125, 50, 170), "pink": (245, 135, 190), "brown": (115, 70, 35),
    "black": (25, 25, 25), "white": (240, 240, 240), "gray": (128, 128, 128),
}
# name -> (coco id, supercategory, shape)
CATEGORIES = {
    "book": (84, "indoor", "rectangle"),
    "sports ball": (37, "sports", "ellipse"),
    "kite": (38, "sports", "diamond"),
    "cake": (61, "food", "triangle"),
    "dining table": (67, "furniture", "rectangle"),
    "cup": (47, "kitchen", "rectangle"),
    "bowl": (51, "kitchen", "ellipse"),
    "apple": (53, "food", "ellipse"),
    "bird": (16, "animal", "ellipse"),
}
FREE = ("book", "sports ball", "kite", "cake")
GROUPS = ("single", "pair", "stack", "nested", "overlap", "crowd")
GROUP_WEIGHTS = (6, 1, 1, 1, 1, 0.5)
EXCLUSIVE = ("on", "inside", "overlapping")
SLOT_BOX = 0.25                       # normalised side of the box a group fits in
ROW_SHIFT_X = (-0.03, 0.0, 0.03)      # per grid row: x shift of its slots
COL_SHIFT_Y = (-0.025, 0.0, 0.025)    # per grid column: y shift of its slots
AMBIGUOUS = 0.01                      # truth is null when a centroid is this close to a boundary or a tie
NEAR_TRUTH = 0.10                     # left_of / above / next_to are intended only below this gap
NOISE_SIGMA = 4.0


@dataclass
class _Shape:
    category: str
    color: str
    kind: str                          # rectangle | ellipse | triangle | diamond | dots
    box: tuple[float, float, float, float]  # normalised x0, y0, x1, y1
    role: str
    amodal: bool = False               # annotate the whole shape, not just its visible pixels
    iscrowd: bool = False
    dots: tuple = ()                   # (cx, cy, r) normalised, for crowds

    @property
    def centroid(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        if self.kind == "dots":
            return (float(np.mean([d[0] for d in self.dots])), float(np.mean([d[1] for d in self.dots])))
        if self.kind == "triangle":  # apex up: centroid at 2/3 of the height
            return ((x0 + x1) / 2, y0 + 2 * (y1 - y0) / 3)
        return ((x0 + x1) / 2, (y0 + y1) / 2)


@dataclass
class SyntheticDataset:
    root: Path
    annotations: Path          # instances.json
    images_dir: Path
    truth_path: Path
    truth: dict

    def instance_truth(self, source_id: str) -> dict[str, dict]:
        """Truth per engine instance id ("<source_id>:<ann id>")."""
        return {f"{source_id}:{k}": v for k, v in self.truth["instances"].items()}

    def relation_truth(self, source_id: str) -> set[tuple[str, str, str, str]]:
        """Intended (image_id, subject_id, relation, object_id) in engine ids."""
        return {(f"{source_id}:{i}", f"{source_id}:{s}", r, f"{source_id}:{o}")
                for i, s, r, o in self.truth["relations"]}


# -- drawing ---------------------------------------------------------------------------------

def _px(box, width, height):
    x0, y0, x1, y1 = box
    return (round(x0 * width), round(y0 * height), round(x1 * width) - 1, round(y1 * height) - 1)


def _polygon(kind: str, px) -> list[tuple[int, int]] | None:
    x0, y0, x1, y1 = px
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    if kind == "rectangle":
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if kind == "triangle":
        return [(mx, y0), (x1, y1), (x0, y1)]
    if kind == "diamond":
        return [(mx, y0), (x1, my), (mx, y1), (x0, my)]
    return None


def _coco_polygon(kind: str, px) -> list[float] | None:
    """The COCO polygon (continuous pixel coordinates) closest to what PIL draws for px."""
    x0, y0, x1, y1 = px
    if kind == "rectangle":  # PIL fills pixels x0..x1 inclusive: the region [x0, x1 + 1)
        return [x0, y0, x1 + 1, y0, x1 + 1, y1 + 1, x0, y1 + 1]
    poly = _polygon(kind, px)
    return None if poly is None else [v + 0.5 for p in poly for v in p]


def _draw(draw: ImageDraw.ImageDraw, shape: _Shape, fill, width, height) -> None:
    if shape.kind == "dots":
        for cx, cy, r in shape.dots:
            draw.ellipse(_px((cx - r, cy - r * width / height, cx + r, cy + r * width / height), width, height), fill=fill)
        return
    px = _px(shape.box, width, height)
    poly = _polygon(shape.kind, px)
    if poly is None:
        draw.ellipse(px, fill=fill)
    else:
        draw.polygon(poly, fill=fill)


def _shape_mask(shape: _Shape, width, height) -> np.ndarray:
    im = Image.new("L", (width, height), 0)
    _draw(ImageDraw.Draw(im), shape, 1, width, height)
    return np.asarray(im).astype(bool)


# -- layout ----------------------------------------------------------------------------------

def _box(cx, cy, w, h):
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _group(kind: str, cx: float, cy: float, rng: random.Random) -> tuple[list[_Shape], list[tuple[int, str, int]]]:
    """The shapes of one group centred at (cx, cy) and its intended relations (by shape index)."""
    colors = rng.sample(sorted(PALETTE), 2)
    if kind == "single":
        cat = rng.choice(FREE)
        w, h = rng.uniform(0.14, SLOT_BOX), rng.uniform(0.14, SLOT_BOX)
        return [_Shape(cat, colors[0], CATEGORIES[cat][2], _box(cx, cy, w, h), "single")], []
    if kind == "pair":
        gap = rng.uniform(0.02, 0.04)
        ws = [rng.uniform(0.08, (SLOT_BOX - gap) / 2) for _ in range(2)]
        x = cx - (ws[0] + gap + ws[1]) / 2
        shapes = []
        for k, w in enumerate(ws):
            cat = rng.choice(FREE)
            shapes.append(_Shape(cat, colors[k], CATEGORIES[cat][2], _box(x + w / 2, cy, w, rng.uniform(0.12, 0.18)), "pair"))
            x += w + gap
        return shapes, [(0, "left_of", 1), (1, "right_of", 0), (0, "next_to", 1), (1, "next_to", 0)]
    if kind == "stack":
        tw, th = rng.uniform(0.2, SLOT_BOX), rng.uniform(0.08, 0.1)
        cw, ch = rng.uniform(0.07, 0.1), rng.uniform(0.1, 0.13)
        top = cy - (th + ch) / 2
        cup = _Shape("cup", colors[0], "rectangle", (cx - cw / 2, top, cx + cw / 2, top + ch + 0.004), "stack_item")
        table = _Shape("dining table", colors[1], "rectangle", (cx - tw / 2, top + ch, cx + tw / 2, top + ch + th), "stack_base")
        return [table, cup], [(1, "on", 0), (1, "above", 0), (0, "below", 1)]
    if kind == "nested":
        ow, oh = rng.uniform(0.2, SLOT_BOX), rng.uniform(0.2, SLOT_BOX)
        iw, ih = rng.uniform(0.06, 0.08), rng.uniform(0.06, 0.08)
        bowl = _Shape("bowl", colors[0], "ellipse", _box(cx, cy, ow, oh), "nested_outer")
        apple = _Shape("apple", colors[1], "ellipse", _box(cx, cy, iw, ih), "nested_inner")
        return [bowl, apple], [(1, "inside", 0)]
    if kind == "overlap":
        d = 0.08
        shapes = []
        for k, dx in enumerate((-d / 2, d / 2)):
            cat = rng.choice(("book", "sports ball"))
            w, h = rng.uniform(0.12, 0.14), rng.uniform(0.12, 0.16)
            shapes.append(_Shape(cat, colors[k], CATEGORIES[cat][2], _box(cx + dx, cy, w, h), "overlap", amodal=True))
        return shapes, [(0, "overlapping", 1), (1, "overlapping", 0), (0, "left_of", 1), (1, "right_of", 0)]
    if kind == "crowd":
        r = 0.018
        dots = []
        while len(dots) < 6:  # dots spaced apart within the slot box
            p = (cx + rng.uniform(-0.1, 0.1), cy + rng.uniform(-0.09, 0.09), r)
            if all(np.hypot(p[0] - q[0], p[1] - q[1]) > 3 * r for q in dots):
                dots.append(p)
        xs, ys = [p[0] for p in dots], [p[1] for p in dots]
        box = (min(xs) - r, min(ys) - 2 * r, max(xs) + r, max(ys) + 2 * r)
        return [_Shape("bird", colors[0], "dots", box, "crowd", iscrowd=True, dots=tuple(dots))], []
    raise ValueError(f"unknown group kind {kind!r}; expected one of {GROUPS}")


def _scene(rng: random.Random, must: str, kinds: tuple[str, ...]) -> tuple[list[_Shape], list[tuple[int, str, int]], dict]:
    weights = [GROUP_WEIGHTS[GROUPS.index(k)] for k in kinds]
    slots = rng.sample([(r, c) for r in range(3) for c in range(3)], rng.randint(2, 6))
    shapes, rels, slot_of = [], [], {}
    for n, (row, col) in enumerate(sorted(slots)):
        kind = must if n == 0 else rng.choices(kinds, weights)[0]
        cx = (col + 0.5) / 3 + ROW_SHIFT_X[row]
        cy = (row + 0.5) / 3 + COL_SHIFT_Y[col]
        group, group_rels = _group(kind, cx, cy, rng)
        base = len(shapes)
        for s in group:
            slot_of[len(shapes)] = (row, col, kind)
            shapes.append(s)
        rels += [(base + a, r, base + b) for a, r, b in group_rels]
    # between single shapes in neighbouring slots: clear side-by-side / one-above-the-other pairs
    for a, sa in enumerate(shapes):
        for b, sb in enumerate(shapes):
            (ra, ca, ka), (rb, cb, kb) = slot_of[a], slot_of[b]
            if a == b or ka != "single" or kb != "single":
                continue
            gap_x, gap_y = sb.box[0] - sa.box[2], sb.box[1] - sa.box[3]
            if ra == rb and cb == ca + 1 and gap_x < NEAR_TRUTH:
                rels += [(a, "left_of", b), (b, "right_of", a)]
                v_overlap = min(sa.box[3], sb.box[3]) - max(sa.box[1], sb.box[1])
                if v_overlap >= 0.6 * min(sa.box[3] - sa.box[1], sb.box[3] - sb.box[1]):
                    rels += [(a, "next_to", b), (b, "next_to", a)]
            if ca == cb and rb == ra + 1 and gap_y < NEAR_TRUTH:
                rels += [(a, "above", b), (b, "below", a)]
    return shapes, rels, slot_of


def _third(v: float, names: tuple[str, str, str]) -> str | None:
    if min(abs(v - 1 / 3), abs(v - 2 / 3)) < AMBIGUOUS:
        return None
    return names[0] if v < 1 / 3 else names[1] if v < 2 / 3 else names[2]


def _ordinals(shapes: list[_Shape], axis: int) -> list[int | None]:
    """1-based rank by centroid along axis among same-category non-crowd shapes; 0 for crowd."""
    out: list[int | None] = [0] * len(shapes)
    for cat in {s.category for s in shapes}:
        idx = sorted((i for i, s in enumerate(shapes) if s.category == cat and not s.iscrowd),
                     key=lambda i: shapes[i].centroid[axis])
        vals = [shapes[i].centroid[axis] for i in idx]
        for k, i in enumerate(idx):
            tie = any(abs(vals[k] - vals[j]) < AMBIGUOUS for j in (k - 1, k + 1) if 0 <= j < len(vals))
            out[i] = None if tie else k + 1
    return out


def _rle_uncompressed(mask: np.ndarray) -> dict:
    flat = mask.flatten(order="F").astype(np.uint8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": counts}


def make_dataset(out_dir, n_images: int = 10, seed: int = 0, width: int = 320, height: int = 240,
                 kinds: tuple[str, ...] = GROUPS, polygons: bool = True) -> SyntheticDataset:
    """Write a synthetic COCO source to out_dir and return its paths and ground truth.

    Image i always contains a group of kind kinds[i % len(kinds)], so a dataset of at least
    len(kinds) images has every kind. `polygons=False` writes every mask as RLE.
    """
    for k in kinds:
        if k not in GROUPS:
            raise ValueError(f"unknown group kind {k!r}; expected one of {GROUPS}")
    root = Path(out_dir)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    coco = {"info": {"description": f"sam3i-engine synthetic scenes, seed {seed}"},
            "licenses": [{"id": 1, "name": "CC0 1.0 (generated scenes)",
                          "url": "https://creativecommons.org/publicdomain/zero/1.0/"}],
            "images": [], "annotations": [],
            "categories": [{"id": cid, "name": name, "supercategory": sup}
                           for name, (cid, sup, _) in sorted(CATEGORIES.items(), key=lambda kv: kv[1][0])]}
    truth = {"seed": seed, "exclusive": list(EXCLUSIVE), "instances": {}, "relations": []}
    ann_id = 0
    for image_id in range(1, n_images + 1):
        shapes, rels, slot_of = _scene(rng, kinds[(image_id - 1) % len(kinds)], kinds)
        bg = np.array([rng.randint(150, 200)] * 3) + np.array([rng.randint(-8, 8) for _ in range(3)])
        canvas = Image.new("RGB", (width, height), tuple(int(v) for v in bg))
        draw = ImageDraw.Draw(canvas)
        full = [_shape_mask(s, width, height) for s in shapes]
        visible = [m.copy() for m in full]
        for i, s in enumerate(shapes):  # later shapes are drawn over earlier ones
            _draw(draw, s, PALETTE[s.color], width, height)
            for j in range(i):
                visible[j] &= ~full[i]
        pixels = np.asarray(canvas).astype(np.float32) + noise.normal(0, NOISE_SIGMA, (height, width, 3))
        file_name = f"{image_id:06d}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(images_dir / file_name)
        coco["images"].append({"id": image_id, "file_name": file_name, "width": width, "height": height, "license": 1})

        ord_x, ord_y = _ordinals(shapes, 0), _ordinals(shapes, 1)
        ids = []
        for i, s in enumerate(shapes):
            ann_id += 1
            ids.append(ann_id)
            mask = full[i] if s.amodal else visible[i]
            occluded = not np.array_equal(mask, full[i])
            poly = None if s.iscrowd or occluded or not polygons else _coco_polygon(s.kind, _px(s.box, width, height))
            if s.iscrowd:
                seg = _rle_uncompressed(mask)
            elif poly is not None:
                seg = [[float(v) for v in poly]]
                mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, height, width))).astype(bool)
            else:
                seg = masks.to_coco_rle(masks.encode(mask), height, width)
            cid = CATEGORIES[s.category][0]
            coco["annotations"].append({
                "id": ann_id, "image_id": image_id, "category_id": cid, "segmentation": seg,
                "area": float(mask.sum()), "bbox": masks.bbox(masks.encode(mask), height, width),
                "iscrowd": int(s.iscrowd)})
            cx, cy = s.centroid
            truth["instances"][str(ann_id)] = {
                "image_id": image_id, "category": s.category, "color": s.color, "role": s.role,
                "group": slot_of[i][2], "iscrowd": s.iscrowd,
                "pos_x": _third(cx, ("left", "center", "right")), "pos_y": _third(cy, ("top", "middle", "bottom")),
                "ordinal_x": ord_x[i], "ordinal_y": ord_y[i],
                "category_count": sum(t.category == s.category and not t.iscrowd for t in shapes),
            }
        truth["relations"] += [[image_id, ids[a], r, ids[b]] for a, r, b in rels]

    ann_path, truth_path = root / "instances.json", root / "truth.json"
    ann_path.write_text(json.dumps(coco))
    truth_path.write_text(json.dumps(truth, indent=1))
    return SyntheticDataset(root, ann_path, images_dir, truth_path, truth)


def load_dataset(root) -> SyntheticDataset:
    """A dataset written earlier by make_dataset."""
    root = Path(root)
    truth_path = root / "truth.json"
    return SyntheticDataset(root, root / "instances.json", root / "images", truth_path,
                            json.loads(truth_path.read_text()))


@dataclass
class SyntheticTables:
    """A synthetic dataset run through ingest and describe: Scene-ready tables."""
    images: pd.DataFrame
    instances: pd.DataFrame
    facts: pd.DataFrame
    relations: pd.DataFrame


def describe_dataset(ds: SyntheticDataset, source_id: str = "synthetic", cfg=None) -> SyntheticTables:
    """Ingest and describe a synthetic dataset (a fraction of a second for tens of images).

    Build a scene with `engine.language.programs.Scene.from_tables(image_id, t.facts, t.relations)`.
    Raises if ingest quarantines anything: a synthetic source must be clean.
    """
    from engine.scene.facts import describe
    from engine.sources.ingest import SourceSpec, ingest

    result = ingest([SourceSpec(source_id, str(ds.annotations), str(ds.images_dir))])
    if len(result.quarantine):
        raise ValueError(f"{ds.annotations}: ingest quarantined synthetic records: "
                         f"{result.quarantine[['record_id', 'reason']].to_dict('records')[:5]}")
    facts, relations = describe(result.images, result.instances, cfg)
    return SyntheticTables(result.images, result.instances, facts, relations)
