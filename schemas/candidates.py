"""candidates: generated texts, one row per generation round; checks: one row per check run."""
import pandera.pandas as pa
import pyarrow

from schemas._table import Table

CANDIDATES = Table(
    "candidates",
    pyarrow.schema([
        ("candidate_id", pyarrow.string()),
        ("spec_id", pyarrow.string()),
        ("text", pyarrow.string()),
        ("backend", pyarrow.string()),        # template | vllm | openai
        ("model", pyarrow.string()),          # model name, or grammar version for template
        ("prompt_version", pyarrow.string()),
        ("seed", pyarrow.int64()),
        ("round", pyarrow.int32()),           # 0 = first try, k = k-th regeneration
    ]),
    unique=("candidate_id",),
)

VERDICTS = ("pass", "fail", "unverifiable")

CHECKS = Table(
    "checks",
    pyarrow.schema([
        ("candidate_id", pyarrow.string()),
        ("checker", pyarrow.string()),        # program | lexical | no_category_noun | mllm_choice | sam3i
        ("verdict", pyarrow.string()),
        ("reason", pyarrow.string()),
    ]),
    checks={"verdict": [pa.Check.isin(VERDICTS)]},
)
