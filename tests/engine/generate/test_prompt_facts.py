"""The model generator's prompt carries the instance facts the masks show (engine/generate/prompt.py)."""
from __future__ import annotations

from engine.generate.base import SpecView
from engine.generate.prompt import load_prompt
from engine.language.programs import Constraint as C, Program
from tests.lang_scenes import LEX, fact, scene_of


def test_prompt_lists_interactions_first_roles_and_negation_and_not_bare_contact():
    fs = [fact("p1", "person", 0.2, 0.5), fact("p2", "person", 0.6, 0.5), fact("h1", "horse", 0.2, 0.7),
          fact("u1", "umbrella", 0.6, 0.3)]
    rels = {("p1", "riding", "h1"), ("p1", "touching", "h1"), ("h1", "touching", "p1"), ("p2", "holding", "u1"),
            ("p1", "left_of", "p2"), ("p1", "above", "h1")}
    scene = scene_of(fs, rels)
    prog = Program((C("category", "person"), C("relation", rel="riding", obj=Program((C("category", "horse"),)))))
    spec = SpecView("s-1", "img", "simple", "", "1:1", ("p1",), prog)
    system, user = load_prompt("instruct_v1").render(spec, scene, LEX, [])
    text = system + user
    assert "touching" not in text
    facts = [line for line in text.splitlines() if line.strip().startswith("- ") and "#" in line and "horse" in line]
    assert facts and "riding" in facts[0]          # listed before "above"
    assert "'rider'" in text
    neg = Program((C("category", "person"), C("not_relation", rel="holding", obj=Program((C("category", "umbrella"),)))))
    system, user = load_prompt("instruct_v1").render(SpecView("s-2", "img", "simple", "", "1:1", ("p1",), neg), scene, LEX, [])
    assert "NOT holding" in system + user
