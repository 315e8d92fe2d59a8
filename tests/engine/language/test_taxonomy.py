"""Subtypes follow from a program's constraint kinds (and, for complex, the lexicon's key types)."""
import pytest

from engine.lexicon import load_lexicon
from engine.language.programs import P, Constraint as C
from engine.language.taxonomy import CARDINALITIES, TIERS, is_valid_subtype, subtype_of
from schemas import specs

BENCH = P(C("category", "bench"))


def test_tiers_and_cardinalities_match_the_specs_schema():
    assert TIERS == specs.TIERS and CARDINALITIES == specs.CARDINALITIES


@pytest.mark.parametrize("program,expected", [
    (P(C("category", "dog")), "category"),
    (P(C("category", "dog"), C("count", 2)), "category"),
    (P(C("category", "dog"), C("color", "black")), "attribute"),
    (P(C("category", "dog"), C("size", "large")), "size"),
    (P(C("category", "dog"), C("superlative", "largest")), "size"),
    (P(C("category", "dog"), C("position", "left")), "position"),
    (P(C("category", "dog"), C("ordinal", "left:1")), "ordinal"),
    (P(C("category", "dog"), C("relation", rel="left_of", obj=BENCH)), "relation"),
    # order is fixed whatever the program's order
    (P(C("category", "dog"), C("position", "left"), C("color", "black")), "attribute+position"),
    (P(C("category", "dog"), C("relation", rel="on", obj=BENCH), C("ordinal", "right:2"), C("color", "red")),
     "attribute+ordinal+relation"),
    (P(C("category", "dog"), C("superlative", "smallest"), C("size", "small")), "size"),
])
def test_simple_subtypes(program, expected):
    assert subtype_of("simple", program) == expected
    assert is_valid_subtype("simple", expected)


@pytest.mark.parametrize("program,expected", [
    (P(C("affordance", "sit_on")), "affordance"),
    (P(C("affordance", "cut")), "function"),
    (P(C("affordance", "barks")), "state"),
    (P(C("affordance", "sit_on"), C("color", "red"), C("position", "left")), "affordance"),
    (P(C("affordance", "sit_on"), C("superlative", "largest")), "affordance+reasoning"),
    (P(C("affordance", "cut"), C("relation", rel="next_to", obj=BENCH)), "function+reasoning"),
    (P(C("affordance", "barks"), C("ordinal", "left:1")), "state+reasoning"),
    (P(C("affordance", "barks"), C("count", 2)), "state+reasoning"),
    (P(C("affordance", "barks"), C("affordance", "sit_on")), "affordance+state"),
    (P(C("supercategory", "animal"), C("superlative", "largest")), "reasoning"),
    (P(C("affordance", "not_in_lexicon")), "affordance"),
])
def test_complex_subtypes(program, expected):
    assert subtype_of("complex", program) == expected
    assert is_valid_subtype("complex", expected)


def test_complex_subtype_uses_the_given_lexicon(tmp_path):
    path = tmp_path / "lex.yaml"
    path.write_text("""
version: 1
affordances:
  sit_on: {type: state, singular: ["something you can sit on"], plural: ["things you can sit on"]}
categories:
  chair: {plural: chairs, supercategory: furniture, affordances: [sit_on]}
""")
    assert subtype_of("complex", P(C("affordance", "sit_on")), load_lexicon(path)) == "state"


def test_concept_subtype_and_bad_tier():
    assert subtype_of("concept", P(C("category", "dog"))) == "category"
    with pytest.raises(ValueError, match="unknown tier"):
        subtype_of("hard", P(C("category", "dog")))


@pytest.mark.parametrize("tier,subtype,ok", [
    ("simple", "position+attribute", False), ("simple", "attribute+attribute", False),
    ("simple", "reasoning", False), ("complex", "reasoning+state", False), ("complex", "state+function", False),
    ("complex", "function+state+reasoning", True), ("concept", "attribute", False), ("other", "category", False),
])
def test_is_valid_subtype(tier, subtype, ok):
    assert is_valid_subtype(tier, subtype) is ok
