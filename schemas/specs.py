"""specs: what the planner asks a generator to describe: a target set + a referring program."""
import pandera.pandas as pa
import pyarrow

from schemas._table import Table

TIERS = ("concept", "simple", "complex")
CARDINALITIES = ("1:1", "1:N", "1:All", "negative")

SPECS = Table(
    "specs",
    pyarrow.schema([
        ("spec_id", pyarrow.string()),        # hash of image_id + tier + program
        ("image_id", pyarrow.string()),
        ("unit_id", pyarrow.string()),
        ("tier", pyarrow.string()),
        ("subtype", pyarrow.string()),        # e.g. attribute, position+relation, function
        ("cardinality", pyarrow.string()),
        ("target_ids", pyarrow.list_(pyarrow.string())),  # instance ids; empty for negatives
        ("program", pyarrow.string()),        # JSON of engine.language.programs.Program
    ]),
    checks={"tier": [pa.Check.isin(TIERS)], "cardinality": [pa.Check.isin(CARDINALITIES)]},
    unique=("spec_id",),
)
