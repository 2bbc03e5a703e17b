"""Effect sizes beyond the escalc fixtures: meta's conventions, study CIs, back-transforms."""

from __future__ import annotations

from math import log, sqrt

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


# --- R meta's conventions (meta is not installed here; expected values from the published
# formulas, written out per study in scalar arithmetic) -------------------------------------

_X1, _N1, _X2, _N2 = [0, 3, 0, 10, 4], [10, 12, 15, 10, 20], [2, 0, 0, 10, 6], [11, 12, 14, 10, 18]


def _meta_bin(measure, **kw):
    return mm.effect_size(measure, events1=_X1, total1=_N1, events2=_X2, total2=_N2,
                          convention="meta", **kw)


def test_meta_odds_ratio_increment_and_excluded_studies():
    """metabin(sm="OR"): 0.5 added to every cell of a study with a zero cell (Cooper & Hedges
    1994, p. 251); studies with no events or only events in both arms get no estimate."""
    es = _meta_bin("OR")
    yi, vi = es.yi, es.vi
    a, b, c, d = 0.5, 10.5, 2.5, 9.5
    assert yi[0] == pytest.approx(log(a * d / (b * c)), rel=1e-14)
    assert vi[0] == pytest.approx(1 / a + 1 / b + 1 / c + 1 / d, rel=1e-14)
    assert np.isnan(yi[2]) and np.isnan(vi[2])  # 0/15 vs 0/14
    assert np.isnan(yi[3]) and np.isnan(vi[3])  # 10/10 vs 10/10
    assert yi[4] == pytest.approx(log(4 * 12 / (16 * 6)), rel=1e-14)  # no zero cell: uncorrected
    assert list(es.corrected) == [True, True, False, False, False]


def test_meta_risk_ratio_hartung_knapp_and_cochrane():
    """metabin(sm="RR"), RR.Cochrane = FALSE: log((x1+i)/(n1+i)) - log((x2+i)/(n2+i)) with
    variance 1/(x1+i) - 1/(n1+i) + 1/(x2+i) - 1/(n2+i) (Hartung & Knapp 2001, eq. 18);
    RR.Cochrane = TRUE adds 2i to the group sizes. Only double-zero studies are left out."""
    es = _meta_bin("RR")
    assert es.yi[0] == pytest.approx(log(0.5 / 10.5) - log(2.5 / 11.5), rel=1e-14)
    assert es.vi[0] == pytest.approx(1 / 0.5 - 1 / 10.5 + 1 / 2.5 - 1 / 11.5, rel=1e-14)
    assert np.isnan(es.yi[2])
    # all events in both arms: kept for RR, and sparse (a zero non-event cell), so the increment
    # enters the group sizes but not the event counts (Hartung & Knapp 2001, eq. 18)
    assert es.yi[3] == pytest.approx(0.0, abs=1e-15)
    assert es.vi[3] == pytest.approx(2 * (1 / 10 - 1 / 10.5), rel=1e-14)
    co = _meta_bin("RR.Cochrane")
    assert co.measure == "RR"
    assert co.yi[0] == pytest.approx(log(0.5 / 11) - log(2.5 / 12), rel=1e-14)
    assert co.vi[0] == pytest.approx(1 / 0.5 - 1 / 11 + 1 / 2.5 - 1 / 12, rel=1e-14)
    # metafor's escalc RR is the Cochrane form here, with n + 2 * 1/2
    mf = mm.effect_size("RR", events1=_X1[:1], total1=_N1[:1], events2=_X2[:1], total2=_N2[:1])
    assert mf.yi[0] == pytest.approx(co.yi[0], rel=1e-14)


