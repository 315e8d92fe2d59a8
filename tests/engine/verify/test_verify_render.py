import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from rich.console import Console
from scipy import ndimage

from engine.release.publish import open_release
from engine.release.shard import iter_shard_members
from engine.verify.cli import main
from engine.verify.render import DISTRACTOR_RGB, PANEL_GAP, TARGET_RGB, contact_sheets, overlay, SheetEntry


class ReportParser(HTMLParser):
    """article.item elements: their data-* attributes and the src of their picture."""

    def __init__(self):
        super().__init__()
        self.items: list[dict] = []
        self.tags = 0

    def handle_starttag(self, tag, attrs):
        self.tags += 1
        a = dict(attrs)
        if tag == "article" and "item" in a.get("class", "").split():
            self.items.append({k[5:]: v for k, v in a.items() if k.startswith("data-")} | {"id": a.get("id")})
        elif tag == "img" and "picture" in a.get("class", "").split() and self.items:
            self.items[-1]["src"] = a["src"]


def parse_report(path: Path) -> ReportParser:
    p = ReportParser()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


def decode_data_uri(src: str) -> np.ndarray:
    head, data = src.split(",", 1)
    assert head in ("data:image/jpeg;base64", "data:image/png;base64"), head
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")).astype(int)


def near(pixels: np.ndarray, rgb, tol: int = 60) -> np.ndarray:
    return (np.abs(pixels - np.array(rgb)).max(axis=-1) <= tol)


def shard_samples(release_uri: str, shard: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, ext, data in iter_shard_members(Path(release_uri) / shard):
        out.setdefault(key, {})[ext] = data
    return out


def mask_at(seg: dict, size: tuple[int, int]) -> np.ndarray:
    m = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).astype(np.uint8) * 255
    return np.asarray(Image.fromarray(m).resize(size, Image.Resampling.NEAREST)) > 0


def test_overlay_draws_fill_and_outlines_only_on_their_masks():
    rgb = np.full((60, 80, 3), 100, np.uint8)
    target = np.zeros((60, 80), bool)
    target[10:30, 10:30] = True
    other = np.zeros((60, 80), bool)
    other[35:55, 50:75] = True
    out = np.asarray(overlay(rgb, [target], [other])).astype(int)
    assert (out[~(target | other)] == 100).all()                       # untouched elsewhere
    assert (out[10, 10:30] == TARGET_RGB).all() and (out[29, 10:30] == TARGET_RGB).all()  # outline
    centre = out[20, 20]
    assert centre[0] > 100 and centre[1] < 100 and centre[2] > 100      # fill: blended toward magenta
    assert not (centre == TARGET_RGB).all()                             # semi-transparent
    assert (out[35, 50:75] == DISTRACTOR_RGB).all()                     # distractor outline
    assert (out[45, 60] == 100).all()                                   # no distractor fill
    plain = np.asarray(overlay(rgb, [], [])).astype(int)
    assert (plain == 100).all()                                         # negatives: nothing drawn


