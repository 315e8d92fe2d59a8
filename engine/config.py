"""The engine's one typed configuration object.

Defaults are the embedded ones (CPU, offline). Load from YAML and apply dotted CLI overrides:

    cfg = load_config("build.yaml", ["plan.min_area_frac=0.02", "generate.seed=7"])
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
import os

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.facts import RELATIONS

# Checkers a policy may name: the ones engine.stages builds (mllm_choice and sam3i only when a
# policy or check.extra asks for them).
CHECKERS = ("program", "lexical", "no_category_noun", "mllm_choice", "sam3i")
POLICY_KEYS = ("concept", "simple", "complex", "negative")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and the key."""


class _Section(BaseModel):
    # strict: `unit_size: true` is not 1 and `seed: "7"` is not 7 (YAML and --set values are
    # typed already, so nothing legitimate needs coercion); ints are still accepted as floats
    model_config = ConfigDict(extra="forbid", strict=True)


class IngestConfig(_Section):
    unit_size: int = Field(64, gt=0, description="images per work unit")
    max_pixels: int = Field(89_478_485, gt=0, description="decompression-bomb limit (PIL's default)")
    polygon_margin: float = Field(0.1, ge=0, description="polygon points may lie this share of the image size outside it")
    verify_pixels: bool = Field(True, description="fully decode each image to catch truncated files")
    max_image_bytes: int = Field(256 * 1024 * 1024, gt=0, description="image files larger than this are refused before reading")
    max_instances_per_image: int = Field(1000, gt=0, description="annotations kept per image (by id); the rest are quarantined, bounding memory and pairwise work")


class FactsConfig(_Section):
    near_distance: float = Field(0.15, gt=0, description="max normalised gap between bboxes for next_to / relations")
    max_relation_partners: int = Field(6, gt=0)
    small_frac: float = Field(0.01, ge=0, le=1, description="area_frac below this is small")
    large_frac: float = Field(0.10, ge=0, le=1, description="area_frac above this is large")

    @model_validator(mode="after")
    def _small_below_large(self):
        if self.small_frac > self.large_frac:
            raise ValueError(f"small_frac={self.small_frac} is above large_frac={self.large_frac}")
        return self


class PlanConfig(_Section):
    # A target must be big enough to see: at least min_area_frac of the image OR at least
    # min_area_px pixels. The pixel floor lets small objects of large aerial / macro photos in
    # (a car at 0.5% of a 1024x1024 frame is 5,200 px); at 4096 px (64x64) it admits nothing
    # new in images up to 640x640 (4096 px >= 1% there), so COCO results do not change.
    min_area_frac: float = Field(0.01, ge=0, description="targets covering at least this share of the image are eligible")
    min_area_px: int = Field(4096, ge=0, description="targets of at least this many mask pixels are eligible too (0 = off)")
    allow_crowd_targets: bool = False
    programs_per_target: int = Field(3, gt=0, description="distinct programs per target and tier")
    max_constraints: int = Field(3, gt=0)
    one_to_many: bool = True
    one_to_all: bool = True
    negatives_per_image: int = Field(2, ge=0)
    # A person's dominant colour mixes skin, hair and clothes: "the black person" reads as skin
    # colour, which is wrong and offensive. No colour constraints for these supercategories.
    no_color_supercategories: list[str] = Field(default_factory=lambda: ["person"])
    # Relations a program may use. A photo is 2D: "below" in the image is often "in front of"
    # (the person "below the bus" walks in front of it; judged on coco-sample: "the pizza
    # directly below the wine glass" that stands beyond it) and "on" cannot tell support from
    # occlusion, so above / below / on are off by default; left/right of, next to, inside and
    # overlapping read the same in the picture and in the world. For top-down shots (a flat lay
    # of products or fruit) add above / below: they are said ("directly below") only of boxes
    # stacked in the picture, sharing columns and nearly meeting (margins._stacked).
    relations: list[str] = Field(default_factory=lambda: ["left_of", "right_of", "next_to", "inside", "overlapping",
                                                          "riding", "holding", "in_front_of", "behind"])
    # A category the lexicon knows nothing of gets complex instructions from instance facts under
    # its supercategory, or else (when this is on) under "the item" / "the object". The generic
    # noun assumes nothing unannotated in the photo could be called an item, which real photos
    # seldom grant (a reader counts the unannotated sweets among "the items"), so it is off by
    # default: turn it on for clean product shots where every object is annotated, or give the
    # categories a supercategory or entries in a lexicon extension.
    generic_noun: bool = False
    # A crowd region hides unannotated instances of its category ("the person on the far left"
    # may be someone in the crowd), so no one-instance or group targets in such a category.
    skip_crowded_categories: bool = True
    # 1:N groups ("the two sheep on the left") only in categories a viewer counts at a glance
    max_group_category: int = Field(6, ge=3)
    # complex 1:1: a kind fact true of every member of the category ("who can speak") heads
    # programs for one target in this many (chosen by a stable hash); the rest say what the masks
    # show of the instance. 1: every target gets kind-fact programs too
    kind_fact_every: int = Field(3, ge=1)

    @field_validator("relations")
    @classmethod
    def _known_relations(cls, v: list[str]) -> list[str]:
        unknown = [r for r in v if r not in RELATIONS]
        if unknown:
            raise ValueError(f"unknown relation(s) {unknown}; known: {', '.join(RELATIONS)}")
        return v


