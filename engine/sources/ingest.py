"""Ingest COCO-style sources into the images / instances / quarantine tables.

A source is one COCO json plus an image folder, local or s3:// (all reads go through
engine.storage). Several sources go into one build; their ids are namespaced as
"<source_id>:<orig_id>" so they never collide.

Bad records never stop a build: each is quarantined with a reason code from
schemas.quarantine.REASONS and a detail a person can act on, and everything else is kept.
Only a file that cannot be read as COCO at all (missing, malformed json, missing top-level
keys), or a store that fails as a whole (S3 unreachable), raises IngestError.

Work happens in two passes: a json-level pass over records (ids, references, paths), then
`ingest_image` per image, which reads the image bytes once (hash, header, full decode) and
decodes that image's masks. `ingest_image` takes and returns plain picklable values so that a
pipeline can fan it out; here it runs on a thread per CPU, and an `ImageCache` (kept in the
build's work directory) skips images whose file and records did not change, so a refresh
neither reads nor decodes them again.

Duplicate ids: exact repeats of a record keep the first copy and quarantine the others;
copies that disagree are all quarantined, since nothing says which one is right.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import posixpath
import re
import stat
import warnings
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils

from engine.sources import imageio
from engine.scene import masks
from engine import storage
from engine.workdir import read_table, write_table
from engine.config import IngestConfig
from engine.sources.units import assign_units
from schemas.images import IMAGES
from schemas.instances import INSTANCES
from schemas.quarantine import QUARANTINE

REQUIRED_KEYS = ("images", "annotations", "categories")
DEFAULT_ANNOTATIONS = "instances.json"
DEFAULT_IMAGES = "images"


class IngestError(ValueError):
    """A source cannot be read as COCO at all (the message names the file and the problem)."""


# ---------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceSpec:
    source_id: str
    annotations_uri: str      # the COCO json, YOLO data.yaml or LabelMe folder
    images_uri: str
    format: str = "coco"      # engine.sources.FORMATS


def _parent(uri: str) -> str:
    if storage.is_s3(uri):
        return posixpath.dirname(uri.rstrip("/"))
    return os.path.dirname(uri)


def _basename(uri: str) -> str:
    return posixpath.basename(uri.rstrip("/")) if storage.is_s3(uri) else os.path.basename(os.path.normpath(uri))


def sanitise_source_id(name: str) -> str:
    """A source id safe in ids and paths: letters, digits, '.', '_' and '-' only (no ':')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    if not cleaned:
        raise IngestError(f"cannot make a source id from {name!r}; pass source_id explicitly")
    return cleaned


def resolve_source(arg: str, images: str | None = None, source_id: str | None = None,
                   format: str | None = None) -> SourceSpec:
    """SourceSpec from a COCO json file, a folder holding one, a YOLO data.yaml (or its
    folder) or a folder of LabelMe json files (engine.sources.detect_format).

    COCO: a json argument takes its images from the `images/` folder beside it, or from its
    own folder when there is no `images/` (Roboflow's `_annotations.coco.json`), unless
    `images` is given. The default source id is the folder's name; for a json not named
    instances.json it is "<folder>-<json stem>", so that train.json and val.json of one
    folder stay apart (Roboflow: "<dataset folder>-<split folder>"). YOLO: image
    paths are relative to data.yaml's folder. LabelMe: images are found by each file's
    `imagePath`, relative to the json.
    """
    from engine.sources import detect_format
    from engine.sources.coco import ROBOFLOW_JSON, find_coco_json

    arg = str(arg)
    if not storage.is_s3(arg):
        arg = os.path.abspath(os.path.expanduser(arg))
    fmt = format or detect_format(arg)
    if fmt == "yolo_seg":
        yaml_path = arg if arg.endswith((".yaml", ".yml")) else next(
            (os.path.join(arg, n) for n in ("data.yaml", "data.yml") if os.path.exists(os.path.join(arg, n))),
            os.path.join(arg, "data.yaml"))
        folder = _parent(yaml_path)
        if not os.path.isfile(yaml_path):
            raise IngestError(f"{yaml_path}: data.yaml not found (source argument {arg!r})")
        return SourceSpec(sanitise_source_id(source_id or _basename(folder)), yaml_path,
                          os.path.abspath(images) if images else folder, "yolo_seg")
    if fmt == "labelme":
        if not os.path.isdir(arg):
            raise IngestError(f"{arg}: LabelMe folder not found")
        return SourceSpec(sanitise_source_id(source_id or _basename(arg)), arg,
                          os.path.abspath(images) if images else arg, "labelme")
    if not storage.is_s3(arg) and os.path.isdir(arg) and not os.path.exists(os.path.join(arg, DEFAULT_ANNOTATIONS)):
        arg = find_coco_json(arg) or arg
    if arg.lower().endswith(".json"):
        annotations_uri = arg
        folder = _parent(arg)
        stem = _basename(arg)[: -len(".json")]
        default_id = _basename(folder) if stem == "instances" else f"{_basename(folder)}-{stem}"
        if _basename(arg) == ROBOFLOW_JSON:     # <dataset>/<split>/_annotations.coco.json
            default_id = f"{_basename(_parent(folder))}-{_basename(folder)}"
        if images is None and not storage.is_s3(arg) and not os.path.isdir(os.path.join(folder, DEFAULT_IMAGES)):
            images = folder       # Roboflow, CVAT: the images lie beside the json
    else:
        folder = arg.rstrip("/") if storage.is_s3(arg) else arg
        annotations_uri = storage.join(folder, DEFAULT_ANNOTATIONS)
        default_id = _basename(folder)
    images_uri = images if images is not None else storage.join(folder, DEFAULT_IMAGES)
    if not storage.is_s3(images_uri):
        images_uri = os.path.abspath(os.path.expanduser(images_uri))
    try:
        found = storage.exists(annotations_uri)
    except Exception as e:
        raise IngestError(f"{annotations_uri}: cannot check the annotation file ({type(e).__name__}: {e})") from None
    if not found:
        raise IngestError(f"{annotations_uri}: annotation file not found (source argument {arg!r})")
    if not storage.is_s3(images_uri) and not os.path.isdir(images_uri):
        raise IngestError(f"{images_uri}: image folder not found (source argument {arg!r}); pass images=...")
    sid = sanitise_source_id(source_id if source_id is not None else default_id)
    return SourceSpec(source_id=sid, annotations_uri=annotations_uri, images_uri=images_uri)


