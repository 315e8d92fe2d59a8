"""Human verdicts: where they live, the labels template, reading it back, terminal labelling.

Verdicts are kept next to the release, never inside it (a release is immutable): in
`<release>.verify/verdicts.jsonl` for a local release, in `.sam3i-verify/s3/<bucket>/<prefix>/`
under the working directory for an S3 release, or wherever `--verdicts DIR` says. The file is
append-only, one JSON object per verdict; the latest line for an item wins, so a person can
change their mind, and a crash loses at most the line being written.

A verdict is `correct` or `wrong`, a wrong one with an optional reason (REASONS).
"""
from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from engine import storage

REASONS = ("wrong_object", "ambiguous", "ungrammatical", "wrong_tier", "bad_mask")
REASON_TEXT = {"wrong_object": "wrong object", "ambiguous": "ambiguous", "ungrammatical": "ungrammatical",
               "wrong_tier": "wrong tier", "bad_mask": "mask bad"}
UNSPECIFIED = "unspecified"
VERDICTS = ("correct", "wrong")
TEMPLATE_COLUMNS = ("item_id", "stratum", "tier", "subtype", "cardinality", "category", "text", "picture",
                    "verdict", "reason", "note")
_VERDICT_WORDS = {
    "correct": "correct", "c": "correct", "y": "correct", "yes": "correct", "ok": "correct", "true": "correct",
    "wrong": "wrong", "w": "wrong", "n": "wrong", "no": "wrong", "false": "wrong",
}


class LabelsError(ValueError):
    """A labels file cannot be used; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Verdict:
    item_id: str
    instruction_id: str
    release_id: str
    verdict: str                 # correct | wrong
    reason: str | None = None    # one of REASONS for wrong verdicts, else None
    note: str = ""
    source: str = ""             # "interactive" or "labels:<file>"
    at: str = ""                 # UTC time it was recorded

    @property
    def reason_or_unspecified(self) -> str:
        return self.reason or UNSPECIFIED


def default_verdicts_dir(release_uri: str) -> Path:
    """`<release>.verify` beside a local release; a local folder for an S3 one."""
    uri = str(release_uri).rstrip("/")
    if storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        return Path(".sam3i-verify") / "s3" / bucket / key
    p = Path(uri)
    return p.parent / f"{p.name}.verify"


class VerdictStore:
    FILE = "verdicts.jsonl"

    def __init__(self, directory: str | Path, release_id: str):
        self.dir = Path(directory)
        self.release_id = release_id
        self.path = self.dir / self.FILE

    def load(self) -> dict[str, Verdict]:
        """item_id -> latest verdict for this release (lines of other releases are ignored)."""
        out: dict[str, Verdict] = {}
        if not self.path.exists():
            return out
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    v = Verdict(**json.loads(line))
                except (ValueError, TypeError) as e:
                    if not line.endswith("\n"):
                        continue  # a torn last line from an interrupted write
                    raise LabelsError(f"{self.path}:{n}: not a verdict record ({e})") from None
                if v.release_id == self.release_id:
                    out[v.item_id] = v
        return out

    def add(self, verdicts: Iterable[Verdict]) -> int:
        lines = [json.dumps(asdict(v), sort_keys=True, ensure_ascii=False) + "\n" for v in verdicts]
        if not lines:
            return 0
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
        return len(lines)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parse_verdict(value: str) -> str | None:
    v = (value or "").strip().lower()
    if not v:
        return None
    if v not in _VERDICT_WORDS:
        raise ValueError(f"verdict {value!r} is not one of correct/wrong (or y/n)")
    return _VERDICT_WORDS[v]


def parse_reason(value: str) -> str | None:
    v = (value or "").strip().lower()
    if not v:
        return None
    if v.isdigit() and 1 <= int(v) <= len(REASONS):
        return REASONS[int(v) - 1]
    norm = v.replace("-", "_").replace(" ", "_")
    for key, text in REASON_TEXT.items():
        if norm in (key, text.replace(" ", "_")):
            return key
    if norm in ("mask_bad", "bad_mask"):
        return "bad_mask"
    if norm == UNSPECIFIED:
        return None
    raise ValueError(f"reason {value!r} is not one of {', '.join(REASONS)} (or 1-{len(REASONS)})")


def write_template(path: Path, items: pd.DataFrame, pictures: dict[str, str], existing: dict[str, Verdict]) -> None:
    """labels_template.csv: one row per sampled item, verdict/reason/note to fill in (given ones pre-filled)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(TEMPLATE_COLUMNS)
        for r in items.itertuples(index=False):
            v = existing.get(r.item_id)
            w.writerow([r.item_id, r.stratum, r.tier, r.subtype, r.cardinality, r.category, r.text,
                        pictures.get(r.item_id, ""), v.verdict if v else "", (v.reason or "") if v else "",
                        v.note if v else ""])


