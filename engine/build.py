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
from engine.sources.ingest import IngestError, SourceSpec, resolve_source
from engine.lexicon import extension_files, files_digest, lexicon_for, load_lexicon
from engine.report import md_text, category_coverage, print_report, report_markdown
from engine.stages import UnitWorker
from engine.version import code_version
from engine.workdir import UnitStore
from schemas.facts import FACTS
from schemas.instructions import INSTRUCTIONS

UNIT_STAGE = "units"


class Ingested:
    """What ingest produced, as the driver holds it: the summary (counts, unit ids, inputs
    fingerprint, categories, quarantine counts) and the work directory's per-unit tables, read
    one unit at a time. The whole tables stay on disk (issue 16: the driver's memory must not
    grow with the dataset); `images` / `instances` / `quarantine` read them for inspection."""

    def __init__(self, root: str | Path, summary: dict):
        self.root = Path(root)
        self.summary = summary

    def unit_ids(self) -> list[str]:
        return list(self.summary["units"])

    def unit(self, unit_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        from engine.sources.ingest import unit_paths
        from engine.workdir import read_table
        from schemas.images import IMAGES
        from schemas.instances import INSTANCES

        paths = unit_paths(self.root, unit_id)
        return read_table(paths["images"], IMAGES), read_table(paths["instances"], INSTANCES)

    @property
    def n_images(self) -> int:
        return self.summary["images"]

    @property
    def n_instances(self) -> int:
        return self.summary["instances"]

    @property
    def n_quarantined(self) -> int:
        return self.summary["quarantined"]

    def quarantine_counts(self, source_id: str | None = None) -> dict[str, int]:
        """reason -> quarantined records (of one source, or of all)."""
        out: dict[str, int] = {}
        for sid, reasons in self.summary["quarantine"].items():
            if source_id in (None, sid):
                for r, n in reasons.items():
                    out[r] = out.get(r, 0) + n
        return out

    @property
    def categories(self) -> pd.DataFrame:
        """(source_id, category, supercategory) pairs in first-seen order."""
        return pd.DataFrame(self.summary["category_pairs"], columns=["source_id", "category", "supercategory"])

    def _table(self, name: str) -> pd.DataFrame:
        from engine.sources.ingest import TABLE_FILES
        from engine.workdir import read_table
        return read_table(self.root / f"{name}.parquet", TABLE_FILES[name])

    @property
    def images(self) -> pd.DataFrame:
        return self._table("images")

    @property
    def instances(self) -> pd.DataFrame:
        return self._table("instances")

    @property
    def quarantine(self) -> pd.DataFrame:
        return self._table("quarantine")


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


def _quarantine_summary(counts: dict[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{r}: {n}" for r, n in ordered) or "no records at all"


def require_images(sources: list[SourceSpec], data: Ingested) -> None:
    """Every source must contribute at least one image: one that contributes none is a wrong
    path, a broken export or an empty file, and an empty release must not be published."""
    have = set(data.summary["sources_with_images"])
    for src in sources:
        if src.source_id not in have:
            raise NothingToPublishError(
                f"source {src.source_id!r} ({src.annotations_uri}): no usable image, every record was quarantined "
                f"({_quarantine_summary(data.quarantine_counts(src.source_id))}); nothing was published")


def arrow_memory_returns_to_os() -> None:
    """Arrow's default pool (mimalloc) keeps what it freed: reading every unit's parquet files
    grew the driver by ~4x the tables' size (issue 16's memory bench). The system allocator
    gives it back. Called once by the drivers (this build and flows/), before anything is read."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def _ingest_in_child(sources: list[SourceSpec], cfg: EngineConfig, out: Path, cache: Path) -> None:
    """engine.sources.ingest in a process of its own: parsing the sources and checking every
    image peaks at a size that grows with the dataset, and a process keeps most of what it
    freed; the child's memory goes back whole when it exits (issue 16)."""
    import os
    import subprocess
    import tempfile
    from dataclasses import asdict

    out.mkdir(parents=True, exist_ok=True)
    fd, job_path = tempfile.mkstemp(dir=out, prefix=".job-", suffix=".json")
    os.close(fd)
    result = Path(job_path + ".result")
    try:
        Path(job_path).write_text(json.dumps({
            "sources": [asdict(s) for s in sources], "cfg": cfg.ingest.model_dump(mode="json"),
            "out_dir": str(out), "cache": str(cache), "result": str(result)}))
        env = dict(os.environ)
        # the child imports this very code tree, wherever the driver was started
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        proc = subprocess.run([sys.executable, "-m", "engine.sources.ingest", job_path], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        answer = json.loads(result.read_text()) if result.exists() else {}
        if "error" in answer:
            raise IngestError(answer["error"])
        if proc.returncode != 0 or not answer.get("ok"):
            raise RuntimeError(f"ingest process exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    finally:
        Path(job_path).unlink(missing_ok=True)
        result.unlink(missing_ok=True)


SMALL_SOURCE_BYTES = 4 << 20   # local COCO json files this small (~500 images) ingest in the driver


def _small(sources: list[SourceSpec]) -> bool:
    """Local COCO sources whose annotation files total under SMALL_SOURCE_BYTES: their whole
    ingest holds a few MB, less than a child process costs in start-up (2-3 s of imports).
    Other formats and S3 sources always go to the child (their size is not known up front)."""
    import os

    total = 0
    for s in sources:
        if s.format != "coco" or not os.path.isfile(s.annotations_uri):
            return False
        total += os.path.getsize(s.annotations_uri)
    return total < SMALL_SOURCE_BYTES


def run_ingest(sources: list[SourceSpec], cfg: EngineConfig, workdir: Path, in_process: bool | None = None) -> Ingested:
    """Ingest into `<workdir>/ingest` (whole tables, per-unit tables, summary) and return the
    handle. In a child process, but for small local COCO sources (`_small`); `in_process`
    (or SAM3I_INGEST_IN_PROCESS=1) decides it instead."""
    import os
    from engine.sources.ingest import SUMMARY, ingest_to_dir

    arrow_memory_returns_to_os()
    out = Path(workdir) / "ingest"
    cache = out / "image_cache.pkl"   # unchanged images are not re-read
    if in_process is None:
        in_process = os.environ.get("SAM3I_INGEST_IN_PROCESS") == "1" or _small(sources)
    if in_process:
        ingest_to_dir(sources, cfg.ingest, out, cache)
    else:
        _ingest_in_child(sources, cfg, out, cache)
    data = Ingested(out, json.loads((out / SUMMARY).read_text()))
    require_images(sources, data)
    return data


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
    """Every unit's facts and instructions (tests and tools; a build reads them one unit at a
    time, engine.release.units). `fact_columns` limits the facts to those columns."""
    unit_ids = list(unit_ids)
    facts = [store.read(UNIT_STAGE, u, "facts", FACTS, columns=fact_columns) for u in unit_ids]
    instr = [store.read(UNIT_STAGE, u, "instructions", INSTRUCTIONS) for u in unit_ids]
    f = pd.concat(facts, ignore_index=True) if facts else FACTS.empty()
    if fact_columns is not None and not facts:
        f = f[list(fact_columns)]
    i = pd.concat(instr, ignore_index=True) if instr else INSTRUCTIONS.empty()
    return f, i.sort_values("instruction_id").reset_index(drop=True)


def release_fingerprint(data: Ingested, cfg: EngineConfig) -> str:
    """What a release is made from: the inputs (fingerprinted by ingest) and the config that
    decides unit outputs. (engine.release.publish.release_id_for adds the release config and
    code version.)"""
    return data.summary["inputs_fingerprint"] + config_fingerprint(cfg)


def dataset_card(report: dict, cfg: EngineConfig, sources: list[SourceSpec], quarantine: dict[str, int]) -> dict:
    """`quarantine`: reason -> quarantined input records (Ingested.quarantine_counts())."""
    lines = [f"- `{s.source_id}`: annotations `{s.annotations_uri}`, images `{s.images_uri}`" for s in sources]
    lines.append("")
    lines.append("Each image keeps the licence its source names (table of licences below); the "
                 "annotations keep their source dataset's licence (COCO's: CC BY 4.0).")
    return {
        "Quality report": report_markdown(report),
        "Sources": "\n".join(lines),
        "Quarantined input records": "\n".join(f"- {k}: {v}" for k, v in sorted(quarantine.items())) or "none",
        "Configuration": "```yaml\n" + yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=True) + "```",
        "Code version": f"`{code_version()}`",
    }


def no_complex_categories(instances: pd.DataFrame) -> list[str]:
    """Categories whose complex tier has no lexicon knowledge (instance facts only)."""
    lex = load_lexicon()
    return sorted(c for c in instances["category"].unique() if not lex.affordances(c))


def publish(output: str, data: Ingested, store: UnitStore, cfg: EngineConfig, sources: list[SourceSpec],
            previous: str | None = None) -> tuple[dict, object]:
    """Build and publish the release from the units' outputs in `store`, one unit at a time
    (engine/release/units.py); `previous` (an earlier local release) lends its unchanged shards."""
    from engine.release.publish import build_release
    from engine.release.units import StoreUnits
    from engine.report import unit_quality_report

    units = StoreUnits(data, store, UNIT_STAGE)
    accepted, candidates = units.instruction_counts()
    if not accepted:
        raise NothingToPublishError(
            f"no instruction was accepted ({candidates} candidates, {data.n_images} images, "
            f"{data.n_instances} instances, {data.n_quarantined} input records quarantined); "
            f"nothing was published at {output}")
    lex = lexicon_for(cfg)
    rep = unit_quality_report(units, cfg.plan, categories=category_coverage(data.categories, lex))
    card = dataset_card(rep, cfg, sources, data.quarantine_counts())
    card["Negatives: vocabulary per source"] = negatives_section(cfg, data.categories, lex)
    info = build_release(output, None, None, None, card, cfg.release,
                         inputs_fingerprint=release_fingerprint(data, cfg), code_version=code_version(),
                         previous=previous, units=units)
    return rep, info


def build(sources: list[SourceSpec], output: str, cfg: EngineConfig, workdir: str | Path | None = None,
          run_units=run_units_locally) -> BuildResult:
    workdir = Path(workdir) if workdir else default_workdir(output)
    data = run_ingest(sources, cfg, workdir)
    store = unit_store(workdir, cfg)
    units = data.unit_ids()
    pending = [u for u in units if not store.is_done(UNIT_STAGE, u)]
    run_units(data, pending, cfg, store)
    rep, info = publish(output, data, store, cfg, sources)
    return BuildResult(output, getattr(info, "release_id", None), rep, len(units), pending, data.n_quarantined)


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
