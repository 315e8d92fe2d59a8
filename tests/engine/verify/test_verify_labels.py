import csv
import hashlib
import io
import json
import re
import sys
from pathlib import Path

import pytest
from rich.console import Console

from engine.verify.cli import main
from engine.verify.labels import VerdictStore, parse_reason, parse_verdict


def run_cli(*args) -> tuple[int, str]:
    buf = io.StringIO()
    rc = main([str(a) for a in args], console=Console(file=buf, width=200))
    return rc, buf.getvalue()


def read_template(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_labels(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def expected_precision(summary: dict, verdicts: dict[str, str], items: list[dict]) -> float:
    """sum_h N_h/N * k_h/n_h, from the template rows and the verdicts given."""
    pop = {s["stratum"]: s["population"] for s in summary["estimate"]["strata"]}
    total = sum(pop.values())
    p = 0.0
    for h, N in pop.items():
        judged = [verdicts[r["item_id"]] for r in items if r["stratum"] == h]
        p += N / total * sum(v == "correct" for v in judged) / len(judged)
    return p


def test_labels_with_planted_errors_move_the_estimate_and_trip_the_gate(release_copy, tmp_path):
    before = tree_digest(Path(release_copy))
    out = tmp_path / "report"
    base = [release_copy, "--per-stratum", 6, "--out", out]
    rc, text = run_cli(*base, "--gate", 0.8)
    assert rc == 3 and "no evidence" in text                     # nothing judged yet
    assert "no verdicts yet" in text and "--labels FILE" in text  # and the table says how to give some
    items = read_template(out / "labels_template.csv")
    assert len(items) == len(json.loads((out / "summary.json").read_text())["sample"]["items"])

    all_correct = [{**r, "verdict": "correct"} for r in items]
    rc, text = run_cli(*base, "--labels", write_labels(tmp_path / "good.csv", all_correct), "--gate", 0.8)
    assert rc == 0, text
    good = json.loads((out / "summary.json").read_text())
    assert good["estimate"]["precision"] == pytest.approx(1.0)
    assert good["estimate"]["low"] >= 0.8 and good["gate"]["passed"]

    # plant errors: every other item of the largest stratum is wrong, with reasons
    biggest = max(good["estimate"]["strata"], key=lambda s: s["population"])["stratum"]
    planted = {}
    wrong_ids = [r["item_id"] for r in items if r["stratum"] == biggest][::2]
    reasons = ["wrong object", "2", "ungrammatical"]
    labelled = []
    for r in items:
        if r["item_id"] in wrong_ids:
            k = wrong_ids.index(r["item_id"])
            labelled.append({**r, "verdict": "wrong", "reason": reasons[k % 3]})
            planted[r["item_id"]] = "wrong"
        else:
            labelled.append({**r, "verdict": "yes"})
            planted[r["item_id"]] = "correct"
    rc, text = run_cli(*base, "--labels", write_labels(tmp_path / "planted.csv", labelled), "--gate", 0.8)
    assert rc == 3, text
    assert "gate 0.800 failed" in text
    bad = json.loads((out / "summary.json").read_text())
    assert bad["estimate"]["precision"] == pytest.approx(expected_precision(bad, planted, items))
    assert bad["estimate"]["precision"] < good["estimate"]["precision"]
    assert bad["estimate"]["low"] < 0.8
    want = {"wrong_object": 0, "ambiguous": 0, "ungrammatical": 0}
    for k in range(len(wrong_ids)):
        want[["wrong_object", "ambiguous", "ungrammatical"][k % 3]] += 1
    assert bad["failure_reasons"] == {k: v for k, v in want.items() if v}
    stratum = next(s for s in bad["estimate"]["strata"] if s["stratum"] == biggest)
    assert stratum["judged"] == 6 and stratum["correct"] == 6 - len(wrong_ids)
    assert "wrong object" in text and "ambiguous" in text          # the failure-reason table

    # a lower gate passes overall; --gate-each still fails on the planted stratum
    rc, text = run_cli(*base, "--gate", round(bad["estimate"]["low"] - 0.01, 3))
    assert rc == 0, text
    rc, text = run_cli(*base, "--gate", round(bad["estimate"]["low"] - 0.01, 3), "--gate-each")
    assert rc == 3 and biggest in text

    # verdicts live beside the release, the release is untouched, the report shows them
    assert (Path(release_copy).parent / "release.verify" / "verdicts.jsonl").exists()
    assert tree_digest(Path(release_copy)) == before
    html = (out / "report.html").read_text()
    assert html.count("verdict: wrong") == len(wrong_ids)
    # the marking controls start from the stored verdicts (a CSV downloaded from the page keeps them)
    assert html.count('value="wrong" checked') == len(wrong_ids)
    assert html.count('value="correct" checked') == len(items) - len(wrong_ids)


def test_labels_file_errors_name_the_file_and_line(release_uri, tmp_path):
    out = tmp_path / "r"
    base = [release_uri, "--per-stratum", 2, "--out", out, "--verdicts", tmp_path / "v"]
    assert run_cli(*base)[0] == 0
    items = read_template(out / "labels_template.csv")
    bad_item = write_labels(tmp_path / "a.csv", [{**items[0], "verdict": "y"}, {**items[1], "item_id": "v-nope", "verdict": "y"}])
    rc, text = run_cli(*base, "--labels", bad_item)
    assert rc == 2 and re.search(r"a\.csv:3: item v-nope is not an item of release", text)
    bad_verdict = write_labels(tmp_path / "b.csv", [{**items[0], "verdict": "maybe"}])
    rc, text = run_cli(*base, "--labels", bad_verdict)
    assert rc == 2 and "b.csv:2" in text and "maybe" in text
    contradiction = write_labels(tmp_path / "c.csv", [{**items[0], "verdict": "correct", "reason": "ambiguous"}])
    rc, text = run_cli(*base, "--labels", contradiction)
    assert rc == 2 and "c.csv:2" in text
    assert not (tmp_path / "v" / "verdicts.jsonl").exists()       # nothing half-recorded

    # JSONL works too, and a reason alone means wrong
    jl = tmp_path / "d.jsonl"
    jl.write_text(json.dumps({"item_id": items[0]["item_id"], "reason": "mask bad"}) + "\n"
                  + json.dumps({"item_id": items[1]["item_id"], "verdict": "correct"}) + "\n")
    rc, text = run_cli(*base, "--labels", jl)
    assert rc == 0, text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["estimate"]["judged"] == 2 and summary["failure_reasons"] == {"bad_mask": 1}


def test_interactive_labelling_is_resumable(release_uri, tmp_path, monkeypatch, capsys):
    out, vdir = tmp_path / "r", tmp_path / "v"
    base = [release_uri, "--per-stratum", 2, "--out", out, "--verdicts", vdir, "--interactive"]
    # y, 2 (= wrong: ambiguous), an unknown key then n, s(kip), q(uit)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n2\nx\nn\ns\nq\n"))
    rc, text = run_cli(*base)
    assert rc == 0, text
    shown = capsys.readouterr().out
    paths = re.findall(r"picture: (\S+)", shown)
    assert len(paths) == 5 and all(Path(p).exists() for p in paths)   # the 5th is where q was pressed
    assert "unknown key 'x'" in shown
    items = read_template(out / "labels_template.csv")
    store = VerdictStore(vdir, json.loads((out / "summary.json").read_text())["release_id"])
    got = store.load()
    assert [(got[r["item_id"]].verdict, got[r["item_id"]].reason) for r in items[:3]] == [
        ("correct", None), ("wrong", "ambiguous"), ("wrong", None)]
    assert items[3]["item_id"] not in got                          # skipped, so asked again later
    assert "interactive: 3 answered, 1 skipped, 0 already judged (stopped" in text
    assert "overall precision is undefined until every stratum has a verdict" in text
    assert "-> wrong (ambiguous)" in shown                       # each answer is echoed

    # restart: answered items are not asked again; the skipped one comes first
    monkeypatch.setattr(sys, "stdin", io.StringIO("5\n"))           # then end of input
    rc, text = run_cli(*base)
    assert rc == 0
    shown = capsys.readouterr().out
    first = re.search(r"\[1/(\d+)\] (v-\w+)", shown)
    assert first.group(2) == items[3]["item_id"] and int(first.group(1)) == len(items) - 3
    got = store.load()
    assert got[items[3]["item_id"]].reason == "bad_mask" and len(got) == 4
    # the template written afterwards carries the verdicts given so far
    again = {r["item_id"]: r for r in read_template(out / "labels_template.csv")}
    assert again[items[1]["item_id"]]["verdict"] == "wrong" and again[items[1]["item_id"]]["reason"] == "ambiguous"


def test_verdict_and_reason_spellings():
    assert [parse_verdict(v) for v in ("Y", "correct", "no", "WRONG", "", " ")] == [
        "correct", "correct", "wrong", "wrong", None, None]
    assert [parse_reason(v) for v in ("1", "wrong object", "Mask bad", "wrong-tier", "bad_mask", "")] == [
        "wrong_object", "wrong_object", "bad_mask", "wrong_tier", "bad_mask", None]
    with pytest.raises(ValueError):
        parse_reason("6")
    with pytest.raises(ValueError):
        parse_verdict("1")


def test_verdicts_and_report_may_not_go_inside_the_release(release_uri, tmp_path):
    rc, text = run_cli(release_uri, "--verdicts", Path(release_uri) / "verdicts", "--out", tmp_path / "o")
    assert rc == 2 and "inside the release" in text
    rc, text = run_cli(release_uri, "--verdicts", tmp_path / "v", "--out", Path(release_uri) / "report")
    assert rc == 2 and "inside the release" in text
    assert not (Path(release_uri) / "verdicts").exists() and not (Path(release_uri) / "report").exists()


def test_enter_on_a_terminal_is_no_answer_not_quit(monkeypatch):
    import click

    from engine.verify.labels import read_key

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    keys = iter(["\r", " ", "y", "\x04"])
    monkeypatch.setattr(click, "getchar", lambda: next(keys))
    assert [read_key() for _ in range(4)] == ["?", "?", "y", "\x04"]
