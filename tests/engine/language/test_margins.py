"""Near-ties a viewer would hesitate over get no instruction; clear cases still get one."""
from engine.config import PlanConfig
from engine.language.margins import evaluate_with_margin, refers_with_margin
from engine.language.plan import Planner
from engine.language.programs import P, Constraint, Constraint as C, Scene, evaluate


def inst(iid, cat, cx, cy, w=0.08, h=0.3, color="black", color_frac=0.8, sup=None, **kw):
    af = w * h * 0.6
    row = {"instance_id": iid, "image_id": "img", "category": cat, "supercategory": sup or cat,
           "iscrowd": False, "area": af * 100_000, "area_frac": af, "cx": cx, "cy": cy,
           "x0": cx - w / 2, "x1": cx + w / 2, "y0": cy - h / 2, "y1": cy + h / 2,
           "pos_x": ("left", "center", "right")[min(2, int(cx * 3))],
           "pos_y": ("top", "middle", "bottom")[min(2, int(cy * 3))],
           "size_label": "small" if af < 0.01 else "large" if af > 0.1 else "medium",
           "color": color, "color_frac": color_frac, "truncated": False, "occlusion": 0.0}
    row.update(kw)
    return row


def scene(*rows, relations=()):
    return Scene("img", {r["instance_id"]: r for r in rows}, set(relations), {})


def plan(sc, **cfg):
    return Planner(PlanConfig(**cfg), ["dog", "person", "sheep", "car", "motorcycle", "bird"]).plan(sc)


def texts_for(specs, target):
    return [s.program.dumps() for s in specs if s.target_ids == (target,) and s.tier == "simple"]


def test_people_in_a_row_with_one_stepping_forward_get_no_height_words():
    # three people side by side; the one in mid-stride sits lower (cy 0.69 against 0.62): the
    # exact facts put it "at the bottom" and the others "at mid-height"; a viewer sees one row
    row = scene(inst("a", "person", 0.3, 0.62), inst("b", "person", 0.5, 0.62), inst("c", "person", 0.7, 0.69))
    two = P(C("category", "person"), C("position", "middle"), C("count", 2))
    assert evaluate(two, row) == {"a", "b"}
    assert not refers_with_margin(two, row, {"a", "b"})
    specs = plan(row)
    assert not [s for s in specs if s.cardinality == "1:N"]
    for s in specs:
        if s.tier == "simple" and s.cardinality == "1:1":
            assert "middle" not in s.program.dumps() and "bottom" not in s.program.dumps()
    # the clear reading still works: left to right, well apart
    assert texts_for(specs, "a") and texts_for(specs, "c")


def test_ordinal_counts_over_the_whole_category_not_the_filtered_subset():
    # "the person second from the right, halfway up" would be counted by a reader over all people
    sc = scene(inst("a", "person", 0.15, 0.5), inst("b", "person", 0.4, 0.5), inst("c", "person", 0.6, 0.9),
               inst("d", "person", 0.85, 0.5))
    prog = P(C("category", "person"), C("position", "middle"), C("ordinal", "right:2"))
    assert evaluate(prog, sc) == {"b"}
    assert not refers_with_margin(prog, sc, {"b"})
    assert refers_with_margin(P(C("category", "person"), C("ordinal", "right:3")), sc, {"b"})


def test_ordinals_need_clear_gaps_and_a_countable_set():
    tight = scene(inst("a", "sheep", 0.30, 0.5), inst("b", "sheep", 0.33, 0.5), inst("c", "sheep", 0.8, 0.5))
    assert not refers_with_margin(P(C("category", "sheep"), C("ordinal", "left:1")), tight, {"a"})
    assert refers_with_margin(P(C("category", "sheep"), C("ordinal", "right:1")), tight, {"c"})
    herd = scene(*[inst(f"s{k}", "sheep", 0.05 + 0.09 * k, 0.5, w=0.05) for k in range(10)])
    assert refers_with_margin(P(C("category", "sheep"), C("ordinal", "left:1")), herd, {"s0"})
    assert not refers_with_margin(P(C("category", "sheep"), C("ordinal", "left:2")), herd, {"s1"})


