"""The quality report: what a build produced and what it threw away.

Used by the CLI summary, the Prefect artifact and the release's dataset card. Coverage is
measured on eligible instances (the planner's rule, engine.language.plan.eligible_ids): for each tier,
the share of eligible instances that are a target of at least one accepted instruction of that
tier, and, separately, of an accepted one-to-one instruction. Instances left out because their
category has a crowd region in the image are counted apart (`excluded_beside_crowd`), and so are
those of a pile with unmarked look-alikes (`excluded_unmarked_kin`, engine.scene.unmarked).
"""
from __future__ import annotations

import html
import re
from collections import Counter

import pandas as pd

from engine.config import PlanConfig
from engine.checks.dedup import normalise
from engine.language.plan import big_enough, eligible_ids
from engine.verify.language_stats import markdown as language_markdown, release_language

TIERS = ("concept", "simple", "complex")


def category_coverage(instances: pd.DataFrame, lexicon) -> list[dict]:
    """Per category of the build: the noun text uses for it, what the lexicon lacks for it, and
    the tiers it therefore gets. Every category gets concept and simple; complex comes from
    the lexicon's functions / affordances / states when it has them, else from instance facts
    (position, relations, size, colour) under a supercategory or generic noun."""
    rows = []
    pairs = instances[["source_id", "category", "supercategory"]].drop_duplicates()
    for cat, group in pairs.groupby("category", sort=True):
        sup = lexicon.supercategory_for(cat, group["supercategory"].iloc[0])
        lacks = lexicon.missing(cat)
        if lexicon.affordances(cat):
            complex_ = "complex (functions/affordances/states, and instance facts)"
        else:
            complex_ = (f"complex (instance facts under the supercategory {lexicon.supercategory_noun(sup)!r})" if sup
                        else "complex (instance facts under 'the item': correct only where nothing unannotated "
                             "could be called an item; a supercategory in a lexicon extension is safer)")
        rows.append({"category": cat, "sources": sorted(group["source_id"].unique()), "noun": lexicon.noun(cat),
                     "plural": lexicon.plural(cat), "supercategory": lexicon.supercategory_noun(sup) if sup else "",
                     "lacks": lacks, "tiers": f"concept, simple, {complex_}"})
    return rows


def _distinct_n(texts: list[str], n: int) -> float:
    # counted as they go: a list of every n-gram of the release grew the driver with the data
    seen: set[tuple[str, ...]] = set()
    total = 0
    for t in texts:
        w = normalise(t).split()
        for i in range(len(w) - n + 1):
            seen.add(tuple(w[i:i + n]))
            total += 1
    return len(seen) / total if total else 0.0


# the facts columns quality_report reads (eligible_ids / big_enough, release_language): a build
# loads only these from every unit (the whole facts table, with its colour histograms, grows
# the driver's memory with the dataset; tests/engine/test_report.py checks the two agree)
REPORT_FACT_COLUMNS = ("instance_id", "image_id", "category", "iscrowd", "area", "area_frac", "unmarked_kin")


def _eligible(rows: list[dict], plan: PlanConfig) -> tuple[set[str], int, int]:
    """(eligible instance ids, how many more sit beside a crowd region of their category, how
    many more lie in a pile with unmarked look-alikes): a pile is not marked in full, so none of
    it is a target (engine.scene.unmarked)."""
    eligible = eligible_ids(rows, plan)
    piles = {f["instance_id"] for f in rows if f.get("unmarked_kin")} & eligible
    big = {f["instance_id"] for f in rows if not f["iscrowd"] and big_enough(f, plan)}
    return eligible - piles, len(big - eligible), len(piles)


