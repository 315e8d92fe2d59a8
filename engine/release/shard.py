"""WebDataset shards: one sample per image that has at least one accepted instruction.

Images without accepted instructions are left out: a sample with nothing to learn from would
only cost bytes and loader time (their rejected candidates are still in rejected.parquet).

A sample is two tar members sharing the key `sanitize_key(image_id)`:
- `<key>.jpg` / `<key>.png` / ...: the original image bytes, extension from the real format;
- `<key>.json`: {"image": meta, "instances": [...], "targets": [...]}, where
  - instances: every annotation of the image, `segmentation` = COCO RLE {size, counts};
  - targets: the accepted instructions grouped by target. `target_key` is the sorted target
    instance ids joined by ","; negatives (no target) are grouped per absent concept with
    `target_key = "none:<category>"`. Each target has `instructions` = {tier: [instruction]},
    an instruction carrying its text, subtype, cardinality, program and check results.

Shards are `shards/{split}-{index:06d}.tar`, rotated before a sample would push a shard past
`max_count` samples or `max_bytes` bytes (a single larger sample gets a shard of its own), and
at every work unit boundary (`release.shard_by_unit`: samples come ordered by unit, then key). Tar
members have fixed mtime/uid/gid/owner/mode, so the same input gives byte-identical shards:
a shard's content digest (its keys, image hashes and json hashes) decides its bytes, which lets
a refresh carry an unchanged shard over from the previous release. Sizes and hashes are
computed while a shard is written.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pandas as pd

from engine.sources import imageio
from engine.scene import masks
from schemas.specs import TIERS

TAR_MTIME = 0          # fixed member metadata -> reproducible tars
TAR_OWNER = "sam3i"
TAR_MODE = 0o444       # what webdataset's TarWriter writes
TAR_BLOCK = 512

_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


def image_extension(data: bytes, file_name: str = "") -> str:
    """Extension naming the real format of the bytes (webdataset decodes by extension)."""
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    # only engine.sources.imageio's accepted formats: a member the reader and verify would refuse
    # (e.g. .ppm) must not be published
    raise ValueError(f"{file_name or '<image>'}: not one of the accepted image formats "
                     f"{', '.join(imageio.IMAGE_EXTS)} (first bytes {data[:8]!r})")


def sanitize_key(image_id: str) -> str:
    """A webdataset key: no dots (they separate key from extension) and no slashes."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", image_id)


def sample_keys(image_ids: Iterable[str]) -> dict[str, str]:
    """image_id -> unique sample key; ids that sanitize alike get a short hash suffix."""
    ids = sorted(set(image_ids))
    plain = {i: sanitize_key(i) for i in ids}
    counts = pd.Series(list(plain.values())).value_counts()
    return {
        i: k if counts[k] == 1 else f"{k}-{hashlib.sha1(i.encode()).hexdigest()[:8]}"
        for i, k in plain.items()
    }


def target_key(target_ids: Iterable[str], category: str) -> str:
    ids = sorted(target_ids)
    return ",".join(ids) if ids else f"none:{category}"


def _json_text(text: str, what: str, instruction_id: str) -> str:
    """The manifest's JSON string, checked to parse (stored as a string: its shape varies)."""
    try:
        if text:
            json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"instruction {instruction_id}: {what} is not valid JSON: {e}") from None
    return text or ""


def instruction_record(row) -> dict:
    return {
        "instruction_id": row.instruction_id,
        "spec_id": row.spec_id,
        "text": row.text,
        "tier": row.tier,
        "subtype": row.subtype,
        "cardinality": row.cardinality,
        "category": row.category,
        "program": _json_text(row.program, "program", row.instruction_id),
        "checks": _json_text(row.checks, "checks", row.instruction_id),
        "backend": row.backend,
        "model": row.model,
        "prompt_version": row.prompt_version,
        "seed": int(row.seed),
        "rounds": int(row.rounds),
    }


