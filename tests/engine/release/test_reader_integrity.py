"""The reader verifies what it serves (issue 9, problem 5): damaged shards raise ShardReadError
naming shard and sample, never a silently corrupted image or a bare KeyError/JSONDecodeError."""
import shutil
import tarfile
from pathlib import Path

import pytest

from engine.config import ReleaseConfig
from engine.release.reader import ShardReadError, iter_release, make_dataset
from engine.release.publish import build_release, open_release
from tests.release_data import CARD, coco_tables, make_instructions


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    images, instances = coco_tables()
    out = tmp_path_factory.mktemp("rel") / "v1"
    build_release(str(out), images, instances, make_instructions(images, instances), CARD,
                  ReleaseConfig(shard_max_count=3, val_fraction=0.0), "fp", "code")
    return out


@pytest.fixture
def release(pristine, tmp_path):
    copy = tmp_path / "v1"
    shutil.copytree(pristine, copy)
    return copy


def _members(shard: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(shard) as tar:
        return tar.getmembers()


def _flip(shard: Path, offset: int) -> None:
    data = bytearray(shard.read_bytes())
    data[offset] ^= 0xFF
    shard.write_bytes(bytes(data))


def _first_shard(release: Path) -> tuple[Path, str]:
    rel = open_release(str(release)).index["shardlist"][0]["url"]
    return release / rel, rel


def test_untouched_release_reads_with_verification_on(pristine):
    assert len(list(iter_release(str(pristine), decode_image=False))) > 0


def test_flipped_byte_in_a_jpeg_is_refused_naming_shard_and_sample(release):
    shard, rel = _first_shard(release)
    jpg = next(m for m in _members(shard) if m.name.endswith(".jpg"))
    _flip(shard, jpg.offset_data + jpg.size // 2)  # inside the entropy-coded data: still decodes
    key = jpg.name.split(".")[0]
    with pytest.raises(ShardReadError, match=rf"{rel}: sample {key}: image bytes are corrupted"):
        list(make_dataset(str(release), distributed=False))
    # verification is what catches it: unverified, the damaged picture is served silently
    assert len(list(make_dataset(str(release), distributed=False, verify=False, decode_image=False))) > 0


def test_corrupted_json_member_is_named(release):
    shard, rel = _first_shard(release)
    js = next(m for m in _members(shard) if m.name.endswith(".json"))
    _flip(shard, js.offset_data)  # the opening brace
    key = js.name.split(".")[0]
    with pytest.raises(ShardReadError, match=rf"{rel}: sample {key}: json member is corrupted"):
        list(iter_release(str(release), decode_image=False))


@pytest.mark.parametrize("which", [0, 1, 2])
def test_corrupted_tar_header_is_named(release, which):
    """A header's checksum broken: at the start tar refuses the shard, at a json member the
    sample loses it, at a later sample's first member tar stops early; each is named."""
    shard, rel = _first_shard(release)
    member = _members(shard)[[0, 1, 2][which]]
    _flip(shard, member.offset + 10)  # inside the name field: the header checksum no longer holds
    with pytest.raises(ShardReadError, match=rf"{rel}"):
        list(iter_release(str(release), decode_image=False))


def test_flipped_byte_that_keeps_the_json_valid_fails_the_shard_check(release):
    """A digit changed inside a json member still parses: the shard's sha256 catches it."""
    shard, rel = _first_shard(release)
    js = next(m for m in _members(shard) if m.name.endswith(".json"))
    data = shard.read_bytes()
    body = data[js.offset_data:js.offset_data + js.size]
    pos = js.offset_data + body.index(b'"area":') + len(b'"area":')
    digit = data[pos:pos + 1]
    assert digit.isdigit()
    shard.write_bytes(data[:pos] + (b"7" if digit != b"7" else b"3") + data[pos + 1:])
    with pytest.raises(ShardReadError, match=rf"{rel}: shard sha256 .* differs from the release index"):
        list(make_dataset(str(release), distributed=False, decode_image=False))
    assert len(list(make_dataset(str(release), distributed=False, decode_image=False, verify=False))) > 0


def test_verification_with_dataloader_workers(pristine):
    """The checks run inside each DataLoader worker (streams are hashed where they are read)."""
    import torch

    ds = make_dataset(str(pristine), decode_image=False)
    loader = torch.utils.data.DataLoader(ds, num_workers=2, batch_size=None, collate_fn=lambda s: s["key"])
    keys = list(loader)
    assert sorted(keys) == sorted(s["key"] for s in iter_release(str(pristine), decode_image=False))
