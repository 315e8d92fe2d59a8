"""The `vllm` generator: the `openai` generator's requests, sent to the engines the build owns.

`generate.backend=vllm` starts N vLLM replicas (pipelines/vllm_replicas.py: one Ray actor per
GPU, each holding one server process) and puts their API roots in `generate.endpoints`. This
backend differs from `openai` only where owning the engines makes a difference:

- requests go through `ReplicaClient`: all the specs of one image to the same replica (its
  prefix cache holds the image's prompt prefix), another replica while one restarts;
- with images, the message puts the plain photo first, then the per-target overlay and crop,
  then the text, so the photo's tokens are the prefix every spec of the image shares (the
  system prompt before it is shared by all requests);
- the served model name is fixed by the config (`generate.vllm.served_model_name`), and token
  usage is summed (`usage`) for the throughput bench.

Modes (generate.mode): `express` (the prompt carries the referring program; text the lexical
parser can verify) and `free` (a prompt with no program: the model writes natural language from
the picture and the facts, verified only by the multiple-choice check; engine/prompts/free_v1.yaml).
"""
from __future__ import annotations

import threading

from engine.config import GenerateConfig
from engine.generate.base import SpecView
from engine.generate.llm_client import jpeg_data_url, structured_output
from engine.generate.openai_backend import GeneratorServerError, OpenAIGenerator, parse_instruction, request_seed
from engine.generate.replicas import ReplicaClient
from engine.language.programs import Scene
from engine.lexicon import Lexicon
from engine.sources.imageio import load_rgb

PROGRAM_PLACEHOLDERS = ("$program_text", "$program_json", "${program_text}", "${program_json}")


def check_mode(mode: str, prompt_user: str, version: str) -> None:
    """Free mode must not hand the model a program; express mode must."""
    has_program = any(p in prompt_user for p in PROGRAM_PLACEHOLDERS)
    if mode == "free" and has_program:
        raise ValueError(f"generate.mode=free: prompt {version!r} gives the model the referring program; use a "
                         "free-language prompt (generate.prompt_version=free_v1)")
    if mode == "express" and not has_program:
        raise ValueError(f"generate.mode=express: prompt {version!r} has no $program_text/$program_json to express; "
                         "set generate.mode=free for a free-language prompt")


class VllmGenerator(OpenAIGenerator):
    name = "vllm"

    def __init__(self, cfg: GenerateConfig, lexicon: Lexicon | None = None, load=load_rgb):
        self._lock = threading.Lock()
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.cfg_endpoints = list(cfg.endpoints)
        super().__init__(cfg.model_copy(update={"model": cfg.model or cfg.vllm.served_model_name}), lexicon, load)
        check_mode(cfg.mode, self.prompt.data.user, self.prompt_version)
        self.http = ReplicaClient.from_config(cfg, self.cfg_endpoints, error=GeneratorServerError)
        self.base_url = self.http.base_url

    def request_body(self, spec: SpecView, scene: Scene, seed: int, feedback: list[str]) -> dict:
        system, user = self.prompt.render(spec, scene, self.lexicon, feedback)
        content: str | list = user
        if self.cfg.send_image:
            photo = jpeg_data_url(self.unit_images.pixels(spec.image_id, spec.spec_id))
            content = [{"type": "image_url", "image_url": {"url": u}} for u in [photo, *self.image_urls(spec)]]
            content.append({"type": "text", "text": self.prompt.data.image_note + "\n\n" + user})
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": content}],
            "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens,
            "seed": request_seed(seed, spec.spec_id, len(feedback)),
        }
        return body | structured_output(self.cfg.structured_output, "instruction", self.prompt.schema)

    def generate(self, spec: SpecView, scene: Scene, seed: int, feedback: list[str]) -> str:
        message = self.http.chat(self.request_body(spec, scene, seed, feedback), key=spec.image_id)
        usage = message.get("usage") or {}
        with self._lock:
            self.requests += 1
            for k in self.usage:
                self.usage[k] += int(usage.get(k) or 0)
        return parse_instruction(message.get("content"))

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_count_lock")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock, self._count_lock = threading.Lock(), threading.Lock()
