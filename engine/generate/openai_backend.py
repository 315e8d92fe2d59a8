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
  name, an unsupported schema) raise at once: retrying cannot fix configuration.

Text that is not JSON of the schema's shape is returned as it came, so the checkers reject it
with a reason instead of the unit crashing.

With generate.send_image the user message also carries the photo with the targets tinted and
a crop around them (JPEG data URLs) for multimodal servers; the unit's images and masks come
from `bind_unit`.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import time

import httpx
import numpy as np
import pandas as pd

from engine.config import GenerateConfig
from engine.generate.base import SpecView
from engine.generate.prompt import Prompt, load_prompt
from engine.imageio import load_rgb
from engine.lexicon import Lexicon, load_lexicon
from engine.masks import decode
from engine.programs import Scene

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
IMAGE_MAX_SIDE = 1024
TINT = np.array([255, 0, 0], dtype=np.float32)


class GeneratorServerError(RuntimeError):
    """The server could not be reached or answered something that is not a chat completion."""


def request_seed(seed: int, spec_id: str, round_: int) -> int:
    digest = hashlib.sha256(f"{seed}:{spec_id}:{round_}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def parse_instruction(content: str | None) -> str:
    """The `instruction` field of a JSON answer, or the text unchanged when it has none."""
    text = content or ""
    body = text.strip()
    if body.startswith("```"):             # models without structured output like code fences
        body = body.strip("`").removeprefix("json").strip()
    try:
        # strict=False: grammar engines let raw control characters into JSON strings
        data = json.loads(body, strict=False)
    except ValueError:
        return text
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
        self._client: httpx.Client | None = None
        self._unit: tuple[dict, dict] | None = None
        self.model = cfg.model or self._first_model()

    # -- HTTP --------------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            key = os.environ.get(self.cfg.api_key_env, "")
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            self._client = httpx.Client(timeout=self.cfg.timeout_s, headers=headers)
        return self._client

    def __getstate__(self):                # picklable for Ray: the client is rebuilt on use
        return self.__dict__ | {"_client": None}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        url = f"{self.base_url}{path}"
        tries = self.cfg.retries + 1
        delay = self.cfg.retry_backoff_s
        for attempt in range(tries):
            try:
                r = self.client.request(method, url, json=body)
            except httpx.TransportError as e:     # refused, reset, DNS, timeouts
                error = f"{type(e).__name__}: {e}"
            else:
                if r.status_code < 400:
                    try:
                        return r.json()
                    except ValueError:
                        raise GeneratorServerError(f"{method} {url}: answer is not JSON: {r.text[:300]!r}") from None
                if r.status_code not in RETRY_STATUS:
                    raise GeneratorServerError(f"{method} {url}: HTTP {r.status_code}: {r.text[:500]}")
                error = f"HTTP {r.status_code}: {r.text[:300]}"
            if attempt + 1 < tries:
                time.sleep(delay)
                delay *= 2
        raise GeneratorServerError(f"the OpenAI-compatible server at {self.base_url} did not answer "
                                   f"{method} {path} after {tries} tries; last error: {error}")

    def _first_model(self) -> str:
        data = self._request("GET", "/models")
        models = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)]
        if not models or not models[0]:
            raise GeneratorServerError(f"{self.base_url}/models lists no model; set generate.model")
        return models[0]

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
        schema = self.prompt.schema
        if self.cfg.structured_output == "response_format":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "instruction", "schema": schema, "strict": True}}
        elif self.cfg.structured_output == "structured_outputs":
            body["structured_outputs"] = {"json": schema}
        return body

    def generate(self, spec: SpecView, scene: Scene, seed: int, feedback: list[str]) -> str:
        data = self._request("POST", "/chat/completions", self.request_body(spec, scene, seed, feedback))
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise GeneratorServerError(f"{self.base_url}/chat/completions: not a chat completion: "
                                       f"{json.dumps(data)[:300]}") from None
        self.requests += 1
        return parse_instruction(message.get("content"))

    # -- images (generate.send_image) --------------------------------------------------------
    def bind_unit(self, images: pd.DataFrame, instances: pd.DataFrame) -> None:
        """The unit's images and instances, for the image parts of the prompt."""
        self._unit = ({r["image_id"]: r for r in images.to_dict("records")},
                      {r["instance_id"]: r for r in instances.to_dict("records")})

    def image_urls(self, spec: SpecView) -> list[str]:
        if self._unit is None:
            raise RuntimeError("generate.send_image needs the unit's images: call bind_unit(images, instances) "
                               "before generate")
        images, instances = self._unit
        if spec.image_id not in images:
            raise KeyError(f"image {spec.image_id!r} of spec {spec.spec_id} is not in the bound unit")
        rgb = self.load(images[spec.image_id]["uri"])
        h, w = rgb.shape[:2]
        mask = np.zeros((h, w), dtype=bool)
        for iid in spec.target_ids:
            mask |= decode(instances[iid]["rle"], h, w).astype(bool)
        overlay = rgb.astype(np.float32)
        overlay[mask] = 0.45 * overlay[mask] + 0.55 * TINT
        urls = [_jpeg_url(overlay.astype(np.uint8))]
        if mask.any():                        # a crop around the targets, with a margin
            ys, xs = np.nonzero(mask)
            my, mx = max(8, (ys.max() - ys.min()) // 5), max(8, (xs.max() - xs.min()) // 5)
            urls.append(_jpeg_url(rgb[max(0, ys.min() - my):ys.max() + my + 1, max(0, xs.min() - mx):xs.max() + mx + 1]))
        return urls


def _jpeg_url(rgb: np.ndarray) -> str:
    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
