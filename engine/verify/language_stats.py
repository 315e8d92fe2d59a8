"""Language statistics of a release: how varied the instructions are, and how much they say about
the instance rather than its kind, beside figures for human referring expressions.

Per tier, over the accepted positive instructions (negatives say what is absent, on purpose
in the same words as positives):
- distinct-1 / distinct-2: unique words / words and unique bigrams / bigrams over `sample`
  instructions drawn at random (seeded), the usual measure of n-gram variety; a fixed sample size
  keeps releases of different size comparable.
- types: distinct words in that sample.
- duplicate share: instructions whose exact text (case and punctuation aside) another instruction
  of the tier also has, over all of the tier's instructions.
- words per instruction (mean, all of the tier).
Content figures over the programs behind the text:
- kind share (complex): programs whose head is a kind fact (an affordance: "who can speak").
- people's instance share (complex 1:1 about people): programs saying something of this person
  (clothing, posture, position, order, size, colour, interaction, depth, contrast) rather than of people in general.
- related share (1:1, images with two or more instances): programs relating the target to
  another object (a relation or a negated one).
"""
from __future__ import annotations

import json
import random
from collections import Counter

import pandas as pd

from engine.lexicon import word_tokens

SAMPLE = 400
# RefCOCOg (5,000 human expressions) and 412 human "complex" expressions, as measured for issue 14
HUMAN_REFERENCE = {
    "RefCOCOg (human)": {"distinct_2": 0.63, "types": 740, "duplicate_share": 0.002, "words_mean": 8.4},
    "human complex": {"words_mean": 11.4},
}
INSTANCE_KINDS = {"position", "ordinal", "superlative", "size", "color", "relation", "not_relation",
                  "garment", "posture"}   # what this person wears or how they are posed


def text_stats(texts: list[str], sample: int = SAMPLE, seed: int = 0) -> dict:
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        return {"n": 0}
    rng = random.Random(seed)
    picked = rng.sample(texts, min(sample, len(texts)))
    words = [word_tokens(t) for t in picked]
    unigrams = [w for ws in words for w in ws]
    bigrams = [b for ws in words for b in zip(ws, ws[1:])]
    norm = Counter(" ".join(word_tokens(t)) for t in texts)
    return {
        "n": len(texts),
        "sampled": len(picked),
        "distinct_1": round(len(set(unigrams)) / max(1, len(unigrams)), 3),
        "distinct_2": round(len(set(bigrams)) / max(1, len(bigrams)), 3),
        "types": len(set(unigrams)),
        "duplicate_share": round(sum(c for c in norm.values() if c > 1) / len(texts), 3),
        "words_mean": round(sum(len(word_tokens(t)) for t in texts) / len(texts), 2),
    }


def _program(p) -> list[dict]:
    return json.loads(p) if isinstance(p, str) else list(p)


def content_stats(manifest: pd.DataFrame, facts: pd.DataFrame | None = None) -> dict:
    """Kind share, people's instance share and related share (see the module docstring); empty
    for a table without programs (instructions of another producer)."""
    if not {"program", "category", "image_id"} <= set(manifest.columns):
        return {}
    pos = manifest[manifest["cardinality"] != "negative"]
    cx = pos[pos["tier"] == "complex"]
    kinds = [{c["kind"] for c in _program(p)} for p in cx["program"]]
    out = {"complex_kind_share": round(sum("affordance" in k for k in kinds) / max(1, len(kinds)), 3)}
    people = cx[(cx["cardinality"] == "1:1") & (cx["category"] == "person")]
    pk = [{c["kind"] for c in _program(p)} for p in people["program"]]
    out["people_complex_n"] = len(pk)
    out["people_complex_instance_share"] = round(sum(bool(k & INSTANCE_KINDS) for k in pk) / max(1, len(pk)), 3)
    one = pos[(pos["cardinality"] == "1:1") & pos["tier"].isin(["simple", "complex"])]
    if facts is not None and len(facts):
        per_image = facts.groupby("image_id").size()
        one = one[one["image_id"].map(per_image).fillna(0) >= 2]
    rel = [any(c["kind"] in ("relation", "not_relation") for c in _program(p)) for p in one["program"]]
    out["one_to_one_n"] = len(rel)
    out["one_to_one_related_share"] = round(sum(rel) / max(1, len(rel)), 3)
    return out


def release_language(manifest: pd.DataFrame, facts: pd.DataFrame | None = None, sample: int = SAMPLE,
                     seed: int = 0) -> dict:
    """{"tiers": {tier: text_stats}, "content": content_stats, "human": HUMAN_REFERENCE}."""
    pos = manifest[manifest["cardinality"] != "negative"]
    tiers = {t: text_stats(pos.loc[pos["tier"] == t, "text"].tolist(), sample, seed)
             for t in ("concept", "simple", "complex") if (pos["tier"] == t).any()}
    return {"sample": sample, "tiers": tiers, "content": content_stats(manifest, facts), "human": HUMAN_REFERENCE}


def markdown(stats: dict) -> str:
    """A table for the quality report and the dataset card."""
    rows = ["| tier | n | distinct-1 | distinct-2 | word types / %d | exact duplicates | words / instruction |"
            % stats["sample"], "|---|---|---|---|---|---|---|"]
    for tier, s in stats["tiers"].items():
        if s.get("n"):
            rows.append(f"| {tier} | {s['n']} | {s['distinct_1']:.2f} | {s['distinct_2']:.2f} | {s['types']} | "
                        f"{100 * s['duplicate_share']:.1f}% | {s['words_mean']:.1f} |")
    for name, h in stats["human"].items():
        def fmt(k, f):
            return f(h[k]) if k in h else "–"
        rows.append(f"| {name} | – | – | {fmt('distinct_2', lambda v: f'{v:.2f}')} | {fmt('types', str)} | "
                    f"{fmt('duplicate_share', lambda v: f'{100 * v:.1f}%')} | {fmt('words_mean', lambda v: f'{v:.1f}')} |")
    c = stats["content"]
    if not c:
        return "\n".join(rows)
    rows += ["", f"Complex instructions headed by a kind fact (true of every member of the category): "
                 f"{100 * c['complex_kind_share']:.0f}%. People's complex one-instance instructions saying something "
                 f"of that person (clothing, posture, position, interaction, depth, contrast ...): {100 * c['people_complex_instance_share']:.0f}% "
                 f"of {c['people_complex_n']}. One-instance instructions on images with two or more objects that "
                 f"relate the target to another object: {100 * c['one_to_one_related_share']:.0f}% of {c['one_to_one_n']}."]
    return "\n".join(rows)
