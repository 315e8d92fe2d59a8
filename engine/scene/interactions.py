"""Instance facts between touching masks: interactions (riding, holding), depth from occlusion
(in_front_of / behind) and plain contact (touching), as relation triples.

All of them need the two masks to touch (within CONTACT_PX pixels): nothing is said about
things apart. Each is decided only where the geometry leaves no doubt, and the others stay
unsaid; `touching` is kept for every touching pair so that a reader's *maybe* is known:
a distractor that touches the object may be read as holding it or standing in front of it
(engine/language/margins.py), and "the person not holding an umbrella" is only sure of
someone who touches no umbrella at all.

Interactions follow the category-pair priors of engine/lexicon/interactions.py:
- mount (person riding a horse, bicycle ...): the subject's head is above the object's top, its
  lowest pixel lies inside the object's height (legs into it, feet off the ground: a person
  standing beside or walking a horse reaches the ground), its centre is over the object.
- board (skis, surfboard ...): the board lies at the subject's feet and under them.
- hand (cup, racket, phone ...): a smaller object touching the subject along a good share of its
  own outline, away from the feet, touching no other person (whose hand?) and no table, shelf
  or seat (a cup on the table in front of someone touches them too).
- canopy (umbrella): just above the subject's head, touching it, over its centre, and touching
  no other person.
Depth: not with a surface (a cup is not "in front of" the table it stands on) nor slivers; A is in front of B when A's mask bites into B's convex hull (B's outline continues behind
A) and B together with that bite fills most of its hull (B is a compact thing with a piece
missing, not a frame or a bicycle one sees through), while B fills next to nothing of A's hull.
A person in front has arms and legs apart, so the one behind shows inside the person's hull:
there the front bite must be three times the reverse one instead (judged on the shared photos:
riders in front of a truck and of each other, girls sitting in front of friends).
Measured on the shared COCO photos, looser limits (a bite of a few percent, a reverse bite
relative to B's own area) called a girl "behind" the sheep whose head her head hides.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from engine.lexicon import load_lexicon
from engine.lexicon.interactions import CONTACT, INTERACTION_PRIORS, WORN

CONTACT_PX = 3              # masks this close touch (rasterised polygons leave gaps)
MIN_CONTACT_PX = 6          # ... in at least this many pixels
HAND_OUTLINE_SHARE = 0.12   # hand: share of the object's outline touching the subject
HAND_MAX_AREA = 0.5         # hand: object area at most this share of the subject's
MOUNT_CONTACT_SHARE = 0.05  # mount / board / canopy: share of the smaller outline in contact
DEPTH_BITE_OF_HULL = 0.08   # depth: the front mask fills this share of the other's convex hull
DEPTH_SOLIDITY = 0.75       # the one behind plus the bite fills this share of its hull
DEPTH_REVERSE = 0.02        # the one behind fills at most this share of the front one's hull
DEPTH_REVERSE_OWN = 0.05    # ... and at most this share of its own mask lies in that hull
DEPTH_MIN_AREA = 0.004      # both at least this share of the image
DEPTH_LIMB_DOMINANCE = 3.0  # a person in front: their bite at least this many times the reverse one
DEPTH_LIMB_REVERSE_OWN = 0.3  # ... and at most this share of the one behind lies in their hull
SURFACE_SUPERCATEGORIES = ("furniture", "kitchen")   # a thing touching these may be standing on them
SURFACE_CATEGORIES = ("dining table", "desk", "bed", "couch", "bench", "chair", "toilet", "sink",
                      "refrigerator", "oven", "microwave", "shelf", "counter", "table", "table-merged",
                      "floor", "floor-wood", "floor-other-merged", "road", "pavement-merged", "grass-merged",
                      "dirt-merged", "sand", "snow", "playingfield", "rug-merged")


def _paint(inst, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """inst's mask in the pixel window [y0:y1, x0:x1] (zeros outside its box)."""
    out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    ix0, iy0 = max(x0, inst.px[0]), max(y0, inst.px[1])
    ix1, iy1 = min(x1, inst.px[2]), min(y1, inst.px[3])
    if ix0 < ix1 and iy0 < iy1:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = inst.crop[iy0 - inst.px[1]:iy1 - inst.px[1],
                                                              ix0 - inst.px[0]:ix1 - inst.px[0]]
    return out


def _erode(crop: np.ndarray) -> np.ndarray:
    """ndimage.binary_erosion(crop, border_value=0) with its default 4-neighbour cross, as four
    shifted ANDs (the same pixels, several times faster on the small crops here)."""
    out = crop.copy()
    out[1:] &= crop[:-1]
    out[:-1] &= crop[1:]
    out[:, 1:] &= crop[:, :-1]
    out[:, :-1] &= crop[:, 1:]
    out[0] = out[-1] = False      # outside the crop counts as background
    out[:, 0] = out[:, -1] = False
    return out


