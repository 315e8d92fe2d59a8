import io
import json

from rich.console import Console

from engine.config import load_config
from engine.release.publish import open_release
from engine.verify.cli import main, population
from engine.verify.integrity import check_release
from engine.verify.recheck import recheck
from engine.verify.sample import SampleSpec, draw

POLICY = "check.policy.complex=[program, no_category_noun, sam3i]"


def run_cli(*args) -> tuple[int, str]:
    buf = io.StringIO()
    rc = main([str(a) for a in args], console=Console(file=buf, width=250))
    return rc, buf.getvalue()


def test_recheck_reproduces_the_stored_results(release_uri, tmp_path):
    rc, text = run_cli(release_uri, "--per-stratum", 3, "--recheck", "--out", tmp_path / "o", "--verdicts", tmp_path / "v")
    assert rc == 0, text
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["recheck"]["rechecked"] == len(summary["sample"]["items"])
    assert summary["recheck"]["changes"] == [] and "every stored check result reproduces" in text


def test_recheck_reports_a_verdict_that_changed(release_uri):
    rel = open_release(release_uri)
    items = draw(rel.manifest, rel.release_id, SampleSpec(per_stratum=2)).items
    _, samples = check_release(rel, items, rel.manifest)
    tampered = items.copy()
    row = tampered.index[0]
    checks = json.loads(tampered.loc[row, "checks"])
    checks[0]["verdict"] = "fail"                      # as if the program check had failed at build time
    tampered.loc[row, "checks"] = json.dumps(checks)
    res = recheck(tampered, samples, load_config())
    assert res.rechecked == len(items)
    assert [(c.item_id, c.checker, c.stored, c.now) for c in res.changes] == [
        (items.loc[row, "item_id"], checks[0]["checker"], "fail", "pass")]


def test_recheck_of_rejected_candidates_follows_the_config(release_with_rejections, tmp_path):
    base = [release_with_rejections, "--rejected", "--per-stratum", 2, "--recheck", "--verdicts", tmp_path / "v"]
    # with the build's own policy every stored result reproduces
    rc, text = run_cli(*base, "--set", POLICY, "--set", "check.max_rounds=1", "--out", tmp_path / "same")
    assert rc == 0, text
    same = json.loads((tmp_path / "same" / "summary.json").read_text())
    assert same["recheck"]["rechecked"] > 0 and same["recheck"]["changes"] == []
    # under the default policy (no sam3i required) they would now be accepted
    rc, text = run_cli(*base, "--out", tmp_path / "default")
    changes = json.loads((tmp_path / "default" / "summary.json").read_text())["recheck"]["changes"]
    decisions = [c for c in changes if c["checker"] == "decision"]
    assert decisions and all((c["stored"], c["now"]) == ("rejected", "accepted") for c in decisions)
    assert {c["checker"] for c in changes} == {"decision", "sam3i"}
    assert "recheck:" in text and "changed" in text


def test_population_of_rejected_candidates_is_located_through_the_manifest(release_with_rejections):
    rel = open_release(release_with_rejections)
    pop = population(rel, rejected=True)
    assert len(pop) == len(rel.rejected)
    located = pop[pop["shard"].notna()]
    where = rel.manifest.drop_duplicates("image_id").set_index("image_id")
    assert (located["shard"].to_numpy() == where.loc[located["image_id"], "shard"].to_numpy()).all()
