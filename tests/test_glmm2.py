"""Two-group GLMMs (metafor rma.glmm's model = UM.FS / CM.AL / CM.EL for OR and IRR) and the
Laplace approximation (nagq = 1) against metafor 3.8-1 with lme4 (tests/reference/glmm2.json,
written by tests/reference/make_glmm2_fixtures.R; the tests never call R).

lme4 is run there with tight tolerances (bobyqa rhoend = 1e-12, tolPwrss = 1e-12). Agreement
achieved (relative; tau^2 relative to max(tau^2, 1e-8)):

* CM.AL (OR) and CM.EL (IRR), UM.FS for IRR, ML with nagq = 7: estimate, SE, tau^2 <= 1.5e-7;
  tested at 1e-6. EE (GLM): estimate <= 1.5e-10; SE <= 3.7e-6 (metafor's glm SE comes from the
  IRLS weights of the last-but-one iteration), tested at 5e-6.
* UM.FS for OR on dat.bcg (13 study effects + 2 parameters): estimate 1.3e-6, SE 3.5e-5,
  tau^2 9.2e-6, while the deviances at the two optima agree to 2.2e-9 (lme4's optimum and its
  finite-difference Hessian are the limit): tested at 2e-6 / 5e-5 / 2e-5.
* nagq = 1 is lme4's Laplace approximation (lme4 needs tolPwrss = 1e-12 for this; with its
  default the Laplace deviance is off by up to 1e-4): estimate, SE, tau^2 <= 3.4e-7, tested at
  1e-6; on dat.bcg UM.FS (where lme4 fails with tolPwrss = 1e-12 and keeps its default)
  2.6e-5 / 1.1e-4 / 2.6e-5, tested at 3e-5 / 2e-4 / 5e-5.
* CM.EL for OR (noncentral hypergeometric, nagq = "high"): against metafor's nlminb on the
  integrated likelihood, estimate <= 7.9e-7, tau^2 <= 5.2e-8, loglik <= 1e-11 (relative), SE
  6e-4 (EE) and 2.9e-5 (ML): metafor's numerical Hessians; our SE and QE are checked by direct
  summation in test_conditional_exact_likelihood.
* -2 (loglik - loglik of the saturated model) equals lme4's -2 logLik (the AGQ deviance) to
  1e-8 absolute (nagq = 7); with nagq = 1 lme4's Laplace deviance includes the constants and
  equals -2 loglik. EE log-likelihoods equal metafor's logLik to 1e-10 relative.
* QE_Wld, QE_LRT: <= 1e-12 relative, except where a group has zero events in a study (R's
  glm.fit stops IRLS at a finite value; <= 2.4e-6), tested at 5e-6.
* UM.RS (OR and IRR) is checked in test_glmm_umrs.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from metamsc.glmm import fit_glmm
from metamsc.measures import get_measure

REF = Path(__file__).parent / "reference"
CASES = {c["id"]: c for c in json.loads((REF / "glmm2.json").read_text())["cases"]}


def _fitted(c) -> bool:
    # UM.RS (no heterogeneity tests here) is checked in test_glmm_umrs.py
    return c["model"] in get_measure(c["measure"]).glmm and c["model"] != "UM.RS"


def _run(c, **kw):
    i = c["inputs"]
    # CM.EL for OR: metafor integrates numerically (integrate()); 41 nodes reproduce the integral
    cm_el = c["measure"] == "OR" and c["model"] == "CM.EL"
    kw.setdefault("nagq", "high" if cm_el else int(c["nAGQ"]))
    if c["measure"] == "OR":
        a, b, cc, d = (np.asarray(i[k], float) for k in ("ai", "bi", "ci", "di"))
        return fit_glmm(a, a + b, events2=cc, total2=cc + d, measure="OR", model=c["model"],
                        method=c["method"], tau2_ci=False, **kw)
    return fit_glmm(i["x1i"], time=i["t1i"], events2=i["x2i"], time2=i["t2i"], measure="IRR",
                    model=c["model"], method=c["method"], tau2_ci=False, **kw)


def _ll_saturated(c) -> float:
    """Log-likelihood (with constants) of the saturated model of the cells the GLMM fits."""
    i = c["inputs"]

    def binom(y, n):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = y / n
            t = np.where(y > 0, y * np.log(p), 0) + np.where(y < n, (n - y) * np.log1p(-p), 0)
        return float(np.sum(t + special.gammaln(n + 1) - special.gammaln(y + 1)
                            - special.gammaln(n - y + 1)))

    def pois(y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(np.where(y > 0, y * np.log(y), 0) - y - special.gammaln(y + 1)))

    if c["measure"] == "OR":
        a, b, cc, d = (np.asarray(i[k], float) for k in ("ai", "bi", "ci", "di"))
        keep = ~(((a == 0) & (cc == 0)) | ((b == 0) & (d == 0)))
        a, b, cc, d = a[keep], b[keep], cc[keep], d[keep]
        return binom(a, a + cc) if c["model"] == "CM.AL" else binom(a, a + b) + binom(cc, cc + d)
    x1, x2 = np.asarray(i["x1i"], float), np.asarray(i["x2i"], float)
    keep = ~((x1 == 0) & (x2 == 0))
    x1, x2 = x1[keep], x2[keep]
    return binom(x1, x1 + x2) if c["model"] == "CM.EL" else pois(x1) + pois(x2)


FITTED = sorted(cid for cid, c in CASES.items() if _fitted(c) and "error" not in c["expected"])


def _tols(c):
    """(estimate, SE, tau^2) relative tolerances; see the module docstring."""
    if c["measure"] == "OR" and c["model"] == "CM.EL":
        return 2e-6, 1e-3, 2e-6
    if c["method"] == "EE":
        return 1e-9, 5e-6, 0.0
    if c["id"] == "glmm2:dat.bcg:OR:UM.FS:ML:nAGQ1":
        return 3e-5, 2e-4, 5e-5
    if c["id"] == "glmm2:dat.bcg:OR:UM.FS:ML":
        return 2e-6, 5e-5, 2e-5
    return 1e-6, 1e-6, 1e-6


def test_fixture_grid():
    """Every metafor model in the fixture is either fitted here or refused in one line."""
    assert len(FITTED) >= 18
    for cid, c in CASES.items():
        if c["model"] not in get_measure(c["measure"]).glmm:
            with pytest.raises(NotImplementedError, match=c["model"]):
                _run(c)


@pytest.mark.parametrize("cid", FITTED)
def test_against_metafor(cid):
    c = CASES[cid]
    e = c["expected"]
    r = _run(c)
    t_est, t_se, t_tau = _tols(c)
    assert r.k == e["k"]
    assert r.estimate == pytest.approx(e["beta"], rel=t_est), "estimate"
    assert r.se == pytest.approx(e["se"], rel=t_se), "se"
    assert abs(r.tau2 - e["tau2"]) <= t_tau * max(e["tau2"], 1e-8), "tau2"
    assert r.or_model == c["model"]
    cm_el = c["measure"] == "OR" and c["model"] == "CM.EL"
    if not cm_el:  # metafor's CM.EL Wald test: see test_conditional_exact_likelihood
        assert r.q == pytest.approx(e["QE_Wld"], rel=5e-6)
    assert r.qe_lrt == pytest.approx(e["QE_LRT"], rel=5e-6, abs=1e-9)
    if c["method"] == "EE" or cm_el:  # metafor's logLik: the exact (integrated) likelihood
        assert r.loglik == pytest.approx(e["logLik"], rel=1e-10, abs=1e-8)
    elif c["nAGQ"] == 1:  # lme4's Laplace deviance includes the constants
        # (dat.bcg UM.FS: fitted by lme4 with its default tolPwrss, whose inexact modes
        # move its Laplace deviance by 5e-6)
        tol = 1e-5 if cid == "glmm2:dat.bcg:OR:UM.FS:ML:nAGQ1" else 1e-7
        assert -2 * r.loglik == pytest.approx(e["lme4_deviance"], abs=tol)
    else:
        assert -2 * (r.loglik - _ll_saturated(c)) == pytest.approx(e["lme4_deviance"], abs=1e-8)
    if e["I2"] is not None and e["tau2"] > 1e-6:
        assert r.i2 == pytest.approx(e["I2"], rel=max(t_tau, 1e-6))


def _nchg_loglik(a, b, c, d, theta):
    """Conditional log-likelihood by direct summation over each table's support."""
    from scipy.special import gammaln, logsumexp

    def lchoose(n, r):
        return gammaln(n + 1) - gammaln(r + 1) - gammaln(n - r + 1)

    n1, n2, m1 = a + b, c + d, a + c
    out = []
    for i in range(a.size):
        u = np.arange(max(0, m1[i] - n2[i]), min(n1[i], m1[i]) + 1)
        lw = lchoose(n1[i], u) + lchoose(n2[i], m1[i] - u)
        out.append(lchoose(n1[i], a[i]) + lchoose(n2[i], c[i]) + a[i] * theta[i]
                   - logsumexp(lw + u * theta[i]))
    return np.array(out)


