"""train-curriculum: the SAM3-I three-stage curriculum on a published release.

Stage 1 trains the S-adapter on simple instructions, stage 2 the C-adapter on complex ones,
stage 3 all adapters on every tier (SAM3I_REFERENCE.md, "The curriculum"). This flow opens the
release, re-hashes its files against `_RELEASE.json`, counts the samples each stage would see,
writes the plan as JSON, and hands it to `model.train.train_curriculum(release_uri, ...)` (the
SAM3-I trainer in model/, with the training YAML `config` and dotted `overrides`), which trains the
three stages and evaluates the result on the release's val split. The stage checkpoints and the
evaluation table are published as Prefect artifacts (`train-curriculum`, `train-curriculum-eval`).
When no trainer is importable (a deployment without the `train` extra) it says so plainly.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from engine import storage

TRAINER_MODULE = "model.train"
TRAINER_FUNCTION = "train_curriculum"
# (stage, tiers, adapters trained, epochs, adapter learning rate) from the SAM3-I paper.
STAGES = (
    (1, ("simple",), "S-adapter", 8, 6.4e-4),
    (2, ("complex",), "C-adapter (stacked on S)", 8, 6.4e-4),
    (3, ("concept", "simple", "complex"), "all adapters", 4, 1.6e-4),
)


def curriculum_plan(release) -> dict:
    """Samples per stage from the release manifest (one row per accepted instruction)."""
    m = release.manifest
    if len(m) != release.counts.get("instructions", len(m)):
        raise ValueError(f"{release.uri}: manifest has {len(m)} rows but _RELEASE.json counts "
                         f"{release.counts.get('instructions')} instructions; the release is inconsistent")
    stages = []
    for n, tiers, trains, epochs, lr in STAGES:
        rows = m[m["tier"].isin(tiers)]
        stages.append({
            "stage": n, "tiers": list(tiers), "trains": trains, "epochs": epochs, "adapter_lr": lr,
            "instructions": int(len(rows)),
            "by_split": {s: int((rows["split"] == s).sum()) for s in ("train", "val")},
            "images": int(rows["image_id"].nunique()),
            "by_cardinality": {str(k): int(v) for k, v in sorted(rows["cardinality"].value_counts().items())},
        })
    return {"release_uri": release.uri, "release_id": release.release_id, "stages": stages}


def find_trainer():
    """`model.train.train_curriculum` if installed, else None."""
    try:
        if importlib.util.find_spec(TRAINER_MODULE) is None:
            return None
    except ModuleNotFoundError:
        return None
    return getattr(importlib.import_module(TRAINER_MODULE), TRAINER_FUNCTION, None)


def call_trainer(trainer, release_uri: str, plan: dict, output_dir: str, config: str | None = None,
                 overrides: list[str] | None = None):
    """Pass the keyword arguments the trainer accepts (its signature may grow)."""
    offered = {"plan": plan, "output_dir": output_dir, "stages": plan["stages"], "config": config,
               "overrides": list(overrides or [])}
    params = inspect.signature(trainer).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return trainer(release_uri, **{k: v for k, v in offered.items() if takes_any or k in params})


@task(name="plan curriculum", cache_policy=NO_CACHE)
def plan_task(release_uri: str, verify: bool = True) -> dict:
    """Open the release, re-hash its files against _RELEASE.json (`verify`), count per stage."""
    from engine.release.publish import open_release

    release = open_release(release_uri)
    if verify:
        problems = release.verify_checksums()
        if problems:
            shown = "\n".join(f"  {p}" for p in problems[:20])
            raise ValueError(f"{release_uri}: {len(problems)} file(s) do not match the checksums in _RELEASE.json; "
                             f"refusing to train on a damaged release:\n{shown}")
    plan = curriculum_plan(release)
    plan["checksums_verified"] = verify
    return plan


def plan_markdown(plan: dict) -> str:
    lines = [f"# Training plan for release `{plan['release_id']}`", "", f"- release: `{plan['release_uri']}`",
             f"- status: **{plan['status']}**", f"- plan file: `{plan['plan_uri']}`", "",
             "| stage | tiers | trains | epochs | instructions (train/val) | images |", "|---|---|---|---|---|---|"]
    for s in plan["stages"]:
        lines.append(f"| {s['stage']} | {', '.join(s['tiers'])} | {s['trains']} | {s['epochs']} | "
                     f"{s['instructions']} ({s['by_split']['train']}/{s['by_split']['val']}) | {s['images']} |")
    result = plan.get("trainer_result")
    if isinstance(result, dict) and result.get("checkpoints"):
        lines += ["", "## Checkpoints (adapters only)", ""]
        lines += [f"- stage {k}: `{v}`" for k, v in sorted(result["checkpoints"].items())]
        lines += [f"- run folder (loss log, loss curves `loss_stage<k>.png`): `{result.get('output')}`"]
    table = eval_rows(plan)
    if table:
        lines += ["", f"## Evaluation on the `{result['evaluation'].get('split')}` split", "",
                  "| group | samples | gIoU | cIoU | P@0.5 | no-target acc |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['group']} | {r['samples']} | {r['gIoU']} | {r['cIoU']} | {r['P@0.5']} | {r['no-target acc']} |"
                  for r in table]
    return "\n".join(lines) + "\n"


def eval_rows(plan: dict) -> list[dict]:
    """The trainer's evaluation table as artifact rows (percentages), or [] when there is none."""
    result = plan.get("trainer_result")
    table = (result or {}).get("evaluation", {}).get("table") if isinstance(result, dict) else None
    if not table:
        return []

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}"

    return [{"group": g, "samples": m["samples"], "gIoU": pct(m.get("gIoU")), "cIoU": pct(m.get("cIoU")),
             "P@0.5": pct(m.get("P@0.5")), "no-target acc": pct(m.get("no_target_accuracy"))}
            for g, m in table.items()]


