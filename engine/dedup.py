"""Exact and near-duplicate removal of instructions per (target set, tier).

Texts are normalised (case, punctuation, articles) for the exact pass; near-duplicates are
found with MinHash over word 2-shingles (datasketch). Among the survivors we keep a diverse set:
greedily add the text least similar to those already kept.
"""
from __future__ import annotations

import re

from datasketch import MinHash

_ARTICLES = {"a", "an", "the"}


def normalise(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return " ".join(w for w in words if w not in _ARTICLES)


def _shingles(norm: str) -> set[str]:
    words = norm.split()
    if len(words) < 2:
        return set(words)
    return {" ".join(words[i:i + 2]) for i in range(len(words) - 1)} | set(words)


def _minhash(norm: str) -> MinHash:
    m = MinHash(num_perm=64, seed=1)
    for s in sorted(_shingles(norm)):
        m.update(s.encode())
    return m


def select_diverse(texts: list[str], threshold: float, keep: int) -> tuple[list[int], dict[int, str]]:
    """Indices of texts to keep (in input order) and, for each dropped index, why.

    Input order is the preference order (e.g. the planner's cheapest program first).
    """
    dropped: dict[int, str] = {}
    seen_exact: dict[str, int] = {}
    survivors: list[int] = []
    for i, t in enumerate(texts):
        n = normalise(t)
        if n in seen_exact:
            dropped[i] = f"duplicate of candidate {seen_exact[n]}"
        else:
            seen_exact[n] = i
            survivors.append(i)
    hashes = {i: _minhash(normalise(texts[i])) for i in survivors}
    kept: list[int] = []
    for i in survivors:
        near = [j for j in kept if hashes[i].jaccard(hashes[j]) >= threshold]
        if near:
            dropped[i] = f"near-duplicate of candidate {near[0]}"
        else:
            kept.append(i)
    if len(kept) > keep:
        # greedy max-min diversity, starting from the first (most preferred) text
        chosen = [kept[0]]
        rest = kept[1:]
        while len(chosen) < keep and rest:
            best = max(rest, key=lambda i: (min(1 - hashes[i].jaccard(hashes[j]) for j in chosen), -i))
            chosen.append(best)
            rest.remove(best)
        for i in rest:
            dropped[i] = f"over the limit of {keep} per target and tier"
        kept = sorted(chosen)
    return kept, dropped