def test_conditional_exact_likelihood():
    """CM.EL (OR) checked by direct summation over the noncentral hypergeometric supports.

    metafor's own CM.EL numbers come from nlminb on numerically integrated likelihoods (it
    stops with "false convergence" below rel.tol = 1e-10) and numerical Hessians: estimates
    and log-likelihoods agree to 2e-6 and 1e-10, its SEs only to 6e-4 (EE) and 3e-5 (ML), and
    its QE_Wld on dat.bcg is 268.7 where the per-study conditional ML estimates give 163.09
    (checked here; its saturated fit has 14 parameters maximised by nlminb)."""
    i = CASES["glmm2:dat.bcg:OR:CM.EL:EE"]["inputs"]
    a, b, c, d = (np.asarray(i[k], float) for k in ("ai", "bi", "ci", "di"))
    r = fit_glmm(a, a + b, events2=c, total2=c + d, measure="OR", model="CM.EL", method="EE")
    th = np.full(a.size, r.estimate)
    h = 1e-4
    assert r.loglik == pytest.approx(float(np.sum(_nchg_loglik(a, b, c, d, th))), rel=1e-12)
    d2 = float(np.sum(_nchg_loglik(a, b, c, d, th + h) - 2 * _nchg_loglik(a, b, c, d, th)
                      + _nchg_loglik(a, b, c, d, th - h))) / h**2
    g = float(np.sum(_nchg_loglik(a, b, c, d, th + h) - _nchg_loglik(a, b, c, d, th - h))) / (2 * h)
    assert abs(g) < 1e-6
    assert r.se == pytest.approx((-d2) ** -0.5, rel=1e-6)
    # saturated model: each study's conditional MLE (a root of the score), Wald test
    from scipy.optimize import brentq

    ths = np.array([brentq(lambda t: (_nchg_loglik(a[j:j + 1], b[j:j + 1], c[j:j + 1], d[j:j + 1],
                                                   [t + 1e-6])
                                      - _nchg_loglik(a[j:j + 1], b[j:j + 1], c[j:j + 1], d[j:j + 1],
                                                     [t - 1e-6]))[0], -5, 5, xtol=1e-13)
                    for j in range(a.size)])
    info = -np.array([(_nchg_loglik(a[j:j + 1], b[j:j + 1], c[j:j + 1], d[j:j + 1], [ths[j] + h])
                       - 2 * _nchg_loglik(a[j:j + 1], b[j:j + 1], c[j:j + 1], d[j:j + 1], [ths[j]])
                       + _nchg_loglik(a[j:j + 1], b[j:j + 1], c[j:j + 1], d[j:j + 1],
                                      [ths[j] - h]))[0] / h**2 for j in range(a.size)])
    mean = float(info @ ths / info.sum())
    assert r.q == pytest.approx(float(info @ (ths - mean) ** 2), rel=1e-6)
    ll_sat = float(sum(_nchg_loglik(a[j:j + 1], b[j:j + 1], c[j:j + 1], d[j:j + 1], [ths[j]])[0]
                       for j in range(a.size)))
    assert r.qe_lrt == pytest.approx(-2 * (r.loglik - ll_sat), rel=1e-9)
    # a zero cell: the saturated estimate is infinite, so no Wald test (said in a warning)
    z = CASES["glmm2:zeros_or:OR:CM.EL:EE"]["inputs"]
    a, b, c, d = (np.asarray(z[k], float) for k in ("ai", "bi", "ci", "di"))
    rz = fit_glmm(a, a + b, events2=c, total2=c + d, measure="OR", model="CM.EL", method="EE")
    assert np.isnan(rz.q) and any("QE_Wld" in w for w in rz.warnings)


