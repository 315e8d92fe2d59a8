import io
import json
import math
from collections import Counter

import pandas as pd
import pytest
from rich.console import Console

from engine.release.publish import open_release
from engine.verify.cli import main
from engine.verify.sample import SampleSpec, draw, item_id


def run_cli(*args) -> tuple[int, str]:
    buf = io.StringIO()
    rc = main([str(a) for a in args], console=Console(file=buf, width=200))
    return rc, buf.getvalue()


def test_sample_is_reproducible_and_depends_on_the_seed(release_uri):
    rel = open_release(release_uri)
    a = draw(rel.manifest, rel.release_id, SampleSpec(seed=7, per_stratum=4))
    b = draw(rel.manifest.sample(frac=1, random_state=3), rel.release_id, SampleSpec(seed=7, per_stratum=4))
    c = draw(rel.manifest, rel.release_id, SampleSpec(seed=8, per_stratum=4))
    assert a.items["item_id"].tolist() == b.items["item_id"].tolist()   # row order does not matter
    assert set(a.items["item_id"]) != set(c.items["item_id"])
    assert a.items["item_id"].tolist() == [item_id(rel.release_id, i) for i in a.items["instruction_id"]]


def test_strata_are_tier_by_cardinality_with_negatives_apart(release_uri):
    rel = open_release(release_uri)
    m = rel.manifest
    s = draw(m, rel.release_id, SampleSpec(per_stratum=5))
    pop = m.groupby(["tier", "cardinality"]).size()
    assert set(s.strata) == {f"{t}/{c}" for t, c in pop.index}
    assert any(name.endswith("/negative") for name in s.strata)
    got = s.items.groupby(["tier", "cardinality"]).size()
    for (t, c), N in pop.items():
        assert s.strata[f"{t}/{c}"] == {"population": N, "sampled": min(N, 5)}
        assert got[(t, c)] == min(N, 5)
    assert (s.items["stratum"] == s.items["tier"] + "/" + s.items["cardinality"]).all()
    assert s.items["instruction_id"].isin(set(m["instruction_id"])).all()
    assert s.items["instruction_id"].is_unique


def test_ci_width_sizes_each_stratum_with_finite_population_correction(release_uri):
    rel = open_release(release_uri)
    s = draw(rel.manifest, rel.release_id, SampleSpec(ci_width=0.2))
    for name, st in s.strata.items():
        N = st["population"]
        n0 = 1.959964 ** 2 * 0.25 / 0.1 ** 2
        assert st["sampled"] == min(N, math.ceil(n0 / (1 + (n0 - 1) / N) - 1e-6)), name
        assert (s.items["stratum"] == name).sum() == st["sampled"]


def test_extra_strata_and_nested_samples(release_uri):
    rel = open_release(release_uri)
    m = rel.manifest
    s = draw(m, rel.release_id, SampleSpec(per_stratum=2, by=("category",)))
    assert len(s.strata) == m.groupby(["tier", "cardinality", "category"]).ngroups
    assert all("/category=" in n for n in s.strata)
    small = draw(m, rel.release_id, SampleSpec(per_stratum=3))
    large = draw(m, rel.release_id, SampleSpec(per_stratum=6))
    assert set(small.items["item_id"]) <= set(large.items["item_id"])
    with pytest.raises(ValueError, match="--by"):
        SampleSpec(by=("colour",))


def test_every_instruction_is_equally_likely():
    pop = pd.DataFrame({"instruction_id": [f"i-{k}" for k in range(20)], "tier": "simple", "cardinality": "1:1"})
    counts = Counter()
    for seed in range(2000):
        counts.update(draw(pop, "r", SampleSpec(seed=seed, per_stratum=5)).items["instruction_id"])
    # each is drawn with probability 5/20: 500 times expected, sd ~19
    assert set(counts) == set(pop["instruction_id"])
    assert all(420 <= c <= 580 for c in counts.values()), counts


def test_cli_sample_matches_the_draw(release_uri, tmp_path):
    rel = open_release(release_uri)
    rc, out = run_cli(release_uri, "--per-stratum", 3, "--seed", 5, "--out", tmp_path / "a",
                      "--verdicts", tmp_path / "v")
    assert rc == 0, out
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    want = draw(rel.manifest, rel.release_id, SampleSpec(seed=5, per_stratum=3))
    assert summary["sample"]["items"] == want.items["item_id"].tolist()



def test_rejected_mode_samples_the_rejected_candidates(release_with_rejections, tmp_path):
    release_uri = release_with_rejections
    rel = open_release(release_uri)
    assert len(rel.rejected) > 0
    rc, out = run_cli(release_uri, "--rejected", "--per-stratum", 3, "--out", tmp_path / "r",
                      "--verdicts", tmp_path / "v")
    assert rc == 0, out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    strata = rel.rejected.groupby(["tier", "cardinality"]).size()
    assert len(summary["sample"]["items"]) == sum(min(3, n) for n in strata)
    rejected_ids = {item_id(rel.release_id, i) for i in rel.rejected["instruction_id"]}
    assert summary["sample"]["items"] and set(summary["sample"]["items"]) <= rejected_ids
    assert summary["sample"]["population"] == len(rel.rejected)
    assert "rejected:" in (tmp_path / "r" / "report.html").read_text()

    rc, out = run_cli(release_uri, "--rejected", "--gate", "0.9", "--out", tmp_path / "x", "--verdicts", tmp_path / "v")
    assert rc == 2 and "--gate" in out


def test_cli_refuses_a_folder_that_is_not_a_release(tmp_path):
    (tmp_path / "half").mkdir()
    rc, out = run_cli(tmp_path / "half", "--out", tmp_path / "o")
    assert rc == 2 and "_RELEASE.json" in out
