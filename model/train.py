"""The SAM3-I curriculum trainer: `python -m model.train --release R --output O [--set a.b=c]`.

Stage 1 trains the simple route (S-adapters, simple DETR adapters and mask head) on simple
instructions; stage 2 copies it into the complex route and trains the C-adapters (and complex
DETR adapters and mask head) on complex instructions; stage 3 trains every adapter on
the instructions of one target on all tiers it has (concept as the frozen anchor), one forward
per tier in an order that alternates per epoch, adding the InfoNCE (simple vs complex) and
concept-anchor losses where a target has those tiers. The base SAM3 stays frozen.

Checkpoints (under <output>/checkpoints): `latest.pt` every `train.checkpoint_every` steps and at
each stage end (adapters, optimiser, schedule, position), `stage<k>.pt` (adapters only) when a
stage ends. A rerun with the same output resumes from `latest.pt`. Logs: <output>/loss_log.jsonl
and a loss-curve picture per stage, <output>/loss_stage<k>.png.

`--workers N` (N > 1) or `train.ray_address` runs N Ray Train (TorchTrainer) workers: each takes
an equal share of every epoch's items, gradients are averaged over workers before each step, and
rank 0 writes checkpoints and logs (so <output> must be storage all workers' rank 0 can reach).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from model.config import TrainConfig, load_train_config
from model.data import ReleaseData, batches, deal, mask_targets, pixels
from model.losses import LossWeights, alignment_loss, set_loss
from model.sam3i import AdapterConfig, Sam3I, TINY_ADAPTERS, build_model, image_size
from model.tokenizer import tokenize

STAGE_TIERS = {1: ("simple",), 2: ("complex",), 3: ("concept", "simple", "complex")}


# ---- building blocks -------------------------------------------------------------------------------
def adapter_config(cfg: TrainConfig) -> AdapterConfig:
    default = TINY_ADAPTERS if cfg.model.base == "tiny" else AdapterConfig()
    m = cfg.model
    return AdapterConfig(text_bottleneck=m.text_bottleneck or default.text_bottleneck,
                         text_heads=m.text_heads or default.text_heads,
                         detr_bottleneck=m.detr_bottleneck or default.detr_bottleneck)


def make_model(cfg: TrainConfig) -> Sam3I:
    return build_model(cfg.model.base, adapter_config(cfg), cfg.model.seed)


def pick_device(name: str) -> str:
    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def autocast(device: str, bf16: str):
    """bf16 autocast where the device supports it (`auto`), always (`on`) or never (`off`)."""
    dev = device.split(":")[0]
    use = bf16 == "on" or (bf16 == "auto" and dev == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(dev, dtype=torch.bfloat16) if use else nullcontext()


def set_trainable(model: Sam3I, stage: int) -> list[torch.nn.Parameter]:
    mods = model.branch_modules("simple") if stage == 1 else model.branch_modules("complex") if stage == 2 \
        else model.adapter_modules()
    return model.set_trainable(mods)


def make_optimizer(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; biases and norm weights (1-D tensors) get no weight decay."""
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def inverse_sqrt(warmup: int):
    """Linear warm-up to the base rate over `warmup` steps, then base * sqrt(warmup / step)."""
    def f(step: int) -> float:
        s = step + 1
        return s / warmup if s < warmup else math.sqrt(warmup / s)
    return f


class Batcher:
    """Items -> tensors: images at the model's resolution, tokens, targets at the mask resolution."""

    def __init__(self, data: ReleaseData, model: Sam3I, device: str):
        self.data, self.device = data, device
        self.size = image_size(model)
        self.mask_size = int(model.sam3.config.vision_config.backbone_feature_sizes[0][0])
        self._pixels: dict[str, torch.Tensor] = {}
        self._targets: dict = {}

    def image(self, key: str) -> torch.Tensor:
        if key not in self._pixels:
            if len(self._pixels) > 256:          # a small cache; images repeat within a sample's items
                self._pixels.clear()
            self._pixels[key] = pixels(self.data.rgb(key), self.size)
        return self._pixels[key]

    def images(self, items) -> torch.Tensor:
        return torch.stack([self.image(i.key) for i in items]).to(self.device)

    def text(self, items):
        ids, am = tokenize([i.text for i in items])
        return ids.to(self.device), am.to(self.device)

    def targets(self, items) -> list[dict]:
        out = []
        for it in items:
            if it not in self._targets:
                if len(self._targets) > 4096:
                    self._targets.clear()
                h, w = self.data.rgb(it.key).shape[:2] if it.target_ids else (1, 1)
                self._targets[it] = mask_targets(self.data.target_masks(it, h, w), self.mask_size)
            out.append(self._targets[it])
        return out


