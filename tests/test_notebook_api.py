"""The notebook experience: data= with column names, results that explain themselves, progress.

Reference values here are the package's own array API (itself checked against R elsewhere):
a call with ``data=`` must give exactly what the same call on arrays gives.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import metamsc as mm
from metamsc.bias import BeggTest
from metamsc.glmm import fit_glmm
from metamsc.progress import progress
from metamsc.twogroup import pool_mh, pool_mh_rates, pool_peto

pd = pytest.importorskip("pandas")

# dat.bcg (metadat): the BCG vaccine trials, tpos/tneg in the vaccinated, cpos/cneg in controls
BCG = {
    "trial": [f"T{i}" for i in range(1, 14)],
    "tpos": [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27],
    "tneg": [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886],
    "cpos": [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29],
    "cneg": [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825],
    "ablat": [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33],
    "alloc": ["random", "random", "random", "random", "alternate", "alternate", "random",
              "random", "random", "systematic", "systematic", "systematic", "systematic"],
}


def bcg_frame():
    df = pd.DataFrame(BCG)
    df["n1"] = df.tpos + df.tneg
    df["n2"] = df.cpos + df.cneg
    es = mm.effect_size("RR", events1=df.tpos, total1=df.n1, events2=df.cpos, total2=df.n2)
    df["yi"], df["vi"] = es.yi, es.vi
    return df


PROPS = pd.DataFrame({"study": ["Chen", "Li", "Wang", "Zhao", "Sun", "Xu"],
                      "responders": [8, 2, 5, 11, 0, 3], "n": [17, 2, 10, 20, 6, 9],
                      "design": ["trial", "case series", "trial", "trial", "case series",
                                 "case series"]})


# --- data= with column names ---------------------------------------------------------------

def test_pool_with_column_names_equals_the_array_call():
    df = bcg_frame()
    a = mm.pool(df.yi.to_numpy(), df.vi.to_numpy(), labels=df.trial.tolist(), measure="RR")
    b = mm.pool(data=df, yi="yi", vi="vi", labels="trial", measure="RR")
    assert (b.estimate, b.se, b.tau2, b.labels) == (a.estimate, a.se, a.tau2, a.labels)
    # a mapping of columns works as a DataFrame does
    c = mm.pool(data={"y": list(df.yi), "v": list(df.vi)}, yi="y", vi="v")
    assert c.estimate == pytest.approx(a.estimate, rel=1e-14)


def test_pool_proportions_with_subgroups_from_a_data_frame():
    res = mm.pool_proportions(data=PROPS, events="responders", total="n", labels="study",
                              subgroup="design")
    ref = mm.pool_proportions(PROPS.responders.tolist(), PROPS.n.tolist(),
                              labels=PROPS.study.tolist(), subgroup=PROPS.design.tolist())
    assert res.estimate == ref.estimate and res.labels == ref.labels
    assert list(res.subgroups) == ["trial", "case series"]
    assert res.subgroups["trial"].estimate == ref.subgroups["trial"].estimate
    assert res.subgroup_test.q == ref.subgroup_test.q


def test_effect_size_meta_regression_and_two_group_models_take_data():
    df = bcg_frame()
    es = mm.effect_size("RR", data=df, events1="tpos", total1="n1", events2="cpos", total2="n2",
                        labels="trial")
    np.testing.assert_array_equal(es.yi, df.yi)
    assert es.labels == tuple(df.trial)
    fit = mm.meta_regression("yi", "vi", "ablat", data=df)
    ref = mm.meta_regression(df.yi.to_numpy(), df.vi.to_numpy(), df[["ablat"]])
    np.testing.assert_allclose(fit.beta, ref.beta, rtol=1e-12)
    mh = pool_mh(data=df, events1="tpos", total1="n1", events2="cpos", total2="n2",
                 measure="RR", labels="trial")
    assert mh.estimate == pool_mh(df.tpos, df.n1, df.cpos, df.n2, measure="RR").estimate
    peto = pool_peto(data=df, events1="tpos", total1="n1", events2="cpos", total2="n2")
    assert peto.estimate == pool_peto(df.tpos, df.n1, df.cpos, df.n2).estimate
    rates = pool_mh_rates(data={"x1": [3, 5, 2], "t1": [100.0, 120, 90], "x2": [6, 8, 4],
                                "t2": [110.0, 100, 95]},
                          events1="x1", time1="t1", events2="x2", time2="t2")
    assert rates.k == 3 and rates.measure == "IRR"


def test_sensitivity_and_small_study_functions_take_data():
    df = bcg_frame()
    y, v = df.yi.to_numpy(), df.vi.to_numpy()
    loo = mm.leave_one_out(data=df, yi="yi", vi="vi", labels="trial")
    np.testing.assert_array_equal(loo.estimate, mm.leave_one_out(y, v).estimate)
    assert loo.labels == tuple(df.trial)
    cum = mm.cumulative(data=df, yi="yi", vi="vi", order="ablat")
    np.testing.assert_array_equal(cum.estimate, mm.cumulative(y, v, order=df.ablat).estimate)
    assert mm.egger_test(data=df, yi="yi", vi="vi").pvalue == mm.egger_test(y, v).pvalue
    assert mm.trim_and_fill(data=df, yi="yi", vi="vi").k0 == mm.trim_and_fill(y, v).k0
    res = mm.pool(data=df, yi="yi", vi="vi")
    sub = mm.subgroup_analysis(res, "alloc", data=df).attach()
    assert list(sub.subgroups) == ["random", "alternate", "systematic"]


def test_missing_values_are_excluded_with_a_reason_naming_the_column_and_row():
    df = PROPS.copy()
    df["responders"] = df.responders.astype(object)
    df.loc[2, "responders"] = None
    df.loc[4, "n"] = np.nan
    res = mm.pool_proportions(data=df, events="responders", total="n", labels="study")
    assert res.k == 4
    assert [e.study for e in res.excluded] == ["Wang", "Sun"]
    assert res.excluded[0].reason == "missing responders (argument events; row 3 of data)"
    assert res.excluded[1].reason == "missing n (argument total; row 5 of data)"
    # kept: positions in the rows of data, so a column of data lines up with the result
    assert list(res.kept) == [0, 1, 3, 5]
    assert "excluded: Wang: missing responders" in str(res.summary())
    ref = mm.pool_proportions([8, 2, 11, 3], [17, 2, 20, 9])
    assert res.estimate == pytest.approx(ref.estimate, rel=1e-14)
    # a missing subgroup label leaves the study out too, said
    df2 = PROPS.copy()
    df2.loc[0, "design"] = None
    res2 = mm.pool_proportions(data=df2, events="responders", total="n", labels="study",
                               subgroup="design")
    assert [(e.study, e.reason) for e in res2.excluded] == [
        ("Chen", "missing design (argument subgroup; row 1 of data)")]
    assert sum(s.k for s in res2.subgroups.values()) == 5
    # a study without a name keeps its data: it is called by its row
    df3 = PROPS.copy()
    df3.loc[2, "study"] = None
    res3 = mm.pool_proportions(data=df3, events="responders", total="n", labels="study")
    assert res3.k == 6 and res3.labels[2] == "row 3" and res3.excluded == ()


def test_effect_size_with_data_leaves_out_a_row_with_a_missing_value_and_pooling_reports_it():
    df = bcg_frame()
    df["cpos"] = df.cpos.astype(float)
    df.loc[4, "cpos"] = np.nan
    es = mm.effect_size("RR", data=df, events1="tpos", total1="n1", events2="cpos", total2="n2",
                        labels="trial")
    assert [(e.study, e.reason) for e in es.excluded] == [
        ("T5", "missing cpos (argument events2; row 5 of data)")]
    assert es.k == 12 and len(es.yi) == len(es.vi) == 12 and "T5" not in es.labels
    assert list(es.kept) == [0, 1, 2, 3] + list(range(5, 13))
    rows = df.drop(index=4)
    ref = mm.effect_size("RR", events1=rows.tpos, total1=rows.n1, events2=rows.cpos.astype(int),
                         total2=rows.n2, labels=rows.trial.tolist())
    np.testing.assert_array_equal(es.yi, ref.yi)
    np.testing.assert_array_equal(es.vi, ref.vi)
    # pooling the effect sizes reports the study left out, and kept indexes the rows of data
    res = mm.pool_effects(es)
    assert res.k == 12 and res.excluded == es.excluded
    assert list(res.kept) == list(es.kept)
    assert res.estimate == mm.pool_effects(ref).estimate
    assert "excluded: T5: missing cpos" in str(res.summary())
    # a study pool leaves out itself is listed after the one effect_size left out
    df.loc[7, ["tpos", "cpos"]] = 0  # no events in either group: no RR with drop00
    both = mm.pool_effects(mm.effect_size("RR", data=df, events1="tpos", total1="n1",
                                          events2="cpos", total2="n2", labels="trial",
                                          drop00=True))
    assert [e.study for e in both.excluded] == ["T5", "T8"] and 7 not in list(both.kept)
    # without a missing value nothing is left out and nothing changes
    full = mm.effect_size("RR", data=bcg_frame(), events1="tpos", total1="n1", events2="cpos",
                          total2="n2")
    assert full.excluded == () and full.kept is None and full.k == 13


def test_missing_values_in_sensitivity_and_bias_tables_are_listed():
    df = bcg_frame()
    df.loc[3, "yi"] = np.nan
    loo = mm.leave_one_out(data=df, yi="yi", vi="vi", labels="trial")
    assert len(loo) == 12 and "T4" not in loo.labels
    assert [e.study for e in loo.excluded] == ["T4"]
    eg = mm.egger_test(data=df, yi="yi", vi="vi")
    assert eg.k == 12 and eg.excluded[0].study == "row 4"


def test_a_column_that_is_not_in_data_is_a_one_line_error_naming_argument_and_column():
    with pytest.raises(ValueError) as e:
        mm.pool_proportions(data=PROPS, events="responder", total="n")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("events: column 'responder' is not in data")
    assert "responders" in msg  # the columns there are
    with pytest.raises(ValueError, match="^subgroup: column 'Design' is not in data"):
        mm.pool_proportions(data=PROPS, events="responders", total="n", subgroup="Design")
    with pytest.raises(ValueError, match="^yi: column 'y' is not in data"):
        mm.leave_one_out(data={"yi": [1.0, 2.0]}, yi="y", vi="yi")
    with pytest.raises(TypeError, match="data must be a pandas DataFrame or a mapping"):
        mm.pool(data=[1, 2], yi="a", vi="b")


def test_the_decorator_applies_to_the_glmm_and_bayes_in_one_line():
    from metamsc.bayes import bayes
    from metamsc.frames import accepts_data

    glmm = accepts_data(("events", "total", "time", "events2", "total2", "subgroup"))(fit_glmm)
    df = PROPS.copy()
    df.loc[1, "n"] = None
    r = glmm(data=df, events="responders", total="n", labels="study")
    assert r.k == 5 and r.excluded[0].study == "Li"
    assert r.estimate == fit_glmm([8, 5, 11, 0, 3], [17, 10, 20, 6, 9]).estimate
    b = accepts_data(("yi", "vi", "n"))(bayes)(data={"y": [0.1, 0.5, None], "v": [0.1, 0.2, 0.1]},
                                                yi="y", vi="v")
    assert b.k == 2 and b.excluded[0].reason == "missing y (argument yi; row 3 of data)"


# --- results that explain themselves -------------------------------------------------------

def _every_result():
    df = bcg_frame()
    y, v = df.yi.to_numpy(), df.vi.to_numpy()
    res = mm.pool(y, v, measure="RR", labels=df.trial)
    reg = mm.meta_regression(y, v, df[["ablat"]])
    grp = mm.pool(y, v, measure="RR", subgroup=df.alloc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = [res, pool_mh(df.tpos, df.n1, df.cpos, df.n2, measure="RR"),
               pool_peto(df.tpos, df.n1, df.cpos, df.n2),
               fit_glmm([8, 2, 5, 11], [17, 2, 10, 20]), grp.subgroups, grp.subgroup_test,
               reg, reg.predict(), mm.anova(reg), mm.bayes(y, v),
               mm.leave_one_out(res), mm.cumulative(res), mm.influence(res), mm.egger_test(res),
               mm.begg_test(res), mm.trim_and_fill(res), mm.pool_batch(np.vstack([y, y]),
                                                                      np.vstack([v, v])),
               mm.method_sensitivity([8, 2, 5, 11], [17, 2, 10, 20], glmm=False,
                                     bayes_priors=(), leave_one_out=False)]
    return out


RESULTS = _every_result()


@pytest.mark.parametrize("obj", RESULTS, ids=lambda o: type(o).__name__)
def test_every_result_has_a_one_line_repr_a_summary_with_a_table_and_a_frame(obj):
    text = repr(obj)
    assert "\n" not in text and text.startswith("<") and text.endswith(">") and len(text) < 200
    s = obj.summary()
    assert isinstance(s, mm.Summary) and isinstance(s, str) and str(obj) == str(s)
    html = obj._repr_html_()
    assert "<table" in html and "<td>" in html and "</table>" in html
    frame = obj.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) >= 1
    if hasattr(obj, "_summary_rows"):  # the pooled values with their intervals
        assert s.columns == ("quantity", "value", "lower", "upper", "note")
    else:  # the HTML table is the frame
        assert list(frame.columns) == list(s.columns) and len(s.rows) == len(frame)


def test_repr_of_the_bcg_fit_names_model_k_estimate_ci_and_scale():
    res = RESULTS[0]
    assert repr(res) == "<IVResult REML k=13 estimate=-0.7145 [-1.0669, -0.3622] (log risk ratio)>"
    assert repr(RESULTS[1]).startswith("<MHResult EE k=13 estimate=")
    assert repr(RESULTS[3]).endswith("(logit proportion)>")


def test_summary_html_holds_the_pooled_table():
    res = RESULTS[0]
    html = res.summary()._repr_html_()
    assert "<th>quantity</th><th>value</th><th>lower</th><th>upper</th>" in html
    assert "<td>estimate</td><td>-0.7145</td><td>-1.0669</td><td>-0.3622</td>" in html
    assert "<td>risk ratio</td><td>0.4894</td>" in html  # the back-transformed row
    assert "<pre>" in html and "Random-effects model (REML)" in html
    loo = RESULTS[10]
    assert loo.summary()._repr_html_().count("<tr>") == 1 + 13  # header + one row per refit


def test_intervals_carry_level_and_scale_and_still_unpack():
    res = mm.pool_proportions(PROPS.responders, PROPS.n)
    ci = res.confidence_interval(0.90)
    assert isinstance(ci, mm.Interval) and (ci.level, ci.scale) == (0.90, "logit proportion")
    assert repr(ci).startswith("<Interval 90% [") and repr(ci).endswith("(logit proportion)>")
    lo, hi = ci
    assert (lo, hi) == (ci.lower, ci.upper) == (ci.low, ci.high) == (ci[0], ci[1])
    nat = res.confidence_interval(natural=True)
    assert nat.scale == "proportion" and nat.level == 0.95
    assert (nat.lower, nat.upper) == pytest.approx((res.natural.ci_lb, res.natural.ci_ub), rel=1e-12)
    assert res.natural.ci.scale == "proportion" and res.natural.pi.upper == res.natural.pi_ub
    pi = res.prediction_interval()
    assert (pi.lower, pi.upper) == (res.pi_lb, res.pi_ub) and pi.scale == "logit proportion"
    with pytest.raises(ValueError, match="no natural scale"):
        mm.pool([0.1, 0.2], [0.1, 0.1]).confidence_interval(natural=True)


def test_confidence_level_is_level_everywhere_the_old_keyword_warns():
    res = RESULTS[0]
    with pytest.warns(DeprecationWarning, match="use level="):
        old = res.confidence_interval(confidence_level=0.9)
    assert old == res.confidence_interval(level=0.9) == res.confidence_interval(0.9)
    with pytest.warns(DeprecationWarning):
        lb, _ = res.study_intervals(confidence_level=0.8)
    np.testing.assert_array_equal(lb, res.study_intervals(0.8)[0])


def test_to_frame_columns_of_the_tables():
    cols = {type(o).__name__: list(o.to_frame().columns) for o in RESULTS}
    assert cols["LeaveOneOut"][:4] == ["study", "k", "estimate", "se"]
    assert cols["BatchResult"][:4] == ["estimate", "se", "ci_lb", "ci_ub"]
    assert cols["TrimAndFill"] == ["study", "yi", "vi", "filled"]
    assert cols["EggerTest"][:5] == ["name", "model", "method", "k", "statistic"]
    assert cols["BeggTest"] == ["name", "k", "tau", "statistic", "pvalue", "exact"]
    assert cols["Subgroups"][:5] == ["subgroup", "model", "method", "k", "estimate"]
    assert cols["SubgroupTest"] == ["q", "df", "df2", "pvalue", "groups"]
    assert "mu_median" in cols["BayesResult"]
    batch = RESULTS[16].to_frame()
    assert len(batch) == 2 and batch.estimate.iloc[0] == pytest.approx(RESULTS[0].estimate, rel=1e-8)


@pytest.mark.parametrize("which", ["leave_one_out", "cumulative"])
def test_plot_forest_of_leave_one_out_and_cumulative(which):
    plt = pytest.importorskip("matplotlib.pyplot")
    res = RESULTS[0]
    table = getattr(mm, which)(res)
    ax = table.plot_forest()
    try:
        squares = [ln.get_xdata()[0] for ln in ax.lines if ln.get_gid() == "square"]
        assert len(squares) == 13
        np.testing.assert_allclose(squares, np.exp(table.estimate), rtol=1e-12)
        labels = [t.get_text() for t in ax.texts if t.get_gid() == "label"]
        assert labels[:13] == ([f"+ T{i}" for i in range(1, 14)] if which == "cumulative"
                               else [f"T{i}" for i in range(1, 14)])
        texts = " ".join(t.get_text() for t in ax.texts)
        head = "Cumulative estimate" if which == "cumulative" else "Estimate without the study"
        assert head in texts
        assert "Risk ratio" in ax.get_xlabel() or "risk ratio" in ax.get_xlabel().lower()
        assert ax.get_xscale() == "log"
        ys = sorted(ln.get_ydata()[0] for ln in ax.lines if ln.get_gid() == "square")
        assert len(set(np.round(ys, 9))) == 13  # one row per refit, none on top of another
    finally:
        plt.close(ax.figure)


# --- progress --------------------------------------------------------------------------------

class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_silent_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv("METAMSC_PROGRESS", raising=False)
    plain = io.StringIO()
    assert list(progress(range(5), "x", stream=plain, delay=0, every=0)) == list(range(5))
    assert plain.getvalue() == ""
    mm.leave_one_out(RESULTS[0])  # stderr under pytest is no terminal
    assert capsys.readouterr().err == ""


def test_progress_reports_on_a_terminal_unless_switched_off(monkeypatch):
    monkeypatch.delenv("METAMSC_PROGRESS", raising=False)
    tty = _Tty()
    assert list(progress(range(3), "grid", stream=tty, delay=0, every=0)) == [0, 1, 2]
    out = tty.getvalue()
    assert out.startswith("\rgrid: 1/3") and out.endswith("\rgrid: 3/3 done\n")
    quick = _Tty()
    list(progress(range(3), "quick", stream=quick))  # under a second: nothing shown
    assert quick.getvalue() == ""
    monkeypatch.setenv("METAMSC_PROGRESS", "0")
    off = _Tty()
    list(progress(range(3), "grid", stream=off, delay=0, every=0))
    assert off.getvalue() == ""
    monkeypatch.setenv("METAMSC_PROGRESS", "1")
    forced = io.StringIO()
    list(progress(range(2), "grid", stream=forced, delay=0, every=0))
    assert "grid: 2/2 done" in forced.getvalue()


def test_effect_sizes_take_level_and_warn_on_confidence_level():
    es = mm.effect_size("PLO", events=[1, 2], total=[5, 6])
    np.testing.assert_array_equal(es.confidence_interval(level=0.9)[0], es.confidence_interval(0.9)[0])
    with pytest.warns(DeprecationWarning, match="use level="):
        es.to_frame(confidence_level=0.9)


def test_the_dataframes_guide_runs_as_shown():
    """docs/guide/1b-dataframes.rst: every >>> example gives the output printed there."""
    import doctest
    from pathlib import Path

    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(__file__).resolve().parents[1] / "docs" / "guide" / "1b-dataframes.rst"
    try:
        out = doctest.testfile(str(path), module_relative=False, verbose=False,
                               optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    finally:
        plt.close("all")
    assert out.attempted > 20 and out.failed == 0


def test_data_on_method_sensitivity_and_begg_reports_rows_left_out():
    """method_sensitivity and begg_test take data= too; a row with a missing value is listed in
    the result's excluded, never dropped silently."""
    import pandas as pd

    df = pd.DataFrame({"study": ["A", "B", "C", "D", "E"], "x": [8, 2, 1, None, 1],
                       "n": [17, 2, 1, 2, 1]})
    ms = mm.method_sensitivity(data=df, events="x", total="n", labels="study", glmm=False,
                               bayes_priors=(), methods=("DL",), tests=("z",),
                               transforms=("PLO",), primary=("PLO", "DL", "z"),
                               leave_one_out=False)
    assert [e.study for e in ms.excluded] == ["D"] and "missing x" in ms.excluded[0].reason
    assert ms.labels == ("A", "B", "C", "E")
    es = mm.effect_size("RR", events1=[4, 6, 3, 62, 33, 180], total1=[123, 306, 231, 13598, 5069, 1541],
                        events2=[11, 29, 11, 248, 47, 372], total2=[139, 303, 220, 12867, 5808, 1451])
    frame = {"y": list(es.yi[:5]) + [None], "v": list(es.vi)}
    bt = mm.begg_test(data=frame, yi="y", vi="v")
    assert bt.k == 5 and len(bt.excluded) == 1 and "missing y" in bt.excluded[0].reason
