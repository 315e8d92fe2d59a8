"""Referring programs: machine-checkable constraints that select instances from a scene.

A program is an ordered tuple of constraints. Evaluation runs in two phases, because that is
how people refer to things: *filters* (category, supercategory, colour, size label, position,
relation, affordance) narrow the scene to a set S; then *selectors* (ordinal, superlative
size, count) pick from S relative to the members of S ("the second dog from the left").

A spec is valid only if `evaluate(program, scene)` equals its target set exactly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping

from engine.records import records as frame_records

FILTER_KINDS = ("category", "supercategory", "color", "size", "position", "relation", "affordance",
                "garment", "posture")   # garment / posture: people only (engine.language.people)
# negation: "not_relation" keeps the instances with no such relation to any object the program
# selects ("the person not holding an umbrella"; "the other dog, not the one on the couch")
FILTER_KINDS = FILTER_KINDS + ("not_relation",)
SELECTOR_KINDS = ("ordinal", "superlative", "count")
KINDS = FILTER_KINDS + SELECTOR_KINDS

# ordinal values: "<from>:<k>", from in left/right/top/bottom, k >= 1 ("left:1" = leftmost)
ORDINAL_FROM = {"left": ("cx", False), "right": ("cx", True), "top": ("cy", False), "bottom": ("cy", True)}
SUPERLATIVES = ("largest", "smallest")


@dataclass(frozen=True)
class Constraint:
    kind: str
    value: str | int | None = None
    rel: str | None = None                 # relation name, for kind == "relation"
    obj: "Program | None" = None           # the related object's own program

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown constraint kind {self.kind!r}")
        if self.kind in ("relation", "not_relation") and (self.rel is None or self.obj is None):
            raise ValueError("a relation constraint needs rel and obj")

    def to_json(self) -> dict:
        d: dict = {"kind": self.kind}
        if self.value is not None:
            d["value"] = self.value
        if self.rel is not None:
            d["rel"] = self.rel
        if self.obj is not None:
            d["obj"] = self.obj.to_json()
        return d

    @staticmethod
    def from_json(d: Mapping) -> "Constraint":
        obj = Program.from_json(d["obj"]) if d.get("obj") is not None else None
        return Constraint(d["kind"], d.get("value"), d.get("rel"), obj)


@dataclass(frozen=True)
class Program:
    constraints: tuple[Constraint, ...] = ()

    def __len__(self) -> int:
        return len(self.constraints)

    def __iter__(self):
        return iter(self.constraints)

    def kinds(self) -> tuple[str, ...]:
        return tuple(c.kind for c in self.constraints)

    def get(self, kind: str) -> Constraint | None:
        return next((c for c in self.constraints if c.kind == kind), None)

    def with_(self, *extra: Constraint) -> "Program":
        return Program(self.constraints + tuple(extra))

    def to_json(self) -> list:
        return [c.to_json() for c in self.constraints]

    def dumps(self) -> str:
        # json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")), from each
        # constraint's text kept once (the planner sorts and names thousands of programs)
        return "[" + ",".join(_constraint_text(c) for c in self.constraints) + "]"

    @staticmethod
    def from_json(data: Iterable[Mapping]) -> "Program":
        return Program(tuple(Constraint.from_json(d) for d in data))

    @staticmethod
    def loads(text: str) -> "Program":
        return Program.from_json(json.loads(text))


@lru_cache(maxsize=1 << 16)
def _constraint_text(c: Constraint) -> str:
    return json.dumps(c.to_json(), sort_keys=True, separators=(",", ":"))


def P(*constraints: Constraint) -> Program:
    return Program(tuple(constraints))


@dataclass
class Scene:
    """The facts of one image, as the evaluator sees them.

    `instances` maps instance_id -> fact row (a dict with the columns of schemas.facts.FACTS);
    `relations` holds (subject_id, relation, object_id) triples; `affordances` maps
    category -> set of lexicon affordance keys (empty when no lexicon is given); `vocabulary`
    holds the categories the image's source annotates exhaustively, the only concepts a
    negative may name (empty: the planner's own list); `unknown` the categories the lexicon has
    no entry for (kind facts such as affordances are unsafe in a picture holding one).
    """
    image_id: str
    instances: dict[str, dict]
    relations: set[tuple[str, str, str]] = field(default_factory=set)
    affordances: dict[str, frozenset[str]] = field(default_factory=dict)
    vocabulary: frozenset[str] = frozenset()
    unknown: frozenset[str] = frozenset()     # categories the lexicon has no entry for
    # federated (LVIS-style) images: categories whose instances are not all marked, and the
    # categories known either way (marked in full, or checked absent); None: all are known
    incomplete: frozenset[str] = frozenset()
    verified: frozenset[str] | None = None

    @staticmethod
    def from_tables(image_id: str, facts, relations=None, affordances=None) -> "Scene":
        # the image's rows picked from python records, not by a boolean mask of the frame: the
        # build hands over each image's rows already, and pandas' per-call cost was most of it
        records = frame_records(facts)
        if "image_id" in facts:
            records = [r for r in records if r["image_id"] == image_id]
        inst = {r["instance_id"]: r for r in records}
        rel = set()
        if relations is not None and len(relations):
            rr = relations[["image_id", "subject_id", "relation", "object_id"]]
            rel = {(s, r, o) for i, s, r, o in zip(*(c.tolist() for _, c in rr.items())) if i == image_id}
        return Scene(image_id, inst, rel, dict(affordances or {}))

    def categories(self) -> set[str]:
        return {f["category"] for f in self.instances.values()}


def _filter(c: Constraint, ids: set[str], scene: Scene) -> set[str]:
    I = scene.instances
    if c.kind == "category":
        return {i for i in ids if I[i]["category"] == c.value}
    if c.kind == "supercategory":
        return {i for i in ids if I[i]["supercategory"] == c.value}
    if c.kind == "color":
        return {i for i in ids if I[i]["color"] == c.value}
    if c.kind == "size":
        return {i for i in ids if I[i]["size_label"] == c.value}
    if c.kind == "position":
        return {i for i in ids if c.value in (I[i]["pos_x"], I[i]["pos_y"])}
    if c.kind == "affordance":
        return {i for i in ids if c.value in scene.affordances.get(I[i]["category"], ())}
    if c.kind in ("garment", "posture"):
        from engine.language.people import garment_exact, posture_exact
        exact = garment_exact if c.kind == "garment" else posture_exact
        return {i for i in ids if exact(I[i], c.value)}
    if c.kind == "relation":
        objects = evaluate(c.obj, scene)
        return {i for i in ids if any((i, c.rel, o) in scene.relations for o in objects if o != i)}
    if c.kind == "not_relation":
        objects = evaluate(c.obj, scene)
        return {i for i in ids if not any((i, c.rel, o) in scene.relations for o in objects if o != i)}
    raise AssertionError(c.kind)


def _select(c: Constraint, ids: set[str], scene: Scene) -> set[str]:
    I = scene.instances
    if c.kind == "count":
        return ids if len(ids) == int(c.value) else set()
    if not ids:
        return ids
    # Ordinals and superlatives over a set with a crowd region are undefined: select nothing
    # definite, so the program cannot equal a one-instance target.
    if any(I[i]["iscrowd"] for i in ids):
        return ids
    if c.kind == "superlative":
        key = lambda i: (I[i]["area"], i)
        areas = sorted(ids, key=key, reverse=(c.value == "largest"))
        best, second = areas[0], (areas[1] if len(areas) > 1 else None)
        # a superlative only picks out an instance when it clearly stands apart (>= 15%)
        if second is not None:
            a, b = I[best]["area"], I[second]["area"]
            if max(a, b) < 1.15 * min(a, b):
                return set()
        return {best}
    if c.kind == "ordinal":
        side, k = str(c.value).split(":")
        k = int(k)
        coord, reverse = ORDINAL_FROM[side]
        order = sorted(ids, key=lambda i: (I[i][coord], i), reverse=reverse)
        if k > len(order):
            return set()
        # an ordinal is only meaningful when neighbours are not nearly level (>= 2% apart)
        pick = order[k - 1]
        for j in (k - 2, k):
            if 0 <= j < len(order) and abs(I[order[j]][coord] - I[pick][coord]) < 0.02:
                return set()
        return {pick}
    raise AssertionError(c.kind)


def evaluate(program: Program, scene: Scene) -> set[str]:
    """The set of instance ids the program selects in the scene."""
    ids = set(scene.instances)
    for c in program:
        if c.kind in FILTER_KINDS:
            ids = _filter(c, ids, scene)
    for c in program:
        if c.kind in SELECTOR_KINDS:
            ids = _select(c, ids, scene)
    return ids
