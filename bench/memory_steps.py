"""Where the driver's memory goes: RSS and peak (VmHWM) on entering and leaving each step of
one in-process build (issue 16).

    python bench/memory_steps.py ENGINE_BUILD_ARGS...   (the arguments of `python -m engine.build`)

Run it on two sizes of a replicated set (bench/perf_data.py) and compare step by step: a step
whose numbers grow with the images is what keeps `bench/bench_memory.py`'s ratio above 1.
Prints one line per step on stderr.
"""
from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

STEPS = {
    "engine.build": ["run_ingest", "publish", "dataset_card", "release_fingerprint"],
    "engine.stages": ["UnitWorker.run"],        # one line pair per unit: does the units stage grow?
    "engine.report": ["unit_quality_report"],
    "engine.release.publish": ["stage_release", "_plan", "_write_tables", "render_card"],
    "engine.release.shard": ["write_planned"],
    "engine.release.sam3i_export": ["write_export"],
    "engine.release.saco_export": ["write_export"],
}


def _mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wrap(module, name: str) -> None:
    owner, _, name = name.rpartition(".")
    holder = getattr(module, owner) if owner else module
    fn = getattr(holder, name)
    label = f"{module.__name__.rsplit('.', 1)[-1]}.{owner + '.' if owner else ''}{name}"

    def probed(*args, **kwargs):
        print(f"enter {label:32s} rss {_mb('VmRSS'):7.1f} MB  peak {_mb('VmHWM'):7.1f} MB", file=sys.stderr, flush=True)
        try:
            return fn(*args, **kwargs)
        finally:
            print(f"leave {label:32s} rss {_mb('VmRSS'):7.1f} MB  peak {_mb('VmHWM'):7.1f} MB", file=sys.stderr, flush=True)
    setattr(holder, name, probed)


def main(argv: list[str]) -> int:
    import importlib

    for mod_name, names in STEPS.items():
        mod = importlib.import_module(mod_name)
        for n in names:
            _wrap(mod, n)
    from engine.build import main as build_main

    with contextlib.redirect_stdout(io.StringIO()):
        rc = build_main(argv)
    print(f"final peak {_mb('VmHWM'):.1f} MB", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
