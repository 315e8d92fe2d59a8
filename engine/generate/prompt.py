"""Versioned prompts for model-backed generators (files in engine/prompts/).

A prompt file holds the system and user templates, the tier and cardinality definitions and
the answer's JSON schema. `render` fills the templates from a spec, its scene and earlier
rejection reasons:

    prompt = load_prompt("instruct_v1")
    system, user = prompt.render(spec, scene, lexicon, feedback)
"""
from __future__ import annotations

import json
from pathlib import Path
from string import Template

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.generate.base import SpecView
from engine.lexicon import NUMBER_WORDS, ORDINAL_WORDS, Lexicon
from engine.lexicon import interactions as acts
from engine.language.programs import Constraint, Program, Scene

PROMPT_DIR = Path(__file__).resolve().parents[1] / "prompts"
MAX_PARTNERS = 6          # relations listed per target: enough to disambiguate, not a flood


class PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    json_schema: dict = Field(alias="schema")   # `schema` would shadow BaseModel.schema
    tiers: dict[str, str]
    cardinalities: dict[str, str]
    system: str
    user: str
    feedback: str
    image_note: str = ""


class Prompt:
    def __init__(self, data: PromptFile, source: str):
        self.data, self.source = data, source
        self.version = data.version
        self.schema = data.json_schema
        missing = {"concept", "simple", "complex"} - set(data.tiers)
        if missing:
            raise ValueError(f"{source}: tiers lacks {sorted(missing)}")
        for name in ("system", "user", "feedback"):
            try:
                Template(getattr(data, name)).substitute(_PLACEHOLDERS)
            except (KeyError, ValueError) as e:
                raise ValueError(f"{source}: template {name!r} has an unknown or bad placeholder: {e}") from None

    def render(self, spec: SpecView, scene: Scene, lexicon: Lexicon, feedback: list[str]) -> tuple[str, str]:
        d = self.data
        system = Template(d.system).substitute(_PLACEHOLDERS | d.tiers)
        fb = ""
        if feedback:
            # the same reason twice says nothing new; keep the order of first appearance
            reasons = "\n".join(f"- {r}" for r in dict.fromkeys(feedback))
            fb = Template(d.feedback).substitute(_PLACEHOLDERS | {"reasons": reasons})
        labels = _labels(scene)
        values = _PLACEHOLDERS | {
            "tier": spec.tier,
            "tier_definition": d.tiers.get(spec.tier, ""),
            "cardinality": spec.cardinality,
            "cardinality_definition": d.cardinalities.get(spec.cardinality, ""),
            "targets": _targets(spec, scene, lexicon, labels),
            "scene": _scene_summary(scene, lexicon),
            "program_text": "\n".join(_explain(spec.program, lexicon, 0)) or "- (none)",
            "program_json": spec.program.dumps(),
            "rules": _rules(spec, scene, lexicon),
            "feedback": fb,
        }
        return system, Template(d.user).substitute(values)


# every placeholder a template may use, with a harmless value for the load-time check
_PLACEHOLDERS = {k: "" for k in ("concept", "simple", "complex", "tier", "tier_definition", "cardinality",
                                 "cardinality_definition", "targets", "scene", "program_text",
                                 "program_json", "rules", "feedback", "reasons")}


def read_prompt_file(version: str, prompt_dir: str | Path | None, model, what: str = "prompt file"):
    """engine/prompts/<version>.yaml (or <prompt_dir>/<version>.yaml), validated with the pydantic
    `model`; its `version` must match the file name. Returns (data, path)."""
    path = Path(prompt_dir or PROMPT_DIR) / f"{version}.yaml"
    if not path.exists():
        have = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"prompt {version!r}: {path} does not exist (available: {have})")
    try:
        data = model.model_validate(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, ValidationError) as e:
        raise ValueError(f"{path}: not a valid {what}: {e}") from None
    if data.version != version:
        raise ValueError(f"{path}: declares version {data.version!r}, expected {version!r} (the file name)")
    return data, path


def load_prompt(version: str, prompt_dir: str | Path | None = None) -> Prompt:
    data, path = read_prompt_file(version, prompt_dir, PromptFile)
    return Prompt(data, str(path))


# ---- facts as text ---------------------------------------------------------------------------
def _labels(scene: Scene) -> dict[str, str]:
    """Short stable names ("#3") for instance ids, which are long and meaningless to a model."""
    order = sorted(scene.instances, key=lambda i: (scene.instances[i]["cx"], scene.instances[i]["cy"], i))
    return {iid: f"#{k + 1}" for k, iid in enumerate(order)}


def _ordinal(k: int) -> str:
    return ORDINAL_WORDS.get(k, f"{k}th")


def _instance_line(iid: str, scene: Scene, lexicon: Lexicon, labels: dict[str, str]) -> str:
    f = scene.instances[iid]
    cat = f["category"]
    parts = [f"{labels[iid]} {lexicon.noun(cat)} (category {cat!r}, a kind of {f.get('supercategory', '?')})"]
    if f.get("iscrowd"):
        parts.append("a crowd region of many instances")
    parts += [f"colour {f['color']}", f"size {f['size_label']}", f"position {f['pos_x']} / {f['pos_y']}"]
    n = int(f.get("category_count") or 0)
    if n > 1 and not f.get("iscrowd") and f.get("ordinal_x"):
        parts.append(f"{_ordinal(int(f['ordinal_x']))} from the left and {_ordinal(int(f['ordinal_y']))} "
                     f"from the top of the {n} {lexicon.plural(cat)}")
    if f.get("truncated"):
        parts.append(f"cut off by the image border ({f.get('truncated_sides') or 'edge'})")
    return ", ".join(parts)


