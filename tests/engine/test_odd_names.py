"""Issue 9, problem 10: category names with HTML and quotes are data: they stay as written in
the release's tables and instructions, and are escaped where they reach markdown or HTML
(dataset card, verify report, console summary)."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from engine.build import build
from engine.config import EngineConfig
from engine.release.publish import open_release
from engine.report import md_text, print_report
from engine.verify.cli import main as verify_main
from tests.coco_fixtures import make_case

ODD = '<img src=x onerror="alert(1)"> | *cat* [x](y) \'q\''


@pytest.fixture(scope="module")
def odd_release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("odd")
    case = make_case(tmp, n_images=2)
    used = {a["category_id"] for a in case.annotations}
    for c in case.coco["categories"]:
        if c["id"] in used:
            c["name"] = f"{ODD} {c['id']}"
    res = build([case.write()], str(tmp / "release"), EngineConfig(), workdir=tmp / "w")
    return tmp, res


def test_names_stay_as_data_in_the_release(odd_release):
    _, res = odd_release
    rel = open_release(res.release_uri)
    assert rel.manifest["category"].str.startswith(ODD).any()


def test_dataset_card_escapes_names(odd_release):
    _, res = odd_release
    card = (open_release(res.release_uri).uri + "/README.md")
    text = open(card, encoding="utf-8").read()
    assert "<img" not in text and 'onerror="' not in text
    assert md_text(ODD) in text  # escaped, still readable
    header_pipes = None
    for line in text.splitlines():  # every table row keeps its table's column count
        if not line.startswith("|"):
            header_pipes = None
            continue
        pipes = line.replace("\\|", "").count("|")
        if header_pipes is None:
            header_pipes = pipes
        assert pipes == header_pipes, line


def test_verify_report_escapes_names(odd_release):
    tmp, res = odd_release
    out = tmp / "report"
    rc = verify_main([res.release_uri, "--per-stratum", "2", "--out", str(out), "--verdicts", str(tmp / "v"),
                      "--integrity"], console=Console(file=io.StringIO()))
    assert rc == 0  # --integrity passes: every member is an accepted format
    html = "".join(p.read_text(encoding="utf-8") for p in out.glob("*.html"))
    assert "<img src=x" not in html and "onerror=\"alert" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_console_summary_does_not_read_names_as_markup():
    rep = {"instructions": {"accepted": 0, "rejected": 1}, "images": 1, "by_tier": {}, "coverage": {t: 0 for t in
           ("concept", "simple", "complex")}, "coverage_1to1": {t: 0 for t in ("concept", "simple", "complex")},
           "by_tier_cardinality": {}, "eligible_instances": 0, "excluded_beside_crowd": 0,
           "words_per_instruction": {"mean": 0.0}, "distinct_1": 0.0, "distinct_2": 0.0,
           "rejection_reasons": {"lexical: no [/bold] category": 1}, "no_complex_tier_categories": ["[/] [red]x"]}
    buf = io.StringIO()
    print_report(rep, Console(file=buf, width=200))
    assert "[/] [red]x" in buf.getvalue() and "[/bold]" in buf.getvalue()
