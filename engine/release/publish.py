"""Build, publish and open releases (DESIGN.md section 6).

A release is a folder or S3 prefix holding `shards/`, `manifest.parquet`, `rejected.parquet`,
`index.json` (the engine's shard table, all splits), `index-{train,val}.json` (wids indexes,
one per split), `sam3i/` (the SAM3-I trainer's files per stage and cardinality, with
`hydra_datasets.yaml`; engine/release/sam3i_export.py), `saco/` (SAM3's SA-Co format;
engine/release/saco_export.py), `README.md` (dataset card whose YAML `configs:` lets
`datasets.load_dataset(<release dir>)` load the train and val shards) and, written last,
`_RELEASE.json`: a release without it does not exist, and `open_release` refuses it.

`build_release` writes everything into a local staging folder, then publishes:
- local: the staging folder is a sibling of the target and is renamed into place (atomic on
  one filesystem), then `_RELEASE.json` is written atomically;
- S3: every file is uploaded (multipart above `cfg.multipart_threshold`, retried with backoff),
  objects left by an earlier failed build are deleted, then `_RELEASE.json` is put.
A lock (local `<release>.lock` created with O_EXCL; S3 `<prefix>/_LOCK` created with a
conditional put) keeps two builds from interleaving on one release path; a failed build
releases it and leaves no `_RELEASE.json`. A killed build cannot release it: its lock names
host and pid, and a later build on the same host takes it over once that pid is gone (a
lock from another host is only ever removed by hand, as the error message says).

Releases are immutable: the release id is a hash of the inputs fingerprint, the
content-relevant config (shard limits, val fraction) and the code version. Building again to
a path that already holds the same release id returns it untouched (a rerun after a crash is
safe); a path holding a different release is refused.
"""
from __future__ import annotations

import getpass
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import pyarrow.parquet as pq

from engine.release import shard
from engine import storage
from engine.config import ReleaseConfig
from engine.release import saco_export, sam3i_export
from engine.release.streamed import MetaSpill
from engine.release.units import FrameUnits
from engine.report import md_text
from engine.release.split import SPLITS, assign_splits
from schemas.images import IMAGES
from schemas.instances import INSTANCES
from schemas.instructions import INSTRUCTIONS
from schemas.manifest import MANIFEST
from schemas.specs import CARDINALITIES, TIERS

log = logging.getLogger(__name__)

RELEASE_MARKER = "_RELEASE.json"
LOCK_NAME = "_LOCK"
FORMAT = "sam3i-engine-release/1"
CONTENT_CONFIG = ("shard_max_count", "shard_max_bytes", "val_fraction", "shard_by_unit")


class ReleaseError(RuntimeError):
    """Base class: the message names the release and the problem."""


class ReleaseLockedError(ReleaseError):
    pass


class ReleaseExistsError(ReleaseError):
    pass


class PublishError(ReleaseError):
    pass


class NotAReleaseError(ReleaseError):
    pass


@dataclass(frozen=True)
class ReleaseInfo:
    uri: str
    release_id: str
    counts: dict
    files: dict[str, dict]       # relative path -> {"sha256", "size"}
    reused: bool = False         # the path already held this release; nothing was written


