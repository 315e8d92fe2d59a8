"""instructions: the outcome of generate + check + dedup, one row per final candidate.

This is the contract between the engine's per-unit stages and the release writer: accepted
rows become shard samples / manifest rows, rejected rows go to rejected.parquet.
"""
import pandera.pandas as pa
import pyarrow

from schemas._table import Table
from schemas.specs import CARDINALITIES, TIERS

INSTRUCTIONS = Table(
    "instructions",
    pyarrow.schema([
        ("instruction_id", pyarrow.string()),  # = candidate_id of the final candidate
        ("spec_id", pyarrow.string()),
        ("image_id", pyarrow.string()),
        ("source_id", pyarrow.string()),
        ("unit_id", pyarrow.string()),
        ("tier", pyarrow.string()),
        ("subtype", pyarrow.string()),
        ("cardinality", pyarrow.string()),
        ("target_ids", pyarrow.list_(pyarrow.string())),
        ("category", pyarrow.string()),       # category of the target(s); negatives: the absent concept
        ("program", pyarrow.string()),        # JSON
        ("text", pyarrow.string()),
        ("backend", pyarrow.string()),
        ("model", pyarrow.string()),
        ("prompt_version", pyarrow.string()),
        ("seed", pyarrow.int64()),
        ("rounds", pyarrow.int32()),          # generation rounds used
        ("checks", pyarrow.string()),         # JSON list of {checker, verdict, reason}
        ("accepted", pyarrow.bool_()),
        ("reject_reason", pyarrow.string()),  # "" when accepted
    ]),
    checks={"tier": [pa.Check.isin(TIERS)], "cardinality": [pa.Check.isin(CARDINALITIES)]},
    unique=("instruction_id",),
)
