"""Pictures for review: the image with its target mask(s) and same-category distractors drawn in.

Targets get a semi-transparent fill and a solid outline in TARGET_RGB; instances of the same
category that are not targets (the ones a wrong instruction would pick) get an outline in
DISTRACTOR_RGB. Outlines are drawn on the mask's own border pixels, so every drawn pixel lies
on its mask. Negatives show the image with nothing drawn: no instance should match. Pictures
are scaled so the longer side is at most `max_side` (masks are scaled the same way).
"""
from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from engine.sources import imageio
from engine.scene import masks

TARGET_RGB = (255, 0, 255)       # saturated magenta: rare in photos, easy to test for
DISTRACTOR_RGB = (0, 230, 255)   # cyan
FILL_ALPHA = 0.45
OUTLINE_PX = 2
MAX_SIDE = 640
JPEG_QUALITY = 90


def display_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bool HxW mask -> bool mask of PIL size (w, h), by area coverage >= 1/2."""
    if mask.shape[::-1] == tuple(size):
        return mask
    im = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)
    return np.asarray(im) >= 128


def border(mask: np.ndarray, width: int = OUTLINE_PX) -> np.ndarray:
    """The mask's pixels within `width` of its edge (inside the mask)."""
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(ys) == 0:
        return mask
    box = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))  # erode only the mask's box
    crop = mask[box]
    out = np.zeros_like(mask)
    out[box] = crop & ~ndimage.binary_erosion(crop, iterations=width, border_value=0)
    return out


def overlay(rgb: np.ndarray, targets: list[np.ndarray], distractors: list[np.ndarray],
            max_side: int = MAX_SIDE) -> Image.Image:
    """Draw targets (fill + outline) and distractors (outline) on the scaled image."""
    h, w = rgb.shape[:2]
    size = display_size(w, h, max_side)
    out = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS) if size != (w, h)
                     else Image.fromarray(rgb)).astype(np.float32)
    small_targets = [resize_mask(m, size) for m in targets]
    for m in distractors:
        out[border(resize_mask(m, size))] = DISTRACTOR_RGB
    if small_targets:
        fill = np.logical_or.reduce(small_targets)
        out[fill] = (1 - FILL_ALPHA) * out[fill] + FILL_ALPHA * np.array(TARGET_RGB, np.float32)
        for m in small_targets:
            out[border(m)] = TARGET_RGB
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


@dataclass(frozen=True)
class Layers:
    """Which instance masks a picture draws, decoded at full image size."""
    targets: list[np.ndarray]
    distractors: list[np.ndarray]
    target_ids: list[str]
    distractor_ids: list[str]


def layers_for(meta: dict, target_ids: list[str], cardinality: str) -> Layers:
    """Targets, and distractors = the other instances of the targets' categories (none for negatives)."""
    h, w = int(meta["image"]["height"]), int(meta["image"]["width"])
    by_id = {i["instance_id"]: i for i in meta["instances"]}
    if cardinality == "negative" or not target_ids:
        return Layers([], [], [], [])
    missing = [t for t in target_ids if t not in by_id]
    if missing:
        raise ValueError(f"target instance(s) {missing} are not in the sample of image {meta['image']['image_id']}")
    cats = {by_id[t]["category"] for t in target_ids}
    others = [i for i in meta["instances"] if i["category"] in cats and i["instance_id"] not in set(target_ids)]

    def dec(inst):
        return masks.decode(inst["segmentation"]["counts"], h, w)

    return Layers([dec(by_id[t]) for t in target_ids], [dec(i) for i in others],
                  list(target_ids), [i["instance_id"] for i in others])


PANEL_GAP = 8   # pixels between the marked picture and the clean one


