"""metamsc.glmm against metafor 3.8-1 rma.glmm (lme4 1.1-31, nAGQ = 7).

Expected values: tests/reference/glmm.json (written by tests/reference/make_fixtures.R).
The tests never call R.

Agreement achieved (max relative error over estimate, SE, tau^2):

* PLO ML (dat.pritz1997, dat.debruin2009, zeros, pasi40): <= 1.4e-5 (CI and
  PI bounds <= 3.3e-5 of |estimate| + SE). The remaining difference is lme4's:
  its Nelder-Mead stops slightly early (our optimum has the higher AGQ
  log-likelihood, by 1e-11 to 5e-10, and the deviance functions agree to
  1e-9). Tested at rtol 5e-5.
* PLO EE, IRLN ML/EE: <= 1.4e-6 (metafor's SE comes from the IRLS weights of
  the last-but-one iteration). Tested at rtol 3e-6.
* OR UM.FS EE (dat.nielweise2007): <= 4e-7. UM.FS ML: 8.8e-4; lme4 warns that
  it did not converge there (max|grad| = 0.0089) and its deviance is 1.5e-4
  above ours at its estimates, so it is tested at rtol 2e-3.
* QE_Wld <= 6.2e-7, QE_LRT <= 3.2e-15 (saturated model fitted as R's glm.fit).
* p-values: relative error / max(1, z^2) <= 1e-4 (a p-value's relative error
  is about z^2 times that of z).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from metamsc import glmm
from metamsc.glmm import fit_glmm
from metamsc.glmm.likelihood import single_group

REF = Path(__file__).parent / "reference"
GLMM = json.loads((REF / "glmm.json").read_text())
CASES = {c["id"]: c for c in GLMM["cases"]}

PRITZ = CASES["glmm:dat.pritz1997:PLO:ML"]["inputs"]
ZEROS = CASES["glmm:zeros:PLO:ML"]["inputs"]
RATES = CASES["glmm:rates:IRLN:ML"]["inputs"]


def _run(case, **kw):
    inp = case["inputs"]
    if case["measure"] == "PLO":
        return fit_glmm(inp["xi"], inp["ni"], method=case["method"], labels=case["slab"], **kw)
    if case["measure"] == "IRLN":
        return fit_glmm(inp["xi"], time=inp["ti"], measure="IRLN", method=case["method"], **kw)
    return fit_glmm(inp["ai"], inp["n1i"], events2=inp["ci"], total2=inp["n2i"], measure="OR",
                    model=case["model"], method=case["method"], labels=case["slab"], **kw)


def _close(ours, theirs, rtol, name, atol=0.0):
    if theirs is None:
        assert ours is None or not np.isfinite(ours), f"{name}: metafor gives NA, we give {ours}"
        return
    assert ours == pytest.approx(theirs, rel=rtol, abs=atol), name


# cases we support with their tolerance (see the module docstring)
SUPPORTED = {
    "glmm:dat.pritz1997:PLO:ML": 5e-5,
    "glmm:dat.debruin2009:PLO:ML": 5e-5,
    "glmm:zeros:PLO:ML": 5e-5,
    "glmm:pasi40:PLO:ML": 5e-5,
    "glmm:dat.pritz1997:PLO:EE": 3e-6,
    "glmm:dat.debruin2009:PLO:EE": 3e-6,
    "glmm:zeros:PLO:EE": 3e-6,
    "glmm:pasi40:PLO:EE": 3e-6,
    "glmm:rates:IRLN:ML": 3e-6,
    "glmm:rates:IRLN:EE": 3e-6,
    "glmm:dat.nielweise2007:OR:UM.FS:EE": 3e-6,
    "glmm:dat.nielweise2007:OR:UM.FS:ML": 2e-3,
}


@pytest.mark.parametrize("cid", sorted(SUPPORTED))
def test_against_metafor(cid):
    case = CASES[cid]
    e = case["expected"]
    tol = SUPPORTED[cid]
    r = _run(case)
    assert r.k == e["k"]
    assert r.diagnostics.converged
    scale = abs(e["beta"]) + e["se"]  # interval bounds near 0: relative to the estimate's scale
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("statistic", "zval")):
        _close(getattr(r, ours), e[theirs], tol, ours)
    for name in ("ci_lb", "ci_ub", "pi_lb", "pi_ub"):
        _close(getattr(r, name), e[name], tol, name, atol=tol * scale)
    # tau^2 = 0 (boundary): lme4's optimiser stops at ~1e-10 or exactly 0
    _close(r.tau2, e["tau2"], tol, "tau2", atol=1e-8)
    _close(r.i2, e["I2"], tol, "I2", atol=1e-6)
    _close(r.h2, e["H2"], tol, "H2")
    # a p-value's relative error grows with z^2 times the relative error of z
    _close(r.pvalue, e["pval"], tol * max(1.0, e["zval"] ** 2), "pvalue")
    # heterogeneity tests against the saturated model (no optimiser involved)
    _close(r.q, e["QE_Wld"], 1e-6, "QE_Wld")
    _close(r.q_pvalue, e["QEp_Wld"], 1e-6, "QEp_Wld")
    _close(r.qe_lrt, e["QE_LRT"], 1e-10, "QE_LRT")
    _close(r.qe_lrt_pvalue, e["QEp_LRT"], 1e-9, "QEp_LRT")
    assert r.q_df == e["QE_df"]
    nat = e["natural"]
    assert r.natural is not None
    for ours, theirs in (("estimate", "pred"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"),
                         ("pi_lb", "pi_lb"), ("pi_ub", "pi_ub")):
        _close(getattr(r.natural, ours), nat[theirs], tol, f"natural.{ours}", atol=tol * nat["pred"])


def test_every_fixture_case_is_covered():
    skipped = {"glmm:allzero:PLO:ML", "glmm:allzero:PLO:EE",  # degenerate (tested below)
               "glmm:dat.nielweise2007:OR:UM.RS:ML", "glmm:dat.nielweise2007:OR:UM.RS:EE"}
    assert set(CASES) == set(SUPPORTED) | skipped


def test_ml_optimum_is_at_least_as_good_as_lme4():
    """Same AGQ deviance as lme4 (to 1e-9), evaluated at both optima: ours is not lower."""
    for cid in ("glmm:dat.pritz1997:PLO:ML", "glmm:dat.debruin2009:PLO:ML", "glmm:zeros:PLO:ML",
                "glmm:pasi40:PLO:ML"):
        case = CASES[cid]
        inp, e = case["inputs"], case["expected"]
        r = _run(case)
        x, n = np.asarray(inp["xi"], float), np.asarray(inp["ni"], float)
        m = single_group("binomial", x, n, np.zeros(x.size), 7)
        ours = m.evaluate(np.array([r.estimate]), r.tau2, "v")[0]
        theirs = m.evaluate(np.array([e["beta"]]), e["tau2"], "v")[0]
        assert ours >= theirs - 1e-12, cid


def test_agq_deviance_equals_lme4_devfun():
    """lme4's glmer(nAGQ = 7, devFunOnly = TRUE) on dat.pritz1997 at four (theta, beta) points
    (values computed once in R); lme4's deviance is -2 loglik relative to the saturated model."""
    x, n = np.asarray(PRITZ["xi"], float), np.asarray(PRITZ["ni"], float)
    m = single_group("binomial", x, n, np.zeros(x.size), 7)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        llsat = float(np.sum(np.where(x > 0, x * np.log(p), 0) + np.where(x < n, (n - x) * np.log1p(-p), 0)))
    lme4 = {(0.7, 1.3): 30.215540077137778, (0.5, 1.0): 33.12575329047435,
            (1.2, 2.0): 33.319120554310871, (0.05, 1.1): 41.906002897192849}
    for (theta, beta), dev in lme4.items():
        ours = -2 * (m.evaluate(np.array([beta]), theta**2, "v")[0] - llsat)
        assert ours == pytest.approx(dev, abs=1e-8)


