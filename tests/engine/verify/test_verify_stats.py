import math
import random

import pytest

from engine.verify.stats import estimate, gate, sample_size, wilson, wilson_interval, z_for

Z95 = 1.959963984540054


@pytest.mark.parametrize("k,n,low,high", [
    # published Wilson score intervals at 95% (e.g. Newcombe 1998, Table I; Brown, Cai & DasGupta 2001)
    (8, 10, 0.4902, 0.9433),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (5, 10, 0.2366, 0.7634),
    (81, 263, 0.2553, 0.3662),   # Newcombe's example 81/263
    (15, 148, 0.0624, 0.1605),   # Newcombe's example 15/148
])
def test_wilson_matches_published_values(k, n, low, high):
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=6e-5)
    assert hi == pytest.approx(high, abs=6e-5)


def _score_bounds(k: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson interval by its definition: the p where |k/n - p| <= z sqrt(p(1-p)/n), by bisection."""
    phat = k / n
    inside = lambda p: abs(phat - p) <= z * math.sqrt(p * (1 - p) / n)

    def edge(a, b):  # a inside, b outside
        for _ in range(80):
            m = (a + b) / 2
            a, b = (m, b) if inside(m) else (a, m)
        return a

    lo = 0.0 if k == 0 else edge(phat, 0.0)
    hi = 1.0 if k == n else edge(phat, 1.0)
    return lo, hi


@pytest.mark.parametrize("k,n", [(1, 3), (7, 9), (30, 31), (2, 50), (499, 500)])
def test_wilson_is_the_score_test_inversion(k, n):
    lo, hi = wilson(k, n)
    want = _score_bounds(k, n, Z95)
    assert (lo, hi) == pytest.approx(want, abs=1e-9)


def test_wilson_edge_cases_and_finite_population():
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(4, 4, population=4) == (1.0, 1.0)          # a census has no sampling error
    assert wilson(3, 4, population=4) == (0.75, 0.75)
    free, fpc = wilson(8, 10), wilson(8, 10, population=20)
    assert fpc[0] > free[0] and fpc[1] < free[1]             # half the population seen: narrower
    assert wilson(8, 10, population=10**9) == pytest.approx(free, abs=1e-6)
    with pytest.raises(ValueError):
        wilson(11, 10)
    with pytest.raises(ValueError):
        wilson(5, 10, population=9)
    assert z_for(0.95) == pytest.approx(Z95)
    assert z_for(0.99) == pytest.approx(2.5758293, abs=1e-6)


@pytest.mark.parametrize("population,width,want", [
    # the standard survey-table numbers for 95% and +-5% (width 0.1) / +-10% (width 0.2)
    (10**9, 0.1, 385), (1000, 0.1, 278), (100, 0.1, 80), (500, 0.1, 218), (10**9, 0.2, 97), (10, 0.1, 10),
])
def test_sample_size_matches_survey_tables(population, width, want):
    assert sample_size(population, width) == want


def test_sample_size_reaches_the_requested_width():
    for N in (30, 200, 5000):
        n = sample_size(N, 0.1)
        lo, hi = wilson(n // 2, n, population=N)
        assert hi - lo <= 0.1 + 0.005                          # Wilson at p=0.5 ~ the normal width
        if n > 1:
            lo, hi = wilson((n - 1) // 2, n - 1, population=N)
            assert hi - lo > 0.1 - 0.01                        # and one fewer would not quite do


def test_single_stratum_overall_equals_its_own_interval():
    est = estimate({"a": {"population": 500, "sampled": 40, "judged": 40, "correct": 31}})
    lo, hi = wilson(31, 40, population=500)
    assert est.precision == pytest.approx(31 / 40)
    assert (est.low, est.high) == pytest.approx((lo, hi))
    assert (est.strata[0].low, est.strata[0].high) == pytest.approx((lo, hi))


def test_stratified_estimate_weights_by_population():
    est = estimate({
        "big": {"population": 9000, "sampled": 50, "judged": 50, "correct": 50},
        "small": {"population": 1000, "sampled": 50, "judged": 50, "correct": 25},
    })
    assert est.precision == pytest.approx(0.9 * 1.0 + 0.1 * 0.5)
    # effective n from the weights: 1 / sum W^2 (1-f)/n
    inv = 0.9 ** 2 * (1 - 50 / 9000) / 50 + 0.1 ** 2 * (1 - 50 / 1000) / 50
    assert est.n_eff == pytest.approx(1 / inv)
    assert (est.low, est.high) == pytest.approx(wilson_interval(est.precision, 1 / inv))
    # an all-correct big stratum does not make the interval collapse
    assert est.high - est.low > 0.02


def test_missing_stratum_leaves_overall_undefined_and_the_gate_fails():
    est = estimate({
        "a": {"population": 100, "sampled": 10, "judged": 10, "correct": 10},
        "b": {"population": 50, "sampled": 10, "judged": 0, "correct": 0},
    })
    assert est.precision is None and est.missing_strata == ["b"]
    res = gate(est, 0.5)
    assert not res.passed and "no evidence" in res.message and "b" in res.message


def test_gate_without_any_verdict_says_no_evidence():
    est = estimate({"a": {"population": 100, "sampled": 10, "judged": 0, "correct": 0}})
    res = gate(est, 0.9)
    assert not res.passed and "no evidence" in res.message


def test_gate_compares_the_lower_bound():
    strata = {
        "a": {"population": 10**6, "sampled": 400, "judged": 400, "correct": 398},
        "b": {"population": 10**6, "sampled": 400, "judged": 400, "correct": 380},
    }
    est = estimate(strata)
    assert gate(est, est.low - 1e-6).passed
    assert not gate(est, est.low + 1e-6).passed
    b_low = next(s.low for s in est.strata if s.stratum == "b")
    assert b_low < est.low
    # --gate-each: the weakest stratum decides
    between = (b_low + est.low) / 2
    assert gate(est, between).passed
    res = gate(est, between, each=True)
    assert not res.passed and "b lower bound" in res.message


def test_stratified_interval_covers_the_truth():
    """Coverage of the overall interval over repeated stratified samples, strata of unequal size
    and precision (truth known): close to the nominal 95%, not far below it."""
    rng = random.Random(1234)
    pops = {"a": (4000, 0.97), "b": (800, 0.80), "c": (200, 0.60)}
    items = {h: [1] * round(N * p) + [0] * (N - round(N * p)) for h, (N, p) in pops.items()}
    truth = sum(sum(v) for v in items.values()) / sum(len(v) for v in items.values())
    n_h = {"a": 60, "b": 40, "c": 30}
    hits, trials = 0, 600
    for _ in range(trials):
        strata = {}
        for h, v in items.items():
            s = rng.sample(v, n_h[h])
            strata[h] = {"population": len(v), "sampled": n_h[h], "judged": n_h[h], "correct": sum(s)}
        est = estimate(strata)
        hits += est.low <= truth <= est.high
    assert hits / trials >= 0.92
