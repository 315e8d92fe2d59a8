"""Per-image cost of a build against the floor, start-up excluded (issue 16).

    python bench/bench_per_image.py [--images 900] [--small 90] [--repo PATH] [--repeat 1]

The floor is the work no build can avoid, per image: read the file, decode the image, decode
every mask with pycocotools, write the image bytes to a tar. The build is `engine.build` (the
README command's work without orchestration) run in a fresh process per measurement on a
replicated coco-sample set (bench/perf_data.py); its per-image cost is
(t(images) - t(small)) / (images - small), so imports and any fixed cost cancel out.
`--repo` measures another code tree (e.g. an export of the commit before a change) with this
same bench. Prints the numbers, then the ratio build / floor last.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_data import REPO, load_average, python, replicate  # noqa: E402


def floor_seconds(src: Path) -> tuple[float, float]:
    """Read + decode the image, decode each mask with pycocotools, tar the bytes; total (wall, CPU) seconds."""
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    doc = json.loads((src / "instances.json").read_text())
    anns: dict[int, list] = {}
    for a in doc["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(Path(tmp) / "floor.tar", "w") as tar:
        for rec in doc["images"]:
            data = (src / "images" / rec["file_name"]).read_bytes()
            with Image.open(io.BytesIO(data)) as im:
                np.asarray(im.convert("RGB"))
            h, w = rec["height"], rec["width"]
            for a in anns.get(rec["id"], []):
                seg = a["segmentation"]
                rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg, list) else \
                    (mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg)
                mask_utils.decode(mask_utils.merge(rle) if isinstance(rle, list) else rle)
            info = tarfile.TarInfo(rec["file_name"])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return time.perf_counter() - t0, time.process_time() - c0


def build_seconds(repo: Path, src: Path, work: Path) -> dict:
    import subprocess

    from perf_data import env_for
    out = subprocess.run([python(repo), str(REPO / "bench" / "build_once.py"), "--source", str(src),
                          "--output", str(work / "release"), "--workdir", str(work / "wd")],
                         cwd=repo, env=env_for(repo), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"build failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    shutil.rmtree(work, ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=900)
    ap.add_argument("--small", type=int, default=90)
    ap.add_argument("--repo", type=Path, default=REPO, help="code tree to measure (default: this one)")
    ap.add_argument("--repeat", type=int, default=1, help="alternated runs; medians are reported")
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-per-image-", dir=args.tmp))
    try:
        big, small = replicate(args.images, tmp / "big"), replicate(args.small, tmp / "small")
        print(f"code tree {args.repo}; {args.images} vs {args.small} images; load average {load_average()}")
        floors, floors_cpu, b_big, b_small = [], [], [], []
        for k in range(args.repeat):
            wall, cpu = floor_seconds(big)
            floors.append(wall / args.images)
            floors_cpu.append(cpu / args.images)
            b_small.append(build_seconds(args.repo, small, tmp / f"w-small-{k}"))
            b_big.append(build_seconds(args.repo, big, tmp / f"w-big-{k}"))
        floor = statistics.median(floors)
        t_big = statistics.median(r["build_s"] for r in b_big)
        t_small = statistics.median(r["build_s"] for r in b_small)
        per_image = (t_big - t_small) / (args.images - args.small)
        imports = statistics.median(r["import_s"] for r in b_big)
        # CPU seconds: on a shared machine wall time also counts waiting for a core
        floor_cpu = statistics.median(floors_cpu)
        cpu_per_image = (statistics.median(r["cpu_s"] for r in b_big)
                         - statistics.median(r["cpu_s"] for r in b_small)) / (args.images - args.small)
        print(f"floor               : {floor * 1000:7.2f} ms/image (read + decode image, decode masks, tar)")
        print(f"build {args.images:5d} images  : {t_big:7.2f} s after imports ({imports:.1f} s imports), "
              f"{t_big / args.images * 1000:.1f} ms/image all in")
        print(f"build {args.small:5d} images  : {t_small:7.2f} s after imports")
        print(f"build per image     : {per_image * 1000:7.2f} ms/image (start-up excluded)")
        print(f"CPU per image       : build {cpu_per_image * 1000:.2f} ms, floor {floor_cpu * 1000:.2f} ms "
              f"(ratio {cpu_per_image / floor_cpu:.2f}x; includes the build's extra threads)")
        print(f"load average after  : {load_average()}")
        print(f"ratio build/floor   : {per_image / floor:7.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
