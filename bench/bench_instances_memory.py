"""Memory and time of a whole build (ingest -> unit stages -> release, one process) on ONE
640x480 image carrying many tiny instances, the case that used to grow with instances x image
size until the OOM killer stopped it (issue 9, problem 4).

    python bench/bench_instances_memory.py [--instances 20000] [--cap 1000] [--json]

A few large instances (lowest ids, so the per-image cap keeps them) give the planner real
targets; the rest are 2x2 squares on a grid. Prints peak RSS (VmHWM of this process),
wall time, how many instances were kept and quarantined, accepted instructions, and the peak
RSS per kept instance. tests/engine/scene/test_memory_bound.py runs it at 20,000 instances and holds
the peak under its stated bound.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from engine.build import build  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.sources.ingest import SourceSpec  # noqa: E402

W, H = 640, 480


def _square(x: float, y: float, s: float) -> list[float]:
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def make_source(root: Path, n: int) -> SourceSpec:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    pixels[40:200, 40:300] = (200, 30, 30)    # the large objects get plain colours
    pixels[250:450, 350:600] = (30, 30, 200)
    Image.fromarray(pixels).save(root / "images" / "crowded.jpg", quality=90)
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [_square(40, 40, 160)]},
        {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 0, "segmentation": [[350, 250, 600, 250, 600, 450, 350, 450]]},
        {"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [_square(420, 40, 120)]},
    ]
    per_row = W // 3
    for k in range(n - len(anns)):
        x, y = 3 * (k % per_row), 3 * (k // per_row) % (H - 3)
        anns.append({"id": len(anns) + 1, "image_id": 1, "category_id": 3, "iscrowd": 0,
                     "segmentation": [_square(x, y, 2)]})
    coco = {"images": [{"id": 1, "file_name": "crowded.jpg", "width": W, "height": H}], "annotations": anns,
            "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "car"}, {"id": 3, "name": "bird"}]}
    (root / "instances.json").write_text(json.dumps(coco))
    return SourceSpec("crowded", str(root / "instances.json"), str(root / "images"))


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM belongs to the process's own memory
    map; ru_maxrss survives exec and so starts at the parent's size when a large parent (a long
    pytest run) starts this script, which would charge the parent's memory to the build."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(n: int, cap: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = make_source(tmp / "src", n)
        overrides = [f"ingest.max_instances_per_image={cap}"] if cap else []
        t0 = time.perf_counter()
        res = build([spec], str(tmp / "release"), load_config(None, overrides), workdir=tmp / "w")
        wall = time.perf_counter() - t0
    peak_mb = peak_rss_mb()
    kept = min(n, cap or load_config().ingest.max_instances_per_image)
    return {"instances": n, "kept": kept, "quarantined": res.quarantined,
            "accepted": res.report["instructions"]["accepted"], "wall_s": round(wall, 2),
            "peak_rss_mb": round(peak_mb, 1), "peak_rss_kb_per_kept_instance": round(peak_mb * 1024 / kept, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=20000)
    ap.add_argument("--cap", type=int, default=None, help="ingest.max_instances_per_image (default: the config's)")
    ap.add_argument("--json", action="store_true", help="one JSON line (for tests)")
    args = ap.parse_args()
    out = run(args.instances, args.cap)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:32s} {v}")


if __name__ == "__main__":
    main()
