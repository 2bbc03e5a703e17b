"""Sensitivity analyses and small-study tests against R metafor 3.8-1.

Expected values: tests/reference/bias.json, written by tests/reference/make_bias_fixtures.R
(leave1out, cumul, regtest, ranktest, trimfill on rma.uni fits); each case carries its R call.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import metamsc as mm
from metamsc.bias import BeggTest, EggerTest, TrimAndFill, begg_test, egger_test, trim_and_fill
from metamsc.metareg import meta_regression
from metamsc.sensitivity import Cumulative, LeaveOneOut, cumulative, leave_one_out

REF = Path(__file__).parent / "reference"
BIAS = json.loads((REF / "bias.json").read_text())
DATA = BIAS["datasets"]
CASES = BIAS["cases"]

CLOSED = 1e-10  # closed forms
ITER = 1e-7  # iterative estimators (ML, REML, EB, PM, PMM) and root finding
_ITERATIVE = ("ML", "REML", "EB", "PM", "PMM")


def _tol(method):
    return ITER if method in _ITERATIVE else CLOSED


def _arr(xs):
    return np.array([np.nan if x is None else x for x in np.atleast_1d(xs)], dtype=float)


def _close(actual, expected, rtol, name, atol=1e-12):
    """Elementwise: R's NA (null) must be NaN here; otherwise equal to rtol (atol for zeros)."""
    actual = np.atleast_1d(np.asarray(actual, dtype=float))
    expected = _arr(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} vs {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


def _data(case):
    ds = DATA.get(case["dataset"])
    if ds is None:  # inline data (ranktest with ties)
        return np.array(case["yi"], dtype=float), np.array(case["vi"], dtype=float), None
    return np.array(ds["yi"], dtype=float), np.array(ds["vi"], dtype=float), ds["slab"]


def _cases(function):
    return [c for c in CASES if c["function"] == function]


# --- leave1out / cumul ------------------------------------------------------------------------

def _check_table(t, e, method):
    tol = _tol(method)
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("statistic", "statistic"),
                         ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"), ("Q", "Q"), ("tau2", "tau2"),
                         ("I2", "I2"), ("H2", "H2")):
        if theirs == "tau2" and method == "EE":  # metafor drops the tau^2 column for EE
            assert e.get("tau2") is None
            assert np.all(t.tau2 == 0)
            continue
        _close(getattr(t, ours), e[theirs], tol, ours)
    _close(t.pvalue, e["pval"], tol, "pvalue", atol=1e-300)
    _close(t.Qp, e["Qp"], tol, "Qp", atol=1e-300)
    assert list(t.labels) == e["slab"]


@pytest.mark.parametrize("case", _cases("leave1out"), ids=lambda c: c["id"])
def test_leave1out(case):
    y, v, slab = _data(case)
    t = leave_one_out(y, v, labels=slab, method=case["method"], test=case["test"])
    assert isinstance(t, LeaveOneOut) and len(t) == y.size
    _check_table(t, case["expected"], case["method"])


@pytest.mark.parametrize("case", _cases("cumul"), ids=lambda c: c["id"])
def test_cumul(case):
    y, v, slab = _data(case)
    t = cumulative(y, v, labels=slab, order=case["order_by"], method=case["method"],
                   test=case["test"])
    assert isinstance(t, Cumulative) and list(t.k) == list(range(1, y.size + 1))
    _check_table(t, case["expected"], case["method"])


def test_leave1out_and_cumul_from_a_result():
    """A MetaResult is refitted with its own method, test and level; rows are pool() fits."""
    ds = DATA["dat.bcg"]
    res = mm.pool(ds["yi"], ds["vi"], method="REML", test="knha", level=0.9, labels=ds["slab"],
                  measure="RR")
    loo = leave_one_out(res)
    ref = leave_one_out(ds["yi"], ds["vi"], labels=ds["slab"], method="REML", test="knha",
                        level=0.9, measure="RR")
    np.testing.assert_array_equal(loo.estimate, ref.estimate)
    np.testing.assert_array_equal(loo.ci_lb, ref.ci_lb)
    assert (loo.method, loo.test, loo.level, loo.measure) == ("REML", "knha", 0.9, "RR")
    third = mm.pool(np.delete(ds["yi"], 2), np.delete(ds["vi"], 2), method="REML", test="knha",
                    level=0.9)
    assert loo.estimate[2] == third.estimate and loo.fits[2].k == res.k - 1
    cum = cumulative(res, order=-np.arange(res.k))  # reverse order
    assert cum.labels == tuple(reversed(res.labels))
    assert cum.estimate[-1] == pytest.approx(res.estimate, rel=1e-12)
    frame = loo.to_frame()
    assert list(frame["study"]) == list(res.labels) and frame.shape[0] == res.k