def test_no_groups_inside_a_herd_and_groups_need_a_gap():
    herd = scene(*[inst(f"s{k}", "sheep", 0.05 + 0.09 * k, 0.4 + 0.02 * k, w=0.05, h=0.1) for k in range(10)])
    assert not [s for s in plan(herd, min_area_frac=0.001) if s.cardinality == "1:N"]
    # four dogs: two far left, two far right -> "the two dogs on the left" is clear
    dogs = scene(inst("a", "dog", 0.1, 0.5), inst("b", "dog", 0.2, 0.5), inst("c", "dog", 0.8, 0.5),
                 inst("d", "dog", 0.9, 0.5))
    groups = [s for s in plan(dogs) if s.cardinality == "1:N"]
    assert {s.target_ids for s in groups} == {("a", "b"), ("c", "d")}
    # ... but not when one of the left pair sits on the edge of its third
    edge = scene(inst("a", "dog", 0.1, 0.5), inst("b", "dog", 0.31, 0.5), inst("c", "dog", 0.8, 0.5),
                 inst("d", "dog", 0.9, 0.5))
    assert ("a", "b") not in {s.target_ids for s in plan(edge) if s.cardinality == "1:N"}


def test_look_alike_colours_are_not_used():
    birds = scene(inst("a", "bird", 0.2, 0.5, color="gray"), inst("b", "bird", 0.5, 0.5, color="black"),
                  inst("c", "bird", 0.8, 0.5, color="black"))
    gray = P(C("category", "bird"), C("color", "gray"))
    assert evaluate(gray, birds) == {"a"} and not refers_with_margin(gray, birds, {"a"})
    assert not any('"color"' in p for p in texts_for(plan(birds), "a"))
    clear = scene(inst("a", "bird", 0.2, 0.5, color="red"), inst("b", "bird", 0.5, 0.5, color="black"))
    assert refers_with_margin(P(C("category", "bird"), C("color", "red")), clear, {"a"})


def test_smallest_is_not_said_of_a_hidden_or_cut_mask():
    sc = scene(inst("a", "car", 0.2, 0.5, w=0.1, occlusion=0.4), inst("b", "car", 0.6, 0.5, w=0.3),
               inst("c", "car", 0.9, 0.5, w=0.15, truncated=True))
    smallest = P(C("category", "car"), C("superlative", "smallest"))
    assert evaluate(smallest, sc) == {"a"}
    assert not refers_with_margin(smallest, sc, {"a"})
    unhidden = scene(inst("a", "car", 0.2, 0.5, w=0.1), inst("b", "car", 0.6, 0.5, w=0.3))
    assert refers_with_margin(smallest, unhidden, {"a"})
    # the largest is not sure when a runner-up cut by the border might be larger than it looks
    largest = P(C("category", "car"), C("superlative", "largest"))
    assert not refers_with_margin(largest, scene(inst("a", "car", 0.5, 0.5, w=0.3),
                                                 inst("b", "car", 0.95, 0.5, w=0.18, truncated=True)), {"a"})


def test_relation_reads_over_every_object_not_only_the_near_ones():
    # two motorcycles left of the car; the facts only related the near one
    sc = scene(inst("m1", "motorcycle", 0.1, 0.5), inst("m2", "motorcycle", 0.45, 0.5),
               inst("car", "car", 0.7, 0.5, w=0.3),
               relations={("m2", "left_of", "car"), ("car", "right_of", "m2")})
    prog = P(C("category", "motorcycle"), C("relation", rel="left_of", obj=P(C("category", "car"))))
    assert evaluate(prog, sc) == {"m2"}
    sure, maybe = evaluate_with_margin(prog, sc)
    assert maybe == {"m1", "m2"} and not refers_with_margin(prog, sc, {"m2"})
    # next to: a van across the street is not "next to" the bicycle
    far = scene(inst("t", "truck", 0.2, 0.5, w=0.1), inst("b", "bicycle", 0.45, 0.5, w=0.1),
                relations={("t", "next_to", "b"), ("b", "next_to", "t")})
    nxt = P(C("category", "truck"), C("relation", rel="next_to", obj=P(C("category", "bicycle"))))
    assert evaluate(nxt, far) == {"t"} and not refers_with_margin(nxt, far, {"t"})
    close = scene(inst("t", "truck", 0.3, 0.5, w=0.1), inst("b", "bicycle", 0.41, 0.5, w=0.1),
                  relations={("t", "next_to", "b"), ("b", "next_to", "t")})
    assert refers_with_margin(nxt, close, {"t"})


