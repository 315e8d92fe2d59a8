"""The `program` checker: the spec's program, re-evaluated on the facts, selects exactly the
target set. It guards against planner bugs and stale facts; it cannot judge the text."""
from __future__ import annotations

from engine.checks.base import CheckResult
from engine.generate.base import SpecView
from engine.programs import Scene, evaluate


class ProgramChecker:
    name = "program"

    def check(self, text: str, spec: SpecView, scene: Scene) -> CheckResult:
        got = evaluate(spec.program, scene)
        want = set(spec.target_ids)
        if got == want:
            return CheckResult(self.name, "pass")
        return CheckResult(self.name, "fail",
                           f"program selects {sorted(got)} but the target set is {sorted(want)}")
