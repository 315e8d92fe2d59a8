"""Release QA: `python -m engine.verify RELEASE_URI` (see engine/verify/cli.py for options).

1. sample.py     reproducible stratified random sample (tier x cardinality [x backend/category/subtype]),
                 sized per stratum by a target interval width or a fixed number
2. render.py     pictures: target masks filled + outlined, same-category distractors outlined;
   report_html.py self-contained HTML report; contact sheets (PNG)
3. labels.py     verdicts (correct / wrong + reason) kept beside the release, never inside it;
                 terminal labelling (--interactive) or a filled labels_template.csv (--labels)
4. stats.py      Wilson intervals per stratum, stratified overall estimate, the release gate
5. integrity.py  shard checksums, masks decode to image size, sampled rows present in shards;
   recheck.py    the configured checkers re-run on the sample, changes reported
   conformance.py (with --integrity) every SAM3-I / SA-Co file replayed through what SAM3-I's
                 loader, FilterCrowds, forward and evaluation do with it (sam3i_metrics.py)
"""
