"""pool()'s heterogeneity-interval options and the measure registry behind its natural scale:
each option gives exactly the value of the function that is checked against metafor in
test_hetci.py / test_measures.py (R: confint(rma(...), type = "PL"), escalc(...))."""

from __future__ import annotations

import numpy as np
import pytest

import metamsc as mm
from metamsc.hetci import h_i2_ci, tau2_ci

from bcg_data import bcg_tables


def _bcg():
    events1, total1, events2, total2 = bcg_tables()
    es = mm.effect_size("RR", events1=events1, total1=total1, events2=events2, total2=total2)
    return np.asarray(es.yi), np.asarray(es.vi)


@pytest.mark.parametrize("method", ["REML", "ML", "DL"])
@pytest.mark.parametrize("ci", ["PL", "Wald", "J"])
def test_pool_tau2_ci_is_the_hetci_interval(method, ci):
    y, v = _bcg()
    res = mm.pool(y, v, method=method, tau2_ci=ci)
    if ci == "PL" and method == "DL":
        ref = tau2_ci(y, v, res.tau2, method="PL", estimator="REML", se_tau2=res.se_tau2)
    else:
        ref = tau2_ci(y, v, res.tau2, method=ci, estimator=method if method != "DL" else "REML",
                      se_tau2=res.se_tau2)
    assert (res.tau2_ci_lb, res.tau2_ci_ub) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert res.conventions.tau2_ci != "Q-profile (Viechtbauer 2007)"
    # the default stays the Q-profile
    qp = mm.pool(y, v, method=method)
    assert qp.conventions.tau2_ci == "Q-profile (Viechtbauer 2007)"


def test_pool_q_based_i2_has_meta_test_based_interval():
    y, v = _bcg()
    res = mm.pool(y, v, i2="Q")
    hc = h_i2_ci(res.q, res.k, 0.95)
    assert (res.i2_ci_lb, res.i2_ci_ub) == pytest.approx((hc.i2_low, hc.i2_high), rel=1e-12)
    assert (res.h2_ci_lb, res.h2_ci_ub) == pytest.approx((hc.h_low**2, hc.h_high**2), rel=1e-12)


def test_pool_q_based_h_is_at_least_one():
    """Q < k - 1: meta reports I^2 = 0 and H = max(1, sqrt(Q/(k-1))) = 1 (Fleiss 1993 SMD data,
    Q = 3.68 on 4 df, printed "H = 1"); metafor's common-effect H^2 = Q/(k-1) stays unfloored."""
    y = [-0.3399, -0.5659, -0.2999, 0.1250, -0.7346]
    v = [0.1564, 0.0554, 0.0578, 0.1002, 0.2723]
    res = mm.pool(y, v, method="DL", i2="Q")
    assert res.q < res.q_df
    assert res.i2 == 0.0 and res.h2 == 1.0
    assert res.h2 == pytest.approx(h_i2_ci(res.q, res.k).h ** 2, rel=1e-12)
    ee = mm.pool(y, v, method="EE")
    assert ee.h2 == pytest.approx(ee.q / (ee.k - 1), rel=1e-12) and ee.h2 < 1


def test_unknown_tau2_ci_is_refused():
    with pytest.raises(ValueError, match="unknown tau2_ci 'XX'"):
        mm.pool([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], tau2_ci="XX")


def test_natural_scale_comes_from_the_registry():
    # ZCOR: Fisher's z back to a correlation (metafor transf.ztor); a measure the old table lacked
    es = mm.effect_size("ZCOR", r=[0.2, 0.4, 0.5], n=[30, 40, 50])
    res = mm.pool_effects(es, method="DL")
    assert res.natural is not None and res.natural.scale == "correlation"
    assert res.natural.estimate == pytest.approx(np.tanh(res.estimate), rel=1e-14)
    from metamsc.transforms import TRANSFORMS

    assert res.conventions.back_transform == TRANSFORMS["transf.ztor"][2]


def test_duplicate_labels_are_said_in_the_api():
    r = mm.pool([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], labels=["a", "a", "b"])
    assert any("study labels used more than once: a" in w for w in r.warnings)
    assert not mm.pool([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], labels=["a", "b", "c"]).warnings


def test_freeman_tukey_inverse_beyond_the_range_is_silent():
    import warnings

    from metamsc.transforms import back_transform

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert back_transform("PFT", [50.0], [1.0])[0] in (0.0, 1.0)


def test_pi_rule_v_is_t_k_minus_1_with_the_model_based_se():
    """meta's method.predict = "V" (meta >= 8's default; Higgins, Thompson & Spiegelhalter 2009
    with k - 1 df): t(k-1) * sqrt(SE_model^2 + tau^2), the model-based SE also under
    Hartung-Knapp, where pi="t" takes the Hartung-Knapp SE and pi="HTS" t(k-2)."""
    from scipy import stats

    y, v = _bcg()
    k = len(y)
    for test in ("z", "knha"):
        res = mm.pool(y, v, method="REML", test=test, pi="V")
        half = stats.t.isf(0.025, k - 1) * np.sqrt(res.se_model**2 + res.tau2)
        assert (res.pi_lb, res.pi_ub) == pytest.approx((res.estimate - half, res.estimate + half),
                                                       rel=1e-12)
        assert "method.predict='V'" in res.conventions.prediction_interval
        assert res.prediction_interval(rule="V").lower == pytest.approx(res.pi_lb, rel=1e-12)
    knha = mm.pool(y, v, method="REML", test="knha", pi="V")
    assert abs(knha.se - knha.se_model) > 1e-3  # the Hartung-Knapp SE differs here ...
    t_rule = mm.pool(y, v, method="REML", test="knha", pi="t")
    assert abs(t_rule.pi_ub - knha.pi_ub) > 1e-4  # ... so pi="t" is another interval
    with pytest.raises(ValueError, match="prediction-interval rule"):
        mm.pool(y, v, method="REML", pi="VV")
