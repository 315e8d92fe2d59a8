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
    assert LEX.noun("tree-merged") == "trees" and LEX.plural("tree-merged") == "trees"   # a region of trees
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


# ---- dataset spellings and extensions --------------------------------------------------------
def test_lookup_ignores_case_and_machine_spelling():
    assert LEX.key("Bus") == "bus" and LEX.key("Traffic_Light") == "traffic light" and LEX.key("TrafficLight") == "traffic light"
    assert LEX.affordances("Bus") == LEX.affordances("bus") and LEX.plural("BUS") == "buses"
    assert "bus" in LEX.nouns_of("Bus")
    assert LEX.affordance_map(["Bus", "zorblax"]) == {"Bus": LEX.affordances("bus")}


def test_unknown_category_reads_as_words_with_inflect_plural():
    assert LEX.noun("GlassBottle_Close") == "glass bottle (close)"
    assert LEX.plural("hazel_nut") == "hazel nuts"
    assert LEX.missing("GlassBottle_Close") == ["entry"]
    assert LEX.missing("bus") == ["synonyms"] and LEX.missing("fruit") == ["synonyms", "functions/affordances/states"]


@pytest.mark.parametrize("category,source_super,expected", [
    ("GlassBottle_Close", "Bottle", "Bottle"),      # Roboflow: the parent's name
    ("quince", "quince", ""),                        # LabelMe->COCO: supercategory == name
    ("date", "date", "common_fruit"),                # ... an everyday noun: lexicon_common.yaml's
    ("widget", "none", ""), ("widget", "", ""),      # placeholders
    ("dog", "whatever", "animal"),                   # the lexicon's own wins
    ("red_car", "red cars", ""),                     # a supercategory naming the category
])
def test_supercategory_text_may_use(category, source_super, expected):
    assert LEX.supercategory_for(category, source_super) == expected


EXT = """
version: 1
supercategories:
  fruit_kind: {singular: fruit, plural: fruits}
affordances:
  palm_fruit: {type: state, singular: ["a sweet fruit that grows on palm trees"], plural: ["sweet fruits that grow on palm trees"]}
categories:
  Date_Fruit: {noun: date, supercategory: fruit_kind, affordances: [eat, palm_fruit], appearance: [wrinkled, oblong]}
"""


def test_an_extension_adds_categories_that_reference_base_keys(tmp_path):
    lex = load_lexicon(extensions=[_write(tmp_path, EXT)])
    assert lex.noun("date_fruit") == "date" and lex.plural("Date_Fruit") == "dates"
    keys = lex.affordances("Date_Fruit")
    assert {"eat", "palm_fruit"} < keys
    looks = next(k for k in keys if k.startswith("looks_"))
    assert lex.affordance_type(looks) == "state"
    assert lex.phrases(looks)[0].standalone == "an item that looks wrinkled and oblong"
    assert lex.supercategory_noun(lex.supercategory_of("Date_Fruit"), plural=True) == "fruits"
    assert lex.entry("dog") is not None                   # the base stays


@pytest.mark.parametrize("text,expected", [
    ("version: 1\ncategories:\n  dog: {plural: dogs}\n", "redefines what"),                      # base category
    ("version: 1\ncategories:\n  Hot_Dog: {plural: hot dogs}\n", "categories.Hot_Dog (as 'hot dog')"),
    ("version: 1\naffordances:\n  eat: {type: state, singular: ['something edible'], plural: ['edible things']}\n"
     "categories: {}\n", "affordances.eat"),
    ("version: 1\ncategories:\n  fig: {affordances: [no_such_key]}\n", "unknown affordance keys ['no_such_key']"),
    ("version: 1\ncategories:\n  fig: {appearance: [purple]}\n", "appearance words ['purple']"),
    ("version: 1\ncategories:\n  fig: {appearance: [small, round]}\n", "appearance words ['small']"),
    ("version: 1\ncategories:\n  fig: {plurall: figs}\n", "categories.fig.plurall: Extra inputs"),
    ("version: 1\naffordances:\n  x: {type: state, singular: ['a fig tree fruit'], plural: ['fig tree fruits']}\n"
     "categories:\n  fig: {affordances: [x]}\n", "names category 'fig'"),
    ("- just a list\n", "expected a mapping"),
])
def test_bad_extensions_are_clear_errors_naming_the_file(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(LexiconError) as e:
        load_lexicon(extensions=[path])
    assert expected in str(e.value) and str(path) in str(e.value)


def test_two_extensions_may_not_define_the_same_category(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("version: 1\ncategories:\n  fig: {plural: figs}\n")
    b.write_text("version: 1\ncategories:\n  FIG: {plural: figs}\n")
    with pytest.raises(LexiconError, match="b.yaml: redefines"):
        load_lexicon(extensions=[a, b])


@pytest.mark.parametrize("name", ["crystl_bottles", "fruits_nuts", "fruits_yoloseg"])
def test_example_extensions_for_the_shared_custom_sets_load(name):
    path = DEFAULT_PATH.parents[2] / "examples" / "lexicons" / f"{name}.yaml"
    lex = load_lexicon(extensions=[path])
    added = [c for c in lex.categories() if LEX.entry(c) is None or (LEX.is_fallback(c) and not lex.is_fallback(c))]
    assert added and all(lex.affordances(c) and lex.supercategory_of(c) for c in added)


def test_everyday_nouns_fill_in_and_yield_to_extensions(tmp_path):
    # a custom set of figs and dates gets plural and supercategory without an extension ...
    assert LEX.supercategory_of("fig") == "common_fruit" and LEX.supercategory_noun("common_fruit") == "fruit"
    assert LEX.plural("mango") == "mangoes" and LEX.is_fallback("Mango") and not LEX.is_fallback("orange")
    assert LEX.supercategory_of("bus") == "vehicle" and LEX.entry("quince") is None
    # ... COCO and stuff entries are untouched, with no kind facts added to the fallback ones
    assert not LEX.affordances("fig") and LEX.affordances("bus")
    # an extension that defines one of them wins, and no clash is raised
    ext = tmp_path / "fig.yaml"
    ext.write_text("version: 1\nsupercategories:\n  soft_fruit: {singular: soft fruit, plural: soft fruits}\n"
                   "categories:\n  fig: {supercategory: soft_fruit}\n")
    lex = load_lexicon(extensions=[ext])
    assert lex.supercategory_of("fig") == "soft_fruit" and not lex.is_fallback("fig")
    assert lex.supercategory_of("date") == "common_fruit" and lex.is_fallback("date")
    # an explicit lexicon file gets nothing filled in
    assert load_lexicon(DEFAULT_PATH.with_name("lexicon.yaml")).entry("fig") is None
