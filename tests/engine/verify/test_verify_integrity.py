import io
import json
import tarfile
from pathlib import Path

from rich.console import Console

from engine.release.publish import open_release
from engine.verify.cli import main
from engine.verify.integrity import check_release, check_sample
from engine.verify.sample import SampleSpec, draw


def run_cli(*args) -> tuple[int, str]:
    buf = io.StringIO()
    rc = main([str(a) for a in args], console=Console(file=buf, width=250))
    return rc, buf.getvalue()


def members(shard: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(shard) as tar:
        return tar.getmembers()


def biggest_shard(release: str) -> Path:
    return max((Path(release) / "shards").glob("*.tar"), key=lambda p: p.stat().st_size)


def test_intact_release_passes_sampled_and_full_checks(release_uri, tmp_path):
    rc, text = run_cli(release_uri, "--per-stratum", 3, "--out", tmp_path / "a", "--verdicts", tmp_path / "v")
    assert rc == 0 and "integrity (sampled shards): OK" in text
    rc, text = run_cli(release_uri, "--per-stratum", 3, "--integrity", "--out", tmp_path / "b", "--verdicts", tmp_path / "v")
    assert rc == 0 and "integrity (full): OK" in text
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    rel = open_release(release_uri)
    assert summary["integrity"]["rows_checked"] == len(rel.manifest)
    assert len(summary["integrity"]["shards_checked"]) == len(rel.index["shardlist"])


def test_flipped_bytes_in_an_image_are_detected(release_copy, tmp_path):
    shard = biggest_shard(release_copy)
    jpg = next(m for m in members(shard) if m.name.endswith(".jpg"))
    data = bytearray(shard.read_bytes())
    at = jpg.offset_data + jpg.size // 2
    data[at:at + 16] = bytes(b ^ 0xFF for b in data[at:at + 16])
    shard.write_bytes(bytes(data))
    rel_path = f"shards/{shard.name}"
    # the full check always reads every shard
    rc, text = run_cli(release_copy, "--per-stratum", 1, "--integrity", "--out", tmp_path / "a")
    assert rc == 4, text
    assert f"{rel_path}: sha256" in text and "differs from index.json" in text
    # the default check reads the shards of the sample, which include this one
    rel = open_release(release_copy)
    assert rel_path in set(draw(rel.manifest, rel.release_id, SampleSpec(per_stratum=3)).items["shard"])
    rc, text = run_cli(release_copy, "--per-stratum", 3, "--out", tmp_path / "b")
    assert rc == 4 and f"{rel_path}: sha256" in text
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert any(rel_path in p for p in summary["integrity"]["problems"])
    assert "problem(s)" in (tmp_path / "b" / "report.html").read_text()


def test_a_mask_of_the_wrong_size_is_detected(release_copy, tmp_path):
    shard = biggest_shard(release_copy)
    member = next(m for m in members(shard) if m.name.endswith(".json"))
    data = bytearray(shard.read_bytes())
    body = bytes(data[member.offset_data:member.offset_data + member.size])
    meta = json.loads(body)
    h = meta["image"]["height"]
    old = f'"size":[{h},'.encode()
    assert old in body
    new = f'"size":[{h + 1 if h < 999 else h - 1},'.encode()[:len(old)]  # same length: the tar stays valid
    assert len(new) == len(old)
    body = body.replace(old, new, 1)
    data[member.offset_data:member.offset_data + member.size] = body
    shard.write_bytes(bytes(data))
    key = member.name.split(".")[0]
    rc, text = run_cli(release_copy, "--per-stratum", 1, "--integrity", "--out", tmp_path / "a")
    assert rc == 4
    assert f"sample {key}" in text and "mask does not decode to the image size" in text


def test_an_unreadable_json_member_is_reported_once(release_copy, tmp_path):
    """A damaged sample is one problem (plus the checksum), not one more per manifest row in it."""
    shard = biggest_shard(release_copy)
    member = next(m for m in members(shard) if m.name.endswith(".json"))
    data = bytearray(shard.read_bytes())
    data[member.offset_data + member.size // 2] = 0xFF      # invalid UTF-8, same length
    shard.write_bytes(bytes(data))
    key = member.name.split(".")[0]
    rows = open_release(release_copy).manifest
    assert (rows["sample_key"] == key).sum() > 0
    rc, _ = run_cli(release_copy, "--per-stratum", 1, "--integrity", "--out", tmp_path / "a")
    assert rc == 4
    problems = json.loads((tmp_path / "a" / "summary.json").read_text())["integrity"]["problems"]
    about_key = [p for p in problems if key in p]
    assert len(about_key) == 1 and "json member is unreadable" in about_key[0], about_key
    assert any("differs from index.json" in p for p in problems)


def test_truncated_shard_and_missing_rows_are_reported(release_copy, tmp_path):
    shard = biggest_shard(release_copy)
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
    rc, text = run_cli(release_copy, "--per-stratum", 1, "--integrity", "--out", tmp_path / "a")
    assert rc == 4 and f"shards/{shard.name}" in text
    assert "samples, index.json says" in text or "unreadable" in text


def test_a_row_missing_from_its_shard_is_reported(release_uri):
    rel = open_release(release_uri)
    s = draw(rel.manifest, rel.release_id, SampleSpec(per_stratum=2))
    items = s.items.copy()
    items.loc[0, "sample_key"] = "no-such-key"
    report, _ = check_release(rel, items, rel.manifest)
    assert any(f"instruction {items.loc[0, 'instruction_id']}: sample no-such-key is missing" in p
               for p in report.problems)


def test_check_sample_names_each_problem():
    meta = {"image": {"image_id": "x:1", "width": 4, "height": 3},
            "instances": [{"instance_id": "x:9", "segmentation": {"size": [4, 3], "counts": "0"}}], "targets": []}
    data, problems = check_sample("shards/t.tar", "k1", {"json": json.dumps(meta).encode()})
    assert data.meta == meta
    assert any("no image member" in p for p in problems)
    assert any("instance x:9" in p and "[3, 4]" in p for p in problems)
    _, problems = check_sample("shards/t.tar", "k2", {"json": b"{not json", "jpg": b"\xff\xd8\xff"})
    assert any("json member is unreadable" in p for p in problems)
