"""bench/judge_sheet.py: contact sheets per CSV, and verdicts recorded by item number."""
import csv
import importlib.util
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("judge_sheet", ROOT / "bench" / "judge_sheet.py")
judge_sheet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(judge_sheet)

FIELDS = ["image_id", "target_ids", "tier", "cardinality", "text", "verdict", "reason", "note", "picture"]


def _csv(path: Path, n: int, pic: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for k in range(n):
            w.writerow({"image_id": f"s:{k}", "target_ids": f"s:{k}", "tier": "simple", "cardinality": "1:1",
                        "text": f"the dog number {k}", "verdict": "", "reason": "", "note": "", "picture": str(pic)})
    return path


def test_sheets_are_kept_apart_per_csv_and_stale_ones_removed(tmp_path):
    pic = tmp_path / "p.png"
    Image.new("RGB", (40, 30), "red").save(pic)
    big = judge_sheet.sheets(_csv(tmp_path / "a.csv", 13, pic), 6)
    assert [p.name for p in big] == ["sheet_00.png", "sheet_01.png", "sheet_02.png"]
    other = judge_sheet.sheets(_csv(tmp_path / "b.csv", 2, pic), 6)
    assert other[0].parent != big[0].parent and all(p.exists() for p in big)
    # the same CSV again, shorter: only its own sheets are left
    again = judge_sheet.sheets(_csv(tmp_path / "a.csv", 4, pic), 6)
    assert sorted(p.name for p in again[0].parent.glob("sheet_*.png")) == ["sheet_00.png"]
