"""Per-unit stage outputs with completion markers (DESIGN.md section 2).

`<workdir>/<stage>/<unit>.parquet` is written to a temp file and renamed, then an empty
`<unit>.done` marker is written the same way. A unit counts as finished only when its marker
exists, so a build killed at any moment leaves either a finished unit or nothing usable.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from engine import storage
from schemas._table import Table


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

    def write(self, stage: str, unit_id: str, outputs: dict[str, tuple[Table, pd.DataFrame]]) -> None:
        """Write several named tables of one unit, then its marker."""
        for name, (table, df) in outputs.items():
            write_table(self.root / stage / name / f"{unit_id}.parquet", table, df)
        storage.write_bytes(str(self.marker(stage, unit_id)), b"")

    def read(self, stage: str, unit_id: str, name: str, table: Table) -> pd.DataFrame:
        return read_table(self.root / stage / name / f"{unit_id}.parquet", table)
