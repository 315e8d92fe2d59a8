"""Integrity checks on a release's shards, done in one streaming pass per shard.

For each shard read: its sha256, size and sample count against `index.json` (and against the
file list in `_RELEASE.json`); for each sample checked: the json parses, the image member is
there and its pixel size is the one the json states, every instance mask is a valid RLE of
exactly that size; and every sampled manifest row is found in its shard, under its sample key,
with its instruction among the sample's targets. By default only the shards holding sampled
items are read and only the sampled samples checked; `full=True` (`--integrity`) reads every
shard, checks every sample and every manifest row, re-hashes the other release files and runs
the conformance checker (engine/verify/conformance.py) on every SAM3-I and SA-Co file.

Shards stream (local file or S3 object) through the hash and a tar reader at once, so a shard
is read once and never held whole in memory; only the sampled samples' bytes are kept.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field

import pandas as pd
from PIL import Image

from engine.sources import imageio
from engine import storage
from engine.sources.imageio import IMAGE_EXTS  # the one list of accepted formats
from engine.sources.ingest import decode_segmentation
from engine.verify.conformance import check_release as check_conformance


@dataclass
class SampleData:
    """One sample kept for rendering: its parsed json and image bytes (None when unreadable)."""
    shard: str
    key: str
    meta: dict | None
    image: bytes | None
    image_ext: str | None


@dataclass
class IntegrityReport:
    shards_checked: list[str] = field(default_factory=list)
    samples_checked: int = 0
    rows_checked: int = 0
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)
    full: bool = False
    conformance: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"full": self.full, "shards_checked": self.shards_checked, "samples_checked": self.samples_checked,
                "rows_checked": self.rows_checked, "files_checked": self.files_checked, "problems": self.problems,
                "conformance": self.conformance}


class _HashingReader:
    """A read-only file object that hashes and counts whatever passes through it."""

    def __init__(self, f):
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n) if n is not None and n >= 0 else self.f.read()
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def check_sample(shard: str, key: str, members: dict[str, bytes]) -> tuple[SampleData, list[str]]:
    """Parse and check one sample's members; the problems name shard, key and what is wrong."""
    where = f"{shard}: sample {key}"
    problems: list[str] = []
    meta = None
    if "json" not in members:
        problems.append(f"{where}: no json member")
    else:
        try:
            meta = json.loads(members["json"])
            if not isinstance(meta, dict) or not {"image", "instances", "targets"} <= set(meta):
                raise ValueError("missing image/instances/targets")
        except ValueError as e:
            problems.append(f"{where}: json member is unreadable ({e})")
            meta = None
    ext = next((e for e in IMAGE_EXTS if e in members), None)
    image = members.get(ext) if ext else None
    if image is None:
        problems.append(f"{where}: no image member")
    if meta is not None:
        try:
            w, h = int(meta["image"]["width"]), int(meta["image"]["height"])
        except (KeyError, TypeError, ValueError) as e:
            problems.append(f"{where}: json image record has no usable width/height ({type(e).__name__}: {e})")
            meta = None
    if meta is None:
        return SampleData(shard, key, None, image, ext), problems
    if image is not None:
        try:
            with Image.open(io.BytesIO(image)) as im:
                # the picture the masks are on: EXIF orientation by engine.sources.imageio's rule
                size = imageio.oriented_size(im) if imageio.applies_orientation(im, (w, h)) else im.size
                im.load()  # the pixels too, not just the header
            if size != (w, h):
                problems.append(f"{where}: image is {size[0]}x{size[1]}, its json says {w}x{h}")
        except Exception as e:
            problems.append(f"{where}: image does not decode ({type(e).__name__}: {e})")
    for inst in meta["instances"]:
        seg = inst.get("segmentation") if isinstance(inst, dict) else None
        try:
            if not isinstance(seg, dict) or seg.get("size") != [h, w]:
                raise ValueError(f"RLE size {seg.get('size') if isinstance(seg, dict) else seg!r} "
                                 f"is not the image size [{h}, {w}]")
            if not decode_segmentation(seg, h, w, 0.0).any():
                raise ValueError("mask is empty")
        except Exception as e:
            name = inst.get("instance_id") if isinstance(inst, dict) else repr(inst)
            problems.append(f"{where}: instance {name}: mask does not decode to the "
                            f"image size: {getattr(e, 'detail', None) or e}")
    return SampleData(shard, key, meta, image, ext), problems


