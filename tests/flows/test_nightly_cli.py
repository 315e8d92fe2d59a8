"""`python -m flows.nightly_refresh` has a command line (issue 16): it publishes a release under
<output>/releases/ and points LATEST.json at it, publishes nothing when nothing changed, and a
refresh with a new image carries the unchanged shards over. Runs on the in-process path
(no Prefect server; one unit, so no Ray); bad arguments fail before any work."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.release.publish import open_release
from tests.coco_fixtures import COCO_SAMPLE, load_sample, make_case
from tests.flows.test_resume_after_kill import cli_env

REPO = Path(__file__).resolve().parents[2]


def _refresh(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.nightly_refresh", *args], cwd=tmp_path,
                          env=cli_env(tmp_path), capture_output=True, text=True, timeout=600)


def test_nightly_refresh_command_line(tmp_path):
    case = make_case(tmp_path, n_images=6, name="src")
    case.write()
    out, wd = tmp_path / "nightly", tmp_path / "work"
    args = ["--source", str(case.root), "--output", str(out), "--workdir", str(wd),
            "--set", "ingest.unit_size=2", "--set", "release.val_fraction=0.0", "--set", "ray.min_units=10"]

    first = _refresh(tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    latest = json.loads((out / "LATEST.json").read_text())
    assert Path(latest["uri"]).parent == out / "releases" and "published release" in first.stdout
    r1 = open_release(latest["uri"])

    again = _refresh(tmp_path, *args)
    assert again.returncode == 0 and "nothing published" in again.stdout
    assert json.loads((out / "LATEST.json").read_text()) == latest

    # a new image (id above the others) arrives: a new release, earlier full shards carried over
    full = load_sample(COCO_SAMPLE)
    new = min((r for r in full["images"] if r["id"] > max(i["id"] for i in case.images)), key=lambda r: r["id"])
    shutil.copyfile(COCO_SAMPLE / "images" / new["file_name"], case.images_dir / new["file_name"])
    case.images.append(new)
    case.annotations.extend(a for a in full["annotations"] if a["image_id"] == new["id"])
    case.write()
    third = _refresh(tmp_path, *args)
    assert third.returncode == 0, third.stderr[-3000:]
    latest3 = json.loads((out / "LATEST.json").read_text())
    assert latest3["release_id"] != latest["release_id"]
    r3 = open_release(latest3["uri"])
    assert r3.verify_checksums() == []
    old = {s["content"]: s["url"] for s in r1.index["shardlist"]}
    carried = [s for s in r3.index["shardlist"] if s["content"] in old]
    assert carried, "no shard was carried over"
    for s in carried:
        assert os.stat(Path(r3.uri) / s["url"]).st_ino == os.stat(Path(r1.uri) / old[s["content"]]).st_ino


def test_bad_arguments_fail_before_any_work(tmp_path):
    res = _refresh(tmp_path, "--source", str(tmp_path / "missing"), "--output", str(tmp_path / "o"))
    assert res.returncode == 2 and "missing" in res.stderr
    assert not (tmp_path / "o").exists()
    res = _refresh(tmp_path, "--output", str(tmp_path / "o"))
    assert res.returncode == 2 and "--source" in res.stderr
