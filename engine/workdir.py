"""Per-unit stage outputs with completion markers (DESIGN.md section 2).

`<workdir>/<stage>/<unit>.parquet` is written to a temp file and renamed, then the
`<unit>.done` marker is written the same way. A unit counts as finished only when its marker
exists, so a build killed at any moment leaves either a finished unit or nothing usable.

When the writer says its tables were validated (the unit stages build every table with
`Table.from_records`), the marker records it with each file's size, and reading them back
skips the (costly) pandera validation: a release re-reads every unit's outputs, and a refresh
should cost what changed, not a re-validation of what the engine wrote and checked itself. A
file whose size differs from the marker's, or a marker from before (empty), is validated.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from engine import storage
from schemas._table import Table, _pandas_dtype

_NUMERIC = {"int64": "int64", "float64": "float64", bool: "bool"}


def write_table(path: Path, table: Table, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table.to_arrow(df), tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_table(path: Path, table: Table) -> pd.DataFrame:
    return table.validate(pq.read_table(path).to_pandas())


def read_trusted(path: Path, table: Table, columns: list[str] | None = None) -> pd.DataFrame:
    """A table this engine validated before writing it: the table's columns (or `columns`),
    in order, with missing nullable columns as nulls (as `Table.validate` returns it), without
    re-checking."""
    columns = list(columns) if columns is not None else table.columns
    present = set(pq.read_schema(path).names)
    df = pq.read_table(path, columns=[c for c in columns if c in present]).to_pandas()
    missing = [c for c in table.nullable if c not in df.columns and c in columns]
    if missing:
        df = df.assign(**{c: None for c in missing})
    df = df[columns].reset_index(drop=True)
    # the numeric dtypes validation coerces to (int32 in the file -> int64); strings stay as read
    want = {f.name: _NUMERIC.get(_pandas_dtype(f.type)) for f in table.arrow if f.name in columns}
    cast = {c: t for c, t in want.items() if t is not None and df[c].dtype != t}
    return df.astype(cast) if cast else df


class UnitStore:
    """Outputs of the per-unit stages, keyed by stage and unit id."""

    def __init__(self, workdir: str | Path):
        self.root = Path(workdir)

    def path(self, stage: str, unit_id: str) -> Path:
        return self.root / stage / f"{unit_id}.parquet"

    def marker(self, stage: str, unit_id: str) -> Path:
        return self.root / stage / f"{unit_id}.done"

    def is_done(self, stage: str, unit_id: str) -> bool:
        return self.marker(stage, unit_id).exists()

    def write(self, stage: str, unit_id: str, outputs: dict[str, tuple[Table, pd.DataFrame]],
              validated: bool = False) -> None:
        """Write several named tables of one unit, then its marker. `validated`: every frame
        passed its Table's validation (reads then skip it)."""
        sizes = {}
        for name, (table, df) in outputs.items():
            path = self.root / stage / name / f"{unit_id}.parquet"
            write_table(path, table, df)
            sizes[name] = path.stat().st_size
        body = json.dumps({"validated": sizes}, sort_keys=True).encode() if validated else b""
        storage.write_bytes(str(self.marker(stage, unit_id)), body)

    def validated_sizes(self, stage: str, unit_id: str) -> dict[str, int]:
        """name -> file size of the tables the marker says were validated when written."""
        try:
            body = json.loads(self.marker(stage, unit_id).read_bytes() or b"{}")
            return {k: int(v) for k, v in body.get("validated", {}).items()}
        except (OSError, ValueError, AttributeError, TypeError):
            return {}

    def read(self, stage: str, unit_id: str, name: str, table: Table,
             columns: list[str] | None = None) -> pd.DataFrame:
        """One table of a unit (only `columns`, when given)."""
        path = self.root / stage / name / f"{unit_id}.parquet"
        size = self.validated_sizes(stage, unit_id).get(name)
        if size is not None and path.stat().st_size == size:
            return read_trusted(path, table, columns)
        df = read_table(path, table)
        return df if columns is None else df[list(columns)]
