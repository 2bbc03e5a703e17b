"""Pooling conventions beyond the main metafor grid: PI rules, I^2 definitions, estimator
fallbacks, the result object's methods."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import metamsc as mm
from metamsc.tau2 import estimate_tau2

REF = Path(__file__).parent / "reference"
PI = json.loads((REF / "pi_rules.json").read_text())
RMA = {c["id"]: c for c in json.loads((REF / "rma.json").read_text())["cases"]}
_RULE = {"default": "metafor", "simple": "simple", "t": "t", "riley": "riley"}


@pytest.mark.parametrize("case", PI["cases"], ids=lambda c: c["id"])
def test_prediction_interval_rules_match_metafor(case):
    # R: predict(rma(yi, vi, method=..., test=...), pi.type=...)
    res = mm.pool(case["yi"], case["vi"], method=case["method"], test=case["test"],
                  pi=_RULE[case["pi_type"]])
    tol = 1e-7 if case["method"] == "REML" else 1e-10
    assert res.pi_lb == pytest.approx(case["expected"]["pi_lb"], rel=tol)
    assert res.pi_ub == pytest.approx(case["expected"]["pi_ub"], rel=tol)
    again = res.prediction_interval(rule=_RULE[case["pi_type"]])
    assert again == pytest.approx((res.pi_lb, res.pi_ub), rel=1e-14)


def _bcg():
    c = RMA["published:dat.bcg:logRR:REML:z"]
    return np.array(c["yi"]), np.array(c["vi"])


def test_meta_prediction_rules_by_formula():
    """meta's HTS (t(k-2), model SE) and HK (t(k-1), Hartung-Knapp SE) forms."""
    y, v = _bcg()
    z = mm.pool(y, v, method="REML")
    hk = mm.pool(y, v, method="REML", test="knha")
    k = len(y)
    t2 = z.tau2
    hts = mm.pool(y, v, method="REML", pi="HTS")
    crit = stats.t.isf(0.025, k - 2)
    sd = np.sqrt(z.se**2 + t2)
    assert (hts.pi_lb, hts.pi_ub) == pytest.approx((z.estimate - crit * sd, z.estimate + crit * sd), rel=1e-12)
    hkpi = mm.pool(y, v, method="REML", test="z", pi="HK")
    crit = stats.t.isf(0.025, k - 1)
    sd = np.sqrt(hk.se**2 + t2)
    assert (hkpi.pi_lb, hkpi.pi_ub) == pytest.approx((z.estimate - crit * sd, z.estimate + crit * sd), rel=1e-12)
    assert "Higgins, Thompson & Spiegelhalter" in hts.conventions.prediction_interval


def test_q_based_i2():
    y, v = _bcg()
    res = mm.pool(y, v, method="DL", i2="Q")
    q = res.q
    assert res.i2 == pytest.approx(100 * (q - 12) / q, rel=1e-12)
    assert res.i2 == pytest.approx(res.i2_q, rel=1e-12)
    assert res.conventions.i2_definition.startswith("Q-based")
    assert mm.pool(y, v).conventions.i2_definition.startswith("tau2-based")


@pytest.mark.parametrize("method", ["ML", "REML", "EB"])
def test_scoring_failure_falls_back_to_bracketed_root(method):
    """With one scoring step allowed, the bracketed root still finds the maximiser, and says so."""
    y, v = _bcg()
    full = estimate_tau2(y, v, method)
    cut = estimate_tau2(y, v, method, maxiter=1)
    assert cut.converged
    assert "did not converge" in cut.algorithm
    assert cut.tau2 == pytest.approx(full.tau2, rel=1e-9)


def test_reml_on_a_hard_input_is_the_likelihood_maximiser():
    """Extreme variance ratios: the estimate is the REML maximiser (checked on a grid)."""
    y = np.array([0.0, 3.0, -2.5, 10.0, 0.1])
    v = np.array([1e-6, 1e3, 5e-5, 2e4, 1e-2])
    fit = estimate_tau2(y, v, "REML")
    assert fit.converged

    def reml(t):
        w = 1 / (v + t)
        mu = np.sum(w * y) / np.sum(w)
        return -0.5 * (np.sum(np.log(v + t)) + np.log(np.sum(w)) + np.sum(w * (y - mu) ** 2))

    grid = np.linspace(0, 20 * max(fit.tau2, 1), 20001)
    best = grid[np.argmax([reml(t) for t in grid])]
    assert reml(fit.tau2) >= reml(best) - 1e-9


