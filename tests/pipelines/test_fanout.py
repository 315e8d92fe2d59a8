"""Ray fan-out: real units on an actor pool match the in-process driver; units run at the same
time on different workers; failures are retried, then reported unit by unit; a dead worker
process is replaced; workers that cannot start are reported with their error; a GPU stage on a
CPU cluster, or resources for a stage that does not exist, are refused instead of hanging or
being ignored."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import ray

from engine.build import UNIT_STAGE, Ingested, run_ingest, run_units_locally, unit_store
from engine.config import load_config
from engine.sources.ingest import resolve_source
from pipelines.fanout import UnitsFailedError, WorkersCannotStartError, run_units_on_ray
from pipelines.resources import check_stages, ensure_ray, pool_size, stage_resources
from tests.coco_fixtures import COCO_SAMPLE

pytestmark = pytest.mark.integration

# The fake workers below are defined in this test module, which Ray workers cannot import:
# ship them by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

CFG = load_config(None, ["ingest.unit_size=4", "ray.stages.unit.concurrency=2", "ray.max_retries=1"])


@pytest.fixture(scope="module")
def ray_local():
    started = ensure_ray(CFG)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def coco_units(tmp_path_factory) -> Ingested:
    wd = tmp_path_factory.mktemp("ingest")
    return run_ingest([resolve_source(str(COCO_SAMPLE))], CFG, wd)


def _tables(store, unit_id: str) -> dict[str, pd.DataFrame]:
    root = store.root / UNIT_STAGE
    return {name: pd.read_parquet(root / name / f"{unit_id}.parquet") for name in ("facts", "specs", "instructions")}


def test_units_on_ray_match_in_process_and_use_several_workers(ray_local, coco_units, tmp_path):
    units = coco_units.unit_ids()[:4]
    ray_store, local_store = unit_store(tmp_path / "ray", CFG), unit_store(tmp_path / "local", CFG)
    done: list[str] = []
    stats = run_units_on_ray(coco_units, units, CFG, ray_store, on_done=done.append)
    run_units_locally(coco_units, units, CFG, local_store)

    assert sorted(done) == sorted(units) == sorted(s.unit_id for s in stats)
    assert all(ray_store.is_done(UNIT_STAGE, u) for u in units)
    for u in units:
        got, want = _tables(ray_store, u), _tables(local_store, u)
        for name in want:
            pd.testing.assert_frame_equal(got[name], want[name], obj=f"{u}/{name}")
    n_images = coco_units.images.groupby("unit_id").size()
    assert {s.unit_id: s.images for s in stats} == {u: int(n_images[u]) for u in units}
    assert all(s.instructions > 0 and s.seconds > 0 for s in stats)
    assert len({s.pid for s in stats}) == 2, "two actors should have shared the four units"
    assert os.getpid() not in {s.pid for s in stats}


class _Result:
    def __init__(self, unit_id):
        self.instructions = pd.DataFrame({"accepted": [True, False]})

    def tables(self):
        return {}  # the store then writes only the completion marker


class FlakyWorker:
    """Fails for `bad` on every attempt; kills its own process the first time it sees `crash`."""

    def __init__(self, cfg, bad: str, crash: str, flags: str):
        self.bad, self.crash, self.flags = bad, crash, Path(flags)

    def run(self, unit_id, images, instances):
        if unit_id == self.bad:
            raise ValueError(f"cannot describe {unit_id}")
        flag = self.flags / f"{unit_id}.crashed"
        if unit_id == self.crash and not flag.exists():
            flag.touch()
            os._exit(3)
        return _Result(unit_id)


def test_failures_are_retried_then_reported_and_dead_workers_replaced(ray_local, coco_units, tmp_path):
    units = coco_units.unit_ids()
    bad, crash = units[1], units[4]
    store = unit_store(tmp_path / "w", CFG)
    worker = functools.partial(FlakyWorker, bad=bad, crash=crash, flags=str(tmp_path))
    with pytest.raises(UnitsFailedError) as err:
        run_units_on_ray(coco_units, units, CFG, store, worker_cls=worker)

    e = err.value
    assert list(e.failures) == [bad]
    assert e.failures[bad] == f"ValueError: cannot describe {bad}"
    assert bad in str(e) and "cannot describe" in str(e)
    assert sorted(e.done) == sorted(u for u in units if u != bad)
    assert (tmp_path / f"{crash}.crashed").exists(), "the crash unit's first attempt should have died"
    assert store.is_done(UNIT_STAGE, crash), "the crashed unit should have been retried on a new actor"
    assert not store.is_done(UNIT_STAGE, bad)
    assert all(store.is_done(UNIT_STAGE, u) for u in e.done)


class RendezvousWorker:
    """Each unit announces itself, then waits for a second unit to have started. Run one at a
    time, the first unit would wait for ever (here: fail after `wait_s`)."""

    def __init__(self, cfg, flags: str, wait_s: float = 60):
        self.flags, self.wait_s = Path(flags), wait_s

    def run(self, unit_id, images, instances):
        import time

        (self.flags / f"{unit_id}.started").touch()
        deadline = time.monotonic() + self.wait_s
        while len(list(self.flags.glob("*.started"))) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{unit_id} ran alone: no other unit started within {self.wait_s} s")
            time.sleep(0.02)
        return _Result(unit_id)


def test_units_run_at_the_same_time_on_several_workers(ray_local, coco_units, tmp_path):
    cfg = CFG.model_copy(update={"ray": CFG.ray.model_copy(update={"max_retries": 0})})
    units = coco_units.unit_ids()[:2]
    worker = functools.partial(RendezvousWorker, flags=str(tmp_path))
    stats = run_units_on_ray(coco_units, units, cfg, unit_store(tmp_path / "w", cfg), worker_cls=worker)
    assert sorted(s.unit_id for s in stats) == sorted(units)
    assert len({s.pid for s in stats}) == 2


class BrokenBackendWorker:
    def __init__(self, cfg):
        raise ValueError("generate.backend: no model at /models/missing")


def test_workers_that_cannot_start_are_reported_with_their_error(ray_local, coco_units, tmp_path):
    units = coco_units.unit_ids()
    store = unit_store(tmp_path / "w", CFG)
    with pytest.raises(WorkersCannotStartError) as err:
        run_units_on_ray(coco_units, units, CFG, store, worker_cls=BrokenBackendWorker)
    e = err.value
    assert "ValueError: generate.backend: no model at /models/missing" in str(e).splitlines()[0]
    assert sorted(e.failures) == sorted(units) and e.done == []
    assert all(v == "not run: no worker could start" for v in e.failures.values())
    assert not any(store.is_done(UNIT_STAGE, u) for u in units)


def test_resources_for_an_unknown_stage_are_refused():
    cfg = load_config(None, ["ray.stages.generate.num_gpus=1"])
    with pytest.raises(ValueError, match=r"ray\.stages\.generate: no such Ray stage"):
        check_stages(cfg)
    with pytest.raises(ValueError, match="no such Ray stage"):
        run_units_on_ray(None, [], cfg, None)
    check_stages(CFG)  # the configured 'unit' stage is fine


def test_pool_size_follows_config_and_cluster():
    gpu = load_config(None, ["ray.stages.unit.num_gpus=0.5", "ray.stages.unit.concurrency=8"])
    with pytest.raises(RuntimeError, match="GPU=0"):
        pool_size(stage_resources(gpu), {"CPU": 16})
    assert pool_size(stage_resources(gpu), {"CPU": 16, "GPU": 2}) == 4  # two actors per GPU
    assert pool_size(stage_resources(gpu), {"CPU": 3, "GPU": 8}) == 3   # one CPU each
    assert pool_size(stage_resources(CFG), {"CPU": 16}) == 2            # the configured concurrency