def target_groups(accepted: pd.DataFrame | list) -> list[dict]:
    """Accepted instructions of one image grouped by target, in a deterministic order
    (a DataFrame, or its rows as itertuples() tuples)."""
    groups: dict[str, dict] = {}
    rows = (accepted.sort_values("instruction_id").itertuples(index=False) if isinstance(accepted, pd.DataFrame)
            else sorted(accepted, key=lambda r: r.instruction_id))
    for row in rows:
        ids = sorted(row.target_ids)
        key = target_key(ids, row.category)
        g = groups.setdefault(key, {
            "target_key": key, "target_ids": ids, "category": row.category,
            "cardinalities": set(), "instructions": {t: [] for t in TIERS},
        })
        g["cardinalities"].add(row.cardinality)
        g["instructions"][row.tier].append(instruction_record(row))
    out = []
    for key in sorted(groups):
        g = groups[key]
        g["cardinalities"] = sorted(g["cardinalities"])
        out.append(g)
    return out


def instance_record(row) -> dict:
    return {
        "instance_id": row.instance_id,
        "orig_id": int(row.orig_id),
        "category_id": int(row.category_id),
        "category": row.category,
        "supercategory": row.supercategory,
        "iscrowd": bool(row.iscrowd),
        "area": float(row.area),
        "bbox": [float(row.bbox_x), float(row.bbox_y), float(row.bbox_w), float(row.bbox_h)],
        "segmentation": masks.to_coco_rle(row.rle, row.height, row.width),
    }


def image_record(row, split: str, key: str) -> dict:
    return {
        "image_id": row.image_id,
        "source_id": row.source_id,
        "orig_id": int(row.orig_id),
        "file_name": row.file_name,
        "width": int(row.width),
        "height": int(row.height),
        "sha256": row.sha256,
        "license": None if pd.isna(row.license) else row.license,
        "license_name": None if pd.isna(row.license_name) else row.license_name,
        "license_url": None if pd.isna(row.license_url) else row.license_url,
        "unit_id": row.unit_id,
        "split": split,
        "sample_key": key,
    }


# The per-sample json schema, one for every sample: leaf = Arrow type name, [x] = list of x,
# {..} = record. Loaders that need a declared schema get it from here (the dataset card's
# HuggingFace `dataset_info.features`); tests check every sample against it.
_INSTRUCTION = {
    "instruction_id": "string", "spec_id": "string", "text": "string", "tier": "string", "subtype": "string",
    "cardinality": "string", "category": "string", "program": "string", "checks": "string", "backend": "string",
    "model": "string", "prompt_version": "string", "seed": "int64", "rounds": "int64",
}
SAMPLE_SCHEMA = {
    "image": {
        "image_id": "string", "source_id": "string", "orig_id": "int64", "file_name": "string", "width": "int64",
        "height": "int64", "sha256": "string", "license": "string", "license_name": "string",
        "license_url": "string", "unit_id": "string", "split": "string", "sample_key": "string",
    },
    "instances": [{
        "instance_id": "string", "orig_id": "int64", "category_id": "int64", "category": "string",
        "supercategory": "string", "iscrowd": "bool", "area": "float64", "bbox": ["float64"],
        "segmentation": {"size": ["int64"], "counts": "string"},
    }],
    "targets": [{
        "target_key": "string", "target_ids": ["string"], "category": "string", "cardinalities": ["string"],
        "instructions": {t: [_INSTRUCTION] for t in TIERS},
    }],
}
IMAGE_MEMBER_EXTS = imageio.IMAGE_EXTS   # what image_extension names: the one list (engine.sources.imageio)