def _dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """ndimage.binary_dilation(mask, iterations=...) with the 4-neighbour cross, as shifted ORs
    (the same pixels; the callers pad the mask, so nothing reaches its edge)."""
    out = mask.copy()
    for _ in range(iterations):
        prev = out.copy()
        out[1:] |= prev[:-1]
        out[:-1] |= prev[1:]
        out[:, 1:] |= prev[:, :-1]
        out[:, :-1] |= prev[:, 1:]
    return out


def _outline(crop: np.ndarray) -> np.ndarray:
    return crop & ~_erode(crop)


def _near(inst, r: int) -> np.ndarray:
    """inst's mask dilated by r, over its box grown by r on every side (cached on the instance)."""
    if getattr(inst, "_near", None) is None:
        padded = np.pad(inst.crop, r)
        inst._near = _dilate(padded, r)
    return inst._near


def _outline_mask(inst) -> np.ndarray:
    if getattr(inst, "_outline_mask", None) is None:
        inst._outline_mask = _outline(inst.crop)
    return inst._outline_mask


def contact(a, b, r: int = CONTACT_PX) -> tuple[int, int]:
    """(b's pixels within r of a's mask, b's outline pixels within r of a's mask)."""
    x0, y0 = max(a.px[0] - r, b.px[0]), max(a.px[1] - r, b.px[1])
    x1, y1 = min(a.px[2] + r, b.px[2]), min(a.px[3] + r, b.px[3])
    if x0 >= x1 or y0 >= y1:
        return 0, 0
    ax, ay = a.px[0] - r, a.px[1] - r            # origin of a's grown box
    near = _near(a, r)[y0 - ay:y1 - ay, x0 - ax:x1 - ax]
    sb = (slice(y0 - b.px[1], y1 - b.px[1]), slice(x0 - b.px[0], x1 - b.px[0]))
    touch = near & b.crop[sb]
    n = int(touch.sum())
    if not n:
        return 0, 0
    return n, int((touch & _outline_mask(b)[sb]).sum())


def _outline_len(inst) -> int:
    if getattr(inst, "_outline_len", None) is None:
        inst._outline_len = int(_outline_mask(inst).sum())
    return inst._outline_len


def _hull(inst):
    """(hull equations, hull area in px) of inst's mask, cached on the instance; None when flat."""
    if getattr(inst, "_hull", None) is None:
        ys, xs = np.nonzero(_outline_mask(inst))
        pts = np.column_stack([xs + inst.px[0] + 0.5, ys + inst.px[1] + 0.5])
        try:
            h = ConvexHull(pts)
            inst._hull = (h.equations, float(h.volume))
        except (QhullError, ValueError):
            inst._hull = (None, 0.0)
    return inst._hull


def _inside_hull(a, b) -> int:
    """How many of a's pixels lie inside b's convex hull.

    Row by row: in each row of pixel centres the hull is an interval of x, bounded by the
    facets (x * ex + y * ey + c <= 1e-9, as qhull's equations), and a's pixels in it are
    counted with a running sum, instead of testing every pixel against every facet. The same
    pixels count: hull vertices are pixel centres, so a centre lies on an edge (within the
    1e-9 tolerance, counted) or at least ~1e-3 px from it, far beyond either way's rounding."""
    eq, _ = _hull(b)
    if eq is None:
        return 0
    x0, y0 = max(a.px[0], b.px[0]), max(a.px[1], b.px[1])
    x1, y1 = min(a.px[2], b.px[2]), min(a.px[3], b.px[3])
    if x0 >= x1 or y0 >= y1:
        return 0
    win = _paint(a, x0, y0, x1, y1)
    rows = np.flatnonzero(win.any(axis=1))
    if not len(rows):
        return 0
    ex, ey, ec = eq[:, 0], eq[:, 1], eq[:, 2]
    rhs = 1e-9 - (np.outer(rows + y0 + 0.5, ey) + ec)     # per row and facet: ex * x <= rhs
    with np.errstate(divide="ignore", over="ignore"):
        hi = np.min(rhs[:, ex > 0] / ex[ex > 0], axis=1, initial=np.inf)
        lo = np.max(rhs[:, ex < 0] / ex[ex < 0], axis=1, initial=-np.inf)
    level = np.all(rhs[:, ex == 0] >= 0, axis=1)          # facets along the rows bound y only
    # columns k of the window whose centre x = x0 + k + 0.5 lies in [lo, hi]
    width = x1 - x0
    first = np.clip(np.ceil(lo - x0 - 0.5), 0, width).astype(np.int64)
    last = np.clip(np.floor(hi - x0 - 0.5), -1, width - 1).astype(np.int64)
    runs = np.zeros((len(rows), width + 1), dtype=np.int64)
    np.cumsum(win[rows], axis=1, out=runs[:, 1:])
    idx = np.arange(len(rows))
    counts = runs[idx, last + 1] - runs[idx, np.minimum(first, last + 1)]
    return int(counts[level].sum())