class VllmConfig(_Section):
    """generate.backend=vllm: the engines the build owns (pipelines/vllm_replicas.py). Each
    replica is a Ray actor holding one vLLM OpenAI-compatible server process started from vLLM's
    own environment (`python`); see engine/serving/vllm_process.py for why not in-process."""
    python: str | None = Field(None, description="vLLM environment's interpreter; None = $SAM3I_VLLM_HOME/venv/bin/python (infra/vllm-cpu/setup.sh)")
    model: str | None = Field(None, description="local model folder (nothing is downloaded)")
    served_model_name: str = Field("model", description="the name requests use")
    replicas: int = Field(0, ge=0, description="engines; 0 = one per num_gpus of the cluster's GPUs (a CPU-only cluster must set it)")
    num_gpus: float = Field(1, ge=0, description="GPUs per replica (= tensor_parallel_size on GPUs; 0 for CPU replicas)")
    num_cpus: float = Field(1, ge=0, description="CPUs Ray reserves per replica")
    tensor_parallel_size: int = Field(1, ge=1)
    host: str = "127.0.0.1"
    max_model_len: int = Field(8192, gt=0)
    max_num_seqs: int | None = Field(None, gt=0, description="vLLM's batch size cap; None = vLLM's default")
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    cpu_kv_cache_gib: int = Field(1, gt=0, description="VLLM_CPU_KVCACHE_SPACE on CPU builds")
    prefix_caching: bool = True
    # vLLM 0.32's CPU build crashes the engine ("CPU Generator does not use offset") when a seeded
    # request's prompt is split over steps: turn chunked prefill off for CPU replicas.
    chunked_prefill: bool = Field(True, description="False: whole prompts per step (needed for seeded sampling on CPU)")
    max_images: int = Field(3, ge=0, description="images per request vLLM accepts (--limit-mm-per-prompt)")
    extra_args: list[str] = Field(default_factory=list, description="more `vllm serve` arguments")
    startup_timeout_s: float = Field(900, gt=0)
    health_interval_s: float = Field(2, gt=0, description="seconds between a replica's health checks")
    max_restarts: int = Field(3, ge=0, description="engine restarts per replica before it is given up")


class GenerateConfig(_Section):
    # `template`: the embedded grammar. `openai`: any OpenAI-compatible server (`vllm serve`,
    # llama.cpp) through engine/generate/openai_backend.py; the fields below it configure it.
    # `vllm`: the same requests to engines the build starts and owns (generate.vllm).
    backend: Literal["template", "openai", "vllm"] = "template"
    # express: the model expresses the spec's referring program (program-verified text).
    # free: the model writes natural text from the picture and facts, with no program to
    # express; only the mllm_choice check (and sam3i) can verify it, so the policy must require it.
    mode: Literal["express", "free"] = "express"
    concurrency: int = Field(1, ge=1, description="specs of a unit in flight at once (model backends): the engine batches them")
    endpoints: list[str] = Field(default_factory=list, description="set at run time by the vllm replicas: their API roots")
    vllm: VllmConfig = VllmConfig()
    seed: int = 0
    base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible API root (ends in /v1)")
    model: str | None = Field(None, description="served model name; None = the server's first model")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key (unset = none)")
    temperature: float = Field(0.7, ge=0)
    max_tokens: int = Field(256, gt=0)
    timeout_s: float = Field(120, gt=0, description="per request")
    retries: int = Field(3, ge=0, description="retries on connection errors, timeouts, 429 and 5xx")
    retry_backoff_s: float = Field(1.0, ge=0, description="first retry delay; doubles per try")
    prompt_version: str = Field("instruct_v1", description="engine/prompts/<prompt_version>.yaml")
    prompt_dir: str | None = Field(None, description="folder of prompt files; None = engine/prompts")
    # response_format: OpenAI's json_schema field (vLLM, llama.cpp, OpenAI); structured_outputs:
    # vLLM's own extra body field; none: the prompt alone asks for JSON.
    structured_output: Literal["response_format", "structured_outputs", "none"] = "response_format"
    send_image: bool = Field(False, description="attach the mask overlay and crop (multimodal servers)")