def test_negatives_hold_for_a_loose_reader():
    # "the blue dog" is no safe negative next to a black dog in shade
    sc = scene(inst("a", "dog", 0.5, 0.5, color="black"))
    assert evaluate_with_margin(P(C("category", "dog"), C("color", "blue")), sc)[1] == {"a"}
    for s in plan(sc):
        if s.cardinality == "negative":
            assert not evaluate_with_margin(s.program, sc)[1]


def test_sure_is_within_exact_within_maybe_on_random_scenes():
    import random

    from tests.engine.language.test_plan import random_scene
    progs = [P(C("category", c), C(k, v)) for c in ("dog", "cat", "chair") for k, v in
             (("position", "left"), ("position", "middle"), ("color", "black"), ("size", "small"))]
    progs += [P(C("category", c), C("ordinal", o)) for c in ("dog", "chair") for o in ("left:1", "right:2", "top:1")]
    progs += [P(C("category", "dog"), C("superlative", "largest"))]
    progs += [P(C("category", "dog"), C("relation", rel=r, obj=P(C("category", "bench"))))
              for r in ("left_of", "above", "below")]
    for seed in range(300):
        sc = random_scene(random.Random(seed))
        for p in progs:
            sure, maybe = evaluate_with_margin(p, sc)
            assert sure <= evaluate(p, sc) <= maybe, (seed, p.dumps())


def test_an_object_spanning_the_frame_gets_no_position_word_along_that_axis():
    # two people standing from top to bottom and one sitting in front: the standing ones are not
    # "halfway up the image", though their centroids are
    sc = scene(inst("a", "person", 0.2, 0.55, w=0.25, h=0.8), inst("b", "person", 0.8, 0.55, w=0.25, h=0.8),
               inst("c", "person", 0.5, 0.85, w=0.25, h=0.3))
    two = P(C("category", "person"), C("position", "middle"), C("count", 2))
    assert evaluate(two, sc) == {"a", "b"} and not refers_with_margin(two, sc, {"a", "b"})
    # left / right still read well for them
    assert refers_with_margin(P(C("category", "person"), C("position", "left")), sc, {"a"})


def test_no_ordinal_or_superlative_over_a_single_instance():
    sc = scene(inst("t", "dining table", 0.5, 0.5, w=1.0, h=0.9), inst("p", "person", 0.2, 0.8))
    for sel in (C("superlative", "smallest"), C("superlative", "largest"), C("ordinal", "right:1")):
        prog = P(C("category", "dining table"), sel)
        assert evaluate(prog, sc) == {"t"} and not refers_with_margin(prog, sc, {"t"})


def test_low_position_is_not_said_when_others_also_reach_there():
    # one sitting low in front, two standing from top to bottom: all three reach the bottom
    sc = scene(inst("a", "person", 0.2, 0.6, w=0.25, h=0.8), inst("b", "person", 0.8, 0.6, w=0.25, h=0.8),
               inst("c", "person", 0.5, 0.78, w=0.25, h=0.4))
    low = P(C("category", "person"), C("position", "bottom"))
    assert evaluate(low, sc) == {"c"} and not refers_with_margin(low, sc, {"c"})


