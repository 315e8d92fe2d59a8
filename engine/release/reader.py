"""Read a published release (local folder or s3://) as a stream of training samples.

    from engine.release.reader import make_dataset
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
import hashlib
import json
import shlex
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator

import numpy as np
import webdataset as wds

from engine.sources import imageio
from engine.scene import masks
from engine import storage
from engine.release.publish import Release, open_release
from schemas.specs import TIERS

IMAGE_EXTS = imageio.IMAGE_EXTS  # the one list of accepted formats (engine.sources.imageio)


class ShardReadError(ValueError):
    """A shard or sample that does not read back as it was published; the message names the
    shard and the sample (key) and says what is wrong."""


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
    engine.release.shard); training code gets them as objects."""
    for k in ("program", "checks"):
        if isinstance(record.get(k), str):
            record[k] = json.loads(record[k]) if record[k] else None


def _meta(raw: dict, where: str) -> dict:
    if "json" not in raw:
        raise ShardReadError(f"{where}: no json member (members: {sorted(k for k in raw if not k.startswith('__'))}); "
                             "the shard is damaged (a corrupted tar header splits or drops members)")
    try:
        meta = json.loads(raw["json"])
        if not isinstance(meta, dict) or not isinstance(meta.get("image"), dict):
            raise ValueError("not an object with an 'image' record")
        for k in ("instances", "targets"):
            if not isinstance(meta.get(k), list):
                raise ValueError(f"{k!r} is not a list")
    except (ValueError, UnicodeDecodeError) as e:
        raise ShardReadError(f"{where}: json member is corrupted ({type(e).__name__}: {e})") from None
    return meta


def _verify_image(data: bytes, meta: dict, where: str) -> None:
    """Per-sample integrity: the image bytes against the sha256 the build recorded (cheap next
    to decoding them)."""
    want = meta["image"].get("sha256")
    if not isinstance(want, str):
        raise ShardReadError(f"{where}: json image record has no sha256 to verify the image against")
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise ShardReadError(f"{where}: image bytes are corrupted (sha256 {got[:12]}..., the release recorded "
                             f"{want[:12]}...)")


def to_sample(raw: dict, decode_image: bool = True, shard_of_url: Mapping[str, str] | None = None,
              verify: bool = True) -> dict:
    """A raw webdataset sample (bytes per extension) -> the training sample dict.

    `verify` (default) checks the image bytes against the sha256 in the sample's json; every
    problem raises ShardReadError naming shard and sample."""
    url = raw.get("__url__", "")
    shard = (shard_of_url or {}).get(url, url)
    where = f"{shard}: sample {raw.get('__key__')}"
    meta = _meta(raw, where)
    # the image member's extension names its real format (shard.image_extension)
    exts = [e for e in raw if not e.startswith("__") and e != "json"]
    if len(exts) != 1:
        raise ShardReadError(f"{where} should hold one image member besides its json, found {sorted(exts) or 'none'}")
    ext = exts[0]
    if ext not in IMAGE_EXTS:
        raise ShardReadError(f"{where}: image member .{ext} is not an accepted format ({', '.join(IMAGE_EXTS)})")
    if verify:
        _verify_image(raw[ext], meta, where)
    try:
        instructions: dict[str, list[dict]] = {t: [] for t in TIERS}
        for group in meta["targets"]:
            for tier in TIERS:
                for r in group["instructions"][tier]:
                    _parse_json_fields(r)
                instructions[tier] += [{**r, "target_key": group["target_key"], "target_ids": group["target_ids"]}
                                       for r in group["instructions"][tier]]
        image = raw[ext]
        if decode_image:
            size = (int(meta["image"]["width"]), int(meta["image"]["height"])) if "width" in meta["image"] else None
            image = imageio.decode_rgb(image, size)
    except ShardReadError:
        raise
    except Exception as e:
        raise ShardReadError(f"{where}: {type(e).__name__}: {e}") from None
    return {
        "key": raw["__key__"],
        "shard": shard,
        "image": image,
        "image_format": ext,
        "meta": meta["image"],
        "instances": meta["instances"],
        "masks": LazyMasks(meta["instances"]),
        "targets": meta["targets"],
        "instructions": instructions,
    }


