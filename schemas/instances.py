"""instances: one row per ingested (good) annotation; masks as compressed COCO RLE."""
import pandera.pandas as pa
import pyarrow

from schemas._table import Table

INSTANCES = Table(
    "instances",
    pyarrow.schema([
        ("instance_id", pyarrow.string()),    # "<source_id>:<orig_ann_id>"
        ("image_id", pyarrow.string()),
        ("source_id", pyarrow.string()),
        ("orig_id", pyarrow.int64()),
        ("category_id", pyarrow.int64()),     # the source's category id
        ("category", pyarrow.string()),       # category name (the noun used in language)
        ("supercategory", pyarrow.string()),
        ("iscrowd", pyarrow.bool_()),
        ("area", pyarrow.float64()),          # mask pixel count (decoded, not the json field)
        ("bbox_x", pyarrow.float64()),        # pixel xywh of the decoded mask
        ("bbox_y", pyarrow.float64()),
        ("bbox_w", pyarrow.float64()),
        ("bbox_h", pyarrow.float64()),
        ("rle", pyarrow.string()),            # compressed RLE counts (pycocotools), size = height x width
        ("height", pyarrow.int32()),
        ("width", pyarrow.int32()),
    ]),
    checks={"area": [pa.Check.gt(0)], "bbox_w": [pa.Check.ge(0)], "bbox_h": [pa.Check.ge(0)]},
    unique=("instance_id",),
)
