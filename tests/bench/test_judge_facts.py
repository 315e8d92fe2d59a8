"""bench/judge_facts.py: which facts it collects for judging (the contrast facts a not_relation
stands on, one depth fact per pair) and how it records verdicts."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import judge_facts  # noqa: E402
from tests.engine.language.test_instance_facts import _fact  # noqa: E402


def _tables():
    # p1 holds the umbrella u1; p2 stands apart; p3 touches u1 (a reader may think it holds it);
    # p4 is too small to be a target
    fs = [_fact("p1", "person", 0.2, 0.5), _fact("p2", "person", 0.8, 0.5), _fact("p3", "person", 0.3, 0.5),
          _fact("p4", "person", 0.6, 0.2, area=50.0), _fact("u1", "umbrella", 0.25, 0.3)]
    facts = pd.DataFrame(fs)
    rels = [("p1", "holding", "u1"), ("p1", "touching", "u1"), ("u1", "touching", "p1"),
            ("p3", "touching", "u1"), ("u1", "touching", "p3"),
            ("p1", "in_front_of", "p3"), ("p3", "behind", "p1")]
    relations = pd.DataFrame([{"image_id": "img", "subject_id": s, "relation": r, "object_id": o} for s, r, o in rels])
    return facts, relations


def test_contrast_facts_are_the_sure_non_holders_large_enough_to_be_targets():
    facts, relations = _tables()
    got = judge_facts.contrast_facts(facts, relations)
    assert [(r["subject_id"], r["relation"], r["object"]) for r in got] == [("p2", "not_holding", "umbrella")]
    assert got[0]["object_id"] == "u1"


def test_fact_types_count_depth_once_per_pair():
    assert judge_facts.fact_type("holding") == "interaction"
    assert judge_facts.fact_type("in_front_of") == "depth"
    assert judge_facts.fact_type("behind") is None          # the same fact read the other way
    assert judge_facts.fact_type("not_riding") == "contrast"
    assert judge_facts.fact_type("left_of") is None


def test_record_appends_every_item_and_marks_the_listed_ones_wrong(tmp_path, monkeypatch):
    todo = tmp_path / "to_judge.csv"
    rows = [{"image_id": "img", "subject_id": f"p{k}", "subject": "person", "relation": "holding",
             "object_id": "u1", "object": "umbrella", "tier": "fact", "cardinality": "interaction",
             "text": "t", "picture": "x.png"} for k in (1, 2, 3)]
    pd.DataFrame(rows).to_csv(todo, index=False)
    target = tmp_path / "verdicts.csv"
    judge_facts.record(todo, ["2:held by the other one"], target)
    with target.open() as f:
        got = list(csv.DictReader(f))
    assert [r["verdict"] for r in got] == ["correct", "wrong", "correct"]
    assert got[1]["note"] == "held by the other one" and list(got[0]) == judge_facts.COLUMNS
    monkeypatch.setattr(judge_facts, "VERDICTS", target)
    assert len(judge_facts.read_verdicts()) == 3
