"""A relation beats a bare frame position when both pick the target out with margin."""
import random

from engine.config import PlanConfig
from engine.language.plan import Planner
from engine.language.programs import Scene, evaluate
from engine.language.relation_choice import frame_only, relational
from tests.engine.language.test_plan import AFF, random_scene


def _inst(iid, cat, sup, cx, cy, color="black"):
    return {"instance_id": iid, "image_id": "img", "category": cat, "supercategory": sup, "iscrowd": False,
            "area": 500, "area_frac": 0.05, "cx": cx, "cy": cy,
            "pos_x": ("left", "center", "right")[min(2, int(cx * 3))],
            "pos_y": ("top", "middle", "bottom")[min(2, int(cy * 3))],
            "size_label": "medium", "color": color, "color_frac": 0.2}


def _scene():
    # two dogs; the left one has a bench on its left and a chair on its right, the other dog is
    # far right with nothing beside it: "the dog on the left" and "the dog right of the bench",
    # "the dog left of the chair" all pick out d1
    inst = {"d1": _inst("d1", "dog", "animal", 0.30, 0.5), "d2": _inst("d2", "dog", "animal", 0.90, 0.5),
            "b": _inst("b", "bench", "furniture", 0.10, 0.5), "c": _inst("c", "chair", "furniture", 0.55, 0.2)}
    rels = {("d1", "right_of", "b"), ("b", "left_of", "d1"), ("d1", "left_of", "c"), ("c", "right_of", "d1"),
            ("d2", "right_of", "c"), ("c", "left_of", "d2"), ("d2", "right_of", "b"), ("b", "left_of", "d2")}
    return Scene("img", inst, rels, AFF)


def _simple(specs, t):
    return [s.program for s in specs if s.tier == "simple" and s.target_ids == (t,)]


def test_a_second_relation_replaces_a_bare_frame_position():
    scene = _scene()
    cfg = PlanConfig(min_area_frac=0.005, relations=["left_of", "right_of", "next_to"])
    progs = _simple(Planner(cfg, list(AFF)).plan(scene), "d1")
    rels = {(c.rel, c.obj.get("category").value) for p in progs for c in p if c.kind == "relation"}
    # right_of the bench alone is ambiguous (d2 is right of it too): only left_of the chair refers
    assert ("left_of", "chair") in rels and ("right_of", "bench") in rels
    # of three programs, one frame-only ("the second dog from the right") gave way
    assert sum(relational(p) for p in progs) == 2
    assert sum(frame_only(p, progs[0].__class__(progs[0].constraints[:1])) for p in progs) == 1
    assert all(evaluate(p, scene) == {"d1"} for p in progs)
    assert len(progs) <= cfg.programs_per_target


def test_frame_only_and_relational_helpers():
    scene = _scene()
    progs = _simple(Planner(PlanConfig(min_area_frac=0.005), list(AFF)).plan(scene), "d1")
    from engine.language.programs import Constraint as C, Program
    head = Program((C("category", "dog"),))
    assert frame_only(head.with_(C("position", "left")), head)
    assert not frame_only(head.with_(C("position", "left"), C("color", "black")), head)
    assert not frame_only(head, head)
    assert any(relational(p) for p in progs)


def test_more_targets_are_related_and_none_nests():
    # over random scenes: never fewer relational simple programs than the planner without the
    # preference, some targets gain one, and a described partner still stands alone
    from engine.language import plan as plan_mod
    gained = 0
    for seed in range(40):
        scene = random_scene(random.Random(seed))
        cfg = PlanConfig(min_area_frac=0.005)
        with_pref = Planner(cfg, list(AFF), seed=seed).plan(scene)
        original = plan_mod.prefer_relations
        plan_mod.prefer_relations = lambda planner, scene, head, t, atoms, found: found
        try:
            without = Planner(cfg, list(AFF), seed=seed).plan(scene)
        finally:
            plan_mod.prefer_relations = original
        n_with = sum(relational(s.program) for s in with_pref if s.tier == "simple")
        n_without = sum(relational(s.program) for s in without if s.tier == "simple")
        assert n_with >= n_without
        gained += n_with > n_without
        for s in with_pref:
            assert evaluate(s.program, scene) == set(s.target_ids)
            if any(c.kind == "relation" and len(c.obj) > 1 for c in s.program):
                assert sum(c.kind not in ("category", "supercategory", "affordance") for c in s.program) == 1
    assert gained, "the preference changed nothing in 40 random scenes"


def test_a_frame_only_kind_fact_program_gives_way_to_a_relation_under_the_same_head():
    from engine.language.programs import Constraint as C, Program
    from engine.language.relation_choice import relate_frame_only
    scene = _scene()
    planner = Planner(PlanConfig(min_area_frac=0.005, relations=["left_of", "right_of"]), list(AFF))
    head = Program((C("affordance", "barks"),))
    frame = head.with_(C("ordinal", "left:1"))
    assert evaluate(frame, scene) == {"d1"}
    atoms = planner._filter_atoms(scene, "d1")
    (p,) = relate_frame_only(planner, scene, head, "d1", atoms, [frame])
    assert p.constraints[:1] == head.constraints and relational(p)
    assert evaluate(p, scene) == {"d1"}
    # a program that already says more than the frame is left alone
    described = head.with_(C("color", "black"), C("ordinal", "left:1"))
    assert relate_frame_only(planner, scene, head, "d1", atoms, [described]) == [described]


def test_planned_kind_fact_programs_say_a_relation_rather_than_only_the_frame():
    # over random scenes: a complex program headed by a kind fact that adds only a frame position
    # is planned only where no relation under that head picks the target out
    from engine.language.programs import Program
    from engine.language.relation_choice import relate_frame_only
    related = 0
    for seed in range(40):
        scene = random_scene(random.Random(seed))
        planner = Planner(PlanConfig(min_area_frac=0.005), list(AFF), seed=seed)
        specs = [s for s in planner.plan(scene) if s.tier == "complex" and s.cardinality == "1:1"
                 and s.program.constraints[0].kind == "affordance"]
        for s in specs:
            head = Program(s.program.constraints[:1])
            (t,) = s.target_ids
            same = [x.program for x in specs if x.target_ids == s.target_ids and x.program.constraints[:1] == head.constraints]
            related += relational(s.program)
            if frame_only(s.program, head):
                assert relate_frame_only(planner, scene, head, t, planner._filter_atoms(scene, t), same) == same
    assert related, "no kind-fact program relates its target in 40 scenes: the test checks nothing"
