"""The SAM3-I instruction taxonomy, and the subtype a referring program stands for.

Tiers (SAM3-I): concept (a short noun phrase), simple (noun phrase + attributes, position,
relations), complex (no category noun: function, affordance, state or reasoning).
Cardinalities: 1:1, 1:N, 1:All, and negative (matches nothing).

Subtypes are derived from a program's constraint kinds, never chosen by hand:

concept tier  -> "category"
simple tier   -> the aspects present, joined with "+" in ASPECT_ORDER ("attribute+position"):
                   color -> attribute          size -> size         superlative -> size
                   position -> position        ordinal -> ordinal   relation -> relation
                 a program with none of them ("all the dogs", "the two dogs") -> "category"
complex tier  -> the lexicon types of its affordance keys (function / affordance / state, in
                 COMPLEX_BASES order), plus "+reasoning" when it also needs a comparison or a
                 second object: relation, superlative, ordinal or count ("affordance+reasoning");
                 a complex program with no affordance at all -> "reasoning".
                 Colour, size and absolute position do not change a complex subtype: they
                 narrow the set but the target is still found through its affordance.
"""
from __future__ import annotations

from engine.language.programs import Program

TIERS = ("concept", "simple", "complex")
CARDINALITIES = ("1:1", "1:N", "1:All", "negative")

ASPECT_OF_KIND = {"color": "attribute", "garment": "attribute", "posture": "attribute",
                  "size": "size", "superlative": "size", "position": "position",
                  "ordinal": "ordinal", "relation": "relation", "not_relation": "relation"}
ASPECT_ORDER = ("attribute", "size", "position", "ordinal", "relation")
SIMPLE_SUBTYPES = ASPECT_ORDER            # and their "+" combinations, and "category"
COMPLEX_BASES = ("function", "affordance", "state")
COMPLEX_SUBTYPES = COMPLEX_BASES + ("reasoning",)
REASONING_KINDS = ("relation", "superlative", "ordinal", "count", "not_relation")


def subtype_of(tier: str, program: Program, lexicon=None) -> str:
    """The subtype name for a program on a tier (see the module docstring for the mapping)."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {TIERS}")
    kinds = set(program.kinds())
    if tier == "concept":
        return "category"
    if tier == "simple":
        aspects = {ASPECT_OF_KIND[k] for k in kinds if k in ASPECT_OF_KIND}
        return "+".join(a for a in ASPECT_ORDER if a in aspects) or "category"
    if lexicon is None:
        from engine.lexicon import load_lexicon
        lexicon = load_lexicon()
    types = {lexicon.affordance_type(str(c.value)) for c in program if c.kind == "affordance"}
    parts = [t for t in COMPLEX_BASES if t in types]
    if not parts and kinds & {"garment", "posture"}:
        parts.append("state")          # "the one in the red top", "whoever is sitting"
    if not parts or kinds & set(REASONING_KINDS):
        parts.append("reasoning")
    return "+".join(parts)


def is_valid_subtype(tier: str, subtype: str) -> bool:
    """Whether `subtype` is a name subtype_of can produce for the tier."""
    parts = subtype.split("+")
    if tier == "concept":
        return subtype == "category"
    if tier == "simple":
        return subtype == "category" or (
            len(set(parts)) == len(parts) and all(p in ASPECT_ORDER for p in parts)
            and parts == sorted(parts, key=ASPECT_ORDER.index))
    if tier == "complex":
        bases = [p for p in parts if p != "reasoning"]
        return (len(set(parts)) == len(parts) and all(p in COMPLEX_SUBTYPES for p in parts)
                and bases == sorted(bases, key=COMPLEX_BASES.index)
                and ("reasoning" not in parts or parts[-1] == "reasoning"))
    return False
