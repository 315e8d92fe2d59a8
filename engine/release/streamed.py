"""Release files written as they are produced, so the release never holds the whole dataset
(issue 16: the driver's memory must not grow with the number of images).

- `MetaSpill`: every sample's json (the bytes the shards hold) is appended to one scratch file
  while the shards are planned; the exports read the samples back one at a time, per split in
  sample-key order. Only (split, key, offset, length) per sample stays in memory.
- `CocoWriter`: one COCO-style file (`{"annotations": [...], "categories": [...], "images":
  [...]}`, keys sorted, no whitespace: byte-identical to `sam3i_export.dumps` of the whole
  dict) written entry by entry and hashed while written. Annotations go straight to the file,
  images to a scratch file appended at the end (the sorted key order puts them last).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterator


def _dumps(obj) -> bytes:
    # the exports' canonical form (sam3i_export.dumps), repeated here to keep this module a leaf
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


class MetaSpill:
    """Sample json bytes on disk, read back per split in key order."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w+b")
        self._index: dict[str, list[tuple[str, int, int]]] = {}
        self._end = 0

    def add(self, split: str, key: str, json_bytes: bytes) -> int:
        """Append a sample's json; returns its offset (for `read`)."""
        offset = self._end
        self._f.seek(offset)
        self._f.write(json_bytes)
        self._index.setdefault(split, []).append((key, offset, len(json_bytes)))
        self._end += len(json_bytes)
        return offset

    def metas(self, split: str) -> Iterator[dict]:
        """The split's samples as dicts, in sample-key order."""
        self._f.flush()
        for _, offset, length in sorted(self._index.get(split, [])):
            self._f.seek(offset)
            yield json.loads(self._f.read(length))

    def read(self, offset: int, length: int) -> bytes:
        """One sample's json bytes, as added."""
        self._f.flush()
        self._f.seek(offset)
        return self._f.read(length)

    def reader(self, split: str) -> Callable[[], Iterator[dict]]:
        return lambda: self.metas(split)

    def close(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class CocoWriter:
    """A COCO dict written entry by entry; `close()` returns (sha256, size) of the file."""

    def __init__(self, path: str | Path, categories: list[dict]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.categories = categories
        self.images = 0
        self.annotations = 0
        self._sha = hashlib.sha256()
        self._size = 0
        self._f = open(self.path, "wb")
        self._images_path = self.path.with_name(f".{self.path.name}.images")
        self._img = open(self._images_path, "wb")
        self._write(b'{"annotations":[')

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._sha.update(data)
        self._size += len(data)

    def add_image(self, image: dict) -> None:
        self._img.write((b"," if self.images else b"") + _dumps(image))
        self.images += 1

    def add_annotation(self, ann: dict) -> None:
        self._write((b"," if self.annotations else b"") + _dumps(ann))
        self.annotations += 1

    def close(self) -> tuple[str, int]:
        self._write(b'],"categories":' + _dumps(self.categories) + b',"images":[')
        self._img.close()
        with open(self._images_path, "rb") as f:
            while chunk := f.read(1 << 20):
                self._write(chunk)
        os.unlink(self._images_path)
        self._write(b"]}")
        self._f.close()
        return self._sha.hexdigest(), self._size

    def abort(self) -> None:
        for f in (self._f, self._img):
            f.close()
        self._images_path.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


def write_hashed(path: str | Path, data: bytes) -> tuple[str, int]:
    """Write a small file and return (sha256, size) without reading it back."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest(), len(data)



MERGE_BATCH_ROWS = 128   # rows per batch of the sorted parts (one batch per part is held while merging)


def write_sorted_part(path: str | Path, table) -> None:
    """One part for merge_sorted_parts: an Arrow IPC file in small batches, so the merge reads
    one batch of it at a time (a parquet reader holds ~1.5 MB per open file, which grows with
    the number of parts)."""
    import pyarrow as pa

    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=MERGE_BATCH_ROWS):
            writer.write_batch(batch)


def merge_sorted_parts(paths: list[Path], key: str, out: str | Path, schema, row_group_rows: int = 4096) -> int:
    """K-way merge of parts (write_sorted_part), each sorted by the unique string column `key`,
    into one parquet file sorted by it, written in row groups of `row_group_rows`. Held at a
    time: one batch per part and the row group being assembled, never the whole table.
    Returns the rows written; ValueError on a repeated key."""
    import heapq
    import itertools

    import pyarrow as pa
    import pyarrow.parquet as pq

    held: dict[int, pa.RecordBatch] = {}     # batch number -> batch, for the pending rows and the readers
    current: dict[int, int] = {}             # part -> the batch number it is reading
    pending: list[tuple[int, int]] = []      # (batch number, row) of the row group being assembled
    serial = itertools.count()

    def rows(k: int, path: Path):
        with pa.OSFile(str(path), "rb") as f:
            reader = pa.ipc.open_file(f)
            for j in range(reader.num_record_batches):
                batch = reader.get_batch(j)
                b = next(serial)
                held[b] = batch
                current[k] = b
                for i, v in enumerate(batch.column(key).to_pylist()):
                    yield v, b, i
        current.pop(k, None)

    n, last = 0, None
    with pq.ParquetWriter(str(out), schema) as writer:
        def flush():
            used = list(dict.fromkeys(b for b, _ in pending))
            offset, start = {}, 0
            for b in used:
                offset[b], start = start, start + held[b].num_rows
            table = pa.Table.from_batches([held[b] for b in used]).replace_schema_metadata(None)
            writer.write_table(table.take(pa.array([offset[b] + i for b, i in pending], pa.int64())).cast(schema))
            pending.clear()
            keep = set(current.values())
            for b in [b for b in held if b not in keep]:
                del held[b]
        for v, b, i in heapq.merge(*(rows(k, p) for k, p in enumerate(paths)), key=lambda t: t[0]):
            if v == last:
                raise ValueError(f"{key} {v!r} appears twice")
            last = v
            pending.append((b, i))
            n += 1
            if len(pending) >= row_group_rows:
                flush()
        if pending:
            flush()
        if n == 0:
            writer.write_table(schema.empty_table())
    return n
