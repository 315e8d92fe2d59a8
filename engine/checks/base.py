"""The Checker protocol: does a candidate text pick out exactly its spec's target set?"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from engine.generate.base import SpecView
from engine.language.programs import Scene

Verdict = Literal["pass", "fail", "unverifiable"]


@dataclass(frozen=True)
class CheckResult:
    checker: str
    verdict: Verdict
    reason: str = ""
    # what a model-backed checker asked and got (e.g. mllm_choice's option mapping), for audits
    detail: dict | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        d = {"checker": self.checker, "verdict": self.verdict, "reason": self.reason}
        return d | {"detail": self.detail} if self.detail is not None else d


class Checker(Protocol):
    name: str

    def check(self, text: str, spec: SpecView, scene: Scene) -> CheckResult: ...
