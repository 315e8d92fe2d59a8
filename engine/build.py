"""Build a release in one process: ingest -> per-unit stages -> release.

This is the engine's own driver, with no orchestrator: `flows/` runs the same steps as
Prefect tasks and hands the per-unit work to Ray (`pipelines/`). Finished units are reused
from the work directory, so a killed build resumes where it stopped.

    python -m engine.build --source ../shared/data/coco-sample --output out/release
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import yaml

from engine.config import EngineConfig, load_config
from engine.sources.ingest import IngestError, SourceSpec, ingest, resolve_source, write_tables
from engine.lexicon import extension_files, files_digest, lexicon_for, load_lexicon
from engine.report import REPORT_FACT_COLUMNS, md_text, category_coverage, print_report, quality_report, report_markdown
from engine.stages import UnitWorker
from engine.version import code_version
from engine.workdir import UnitStore
from schemas.facts import FACTS
from schemas.instructions import INSTRUCTIONS

UNIT_STAGE = "units"


@dataclass
class Ingested:
    images: pd.DataFrame
    instances: pd.DataFrame
    quarantine: pd.DataFrame

    def unit_ids(self) -> list[str]:
        return sorted(self.images["unit_id"].unique())

    def unit(self, unit_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        imgs = self.images[self.images["unit_id"] == unit_id].reset_index(drop=True)
        inst = self.instances[self.instances["image_id"].isin(set(imgs["image_id"]))].reset_index(drop=True)
        return imgs, inst


@dataclass
class BuildResult:
    release_uri: str | None
    release_id: str | None
    report: dict
    units_total: int
    units_run: list[str] = field(default_factory=list)
    quarantined: int = 0
    published: bool = True
    message: str = ""


RUNTIME_ONLY_VLLM = ("python", "replicas", "num_gpus", "num_cpus", "host", "startup_timeout_s", "health_interval_s",
                     "max_restarts", "cpu_kv_cache_gib", "gpu_memory_utilization", "max_num_seqs")


def config_fingerprint(cfg: EngineConfig) -> str:
    """What decides unit outputs: every section but release/ray, the lexicon extensions'
    content, plus the code version. Where the engines run (the vllm replicas' ports, counts,
    interpreter, timeouts) does not decide outputs: a resumed build on new replicas reuses units."""
    data = cfg.model_dump(exclude={"release": True, "ray": True, "generate": {"endpoints": True, "vllm": set(
        RUNTIME_ONLY_VLLM)}})
    ext = extension_files(cfg)
    lex = files_digest(ext) if ext else ""
    return hashlib.sha256((json.dumps(data, sort_keys=True) + lex + code_version()).encode()).hexdigest()[:16]


def negatives_section(cfg: EngineConfig, instances: pd.DataFrame, lex) -> str:
    """Which vocabulary each source's negatives came from (engine/sources/vocabulary.py)."""
    from engine.sources.vocabulary import describe_vocabulary, vocabularies
    lines = ["A negative claims a concept is absent; it is drawn only from what its source annotates "
             "exhaustively (per work unit, those of these categories the unit's images use).", ""]
    for sid, vocab in sorted(vocabularies(cfg, instances, lex).items()):
        setting = cfg.sources[sid].exhaustive if sid in cfg.sources else "used"
        lines.append(f"- {md_text(sid)}: {md_text(describe_vocabulary(setting, vocab, lex))}")   # source-given names
    return "\n".join(lines)


def default_workdir(output: str) -> Path:
    return Path(".sam3i-work") / hashlib.sha256(output.encode()).hexdigest()[:12]


class NothingToPublishError(IngestError):
    """A build that would publish an empty release: every input record of a source was
    quarantined, or no instruction was accepted."""


def _quarantine_summary(quarantine: pd.DataFrame, source_id: str) -> str:
    q = quarantine[quarantine["source_id"] == source_id]
    counts = q.groupby("reason").size().sort_values(ascending=False)
    return ", ".join(f"{r}: {n}" for r, n in counts.items()) or "no records at all"


def require_images(sources: list[SourceSpec], images: pd.DataFrame, quarantine: pd.DataFrame) -> None:
    """Every source must contribute at least one image: one that contributes none is a wrong
    path, a broken export or an empty file, and an empty release must not be published."""
    have = set(images["source_id"])
    for src in sources:
        if src.source_id not in have:
            raise NothingToPublishError(
                f"source {src.source_id!r} ({src.annotations_uri}): no usable image, every record was quarantined "
                f"({_quarantine_summary(quarantine, src.source_id)}); nothing was published")


