"""Programs evaluated with margins: what a viewer would surely pick, and what one might pick.

The exact evaluator (`engine.language.programs.evaluate`) draws sharp lines: a centroid against a third
of the frame, a 2% gap between neighbours, one colour name. A person sees no difference near
those lines, so an instruction that only holds on one side of them is a coin toss for a
reader. Here every constraint answers, for each instance, *surely*, *maybe* or *surely not*:

- position: sure when the centroid lies POS_MARGIN inside its third and most of the object
  lies in that third; maybe up to POS_MARGIN outside it, when much of the object lies there,
  or, for left / right / top / bottom, anywhere in that half (how people read "on the left").
  "In the centre" said alone is read as the centre of the picture, so the target must not sit
  at its top or bottom.
- size label: sure when area_frac is a factor SIZE_MARGIN past the threshold, and never surely
  "small" when the mask is cut by the border or hidden by others (it may only look small).
- colour: sure when the dominant colour is the named one with a clear share; maybe when it is
  the named one or a neighbouring name (gray / black, orange / red ...): look-alikes, or when
  a good share of the object has it (a second colour of a two-tone object).
- left_of / right_of / next_to: sure when the facts relate the pair; maybe whenever loose box
  geometry allows it, for *every* object in the image. "Left of the car" reads over the whole
  picture, while the facts only relate near pairs.
- selectors (ordinal, superlative, count) decide only over a set that is sure: an ordinal
  needs clear gaps between the instances counted, a superlative a clear size ratio between
  masks that are not cut or hidden.

Every sure set is a subset of the exact evaluation and every maybe set a superset, so a program
that refers with a margin is also exactly right. `refers_with_margin` adds one rule about how
the text reads: an ordinal or superlative counts over the noun and its adjectives ("the person
second from the right, halfway up" reads as second of all people, "the lowest green kiwi" as
lowest of the green ones), so it must pick the same target with positions and relations left out.
"""
from __future__ import annotations

from engine.lexicon.interactions import CONTACT, INTERACTIONS, DEPTH
from engine.language.programs import FILTER_KINDS, ORDINAL_FROM, Constraint, Program, Scene, evaluate
from engine.scene.colors import parse_palette

POS_MARGIN = 0.05          # share of the frame a centroid must sit inside its third
POS_IN_THIRD = 0.6         # ... and this share of its extent along that axis must lie in it
POS_MAYBE_SHARE = 0.4      # an object with this share of its extent in a third may be read as there
CENTRE_REACH = 0.15        # a centre / middle target reaches this share of its extent past the frame's middle line
CENTRAL_BAND = (0.25, 0.75)  # "in the centre" with no height word: the target's height in the frame
SIZE_MARGIN = 1.5          # factor past the small / large threshold
HIDDEN_OCCLUSION = 0.15    # an instance whose box is this covered by others may be partly hidden
HIDDEN_CONTACT = 0.15      # ... or whose outline runs this much along other things' masks
COLOR_SURE_SHARE = 0.45    # a colour name is sure when this share of the mask has it
COLOR_MAYBE_SHARE = 0.20   # ... and may be read into an object with this share of it
ORD_MIN_GAP = 0.05         # ordinals: neighbours' centroids at least this far apart (frame share) ...
ORD_GAP_OF_EXTENT = 0.5   # ... and this share of the larger one's extent along the axis
ORD_SHIFT_OF_EXTENT = 0.3  # ... or, edges agreeing, the whole box shifted this share of its extent
ORD_MAX_EXTENT = 0.6       # an ordinal target spans at most this share of the frame along the axis
ORD_MAX_COUNTED = 8        # "third from the left" only where a viewer can count at a glance
ORD_MIN_COUNTED_SHARE = 0.1  # ... and every one counted before the target shows this share of its area
ORD_HIDDEN_COUNTED_SHARE = 0.3  # ... or, when partly hidden, this share
SUPERLATIVE_RATIO = 1.3    # largest / smallest: area ratio to the runner-up
NEXT_TO_SURE_GAP = 0.03    # next_to: boxes this close are surely next to each other
NEXT_TO_MAYBE_GAP = 0.20   # ... and this close may be read as next to each other
CLOSE_GAP = 0.02           # interactions / depth: boxes this close may be read as related
STACK_SURE_GAP = 0.05      # above / below: the boxes this close vertically (frame share) ...
STACK_OVERLAP = 0.5        # ... sharing this share of the narrower one's columns: directly above
# What one thing can be "inside" of (COCO names; a custom category is never a container here)
CONTAINERS = frozenset({"bowl", "cup", "wine glass", "vase", "sink", "toilet", "bathtub", "refrigerator",
                        "oven", "microwave", "suitcase", "handbag", "backpack", "car", "bus", "truck",
                        "train", "boat", "airplane", "basket", "box", "bottle"})
