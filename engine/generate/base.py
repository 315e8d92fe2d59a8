"""The Generator protocol: a backend turns a spec into instruction text.

Backends: `template` (embedded, grammar over referring programs), `vllm` and `openai`
(multimodal LLM). `feedback` carries the reasons earlier rounds were rejected, so a model
backend can correct itself; the template backend uses it to pick a different phrasing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from engine.language.programs import Program, Scene


@dataclass(frozen=True)
class SpecView:
    """What a generator gets for one spec (a row of schemas.specs.SPECS, decoded)."""
    spec_id: str
    image_id: str
    tier: str
    subtype: str
    cardinality: str
    target_ids: tuple[str, ...]
    program: Program

    @staticmethod
    def from_row(row: dict) -> "SpecView":
        return SpecView(row["spec_id"], row["image_id"], row["tier"], row["subtype"], row["cardinality"],
                        tuple(row["target_ids"]), Program.loads(row["program"]))


class Generator(Protocol):
    name: str          # backend name, e.g. "template"
    model: str         # model id, or grammar version for the template backend
    prompt_version: str

    def generate(self, spec: SpecView, scene: Scene, seed: int, feedback: list[str]) -> str: ...