def test_exact_gradient():
    x, n = np.asarray(ZEROS["xi"], float), np.asarray(ZEROS["ni"], float)
    m = single_group("binomial", x, n, np.zeros(x.size), 7)
    for beta, s in ((-3.1, 0.45), (-5.0, 22.0), (-1.0, 0.01)):
        _, g, _ = m.evaluate(np.array([beta]), s, "g")
        h = 1e-6
        num = [(m.evaluate(np.array([beta + h]), s, "v")[0] - m.evaluate(np.array([beta - h]), s, "v")[0]) / (2 * h),
               (m.evaluate(np.array([beta]), s + h, "v")[0] - m.evaluate(np.array([beta]), s - h, "v")[0]) / (2 * h)]
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_profile_likelihood_ci_of_tau2():
    """At each bound the profile log-likelihood is chi2_1(0.95)/2 below the maximum."""
    from scipy import optimize, stats

    q = stats.chi2.ppf(0.95, 1)
    x, n = np.asarray(PRITZ["xi"], float), np.asarray(PRITZ["ni"], float)
    r = fit_glmm(x, n)
    m = single_group("binomial", x, n, np.zeros(x.size), 7)
    lmax = m.evaluate(np.array([r.estimate]), r.tau2, "v")[0]

    def lp(s):
        res = optimize.minimize_scalar(lambda b: -m.evaluate(np.array([b]), s, "v")[0],
                                       bracket=(r.estimate - 1, r.estimate + 1), tol=1e-12)
        return -res.fun

    assert 0 < r.tau2_ci_lb < r.tau2 < r.tau2_ci_ub
    for bound in (r.tau2_ci_lb, r.tau2_ci_ub):
        assert 2 * (lmax - lp(bound)) == pytest.approx(q, abs=1e-6)
    assert r._typed_extra()["tau2_profile_ci"] == (r.tau2_ci_lb, r.tau2_ci_ub)
    assert r.i2_ci_lb < r.i2 < r.i2_ci_ub
    # boundary case (tau^2 = 0 on the rates): lower bound 0, upper bound from the profile
    rr = fit_glmm(RATES["xi"], time=RATES["ti"], measure="IRLN")
    assert rr.tau2 == 0 and rr.diagnostics.tau2_at_boundary
    assert rr.tau2_ci_lb == 0
    t, xr = np.log(np.asarray(RATES["ti"], float)), np.asarray(RATES["xi"], float)
    mr = single_group("poisson", xr, np.exp(t), t, 7)
    l0 = mr.evaluate(np.array([rr.estimate]), 0.0, "v")[0]
    res = optimize.minimize_scalar(lambda b: -mr.evaluate(np.array([b]), rr.tau2_ci_ub, "v")[0],
                                   bracket=(rr.estimate - 1, rr.estimate + 1), tol=1e-12)
    assert 2 * (l0 + res.fun) == pytest.approx(q, abs=1e-6)


