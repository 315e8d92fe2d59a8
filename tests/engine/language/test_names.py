"""Category names as people say them: split machine names, inflect plurals and articles."""
import pytest

from engine.language.names import article, is_placeholder, plural, readable_noun, split_words


@pytest.mark.parametrize("raw,noun", [
    ("GlassBottle_Close", "glass bottle (close)"), ("PlasticBottle_Loose", "plastic bottle (loose)"),
    ("traffic_light", "traffic light"), ("tree-merged", "tree merged"), ("Bus", "bus"), ("CAR", "CAR"),
    ("TV_stand", "TV stand"), ("fire hydrant", "fire hydrant"), ("HTTPServer", "HTTP server"),
    ("small_car2", "small car2"), ("  date ", "date"),
])
def test_readable_noun_splits_camel_and_snake_case(raw, noun):
    assert readable_noun(raw) == noun
    assert "_" not in readable_noun(raw)


def test_split_words_keeps_acronyms_whole():
    assert split_words("PlasticBottle_Close") == ["Plastic", "Bottle", "Close"]
    assert split_words("UAVCar") == ["UAV", "Car"]


@pytest.mark.parametrize("name", ["none", "None", "background", "_background_", "objects", "", "0", "Item"])
def test_placeholders_name_nothing(name):
    assert is_placeholder(name)


@pytest.mark.parametrize("name", ["Bottle", "bus", "date", "GlassBottle_Close"])
def test_real_names_are_not_placeholders(name):
    assert not is_placeholder(name)


@pytest.mark.parametrize("noun,pl", [
    ("bus", "buses"), ("person", "people"), ("knife", "knives"), ("sheep", "sheep"), ("mango", "mangoes"),
    ("glass bottle", "glass bottles"), ("TV", "TVs"), ("pair of skis", "pairs of skis"),
    ("glass bottle with a loose cap", "glass bottles with a loose cap"), ("hazelnut", "hazelnuts"),
    ("strawberry", "strawberries"), ("wine glass", "wine glasses"), ("box", "boxes"),
])
def test_plurals_come_from_inflect_with_the_head_noun_inflected(noun, pl):
    assert plural(noun) == pl


@pytest.mark.parametrize("phrase,a", [("hour", "an"), ("unicorn", "a"), ("umbrella", "an"), ("UFO", "a"),
                                      ("MRI scan", "an"), ("item", "an"), ("hazelnut", "a")])
def test_articles_by_sound(phrase, a):
    assert article(phrase) == a


def test_a_kind_variant_name_pluralises_the_kind():
    assert plural(readable_noun("GlassBottle_Close")) == "glass bottles (close)"
    assert plural(readable_noun("traffic_light")) == "traffic lights"


def test_variants_and_nested_kinds_are_the_same_kind_for_a_reader():
    from engine.language.names import same_kind
    assert same_kind("GlassBottle_Close", "GlassBottle_Loose")
    assert same_kind("bottle", "GlassBottle_Close")
    assert same_kind("PlasticBottle_Close", "GlassBottle_Close")
    assert same_kind("bear", "teddy bear")
    assert same_kind("dog", "hot dog")      # conservative: a negative "dog" is not said beside a hot dog
    assert not same_kind("cat", "dog")