class MLLMChoiceConfig(_Section):
    # The `mllm_choice` checker (engine/checks/mllm_choice.py): a second model answers which
    # numbered region an instruction refers to. Runs only when check.policy or check.extra names it.
    base_url: str | None = Field(None, description="OpenAI-compatible API root; None = generate.base_url")
    model: str | None = Field(None, description="served model name; None = the server's first model")
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(32, gt=0, description='the answer is {"choice": <n>}')
    timeout_s: float = Field(120, gt=0)
    retries: int = Field(3, ge=0)
    retry_backoff_s: float = Field(1.0, ge=0)
    prompt_version: str = Field("choice_v1", description="engine/prompts/<prompt_version>.yaml")
    prompt_dir: str | None = None
    structured_output: Literal["response_format", "structured_outputs", "none"] = "response_format"
    send_image: bool = Field(False, description="attach the photo with numbered coloured outlines")
    distractors: int = Field(3, ge=1, description="wrong region options besides the target and 'none of these'")
    seed: int = 0


class Sam3iCheckConfig(_Section):
    """The `sam3i` checker's model (model/): a SAM3 base plus trained adapters."""
    base: str = Field("tiny", description="'tiny' (random, tests) or a local facebook/sam3 folder")
    adapters: str | None = Field(None, description="adapter checkpoint from model.train (<run>/checkpoints/stage3.pt)")
    device: str = Field("auto", description="'auto' = cuda when the worker has a GPU (ray.stages.unit.num_gpus)")
    score_threshold: float = Field(0.5, gt=0, lt=1, description="query score above which a mask counts")


class CheckConfig(_Section):
    # Which checkers must pass, per tier. Others may run and are recorded. The defaults suit
    # the template generator, whose every phrasing the lexical checker can parse; with a model
    # backend, free text is often "unverifiable" lexically: require mllm_choice / sam3i instead.
    policy: dict[str, list[str]] = Field(default_factory=lambda: {
        "concept": ["program", "lexical"],
        "simple": ["program", "lexical"],
        "complex": ["program", "lexical", "no_category_noun"],
        "negative": ["program", "lexical"],
    })
    max_rounds: int = Field(3, ge=1, description="generation rounds per spec before rejecting")
    sam3i_iou: float = Field(0.5, gt=0, le=1, description="the sam3i checker passes at IoU >= this")
    sam3i: Sam3iCheckConfig = Sam3iCheckConfig()
    extra: list[str] = Field(default_factory=list, description="checkers run and recorded on every candidate, not required")
    mllm: MLLMChoiceConfig = MLLMChoiceConfig()

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        bad_keys = [k for k in v if k not in POLICY_KEYS]
        if bad_keys:
            raise ValueError(f"unknown tier(s) {bad_keys}; a policy names checkers for {', '.join(POLICY_KEYS)}")
        for tier, names in v.items():
            _known_checkers(names, f"tier {tier!r}")
        return v

    @field_validator("extra")
    @classmethod
    def _known_extra(cls, v: list[str]) -> list[str]:
        return _known_checkers(v, "check.extra")


def _known_checkers(names: list[str], where: str) -> list[str]:
    unknown = [n for n in names if n not in CHECKERS]
    if unknown:
        raise ValueError(f"{where} names no such checker: {', '.join(map(repr, unknown))} (checkers: {', '.join(CHECKERS)})")
    return names


class DedupConfig(_Section):
    method: Literal["minhash", "embedding", "exact"] = "minhash"
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard (minhash) or cosine (embedding) above which two texts are near-duplicates")
    max_per_target_tier: int = Field(3, gt=0)