def test_all_of_a_category_is_counted_only_when_countable():
    clear = scene(*[inst(f"d{k}", "dog", 0.2 + 0.3 * k, 0.5) for k in range(3)])
    simple_all = [s for s in plan(clear) if s.tier == "simple" and s.cardinality == "1:All"]
    assert [s.program.get("count").value for s in simple_all] == [3]
    sliver = scene(*[inst(f"d{k}", "dog", 0.2 + 0.3 * k, 0.5) for k in range(2)],
                   inst("d9", "dog", 0.95, 0.5, w=0.01, h=0.05))
    simple_all = [s for s in plan(sliver) if s.tier == "simple" and s.cardinality == "1:All"]
    assert simple_all and all(s.program.get("count") is None for s in simple_all)


def test_no_size_word_for_the_only_one_of_its_kind():
    sc = scene(inst("g", "grass", 0.5, 0.8, w=1.0, h=0.4), inst("p", "person", 0.3, 0.5))
    assert not any(c.kind == "size" for s in plan(sc) for c in s.program)


def test_no_complex_all_over_a_crowd_or_a_shelf_full():
    shelf = Scene("img", {r["instance_id"]: r for r in
                          [inst(f"v{k}", "vase", 0.05 + 0.08 * k, 0.5, w=0.06) for k in range(9)]},
                  set(), {"vase": frozenset({"decorative"})})
    specs = Planner(PlanConfig(), ["vase"]).plan(shelf)
    assert any(s.tier == "simple" and s.cardinality == "1:All" for s in specs)
    assert not any(s.tier == "complex" and s.cardinality == "1:All" for s in specs)
    few = Scene("img", {r["instance_id"]: r for r in [inst(f"v{k}", "vase", 0.2 + 0.3 * k, 0.5) for k in range(3)]},
                set(), {"vase": frozenset({"decorative"})})
    assert any(s.tier == "complex" and s.cardinality == "1:All" for s in Planner(PlanConfig(), ["vase"]).plan(few))


def test_an_adjective_narrows_what_an_ordinal_counts():
    # two cut (green) kiwis among brown ones: "the lowest green kiwi" counts green kiwis
    sc = scene(inst("g1", "kiwi", 0.35, 0.2, color="green"), inst("g2", "kiwi", 0.5, 0.62, color="green"),
               inst("b1", "kiwi", 0.15, 0.8, color="brown"), inst("b2", "kiwi", 0.85, 0.7, color="brown"))
    assert refers_with_margin(P(C("category", "kiwi"), C("color", "green"), C("ordinal", "bottom:1")), sc, {"g2"})


def test_the_only_one_of_its_kind_is_said_so_when_nothing_else_is_sure():
    sc = scene(inst("o", "orange", 0.5, 0.5, w=0.9, h=0.9, color="orange", color_frac=0.3),
               inst("k", "kite", 0.1, 0.1, w=0.05, h=0.05))
    simple = [s.program for s in plan(sc) if s.tier == "simple" and s.target_ids == ("o",)]
    assert simple == [P(C("category", "orange"), C("count", 1))]


def test_stuff_gets_no_colour_size_or_superlative():
    trees = inst("t", "tree", 0.5, 0.25, w=1.0, h=0.5, color="black", stuff=True, sup="plant")
    grass = inst("g", "grass", 0.5, 0.8, w=1.0, h=0.4, color="green", stuff=True, sup="plant")
    sc = scene(trees, grass, inst("p", "person", 0.3, 0.6))
    assert not [s for s in plan(sc) if s.program.get("count") is not None and s.target_ids == ("t",)]
    for s in plan(sc):
        if set(s.target_ids) & {"t", "g"}:
            assert not {c.kind for c in s.program} & {"color", "size", "superlative"}, s.program.dumps()


def test_large_objects_are_ordered_when_the_whole_box_is_shifted():
    # two tall mangoes: the centroids are 0.10 apart, less than half their height, but the top
    # one's top edge, middle and bottom edge all lie clearly higher: a viewer sees "the topmost"
    top = inst("a", "mango", 0.55, 0.18, w=0.2, h=0.32)
    lower = inst("b", "mango", 0.8, 0.28, w=0.2, h=0.28)
    sc = scene(top, lower, inst("c", "mango", 0.5, 0.8, w=0.2, h=0.3))
    assert refers_with_margin(P(C("category", "mango"), C("ordinal", "top:1")), sc, {"a"})
    # the same centroids, but the lower one is taller and reaches as high: edges disagree
    tall = inst("b", "mango", 0.8, 0.28, w=0.2, h=0.5)
    sc2 = scene(top, tall, inst("c", "mango", 0.5, 0.8, w=0.2, h=0.3))
    assert not refers_with_margin(P(C("category", "mango"), C("ordinal", "top:1")), sc2, {"a"})
    # from the other end: the lowest counts bottom edges and middles the same way
    assert refers_with_margin(P(C("category", "mango"), C("ordinal", "bottom:1")), sc, {"c"})


