"""H100-hours for the paper's scale (generation + the multiple-choice check), from measured
request shapes and published vLLM throughput for an 8B model.

    python bench/cost_model.py [--rounds 1.9] [--accept 0.35] [--gen-text-chars 2000] ...

Per accepted instruction the loop sends rounds/accept generation requests and as many choice
questions (one per round: the check runs on every candidate). GPU time per request =
prefill tokens / prefill rate + output tokens / decode rate, with
- decode: 5,777 output tokens/s for Llama-3.1-8B on one H100 with vLLM (MLPerf Inference v5.1,
  Offline scenario, Red Hat's submission, FP8, vLLM 0.10.0), a long-prompt / short-answer
  workload like ours;
- prefill: compute-bound, 2 x 8.3e9 FLOPs per token (Qwen3-VL-8B's language model) at 40% of
  the H100 SXM's 989 dense BF16 TFLOP/s, plus the vision encoder's patches (image tokens cost
  `--vision-factor` times a text token);
- image tokens: Qwen3-VL merges 2x2 patches of 16 px, one token per 32x32 px; COCO photos are
  640x480 (sent at their size, <= 1024 px): 300 tokens; the crop ~50; the photo's tokens are
  computed once per image (prefix cache, image affinity), the overlay and crop per request.
Text is ~4 characters per token for English with Qwen's tokenizer (the tiny test model's
byte-level BPE overstates tokens; characters are what was measured here).
"""
from __future__ import annotations

import argparse

MLPERF_DECODE_TOK_S = 5777          # Llama-3.1-8B, 1x H100, vLLM, MLPerf Inference v5.1 Offline (Red Hat)
H100_BF16_FLOPS = 989e12
PARAMS = 8.3e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=44_109)
    ap.add_argument("--accepted", type=int, default=850_000)
    ap.add_argument("--rounds", type=float, required=True, help="mean generation rounds per spec (measured)")
    ap.add_argument("--accept", type=float, required=True, help="accepted / specs (measured)")
    ap.add_argument("--gen-text-chars", type=float, required=True, help="generation prompt characters (measured)")
    ap.add_argument("--choice-text-chars", type=float, required=True, help="choice prompt characters (measured)")
    ap.add_argument("--gen-output-tokens", type=float, default=25, help="an instruction (~12 words) + JSON")
    ap.add_argument("--choice-output-tokens", type=float, default=6, help='{"choice": N}')
    ap.add_argument("--photo-tokens", type=float, default=300)
    ap.add_argument("--crop-tokens", type=float, default=50)
    ap.add_argument("--chars-per-token", type=float, default=4.0)
    ap.add_argument("--mfu", type=float, default=0.40, help="prefill model-FLOPs utilisation")
    ap.add_argument("--peak-tflops", type=float, default=H100_BF16_FLOPS / 1e12,
                    help="H100 SXM dense peak: 989 BF16, 1979 FP8 (the MLPerf decode figure is FP8)")
    ap.add_argument("--vision-factor", type=float, default=1.3, help="image token cost / text token cost")
    ap.add_argument("--decode", type=float, default=MLPERF_DECODE_TOK_S, help="output tokens/s per H100")
    ap.add_argument("--share", type=float, default=1.0, help="specs answered per request (1 today; 3 if one "
                    "request wrote a target's three tiers, and one question checked them)")
    args = ap.parse_args()

    prefill_tok_s = args.mfu * args.peak_tflops * 1e12 / (2 * PARAMS)
    specs = args.accepted / args.accept
    requests = specs * args.rounds                       # generation requests = choice questions
    specs_per_image = specs / args.images
    # prefill tokens per generation request: text + overlay + crop (+ the photo once per image)
    gen_text = args.gen_text_chars / args.chars_per_token
    gen_img = (args.photo_tokens + args.crop_tokens) * args.vision_factor
    photo_once = args.photo_tokens * args.vision_factor / (specs_per_image * args.rounds)
    gen_prefill = gen_text + gen_img + photo_once
    # the choice question: its text and the outlined photo (differs per question: no sharing)
    ch_prefill = args.choice_text_chars / args.chars_per_token + args.photo_tokens * args.vision_factor
    gen_s = gen_prefill / args.share / prefill_tok_s + args.gen_output_tokens / args.decode
    ch_s = ch_prefill / args.share / prefill_tok_s + args.choice_output_tokens / args.decode
    total_h = requests * (gen_s + ch_s) / 3600
    print(f"specs {specs:,.0f} ({specs_per_image:.1f}/image), generation requests = choice questions = {requests:,.0f}")
    print(f"prefill rate {prefill_tok_s:,.0f} tok/s, decode {args.decode:,.0f} tok/s (per H100)")
    print(f"generation: {gen_prefill:,.0f} prefill + {args.gen_output_tokens:.0f} output tokens -> {gen_s * 1000:.1f} ms GPU per spec-round")
    print(f"choice:     {ch_prefill:,.0f} prefill + {args.choice_output_tokens:.0f} output tokens -> {ch_s * 1000:.1f} ms GPU per spec-round")
    print(f"H100-hours: generation {requests * gen_s / 3600:.1f} + choice {requests * ch_s / 3600:.1f} = {total_h:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
