"""One place that turns a pyarrow schema (the column contract) into a pandera schema.

Each table module declares its columns once, as a pyarrow schema, plus pandera checks on
values. `Table.validate` checks a DataFrame; `Table.to_arrow` writes it with exact types.

Columns are required (no nulls) unless named in `nullable`: pyarrow fields are nullable by
default, so a field's own flag cannot say what the table means. The arrow schema is rebuilt
with the same rule, so parquet files say which columns may be empty.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow


def _pandas_dtype(t: pyarrow.DataType):
    if pyarrow.types.is_string(t) or pyarrow.types.is_large_string(t):
        return str
    if pyarrow.types.is_boolean(t):
        return bool
    if pyarrow.types.is_integer(t):
        return "int64"
    if pyarrow.types.is_floating(t):
        return "float64"
    return None  # lists / structs: checked by pyarrow on write


@dataclass(frozen=True)
class Table:
    name: str
    arrow: pyarrow.Schema
    checks: dict[str, list[pa.Check]] = field(default_factory=dict)
    unique: tuple[str, ...] = ()
    nullable: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = set(self.nullable) - set(self.arrow.names)
        if unknown:
            raise ValueError(f"table {self.name}: nullable names unknown column(s) {sorted(unknown)}")
        arrow = pyarrow.schema([f.with_nullable(f.name in self.nullable) for f in self.arrow],
                               metadata=self.arrow.metadata)
        object.__setattr__(self, "arrow", arrow)

    @property
    def columns(self) -> list[str]:
        return list(self.arrow.names)

    @property
    def pandera(self) -> pa.DataFrameSchema:
        cols = {}
        for f in self.arrow:
            cols[f.name] = pa.Column(
                _pandas_dtype(f.type),
                checks=self.checks.get(f.name, []),
                nullable=f.name in self.nullable,
                coerce=_pandas_dtype(f.type) is not None,
            )
        return pa.DataFrameSchema(cols, strict="filter", unique=list(self.unique) or None)

    def validate(self, df: pd.DataFrame) -> pd.DataFrame:
        """Validate and return the frame with exactly this table's columns, in order.

        A nullable column may be missing (a frame or file from before it was added): it is
        filled with nulls, so adding a nullable column never breaks older data."""
        missing = [c for c in self.nullable if c not in df.columns]
        if missing:
            df = df.assign(**{c: None for c in missing})
        out = self.pandera.validate(df, lazy=True)
        return out[self.columns].reset_index(drop=True)

    def empty(self) -> pd.DataFrame:
        return self.arrow.empty_table().to_pandas()

    def to_arrow(self, df: pd.DataFrame) -> pyarrow.Table:
        return pyarrow.Table.from_pandas(df[self.columns], schema=self.arrow, preserve_index=False)

    def from_records(self, records: list[dict]) -> pd.DataFrame:
        if not records:
            return self.empty()
        return self.validate(pd.DataFrame.from_records(records, columns=self.columns))
