"""The CLIP BPE tokenizer built offline from the packaged vocabulary file."""
from __future__ import annotations

from model.data import ReleaseData
from model.tokenizer import CONTEXT_LENGTH, VOCAB_SIZE, bpe_path, load_tokenizer, tokenize


def test_vocabulary_is_sams_clip_bpe():
    tok = load_tokenizer()
    assert len(tok) == VOCAB_SIZE == 49_408
    assert bpe_path().name == "bpe_simple_vocab_16e6.txt.gz"
    # fixed points of CLIP's vocabulary: start/end of text are the last two ids, bytes come first
    assert tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>", "!", "a</w>"]) == [49406, 49407, 0, 320]
    ids, am = tokenize(["the black dog left of the bench"])
    assert ids.shape == am.shape == (1, CONTEXT_LENGTH)
    assert tok.convert_ids_to_tokens(ids[0, :9].tolist()) == [
        "<|startoftext|>", "the</w>", "black</w>", "dog</w>", "left</w>", "of</w>", "the</w>", "bench</w>",
        "<|endoftext|>"]
    assert am[0].tolist() == [1] * 9 + [0] * 23


def test_round_trips_real_instructions(coco_release):
    tok = load_tokenizer()
    texts = sorted({it.text for it in ReleaseData(coco_release, None).items})
    assert len(texts) > 100
    ids, am = tokenize(texts)
    for text, row, mask in zip(texts, ids, am):
        n = int(mask.sum())
        assert row[0] == 49406 and row[n - 1] == 49407 and n < CONTEXT_LENGTH, text
        decoded = tok.decode(row[:n], skip_special_tokens=True)
        # CLIP lower-cases and splits punctuation off; the words themselves come back exactly
        assert decoded.split() == tok.decode(tokenize([decoded])[0][0], skip_special_tokens=True).split()
        assert "".join(decoded.split()) == "".join(text.lower().split()), (text, decoded)


def test_long_text_is_cut_to_the_context_and_still_ends():
    ids, am = tokenize(["a " * 100])
    assert ids.shape == (1, 32) and am.sum() == 32 and ids[0, -1] == 49407