def test_a_second_colour_of_a_two_tone_object_blocks_that_colour():
    # a white bus with a broad red band: "the red bus" may be read as either bus
    sc = scene(inst("a", "bus", 0.2, 0.5, color="red", color_frac=0.7, color_palette="red:0.70,gray:0.30"),
               inst("b", "bus", 0.8, 0.5, color="white", color_frac=0.6, color_palette="white:0.60,red:0.35"))
    assert not refers_with_margin(P(C("category", "bus"), C("color", "red")), sc, {"a"})
    plain = scene(inst("a", "bus", 0.2, 0.5, color="red", color_frac=0.7, color_palette="red:0.70,gray:0.30"),
                  inst("b", "bus", 0.8, 0.5, color="white", color_frac=0.9, color_palette="white:0.90,red:0.06"))
    assert refers_with_margin(P(C("category", "bus"), C("color", "red")), plain, {"a"})


def test_no_colour_negative_for_a_colour_any_part_has():
    # gray glass bottles with red labels: "the red bottle" is not a safe negative
    sc = scene(*[inst(f"b{k}", "bottle", 0.2 + 0.3 * k, 0.5, color="gray", color_frac=0.6,
                      color_palette="gray:0.60,red:0.15,white:0.10") for k in range(3)])
    negs = [s.program.dumps() for s in plan(sc, negatives_per_image=20) if s.cardinality == "negative" and s.tier == "simple"]
    assert negs and not [n for n in negs if '"red"' in n]


def test_no_colour_negative_next_to_a_hue_a_part_has():
    # amber glass reads brown in parts: "the orange bottle" is not safe, "the green bottle" is
    sc = scene(*[inst(f"b{k}", "bottle", 0.2 + 0.3 * k, 0.5, color="black", color_frac=0.6,
                      color_palette="black:0.60,brown:0.25,white:0.10") for k in range(3)])
    negs = set()
    for seed in range(10):
        negs |= {s.program.get("color").value for s in Planner(PlanConfig(negatives_per_image=20), ["bottle"], seed=seed).plan(sc)
                 if s.cardinality == "negative" and s.tier == "simple"}
    assert "green" in negs and not negs & {"orange", "red", "yellow"}


def test_in_the_centre_means_reaching_the_middle_line():
    # two bottles: the left one stands just inside the middle third but wholly left of the
    # frame's middle; "the bottle in the middle" would make a reader hesitate
    left = inst("a", "bottle", 0.40, 0.5, w=0.12, h=0.5)
    sc = scene(left, inst("b", "bottle", 0.78, 0.5, w=0.12, h=0.5))
    assert not refers_with_margin(P(C("category", "bottle"), C("position", "center")), sc, {"a"})
    straddling = inst("a", "bottle", 0.46, 0.5, w=0.12, h=0.5)
    sc = scene(straddling, inst("b", "bottle", 0.85, 0.5, w=0.12, h=0.5))
    assert refers_with_margin(P(C("category", "bottle"), C("position", "center")), sc, {"a"})


def test_no_green_negative_for_brown_things():
    # dried figs read "brown" but look olive: "the green fig" is not a safe negative
    sc = scene(*[inst(f"f{k}", "fig", 0.2 + 0.3 * k, 0.5, color="brown", color_frac=0.7,
                      color_palette="brown:0.70,black:0.20") for k in range(3)])
    negs = set()
    for seed in range(10):
        negs |= {s.program.get("color").value for s in Planner(PlanConfig(negatives_per_image=20), ["fig"], seed=seed).plan(sc)
                 if s.cardinality == "negative" and s.tier == "simple"}
    assert negs and "green" not in negs


