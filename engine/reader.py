"""Read a published release (local folder or s3://) as a stream of training samples.

    from engine.reader import make_dataset
    ds = make_dataset("s3://bucket/releases/v1", split="train")   # a webdataset.WebDataset
    for sample in ds:                    # or torch DataLoader(ds, num_workers=4, batch_size=None)
        sample["image"]                  # HxWx3 uint8 RGB (bytes with decode_image=False)
        sample["masks"]["coco:1234"]     # HxW bool, decoded on first access
        sample["instructions"]["simple"] # accepted simple-tier instructions, each with target_ids

Shards are split across nodes (RANK / WORLD_SIZE or torch.distributed) and DataLoader workers,
so each sample is seen exactly once per epoch across all of them. S3 shards stream through a
`pipe:` to `python -m engine.storage cat` (credentials stay in the environment, never in a
URL); with webdataset's WDS_SECURE=1, which forbids pipes, they are downloaded to a cache
folder instead. Releases without `_RELEASE.json` are refused.
"""
from __future__ import annotations

import functools
import json
import shlex
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator

import numpy as np
import webdataset as wds

from engine import imageio, masks, storage
from engine.release import Release, open_release
from schemas.specs import TIERS

IMAGE_EXTS = ("jpg", "png", "webp", "gif", "bmp", "tiff")


class LazyMasks(Mapping):
    """instance_id -> decoded bool mask; each decoded on first access, then kept."""

    def __init__(self, instances: list[dict]):
        self._rle = {i["instance_id"]: i["segmentation"] for i in instances}
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, instance_id: str) -> np.ndarray:
        if instance_id not in self._cache:
            seg = self._rle[instance_id]
            h, w = seg["size"]
            self._cache[instance_id] = masks.decode(seg["counts"], h, w)
        return self._cache[instance_id]

    def __iter__(self):
        return iter(self._rle)

    def __len__(self) -> int:
        return len(self._rle)


def _parse_json_fields(record: dict) -> None:
    """Shards store `program` and `checks` as JSON strings (one schema for every sample, see
    engine.shard); training code gets them as objects."""
    for k in ("program", "checks"):
        if isinstance(record.get(k), str):
            record[k] = json.loads(record[k]) if record[k] else None


def to_sample(raw: dict, decode_image: bool = True, shard_of_url: Mapping[str, str] | None = None) -> dict:
    """A raw webdataset sample (bytes per extension) -> the training sample dict."""
    meta = json.loads(raw["json"])
    # the image member's extension names its real format (shard.image_extension), which may
    # be any format PIL reads: take the one member that is not the json
    exts = [e for e in raw if not e.startswith("__") and e != "json"]
    if len(exts) != 1:
        raise ValueError(f"{raw.get('__url__')}: sample {raw['__key__']} should hold one image member "
                         f"besides its json, found {sorted(exts) or 'none'}")
    ext = exts[0]
    instructions: dict[str, list[dict]] = {t: [] for t in TIERS}
    for group in meta["targets"]:
        for tier in TIERS:
            for r in group["instructions"][tier]:
                _parse_json_fields(r)
            instructions[tier] += [{**r, "target_key": group["target_key"], "target_ids": group["target_ids"]}
                                   for r in group["instructions"][tier]]
    url = raw.get("__url__", "")
    return {
        "key": raw["__key__"],
        "shard": (shard_of_url or {}).get(url, url),
        "image": imageio.decode_rgb(raw[ext]) if decode_image else raw[ext],
        "image_format": ext,
        "meta": meta["image"],
        "instances": meta["instances"],
        "masks": LazyMasks(meta["instances"]),
        "targets": meta["targets"],
        "instructions": instructions,
    }


def _cached_copy(uri: str, cache_dir: Path) -> str:
    bucket, key = storage.split_s3(uri)
    dest = cache_dir / bucket / key
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        with storage.open_read(uri) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        tmp.replace(dest)
    return str(dest)


def shard_urls(release: Release, split: str | None = None, cache_dir: str | Path | None = None) -> dict[str, str]:
    """webdataset URL -> shard path relative to the release, in index order."""
    out = {}
    for entry in release.index["shardlist"]:
        if split not in (None, entry["split"]):
            continue
        uri = release.file_uri(entry["url"])
        if not storage.is_s3(uri):
            url = uri
        elif not wds.utils.enforce_security:
            url = f"pipe:{shlex.quote(sys.executable)} -m engine.storage cat {shlex.quote(uri)}"
        else:
            cache = Path(cache_dir or tempfile.gettempdir()) / "sam3i-shards" / release.release_id
            url = _cached_copy(uri, cache)
        out[url] = entry["url"]
    return out


def make_dataset(release: Release | str, split: str | None = None, *, decode_image: bool = True,
                 cache_dir: str | Path | None = None, distributed: bool = True) -> wds.WebDataset:
    """A WebDataset over a release's shards yielding sample dicts (see module doc).

    `distributed=False` reads every shard in this process, whatever RANK / WORLD_SIZE say."""
    if not isinstance(release, Release):
        release = open_release(release)
    urls = shard_urls(release, split, cache_dir)
    if not urls:  # webdataset cannot represent an empty shard list
        raise ValueError(f"{release.uri} has no shards{f' in split {split}' if split else ''}")
    ds = wds.WebDataset(list(urls), nodesplitter=wds.split_by_node if distributed else None,
                        workersplitter=wds.split_by_worker if distributed else None,
                        shardshuffle=False, empty_check=False)
    return ds.map(functools.partial(to_sample, decode_image=decode_image, shard_of_url=urls))


def iter_release(release: Release | str, split: str | None = None, *, decode_image: bool = True) -> Iterator[dict]:
    """Every sample of the release (or of one split) in shard order, in this process."""
    if not isinstance(release, Release):
        release = open_release(release)
    if release.shard_uris(split):
        yield from make_dataset(release, split, decode_image=decode_image, distributed=False)


def extract_images(release: Release | str, dest: str | Path) -> int:
    """Write every image to `dest/<source_id>/<file_name>`, the paths `sam3i_*.json` names."""
    dest = Path(dest)
    n = 0
    for sample in iter_release(release, decode_image=False):
        path = dest / sample["meta"]["source_id"] / sample["meta"]["file_name"]
        if not path.resolve().is_relative_to(dest.resolve()):
            raise ValueError(f"sample {sample['key']}: file name {sample['meta']['file_name']!r} leaves {dest}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample["image"])
        n += 1
    return n
