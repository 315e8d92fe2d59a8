"""Issue 9 reproductions at ingest: nothing outside the source is read (symlinks, symlinked
folders, FIFOs, devices, oversized files, S3 keys), high-bit-depth images are converted right
or refused, EXIF orientation follows the JSON size and is recorded, one list of formats, and a
per-image instance cap."""
from __future__ import annotations

import io
import os
import signal
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from engine.sources import imageio
from engine import storage
from engine.config import FactsConfig, IngestConfig
from engine.scene.facts import describe
from engine.sources.ingest import ImageJob, ingest, ingest_image
from schemas.quarantine import REASONS
from tests.coco_fixtures import make_case


def _build(case, cfg=None):
    return ingest([case.write()], cfg or IngestConfig())


def _reason(res, image):
    q = res.quarantine
    rows = q[(q.record_type == "image") & (q.record_id == str(image["id"]))]
    assert len(rows) == 1, rows
    return rows.reason.item(), rows.detail.item()


@contextmanager
def _deadline(seconds: int):
    def fail(*_):
        raise TimeoutError(f"ingest did not finish within {seconds} s")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _outside_secret(tmp_path) -> tuple[str, bytes]:
    """A readable JPEG outside the source (it would decode fine if read)."""
    path = tmp_path / "outside" / "secret.jpg"
    path.parent.mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (1, 2, 3)).save(buf, format="JPEG")
    path.write_bytes(buf.getvalue())
    return str(path), buf.getvalue()


# ---------------------------------------------------------------- 1. reads stay in the source


