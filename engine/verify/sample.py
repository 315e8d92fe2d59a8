"""A reproducible stratified random sample of a release's instructions.

Strata are tier x cardinality (negatives are the cardinality "negative", so they form their own
strata per tier), optionally crossed with backend / category / subtype (`by`). Each stratum's
sample size comes from a target interval width (`stats.sample_size`) or a fixed number.

Drawing: every instruction gets the key sha256(f"{seed}:{instruction_id}"); a stratum's sample
is its n instructions with the smallest keys. That is a simple random sample without
replacement (the hash acts as a random permutation), it does not depend on row order or on the
other strata, and samples are nested: a larger n (or a narrower --ci-width) keeps every item of
the smaller sample, so verdicts already given stay in use. Items are presented in key order
across strata, so labelling stops at any point leave a random subsample of every stratum.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from engine.verify.stats import sample_size, z_for

BASE_STRATA = ("tier", "cardinality")
EXTRA_STRATA = ("backend", "category", "subtype")


@dataclass(frozen=True)
class SampleSpec:
    seed: int = 0
    ci_width: float | None = 0.1
    per_stratum: int | None = None      # overrides ci_width when given
    by: tuple[str, ...] = ()
    confidence: float = 0.95
    rejected: bool = False              # sample the rejected candidates instead

    def __post_init__(self):
        unknown = [b for b in self.by if b not in EXTRA_STRATA]
        if unknown:
            raise ValueError(f"--by {unknown[0]!r}: choose from {', '.join(EXTRA_STRATA)}")
        if self.per_stratum is not None and self.per_stratum < 1:
            raise ValueError(f"--per-stratum must be >= 1, got {self.per_stratum}")
        if self.per_stratum is None and self.ci_width is None:
            raise ValueError("give --ci-width or --per-stratum")

    def describe(self) -> str:
        size = f"{self.per_stratum} per stratum" if self.per_stratum else f"CI width {self.ci_width}"
        by = " x ".join(BASE_STRATA + tuple(self.by))
        what = "rejected candidates" if self.rejected else "accepted instructions"
        return f"{what}, strata {by}, {size} at {self.confidence:.0%}, seed {self.seed}"


def item_id(release_id: str, instruction_id: str) -> str:
    """Stable id of one (release, instruction) pair: verdicts are keyed by it."""
    return "v-" + hashlib.sha256(f"{release_id}:{instruction_id}".encode()).hexdigest()[:16]


def draw_key(seed: int, instruction_id: str) -> str:
    return hashlib.sha256(f"{seed}:{instruction_id}".encode()).hexdigest()


def stratum_names(df: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.Series:
    """'tier/cardinality[/col=value...]' per row, e.g. 'simple/1:1', 'concept/negative/category=dog'."""
    names = df["tier"].astype(str) + "/" + df["cardinality"].astype(str)
    for col in by:
        names = names + f"/{col}=" + df[col].astype(str)
    return names


@dataclass
class Sample:
    items: pd.DataFrame          # population columns + item_id, stratum, draw_key, order
    strata: dict[str, dict]      # name -> {"population": N_h, "sampled": n_h}
    spec: SampleSpec
    release_id: str
    population_size: int

    def __len__(self) -> int:
        return len(self.items)


def draw(population: pd.DataFrame, release_id: str, spec: SampleSpec) -> Sample:
    """The stratified sample of `population` (manifest or rejected rows) described by `spec`."""
    missing = [c for c in BASE_STRATA + tuple(spec.by) + ("instruction_id",) if c not in population]
    if missing:
        raise ValueError(f"the instruction table has no column {missing[0]!r}")
    df = population.reset_index(drop=True)
    df = df.assign(stratum=stratum_names(df, spec.by),
                   draw_key=[draw_key(spec.seed, i) for i in df["instruction_id"]])
    z = z_for(spec.confidence)
    strata: dict[str, dict] = {}
    picked = []
    for name, group in df.groupby("stratum", sort=True):
        N = len(group)
        n = min(N, spec.per_stratum) if spec.per_stratum else sample_size(N, spec.ci_width, z)
        strata[name] = {"population": N, "sampled": n}
        picked.append(group.sort_values("draw_key").head(n))
    items = pd.concat(picked, ignore_index=True) if picked else df.iloc[:0]
    items = items.sort_values("draw_key").reset_index(drop=True)
    items = items.assign(item_id=[item_id(release_id, i) for i in items["instruction_id"]],
                         order=range(1, len(items) + 1))
    return Sample(items, strata, spec, release_id, len(df))