# ---- state on disk ---------------------------------------------------------------------------------
def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class Run:
    """One training run's folder: latest state, stage checkpoints, loss log, loss pictures."""

    def __init__(self, output: str | Path, rank: int = 0):
        self.out = Path(output)
        self.ckpt = self.out / "checkpoints"
        self.rank = rank

    @property
    def latest(self) -> Path:
        return self.ckpt / "latest.pt"

    def stage_path(self, stage: int) -> Path:
        return self.ckpt / f"stage{stage}.pt"

    def load_latest(self) -> dict | None:
        return torch.load(self.latest, map_location="cpu", weights_only=False) if self.latest.exists() else None

    def save_state(self, model: Sam3I, opt, sched, pos: dict, log: list[dict], cfg: TrainConfig) -> None:
        if self.rank:
            return
        _atomic_save({"adapters": model.adapter_state_dict(), "adapter_config": asdict(model.adapter_config),
                      "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "position": pos,
                      "loss_log": log, "config": cfg.model_dump()}, self.latest)
        self.write_log(log)

    def write_log(self, log: list[dict]) -> None:
        if self.rank:
            return
        tmp = self.out / "loss_log.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in log))
        tmp.replace(self.out / "loss_log.jsonl")

    def plot(self, stage: int, log: list[dict]) -> Path | None:
        if self.rank:
            return None
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [r for r in log if r["stage"] == stage]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        steps, losses = [r["step"] for r in rows], np.array([r["loss"] for r in rows])
        ax.plot(steps, losses, lw=0.8, alpha=0.5, label="per step")
        k = max(1, len(rows) // 20)                             # a running mean shows the trend
        if k > 1:
            smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], smooth, lw=1.8, label=f"mean of {k}")
            ax.legend()
        ax.set_xlabel("step in stage")
        ax.set_ylabel("loss")
        ax.set_title(f"SAM3-I stage {stage} ({'+'.join(STAGE_TIERS[stage])})")
        ax.grid(alpha=0.3)
        path = self.out / f"loss_stage{stage}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


# ---- one step --------------------------------------------------------------------------------------
def stage_loss(model: Sam3I, batcher: Batcher, batch, stage: int, epoch: int, w: LossWeights, amp):
    """The loss of one batch: set loss for stages 1-2; per-target tier groups with alignment losses for stage 3."""
    if stage in (1, 2):
        tier = STAGE_TIERS[stage][0]
        with amp:
            vision = model.vision(batcher.images(batch))
            out = model(tier, *batcher.text(batch), vision_embeds=vision)
        return set_loss(out, batcher.targets(batch), w)
    # stage 3: per target up to one instruction of each tier, all on the same image; one forward
    # per tier (over the targets that have it), in an order alternating per epoch
    order = ("concept", "simple", "complex") if epoch % 2 == 0 else ("complex", "simple", "concept")
    first = [g[1] or g[2] for g in batch]
    targets = batcher.targets(first)                    # the tiers of a group share one target set
    with amp:
        vision = model.vision(batcher.images(first))
    emb, total, parts = {}, 0.0, {}
    for tier in order:
        k = ("concept", "simple", "complex").index(tier)
        rows = [i for i, g in enumerate(batch) if g[k] is not None]
        if not rows:
            continue
        items = [batch[i][k] for i in rows]
        v = vision if len(rows) == len(batch) else vision_rows(vision, rows)
        if tier == "concept":                           # the frozen route: an anchor only
            with amp, torch.no_grad():
                emb[tier] = dict(zip(rows, model(tier, *batcher.text(items), vision_embeds=v)["text_embedding"]))
            continue
        with amp:
            out = model(tier, *batcher.text(items), vision_embeds=v)
        emb[tier] = dict(zip(rows, out["text_embedding"]))
        loss, p = set_loss(out, [targets[i] for i in rows], w)
        total = total + loss
        parts |= {f"{tier}_{n}": v for n, v in p.items()}
    both = [i for i in range(len(batch)) if i in emb.get("simple", {}) and i in emb.get("complex", {})]
    if both:
        s = torch.stack([emb["simple"][i] for i in both])
        c = torch.stack([emb["complex"][i] for i in both])
        anchored = [j for j, i in enumerate(both) if i in emb.get("concept", {})]
        concept = torch.stack([emb["concept"][both[j]] for j in anchored]) if anchored else None
        align, p = alignment_loss(s, c, concept, w, torch.tensor(anchored, dtype=torch.long, device=s.device))
        total = total + align
        parts |= p
    return total, parts


def vision_rows(vision, rows: list[int]):
    """The vision features of some images of the batch (what Sam3Model's forward reads)."""
    return type(vision)(**{k: (tuple(x[rows] for x in v) if isinstance(v, tuple) else v) for k, v in vision.items()})