def test_model_names_and_errors():
    c = CASES["glmm2:dat.bcg:OR:CM.AL:ML"]
    a = _run(c)
    b = _run({**c, "model": "cm.al"})
    assert a.estimate == b.estimate and b.or_model == "CM.AL"
    assert "CM.AL" in a.conventions.tau2_estimator
    with pytest.raises(ValueError, match="unknown model 'XX'"):
        _run({**c, "model": "XX"})
    i = CASES["glmm2:dat.nielweise2008:IRR:CM.EL:ML"]["inputs"]
    with pytest.raises(ValueError, match="time2"):
        fit_glmm(i["x1i"], time=i["t1i"], events2=i["x2i"], measure="IRR", model="CM.EL")
    # IRR: CM.AL is the exact conditional model, the same fit as CM.EL (as metafor)
    r_al = fit_glmm(i["x1i"], time=i["t1i"], events2=i["x2i"], time2=i["t2i"], measure="IRR",
                    model="CM.AL", tau2_ci=False)
    r_el = fit_glmm(i["x1i"], time=i["t1i"], events2=i["x2i"], time2=i["t2i"], measure="IRR",
                    model="CM.EL", tau2_ci=False)
    assert r_al.estimate == r_el.estimate and r_al.or_model == "CM.AL"


def test_double_zero_study_is_reported():
    c = CASES["glmm2:nielweise2008_zeros:IRR:CM.EL:ML"]
    r = _run(c)
    assert r.k == 8 and len(r.excluded) == 1
    assert "no events in both groups" in r.excluded[0].reason
    assert r.natural.scale == "rate ratio"
    assert r.natural.estimate == pytest.approx(np.exp(r.estimate))


