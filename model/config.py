"""The trainer's configuration: YAML file + dotted `--set a.b=c` overrides, as the engine's.

    cfg = load_train_config("train.yaml", ["train.stage1.epochs=2", "data.batch_size=4"])
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from model.data import apply_overrides


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Section):
    base: str = Field("tiny", description="'tiny' / 'full' (random weights) or a local facebook/sam3 folder")
    seed: int = 0
    text_bottleneck: int | None = Field(None, description="None = 64 (16 for tiny)")
    text_heads: int | None = None
    detr_bottleneck: int | None = None


class DataSection(_Section):
    release: str | None = Field(None, description="release folder or s3:// URI")
    split: str = "train"
    eval_split: str = "val"
    batch_size: int = Field(2, gt=0)
    max_samples: int | None = Field(None, gt=0, description="use only the first N images (tests, overfitting)")
    seed: int = 0


class StageSection(_Section):
    epochs: int = Field(..., ge=0)
    lr: float = Field(..., gt=0)


class TrainSection(_Section):
    stage1: StageSection = StageSection(epochs=8, lr=6.4e-4)
    stage2: StageSection = StageSection(epochs=8, lr=6.4e-4)
    stage3: StageSection = StageSection(epochs=4, lr=1.6e-4)
    weight_decay: float = 0.1
    grad_clip: float = 0.1
    warmup_steps: int = Field(20, ge=1)
    checkpoint_every: int = Field(100, gt=0, description="steps between resumable checkpoints")
    bf16: Literal["auto", "on", "off"] = "auto"
    device: str = "auto"
    workers: int = Field(1, ge=1, description="Ray Train workers; >1 (or ray_address) uses TorchTrainer")
    ray_address: str | None = None
    use_gpu: bool | None = Field(None, description="Ray workers get a GPU (default: when CUDA is available)")
    output: str = "out/train"
    log_every: int = Field(10, gt=0)


class LossSection(_Section):
    cls: float = 2.0
    presence: float = 1.0
    box_l1: float = 5.0
    giou: float = 2.0
    mask_focal: float = 20.0
    mask_dice: float = 1.0
    semantic: float = 1.0
    infonce: float = 1.0
    anchor: float = 1.0
    temperature: float = 0.1
    margin: float = 0.2


class TrainConfig(_Section):
    model: ModelSection = ModelSection()
    data: DataSection = DataSection()
    train: TrainSection = TrainSection()
    loss: LossSection = LossSection()


def _merge(base: dict, over: dict) -> dict:
    for k, v in over.items():
        base[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return base


def load_train_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    data = TrainConfig().model_dump()
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        data = _merge(data, loaded)
    return TrainConfig.model_validate(apply_overrides(data, overrides or []))