def write_plan(plan: dict) -> None:
    storage.write_bytes(plan["plan_uri"], json.dumps(plan, indent=1, sort_keys=True, default=repr).encode())


@flow(name="train-curriculum", log_prints=True)
def train_curriculum(release_uri: str, output: str | None = None, verify: bool = True, config: str | None = None,
                     overrides: list[str] | None = None) -> dict:
    """Plan and run the curriculum on `release_uri`.

    `output` is where the plan (and the trainer's checkpoints) go; default
    `.sam3i-train/<release_id>` under the current directory. The release itself is immutable.
    `verify` re-hashes every release file first (a damaged release is refused). `config` (a
    training YAML) and `overrides` (["train.stage1.epochs=2", ...]) go to model.train.
    """
    log = get_run_logger()
    plan = plan_task(release_uri, verify)
    out = output or os.path.abspath(os.path.join(".sam3i-train", plan["release_id"]))
    plan["plan_uri"] = storage.join(out, "training_plan.json")
    trainer = find_trainer()
    if trainer is None:
        plan["status"] = (f"no trainer installed ({TRAINER_MODULE}.{TRAINER_FUNCTION} not found): "
                          f"plan written, nothing trained")
    else:
        plan["status"] = f"trainer {TRAINER_MODULE}.{TRAINER_FUNCTION} running"
    write_plan(plan)
    for s in plan["stages"]:
        log.info(f"stage {s['stage']} ({'+'.join(s['tiers'])}, {s['trains']}): {s['instructions']} instructions "
                 f"on {s['images']} images")
    if trainer is None:
        log.warning(f"No trainer is installed: {TRAINER_MODULE}.{TRAINER_FUNCTION} does not exist yet. "
                    f"The plan is at {plan['plan_uri']}; nothing was trained.")
    else:
        log.info(f"calling {TRAINER_MODULE}.{TRAINER_FUNCTION}({release_uri!r}, ...)")
        try:
            result = call_trainer(trainer, release_uri, plan, out, config, overrides)
        except Exception as e:
            plan["status"] = f"trainer {TRAINER_MODULE}.{TRAINER_FUNCTION} failed: {type(e).__name__}: {e}"
            write_plan(plan)
            raise
        json_like = isinstance(result, (dict, list, str, int, float, type(None)))
        plan["trainer_result"] = result if json_like else repr(result)
        plan["status"] = f"trainer {TRAINER_MODULE}.{TRAINER_FUNCTION} called and returned"
        write_plan(plan)
    create_markdown_artifact(plan_markdown(plan), key="train-curriculum", description=plan["status"])
    rows = eval_rows(plan)
    if rows:
        create_table_artifact(rows, key="train-curriculum-eval",
                              description=f"SAM3-I evaluation of release {plan['release_id']}")
    return plan
