"""Shared fixtures for model/ tests: a release built by the engine from the real COCO sample."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SAMPLE = Path(os.environ.get("SAM3I_SAMPLE_DATA", REPO.parent / "shared" / "data")) / "coco-sample"


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # the machine is small and shared: one intra-op thread is faster than two fighting
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def coco_release(tmp_path_factory) -> str:
    """A real release: engine.build over ../shared/data/coco-sample (30 photos, human masks)."""
    from engine.build import build, engine_config, sources_of

    out = tmp_path_factory.mktemp("coco-release") / "release"
    build(sources_of(str(SAMPLE)), str(out), engine_config(None, None), tmp_path_factory.mktemp("work"))
    return str(out)
