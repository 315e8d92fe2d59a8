"""The lexicon file: schema, coverage of COCO, and phrases that never name their own category."""
import json
import re

import pytest

from engine.lexicon import (DEFAULT_PATH, Lexicon, LexiconError, indefinite_article, load_lexicon, pluralize,
                            word_tokens)
from tests.coco_fixtures import COCO_SAMPLE, PANOPTIC_SAMPLE

LEX = load_lexicon()


def _categories(sample):
    return {c["name"]: c["supercategory"] for c in json.loads((sample / "instances.json").read_text())["categories"]}


COCO = _categories(COCO_SAMPLE)
PANOPTIC = _categories(PANOPTIC_SAMPLE)


def test_default_lexicon_is_versioned_and_cached():
    assert isinstance(LEX.version, int) and LEX.version >= 1
    assert load_lexicon() is LEX
    assert load_lexicon(DEFAULT_PATH) is not LEX          # an explicit path is loaded afresh
    assert load_lexicon(DEFAULT_PATH).version == LEX.version


def test_covers_all_80_coco_categories_with_two_or_more_affordances():
    assert len(COCO) == 80
    for name, supercategory in COCO.items():
        e = LEX.entry(name)
        assert e is not None, f"{name} missing"
        assert e.supercategory == supercategory, name
        assert e.plural and e.plural != e.noun or name in ("sheep", "broccoli"), name
        assert len(e.affordances) >= 2, name
        for key in e.affordances:
            assert LEX.affordance_type(key) in ("affordance", "function", "state")
            assert LEX.phrases(key) and LEX.phrases(key, plural=True)


def test_covers_panoptic_stuff_categories():
    for name, supercategory in PANOPTIC.items():
        e = LEX.entry(name)
        assert e is not None, f"{name} missing"
        assert e.supercategory == supercategory, name
        assert "-" not in LEX.noun(name), name    # "tree-merged" reads "tree"


def _contains_word_phrase(text: str, noun: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(noun)}(?![\w-])", text, flags=re.IGNORECASE) is not None


def test_affordance_phrases_never_contain_their_categories_nouns():
    checked = 0
    for category in LEX.categories():
        nouns = LEX.nouns_of(category)
        for key in LEX.affordances(category):
            for form in LEX.phrases(key) + LEX.phrases(key, plural=True):
                for text in (form.standalone, form.body):
                    for noun in nouns:
                        assert not _contains_word_phrase(text, noun), (category, key, text, noun)
                        checked += 1
    assert checked > 2000


def test_synonyms_name_exactly_one_category():
    owner = {}
    for category in LEX.categories():
        for noun in LEX.nouns_of(category):
            assert owner.setdefault(noun, category) == category, (noun, owner[noun], category)


def test_affordance_phrases_are_unique_to_their_key():
    seen = {}
    for key in LEX.affordance_keys():
        for form in LEX.phrases(key) + LEX.phrases(key, plural=True):
            assert seen.setdefault(form.standalone, key) == key, form.standalone


def test_phrase_forms_compose_with_a_determiner():
    form = LEX.phrases("sit_on")[0]
    assert (form.standalone, form.body) == ("something you can sit on", "thing you can sit on")
    barks = LEX.phrases("barks")[0]
    assert (barks.standalone, barks.body) == ("an animal that barks", "animal that barks")
    speak = LEX.phrases("can_speak", plural=True)[0]
    assert (speak.standalone, speak.body) == ("those who can speak", "ones who can speak")


def test_api_for_known_and_unknown_categories():
    assert LEX.noun("dog") == "dog" and LEX.plural("dog") == "dogs"
    assert {"dog", "dogs", "canine", "canines", "puppy", "puppies"} <= LEX.nouns_of("dog")
    assert LEX.noun("tree-merged") == "tree" and LEX.plural("tree-merged") == "trees"
    assert "pairs of skis" in LEX.nouns_of("skis") and "skis" in LEX.nouns_of("skis")
    assert {"barks", "pet"} <= LEX.affordances("dog")
    amap = LEX.affordance_map()
    assert amap["chair"] == LEX.affordances("chair") and "sky-other-merged" not in amap
    # a category the lexicon does not know: its own name, a regular plural, no affordances
    assert LEX.entry("wheelbarrow") is None
    assert (LEX.noun("wheelbarrow"), LEX.plural("wheelbarrow")) == ("wheelbarrow", "wheelbarrows")
    assert LEX.nouns_of("glass box") == {"glass box", "glass boxes"}
    assert LEX.affordances("wheelbarrow") == frozenset()
    assert LEX.supercategory_noun("animal", plural=True) == "animals"
    assert LEX.color_words("gray") == ("gray", "grey")


@pytest.mark.parametrize("word,plural", [("dog", "dogs"), ("glass", "glasses"), ("box", "boxes"),
                                         ("strawberry", "strawberries"), ("toy", "toys"), ("knife", "knives"),
                                         ("pair of skis", "pairs of skis"), ("wine glass", "wine glasses")])
def test_pluralize(word, plural):
    assert pluralize(word) == plural


def test_indefinite_article_and_tokens():
    assert [indefinite_article(w) for w in ("animal", "umbrella", "unicorn", "dog", "hour")] == \
        ["an", "an", "a", "a", "an"]
    assert word_tokens("The ring-shaped, TV's thing!") == ["the", "ring-shaped", "tv's", "thing"]


def _write(tmp_path, text):
    p = tmp_path / "lex.yaml"
    p.write_text(text)
    return p


GOOD = """
version: 2
affordances:
  sit_on: {type: affordance, singular: ["something you can sit on"], plural: ["things you can sit on"]}
categories:
  chair: {plural: chairs, supercategory: furniture, affordances: [sit_on]}
"""


def test_a_small_valid_file_loads(tmp_path):
    lex = load_lexicon(_write(tmp_path, GOOD))
    assert isinstance(lex, Lexicon) and lex.version == 2 and lex.affordances("chair") == {"sit_on"}


@pytest.mark.parametrize("text,expected", [
    (GOOD.replace("version: 2", ""), "version"),
    (GOOD.replace("[sit_on]}", "[sit_on, fly]}"), "categories.chair: unknown affordance keys ['fly']"),
    (GOOD.replace("something you can sit on", "a chair you can sit on"), "names category 'chair'"),
    (GOOD.replace("something you can sit on", "you can sit on it"), "affordances.sit_on: phrase"),
    (GOOD.replace("things you can sit on", "a thing you can sit on"), "plural phrase"),
    (GOOD.replace("type: affordance", "type: mood"), "affordances.sit_on.type"),
    (GOOD.replace("supercategory: furniture,", "supercategory: furniture, colour: red,"), "categories.chair.colour"),
    (GOOD.replace("something you can sit on", "something red to sit on").replace("version: 2", "version: 2\ncolors: {red: [red]}"),
     "colour words"),
    ("- just\n- a list\n", "expected a mapping"),
    ("version: [1\n", "not valid YAML"),
])
def test_bad_files_are_rejected_with_file_and_entry(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(LexiconError) as e:
        load_lexicon(path)
    assert str(path) in str(e.value) and expected in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(LexiconError, match="not found"):
        load_lexicon(tmp_path / "nope.yaml")