SURFACES = ("furniture",)  # things stand on these, not in them, whatever the mask hole says
SELECTOR_KINDS = ("ordinal", "superlative")
HEAD_KINDS = ("category", "supercategory", "affordance")
ADJECTIVE_KINDS = ("color", "size")   # said before the noun, so counted within

# Colour names a viewer confuses on real photos (shade, lighting, texture).
COLOR_NEIGHBOURS = {
    "black": {"gray", "brown", "blue"}, "gray": {"black", "white", "blue", "brown"},
    "white": {"gray", "yellow", "pink"}, "red": {"orange", "pink", "brown", "purple"},
    "orange": {"red", "yellow", "brown"}, "yellow": {"orange", "white", "green", "brown"},
    "green": {"yellow", "blue", "gray"}, "blue": {"purple", "green", "gray", "black"},
    "purple": {"blue", "pink", "red"}, "pink": {"red", "purple", "white"},
    "brown": {"black", "orange", "red", "gray", "yellow"},
}
INSTANCE_RELATIONS = INTERACTIONS + DEPTH
LIGHTING_NEIGHBOURS = {"gray": ("white",), "white": ("gray",)}   # names that light and shade swap
_THIRD = {"left": ("cx", 0), "center": ("cx", 1), "right": ("cx", 2),
          "top": ("cy", 0), "middle": ("cy", 1), "bottom": ("cy", 2)}


def cut_by_things(outline_contact, instances: dict) -> float:
    """Share of an instance's outline that runs along other things' masks (the facts'
    "id=share;..."), leaving out stuff regions: a cup's outline along the wall behind it says
    nothing of the cup's size, along the hand in front of it it does."""
    if not isinstance(outline_contact, str) or not outline_contact:
        return 0.0
    total = 0.0
    for part in outline_contact.split(";"):
        oid, _, share = part.rpartition("=")
        o = instances.get(oid)
        if o is not None and not o.get("stuff"):
            total += float(share)
    return min(1.0, total)


def _hidden(f: dict) -> bool:
    # cut by the frame, covered within its box, or cut along its outline by a thing in front
    return bool(f.get("truncated")) or float(f.get("occlusion", 0.0)) >= HIDDEN_OCCLUSION \
        or float(f.get("cut_by_things", 0.0)) >= HIDDEN_CONTACT


def _position(f: dict, value: str) -> tuple[bool, bool]:
    coord, b = _THIRD[value]
    c = float(f[coord])
    lo, hi = b / 3, (b + 1) / 3
    exact = value in (f["pos_x"], f["pos_y"])
    sure = exact and (b == 0 or c >= lo + POS_MARGIN) and (b == 2 or c <= hi - POS_MARGIN)
    if sure:
        # a person standing from the top to the bottom of the frame is not "halfway up": most of
        # the object must lie in its third (widened by the margin)
        axis = 0 if coord == "cx" else 1
        box = _box(f)
        a0, a1 = box[axis], box[axis + 2]
        inside = min(a1, hi + POS_MARGIN) - max(a0, lo - POS_MARGIN)
        sure = a1 - a0 <= 0 or inside >= POS_IN_THIRD * (a1 - a0)
        if b == 1 and a1 > a0:
            # "in the centre" / "halfway up": the object reaches the frame's middle line; one
            # just inside the middle third, wholly to one side of it, reads as left or right of it
            reach = CENTRE_REACH * (a1 - a0)
            sure = sure and a0 + reach <= 0.5 <= a1 - reach
    axis = 0 if coord == "cx" else 1
    box = _box(f)
    a0, a1 = box[axis], box[axis + 2]
    share_in = (min(a1, hi) - max(a0, lo)) / (a1 - a0) if a1 > a0 else 0.0
    # a distractor is a candidate when its centroid is near the third, or when much of it lies
    # there: three people reach the bottom of the frame, not only the one sitting low
    # "on the left-hand side" is read as the left half: an object left of the middle may be it
    half = (value in ("left", "top") and c < 0.5) or (value in ("right", "bottom") and c > 0.5)
    maybe = exact or (lo - POS_MARGIN <= c <= hi + POS_MARGIN) or share_in >= POS_MAYBE_SHARE or half
    return sure, maybe


