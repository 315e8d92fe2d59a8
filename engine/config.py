"""The engine's one typed configuration object.

Defaults are the embedded ones (CPU, offline). Load from YAML and apply dotted CLI overrides:

    cfg = load_config("build.yaml", ["plan.min_area_frac=0.02", "generate.seed=7"])
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestConfig(_Section):
    unit_size: int = Field(64, gt=0, description="images per work unit")
    max_pixels: int = Field(89_478_485, gt=0, description="decompression-bomb limit (PIL's default)")
    polygon_margin: float = Field(0.1, ge=0, description="polygon points may lie this share of the image size outside it")
    verify_pixels: bool = Field(True, description="fully decode each image to catch truncated files")


class FactsConfig(_Section):
    near_distance: float = Field(0.15, gt=0, description="max normalised gap between bboxes for next_to / relations")
    max_relation_partners: int = Field(6, gt=0)
    small_frac: float = Field(0.01, description="area_frac below this is small")
    large_frac: float = Field(0.10, description="area_frac above this is large")


class PlanConfig(_Section):
    min_area_frac: float = Field(0.01, ge=0, description="targets must cover at least this share of the image")
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
    # (the person "below the bus" walks in front of it) and "on" cannot tell support from
    # occlusion, so above / below / on are off by default; left/right of, next to, inside and
    # overlapping read the same in the picture and in the world.
    relations: list[str] = Field(default_factory=lambda: ["left_of", "right_of", "next_to", "inside", "overlapping"])
    # A crowd region hides unannotated instances of its category ("the person on the far left"
    # may be someone in the crowd), so no one-instance or group targets in such a category.
    skip_crowded_categories: bool = True


class GenerateConfig(_Section):
    # `template`: the embedded grammar. `openai`: any OpenAI-compatible server (`vllm serve`,
    # llama.cpp) through engine/generate/openai_backend.py; the fields below it configure it.
    backend: Literal["template", "openai"] = "template"
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


class DedupConfig(_Section):
    method: Literal["minhash", "embedding", "exact"] = "minhash"
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard (minhash) or cosine (embedding) above which two texts are near-duplicates")
    max_per_target_tier: int = Field(3, gt=0)


class ReleaseConfig(_Section):
    shard_max_count: int = Field(1000, gt=0)
    shard_max_bytes: int = Field(1_000_000_000, gt=0)
    val_fraction: float = Field(0.1, ge=0, le=1)
    multipart_threshold: int = Field(8 * 1024 * 1024, gt=0)
    upload_attempts: int = Field(4, gt=0, description="whole-file upload tries (S3), with exponential backoff")
    upload_backoff_s: float = Field(1.0, ge=0, description="first retry delay; doubles per try")


class StageResources(_Section):
    num_cpus: float = 1
    num_gpus: float = 0
    concurrency: int = 2


class RayConfig(_Section):
    address: str | None = Field(None, description="None = local ray.init(); else a cluster address")
    stages: dict[str, StageResources] = Field(default_factory=lambda: {"unit": StageResources()})
    max_retries: int = 2


class EngineConfig(_Section):
    ingest: IngestConfig = IngestConfig()
    facts: FactsConfig = FactsConfig()
    plan: PlanConfig = PlanConfig()
    generate: GenerateConfig = GenerateConfig()
    check: CheckConfig = CheckConfig()
    dedup: DedupConfig = DedupConfig()
    release: ReleaseConfig = ReleaseConfig()
    ray: RayConfig = RayConfig()


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides; values are parsed as YAML (numbers, bools, lists)."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key.path=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> EngineConfig:
    data: dict = {}
    if path is not None:
        text = Path(path).read_text()
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
    return EngineConfig.model_validate(apply_overrides(data, overrides or []))