def schema_problems(obj, schema=SAMPLE_SCHEMA, where: str = "json") -> list[str]:
    """Where `obj` departs from the schema (keys and types); [] when it conforms."""
    if isinstance(schema, dict):
        if not isinstance(obj, dict):
            return [f"{where}: {type(obj).__name__}, expected an object"]
        if set(obj) != set(schema):
            return [f"{where}: keys {sorted(set(obj) ^ set(schema))} differ from the schema"]
        return [p for k, sub in schema.items() for p in schema_problems(obj[k], sub, f"{where}.{k}")]
    if isinstance(schema, list):
        if not isinstance(obj, list):
            return [f"{where}: {type(obj).__name__}, expected a list"]
        return [p for i, x in enumerate(obj) for p in schema_problems(x, schema[0], f"{where}[{i}]")]
    ok = {"string": str, "int64": int, "float64": float, "bool": bool}[schema]
    if obj is None and schema == "string":
        return []
    if not isinstance(obj, ok) or (ok is int and isinstance(obj, bool)):
        return [f"{where}: {obj!r} is not {schema}"]
    return []


def encode_json(obj) -> bytes:
    """Canonical ASCII-safe JSON bytes (sorted keys, no whitespace, non-ASCII escaped): equal
    input -> equal bytes, and any platform's default decoding reads them."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


@dataclass(frozen=True)
class Sample:
    split: str
    key: str
    image_ext: str
    image_bytes: bytes
    meta: dict

    def members(self) -> dict[str, bytes]:
        return {"__key__": self.key, self.image_ext: self.image_bytes, "json": encode_json(self.meta)}


@dataclass(frozen=True)
class ShardInfo:
    path: str          # relative to the release root, e.g. "shards/train-000000.tar"
    split: str
    nsamples: int
    filesize: int
    sha256: str
    keys: tuple[str, ...]
    content: str = ""  # content_digest of its samples: equal digests, byte-identical shards
    carried: bool = False  # taken over from an earlier release instead of written


@dataclass(frozen=True)
class PlannedSample:
    """A sample known by its image's hash and size before its bytes are read: shards are planned
    from these, and a shard whose samples all match an earlier release's is carried over
    without reading a single image. `load()` returns the image bytes (checked by the caller)."""
    split: str
    key: str
    image_sha256: str
    image_size: int
    json_bytes: bytes
    load: Callable[[], bytes]
    group: int = 0     # a new shard starts when it changes (the work unit, with shard_by_unit)

    @property
    def tar_bytes(self) -> int:
        return 2 * TAR_BLOCK + -(-self.image_size // TAR_BLOCK) * TAR_BLOCK + -(-len(self.json_bytes) // TAR_BLOCK) * TAR_BLOCK


def planned(sample: Sample) -> PlannedSample:
    """A Sample whose bytes are already in memory, as a PlannedSample."""
    return PlannedSample(sample.split, sample.key, hashlib.sha256(sample.image_bytes).hexdigest(),
                         len(sample.image_bytes), encode_json(sample.meta), lambda: sample.image_bytes)


CONTENT_FORMAT = "sam3i-shard/1"   # bump when the tar layout changes: old digests stop matching


def content_digest(samples: Iterable[PlannedSample]) -> str:
    """What decides a shard's bytes: member order, keys, image bytes, json bytes (tar member
    metadata is fixed). Two shards with equal digests are byte-identical."""
    h = hashlib.sha256(CONTENT_FORMAT.encode())
    for s in samples:
        h.update(f"\n{s.key}\t{s.image_sha256}\t{hashlib.sha256(s.json_bytes).hexdigest()}".encode())
    return h.hexdigest()


class _HashingFile:
    """A write-only file that hashes and counts what passes through: a shard's sha256 and size
    come from writing it, never from reading it back."""

    def __init__(self, path: Path):
        self.f = open(path, "wb")
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, b) -> int:
        self.h.update(b)
        self.size += len(b)
        return self.f.write(b)

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def tar_size(members: dict[str, bytes]) -> int:
    """Bytes the members add to a tar: a header block each plus data padded to 512."""
    return sum(TAR_BLOCK + -(-len(v) // TAR_BLOCK) * TAR_BLOCK for k, v in members.items() if k != "__key__")


def shard_path(split: str, index: int) -> str:
    return f"shards/{split}-{index:06d}.tar"


def _ordered(fn: Callable, items: list, window: int = 16, threads: int = 8) -> Iterator:
    """fn over items in order with up to `window` calls in flight (S3 reads are latency-bound;
    the window bounds the bytes held)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _add_sample(tar: tarfile.TarFile, key: str, members: dict[str, bytes]) -> None:
    """One sample as webdataset's TarWriter lays it out (members sorted by extension, fixed
    metadata), written with the standard library: importing webdataset imports torch, seconds
    of start-up for a writer that needs none of it."""
    for ext in sorted(members):
        data = members[ext]
        ti = tarfile.TarInfo(f"{key}.{ext}")
        ti.size, ti.mtime, ti.mode = len(data), TAR_MTIME, TAR_MODE
        ti.uname = ti.gname = TAR_OWNER
        tar.addfile(ti, io.BytesIO(data))


