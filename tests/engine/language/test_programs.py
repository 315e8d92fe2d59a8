"""Every constraint type evaluated on scenes with known answers."""
from engine.language.programs import Constraint as C, P, Program, Scene, evaluate


def _f(i, cat, cx, cy, color="black", area=1000.0, crowd=False, size="medium", sup="animal"):
    return {"instance_id": i, "image_id": "x", "category": cat, "supercategory": sup, "iscrowd": crowd,
            "area": area, "cx": cx, "cy": cy, "color": color, "size_label": size,
            "pos_x": "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "center",
            "pos_y": "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"}


SCENE = Scene("x", {
    "a": _f("a", "dog", 0.1, 0.5, "black", 3000, size="large"),
    "b": _f("b", "dog", 0.5, 0.2, "white", 1000),
    "c": _f("c", "dog", 0.9, 0.8, "black", 500, size="small"),
    "d": _f("d", "bench", 0.5, 0.7, "brown", 4000, sup="furniture"),
    "e": _f("e", "person", 0.3, 0.3, "blue", 9000, crowd=True, sup="person"),
}, {("b", "on", "d"), ("a", "left_of", "d"), ("d", "right_of", "a"), ("c", "right_of", "d")},
    {"dog": frozenset({"barks"}), "bench": frozenset({"sit_on"})})


def test_filters():
    assert evaluate(P(C("category", "dog")), SCENE) == {"a", "b", "c"}
    assert evaluate(P(C("supercategory", "furniture")), SCENE) == {"d"}
    assert evaluate(P(C("category", "dog"), C("color", "black")), SCENE) == {"a", "c"}
    assert evaluate(P(C("category", "dog"), C("size", "small")), SCENE) == {"c"}
    assert evaluate(P(C("category", "dog"), C("position", "top")), SCENE) == {"b"}
    assert evaluate(P(C("category", "dog"), C("position", "left")), SCENE) == {"a"}
    assert evaluate(P(C("affordance", "sit_on")), SCENE) == {"d"}
    assert evaluate(P(C("affordance", "barks"), C("color", "white")), SCENE) == {"b"}


def test_relations():
    bench = P(C("category", "bench"))
    assert evaluate(P(C("category", "dog"), C("relation", rel="on", obj=bench)), SCENE) == {"b"}
    assert evaluate(P(C("category", "dog"), C("relation", rel="left_of", obj=bench)), SCENE) == {"a"}
    assert evaluate(P(C("category", "dog"), C("relation", rel="above", obj=bench)), SCENE) == set()


def test_selectors():
    dogs = P(C("category", "dog"))
    assert evaluate(dogs.with_(C("ordinal", "left:1")), SCENE) == {"a"}
    assert evaluate(dogs.with_(C("ordinal", "left:2")), SCENE) == {"b"}
    assert evaluate(dogs.with_(C("ordinal", "right:1")), SCENE) == {"c"}
    assert evaluate(dogs.with_(C("ordinal", "top:1")), SCENE) == {"b"}
    assert evaluate(dogs.with_(C("ordinal", "bottom:1")), SCENE) == {"c"}
    assert evaluate(dogs.with_(C("ordinal", "left:4")), SCENE) == set()
    assert evaluate(dogs.with_(C("superlative", "largest")), SCENE) == {"a"}
    assert evaluate(dogs.with_(C("superlative", "smallest")), SCENE) == {"c"}
    # selectors apply to the filtered set: the leftmost *black* dog is a, the rightmost is c
    assert evaluate(dogs.with_(C("color", "black"), C("ordinal", "right:1")), SCENE) == {"c"}
    assert evaluate(dogs.with_(C("color", "black"), C("count", 2)), SCENE) == {"a", "c"}
    assert evaluate(dogs.with_(C("count", 2)), SCENE) == set()


def test_selectors_refuse_near_ties_and_crowds():
    tie = Scene("t", {"a": _f("a", "dog", 0.40, 0.5, area=1000), "b": _f("b", "dog", 0.41, 0.5, area=1050)})
    assert evaluate(P(C("category", "dog"), C("ordinal", "left:1")), tie) == set()
    assert evaluate(P(C("category", "dog"), C("superlative", "largest")), tie) == set()
    people = Scene("p", {"a": _f("a", "person", 0.1, 0.5), "z": _f("z", "person", 0.5, 0.5, crowd=True)})
    assert evaluate(P(C("category", "person"), C("ordinal", "left:1")), people) == {"a", "z"}


def test_program_json_round_trip():
    p = P(C("category", "dog"), C("relation", rel="on", obj=P(C("category", "bench"), C("color", "brown"))),
          C("ordinal", "left:2"))
    assert Program.loads(p.dumps()) == p


def test_dumps_is_the_sorted_compact_json_of_the_program():
    import json
    nested = P(C("category", "dog"), C("relation", rel="next_to", obj=P(C("category", "bench"), C("position", "left"))),
               C("not_relation", rel="holding", obj=P(C("category", 'cup "x" é'))), C("ordinal", "left:2"), C("count", 3))
    for p in (P(), P(C("category", "dog")), nested):
        assert p.dumps() == json.dumps(p.to_json(), sort_keys=True, separators=(",", ":"))
        assert Program.loads(p.dumps()) == p


def test_scene_from_tables_takes_the_rows_to_dict_gives():
    """from_tables reads columns as python lists; the instances are what to_dict("records")
    gives (same values, python types, NaN where missing), for one image of several."""
    import math

    import numpy as np
    import pandas as pd
    facts = pd.DataFrame({
        "instance_id": ["a", "b", "c", "d"], "image_id": ["x", "y", "x", "x"],
        "category": pd.array(["dog", "cat", None, "dog"], dtype="str"), "area": [1.5, 2.0, np.nan, 4.0],
        "size_rank": np.array([1, 2, 3, 4], np.int32), "iscrowd": [False, True, False, False]})
    relations = pd.DataFrame({"image_id": ["x", "y", "x"], "subject_id": ["a", "b", "c"],
                              "relation": ["left_of", "on", "right_of"], "object_id": ["c", "b", "a"]})
    key = lambda v: (type(v), "nan" if isinstance(v, float) and math.isnan(v) else v)
    for frame in (facts, facts.astype({"category": object, "instance_id": object})):
        sc = Scene.from_tables("x", frame, relations)
        want = [r for r in frame.to_dict("records") if r["image_id"] == "x"]
        assert list(sc.instances) == ["a", "c", "d"]
        assert [{k: key(v) for k, v in r.items()} for r in sc.instances.values()] == \
            [{k: key(v) for k, v in r.items()} for r in want]
        assert sc.relations == {("a", "left_of", "c"), ("c", "right_of", "a")}
    assert Scene.from_tables("x", facts.iloc[:0], relations.iloc[:0]).instances == {}
