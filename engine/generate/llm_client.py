"""HTTP plumbing shared by the model backends that talk to an OpenAI-compatible chat server
(the `openai` generator, the `mllm_choice` checker): `vllm serve`, llama.cpp, OpenAI itself.

- `ChatClient` sends requests with retries: connection errors, timeouts, 429 and 5xx are
  retried with exponential backoff; a server that stays unreachable raises the caller's error
  class naming its URL. Other HTTP errors (a bad model name, an unsupported schema) raise at
  once: retrying cannot fix configuration. It pickles without its connection pool (Ray).
- `structured_output` is the body field that constrains the answer to a JSON schema
  (OpenAI's `response_format`, or vLLM's `structured_outputs`; never the removed `guided_json`).
- `derive_seed` makes request seeds reproducible from their inputs.
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

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
IMAGE_MAX_SIDE = 1024


class LLMServerError(RuntimeError):
    """The server could not be reached or answered something that is not a chat completion."""


def derive_seed(*parts) -> int:
    """A 31-bit seed from its parts (joined with ':'), stable across runs and machines."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def parse_json_answer(content: str | None):
    """The JSON value of a model's answer (code fences tolerated), or None if it is not JSON."""
    body = (content or "").strip()
    if body.startswith("```"):             # models without structured output like code fences
        body = body.strip("`").removeprefix("json").strip()
    try:
        # strict=False: grammar engines let raw control characters into JSON strings
        return json.loads(body, strict=False)
    except ValueError:
        return None


def structured_output(mode: str, name: str, schema: dict) -> dict:
    """Body fields asking the server to answer with JSON of `schema` (mode: a config value)."""
    if mode == "response_format":
        return {"response_format": {"type": "json_schema",
                                     "json_schema": {"name": name, "schema": schema, "strict": True}}}
    if mode == "structured_outputs":
        return {"structured_outputs": {"json": schema}}
    return {}


def jpeg_data_url(rgb: np.ndarray) -> str:
    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class ChatClient:
    def __init__(self, base_url: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 120,
                 retries: int = 3, retry_backoff_s: float = 1.0, error: type[Exception] = LLMServerError):
        self.base_url = base_url.rstrip("/")
        self.api_key_env, self.timeout_s = api_key_env, timeout_s
        self.retries, self.retry_backoff_s = retries, retry_backoff_s
        self.error = error
        self._client: httpx.Client | None = None

    @classmethod
    def from_config(cls, cfg, base_url: str | None = None, error: type[Exception] = LLMServerError) -> ChatClient:
        """From a config section with base_url, api_key_env, timeout_s, retries, retry_backoff_s."""
        return cls(base_url or cfg.base_url, cfg.api_key_env, cfg.timeout_s, cfg.retries, cfg.retry_backoff_s, error)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            key = os.environ.get(self.api_key_env, "")
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            self._client = httpx.Client(timeout=self.timeout_s, headers=headers)
        return self._client

    def __getstate__(self):                # picklable for Ray: the client is rebuilt on use
        return self.__dict__ | {"_client": None}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def attempt(self, method: str, path: str, body: dict | None = None) -> tuple[dict | None, str]:
        """One try: (answer, "") or (None, the error) when a retry may help (connection errors,
        timeouts, 429, 5xx). Raises `self.error` at once for what retrying cannot fix."""
        url = f"{self.base_url}{path}"
        try:
            r = self.client.request(method, url, json=body)
        except httpx.TransportError as e:     # refused, reset, DNS, timeouts
            return None, f"{type(e).__name__}: {e}"
        if r.status_code < 400:
            try:
                return r.json(), ""
            except ValueError:
                raise self.error(f"{method} {url}: answer is not JSON: {r.text[:300]!r}") from None
        if r.status_code not in RETRY_STATUS:
            raise self.error(f"{method} {url}: HTTP {r.status_code}: {r.text[:500]}")
        return None, f"HTTP {r.status_code}: {r.text[:300]}"

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        tries = self.retries + 1
        delay = self.retry_backoff_s
        for attempt in range(tries):
            data, error = self.attempt(method, path, body)
            if data is not None:
                return data
            if attempt + 1 < tries:
                time.sleep(delay)
                delay *= 2
        raise self.error(f"the OpenAI-compatible server at {self.base_url} did not answer "
                         f"{method} {path} after {tries} tries; last error: {error}")

    def first_model(self, hint: str = "set the model in the config") -> str:
        data = self.request("GET", "/models")
        models = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)]
        if not models or not models[0]:
            raise self.error(f"{self.base_url}/models lists no model; {hint}")
        return models[0]

    def chat(self, body: dict) -> dict:
        """POST /chat/completions; the first choice's message ({"role", "content", ...})."""
        data = self.request("POST", "/chat/completions", body)
        try:
            return data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise self.error(f"{self.base_url}/chat/completions: not a chat completion: "
                             f"{json.dumps(data)[:300]}") from None


class UnitImages:
    """The bound unit's images and masks, for model backends that send pictures.

    `bind(images, instances)` is called once per unit (engine.stages.UnitWorker.bind);
    `pixels(image_id)` reads the image and `mask(instance_id, h, w)` decodes one instance.
    """

    def __init__(self, load, setting: str):
        self.load, self.setting = load, setting
        self._images: dict[str, dict] | None = None
        self._instances: dict[str, dict] = {}

    def bind(self, images, instances) -> None:
        self._images = {r["image_id"]: r for r in images.to_dict("records")}
        self._instances = {r["instance_id"]: r for r in instances.to_dict("records")}

    def pixels(self, image_id: str, spec_id: str):
        if self._images is None:
            raise RuntimeError(f"{self.setting} needs the unit's images: call bind_unit(images, instances) first")
        if image_id not in self._images:
            raise KeyError(f"image {image_id!r} of spec {spec_id} is not in the bound unit")
        row = self._images[image_id]  # drawn size decides EXIF orientation (engine.sources.imageio)
        size = (int(row["width"]), int(row["height"])) if row.get("width") and row.get("height") else None
        return self.load(row["uri"], size)

    def mask(self, instance_id: str, h: int, w: int):
        from engine.scene.masks import decode

        return decode(self._instances[instance_id]["rle"], h, w).astype(bool)

