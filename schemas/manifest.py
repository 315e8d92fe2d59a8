"""manifest: one row per accepted instruction in a release, with where to find it.

`shard` + `sample_key` locate the webdataset sample (the image and all its instructions);
`sam3i_id` is the instruction's entry id in the SAM3-I files (`images[].id` in every
`sam3i/<stage>/<cardinality>/sam3i_<split>.json` holding it; engine/release/sam3i_export.py). The remaining
columns are lineage: which backend/model/prompt wrote it, with which seed, in how many rounds,
and what every checker said (`checks`, JSON list of {checker, verdict, reason}).
"""
import pandera.pandas as pa
import pyarrow

from schemas._table import Table
from schemas.specs import CARDINALITIES, TIERS

MANIFEST = Table(
    "manifest",
    pyarrow.schema([
        ("instruction_id", pyarrow.string()),
        ("spec_id", pyarrow.string()),
        ("image_id", pyarrow.string()),
        ("source_id", pyarrow.string()),
        ("unit_id", pyarrow.string()),
        ("tier", pyarrow.string()),
        ("subtype", pyarrow.string()),
        ("cardinality", pyarrow.string()),
        ("target_ids", pyarrow.list_(pyarrow.string())),
        ("category", pyarrow.string()),
        ("text", pyarrow.string()),
        ("program", pyarrow.string()),         # JSON
        ("split", pyarrow.string()),
        ("shard", pyarrow.string()),           # path relative to the release root
        ("sample_key", pyarrow.string()),      # webdataset __key__ inside the shard
        ("sam3i_id", pyarrow.int64()),         # images[].id in the sam3i/ files
        ("backend", pyarrow.string()),
        ("model", pyarrow.string()),
        ("prompt_version", pyarrow.string()),
        ("seed", pyarrow.int64()),
        ("rounds", pyarrow.int32()),
        ("checks", pyarrow.string()),          # JSON
        ("image_sha256", pyarrow.string()),
    ]),
    checks={
        "tier": [pa.Check.isin(TIERS)],
        "cardinality": [pa.Check.isin(CARDINALITIES)],
        "split": [pa.Check.isin(("train", "val"))],
        "sam3i_id": [pa.Check.gt(0)],
        "image_sha256": [pa.Check.str_length(64, 64)],
    },
    unique=("instruction_id",),
)