# ---------------------------------------------------------------- results


@dataclass
class IngestResult:
    images: pd.DataFrame
    instances: pd.DataFrame
    quarantine: pd.DataFrame


TABLE_FILES = {"images": IMAGES, "instances": INSTANCES, "quarantine": QUARANTINE}


def write_tables(result: IngestResult, out_dir: str | Path) -> dict[str, Path]:
    """Write <out_dir>/{images,instances,quarantine}.parquet, each atomically (temp + rename)."""
    paths = {name: Path(out_dir) / f"{name}.parquet" for name in TABLE_FILES}
    for name, table in TABLE_FILES.items():
        write_table(paths[name], table, table.validate(getattr(result, name)))
    return paths


def read_tables(in_dir: str | Path) -> IngestResult:
    return IngestResult(**{name: read_table(Path(in_dir) / f"{name}.parquet", table)
                           for name, table in TABLE_FILES.items()})


# ---------------------------------------------------------------- per-image work


@dataclass
class ImageJob:
    """Everything `ingest_image` needs; plain values only, so it pickles for a worker."""

    source_id: str
    file: str                      # the annotation file, for quarantine rows
    image_uri: str
    record: dict                   # the image record (already checked at json level)
    annotations: list[dict]        # its annotations (ids, references already checked)
    categories: dict[int, tuple[str, str]]  # category id -> (name, supercategory)
    license: tuple[str | None, str | None] = (None, None)  # (name, url) from the source's `licenses`
    images_root: str = ""          # the source's image folder / prefix: nothing outside it is read


@dataclass
class ImageOutcome:
    image: dict | None
    instances: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)


