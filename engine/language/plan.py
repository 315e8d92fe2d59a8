"""The planner: choose targets and, per tier, referring programs that select exactly them.

For every eligible target (one instance, a group sharing a property, or all instances of a
concept) it searches small programs, shortest and most natural first, and keeps those whose
evaluation on the scene equals the target set. Negatives are programs that select nothing.
Every emitted spec satisfies `evaluate(program, scene) == set(target_ids)`; tests check this
over many random scenes.
"""
from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass

from engine.config import PlanConfig
from engine.language import people as people_lang
from engine.language.margins import COLOR_NEIGHBOURS, Margins
from engine.language.names import same_kind
from engine.language.programs import Constraint, Program, Scene, evaluate
from engine.language.relation_choice import prefer_relations, relate_frame_only
from engine.language.taxonomy import subtype_of
from engine.lexicon.interactions import DEPTH, INTERACTIONS
from engine.scene.colors import parse_palette

INSTANCE_RELATIONS = INTERACTIONS + DEPTH

C = Constraint

# How natural a constraint reads to a person; lower is tried first.
COST = {"garment": 0.8, "posture": 0.9, "color": 1.0, "position": 1.2, "ordinal": 1.4, "superlative": 1.5,
        "size": 1.6, "relation": 1.7, "not_relation": 1.3}
# what the masks show this instance doing, or which of two it hides: said first, as people do
INSTANCE_RELATION_COST = 0.6
GROUP_GAP = 0.15         # 1:N by position: members and the rest of the kind this far apart on that axis
COLOR_MIN_SHARE = 0.35   # below this the "dominant" colour is not what a person would call it
# Colour families for negatives: the dominant colour name of a photo region is rough (a black
# cat in shade reads "gray" or "brown"), so a negative colour must be vivid and from another
# family than every instance of the category; "the black cat" is never a safe negative.
COLOR_FAMILY = {"red": "warm", "orange": "warm", "yellow": "warm", "pink": "warm", "brown": "warm",
                "green": "cool", "blue": "cool", "purple": "cool",
                "black": "neutral", "white": "neutral", "gray": "neutral"}
# Olive and khaki read "brown" to the colour namer and "green" to many people: a brown fig is
# no place for "the green fig" (a distinction, not a negative, still tells them apart)
OLIVE = {"green": {"brown"}, "brown": {"green"},
         "purple": {"black", "gray"}}   # and a dark purple fig reads "black" to the namer
NEGATIVE_KEY_MAX_HOLDERS = 2   # a complex negative's kind fact belongs to at most this many categories
NEGATIVE_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink")


PARTNER_EXTREME_GAP = 0.10   # frame share between a partner named by an extreme and the runner-up


def _cost(c: Constraint) -> float:
    if c.kind == "relation" and c.rel in INSTANCE_RELATIONS:
        return INSTANCE_RELATION_COST
    return COST[c.kind]


def _axis(position: str) -> str:
    return "x" if position in ("left", "center", "right") else "y"


def _ordinal_axis(value: str) -> str:
    return "x" if value.split(":")[0] in ("left", "right") else "y"


@dataclass(frozen=True)
class Spec:
    image_id: str
    tier: str
    cardinality: str
    target_ids: tuple[str, ...]
    program: Program

    @property
    def spec_id(self) -> str:
        key = f"{self.image_id}|{self.tier}|{self.cardinality}|{self.program.dumps()}"
        return "s-" + hashlib.sha256(key.encode()).hexdigest()[:16]

    def to_row(self, unit_id: str) -> dict:
        return {
            "spec_id": self.spec_id, "image_id": self.image_id, "unit_id": unit_id, "tier": self.tier,
            "subtype": subtype_of(self.tier, self.program), "cardinality": self.cardinality,
            "target_ids": list(self.target_ids), "program": self.program.dumps(),
        }


def big_enough(f: dict, cfg: PlanConfig) -> bool:
    """Large enough to be a target: a share of the image, or an absolute pixel count (small
    objects of large aerial and macro photos)."""
    return f["area_frac"] >= cfg.min_area_frac or (cfg.min_area_px > 0 and f.get("area", 0) >= cfg.min_area_px)