def _size(f: dict, value: str, small: float, large: float) -> tuple[bool, bool]:
    a = float(f["area_frac"])
    exact = f["size_label"] == value
    if value == "small":
        return exact and a * SIZE_MARGIN < small and not _hidden(f), exact or a < small * SIZE_MARGIN or _hidden(f)
    if value == "large":
        return exact and a > large * SIZE_MARGIN, exact or a * SIZE_MARGIN > large or _hidden(f)
    return exact and small * SIZE_MARGIN < a < large / SIZE_MARGIN, exact or small / SIZE_MARGIN < a < large * SIZE_MARGIN


def _color(f: dict, value: str) -> tuple[bool, bool]:
    exact = f["color"] == value
    palette = parse_palette(f.get("color_palette", ""))
    # shade and light move white and gray into each other (a white toilet in shade reads gray):
    # either is sure only when the other holds no share a viewer may go by
    shifted = any(palette.get(n, 0.0) >= COLOR_MAYBE_SHARE for n in LIGHTING_NEIGHBOURS.get(value, ()))
    sure = exact and float(f["color_frac"]) >= COLOR_SURE_SHARE and not shifted
    # a two-tone object (a white bus with a broad red stripe) may be called by its second colour
    second = palette.get(value, 0.0) >= COLOR_MAYBE_SHARE
    return sure, exact or second or f["color"] in COLOR_NEIGHBOURS.get(value, ())


