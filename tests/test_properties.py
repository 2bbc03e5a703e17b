"""Property-based tests of the estimators (hypothesis): what must hold for any data.

Deterministic (``derandomize=True``) so that CI sees the same examples every run, few examples
each, no deadline (the first call compiles nothing but machines differ in speed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import metamsc
from metamsc import pool, pool_batch, pool_proportions
from metamsc.batch import BATCH_METHODS
from metamsc.glmm import fit_glmm
from metamsc.transforms import back_transform

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=8, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow])

#: the random-effects estimators of pool(); GENQ needs weights and is tested with them below
RE_METHODS = ("DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM")
METHODS = ("EE",) + RE_METHODS


@st.composite
def studies(draw, min_k=2, max_k=10):
    """Effect sizes on a moderate scale with sampling variances over three orders of magnitude."""
    k = draw(st.integers(min_k, max_k))
    yi = draw(st.lists(st.floats(-3, 3, allow_nan=False, allow_subnormal=False), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(0.005, 5, allow_nan=False), min_size=k, max_size=k))
    return np.array(yi), np.array(vi)


def _close(a, b, rtol=1e-7, atol=1e-9):
    return (a is None and b is None) or (np.isnan(a) and np.isnan(b)) or math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


FIELDS = ("estimate", "se", "ci_lb", "ci_ub", "tau2", "i2", "q", "pvalue", "pi_lb", "pi_ub")


@SETTINGS
@given(data=studies(), method=st.sampled_from(METHODS), seed=st.integers(0, 2**32 - 1))
def test_invariant_to_study_order_and_labels(data, method, seed):
    yi, vi = data
    perm = np.random.default_rng(seed).permutation(len(yi))
    a = pool(yi, vi, method=method, labels=[f"s{i}" for i in range(len(yi))])
    b = pool(yi[perm], vi[perm], method=method, labels=[f"other {j}" for j in range(len(yi))])
    for f in FIELDS:
        assert _close(getattr(a, f), getattr(b, f), rtol=1e-6, atol=1e-8), f
    assert np.allclose(np.asarray(a.weights)[perm], b.weights, rtol=1e-6, atol=1e-10)


@SETTINGS
@given(data=studies(), method=st.sampled_from(METHODS), test=st.sampled_from(("z", "knha", "t")))
def test_bounds_and_interval_order(data, method, test):
    yi, vi = data
    r = pool(yi, vi, method=method, test=test)
    assert r.tau2 >= 0
    assert 0 <= r.i2 <= 100
    assert r.q >= 0
    assert r.ci_lb <= r.estimate <= r.ci_ub
    if method != "EE":  # a common-effect model has no prediction interval
        assert r.pi_lb <= r.ci_lb + 1e-12 and r.ci_ub <= r.pi_ub + 1e-12
    assert 0 <= r.pvalue <= 1
    if method != "EE":  # I^2 from tau^2 (a common-effect model reports it from Q, as metafor)
        assert (r.tau2 == 0) == (r.i2 == 0)
    assert min(yi) - 1e-12 <= r.estimate <= max(yi) + 1e-12  # a weighted mean of the studies
    w = np.asarray(r.weights)
    assert np.all(w >= 0) and math.isclose(w.sum(), 100, rel_tol=1e-9)


@SETTINGS
@given(k=st.integers(2, 12), value=st.floats(-5, 5), method=st.sampled_from(RE_METHODS),
       vi=st.lists(st.floats(0.01, 3), min_size=12, max_size=12))
def test_homogeneous_data_give_the_common_effect_result(k, value, method, vi):
    """Studies with one and the same effect: every tau^2 estimator gives 0, so the random-effects
    result is the common-effect one."""
    yi, vi = np.full(k, value), np.array(vi[:k])
    ce, re = pool(yi, vi, method="EE"), pool(yi, vi, method=method)
    assert re.tau2 == pytest.approx(0, abs=1e-10)
    assert re.i2 == pytest.approx(0, abs=1e-8)
    for f in ("estimate", "se", "ci_lb", "ci_ub", "pvalue"):
        assert _close(getattr(re, f), getattr(ce, f), rtol=1e-7, atol=1e-10), f


@SETTINGS
@given(data=studies(), method=st.sampled_from(METHODS), scale=st.floats(0.1, 10),
       sign=st.sampled_from((1, -1)))
def test_scaling_yi_and_vi_scales_the_results(data, method, scale, sign):
    """yi -> a yi, vi -> a^2 vi: estimate and bounds scale by a, tau^2 by a^2; I^2, Q, p unchanged."""
    yi, vi = data
    a = sign * scale
    r, s = pool(yi, vi, method=method), pool(a * yi, a * a * vi, method=method)
    assert s.estimate == pytest.approx(a * r.estimate, rel=1e-6, abs=1e-9)
    assert s.se == pytest.approx(scale * r.se, rel=1e-6)
    assert s.tau2 == pytest.approx(a * a * r.tau2, rel=1e-5, abs=1e-9 * a * a)
    assert s.i2 == pytest.approx(r.i2, rel=1e-5, abs=1e-7)
    assert s.q == pytest.approx(r.q, rel=1e-9, abs=1e-9)
    assert s.pvalue == pytest.approx(r.pvalue, rel=1e-6, abs=1e-12)
    lo, hi = sorted((a * r.ci_lb, a * r.ci_ub))
    assert (s.ci_lb, s.ci_ub) == pytest.approx((lo, hi), rel=1e-6, abs=1e-9)


@SETTINGS
@given(counts=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 40)), min_size=1, max_size=8),
       measure=st.sampled_from(("PLO", "PAS", "PFT", "PLN", "PR")),
       method=st.sampled_from(("EE", "DL", "REML")), test=st.sampled_from(("z", "knha")))
def test_pooled_proportions_stay_in_the_unit_interval(counts, measure, method, test):
    x = np.array([min(a, n) for a, n in counts], dtype=float)
    n = np.array([n for _, n in counts], dtype=float)
    r = pool_proportions(x, n, measure=measure, method=method, test=test)
    nat = r.natural
    est = r.estimate if nat is None else nat.estimate
    assert 0 <= est <= 1 or measure == "PR"  # PR: a weighted mean of proportions is in [0, 1] too
    if measure == "PR":
        assert -1e-12 <= r.estimate <= 1 + 1e-12
        return
    assert 0 <= nat.ci_lb <= nat.estimate <= nat.ci_ub
    if measure != "PLN":  # exp() of a log-proportion bound is not capped at 1 (as metafor)
        assert nat.ci_ub <= 1


@SETTINGS
@given(x=st.lists(st.floats(-50, 50), min_size=1, max_size=20),
       measure=st.sampled_from(("PLO", "PAS", "PFT", "IRS", "OR", "RR", "IRLN")),
       n=st.integers(1, 500))
def test_back_transforms_stay_in_the_parameter_space(x, measure, n):
    x = np.array(x)
    p = back_transform(measure, x, np.full(len(x), float(n)))
    assert np.all(np.isfinite(p) | (p == np.inf))
    assert np.all(p >= 0)
    if measure in ("PLO", "PAS", "PFT"):
        assert np.all(p <= 1)
    if measure in ("PLO", "OR", "RR", "IRLN"):  # monotone maps
        order = np.argsort(x, kind="stable")
        assert np.all(np.diff(p[order]) >= 0)


@FEW
@given(m=st.integers(1, 6), k=st.integers(2, 8), method=st.sampled_from(BATCH_METHODS),
       test=st.sampled_from(("z", "knha")), seed=st.integers(0, 2**32 - 1))
def test_pool_batch_equals_pool_row_by_row(m, k, method, test, seed):
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 1, (m, k))
    yi = rng.normal(0.3, np.sqrt(vi + rng.uniform(0, 0.5)), (m, k))
    b = pool_batch(yi, vi, method=method, test=test)
    for i in range(m):
        r = pool(yi[i], vi[i], method=method, test=test)
        for f in ("estimate", "se", "ci_lb", "ci_ub", "pvalue", "pi_lb", "pi_ub", "tau2", "i2", "q"):
            assert _close(float(getattr(b, f)[i]), float(getattr(r, f)), rtol=1e-6, atol=1e-9), (f, i)


def _binomial_normal_loglik(mu: float, tau2: float, x, n) -> float:
    """Marginal log-likelihood of the binomial-normal model by adaptive quadrature
    (scipy.integrate.quad over the random effect; independent of metamsc's AGQ)."""
    from scipy import integrate
    from scipy.special import expit, gammaln

    total = 0.0
    for xi, ni in zip(x, n):
        const = gammaln(ni + 1) - gammaln(xi + 1) - gammaln(ni - xi + 1)
        if tau2 == 0:
            eta = mu
            total += const + xi * eta - ni * np.logaddexp(0, eta)
            continue
        sd = math.sqrt(tau2)

        def f(z):
            eta = mu + sd * z
            return math.exp(xi * eta - ni * np.logaddexp(0, eta) - z * z / 2) / math.sqrt(2 * math.pi)

        val, _ = integrate.quad(f, -12, 12, epsabs=0, epsrel=1e-12, limit=200)
        total += const + math.log(val)
    return total


@FEW
@given(counts=st.lists(st.tuples(st.integers(0, 30), st.integers(5, 30)), min_size=3, max_size=6))
def test_glmm_estimate_maximises_the_likelihood(counts):
    """At the fitted (mu, tau^2) the exact marginal likelihood is not below nearby points."""
    x = np.array([min(a, n) for a, n in counts], dtype=float)
    n = np.array([n for _, n in counts], dtype=float)
    if np.all((x == 0) | (x == n)):
        return  # no model is identifiable (every study 0% or 100%): tested elsewhere
    r = fit_glmm(x, n, nagq="high")
    mu, tau2 = r.estimate, r.tau2
    # with tau^2 beyond ~10 on the logit scale the likelihood is flat in tau^2 and the AGQ
    # maximum lies within the quadrature error (~1e-5) of the exact one: not a test of the fit
    assume(tau2 < 10)
    best = _binomial_normal_loglik(mu, tau2, x, n)
    for dmu, dt in ((0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05), (0.03, 0.03), (-0.03, -0.03)):
        t = tau2 + dt
        if t < 0:
            continue
        # tolerance: the fit maximises the 41-node AGQ likelihood, which differs from the exact
        # one by ~1e-7 where tau^2 is very large and the likelihood is flat in it
        assert _binomial_normal_loglik(mu + dmu, t, x, n) <= best + 1e-6 * (1 + abs(best)), (dmu, dt)


@FEW
@given(data=studies(), seed=st.integers(0, 2**32 - 1))
def test_genq_with_inverse_variance_weights_is_dl(data, seed):
    """GENQ with weights 1/vi is the DerSimonian-Laird estimator (DerSimonian & Kacker 2007)."""
    yi, vi = data
    a = pool(yi, vi, method="GENQ", weights=1 / vi)
    b = pool(yi, vi, method="DL")
    assert a.tau2 == pytest.approx(b.tau2, rel=1e-6, abs=1e-9)


def test_properties_are_deterministic():
    assert SETTINGS.derandomize and FEW.derandomize and SETTINGS.deadline is None
    assert metamsc.pool is pool
