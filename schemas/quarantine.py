"""quarantine: every bad input record, with a machine-readable reason and a human detail."""
import pandera.pandas as pa
import pyarrow

from schemas._table import Table

# Reason codes. Ingest uses exactly these; tests assert on them.
REASONS = (
    "missing_image",
    "unreadable_image",
    "decompression_bomb",
    "size_mismatch",
    "bad_polygon",
    "rle_size_mismatch",
    "bad_segmentation",
    "zero_area",
    "duplicate_image_id",
    "duplicate_annotation_id",
    "unknown_category",
    "unknown_image",
    "unsafe_path",
    "bad_record",
)

QUARANTINE = Table(
    "quarantine",
    pyarrow.schema([
        ("source_id", pyarrow.string()),
        ("file", pyarrow.string()),           # the file the record came from
        ("record_type", pyarrow.string()),    # image | annotation | category
        ("record_id", pyarrow.string()),      # id as written in the file
        ("reason", pyarrow.string()),         # one of REASONS
        ("detail", pyarrow.string()),         # what exactly is wrong, for a person
    ]),
    checks={
        "reason": [pa.Check.isin(REASONS)],
        "record_type": [pa.Check.isin(["image", "annotation", "category"])],
    },
)