def arrow_memory_returns_to_os() -> None:
    """Arrow's default pool (mimalloc) keeps what it freed: reading every unit's parquet files
    grew the driver by ~4x the tables' size (issue 16's memory bench). The system allocator
    gives it back. Called once by the drivers (this build and flows/), before anything is read."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def run_ingest(sources: list[SourceSpec], cfg: EngineConfig, workdir: Path) -> Ingested:
    from engine.sources.ingest import ImageCache

    arrow_memory_returns_to_os()

    cache = ImageCache(Path(workdir) / "ingest" / "image_cache.pkl")   # unchanged images are not re-read
    res = ingest(sources, cfg.ingest, cache=cache)
    cache.save()
    write_tables(res, workdir / "ingest")  # kept for inspection, also when the build stops here
    require_images(sources, res.images, res.quarantine)
    return Ingested(res.images, res.instances, res.quarantine)


def unit_store(workdir: Path, cfg: EngineConfig) -> UnitStore:
    return UnitStore(workdir / f"cfg-{config_fingerprint(cfg)}")


def run_units_locally(data: Ingested, pending: list[str], cfg: EngineConfig, store: UnitStore,
                      on_done: Callable[[str], None] = lambda u: None) -> None:
    worker = UnitWorker(cfg)
    for unit_id in pending:
        imgs, inst = data.unit(unit_id)
        res = worker.run(unit_id, imgs, inst)
        store.write(UNIT_STAGE, unit_id, res.tables(), validated=getattr(res, "validated", False))
        on_done(unit_id)


def collect(store: UnitStore, unit_ids: Iterable[str],
            fact_columns: Iterable[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every unit's facts and instructions; `fact_columns` limits the facts to what the caller
    reads (the release reads REPORT_FACT_COLUMNS: the rest would grow with the dataset)."""
    unit_ids = list(unit_ids)
    facts = [store.read(UNIT_STAGE, u, "facts", FACTS, columns=fact_columns) for u in unit_ids]
    instr = [store.read(UNIT_STAGE, u, "instructions", INSTRUCTIONS) for u in unit_ids]
    f = pd.concat(facts, ignore_index=True) if facts else FACTS.empty()
    if fact_columns is not None and not facts:
        f = f[list(fact_columns)]
    i = pd.concat(instr, ignore_index=True) if instr else INSTRUCTIONS.empty()
    return f, i.sort_values("instruction_id").reset_index(drop=True)


def inputs_fingerprint(images: pd.DataFrame, instances: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for row in images.sort_values("image_id")[["image_id", "sha256"]].itertuples(index=False):
        h.update(f"{row.image_id}:{row.sha256};".encode())
    for row in instances.sort_values("instance_id")[["instance_id", "category", "rle", "iscrowd"]].itertuples(index=False):
        h.update(f"{row.instance_id}:{row.category}:{row.iscrowd}:{row.rle};".encode())
    return h.hexdigest()


def release_fingerprint(data: Ingested, cfg: EngineConfig) -> str:
    """What a release is made from: the inputs and the config that decides unit outputs.
    (engine.release.publish.release_id_for adds the release config and code version.)"""
    return inputs_fingerprint(data.images, data.instances) + config_fingerprint(cfg)


def dataset_card(report: dict, cfg: EngineConfig, sources: list[SourceSpec], quarantine: pd.DataFrame) -> dict:
    lines = [f"- `{s.source_id}`: annotations `{s.annotations_uri}`, images `{s.images_uri}`" for s in sources]
    lines.append("")
    lines.append("Each image keeps the licence its source names (table of licences below); the "
                 "annotations keep their source dataset's licence (COCO's: CC BY 4.0).")
    q = quarantine.groupby("reason").size().to_dict() if len(quarantine) else {}
    return {
        "Quality report": report_markdown(report),
        "Sources": "\n".join(lines),
        "Quarantined input records": "\n".join(f"- {k}: {v}" for k, v in sorted(q.items())) or "none",
        "Configuration": "```yaml\n" + yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=True) + "```",
        "Code version": f"`{code_version()}`",
    }


