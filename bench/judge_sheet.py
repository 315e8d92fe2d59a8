"""Judge sampled items fast: contact sheets to look at, then one command to record the verdicts.

    .venv/bin/python bench/judge_sheet.py sheets /tmp/judged/coco-sample/to_judge.csv [--per-sheet 6]
    .venv/bin/python bench/judge_sheet.py record /tmp/judged/coco-sample/to_judge.csv coco-sample \\
        --wrong "7:ambiguous:two figs at the same height" --wrong "12:wrong_object:the cup is red"

`sheets` tiles the items' verify pictures (marked and clean panels) with their number, stratum
and full text into <csv dir>/<csv name>.sheets/sheet_NN.png (one folder per CSV, cleared first,
so no sheet of an earlier run is left among them). Open each sheet, decide for every item
whether the text picks out exactly the highlighted mask(s) for a reader who has not seen the
facts, and note the numbers of the wrong ones. `record` appends every item of the CSV to
bench/judgements/<set>.csv: the listed numbers as wrong with their reason and note, the rest as
correct (so list every wrong one: an item left out is recorded as right).
"""
from __future__ import annotations

import argparse
import csv
import sys
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
JUDGEMENTS = ROOT / "bench" / "judgements"
COLUMNS = ["image_id", "target_ids", "tier", "cardinality", "text", "verdict", "reason", "note"]
REASONS = ("ambiguous", "wrong_object", "ungrammatical", "other")
TILE_W, TILE_H, TEXT_H = 760, 330, 70


def read_items(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def sheets(path: Path, per_sheet: int) -> list[Path]:
    items = read_items(path)
    out_dir = path.parent / f"{path.stem}.sheets"
    out_dir.mkdir(exist_ok=True)
    for old in out_dir.glob("sheet_*.png"):
        old.unlink()          # a shorter list must not leave an earlier list's later sheets behind
    cols = 2
    rows = -(-per_sheet // cols)
    written = []
    for start in range(0, len(items), per_sheet):
        sheet = Image.new("RGB", (TILE_W * cols, (TILE_H + TEXT_H) * rows), "white")
        draw = ImageDraw.Draw(sheet)
        for k, item in enumerate(items[start:start + per_sheet]):
            x, y = (k % cols) * TILE_W, (k // cols) * (TILE_H + TEXT_H)
            pic = Image.open(item["picture"]).convert("RGB")
            pic.thumbnail((TILE_W - 10, TILE_H - 6))
            sheet.paste(pic, (x + 5, y + 3))
            label = f"#{start + k + 1} {item['tier']} {item['cardinality']}: {item['text']}"
            draw.multiline_text((x + 5, y + TILE_H), "\n".join(textwrap.wrap(label, 120)[:4]), fill="black")
        target = out_dir / f"sheet_{start // per_sheet:02d}.png"
        sheet.save(target)
        written.append(target)
    return written


def record(path: Path, set_name: str, wrong: list[str]) -> Path:
    items = read_items(path)
    calls = {}
    for w in wrong:
        num, reason, *note = w.split(":", 2)
        if reason not in REASONS:
            raise SystemExit(f"--wrong {w!r}: reason must be one of {', '.join(REASONS)}")
        if not 1 <= int(num) <= len(items):
            raise SystemExit(f"--wrong {w!r}: item number out of 1..{len(items)}")
        calls[int(num)] = (reason, note[0] if note else "")
    target = JUDGEMENTS / f"{set_name.replace('/', '_')}.csv"
    new = not target.exists()
    with target.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for n, item in enumerate(items, 1):
            reason, note = calls.get(n, ("", ""))
            writer.writerow({**{c: item[c] for c in COLUMNS[:5]}, "verdict": "wrong" if n in calls else "correct",
                             "reason": reason, "note": note})
    print(f"{len(items)} verdicts ({len(calls)} wrong) appended to {target}")
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sheets")
    s.add_argument("to_judge", type=Path)
    s.add_argument("--per-sheet", type=int, default=6)
    r = sub.add_parser("record")
    r.add_argument("to_judge", type=Path)
    r.add_argument("set_name")
    r.add_argument("--wrong", action="append", default=[], help="N:reason[:note]")
    args = ap.parse_args(argv)
    if args.cmd == "sheets":
        for p in sheets(args.to_judge, args.per_sheet):
            print(p)
    else:
        record(args.to_judge, args.set_name, args.wrong)
    return 0


if __name__ == "__main__":
    sys.exit(main())
