import json

import pandas as pd

from engine.config import PlanConfig
from engine.report import quality_report, report_markdown


def _row(iid, tier, card, targets, text, accepted=True, reason=""):
    return {"instruction_id": iid, "image_id": "img", "tier": tier, "subtype": "category", "cardinality": card,
            "target_ids": targets, "text": text, "accepted": accepted, "reject_reason": reason,
            "checks": json.dumps([])}


def test_report_counts_coverage_and_reasons():
    facts = pd.DataFrame({"instance_id": ["a", "b", "c", "crowd", "p"], "image_id": "img",
                          "category": ["dog", "dog", "dog", "person", "person"],
                          "area_frac": [0.2, 0.1, 0.001, 0.3, 0.2], "iscrowd": [False, False, False, True, False]})
    instr = pd.DataFrame([
        _row("1", "concept", "1:All", ["a", "b"], "dogs"),
        _row("2", "simple", "1:1", ["a"], "the black dog on the left"),
        _row("3", "simple", "1:1", ["b"], "the white dog", accepted=False, reason="lexical: selects a"),
        _row("4", "complex", "1:N", ["a", "b"], "the two animals that bark"),
        _row("5", "concept", "negative", [], "giraffe"),
    ])
    rep = quality_report(instr, facts, PlanConfig(min_area_frac=0.01), no_complex_categories=["widget"])
    assert rep["eligible_instances"] == 2          # c is too small, the crowd is not a target...
    assert rep["excluded_beside_crowd"] == 1       # ...and p is a person beside a crowd of people
    assert rep["coverage"] == {"concept": 1.0, "simple": 0.5, "complex": 1.0}
    assert rep["coverage_1to1"] == {"concept": 0.0, "simple": 0.5, "complex": 0.0}
    assert rep["instructions"] == {"accepted": 4, "rejected": 1}
    assert rep["by_tier_cardinality"]["concept/negative"] == 1
    assert rep["rejection_reasons"] == {"lexical: selects a": 1}
    assert rep["words_per_instruction"]["simple"] == 6.0
    md = report_markdown(rep)
    assert "| simple | 1 | 50.0% | 50.0% |" in md and "widget" in md


def test_instances_of_a_pile_with_unmarked_look_alikes_are_counted_apart():
    facts = pd.DataFrame({"instance_id": ["o1", "o2", "o3", "k"], "image_id": "img",
                          "category": ["orange", "orange", "orange", "kiwi"], "area_frac": [0.1, 0.1, 0.1, 0.1],
                          "iscrowd": False, "unmarked_kin": [True, True, True, False]})
    instr = pd.DataFrame([_row("1", "simple", "1:1", ["k"], "the kiwi")])
    rep = quality_report(instr, facts, PlanConfig())
    assert rep["eligible_instances"] == 1 and rep["excluded_unmarked_kin"] == 3
    assert rep["coverage_1to1"]["simple"] == 1.0
    assert "3 in a pile with unmarked look-alikes" in report_markdown(rep)
