"""The `program` checker: the spec's program, re-evaluated on the facts, selects exactly the
target set, and does so with the margins a viewer needs (engine.language.margins). It guards against
planner bugs, stale facts and programs that only hold on a sharp line; it cannot judge the text."""
from __future__ import annotations

from engine.checks.base import CheckResult
from engine.generate.base import SpecView
from engine.language.margins import refers_with_margin
from engine.language.programs import Scene, evaluate


class ProgramChecker:
    name = "program"

    def __init__(self, size_thresholds: tuple[float, float] = (0.01, 0.10)):
        self.size_thresholds = size_thresholds   # the facts' small / large area_frac

    def check(self, text: str, spec: SpecView, scene: Scene) -> CheckResult:
        got = evaluate(spec.program, scene)
        want = set(spec.target_ids)
        if got != want:
            return CheckResult(self.name, "fail",
                               f"program selects {sorted(got)} but the target set is {sorted(want)}")
        if not refers_with_margin(spec.program, scene, want, *self.size_thresholds):
            return CheckResult(self.name, "fail", "program holds only without margins: a viewer could "
                                                  "draw a position, order, size, colour or relation otherwise")
        return CheckResult(self.name, "pass")
