"""The Checker protocol: does a candidate text pick out exactly its spec's target set?"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from engine.generate.base import SpecView
from engine.programs import Scene

Verdict = Literal["pass", "fail", "unverifiable"]


@dataclass(frozen=True)
class CheckResult:
    checker: str
    verdict: Verdict
    reason: str = ""

    def to_json(self) -> dict:
        return {"checker": self.checker, "verdict": self.verdict, "reason": self.reason}


class Checker(Protocol):
    name: str

    def check(self, text: str, spec: SpecView, scene: Scene) -> CheckResult: ...