@pytest.mark.parametrize("inputs", [PRITZ, ZEROS], ids=["pritz", "zeros"])
def test_high_accuracy_quadrature(inputs):
    r7 = fit_glmm(inputs["xi"], inputs["ni"], tau2_ci=False)
    r41 = fit_glmm(inputs["xi"], inputs["ni"], nagq="high", tau2_ci=False)
    r81 = fit_glmm(inputs["xi"], inputs["ni"], nagq=81, tau2_ci=False)
    assert r41.nagq == glmm.HIGH_ACCURACY_NAGQ == 41
    for name in ("estimate", "se", "tau2"):
        a, b, c = getattr(r7, name), getattr(r41, name), getattr(r81, name)
        assert b == pytest.approx(c, rel=1e-8), name  # converged in the number of nodes
        assert a == pytest.approx(b, rel=5e-4), name  # and 7 nodes are already close
    assert "nagq=41" in r41.conventions.tau2_estimator


def test_laplace_is_one_node():
    r = fit_glmm(PRITZ["xi"], PRITZ["ni"], nagq=1, tau2_ci=False)
    assert r.diagnostics.converged and r.tau2 > 0
    assert r.tau2 != pytest.approx(fit_glmm(PRITZ["xi"], PRITZ["ni"], tau2_ci=False).tau2, rel=1e-3)


