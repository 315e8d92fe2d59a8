"""Requests to several replicas of one model server, with affinity and fail-over.

`generate.backend=vllm` runs N engines (pipelines/vllm_replicas.py); a unit worker spreads its
requests over them through `ReplicaClient`:

- affinity: a request with a key (the image id) goes first to replica hash(key) mod N, so all
  the specs of one image meet the image's prompt prefix in the same engine's prefix cache;
  requests without a key go round-robin;
- fail-over: a replica that refuses, times out or answers 5xx is skipped for the next one in
  order; after a full pass the client backs off (doubling) and tries them all again, up to
  `retries` passes. A replica being restarted by its actor is thus bridged by the others, and a
  unit only fails when no replica answers for the whole back-off.
"""
from __future__ import annotations

import itertools
import threading
import time
import zlib

from engine.generate.llm_client import ChatClient, LLMServerError


class ReplicaClient:
    def __init__(self, base_urls: list[str], api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 120,
                 retries: int = 3, retry_backoff_s: float = 1.0, error: type[Exception] = LLMServerError):
        if not base_urls:
            raise error("no engine replicas: generate.endpoints is empty (generate.backend=vllm runs through the "
                        "Ray fan-out, which starts the replicas and fills it)")
        self.replicas = [ChatClient(u, api_key_env, timeout_s, 0, 0.0, error) for u in base_urls]
        self.base_url = ", ".join(base_urls)
        self.retries, self.retry_backoff_s, self.error = retries, retry_backoff_s, error
        self.served = [0] * len(base_urls)      # answers per replica, for tests and logs
        self._rr = itertools.count()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg, base_urls: list[str], error: type[Exception] = LLMServerError) -> "ReplicaClient":
        return cls(base_urls, cfg.api_key_env, cfg.timeout_s, cfg.retries, cfg.retry_backoff_s, error)

    def __getstate__(self):                # picklable for Ray (locks and counters are per process)
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_rr")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._rr, self._lock = itertools.count(), threading.Lock()

    def close(self) -> None:
        for r in self.replicas:
            r.close()

    def order(self, key: str | None) -> list[int]:
        """Replica indices to try, the preferred one first."""
        n = len(self.replicas)
        first = zlib.crc32(key.encode()) % n if key is not None else next(self._rr) % n
        return [(first + k) % n for k in range(n)]

    def request(self, method: str, path: str, body: dict | None = None, key: str | None = None) -> dict:
        delay, errors = self.retry_backoff_s, {}
        for rnd in range(self.retries + 1):
            for i in self.order(key):
                data, error = self.replicas[i].attempt(method, path, body)
                if data is not None:
                    with self._lock:
                        self.served[i] += 1
                    return data
                errors[self.replicas[i].base_url] = error
            if rnd < self.retries:
                time.sleep(delay)
                delay *= 2
        last = "; ".join(f"{u}: {e}" for u, e in errors.items())
        raise self.error(f"no engine replica answered {method} {path} after {self.retries + 1} rounds over "
                         f"{len(self.replicas)} replicas; last errors: {last}")

    def first_model(self, hint: str = "set the model in the config") -> str:
        data = self.request("GET", "/models")
        models = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)]
        if not models or not models[0]:
            raise self.error(f"{self.base_url}: /models lists no model; {hint}")
        return models[0]

    def chat(self, body: dict, key: str | None = None) -> dict:
        """POST /chat/completions on a replica; the first choice's message, with `usage` added."""
        data = self.request("POST", "/chat/completions", body, key)
        try:
            message = dict(data["choices"][0]["message"])
        except (KeyError, IndexError, TypeError):
            raise self.error(f"{self.base_url}: not a chat completion: {str(data)[:300]}") from None
        message["usage"] = data.get("usage") or {}
        return message