def test_leave1out_skips_unusable_studies_as_metafor():
    y = [0.1, np.nan, 0.5, 0.3, 0.2]
    v = [0.02, 0.03, 0.05, 0.04, 0.01]
    with pytest.warns(UserWarning, match="studies left out .*: b$"):
        t = leave_one_out(y, v, labels=list("abcde"), method="DL")
    assert t.labels == ("a", "c", "d", "e")
    ref = mm.pool([0.5, 0.3, 0.2], [0.05, 0.04, 0.01], method="DL")
    assert t.estimate[0] == ref.estimate


# --- regtest ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", _cases("regtest"), ids=lambda c: c["id"])
def test_regtest(case):
    e = case["expected"]
    y, v, _ = _data(case)
    r = egger_test(y, v, model=case["model"], method=case["method"], test=case["test"])
    assert isinstance(r, EggerTest)
    tol = _tol(case["method"]) if case["model"] == "rma" else CLOSED
    _close(r.statistic, e["zval"], tol, "statistic")
    _close(r.pvalue, e["pval"], tol, "pvalue", atol=1e-300)
    _close(np.nan if r.df is None else r.df, e["dfs"], 0, "df")
    _close(r.limit_estimate, e["est"], tol, "limit estimate")
    _close(r.limit_ci_lb, e["ci_lb"], tol, "limit ci_lb")
    _close(r.limit_ci_ub, e["ci_ub"], tol, "limit ci_ub")
    f = e["fit"]
    if case["model"] == "rma":
        reg = r.regression
        _close(reg.beta, f["beta"], tol, "beta")
        _close(reg.se, f["se"], tol, "se")
        _close(reg.tau2, f["tau2"], tol, "tau2")
        _close(reg.se_tau2, f["se_tau2"], tol, "se_tau2")
        _close(reg.qe, f["QE"], CLOSED, "QE")
        _close(reg.qe_pvalue, f["QEp"], CLOSED, "QEp", atol=1e-300)
        assert (r.slope, r.slope_se) == (reg.beta[1], reg.se[1])
    else:
        _close([r.limit_estimate, r.slope], f["coef"], CLOSED, "coef")
        _close([r.limit_se, r.slope_se], f["se"], CLOSED, "se")


def test_regtest_from_a_result_uses_its_settings():
    ds = DATA["dat.hackshaw1998"]
    res = mm.pool(ds["yi"], ds["vi"], method="DL", test="knha", level=0.9)
    r = egger_test(res)
    ref = egger_test(ds["yi"], ds["vi"], method="DL", test="knha", level=0.9)
    assert (r.method, r.test, r.level, r.df) == ("DL", "knha", 0.9, res.k - 2)
    assert r.statistic == ref.statistic and r.limit_ci_lb == ref.limit_ci_lb
    assert "Egger" in r.summary()


@pytest.mark.parametrize("method", ["EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM",
                                    "PMM"])
@pytest.mark.parametrize("test", ["z", "knha", "adhoc", "t"])
def test_meta_regression_intercept_only_is_pool(method, test):
    """With X = 1 the meta-regression is the random-effects model of pool()."""
    ds = DATA["dat.bcg"]
    y, v = np.array(ds["yi"]), np.array(ds["vi"])
    reg = meta_regression(y, v, np.ones((y.size, 1)), method=method, test=test, intercept=False)
    res = mm.pool(y, v, method=method, test=test)
    tol = _tol(method)
    assert reg.tau2 == pytest.approx(res.tau2, rel=tol, abs=1e-12)
    assert reg.beta[0] == pytest.approx(res.estimate, rel=tol)
    assert reg.se[0] == pytest.approx(res.se, rel=tol)
    assert reg.ci_lb[0] == pytest.approx(res.ci_lb, rel=tol)
    assert reg.qe == pytest.approx(res.q, rel=CLOSED)
    if method != "EE":
        assert reg.se_tau2 == pytest.approx(res.se_tau2, rel=tol)


@pytest.mark.parametrize("method", ["ML", "REML", "EB"])
def test_meta_regression_when_scoring_fails_brackets_the_root(method):
    """maxiter = 1 forces the fallback (Brent on the estimating equation): same tau^2."""
    ds = DATA["dat.bcg"]
    y, v = np.array(ds["yi"]), np.array(ds["vi"])
    X = np.column_stack([np.ones(y.size), np.sqrt(v)])
    ref = meta_regression(y, v, X, method=method, intercept=False)
    alt = meta_regression(y, v, X, method=method, maxiter=1, intercept=False)
    assert ref.algorithm.startswith("Fisher scoring") and "did not" not in ref.algorithm
    assert alt.algorithm.startswith("Fisher scoring did not")
    assert alt.tau2 == pytest.approx(ref.tau2, rel=ITER)
    np.testing.assert_allclose(alt.beta, ref.beta, rtol=ITER)


