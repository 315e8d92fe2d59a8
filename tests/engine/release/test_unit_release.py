"""The release and the quality report read one work unit at a time (issue 16: the driver's
memory must not grow with the dataset). A real build's release (read from its work directory,
engine.release.units.StoreUnits) is the release the whole tables give (FrameUnits) file for
file; its manifest is the accepted rows in instruction-id order with the SAM3-I entry ids the
SAM3-I files hold; the unit-by-unit report equals `quality_report` of the whole tables."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.build import UNIT_STAGE, build, collect, engine_config, sources_of, unit_store
from engine.release.publish import build_release, open_release
from engine.release.streamed import merge_sorted_parts, write_sorted_part
from engine.release.units import FrameUnits, StoreUnits
from engine.report import quality_report, unit_quality_report
from tests.release_data import COCO_SAMPLE, coco_tables, make_instructions

OVERRIDES = ["ingest.unit_size=8", "release.val_fraction=0.3"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """coco-sample built by engine.build in 4 units; the handle on its work directory."""
    tmp = tmp_path_factory.mktemp("unit-release")
    cfg = engine_config(None, OVERRIDES)
    sources = sources_of(str(COCO_SAMPLE))
    wd = tmp / "wd"
    res = build(sources, str(tmp / "release"), cfg, wd)
    from engine.build import Ingested
    from engine.sources.ingest import SUMMARY
    data = Ingested(wd / "ingest", json.loads((wd / "ingest" / SUMMARY).read_text()))
    return tmp, cfg, res, data, unit_store(wd, cfg)


def test_the_build_has_several_units(built):
    _, _, res, data, _ = built
    assert res.units_total == len(data.unit_ids()) >= 3


def test_release_from_the_work_directory_equals_the_release_of_the_whole_tables(built):
    tmp, cfg, res, data, store = built
    _, instructions = collect(store, data.unit_ids())
    release = open_release(res.release_uri)
    card_text = (tmp / "release" / "README.md").read_text()
    # same inputs, same card: the same release from the whole tables, file for file
    again = build_release(str(tmp / "from-tables"), data.images, data.instances, instructions,
                          {"x": "y"}, cfg.release, release.info["inputs_fingerprint"], release.info["code_version"])
    want = {k: v for k, v in release.info["files"].items() if k != "README.md"}
    got = {k: v for k, v in again.files.items() if k != "README.md"}
    assert got == want
    assert "Release `" in card_text


def test_manifest_rows_are_the_accepted_instructions_in_id_order_with_their_sam3i_entries(built):
    tmp, _, res, data, store = built
    _, instructions = collect(store, data.unit_ids())
    release = open_release(res.release_uri)
    m = release.manifest
    acc = instructions[instructions["accepted"]].sort_values("instruction_id")
    assert list(m["instruction_id"]) == list(acc["instruction_id"])
    assert (m["text"].tolist(), m["tier"].tolist()) == (acc["text"].tolist(), acc["tier"].tolist())
    rej = release.rejected
    assert list(rej["instruction_id"]) == sorted(instructions.loc[~instructions["accepted"], "instruction_id"])
    # each instruction's sam3i_id is the entry that lists it in the SAM3-I files
    entry_of = {}
    for split in ("train", "val"):
        for doc in release.sam3i(split).values():
            for img in doc["images"]:
                for ids in img["instruction_ids"].values():
                    entry_of.update({i: img["id"] for i in ids if i})
    listed = m[m["instruction_id"].isin(entry_of)]
    assert len(listed) > 0.5 * len(m)
    assert (listed["sam3i_id"] == listed["instruction_id"].map(entry_of)).all()
    assert set(release.counts["by_split"]) == {"train", "val"} and release.counts["by_split"]["val"] > 0
    assert release.counts["instructions"] == len(m) and release.counts["rejected"] == len(rej)


def test_unit_by_unit_report_equals_the_whole_tables_report(built):
    _, cfg, res, data, store = built
    from engine.report import REPORT_FACT_COLUMNS
    facts, instructions = collect(store, data.unit_ids(), REPORT_FACT_COLUMNS)
    whole = quality_report(instructions, facts, cfg.plan, categories=[{"category": "person"}])
    streamed = unit_quality_report(StoreUnits(data, store, UNIT_STAGE), cfg.plan, categories=[{"category": "person"}])
    assert json.dumps(streamed, sort_keys=True, default=str) == json.dumps(whole, sort_keys=True, default=str)
    assert streamed["rejection_reasons"] == whole["rejection_reasons"]
    assert list(streamed["rejection_reasons"]) == list(whole["rejection_reasons"])   # same order (ties too)
    assert {k: v for k, v in streamed.items() if k != "categories"} == \
        {k: v for k, v in res.report.items() if k != "categories"}   # what the build reported


def test_several_units_of_rule_made_instructions_give_the_whole_tables_report():
    images, instances = coco_tables()
    instr = make_instructions(images, instances)
    # four units by image id; instructions follow their image
    order = {i: k % 4 for k, i in enumerate(sorted(images["image_id"]))}
    images["unit_id"] = images["image_id"].map(lambda i: f"u-{order[i]}")
    instr["unit_id"] = instr["image_id"].map(dict(zip(images["image_id"], images["unit_id"])))
    facts = instances.assign(area_frac=instances["area"] / 300000.0)[["instance_id", "image_id", "category",
                                                                      "iscrowd", "area", "area_frac"]]
    facts = facts.assign(unmarked_kin=[k % 7 == 0 for k in range(len(facts))])   # some in piles
    from engine.config import PlanConfig
    plan = PlanConfig()
    units = FrameUnits(images, instances, instr, facts)
    assert len(units.unit_ids()) == 4
    assert unit_quality_report(units, plan) == quality_report(instr, facts, plan)


def test_merge_keeps_id_order_across_files_and_row_groups(tmp_path, monkeypatch):
    import engine.release.streamed as streamed
    monkeypatch.setattr(streamed, "MERGE_BATCH_ROWS", 2)   # parts of several batches
    schema = pa.schema([("instruction_id", pa.string()), ("n", pa.int64())])
    parts = []
    for k, ids in enumerate([["a", "d", "g"], ["b", "c", "h", "i"], [], ["e", "f"]]):
        if ids:
            p = tmp_path / f"{k}.arrow"
            write_sorted_part(p, pa.table({"instruction_id": ids, "n": [k] * len(ids)}, schema=schema))
            parts.append(p)
    out = tmp_path / "out.parquet"
    assert merge_sorted_parts(parts, "instruction_id", out, schema, row_group_rows=3) == 9
    t = pq.read_table(out)
    assert t.column("instruction_id").to_pylist() == list("abcdefghi")
    assert t.column("n").to_pylist() == [0, 1, 1, 0, 3, 3, 0, 1, 1]
    assert pq.ParquetFile(out).num_row_groups == 3
    dup = tmp_path / "dup.arrow"
    write_sorted_part(dup, pa.table({"instruction_id": ["c"], "n": [9]}, schema=schema))
    with pytest.raises(ValueError, match="appears twice"):
        merge_sorted_parts(parts + [dup], "instruction_id", tmp_path / "bad.parquet", schema)
    empty = tmp_path / "empty.parquet"
    assert merge_sorted_parts([], "instruction_id", empty, schema) == 0
    assert pq.read_table(empty).num_rows == 0