def _box(f: dict) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1; a fact row without a box (hand-made scenes) is a point at its centroid."""
    try:   # the usual fact row has its box: no generator per call (hot: ~10% of planning time)
        return float(f["x0"]), float(f["y0"]), float(f["x1"]), float(f["y1"])
    except KeyError:
        return tuple(float(f.get(k, f["cx"] if k[0] == "x" else f["cy"])) for k in ("x0", "y0", "x1", "y1"))


def _box_gap_x(a: dict, o: dict) -> float:
    (ax0, _, ax1, _), (ox0, _, ox1, _) = _box(a), _box(o)
    return max(ax0, ox0) - min(ax1, ox1)


def _v_overlap(a: dict, o: dict) -> float:
    (_, ay0, _, ay1), (_, oy0, _, oy1) = _box(a), _box(o)
    return min(ay1, oy1) - max(ay0, oy0)


def _relation(scene: Scene, i: str, rel: str, o: str) -> tuple[bool, bool]:
    exact = (i, rel, o) in scene.relations
    a, b = scene.instances[i], scene.instances[o]
    if rel in ("left_of", "right_of"):
        # a reader takes "left of the car" as anything whose middle is left of the car's middle
        loose = a["cx"] < b["cx"] if rel == "left_of" else a["cx"] > b["cx"]
        return exact, exact or loose
    if rel == "next_to":
        gap, vo = _box_gap_x(a, b), _v_overlap(a, b)
        sure = exact and gap <= NEXT_TO_SURE_GAP
        return sure, exact or (gap <= NEXT_TO_MAYBE_GAP and vo > 0)
    if rel == "inside" and b["supercategory"] in SURFACES:
        return False, exact   # a bowl "in" the table's mask hole stands on the table
    if rel == "inside" and b["category"] not in CONTAINERS:
        # a keyboard "inside the laptop" is part of it, a phone "inside the person" is held:
        # only things people put others into hold something
        return False, exact
    if rel in INSTANCE_RELATIONS:
        return exact, exact or _close(scene, i, o)
    if rel in ("above", "below"):
        sure, maybe = _stacked(a, b) if rel == "above" else _stacked(b, a)
        return exact and sure, exact or maybe
    return exact, exact   # mask-based (inside, overlapping, on): as computed


def _stacked(up: dict, down: dict) -> tuple[bool, bool]:
    """"Directly above" in the picture: sure when the boxes share most of the narrower one's
    columns and nearly meet; a reader may take anything higher whose columns touch the other's.
    (A thing far up the frame is not "above" one far below it: across a street that is depth.)"""
    (ux0, uy0, ux1, uy1), (dx0, dy0, dx1, dy1) = _box(up), _box(down)
    shared = min(ux1, dx1) - max(ux0, dx0)
    narrow = min(ux1 - ux0, dx1 - dx0)
    higher = float(up["cy"]) < float(down["cy"])
    sure = higher and uy1 <= dy0 + STACK_SURE_GAP and dy0 - uy1 <= STACK_SURE_GAP \
        and uy0 < dy0 and uy1 < dy1 and shared >= STACK_OVERLAP * narrow
    return sure, sure or (higher and shared > -CLOSE_GAP)


def _close(scene: Scene, i: str, o: str) -> bool:
    """Masks that touch, or boxes within CLOSE_GAP: a reader may see an interaction or an
    occlusion the facts did not decide (engine/scene/interactions.py keeps the unsure ones out)."""
    if (i, CONTACT, o) in scene.relations or (o, CONTACT, i) in scene.relations:
        return True
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = _box(scene.instances[i]), _box(scene.instances[o])
    return max(ax0, bx0) - min(ax1, bx1) < CLOSE_GAP and max(ay0, by0) - min(ay1, by1) < CLOSE_GAP


def _judge(c: Constraint, small: float, large: float):
    """The per-instance (sure, maybe) verdict of a constraint read from the fact row alone."""
    if c.kind == "position":
        return lambda f: _position(f, c.value)
    if c.kind == "color":
        return lambda f: _color(f, c.value)
    if c.kind == "size":
        return lambda f: _size(f, c.value, small, large)
    from engine.language.people import garment_margin, posture_margin
    if c.kind == "garment":
        return lambda f: garment_margin(f, c.value)
    if c.kind == "posture":
        return lambda f: posture_margin(f, c.value)
    raise AssertionError(c.kind)


def _clearly_apart(a: dict, b: dict, coord: str, axis: int, reverse: bool) -> bool:
    """`a` comes clearly before `b` counting along the axis: their centroids lie far apart for
    their size, or the whole of `a` is shifted that way (near edge, centroid and far edge each
    ORD_MIN_GAP ahead, on average a good share of its size), so a viewer who compares edges and
    one who compares middles agree. A person in mid-stride a step lower in a row is not."""
    sign = -1.0 if reverse else 1.0
    gap = sign * (float(b[coord]) - float(a[coord]))
    if gap < ORD_MIN_GAP:
        return False
    ba, bb = _box(a), _box(b)
    if gap >= ORD_GAP_OF_EXTENT * max(ba[axis + 2] - ba[axis], bb[axis + 2] - bb[axis]):
        return True
    near = sign * (bb[axis + 2 if reverse else axis] - ba[axis + 2 if reverse else axis])
    far = sign * (bb[axis if reverse else axis + 2] - ba[axis if reverse else axis + 2])
    extent = max(ba[axis + 2] - ba[axis], bb[axis + 2] - bb[axis])
    return min(near, far) >= ORD_MIN_GAP and (near + gap + far) / 3 >= ORD_SHIFT_OF_EXTENT * extent


def _ordinal_clear(ids: set[str], value: str, scene: Scene) -> str | None:
    I = scene.instances
    side, k = str(value).split(":")
    k = int(k)
    coord, reverse = ORDINAL_FROM[side]
    if k > len(ids) or (k > 1 and len(ids) > ORD_MAX_COUNTED):
        return None
    axis = 0 if coord == "cx" else 1
    order = sorted(ids, key=lambda i: (I[i][coord], i), reverse=reverse)

    def extent(i: str) -> float:
        box = _box(I[i])
        return box[axis + 2] - box[axis]
    # the viewer counts the first k and must also see where the k-th ends: every gap up to the
    # (k+1)-th is clear
    for a, b in zip(order[:k + 1], order[1:k + 1]):
        if not _clearly_apart(I[a], I[b], coord, axis, reverse):
            return None
    if extent(order[k - 1]) > ORD_MAX_EXTENT:
        return None   # a table across the whole frame is not "the one on the far right"
    target_area = float(I[order[k - 1]]["area"])
    if any(_inconspicuous(I[i], target_area) for i in order[:k - 1]):
        return None   # "the second bicycle from the right" where the first is a handlebar behind a scooter
    return order[k - 1]


def _inconspicuous(f: dict, target_area: float) -> bool:
    """An instance a viewer counting up to the target may not notice: far smaller than it, or
    smaller and mostly hidden behind others."""
    a = float(f["area"])
    return a < ORD_MIN_COUNTED_SHARE * target_area or (_hidden(f) and a < ORD_HIDDEN_COUNTED_SHARE * target_area)


def _superlative_clear(ids: set[str], value: str, scene: Scene) -> str | None:
    I = scene.instances
    order = sorted(ids, key=lambda i: (I[i]["area"], i), reverse=(value == "largest"))
    best = order[0]
    if len(order) == 1:
        return best
    a, b = I[best]["area"], I[order[1]]["area"]
    if max(a, b) < SUPERLATIVE_RATIO * min(a, b):
        return None
    if value == "smallest" and _hidden(I[best]):
        return None   # its mask may be small only because the border or others cut it
    if value == "largest" and any(_hidden(I[i]) and I[i]["area"] * SUPERLATIVE_RATIO > a / SUPERLATIVE_RATIO
                                  for i in order[1:]):
        return None   # a runner-up that is cut or hidden may be larger than it looks
    return best


def _select(c: Constraint, sure: set[str], maybe: set[str], scene: Scene) -> tuple[set[str], set[str]]:
    if sure != maybe:
        return set(), maybe           # counting over a set a viewer may draw differently
    ids = sure
    if c.kind == "count":
        return (ids, ids) if len(ids) == int(c.value) else (set(), set())
    if not ids:
        return set(), set()
    if any(scene.instances[i]["iscrowd"] for i in ids):
        return set(), ids
    if len(ids) < 2:
        return set(), ids             # "the smallest table" of the only table misleads
    pick = (_ordinal_clear if c.kind == "ordinal" else _superlative_clear)(ids, c.value, scene)
    return ({pick}, {pick}) if pick is not None else (set(), ids)


def _central_height(f: dict) -> bool:
    """Said alone, "in the centre" is the middle of the picture: the object's centroid lies in
    the central band and its extent reaches well across the frame's horizontal middle line."""
    if not CENTRAL_BAND[0] <= float(f["cy"]) <= CENTRAL_BAND[1]:
        return False
    _, y0, _, y1 = _box(f)
    reach = CENTRE_REACH * (y1 - y0)
    return y1 <= y0 or y0 + reach <= 0.5 <= y1 - reach