def test_refit_repeats_the_model():
    c = CASES["glmm2:dat.nielweise2008:IRR:UM.FS:ML"]
    r = _run(c)
    sub = r.refit(range(6))
    i = c["inputs"]
    direct = fit_glmm(i["x1i"][:6], time=i["t1i"][:6], events2=i["x2i"][:6], time2=i["t2i"][:6],
                      measure="IRR", model="UM.FS", tau2_ci=False)
    assert sub.estimate == pytest.approx(direct.estimate, rel=1e-12)
    assert sub.or_model == "UM.FS"


def test_profile_ci_of_tau2_conditional_model():
    """CM.AL: at each bound of the profile-likelihood CI of tau^2 the profile log-likelihood
    is chi2_1(0.95)/2 below the maximum (the same search as the one-group models)."""
    from scipy import optimize, stats

    from metamsc.glmm.likelihood import single_group

    i = CASES["glmm2:dat.bcg:OR:CM.AL:ML"]["inputs"]
    a, b, c, d = (np.asarray(i[k], float) for k in ("ai", "bi", "ci", "di"))
    r = fit_glmm(a, a + b, events2=c, total2=c + d, measure="OR", model="CM.AL")
    m = single_group("binomial", a, a + c, np.log((a + b) / (c + d)), 7)
    lmax = m.evaluate(np.array([r.estimate]), r.tau2, "v")[0]

    def lp(s):
        res = optimize.minimize_scalar(lambda t: -m.evaluate(np.array([t]), s, "v")[0],
                                       bracket=(r.estimate - 1, r.estimate + 1), tol=1e-12)
        return -res.fun

    assert 0 < r.tau2_ci_lb < r.tau2 < r.tau2_ci_ub
    for bound in (r.tau2_ci_lb, r.tau2_ci_ub):
        assert 2 * (lmax - lp(bound)) == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-6)


# --- UM.FS at large k: the Hessian is an arrowhead, every step costs O(k) -------------------
def _sim_tables(k, seed, theta=-0.5, tau2=0.16):
    """k 2x2 tables from UM.FS itself: control log odds N(-1.5, 1), the +-1/2 coding."""
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(20, 201, k), rng.integers(20, 201, k)
    a, u = rng.normal(-1.5, 1.0, k), rng.normal(0.0, np.sqrt(tau2), k)
    x1 = rng.binomial(n1, special.expit(a + theta + u / 2))
    x2 = rng.binomial(n2, special.expit(a - u / 2))
    return x1, n1, x2, n2


