"""SAM3's text tokenizer: CLIP byte-level BPE, vocabulary 49,408, context 32, built offline.

The BPE merge table is OpenAI's `bpe_simple_vocab_16e6.txt.gz`, which the `clip-anytorch`
package ships. We only read that file (found without importing the package, whose import pulls
torchvision) and build a `transformers.CLIPTokenizer` from it in memory, the same vocabulary
`facebook/sam3`'s tokenizer files hold: 256 byte symbols, the same 256 with `</w>`, 48,894
merges, `<|startoftext|>` and `<|endoftext|>`. No hub download, no random ids.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

VOCAB_SIZE = 49_408
CONTEXT_LENGTH = 32
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
BPE_PACKAGE = "clip"          # import name of the clip-anytorch distribution


def bpe_path() -> Path:
    """The merge table shipped inside the installed clip-anytorch package."""
    spec = importlib.util.find_spec(BPE_PACKAGE)
    for root in (spec.submodule_search_locations or []) if spec else []:
        p = Path(root) / BPE_FILE
        if p.is_file():
            return p
    raise FileNotFoundError(f"{BPE_FILE} not found: install the `train` extra (package clip-anytorch, "
                            f"see bin/setup), which ships CLIP's BPE vocabulary")


def byte_symbols() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable unicode character table, in CLIP's order:
    the printable bytes first (as themselves), then the rest mapped to 256, 257, ..."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    for extra, b in enumerate(b for b in range(256) if b not in table):
        table[b] = chr(256 + extra)
    return table


def vocab_and_merges(path: str | Path | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    lines = gzip.open(path or bpe_path(), "rt", encoding="utf-8").read().split("\n")
    n_merges = VOCAB_SIZE - 2 * 256 - 2
    merges = [tuple(line.split()) for line in lines[1:1 + n_merges]]
    if len(merges) != n_merges or any(len(m) != 2 for m in merges):
        raise ValueError(f"{path or bpe_path()}: expected {n_merges} BPE merges, got a malformed table")
    symbols = list(byte_symbols().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


@functools.lru_cache(maxsize=1)
def load_tokenizer():
    """A transformers CLIPTokenizer with SAM3's vocabulary; pads to `CONTEXT_LENGTH`."""
    from transformers import CLIPTokenizer

    vocab, merges = vocab_and_merges()
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    tok.model_max_length = CONTEXT_LENGTH
    return tok


def tokenize(texts: list[str]):
    """texts -> (input_ids, attention_mask), LongTensors of shape [len(texts), 32]."""
    enc = load_tokenizer()(list(texts), padding="max_length", truncation=True, max_length=CONTEXT_LENGTH,
                           return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]