def _contents(meta: dict) -> tuple[set[str], set[str]]:
    """(instruction ids, instance ids) a sample's json holds."""
    ids = {i["instruction_id"] for g in meta["targets"] for tier in g["instructions"].values() for i in tier}
    return ids, {i["instance_id"] for i in meta["instances"]}


def scan_shard(uri: str, rel: str, keep: set[str], check_all: bool,
               report: IntegrityReport) -> tuple[dict[str, SampleData], dict]:
    """Stream one shard: check samples (`keep`, or every one with check_all) and return the kept
    samples plus what was measured: {"sha256", "size", "keys", "contents": key -> (instruction
    ids, instance ids) of each checked sample}, and "error" if the shard is unreadable."""
    kept: dict[str, SampleData] = {}
    keys: list[str] = []
    contents: dict[str, tuple[set[str], set[str]]] = {}
    measured: dict = {}

    def finish(key: str, members: dict[str, bytes]) -> None:
        keys.append(key)
        if key in keep or check_all:
            data, problems = check_sample(rel, key, members)
            report.samples_checked += 1
            report.problems.extend(problems)
            if data.meta is not None:  # a damaged sample is reported once, not again per row
                try:
                    contents[key] = _contents(data.meta)
                except (KeyError, TypeError, AttributeError) as e:
                    report.problems.append(f"{rel}: sample {key}: json targets are malformed "
                                           f"({type(e).__name__}: {e})")
            if key in keep:
                kept[key] = data

    try:
        with storage.open_read(uri) as raw:
            reader = _HashingReader(raw)
            try:
                with tarfile.open(fileobj=reader, mode="r|") as tar:
                    key, members = None, {}
                    for m in tar:
                        if not m.isfile():
                            continue
                        k, _, ext = m.name.rpartition("/")[2].partition(".")
                        data = tar.extractfile(m).read()
                        if k != key:
                            if key is not None:
                                finish(key, members)
                            key, members = k, {}
                        members[ext] = data
                    if key is not None:
                        finish(key, members)
            except (tarfile.TarError, EOFError, OSError, ValueError) as e:
                measured["error"] = f"{type(e).__name__}: {e}"
            reader.drain()
            measured.update(sha256=reader.sha.hexdigest(), size=reader.size)
    except Exception as e:  # missing object, permissions, network
        measured["error"] = f"cannot read ({type(e).__name__}: {e})"
    measured.update(keys=keys, contents=contents)
    return kept, measured


def _compare_with_index(rel: str, measured: dict, entry: dict | None, listed: dict | None) -> list[str]:
    if entry is None:
        return [f"{rel}: not listed in index.json"]
    out = []
    if "error" in measured:
        out.append(f"{rel}: shard is unreadable: {measured['error']}")
    if "sha256" in measured:
        if measured["sha256"] != entry.get("sha256"):
            out.append(f"{rel}: sha256 {measured['sha256']} differs from index.json ({entry.get('sha256')})")
        if measured["size"] != entry.get("filesize"):
            out.append(f"{rel}: {measured['size']} bytes, index.json says {entry.get('filesize')}")
        if listed and measured["sha256"] != listed.get("sha256"):
            out.append(f"{rel}: sha256 differs from the one _RELEASE.json lists ({listed.get('sha256')})")
    if "error" not in measured and len(measured["keys"]) != entry.get("nsamples"):
        out.append(f"{rel}: {len(measured['keys'])} samples, index.json says {entry.get('nsamples')}")
    return out


