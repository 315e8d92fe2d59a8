"""Build a tiny random vision-language model (Qwen2-VL architecture) that vLLM (CPU) can serve,
with nothing downloaded: images in chat requests go through a real vision tower and a real
Qwen2-VL processor, so the serving path is the one Qwen2/2.5/3-VL models take.

Tokenizer: the byte-level BPE of build_tiny_model.py plus Qwen2-VL's vision special tokens.
Chat template: ChatML that writes `<|vision_start|><|image_pad|><|vision_end|>` for each image
part (the processor expands the pad to one token per merged 2x2 patch group).
Model: Qwen2VLForConditionalGeneration with random weights: text hidden 128, 2 layers, 2 heads
of dim 64 (mrope sections 8+12+12 = 32 = head_dim/2); vision depth 2, width 128, 2 heads.
The image processor caps images at 112x112x4 pixels (about 64 image tokens after merging).

    python build_tiny_vlm.py OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from build_tiny_model import tokenizer  # noqa: E402  (same BPE on the same filler: no English words in the merges)

VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *VISION_TOKENS]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for part in m['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] in ('image', 'image_url') %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MAX_PIXELS = 112 * 112 * 4
MIN_PIXELS = 56 * 56


def build(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    fast = tokenizer(SPECIALS, CHAT_TEMPLATE)
    # The image processor alone: Qwen2VLProcessor() also builds the video processor, which
    # needs torchvision (not in the vLLM CPU venv); the saved files are what it would write.
    improc = Qwen2VLImageProcessorPil(size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS})
    out.mkdir(parents=True, exist_ok=True)
    improc.save_pretrained(out)
    fast.save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)

    ids = {t: fast.convert_tokens_to_ids(t) for t in VISION_TOKENS}
    vocab = ((len(fast) + 63) // 64) * 64
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=vocab, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=8192,
                         rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                          "mrope_section": [8, 12, 12]},
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
                         tie_word_embeddings=True),
        vision_config=dict(depth=2, embed_dim=128, hidden_size=128, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
    )
    cfg.torch_dtype = "float32"
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(cfg).to(torch.float32)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.save_pretrained(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_tiny_vlm.py OUT_DIR")
    print(build(Path(sys.argv[1])))
