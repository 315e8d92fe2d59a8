"""The conformance checker passes real-photo releases and fails on each way an export file would
crash or mis-train SAM3-I's trainer (problems 1-6 of issue 10)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.release.publish import open_release
from engine.verify.conformance import check_release
from engine.verify.integrity import check_release as check_integrity
from engine.verify.sam3i_metrics import evaluate, oracle_predictions


def _files(rel):
    return {r["path"]: r for r in rel.sam3i_datasets["files"]}


def _load(root, path) -> dict:
    return json.loads((Path(root) / path).read_text())


def _save(root, path, coco) -> None:
    (Path(root) / path).write_bytes(json.dumps(coco).encode())


def _pick(rel, **want) -> str:
    return next(p for p, r in _files(rel).items() if all(r[k] == v for k, v in want.items()))


@pytest.mark.parametrize("which", ["release_uri", "mixed_format_release"])
def test_real_photo_releases_conform_and_oracle_scores_100(which, request):
    rel = open_release(request.getfixturevalue(which))
    report = check_release(rel)
    assert report.ok, report.problems[:10]
    files = _files(rel)
    assert set(files) <= set(report.files) and any(p.startswith("saco/") for p in report.files)
    for path, row in files.items():
        assert row["entries"] > 0
        coco = _load(rel.uri, path)
        scores = evaluate(coco, oracle_predictions(coco), row["eval_mode"])
        key = "no_target_accuracy" if row["eval_mode"] == "no_target" else "gIoU"
        assert scores[key] == pytest.approx(100.0), (path, scores)
        assert report.files[path]["oracle"][row["eval_mode"]][key] == pytest.approx(100.0)
    # every cardinality gets its own files, and every stage has training data
    assert {r["eval_mode"] for r in files.values()} == {"1to1", "multi_inst", "no_target"}
    assert {r["stage"] for r in files.values() if r["split"] == "train"} == {"1_1", "1_2", "3"}
    # crowd targets were left out, and said so
    assert rel.counts["sam3i_excluded"] == len(rel.sam3i_datasets["excluded"])


def _broken(release_copy, mutate, **want) -> list[str]:
    rel = open_release(release_copy)
    path = _pick(rel, **want)
    coco = _load(release_copy, path)
    mutate(coco)
    _save(release_copy, path, coco)
    report = check_release(open_release(release_copy))
    assert not report.ok
    return report.problems


def test_problem_1_empty_sampled_tier_is_a_crash(release_copy):
    def empty(coco):
        coco["images"][0]["text_inst_input"]["simple_query"] = []
    problems = _broken(release_copy, empty, stage="1_1", split="train", cardinality="1:1")
    assert any("crash" in p and "stage 1_1" in p and "IndexError" in p for p in problems)


def test_problem_2_several_categories_make_contradictory_queries(release_copy):
    def split_categories(coco):  # the old layout: one category per name, entries multiplied
        coco["categories"].append({"id": 2, "name": "other", "supercategory": ""})
    problems = _broken(release_copy, split_categories, stage="1_1", split="train", cardinality="1:1")
    assert any("contradictory query" in p and "has 0 of the entry's 1 target" in p for p in problems)
    assert any("becomes 2 queries" in p for p in problems)


def test_problem_3_crowd_target_changed_by_filter_crowds(release_copy):
    def crowd(coco):
        coco["annotations"][0]["iscrowd"] = 1
    problems = _broken(release_copy, crowd, stage="3", split="train", cardinality="1:All")
    assert any("crowd" in p and "FilterCrowds removes" in p for p in problems)


def test_problem_4_mixed_cardinalities_score_below_100(release_copy):
    rel = open_release(release_copy)
    files = _files(rel)
    target = _pick(rel, stage="1_1", split="train", cardinality="1:1")
    merged = {"images": [], "annotations": [], "categories": _load(release_copy, target)["categories"]}
    for card in ("1:1", "1:All", "negative"):
        coco = _load(release_copy, _pick(rel, stage="1_1", split="train", cardinality=card))
        merged["images"] += coco["images"]
        merged["annotations"] += [{**a, "id": len(merged["annotations"]) + i + 1}
                                  for i, a in enumerate(coco["annotations"])]
    for mode in ("1to1", "multi_inst"):  # one file scored in one mode cannot reach 100
        assert evaluate(merged, oracle_predictions(merged), mode)["gIoU"] < 100
    _save(release_copy, target, merged)
    problems = check_release(open_release(release_copy)).problems
    assert any(p.startswith(target) and "mixed cardinality" in p for p in problems)
    assert any(p.startswith(target) and "oracle" in p and "mode 1to1" in p for p in problems)
    assert files[target]["eval_mode"] == "1to1"


def test_problem_5_queried_category_must_parse_as_int(release_copy):
    def name(coco):
        coco["images"][0]["queried_category"] = coco["images"][0]["category"]
    problems = _broken(release_copy, name, stage="1_2", split="train", cardinality="negative")
    assert any("queried_category" in p and "int(queried_category)" in p for p in problems)


def test_problem_5_saco_queried_category_too(release_copy):
    path = Path(release_copy) / "saco" / "saco_train.json"
    coco = json.loads(path.read_text())
    coco["images"][0]["queried_category"] = coco["images"][0]["text_input"]
    path.write_text(json.dumps(coco))
    problems = check_release(open_release(release_copy)).problems
    assert any(p.startswith("saco/saco_train.json: queried_category") for p in problems)


def test_problem_6_concept0_spelled_two_ways(release_copy):
    def respell(coco):
        first = coco["images"][0]
        first["text_inst_input"]["concept"][0] = first["category"] + "s"
    problems = _broken(release_copy, respell, stage="3", split="train", cardinality="1:1")
    assert any("concept[0]" in p and "is not its category" in p for p in problems)


def test_non_ascii_json_is_reported(release_copy):
    def accent(coco):
        coco["images"][0]["text_inst_input"]["simple_query"][0] += " café"
    rel = open_release(release_copy)
    path = _pick(rel, stage="1_1", split="train", cardinality="1:1")
    coco = _load(release_copy, path)
    accent(coco)
    (Path(release_copy) / path).write_bytes(json.dumps(coco, ensure_ascii=False).encode("utf-8"))
    problems = check_release(open_release(release_copy)).problems
    assert any(p.startswith(path) and "encoding" in p for p in problems)


def test_verify_integrity_runs_the_conformance_checker(release_copy):
    def empty(coco):
        coco["images"][0]["text_inst_input"]["complex_query"] = []
    rel = open_release(release_copy)
    path = _pick(rel, stage="3", split="train", cardinality="1:1")
    coco = _load(release_copy, path)
    empty(coco)
    _save(release_copy, path, coco)
    rel = open_release(release_copy)
    report, _ = check_integrity(rel, rel.manifest.iloc[:0], rel.manifest, full=True)
    assert any(p.startswith(f"conformance: {path}: crash") for p in report.problems)
    assert report.to_json()["conformance"]["files"][path]["entries"] > 0


def _legacy_file(rel, split: str) -> dict:
    """The layout issue 10 found, rebuilt from the release's own samples: one file per split with
    every (image, target) entry whatever its tiers, one category per name (negative concepts
    included), crowd regions in targets, category names as queried_category, concept = the
    accepted concept texts."""
    from engine.release.reader import iter_release

    metas = [s for s in iter_release(rel, split, decode_image=False)]
    names = sorted({g["category"] for m in metas for g in m["targets"]})
    cat_id = {n: i for i, n in enumerate(names, 1)}
    images, anns = [], []
    for m in metas:
        by_id = {i["instance_id"]: i for i in m["instances"]}
        for g in m["targets"]:
            eid = len(images) + 1
            tii = {"concept": [r["text"] for r in g["instructions"]["concept"]],
                   "simple_query": [r["text"] for r in g["instructions"]["simple"]],
                   "complex_query": [r["text"] for r in g["instructions"]["complex"]]}
            images.append({"id": eid, "file_name": m["meta"]["file_name"], "width": m["meta"]["width"],
                           "height": m["meta"]["height"], "queried_category": g["category"], "text_inst_input": tii})
            for t in g["target_ids"]:
                i = by_id[t]
                anns.append({"id": len(anns) + 1, "image_id": eid, "category_id": cat_id[i["category"]],
                             "bbox": i["bbox"], "segmentation": i["segmentation"], "iscrowd": int(i["iscrowd"]),
                             "area": i["area"]})
    return {"images": images, "annotations": anns, "categories": [{"id": v, "name": k} for k, v in cat_id.items()]}


def test_the_layout_issue_10_found_fails_on_every_count(release_copy):
    """The old single-file layout, checked as an unlisted file every stage might be given."""
    rel = open_release(release_copy)
    legacy = _legacy_file(rel, "train")
    _save(release_copy, "sam3i_train.json", legacy)
    info = json.loads((Path(release_copy) / "_RELEASE.json").read_text())
    info["files"]["sam3i_train.json"] = {"sha256": "-", "size": 0}
    (Path(release_copy) / "_RELEASE.json").write_text(json.dumps(info))
    report = check_release(open_release(release_copy))
    mine = [p for p in report.problems if p.startswith("sam3i_train.json: ")]
    kinds = {p.split(": ")[1] for p in mine}
    assert {"crash", "contradictory query", "crowd", "mixed cardinality", "oracle", "queried_category",
            "concept[0]"} <= kinds, kinds
    stats = report.files["sam3i_train.json"]
    assert stats["queries"] == len(legacy["images"]) * len(legacy["categories"])
    assert stats["contradictory_queries"] > len(legacy["images"])
    for mode in ("1to1", "multi_inst"):
        assert stats["oracle"][mode]["gIoU"] < 100
