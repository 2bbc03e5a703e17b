"""Mantel-Haenszel and Peto pooling against R metafor 3.8-1 (rma.mh, rma.peto).

Expected values are in tests/reference/twogroup.json (written by
tests/reference/make_fixtures.R; each case records its R call).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import metamsc as mm
from metamsc.results import MetaResult
from metamsc.twogroup import pool_mh, pool_mh_rates, pool_peto

from bcg_data import bcg_tables

REF = Path(__file__).parent / "reference"
TWOGROUP = json.loads((REF / "twogroup.json").read_text())
CASES = TWOGROUP["cases"]

CLOSED = 1e-10  # every quantity here is a closed form (Breslow-Day: root of a quadratic)

_ZERO_SETS = ("dat.nielweise2007", "dat.collins1985b_ped", "dat.yusuf1985_t9")
EXPECTED_IDS = set()
for _ds in ("dat.bcg",) + _ZERO_SETS:
    EXPECTED_IDS |= {f"twogroup:rma.mh:{_ds}:{m}" for m in ("OR", "RR", "RD")}
    EXPECTED_IDS |= {f"twogroup:rma.mh:{_ds}:OR:correct=FALSE", f"twogroup:rma.peto:{_ds}:OR"}
    if _ds in _ZERO_SETS:
        EXPECTED_IDS |= {f"twogroup:rma.mh:{_ds}:{m}:drop00=FALSE" for m in ("OR", "RR", "RD")}
        EXPECTED_IDS |= {f"twogroup:rma.mh:{_ds}:OR:to=all", f"twogroup:rma.peto:{_ds}:OR:drop00=FALSE"}


def _arr(xs):
    return np.array([np.nan if x is None else x for x in xs], dtype=float)


def _fit(case) -> MetaResult:
    i, args = case["inputs"], case["args"]
    data = (i["ai"], i["n1i"], i["ci"], i["n2i"])
    kw = dict(level=case["level"], add=args["add"], to=args["to"], drop00=args["drop00"],
              labels=case["slab"])
    if case["function"] == "rma.mh":
        return pool_mh(*data, measure=case["measure"], correct=args["correct"], **kw)
    return pool_peto(*data, **kw)


def _close(got, want, rtol=CLOSED, what=""):
    if want is None:
        assert got is None or not np.isfinite(got), what
    else:
        assert got == pytest.approx(want, rel=rtol, abs=1e-300), what


def test_fixture_cases_are_complete():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) == 35
    assert set(ids) == EXPECTED_IDS
    assert all("error" not in c["expected"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_matches_metafor(case):
    e = case["expected"]
    r = _fit(case)
    assert r.k == e["k"]
    assert r.k_yi == e["k_yi"]
    assert r.q_df == e["k_yi"] - 1
    for name, got in [("beta", r.estimate), ("se", r.se), ("zval", r.statistic), ("pval", r.pvalue),
                      ("ci_lb", r.ci_lb), ("ci_ub", r.ci_ub), ("QE", r.q), ("QEp", r.q_pvalue),
                      ("I2", r.i2), ("H2", r.h2)]:
        _close(got, e[name], what=name)
    # the Q-based I^2 property of MetaResult agrees with metafor's I2 as well
    _close(r.i2_q, e["I2"], what="i2_q")
    for name in ("CO", "COp", "CMH", "CMHp", "BD", "BDp", "TA", "TAp"):
        if e[name] is not None:
            _close(getattr(r, name), e[name], what=name)
    if case["function"] == "rma.mh" and case["measure"] == "OR":
        assert all(e[n] is not None for n in ("CMH", "BD", "TA"))
    for name, got in [("weights", r.weights), ("yi", r.yi), ("vi", r.vi)]:
        want = _arr(e[name])
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
        ok = ~np.isnan(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=CLOSED, atol=0, err_msg=name)
    if "exp_beta" in e:
        assert r.natural is not None and r.natural.transform == "exp"
        _close(r.natural.estimate, e["exp_beta"], what="exp_beta")
        _close(r.natural.ci_lb, e["exp_ci_lb"], what="exp_ci_lb")
        _close(r.natural.ci_ub, e["exp_ci_ub"], what="exp_ci_ub")
    else:
        assert r.natural is None
    assert r.labels == tuple(case["slab"])
    # metafor warns "Some yi/vi values are NA." exactly when a yi is missing
    assert any(w.startswith("Some yi/vi values are NA") for w in r.warnings) == \
        any("Some yi/vi values are NA" in w for w in case["warnings"])


@pytest.mark.parametrize("case", [c for c in CASES if c["function"] == "rma.mh"
                                  and c["measure"] in ("RR", "RD")], ids=lambda c: c["id"])
def test_cmh_does_not_depend_on_the_measure(case):
    """CMH/CO test no association; metafor reports them for OR only, here for every measure."""
    twin = next(c for c in CASES if c["id"] == case["id"].replace(f":{case['measure']}", ":OR"))
    r = _fit(case)
    for name in ("CO", "COp", "CMH", "CMHp"):
        _close(getattr(r, name), twin["expected"][name], what=name)
    assert r.BD is None and "BD" not in r._typed_extra()


def test_conventions_and_result_object():
    case = next(c for c in CASES if c["id"] == "twogroup:rma.mh:dat.nielweise2007:OR")
    r = _fit(case)
    assert isinstance(r, MetaResult)
    assert r.method == "EE" and r.test == "z" and r.df is None and r.tau2 == 0
    assert r.conventions.tau2_estimator == "MH"
    assert r.pooling == "Mantel-Haenszel" and r.model == "MH"
    assert "Robins, Breslow & Greenland" in r.diagnostics.algorithm
    assert np.isnan(r.pi_lb) and np.isnan(r.pi_ub)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.estimate = 0.0
    with pytest.raises(ValueError):
        r.weights[0] = 1.0
    assert r.weights.sum() == pytest.approx(100)
    assert "Common-effects model" in r.summary()
    d = r.to_dict()
    assert len(d["studies"]) == 18 and np.isnan(d["studies"][14]["yi"])  # double-zero study: no yi
    assert d["studies"][14]["weight"] == 0
    p = _fit(next(c for c in CASES if c["id"] == "twogroup:rma.peto:dat.bcg:OR"))
    assert p.measure == "PETO" and p.conventions.tau2_estimator == "PETO"
    assert p.natural.scale == "odds ratio"
    r_rd = _fit(next(c for c in CASES if c["id"] == "twogroup:rma.mh:dat.bcg:RD"))
    assert "Sato, Greenland & Robins" in r_rd.diagnostics.algorithm
    r_rr = _fit(next(c for c in CASES if c["id"] == "twogroup:rma.mh:dat.bcg:RR"))
    assert "Greenland & Robins (1985)" in r_rr.diagnostics.algorithm


def _niel():
    i = next(c for c in CASES if c["dataset"] == "dat.nielweise2007")["inputs"]
    return i["ai"], i["n1i"], i["ci"], i["n2i"]


# Values typed from R 4.2.2 / metafor 3.8-1 (printed with sprintf("%.17g")), with
# dat <- with(dat.nielweise2007, data.frame(ai=ai, bi=n1i-ai, ci=ci, di=n2i-ci)):
def test_pairs_of_add_to_drop00_as_metafor():
    # rma.mh(ai=ai, bi=bi, ci=ci, di=di, data=dat, measure='OR', add=c(0.5,0.5),
    #        to=c('only0','only0'), drop00=c(TRUE,TRUE))
    r = pool_mh(*_niel(), add=(0.5, 0.5), to=("only0", "only0"), drop00=(True, True))
    assert r.k == 17 and r.k_yi == 17 and len(r.excluded) == 1
    for got, want in [(r.estimate, -1.1485772259411275), (r.se, 0.21443043583612878),
                      (r.q, 16.406397980499872), (r.CMH, 30.918667654442253),
                      (r.TA, 22.032908350061543)]:
        _close(got, want)
    # rma.mh(..., measure='RR', add=c(0.5,0.5), to=c('all','all'))
    r = pool_mh(*_niel(), measure="RR", add=(0.5, 0.5), to=("all", "all"))
    assert r.k == 18
    for got, want in [(r.estimate, -0.99209463373754059), (r.se, 0.19307309909629444),
                      (r.q, 16.155838603782328)]:
        _close(got, want)
    # rma.peto(..., add=c(0.5,0.5), to=c('only0','only0'), drop00=c(TRUE,TRUE))
    r = pool_peto(*_niel(), add=(0.5, 0.5), to=("only0", "only0"), drop00=(True, True))
    assert r.k == 17
    for got, want in [(r.estimate, -1.0602106743138604), (r.se, 0.18750819499561561),
                      (r.q, 16.591766645955627)]:
        _close(got, want)
    # rma.mh(ai=ai, bi=bi, ci=ci, di=di, data=dat, measure='OR', level=90)
    r = pool_mh(*_niel(), level=0.90)
    _close(r.ci_lb, -1.5745949908262475)
    _close(r.ci_ub, -0.84281467464128612)


def test_statsmodels_stratified_table_agrees():
    """Independent implementation: statsmodels StratifiedTable (MH OR, RBG SE, CMH, BD, Tarone)."""
    from statsmodels.stats.contingency_tables import StratifiedTable

    for cid in ("twogroup:rma.mh:dat.bcg:OR", "twogroup:rma.mh:dat.bcg:OR:correct=FALSE"):
        case = next(c for c in CASES if c["id"] == cid)
        i = case["inputs"]
        tab = np.array([[[a, b], [c, d]] for a, b, c, d in zip(i["ai"], i["bi"], i["ci"], i["di"])],
                       dtype=float).transpose(1, 2, 0)
        st = StratifiedTable(tab)
        r = _fit(case)
        assert r.estimate == pytest.approx(st.logodds_pooled, rel=1e-12)
        assert r.se == pytest.approx(st.logodds_pooled_se, rel=1e-12)
        correct = case["args"]["correct"]
        assert r.CMH == pytest.approx(st.test_null_odds(correction=correct).statistic, rel=1e-12)
        assert r.BD == pytest.approx(st.test_equal_odds(adjust=False).statistic, rel=1e-9)
        assert r.TA == pytest.approx(st.test_equal_odds(adjust=True).statistic, rel=1e-9)


def test_not_estimable_and_invalid_input():
    # no events in the first group: the MH OR and RR are not estimable (metafor gives NA)
    r = pool_mh([0, 0], [10, 12], [3, 2], [10, 12])
    assert np.isnan(r.estimate) and np.isnan(r.se) and np.isnan(r.BD)
    assert np.isfinite(r.CMH)
    assert any("not estimable" in w for w in r.warnings)
    r = pool_mh([0, 0], [10, 12], [3, 2], [10, 12], measure="RR")
    assert np.isnan(r.estimate)
    assert np.isfinite(pool_mh([0, 0], [10, 12], [3, 2], [10, 12], measure="RD").estimate)
    with pytest.raises(ValueError, match="never occurred"):
        pool_peto([0, 0], [10, 12], [0, 0], [10, 12])
    with pytest.raises(ValueError):
        pool_mh([1], [10], [2], [10], measure="SMD")
    with pytest.raises(ValueError):
        pool_mh([11], [10], [2], [10])
    with pytest.raises(ValueError):
        pool_mh([1, 2], [10], [2], [10])
    with pytest.raises(ValueError):
        pool_mh([1], [10], [2], [10], to="sometimes")
    with pytest.raises(ValueError):
        pool_mh([1], [10], [2], [10], add=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError):
        pool_peto([1], [10], [2], [10], level=95)
    with pytest.raises(ValueError):
        pool_mh([1, 2], [10, 10], [2, 3], [10, 10], labels=["a"])


def test_single_table():
    r = pool_mh([3], [10], [1], [12])
    assert r.k == 1 and r.q == 0 and r.q_pvalue == 1 and r.i2 == 0 and r.h2 == 1
    # one table: the MH odds ratio is the table's odds ratio
    assert r.estimate == pytest.approx(np.log(3 * 11 / (7 * 1)), rel=1e-14)


# --- incidence rates: rma.mh(x1i, t1i, x2i, t2i, measure = "IRR" | "IRD") ----------------------
# Expected values: tests/reference/mh_rates.json (tests/reference/make_mh_rates_fixtures.R; each
# case records its R call in case["R"] and the leave-one-out call in case["leave1out_R"]).

RATES = json.loads((REF / "mh_rates.json").read_text())["cases"]


def _one(v):
    return v[0] if len(v) == 1 else tuple(v)


def _fit_rates(case):
    i, a = case["inputs"], case["args"]
    return pool_mh_rates(i["x1i"], i["t1i"], i["x2i"], i["t2i"], measure=case["measure"],
                         level=case["level"], add=_one(a["add"]), to=_one(a["to"]),
                         drop00=_one(a["drop00"]), correct=a["correct"], labels=case["slab"])


def test_rate_fixture_cases_are_complete():
    ids = [c["id"] for c in RATES]
    assert len(ids) == len(set(ids)) == 19
    for m in ("IRR", "IRD"):
        for lev in (95, 90):
            assert {f"dat.nielweise2008:{m}:level={lev}", f"nielweise2008_zeros:{m}:level={lev}"} <= set(ids)
    assert all(c["expected"]["leave1out"]["estimate"] for c in RATES)


@pytest.mark.parametrize("case", RATES, ids=lambda c: c["id"])
def test_mh_rates_match_metafor(case):
    """R: case["R"] (rma.mh with x1i, t1i, x2i, t2i), weights(fit), fit$yi.f, fit$vi.f."""
    r, e = _fit_rates(case), case["expected"]
    assert r.model == "MH" and r.measure == case["measure"] and r.method == "EE"
    assert r.k == e["k"] and r.k_yi == e["k_yi"] and r.q_df == e["k_yi"] - 1
    for got, key in ((r.estimate, "beta"), (r.se, "se"), (r.statistic, "zval"), (r.pvalue, "pval"),
                     (r.ci_lb, "ci_lb"), (r.ci_ub, "ci_ub"), (r.q, "QE"), (r.q_pvalue, "QEp"),
                     (r.i2, "I2"), (r.h2, "H2"), (r.CMH, "CMH"), (r.CMHp, "CMHp")):
        _close(got, e[key], what=key)
    assert np.isnan(r.CO) and r.BD is None
    extra = r.to_dict()["extra"]
    assert "CO" not in extra and ("CMH" in extra) == (case["measure"] == "IRR")
    np.testing.assert_allclose(r.weights, _arr(e["weights"]), rtol=CLOSED, atol=0)
    assert r.weights.sum() == pytest.approx(100, rel=1e-13)
    # metafor's yi.f/vi.f have one entry per input study; ours per study kept for pooling
    kept = np.asarray(r.kept)
    np.testing.assert_allclose(r.yi, _arr(e["yi"])[kept], rtol=CLOSED, atol=0, equal_nan=True)
    np.testing.assert_allclose(r.vi, _arr(e["vi"])[kept], rtol=CLOSED, atol=0, equal_nan=True)
    n_in = len(case["inputs"]["x1i"])
    assert [x.study for x in r.excluded] == [case["slab"][i] for i in range(n_in) if i not in kept]
    # metafor warns "Some yi/vi values are NA." when any input study lacks a yi; we warn about
    # the studies kept for pooling (one dropped by drop00 is in r.excluded instead)
    missing = np.isnan(_arr(e["yi"])[kept])
    assert bool(r.warnings) == bool(missing.any())
    assert any("yi/vi values are NA" in w for w in case["warnings"]) >= bool(missing.any())
    if case["measure"] == "IRR":
        assert r.natural.scale == "rate ratio" and r.natural.transform == "exp"
        for got, key in ((r.natural.estimate, "exp_beta"), (r.natural.ci_lb, "exp_ci_lb"),
                         (r.natural.ci_ub, "exp_ci_ub")):
            _close(got, e[key], what=key)
    else:
        assert r.natural is None


@pytest.mark.parametrize("case", RATES, ids=lambda c: c["id"])
def test_leave_one_out_of_mh_rates_refits_mh(case):
    """R: leave1out(fit), fit = case["R"]."""
    from metamsc import leave_one_out

    fit = _fit_rates(case)
    t, e = leave_one_out(fit), case["expected"]["leave1out"]
    assert len(t.fits) == fit.k
    assert all(f.model == "MH" and f.measure == fit.measure and f.level == fit.level for f in t.fits)
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("statistic", "zval"),
                         ("pvalue", "pval"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"), ("Q", "Q"),
                         ("Qp", "Qp"), ("I2", "I2"), ("H2", "H2")):
        np.testing.assert_allclose(getattr(t, ours), _arr(e[theirs]), rtol=CLOSED, atol=1e-300,
                                   equal_nan=True, err_msg=ours)


def test_mh_rates_refit_keeps_the_settings():
    c = next(c for c in RATES if c["id"].endswith("to=if0all:add=0.25") and c["measure"] == "IRD")
    fit = _fit_rates(c)
    sub = fit.refit([0, 2, 3, 5])
    i = c["inputs"]
    direct = pool_mh_rates(*(np.asarray(i[k])[[0, 2, 3, 5]] for k in ("x1i", "t1i", "x2i", "t2i")),
                           measure="IRD", add=0.25, to="if0all",
                           labels=[c["slab"][j] for j in (0, 2, 3, 5)])
    assert sub.estimate == direct.estimate and sub.se == direct.se and sub.q == direct.q
    assert sub.add == fit.add and sub.to == fit.to and sub.measure == "IRD"
    np.testing.assert_array_equal(sub.total1, np.asarray(i["t1i"])[[0, 2, 3, 5]])


def test_mh_rates_not_estimable_and_bad_input():
    # no event in group 1 anywhere: the MH rate ratio is not estimable (metafor: NA), IRD is
    r = pool_mh_rates([0, 0], [100, 120], [3, 2], [90, 110], measure="IRR", add=0)
    assert np.isnan(r.estimate) and np.isnan(r.se) and np.isfinite(r.CMH)
    assert any("not estimable" in w for w in r.warnings)
    r = pool_mh_rates([0, 0], [100, 120], [3, 2], [90, 110], measure="IRD")
    w = 100 * 90 / 190 + 120 * 110 / 230
    assert r.estimate == pytest.approx(-(3 * 100 / 190 + 2 * 120 / 230) / w, rel=1e-14)
    with pytest.raises(ValueError, match="pool_mh_rates"):
        pool_mh([1], [10], [2], [10], measure="IRR")
    with pytest.raises(ValueError, match="IRR or IRD"):
        pool_mh_rates([1], [10], [2], [10], measure="OR")
    with pytest.raises(ValueError, match="time2"):
        pool_mh_rates([1], [10], [2], [0])
    with pytest.raises(ValueError, match="events1"):
        pool_mh_rates([-1], [10], [2], [10])
    with pytest.raises(ValueError, match="same length"):
        pool_mh_rates([1, 2], [10], [2], [10])
    with pytest.raises(ValueError, match="to="):
        pool_mh_rates([1], [10], [2], [10], to="sometimes")
    with pytest.raises(ValueError, match="no study left"):
        pool_mh_rates([0], [10], [0], [10], drop00=(True, True))


# --- pool_mh(q=...): meta's Q.Cochrane by name ------------------------------------------------



@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_mh_q_rules(measure):
    """q="metafor" (default): rma.mh's Q, no random-effects model; q="cochrane" (meta's
    Q.Cochrane = TRUE): the same Q and the DL tau^2 of it (DerSimonian & Laird 1986) with the
    inverse-variance random-effects model on it; q="inverse" (Q.Cochrane = FALSE): Q about the
    inverse-variance common estimate, i.e. the ordinary DL fit."""
    import metamsc as mm

    tabs = bcg_tables()
    met = pool_mh(*tabs, measure=measure)
    assert met.q_rule == "metafor" and met.random is None and "random" not in met.to_dict()["extra"]
    coch = pool_mh(*tabs, measure=measure, q="Cochrane")
    assert coch.q_rule == "cochrane"
    for name in ("estimate", "se", "q", "i2", "h2", "tau2"):
        assert getattr(coch, name) == getattr(met, name), name  # the MH fit itself is unchanged
    yi, vi = np.asarray(coch.yi), np.asarray(coch.vi)
    w = 1 / vi
    tau2 = max(0.0, (coch.q - (coch.k - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    re = coch.random
    assert re.tau2 == pytest.approx(tau2, rel=1e-12)
    ref = mm.pool(yi, vi, tau2=tau2)
    for name in ("estimate", "se", "ci_lb", "ci_ub", "pvalue"):
        assert getattr(re, name) == pytest.approx(getattr(ref, name), rel=1e-12), name
    hc = mm.h_i2_ci(coch.q, coch.k)
    assert (re.q, re.i2, re.h2) == pytest.approx((coch.q, hc.i2, hc.h**2), rel=1e-12)
    assert "Q.Cochrane = TRUE" in re.conventions.tau2_estimator
    assert coch.to_dict()["extra"]["random"]["tau2"] == re.tau2
    with pytest.raises(ValueError, match="refit the Mantel-Haenszel result"):
        re.refit([0, 1, 2])
    inv = pool_mh(*tabs, measure=measure, q="inverse")
    dl = mm.pool(yi, vi, method="DL")
    assert inv.q == pytest.approx(dl.q, rel=1e-12)
    assert inv.random.tau2 == pytest.approx(dl.tau2, rel=1e-12)
    assert inv.random.estimate == pytest.approx(dl.estimate, rel=1e-12)
    assert inv.estimate == met.estimate  # still the MH estimate


def test_mh_q_rule_is_kept_by_refits_and_subgroups():
    import metamsc as mm

    tabs = bcg_tables()
    coch = pool_mh(*tabs, q="cochrane")
    sub = coch.refit(np.arange(5))
    direct = pool_mh(*(t[:5] for t in tabs), q="cochrane")
    assert sub.q_rule == "cochrane" and sub.random.tau2 == pytest.approx(direct.random.tau2, rel=1e-14)
    loo = mm.leave_one_out(coch)
    assert all(f.q_rule == "cochrane" and f.random is not None for f in loo.fits)
    g = ["x"] * 6 + ["y"] * 7
    sg = pool_mh(*tabs, q="cochrane", subgroup=g)
    assert sg.subgroups["y"].random.tau2 == pytest.approx(
        pool_mh(*(t[6:] for t in tabs), q="cochrane").random.tau2, rel=1e-14)
    one = pool_mh(*(t[:1] for t in tabs), q="cochrane")  # one study: no tau^2 to estimate
    assert one.random is None
    with pytest.raises(ValueError, match="unknown heterogeneity rule q='revman'"):
        pool_mh(*tabs, q="revman")


def test_mh_summary_shows_the_random_effects_model_of_q_cochrane():
    """summary() of pool_mh(q="cochrane") prints the random-effects model beside the MH estimate
    (as R meta does), with the numbers of ``result.random``; the default fit prints none."""
    tabs = bcg_tables()
    coch = pool_mh(*tabs, q="cochrane")
    text = str(coch.summary())
    r = coch.random
    assert "random-effects model (R meta): DL tau^2 from Q around the MH estimate" in text
    assert f"{r.tau2:.4f}" in text and f"[{r.ci_lb:.4f}, {r.ci_ub:.4f}]" in text
    assert text.index("random-effects model") < text.index("fit: ")
    assert "random-effects model" not in str(pool_mh(*tabs).summary())
    assert "inverse-variance estimate" in str(pool_mh(*tabs, q="inverse").summary())


@pytest.mark.parametrize("measure", ["IRR", "IRD"])
def test_mh_rates_q_rules_as_meta_metainc(measure):
    """pool_mh_rates(q=...) as pool_mh: "metafor" (default) has no random-effects model;
    "cochrane" takes the DL tau^2 from the Q about the MH estimate (meta's metainc, Q.Cochrane =
    TRUE) and "inverse" from the Q about the inverse-variance estimate, which is then exactly
    pool(method="DL") of the study estimates; refits keep the rule."""
    c = next(c for c in RATES if c["measure"] == measure)
    i = c["inputs"]
    args = [np.asarray(i[k], dtype=float) for k in ("x1i", "t1i", "x2i", "t2i")]
    met = pool_mh_rates(*args, measure=measure)
    coch = pool_mh_rates(*args, measure=measure, q="cochrane")
    inv = pool_mh_rates(*args, measure=measure, q="inverse")
    assert met.random is None and coch.q == met.q and coch.estimate == met.estimate
    ok = np.isfinite(coch.yi) & np.isfinite(coch.vi)
    y, v = np.asarray(coch.yi)[ok], np.asarray(coch.vi)[ok]
    w = 1 / v
    k = y.size
    want = max(0.0, (coch.q - (k - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    assert coch.random.tau2 == pytest.approx(want, rel=1e-12, abs=1e-15)
    dl = mm.pool(y, v, method="DL")
    assert inv.random.tau2 == pytest.approx(dl.tau2, rel=1e-12, abs=1e-15)
    assert inv.random.estimate == pytest.approx(dl.estimate, rel=1e-12)
    sub = coch.refit(np.arange(4))
    assert sub.q_rule == "cochrane" and sub.random is not None
    with pytest.raises(ValueError, match="unknown heterogeneity rule"):
        pool_mh_rates(*args, measure=measure, q="revman")
