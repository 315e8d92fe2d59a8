"""LVIS-style federated annotation: per image, categories not marked in full
(not_exhaustive_category_ids) and categories checked absent (neg_category_ids)."""
import pandas as pd

from engine.build import build
from engine.config import IngestConfig, load_config
from engine.sources.ingest import ingest
from tests.coco_fixtures import make_case


def _federated_case(tmp_path):
    case = make_case(tmp_path, n_images=3, name="lvisish")
    names = {c["id"]: c["name"] for c in case.coco["categories"]}
    by_name = {v: k for k, v in names.items()}
    first = case.coco["images"][0]
    used = sorted({names[a["category_id"]] for a in case.coco["annotations"] if a["image_id"] == first["id"]})
    first["not_exhaustive_category_ids"] = [by_name[used[0]]]
    first["neg_category_ids"] = [by_name["zebra"], by_name["giraffe"], 99999]   # an unknown id is dropped
    return case, first, used[0]


def test_ingest_keeps_the_federated_lists_by_name(tmp_path):
    case, first, incomplete = _federated_case(tmp_path)
    data = ingest([case.write()], IngestConfig(verify_pixels=False))
    row = data.images.set_index("orig_id").loc[first["id"]]
    assert row["not_exhaustive"] == incomplete and row["verified_absent"] == "giraffe,zebra"
    others = data.images[data.images["orig_id"] != first["id"]]
    assert others["not_exhaustive"].isna().all() and others["verified_absent"].isna().all()


def test_a_federated_image_gets_no_target_of_an_incomplete_category_and_only_checked_negatives(tmp_path):
    case, first, incomplete = _federated_case(tmp_path)
    res = build([case.write()], str(tmp_path / "release"), load_config(None, []), workdir=tmp_path / "work")
    assert res.release_uri
    m = pd.read_parquet(tmp_path / "release" / "manifest.parquet")
    mine = m[m["image_id"] == f"lvisish:{first['id']}"]
    assert len(mine)
    positives = mine[mine["cardinality"] != "negative"]
    assert not positives["category"].str.split(",").map(lambda cs: incomplete in cs).any()
    neg = mine[(mine["cardinality"] == "negative") & (mine["tier"] == "concept")]
    assert set(neg["category"]) <= {"zebra", "giraffe"}