def eligible_ids(facts: list[dict], cfg: PlanConfig) -> set[str]:
    """Instances that may be the target of a one-instance or group instruction: large enough,
    not a crowd region, and (by default) not of a category that has a crowd region in the image."""
    crowded = {(f["image_id"], f["category"]) for f in facts if f["iscrowd"]} if cfg.skip_crowded_categories else set()
    return {f["instance_id"] for f in facts
            if (cfg.allow_crowd_targets or not f["iscrowd"]) and (f["image_id"], f["category"]) not in crowded
            and big_enough(f, cfg)}


class Planner:
    def __init__(self, cfg: PlanConfig, known_categories: list[str], seed: int = 0,
                 size_thresholds: tuple[float, float] = (0.01, 0.10),
                 key_holders: dict[str, frozenset[str]] | None = None):
        self.cfg = cfg
        self.known_categories = sorted(known_categories)
        self.seed = seed
        self.size_thresholds = size_thresholds   # the facts' small / large area_frac
        # affordance key -> every lexicon category that has it (None: only the scene's own map)
        self.key_holders = key_holders
        # while one scene is planned: its margin evaluations and the search's ordered candidates,
        # kept because the search asks the same questions many times (see margins.Margins)
        self._margins: Margins | None = None
        self._options: dict[tuple, list[tuple[Constraint, ...]]] = {}

    def _margins_of(self, scene: Scene) -> Margins:
        if self._margins is None or self._margins.scene is not scene:
            return Margins(scene, *self.size_thresholds)   # outside `plan`: evaluated afresh
        return self._margins

    def _refers(self, program: Program, scene: Scene, targets: set[str]) -> bool:
        """A reader of the program picks exactly `targets`, with margins (engine.language.margins)."""
        return self._margins_of(scene).refers(program, targets)

    # ---- atoms -------------------------------------------------------------------------
    def _object_program(self, scene: Scene, oid: str) -> Program | None:
        """A short description that picks out the related object alone ("the bench")."""
        o = scene.instances[oid]
        if o["category"] in scene.incomplete:
            return None   # "the chair" is never definite where chairs are not all marked
        base = Program((C("category", o["category"]),))
        if any(f["iscrowd"] for f in scene.instances.values() if f["category"] == o["category"]):
            return None   # "the person" is never definite next to a crowd of people
        if self._refers(base, scene, {oid}):
            return base
        for extra in self._filter_atoms(scene, oid, with_relations=False):
            p = base.with_(extra)
            if self._refers(p, scene, {oid}):
                return p
        if not o.get("stuff"):
            # "the rightmost hazelnut": an extreme is read at a glance, unlike "the third from the left"
            for extreme in ("left:1", "right:1", "top:1", "bottom:1"):
                p = base.with_(C("ordinal", extreme))
                if self._refers(p, scene, {oid}) and self._clear_extreme(scene, oid, extreme):
                    return p
        return None

    @staticmethod
    def _clear_extreme(scene: Scene, oid: str, extreme: str) -> bool:
        """A partner named by an extreme is read while reading about another thing: it must be
        the extreme by twice the ordinal margin (judged: "the rightmost hazelnut" of two nearly
        one above the other)."""
        side = extreme.split(":")[0]
        coord = "cx" if side in ("left", "right") else "cy"
        sign = -1 if side in ("left", "top") else 1
        o = scene.instances[oid]
        others = [sign * float(f[coord]) for i, f in scene.instances.items()
                  if i != oid and f["category"] == o["category"]]
        return not others or sign * float(o[coord]) - max(others) >= PARTNER_EXTREME_GAP

    def _filter_atoms(self, scene: Scene, iid: str, with_relations: bool = True) -> list[Constraint]:
        f = scene.instances[iid]
        atoms = []
        # ("the orange orange" says the colour twice: a colour that is the category's name is left out)
        # a stuff region (trees, grass, sky) mixes colours and has no size of its own: "the black
        # plant" for dark foliage, "the largest plant" for a lawn are no way to say it
        mass = bool(f.get("stuff"))
        if not mass and f["color_frac"] >= COLOR_MIN_SHARE and f["supercategory"] not in self.cfg.no_color_supercategories \
                and f["color"] != f["category"].casefold():
            atoms.append(C("color", f["color"]))
        atoms = people_lang.atoms(f) + atoms     # what a person wears and how they are posed
        atoms.append(C("position", f["pos_x"]))
        if not (people_lang.is_person(f) and people_lang.same_level(f, scene)):
            atoms.append(C("position", f["pos_y"]))
        # size words compare with others of the kind: "the large grass" or "the big tree" of the
        # only grass or tree region says nothing a reader can check
        same_kind = sum(g["category"] == f["category"] for g in scene.instances.values())
        if f["size_label"] != "medium" and same_kind > 1 and not mass:
            atoms.append(C("size", f["size_label"]))
        if with_relations:
            seen = set()
            for s, rel, o in sorted(scene.relations):
                if s != iid or rel not in self.cfg.relations or scene.instances[o]["category"] == f["category"]:
                    continue
                obj = self._object_program(scene, o)
                if obj is not None and (rel, obj) not in seen:
                    seen.add((rel, obj))
                    atoms.append(C("relation", rel=rel, obj=obj))
            atoms += self._negation_atoms(scene, iid)
        return atoms

    def _negation_atoms(self, scene: Scene, iid: str) -> list[Constraint]:
        """"not holding an umbrella": an interaction another instance of the target's kind has
        with some instance of a category, and the target with none of that category."""
        f = scene.instances[iid]
        out = []
        mine = {(rel, scene.instances[o]["category"]) for s, rel, o in scene.relations if s == iid}
        theirs = sorted({(rel, scene.instances[o]["category"]) for s, rel, o in scene.relations
                         if s != iid and rel in INSTANCE_RELATIONS and rel in self.cfg.relations
                         and scene.instances[s]["category"] == f["category"]})
        for rel, cat in theirs:
            if (rel, cat) not in mine and cat != f["category"]:
                out.append(C("not_relation", rel=rel, obj=Program((C("category", cat),))))
        return out

    @staticmethod
    def _selectors(target: dict) -> list[Constraint]:
        ordinals = [C("ordinal", "left:1"), C("ordinal", "right:1"), C("ordinal", "top:1"), C("ordinal", "bottom:1"),
                    C("ordinal", "left:2"), C("ordinal", "right:2"), C("ordinal", "top:2"), C("ordinal", "bottom:2"),
                    C("ordinal", "left:3"), C("ordinal", "right:3")]
        if target.get("stuff"):
            return []     # "the plant second from the top" for a lawn below a wood: no counting regions
        return ordinals + [C("superlative", "largest"), C("superlative", "smallest")]

    # ---- search ------------------------------------------------------------------------
    def _search(self, scene: Scene, head: Program, targets: set[str], atoms: list[Constraint],
                selectors: list[Constraint], limit: int, min_extra: int = 0) -> list[Program]:
        """Programs head + atoms (+ one selector) evaluating to exactly `targets`, cheapest first.

        A program whose extra constraints include an already found one's is skipped: it says
        more than needed, so it is not a distinct way of referring to the target.
        """
        found: list[tuple[Constraint, ...]] = []
        max_extra = max(0, self.cfg.max_constraints - len(head))
        for combo in self._ordered_options(tuple(atoms), tuple(selectors), min_extra, max_extra):
            if len(found) >= limit:
                break
            if any(set(f) <= set(combo) for f in found):
                continue
            if self._refers(head.with_(*combo), scene, targets):
                found.append(combo)
        return [head.with_(*combo) for combo in found]

    def _ordered_options(self, atoms: tuple[Constraint, ...], selectors: tuple[Constraint, ...],
                         min_extra: int, max_extra: int) -> list[tuple[Constraint, ...]]:
        """The search's candidate extras, cheapest first; the same for every head of one length
        (kept while a scene is planned: the search runs over one target's atoms many times)."""
        key = (atoms, selectors, min_extra, max_extra)
        got = self._options.get(key)
        if got is None:
            got = self._options[key] = self._candidates(atoms, selectors, min_extra, max_extra)
        return got

    @staticmethod
    def _candidates(atoms, selectors, min_extra: int, max_extra: int) -> list[tuple[Constraint, ...]]:
        options: list[tuple[float, tuple[Constraint, ...]]] = []
        for n in range(max(0, min_extra - 1), max_extra + 1):
            for combo in itertools.combinations(atoms, n):
                if sum(c.kind == "position" for c in combo) > 1 and \
                        len({_axis(c.value) for c in combo if c.kind == "position"}) < 2:
                    continue
                if n > 1 and any(c.kind == "relation" and len(c.obj) > 1 for c in combo):
                    # "the bottle in the centre and right of the glass bottle in the centre": a
                    # described partner is said alone, or the clauses blur into each other
                    continue
                cost = sum(_cost(c) for c in combo)
                if n >= min_extra:
                    options.append((n + cost / 10, combo))
                described = any(c.kind == "relation" and len(c.obj) > 1 for c in combo)
                if n < max_extra and not described:   # a selector counts as one of the extra constraints
                    axes = {_axis(c.value) for c in combo if c.kind == "position"}
                    for sel in selectors:
                        # "the leftmost dog in the center" is logically sound but reads as a
                        # contradiction: no ordinal along an axis a position already names
                        if sel.kind == "ordinal" and _ordinal_axis(sel.value) in axes:
                            continue
                        options.append((n + 1 + (cost + COST[sel.kind]) / 10, combo + (sel,)))
        options.sort(key=lambda t: (t[0], Program(t[1]).dumps()))
        return [combo for _, combo in options]

    # ---- targets -----------------------------------------------------------------------
    def eligible(self, scene: Scene) -> list[str]:
        # an instance of a category not marked in full is never told apart from its unmarked kin
        return sorted(i for i in eligible_ids(list(scene.instances.values()), self.cfg)
                      if scene.instances[i]["category"] not in scene.incomplete)

    def plan(self, scene: Scene) -> list[Spec]:
        self._margins, self._options = Margins(scene, *self.size_thresholds), {}
        try:
            return self._plan(scene)
        finally:
            self._margins, self._options = None, {}

    def _plan(self, scene: Scene) -> list[Spec]:
        specs: list[Spec] = []
        by_cat: dict[str, list[str]] = {}
        for i, f in scene.instances.items():
            by_cat.setdefault(f["category"], []).append(i)
        eligible = self.eligible(scene)
        for t in eligible:
            specs += self._one_to_one(scene, t, by_cat)
        if self.cfg.one_to_all:
            # "all the people" is exact beside a crowd too: the crowd region is one of the targets
            big = {i for i, f in scene.instances.items() if big_enough(f, self.cfg)}
            specs += self._one_to_all(scene, by_cat, big)
        if self.cfg.one_to_many:
            specs += self._one_to_many(scene, by_cat, set(eligible))
        specs += self._negatives(scene)
        # one spec per (tier, program): the same words cannot mean two target sets
        unique = {(s.tier, s.program): s for s in specs}
        return sorted(unique.values(), key=lambda s: s.spec_id)

    def _one_to_one(self, scene: Scene, t: str, by_cat: dict[str, list[str]]) -> list[Spec]:
        f = scene.instances[t]
        target = {t}
        out = []
        cat = Program((C("category", f["category"]),))
        if evaluate(cat, scene) == target:
            out.append(Spec(scene.image_id, "concept", "1:1", (t,), cat))
        atoms = self._filter_atoms(scene, t)
        limit = self.cfg.programs_per_target
        person = people_lang.is_person(f)
        # a person: a wider search, so that what they wear or do fills the list when it can
        simple = self._search(scene, cat, target, atoms, self._selectors(f), limit * (3 if person else 1), min_extra=1)
        if person and not people_lang.worn(simple):
            simple = self._dressed(scene, cat, t, atoms, limit) + simple
        if person and people_lang.worn(simple):
            simple = people_lang.prefer(simple, scene)[:limit]
            if len(simple) < limit:
                # room left: what they wear with where they are too ("the person in the green top
                # on the right"), other ways a person would say it
                more = [p for p in self._dressed(scene, cat, t, atoms, limit, min_extra=1) if p not in simple]
                simple = people_lang.prefer(simple + more, scene)[:limit]
        else:
            simple = self._with_relation(scene, cat, t, atoms, simple[:limit])
            simple = prefer_relations(self, scene, cat, t, atoms, simple)
            if person:
                simple = people_lang.prefer(simple, scene)
        for p in simple:
            out.append(Spec(scene.image_id, "simple", "1:1", (t,), p))
        if not any(s.tier == "simple" for s in out) and evaluate(cat, scene) == target and not f.get("stuff"):
            # the only one of its kind, with nothing a viewer can be sure of to add (a close-up
            # spanning the frame): "the only orange in the picture" says what is certain (not of a
            # stuff region: "the only tree" for a wood of them is wrong)
            out.append(Spec(scene.image_id, "simple", "1:1", (t,), cat.with_(C("count", 1))))
        if people_lang.is_person(f) and not any(f2["iscrowd"] and people_lang.is_person(f2)
                                                for f2 in scene.instances.values()):
            # "the one in the red top", "whoever is sitting": no noun, found by what they wear or do
            progs = self._search(scene, Program(()), target, [a for a in atoms if a.kind in people_lang.KINDS]
                                 + [a for a in atoms if a.kind not in people_lang.KINDS], [],
                                 self.cfg.programs_per_target * 3, min_extra=1)
            progs = [p for p in progs if set(p.kinds()) & set(people_lang.KINDS)][:self.cfg.programs_per_target]
            out += [Spec(scene.image_id, "complex", "1:1", (t,), p) for p in progs]
        out += [s for s in self._instance_complex(scene, t, atoms) if s not in out]
        for s in [s for s in out if s.tier == "complex"][self.cfg.programs_per_target:]:
            out.remove(s)     # what they wear first, then what the masks show them doing
        instance = any(s.tier == "complex" for s in out)
        if instance and not self._kind_turn(scene, t):
            return out
        if instance:   # room for one kind-fact program within programs_per_target
            extra = sum(s.tier == "complex" for s in out) - (self.cfg.programs_per_target - 1)
            for s in [s for s in out if s.tier == "complex"][-extra:] if extra > 0 else []:
                out.remove(s)
        for key in sorted(self.kind_keys(scene, f["category"])):
            if sum(s.tier == "complex" for s in out) >= self.cfg.programs_per_target:
                break     # (people found by what they wear need no "someone who can read")
            head = Program((C("affordance", key),))
            # beside instance facts a kind fact comes with one of them ("someone who can speak, on
            # the left"): "the one who can read and write" alone is the same words in every photo
            progs = self._search(scene, head, target, atoms, self._selectors(f), 1, min_extra=int(instance))
            progs = relate_frame_only(self, scene, head, t, atoms, progs)
            out += [Spec(scene.image_id, "complex", "1:1", (t,), p) for p in progs]
            if sum(s.tier == "complex" for s in out) >= self.cfg.programs_per_target:
                break
        if not self.kind_keys(scene, f["category"]) and scene.verified is None:
            # no lexicon knowledge (or not of everything in the picture): instance facts under a noun that does not name the category
            head = self.generic_head(f)
            if len(head) or (self.cfg.generic_noun and not f.get("stuff")):  # "the item at the top" is no way to say "sky"
                progs = self._search(scene, head, target, atoms, self._selectors(f), self.cfg.programs_per_target,
                                     min_extra=1)
                out += [Spec(scene.image_id, "complex", "1:1", (t,), p) for p in progs]
        return out

    def _dressed(self, scene: Scene, head: Program, t: str, atoms: list[Constraint], limit: int,
                 min_extra: int = 0) -> list[Program]:
        """Where what a person wears does not tell them apart alone, it with what does: "the
        person in a green top on the left", as people say it, rather than "the person on the left".
        With min_extra=1, that even where what they wear alone would do."""
        found: list[Program] = []
        for a in (a for a in atoms if a.kind in people_lang.KINDS):
            others = [b for b in atoms if b.kind not in people_lang.KINDS]
            for p in self._search(scene, head.with_(a), {t}, others, self._selectors(scene.instances[t]), 1,
                                  min_extra=min_extra):
                if p not in found and len(found) < limit:
                    found.append(p)
        return found

    def _kind_turn(self, scene: Scene, t: str) -> bool:
        """Whether this target also gets kind-fact complex programs: about one in
        cfg.kind_fact_every, chosen by a stable hash, so kind facts stay a minority."""
        # not the generation seed: another seed says the same programs in other words
        h = hashlib.sha256(f"{scene.image_id}:{t}:kind".encode()).digest()
        return h[0] % self.cfg.kind_fact_every == 0

    def _with_relation(self, scene: Scene, head: Program, t: str, atoms: list[Constraint],
                       found: list[Program]) -> list[Program]:
        """`found`, with its last program swapped for one that relates the target to another
        object when none does and one refers: people place a thing by what is around it."""
        if any(c.kind in ("relation", "not_relation") for p in found for c in p):
            return found
        for a in (a for a in atoms if a.kind in ("relation", "not_relation")):
            others = [b for b in atoms if b.kind not in ("relation", "not_relation")]
            if len(a.obj) > 1:
                others = []   # a described partner is the only clause
            extra = self._search(scene, head.with_(a), {t}, others, self._selectors(scene.instances[t]) if others else [], 1)
            if extra:
                keep = found[:self.cfg.programs_per_target - 1]
                return keep + [p for p in extra if p not in keep]
        return found

    def _instance_complex(self, scene: Scene, t: str, atoms: list[Constraint]) -> list[Spec]:
        """Complex programs from what the masks show of this instance (what it rides or holds,
        what it stands in front of, what it is not doing that others of its kind do), under a
        head that does not name its category: "the one riding the horse"."""
        f = scene.instances[t]
        if f.get("stuff") or not self.kind_keys(scene, f["category"]):
            return []    # no lexicon knowledge: the generic-head path below says it
        related = [a for a in atoms if a.kind == "not_relation" or (a.kind == "relation" and a.rel in INSTANCE_RELATIONS)]
        related += [a for a in atoms if a.kind == "relation" and a not in related]   # then where it is
        head = self.generic_head(f)
        if not len(head) and not people_lang.is_person(f) and not self.cfg.generic_noun:
            return []    # "the item on the left" also counts whatever unannotated is there
        found: list[Program] = []
        for a in related:
            others = [b for b in atoms if b is not a and b not in related] if len(a.obj) == 1 else []
            found += self._search(scene, head.with_(a), {t}, others, self._selectors(f) if others else [], 1)
            if len(found) >= self.cfg.programs_per_target:
                break
        if len(found) < self.cfg.programs_per_target:
            # position, colour, other relations: still this instance's facts ("the one on the far left")
            # two facts first where two are true ("the brown piece of furniture on the left"): a
            # longer description is one nobody else in the release shares; then one fact
            for least in (2, 1):
                for p in self._search(scene, head, {t}, atoms, self._selectors(f), self.cfg.programs_per_target,
                                      min_extra=least):
                    if p not in found and len(found) < self.cfg.programs_per_target - (least == 2):
                        found.append(p)
        return [Spec(scene.image_id, "complex", "1:1", (t,), p) for p in found]

    def kind_keys(self, scene: Scene, category: str) -> frozenset[str]:
        """The category's affordance keys, when kind facts are safe here: only if the lexicon
        knows every category in the picture. "The thing you can eat" for the orange is wrong
        beside a mango that the lexicon has never heard of (an unknown category has no keys,
        so the program would say it is not edible)."""
        if scene.unknown & scene.categories():
            return frozenset()
        keys = scene.affordances.get(category, frozenset())
        if scene.verified is not None:
            # a federated image: "something you can sit on" also claims every unverified
            # category that has the key; only keys whose every holder is known here
            keys = frozenset(k for k in keys if self.key_holders is not None
                             and self.key_holders.get(k, frozenset()) <= scene.verified)
        return keys

    @staticmethod
    def generic_head(f: dict) -> Program:
        """The head of a complex program for a category the lexicon knows nothing of: its
        supercategory ("the bottle ..."), or no head at all ("the item ..."), which ranges
        over every annotated instance of the image."""
        if f["supercategory"] and not f.get("supercategory_says_it"):
            return Program((C("supercategory", f["supercategory"]),))
        return Program(())

    def _one_to_all(self, scene: Scene, by_cat: dict[str, list[str]], big: set[str]) -> list[Spec]:
        out = []
        for catname, members in sorted(by_cat.items()):
            if len(members) < 2 or not big & set(members) or catname in scene.incomplete:
                continue
            target = tuple(sorted(members))
            prog = Program((C("category", catname),))
            out.append(Spec(scene.image_id, "concept", "1:All", target, prog))
            # "all four people" only where a viewer can count them: few, none a sliver or a crowd
            countable = len(members) <= self.cfg.max_group_category and all(
                scene.instances[m]["area_frac"] >= self.cfg.min_area_frac and not scene.instances[m]["iscrowd"]
                for m in members)
            simple = prog.with_(C("count", len(members))) if countable else prog
            out.append(Spec(scene.image_id, "simple", "1:All", target, simple))
            # "all the decorative containers" also claims every unannotated jug on the shelf: a
            # kind description reaches beyond the annotated category, so only for a few
            # instances that are all annotated one by one
            if any(scene.instances[m]["iscrowd"] for m in members) or len(members) > self.cfg.max_group_category:
                continue
            allowed = set(scene.vocabulary) if scene.vocabulary else set(self.known_categories)
            for key in sorted(self.kind_keys(scene, catname)):
                p = Program((C("affordance", key),))
                # "all the things with buttons" claims every such thing, marked or not: only a
                # kind fact of few categories, all annotated (as for a complex negative)
                if evaluate(p, scene) == set(members) and self._defining(key, allowed | scene.categories()):
                    out.append(Spec(scene.image_id, "complex", "1:All", target, p))
                    break
        return out

    def _defining(self, key: str, allowed: set[str]) -> bool:
        """A kind fact may be denied of a photo only when it belongs to few categories, all of
        them annotated exhaustively: "an animal with a trunk" is absent when no elephant is
        marked, but "something with buttons you press" may be an unmarked oven's panel."""
        if self.key_holders is None:
            return True
        holders = self.key_holders.get(key, frozenset())
        return 0 < len(holders) <= NEGATIVE_KEY_MAX_HOLDERS and holders <= allowed

    def _set_apart(self, scene: Scene, atom: Constraint, group: set[str], members: set[str]) -> bool:
        """A group named by position stands apart from the rest of its kind by a clear gap along
        that axis ("the two figs on the left" when the others lie well to the right)."""
        if atom.kind != "position":
            return True
        coord = "cx" if _axis(atom.value) == "x" else "cy"
        I = scene.instances
        return all(abs(I[g][coord] - I[o][coord]) >= GROUP_GAP for g in group for o in members - group)

    def _one_to_many(self, scene: Scene, by_cat: dict[str, list[str]], eligible: set[str]) -> list[Spec]:
        out = []
        for catname, members in sorted(by_cat.items()):
            # a group is told apart only in a category few enough to count at a glance
            if not 3 <= len(members) <= self.cfg.max_group_category or \
                    any(scene.instances[m]["iscrowd"] for m in members):
                continue
            heads = [("simple", Program((C("category", catname),)))]
            heads += [("complex", Program((C("affordance", k),))) for k in sorted(self.kind_keys(scene, catname))[:2]]
            first = scene.instances[members[0]]
            if not self.kind_keys(scene, catname) and scene.verified is None and (len(self.generic_head(first))
                                                      or (self.cfg.generic_noun and not first.get("stuff"))):
                heads.append(("complex", self.generic_head(first)))
            atoms = sorted({a for m in members for a in self._filter_atoms(scene, m, with_relations=False)
                            if a.kind not in people_lang.KINDS},
                           key=lambda a: (COST[a.kind], str(a.value)))
            for tier, head in heads:
                for atom in atoms:
                    group = evaluate(head.with_(atom), scene)
                    if not 2 <= len(group) < len(members) or not group <= eligible or not group <= set(members):
                        continue
                    prog = head.with_(atom, C("count", len(group)))
                    if self._refers(prog, scene, group) and self._set_apart(scene, atom, group, set(members)):
                        out.append(Spec(scene.image_id, tier, "1:N", tuple(sorted(group)), prog))
        return out

    def _negatives(self, scene: Scene) -> list[Spec]:
        """Programs that select nothing, about concepts the source annotates exhaustively only
        (scene.vocabulary, else the planner's list): a concept it does not annotate may well be
        in the photo unmarked."""
        n = self.cfg.negatives_per_image
        if n == 0:
            return []
        rng = random.Random(f"{self.seed}:{scene.image_id}:neg")
        present = scene.categories()
        vocabulary = sorted(scene.vocabulary) if scene.vocabulary or scene.verified is not None \
            else self.known_categories
        # nor one of a present kind (the same head noun): "glass bottle (loose)" beside closed
        # glass bottles asks the reader to see what a photo may not show, and "plastic bottle"
        # in a shoot of glass ones was judged wrong where an unmarked one stood at the border
        absent = [c for c in vocabulary if c not in present and not any(same_kind(c, p) for p in present)]
        out = []
        for c in rng.sample(absent, min(n, len(absent))):
            out.append(Spec(scene.image_id, "concept", "negative", (), Program((C("category", c),))))
        # simple: a present category with a colour none of its instances has ("the purple dog")
        pairs = []
        for c in sorted(present - scene.incomplete):   # an unmarked one may have any colour
            if any(f["category"] == c and f["supercategory"] in self.cfg.no_color_supercategories
                   for f in scene.instances.values()):
                continue
            members = [f for f in scene.instances.values() if f["category"] == c]
            families = {COLOR_FAMILY.get(f["color"]) for f in members}
            # nor a colour a part of one has or one next to it: "the red bottle" is no negative
            # beside a red label, nor "the orange bottle" beside amber glass read brown
            parts = {name for f in members for name in parse_palette(f.get("color_palette", ""))}
            hues = parts - {"black", "white", "gray"}   # a gray part says nothing of blue or green
            dominant = {f["color"] for f in members}
            pairs += [(c, col) for col in NEGATIVE_COLORS if COLOR_FAMILY[col] not in families
                      and col not in parts and not hues & COLOR_NEIGHBOURS[col]
                      and not dominant & OLIVE.get(col, set())]
        for c, col in rng.sample(pairs, min(n, len(pairs))):
            out.append(Spec(scene.image_id, "simple", "negative", (), Program((C("category", c), C("color", col)))))
        # complex: an affordance of an absent vocabulary category, only when the lexicon knows
        # every category present (a custom "date" with no keys may well be "something you can eat")
        if not scene.unknown & present:
            allowed = set(vocabulary)
            present_aff = {k for f in scene.instances.values() for k in scene.affordances.get(f["category"], ())}
            absent_aff = sorted({k for c, ks in scene.affordances.items() if c in allowed for k in ks} - present_aff)
            absent_aff = [k for k in absent_aff if self._defining(k, allowed)]
            for k in rng.sample(absent_aff, min(n, len(absent_aff))):
                out.append(Spec(scene.image_id, "complex", "negative", (), Program((C("affordance", k),))))
        # a negative must match nothing even for a reader who draws the lines loosely
        return [s for s in out if not self._margins_of(scene).evaluate(s.program)[1]]
