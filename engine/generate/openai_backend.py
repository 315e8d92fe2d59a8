"""The `openai` generator: instructions from any OpenAI-compatible chat server.

Works with `vllm serve` / `python -m vllm.entrypoints.openai.api_server`, llama.cpp's
`llama-server` and OpenAI itself. Each candidate is one POST /chat/completions:

- the prompt comes from a versioned file (engine/prompts/<generate.prompt_version>.yaml) and
  carries the tier definitions, the target's facts, the referring program, the cardinality and
  the reasons earlier rounds were rejected;
- the answer is constrained to the prompt file's JSON schema ({"instruction": "..."}) through
  `response_format` (OpenAI json_schema, the portable default) or vLLM's `structured_outputs`
  extra field. vLLM's old `guided_json` field is not used: current servers ignore it silently;
- the request seed is derived from (generate.seed, spec id, round), so a rerun asks the same
  questions and a later round samples afresh;
- connection errors, timeouts, 429 and 5xx are retried with exponential backoff; a server that
  stays unreachable raises GeneratorServerError naming its URL. Other HTTP errors (a bad model
  name, an unsupported schema) raise at once: retrying cannot fix configuration. The HTTP
  client is engine/generate/llm_client.py, shared with the `mllm_choice` checker.

Text that is not JSON of the schema's shape is returned as it came, so the checkers reject it
with a reason instead of the unit crashing.

With generate.send_image the user message also carries the photo with the targets tinted and
a crop around them (JPEG data URLs) for multimodal servers; the unit's images and masks come
from `bind_unit`.
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from engine.config import GenerateConfig
from engine.generate.base import SpecView
from engine.generate.prompt import Prompt, load_prompt
from engine.sources.imageio import load_rgb
from engine.lexicon import Lexicon, load_lexicon
from engine.generate.llm_client import (
    UnitImages,
    ChatClient,
    LLMServerError,
    derive_seed,
    parse_json_answer,
    structured_output,
)
from engine.generate.llm_client import jpeg_data_url as _jpeg_url
from engine.language.programs import Scene

TINT = np.array([255, 0, 0], dtype=np.float32)


class GeneratorServerError(LLMServerError):
    """The server could not be reached or answered something that is not a chat completion."""


def request_seed(seed: int, spec_id: str, round_: int) -> int:
    return derive_seed(seed, spec_id, round_)


def parse_instruction(content: str | None) -> str:
    """The `instruction` field of a JSON answer, or the text unchanged when it has none."""
    text = content or ""
    data = parse_json_answer(text)
    if isinstance(data, dict) and isinstance(data.get("instruction"), str):
        return data["instruction"].strip()
    return text


class OpenAIGenerator:
    name = "openai"

    def __init__(self, cfg: GenerateConfig, lexicon: Lexicon | None = None, load=load_rgb):
        self.cfg = cfg
        self.lexicon = lexicon or load_lexicon()
        self.prompt: Prompt = load_prompt(cfg.prompt_version, cfg.prompt_dir)
        self.prompt_version = self.prompt.version
        self.base_url = cfg.base_url.rstrip("/")
        self.load = load
        self.requests = 0                  # chat completions answered, for tests and logs
        self._count_lock = threading.Lock()   # specs may run in threads (generate.concurrency)
        self.http = ChatClient.from_config(cfg, self.base_url, error=GeneratorServerError)
        self.unit_images = UnitImages(load, "generate.send_image")
        self.model = cfg.model or self._first_model()

    # -- HTTP --------------------------------------------------------------------------------
    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        return self.http.request(method, path, body)

    def _first_model(self) -> str:
        return self.http.first_model("set generate.model")

    # -- the Generator protocol --------------------------------------------------------------
    def request_body(self, spec: SpecView, scene: Scene, seed: int, feedback: list[str]) -> dict:
        system, user = self.prompt.render(spec, scene, self.lexicon, feedback)
        content: str | list = user
        if self.cfg.send_image:
            content = [{"type": "text", "text": user + "\n\n" + self.prompt.data.image_note}]
            content += [{"type": "image_url", "image_url": {"url": url}} for url in self.image_urls(spec)]
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": content}],
            "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens,
            "seed": request_seed(seed, spec.spec_id, len(feedback)),
        }
        return body | structured_output(self.cfg.structured_output, "instruction", self.prompt.schema)

    def generate(self, spec: SpecView, scene: Scene, seed: int, feedback: list[str]) -> str:
        message = self.http.chat(self.request_body(spec, scene, seed, feedback))
        with self._count_lock:
            self.requests += 1
        return parse_instruction(message.get("content"))

    # -- images (generate.send_image) --------------------------------------------------------
    def bind_unit(self, images: pd.DataFrame, instances: pd.DataFrame) -> None:
        """The unit's images and instances, for the image parts of the prompt."""
        self.unit_images.bind(images, instances)

    def image_urls(self, spec: SpecView) -> list[str]:
        rgb = self.unit_images.pixels(spec.image_id, spec.spec_id)
        h, w = rgb.shape[:2]
        mask = np.zeros((h, w), dtype=bool)
        for iid in spec.target_ids:
            mask |= self.unit_images.mask(iid, h, w)
        overlay = rgb.astype(np.float32)
        overlay[mask] = 0.45 * overlay[mask] + 0.55 * TINT
        urls = [_jpeg_url(overlay.astype(np.uint8))]
        if mask.any():                        # a crop around the targets, with a margin
            ys, xs = np.nonzero(mask)
            my, mx = max(8, (ys.max() - ys.min()) // 5), max(8, (xs.max() - xs.min()) // 5)
            urls.append(_jpeg_url(rgb[max(0, ys.min() - my):ys.max() + my + 1, max(0, xs.min() - mx):xs.max() + mx + 1]))
        return urls

