"""Hand-built and random scenes, and a tiny planner, for the language tests (not a test module).

The mini-planner only exists so the generator and checker tests do not depend on the real
planner: for a target it tries small programs and keeps those that select exactly the target.
"""
from __future__ import annotations

import itertools
import random

from engine.generate.base import SpecView
from engine.lexicon import load_lexicon
from engine.language.programs import Constraint, Program, Scene, evaluate

LEX = load_lexicon()
C = Constraint
COLORS = ("black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")
# a mix: synonyms, multi-word nouns, irregular plurals, a colour-noun, people, and one category
# the lexicon does not know
SCENE_CATEGORIES = ("dog", "cat", "person", "chair", "bench", "couch", "cup", "dining table", "car", "bus",
                    "orange", "cell phone", "teddy bear", "sheep", "knife", "hot dog", "tv", "skis", "widget")


def third(v: float, labels: tuple[str, str, str]) -> str:
    return labels[min(2, int(v * 3))]


def fact(iid: str, category: str, cx: float, cy: float, color: str = "black", area: float = 1000.0,
         iscrowd: bool = False, image_id: str = "img") -> dict:
    af = area / 100_000
    return {"instance_id": iid, "image_id": image_id, "category": category,
            "supercategory": LEX.supercategory_of(category) or "thing", "iscrowd": iscrowd,
            "area": area, "area_frac": af, "cx": cx, "cy": cy,
            "pos_x": third(cx, ("left", "center", "right")), "pos_y": third(cy, ("top", "middle", "bottom")),
            "size_label": "small" if af < 0.01 else "large" if af > 0.1 else "medium",
            "color": color, "color_frac": 0.8}


def scene_of(facts: list[dict], relations=(), image_id: str = "img") -> Scene:
    return Scene(image_id, {f["instance_id"]: f for f in facts}, set(relations), LEX.affordance_map())


def random_scene(rng: random.Random, image_id: str = "img") -> Scene:
    cats = rng.sample(SCENE_CATEGORIES, rng.randint(1, 4))
    facts = []
    for k in range(rng.randint(2, 9)):
        cat = rng.choice(cats)
        facts.append(fact(f"i{k}", cat, round(rng.random(), 3), round(rng.random(), 3), rng.choice(COLORS[:7]),
                          round(rng.uniform(200, 15000)), iscrowd=rng.random() < 0.03, image_id=image_id))
    rels = set()
    for a, b in itertools.permutations(facts, 2):
        if rng.random() < 0.5:
            continue
        ia, ib = a["instance_id"], b["instance_id"]
        if a["cx"] < b["cx"] - 0.1:
            rels |= {(ia, "left_of", ib), (ib, "right_of", ia)}
            if abs(a["cy"] - b["cy"]) < 0.2 and b["cx"] - a["cx"] < 0.3:
                rels |= {(ia, "next_to", ib), (ib, "next_to", ia)}
        if a["cy"] < b["cy"] - 0.1:
            rels |= {(ia, "above", ib), (ib, "below", ia)}
            if abs(a["cx"] - b["cx"]) < 0.15:
                rels.add((ia, "on", ib))
        if a["area"] < b["area"] / 4 and rng.random() < 0.2:
            rels.add((ia, rng.choice(["inside", "overlapping"]), ib))
    return scene_of(facts, rels, image_id)


def _object_program(scene: Scene, oid: str) -> Program:
    f = scene.instances[oid]
    base = Program((C("category", f["category"]),))
    for extra in (None, C("color", f["color"]), C("position", f["pos_x"]), C("position", f["pos_y"])):
        p = base if extra is None else base.with_(extra)
        if evaluate(p, scene) == {oid}:
            return p
    return base      # several match: the text says "a bench"


def atoms(scene: Scene, iid: str) -> list[Constraint]:
    f = scene.instances[iid]
    out = [C("color", f["color"]), C("position", f["pos_x"]), C("position", f["pos_y"])]
    if f["size_label"] != "medium":
        out.append(C("size", f["size_label"]))
    for s, rel, o in sorted(scene.relations):
        if s == iid and scene.instances[o]["category"] != f["category"]:
            out.append(C("relation", rel=rel, obj=_object_program(scene, o)))
    return out


SELECTORS = [C("ordinal", v) for v in ("left:1", "right:1", "top:1", "bottom:1", "left:2", "right:2", "left:3")] + \
            [C("superlative", "largest"), C("superlative", "smallest")]


def programs_for(scene: Scene, head: Program, targets: set[str], pool: list[Constraint], max_extra: int = 2):
    """All head + up to `max_extra` atoms (+ at most one selector) that select exactly `targets`."""
    found = []
    for n in range(0, max_extra + 1):
        for combo in itertools.combinations(pool, n):
            for sel in [None] + SELECTORS:
                p = head.with_(*combo) if sel is None else head.with_(*combo, sel)
                if len(p) > len(head) and evaluate(p, scene) == targets:
                    found.append(p)
    return found


def spec(tier: str, card: str, targets, program: Program, sid: str = "s", image_id: str = "img") -> SpecView:
    return SpecView(sid, image_id, tier, "", card, tuple(sorted(targets)), program)


def random_specs(rng: random.Random, scene: Scene, tiers=("simple",)) -> list[SpecView]:
    """Specs of every cardinality a planner would emit for this scene."""
    out = []
    by_cat: dict[str, list[str]] = {}
    for i, f in scene.instances.items():
        by_cat.setdefault(f["category"], []).append(i)
    for tier in tiers:
        for i, f in sorted(scene.instances.items()):
            if f["iscrowd"]:
                continue
            heads = [Program((C("category", f["category"]),))] if tier != "complex" else \
                [Program((C("affordance", k),)) for k in sorted(LEX.affordances(f["category"]))]
            for head in heads:
                found = programs_for(scene, head, {i}, atoms(scene, i))
                if found:
                    out.append(spec(tier, "1:1", {i}, rng.choice(found), f"{tier}-{i}-{len(out)}", scene.image_id))
        for cat, members in sorted(by_cat.items()):
            heads = [Program((C("category", cat),))] if tier != "complex" else \
                [Program((C("affordance", k),)) for k in sorted(LEX.affordances(cat))]
            for head in heads:
                if evaluate(head, scene) != set(members):
                    continue
                if len(members) >= 2:
                    out.append(spec(tier, "1:All", members, head, f"{tier}-all-{cat}-{len(out)}", scene.image_id))
                for a in atoms(scene, members[0])[:3]:
                    group = evaluate(head.with_(a), scene)
                    if 2 <= len(group) < len(members):
                        p = head.with_(a, C("count", len(group))) if rng.random() < 0.5 else head.with_(a)
                        out.append(spec(tier, "1:N", group, p, f"{tier}-n-{cat}-{len(out)}", scene.image_id))
        if tier == "simple":
            absent = [c for c in SCENE_CATEGORIES if c not in by_cat and c != "widget"]
            cat = rng.choice(sorted(by_cat))
            colors = [c for c in COLORS if all(scene.instances[m]["color"] != c for m in by_cat[cat])]
            out.append(spec("simple", "negative", (), Program((C("category", cat), C("color", rng.choice(colors)))),
                            f"neg-{len(out)}", scene.image_id))
            out.append(spec("concept", "negative", (), Program((C("category", rng.choice(absent)),)),
                            f"negc-{len(out)}", scene.image_id))
    return out
