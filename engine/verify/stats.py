"""Precision estimates from human verdicts on a stratified sample, and the release gate.

Per stratum h (population N_h, n_h items judged, k_h judged correct):
- point estimate p_h = k_h / n_h;
- Wilson score interval with the finite population correction: the variance p(1-p)/n is
  scaled by (1 - f), f = n/N, so the interval is Wilson's at effective n / (1 - f). A stratum
  judged in full (f = 1) has no sampling error and its interval is the point.

Overall (the population is the union of the strata):
- stratified estimate p = sum_h W_h p_h, W_h = N_h / N;
- Wilson interval at p with the effective sample size
      n_eff = 1 / sum_h W_h^2 (1 - f_h) / n_h,
  the size of a simple random sample with the same variance if precision were equal across
  strata (Kish's design effect for unequal weights, with the finite population correction).
  Unlike the plug-in n_eff = p(1-p) / Var(p), it does not depend on the observed p_h, so it
  stays honest when most strata are all-correct (the plug-in variance would then be near zero
  and the interval falsely narrow). With one stratum it is exactly the per-stratum interval.
- A stratum with population but no verdicts makes the overall estimate undefined: the gate
  refuses (no evidence) rather than silently dropping part of the population.

Sample size per stratum for a target interval width w (full width, at p = 0.5, the worst
case): n0 = z^2 p(1-p) / (w/2)^2, then n = n0 / (1 + (n0 - 1) / N), rounded up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist


def z_for(confidence: float) -> float:
    """Two-sided normal quantile: 0.95 -> 1.95996."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(p: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for an observed proportion p over (effective) n trials."""
    if n <= 0:
        return 0.0, 1.0
    if math.isinf(n):
        return p, p
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # exact bounds at the edges (the formula gives them only up to rounding)
    low = 0.0 if p <= 0 else max(0.0, centre - half)
    high = 1.0 if p >= 1 else min(1.0, centre + half)
    return low, high


def wilson(k: int, n: int, z: float = 1.959963984540054, population: int | None = None) -> tuple[float, float]:
    """Wilson interval for k successes in n draws, optionally without replacement from `population`."""
    if k < 0 or n < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    return wilson_interval(k / n, fpc_effective_n(n, population), z)


def fpc_effective_n(n: int, population: int | None) -> float:
    """n / (1 - n/N): the simple-random-sample size with the same variance (inf for a census)."""
    if population is None:
        return float(n)
    if population < n:
        raise ValueError(f"sample of {n} exceeds its population of {population}")
    f = n / population
    return math.inf if f >= 1 else n / (1 - f)


def sample_size(population: int, ci_width: float, z: float = 1.959963984540054, p: float = 0.5) -> int:
    """Items to judge so a Wilson/normal interval at p is at most `ci_width` wide (full width)."""
    if not 0 < ci_width < 1:
        raise ValueError(f"--ci-width must lie in (0, 1), got {ci_width}")
    if population <= 0:
        return 0
    half = ci_width / 2
    n0 = z * z * p * (1 - p) / (half * half)
    n = n0 / (1 + (n0 - 1) / population)
    return max(1, min(population, math.ceil(n - 1e-9)))


@dataclass(frozen=True)
class StratumEstimate:
    stratum: str
    population: int
    sampled: int
    judged: int
    correct: int
    precision: float | None   # None without verdicts
    low: float | None
    high: float | None


@dataclass
class Estimate:
    strata: list[StratumEstimate]
    precision: float | None
    low: float | None
    high: float | None
    n_eff: float | None
    judged: int
    missing_strata: list[str] = field(default_factory=list)  # population but no verdicts
    confidence: float = 0.95


def estimate(strata: dict[str, dict], confidence: float = 0.95) -> Estimate:
    """strata: name -> {"population": N_h, "sampled": s_h, "judged": n_h, "correct": k_h}."""
    z = z_for(confidence)
    rows: list[StratumEstimate] = []
    total = sum(s["population"] for s in strata.values())
    missing, point, inv_n = [], 0.0, 0.0
    for name in sorted(strata):
        s = strata[name]
        N, n, k = int(s["population"]), int(s["judged"]), int(s["correct"])
        if n == 0:
            rows.append(StratumEstimate(name, N, int(s.get("sampled", 0)), 0, 0, None, None, None))
            if N > 0:
                missing.append(name)
            continue
        lo, hi = wilson(k, n, z, population=N)
        rows.append(StratumEstimate(name, N, int(s.get("sampled", n)), n, k, k / n, lo, hi))
        w = N / total
        point += w * k / n
        inv_n += w * w * (1 - n / N) / n
    judged = sum(r.judged for r in rows)
    if missing or judged == 0:
        return Estimate(rows, None, None, None, None, judged, missing, confidence)
    n_eff = math.inf if inv_n <= 0 else 1 / inv_n
    lo, hi = wilson_interval(point, n_eff, z)
    return Estimate(rows, point, lo, hi, n_eff, judged, missing, confidence)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    message: str


def gate(est: Estimate, threshold: float, each: bool = False) -> GateResult:
    """Pass when the lower bound of overall precision (and, with `each`, of every stratum) is >= threshold."""
    if est.judged == 0:
        return GateResult(False, f"gate {threshold:.3f}: no evidence: no item of this sample has a verdict yet "
                                 "(label with --interactive or --labels FILE)")
    if est.missing_strata:
        n = len(est.missing_strata)
        return GateResult(False, f"gate {threshold:.3f}: no evidence for {n} {'stratum' if n == 1 else 'strata'} "
                                 f"with instructions (no verdicts yet): {', '.join(est.missing_strata)}")
    failed = []
    if est.low < threshold:
        failed.append(f"overall lower bound {est.low:.3f}")
    if each:
        failed += [f"{s.stratum} lower bound {s.low:.3f}" for s in est.strata
                   if s.population > 0 and s.low < threshold]
    if failed:
        return GateResult(False, f"gate {threshold:.3f} failed: " + "; ".join(failed))
    what = "overall and every stratum" if each else "overall"
    return GateResult(True, f"gate {threshold:.3f} passed: {what} lower bound >= gate "
                            f"(overall {est.precision:.3f}, {est.confidence:.0%} CI {est.low:.3f}-{est.high:.3f})")