class ReleaseConfig(_Section):
    shard_max_count: int = Field(1000, gt=0)
    shard_max_bytes: int = Field(1_000_000_000, gt=0)
    val_fraction: float = Field(0.1, ge=0, le=1)
    # A shard never spans two work units, so a refresh that changes a few units rewrites only
    # their shards and carries the others over from the previous release (engine/release/publish.py).
    shard_by_unit: bool = Field(True, description="start a new shard at every work unit boundary")
    multipart_threshold: int = Field(8 * 1024 * 1024, gt=0)
    upload_attempts: int = Field(4, gt=0, description="whole-file upload tries (S3), with exponential backoff")
    upload_backoff_s: float = Field(1.0, ge=0, description="first retry delay; doubles per try")


class StageResources(_Section):
    num_cpus: float = Field(1, ge=0)
    num_gpus: float = Field(0, ge=0)
    concurrency: int = Field(2, ge=1, description="actors of the stage")


class RayConfig(_Section):
    address: str | None = Field(None, description="None = local ray.init(); else a cluster address")
    stages: dict[str, StageResources] = Field(default_factory=lambda: {"unit": StageResources()})
    max_retries: int = Field(2, ge=0)
    # Ray's start and stop cost seconds; with fewer pending units than this (and no cluster
    # address or GPU stage) the units run in the driver process instead (flows/common.py).
    min_units: int = Field(2, ge=1, description="fewest pending units worth starting a local Ray for")


class LexiconConfig(_Section):
    # Files in engine/data/lexicon.yaml's format that add a project's categories (engine/lexicon/__init__.py).
    extend: list[str] = Field(default_factory=list, description="lexicon extension files for every source")

    @field_validator("extend")
    @classmethod
    def _absolute(cls, v: list[str]) -> list[str]:   # workers may run elsewhere than the driver's cwd
        return [os.path.abspath(os.path.expanduser(p)) for p in v]


class SourceConfig(_Section):
    lexicon: str | None = Field(None, description="lexicon extension file for this source's categories")
    # Negatives claim a concept is absent, which holds only for categories the source annotates
    # exhaustively. Default: the categories it lists and actually uses (a single-category
    # source: that one). "lexicon": every thing-category of the lexicon (a full COCO source).
    exhaustive: list[str] | Literal["used", "lexicon"] = "used"

    @field_validator("lexicon")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        return os.path.abspath(os.path.expanduser(v)) if v else v


class EngineConfig(_Section):
    ingest: IngestConfig = IngestConfig()
    lexicon: LexiconConfig = LexiconConfig()
    sources: dict[str, SourceConfig] = Field(default_factory=dict, description="per source id")
    facts: FactsConfig = FactsConfig()
    plan: PlanConfig = PlanConfig()
    generate: GenerateConfig = GenerateConfig()
    check: CheckConfig = CheckConfig()
    dedup: DedupConfig = DedupConfig()
    release: ReleaseConfig = ReleaseConfig()
    ray: RayConfig = RayConfig()

    @model_validator(mode="after")
    def _free_language_is_choice_checked(self):
        if self.generate.mode == "free":
            if self.generate.backend == "template":
                raise ValueError("generate.mode=free needs a model backend (openai or vllm); the template "
                                 "backend only expresses programs")
            lacking = [k for k in POLICY_KEYS if "mllm_choice" not in self.check.policy.get(k, [])]
            if lacking:
                raise ValueError(f"generate.mode=free: free text is verified only by the multiple-choice check; "
                                 f"check.policy must require mllm_choice for {', '.join(lacking)}")
        return self


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides; values are parsed as YAML (numbers, bools, lists)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def _describe(e: ValidationError, origin: str) -> str:
    """One line per problem, each naming the dotted key, what is wrong and the value given."""
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        given = "" if err["type"] in ("missing",) else f" (given: {err.get('input')!r})"
        if err["type"] == "string_type" and isinstance(err.get("input"), bool):
            given += "; YAML reads on/off/yes/no as booleans: quote the word"
        lines.append(f"  {key}: {msg}{given}")
    return f"invalid configuration{origin}:\n" + "\n".join(lines)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> EngineConfig:
    """The validated config; ConfigError (naming file and key) for anything unusable."""
    data: dict = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a folder, not a YAML config file") from None
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e})") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML (only plain YAML is read: no tags such as !!python): {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        data = apply_overrides(data, overrides or [])
    except yaml.YAMLError as e:
        raise ConfigError(f"a --set value is not valid YAML: {e}") from None
    try:
        return EngineConfig.model_validate(data)
    except ValidationError as e:
        origin = f" in {path}" if path is not None else ""
        origin += " (with --set " + ", ".join(overrides) + ")" if overrides else ""
        raise ConfigError(_describe(e, origin)) from None
