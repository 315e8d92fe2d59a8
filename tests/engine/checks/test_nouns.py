"""Complex-tier text must not name the target's category."""
import pytest

from engine.checks.nouns import NoCategoryNounChecker
from engine.language.programs import Program
from tests.lang_scenes import LEX, fact, scene_of, spec

CHECK = NoCategoryNounChecker(LEX)
SCENE = scene_of([fact("d", "dog", 0.2, 0.5), fact("o", "orange", 0.5, 0.5, "orange"), fact("p", "person", 0.8, 0.5),
                  fact("b", "bear", 0.1, 0.1), fact("w", "widget", 0.9, 0.9)])


def run(text, target, tier="complex"):
    return CHECK.check(text, spec(tier, "1:1", {target}, Program()), SCENE)


@pytest.mark.parametrize("text,target", [
    ("the Dog on the left", "d"), ("the DOGS", "d"), ("an animal that barks next to a puppy", "d"),
    ("the canine", "d"), ("the orange on the left", "o"), ("a round orange", "o"), ("the orange orange", "o"),
    ("the man with the hat", "p"), ("people", "p"), ("the bear", "b"), ("the widget", "w"),
])
def test_fails_when_the_text_names_the_target(text, target):
    r = run(text, target)
    assert r.verdict == "fail", r
    assert r.checker == "no_category_noun" and "names its target" in r.reason


@pytest.mark.parametrize("text,target", [
    ("an animal that barks", "d"), ("something you can eat next to the hot dog", "d"),
    ("the dogged animal", "d"),                     # word boundaries: 'dogged' is not 'dog'
    ("the orange thing you can eat", "o"),          # a colour, not the fruit
    ("someone who can speak", "p"), ("the thing a child cuddles next to the teddy bear", "b"),
    ("an animal that barks", "o"),
])
def test_passes_otherwise(text, target):
    assert run(text, target).verdict == "pass"


def test_other_tiers_are_not_checked():
    assert run("the dog", "d", tier="simple").verdict == "pass"
    assert run("dog", "d", tier="concept").verdict == "pass"


def test_negative_complex_spec_checks_the_programs_category():
    from engine.language.programs import P, Constraint as C
    s = spec("complex", "negative", (), P(C("category", "giraffe")))
    assert CHECK.check("a giraffe", s, SCENE).verdict == "fail"
    assert CHECK.check("an animal with a very long neck", spec("complex", "negative", (), Program()), SCENE).verdict == "pass"
