"""Confidence intervals for a single proportion (metamsc.proportions).

Published reference: Newcombe RG. Two-sided confidence intervals for the
single proportion: comparison of seven methods. Stat Med 1998;17:857-872,
Table I (95% intervals for 81/263, 15/148, 0/20 and 1/29, 4 decimals).
Independent implementations: scipy.stats.binomtest(...).proportion_ci and
statsmodels.stats.proportion.proportion_confint.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from metamsc.proportions import CI_METHODS, ProportionCI, cp_upper_bound, proportion_ci

X = np.array([81, 15, 0, 1])
N = np.array([263, 148, 20, 29])

# Newcombe (1998) Table I, 95% limits as printed (4 decimals):
# method 3 = Wilson score, method 4 = score with continuity correction,
# method 5 = Clopper-Pearson exact. (The same figures are quoted, e.g., by the
# test suite of the R package ratesci, "Single proportion, Newcombe examples".)
NEWCOMBE_TABLE_I = {
    "WS": [(0.2553, 0.3662), (0.0624, 0.1605), (0.0000, 0.1611), (0.0061, 0.1718)],
    "WSCC": [(0.2535, 0.3682), (0.0598, 0.1644), (0.0000, 0.2005), (0.0018, 0.1963)],
    "CP": [(0.2527, 0.3676), (0.0578, 0.1617), (0.0000, 0.1684), (0.0009, 0.1776)],
}

# Newcombe's methods 1 (Wald) and 2 (Wald with continuity correction) at 4
# decimals. These were NOT checked against a printed copy of Table I: they are
# p -/+ z sqrt(pq/n) (+ 1/(2n)) worked out by hand. Newcombe reports the limits
# below 0 as aberrations (1/29: -0.0319 and -0.0492; 0/20 with CC: -0.0250);
# proportion_ci truncates them at 0, as R meta does.
WALD_UNCLAMPED = {
    "SA": [(0.2522, 0.3638), (0.0527, 0.1500), (0.0000, 0.0000), (-0.0319, 0.1009)],
    "SACC": [(0.2503, 0.3657), (0.0494, 0.1534), (-0.0250, 0.0250), (-0.0492, 0.1181)],
}


@pytest.mark.parametrize("method", sorted(NEWCOMBE_TABLE_I))
def test_newcombe_table_i(method):
    lo, hi = proportion_ci(X, N, method)
    want = np.array(NEWCOMBE_TABLE_I[method])
    # agreement to the published precision: rounding to 4 decimals reproduces the table
    np.testing.assert_array_equal(np.round(lo, 4), want[:, 0])
    np.testing.assert_array_equal(np.round(hi, 4), want[:, 1])


@pytest.mark.parametrize("method", sorted(WALD_UNCLAMPED))
def test_wald_intervals(method):
    lo, hi = proportion_ci(X, N, method)
    want = np.array(WALD_UNCLAMPED[method])
    np.testing.assert_array_equal(np.round(lo, 4), np.clip(want[:, 0], 0, 1))
    np.testing.assert_array_equal(np.round(hi, 4), np.clip(want[:, 1], 0, 1))


GRID = [(x, n) for n in (1, 2, 3, 5, 10, 20, 29, 50, 148, 263, 1000)
        for x in sorted({0, 1, 2, n // 3, n // 2, n - 2, n - 1, n}) if 0 <= x <= n]


@pytest.mark.parametrize("level", [0.90, 0.95, 0.99])
def test_against_scipy_binomtest(level):
    x = np.array([g[0] for g in GRID])
    n = np.array([g[1] for g in GRID])
    for method, sp in (("CP", "exact"), ("WS", "wilson"), ("WSCC", "wilsoncc")):
        lo, hi = proportion_ci(x, n, method, level)
        for i, (xi, ni) in enumerate(GRID):
            ref = stats.binomtest(int(xi), int(ni)).proportion_ci(level, method=sp)
            # scipy does not clamp the (rare) Wilson-CC limits outside [0, 1]
            assert lo[i] == pytest.approx(min(max(ref.low, 0.0), 1.0), abs=1e-12), (method, xi, ni)
            assert hi[i] == pytest.approx(min(max(ref.high, 0.0), 1.0), abs=1e-12), (method, xi, ni)


@pytest.mark.parametrize("level", [0.90, 0.95, 0.99])
def test_against_statsmodels(level):
    from statsmodels.stats.proportion import proportion_confint

    x = np.array([g[0] for g in GRID])
    n = np.array([g[1] for g in GRID])
    inner = (x > 0) & (x < n)
    for method, sm in (("AC", "agresti_coull"), ("SA", "normal"), ("JEFFREYS", "jeffreys"),
                       ("CP", "beta"), ("WS", "wilson")):
        lo, hi = proportion_ci(x, n, method, level)
        rlo, rhi = (np.clip(v, 0, 1) for v in proportion_confint(x, n, 1 - level, sm))
        # statsmodels' Jeffreys interval has no special case at x = 0 or x = n
        m = inner if method == "JEFFREYS" else np.ones_like(inner)
        np.testing.assert_allclose(lo[m], rlo[m], rtol=0, atol=1e-12, err_msg=method)
        np.testing.assert_allclose(hi[m], rhi[m], rtol=0, atol=1e-12, err_msg=method)


def test_closed_forms_and_boundaries():
    n = np.array([1, 5, 20, 100])
    z = stats.norm.isf(0.025)
    # CP at x = 0: upper = 1 - (alpha/2)^(1/n); at x = n: lower = (alpha/2)^(1/n)
    lo, hi = proportion_ci(0, n, "CP")
    np.testing.assert_array_equal(lo, 0.0)
    np.testing.assert_allclose(hi, 1 - 0.025 ** (1 / n), rtol=1e-13)
    lo, hi = proportion_ci(n, n, "CP")
    np.testing.assert_allclose(lo, 0.025 ** (1 / n), rtol=1e-13)
    np.testing.assert_array_equal(hi, 1.0)
    # Wilson at x = 0: [0, z^2 / (n + z^2)]
    lo, hi = proportion_ci(0, n, "WS")
    np.testing.assert_array_equal(lo, 0.0)
    np.testing.assert_allclose(hi, z**2 / (n + z**2), rtol=1e-13)
    for method in CI_METHODS:
        for x in (0, n):
            lo, hi = proportion_ci(x, n, method)
            assert np.all((0 <= lo) & (lo <= hi) & (hi <= 1)), method
        lo, _ = proportion_ci(0, n, method)
        _, hi = proportion_ci(n, n, method)
        np.testing.assert_array_equal(lo, 0.0, err_msg=method)
        np.testing.assert_array_equal(hi, 1.0, err_msg=method)
    # Wald at 0/n collapses to [0, 0] (Newcombe's zero-width interval)
    assert proportion_ci(0, 20, "SA") == (0.0, 0.0)


def test_symmetry_p_and_1_minus_p():
    x, n = np.array([0, 1, 3, 7, 15]), np.array([20, 29, 10, 7, 148])
    for method in CI_METHODS:
        lo, hi = proportion_ci(x, n, method)
        lo2, hi2 = proportion_ci(n - x, n, method)
        np.testing.assert_allclose(lo, 1 - hi2, atol=1e-12, err_msg=method)
        np.testing.assert_allclose(hi, 1 - lo2, atol=1e-12, err_msg=method)


def test_vectorised_and_scalar():
    res = proportion_ci([81, 15, 0, 1], [263, 148, 20, 29])
    assert isinstance(res, ProportionCI) and res.lower.shape == (4,)
    for i in range(4):
        lo, hi = proportion_ci(int(X[i]), int(N[i]))
        assert isinstance(lo, float) and isinstance(hi, float)
        assert (lo, hi) == (res.lower[i], res.upper[i])
    lo, hi = proportion_ci(np.array([[0, 1], [2, 3]]), 10, "wscc")  # broadcast, any case
    assert lo.shape == hi.shape == (2, 2)
    assert proportion_ci(5, 10, "CP", level=0.99).lower < proportion_ci(5, 10, "CP", level=0.9).lower


def test_cp_upper_bound():
    n = np.array([1, 3, 20, 300])
    np.testing.assert_allclose(cp_upper_bound(0, n), 1 - 0.05 ** (1 / n), rtol=1e-13)
    assert cp_upper_bound(0, 300) == pytest.approx(3 / 300, rel=0.01)  # rule of three
    assert cp_upper_bound(5, 5) == 1.0
    # one-sided 95% bound = upper limit of the two-sided 90% exact interval
    for x, nn in [(1, 29), (15, 148), (81, 263)]:
        assert cp_upper_bound(x, nn) == pytest.approx(proportion_ci(x, nn, "CP", 0.90).upper, rel=1e-14)
        ref = stats.binomtest(x, nn, alternative="less").proportion_ci(0.95, "exact").high
        assert cp_upper_bound(x, nn) == pytest.approx(ref, abs=1e-12)
    assert isinstance(cp_upper_bound(0, 10), float)


def test_invalid_input():
    with pytest.raises(ValueError):
        proportion_ci(3, 2)
    with pytest.raises(ValueError):
        proportion_ci(-1, 2)
    with pytest.raises(ValueError):
        proportion_ci(0, 0)
    with pytest.raises(ValueError):
        proportion_ci(1, 2, "NOPE")
    with pytest.raises(ValueError):
        proportion_ci(1, 2, level=95)
    with pytest.raises(ValueError):
        cp_upper_bound(1, 2, level=1.0)
    with pytest.raises(ValueError):
        proportion_ci(np.nan, 2)