def _targets(spec: SpecView, scene: Scene, lexicon: Lexicon, labels: dict[str, str]) -> str:
    if not spec.target_ids:
        return "- none: nothing in this image matches the constraints (a negative instruction)"
    lines = []
    for iid in spec.target_ids:
        if iid not in scene.instances:
            raise KeyError(f"spec {spec.spec_id}: target {iid!r} is not in the scene of image {scene.image_id!r}")
        lines.append("- " + _instance_line(iid, scene, lexicon, labels))
        # what the masks show it doing or hiding first ("riding #4 horse"); bare contact says nothing
        rels = sorted(((r, o) for s, r, o in scene.relations
                       if s == iid and o in scene.instances and r != acts.CONTACT),
                      key=lambda ro: (ro[0] not in acts.INTERACTIONS + acts.DEPTH, ro))
        for r, o in rels[:MAX_PARTNERS]:
            lines.append(f"  - {r.replace('_', ' ')} {labels[o]} {lexicon.noun(scene.instances[o]['category'])}")
    return "\n".join(lines)


def _scene_summary(scene: Scene, lexicon: Lexicon) -> str:
    counts: dict[str, int] = {}
    for f in scene.instances.values():
        counts[f["category"]] = counts.get(f["category"], 0) + 1
    if not counts:
        return "- (no annotated objects)"
    return "\n".join(f"- {n} {lexicon.plural(c) if n > 1 else lexicon.noun(c)}" for c, n in sorted(counts.items()))


def _explain(program: Program, lexicon: Lexicon, depth: int) -> list[str]:
    pad = "  " * depth
    return [line for c in program for line in _explain_one(c, lexicon, pad, depth)]


def _explain_one(c: Constraint, lexicon: Lexicon, pad: str, depth: int) -> list[str]:
    v = c.value
    if c.kind == "category":
        names = [s for s, _ in lexicon.names(str(v))]
        return [f"{pad}- category {v!r}: call it {' or '.join(repr(n) for n in names)}"]
    if c.kind == "supercategory":
        return [f"{pad}- any kind of {lexicon.supercategory_noun(str(v))} (supercategory {v!r})"]
    if c.kind == "color":
        return [f"{pad}- colour {v}: say {' or '.join(repr(w) for w in lexicon.color_words(str(v)))}"]
    if c.kind == "size":
        return [f"{pad}- size {v} (relative to the image)"]
    if c.kind == "position":
        return [f"{pad}- position: {v} part of the image"]
    if c.kind == "ordinal":
        side, k = str(v).split(":")
        return [f"{pad}- order: the {_ordinal(int(k))} from the {side} among those that match the rest"]
    if c.kind == "superlative":
        return [f"{pad}- the {v} among those that match the rest"]
    if c.kind == "count":
        return [f"{pad}- exactly {NUMBER_WORDS.get(int(v), v)} of them"]
    if c.kind == "affordance":
        try:
            phrases = [p.standalone for p in lexicon.phrases(str(v))]
        except KeyError:
            phrases = []
        hint = f": e.g. {' or '.join(repr(p) for p in phrases)}" if phrases else ""
        return [f"{pad}- {lexicon.affordance_type(str(v))} {v!r}{hint}"]
    if c.kind == "relation":
        head = f"{pad}- {c.rel.replace('_', ' ')} another object described by:"
        cat = c.obj.get("category")
        roles = acts.role_nouns(c.rel, str(cat.value)) if cat is not None and len(c.obj) == 1 else ()
        if roles:
            head += f" (a role noun says it too: {' or '.join(repr(r[0]) for r in roles)})"
        if c.rel in acts.INTERACTIONS + acts.DEPTH:
            head += f" (e.g. {' or '.join(repr(v) for v in acts.verbs(c.rel, str(cat.value) if cat is not None else None))})"
        return [head] + _explain(c.obj, lexicon, depth + 1)
    if c.kind == "not_relation":
        head = (f"{pad}- NOT {c.rel.replace('_', ' ')} any object described by (others of its kind are; "
                f"say it as 'not {acts.verbs(c.rel, None)[0]} ...' or 'the other ..., not the one ...'):")
        return [head] + _explain(c.obj, lexicon, depth + 1)
    return [f"{pad}- {json.dumps(c.to_json())}"]


def _rules(spec: SpecView, scene: Scene, lexicon: Lexicon) -> str:
    """Tier-specific rules the checkers enforce, stated up front."""
    if spec.tier != "complex":
        return ""
    cats = {scene.instances[i]["category"] for i in spec.target_ids if i in scene.instances}
    forbidden = sorted(set().union(*(lexicon.nouns_of(c) for c in cats))) if cats else []
    if not forbidden:       # a negative: nothing to forbid, but a noun would make it simple-tier
        return "\nDo not name any object category: refer to it only through the constraints above.\n"
    return "\nDo not use these words (they name the target's category): " + ", ".join(forbidden) + "\n"