# --- ranktest --------------------------------------------------------------------------------

@pytest.mark.parametrize("case", _cases("ranktest"), ids=lambda c: c["id"])
def test_ranktest(case):
    e = case["expected"]
    y, v, _ = _data(case)
    r = begg_test(y, v)
    assert isinstance(r, BeggTest)
    assert r.exact is e["exact"]
    _close(r.tau, e["tau"], CLOSED, "tau")
    _close(r.pvalue, e["pval"], CLOSED, "pvalue")
    if not e["exact"]:
        assert "Cannot compute exact p-value with ties" in case["warnings"]


def test_kendall_exact_distribution():
    from metamsc.bias import _kendall_pmf

    for n in (1, 2, 3, 4, 7, 12):
        p = _kendall_pmf(n)
        assert p.size == n * (n - 1) // 2 + 1
        assert np.sum(p) == pytest.approx(1.0, rel=1e-14)
        np.testing.assert_allclose(p, p[::-1], rtol=1e-14)  # symmetric
    np.testing.assert_allclose(_kendall_pmf(4) * 24, [1, 3, 5, 6, 5, 3, 1])  # Mahonian numbers


# --- trimfill --------------------------------------------------------------------------------

@pytest.mark.parametrize("case", _cases("trimfill"), ids=lambda c: c["id"])
def test_trimfill(case):
    e = case["expected"]
    y, v, slab = _data(case)
    run = lambda: trim_and_fill(y, v, method=case["method"], test=case["test"],  # noqa: E731
                                estimator=case["estimator"], labels=slab)
    if "error" in e:  # metafor stops (Q0 undefined: sqrt of a negative number); so do we
        with pytest.raises(ValueError, match="not defined"):
            run()
        return
    tf = run()
    assert isinstance(tf, TrimAndFill)
    assert (tf.k0, tf.side) == (e["k0"], e["side"])
    tol = _tol(case["method"])
    _close(tf.se_k0, e["se_k0"], CLOSED, "se_k0")
    _close(tf.p_k0, e["p_k0"], CLOSED, "p_k0")
    r = tf.result
    assert r.k == e["k"]
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("statistic", "zval"), ("ci_lb", "ci_lb"),
                         ("ci_ub", "ci_ub"), ("tau2", "tau2"), ("q", "QE"), ("i2", "I2"), ("h2", "H2")):
        _close(getattr(r, ours), e[theirs], tol, ours)
    _close(r.pvalue, e["pval"], tol, "pvalue", atol=1e-300)
    _close(r.q_pvalue, e["QEp"], tol, "QEp", atol=1e-300)
    _close(r.yi, e["yi"], CLOSED, "yi (observed, then filled)")
    _close(r.vi, e["vi"], CLOSED, "vi")
    assert list(tf.fill) == e["fill"]
    assert list(r.labels) == e["slab"]
    np.testing.assert_array_equal(tf.filled_yi, r.yi[tf.fill])
    assert tf.estimate == r.estimate


def test_trimfill_from_a_result():
    ds = DATA["small5"]
    res = mm.pool(ds["yi"], ds["vi"], method="DL", labels=ds["slab"])
    tf = trim_and_fill(res)
    ref = trim_and_fill(ds["yi"], ds["vi"], method="DL", labels=ds["slab"])
    assert tf.k0 == ref.k0 == 3 and tf.side == "left"
    assert tf.estimate == ref.estimate and tf.original.estimate == res.estimate
    assert tf.filled_labels == ("Filled 1", "Filled 2", "Filled 3")
    forced = trim_and_fill(res, side="right")
    assert forced.side == "right"
    with pytest.raises(ValueError):
        trim_and_fill(res, estimator="XX")


# --- the fixture grid ------------------------------------------------------------------------