class progress_bar:
    """A rich progress bar on an interactive terminal (rank 0); otherwise nothing (the log lines
    say the same in files and CI logs)."""

    def __init__(self, rank: int, what: str, total: int, done: int):
        self.p = None
        if rank == 0 and sys.stdout.isatty() and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn())
            self.p.start()
            self.task = self.p.add_task(what, total=total, completed=done, loss="-")

    def advance(self, loss: float) -> None:
        if self.p:
            self.p.update(self.task, advance=1, loss=f"{loss:.3f}")

    def close(self) -> None:
        if self.p:
            self.p.stop()


def average_gradients(params, world: int) -> None:
    if world <= 1:
        return
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world


# ---- the curriculum --------------------------------------------------------------------------------
def run_training(cfg: TrainConfig, rank: int = 0, world: int = 1, data: ReleaseData | None = None,
                 model: Sam3I | None = None, say=print) -> dict:
    """Run (or resume) stages 1 -> 2 -> 3; returns the checkpoint paths and last losses."""
    if cfg.data.release is None and data is None:
        raise ValueError("no release given: set data.release (or --release)")
    device = pick_device(cfg.train.device)
    run = Run(cfg.train.output, rank)
    run.out.mkdir(parents=True, exist_ok=True)
    data = data or ReleaseData(cfg.data.release, cfg.data.split, cfg.data.max_samples)
    model = (model or make_model(cfg)).to(device)
    batcher = Batcher(data, model, device)
    weights = LossWeights(**cfg.loss.model_dump())
    amp = autocast(device, cfg.train.bf16)

    state = run.load_latest()
    log: list[dict] = []
    pos = {"stage": 1, "epoch": 0, "batch": 0, "done": []}
    if state is not None:
        model.load_adapter_state_dict(state["adapters"])
        pos, log = state["position"], state["loss_log"]
        say(f"resuming from {run.latest}: stage {pos['stage']}, epoch {pos['epoch']}, batch {pos['batch']} "
            f"(stages done: {pos['done'] or 'none'})")

    result = {"checkpoints": {}, "output": str(run.out)}
    for stage in (1, 2, 3):
        scfg = getattr(cfg.train, f"stage{stage}")
        if stage in pos["done"]:
            result["checkpoints"][stage] = str(run.stage_path(stage))
            continue
        resuming = state is not None and pos["stage"] == stage and pos["epoch"] + pos["batch"] > 0
        if stage == 2 and not resuming:
            model.copy_simple_into_complex()
        params = set_trainable(model, stage)
        opt = make_optimizer(params, scfg.lr, cfg.train.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, inverse_sqrt(cfg.train.warmup_steps))
        if resuming:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        else:
            pos = {"stage": stage, "epoch": 0, "batch": 0, "done": pos["done"]}
        pool = data.target_groups() if stage == 3 else data.tier_items(STAGE_TIERS[stage])
        if not pool and scfg.epochs:
            raise ValueError(f"{data.release}: stage {stage} has no training items "
                             f"({'targets with a simple or complex instruction' if stage == 3 else STAGE_TIERS[stage][0] + ' instructions'})")
        n_batches = len(batches(deal(pool, 0, rank, world), cfg.data.batch_size)) if scfg.epochs else 0
        say(f"stage {stage} ({'+'.join(STAGE_TIERS[stage])}): {len(pool)} items, {n_batches} batches/epoch "
            f"x {scfg.epochs} epochs on {world} worker(s), {sum(p.numel() for p in params):,} trainable parameters, "
            f"device {device}")
        model.train()
        step_in_stage = sched.last_epoch
        t0 = time.time()
        bar = progress_bar(rank, f"stage {stage}", scfg.epochs * n_batches, step_in_stage)
        for epoch in range(pos["epoch"], scfg.epochs):
            mine = batches(deal(pool, cfg.data.seed * 1000 + stage * 100 + epoch, rank, world), cfg.data.batch_size)
            for b in range(pos["batch"] if epoch == pos["epoch"] else 0, len(mine)):
                loss, parts = stage_loss(model, batcher, mine[b], stage, epoch, weights, amp)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                average_gradients(params, world)
                torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
                opt.step()
                sched.step()
                step_in_stage += 1
                bar.advance(float(loss.detach()))
                log.append({"stage": stage, "epoch": epoch, "step": step_in_stage, "loss": float(loss.detach()),
                            "lr": sched.get_last_lr()[0], **parts})
                if step_in_stage % cfg.train.log_every == 0 or b == len(mine) - 1:
                    say(f"stage {stage} epoch {epoch + 1}/{scfg.epochs} batch {b + 1}/{len(mine)} "
                        f"loss {float(loss.detach()):.4f} lr {sched.get_last_lr()[0]:.2e} "
                        f"({(time.time() - t0) / max(1, step_in_stage - 0):.2f} s/step)")
                nxt = {"stage": stage, "epoch": epoch, "batch": b + 1, "done": pos["done"]}
                if b + 1 == len(mine):
                    nxt = {**nxt, "epoch": epoch + 1, "batch": 0}
                if step_in_stage % cfg.train.checkpoint_every == 0:
                    run.save_state(model, opt, sched, nxt, log, cfg)
            pos = {"stage": stage, "epoch": epoch + 1, "batch": 0, "done": pos["done"]}
        bar.close()
        pos = {"stage": stage + 1, "epoch": 0, "batch": 0, "done": pos["done"] + [stage]}
        if rank == 0:
            model.save_adapters(run.stage_path(stage), {"stage": stage, "config": cfg.model_dump()})
        run.save_state(model, opt, sched, pos, log, cfg)
        picture = run.plot(stage, log)
        state = None
        result["checkpoints"][stage] = str(run.stage_path(stage))
        say(f"stage {stage} done: {run.stage_path(stage)}" + (f", loss curve {picture}" if picture else ""))
    tail = [r for r in log if r["stage"] == 3][-5:] or log[-5:]
    result["final_loss"] = float(np.mean([r["loss"] for r in tail])) if tail else None
    result["steps"] = len(log)
    return result


