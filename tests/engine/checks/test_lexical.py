"""The lexical checker parses text back into constraints and accepts only texts that select
exactly the spec's targets."""
import random
from collections import Counter

import pytest

from engine.checks.lexical import LexicalChecker
from engine.generate.template import TemplateGenerator
from engine.language.programs import P, Program, Scene, evaluate
from tests.lang_scenes import C, LEX, fact, programs_for, atoms, random_scene, random_specs, scene_of, spec

CHECK = LexicalChecker(LEX)
GEN = TemplateGenerator(LEX)

SCENE = scene_of([
    fact("d1", "dog", 0.10, 0.50, "black", 3000),
    fact("d2", "dog", 0.50, 0.50, "white", 12000),
    fact("d3", "dog", 0.90, 0.80, "brown", 500),
    fact("b1", "bench", 0.30, 0.70, "brown", 8000),
    fact("t1", "dining table", 0.60, 0.55, "brown", 20000),
    fact("u1", "cup", 0.62, 0.40, "white", 400),
    fact("u2", "cup", 0.10, 0.10, "red", 400),
    fact("c1", "chair", 0.75, 0.20, "red", 2500),
    fact("c2", "chair", 0.85, 0.25, "red", 2400),
    fact("k1", "couch", 0.35, 0.35, "gray", 16000),
    fact("p1", "person", 0.20, 0.30, "blue", 9000),
    fact("o1", "orange", 0.40, 0.90, "orange", 300),
    fact("o2", "orange", 0.45, 0.90, "green", 320),
], relations=[("d1", "left_of", "b1"), ("b1", "right_of", "d1"), ("u1", "on", "t1"), ("d2", "next_to", "c1"),
              ("c1", "next_to", "d2"), ("d2", "next_to", "c2"), ("c2", "next_to", "d2"), ("d3", "below", "t1"),
              ("t1", "next_to", "k1"),
              ("u1", "left_of", "c1"), ("d1", "next_to", "k1")])


def verdict(text, targets, tier="simple", card=None):
    card = card or ("negative" if not targets else "1:1" if len(targets) == 1 else "1:N")
    return CHECK.check(text, spec(tier, card, targets, Program()), SCENE)


@pytest.mark.parametrize("text,targets", [
    ("the leftmost dog", {"d1"}), ("the dog on the far right", {"d3"}), ("the second dog from the left", {"d2"}),
    ("the dog that is second from the right", {"d2"}), ("the 2nd dog from the left", {"d2"}),
    ("the black dog", {"d1"}), ("The White Canine.", {"d2"}), ("the biggest dog", {"d2"}), ("the tiniest dog", {"d3"}),
    ("the dog at the bottom right", {"d3"}), ("the dog in the bottom right corner", {"d3"}),
    ("the dog to the left of the bench", {"d1"}), ("the dog left of the park bench", {"d1"}),
    ("the dog beside a chair", {"d2"}), ("the cup on the dining table", {"u1"}), ("the cup on top of the table", {"u1"}),
    ("the dog on the left next to the couch", {"d1"}), ("the dog below the dinner table", {"d3"}),
    ("all the dogs", {"d1", "d2", "d3"}), ("every dog", {"d1", "d2", "d3"}), ("all three dogs", {"d1", "d2", "d3"}),
    ("both red chairs", {"c1", "c2"}), ("the two chairs", {"c1", "c2"}), ("dogs", {"d1", "d2", "d3"}),
    ("the orange orange", {"o1"}), ("the green orange", {"o2"}), ("the man", {"p1"}), ("someone who can speak", {"p1"}),
    ("the largest thing you can sit on", {"k1"}), ("the red things to sit on", {"c1", "c2"}),
    ("the animal that barks and is third from the left", {"d3"}), ("everything you can lie down on", {"k1"}),
    ("the things you can sit on that are next to the white dog", {"c1", "c2"}),
    ("the dog on the left of the picture", {"d1"}),
    ("the cup on the table next to the couch", {"u1"}),          # the table is next to the couch
    ("the purple dog", set()), ("giraffe", set()), ("the cup on the bench", set()),
])
def test_parses_and_accepts(text, targets):
    r = verdict(text, targets)
    assert r.verdict == "pass", r
    assert r.checker == "lexical"


@pytest.mark.parametrize("text,targets,why", [
    ("the leftmost dog", {"d3"}, "selects ['d1']"),                       # another dog of the same category
    ("the dog", {"d1"}, "singular phrase for 3"),
    ("the chair", {"c1"}, "singular phrase for 2"),
    ("the chairs", {"c1"}, "selects ['c1', 'c2']"),
    ("the dogs on the left", {"d1"}, "plural phrase for one"),
    ("the dog next to the chair", {"d2"}, "ambiguous: 2 instances"),         # which chair?
    ("the purple dog", {"d1"}, "selects []"),
    ("dog", set(), "the target is nothing"),
    ("the cup next to the couch", {"u1"}, "selects []"),                    # "and"-less relation stays on the table
    ("the three chairs", {"c1", "c2"}, "selects []"),
    ("the thing on the left", {"d1"}, "a singular phrase for 4 instances"),  # "thing" ranges over all
])
def test_rejects_texts_that_select_something_else(text, targets, why):
    r = verdict(text, targets)
    assert r.verdict == "fail", r
    assert why in r.reason and text in r.reason


