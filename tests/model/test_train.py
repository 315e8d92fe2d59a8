"""The curriculum trainer on a real release (engine build of ../shared/data/coco-sample), tiny
SAM3 on CPU: stages 1 -> 2 -> 3 from `python -m model.train`, a kill mid-stage and a resume from
the last checkpoint, the evaluator, config errors, and two Ray Train workers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from model.config import load_train_config
from model.data import ReleaseData
from model.train import inverse_sqrt, make_optimizer

REPO = Path(__file__).resolve().parents[2]
SMALL = ["data.max_samples=3", "train.stage1.epochs=1", "train.stage2.epochs=1", "train.stage3.epochs=1",
         "train.log_every=1"]


def cli(module: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def sets(items: list[str]) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def log_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "loss_log.jsonl").read_text().splitlines()]


def steps_expected(release: str) -> dict[int, int]:
    data = ReleaseData(release, "train", 3)
    per = {1: len(data.tier_items(("simple",))), 2: len(data.tier_items(("complex",))), 3: len(data.target_groups())}
    return {k: -(-n // 2) for k, n in per.items()}          # batch size 2, one epoch each


def test_three_stages_end_to_end_from_the_cli_then_evaluate(coco_release, tmp_path):
    out = tmp_path / "run"
    r = cli("model.train", "--release", coco_release, "--output", str(out), *sets(SMALL))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(r.stdout[r.stdout.index("{\n"):])
    for stage in (1, 2, 3):
        ckpt = torch.load(result["checkpoints"][str(stage)], weights_only=False)
        assert ckpt["stage"] == stage and not any(k.startswith("sam3.") for k in ckpt["adapters"])
        assert (out / f"loss_stage{stage}.png").stat().st_size > 1000
    log = log_of(out)
    want = steps_expected(coco_release)
    assert {s: sum(r["stage"] == s for r in log) for s in (1, 2, 3)} == want
    stage3 = [r for r in log if r["stage"] == 3]
    assert any("infonce" in r and "anchor" in r for r in stage3) and any("complex_mask_dice" in r for r in stage3)
    # stage 2 started from stage 1: its cascade's S equals stage 1's S
    s1 = torch.load(out / "checkpoints/stage1.pt", weights_only=False)["adapters"]
    s2 = torch.load(out / "checkpoints/stage2.pt", weights_only=False)["adapters"]
    assert all(torch.equal(s1[k], s2[k.replace("text_s.", "text_cs.", 1)]) for k in s1 if k.startswith("text_s."))
    assert not all(torch.equal(s1[k], s2[k]) for k in s1 if k.startswith("text_c."))       # C trained in stage 2

    js = tmp_path / "eval.json"
    r = cli("model.evaluate", "--release", coco_release, "--adapters", str(out / "checkpoints/stage3.pt"),
            "--json", str(js), "--max-samples", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "gIoU" in r.stdout and "tier=complex" in r.stdout
    table = json.loads(js.read_text())["table"]
    val = ReleaseData(coco_release, "val", 2)
    assert table["all"]["samples"] == len(val.items)
    assert {f"tier={t}" for t in ("concept", "simple", "complex")} <= set(table)
    assert table["cardinality=negative"]["negatives"] == sum(i.cardinality == "negative" for i in val.items)


def test_a_killed_run_resumes_from_its_last_checkpoint(coco_release, tmp_path):
    out = tmp_path / "run"
    args = ["--release", coco_release, "--output", str(out),
            *sets(SMALL + ["train.stage1.epochs=2", "train.stage3.epochs=0", "train.checkpoint_every=2"])]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "model.train", *args], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    latest = out / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + 180
    try:
        while not (latest.exists() and torch.load(latest, weights_only=False)["position"]["stage"] == 1
                   and len(torch.load(latest, weights_only=False)["loss_log"]) >= 4):
            assert p.poll() is None, p.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "no mid-stage checkpoint appeared"
            time.sleep(0.2)
    finally:
        os.killpg(p.pid, signal.SIGKILL)                   # a hard kill, mid-stage 1
        p.wait()
    saved = torch.load(latest, weights_only=False)
    done_steps = len(saved["loss_log"])
    assert saved["position"]["stage"] == 1 and not (out / "checkpoints/stage1.pt").exists()

    r = cli("model.train", *args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    pos = saved["position"]
    assert f"resuming from {latest}: stage 1, epoch {pos['epoch']}, batch {pos['batch']}" in r.stdout
    log = log_of(out)
    want = steps_expected(coco_release)
    want[1] *= 2
    want[3] = 0
    assert {s: sum(r["stage"] == s for r in log) for s in (1, 2, 3)} == want     # no step lost or repeated
    assert [r["step"] for r in log if r["stage"] == 1] == list(range(1, want[1] + 1))
    assert log[:done_steps] == saved["loss_log"]
    assert (out / "checkpoints/stage3.pt").exists()          # a stage of 0 epochs still leaves its checkpoint
    # a finished run reruns as a no-op
    r = cli("model.train", *args)
    assert r.returncode == 0 and "stages done: [1, 2, 3]" in r.stdout and len(log_of(out)) == len(log)


def test_two_ray_train_workers_on_cpu(coco_release, tmp_path):
    out = tmp_path / "ray-run"
    r = cli("model.train", "--release", coco_release, "--output", str(out), "--workers", "2",
            *sets(["data.max_samples=4", "train.stage1.epochs=1", "train.stage2.epochs=0", "train.stage3.epochs=0",
                   "data.batch_size=2"]), timeout=400)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    both = r.stdout + r.stderr
    assert "on 2 worker(s)" in both
    n_items = len(ReleaseData(coco_release, "train", 4).tier_items(("simple",)))
    log = log_of(out)
    assert len(log) == -(-(n_items // 2) // 2)                       # each worker: half the items, batch 2
    notes = sorted(json.loads(p.read_text())["rank"] for p in (out / "workers").glob("rank-*.json"))
    assert notes == [0, 1]                                           # both workers trained
    assert all(json.loads(p.read_text())["steps"] == len(log) for p in (out / "workers").glob("rank-*.json"))
    first = torch.load(out / "checkpoints/stage1.pt", weights_only=False)["adapters"]
    assert any(v.abs().sum() > 0 for k, v in first.items() if k.startswith("text_s.") and "mlp.up.weight" in k)


def test_config_file_overrides_and_errors(tmp_path):
    y = tmp_path / "t.yaml"
    y.write_text("train:\n  stage1: {epochs: 2, lr: 0.001}\ndata: {batch_size: 4}\n")
    cfg = load_train_config(y, ["train.stage2.epochs=3"])
    assert (cfg.train.stage1.epochs, cfg.train.stage1.lr, cfg.train.stage2.epochs, cfg.train.stage3.epochs) == (2, 1e-3, 3, 4)
    assert cfg.data.batch_size == 4
    with pytest.raises(ValueError):
        load_train_config(None, ["train.stage1.epochs=-1"])
    with pytest.raises(ValueError):
        load_train_config(None, ["train.nonsense=1"])
    r = cli("model.train", "--set", "train.bogus=1", timeout=120)
    assert r.returncode == 2 and "bogus" in r.stderr


def test_optimizer_skips_decay_on_biases_and_norms_and_schedule_is_inverse_sqrt():
    lin, norm = torch.nn.Linear(3, 3), torch.nn.LayerNorm(3)
    opt = make_optimizer(list(lin.parameters()) + list(norm.parameters()), 1e-3, 0.1)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and [p.shape for p in decay["params"]] == [(3, 3)]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3
    f = inverse_sqrt(4)
    assert [round(f(s), 3) for s in (0, 1, 3, 15, 63)] == [0.25, 0.5, 1.0, 0.5, 0.25]
