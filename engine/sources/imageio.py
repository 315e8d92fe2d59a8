"""Image formats, modes and pixels: the one place that says which images the engine takes and
how their bytes become HxWx3 uint8 RGB.

Accepted formats (`FORMATS`, extension -> PIL format name) are shared by ingest (which refuses
anything else), the release writer (tar member extension), the reader and verify. Modes: 8-bit
ones convert through PIL; 16-bit greyscale (PNG `I;16*`, and `I` holding 16-bit values) is
scaled to 8 bits (v * 255 / 65535); other high-bit-depth modes (float `F`, 32-bit integer
data beyond 16 bits) are refused with a reason rather than clipped to white.

EXIF orientation: COCO masks are drawn on some picture of the file, and the JSON's width and
height say which. `decode_rgb(data, size=(w, h))` keeps the file's pixel order when its stored
size is (w, h) (COCO's and pycocotools' convention) and applies the EXIF orientation when only
the oriented picture is (w, h) (phone photos annotated in a browser). Orientations that keep the
size (mirror, 180 degrees) are therefore never applied. Every reader of pixels (ingest, facts,
model backends, reader, verify) uses this one rule; ingest records the choice per image.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from engine import storage

# extension used in shards -> PIL format name. One list for ingest, release, reader and verify.
FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "tiff": "TIFF"}
IMAGE_EXTS = tuple(FORMATS)
EXT_OF_FORMAT = {v: k for k, v in FORMATS.items()}
ORIENTATION_TAG = 0x0112
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)   # EXIF values that exchange width and height
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class UnsupportedImage(ValueError):
    """Bytes the engine will not decode: the message says why (format or pixel mode)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def check_format(im: Image.Image) -> str:
    """The shard extension of an opened image; UnsupportedImage for formats not in FORMATS."""
    ext = EXT_OF_FORMAT.get(im.format or "")
    if ext is None:
        raise UnsupportedImage("unsupported_format",
                               f"{im.format or 'unknown'} images are not accepted (accepted: "
                               f"{', '.join(sorted(set(FORMATS.values())))})")
    return ext


def check_mode(im: Image.Image) -> None:
    """UnsupportedImage for pixel modes that cannot become 8-bit RGB without guessing."""
    if im.mode in SIXTEEN_BIT_MODES or im.mode in ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa",
                                                   "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return
    if im.mode == "I" and im.format == "PNG":  # 16-bit PNG greyscale in older Pillow versions
        return
    raise UnsupportedImage("unsupported_image_mode",
                           f"pixel mode {im.mode!r} ({im.format or 'image'}) has no faithful 8-bit RGB "
                           "conversion (float or over 16-bit data); convert the file to 8 or 16 bits")


def orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1 = none or unreadable)."""
    try:
        value = im.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block is not a broken image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def oriented_size(im: Image.Image) -> tuple[int, int]:
    w, h = im.size
    return (h, w) if orientation(im) in SWAPPING_ORIENTATIONS else (w, h)


def applies_orientation(im: Image.Image, size: tuple[int, int] | None) -> bool:
    """The rule (module doc): orient only when the expected size is the oriented one alone."""
    return size is not None and tuple(size) != im.size and oriented_size(im) == tuple(size)


def _rgb(im: Image.Image) -> np.ndarray:
    check_mode(im)
    if im.mode in SIXTEEN_BIT_MODES or im.mode == "I":
        grey = np.asarray(im, dtype=np.uint32 if im.mode == "I" else None).astype(np.uint32)
        grey = ((np.clip(grey, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def open_image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def decode_rgb(data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
    """Image bytes -> HxWx3 uint8. `size` = the (w, h) the annotations were drawn at; with it,
    EXIF orientation is applied when that is what makes the picture that size (module doc)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with open_image(data) as im:
            if applies_orientation(im, size):
                im.load()
                with ImageOps.exif_transpose(im) as oriented:
                    return _rgb(oriented)
            return _rgb(im)


def load_rgb(uri: str, size: tuple[int, int] | None = None) -> np.ndarray:
    return decode_rgb(storage.read_bytes(uri), size)