def test_inside_only_of_a_container_and_no_counting_of_stuff_regions():
    # a keyboard "inside the laptop" is part of it; a cup inside a bowl is in it
    kb = inst("k", "keyboard", 0.5, 0.3, sup="electronic")
    lap = inst("l", "laptop", 0.5, 0.3, w=0.6, h=0.5, sup="electronic")
    sc = scene(kb, lap, inst("k2", "keyboard", 0.2, 0.8, sup="electronic"), relations={("k", "inside", "l")})
    rel = P(C("category", "keyboard"), Constraint("relation", rel="inside", obj=P(C("category", "laptop"))))
    assert evaluate(rel, sc) == {"k"} and not refers_with_margin(rel, sc, {"k"})
    cup = inst("c", "cup", 0.5, 0.5, sup="kitchen")
    bowl = inst("b", "bowl", 0.5, 0.5, w=0.4, h=0.4, sup="kitchen")
    sc = scene(cup, bowl, inst("c2", "cup", 0.1, 0.9, sup="kitchen"), relations={("c", "inside", "b")})
    rel = P(C("category", "cup"), Constraint("relation", rel="inside", obj=P(C("category", "bowl"))))
    assert refers_with_margin(rel, sc, {"c"})
    # a wood above a lawn: no "the plant second from the top"
    wood = inst("w", "tree-merged", 0.5, 0.2, w=1.0, h=0.4, sup="plant", stuff=True)
    lawn = inst("g", "grass-merged", 0.5, 0.8, w=1.0, h=0.4, sup="plant", stuff=True)
    specs = plan(scene(wood, lawn))
    assert not [s for s in specs if any(c.kind in ("ordinal", "superlative") for c in s.program)]


def test_in_the_centre_alone_means_the_middle_of_the_picture():
    # a whole orange at the top centre and a wedge at the bottom centre are not "both in the centre"
    top = inst("a", "orange", 0.5, 0.28, w=0.3, h=0.5)
    wedge = inst("b", "orange", 0.5, 0.72, w=0.25, h=0.4)
    side = inst("c", "orange", 0.12, 0.5, w=0.2, h=0.4)
    sc = scene(top, wedge, side)
    assert not refers_with_margin(P(C("category", "orange"), C("position", "center"), C("count", 2)), sc, {"a", "b"})
    middle = inst("a", "orange", 0.5, 0.5, w=0.3, h=0.4)
    sc = scene(middle, side, inst("d", "orange", 0.88, 0.5, w=0.2, h=0.4))
    assert refers_with_margin(P(C("category", "orange"), C("position", "center")), sc, {"a"})


def test_above_and_below_only_of_things_stacked_in_the_picture():
    below = P(C("category", "date"), C("relation", rel="below", obj=P(C("category", "hazelnut"))))
    stacked = {("d1", "below", "h"), ("h", "above", "d1")}
    # a date just under the hazelnut, another far down the frame and off to the side
    sc = scene(inst("h", "hazelnut", 0.5, 0.2, w=0.1, h=0.1), inst("d1", "date", 0.52, 0.37, w=0.15, h=0.2),
               inst("d2", "date", 0.2, 0.85, w=0.15, h=0.2), relations=stacked)
    assert refers_with_margin(below, sc, {"d1"})
    # the far one shares the hazelnut's columns: a reader may take it too ("below" reads loosely)
    far = scene(inst("h", "hazelnut", 0.5, 0.2, w=0.1, h=0.1), inst("d1", "date", 0.52, 0.37, w=0.15, h=0.2),
                inst("d2", "date", 0.45, 0.85, w=0.15, h=0.2), relations=stacked | {("d2", "below", "h")})
    assert evaluate_with_margin(below, far)[1] == {"d1", "d2"} and not refers_with_margin(below, far, {"d1"})
    # across a street: higher in the frame and far off is depth, not "directly above"
    street = scene(inst("bus", "bus", 0.5, 0.2, w=0.3, h=0.15), inst("p", "person", 0.5, 0.75, w=0.1, h=0.3),
                   relations={("bus", "above", "p"), ("p", "below", "bus")})
    above = P(C("category", "bus"), C("relation", rel="above", obj=P(C("category", "person"))))
    assert evaluate(above, street) == {"bus"} and not refers_with_margin(above, street, {"bus"})
    # a person standing in front of the bus overlaps it: never "below the bus"
    front = scene(inst("bus", "bus", 0.5, 0.4, w=0.4, h=0.3), inst("p", "person", 0.5, 0.6, w=0.1, h=0.3),
                  relations={("p", "below", "bus"), ("bus", "above", "p")})
    under = P(C("category", "person"), C("relation", rel="below", obj=P(C("category", "bus"))))
    assert not refers_with_margin(under, front, {"p"})


