"""Run one build in this process and print one JSON line: wall seconds (start-up excluded:
from just before the build to its end), the process's peak RSS (VmHWM) and CPU seconds.

    python bench/build_once.py ENGINE_BUILD_ARGS...   (the arguments of `python -m engine.build`)

The perf benches run it in a fresh process per measurement, with PYTHONPATH set to the code
tree under test, so the same bench measures a branch and the commit before it.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

T_START = time.perf_counter()


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    from engine.build import main as build_main

    imported = time.perf_counter()
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        rc = build_main(argv)
    done = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"rc": rc, "import_s": imported - T_START, "build_s": done - imported,
                      "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": peak_rss_mb()}))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