def _inside_hull_pointwise(a, b) -> int:
    """_inside_hull by testing every pixel against every facet (the reference the tests compare)."""
    eq, _ = _hull(b)
    if eq is None:
        return 0
    x0, y0 = max(a.px[0], b.px[0]), max(a.px[1], b.px[1])
    x1, y1 = min(a.px[2], b.px[2]), min(a.px[3], b.px[3])
    if x0 >= x1 or y0 >= y1:
        return 0
    ys, xs = np.nonzero(_paint(a, x0, y0, x1, y1))
    if not len(xs):
        return 0
    pts = np.column_stack([xs + x0 + 0.5, ys + y0 + 0.5])
    inside = np.all(pts @ eq[:, :2].T + eq[:, 2] <= 1e-9, axis=1)
    return int(inside.sum())


def in_front(a, b) -> bool:
    """a occludes b (see the module docstring)."""
    _, hull_b = _hull(b)
    _, hull_a = _hull(a)
    if hull_b <= 0 or hull_a <= 0:
        return False
    bite = _inside_hull(a, b)
    if bite < DEPTH_BITE_OF_HULL * hull_b or (b.area + bite) < DEPTH_SOLIDITY * hull_b:
        return False
    # the one behind must not sit inside the front one's hull either, measured both against that
    # hull (a sheep whose outline the girl's head cuts) and against itself (a person standing
    # before a wood: all of them lies inside the trees' hull, a tiny share of that hull)
    reverse = _inside_hull(b, a)
    if reverse <= DEPTH_REVERSE * hull_a and reverse <= DEPTH_REVERSE_OWN * b.area:
        return True
    return _limb_gaps(a) and _dominant_bite(bite / hull_b, reverse / hull_a, reverse / max(1, b.area))


def _limb_gaps(inst) -> bool:
    """A person: arms and legs leave gaps in the convex hull where whoever stands behind shows."""
    return inst.row["category"] == "person"


def _dominant_bite(bite: float, reverse: float, reverse_own: float) -> bool:
    """For a front mask with limb gaps, what of the one behind shows inside its hull is measured
    against its own bite: a person standing in front of another bites far deeper into the other's
    hull than the other shows between their arms and legs. Two people side by side, each reaching
    into the other's hull about as much (a girl and the sheep whose head her head hides), are
    left undecided."""
    return bite >= DEPTH_LIMB_DOMINANCE * reverse and reverse_own <= DEPTH_LIMB_REVERSE_OWN


def _thing(inst) -> bool:
    """A countable thing the default lexicon knows (not stuff such as trees or sky, nor a
    category it has never heard of, whose shape nothing here can vouch for)."""
    e = load_lexicon().entry(inst.row["category"])
    return e is not None and not e.stuff


def _surface(inst) -> bool:
    return inst.row["category"] in SURFACE_CATEGORIES or inst.row.get("supercategory") in SURFACE_SUPERCATEGORIES


def _interaction(p, o, geometry: str, outline_contact: int) -> bool:
    px0, py0, px1, py1 = p.box
    ox0, oy0, ox1, oy1 = o.box
    ph, oh, ow = py1 - py0, oy1 - oy0, ox1 - ox0
    share = outline_contact / max(1, min(_outline_len(p), _outline_len(o)))
    if geometry == "mount":
        return (share >= MOUNT_CONTACT_SHARE and py0 < oy0 and oy0 + 0.3 * oh < py1 < oy1 - 0.05 * oh
                and abs(p.cx - o.cx) <= 0.3 * ow and p.cy < o.cy)
    if geometry == "board":
        ocy = (oy0 + oy1) / 2
        h_overlap = min(px1, ox1) - max(px0, ox0)
        return (share >= MOUNT_CONTACT_SHARE and py1 - 0.2 * ph <= ocy <= py1 + 0.1 * ph
                and oy1 >= py1 - 0.05 * ph and h_overlap >= 0.5 * min(px1 - px0, ow) and o.cy > p.cy)
    if geometry == "hand":
        o_share = outline_contact / max(1, _outline_len(o))
        pw = px1 - px0
        return (o_share >= HAND_OUTLINE_SHARE and o.area <= HAND_MAX_AREA * p.area
                and o.cy <= py0 + 0.75 * ph and px0 - 0.25 * pw <= o.cx <= px1 + 0.25 * pw)
    if geometry == "canopy":
        return (share >= MOUNT_CONTACT_SHARE and oy1 <= py0 + 0.35 * ph and o.cy < py0 + 0.1 * ph
                and ox0 <= p.cx <= ox1)
    raise ValueError(f"unknown interaction geometry {geometry!r}")