class Margins:
    """Programs evaluated with margins over one scene, every partial result kept.

    Every filter narrows the sets by intersection with what it says of each instance, and the
    answer for an instance depends only on the scene. The planner asks about the same heads,
    atoms and related-object programs thousands of times per image (each candidate program
    shares most of its constraints with others), so here each instance's verdict per
    constraint, each pair's per relation, the sets after each filter prefix and each program's
    result are computed once. The answers equal evaluating afresh; use one per scene while the
    scene does not change (the planner keeps one per `plan` call)."""

    def __init__(self, scene: Scene, small: float = 0.01, large: float = 0.10):
        self.scene, self.small, self.large = scene, small, large
        everyone = frozenset(scene.instances)
        self._prefixes: dict[tuple, tuple[frozenset, frozenset]] = {(): (everyone, everyone)}
        self._programs: dict[tuple, tuple[frozenset, frozenset]] = {}
        self._exact: dict[Constraint, set[str]] = {}
        self._verdicts: dict[Constraint, dict] = {}      # judged kinds: instance -> (sure, maybe)
        self._related: dict[tuple, dict] = {}            # (relation constraint, which) -> instance -> bool
        self._pairs: dict[str, dict] = {}                # relation -> (i, o) -> (sure, maybe)

    def evaluate(self, program: Program) -> tuple[frozenset, frozenset]:
        """(sure, maybe), as `evaluate_with_margin` (frozen: the results are shared)."""
        key = program.constraints
        got = self._programs.get(key)
        if got is None:
            sure, maybe = self._filtered(tuple(c for c in key if c.kind in FILTER_KINDS))
            for c in key:
                if c.kind not in FILTER_KINDS:
                    sure, maybe = _select(c, sure, maybe, self.scene)
            got = self._programs[key] = (frozenset(sure), frozenset(maybe))
        return got

    def _filtered(self, filters: tuple) -> tuple[frozenset, frozenset]:
        got = self._prefixes.get(filters)
        if got is None:
            sure, maybe = self._filtered(filters[:-1])
            s, m = self._filter(filters[-1], sure, maybe)
            got = self._prefixes[filters] = (frozenset(s), frozenset(m))
        return got

    def _pair(self, rel: str, i: str, o: str) -> tuple[bool, bool]:
        memo = self._pairs.setdefault(rel, {})
        got = memo.get((i, o))
        if got is None:
            got = memo[(i, o)] = _relation(self.scene, i, rel, o)
        return got

    def _relates(self, c: Constraint, i: str, which: int) -> bool:
        """Whether instance i has c's relation (sure: which=0, maybe: 1) to any object c.obj
        selects (surely / maybe likewise); for not_relation, to any it may (surely) select."""
        memo = self._related.setdefault((c, which), {})
        got = memo.get(i)
        if got is None:
            obj_sure, obj_maybe = self.evaluate(c.obj)
            negated = c.kind == "not_relation"
            # "not related" is sure when it is not even maybe related, and maybe when not surely
            verdict, objects = (1 - which, obj_maybe if which == 0 else obj_sure) if negated \
                else (which, obj_sure if which == 0 else obj_maybe)
            got = any(self._pair(c.rel, i, o)[verdict] for o in objects if o != i)
            got = memo[i] = (not got) if negated else got
        return got

    def _filter(self, c: Constraint, sure: frozenset, maybe: frozenset) -> tuple[set[str], set[str]]:
        if c.kind in ("relation", "not_relation"):
            return {i for i in sure if self._relates(c, i, 0)}, {i for i in maybe if self._relates(c, i, 1)}
        if c.kind in HEAD_KINDS:
            exact = self._exact.get(c)
            if exact is None:
                exact = self._exact[c] = evaluate(Program((c,)), self.scene)
            return sure & exact, maybe & exact
        memo = self._verdicts.get(c)
        if memo is None:
            memo = self._verdicts[c] = {}
        judge = None
        for i in maybe:
            if i not in memo:
                judge = judge or _judge(c, self.small, self.large)
                memo[i] = judge(self.scene.instances[i])
        return {i for i in sure if memo[i][0]}, {i for i in maybe if memo[i][1]}

    def refers(self, program: Program, targets: set[str]) -> bool:
        """As `refers_with_margin`."""
        sure, maybe = self.evaluate(program)
        targets = set(targets)
        if not (sure == maybe == targets):
            return False
        values = {c.value for c in program if c.kind == "position"}
        if "center" in values and not values & {"top", "middle", "bottom"} and \
                any(not _central_height(self.scene.instances[t]) for t in targets):
            return False   # "the fig in the middle" is read as the middle of the picture, not of its top edge
        scoped = HEAD_KINDS + ADJECTIVE_KINDS + SELECTOR_KINDS
        if any(c.kind in SELECTOR_KINDS for c in program) and any(c.kind not in scoped + ("count",) for c in program):
            # "the second dog from the right, halfway up" counts over every dog: a position or a
            # relation said after the noun does not narrow what is counted (an adjective does:
            # "the lowest green kiwi" counts green kiwis)
            s, m = self.evaluate(Program(tuple(c for c in program if c.kind in scoped)))
            return s == m == targets
        return True


def evaluate_with_margin(program: Program, scene: Scene, small: float = 0.01,
                         large: float = 0.10) -> tuple[set[str], set[str]]:
    """(sure, maybe): the instances a viewer would surely select, and those one might.
    `small` / `large` are the facts' size-label thresholds (FactsConfig.small_frac / large_frac)."""
    sure, maybe = Margins(scene, small, large).evaluate(program)
    return set(sure), set(maybe)


def refers_with_margin(program: Program, scene: Scene, targets: set[str], small: float = 0.01,
                       large: float = 0.10) -> bool:
    """True when a viewer reading the program would pick exactly `targets` (empty: nothing)."""
    return Margins(scene, small, large).refers(program, targets)
