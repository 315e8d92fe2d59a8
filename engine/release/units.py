"""A release's inputs, one work unit at a time (issue 16: the driver's memory must not grow
with the dataset, so the release never holds the whole images, instances or instructions tables).

`StoreUnits` reads a build's work directory: each unit's images and instances as ingest wrote
them (engine.sources.ingest.write_units) and its instructions and facts from the unit store.
`FrameUnits` serves whole DataFrames the same way, for callers that hold them already
(`engine.release.publish.build_release` with tables, tests and tools).

Every unit's images hold the instances of those images, and its instructions are about them.
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from schemas.facts import FACTS
from schemas.images import IMAGES
from schemas.instances import INSTANCES
from schemas.instructions import INSTRUCTIONS


class ReleaseUnits:
    """The interface the release and the quality report read."""

    def unit_ids(self) -> list[str]:
        raise NotImplementedError

    def images(self, unit_id: str, columns: Iterable[str] | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def instances(self, unit_id: str) -> pd.DataFrame:
        raise NotImplementedError

    def instructions(self, unit_id: str, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The unit's candidates (accepted and rejected), sorted by instruction_id."""
        raise NotImplementedError

    def facts(self, unit_id: str, columns: Iterable[str]) -> pd.DataFrame:
        raise NotImplementedError

    def instruction_counts(self) -> tuple[int, int]:
        """(accepted, all candidates) over every unit."""
        acc = total = 0
        for u in self.unit_ids():
            a = self.instructions(u, ["accepted"])["accepted"]
            acc += int(a.sum())
            total += len(a)
        return acc, total


def _cols(df: pd.DataFrame, columns: Iterable[str] | None) -> pd.DataFrame:
    return df if columns is None else df[list(columns)]


class StoreUnits(ReleaseUnits):
    """A build's units: `data` is engine.build.Ingested, `store` its UnitStore."""

    def __init__(self, data, store, stage: str):
        self.data, self.store, self.stage = data, store, stage

    def unit_ids(self) -> list[str]:
        return self.data.unit_ids()

    def _ingested(self, unit_id: str, name: str, table, columns) -> pd.DataFrame:
        from engine.sources.ingest import unit_paths
        from engine.workdir import read_trusted
        # ingest validated these tables before writing them (write_units)
        return read_trusted(unit_paths(self.data.root, unit_id)[name], table, columns)

    def images(self, unit_id, columns=None):
        return self._ingested(unit_id, "images", IMAGES, columns)

    def instances(self, unit_id):
        return self._ingested(unit_id, "instances", INSTANCES, None)

    def instructions(self, unit_id, columns=None):
        cols = None if columns is None else list(dict.fromkeys(["instruction_id", *columns]))
        df = self.store.read(self.stage, unit_id, "instructions", INSTRUCTIONS, columns=cols)
        df = df.sort_values("instruction_id", kind="stable").reset_index(drop=True)
        return _cols(df, columns)

    def facts(self, unit_id, columns):
        return self.store.read(self.stage, unit_id, "facts", FACTS, columns=list(columns))


class FrameUnits(ReleaseUnits):
    """Whole tables served unit by unit. An instruction belongs to its image's unit (to its
    own `unit_id` when its image is unknown: the release's reference check reports it)."""

    def __init__(self, images: pd.DataFrame, instances: pd.DataFrame, instructions: pd.DataFrame,
                 facts: pd.DataFrame | None = None):
        unit_of = dict(zip(images["image_id"], images["unit_id"]))
        self._images = dict(tuple(images.groupby("unit_id", sort=False)))
        inst_unit = instances["image_id"].map(unit_of)
        self._instances = dict(tuple(instances.groupby(inst_unit, sort=False))) if len(instances) else {}
        instr_unit = instructions["image_id"].map(unit_of).fillna(instructions["unit_id"])
        self._instructions = dict(tuple(instructions.groupby(instr_unit, sort=False))) if len(instructions) else {}
        self._facts = {}
        if facts is not None and len(facts):
            self._facts = dict(tuple(facts.groupby(facts["image_id"].map(unit_of), sort=False)))
        self._empty = (images.iloc[:0], instances.iloc[:0], instructions.iloc[:0],
                       facts.iloc[:0] if facts is not None else FACTS.empty())
        self._units = sorted(set(self._images) | set(self._instructions))

    def unit_ids(self):
        return list(self._units)

    def images(self, unit_id, columns=None):
        return _cols(self._images.get(unit_id, self._empty[0]).reset_index(drop=True), columns)

    def instances(self, unit_id):
        return self._instances.get(unit_id, self._empty[1]).reset_index(drop=True)

    def instructions(self, unit_id, columns=None):
        df = self._instructions.get(unit_id, self._empty[2])
        return _cols(df.sort_values("instruction_id", kind="stable").reset_index(drop=True), columns)

    def facts(self, unit_id, columns):
        df = self._facts.get(unit_id, self._empty[3])
        return df[[c for c in columns if c in df.columns]].reset_index(drop=True)