class _Reject(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _qrow(source_id: str, file: str, record_type: str, record_id, reason: str, detail: str) -> dict:
    return {"source_id": source_id, "file": file, "record_type": record_type,
            "record_id": str(record_id), "reason": reason, "detail": detail}


def _check_pixels(data: bytes, want_w: int, want_h: int, cfg: IngestConfig) -> str:
    """Header size (bomb check before any decode), format and pixel mode (engine.sources.imageio's one
    list), JSON size against the picture (EXIF orientation decided by engine.sources.imageio's rule),
    then a full decode. Returns the orientation choice recorded in the images table."""
    with warnings.catch_warnings():
        # Our own limit (cfg.max_pixels) decides; PIL's warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as e:
            raise _Reject("decompression_bomb", f"PIL refused the header: {e}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise _Reject("unreadable_image", f"not a readable image: {e}") from None
        with im:
            w, h = im.size
            if w * h > cfg.max_pixels:
                raise _Reject("decompression_bomb",
                              f"header says {w}x{h} = {w * h} pixels, over the limit of {cfg.max_pixels}")
            try:
                imageio.check_format(im)
                imageio.check_mode(im)
            except imageio.UnsupportedImage as e:
                raise _Reject(e.reason, e.detail) from None
            if cfg.verify_pixels:
                # before the EXIF lookup: reading a PNG's EXIF loads the image, and a failure
                # there would leave PIL holding a half-decoded image that reports no error
                try:
                    im.load()
                except Image.DecompressionBombError as e:
                    raise _Reject("decompression_bomb", str(e)) from None
                except (OSError, SyntaxError, ValueError, EOFError) as e:
                    raise _Reject("unreadable_image", f"{im.format or 'image'} does not decode fully: {e}") from None
            exif = imageio.orientation(im)
            if imageio.applies_orientation(im, (want_w, want_h)):
                choice = f"exif:{exif}"
            elif (w, h) == (want_w, want_h):
                choice = "file" if exif == 1 else f"file (exif:{exif} not applied: the json size is the stored size)"
            else:
                ow, oh = imageio.oriented_size(im)
                note = (f"; with its EXIF orientation {exif} applied it is {ow}x{oh}, which does not match either"
                        if exif != 1 else "; it has no EXIF orientation that would explain the difference")
                raise _Reject("size_mismatch", f"json says {want_w}x{want_h} (w x h) but the file is {w}x{h}{note}")
            return choice


def _is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    """False for NaN, infinities and integers too large for a float (json allows them)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _polygons_rle(seg: list, h: int, w: int, margin: float) -> list:
    polys = [seg] if seg and all(_is_number(v) for v in seg) else seg  # a flat list is one polygon
    if not polys:
        raise _Reject("bad_polygon", "empty polygon list")
    lo_x, hi_x, lo_y, hi_y = -margin * w, (1 + margin) * w, -margin * h, (1 + margin) * h
    for i, poly in enumerate(polys):
        if not isinstance(poly, list) or not all(_is_number(v) for v in poly):
            raise _Reject("bad_polygon", f"polygon {i} is not a list of numbers")
        if len(poly) < 6 or len(poly) % 2:
            raise _Reject("bad_polygon", f"polygon {i} has {len(poly)} coordinates; needs an even count >= 6 (3 points)")
        if not all(_is_finite(v) for v in poly):
            raise _Reject("bad_polygon", f"polygon {i} has a coordinate that is NaN, infinite or too large for a float")
        xs, ys = poly[0::2], poly[1::2]
        if min(xs) < lo_x or max(xs) > hi_x or min(ys) < lo_y or max(ys) > hi_y:
            raise _Reject("bad_polygon",
                          f"polygon {i} spans x {min(xs):g}..{max(xs):g}, y {min(ys):g}..{max(ys):g}: "
                          f"too far outside the {w}x{h} image (margin {margin:g})")
    return mask_utils.frPyObjects([[float(v) for v in p] for p in polys], h, w)


def _compressed_counts(s: bytes) -> list[int]:
    """Run lengths of a COCO compressed RLE string (pycocotools' rleFrString, in Python).

    pycocotools trusts the string; a short one decodes into uninitialised memory. Reading the
    runs here lets us check them before pycocotools touches them.
    """
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            if p >= len(s):
                raise ValueError("string ends inside a run length")
            c = s[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {chr(s[p])!r} is not RLE")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _rle_object(seg: dict, h: int, w: int) -> dict:
    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise _Reject("bad_segmentation", f"RLE size {size!r} is not [height, width]")
    if size != [h, w]:
        raise _Reject("rle_size_mismatch", f"RLE size is {size} (h, w) but the image is [{h}, {w}]")
    if isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
            raise _Reject("bad_segmentation", "uncompressed RLE counts must be non-negative integers")
        runs = counts
    elif isinstance(counts, (str, bytes)):
        try:
            raw = counts.encode("ascii") if isinstance(counts, str) else counts
            runs = _compressed_counts(raw)
        except (UnicodeEncodeError, ValueError) as e:
            raise _Reject("bad_segmentation", f"compressed RLE counts are malformed: {e}") from None
        if any(v < 0 for v in runs):
            raise _Reject("bad_segmentation", "compressed RLE has a negative run length")
    else:
        raise _Reject("bad_segmentation", f"RLE counts of type {type(counts).__name__}")
    if sum(runs) != h * w:
        raise _Reject("bad_segmentation", f"RLE runs cover {sum(runs)} pixels, the {w}x{h} image has {h * w}")
    if isinstance(counts, list):
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return {"size": [h, w], "counts": raw}


def decode_segmentation(seg, h: int, w: int, polygon_margin: float) -> np.ndarray:
    """COCO segmentation (polygons, uncompressed or compressed RLE) -> bool HxW mask.

    Raises _Reject with the quarantine reason when the segmentation is unusable.
    """
    if isinstance(seg, list):
        rles = _polygons_rle(seg, h, w, polygon_margin)
        rle = mask_utils.merge(rles) if len(rles) > 1 else rles[0]
    elif isinstance(seg, dict):
        rle = _rle_object(seg, h, w)
    else:
        raise _Reject("bad_segmentation", f"segmentation of type {type(seg).__name__}")
    return mask_utils.decode(rle).astype(bool)


def _instance_row(job: ImageJob, image_id: str, ann: dict, h: int, w: int, polygon_margin: float) -> dict:
    mask = decode_segmentation(ann.get("segmentation"), h, w, polygon_margin)
    if not mask.any():
        raise _Reject("zero_area", "the segmentation covers no pixel")
    rle = masks.encode(mask)
    x, y, bw, bh = masks.bbox(rle, h, w)
    name, supercategory = job.categories[ann["category_id"]]
    return {
        "instance_id": f"{job.source_id}:{ann['id']}",
        "image_id": image_id,
        "source_id": job.source_id,
        "orig_id": ann["id"],
        "category_id": ann["category_id"],
        "category": name,
        "supercategory": supercategory,
        "iscrowd": bool(ann.get("iscrowd", 0)),
        "area": float(mask.sum()),
        "bbox_x": x, "bbox_y": y, "bbox_w": bw, "bbox_h": bh,
        "rle": rle,
        "height": h,
        "width": w,
    }


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _read_local(job: ImageJob, cap: int) -> tuple[bytes, str] | None:
    """A local image's bytes and real path, read only if it is a regular file inside the image
    folder once symlinks (of the file or of any folder on the way) are resolved, no larger than
    `cap`. The path checked is the one opened: the open descriptor's own path is checked again,
    so a link swapped in between the two is caught too."""
    root = os.path.realpath(job.images_root or os.path.dirname(job.image_uri))
    real = os.path.realpath(job.image_uri)
    if not _inside(real, root):
        raise _Reject("unsafe_path", f"{job.image_uri} resolves outside the image folder {job.images_root} "
                                     "(a symbolic link or '..' leads out of the source)")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: no link swapped in
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except PermissionError as e:
        raise _Reject("unreadable_image", f"cannot read {job.image_uri}: {e.strerror}") from None
    except OSError as e:
        raise _Reject("unreadable_image", f"cannot read {job.image_uri}: {e}") from None
    try:
        fd_path = f"/proc/self/fd/{fd}"
        if os.path.exists(fd_path) and not _inside(os.readlink(fd_path), root):
            raise _Reject("unsafe_path", f"{job.image_uri} was replaced by a link outside the image folder while read")
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                    else "a folder" if stat.S_ISDIR(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a file")
            raise _Reject("not_regular_file", f"{job.image_uri} is {kind}, not a regular file")
        if st.st_size > cap:
            raise _Reject("image_too_large", f"{job.image_uri} holds {st.st_size} bytes, over ingest.max_image_bytes={cap}")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(cap + 1)
    except _Reject:
        raise
    except OSError as e:
        raise _Reject("unreadable_image", f"cannot read {job.image_uri}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > cap:  # grew since fstat
        raise _Reject("image_too_large", f"{job.image_uri} holds over {cap} bytes (ingest.max_image_bytes)")
    return data, real


def _read_s3(job: ImageJob, cap: int) -> bytes | None:
    """An S3 image's bytes: its key must lie under the image prefix (keys are literal: no
    folder links, but '..' segments are normalised away before we get here) and it is read
    at most `cap` + 1 bytes, so an oversized object is refused without being held."""
    prefix = (job.images_root or posixpath.dirname(job.image_uri)).rstrip("/") + "/"
    if not job.image_uri.startswith(prefix) or "/../" in job.image_uri[len(prefix) - 1:]:
        raise _Reject("unsafe_path", f"{job.image_uri} is not under the image prefix {prefix}")
    body = storage.open_read(job.image_uri)
    try:
        size = getattr(body, "_content_length", None)
        if size is not None and int(size) > cap:
            raise _Reject("image_too_large", f"{job.image_uri} holds {size} bytes, over ingest.max_image_bytes={cap}")
        data = body.read(cap + 1)
    finally:
        body.close()
    if len(data) > cap:
        raise _Reject("image_too_large", f"{job.image_uri} holds over {cap} bytes (ingest.max_image_bytes)")
    return data


def _read_image(job: ImageJob, cap: int) -> tuple[bytes, str] | None:
    """The image's bytes and the location read (None when missing). Only what lies inside the
    source is read (see _read_local / _read_s3). A file or object we may not read is that
    record's problem (quarantined); a store that fails as a whole (network, 5xx after
    botocore's retries) is not, and stops the build rather than quarantining every image."""
    if not storage.is_s3(job.image_uri):
        return _read_local(job, cap)
    try:
        data = _read_s3(job, cap)
        return None if data is None else (data, job.image_uri)
    except _Reject:
        raise
    except Exception as e:
        err = e
    if storage.is_not_found(err):
        return None
    if storage.error_code(err) in ("AccessDenied", "403", "InvalidObjectState"):
        raise _Reject("unreadable_image", f"cannot read {job.image_uri}: {storage.error_code(err)}") from None
    raise IngestError(f"{job.file}: image {job.record['id']}: cannot read {job.image_uri} "
                      f"({type(err).__name__}: {err})") from err


# LVIS-style federated annotation: per image, the categories whose instances are not all
# marked, and the categories checked to be absent. Kept by name in the images table.
FEDERATED_KEYS = {"not_exhaustive": "not_exhaustive_category_ids", "verified_absent": "neg_category_ids"}


def _federated_ids(rec: dict) -> list[int]:
    return [c for key in FEDERATED_KEYS.values() for c in (rec.get(key) or []) if _is_id(c)]


def federated_lists(rec: dict, categories: dict[int, tuple[str, str]]) -> dict[str, str | None]:
    """The image's federated lists as comma-joined category names (None where the record has no
    such list: an ordinary COCO record). Ids the source does not list as categories are dropped."""
    out = {}
    for column, key in FEDERATED_KEYS.items():
        ids = rec.get(key)
        out[column] = None if ids is None else ",".join(
            sorted({categories[c][0] for c in ids if _is_id(c) and c in categories}))
    return out


def ingest_image(job: ImageJob, cfg: IngestConfig) -> ImageOutcome:
    """Read one image once (hash, header, decode), then decode its annotations' masks."""
    rec = job.record
    w, h = rec["width"], rec["height"]
    image_id = f"{job.source_id}:{rec['id']}"
    try:
        read = _read_image(job, cfg.max_image_bytes)
        if read is None:
            raise _Reject("missing_image", f"image file {job.image_uri} does not exist")
        data, location = read
        orientation = _check_pixels(data, w, h, cfg)
    except _Reject as r:
        out = ImageOutcome(image=None)
        out.quarantine.append(_qrow(job.source_id, job.file, "image", rec["id"], r.reason, r.detail))
        for ann in job.annotations:
            out.quarantine.append(_qrow(job.source_id, job.file, "annotation", ann["id"], "unknown_image",
                                        f"its image {rec['id']} was quarantined ({r.reason})"))
        return out
    license_ = rec.get("license")
    out = ImageOutcome(image={
        "source_id": job.source_id,
        "image_id": image_id,
        "orig_id": rec["id"],
        "file_name": rec["file_name"],
        "uri": location,  # the real path read: later reads cannot be redirected by a link
        "width": w,
        "height": h,
        "sha256": hashlib.sha256(data).hexdigest(),
        "n_bytes": len(data),
        "unit_id": "",  # set once all images are known
        "license": None if license_ is None else str(license_),
        "license_name": job.license[0],
        "license_url": job.license[1],
        "orientation": orientation,
        **federated_lists(rec, job.categories),
    })
    cap = cfg.max_instances_per_image
    for k, ann in enumerate(job.annotations):  # sorted by id, so the kept ones are deterministic
        if k >= cap:
            out.quarantine.append(_qrow(job.source_id, job.file, "annotation", ann["id"], "too_many_instances",
                                        f"image {rec['id']} has {len(job.annotations)} annotations; the first {cap} "
                                        "by id are kept (ingest.max_instances_per_image bounds memory and pairwise work)"))
            continue
        try:
            out.instances.append(_instance_row(job, image_id, ann, h, w, cfg.polygon_margin))
        except _Reject as r:
            out.quarantine.append(_qrow(job.source_id, job.file, "annotation", ann["id"], r.reason, r.detail))
    return out


# ---------------------------------------------------------------- json-level pass


def load_coco(uri: str) -> dict:
    """Parse a COCO json; IngestError (naming file, line and column) when it is not one."""
    try:
        raw = storage.read_or_none(uri)
    except Exception as e:
        raise IngestError(f"{uri}: cannot read the annotation file ({type(e).__name__}: {e})") from None
    if raw is None:
        raise IngestError(f"{uri}: annotation file not found")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise IngestError(f"{uri}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise IngestError(f"{uri}: not UTF-8 text (byte {e.start}): {e.reason}") from None
    if not isinstance(doc, dict):
        raise IngestError(f"{uri}: top level is a JSON {type(doc).__name__}, expected an object with {list(REQUIRED_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise IngestError(f"{uri}: missing required key(s) {', '.join(map(repr, missing))}")
    for k in REQUIRED_KEYS:
        if not isinstance(doc[k], list):
            raise IngestError(f"{uri}: {k!r} must be a list, got {type(doc[k]).__name__}")
    return doc


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _is_id(v) -> bool:
    """An integer id that fits the tables' int64 columns (json allows any size)."""
    return isinstance(v, int) and not isinstance(v, bool) and INT64_MIN <= v <= INT64_MAX


def safe_relative_path(file_name) -> str | None:
    """file_name as a normalised relative path inside the image folder, or None if it escapes it."""
    if not isinstance(file_name, str) or not file_name or "\x00" in file_name:
        return None
    p = file_name.replace("\\", "/")
    if p.startswith("/") or re.match(r"^[A-Za-z]:", p) or "://" in p:
        return None
    norm = posixpath.normpath(p)
    if norm in (".", "..") or norm.startswith("../"):
        return None
    return norm


def _record_id(rec, index: int) -> str:
    rid = rec.get("id") if isinstance(rec, dict) else None
    return str(rid) if rid is not None else f"#{index}"


def _dedupe(records: list, index_of_id: dict, what: str, reason: str, quarantine: list, q) -> dict:
    """id -> record for ids seen once, or repeated with identical content (first copy kept)."""
    kept: dict = {}
    for rid, positions in index_of_id.items():
        copies = [records[i] for i in positions]
        if len(copies) == 1:
            kept[rid] = copies[0]
        elif all(c == copies[0] for c in copies[1:]):
            kept[rid] = copies[0]
            for _ in copies[1:]:
                quarantine.append(q(rid, reason, f"{what} id {rid} repeated {len(copies)} times with identical content; first copy kept"))
        else:
            for _ in copies:
                quarantine.append(q(rid, reason, f"{what} id {rid} appears {len(copies)} times with different content; all copies quarantined"))
    return kept


def _licenses(doc: dict) -> dict[int, tuple[str | None, str | None]]:
    """COCO's optional top-level `licenses` list: id -> (name, url). Entries without an integer
    id are ignored: a licence list is informative, never a reason to drop images."""
    out: dict[int, tuple[str | None, str | None]] = {}
    listed = doc.get("licenses")
    for lic in listed if isinstance(listed, list) else []:
        if isinstance(lic, dict) and _is_id(lic.get("id")):
            name, url = lic.get("name"), lic.get("url")
            out[lic["id"]] = (name.strip() or None if isinstance(name, str) else None,
                              url.strip() or None if isinstance(url, str) else None)
    return out


def _plan_source(src: SourceSpec, doc: dict) -> tuple[list[ImageJob], list[dict]]:
    """Check ids, references and paths; return per-image jobs and the quarantine so far."""
    f, sid = src.annotations_uri, src.source_id
    quarantine: list[dict] = []
    licenses = _licenses(doc)

    def q(record_type):
        return lambda rid, reason, detail: _qrow(sid, f, record_type, rid, reason, detail)

    # categories
    cat_index: dict[int, list[int]] = {}
    dropped_cats: set[int] = set()
    for i, c in enumerate(doc["categories"]):
        if not (isinstance(c, dict) and _is_id(c.get("id")) and isinstance(c.get("name"), str) and c["name"].strip()):
            quarantine.append(q("category")(_record_id(c, i), "bad_record", "category needs an integer id and a non-empty name"))
            if isinstance(c, dict) and _is_id(c.get("id")):
                dropped_cats.add(c["id"])
            continue
        cat_index.setdefault(c["id"], []).append(i)
    cats = _dedupe(doc["categories"], cat_index, "category", "bad_record", quarantine, q("category"))
    dropped_cats |= set(cat_index) - set(cats)
    categories = {cid: (c["name"].strip(), str(c.get("supercategory") or "")) for cid, c in cats.items()}

    # images
    img_index: dict[int, list[int]] = {}
    dropped_images: dict[int, str] = {}  # image id -> why, for its annotations' quarantine detail
    for i, rec in enumerate(doc["images"]):
        ok = (isinstance(rec, dict) and _is_id(rec.get("id"))
              and all(_is_id(rec.get(k)) and rec[k] > 0 for k in ("width", "height")))
        if not ok:
            quarantine.append(q("image")(_record_id(rec, i), "bad_record",
                                         "image needs an integer id and positive integer width and height"))
            if isinstance(rec, dict) and _is_id(rec.get("id")):
                dropped_images[rec["id"]] = "bad_record"
            continue
        img_index.setdefault(rec["id"], []).append(i)
    images = _dedupe(doc["images"], img_index, "image", "duplicate_image_id", quarantine, q("image"))
    dropped_images.update({rid: "duplicate_image_id" for rid in img_index if rid not in images})
    for rid, rec in list(images.items()):
        rel = safe_relative_path(rec.get("file_name"))
        if rel is None:
            quarantine.append(q("image")(rid, "unsafe_path", f"file_name {rec.get('file_name')!r} is not a relative path inside the image folder"))
            del images[rid]
            dropped_images[rid] = "unsafe_path"

    # annotations
    ann_index: dict[int, list[int]] = {}
    for i, ann in enumerate(doc["annotations"]):
        if not (isinstance(ann, dict) and _is_id(ann.get("id"))):
            quarantine.append(q("annotation")(_record_id(ann, i), "bad_record", "annotation needs an integer id"))
            continue
        ann_index.setdefault(ann["id"], []).append(i)
    anns = _dedupe(doc["annotations"], ann_index, "annotation", "duplicate_annotation_id", quarantine, q("annotation"))
    by_image: dict[int, list[dict]] = {}
    for aid, ann in anns.items():
        img, cat = ann.get("image_id"), ann.get("category_id")
        crowd = ann.get("iscrowd", 0)
        if not _is_id(img) or not _is_id(cat):
            quarantine.append(q("annotation")(aid, "bad_record", "annotation needs integer image_id and category_id"))
        elif not (_is_number(crowd) and crowd in (0, 1)):
            quarantine.append(q("annotation")(aid, "bad_record", f"iscrowd must be 0 or 1, got {crowd!r}"))
        elif img not in images:
            why = (f"its image {img} was quarantined ({dropped_images[img]})" if img in dropped_images
                   else f"image_id {img} is not in 'images'")
            quarantine.append(q("annotation")(aid, "unknown_image", why))
        elif cat not in categories:
            why = (f"its category {cat} was quarantined (bad_record)" if cat in dropped_cats
                   else f"category_id {cat} is not in 'categories'")
            quarantine.append(q("annotation")(aid, "unknown_category", why))
        else:
            by_image.setdefault(img, []).append(ann)

    jobs = [
        ImageJob(source_id=sid, file=f,
                 image_uri=storage.join(src.images_uri, safe_relative_path(rec["file_name"])),
                 images_root=src.images_uri, record=rec, annotations=sorted(by_image.get(rid, []), key=lambda a: a["id"]),
                 categories={c: categories[c] for c in
                             [a["category_id"] for a in by_image.get(rid, [])] + _federated_ids(rec)
                             if c in categories},
                 license=licenses.get(rec.get("license"), (None, None)) if _is_id(rec.get("license")) else (None, None))
        for rid, rec in sorted(images.items())
    ]
    return jobs, quarantine


# ---------------------------------------------------------------- build


def _file_key(job: ImageJob, cfg: IngestConfig) -> str | None:
    """What decides a local image's outcome without reading it: its record, annotations,
    categories, licence, the ingest config and the file's identity (device, inode, size,
    modification and change times of the path it resolves to inside the image folder). None
    when the outcome cannot be known without reading (S3, missing file, path outside)."""
    if storage.is_s3(job.image_uri):
        return None
    root = os.path.realpath(job.images_root or os.path.dirname(job.image_uri))
    real = os.path.realpath(job.image_uri)
    if not _inside(real, root):
        return None
    try:
        st = os.stat(real)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    blob = json.dumps([OUTCOME_VERSION, job.source_id, job.file, job.image_uri, real, job.record, job.annotations,
                       sorted(job.categories.items()), list(job.license), job.images_root, cfg.model_dump(),
                       [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


OUTCOME_VERSION = 2   # bump when ingest_image's outcome changes shape (2: federated lists)


class ImageCache:
    """Outcomes of `ingest_image` keyed by `_file_key`, so a refresh neither reads nor decodes
    an image (or its masks) that did not change. Kept as one pickle in the work directory
    (`engine.build.run_ingest`), holding only the entries of the latest run."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.entries: dict[str, ImageOutcome] = {}
        self.used: dict[str, ImageOutcome] = {}
        self.hits = 0
        if self.path and self.path.exists():
            import pickle
            try:
                with open(self.path, "rb") as f:
                    self.entries = pickle.load(f)
            except Exception:  # a damaged cache is only lost work
                self.entries = {}

    def get(self, key: str | None) -> ImageOutcome | None:
        out = self.entries.get(key) if key else None
        if out is not None:
            self.hits += 1
            self.used[key] = out
        return out

    def put(self, key: str | None, out: ImageOutcome) -> None:
        if key:
            self.used[key] = out

    def save(self) -> None:
        if not self.path:
            return
        import pickle
        import tempfile
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(self.used, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


PARALLEL_MIN_IMAGES = 32   # below this a thread pool costs more than it saves


def _run_jobs(jobs: list[ImageJob], cfg: IngestConfig, cache: ImageCache, workers: int) -> list[ImageOutcome]:
    """ingest_image over jobs, in order: cached outcomes reused, the rest on `workers` threads
    (image decoding and hashing release the GIL), at most a few jobs ahead of the consumer."""
    keys = [_file_key(j, cfg) for j in jobs]
    outs: list[ImageOutcome | None] = [cache.get(k) for k in keys]
    todo = [i for i, o in enumerate(outs) if o is None]
    if workers > 1 and len(todo) >= PARALLEL_MIN_IMAGES:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers) as pool:
            for i, out in zip(todo, pool.map(lambda i: ingest_image(jobs[i], cfg), todo)):
                outs[i] = out
    else:
        for i in todo:
            outs[i] = ingest_image(jobs[i], cfg)
    for i in todo:
        cache.put(keys[i], outs[i])
    return outs


def ingest(sources: list[SourceSpec], cfg: IngestConfig | None = None, cache: ImageCache | None = None,
           workers: int | None = None) -> IngestResult:
    """Ingest every source into one set of tables (deterministic: same input, same rows, same order).

    Images and instances are sorted by (source_id, orig_id); quarantine rows by source, file,
    record type, record id and reason. `cache` (ImageCache) skips images that did not change
    since it was filled; `workers` threads (default: the CPUs) share the rest.
    """
    cfg = cfg or IngestConfig()
    cache = cache or ImageCache()
    if not workers:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    seen: set[str] = set()
    for src in sources:
        if src.source_id != sanitise_source_id(src.source_id):
            raise IngestError(f"source id {src.source_id!r} may only hold letters, digits, '.', '_' and '-'")
        if src.source_id in seen:
            raise IngestError(f"source id {src.source_id!r} is used by two sources; pass distinct source ids")
        seen.add(src.source_id)

    image_rows, instance_rows, quarantine_rows = [], [], []
    from engine.sources import read_source

    for src in sources:
        read = read_source(src)        # any format, as a COCO document (engine/sources/)
        jobs, quarantine = _plan_source(src, read.doc)
        quarantine_rows += read.quarantine + quarantine
        for out in _run_jobs(jobs, cfg, cache, workers):
            if out.image is not None:
                image_rows.append(out.image)
            instance_rows += out.instances
            quarantine_rows += out.quarantine

    instances = INSTANCES.from_records(sorted(instance_rows, key=lambda r: (r["source_id"], r["orig_id"])))
    images = pd.DataFrame.from_records(sorted(image_rows, key=lambda r: (r["source_id"], r["orig_id"])),
                                       columns=IMAGES.columns)
    if len(images):
        images["unit_id"] = assign_units(images, cfg.unit_size, instances)
    quarantine_rows.sort(key=lambda r: (r["source_id"], r["file"], r["record_type"], r["record_id"], r["reason"]))
    return IngestResult(
        images=IMAGES.from_records(images.to_dict("records")),
        instances=instances,
        quarantine=QUARANTINE.from_records(quarantine_rows),
    )


# ---------------------------------------------------------------- ingest into a work directory

SUMMARY = "summary.json"
UNITS_DIR = "units"


def inputs_fingerprint(images: pd.DataFrame, instances: pd.DataFrame) -> str:
    """What the images and instances are: each image's hash, each instance's category, crowd
    flag and mask (a release id hashes it)."""
    h = hashlib.sha256()
    for row in images.sort_values("image_id")[["image_id", "sha256"]].itertuples(index=False):
        h.update(f"{row.image_id}:{row.sha256};".encode())
    for row in instances.sort_values("instance_id")[["instance_id", "category", "rle", "iscrowd"]].itertuples(index=False):
        h.update(f"{row.instance_id}:{row.category}:{row.iscrowd}:{row.rle};".encode())
    return h.hexdigest()


def unit_paths(out_dir: str | Path, unit_id: str) -> dict[str, Path]:
    """Where `ingest_to_dir` writes one unit's images and instances tables."""
    return {name: Path(out_dir) / UNITS_DIR / name / f"{unit_id}.parquet" for name in ("images", "instances")}


def write_units(result: IngestResult, out_dir: str | Path) -> list[str]:
    """Each unit's images and instances in files of their own: a driver reads one unit at a
    time and never holds the whole tables (issue 16). Returns the unit ids, sorted."""
    images, instances = result.images, result.instances
    unit_of = dict(zip(images["image_id"], images["unit_id"]))
    inst_units = instances["image_id"].map(unit_of)
    inst_by_unit = dict(tuple(instances.groupby(inst_units, sort=False))) if len(instances) else {}
    units = sorted(images["unit_id"].unique())
    for unit_id, imgs in images.groupby("unit_id", sort=True):
        paths = unit_paths(out_dir, unit_id)
        write_table(paths["images"], IMAGES, imgs.reset_index(drop=True))
        inst = inst_by_unit.get(unit_id, instances.iloc[:0])
        write_table(paths["instances"], INSTANCES, inst.reset_index(drop=True))
    return units


def summarise(result: IngestResult, units: list[str]) -> dict:
    """What a driver needs of the whole ingest without its tables: counts, unit ids, the inputs
    fingerprint, the (source, category, supercategory) pairs in first-seen order (the card's
    category and negatives sections), and the quarantine counted per source and reason."""
    q: dict[str, dict[str, int]] = {}
    for (sid, reason), n in result.quarantine.groupby(["source_id", "reason"]).size().items():
        q.setdefault(sid, {})[reason] = int(n)
    pairs = result.instances[["source_id", "category", "supercategory"]].drop_duplicates()
    return {"images": int(len(result.images)), "instances": int(len(result.instances)),
            "quarantined": int(len(result.quarantine)), "units": units,
            "sources_with_images": sorted(set(result.images["source_id"])),
            "inputs_fingerprint": inputs_fingerprint(result.images, result.instances),
            "category_pairs": pairs.values.tolist(), "quarantine": q}


def ingest_to_dir(sources: list[SourceSpec], cfg: IngestConfig, out_dir: str | Path,
                  cache_path: str | Path | None = None) -> dict:
    """Ingest, then write the whole tables (for inspection), each unit's tables and the summary
    (`summary.json`, written last: its presence says the rest is complete). Returns the summary."""
    cache = ImageCache(cache_path)
    res = ingest(sources, cfg, cache=cache)
    cache.save()
    out = Path(out_dir)
    (out / SUMMARY).unlink(missing_ok=True)
    write_tables(res, out)
    import shutil
    shutil.rmtree(out / UNITS_DIR, ignore_errors=True)   # units of an earlier ingest
    summary = summarise(res, write_units(res, out))
    from engine.storage import write_bytes
    write_bytes(str(out / SUMMARY), json.dumps(summary, sort_keys=True).encode())
    return summary


def _child_main(argv: list[str]) -> int:
    """`python -m engine.sources.ingest JOB.json`: ingest_to_dir in a process of its own (the
    driver's `engine.build.run_ingest`), so the parsed sources and per-image outcomes die with
    it; an IngestError goes back as {"error": message} in the job's result file."""
    # run as __main__, this module's classes are not the ones the readers import and raise
    from engine.sources import ingest as mod

    job = json.loads(Path(argv[0]).read_text())
    result = Path(job["result"])
    try:
        mod.ingest_to_dir([mod.SourceSpec(**s) for s in job["sources"]], IngestConfig(**job["cfg"]),
                          job["out_dir"], job.get("cache"))
        result.write_text(json.dumps({"ok": True}))
    except mod.IngestError as e:
        result.write_text(json.dumps({"error": str(e), "type": type(e).__name__}))
        return 2
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_child_main(sys.argv[1:]))