def test_a_relation_partner_may_be_named_by_an_extreme():
    # three hazelnuts in a row; the date sits just under the rightmost one
    rows = [inst(f"h{k}", "hazelnut", x, 0.2, w=0.1, h=0.1) for k, x in enumerate((0.1, 0.35, 0.62))]
    rows.append(inst("d", "date", 0.62, 0.37, w=0.15, h=0.2))
    rows += [inst(f"e{k}", "date", x, 0.8, w=0.15, h=0.2) for k, x in enumerate((0.15, 0.45))]
    sc = scene(*rows, relations={("d", "below", "h2"), ("h2", "above", "d")})
    flat_lay = PlanConfig(relations=["left_of", "right_of", "above", "below"])
    progs = [s.program for s in Planner(flat_lay, []).plan(sc) if s.target_ids == ("d",) and s.tier == "simple"]
    partners = [c.obj for p in progs for c in p if c.kind == "relation"]
    assert P(C("category", "hazelnut"), C("ordinal", "right:1")) in partners


def test_a_partner_extreme_needs_a_clear_lead():
    # the two right-hand hazelnuts are nearly level: "the rightmost hazelnut" is no landmark
    rows = [inst("h0", "hazelnut", 0.1, 0.2, w=0.1, h=0.1), inst("h1", "hazelnut", 0.55, 0.2, w=0.1, h=0.1),
            inst("h2", "hazelnut", 0.62, 0.25, w=0.1, h=0.1), inst("d", "date", 0.62, 0.43, w=0.15, h=0.2)]
    rows += [inst(f"e{k}", "date", x, 0.8, w=0.15, h=0.2) for k, x in enumerate((0.15, 0.4))]
    sc = scene(*rows, relations={("d", "below", "h2"), ("h2", "above", "d")})
    flat_lay = PlanConfig(relations=["left_of", "right_of", "above", "below"])
    planner = Planner(flat_lay, [])
    assert planner._object_program(sc, "h2") is None
    far = scene(*[dict(r, cx=0.85, x0=0.8, x1=0.9) if r["instance_id"] == "h2" else r for r in rows])
    assert planner._object_program(far, "h2") == P(C("category", "hazelnut"), C("ordinal", "right:1"))


def test_an_ordinal_does_not_count_past_a_sliver():
    # the rightmost bicycle shows only a handlebar behind a scooter: "second from the right" makes
    # a viewer hunt for it; the big one is still "the leftmost"
    big = inst("b1", "bicycle", 0.2, 0.8, w=0.3, h=0.3)
    sliver = inst("b2", "bicycle", 0.45, 0.7, w=0.03, h=0.03)
    sc = scene(big, sliver)
    assert not refers_with_margin(P(C("category", "bicycle"), C("ordinal", "right:2")), sc, {"b1"})
    assert refers_with_margin(P(C("category", "bicycle"), C("ordinal", "left:1")), sc, {"b1"})
    # the same layout with a bicycle a viewer sees: counted as before
    seen = scene(big, inst("b2", "bicycle", 0.6, 0.7, w=0.15, h=0.2))
    assert refers_with_margin(P(C("category", "bicycle"), C("ordinal", "right:2")), seen, {"b1"})
    # a fifth of its size and mostly behind a scooter: as easy to miss
    hidden = scene(big, inst("b2", "bicycle", 0.6, 0.7, w=0.1, h=0.1, occlusion=0.55))
    assert not refers_with_margin(P(C("category", "bicycle"), C("ordinal", "right:2")), hidden, {"b1"})


