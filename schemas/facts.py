"""facts: per-instance scene facts computed from mask and pixels (DESIGN.md section 3),
and relations: pairwise spatial relations between nearby instances of one image."""
import pandera.pandas as pa
import pyarrow

from schemas._table import Table

POS_X = ("left", "center", "right")
POS_Y = ("top", "middle", "bottom")
SIZE_LABELS = ("small", "medium", "large")
RELATIONS = ("left_of", "right_of", "above", "below", "next_to", "on", "inside", "overlapping")
# instance facts between touching masks (engine/scene/interactions.py)
RELATIONS = RELATIONS + ("riding", "holding", "in_front_of", "behind", "touching")

FACTS = Table(
    "facts",
    pyarrow.schema([
        ("instance_id", pyarrow.string()),
        ("image_id", pyarrow.string()),
        ("category", pyarrow.string()),
        ("supercategory", pyarrow.string()),
        ("iscrowd", pyarrow.bool_()),
        ("area", pyarrow.float64()),          # mask pixels
        ("area_frac", pyarrow.float64()),     # area / image area
        ("size_rank", pyarrow.int32()),       # 1 = largest non-crowd instance in the image (crowd: 0)
        ("size_rank_in_category", pyarrow.int32()),  # 1 = largest of its category (crowd: 0)
        ("size_label", pyarrow.string()),     # small | medium | large (relative to the image)
        ("cx", pyarrow.float64()),            # mask centroid, normalised to [0, 1]
        ("cy", pyarrow.float64()),
        ("x0", pyarrow.float64()),            # mask bbox, normalised to [0, 1]
        ("y0", pyarrow.float64()),
        ("x1", pyarrow.float64()),
        ("y1", pyarrow.float64()),
        ("pos_x", pyarrow.string()),          # left | center | right (by centroid thirds)
        ("pos_y", pyarrow.string()),          # top | middle | bottom
        ("ordinal_x", pyarrow.int32()),       # 1 = leftmost among same-category non-crowd (crowd: 0)
        ("ordinal_y", pyarrow.int32()),       # 1 = topmost
        ("category_count", pyarrow.int32()),  # non-crowd instances of this category in the image
        ("color", pyarrow.string()),          # dominant colour name of the masked pixels
        ("color_frac", pyarrow.float64()),    # share of masked pixels that have that colour name
        ("color_palette", pyarrow.string()),  # every colour name with >= 5% of the pixels: "red:0.55,white:0.30"
        ("truncated", pyarrow.bool_()),       # mask touches the image border
        ("truncated_sides", pyarrow.string()),  # comma list of left,right,top,bottom ("" if none)
        ("occlusion", pyarrow.float64()),     # proxy in [0, 1]: share of bbox covered by other masks
        ("outline_contact", pyarrow.string()),  # "id=share;..." outline share along each touching mask
        ("unmarked_kin", pyarrow.bool_()),    # its category has unmarked look-alikes here (engine.scene.unmarked)
        # people only (engine.scene.people), "" / 0 for everything else
        ("upper_color", pyarrow.string()),    # garment colour of the torso band ("" when undecided)
        ("upper_frac", pyarrow.float64()),    # share of the band's non-skin pixels with that colour
        ("lower_color", pyarrow.string()),    # garment colour of the legs band
        ("lower_frac", pyarrow.float64()),
        ("upper_hist", pyarrow.string()),     # "name:share,..." of non-skin colour names (what it may be read as)
        ("lower_hist", pyarrow.string()),
        ("posture", pyarrow.string()),        # standing | sitting | lying | "" (undecided)
        ("posture_maybe", pyarrow.string()),  # comma list of postures a viewer might read
        ("outfit_tone", pyarrow.string()),    # dark | light | "" (undecided): "in dark clothes"
        ("tone_hist", pyarrow.string()),      # "dark:share,light:share" of the outfit's non-skin pixels
    ]),
    checks={
        "pos_x": [pa.Check.isin(POS_X)],
        "pos_y": [pa.Check.isin(POS_Y)],
        "size_label": [pa.Check.isin(SIZE_LABELS)],
        "area_frac": [pa.Check.in_range(0, 1)],
        "occlusion": [pa.Check.in_range(0, 1)],
        "posture": [pa.Check.isin(("", "standing", "sitting", "lying"))],
    },
    unique=("instance_id",),
)

RELATIONS_TABLE = Table(
    "relations",
    pyarrow.schema([
        ("image_id", pyarrow.string()),
        ("subject_id", pyarrow.string()),     # "subject <relation> object", e.g. cup on table
        ("relation", pyarrow.string()),
        ("object_id", pyarrow.string()),
    ]),
    checks={"relation": [pa.Check.isin(RELATIONS)]},
)