def test_symlinked_file_pointing_outside_is_not_read(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    target, data = _outside_secret(tmp_path)
    with Image.open(io.BytesIO(data)) as im:
        img["width"], img["height"] = im.size
    case.image_path(img).unlink()
    os.symlink(target, case.image_path(img))
    res = _build(case)
    reason, detail = _reason(res, img)
    assert reason == "unsafe_path" and "outside the image folder" in detail
    assert img["id"] not in set(res.images.orig_id)
    assert len(res.images) == len(case.images) - 1


def test_symlinked_folder_to_root_is_not_read(tmp_path):
    case = make_case(tmp_path)
    os.symlink("/", case.images_dir / "rootdir")
    img = case.images[0]
    img["file_name"] = "rootdir/etc/passwd"
    res = _build(case)
    assert _reason(res, img)[0] == "unsafe_path"
    assert not any(str(u).startswith("/etc") for u in res.images.uri)


def test_symlink_to_dev_zero_does_not_exhaust_memory(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    case.image_path(img).unlink()
    os.symlink("/dev/zero", case.image_path(img))
    with _deadline(20):
        res = _build(case)
    assert _reason(res, img)[0] == "unsafe_path"


def test_fifo_and_device_inside_the_folder_are_refused_without_hanging(tmp_path):
    case = make_case(tmp_path)
    fifo, dev = case.images[0], case.images[1]
    case.image_path(fifo).unlink()
    os.mkfifo(case.image_path(fifo))
    # a folder where a file should be (device nodes cannot be made here; /dev/zero is outside
    # every source and refused above as unsafe_path)
    case.image_path(dev).unlink()
    os.mkdir(case.images_dir / "dir.jpg")
    dev["file_name"] = "dir.jpg"
    with _deadline(20):
        res = _build(case)
    reason, detail = _reason(res, fifo)
    assert reason == "not_regular_file" and "FIFO" in detail
    reason, detail = _reason(res, dev)
    assert reason == "not_regular_file" and "a folder" in detail
    assert len(res.images) == len(case.images) - 2


def test_symlink_that_stays_inside_the_source_is_followed(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    (case.images_dir / "sub").mkdir()
    os.rename(case.image_path(img), case.images_dir / "sub" / img["file_name"])
    os.symlink(os.path.join("sub", img["file_name"]), case.image_path(img))
    res = _build(case)
    assert res.quarantine.empty
    row = res.images[res.images.orig_id == img["id"]].iloc[0]
    assert row.uri == os.path.realpath(case.images_dir / "sub" / img["file_name"])  # what later reads use


def test_size_cap_refuses_before_reading(tmp_path):
    case = make_case(tmp_path)
    sizes = {r["id"]: case.image_path(r).stat().st_size for r in case.images}
    cap = sorted(sizes.values())[1]  # the largest image(s) are over it
    res = _build(case, IngestConfig(max_image_bytes=cap))
    for r in case.images:
        if sizes[r["id"]] > cap:
            reason, detail = _reason(res, r)
            assert reason == "image_too_large" and "ingest.max_image_bytes" in detail
        else:
            assert r["id"] in set(res.images.orig_id)


def _s3_job(case, uri: str, root: str) -> ImageJob:
    img = case.images[0]
    return ImageJob(source_id="s", file="s3://b/instances.json", image_uri=uri, images_root=root,
                    record=img, annotations=case.anns_of(img), categories={c["id"]: (c["name"], "") for c in case.coco["categories"]})


def test_s3_keys_outside_the_prefix_and_oversized_objects_are_refused(tmp_path, monkeypatch):
    case = make_case(tmp_path)
    data = case.image_path(case.images[0]).read_bytes()
    opened = []

    def open_read(uri):
        opened.append(uri)
        return io.BytesIO(data)

    monkeypatch.setattr(storage, "open_read", open_read)
    out = ingest_image(_s3_job(case, "s3://b/other/x.jpg", "s3://b/images"), IngestConfig())
    assert out.image is None and out.quarantine[0]["reason"] == "unsafe_path" and not opened
    out = ingest_image(_s3_job(case, "s3://b/images/x.jpg", "s3://b/images"), IngestConfig(max_image_bytes=len(data) - 1))
    assert out.image is None and out.quarantine[0]["reason"] == "image_too_large"
    out = ingest_image(_s3_job(case, "s3://b/images/x.jpg", "s3://b/images"), IngestConfig())
    assert out.image is not None and out.image["uri"] == "s3://b/images/x.jpg"


# ---------------------------------------------------------------- 3. high bit depth


def _replace_with(case, img, pil: Image.Image, fmt: str, suffix: str):
    case.image_path(img).unlink()
    img["file_name"] = os.path.splitext(img["file_name"])[0] + suffix
    buf = io.BytesIO()
    pil.save(buf, format=fmt)
    case.image_path(img).write_bytes(buf.getvalue())
    return buf.getvalue()


def test_16_bit_png_is_scaled_not_whitened(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    grey16 = np.full((img["height"], img["width"]), 0x8080, dtype=np.uint16)
    data = _replace_with(case, img, Image.fromarray(grey16), "PNG", ".png")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode.startswith("I")  # really a 16-bit image
    res = _build(case)
    assert res.quarantine.empty
    rgb = imageio.decode_rgb(data)
    assert rgb.dtype == np.uint8 and (rgb == 128).all()
    rows = res.images[res.images.orig_id == img["id"]]
    facts, _ = describe(rows, res.instances[res.instances.image_id == rows.image_id.item()], FactsConfig())
    assert len(facts) and not (facts.color == "white").any()


def test_float_image_mode_is_quarantined_with_a_reason(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    _replace_with(case, img, Image.fromarray(np.full((img["height"], img["width"]), 0.5, np.float32)), "TIFF", ".tif")
    reason, detail = _reason(_build(case), img)
    assert reason == "unsupported_image_mode" and "'F'" in detail


# ---------------------------------------------------------------- 10. one list of formats


def test_ppm_is_refused_at_ingest(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    _replace_with(case, img, Image.new("RGB", (img["width"], img["height"])), "PPM", ".ppm")
    reason, detail = _reason(_build(case), img)
    assert reason == "unsupported_format" and "PPM" in detail


# ---------------------------------------------------------------- 6. EXIF orientation


def _rotated_with_exif(case, img, orientation: int = 6) -> np.ndarray:
    """Store the image rotated, with the EXIF orientation that turns it back: the JSON size
    and masks are those of the upright picture (phone photo annotated in a browser)."""
    with Image.open(case.image_path(img)) as im:
        upright = im.convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # exif 6 displays it rotated back
    exif = Image.Exif()
    exif[imageio.ORIENTATION_TAG] = orientation
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", quality=95, exif=exif)
    case.image_path(img).write_bytes(buf.getvalue())
    return np.asarray(upright)


def test_exif_rotated_jpeg_with_upright_json_size_is_oriented_and_recorded(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    upright = _rotated_with_exif(case, img)
    res = _build(case)
    assert res.quarantine.empty  # the image and all its annotations kept
    row = res.images[res.images.orig_id == img["id"]].iloc[0]
    assert row.orientation == "exif:6"
    rgb = imageio.load_rgb(row.uri, (row.width, row.height))
    assert rgb.shape == upright.shape
    assert np.abs(rgb.astype(int) - upright.astype(int)).mean() < 4  # JPEG re-encoding only
    others = res.images[res.images.orig_id != img["id"]]
    assert set(others.orientation) == {"file"}


def test_exif_tag_with_json_in_file_order_keeps_file_order(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    _rotated_with_exif(case, img)
    img["width"], img["height"] = img["height"], img["width"]  # json describes the stored pixels
    case.coco["annotations"] = [a for a in case.annotations if a["image_id"] != img["id"]]
    res = _build(case)
    row = res.images[res.images.orig_id == img["id"]].iloc[0]
    assert row.orientation.startswith("file (exif:6 not applied")
    assert imageio.load_rgb(row.uri, (row.width, row.height)).shape == (row.height, row.width, 3)


def test_size_mismatch_detail_speaks_of_exif(tmp_path):
    case = make_case(tmp_path)
    img = case.images[0]
    _rotated_with_exif(case, img)
    img["width"] += 10
    reason, detail = _reason(_build(case), img)
    assert reason == "size_mismatch" and "EXIF orientation 6" in detail


# ---------------------------------------------------------------- 4. instance cap


def test_instances_over_the_per_image_cap_are_quarantined_with_a_reason(tmp_path):
    case = make_case(tmp_path)
    img = max(case.images, key=lambda r: len(case.anns_of(r)))
    anns = sorted(a["id"] for a in case.anns_of(img))
    assert len(anns) > 3
    res = _build(case, IngestConfig(max_instances_per_image=3))
    kept = set(res.instances[res.instances.image_id == f"{case.source_id}:{img['id']}"].orig_id)
    assert kept == set(anns[:3])
    q = res.quarantine
    assert set(q[q.reason == "too_many_instances"].record_id) >= {str(a) for a in anns[3:]}
    assert set(q.reason) <= set(REASONS)


def test_png_whose_pixels_do_not_decode_is_quarantined(tmp_path):
    """Found by the fuzz test: reading a PNG's EXIF loads its pixels, and a failure swallowed
    there left PIL reporting the image as fine; the full decode now runs first."""
    case = make_case(tmp_path)
    img = case.images[0]
    with Image.open(case.image_path(img)) as im:
        data = bytearray(_replace_with(case, img, im.convert("RGB"), "PNG", ".png"))
    idat = data.index(b"IDAT")
    data[idat + 200] ^= 0xFF
    case.image_path(img).write_bytes(bytes(data))
    reason, detail = _reason(_build(case), img)
    assert reason == "unreadable_image" and "does not decode" in detail


def _png16(w: int, h: int, ctype: int, pixel: bytes) -> bytes:
    """A 16-bit PNG written by hand (PIL cannot write every 16-bit colour type)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\0" + pixel * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("ctype, pixel", [(0, b"\x80\x80"), (2, b"\x80\x80" * 3), (4, b"\x80\x80\xff\xff"),
                                          (6, b"\x80\x80" * 3 + b"\xff\xff")],
                         ids=["grey16", "rgb48", "grey-alpha32", "rgba64"])
def test_every_16_bit_png_colour_type_decodes_to_its_8_bit_value(tmp_path, ctype, pixel):
    case = make_case(tmp_path, n_images=1)
    img = case.images[0]
    data = _png16(img["width"], img["height"], ctype, pixel)
    case.image_path(img).unlink()
    img["file_name"] = "deep.png"
    case.image_path(img).write_bytes(data)
    res = _build(case)
    assert res.quarantine.empty and len(res.images) == 1
    assert (imageio.decode_rgb(data) == 128).all()