def test_arrowhead_algebra_matches_dense():
    """Solves, the shared block of the inverse, positive definiteness and the extreme
    eigenvalues of the arrowhead form equal those of the dense matrix."""
    from metamsc.glmm.arrow import Arrow

    rng = np.random.default_rng(7)
    for _ in range(60):
        k, m = int(rng.integers(1, 25)), int(rng.integers(1, 4))
        head = int(rng.integers(0, m + 1))
        A = rng.normal(size=(m, m))
        A = A + A.T + rng.uniform(-1, 8) * np.eye(m)
        M = Arrow(A, rng.normal(size=(k, m)) * rng.uniform(0, 2), rng.uniform(-1, 10, k), head)
        D = M.dense()
        ev = np.linalg.eigvalsh(D)
        v = rng.normal(size=k + m)
        np.testing.assert_allclose(M.matvec(v), D @ v, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(M.solve(v), np.linalg.solve(D, v), rtol=1e-8, atol=1e-10)
        x = M.solve_pd(v)
        assert (x is not None) == (ev[0] > 0)
        sh = np.r_[np.arange(head), head + k + np.arange(m - head)]
        np.testing.assert_allclose(M.shared_inverse(), np.linalg.inv(D)[np.ix_(sh, sh)],
                                   rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(M.extreme_eigenvalues(), [ev[0], ev[-1]],
                                   rtol=0, atol=1e-12 * max(1.0, np.abs(ev).max()))


def test_grouped_finite_differences_equal_coordinatewise():
    """The central-difference Hessian of UM.FS with all study effects moved at once equals the
    one with every parameter moved on its own (the study effects enter different studies)."""
    from metamsc.glmm.likelihood import two_group_fixed_studies
    from metamsc.glmm.optimize import Objective

    x1, n1, x2, n2 = _sim_tables(6, 3)
    lik = two_group_fixed_studies("binomial", np.column_stack([x1, x2]),
                                  np.column_stack([n1, n2]), np.zeros((6, 2)), 7)
    obj = Objective(lik)
    theta = np.r_[-0.4, special.logit((x2 + 0.5) / (n2 + 1)), np.log(0.2)]
    grouped = obj.fd_hessian(theta).dense()
    h = 1e-5 * np.maximum(1.0, np.abs(theta))
    cols = []
    for j in range(theta.size):
        e = np.zeros(theta.size)
        e[j] = h[j]
        cols.append((obj(theta + e, "g")[1] - obj(theta - e, "g")[1]) / (2 * h[j]))
    single = np.array(cols).T
    np.testing.assert_allclose(grouped, 0.5 * (single + single.T), rtol=1e-6, atol=1e-8)


def test_um_fs_with_2000_tables():
    """k = 2000 tables (a (k + 2)-parameter fit): the same 8 tables repeated 250 times give the
    8-table fit's estimate and tau^2 with the SE divided by sqrt(250) and 250 times its
    log-likelihood (the likelihood is a sum over identical studies); 2000 tables simulated from
    the model recover its log odds ratio."""
    x1, n1, x2, n2 = _sim_tables(8, 11, tau2=0.5)
    small = fit_glmm(x1, n1, events2=x2, total2=n2, measure="OR", tau2_ci=False)
    rep = [np.tile(v, 250) for v in (x1, n1, x2, n2)]
    big = fit_glmm(rep[0], rep[1], events2=rep[2], total2=rep[3], measure="OR", tau2_ci=False)
    assert big.k == 2000 and big.diagnostics.converged
    assert big.estimate == pytest.approx(small.estimate, rel=1e-7)
    assert big.tau2 == pytest.approx(small.tau2, rel=1e-6)
    assert big.se == pytest.approx(small.se / np.sqrt(250), rel=1e-6)
    assert big.loglik == pytest.approx(250 * small.loglik, rel=1e-10)
    assert big.qe_lrt == pytest.approx(250 * small.qe_lrt, rel=1e-8)
    x1, n1, x2, n2 = _sim_tables(2000, 5)
    sim = fit_glmm(x1, n1, events2=x2, total2=n2, measure="OR")
    assert sim.diagnostics.converged and min(sim.hessian_eigenvalues) > 0
    assert abs(sim.estimate + 0.5) < 3 * sim.se
    # ML with k fixed study effects underestimates tau^2 (two cells per study): not a test of
    # coverage, only that the profile CI brackets the estimate near the true 0.16
    assert 0 < sim.tau2_ci_lb < sim.tau2 < sim.tau2_ci_ub and abs(sim.tau2 - 0.16) < 0.05
