from engine.checks.dedup import normalise, select_diverse


def test_normalise_ignores_case_punctuation_articles():
    assert normalise("The black dog, on the LEFT.") == normalise("black dog on left")


def test_exact_and_near_duplicates_are_dropped_with_reasons():
    texts = ["the black dog on the left", "The black dog on the left.", "the black dog on the left side",
             "the dog next to the bench"]
    keep, dropped = select_diverse(texts, threshold=0.6, keep=5)
    assert keep == [0, 3]
    assert dropped[1].startswith("duplicate of candidate 0")
    assert dropped[2].startswith("near-duplicate of candidate 0")


def test_keeps_the_most_diverse_subset():
    texts = ["the dog on the left", "the dog on the left near the bench", "the leftmost white dog",
             "something that barks beside a bench"]
    keep, dropped = select_diverse(texts, threshold=0.95, keep=2)
    assert keep[0] == 0 and len(keep) == 2
    # the second kept text shares the fewest shingles with the first
    assert keep[1] in (2, 3) and 1 in dropped


def test_embedding_method_catches_paraphrases_minhash_misses():
    # same meaning, almost no shared words: only the sentence embedding sees it
    texts = ["the puppy on the left", "the dog at the left side", "the red car next to the tree"]
    keep_mh, _ = select_diverse(texts, threshold=0.8, keep=5, method="minhash")
    assert keep_mh == [0, 1, 2]
    keep_emb, dropped = select_diverse(texts, threshold=0.7, keep=5, method="embedding")
    assert keep_emb == [0, 2]
    assert dropped[1].startswith("near-duplicate of candidate 0")