def _write_tar(group: list[PlannedSample], path: Path) -> tuple[int, str]:
    out = _HashingFile(path)
    try:
        with tarfile.open(fileobj=out, mode="w|") as tar:
            for s, data in zip(group, _ordered(lambda s: s.load(), group)):
                _add_sample(tar, s.key, {image_extension(data, s.key): data, "json": s.json_bytes})
    finally:
        out.close()
    return out.size, out.h.hexdigest()


Reuse = Callable[[str], "tuple[Path, int, str] | None"]


def write_planned(samples: Iterable[PlannedSample], root: str | Path, max_count: int, max_bytes: int,
                  reuse: Reuse | None = None) -> list[ShardInfo]:
    """Write samples (ordered by split, then key) into rotated tar shards under root.

    Shards are cut from the samples' sizes alone. A shard whose content digest `reuse` knows
    (it returns the earlier file, its size and sha256) is hard-linked (or copied) from there;
    the others are written, hashed as they are written. Only one shard's sample list is held."""
    root = Path(root)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    shards: list[ShardInfo] = []
    group: list[PlannedSample] = []
    split, index, size, unit = None, 0, 0, None

    def close():
        rel = shard_path(split, index)
        digest = content_digest(group)
        found = reuse(digest) if reuse else None
        keys = tuple(s.key for s in group)
        if found is not None:
            src, nbytes, sha = found
            _link_or_copy(src, root / rel)
            shards.append(ShardInfo(rel, split, len(group), nbytes, sha, keys, digest, carried=True))
        else:
            nbytes, sha = _write_tar(group, root / rel)
            shards.append(ShardInfo(rel, split, len(group), nbytes, sha, keys, digest))

    for sample in samples:
        nbytes = sample.tar_bytes
        new_split = sample.split != split
        if new_split and any(s.split == sample.split for s in shards):
            raise ValueError(f"samples must come grouped by split; {sample.key} returns to split {sample.split}")
        if not group or new_split or sample.group != unit or len(group) >= max_count or size + nbytes > max_bytes:
            if group:
                close()
                index = 0 if new_split else index + 1
            split, size, group, unit = sample.split, 0, [], sample.group
        group.append(sample)
        size += nbytes
    if group:
        close()
    return shards


def _link_or_copy(src: Path, dst: Path) -> None:
    """Shards are immutable, so a hard link shares one file between releases; across
    filesystems it is copied."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_shards(samples: Iterable[Sample], root: str | Path, max_count: int, max_bytes: int) -> list[ShardInfo]:
    """Write in-memory samples (ordered by split, then key) into rotated tar shards under root."""
    return write_planned((planned(s) for s in samples), root, max_count, max_bytes)


def iter_shard_members(path: str | Path) -> Iterator[tuple[str, str, bytes]]:
    """(key, extension, bytes) for each member of a shard, in file order (for checks)."""
    with tarfile.open(path) as tar:
        for m in tar:
            data = tar.extractfile(m).read()
            key, _, ext = m.name.partition(".")
            yield key, ext, data
