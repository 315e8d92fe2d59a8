"""The model learns, and the sam3i checker judges with it: a tiny SAM3-I overfit on a few real
COCO instructions (stage 1) raises their gIoU far above the untrained model's, its loss falls by
more than half, and the `sam3i` checker then passes those instructions with their own target
and fails them paired with another instance's mask."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.checks.sam3i import Sam3iChecker
from engine.config import Sam3iCheckConfig
from engine.generate.base import SpecView
from engine.language.programs import Program, Scene
from model.overfit import overfit

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def overfit_run(coco_release, tmp_path_factory):
    return overfit(coco_release, images=3, epochs=150, lr=1e-2, output=str(tmp_path_factory.mktemp("overfit")),
                   say=lambda *_: None)


def test_overfitting_raises_giou_and_halves_the_loss(overfit_run):
    _, data, result, before, after, log = overfit_run
    assert len(data.items) == 3 and all(len(i.target_ids) == 1 for i in data.items)
    first, last = np.mean([r["loss"] for r in log[:3]]), np.mean([r["loss"] for r in log[-3:]])
    assert last < first / 2, (first, last)
    assert after["gIoU"] > 0.6 and after["gIoU"] > before["gIoU"] + 0.3, (before, after)
    assert after["P@0.5"] == 1.0


def unit_tables(data, tmp_path: Path):
    """The checker's view of the unit: image rows with a readable uri, instance rows with RLE."""
    rows, inst = [], []
    for key in {i.key for i in data.items}:
        path = tmp_path / f"{key.replace(':', '_')}.img"
        path.write_bytes(data.images[key])
        rows.append({"image_id": key, "uri": str(path)})
        inst += [{"instance_id": iid, "rle": i["segmentation"]["counts"]} for iid, i in data.instances[key].items()]
    return pd.DataFrame(rows), pd.DataFrame(inst)


def other_instance(data, item) -> str:
    """The largest other instance of the image that overlaps the target least."""
    h, w = data.rgb(item.key).shape[:2]
    from model.data import decode_rle

    target = data.target_masks(item, h, w)[0]
    best = None
    for iid, inst in data.instances[item.key].items():
        if iid in item.target_ids:
            continue
        m = decode_rle(inst["segmentation"]["counts"], h, w).astype(bool)
        score = m.sum() - 10 * (m & target).sum()
        best = max(best or (score, iid), (score, iid))
    return best[1]


def spec(item, targets) -> SpecView:
    return SpecView(f"s-{item.key}-{targets[0] if targets else 'none'}", item.key, item.tier, "attribute",
                    item.cardinality, tuple(targets), Program.loads("[]"))


def test_sam3i_checker_passes_own_targets_and_fails_other_instances(overfit_run, tmp_path):
    model, data, *_ = overfit_run
    checker = Sam3iChecker(Sam3iCheckConfig(device="cpu"), iou_threshold=0.5, model=model)
    checker.bind_unit(*unit_tables(data, tmp_path))
    for item in data.items:
        own = checker.check(item.text, spec(item, item.target_ids), Scene(item.key, {}))
        assert own.verdict == "pass", (item.text, own)
        assert own.detail["iou"] >= 0.5 and "IoU" in own.reason and own.to_json()["detail"]["tier"] == "simple"
        wrong = checker.check(item.text, spec(item, [other_instance(data, item)]), Scene(item.key, {}))
        assert wrong.verdict == "fail", (item.text, wrong)
        assert wrong.detail["iou"] < 0.5 and "< 0.5" in wrong.reason


class _FixedSegmenter:
    def __init__(self, mask):
        self.mask = mask

    def segment(self, rgb, texts, tier, cardinalities):
        return [self.mask]


def test_negative_verdicts(tmp_path, overfit_run):
    """Narrow: a negative passes only when nothing is segmented, and says why."""
    _, data, *_ = overfit_run
    item = data.items[0]
    h, w = data.rgb(item.key).shape[:2]
    checker = Sam3iChecker(Sam3iCheckConfig(), 0.5)
    checker.bind_unit(*unit_tables(data, tmp_path))
    checker._segmenter = _FixedSegmenter(np.zeros((h, w), bool))
    ok = checker.check("the purple giraffe", spec(item, []), Scene(item.key, {}))
    assert ok.verdict == "pass" and "segments nothing" in ok.reason
    some = np.zeros((h, w), bool)
    some[:5, :5] = True
    checker._segmenter = _FixedSegmenter(some)
    bad = checker.check("the purple giraffe", spec(item, []), Scene(item.key, {}))
    assert bad.verdict == "fail" and "25 pixels" in bad.reason and bad.detail["predicted_pixels"] == 25


def test_engine_stays_light_until_the_check_runs():
    code = ("import sys; from engine.config import load_config; from engine.stages import make_checkers; "
            "from engine.lexicon import load_lexicon; "
            "cfg = load_config(None, ['check.extra=[sam3i]']); c = make_checkers(cfg, load_lexicon()); "
            "assert 'sam3i' in c, c; "
            "print(sorted(m for m in ('torch', 'transformers', 'model') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
