"""Fuzzing ingest (issue 9): malformed COCO records and damaged image bytes never crash it,
never read outside the source, and always end as rows or quarantine reasons from the known list.

Bounded for CI: a fixed number of examples per property (about 20-40 s in all on 2 cores);
raise SAM3I_FUZZ_EXAMPLES for a longer hunt."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.sources import imageio
from engine.config import IngestConfig
from engine.sources.ingest import IngestError, SourceSpec, ingest
from schemas.quarantine import REASONS

EXAMPLES = int(os.environ.get("SAM3I_FUZZ_EXAMPLES", "60"))
# no shrinking in CI: a failure is reported as found (shrinking one took over five minutes)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if os.environ.get("SAM3I_FUZZ_SHRINK") else []),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
W, H = 24, 16


def _image_bytes(fmt: str, mode: str) -> bytes:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65535, (H, W), dtype=np.uint16))
    else:
        im = Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


GOOD = [_image_bytes("PNG", "RGB"), _image_bytes("JPEG", "RGB"), _image_bytes("PNG", "I;16"),
        _image_bytes("PNG", "P"), _image_bytes("GIF", "P"), _image_bytes("BMP", "RGB"), _image_bytes("PNG", "LA")]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=8))
numbers = st.one_of(st.integers(-50, 80), st.floats(-1e3, 1e3), st.just(float("nan")), st.just(float("inf")),
                    st.just(10**40), st.booleans())
polygon = st.lists(numbers, max_size=12)
segmentation = st.one_of(
    st.lists(polygon, max_size=3), polygon, scalars,
    st.fixed_dictionaries({"size": st.one_of(st.just([H, W]), st.lists(st.integers(-3, 40), max_size=3), scalars),
                           "counts": st.one_of(st.text(max_size=20), st.lists(st.integers(-5, 400), max_size=8),
                                               st.binary(max_size=12), scalars)}),
)
file_names = st.one_of(st.sampled_from(["a.png", "b.jpg", "../a.png", "/etc/passwd", "sub/../a.png", "link.png",
                                        "dir", "fifo.png", "C:\\x.png", "s3://b/k", "", "a.png\x00"]), scalars)


def _record(fields: dict):
    """A record whose keys may each be left out."""
    return st.fixed_dictionaries({}, optional=fields)


image_rec = _record({"id": st.one_of(st.integers(0, 4), scalars), "file_name": file_names,
                     "width": st.one_of(st.just(W), st.integers(-2, 40), scalars),
                     "height": st.one_of(st.just(H), st.integers(-2, 40), scalars),
                     "license": scalars})
ann_rec = _record({"id": st.one_of(st.integers(0, 6), scalars), "image_id": st.one_of(st.integers(0, 4), scalars),
                   "category_id": st.one_of(st.integers(0, 3), scalars), "iscrowd": st.one_of(st.integers(0, 1), scalars),
                   "segmentation": segmentation})
cat_rec = _record({"id": st.one_of(st.integers(0, 3), scalars), "name": st.one_of(st.text(max_size=10), scalars),
                   "supercategory": scalars})
records = st.one_of(image_rec, ann_rec, cat_rec, scalars, st.lists(scalars, max_size=2))
coco_docs = st.fixed_dictionaries({
    "images": st.lists(st.one_of(image_rec, records), max_size=5),
    "annotations": st.lists(st.one_of(ann_rec, records), max_size=8),
    "categories": st.lists(st.one_of(cat_rec, records), max_size=4),
}, optional={"licenses": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({"id": scalars, "name": scalars}), scalars),
                                             max_size=2), scalars)})


def _damaged(data: bytes, cuts: list[int], flips: list[tuple[int, int]]) -> bytes:
    b = bytearray(data)
    for pos, val in flips:
        if b:
            b[pos % len(b)] = val
    for c in cuts:
        b = b[: c % (len(b) + 1)]
    return bytes(b)


image_bytes = st.one_of(
    st.binary(max_size=64),
    st.builds(_damaged, st.sampled_from(GOOD), st.lists(st.integers(0, 10**6), max_size=1),
              st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4)),
    st.sampled_from(GOOD),
)


def _source(root: Path, doc: dict, a: bytes, b: bytes) -> SourceSpec:
    images = root / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.png").write_bytes(a)
    (images / "b.jpg").write_bytes(b)
    (images / "dir").mkdir()
    os.mkfifo(images / "fifo.png")
    os.symlink("/etc/hostname", images / "link.png")
    (root / "instances.json").write_text(json.dumps(doc))
    return SourceSpec("fz", str(root / "instances.json"), str(images))


def _check(res, root: Path) -> None:
    assert set(res.quarantine.reason) <= set(REASONS)
    images = os.path.realpath(root / "images")
    for uri in res.images.uri:
        assert os.path.realpath(uri).startswith(images + os.sep), uri
    for row in res.images.itertuples():  # what was accepted decodes to the size the json says
        rgb = imageio.load_rgb(row.uri, (row.width, row.height))
        assert rgb.shape == (row.height, row.width, 3) and rgb.dtype == np.uint8
    assert set(res.instances.image_id) <= set(res.images.image_id)


@FUZZ
@given(doc=coco_docs, a=image_bytes, b=image_bytes)
def test_malformed_records_and_bytes_never_crash_ingest(doc, a, b):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = _source(root, doc, a, b)
        try:
            res = ingest([spec], IngestConfig(max_pixels=10_000, max_image_bytes=4096))
        except IngestError as e:  # only for a file that is not COCO at all, which these all are
            raise AssertionError(f"ingest refused a COCO-shaped file: {e}") from None
        _check(res, root)


@FUZZ
@given(a=image_bytes, b=image_bytes, seg=segmentation)
def test_valid_records_with_damaged_bytes_and_odd_masks(a, b, seg):
    """Well-formed records (so the image bytes and masks are what gets exercised)."""
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H},
                      {"id": 2, "file_name": "b.jpg", "width": W, "height": H}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": seg},
                           {"id": 2, "image_id": 2, "category_id": 1, "segmentation": [[1, 1, 10, 1, 10, 8, 1, 8]]}],
           "categories": [{"id": 1, "name": "thing"}]}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        res = ingest([_source(root, doc, a, b)], IngestConfig())
        _check(res, root)
        assert len(res.images) + (res.quarantine.record_type == "image").sum() == 2  # each image: a row or a reason
