"""`python -m engine.lexicon draft`: skeletons with the template backend, validated model
proposals with a model backend (the real vLLM server: tests/integration/test_lexicon_draft_vllm.py)."""
import pytest
import yaml

from engine.lexicon import LexiconError, load_lexicon, main
from engine.lexicon.draft import draft, from_answer, skeleton, source_categories
from tests.coco_fixtures import COCO_SAMPLE
from tests.custom_data import BOTTLES, FRUITS_NUTS_IMAGES, FRUITS_NUTS_JSON, YOLOSEG

LEX = load_lexicon()


def test_template_backend_writes_a_skeleton_that_loads_as_an_extension(tmp_path, capsys):
    out = tmp_path / "bottles.yaml"
    assert main(["draft", str(BOTTLES), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# DRAFT lexicon extension for source 'crystl_bottles-test'")
    data = yaml.safe_load(text)
    assert sorted(data["categories"]) == ["GlassBottle_Close", "GlassBottle_Loose", "PlasticBottle_Close",
                                          "PlasticBottle_Loose"]               # no placeholder "Bottle"
    e = data["categories"]["GlassBottle_Close"]
    assert e["noun"] == "glass bottle (close)" and e["plural"] == "glass bottles (close)"
    assert e["supercategory"] == "Bottle" and e["affordances"] == [] and e["appearance"] == []
    lex = load_lexicon(extensions=[out])
    assert lex.entry("glassbottle_close") is not None
    assert "4 draft entries" in capsys.readouterr().out
    # an existing draft is not overwritten by accident
    assert main(["draft", str(BOTTLES), "-o", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err


def test_only_categories_the_lexicon_lacks_are_drafted(tmp_path):
    sid, cats = source_categories(str(YOLOSEG))
    assert (sid, sorted(cats)) == ("fruits_yoloseg", ["kivi", "mango", "orange"])
    drafts = draft(sid, cats, LEX, [])
    assert [d.category for d in drafts] == ["kivi", "mango"]          # orange is a COCO category
    _, coco = source_categories(str(COCO_SAMPLE))
    assert draft("coco", coco, LEX, []) == []
    # the configured extensions count: nothing is left to draft for the fruit-and-nut photos
    ext = tmp_path / "fn.yaml"
    ext.write_text("version: 1\ncategories:\n  date: {}\n  fig: {}\n  hazelnut: {}\n")
    _, fn = source_categories(str(FRUITS_NUTS_JSON), str(FRUITS_NUTS_IMAGES))
    assert draft("fn", fn, load_lexicon(extensions=[ext]), [str(ext)]) == []


class _Canned:
    def __init__(self, answers):
        self.answers = answers

    def ask(self, category, source_super, others):
        return self.answers[category]


GOOD = {"noun": "kiwi", "plural": "kiwis", "synonyms": ["kiwifruit"], "supercategory": "fruit",
        "supercategory_plural": "fruits", "appearance": ["fuzzy", "oval"],
        "knowledge": [{"type": "state", "singular": "a fruit with fuzzy skin", "plural": "fruits with fuzzy skin"}]}


def test_a_model_proposal_that_validates_is_kept_and_a_bad_one_falls_back_to_a_skeleton(tmp_path):
    bad = {**GOOD, "noun": "mango", "plural": "mangoes", "synonyms": [],
           "knowledge": [{"type": "state", "singular": "a mango from the tropics", "plural": "mangoes from the tropics"}]}
    drafts = draft("fruits", {"kivi": "", "mango": ""}, LEX, [], _Canned({"kivi": GOOD, "mango": bad}))
    kivi, mango = drafts
    assert kivi.note == "drafted by the model; validated" and kivi.entry["noun"] == "kiwi"
    assert mango.note.startswith("model proposal rejected:") and "names category 'mango'" in mango.note
    assert mango.entry == skeleton("mango", "", LEX).entry
    from engine.lexicon.draft import render
    path = tmp_path / "d.yaml"
    path.write_text(render(drafts, "fruits", "openai"))
    assert "# model proposal rejected" in path.read_text()
    lex = load_lexicon(extensions=[path])
    assert lex.noun("kivi") == "kiwi" and lex.supercategory_noun(lex.supercategory_of("kivi")) == "fruit"
    assert any(k.startswith("looks_") for k in lex.affordances("kivi"))


@pytest.mark.parametrize("answer,why", [
    ("not json", "not a JSON object"), ({"plural": "x"}, "no noun"),
    ({**GOOD, "knowledge": [{"type": "mood", "singular": "something", "plural": "things"}]}, "type"),
    ({**GOOD, "appearance": ["green"]}, "colour"),
    ({**GOOD, "knowledge": [{"type": "state", "singular": "fuzzy fruit", "plural": "fuzzy fruits"}]}, "must start with"),
])
def test_model_answers_are_validated_like_lexicon_files(answer, why):
    drafts = draft("fruits", {"kivi": ""}, LEX, [], _Canned({"kivi": answer}))
    assert drafts[0].note.startswith("model proposal rejected") and why in drafts[0].note, drafts[0].note


def test_from_answer_reuses_a_known_supercategory():
    d = from_answer("kivi", {**GOOD, "supercategory": "food item"}, "", LEX)
    assert d.entry["supercategory"] == "food" and d.supercategories == {}
    with pytest.raises(LexiconError):
        from_answer("kivi", [], "", LEX)


def test_an_unreachable_model_server_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "d.yaml"
    rc = main(["draft", str(YOLOSEG), "-o", str(out), "--set", "generate.backend=openai",
               "--set", "generate.base_url=http://127.0.0.1:9/v1", "--set", "generate.retries=0"])
    assert rc == 2 and not out.exists()
    assert "http://127.0.0.1:9/v1 did not answer" in capsys.readouterr().err
