"""Effect sizes beyond the escalc fixtures: meta's conventions, study CIs, back-transforms."""

from __future__ import annotations

import numpy as np
import pytest

import metamsc as mm
from metamsc import transforms


def test_meta_convention_for_raw_proportions():
    """meta::metaprop(sm="PRAW"): x/n uncorrected, variance (x+c)(n-x+c)/(n+2c)^3 where x in {0, n}."""
    es = mm.effect_size("PR", events=[0, 3, 5], total=[10, 10, 5], convention="meta")
    np.testing.assert_allclose(es.yi, [0.0, 0.3, 1.0], rtol=1e-15)
    np.testing.assert_allclose(es.vi, [0.5 * 10.5 / 11**3, 0.3 * 0.7 / 10, 5.5 * 0.5 / 6**3], rtol=1e-14)
    assert list(es.corrected) == [True, False, True]
    metafor = mm.effect_size("PR", events=[0, 3, 5], total=[10, 10, 5])
    assert metafor.yi[0] == pytest.approx(0.5 / 11)  # metafor corrects the estimate too


def test_meta_convention_for_log_proportions():
    """meta::metaprop(sm="PLN"): log((x+c)/(n+c)); 1/x - 1/(n+c) when x = n (Hartung & Knapp 2001)."""
    es = mm.effect_size("PLN", events=[0, 3, 5], total=[10, 10, 5], convention="meta")
    np.testing.assert_allclose(es.yi, [np.log(0.5 / 10.5), np.log(0.3), 0.0], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(es.vi, [1 / 0.5 - 1 / 10.5, 1 / 3 - 1 / 10, 1 / 5 - 1 / 5.5], rtol=1e-14)
    with pytest.raises(ValueError, match="unknown convention"):
        mm.effect_size("PLN", events=[1], total=[2], convention="stata")


def test_study_proportion_ci_from_effect_sizes():
    from scipy.stats import binomtest

    es = mm.effect_size("PLO", events=[0, 8, 2], total=[17, 17, 2])
    lo, hi = es.proportion_ci("CP")
    for i, (x, n) in enumerate([(0, 17), (8, 17), (2, 2)]):
        ci = binomtest(x, n).proportion_ci(method="exact")
        assert (lo[i], hi[i]) == pytest.approx((ci.low, ci.high), rel=1e-10, abs=1e-15)
    with pytest.raises(ValueError, match="not a single proportion"):
        mm.effect_size("GEN", yi=[1.0], vi=[1.0]).proportion_ci()


@pytest.mark.parametrize("n", [1, 2, 7, 17, 120])
def test_freeman_tukey_round_trip(n):
    """Miller (1978): the inverse recovers p = x/n from the double arcsine of x events in n."""
    x = np.arange(n + 1)
    t = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
    np.testing.assert_allclose(transforms.ipft(t, n), x / n, atol=1e-12)


def test_back_transforms():
    x = np.array([-3.0, 0.0, 2.5])
    np.testing.assert_allclose(transforms.ilogit(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(transforms.ilogit(np.array([-800.0, 800.0])), [0.0, 1.0])
    np.testing.assert_allclose(transforms.iarcsine(transforms.arcsine([0.1, 0.5, 0.9])), [0.1, 0.5, 0.9])
    assert transforms.iarcsine(np.array([-0.1, 2.0])).tolist() == [0.0, 1.0]
    assert transforms.harmonic_mean([2, 1, 17, 2, 1]) == pytest.approx(5 / (0.5 + 1 + 1 / 17 + 0.5 + 1))
    r = np.array([0.0, 0.01, 0.2])
    t = 0.5 * (np.sqrt(r) + np.sqrt(r + 1 / 50.0))
    np.testing.assert_allclose(transforms.irft(t, 50.0), r, atol=1e-14)


def test_effect_sizes_object():
    es = mm.effect_size("SMCR", n=[14], mean_pre=[20.1], sd_pre=[3.1], mean_post=[13.8], r=[0.5])
    assert es.k == 1 and es.measure == "SMCR"
    # Becker (1988): g = c(n-1) (post - pre) / sd_pre, v = 2(1-r)/n + g^2/(2n)
    from math import exp, lgamma, sqrt

    c = exp(lgamma(13 / 2) - lgamma(12 / 2)) / sqrt(13 / 2)
    g = c * (13.8 - 20.1) / 3.1
    assert es.yi[0] == pytest.approx(g, rel=1e-12)
    assert es.vi[0] == pytest.approx(2 * 0.5 / 14 + g**2 / 28, rel=1e-12)
    lo, hi = es.confidence_interval(0.90)
    assert (lo[0], hi[0]) == pytest.approx((g - 1.6448536269514722 * sqrt(es.vi[0]),
                                            g + 1.6448536269514722 * sqrt(es.vi[0])), rel=1e-12)
    df = es.to_frame()
    assert list(df.columns) == ["study", "yi", "vi", "sei", "ci_lb", "ci_ub"]
    with pytest.raises(ValueError, match="unknown measure"):
        mm.effect_size("LOGIT", events=[1], total=[2])
    with pytest.raises(ValueError, match="role 'r' must lie in"):
        mm.effect_size("MC", n=[5], mean_pre=[1], sd_pre=[1], mean_post=[2], sd_post=[1], r=[1.5])


def test_import_is_light():
    """`import metamsc` loads neither matplotlib, pandas, statsmodels nor scipy.stats."""
    import subprocess
    import sys

    code = ("import sys, metamsc; heavy = [m for m in ('matplotlib', 'pandas', 'statsmodels', "
            "'scipy.stats', 'scipy.optimize') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