def test_report_contains_every_item_with_the_overlay_on_its_target(release_uri, tmp_path):
    out = tmp_path / "report"
    buf = io.StringIO()
    rc = main([release_uri, "--per-stratum", "6", "--seed", "3", "--out", str(out), "--verdicts", str(tmp_path / "v")],
              console=Console(file=buf, width=200))
    assert rc == 0, buf.getvalue()
    summary = json.loads((out / "summary.json").read_text())
    report = parse_report(out / "report.html")
    assert [i["item-id"] for i in report.items] == summary["sample"]["items"]
    assert all(i["id"] == i["item-id"] and i.get("src") for i in report.items)

    rel = open_release(release_uri)
    manifest = rel.manifest.set_index("instruction_id")
    cache: dict[str, dict] = {}
    checked = {"target": 0, "negative": 0, "distractor": 0}
    for item in report.items:
        row = manifest.loc[item["instruction-id"]]
        assert item["text"] == row["text"] and item["stratum"] == f"{row['tier']}/{row['cardinality']}"
        if row["shard"] not in cache:
            cache[row["shard"]] = shard_samples(release_uri, row["shard"])
        sample = cache[row["shard"]][row["sample_key"]]
        meta = json.loads(sample["json"])
        pic = decode_data_uri(item["src"])
        clean = None
        if row["cardinality"] != "negative":
            # marked picture left, the clean photo right (dual panel), PANEL_GAP apart
            w = (pic.shape[1] - PANEL_GAP) // 2
            pic, clean = pic[:, :w], pic[:, w + PANEL_GAP:]
        size = (pic.shape[1], pic.shape[0])
        ext = next(e for e in ("jpg", "png") if e in sample)
        plain = np.asarray(Image.open(io.BytesIO(sample[ext])).convert("RGB").resize(size, Image.Resampling.LANCZOS)).astype(int)
        assert abs(size[0] / size[1] - meta["image"]["width"] / meta["image"]["height"]) < 0.01
        if clean is not None:
            assert clean.shape == pic.shape and np.abs(clean - plain).mean() < 8   # unmarked photo

        insts = {i["instance_id"]: i for i in meta["instances"]}
        targets = [mask_at(insts[t]["segmentation"], size) for t in row["target_ids"]]
        cats = {insts[t]["category"] for t in row["target_ids"]}
        others = [mask_at(i["segmentation"], size) for i in meta["instances"]
                  if i["category"] in cats and i["instance_id"] not in set(row["target_ids"])]
        drawn = np.logical_or.reduce(targets + others) if targets else np.zeros(pic.shape[:2], bool)
        far = ~ndimage.binary_dilation(drawn, iterations=6)
        # outside every drawn mask the overlay adds no magenta: as much as the plain image has
        added = near(pic, TARGET_RGB)[far].sum() - near(plain, TARGET_RGB)[far].sum()
        assert added <= 0.001 * far.sum(), (item["item-id"], added)
        if row["cardinality"] == "negative":
            # the plain image up to JPEG noise: no overlay or outline colour added anywhere
            assert np.abs(pic - plain).mean() < 8
            assert near(pic, DISTRACTOR_RGB).sum() <= near(plain, DISTRACTOR_RGB).sum() + 0.001 * far.sum()
            checked["negative"] += 1
            continue
        union = np.logical_or.reduce(targets)
        inside = ndimage.binary_dilation(union, iterations=1)
        assert near(pic, TARGET_RGB)[inside].sum() >= min(20, union.sum()), item["item-id"]
        # the fill tints the target toward magenta: more red+blue relative to green than the plain image
        tint = lambda a: (a[..., 0] + a[..., 2] - 2 * a[..., 1])[union].mean()
        assert tint(pic) > tint(plain) + 20
        checked["target"] += 1
        big_others = [m for m in others if m.sum() > 200]
        if big_others:
            near_others = ndimage.binary_dilation(np.logical_or.reduce(big_others), iterations=1) & ~union
            assert near(pic, DISTRACTOR_RGB)[near_others].sum() > 0
            checked["distractor"] += 1
    assert checked["target"] > 0 and checked["negative"] > 0 and checked["distractor"] > 0

    # contact sheets: one per 24 items, every one holding some overlay colour
    sheets = sorted(out.glob("contact_sheet_*.png"))
    assert len(sheets) == -(-len(report.items) // 24)
    for s in sheets:
        px = np.asarray(Image.open(s).convert("RGB")).astype(int)
        assert near(px, TARGET_RGB).sum() > 100
    # each picture is also a file, listed in the labels template
    template = (out / "labels_template.csv").read_text()
    for item in report.items:
        assert (out / item["picture"]).exists() and item["picture"] in template


def test_contact_sheet_grid_and_captions():
    pics = [Image.new("RGB", (200, 100), (k * 20, 0, 0)) for k in range(7)]
    entries = [SheetEntry(p, f"#{k}", "a rather long instruction " * 8, "footer") for k, p in enumerate(pics)]
    sheets = contact_sheets(entries, cols=3, rows=2, thumb=120)
    assert len(sheets) == 2                                 # 6 + 1
    first, last = sheets
    assert first.width == last.width and first.height > last.height
    px = np.asarray(first)
    assert (px[..., 0] > 0).any() and (px < 100).all(axis=-1).any()   # thumbnails and dark caption text
