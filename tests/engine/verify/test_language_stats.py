"""Language statistics of a release (engine/verify/language_stats.py)."""
from __future__ import annotations

import json

import pandas as pd

from engine.verify.language_stats import content_stats, markdown, release_language, text_stats


def test_distinct_n_types_duplicates_and_length():
    s = text_stats(["the red dog", "the red dog", "a cat on the left"], sample=400)
    # unigrams: the red dog the red dog a cat on the left -> 7 types of 11
    assert s["types"] == 7 and s["distinct_1"] == round(7 / 11, 3)
    # bigrams: (the red)(red dog) x2, (a cat)(cat on)(on the)(the left) -> 6 unique of 8
    assert s["distinct_2"] == round(6 / 8, 3)
    assert s["duplicate_share"] == round(2 / 3, 3)
    assert s["words_mean"] == round(11 / 3, 2)


def test_sample_is_bounded_and_seeded():
    texts = [f"the dog number {i}" for i in range(1000)]
    a, b = text_stats(texts, sample=400, seed=1), text_stats(texts, sample=400, seed=1)
    assert a == b and a["sampled"] == 400 and a["n"] == 1000


def _row(tier, card, cat, image, program, text="x"):
    return {"tier": tier, "cardinality": card, "category": cat, "image_id": image, "text": text,
            "program": json.dumps(program)}


def test_content_shares():
    rel = {"kind": "relation", "rel": "holding", "obj": [{"kind": "category", "value": "cup"}]}
    m = pd.DataFrame([
        _row("complex", "1:1", "person", "a", [{"kind": "affordance", "value": "can_speak"}]),
        _row("complex", "1:1", "person", "a", [rel]),
        _row("complex", "1:1", "person", "a", [{"kind": "position", "value": "left"}]),
        _row("simple", "1:1", "person", "a", [{"kind": "category", "value": "person"}, rel]),
        _row("simple", "1:1", "dog", "b", [{"kind": "category", "value": "dog"}, {"kind": "color", "value": "black"}]),
        _row("complex", "negative", "", "a", [{"kind": "affordance", "value": "barks"}]),
    ])
    facts = pd.DataFrame({"image_id": ["a", "a", "b"]})     # image b holds one instance only
    c = content_stats(m, facts)
    assert c["complex_kind_share"] == round(1 / 3, 3)         # the negative is not counted
    assert c["people_complex_instance_share"] == round(2 / 3, 3)
    assert c["one_to_one_n"] == 4 and c["one_to_one_related_share"] == 0.5
    text = markdown(release_language(m, facts))
    assert "RefCOCOg" in text and "| complex |" in text