def _shard_error(shard_of_url: Mapping[str, str], exn: Exception) -> bool:
    """webdataset's handler for errors below the sample (opening, tar headers): re-raise them
    naming the shard (webdataset appends the url to the exception's args)."""
    if isinstance(exn, ShardReadError):
        raise exn
    url = next((a for a in reversed(exn.args) if isinstance(a, str) and a in shard_of_url), None)
    shard = shard_of_url.get(url, url or "a shard")
    raise ShardReadError(f"{shard}: shard is unreadable ({type(exn).__name__}: "
                         f"{exn.args[0] if exn.args else exn})") from exn


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


class _HashingStream:
    """A shard stream that hashes what tar reads; `finish()` reads what tar left (end-of-archive
    padding) and compares the whole shard with the sha256 the release index lists."""

    def __init__(self, raw, want: str, shard: str):
        self.raw, self.want, self.shard = raw, want, shard
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.h.update(data)
        return data

    def finish(self) -> None:
        while data := self.raw.read(1 << 20):
            self.h.update(data)
        got = self.h.hexdigest()
        if got != self.want:
            raise ShardReadError(f"{self.shard}: shard sha256 {got[:12]}... differs from the release index's "
                                 f"{self.want[:12]}...: the shard is corrupted (its samples cannot be trusted)")

    def close(self) -> None:
        self.raw.close()


def _verified(release: Release, shard_of_url: Mapping[str, str], streams: dict):
    """A pipeline stage after the opener: every shard stream is hashed while read."""
    sha = {e["url"]: e["sha256"] for e in release.index["shardlist"]}

    def stage(src):
        for source in src:
            rel = shard_of_url.get(source["url"], source["url"])
            if rel in sha:
                source["stream"] = streams[source["url"]] = _HashingStream(source["stream"], sha[rel], rel)
            yield source
    return stage


def _shard_end_checks(expected: Mapping[str, int], shard_of_url: Mapping[str, str], streams: dict):
    """A pipeline stage over raw samples that checks each shard as its samples end: as many
    samples as the index lists (tar stops silently at a corrupted header after the first one,
    which would drop the rest) and the shard's sha256 (any flipped byte, JSON included)."""
    def check(url: str, n: int) -> None:
        want = expected.get(url)
        if want is not None and n != want:
            raise ShardReadError(f"{shard_of_url.get(url, url)}: {n} samples read, the release index lists {want} "
                                 "(the shard is truncated or a tar header is corrupted)")
        stream = streams.pop(url, None)
        if stream is not None:
            stream.finish()

    def stage(src):
        url, n = None, 0
        for raw in src:
            if raw.get("__url__") != url:
                if url is not None:
                    check(url, n)
                url, n = raw.get("__url__"), 0
            n += 1
            yield raw
        if url is not None:
            check(url, n)
    return stage


def make_dataset(release: Release | str, split: str | None = None, *, decode_image: bool = True,
                 cache_dir: str | Path | None = None, distributed: bool = True, verify: bool = True) -> wds.WebDataset:
    """A WebDataset over a release's shards yielding sample dicts (see module doc).

    `distributed=False` reads every shard in this process, whatever RANK / WORLD_SIZE say.
    `verify` (default) checks every image against the sha256 in its sample's json before it is
    served, and each shard, as its last sample is read, against the sample count and sha256 of
    the release index (hashing costs far less than decoding the images); any damage raises
    ShardReadError naming the shard (and the sample where there is one)."""
    if not isinstance(release, Release):
        release = open_release(release)
    urls = shard_urls(release, split, cache_dir)
    if not urls:  # webdataset cannot represent an empty shard list
        raise ValueError(f"{release.uri} has no shards{f' in split {split}' if split else ''}")
    ds = wds.WebDataset(list(urls), nodesplitter=wds.split_by_node if distributed else None,
                        workersplitter=wds.split_by_worker if distributed else None,
                        shardshuffle=False, empty_check=False,
                        handler=functools.partial(_shard_error, urls))
    if verify:
        streams: dict = {}  # url -> its hashing stream, per process (each DataLoader worker has its own)
        opener = next(k for k, st in enumerate(ds.pipeline) if isinstance(st, wds.cache.StreamingOpen))
        ds.pipeline.insert(opener + 1, _verified(release, urls, streams))
        nsamples = {e["url"]: int(e["nsamples"]) for e in release.index["shardlist"]}
        ds = ds.compose(_shard_end_checks({u: nsamples[rel] for u, rel in urls.items()}, urls, streams))
    return ds.map(functools.partial(to_sample, decode_image=decode_image, shard_of_url=urls, verify=verify))


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