def _records(path: Path) -> list[tuple[int, dict]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    raise LabelsError(f"{path}:{n}: not JSON ({e})") from None
                if not isinstance(rec, dict):
                    raise LabelsError(f"{path}:{n}: expected a JSON object per line")
                out.append((n, rec))
        return out
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "item_id" not in reader.fieldnames or "verdict" not in reader.fieldnames:
        raise LabelsError(f"{path}: a labels CSV needs the columns item_id and verdict "
                          f"(found {reader.fieldnames}); start from labels_template.csv")
    return [(n, rec) for n, rec in enumerate(reader, 2)]


def read_labels(path: str | Path, instruction_of: dict[str, str], release_id: str) -> list[Verdict]:
    """Verdicts from a filled labels file (CSV like labels_template.csv, or JSONL with the same
    keys). Rows without a verdict are skipped; a reason alone means `wrong`. `instruction_of`
    maps the release's item ids to instruction ids: other ids are an error (another release?)."""
    path = Path(path)
    if not path.exists():
        raise LabelsError(f"{path}: labels file not found")
    out: list[Verdict] = []
    source = f"labels:{path.name}"
    for n, rec in _records(path):
        where = f"{path}:{n}"
        item = str(rec.get("item_id") or "").strip()
        if not item:
            raise LabelsError(f"{where}: no item_id")
        if item not in instruction_of:
            raise LabelsError(f"{where}: item {item} is not an item of release {release_id} "
                              "(a labels file from another release?)")
        try:
            verdict = parse_verdict(str(rec.get("verdict") or ""))
            reason = parse_reason(str(rec.get("reason") or ""))
        except ValueError as e:
            raise LabelsError(f"{where}: item {item}: {e}") from None
        if verdict is None and reason is None:
            continue
        if verdict is None:
            verdict = "wrong"
        if verdict == "correct" and reason is not None:
            raise LabelsError(f"{where}: item {item}: verdict 'correct' with failure reason {reason!r}")
        out.append(Verdict(item, instruction_of[item], release_id, verdict, reason,
                           str(rec.get("note") or "").strip(), source, now()))
    return out


# -- terminal labelling -------------------------------------------------------------------

KEYS = {"y": ("correct", None), "n": ("wrong", None)}
KEYS.update({str(i): ("wrong", r) for i, r in enumerate(REASONS, 1)})
PROMPT = ("y=correct  n=wrong  " + "  ".join(f"{i}={REASON_TEXT[r]}" for i, r in enumerate(REASONS, 1))
          + "  s=skip  q=quit > ")


def read_key() -> str:
    """One key press on a terminal; one line (its first character) otherwise. '' at end of input."""
    if sys.stdin.isatty():
        import click

        key = click.getchar()
        return key if key.strip() else "?"  # Enter or space is no answer (and must not read as end of input)
    line = sys.stdin.readline()
    if not line:
        return ""
    return line.strip()[:1] or "?"


def interactive(items: pd.DataFrame, pictures: dict[str, str], store: VerdictStore,
                read: Callable[[], str] = read_key, say: Callable[[str], None] = print) -> dict:
    """Ask for a verdict on each item without one, in sample order; each answer is stored at
    once, so quitting (q, end of input, Ctrl-C) and starting again resumes where it stopped."""
    done = store.load()
    todo = [r for r in items.itertuples(index=False) if r.item_id not in done]
    counts = {"answered": 0, "skipped": 0, "already": len(items) - len(todo), "quit": False}
    for k, r in enumerate(todo, 1):
        say(f"\n[{k}/{len(todo)}] {r.item_id}  {r.stratum} · subtype: {r.subtype} · category: {r.category}")
        say(f"  “{r.text}”")
        say(f"  picture: {pictures.get(r.item_id, '(none)')}")
        while True:
            say(PROMPT)
            try:
                key = read().strip().lower()
            except (KeyboardInterrupt, EOFError):
                key = "q"
            if key in ("", "q", "\x03", "\x04"):
                counts["quit"] = True
                return counts
            if key == "s":
                counts["skipped"] += 1
                break
            if key in KEYS:
                verdict, reason = KEYS[key]
                store.add([Verdict(r.item_id, r.instruction_id, store.release_id, verdict, reason, "",
                                   "interactive", now())])
                say(f"  -> {verdict}" + (f" ({REASON_TEXT[reason]})" if reason else ""))
                counts["answered"] += 1
                break
            say(f"  unknown key {key!r}")
    return counts
