"""Which categories a source annotates exhaustively: the only concepts its negatives may name.

A negative ("the zebra", "something that barks") claims the concept is absent from the photo;
that is true only when the source would have marked it. A source declares its vocabulary in
the config (`sources.<id>.exhaustive`):
- "used" (default): the categories it lists and actually uses. Placeholders and unused parent
  categories (Roboflow's id 0) are out; a single-category source has that one. The planner sees
  one work unit at a time, so it takes those of the source's categories used in the unit: a
  subset of what the source uses, never a category it does not annotate;
- "lexicon": every thing-category of the lexicon (a complete COCO export: all 80 are exhaustive);
- a list of category names (any case or spelling; matched to the source's own names).
Stuff categories ("sky", "wall") are never negatives.
"""
from __future__ import annotations

import pandas as pd

from engine.lexicon import Lexicon


def source_of(image_id: str) -> str:
    """Image ids are "<source_id>:<orig_id>" and source ids hold no ':' (engine.sources.ingest)."""
    return image_id.split(":", 1)[0]


def vocabulary(setting, used: list[str], lexicon: Lexicon) -> list[str]:
    """The categories negatives may name, given a source's setting and its used categories."""
    if setting == "lexicon":
        cats = [c for c in lexicon.categories() if lexicon.affordances(c)]
    elif setting == "used" or setting is None:
        cats = list(used)
    else:
        by_key = {lexicon.key(c) or c.casefold(): c for c in used}
        cats = [by_key.get(lexicon.key(c) or c.casefold(), c) for c in setting]
    return sorted({c for c in cats if not lexicon.is_stuff(c)})


def vocabularies(cfg, instances: pd.DataFrame, lexicon: Lexicon) -> dict[str, list[str]]:
    """source_id -> negative vocabulary, for the sources in `instances`."""
    out = {}
    for sid, rows in instances.groupby("source_id"):
        src = cfg.sources.get(sid)
        out[sid] = vocabulary(src.exhaustive if src else "used", sorted(rows["category"].unique()), lexicon)
    return out


def describe_vocabulary(setting, vocab: list[str], lexicon: Lexicon) -> str:
    """One line for the dataset card."""
    how = {"used": "the categories the source uses", "lexicon": "every thing-category of the lexicon"}.get(
        setting if isinstance(setting, str) else "", "the categories declared in sources.<id>.exhaustive")
    return f"{how}: " + ", ".join(lexicon.noun(c) for c in vocab)
