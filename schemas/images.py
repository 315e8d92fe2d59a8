"""images: one row per ingested (good) image."""
import pandera.pandas as pa
import pyarrow

from schemas._table import Table

IMAGES = Table(
    "images",
    pyarrow.schema([
        ("source_id", pyarrow.string()),      # name of the source in this build
        ("image_id", pyarrow.string()),       # "<source_id>:<orig_id>", unique across sources
        ("orig_id", pyarrow.int64()),         # id in the source COCO json
        ("file_name", pyarrow.string()),
        ("uri", pyarrow.string()),            # resolved location (local path or s3://)
        ("width", pyarrow.int32()),
        ("height", pyarrow.int32()),
        ("sha256", pyarrow.string()),         # of the image bytes
        ("n_bytes", pyarrow.int64()),
        ("unit_id", pyarrow.string()),        # work unit (DESIGN.md section 2)
        ("license", pyarrow.string()),         # the image record's licence id, as written
        ("license_name", pyarrow.string()),    # resolved through the source's `licenses` list
        ("license_url", pyarrow.string()),
        # which picture the masks are on (engine.sources.imageio): "file" = stored pixel order,
        # "exif:<n>" = EXIF orientation n applied; null in tables from before it was recorded
        ("orientation", pyarrow.string()),
        # LVIS-style federated annotation (image records' not_exhaustive_category_ids and
        # neg_category_ids), as comma-joined category names; null where the record has none
        ("not_exhaustive", pyarrow.string()),
        ("verified_absent", pyarrow.string()),
    ]),
    checks={
        "width": [pa.Check.gt(0)],
        "height": [pa.Check.gt(0)],
        "sha256": [pa.Check.str_length(64, 64)],
    },
    unique=("image_id",),
    nullable=("license", "license_name", "license_url", "orientation", "not_exhaustive", "verified_absent"),  # sources need not give licences
)