def test_bias_grid_is_complete():
    grid = BIAS["meta"]["grid"]
    ids = {c["id"] for c in CASES}
    assert len(ids) == len(CASES), "duplicate case ids"
    datasets = grid["datasets"]
    assert set(datasets) == {"dat.bcg", "dat.hackshaw1998", "dat.pritz1997", "small5"}
    assert {"EE", "DL", "REML"} <= set(grid["regtest"]["methods"])
    assert {"EE", "DL", "REML"} <= set(grid["trimfill"]["methods"])
    expected = set()
    for ds in datasets:
        for m in grid["leave1out"]["methods"]:
            for t in grid["leave1out"]["tests"]:
                expected.add(f"leave1out:{ds}:{m}:{t}")
        for m in grid["cumul"]["methods"]:
            for t in grid["cumul"]["tests"]:
                expected.add(f"cumul:{ds}:{m}:{t}")
        for m in grid["regtest"]["methods"]:
            for t in grid["regtest"]["tests"]:
                expected.add(f"regtest:{ds}:rma:{m}:{t}")
        expected.add(f"regtest:{ds}:lm")
        expected.add(f"ranktest:{ds}")
        for m in grid["trimfill"]["methods"]:
            expected.add(f"trimfill:{ds}:{m}:L0")
        for est in grid["trimfill"]["estimators"]:
            expected.add(f"trimfill:{ds}:DL:{est}")
    expected |= {"cumul:dat.bcg:DL:z:order=year", "ranktest:ties"}
    assert expected == ids
    errors = [c["id"] for c in CASES if "error" in c["expected"]]
    assert len(errors) == BIAS["meta"]["n_error_cases"]
    assert set(errors) == {"trimfill:dat.pritz1997:DL:Q0", "trimfill:small5:DL:Q0"}
    for c in CASES:
        assert c["R"] and c["data_R"], c["id"]


# --- the funnel plot -------------------------------------------------------------------------

def _by_gid(ax, gid, kind):
    return [a for a in getattr(ax, kind) if a.get_gid() == gid]


def test_funnel_draws_studies_on_the_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metamsc.plots.funnel import funnel

    ds = DATA["dat.bcg"]
    res = mm.pool(ds["yi"], ds["vi"], method="REML", measure="RR")
    fig, ax = plt.subplots()
    try:
        n_figs = len(plt.get_fignums())
        out = funnel(res, ax=ax)
        assert out is ax and len(plt.get_fignums()) == n_figs  # drawn on ax, no new figure
        (pts,) = _by_gid(ax, "studies", "collections")
        np.testing.assert_allclose(pts.get_offsets(), np.column_stack([res.yi, np.sqrt(res.vi)]),
                                   rtol=1e-15)
        assert not _by_gid(ax, "filled", "collections")
        (est,) = _by_gid(ax, "estimate", "lines")
        np.testing.assert_allclose(est.get_xdata(), [res.estimate, res.estimate])
        lo, hi = sorted(_by_gid(ax, "pseudo-ci", "lines"), key=lambda l: l.get_xdata()[1])
        for line, sgn in ((lo, -1), (hi, 1)):
            x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
            assert x[0] == res.estimate and y[0] == 0
            assert x[1] == pytest.approx(res.estimate + sgn * 1.959963984540054 * y[1], rel=1e-12)
        y0, y1 = ax.get_ylim()
        assert y0 > y1 == 0  # standard error axis inverted, 0 at the top
        assert y0 >= np.sqrt(np.max(res.vi))
    finally:
        plt.close(fig)


def test_funnel_with_trim_and_fill_draws_filled_studies_hollow():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metamsc.plots.funnel import funnel

    ds = DATA["small5"]
    res = mm.pool(ds["yi"], ds["vi"], method="DL")
    tf = trim_and_fill(res)
    fig, ax = plt.subplots()
    try:
        funnel(tf, ax=ax)
        (pts,) = _by_gid(ax, "studies", "collections")
        (filled,) = _by_gid(ax, "filled", "collections")
        np.testing.assert_allclose(pts.get_offsets(), np.column_stack([res.yi, np.sqrt(res.vi)]))
        np.testing.assert_allclose(filled.get_offsets(),
                                   np.column_stack([tf.filled_yi, np.sqrt(tf.filled_vi)]))
        np.testing.assert_allclose(filled.get_facecolors()[:, :3], 1.0)  # hollow: white face
        (est,) = _by_gid(ax, "estimate", "lines")
        assert est.get_xdata()[0] == tf.estimate  # centred on the estimate after filling
        ax2 = funnel(res, ax=fig.add_subplot(2, 1, 2), trimfill=True)
        np.testing.assert_allclose(_by_gid(ax2, "filled", "collections")[0].get_offsets(),
                                   filled.get_offsets())
    finally:
        plt.close(fig)


def test_funnel_creates_its_own_figure_when_no_axes_given():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metamsc.plots.funnel import funnel

    ds = DATA["dat.pritz1997"]
    res = mm.pool(ds["yi"], ds["vi"], method="DL", measure="PLO")
    ax = funnel(res)
    try:
        assert ax.get_xlabel().startswith("Log odds") and ax.get_ylabel() == "Standard error"
        assert len(_by_gid(ax, "studies", "collections")[0].get_offsets()) == res.k
    finally:
        plt.close(ax.figure)
