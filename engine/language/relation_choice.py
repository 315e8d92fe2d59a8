"""Prefer saying where a thing is by what is around it over where it sits in the frame.

People place a thing by its neighbours ("the cup next to the laptop") far more often than by
the frame ("the cup on the left"): about a quarter of human one-instance expressions relate
the target to another object. The planner's search ranks a frame position first (it is
shorter), and `Planner._with_relation` only makes sure one simple program relates. Here, when
a target has a relation program already and further relations also pick it out with margin,
a program that says nothing but a frame position or an ordinal ("the dog on the left", "the
leftmost dog") gives way to one with another relation. A described partner ("right of the
glass bottle in the centre") stays the only clause, as in the planner: nested descriptions
were judged hard to read.
"""
from __future__ import annotations

from engine.language.programs import Constraint, Program

RELATIONAL = ("relation", "not_relation")
FRAME = ("position", "ordinal")


def relational(p: Program) -> bool:
    return any(c.kind in RELATIONAL for c in p)


def frame_only(p: Program, head: Program) -> bool:
    """The program adds to its head nothing but frame position or ordinals."""
    extra = p.constraints[len(head):]
    return bool(extra) and p.constraints[:len(head)] == head.constraints and all(c.kind in FRAME for c in extra)


def _relation_programs(planner, scene, head: Program, t: str, atoms: list[Constraint],
                       skip: set[Constraint]) -> list[Program]:
    """One program per relation atom not in `skip` that picks out t with margin (head + the
    relation, + at most what the search adds; a described partner alone)."""
    out = []
    target = scene.instances[t]
    for a in atoms:
        if a.kind not in RELATIONAL or a in skip:
            continue
        others = [b for b in atoms if b.kind not in RELATIONAL] if len(a.obj) == 1 else []
        found = planner._search(scene, head.with_(a), {t}, others, planner._selectors(target) if others else [], 1)
        out += found[:1]
    return out


def prefer_relations(planner, scene, head: Program, t: str, atoms: list[Constraint],
                     found: list[Program]) -> list[Program]:
    """`found` (the target's programs under `head`, one relating already or none that can) with
    frame-only programs, last first, replaced by programs with relations not used yet; while
    there is room under programs_per_target, such programs are added too."""
    if not any(relational(p) for p in found):
        return found          # none refers (Planner._with_relation tried them all)
    used = {c for p in found for c in p if c.kind in RELATIONAL}
    fresh = [p for p in _relation_programs(planner, scene, head, t, atoms, used) if p not in found]
    out = list(found)
    limit = planner.cfg.programs_per_target
    for p in fresh:
        if any(c in {c for q in out for c in q if c.kind in RELATIONAL} for c in p if c.kind in RELATIONAL):
            continue          # its relation came in with an earlier program
        if len(out) < limit:
            out.append(p)
            continue
        frame = [k for k, q in enumerate(out) if frame_only(q, head)]
        if not frame:
            break
        out[frame[-1]] = p
    return out


def relate_frame_only(planner, scene, head: Program, t: str, atoms: list[Constraint],
                      programs: list[Program]) -> list[Program]:
    """`programs` under `head`, each that only adds a frame position or an ordinal ("the thing
    with a filling between slices of bread, second from the bottom") swapped for one with a
    relation under the same head that picks out t with margin, where one does and no other
    program of the list uses that relation."""
    out: list[Program] = []
    for p in programs:
        if frame_only(p, head):
            used = {c for q in out + programs for c in q if c.kind in RELATIONAL}
            alt = [q for q in _relation_programs(planner, scene, head, t, atoms, used) if q not in programs + out]
            p = alt[0] if alt else p
        out.append(p)
    return out
