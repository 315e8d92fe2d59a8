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
    "not_regular_file",        # a FIFO, device, socket or folder where an image file should be
    "image_too_large",         # over ingest.max_image_bytes, refused before reading
    "unsupported_format",      # not one of engine.sources.imageio.FORMATS
    "unsupported_image_mode",  # pixels with no faithful 8-bit RGB conversion (float, >16-bit)
    "too_many_instances",      # over facts.max_instances_per_image on one image
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