def quality_report(instructions: pd.DataFrame, facts: pd.DataFrame, plan: PlanConfig,
                   no_complex_categories: list[str] | None = None, categories: list[dict] | None = None) -> dict:
    acc = instructions[instructions["accepted"]]
    rej = instructions[~instructions["accepted"]]
    rows = facts[[c for c in REPORT_FACT_COLUMNS if c in facts.columns]].to_dict("records")
    eligible, beside_crowd, in_piles = _eligible(rows, plan)
    coverage, coverage_1to1 = {}, {}
    for tier in TIERS:
        t = acc[acc["tier"] == tier]
        covered = {i for ids in t["target_ids"] for i in ids}
        one = {ids[0] for ids in t[t["cardinality"] == "1:1"]["target_ids"]}
        coverage[tier] = len(eligible & covered) / len(eligible) if eligible else 0.0
        coverage_1to1[tier] = len(eligible & one) / len(eligible) if eligible else 0.0
    words = acc["text"].map(lambda t: len(t.split())) if len(acc) else acc["text"].str.len()   # no word lists kept
    texts = acc["text"].tolist()
    reasons = Counter(r.split(":")[0] + ": " + r.split(":", 1)[1].strip().split(";")[0][:60] if ":" in r else r
                      for r in rej["reject_reason"])
    return {
        "instructions": {"accepted": int(len(acc)), "rejected": int(len(rej))},
        "images": int(instructions["image_id"].nunique()),
        "eligible_instances": len(eligible),
        "excluded_beside_crowd": beside_crowd,
        "excluded_unmarked_kin": in_piles,
        "by_tier": acc.groupby("tier").size().to_dict(),
        "by_cardinality": acc.groupby("cardinality").size().to_dict(),
        "by_tier_subtype": {f"{a}/{b}": int(n) for (a, b), n in acc.groupby(["tier", "subtype"]).size().items()},
        "by_tier_cardinality": {f"{a}/{b}": int(n) for (a, b), n in acc.groupby(["tier", "cardinality"]).size().items()},
        "coverage": coverage,
        "coverage_1to1": coverage_1to1,
        "words_per_instruction": {"mean": float(words.mean()) if len(words) else 0.0,
                                  **{t: float(words[acc["tier"] == t].mean() or 0)
                                     for t in TIERS if (acc["tier"] == t).any()}},
        "distinct_1": _distinct_n(texts, 1),
        "distinct_2": _distinct_n(texts, 2),
        "language": release_language(acc, facts),
        "rejection_reasons": dict(reasons.most_common(15)),
        "no_complex_tier_categories": sorted(no_complex_categories or []),
        "categories": [{**c, "accepted": {t: int(((acc["tier"] == t) & (acc["category"] == c["category"])).sum())
                                          for t in TIERS}} for c in categories or []],
    }


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_text(value) -> str:
    """Source-given text (category names, reasons) made inert in markdown and the HTML it
    becomes: HTML special characters as entities (no tags, no attribute breaks through quotes),
    markdown punctuation backslash-escaped (no table breaks, links or emphasis), no newlines."""
    text = html.escape(" ".join(str(value).split()), quote=True)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def report_markdown(rep: dict) -> str:
    lines = ["## Quality report", "",
             f"- images: {rep['images']}, eligible instances: {rep['eligible_instances']} "
             f"(not counted: {rep['excluded_beside_crowd']} of a category with a crowd region in the image, "
             f"{rep.get('excluded_unmarked_kin', 0)} in a pile with unmarked look-alikes)",
             f"- instructions accepted: {rep['instructions']['accepted']}, rejected: {rep['instructions']['rejected']}",
             f"- words per instruction (mean): {rep['words_per_instruction']['mean']:.1f}",
             f"- distinct-1: {rep['distinct_1']:.3f}, distinct-2: {rep['distinct_2']:.3f}", "",
             "| tier | accepted | coverage (any) | coverage (1:1) |", "|---|---|---|---|"]
    for t in TIERS:
        lines.append(f"| {t} | {rep['by_tier'].get(t, 0)} | {rep['coverage'][t]:.1%} | {rep['coverage_1to1'][t]:.1%} |")
    lines += ["", "| tier/cardinality | accepted |", "|---|---|"]
    lines += [f"| {md_text(k)} | {v} |" for k, v in sorted(rep["by_tier_cardinality"].items())]
    lines += ["", "| tier/subtype | accepted |", "|---|---|"]
    lines += [f"| {md_text(k)} | {v} |" for k, v in sorted(rep["by_tier_subtype"].items())]
    lines += ["", "| rejection reason | count |", "|---|---|"]
    lines += [f"| {md_text(k)} | {v} |" for k, v in rep["rejection_reasons"].items()]
    if rep.get("language"):
        lines += ["", "### Language", "",
                  f"Per tier over accepted positive instructions; distinct-n and word types over "
                  f"{rep['language']['sample']} drawn at random (all when fewer), beside human referring expressions.", "",
                  language_markdown(rep["language"])]
    if rep["no_complex_tier_categories"]:
        lines += ["", "Categories without a complex tier (not in the lexicon): "
                  + ", ".join(md_text(c) for c in rep["no_complex_tier_categories"])]
    if rep.get("categories"):
        lines += ["", "### Categories", "",
                  "How text names each category, what the lexicon lacks for it and the tiers it gets "
                  "(accepted instructions naming it as target or absent concept).", "",
                  "| category | noun / plural | supercategory | lexicon lacks | tiers | concept | simple | complex |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in rep["categories"]:
            a = c["accepted"]
            lines.append(f"| {md_text(c['category'])} | {md_text(c['noun'])} / {md_text(c['plural'])} | "
                         f"{md_text(c['supercategory']) if c['supercategory'] else '-'} | "
                         f"{', '.join(c['lacks']) or 'nothing'} | {c['tiers']} | {a['concept']} | {a['simple']} | {a['complex']} |")
    return "\n".join(lines) + "\n"


def print_report(rep: dict, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    t = Table(title=f"{rep['instructions']['accepted']} accepted / {rep['instructions']['rejected']} rejected "
                    f"instructions on {rep['images']} images")
    for col in ("tier", "accepted", "coverage (any)", "coverage (1:1)"):
        t.add_column(col)
    for tier in TIERS:
        t.add_row(tier, str(rep["by_tier"].get(tier, 0)), f"{rep['coverage'][tier]:.1%}", f"{rep['coverage_1to1'][tier]:.1%}")
    console.print(t)
    c = Table(title="by tier / cardinality")
    c.add_column("tier/cardinality"); c.add_column("accepted")
    for k, v in sorted(rep["by_tier_cardinality"].items()):
        c.add_row(k, str(v))
    console.print(c)
    console.print(f"coverage over {rep['eligible_instances']} eligible instances "
                  f"({rep['excluded_beside_crowd']} more sit beside a crowd region of their category, "
                  f"{rep.get('excluded_unmarked_kin', 0)} in a pile with unmarked look-alikes)")
    console.print(f"words/instruction {rep['words_per_instruction']['mean']:.1f}  "
                  f"distinct-1 {rep['distinct_1']:.3f}  distinct-2 {rep['distinct_2']:.3f}")
    if rep["rejection_reasons"]:
        r = Table(title="top rejection reasons")
        r.add_column("reason"); r.add_column("count")
        for k, v in rep["rejection_reasons"].items():
            r.add_row(escape(k), str(v))  # reasons quote source text: no rich markup
        console.print(r)
    for tier, st in rep.get("language", {}).get("tiers", {}).items():
        if st.get("n"):
            console.print(f"language {tier}: distinct-2 {st['distinct_2']:.2f}  types {st['types']}  "
                          f"exact duplicates {st['duplicate_share']:.1%}  words {st['words_mean']:.1f}")
    if rep["no_complex_tier_categories"]:
        console.print("no complex tier (not in lexicon): "
                      + ", ".join(escape(c) for c in rep["no_complex_tier_categories"]))
    if rep.get("categories"):
        k = Table(title="categories: what the lexicon lacks and the tiers they get")
        for col in ("category", "noun", "lexicon lacks", "tiers", "accepted c/s/x"):
            k.add_column(col)
        for c in rep["categories"]:
            a = c["accepted"]
            k.add_row(escape(c["category"]), escape(c["noun"]), ", ".join(c["lacks"]) or "nothing", c["tiers"],
                      f"{a['concept']}/{a['simple']}/{a['complex']}")
        console.print(k)


# ---------------------------------------------------------------- one unit at a time

REPORT_INSTRUCTION_COLUMNS = ("instruction_id", "image_id", "tier", "subtype", "cardinality", "category", "text",
                              "target_ids", "program", "accepted", "reject_reason")


def _reason_key(r: str) -> str:
    return r.split(":")[0] + ": " + r.split(":", 1)[1].strip().split(";")[0][:60] if ":" in r else r


class _LanguageTally:
    """engine.verify.language_stats.release_language, added up one unit at a time: per tier the
    instruction ids of the texts (to draw the same seeded sample from the release's
    instruction-id order), an 8-byte hash of each normalised text (duplicate share) and word
    counts; the content shares as numerators and denominators."""

    def __init__(self):
        self.ids = {t: [] for t in TIERS}
        self.hashes = {t: [] for t in TIERS}
        self.words = {t: 0 for t in TIERS}
        self.present = set()
        self.c = {k: 0 for k in ("cx", "kind", "people", "people_inst", "one", "one_rel", "one_f", "one_f_rel")}
        self.facts_rows = 0

    def add(self, acc: pd.DataFrame, facts: pd.DataFrame) -> None:
        import hashlib

        import numpy as np

        from engine.lexicon import word_tokens
        from engine.verify.language_stats import INSTANCE_KINDS, _program

        pos = acc[acc["cardinality"] != "negative"]
        for t in TIERS:
            rows = pos[pos["tier"] == t]
            if not len(rows):
                continue
            self.present.add(t)
            keep = [(i, x) for i, x in zip(rows["instruction_id"], rows["text"]) if isinstance(x, str) and x.strip()]
            if not keep:
                continue
            self.ids[t].append(np.array([i.encode() for i, _ in keep]))
            toks = [word_tokens(x) for _, x in keep]
            self.words[t] += sum(len(w) for w in toks)
            self.hashes[t].append(np.array([int.from_bytes(hashlib.blake2b(" ".join(w).encode(), digest_size=8)
                                                           .digest(), "big") for w in toks], dtype=np.uint64))
        cx = pos[pos["tier"] == "complex"]
        kinds = [{c["kind"] for c in _program(p)} for p in cx["program"]]
        self.c["cx"] += len(kinds)
        self.c["kind"] += sum("affordance" in k for k in kinds)
        people = cx[(cx["cardinality"] == "1:1") & (cx["category"] == "person")]
        pk = [{c["kind"] for c in _program(p)} for p in people["program"]]
        self.c["people"] += len(pk)
        self.c["people_inst"] += sum(bool(k & INSTANCE_KINDS) for k in pk)
        one = pos[(pos["cardinality"] == "1:1") & pos["tier"].isin(["simple", "complex"])]
        rel = [any(c["kind"] in ("relation", "not_relation") for c in _program(p)) for p in one["program"]]
        self.c["one"] += len(rel)
        self.c["one_rel"] += sum(rel)
        per_image = facts.groupby("image_id").size()
        crowded = one["image_id"].map(per_image).fillna(0) >= 2
        self.c["one_f"] += int(crowded.sum())
        self.c["one_f_rel"] += sum(r for r, k in zip(rel, crowded) if k)
        self.facts_rows += len(facts)

    def picks(self, sample: int, seed: int) -> dict[str, set]:
        """Per tier, the instruction ids text_stats' seeded sample picks."""
        import random

        out = {}
        for t in TIERS:
            if not self.ids[t]:
                continue
            import numpy as np
            ids = np.sort(np.concatenate(self.ids[t]))   # bytes order = the release's id order
            n = len(ids)
            rng = random.Random(seed)
            out[t] = [ids[j].decode() for j in rng.sample(range(n), min(sample, n))]
        return out

    def result(self, picked_texts: dict[str, list[str]], sample: int) -> dict:
        import numpy as np

        from engine.lexicon import word_tokens
        from engine.verify.language_stats import HUMAN_REFERENCE

        tiers = {}
        for t in TIERS:
            if t not in self.present:
                continue
            if not self.ids[t]:
                tiers[t] = {"n": 0}
                continue
            n = sum(len(a) for a in self.ids[t])
            words = [word_tokens(x) for x in picked_texts[t]]
            unigrams = [w for ws in words for w in ws]
            bigrams = [b for ws in words for b in zip(ws, ws[1:])]
            _, counts = np.unique(np.concatenate(self.hashes[t]), return_counts=True)
            tiers[t] = {
                "n": n,
                "sampled": len(words),
                "distinct_1": round(len(set(unigrams)) / max(1, len(unigrams)), 3),
                "distinct_2": round(len(set(bigrams)) / max(1, len(bigrams)), 3),
                "types": len(set(unigrams)),
                "duplicate_share": round(int(counts[counts > 1].sum()) / n, 3),
                "words_mean": round(self.words[t] / n, 2),
            }
        c = self.c
        one, one_rel = (c["one_f"], c["one_f_rel"]) if self.facts_rows else (c["one"], c["one_rel"])
        content = {"complex_kind_share": round(c["kind"] / max(1, c["cx"]), 3),
                   "people_complex_n": c["people"],
                   "people_complex_instance_share": round(c["people_inst"] / max(1, c["people"]), 3),
                   "one_to_one_n": one, "one_to_one_related_share": round(one_rel / max(1, one), 3)}
        return {"sample": sample, "tiers": tiers, "content": content, "human": HUMAN_REFERENCE}


def unit_quality_report(units, plan: PlanConfig, no_complex_categories: list[str] | None = None,
                        categories: list[dict] | None = None) -> dict:
    """`quality_report` over every unit of `units` (engine/release/units.py), read one unit at
    a time: the same figures (tests/engine/test_report.py checks it), with counts, sets of
    n-grams and per-instruction ids and hashes kept instead of the release's tables."""
    from engine.verify.language_stats import SAMPLE

    n_acc = n_rej = n_images = n_eligible = n_excluded = n_piles = 0
    cover = {t: 0 for t in TIERS}
    cover1 = {t: 0 for t in TIERS}
    groups = {k: Counter() for k in ("tier", "cardinality", "tier_subtype", "tier_cardinality", "tier_category")}
    words_sum, words_n = Counter(), Counter()
    grams = {1: set(), 2: set()}
    gram_total = {1: 0, 2: 0}
    reasons, first_seen = Counter(), {}
    lang = _LanguageTally()
    for u in units.unit_ids():
        instr = units.instructions(u, REPORT_INSTRUCTION_COLUMNS)
        facts = units.facts(u, REPORT_FACT_COLUMNS)
        acc, rej = instr[instr["accepted"]], instr[~instr["accepted"]]
        n_acc, n_rej = n_acc + len(acc), n_rej + len(rej)
        n_images += instr["image_id"].nunique()
        rows = facts.to_dict("records")
        eligible, beside_crowd, in_piles = _eligible(rows, plan)
        n_eligible += len(eligible)
        n_excluded += beside_crowd
        n_piles += in_piles
        for tier in TIERS:
            t = acc[acc["tier"] == tier]
            cover[tier] += len(eligible & {i for ids in t["target_ids"] for i in ids})
            cover1[tier] += len(eligible & {ids[0] for ids in t[t["cardinality"] == "1:1"]["target_ids"]})
        groups["tier"].update(acc["tier"])
        groups["cardinality"].update(acc["cardinality"])
        groups["tier_subtype"].update(zip(acc["tier"], acc["subtype"]))
        groups["tier_cardinality"].update(zip(acc["tier"], acc["cardinality"]))
        groups["tier_category"].update(zip(acc["tier"], acc["category"]))
        for tier, text in zip(acc["tier"], acc["text"]):
            k = len(text.split())
            words_sum[None] += k
            words_sum[tier] += k
            words_n[tier] += 1
        for n in (1, 2):
            for text in acc["text"]:
                w = normalise(text).split()
                for i in range(len(w) - n + 1):
                    grams[n].add(tuple(w[i:i + n]))
                    gram_total[n] += 1
        for iid, r in zip(rej["instruction_id"], rej["reject_reason"]):
            key = _reason_key(r)
            reasons[key] += 1
            if key not in first_seen or iid < first_seen[key]:
                first_seen[key] = iid
        lang.add(acc, facts)
    picks = lang.picks(SAMPLE, 0)
    wanted = {i: t for t, ids in picks.items() for i in ids}
    found: dict[str, str] = {}
    if wanted:
        for u in units.unit_ids():
            instr = units.instructions(u, ["instruction_id", "text"])
            for i, text in zip(instr["instruction_id"], instr["text"]):
                if i in wanted:
                    found[i] = text
    texts = {t: [found[i] for i in ids] for t, ids in picks.items()}

    def share(k: int) -> float:
        return k / n_eligible if n_eligible else 0.0

    def sorted_counts(c: Counter, key=lambda k: k) -> dict:
        return {key(k): int(v) for k, v in sorted(c.items())}

    top = sorted(reasons.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))[:15]
    tiers_present = [t for t in TIERS if words_n[t]]
    return {
        "instructions": {"accepted": int(n_acc), "rejected": int(n_rej)},
        "images": int(n_images),
        "eligible_instances": n_eligible,
        "excluded_beside_crowd": n_excluded,
        "excluded_unmarked_kin": n_piles,
        "by_tier": sorted_counts(groups["tier"]),
        "by_cardinality": sorted_counts(groups["cardinality"]),
        "by_tier_subtype": sorted_counts(groups["tier_subtype"], lambda k: f"{k[0]}/{k[1]}"),
        "by_tier_cardinality": sorted_counts(groups["tier_cardinality"], lambda k: f"{k[0]}/{k[1]}"),
        "coverage": {t: share(cover[t]) for t in TIERS},
        "coverage_1to1": {t: share(cover1[t]) for t in TIERS},
        "words_per_instruction": {"mean": float(words_sum[None]) / n_acc if n_acc else 0.0,
                                  **{t: float(words_sum[t]) / words_n[t] for t in tiers_present}},
        "distinct_1": len(grams[1]) / gram_total[1] if gram_total[1] else 0.0,
        "distinct_2": len(grams[2]) / gram_total[2] if gram_total[2] else 0.0,
        "language": lang.result(texts, SAMPLE),
        "rejection_reasons": dict(top),
        "no_complex_tier_categories": sorted(no_complex_categories or []),
        "categories": [{**c, "accepted": {t: int(groups["tier_category"][(t, c["category"])]) for t in TIERS}}
                       for c in categories or []],
    }
