"""Heterogeneity intervals (metamsc.hetci) against metafor 3.8-1 confint() and published formulas.

Expected values: tests/reference/hetci.json, written by make_hetci_fixtures.R; each case
records its R calls (``fit <- rma(...)``, ``confint(fit, type=...)``).
"""

from __future__ import annotations

import json
from math import erf, exp, log, sqrt
from pathlib import Path

import numpy as np
import pytest

from metamsc import hetci

REF = Path(__file__).parent / "reference"
HETCI = json.loads((REF / "hetci.json").read_text())
CASES = HETCI["cases"]


def _val(x):
    return np.nan if x is None else x


def _params():
    for c in CASES:
        for tp in c["confint"]:
            yield pytest.param(c, tp, id=f"{c['id']}:{tp}")


@pytest.mark.parametrize("case,tp", list(_params()))
def test_tau2_ci_matches_metafor_confint(case, tp):
    exp_ = case["confint"][tp]
    y, v = np.array(case["yi"]), np.array(case["vi"])
    r = hetci.tau2_ci(y, v, case["tau2"], method=tp, level=case["level"], estimator=case["method"],
                      se_tau2=case["se_tau2"])
    # Q-profile and profile likelihood are roots (metafor's uniroot, tol 1e-12); Wald closed form
    rtol = 1e-10 if tp.startswith("Wald") else 1e-9
    for ours, key in ((r.low, "tau2_lb"), (r.high, "tau2_ub"), (r.i2_low, "I2_lb"),
                      (r.i2_high, "I2_ub"), (r.h2_low, "H2_lb"), (r.h2_high, "H2_ub")):
        if exp_[key] is None:  # R's NaN or Inf, both written as null
            assert not np.isfinite(ours), key
        else:
            assert ours == pytest.approx(exp_[key], rel=rtol, abs=1e-10), key
    assert (r.lb_sign, r.ub_sign, r.ci_null) == (exp_["lb_sign"], exp_["ub_sign"], exp_["ci_null"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_study_tests_and_typical_variance(case):
    t = hetci.study_tests(case["yi"], case["vi"])
    np.testing.assert_allclose(t.z, case["zi"], rtol=1e-12)
    np.testing.assert_allclose(t.p, case["pval"], rtol=1e-10, atol=1e-300)
    assert hetci.typical_variance(case["vi"]) == pytest.approx(case["vt"], rel=1e-12)


def test_grid_is_complete():
    ids = {(c["dataset"], c["method"]) for c in CASES}
    for ds in ("bcg", "hackshaw", "raudenbush", "pritz", "normand", "molloy", "k3", "k2"):
        for m in ("ML", "REML", "DL"):
            assert (ds, m) in ids
    assert all({"QP", "PL"} <= set(c["confint"]) for c in CASES if c["method"] != "DL")


def test_weighted_chi2_sf_against_closed_form():
    """Pairs of equal eigenvalues make a sum of exponentials, whose tail is a closed form:
    P(sum 2 lam_j E_j > q) = sum_j prod_{l != j} m_l/(m_l - m_j) exp(-m_j q), m = 1/(2 lam)."""
    lam = np.array([0.3, 1.1, 2.5])
    m = 1 / (2 * lam)
    for q in (0.2, 1.0, 4.0, 15.0):
        exact = sum(np.prod([m[l] / (m[l] - m[j]) for l in range(3) if l != j]) * exp(-m[j] * q)
                    for j in range(3))
        got = hetci.weighted_chi2_sf(q, np.repeat(lam, 2))
        assert got == pytest.approx(exact, rel=1e-9, abs=1e-12)


def test_genq_with_equal_variances_is_the_q_profile():
    """With equal vi every eigenvalue is a (v + tau^2), so GENQ reduces to the Q-profile."""
    y = np.array([0.1, 0.5, -0.2, 0.9, 0.35, 0.05])
    v = np.full(6, 0.04)
    qp = hetci.tau2_ci(y, v, 0.1, method="QP")
    for meth, w in (("GENQ", np.full(6, 3.0)), ("J", None)):
        g = hetci.tau2_ci(y, v, 0.1, method=meth, weights=w)
        assert (g.low, g.high) == pytest.approx((qp.low, qp.high), rel=1e-8)


def test_genq_coverage_of_its_own_distribution():
    """The GENQ bounds invert P(Q_a > q_obs | tau^2): at the bounds the tail equals alpha/2
    and 1 - alpha/2 (checked with an independent dense eigen-decomposition)."""
    case = next(c for c in CASES if c["id"] == "hetci:bcg:REML:95")
    y, v = np.array(case["yi"]), np.array(case["vi"])
    a = 1 / np.sqrt(v)
    r = hetci.tau2_ci(y, v, case["tau2"], method="J")
    s = a.sum()
    q_obs = np.sum(a * (y - np.sum(a * y) / s) ** 2)
    p = np.diag(a) - np.outer(a, a) / s  # test only: a small dense check of the secular solver
    for t, target in ((r.low, 0.025), (r.high, 0.975)):
        sq = np.diag(np.sqrt(v + t))
        lam = np.linalg.eigvalsh(sq @ p @ sq)
        assert hetci.weighted_chi2_sf(q_obs, lam[lam > 1e-12]) == pytest.approx(target, abs=1e-9)
        lam2 = hetci._secular_eigenvalues(a * (v + t), a**2 * (v + t), s)
        np.testing.assert_allclose(np.sort(lam2), np.sort(lam[lam > 1e-12]), rtol=1e-10)
    assert 0 < r.low < case["tau2"] < r.high


def _norm_q975():
    return 1.959963984540054


def test_h_and_i2_test_based_intervals():
    """Higgins & Thompson (2002), Appendix: SE(ln H) = (ln Q - ln(k-1))/(2(sqrt(2Q) - sqrt(2k-3)))
    for Q > k, else sqrt(1/(2(k-2)) (1 - 1/(3(k-2)^2))); CI exp(ln H -/+ z SE), floored at 1,
    and I^2 = (H^2 - 1)/H^2 (R meta's calcH/isquared)."""
    q, k = 152.23, 13  # dat.bcg log RR: Q = 152.2330 on 12 df
    h = sqrt(q / 12)
    se = (log(q) - log(12)) / (2 * (sqrt(2 * q) - sqrt(2 * k - 3)))
    lo, hi = exp(log(h) - _norm_q975() * se), exp(log(h) + _norm_q975() * se)
    r = hetci.h_i2_ci(q, k)
    assert (r.h, r.h_low, r.h_high) == pytest.approx((h, lo, hi), rel=1e-12)
    assert (r.i2, r.i2_low, r.i2_high) == pytest.approx(
        tuple(100 * (x * x - 1) / (x * x) for x in (h, lo, hi)), rel=1e-12)
    # Q <= k: the second SE form; H below 1 is reported as 1 and I^2 as 0
    r = hetci.h_i2_ci(3.0, 6)
    se = sqrt(1 / 8 * (1 - 1 / 48))
    assert (r.h, r.h_low, r.h_high) == pytest.approx((1.0, 1.0, exp(_norm_q975() * se)), rel=1e-12)
    assert r.i2 == 0.0 and r.i2_low == 0.0
    with pytest.raises(ValueError, match="k must be >= 2"):
        hetci.h_i2_ci(1.0, 1)


def test_rb_formula():
    """Crippa et al. (2016): Rb = mean(tau^2/(vi + tau^2)) = tau^2 / (k Var(mu_RE)), delta-method SE
    (Appendix D); checked against a direct evaluation of the formula on dat.bcg (REML)."""
    case = next(c for c in CASES if c["id"] == "hetci:bcg:REML:95")
    y, v, t2 = np.array(case["yi"]), np.array(case["vi"]), case["tau2"]
    r = hetci.rb(y, v, t2)
    k = y.size
    assert r.rb == pytest.approx(t2 / (k / np.sum(1 / (v + t2))), rel=1e-12)
    w = 1 / v
    s1, s2, s3 = w.sum(), (w**2).sum(), (w**3).sum()
    q = case["QE"]
    a = v * (s1 - s2 / s1)
    var_q = 2 * (k - 1) + 4 * (s1 - s2 / s1) * t2 + 2 * (s2 - 2 * s3 / s1 + (s2 / s1) ** 2) * t2**2
    se = np.mean(a / (q + a - (k - 1)) ** 2) * sqrt(var_q)
    assert r.se == pytest.approx(se, rel=1e-10)
    assert (r.low, r.high) == pytest.approx((max(0, r.rb - _norm_q975() * se),
                                             min(1, r.rb + _norm_q975() * se)), rel=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown tau2 CI method 'XX'"):
        hetci.tau2_ci([0.1, 0.2], [0.1, 0.1], 0.0, method="XX")
    with pytest.raises(ValueError, match="needs an ML or REML fit"):
        hetci.tau2_ci([0.1, 0.2, 0.5], [0.1, 0.1, 0.2], 0.0, method="PL", estimator="DL")
    with pytest.raises(ValueError, match="needs the fit's weights"):
        hetci.tau2_ci([0.1, 0.2, 0.5], [0.1, 0.1, 0.2], 0.0, method="GENQ")
    with pytest.raises(ValueError, match="vi must be > 0; study 2"):
        hetci.tau2_ci([0.1, 0.2], [0.1, 0.0], 0.0)
    with pytest.raises(ValueError, match="needs the fit's se_tau2"):
        hetci.tau2_ci([0.1, 0.2, 0.5], [0.1, 0.1, 0.2], 0.0, method="Wald")


def test_ruben_series_refuses_when_it_would_not_converge():
    with pytest.raises(ValueError, match="needs more than 10 terms"):
        hetci.weighted_chi2_sf(3.0, [0.01, 1.0, 50.0], max_terms=10)