def _check_rows(rows: pd.DataFrame, shard_keys: dict[str, set[str]],
                contents: dict[tuple[str, str], tuple[set[str], set[str]]], accepted: bool) -> list[str]:
    """Each row's sample is in its shard; accepted rows' instructions and targets are in it."""
    problems = []
    unreadable: dict[str, int] = {}
    for r in rows.itertuples(index=False):
        where = f"instruction {r.instruction_id}"
        if not isinstance(r.shard, str) or not r.shard:
            continue  # a rejected candidate of an image that has no sample
        if r.shard not in shard_keys:
            unreadable[r.shard] = unreadable.get(r.shard, 0) + 1
            continue
        if r.sample_key not in shard_keys[r.shard]:
            problems.append(f"{where}: sample {r.sample_key} is missing from {r.shard}")
            continue
        instruction_ids, instance_ids = contents.get((r.shard, r.sample_key), (None, None))
        if instruction_ids is None:
            continue
        if accepted and r.instruction_id not in instruction_ids:
            problems.append(f"{where}: not found in sample {r.sample_key} of {r.shard}")
        lost = [t for t in r.target_ids if t not in instance_ids]
        if lost:
            problems.append(f"{where}: target instance(s) {lost} missing from sample {r.sample_key} of {r.shard}")
    problems += [f"{shard}: {n} instruction row(s) cannot be checked: the shard could not be read"
                 for shard, n in sorted(unreadable.items())]
    return problems


def check_release(release, items: pd.DataFrame, manifest: pd.DataFrame, full: bool = False,
                  accepted: bool = True) -> tuple[IntegrityReport, dict[tuple[str, str], SampleData]]:
    """Read the shards of the sampled `items` (every shard with `full`) and check them.

    `accepted` says the items are manifest rows (their instructions must be in the shards);
    rejected candidates only need their image's sample. Returns the report and the sampled
    samples' data keyed by (shard, sample_key)."""
    report = IntegrityReport(full=full)
    index = {e["url"]: e for e in release.index["shardlist"]}
    listed = release.info.get("files", {})
    located = items[items["shard"].notna() & (items["shard"] != "")]
    wanted: dict[str, set[str]] = {}
    for r in located.itertuples(index=False):
        wanted.setdefault(r.shard, set()).add(r.sample_key)
    shards = sorted(set(index) | set(wanted)) if full else sorted(wanted)
    samples: dict[tuple[str, str], SampleData] = {}
    shard_keys: dict[str, set[str]] = {}
    contents: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for rel in shards:
        kept, measured = scan_shard(release.file_uri(rel), rel, wanted.get(rel, set()), full, report)
        report.shards_checked.append(rel)
        report.problems.extend(_compare_with_index(rel, measured, index.get(rel), listed.get(rel)))
        if "error" not in measured:
            shard_keys[rel] = set(measured["keys"])
        contents.update({(rel, k): c for k, c in measured["contents"].items()})
        samples.update({(rel, k): v for k, v in kept.items()})
    report.problems.extend(_check_rows(located, shard_keys, contents, accepted))
    report.rows_checked = len(located)
    if full:
        rest = manifest[~manifest["instruction_id"].isin(set(located["instruction_id"]))] if accepted else manifest
        report.problems.extend(_check_rows(rest, shard_keys, contents, True))
        report.rows_checked += len(rest)
        others = {rel: v for rel, v in listed.items() if not rel.startswith("shards/")}
        report.files_checked = len(others) + len(shards)
        report.problems.extend(_rehash(release, others))
        # what SAM3-I's trainer and SAM3's SA-Co reader would do with every export file
        conformance = check_conformance(release)
        report.conformance = conformance.to_json()
        report.problems.extend(f"conformance: {p}" for p in conformance.problems)
    return report, samples


def _rehash(release, files: dict[str, dict]) -> list[str]:
    problems = []
    for rel, want in sorted(files.items()):
        try:
            data = storage.read_bytes(release.file_uri(rel))
        except Exception as e:
            problems.append(f"{rel}: cannot read ({type(e).__name__}: {e})")
            continue
        if len(data) != want.get("size") or hashlib.sha256(data).hexdigest() != want.get("sha256"):
            problems.append(f"{rel}: content differs from the sha256/size _RELEASE.json lists")
    return problems