def item_picture(meta: dict, image_bytes: bytes, target_ids: list[str], cardinality: str,
                 max_side: int = MAX_SIDE, clean_panel: bool = True) -> Image.Image:
    """The marked picture; with `clean_panel`, the unmarked photo beside it (as in SAM3-I's own
    dual-panel annotation tool): the tint hides the target's colour, so a judge of "the red
    cup" needs the clean photo too. Negatives mark nothing, so they get the photo alone."""
    img = meta.get("image", {})  # its width/height decide EXIF orientation (engine.sources.imageio)
    rgb = imageio.decode_rgb(image_bytes, (int(img["width"]), int(img["height"])) if "width" in img else None)
    lay = layers_for(meta, target_ids, cardinality)
    marked = overlay(rgb, lay.targets, lay.distractors, max_side)
    if not clean_panel or not lay.targets:
        return marked
    clean = overlay(rgb, [], [], max_side)
    both = Image.new("RGB", (marked.width * 2 + PANEL_GAP, marked.height), (255, 255, 255))
    both.paste(marked, (0, 0))
    both.paste(clean, (marked.width + PANEL_GAP, 0))
    return both


def placeholder(message: str, size: tuple[int, int] = (480, 320)) -> Image.Image:
    """A grey panel standing in for a picture that cannot be drawn (the message says why)."""
    im = Image.new("RGB", size, (90, 90, 90))
    d = ImageDraw.Draw(im)
    d.multiline_text((16, 16), "\n".join(textwrap.wrap(message, 44)), fill=(255, 255, 255), font=font(15))
    return im


def encode(img: Image.Image, fmt: str = "jpeg") -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0)  # 4:4:4 keeps thin outlines' colour
    elif fmt == "png":
        img.save(buf, "PNG", optimize=True)
    else:
        raise ValueError(f"unknown picture format {fmt!r} (jpeg or png)")
    return buf.getvalue()


def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def wrap_pixels(text: str, fnt, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap to a pixel width; the last line ends with '…' when text is cut."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if fnt.getlength(candidate) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and fnt.getlength(last + "…") > width:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines


@dataclass(frozen=True)
class SheetEntry:
    picture: Image.Image
    header: str      # e.g. "#3 v-1a2b… simple/1:1"
    text: str        # the instruction
    footer: str      # e.g. "attribute · dog · verdict: wrong (ambiguous)"


def contact_sheets(entries: list[SheetEntry], cols: int = 4, rows: int = 6, thumb: int = 300,
                   text_lines: int = 3) -> list[Image.Image]:
    """Grids of thumbnails with captions, `cols` x `rows` per sheet."""
    small, big = font(12), font(14)
    pad, line_h, big_h = 8, 15, 18
    cap_h = big_h + text_lines * line_h + line_h + pad
    cell_w, cell_h = thumb + 2 * pad, thumb + cap_h + 2 * pad
    per = cols * rows
    sheets = []
    for start in range(0, len(entries), per):
        chunk = entries[start:start + per]
        nrows = -(-len(chunk) // cols)
        sheet = Image.new("RGB", (cols * cell_w, nrows * cell_h), (250, 250, 250))
        d = ImageDraw.Draw(sheet)
        for i, e in enumerate(chunk):
            x0, y0 = (i % cols) * cell_w + pad, (i // cols) * cell_h + pad
            pic = e.picture.copy()
            pic.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
            sheet.paste(pic, (x0 + (thumb - pic.width) // 2, y0 + thumb - pic.height))  # sits on its caption
            y = y0 + thumb + 4
            d.text((x0, y), wrap_pixels(e.header, big, thumb, 1)[0], fill=(20, 20, 20), font=big)
            y += big_h
            for line in wrap_pixels(f"“{e.text}”", small, thumb, text_lines):
                d.text((x0, y), line, fill=(40, 40, 40), font=small)
                y += line_h
            d.text((x0, y0 + thumb + 4 + big_h + text_lines * line_h),
                   wrap_pixels(e.footer, small, thumb, 1)[0] if e.footer else "", fill=(110, 110, 110), font=small)
        sheets.append(sheet)
    return sheets