# ---- Ray Train -------------------------------------------------------------------------------------
def _ray_worker(config: dict) -> None:
    import ray.train

    ctx = ray.train.get_context()
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    cfg = TrainConfig.model_validate(config["cfg"])
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    say = print if rank == 0 else (lambda *_: None)
    result = run_training(cfg, rank, world, say=say)
    # each worker leaves a note of what it did (rank 0 alone writes checkpoints and logs)
    note = Path(cfg.train.output) / "workers" / f"rank-{rank}.json"
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text(json.dumps({"rank": rank, "world_size": world, "steps": result["steps"],
                                "host": os.uname().nodename}))
    ray.train.report({"steps": result["steps"], "final_loss": result["final_loss"] or 0.0, "rank": rank})


def train_with_ray(cfg: TrainConfig) -> dict:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    use_gpu = torch.cuda.is_available() if cfg.train.use_gpu is None else cfg.train.use_gpu
    started = not ray.is_initialized()
    if started:
        ray.init(address=cfg.train.ray_address, include_dashboard=False, log_to_driver=True)
    try:
        out = Path(cfg.train.output).resolve()
        trainer = TorchTrainer(
            _ray_worker, train_loop_config={"cfg": cfg.model_dump()},
            scaling_config=ScalingConfig(num_workers=cfg.train.workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": 1}),
            run_config=RunConfig(name="sam3i-curriculum", storage_path=str(out / "ray")))
        trainer.fit()
    finally:
        if started:
            ray.shutdown()
    run = Run(cfg.train.output)
    log = [json.loads(line) for line in (run.out / "loss_log.jsonl").read_text().splitlines()]
    tail = [r for r in log if r["stage"] == 3][-5:]
    return {"checkpoints": {s: str(run.stage_path(s)) for s in (1, 2, 3)}, "output": str(run.out),
            "final_loss": float(np.mean([r["loss"] for r in tail])) if tail else None, "steps": len(log),
            "workers": cfg.train.workers}


def train(cfg: TrainConfig) -> dict:
    if cfg.train.workers > 1 or cfg.train.ray_address:
        return train_with_ray(cfg)
    return run_training(cfg)


def train_curriculum(release_uri: str, output_dir: str, config: str | None = None,
                     overrides: list[str] | None = None, evaluate: bool = True) -> dict:
    """What the train-curriculum flow calls: train on `release_uri` into `output_dir`, then
    evaluate the final adapters on the release's val split (when it has one)."""
    cfg = load_train_config(config, list(overrides or []) + [f"data.release={release_uri}",
                                                              f"train.output={output_dir}"])
    result = train(cfg)
    if evaluate:
        from model.evaluate import evaluate_release

        try:
            result["evaluation"] = evaluate_release(cfg, result["checkpoints"][3], split=cfg.data.eval_split,
                                                    json_path=str(Path(output_dir) / "evaluation.json"),
                                                    max_samples=cfg.data.max_samples)
        except ValueError as e:            # e.g. a release without a val split
            result["evaluation"] = {"skipped": str(e)}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML training config (see model/config.py)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.stage1.epochs=2 (repeatable)")
    p.add_argument("--release", help="release folder or s3:// URI (= data.release)")
    p.add_argument("--output", help="run folder (= train.output); rerun to resume")
    p.add_argument("--workers", type=int, help="Ray Train workers (= train.workers)")
    a = p.parse_args(argv)
    extra = ([f"data.release={a.release}"] if a.release else []) + ([f"train.output={a.output}"] if a.output else []) \
        + ([f"train.workers={a.workers}"] if a.workers else [])
    try:
        cfg = load_train_config(a.config, a.overrides + extra)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = train(cfg)
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