def touching_pairs(items: list) -> dict[tuple[int, int], tuple[int, int]]:
    """(k, j) -> contact(items[k], items[j]) for every pair whose masks touch."""
    px = np.array([i.px for i in items], dtype=np.int64).reshape(-1, 4)
    r = CONTACT_PX
    touching: dict[tuple[int, int], tuple[int, int]] = {}
    for k, a in enumerate(items):
        hits = np.flatnonzero((px[:, 0] < a.px[2] + r) & (px[:, 2] > a.px[0] - r)
                              & (px[:, 1] < a.px[3] + r) & (px[:, 3] > a.px[1] - r))
        for j in hits:
            if j == k:
                continue
            c = contact(a, items[j])      # items[j]'s pixels near a
            if c[0] >= MIN_CONTACT_PX:
                touching[(k, int(j))] = c
    return touching


def outline_contact(items: list, touching: dict[tuple[int, int], tuple[int, int]]) -> dict[str, str]:
    """Per instance, the share of its outline that runs along each touching neighbour:
    "id=share;..." (shares of at least 0.02). Where a long stretch of an outline meets another
    mask, the object may go on behind it: its visible size is no measure of its size."""
    out: dict[str, list[str]] = {i.id: [] for i in items}
    for (k, j), (_, outline_c) in sorted(touching.items()):
        share = outline_c / max(1, _outline_len(items[j]))
        if share >= 0.02:
            out[items[j].id].append(f"{items[k].id}={share:.3f}")
    return {i: ";".join(v) for i, v in out.items()}


def relate(items: list, image_area: float,
           touching: dict[tuple[int, int], tuple[int, int]] | None = None) -> set[tuple[str, str, str]]:
    """Relation triples (subject, relation, object) among decoded instances (engine.scene.facts._Inst)
    of an image of `image_area` pixels (`touching`: touching_pairs(items), when already known)."""
    n = len(items)
    if n < 2:
        return set()
    if touching is None:
        touching = touching_pairs(items)
    out: set[tuple[str, str, str]] = set()
    for (k, j) in touching:
        out.add((items[k].id, CONTACT, items[j].id))
    # interactions: (subject, object) pairs whose categories have a prior
    found: dict[tuple[int, str], list[int]] = {}
    for (k, j), (_, outline_c) in touching.items():
        p, o = items[k], items[j]
        if p.crowd or o.crowd:
            continue
        prior = INTERACTION_PRIORS.get((p.row["category"], o.row["category"]))
        if prior is None:
            continue
        rel, geometry = prior
        if geometry in ("hand", "canopy"):
            others = [m for (a, m) in touching if a == j and m != k]
            if any(items[m].row["category"] == p.row["category"] for m in others):
                continue          # touching two people: whose hand is it?
            if geometry == "hand" and any(_surface(items[m]) for m in others):
                continue          # it may be standing on the table in front of them
        if _interaction(p, o, geometry, outline_c):
            found.setdefault((j, rel), []).append(k)
    for (j, rel), subjects in found.items():
        geometry = INTERACTION_PRIORS[(items[subjects[0]].row["category"], items[j].row["category"])][1]
        if geometry in ("hand", "canopy", "board") and len(subjects) > 1:
            continue              # one racket, one board: two candidates means the masks cannot tell
        out.update((items[k].id, rel, items[j].id) for k in subjects)
    # depth, for touching pairs of whole (non-crowd) instances; decided once per unordered pair
    for (k, j) in touching:
        if k > j or (j, k) not in touching:
            continue
        a, b = items[k], items[j]
        if a.crowd or b.crowd:
            continue
        ca, cb = a.row["category"], b.row["category"]
        if (ca, cb) in INTERACTION_PRIORS or (cb, ca) in INTERACTION_PRIORS:
            continue              # a horse is not "in front of" its rider, whether or not the riding was decided
        if (ca == "person" and cb in WORN) or (cb == "person" and ca in WORN):
            continue              # nor a glove "behind" the hand that wears it
        if not (_thing(a) and _thing(b)):
            continue              # trees, sky, walls: regions, not things one stands in front of
        if _surface(a) or _surface(b) or min(a.area, b.area) < DEPTH_MIN_AREA * image_area:
            continue              # a cup "in front of" the table it stands on; slivers nobody sees
        ab, ba = in_front(a, b), in_front(b, a)
        if ab != ba:
            front, back = (a, b) if ab else (b, a)
            out |= {(front.id, "in_front_of", back.id), (back.id, "behind", front.id)}
    return out
