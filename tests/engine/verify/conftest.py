"""A release built once per session from the real coco-sample (engine.build, embedded defaults),
shared read-only by the verify tests; tests that change it work on a copy."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from engine.build import build
from engine.config import load_config
from engine.sources.ingest import resolve_source

REPO = Path(__file__).resolve().parents[3]
COCO_SAMPLE = Path(os.environ.get("SAM3I_SAMPLE_DATA", REPO.parent / "shared" / "data")) / "coco-sample"


@pytest.fixture(scope="session")
def release_uri(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("verify-release")
    out = str(root / "release")
    res = build([resolve_source(str(COCO_SAMPLE))], out, load_config(), workdir=root / "work")
    return res.release_uri


@pytest.fixture
def release_copy(release_uri, tmp_path) -> str:
    """A private copy of the session release (to corrupt, or to keep verdicts apart)."""
    dest = tmp_path / "release"
    shutil.copytree(release_uri, dest)
    return str(dest)


@pytest.fixture(scope="session")
def release_with_rejections(tmp_path_factory) -> str:
    """Like release_uri, but the complex tier must also pass a checker this build lacks, so every
    complex candidate is rejected (rejected.parquet is not empty)."""
    root = tmp_path_factory.mktemp("verify-release-rejected")
    cfg = load_config(None, ["check.policy.complex=[program, no_category_noun, sam3i]", "check.max_rounds=1"])
    res = build([resolve_source(str(COCO_SAMPLE))], str(root / "release"), cfg, workdir=root / "work")
    return res.release_uri


@pytest.fixture(scope="session")
def mixed_format_release(tmp_path_factory) -> str:
    """A release (engine.build, embedded defaults) of coco-sample re-encoded as JPEG, PNG and WEBP."""
    from tests.release_data import mixed_format_source

    root = tmp_path_factory.mktemp("mixed-release")
    src = mixed_format_source(root / "src")
    res = build([resolve_source(str(src))], str(root / "release"), load_config(), workdir=root / "work")
    return res.release_uri