def test_all_zero_events_report_the_exact_bound():
    case = CASES["glmm:allzero:PLO:ML"]
    assert "Cannot fit ML model" in case["expected"]["error"]  # metafor
    x, n = case["inputs"]["xi"], case["inputs"]["ni"]
    for method in ("ML", "EE"):
        r = fit_glmm(x, n, method=method)
        for name in ("estimate", "se", "ci_lb", "ci_ub", "tau2", "pvalue", "i2"):
            assert math.isnan(getattr(r, name)), name
        ub = 1 - 0.05 ** (1 / 23)  # exact: (1 - p)^23 = 0.05
        assert r.exact_upper_bound == pytest.approx(ub, rel=1e-12)
        assert "one-sided 95% Clopper-Pearson upper bound" in r.bound_kind
        assert "0 events in 23" in r.bound_kind
        assert any("not identifiable" in w or "not estimable" in w for w in r.warnings)
        assert any(f"{ub:.6g}" in w for w in r.warnings)
        assert r.natural.ci_lb == 0 and r.natural.ci_ub == pytest.approx(ub)
        assert math.isnan(r.natural.estimate)
        assert not r.diagnostics.converged
        assert r.k == 5 and len(r.yi) == 5  # studies still shown (escalc with 1/2 added)
        r.summary()
        r.to_dict()
    assert "random-effects model not identifiable" in fit_glmm(x, n).warnings[0]
    # level 90%: 0.1 ** (1/23)
    r = fit_glmm(x, n, level=0.9)
    assert r.exact_upper_bound == pytest.approx(1 - 0.1 ** (1 / 23), rel=1e-12)


def test_all_events_and_rates_without_events():
    r = fit_glmm([2, 2, 1], [2, 2, 1])
    assert math.isnan(r.estimate)
    assert r.exact_lower_bound == pytest.approx(0.05 ** (1 / 5), rel=1e-12)
    assert "lower bound" in r.bound_kind
    r = fit_glmm([0, 0], time=[10.0, 20.0], measure="IRLN")
    assert math.isnan(r.estimate)
    assert r.exact_upper_bound == pytest.approx(-math.log(0.05) / 30, rel=1e-12)
    assert "Poisson" in r.bound_kind


def test_tau2_not_identifiable_reports_the_common_effect():
    # k = 1
    r = fit_glmm([3], [10])
    assert math.isnan(r.estimate) and math.isnan(r.tau2)
    assert any("k = 1" in w and "not identifiable" in w for w in r.warnings)
    ce = r.common_effect
    assert ce.estimate == pytest.approx(math.log(3 / 7))
    assert ce.exact_ci[0] < 0.3 < ce.exact_ci[1]
    # the common-effect model itself is fine with k = 1
    e = fit_glmm([3], [10], method="EE")
    assert e.estimate == pytest.approx(math.log(3 / 7)) and e.se == pytest.approx(math.sqrt(1 / 3 + 1 / 7))
    assert math.isnan(e.q)
    # no study with 0 < events < n: tau^2 -> infinity
    r = fit_glmm([0, 2, 0], [3, 2, 5])
    assert math.isnan(r.estimate)
    assert any("not identifiable" in w for w in r.warnings)
    assert r.common_effect.estimate == pytest.approx(math.log(2 / 8))


def test_poisson_normal():
    r = fit_glmm(RATES["xi"], time=RATES["ti"], measure="IRLN")
    assert r.natural.scale == "rate"
    assert r.natural.estimate == pytest.approx(sum(RATES["xi"]) / sum(RATES["ti"]))
    assert r.pi_lb == pytest.approx(r.ci_lb)  # tau^2 = 0
    # with heterogeneity
    x, t = [2, 15, 1, 30, 4], [100.0, 120.0, 90.0, 150.0, 200.0]
    r = fit_glmm(x, time=t, measure="IRLN", nagq=41)
    assert r.tau2 > 0 and r.diagnostics.converged
    assert r.tau2_ci_lb < r.tau2 < r.tau2_ci_ub
    r81 = fit_glmm(x, time=t, measure="IRLN", nagq=81, tau2_ci=False)
    assert r.estimate == pytest.approx(r81.estimate, rel=1e-8)


