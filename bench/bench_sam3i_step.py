"""Time one stage-1 training step of SAM3-I on the full-size SAM3 architecture (random weights).

    PYTHONPATH=. .venv/bin/python bench/bench_sam3i_step.py                 # full size: a GPU machine
    PYTHONPATH=. .venv/bin/python bench/bench_sam3i_step.py --tiny          # the tiny config, CPU check

Builds Sam3Model(Sam3Config()) (848M parameters: ViT-L 1008 px, 24-layer CLIP text encoder,
6+6 DETR layers, 200 queries) with random weights (nothing is downloaded), wraps it in SAM3-I
with the paper's adapter sizes, and runs what model.train does per stage-1 step: frozen image
encoder, simple route, SAM3 set loss against random targets, backward, AdamW step; bf16 autocast
where the device supports it (`--bf16 off` to compare), `--base-bf16` also stores the frozen base in
bf16. Prints parameter counts, seconds per step, images per second and peak memory (CUDA: peak
allocated; CPU: peak RSS of the process).
"""
from __future__ import annotations

import argparse
import resource
import time
from contextlib import nullcontext

import torch

from model.losses import LossWeights, set_loss
from model.sam3i import TINY_ADAPTERS, AdapterConfig, Sam3I, load_base
from model.tokenizer import tokenize
from model.train import autocast, make_optimizer, set_trainable

TEXTS = ["the soccer player on the far right, wearing a blue jersey", "the black dog left of the bench",
         "the second cup from the left", "the largest elephant in the water"]


def random_targets(batch: int, mask_size: int, n: int = 2) -> list[dict]:
    out = []
    for _ in range(batch):
        xy = torch.rand(n, 2) * 0.5
        boxes = torch.cat([xy, xy + 0.2 + torch.rand(n, 2) * 0.3], 1).clamp(max=1)
        masks = torch.zeros(n, mask_size, mask_size)
        for k, (x0, y0, x1, y1) in enumerate((boxes * mask_size).long().tolist()):
            masks[k, y0:y1, x0:x1] = 1
        out.append({"masks": masks, "boxes": boxes})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="the tiny test config instead of full-size SAM3")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--bf16", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--base-bf16", action="store_true", help="store the frozen base weights in bf16")
    a = ap.parse_args()

    t0 = time.time()
    base = load_base("tiny" if a.tiny else "full")
    model = Sam3I(base, TINY_ADAPTERS if a.tiny else AdapterConfig())
    if a.base_bf16:
        model.sam3.to(torch.bfloat16)
    model.to(a.device)
    params = set_trainable(model, 1)
    opt = make_optimizer(params, 6.4e-4, 0.1)
    total = sum(p.numel() for p in model.parameters())
    adapters = sum(p.numel() for m in model.adapter_modules() for p in m.parameters())
    print(f"{'tiny' if a.tiny else 'full-size'} SAM3-I on {a.device}: {total:,} parameters, "
          f"{adapters:,} in adapters + mask-head copies, {sum(p.numel() for p in params):,} "
          f"trained in stage 1 (built in {time.time() - t0:.1f} s)")

    cfg = model.sam3.config.vision_config
    size = int(cfg.backbone_config.image_size if not isinstance(cfg.backbone_config.image_size, (list, tuple))
               else cfg.backbone_config.image_size[0])
    mask_size = int(cfg.backbone_feature_sizes[0][0])
    x = torch.randn(a.batch, 3, size, size, device=a.device)
    if a.base_bf16:
        x = x.to(torch.bfloat16)
    ids, am = tokenize([TEXTS[i % len(TEXTS)] for i in range(a.batch)])
    ids, am = ids.to(a.device), am.to(a.device)
    targets = random_targets(a.batch, mask_size)
    amp = autocast(a.device, a.bf16)
    w = LossWeights()
    cuda = a.device.startswith("cuda")

    def step():
        with amp:
            vision = model.vision(x)
            out = model("simple", ids, am, vision_embeds=vision)
        loss, _ = set_loss(out, targets, w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.1)
        opt.step()
        return float(loss.detach())

    step()                                                    # warm-up (allocator, kernels)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    mean = sum(times) / len(times)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"image {size} px, batch {a.batch}, bf16 autocast {'off' if isinstance(amp, nullcontext) else 'on'}"
          f"{', base stored in bf16' if a.base_bf16 else ''}")
    print(f"stage-1 step: {mean:.3f} s (min {min(times):.3f}, {a.steps} steps), {a.batch / mean:.2f} images/s, "
          f"last loss {loss:.3f}")
    print(f"peak memory: {peak:.2f} GiB ({'CUDA allocated' if cuda else 'process RSS'})")


if __name__ == "__main__":
    main()
