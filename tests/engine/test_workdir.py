"""Unit outputs the engine validated before writing are read back without re-validation
(engine/workdir.py), and read back exactly as the validating read returns them."""
import json
from pathlib import Path

import pandas as pd
import pytest

from engine.config import EngineConfig
from engine.sources.ingest import ingest, resolve_source
from engine.stages import UnitWorker
from engine.workdir import UnitStore, read_table
from schemas.facts import FACTS
from schemas.instructions import INSTRUCTIONS

from tests.release_data import COCO_SAMPLE as COCO  # noqa: E402  (honours SAM3I_SAMPLE_DATA)


@pytest.fixture(scope="module")
def unit():
    data = ingest([resolve_source(str(COCO))], EngineConfig().ingest)
    imgs = data.images.iloc[:3].assign(unit_id="u-w")
    inst = data.instances[data.instances["image_id"].isin(set(imgs["image_id"]))]
    return UnitWorker(EngineConfig()).run("u-w", imgs, inst)


def test_trusted_read_equals_the_validating_read(tmp_path, unit, monkeypatch):
    assert unit.validated
    store = UnitStore(tmp_path)
    store.write("units", "u-w", unit.tables(), validated=True)
    assert set(json.loads(store.marker("units", "u-w").read_text())["validated"]) == set(unit.tables())
    calls = []
    real = type(FACTS).validate
    monkeypatch.setattr(type(FACTS), "validate", lambda self, df: calls.append(self.name) or real(self, df))
    for name, (table, _) in unit.tables().items():
        got = store.read("units", "u-w", name, table)
        want = read_table(store.root / "units" / name / "u-w.parquet", table)
        pd.testing.assert_frame_equal(got, want)
    assert len(calls) == len(unit.tables()), "only the reference reads validated"


def test_unvalidated_or_changed_outputs_are_validated(tmp_path, unit):
    store = UnitStore(tmp_path)
    store.write("units", "u-w", unit.tables())             # e.g. a test double's frames
    assert store.marker("units", "u-w").read_bytes() == b""
    assert store.validated_sizes("units", "u-w") == {}
    store.write("units", "u-x", unit.tables(), validated=True)
    # a file replaced after the marker (size differs): validated, so its problem is named
    path = store.root / "units" / "instructions" / "u-x.parquet"
    bad = unit.instructions.assign(tier="enormous")
    import pyarrow.parquet as pq
    pq.write_table(INSTRUCTIONS.to_arrow(bad).slice(0, max(1, len(bad) // 2)), path)
    with pytest.raises(Exception, match="tier"):
        store.read("units", "u-x", "instructions", INSTRUCTIONS)


def test_report_on_the_columns_a_release_reads_equals_the_report_on_all_facts(tmp_path, unit):
    """A build loads only REPORT_FACT_COLUMNS of the facts (engine.build.collect): the quality
    report must not depend on any other column."""
    from engine.build import UNIT_STAGE, collect
    from engine.report import REPORT_FACT_COLUMNS, quality_report

    store = UnitStore(tmp_path)
    store.write(UNIT_STAGE, "u-w", unit.tables(), validated=True)
    store.write(UNIT_STAGE, "u-v", unit.tables())          # the validating path too
    facts_all, instr = collect(store, ["u-w", "u-v"])
    facts_few, instr2 = collect(store, ["u-w", "u-v"], REPORT_FACT_COLUMNS)
    assert list(facts_few.columns) == list(REPORT_FACT_COLUMNS) and len(facts_few) == len(facts_all)
    pd.testing.assert_frame_equal(instr, instr2)
    plan = EngineConfig().plan
    assert quality_report(instr, facts_few, plan) == quality_report(instr, facts_all, plan)
