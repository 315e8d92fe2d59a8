"""Build a tiny random chat model that vLLM (CPU) can serve, with nothing downloaded.

The tokenizer is a byte-level BPE trained here on a few sentences: every byte is in its
alphabet, so any text (and any JSON) can be written, which structured outputs (xgrammar)
need. The model is a Qwen2ForCausalLM with random weights: hidden 128, 2 layers, 2 heads of
dim 64 (vLLM's CPU attention rejects head dim 16). It writes gibberish: it exists to test the
serving path, not the text.

    python build_tiny_model.py OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for part in m['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Latin filler and JSON punctuation: the merges hold no English words, so the random model's
# gibberish does not spell category nouns by chance ("zebras") and pass a checker by luck.
CORPUS = [
    "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor",
    "incididunt ut labore et dolore magna aliqua. ut enim ad minim veniam, quis nostrud",
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. duis aute irure",
    '{"instruction": "lorem ipsum"}', '{"a": 1, "b": [2, 3], "c": "d"}',
]


def tokenizer(specials: list[str], chat_template: str):
    """A byte-level BPE trained on the filler corpus, with the given special tokens and chat
    template (shared with build_tiny_vlm.py)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    fast.chat_template = chat_template
    fast.model_max_length = 8192
    return fast


def build(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    fast = tokenizer(SPECIALS, CHAT_TEMPLATE)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)

    vocab = ((len(fast) + 63) // 64) * 64  # padded: room for every token id, aligned
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, head_dim=64, max_position_embeddings=8192,
                      eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
                      tie_word_embeddings=True, torch_dtype="float32")
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg).to(torch.float32)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.save_pretrained(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_tiny_model.py OUT_DIR")
    print(build(Path(sys.argv[1])))