def no_complex_categories(instances: pd.DataFrame) -> list[str]:
    """Categories whose complex tier has no lexicon knowledge (instance facts only)."""
    lex = load_lexicon()
    return sorted(c for c in instances["category"].unique() if not lex.affordances(c))


def publish(output: str, data: Ingested, facts: pd.DataFrame, instructions: pd.DataFrame,
            cfg: EngineConfig, sources: list[SourceSpec], previous: str | None = None) -> tuple[dict, object]:
    """Build and publish the release; `previous` (an earlier local release) lends its unchanged shards."""
    from engine.release.publish import build_release

    if not instructions["accepted"].any():
        raise NothingToPublishError(
            f"no instruction was accepted ({len(instructions)} candidates, {len(data.images)} images, "
            f"{len(data.instances)} instances, {len(data.quarantine)} input records quarantined); "
            f"nothing was published at {output}")
    lex = lexicon_for(cfg)
    rep = quality_report(instructions, facts, cfg.plan, categories=category_coverage(data.instances, lex))
    card = dataset_card(rep, cfg, sources, data.quarantine)
    card["Negatives: vocabulary per source"] = negatives_section(cfg, data.instances, lex)
    info = build_release(output, data.images, data.instances, instructions, card, cfg.release,
                         inputs_fingerprint=release_fingerprint(data, cfg), code_version=code_version(),
                         previous=previous, validated=True)   # ingest and the unit stages validated them
    return rep, info


def build(sources: list[SourceSpec], output: str, cfg: EngineConfig, workdir: str | Path | None = None,
          run_units=run_units_locally) -> BuildResult:
    workdir = Path(workdir) if workdir else default_workdir(output)
    data = run_ingest(sources, cfg, workdir)
    store = unit_store(workdir, cfg)
    units = data.unit_ids()
    pending = [u for u in units if not store.is_done(UNIT_STAGE, u)]
    run_units(data, pending, cfg, store)
    facts, instructions = collect(store, units, REPORT_FACT_COLUMNS)
    rep, info = publish(output, data, facts, instructions, cfg, sources)
    return BuildResult(output, getattr(info, "release_id", None), rep, len(units), pending, len(data.quarantine))


def as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def engine_config(config: str | None, overrides: list[str] | str | None, seed: int | None = None) -> EngineConfig:
    items = as_list(overrides) + ([f"generate.seed={seed}"] if seed is not None else [])
    return load_config(config, items)


def sources_of(source: list[str] | str, images: list[str] | str | None = None) -> list[SourceSpec]:
    srcs, imgs = as_list(source), as_list(images)
    if not srcs:
        raise ValueError("no source given: pass source=<COCO json or folder> (one or more)")
    if len(imgs) > len(srcs):
        raise ValueError(f"{len(imgs)} image folders for {len(srcs)} sources; give at most one per source")
    return [resolve_source(s, imgs[k] if k < len(imgs) else None) for k, s in enumerate(srcs)]


def add_build_arguments(ap: argparse.ArgumentParser) -> None:
    """The command-line arguments shared by `python -m engine.build` and `python -m flows.build_dataset`."""
    ap.add_argument("--source", action="append", required=True,
                    help="COCO json file or folder with instances.json + images/ (local or s3://); repeatable")
    ap.add_argument("--images", action="append", default=None, help="images folder for the matching --source")
    ap.add_argument("--output", required=True, help="release directory or s3:// prefix")
    ap.add_argument("--config", default=None, help="YAML config file")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. --set plan.min_area_frac=0.02 --set ingest.unit_size=16")
    ap.add_argument("--seed", type=int, default=None, help="shorthand for --set generate.seed=N")
    ap.add_argument("--workdir", default=None, help="work directory for per-unit outputs (kept for resume)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.build", description=__doc__.split("\n\n")[0])
    add_build_arguments(ap)
    args = ap.parse_args(argv)
    try:
        cfg = engine_config(args.config, args.overrides, args.seed)
        res = build(sources_of(args.source, args.images), args.output, cfg, args.workdir)
    except (IngestError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_report(res.report)
    print(f"release {res.release_id} written to {res.release_uri} "
          f"({len(res.units_run)}/{res.units_total} units processed, {res.quarantined} input records quarantined)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