def test_meta_risk_difference_keeps_the_uncorrected_estimate():
    """metabin(sm="RD"): x1/n1 - x2/n2 uncorrected, variance sum (x+i)(n-x+i)/(n+2i)^3
    (Cooper & Hedges 1994, p. 246); no study is left out."""
    es = _meta_bin("RD")
    assert es.yi.tolist()[:3] == pytest.approx([0 - 2 / 11, 3 / 12 - 0, 0.0], abs=1e-15)
    assert es.vi[0] == pytest.approx(0.5 * 10.5 / 11**3 + 2.5 * 9.5 / 12**3, rel=1e-14)
    assert np.isfinite(es.vi).all()


def test_meta_increment_to_all_or_none():
    """incr applied to all studies (method.incr = "all"), to all when any is sparse ("if0all"),
    or to none."""
    es = _meta_bin("OR", to="all")
    assert es.yi[4] == pytest.approx(log(4.5 * 12.5 / (16.5 * 6.5)), rel=1e-14)
    assert np.isnan(es.yi[2])  # still left out
    none = _meta_bin("OR", to="none")
    assert np.isinf(none.yi[0]) or np.isnan(none.yi[0])
    assert none.corrected.sum() == 0
    if0 = _meta_bin("OR", to="if0all")
    np.testing.assert_allclose(if0.yi, es.yi, rtol=1e-14)


def test_meta_treatment_arm_continuity_correction():
    """Sweeting, Sutton & Lambert (2004) Stat Med 23:1351: arm increments n1/(n1+n2) and
    n2/(n1+n2) (they sum to 1, the larger arm gets the larger increment), as metabin incr="TACC"."""
    es = _meta_bin("OR", incr="TACC")
    i1, i2 = 10 / 21, 11 / 21
    a, b, c, d = 0 + i1, 10 + i1, 2 + i2, 9 + i2
    assert es.yi[0] == pytest.approx(log(a * d / (b * c)), rel=1e-14)
    assert es.vi[0] == pytest.approx(1 / a + 1 / b + 1 / c + 1 / d, rel=1e-14)
    assert es.yi[4] == pytest.approx(log(4 * 12 / (16 * 6)), rel=1e-14)  # not sparse
    rr = _meta_bin("RR", incr="TACC")
    assert rr.yi[1] == pytest.approx(log((3 + 0.5) / (12 + 0.5)) - log(0.5 / 12.5), rel=1e-14)
    with pytest.raises(ValueError, match="incr is meta's increment rule"):
        mm.effect_size("OR", events1=[1], total1=[3], events2=[0], total2=[4], incr="TACC")
    with pytest.raises(ValueError, match="unknown incr='XYZ'"):
        _meta_bin("OR", incr="XYZ")


def test_meta_smd_approximate_correction():
    """metacont(sm="SMD") default: g = (1 - 3/(4N - 9)) d with the pooled SD, and
    var = N/(n1 n2) + g^2/(2(N - 3.94)) (Deeks & Higgins 2010, Statistical algorithms in
    Review Manager 5; White & Thomas 2005)."""
    m1, s1, n1, m2, s2, n2 = 10.0, 2.0, 12, 8.5, 2.4, 15
    es = mm.effect_size("SMD", mean1=[m1], sd1=[s1], n1=[n1], mean2=[m2], sd2=[s2], n2=[n2],
                        convention="meta")
    n = n1 + n2
    sp = sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n - 2))
    g = (1 - 3 / (4 * n - 9)) * (m1 - m2) / sp
    assert es.yi[0] == pytest.approx(g, rel=1e-14)
    assert es.vi[0] == pytest.approx(n / (n1 * n2) + g**2 / (2 * (n - 3.94)), rel=1e-14)
    exact = mm.effect_size("SMD", mean1=[m1], sd1=[s1], n1=[n1], mean2=[m2], sd2=[s2], n2=[n2])
    assert es.yi[0] != exact.yi[0] and es.yi[0] == pytest.approx(exact.yi[0], rel=1e-3)
    with pytest.raises(ValueError, match="measure MD has no meta variant"):
        mm.effect_size("MD", mean1=[m1], sd1=[s1], n1=[n1], mean2=[m2], sd2=[s2], n2=[n2],
                       convention="meta")
