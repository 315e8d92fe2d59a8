"""The table contract: required columns refuse nulls, declared ones allow them, types are exact."""
import pandas as pd
import pyarrow
import pytest
from pandera.errors import SchemaErrors

from schemas._table import Table
from schemas.facts import FACTS, RELATIONS_TABLE
from schemas.images import IMAGES
from schemas.instances import INSTANCES
from schemas.quarantine import QUARANTINE

ALL = (IMAGES, INSTANCES, FACTS, RELATIONS_TABLE, QUARANTINE)


def _quarantine_row(**kw):
    row = {"source_id": "s", "file": "/x/instances.json", "record_type": "image", "record_id": "1",
           "reason": "missing_image", "detail": "image file /x/images/1.jpg does not exist"}
    return {**row, **kw}


@pytest.mark.parametrize("column", QUARANTINE.columns)
def test_required_columns_refuse_nulls(column):
    with pytest.raises(SchemaErrors, match=column):
        QUARANTINE.from_records([_quarantine_row(**{column: None})])


def test_declared_nullable_columns_allow_nulls_and_arrow_says_so():
    assert set(IMAGES.nullable) == {"license", "license_name", "license_url", "orientation", "not_exhaustive", "verified_absent"}
    for table in ALL:
        for f in table.arrow:
            assert f.nullable == (f.name in table.nullable), (table.name, f.name)


def test_values_are_checked_and_types_written_exactly(tmp_path):
    with pytest.raises(SchemaErrors, match="reason"):
        QUARANTINE.from_records([_quarantine_row(reason="because")])
    df = QUARANTINE.from_records([_quarantine_row(extra="dropped")])
    assert list(df.columns) == QUARANTINE.columns
    assert QUARANTINE.to_arrow(df).schema == QUARANTINE.arrow
    assert list(QUARANTINE.empty().columns) == QUARANTINE.columns


def test_unknown_nullable_column_is_a_declaration_error():
    with pytest.raises(ValueError, match="unknown column"):
        Table("t", pyarrow.schema([("a", pyarrow.string())]), nullable=("b",))


def test_unique_columns():
    rows = [_quarantine_row(), _quarantine_row()]
    QUARANTINE.from_records(rows)  # quarantine may repeat a record (several copies of one id)
    t = Table("t", pyarrow.schema([("a", pyarrow.string())]), unique=("a",))
    with pytest.raises(SchemaErrors):
        t.validate(pd.DataFrame({"a": ["x", "x"]}))


def test_a_missing_nullable_column_is_filled_with_nulls():
    """Images written before the licence columns existed still validate."""
    row = {"source_id": "s", "image_id": "s:1", "orig_id": 1, "file_name": "1.jpg", "uri": "/x/1.jpg",
           "width": 4, "height": 3, "sha256": "0" * 64, "n_bytes": 10, "unit_id": "u-0"}
    out = IMAGES.validate(pd.DataFrame([row]))
    assert list(out.columns) == IMAGES.columns and out[list(IMAGES.nullable)].isna().all().all()
    with pytest.raises(SchemaErrors, match="sha256"):  # a required one may not be missing
        IMAGES.validate(pd.DataFrame([{k: v for k, v in row.items() if k != "sha256"}]))