def test_gray_next_to_a_white_share_is_not_sure():
    # a white toilet in shade: mostly gray pixels, a quarter white; a viewer says white
    shaded = inst("t1", "toilet", 0.3, 0.5, color="gray", color_frac=0.67, color_palette="gray:0.67,white:0.24,black:0.05")
    other = inst("t2", "toilet", 0.7, 0.5, color="red", color_frac=0.9, color_palette="red:0.90")
    sc = scene(shaded, other)
    assert not refers_with_margin(P(C("category", "toilet"), C("color", "gray")), sc, {"t1"})
    # a gray one with a little white still is gray
    plain = scene(dict(shaded, color_palette="gray:0.85,white:0.10", color_frac=0.85), other)
    assert refers_with_margin(P(C("category", "toilet"), C("color", "gray")), plain, {"t1"})
    # a giraffe's dark patches do not make its brown unsure
    giraffe = inst("g", "giraffe", 0.5, 0.5, color="brown", color_frac=0.66, color_palette="brown:0.66,black:0.25")
    zebra = inst("z", "giraffe", 0.2, 0.5, color="white", color_frac=0.9, color_palette="white:0.90")
    assert refers_with_margin(P(C("category", "giraffe"), C("color", "brown")), scene(giraffe, zebra), {"g"})


def test_one_margins_per_scene_answers_each_program_as_a_fresh_evaluation():
    """Margins keeps every partial result for its scene; asked many programs in a shuffled
    order (shared heads, partner programs that recur, selectors after them) it answers each
    as evaluating that program alone does."""
    import itertools
    import random

    from engine.language.margins import Margins
    from tests.engine.language.test_plan import random_scene
    heads = [P(), P(C("category", "dog")), P(C("category", "chair")), P(C("supercategory", "animal")),
             P(C("affordance", "pet"))]
    extras = [C("position", "left"), C("position", "middle"), C("color", "black"), C("size", "small"),
              C("relation", rel="left_of", obj=P(C("category", "bench"))),
              C("relation", rel="above", obj=P(C("category", "dog"), C("position", "top"))),
              C("relation", rel="on", obj=P(C("category", "chair"))),
              C("not_relation", rel="on", obj=P(C("category", "chair")))]
    selectors = [(), (C("ordinal", "left:1"),), (C("ordinal", "top:2"),), (C("superlative", "largest"),),
                 (C("count", 2),)]
    programs = [h.with_(*combo, *sel) for h in heads for n in (0, 1, 2)
                for combo in itertools.combinations(extras, n) for sel in selectors]
    rng = random.Random(5)
    referring = 0
    for seed in range(40):
        sc = random_scene(random.Random(seed))
        shared = Margins(sc)
        rng.shuffle(programs)
        for p in programs:
            sure, maybe = evaluate_with_margin(p, sc)
            assert shared.evaluate(p) == (sure, maybe), (seed, p.dumps())
            assert shared.refers(p, sure) == refers_with_margin(p, sc, sure), (seed, p.dumps())
            referring += bool(sure) and shared.refers(p, sure)
    assert referring > 100


def test_planning_with_the_scene_memo_gives_the_plan_of_fresh_evaluations(monkeypatch):
    import random

    from engine.language.margins import Margins
    from tests.engine.language.test_plan import random_scene
    planner = Planner(PlanConfig(), ["dog", "cat", "chair", "bench", "cup", "giraffe"])
    scenes = [random_scene(random.Random(seed)) for seed in range(60)]
    shared = [planner.plan(sc) for sc in scenes]
    monkeypatch.setattr(Planner, "_margins_of", lambda self, sc: Margins(sc, *self.size_thresholds))
    assert [planner.plan(sc) for sc in scenes] == shared
    assert sum(len(s) for s in shared) > 100
