"""Generation throughput: the same prompts through the engine path and straight to the engines.

    python bench/bench_generate_throughput.py [--source ../shared/data/coco-sample] [--images 8] [--unit-size 1]
        [--replicas 2] [--concurrency 8] [--unit-actors 2] [--max-tokens 64]
        [--home ~/.cache/sam3i/vllm-cpu] [--model DIR --served-name NAME --python VLLM_PY]

Starts N vLLM replicas as Ray actors (pipelines/vllm_replicas.py; by default CPU replicas of the
tiny random model of infra/vllm-cpu) and keeps them for both runs:

- engine: the build's own path, pipelines.fanout.run_units_on_ray with generate.backend=vllm,
  Ray unit actors running describe -> plan -> generate -> check -> dedup, one round per spec
  (check.max_rounds=1), `--concurrency` specs in flight per unit actor;
- direct: the first-round request of every spec, built by the same generator code in this
  process beforehand, POSTed straight to the replicas (the same image -> replica affinity) from
  unit-actors x concurrency threads: nothing but HTTP and the engines.

Each replica's prefix cache is reset before each timed run (VLLM_SERVER_DEV_MODE's
/reset_prefix_cache), so neither run profits from the other's. Tokens come from the engines'
own counters (/metrics). Prints, per run: wall seconds, instructions/s, prompt and output tokens
per instruction, prefix-cache hit rate; and last the ratio engine / direct instructions/s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("VLLM_SERVER_DEV_MODE", "1")       # /reset_prefix_cache on the engines

import httpx  # noqa: E402
import ray  # noqa: E402

from engine.build import run_ingest, unit_store  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.generate.base import SpecView  # noqa: E402
from engine.generate.prompt import load_prompt  # noqa: E402
from engine.scene.facts import describe  # noqa: E402
from engine.serving.vllm_process import default_home  # noqa: E402
from engine.sources.ingest import resolve_source  # noqa: E402
from engine.stages import UnitWorker  # noqa: E402
from pipelines.fanout import run_units_on_ray  # noqa: E402
from pipelines.resources import ensure_ray  # noqa: E402
from pipelines.vllm_replicas import VllmReplicas  # noqa: E402

COUNTERS = ("vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:prefix_cache_queries_total",
            "vllm:prefix_cache_hits_total", "vllm:request_success_total")


def metrics(base_url: str) -> dict[str, float]:
    text = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=30).text
    out = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        for name in COUNTERS:
            if line.startswith(name + "{") or line.startswith(name + " "):
                out[name] += float(line.rsplit(" ", 1)[1])
    return out


def totals(urls: list[str]) -> dict[str, float]:
    per = [metrics(u) for u in urls]
    return {k: sum(p[k] for p in per) for k in COUNTERS}


def reset_caches(urls: list[str]) -> None:
    for u in urls:
        httpx.post(u.removesuffix("/v1") + "/reset_prefix_cache", timeout=30).raise_for_status()


def figures(name: str, n: int, wall: float, before: dict, after: dict) -> dict:
    d = {k: after[k] - before[k] for k in COUNTERS}
    q = d["vllm:prefix_cache_queries_total"]
    return {"run": name, "instructions": n, "wall_s": round(wall, 2), "instructions_per_s": round(n / wall, 3),
            "prompt_tokens_per_instruction": round(d["vllm:prompt_tokens_total"] / max(n, 1), 1),
            "output_tokens_per_instruction": round(d["vllm:generation_tokens_total"] / max(n, 1), 1),
            "prefix_cache_hit_rate": round(d["vllm:prefix_cache_hits_total"] / q, 3) if q else None,
            "engine_requests": int(d["vllm:request_success_total"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "coco-sample"))
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--unit-size", type=int, default=1, help="images per unit (a unit's last spec holds its actor)")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8, help="specs in flight per unit actor")
    ap.add_argument("--unit-actors", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--home", default=str(default_home()))
    ap.add_argument("--model", help="local model folder (default: HOME/tiny-chat)")
    ap.add_argument("--served-name", default="tiny-chat")
    ap.add_argument("--python", help="vLLM's interpreter (default: HOME/venv/bin/python)")
    ap.add_argument("--num-gpus", type=float, default=0, help="GPUs per replica (0: CPU replicas)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    home = Path(args.home)
    tiers = ("concept", "simple", "complex", "negative")
    # express mode, one round, the program check only: each spec is one request, so
    # instructions = requests (the choice check is a second, much shorter request per candidate;
    # BENCHMARKS.md models its cost from the same counters)
    policy = [f"check.policy.{t}=[program]" for t in tiers]
    cfg = load_config(None, [
        "generate.backend=vllm",
        f"generate.vllm.model={args.model or home / 'tiny-chat'}", f"generate.vllm.served_model_name={args.served_name}",
        f"generate.vllm.python={args.python or home / 'venv' / 'bin' / 'python'}",
        f"generate.vllm.replicas={args.replicas}", f"generate.vllm.num_gpus={args.num_gpus}", "generate.vllm.num_cpus=0.5",
        f"generate.vllm.chunked_prefill={'true' if args.num_gpus else 'false'}",
        f"generate.concurrency={args.concurrency}", f"generate.max_tokens={args.max_tokens}",
        "generate.temperature=1.0", "check.max_rounds=1", *policy,
        f"ingest.unit_size={args.unit_size}", f"ray.stages.unit.concurrency={args.unit_actors}",
    ])
    work = Path(tempfile.mkdtemp(prefix="bench-gen-"))
    from tests.coco_fixtures import make_case   # the first N images of the sample, as a source
    src = make_case(work, Path(args.source), n_images=args.images).write() if args.images else resolve_source(args.source)
    data = run_ingest([src], cfg, work / "ingest")
    units = data.unit_ids()

    ensure_ray(cfg)
    pool = VllmReplicas(cfg, work / "vllm-logs").start()
    urls = pool.endpoints
    run_cfg = cfg.model_copy(update={"generate": cfg.generate.model_copy(update={"endpoints": urls})})
    print(f"{len(urls)} replicas up: {', '.join(urls)}; {len(units)} units of {args.images} images", flush=True)
    try:
        # the prompts: every spec's first-round request, built by the generator itself
        local = UnitWorker(run_cfg)
        bodies, free_chars = [], []
        free = load_prompt("free_v1")        # the free-language prompt's size, for the cost model
        from engine.checks.mllm_choice import MLLMChoiceChecker   # and the choice question's
        chooser = MLLMChoiceChecker(cfg.check.mllm.model_copy(update={"model": "m"}), local.lexicon,
                                    base_url="http://127.0.0.1:9/v1")
        choice_chars = []
        t_cpu = time.perf_counter()
        for u in units:
            images, instances = data.unit(u)
            facts, relations = describe(images, instances, cfg.facts)
            local.bind(images, instances)
            scenes = local.scenes(images, facts, relations)
            for s in local.plan(scenes, u).to_dict("records"):
                spec = SpecView.from_row(s)
                bodies.append((spec.image_id, local.generator.request_body(spec, scenes[spec.image_id],
                                                                            cfg.generate.seed, [])))
                free_chars.append(sum(map(len, free.render(spec, scenes[spec.image_id], local.lexicon, []))))
                q = chooser.question(spec, scenes[spec.image_id])
                qb = chooser.request_body("the small black dog to the left of the bench", spec, q)
                choice_chars.append(sum(len(m["content"]) for m in qb["messages"]))
        cpu_s = time.perf_counter() - t_cpu     # describe + plan (+ prompt rendering) alone, one process
        # the tiny model's tokenizer is a byte-level BPE trained on a few lines (~1 token per 1-2
        # characters): its token counts overstate a real model's; characters carry to any tokenizer
        chars = [sum(len(m["content"]) if isinstance(m["content"], str) else
                     sum(len(p.get("text", "")) for p in m["content"]) for m in b["messages"]) for _, b in bodies]
        print(f"{len(bodies)} prompts, {sum(chars) / len(chars):.0f} characters each on average "
              f"(system {len(bodies[0][1]['messages'][0]['content'])})", flush=True)

        def direct(item):
            image_id, body = item
            url = urls[zlib.crc32(image_id.encode()) % len(urls)]
            r = client.post(url + "/chat/completions", json=body)
            r.raise_for_status()

        # warm-up (first requests pay for compilation), then the timed runs on cold prefix caches
        client = httpx.Client(timeout=600)
        with ThreadPoolExecutor(args.unit_actors * args.concurrency) as ex:
            list(ex.map(direct, bodies[: 2 * len(urls)]))
        results = []
        reset_caches(urls)
        before, t0 = totals(urls), time.perf_counter()
        stats = run_units_on_ray(data, units, run_cfg, unit_store(work / "engine", run_cfg))
        wall = time.perf_counter() - t0
        n = sum(s.instructions for s in stats)
        results.append(figures("engine", n, wall, before, totals(urls)))
        # the same run without the unit actors' start-up (Ray workers, imports, building the
        # UnitWorker): the busiest actor's time in units. A paper-scale build starts its actors
        # once for hours of units, so this is its steady state.
        busy: dict[int, float] = {}
        for st in stats:
            busy[st.pid] = busy.get(st.pid, 0.0) + st.seconds
        steady_wall = max(busy.values())
        results.append(dict(results[-1], run="engine*", wall_s=round(steady_wall, 2),
                            instructions_per_s=round(n / steady_wall, 3)))
        print(json.dumps(results[-1]), flush=True)

        reset_caches(urls)
        before, t0 = totals(urls), time.perf_counter()
        with ThreadPoolExecutor(args.unit_actors * args.concurrency) as ex:
            list(ex.map(direct, bodies))
        wall = time.perf_counter() - t0
        results.append(figures("direct", len(bodies), wall, before, totals(urls)))
        print(json.dumps(results[-1]), flush=True)
    finally:
        pool.stop()
        ray.shutdown()
    eng, steady, dirct = results
    ratio = eng["instructions_per_s"] / dirct["instructions_per_s"]
    ratio_steady = steady["instructions_per_s"] / dirct["instructions_per_s"]
    print(f"\n{'run':8} {'instr':>6} {'wall s':>8} {'instr/s':>8} {'prompt tok/instr':>17} {'output tok/instr':>17} "
          f"{'prefix hit':>10}")
    for r in results:
        print(f"{r['run']:8} {r['instructions']:>6} {r['wall_s']:>8.1f} {r['instructions_per_s']:>8.2f} "
              f"{r['prompt_tokens_per_instruction']:>17.1f} {r['output_tokens_per_instruction']:>17.1f} "
              f"{str(r['prefix_cache_hit_rate']):>10}")
    print(f"describe + plan + prompts of all units in one process, no model: {cpu_s:.1f}s "
          f"(the engine path's CPU share; here on the same cores as the CPU engines)")
    print(f"prompt characters per request: {sum(chars) / len(chars):.0f} (express, instruct_v1); "
          f"{sum(free_chars) / len(free_chars):.0f} (free, free_v1; text only, images not counted); "
          f"choice question {sum(choice_chars) / len(choice_chars):.0f}")
    print("engine* = the engine run timed from its unit actors' work (start-up excluded)")
    print(f"ratio engine*/direct instructions/s (steady state): {ratio_steady:.3f}")
    print(f"ratio engine/direct instructions/s: {ratio:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "ratio": ratio, "ratio_steady": ratio_steady, "prompt_chars": sum(chars) / len(chars), "cpu_stages_s": cpu_s,
                                                "free_chars": sum(free_chars) / len(free_chars),
                                                "choice_chars": sum(choice_chars) / len(choice_chars),
                                                "args": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
