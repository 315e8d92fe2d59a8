"""Verifying a release that lives on a real S3-compatible server (SeaweedFS `weed mini`)."""
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from engine import storage
from engine.verify.cli import main
from tests.s3_server import s3_env, s3_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def upload_release(local: str, uri: str) -> None:
    files = sorted(p for p in Path(local).rglob("*") if p.is_file())
    marker = Path(local) / "_RELEASE.json"
    for p in [f for f in files if f != marker] + [marker]:   # the marker last, as a build publishes
        storage.upload_file(p, storage.join(uri, p.relative_to(local).as_posix()))


def test_verify_an_s3_release_keeps_verdicts_locally(s3_env, release_uri, tmp_path, monkeypatch):
    uri = f"s3://{s3_env}/releases/v1"
    upload_release(release_uri, uri)
    monkeypatch.chdir(tmp_path)
    buf = io.StringIO()
    rc = main([uri, "--per-stratum", "2", "--integrity"], console=Console(file=buf, width=200))
    assert rc == 0, buf.getvalue()
    vdir = tmp_path / ".sam3i-verify" / "s3" / s3_env / "releases" / "v1"
    summary = json.loads((vdir / "report" / "summary.json").read_text())
    assert summary["integrity"]["problems"] == [] and summary["integrity"]["full"]
    # the SAM3-I / SA-Co files were read from S3 and conform
    conformance = summary["integrity"]["conformance"]["files"]
    assert any(p.startswith("sam3i/stage3/") for p in conformance) and "saco/saco_train.json" in conformance
    assert summary["sample"]["items"]

    template = (vdir / "report" / "labels_template.csv").read_text().splitlines()
    header = template[0].split(",")
    filled = tmp_path / "labels.csv"
    filled.write_text("item_id,verdict\n" + "".join(f"{line.split(',')[header.index('item_id')]},correct\n"
                                                  for line in template[1:]))
    buf = io.StringIO()
    rc = main([uri, "--per-stratum", "2", "--labels", str(filled), "--gate", "0.5"],
              console=Console(file=buf, width=200))
    assert rc == 0, buf.getvalue()
    assert (vdir / "verdicts.jsonl").exists()
    objects = storage.list_prefix(uri)
    assert not any("verify" in o or "verdict" in o for o in objects)   # nothing written into the release