def test_boundary_is_flagged():
    res = mm.pool([0.1, 0.12, 0.11], [0.1, 0.2, 0.15], method="REML")
    assert res.tau2 == 0.0
    assert res.diagnostics.tau2_at_boundary
    assert res.i2 == 0.0


def test_k1_and_missing_values():
    res = mm.pool([0.5, np.nan], [0.1, 0.2], labels=["A", "B"])
    assert res.k == 1
    assert res.excluded[0].study == "B" and "missing" in res.excluded[0].reason
    assert res.tau2 == 0 and res.q == 0 and res.i2 == 0
    assert any("k = 1" in w for w in res.warnings)
    with pytest.raises(ValueError, match="no study left"):
        mm.pool([np.nan], [0.1])


def test_result_object_explains_itself():
    res = mm.pool_proportions([8, 2, 1, 2, 1], [17, 2, 1, 2, 1], measure="PFT", method="REML",
                              test="knha", labels=list("ABCDE"))
    text = res.summary()
    assert "Random-effects model (REML)" in text and "t(4)" in text
    assert "Miller (1978)" in text and "harmonic mean n = " in text
    assert "<pre>" in res._repr_html_()
    ci = res.confidence_interval()
    assert (ci.low, ci.high) == (res.ci_lb, res.ci_ub)
    wider = res.confidence_interval(0.99)
    assert wider.low < ci.low and wider.high > ci.high
    df = res.to_frame()
    assert list(df["study"]) == list("ABCDE")
    assert df["weight"].sum() == pytest.approx(100)
    with pytest.raises(Exception):
        res.tau2 = 1.0  # frozen
    assert not res.yi.flags.writeable


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown method"):
        mm.pool([1, 2], [1, 1], method="XX")
    with pytest.raises(ValueError, match="unknown test"):
        mm.pool([1, 2], [1, 1], test="hk")
    with pytest.raises(ValueError, match="unknown prediction-interval rule"):
        mm.pool([1, 2], [1, 1], pi="nope")
    with pytest.raises(ValueError, match="events > total"):
        mm.effect_size("PLO", events=[3], total=[2])
    with pytest.raises(ValueError, match="needs roles"):
        mm.effect_size("PLO", events=[3])


def test_no_study_is_a_one_line_error():
    """No study at all, or none usable: the same one-line error (the fast input check must not
    reach numpy's reduction error on an empty array)."""
    for yi, vi in (([], []), ([float("nan")], [0.1])):
        with pytest.raises(ValueError, match="^no study left to pool$"):
            mm.pool(yi, vi)


def test_review_data_where_metafor_default_scoring_fails():
    """R: rma(yi, vi, method="REML", test="knha") on the PASI-40 counts stops with "Fisher scoring
    algorithm did not converge" (maxiter 100); with maxiter = 1000 it gives tau^2 0.2103612,
    estimate 0.4682421. metamsc falls back to the bracketed root and says so."""
    res = mm.pool_proportions([2, 1, 8, 2, 1], [2, 1, 17, 2, 1], measure="PLO", test="knha")
    case = RMA["rma:pasi40:PLO:REML:knha:95"]["expected"]
    assert res.tau2 == pytest.approx(case["tau2"], rel=1e-8)
    assert res.estimate == pytest.approx(case["beta"], rel=1e-8)
    assert res.diagnostics.converged
    assert "did not converge in 100 iterations" in res.diagnostics.algorithm


EDGE = json.loads((REF / "edge.json").read_text())


@pytest.mark.parametrize("case", EDGE["cases"], ids=lambda c: c["id"])
def test_edge_cases_match_metafor(case):
    """k = 1, identical yi, user weights, GENQ without weights (R call in each case)."""
    e = case["expected"]
    kw = {"weights": case["weights"]} if case.get("weights") else {}
    if "error" in e:
        with pytest.raises(ValueError, match="needs study weights"):
            mm.pool(case["yi"], case["vi"], method=case["method"], test=case["test"], **kw)
        return
    r = mm.pool(case["yi"], case["vi"], method=case["method"], test=case["test"], **kw)
    assert r.test == e["test_used"]
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("pvalue", "pval"), ("ci_lb", "ci_lb"),
                         ("ci_ub", "ci_ub"), ("tau2", "tau2"), ("i2", "I2"), ("h2", "H2"), ("q", "QE")):
        assert getattr(r, ours) == pytest.approx(e[theirs], rel=1e-9, abs=1e-12), ours
    if e["se_tau2"] is not None:
        assert r.se_tau2 == pytest.approx(e["se_tau2"], rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(r.weights, e["weights"], rtol=1e-9)
    if any("k=1" in w for w in case.get("warnings", [])):
        assert any("test set to 'z'" in w for w in r.warnings)
