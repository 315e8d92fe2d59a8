"""Reading image bytes and pixels through engine.storage (local paths or s3://)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from engine import storage


def decode_rgb(data: bytes) -> np.ndarray:
    """Image bytes -> HxWx3 uint8 (EXIF orientation is NOT applied: COCO masks are in file order)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def load_rgb(uri: str) -> np.ndarray:
    return decode_rgb(storage.read_bytes(uri))
