"""Shared helpers of the performance benches (issue 16): replicated COCO sets, timing of a
command run in a fresh process, peak memory of that process.

A replicated set copies coco-sample's images and annotations `copies` times with new image,
annotation and file ids (copy k of image i gets id k * STRIDE + i), so a 900-image set behaves
like 900 distinct images to every stage (different ids, units and sample keys) while its
photos stay the real ones. Sets are generated under /tmp and never committed.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# SAM3I_SAMPLE_DATA (as in tests/release_data.py): the shared data folder when this checkout
# does not sit beside it (a git worktree elsewhere)
COCO_SAMPLE = Path(os.environ.get("SAM3I_SAMPLE_DATA", REPO.parent / "shared" / "data")) / "coco-sample"
STRIDE = 10_000_000


def replicate(n_images: int, dest: str | Path, source: Path = COCO_SAMPLE, start_copy: int = 0) -> Path:
    """Write a COCO folder (instances.json + images/) of `n_images` images made from `source`.

    Copies k = start_copy, start_copy + 1, ... are appended until n_images are written; a later
    call with a higher start_copy makes images that are new to an earlier set (refresh bench)."""
    dest = Path(dest)
    doc = json.loads((source / "instances.json").read_text())
    images = sorted(doc["images"], key=lambda r: r["id"])
    anns: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    (dest / "images").mkdir(parents=True, exist_ok=True)
    out_images, out_anns = [], []
    k = start_copy
    while len(out_images) < n_images:
        for rec in images:
            if len(out_images) >= n_images:
                break
            new_id = k * STRIDE + rec["id"]
            name = f"c{k:04d}_{rec['file_name']}"
            target = dest / "images" / name
            if not target.exists():
                shutil.copyfile(source / "images" / rec["file_name"], target)
            out_images.append({**rec, "id": new_id, "file_name": name})
            for a in anns.get(rec["id"], []):
                out_anns.append({**a, "id": k * STRIDE + a["id"], "image_id": new_id})
        k += 1
    doc = {**doc, "images": out_images, "annotations": out_anns}
    (dest / "instances.json").write_text(json.dumps(doc))
    return dest


def extend(dest: str | Path, n_new: int, source: Path = COCO_SAMPLE) -> None:
    """Append n_new images (copies with ids above every existing one) to a replicated set."""
    dest = Path(dest)
    doc = json.loads((dest / "instances.json").read_text())
    next_copy = max(r["id"] for r in doc["images"]) // STRIDE + 1
    extra_dir = Path(tempfile.mkdtemp(prefix="bench-extra-", dir=dest.parent))
    try:
        add = json.loads((replicate(n_new, extra_dir, source, start_copy=next_copy) / "instances.json").read_text())
        for rec in add["images"]:
            os.replace(extra_dir / "images" / rec["file_name"], dest / "images" / rec["file_name"])
    finally:
        shutil.rmtree(extra_dir, ignore_errors=True)
    doc["images"] += add["images"]
    doc["annotations"] += add["annotations"]
    (dest / "instances.json").write_text(json.dumps(doc))


def env_for(repo: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Prefect's temporary server gets 20 s to start by default: too short on a loaded 2-core machine
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    return env


def python(repo: Path) -> str:
    venv = repo / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def timed(cmd: list[str], repo: Path = REPO, cwd: Path | None = None, quiet: bool = True) -> tuple[float, float, float]:
    """Run a command in a fresh process: (wall seconds, children's CPU seconds, child's peak RSS MB
    as the kernel's ru_maxrss of the waited child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd or repo, env=env_for(repo),
                          stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (proc.stdout or b"").decode(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