@pytest.mark.parametrize("text,why", [
    ("the sleeping dog", "unknown words ['sleeping']"),
    ("the dog guarding the bench", "unknown words"),
    ("on the left", "no noun, affordance phrase or 'item'"),
    ("the second dog", "ordinal without its side"),
    ("the dog next to the thing", "related object"),
    ("the dog and the cup", "several categories"),
])
def test_unverifiable_when_it_cannot_parse(text, why):
    r = verdict(text, {"d1"})
    assert r.verdict == "unverifiable", r
    assert why in r.reason


def test_relation_attachment_follows_and():
    toks = CHECK.tokenize("the cup on the table next to the couch", SCENE)
    tree = CHECK.segments(toks)
    assert [c.rel for c in tree.children] == ["on"] and [c.rel for c in tree.children[0].children] == ["next_to"]
    tree = CHECK.segments(CHECK.tokenize("the dog left of the bench and next to the couch", SCENE))
    assert [c.rel for c in tree.children] == ["left_of", "next_to"]
    assert verdict("the dog left of the bench and next to the couch", {"d1"}).verdict == "pass"


def test_on_is_a_relation_only_before_a_noun():
    kinds = [t.kind for t in CHECK.tokenize("the dog on the left on the bench in the picture", SCENE)]
    assert kinds.count("REL") == 1 and "POS" in kinds and "IMG" in kinds


def test_never_reads_the_spec_program():
    lying = spec("simple", "1:1", {"d1"}, P(C("category", "dog"), C("ordinal", "right:1")))
    assert CHECK.check("the leftmost dog", lying, SCENE).verdict == "pass"
    assert CHECK.check("the rightmost dog", lying, SCENE).verdict == "fail"


def test_fills_in_affordances_when_the_scene_has_none():
    bare = Scene(SCENE.image_id, SCENE.instances, SCENE.relations, {})
    r = CHECK.check("the largest thing you can sit on", spec("complex", "1:1", {"k1"}, Program()), bare)
    assert r.verdict == "pass", r


def test_unknown_category_and_colour_from_the_scene():
    scene = scene_of([fact("w1", "widget", 0.1, 0.5, "teal"), fact("w2", "widget", 0.9, 0.5, "red")])
    r = CHECK.check("the teal widget", spec("simple", "1:1", {"w1"}, Program()), scene)
    assert r.verdict == "pass", r
    assert CHECK.check("the widgets", spec("simple", "1:All", {"w1", "w2"}, Program()), scene).verdict == "pass"


def test_a_stuff_noun_can_stand_for_the_only_compound_in_the_scene():
    # "table" is the panoptic stuff class; with only a dining table present it means that
    assert verdict("the cup on the table", {"u1"}).verdict == "pass"
    # but a "dog" is never the scene's hot dog
    scene = scene_of([fact("h", "hot dog", 0.5, 0.5)])
    assert CHECK.check("dog", spec("concept", "negative", (), Program()), scene).verdict == "pass"


def _round_trip(tiers, scenes, seeds_per_spec=2):
    verdicts = Counter()
    failures = []
    for s in range(scenes):
        rng = random.Random(s)
        scene = random_scene(rng, f"im{s}")
        for sp in random_specs(rng, scene, tiers):
            for seed in range(seeds_per_spec):
                text = GEN.generate(sp, scene, seed, [])
                r = CHECK.check(text, sp, scene)
                verdicts[r.verdict] += 1
                if r.verdict != "pass":
                    failures.append(r.reason)
    return verdicts, failures


def test_round_trips_template_output_for_simple_and_concept_specs():
    verdicts, failures = _round_trip(("simple",), scenes=80)
    total = sum(verdicts.values())
    assert total > 1500
    assert verdicts["pass"] / total >= 0.95, failures[:10]


def test_round_trips_template_output_for_complex_specs():
    verdicts, failures = _round_trip(("complex",), scenes=40)
    total = sum(verdicts.values())
    assert total > 800
    assert verdicts["pass"] / total >= 0.95, failures[:10]


def test_rejects_texts_about_another_instance_of_the_same_category():
    rejected = 0
    for s in range(60):
        rng = random.Random(1000 + s)
        scene = random_scene(rng, f"im{s}")
        by_cat = {}
        for i, f in sorted(scene.instances.items()):
            if not f["iscrowd"]:
                by_cat.setdefault(f["category"], []).append(i)
        for cat, members in by_cat.items():
            for a, b in zip(members, members[1:]):
                found = programs_for(scene, P(C("category", cat)), {a}, atoms(scene, a))
                if not found:
                    continue
                about_a = spec("simple", "1:1", {a}, rng.choice(found), f"a-{a}", scene.image_id)
                text = GEN.generate(about_a, scene, s, [])
                assert CHECK.check(text, about_a, scene).verdict == "pass", text
                about_b = spec("simple", "1:1", {b}, about_a.program, f"b-{b}", scene.image_id)
                r = CHECK.check(text, about_b, scene)
                assert r.verdict == "fail", (text, r)
                assert evaluate(about_a.program, scene) == {a}
                rejected += 1
    assert rejected > 50