def test_knha_uses_t_with_k_minus_1_df():
    from scipy import stats

    z = fit_glmm(PRITZ["xi"], PRITZ["ni"], tau2_ci=False)
    t = fit_glmm(PRITZ["xi"], PRITZ["ni"], test="knha", tau2_ci=False)
    assert t.df == 13 and z.df is None
    assert t.se == z.se and t.estimate == z.estimate
    crit = stats.t.ppf(0.975, 13)
    assert t.ci_ub == pytest.approx(t.estimate + crit * t.se, rel=1e-12)
    assert t.pi_ub == pytest.approx(t.estimate + crit * math.sqrt(t.se**2 + t.tau2), rel=1e-12)
    assert t.pvalue == pytest.approx(2 * stats.t.sf(abs(t.statistic), 13), rel=1e-10)
    assert fit_glmm(PRITZ["xi"], PRITZ["ni"], test="t", tau2_ci=False).ci_lb == t.ci_lb


def test_result_object_and_diagnostics():
    r = fit_glmm(PRITZ["xi"], PRITZ["ni"], labels=CASES["glmm:dat.pritz1997:PLO:ML"]["slab"])
    d = r.diagnostics
    assert d.converged and not d.tau2_at_boundary
    assert any("max |gradient|" in m and "positive definite" in m for m in d.messages)
    assert r.gradient_max < 1e-6
    assert min(r.hessian_eigenvalues) > 0
    assert r.nagq == 7
    assert r.conventions.tau2_estimator == "GLMM (ML, AGQ nagq=7)"
    assert "profile" in r.conventions.tau2_ci
    assert any("QE_LRT" in m for m in d.messages)
    assert r.weights.sum() == pytest.approx(100)
    assert len(r.labels) == len(r.yi) == len(r.vi) == len(r.n) == r.k == 14
    assert r.labels[0] == "Giannotta et al."
    assert r.yi.flags.writeable is False
    with pytest.raises(Exception):
        r.estimate = 0  # frozen
    text = r.summary()
    assert "Random-effects model (ML)" in text and "QE_LRT" in text
    dct = r.to_dict()
    assert dct["tau2"] == pytest.approx(r.tau2, rel=1e-10)
    ee = fit_glmm(PRITZ["xi"], PRITZ["ni"], method="FE")
    assert ee.method == "EE" and ee.tau2 == 0 and math.isnan(ee.pi_lb)
    assert ee.conventions.prediction_interval.startswith("none")


def test_two_group_um_fs_drops_double_zero_studies():
    case = CASES["glmm:dat.nielweise2007:OR:UM.FS:EE"]
    r = _run(case)
    assert r.k == 17
    assert [e.study for e in r.excluded] == ["Yucel, 2004"]
    assert r.natural.scale == "odds ratio"
    # UM.RS (fixture made with lme4's default control; tight checks in test_glmm_umrs.py)
    for cid in ("glmm:dat.nielweise2007:OR:UM.RS:ML", "glmm:dat.nielweise2007:OR:UM.RS:EE"):
        e = CASES[cid]["expected"]
        rs = _run(CASES[cid])
        assert rs.k == 17 and rs.or_model == "UM.RS"
        assert rs.estimate == pytest.approx(e["beta"], rel=1e-5)
        assert rs.se == pytest.approx(e["se"], rel=5e-5)
        assert rs.tau2 == pytest.approx(e["tau2"], rel=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="study 2"):
        fit_glmm([1, 5], [3, 4])
    with pytest.raises(ValueError, match="measure"):
        fit_glmm([1], [3], measure="PFT")
    with pytest.raises(ValueError, match="test"):
        fit_glmm([1, 2], [3, 4], test="adhoc")
    with pytest.raises(ValueError, match="nagq"):
        fit_glmm([1, 2], [3, 4], nagq=0)
    with pytest.raises(ValueError, match="method"):
        fit_glmm([1, 2], [3, 4], method="REML")
    with pytest.raises(ValueError, match="time"):
        fit_glmm([1, 2], measure="IRLN")


def test_forest_plot_works_unchanged():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = fit_glmm(ZEROS["xi"], ZEROS["ni"])
    ax = r.plot_forest()
    assert ax is not None
    plt.close("all")