def release_id_for(inputs_fingerprint: str, cfg: ReleaseConfig, code_version: str) -> str:
    content_cfg = {k: getattr(cfg, k) for k in CONTENT_CONFIG}
    blob = json.dumps([inputs_fingerprint, content_cfg, code_version], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# ------------------------------------------------------------------ inputs


def _check_references(images: pd.DataFrame, instances: pd.DataFrame, accepted: pd.DataFrame) -> None:
    problems = _reference_problems(images, instances, accepted)
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ValueError("; ".join(problems[:10]) + more)


def _reference_problems(images: pd.DataFrame, instances: pd.DataFrame, accepted: pd.DataFrame) -> list[str]:
    image_ids = set(images["image_id"])
    image_of = dict(zip(instances["instance_id"], instances["image_id"]))
    problems = []
    for row in accepted.itertuples(index=False):
        where = f"instructions: instruction {row.instruction_id}"
        if row.image_id not in image_ids:
            problems.append(f"{where} refers to image {row.image_id}, which is not in the images table")
            continue
        for t in row.target_ids:
            if image_of.get(t) != row.image_id:
                problems.append(f"{where} targets instance {t}, which is not an instance of image {row.image_id}")
        if (row.cardinality == "negative") != (len(row.target_ids) == 0):
            problems.append(f"{where}: cardinality {row.cardinality} with {len(row.target_ids)} target(s)")
    return problems


# ------------------------------------------------------------------ staging


def _read_image(uri: str) -> bytes:
    try:
        return storage.read_bytes(uri)
    except Exception as e:
        raise ReleaseError(f"{uri}: cannot read the image ({type(e).__name__}: {e})") from e


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


LICENCE_COLUMNS = ["source_id", "license", "license_name", "license_url"]


def _licence_counts(used: pd.DataFrame) -> dict[tuple, int]:
    """Images per (source, licence id, name, url), nulls as None."""
    keyed = used[LICENCE_COLUMNS].astype(object).where(used[LICENCE_COLUMNS].notna(), None)
    rows: dict[tuple, int] = {}
    for key in keyed.itertuples(index=False, name=None):
        rows[key] = rows.get(key, 0) + 1
    return rows


def _licence_rows(rows: dict[tuple, int]) -> list[dict]:
    return [dict(zip(LICENCE_COLUMNS, k), images=n)
            for k, n in sorted(rows.items(), key=lambda kv: [str(v) for v in kv[0]])]


class _Tally:
    """The value counts `_counts` takes from the manifest and rejected tables, added up one
    unit at a time."""

    FIELDS = ("tier", "cardinality", "subtype", "category", "split")

    def __init__(self):
        self.manifest = {f: {} for f in self.FIELDS}
        self.tier_card: dict[str, dict] = {t: {} for t in TIERS}
        self.reasons: dict = {}
        self.instructions = self.rejected = 0

    @staticmethod
    def _add(d: dict, values) -> None:
        for v in values:
            if v is not None and not (isinstance(v, float) and v != v):   # value_counts drops nulls
                d[v] = d.get(v, 0) + 1

    def add(self, manifest: pd.DataFrame, rejected: pd.DataFrame) -> None:
        self.instructions += len(manifest)
        self.rejected += len(rejected)
        for f in self.FIELDS:
            self._add(self.manifest[f], manifest[f].tolist())
        for t in TIERS:
            self._add(self.tier_card[t], manifest.loc[manifest["tier"] == t, "cardinality"].tolist())
        self._add(self.reasons, rejected["reject_reason"].tolist())


def _vc(d: dict) -> dict:
    return {str(k): int(v) for k, v in sorted(d.items())}


def _counts(tally: _Tally, shards: list[shard.ShardInfo],
            sam3i_entries: dict[str, int], n_images: int, licences: list[dict] | None = None,
            sam3i_files: list[dict] | None = None, saco_entries: dict[str, int] | None = None,
            sam3i_excluded: int = 0) -> dict:
    m = tally.manifest
    return {
        "images_in": n_images,
        "samples": {s: sum(x.nsamples for x in shards if x.split == s) for s in SPLITS},
        "shards": {s: sum(1 for x in shards if x.split == s) for s in SPLITS},
        "sam3i_entries": sam3i_entries,
        "sam3i_excluded": sam3i_excluded,
        "sam3i_files": sam3i_files or [],
        "saco_entries": saco_entries or {},
        "instructions": int(tally.instructions),
        "by_split": {s: int(m["split"].get(s, 0)) for s in SPLITS},
        "by_tier": {t: int(m["tier"].get(t, 0)) for t in TIERS},
        "by_cardinality": {c: int(m["cardinality"].get(c, 0)) for c in CARDINALITIES},
        "by_tier_cardinality": {t: _vc(tally.tier_card[t]) for t in TIERS},
        "by_subtype": _vc(m["subtype"]),
        "by_category": _vc(m["category"]),
        "rejected": int(tally.rejected),
        "rejected_by_reason": _vc(tally.reasons) if tally.rejected else {},
        "images_by_source_licence": licences or [],
    }


class _Code(str):
    """A table cell the release itself wrote (a file path): shown as code, not escaped."""


def _cell(c) -> str:
    return f"`{c.replace('`', '')}`" if isinstance(c, _Code) else md_text(c)   # names come from sources


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _hf_feature(name: str, spec, indent: int) -> list[str]:
    """One HuggingFace card feature (YAML lines) from a shard.SAMPLE_SCHEMA node."""
    pad = " " * indent
    if isinstance(spec, dict):
        out = [f"{pad}- name: {name}", f"{pad}  struct:"]
        for k, sub in spec.items():
            out += _hf_feature(k, sub, indent + 2)
        return out
    if isinstance(spec, list):
        if isinstance(spec[0], (dict, list)):
            out = [f"{pad}- name: {name}", f"{pad}  list:"]
            for k, sub in spec[0].items():
                out += _hf_feature(k, sub, indent + 2)
            return out
        return [f"{pad}- name: {name}", f"{pad}  list: {spec[0]}"]
    return [f"{pad}- name: {name}", f"{pad}  dtype: {spec}"]


def card_front_matter(counts: dict) -> str:
    """YAML front matter for HuggingFace `datasets`: `configs:` points `load_dataset(<release
    dir>)` at the shards of each split (without it, it would pick up the JSON files), and
    `dataset_info.features` declares the sample schema (shard.SAMPLE_SCHEMA) and one image
    column per format, so nothing is inferred from a few samples: every sample loads, whatever
    its image format, with its json unchanged."""
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in SPLITS:
        if counts["shards"].get(split):
            lines += [f"  - split: {split}", f"    path: shards/{split}-*.tar"]
    if not any(counts["shards"].get(s) for s in SPLITS):
        lines[-1] = "  data_files: []"
    lines += ["dataset_info:", "  config_name: default", "  features:"]
    lines += [f"  - name: {ext}\n    dtype: image" for ext in shard.IMAGE_MEMBER_EXTS]
    lines += _hf_feature("json", shard.SAMPLE_SCHEMA, 2)
    lines += ["  - name: __key__", "    dtype: string", "  - name: __url__", "    dtype: string"]
    return "\n".join(lines + ["---"])


def render_card(card: dict, counts: dict, release_id: str) -> str:
    """The dataset card: counts computed here, then the given sections verbatim, in order."""
    title = card.get("title", "SAM3-I instruction dataset")
    tc = counts["by_tier_cardinality"]
    parts = [
        card_front_matter(counts),
        f"# {title}",
        f"Release `{release_id}`: {counts['instructions']} accepted instructions on "
        f"{sum(counts['samples'].values())} images ({counts['by_split']['train']} train / "
        f"{counts['by_split']['val']} val instructions), {counts['rejected']} rejected candidates.",
        "## Instructions per tier and cardinality",
        _table(["tier"] + list(CARDINALITIES) + ["total"],
               [[t] + [tc[t].get(c, 0) for c in CARDINALITIES] + [counts["by_tier"][t]] for t in TIERS]),
        "## Instructions per subtype",
        _table(["subtype", "instructions"], [[k, v] for k, v in counts["by_subtype"].items()]),
        "## Instructions per category",
        _table(["category", "instructions"], [[k, v] for k, v in counts["by_category"].items()]),
        "## Splits",
        _table(["split", "images", "shards", "SAM3-I entries", "instructions"],
               [[s, counts["samples"][s], counts["shards"][s], counts["sam3i_entries"][s], counts["by_split"][s]]
                for s in SPLITS]),
        "## SAM3-I training files",
        "One folder per training stage and cardinality (`sam3i/<stage>/<cardinality>/sam3i_<split>.json`); "
        "`sam3i/hydra_datasets.yaml` is the dataset list to paste into the SAM3-I Hydra configs, "
        "`sam3i/datasets.json` the same list for tools. SA-Co files for SAM3's evaluation: "
        "`saco/saco_<split>.json`. Loaders: `load_dataset(<release dir>)` (HuggingFace), "
        "`wids.ShardListDataset(\"index-<split>.json\")`, webdataset over `shards/<split>-*.tar` "
        "(the image member keeps its format's extension: `jpg`, `png` or `webp`).",
        _table(["file", "stage", "split", "eval mode", "entries"],
               [[_Code(r["path"]), r["stage"], r["split"], r["eval_mode"], r["entries"]]
                for r in counts.get("sam3i_files", [])]) if counts.get("sam3i_files") else "No SAM3-I file.",
        f"{counts.get('sam3i_excluded', 0)} target(s) left out of the SAM3-I files because the trainer's crowd "
        "filter would change them (listed in `sam3i/datasets.json`).",
        "## Rejection reasons",
        _table(["reason", "candidates"], [[k or "(none given)", v] for k, v in counts["rejected_by_reason"].items()])
        if counts["rejected_by_reason"] else "No candidate was rejected.",
        "## Images per source and licence",
        _table(["source", "licence id", "licence", "url", "images"],
               [[r["source_id"], r["license"] or "-", r["license_name"] or "(not given by the source)",
                 r["license_url"] or "-", r["images"]] for r in counts.get("images_by_source_licence", [])])
        if counts.get("images_by_source_licence") else "No image in this release.",
    ]
    for name, body in card.items():
        if name == "title":
            continue
        text = body if isinstance(body, str) else "```json\n" + json.dumps(body, indent=2, sort_keys=True, default=str) + "\n```"
        text = text.strip()
        first, _, rest = text.partition("\n")
        if first.lstrip("#").strip() == name and first.startswith("#"):  # the body brings its own heading
            text = rest.strip()
        parts += [f"## {name}", text]
    return "\n\n".join(parts) + "\n"


def previous_shards(uri: str | None) -> shard.Reuse | None:
    """What an earlier local release offers for carrying shards over: content digest -> (file,
    size, sha256), from its index.json, for shards whose file still has the recorded size.
    None when there is no such release (or it is on S3: shards are then written afresh)."""
    if not uri or storage.is_s3(uri):
        return None
    try:
        release = open_release(uri)
        table = release.index["shardlist"]
    except (ReleaseError, OSError, ValueError, KeyError):
        return None
    offer: dict[str, tuple[Path, int, str]] = {}
    for s in table:
        path = Path(uri) / s["url"]
        want = release.info["files"].get(s["url"], {})
        if s.get("content") and want.get("sha256") == s["sha256"] and path.is_file() \
                and path.stat().st_size == s["filesize"]:
            offer[s["content"]] = (path, s["filesize"], s["sha256"])
    return offer.get if offer else None


def _sam3i_ids(accepted: pd.DataFrame, sample_key: pd.Series, first_entry: dict[str, int]) -> list[int]:
    """Each accepted instruction's SAM3-I entry id: its sample's first entry id plus the rank of
    its target among the sample's targets (shard.target_groups orders them by target key)."""
    tks = [shard.target_key(ids, c) for ids, c in zip(accepted["target_ids"], accepted["category"])]
    per_image: dict[str, set] = {}
    for i, tk in zip(accepted["image_id"], tks):
        per_image.setdefault(i, set()).add(tk)
    rank = {i: {tk: k for k, tk in enumerate(sorted(s))} for i, s in per_image.items()}
    return [first_entry[key] + rank[i][tk] for i, tk, key in zip(accepted["image_id"], tks, sample_key)]


def _write_tables(root: Path, units, plan: _Plan, first_entry: dict[str, int],
                  shard_of_key: dict[str, str]) -> _Tally:
    """manifest.parquet and rejected.parquet: each unit's rows sorted by instruction id into a
    scratch file, then merged (engine/release/streamed.py), as if the whole tables were sorted."""
    from engine.release.streamed import merge_sorted_parts, write_sorted_part

    tmp = root / ".tables"
    tmp.mkdir()
    tally = _Tally()
    parts: dict[str, list[Path]] = {"manifest": [], "rejected": []}
    try:
        for u in plan.units:
            instr = units.instructions(u)
            accepted, rejected = instr[instr["accepted"]], instr[~instr["accepted"]]
            keys = plan.used.reindex(accepted["image_id"])
            manifest = accepted.assign(split=keys["split"].to_numpy(), sample_key=keys["sample_key"].to_numpy())
            img = units.images(u, ["image_id", "sha256"]).set_index("image_id")["sha256"]
            manifest = manifest.assign(image_sha256=manifest["image_id"].map(img),
                                       sam3i_id=_sam3i_ids(manifest, manifest["sample_key"], first_entry)
                                       if len(manifest) else [])
            manifest = manifest.assign(shard=manifest["sample_key"].map(shard_of_key))
            manifest = MANIFEST.validate(manifest)
            tally.add(manifest, rejected)
            for name, table, df in (("manifest", MANIFEST, manifest), ("rejected", INSTRUCTIONS, rejected)):
                if len(df):
                    path = tmp / f"{name}-{len(parts[name]):06d}.arrow"
                    write_sorted_part(path, table.to_arrow(df.reset_index(drop=True)))
                    parts[name].append(path)
        merge_sorted_parts(parts["manifest"], "instruction_id", root / "manifest.parquet", MANIFEST.arrow)
        merge_sorted_parts(parts["rejected"], "instruction_id", root / "rejected.parquet", INSTRUCTIONS.arrow)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tally


KEY_COLUMNS = ["image_id", "source_id", "orig_id", "file_name", "sha256", "unit_id"]


@dataclass
class _Plan:
    """Per-image keys of the whole release (small: no rows, masks or texts): split, sample key
    and unit rank of every image with an accepted instruction."""
    n_images: int
    units: list[str]                  # in rank order
    unit_rank: dict[str, int]
    used: pd.DataFrame                # image_id -> split, sample_key, split_order, unit_rank


def _plan(units, cfg: ReleaseConfig) -> _Plan:
    keys, used_ids = [], set()
    for u in units.unit_ids():
        keys.append(units.images(u, KEY_COLUMNS))
        acc = units.instructions(u, ["image_id", "accepted"])
        used_ids.update(acc.loc[acc["accepted"], "image_id"])
    images = pd.concat(keys, ignore_index=True) if keys else IMAGES.empty()[KEY_COLUMNS]
    images = images.assign(split=assign_splits(images, cfg.val_fraction))
    # units in source order (by their first image's id): appended images land in the last units,
    # so with shard_by_unit the shards of earlier units stay as they were
    first = images.groupby("unit_id")[["source_id", "orig_id"]].min().sort_values(["source_id", "orig_id"])
    ranked = list(first.index)
    unit_rank = {u: k for k, u in enumerate(ranked)} if cfg.shard_by_unit else {}
    used = images[images["image_id"].isin(used_ids)]
    skeys = shard.sample_keys(used["image_id"])
    used = used.assign(sample_key=used["image_id"].map(skeys), split_order=used["split"].map(SPLITS.index),
                       unit_rank=used["unit_id"].map(unit_rank).fillna(0).astype(int))
    ordered = ranked + sorted(set(units.unit_ids()) - set(ranked))   # units with instructions only
    return _Plan(len(images), ordered, unit_rank,
                 used.set_index("image_id")[["split", "sample_key", "split_order", "unit_rank"]])


def _unit_accepted(units, u: str, plan: _Plan, check: bool):
    """The unit's accepted and rejected instructions, its used images (with their keys) and
    instances; references checked when `check`."""
    instr = units.instructions(u)
    accepted = instr[instr["accepted"]]
    rejected = instr[~instr["accepted"]]
    images = units.images(u)
    instances = units.instances(u)
    if check:
        _check_references(images, instances, accepted)
    used = images[images["image_id"].isin(plan.used.index)]
    used = used.join(plan.used, on="image_id")
    return accepted, rejected, used, instances


def stage_release(root: Path, units, card: dict, cfg: ReleaseConfig, release_id: str, inputs_fingerprint: str,
                  code_version: str, reuse: shard.Reuse | None = None, check_references: bool = True) -> dict:
    """Write every release file under `root`; return the `_RELEASE.json` payload (not written).

    `units` (engine/release/units.py) serves the images, instances and instructions one work
    unit at a time, and the release holds one unit's rows at a time: every sample's json goes
    to a scratch file as it is made, shards are planned from per-image keys and read it back,
    and the manifest and rejected tables are written per unit, then merged by instruction id
    in row groups. `reuse` (previous_shards) offers an earlier release's shards to carry over.
    `check_references`: check each unit's accepted instructions against its images and
    instances (the caller may have checked them already)."""
    plan = _plan(units, cfg)
    spill = MetaSpill(root / ".samples.spill")
    seen = sam3i_export.CategorySeen()
    licences: dict[tuple, int] = {}
    index: list[tuple] = []   # per sample: order, then what planning and reading it needs

    def load(uri: str, sha: str, image_id: str, file_name: str) -> Callable[[], bytes]:
        def read() -> bytes:
            data = _read_image(uri)
            if hashlib.sha256(data).hexdigest() != sha:
                raise ValueError(f"{uri}: image {image_id} changed since ingest (sha256 differs)")
            shard.image_extension(data, file_name)   # refuse formats the reader would refuse
            return data
        return read

    def samples() -> Iterator[shard.PlannedSample]:
        for order, split, key, group, offset, length, sha, nbytes, uri, image_id, file_name in sorted(index):
            yield shard.PlannedSample(split, key, sha, nbytes, spill.read(offset, length),
                                      load(uri, sha, image_id, file_name), group=group)

    with spill:
        for u in plan.units:
            accepted, _, used, instances = _unit_accepted(units, u, plan, check_references)
            # rows grouped per image once, as plain tuples: per-image DataFrame work cost more than the rest
            inst_by_image: dict[str, list] = {}
            for r in instances.sort_values(["orig_id", "instance_id"]).itertuples(index=False):
                inst_by_image.setdefault(r.image_id, []).append(r)
            instr_by_image: dict[str, list] = {}
            for r in accepted.itertuples(index=False):
                instr_by_image.setdefault(r.image_id, []).append(r)
            for k, n in _licence_counts(used).items():
                licences[k] = licences.get(k, 0) + n
            for img in used.itertuples(index=False):
                meta = {
                    "image": shard.image_record(img, img.split, img.sample_key),
                    "instances": [shard.instance_record(r) for r in inst_by_image.get(img.image_id, [])],
                    "targets": shard.target_groups(instr_by_image[img.image_id]),
                }
                seen.note(meta, (img.split_order, img.sample_key))
                json_bytes = shard.encode_json(meta)
                offset = spill.add(img.split, img.sample_key, json_bytes)
                index.append(((img.split_order, img.unit_rank, img.sample_key), img.split, img.sample_key,
                              img.unit_rank, offset, len(json_bytes), img.sha256, int(img.n_bytes), img.uri,
                              img.image_id, img.file_name))
        shards = shard.write_planned(samples(), root, cfg.shard_max_count, cfg.shard_max_bytes, reuse=reuse)
        del index
        shard_of_key = {k: s.path for s in shards for k in s.keys}
        categories = seen.table()
        # the exports list entries by sample key per split, however the shards are cut
        exported = sam3i_export.write_export(root, {s: spill.metas(s) for s in SPLITS}, categories, release_id)
        saco_entries, saco_hashes = saco_export.write_export(root, {s: spill.metas(s) for s in SPLITS}, categories)

    tally = _write_tables(root, units, plan, exported["first_entry"], shard_of_key)
    index = {
        "name": f"sam3i-{release_id}",
        "shardlist": [{"url": s.path, "nsamples": s.nsamples, "filesize": s.filesize, "sha256": s.sha256,
                       "split": s.split, "content": s.content} for s in shards],
    }
    (root / "index.json").write_bytes(json.dumps(index, indent=1, sort_keys=True).encode())
    for split in SPLITS:  # wids indexes: one per split, urls relative to the index file
        wids_index = {"wids_version": 1, "name": f"sam3i-{release_id}-{split}",
                      "shardlist": [{"url": s.path, "nsamples": s.nsamples, "filesize": s.filesize,
                                     "sha256": s.sha256} for s in shards if s.split == split]}
        (root / f"index-{split}.json").write_bytes(json.dumps(wids_index, indent=1, sort_keys=True).encode())

    counts = _counts(tally, shards, exported["entries"], plan.n_images, _licence_rows(licences),
                     exported["files"], saco_entries, exported["excluded"])
    (root / "README.md").write_text(render_card(card, counts, release_id), encoding="utf-8")

    known = {s.path: {"sha256": s.sha256, "size": s.filesize} for s in shards}   # hashed while written
    known.update(exported["hashes"])
    known.update(saco_hashes)
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            files[rel] = known.get(rel) or {"sha256": _sha256_file(p), "size": p.stat().st_size}
    return {
        "format": FORMAT,
        "release_id": release_id,
        "inputs_fingerprint": inputs_fingerprint,
        "code_version": code_version,
        "config": cfg.model_dump(mode="json"),
        "counts": counts,
        "files": files,
    }


# ------------------------------------------------------------------ locks


def _holder() -> dict:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return {"host": socket.gethostname(), "pid": os.getpid(), "user": user,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "lock_id": uuid.uuid4().hex}


def _locked_error(release_uri: str, lock_uri: str, raw: bytes | None) -> ReleaseLockedError:
    try:
        h = json.loads(raw) if raw else {}
        who = f"{h['user']}@{h['host']} (pid {h['pid']}) since {h['since']}"
    except Exception:
        who = "an unknown holder"
    return ReleaseLockedError(
        f"release {release_uri} is locked by {who}: another build is publishing it (lock {lock_uri}). "
        f"If that build is no longer running, delete {lock_uri} and retry.")


def _held_by_dead_process(raw: bytes | None) -> bool:
    """True when a lock names a process on this host that no longer exists. Locks of other
    hosts are never judged: their builds may be running."""
    try:
        holder = json.loads(raw)
        host, pid = holder["host"], holder["pid"]
    except Exception:
        return False
    if host != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


class _Lock:
    """Exclusive lock on a release path: O_EXCL file locally, conditional put on S3."""

    def __init__(self, release_uri: str):
        self.release_uri = release_uri
        if storage.is_s3(release_uri):
            self.uri = storage.join(release_uri, LOCK_NAME)
        else:
            p = Path(release_uri)
            self.uri = str(p.parent / f"{p.name}.lock")
        self.holder = _holder()
        self.body = json.dumps(self.holder, sort_keys=True).encode()

    def __enter__(self):
        try:
            self._acquire()
        except ReleaseLockedError:
            raw = storage.read_or_none(self.uri)
            if not _held_by_dead_process(raw):
                raise
            # a build on this machine was killed while it held the lock: a rerun must resume
            # without an operator (DESIGN.md section 2), so the lock is taken over
            log.warning("%s: taking over the lock of a build that is no longer running (%s)",
                        self.uri, raw.decode(errors="replace"))
            if storage.read_or_none(self.uri) == raw:  # still that dead build's lock
                storage.delete(self.uri)
            self._acquire()
        return self

    def _acquire(self) -> None:
        if storage.is_s3(self.uri):
            try:
                self._acquire_s3()
            except ReleaseLockedError:
                raise
            except Exception as e:
                raise ReleaseError(f"cannot take the lock {self.uri}: {type(e).__name__}: {e}") from e
        else:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.uri, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise _locked_error(self.release_uri, self.uri, storage.read_or_none(self.uri)) from None
            with os.fdopen(fd, "wb") as f:
                f.write(self.body)

    def _acquire_s3(self) -> None:
        from botocore.exceptions import ClientError

        bucket, key = storage.split_s3(self.uri)
        client = storage.s3_client()
        if storage.exists(self.uri):  # also the whole check where conditional puts are missing
            raise _locked_error(self.release_uri, self.uri, storage.read_or_none(self.uri))
        try:
            client.put_object(Bucket=bucket, Key=key, Body=self.body, IfNoneMatch="*")
        except ClientError as e:
            code = storage._error_code(e)
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise _locked_error(self.release_uri, self.uri, storage.read_or_none(self.uri)) from None
            if code not in ("NotImplemented", "501"):
                raise
            client.put_object(Bucket=bucket, Key=key, Body=self.body)  # no conditional puts: check-then-put
        if storage.read_or_none(self.uri) != self.body:  # lost a race on a store without conditional puts
            raise _locked_error(self.release_uri, self.uri, storage.read_or_none(self.uri))

    def __exit__(self, *exc):
        try:
            if storage.read_or_none(self.uri) == self.body:  # never remove another build's lock
                storage.delete(self.uri)
        except Exception as e:
            log.warning("could not release lock %s (%s); delete it by hand before the next build",
                        self.uri, type(e).__name__)
        return False


# ------------------------------------------------------------------ publish


def _read_marker(uri: str) -> dict | None:
    """The release's `_RELEASE.json`, None when absent; NotAReleaseError when unreadable."""
    marker_uri = storage.join(uri, RELEASE_MARKER)
    raw = storage.read_or_none(marker_uri)
    if raw is None:
        return None
    try:
        info = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NotAReleaseError(f"{marker_uri}: not valid JSON ({e}); the release cannot be trusted") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise NotAReleaseError(f"{marker_uri}: unknown format {found!r}, expected {FORMAT!r}")
    return info


def _existing(out_uri: str, release_id: str) -> ReleaseInfo | None:
    info = _read_marker(out_uri)
    if info is None:
        return None
    if info.get("release_id") != release_id:
        raise ReleaseExistsError(
            f"{out_uri} already holds release {info.get('release_id')}; releases are immutable, "
            f"so release {release_id} must go to a new path")
    return ReleaseInfo(out_uri, release_id, info["counts"], info["files"], reused=True)


RELEASE_ENTRIES = {"shards", "manifest.parquet", "rejected.parquet", "index.json", "index-train.json",
                   "index-val.json", "sam3i", "saco", "README.md", RELEASE_MARKER, LOCK_NAME}


def _check_only_release_files(out_uri: str) -> None:
    """Refuse to publish over anything that is not (part of) a release: publishing replaces
    what a failed build left there, and must never delete someone's unrelated files."""
    if storage.is_s3(out_uri) and not storage.split_s3(out_uri)[1]:
        raise ReleaseError(f"{out_uri}: publish into a prefix (s3://bucket/releases/v1), not a bucket root")
    if not storage.is_s3(out_uri) and Path(out_uri).exists() and not Path(out_uri).is_dir():
        raise ReleaseError(f"{out_uri} is a file, not a release folder")
    prefix = out_uri.rstrip("/") + "/"
    foreign = [u for u in storage.list_prefix(out_uri)
               if Path(u[len(prefix):]).parts[0] not in RELEASE_ENTRIES]
    if foreign:
        raise ReleaseError(f"{out_uri} holds files that are not part of a release (e.g. {foreign[0]}); "
                           f"refusing to publish over them: choose an empty or new path")


def _remove_stale_staging(out: Path) -> None:
    """Staging folders of this release left by killed builds (we hold the lock: none is live)."""
    for p in out.parent.glob(f".{out.name}.staging-*"):
        shutil.rmtree(p, ignore_errors=True)


def _publish_local(staging: Path, out_uri: str, payload: dict, on_published) -> None:
    out = Path(out_uri)
    if out.exists():  # a partial release (no _RELEASE.json) left by a failed build
        shutil.rmtree(out)
    os.rename(staging, out)
    for rel in payload["files"]:
        on_published(rel)
    storage.write_bytes(str(out / RELEASE_MARKER), json.dumps(payload, indent=1, sort_keys=True).encode())


def _publish_s3(staging: Path, out_uri: str, payload: dict, cfg: ReleaseConfig, on_published) -> None:
    files = list(payload["files"])
    order = sorted(f for f in files if f.startswith("shards/")) + sorted(f for f in files if not f.startswith("shards/"))
    current = None
    try:
        for rel in order:
            current = rel
            storage.upload_file(staging / rel, storage.join(out_uri, rel),
                                multipart_threshold=cfg.multipart_threshold,
                                attempts=cfg.upload_attempts, backoff_s=cfg.upload_backoff_s)
            on_published(rel)
        current = "objects left by an earlier failed build"
        keep = {storage.join(out_uri, f) for f in files} | {storage.join(out_uri, LOCK_NAME)}
        for uri in storage.list_prefix(out_uri):
            if uri not in keep:
                storage.delete(uri)
        try:  # housekeeping only: the parts cost storage but no reader ever sees them
            aborted = storage.abort_multipart_uploads(out_uri)
            if aborted:
                log.info("%s: aborted %d unfinished multipart upload(s) of an earlier failed build", out_uri, aborted)
        except Exception as e:
            log.warning("%s: could not abort unfinished multipart uploads (%s)", out_uri, type(e).__name__)
        current = RELEASE_MARKER
        storage.write_bytes(storage.join(out_uri, RELEASE_MARKER),
                            json.dumps(payload, indent=1, sort_keys=True).encode())
    except Exception as e:
        raise PublishError(
            f"publishing release {payload['release_id']} to {out_uri} failed at {current}: "
            f"{type(e).__name__}: {e}. No {RELEASE_MARKER} was written, so readers will not see "
            f"the partial upload; run the build again to finish it.") from e


def _frame_units(images: pd.DataFrame, instances: pd.DataFrame, instructions: pd.DataFrame,
                 validated: bool) -> FrameUnits:
    """Whole tables as units, checked once as a whole (the messages name the whole tables)."""
    if not validated:
        images = IMAGES.validate(images)
        instances = INSTANCES.validate(instances)
        instructions = INSTRUCTIONS.validate(instructions)
    _check_references(images, instances, instructions[instructions["accepted"]])
    return FrameUnits(images, instances, instructions)


def build_release(out_uri: str, images: pd.DataFrame, instances: pd.DataFrame, instructions: pd.DataFrame,
                  card: dict, cfg: ReleaseConfig, inputs_fingerprint: str, code_version: str,
                  on_published: Callable[[str], None] | None = None, previous: str | None = None,
                  validated: bool = False, units=None) -> ReleaseInfo:
    """Write a release to `out_uri` (local folder or s3:// prefix) and publish it atomically.

    `previous` names an earlier local release: each shard whose samples are unchanged is
    hard-linked (or copied) from it with its recorded checksum instead of being written.

    `on_published(relative_path)` is called after each file reaches its place (tests use it to
    interrupt a publish). The inputs are the three tables (validated here unless `validated`:
    the caller built them with their Tables' validation), or `units` (engine/release/units.py:
    a build's work directory, read one unit at a time; the tables are then None)."""
    on_published = on_published or (lambda rel: None)
    out_uri = str(out_uri).rstrip("/")
    release_id = release_id_for(inputs_fingerprint, cfg, code_version)
    with _Lock(out_uri):
        existing = _existing(out_uri, release_id)
        if existing is not None:
            log.info("%s already holds release %s; nothing to do", out_uri, release_id)
            return existing
        _check_only_release_files(out_uri)
        if storage.is_s3(out_uri):
            parent = None
        else:
            parent = Path(out_uri).parent
            parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_staging(Path(out_uri))
        staging = Path(tempfile.mkdtemp(prefix=f".{Path(out_uri).name}.staging-", dir=parent))
        staging.chmod(0o755)  # mkdtemp's 0700 would become the published folder's mode
        try:
            if units is None:
                units = _frame_units(images, instances, instructions, validated)
            payload = stage_release(staging, units, card, cfg, release_id, inputs_fingerprint, code_version,
                                    reuse=previous_shards(previous), check_references=not isinstance(units, FrameUnits))
            if storage.is_s3(out_uri):
                _publish_s3(staging, out_uri, payload, cfg, on_published)
            else:
                _publish_local(staging, out_uri, payload, on_published)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("published release %s to %s", release_id, out_uri)
    return ReleaseInfo(out_uri, release_id, payload["counts"], payload["files"])


# ------------------------------------------------------------------ open


@dataclass
class Release:
    """A published release: its `_RELEASE.json` plus lazy access to the tables it lists."""

    uri: str
    info: dict = field(repr=False)

    @property
    def release_id(self) -> str:
        return self.info["release_id"]

    @property
    def counts(self) -> dict:
        return self.info["counts"]

    def file_uri(self, rel: str) -> str:
        return storage.join(self.uri, rel)

    @cached_property
    def manifest(self) -> pd.DataFrame:
        return pq.read_table(io.BytesIO(storage.read_bytes(self.file_uri("manifest.parquet")))).to_pandas()

    @cached_property
    def rejected(self) -> pd.DataFrame:
        return pq.read_table(io.BytesIO(storage.read_bytes(self.file_uri("rejected.parquet")))).to_pandas()

    @cached_property
    def index(self) -> dict:
        return json.loads(storage.read_bytes(self.file_uri("index.json")))

    @cached_property
    def sam3i_datasets(self) -> dict:
        """`sam3i/datasets.json`: every SAM3-I file with its stage, split, cardinality, eval mode."""
        return json.loads(storage.read_bytes(self.file_uri("sam3i/datasets.json")))

    def sam3i(self, split: str) -> dict[str, dict]:
        """relative path -> COCO dict of every SAM3-I file of a split."""
        return {r["path"]: json.loads(storage.read_bytes(self.file_uri(r["path"])))
                for r in self.sam3i_datasets["files"] if r["split"] == split}

    def saco(self, split: str) -> dict:
        return json.loads(storage.read_bytes(self.file_uri(f"saco/saco_{split}.json")))

    def shard_uris(self, split: str | None = None) -> list[str]:
        return [self.file_uri(s["url"]) for s in self.index["shardlist"] if split in (None, s["split"])]

    def verify_checksums(self) -> list[str]:
        """Re-hash every file `_RELEASE.json` lists; the problems found (empty when intact)."""
        problems = []
        for rel, want in sorted(self.info["files"].items()):
            uri = self.file_uri(rel)
            h, size = hashlib.sha256(), 0
            try:
                with storage.open_read(uri) as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                        size += len(chunk)
            except Exception as e:
                problems.append(f"{uri}: cannot read ({type(e).__name__}: {e})")
                continue
            if size != want["size"] or h.hexdigest() != want["sha256"]:
                problems.append(f"{uri}: expected {want['size']} bytes sha256 {want['sha256']}, "
                                f"found {size} bytes sha256 {h.hexdigest()}")
        return problems


def open_release(uri: str) -> Release:
    uri = str(uri).rstrip("/")
    info = _read_marker(uri)
    if info is None:
        raise NotAReleaseError(
            f"{uri} has no {RELEASE_MARKER}: it is not a published release (its build failed or "
            f"is still running), so it is refused")
    return Release(uri, info)
