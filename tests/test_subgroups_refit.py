"""Result kinds, refit(subset), subgroups and the model-preserving follow-ups.

Expected values: tests/reference/subgroups.json (written by tests/reference/make_subgroup_fixtures.R
with metafor 3.8-1); the tests never call R. Each case records the R calls that produced it:

* separate tau^2: ``rma(yi, vi, subset = g == level, method=, test=, control = ctrl)`` per level
  and ``Q_between = rma(estimates, sei = SEs, method = "EE")$QE``;
* common tau^2: ``rma(yi, vi, mods = ~ factor(g) - 1, ...)`` (subgroup means, one tau^2) and
  ``QM`` of ``rma(yi, vi, mods = ~ factor(g), ...)`` (test of subgroup differences; F under knha);
* GLMM refits: ``rma.glmm(measure = "PLO", xi, ni, data = dat[-i, ])`` (nAGQ = 7).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

import metamsc as mm
from metamsc.glmm import fit_glmm
from metamsc.twogroup import pool_mh, pool_peto

from bcg_data import bcg_tables

REF = json.loads((Path(__file__).parent / "reference" / "subgroups.json").read_text())
CASES = REF["cases"]
PASI_X, PASI_N = [8, 2, 1, 2, 1], [17, 2, 1, 2, 1]

def _rtol(case):
    return 1e-10 if case["method"] in ("DL", "EE") else 1e-8


# --- subgroups against metafor ------------------------------------------------------------------

def test_reference_grid_is_complete():
    ids = {c["id"] for c in CASES}
    want = {f"subgroups:{d}:{m}:{t}" for d in ("bcg", "bangertdrowns2004")
            for m, t in (("REML", "z"), ("REML", "knha"), ("DL", "z"), ("DL", "knha"), ("EE", "z"))}
    assert ids == want
    assert {L["id"] for L in REF["glmm_loo"]} == {"glmm-loo:pasi40", "glmm-loo:pritz1997"}
    assert len(REF["twogroup_sensitivity"]) == 4


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_separate_tau2_matches_metafor(case):
    i, e, rtol = case["inputs"], case["separate"], _rtol(case)
    r = mm.pool(i["yi"], i["vi"], method=case["method"], test=case["test"], labels=i["slab"],
                subgroup=i["g"])
    assert list(r.subgroups) == case["levels"] and not r.subgroups.tau2_common
    for sub, g in zip(r.subgroups.values(), e["groups"]):
        assert sub.k == g["k"] and sub.model == "IV"
        for name in ("estimate", "se", "statistic", "pvalue", "ci_lb", "ci_ub"):
            assert getattr(sub, name) == pytest.approx(g[name], rel=rtol), name
        assert sub.tau2 == pytest.approx(g["tau2"], rel=rtol, abs=1e-12)
        assert sub.q == pytest.approx(g["QE"], rel=1e-10, abs=1e-12)
    t = r.subgroup_test
    assert t.df == e["df"] and t.df2 is None
    assert t.q == pytest.approx(e["q_between"], rel=rtol)
    assert t.pvalue == pytest.approx(e["q_between_p"], rel=rtol)
    # the overall result is the ordinary fit of every study
    plain = mm.pool(i["yi"], i["vi"], method=case["method"], test=case["test"])
    assert r.estimate == plain.estimate and r.tau2 == plain.tau2


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_common_tau2_matches_metafor(case):
    i, e, rtol = case["inputs"], case["common"], _rtol(case)
    r = mm.pool(i["yi"], i["vi"], method=case["method"], test=case["test"], subgroup=i["g"],
                tau2_common=True)
    subs = list(r.subgroups.values())
    assert r.subgroups.tau2_common and list(r.subgroups) == case["levels"]
    for name in ("estimate", "se", "statistic", "pvalue", "ci_lb", "ci_ub"):
        np.testing.assert_allclose([getattr(s, name) for s in subs], e[name], rtol=rtol, err_msg=name)
    for s in subs:
        assert s.tau2 == pytest.approx(e["tau2"], rel=rtol, abs=1e-12)
        assert "common to all subgroups" in s.conventions.tau2_estimator
    if case["method"] != "EE":
        assert subs[0].se_tau2 == pytest.approx(e["se_tau2"], rel=rtol)
        # R: predict(fit, newmods = diag(G)): the prediction interval of each subgroup mean
        np.testing.assert_allclose([s.pi_lb for s in subs], e["pi_lb"], rtol=rtol)
        np.testing.assert_allclose([s.pi_ub for s in subs], e["pi_ub"], rtol=rtol)
    else:
        assert e["pi_lb"] is None and all(np.isnan(s.pi_lb) for s in subs)
    t = r.subgroup_test
    assert t.df == e["QMdf"][0]
    if case["test"] == "knha":  # metafor's QM is the F value, on (G - 1, k - G) df
        assert t.df2 == e["QMdf"][1]
        assert t.q / t.df == pytest.approx(e["QM"], rel=rtol)
    else:
        assert t.df2 is None
        assert t.q == pytest.approx(e["QM"], rel=rtol)
    assert t.pvalue == pytest.approx(e["QMp"], rel=max(rtol, 1e-9))


def test_subgroups_through_pool_effects_and_pool_proportions_equal_the_subset_fits():
    x = [8, 2, 1, 2, 1, 3, 0]
    n = [17, 2, 1, 2, 1, 10, 4]
    g = ["trial", "case", "case", "case", "case", "trial", "trial"]
    r = mm.pool_proportions(x, n, method="DL", test="knha", subgroup=g)
    assert list(r.subgroups) == ["trial", "case"]
    for name, idx in (("trial", [0, 5, 6]), ("case", [1, 2, 3, 4])):
        sub = r.subgroups[name]
        ref = mm.pool_proportions([x[j] for j in idx], [n[j] for j in idx], method="DL", test="knha")
        assert sub.estimate == pytest.approx(ref.estimate, rel=1e-13)
        assert sub.tau2 == pytest.approx(ref.tau2, abs=1e-14)
        assert sub.natural.estimate == pytest.approx(ref.natural.estimate, rel=1e-13)
        assert list(sub.kept) == idx  # positions in the input
        assert sub.conventions.correction == ref.conventions.correction
    es = mm.effect_size("PLO", events=x, total=n)
    r2 = mm.pool_effects(es, method="DL", test="knha", subgroup=g)
    assert r2.subgroup_test.q == pytest.approx(r.subgroup_test.q, rel=1e-14)
    d = r.to_dict()["subgroups"]
    assert [grp["group"] for grp in d["groups"]] == ["trial", "case"]
    assert set(d["test"]) == {"q", "df", "pvalue", "groups_used", "method"}


def test_subgroup_input_errors():
    with pytest.raises(ValueError, match="one label per study"):
        mm.pool([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], subgroup=["a", "b"])
    with pytest.raises(ValueError, match="label of study 2 is missing"):
        mm.pool([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], subgroup=["a", None, "b"])
    with pytest.raises(ValueError, match="needs subgroup="):
        mm.pool([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], tau2_common=True)
    with pytest.raises(ValueError, match="GLMM"):
        fit_glmm(PASI_X, PASI_N, subgroup=list("aabbb"), tau2_common=True)
    a, n1, c, n2 = bcg_tables()
    with pytest.raises(ValueError, match="inverse-variance model .* MH fit"):
        mm.subgroup_analysis(pool_mh(a, n1, c, n2), ["x"] * 6 + ["y"] * 7, tau2_common=True)


def test_a_subgroup_whose_studies_were_all_left_out_is_said():
    r = mm.pool([0.1, np.nan, 0.3, 0.2], [0.1, 0.1, 0.1, 0.2], subgroup=["a", "b", "a", "a"])
    assert list(r.subgroups) == ["a"] and r.subgroup_test is None
    assert any("subgroup 'b': every study was left out" in w for w in r.warnings)


def test_glmm_and_mh_subgroups_refit_the_same_model():
    g = ["a", "a", "b", "b", "b"]
    r = fit_glmm([8, 2, 1, 3, 4], [17, 5, 9, 6, 12], subgroup=g)
    sub = r.subgroups["b"]
    ref = fit_glmm([1, 3, 4], [9, 6, 12])
    assert sub.model == "GLMM" and sub.estimate == pytest.approx(ref.estimate, rel=1e-12)
    assert sub.tau2 == pytest.approx(ref.tau2, rel=1e-10, abs=1e-14)
    assert list(sub.kept) == [2, 3, 4]
    a, n1, c, n2 = bcg_tables()
    grp = ["x"] * 6 + ["y"] * 7
    m = pool_mh(a, n1, c, n2, measure="RR", subgroup=grp)
    ref = pool_mh(a[6:], n1[6:], c[6:], n2[6:], measure="RR")
    assert m.subgroups["y"].model == "MH"
    assert m.subgroups["y"].estimate == pytest.approx(ref.estimate, rel=1e-14)
    p = pool_peto(a, n1, c, n2, subgroup=grp)
    assert p.subgroups["x"].estimate == pytest.approx(pool_peto(a[:6], n1[:6], c[:6], n2[:6]).estimate,
                                                      rel=1e-14)


def test_forest_plot_draws_the_subgroups_of_a_result():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = next(c for c in CASES if c["id"] == "subgroups:bcg:REML:z")
    i = c["inputs"]
    r = mm.pool(i["yi"], i["vi"], labels=i["slab"], subgroup=i["g"])
    ax = r.plot_forest()
    texts = {t.get_text(): t for t in ax.texts}
    heads = [f"{lv} (k = {r.subgroups[lv].k})" for lv in c["levels"]]
    for h in heads:
        assert h in texts, h
    # group headers top to bottom in the order of the subgroups, each above its studies
    ys = [texts[h].get_position()[1] for h in heads]
    assert ys == sorted(ys, reverse=True) or ys == sorted(ys)
    label = next(t for t in texts if t.startswith("Test for subgroup differences"))
    assert f"Q({r.subgroup_test.df}) = {r.subgroup_test.q:.2f}" in label
    first = texts[heads[0]].get_position()[1]
    study = texts[r.subgroups[c["levels"][0]].labels[0]].get_position()[1]
    assert (study < first) == (ys[0] > ys[-1])
    plt.close("all")


# --- refit and the follow-ups that use it ---------------------------------------------------------

def test_leave_one_out_of_a_glmm_refits_the_glmm():
    # fails on the old code: it refitted an inverse-variance model on corrected logits
    g = fit_glmm(PASI_X, PASI_N)
    loo = mm.leave_one_out(g)
    assert all(f.model == "GLMM" for f in loo.fits)
    ref = next(L for L in REF["glmm_loo"] if L["id"] == "glmm-loo:pasi40")
    _compare_glmm_rows(loo, ref)
    # without Cheng 2022 (8/17) every study has only events: no model, as rma.glmm fails
    assert math.isnan(loo.estimate[0]) and ref["rows"][0]["error"]
    assert loo.tau2[2] > 1.5  # the GLMM's heterogeneity, not the IV model's tau^2 = 0


def test_leave_one_out_of_a_glmm_matches_metafor_on_pritz1997():
    L = next(L for L in REF["glmm_loo"] if L["id"] == "glmm-loo:pritz1997")
    g = fit_glmm(L["inputs"]["xi"], L["inputs"]["ni"])
    _compare_glmm_rows(mm.leave_one_out(g), L)


def _compare_glmm_rows(loo, ref):
    """As tests/test_glmm.py: lme4's optimiser stops early; estimates agree to about 1.4e-5."""
    for j, row in enumerate(ref["rows"]):
        if row["error"]:
            continue
        tol = 5e-5 * (abs(row["estimate"]) + row["se"])
        assert loo.estimate[j] == pytest.approx(row["estimate"], rel=5e-5), j
        assert loo.se[j] == pytest.approx(row["se"], rel=5e-5), j
        assert loo.tau2[j] == pytest.approx(row["tau2"], rel=5e-5, abs=1e-8), j
        assert loo.ci_lb[j] == pytest.approx(row["ci_lb"], abs=tol), j
        assert loo.ci_ub[j] == pytest.approx(row["ci_ub"], abs=tol), j


def test_cumulative_and_leave_one_out_of_mh_refit_mantel_haenszel():
    a, n1, c, n2 = bcg_tables()
    m = pool_mh(a, n1, c, n2, measure="OR")
    loo = mm.leave_one_out(m)
    ref = pool_mh(np.delete(a, 3), np.delete(n1, 3), np.delete(c, 3), np.delete(n2, 3))
    assert loo.fits[3].model == "MH" and loo.estimate[3] == pytest.approx(ref.estimate, rel=1e-14)
    cum = mm.cumulative(m)
    assert cum.estimate[-1] == pytest.approx(m.estimate, rel=1e-14)
    with pytest.raises(ValueError, match="cannot be changed for a MH fit"):
        mm.leave_one_out(m, method="DL")


def test_trim_and_fill_and_egger_refuse_other_models_in_one_line():
    # fails on the old code: trim_and_fill(pool_mh(...)).original was an inverse-variance fit
    a, n1, c, n2 = bcg_tables()
    for fit, name in ((pool_mh(a, n1, c, n2), "Mantel-Haenszel"), (pool_peto(a, n1, c, n2), "Peto"),
                      (fit_glmm(PASI_X, PASI_N), "GLMM")):
        for f in (mm.trim_and_fill, mm.egger_test):
            with pytest.raises(ValueError, match=f"inverse-variance models only .* {name} fit") as ei:
                f(fit)
            assert "\n" not in str(ei.value)
    # Begg's test is defined on yi and vi for every fit (as metafor's ranktest)
    m = pool_mh(a, n1, c, n2)
    assert mm.begg_test(m).tau == pytest.approx(mm.begg_test(m.yi, m.vi).tau, rel=1e-14)


def test_iv_refit_keeps_every_setting():
    yi = np.array([0.1, 0.5, -0.2, 0.8, 0.3, 0.05])
    vi = np.array([0.04, 0.09, 0.05, 0.12, 0.03, 0.07])
    r = mm.pool(yi, vi, method="PM", test="knha", pi="HTS", i2="Q", level=0.9, labels=list("abcdef"))
    mask = np.array([True, False, True, True, False, True])
    sub = r.refit(mask)
    ref = mm.pool(yi[mask], vi[mask], method="PM", test="knha", pi="HTS", i2="Q", level=0.9)
    for name in ("estimate", "se", "tau2", "i2", "pi_lb", "pi_ub", "ci_lb"):
        assert getattr(sub, name) == pytest.approx(getattr(ref, name), rel=1e-13), name
    assert sub.labels == ("a", "c", "d", "f") and list(sub.kept) == [0, 2, 3, 5]
    assert r.refit([0, 2, 3, 5]).estimate == sub.estimate
    # a refit of a refit: positions stay those of the first input
    assert list(sub.refit([1, 3]).kept) == [2, 5]
    w = mm.pool(yi, vi, method="DL", weights=[1, 2, 3, 4, 5, 6])
    assert w.refit([0, 1, 2]).estimate == pytest.approx(
        mm.pool(yi[:3], vi[:3], method="DL", weights=[1, 2, 3]).estimate, rel=1e-14)
    for bad, msg in (([0, 9], "outside"), ([], "empty"), ([1, 1], "more than once"),
                     (np.ones(3, bool), "one value per study"), ([0.5], "integer positions")):
        with pytest.raises(ValueError, match=msg):
            r.refit(bad)


def test_glmm_refit_keeps_nagq_method_and_test():
    g = fit_glmm(PASI_X, PASI_N, nagq=3, method="EE", test="t", level=0.9)
    sub = g.refit([0, 1, 2])
    ref = fit_glmm(PASI_X[:3], PASI_N[:3], nagq=3, method="EE", test="t", level=0.9)
    assert sub.nagq == 3 and sub.method == "EE" and sub.test == "t" and sub.level == 0.9
    assert sub.estimate == pytest.approx(ref.estimate, rel=1e-14)


def test_result_kinds_and_typed_fields():
    a, n1, c, n2 = bcg_tables()
    m = pool_mh(a, n1, c, n2)
    assert isinstance(m, mm.MHResult) and isinstance(m, mm.MetaResult) and m.model == "MH"
    assert np.isfinite(m.CMH) and np.isfinite(m.BD) and m.k_pos == 13
    assert not hasattr(m, "extra")
    p = pool_peto(a, n1, c, n2)
    assert isinstance(p, mm.PetoResult) and p.model == "PETO" and p.k_pos == 13
    g = fit_glmm(PASI_X, PASI_N)
    assert isinstance(g, mm.GLMMResult) and g.model == "GLMM" and g.nagq == 7
    assert np.isfinite(g.qe_lrt) and g.loglik is not None and g.or_model is None
    r = mm.pool([0.1, 0.3], [0.1, 0.2])
    assert isinstance(r, mm.IVResult) and r.model == "IV"
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.nagq = 3


def test_pool_proportions_glmm_and_names_in_any_case():
    g = mm.pool_proportions(PASI_X, PASI_N, method="GLMM")
    ref = fit_glmm(PASI_X, PASI_N)
    assert g.model == "GLMM" and g.estimate == ref.estimate and g.tau2 == ref.tau2
    assert mm.pool_proportions(PASI_X, PASI_N, method="glmm-ee").method == "EE"
    with pytest.raises(ValueError, match="measure must be 'PLO'"):
        mm.pool_proportions(PASI_X, PASI_N, method="GLMM", measure="PFT")
    with pytest.raises(ValueError, match="add/to do not apply"):
        mm.pool_proportions(PASI_X, PASI_N, method="GLMM", add=0.5)
    a = mm.pool_proportions(PASI_X, PASI_N, measure="plo", method="reml", test="KNHA", pi="hts")
    b = mm.pool_proportions(PASI_X, PASI_N, measure="PLO", method="REML", test="knha", pi="HTS")
    assert (a.measure, a.method, a.test) == ("PLO", "REML", "knha") and a.pi_lb == b.pi_lb
    assert mm.pool([0.1, 0.3, 0.2], [0.1, 0.2, 0.1], method="hsk").method == "HSk"
    assert fit_glmm(PASI_X, PASI_N, method="ml", test="Z").method == "ML"
    assert pool_mh(*bcg_tables(), measure="rr").measure == "RR"


@pytest.mark.parametrize("call", ["confidence_interval(2)", "confidence_interval(-1)",
                                  "prediction_interval(95)", "confidence_interval(float('nan'))",
                                  "study_intervals(1)"])
def test_interval_levels_outside_0_1_are_refused(call):
    r = mm.pool([0.1, 0.3, 0.2], [0.1, 0.2, 0.1])
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        eval("r." + call)
    assert r.confidence_interval(0.9).low > r.confidence_interval(0.99).low


def test_a_subgroup_of_the_common_tau2_model_is_not_refitted_alone():
    c = next(c for c in CASES if c["id"] == "subgroups:bcg:REML:z")
    i = c["inputs"]
    r = mm.pool(i["yi"], i["vi"], subgroup=i["g"], tau2_common=True)
    sub = r.subgroups[c["levels"][0]]
    with pytest.raises(ValueError, match="one tau\\^2 common to all subgroups"):
        sub.refit([0, 1])
    with pytest.raises(ValueError, match="one tau\\^2 common"):
        mm.leave_one_out(sub)
    # the overall result refits as usual
    assert r.refit(np.arange(r.k)).estimate == pytest.approx(r.estimate, rel=1e-14)
    assert "subgroup" in r.summary() and "common tau^2" in r.summary()


@pytest.mark.parametrize("common", [False, True])
def test_spec_subgroups_call_the_library(tmp_path, common):
    """A spec with ``subgroup`` (and ``tau2_common``) gives metafor's subgroup numbers."""
    from metamsc.cli import main

    c = next(c for c in CASES if c["id"] == "subgroups:bcg:REML:knha")
    i = c["inputs"]
    rows = ["study,yi,vi,alloc"] + [f"{s},{y!r},{v!r},{g}"
                                     for s, y, v, g in zip(i["slab"], i["yi"], i["vi"], i["g"])]
    (tmp_path / "bcg.csv").write_text("\n".join(rows) + "\n")
    spec = tmp_path / "analyses" / "s.toml"
    spec.parent.mkdir()
    spec.write_text('title = "bcg"\ndata = "../bcg.csv"\nmeasure = "GEN"\nmethod = "REML"\n'
                    f'test = "knha"\nsubgroup = "alloc"\ntau2_common = {str(common).lower()}\n')
    assert main(["run", str(spec)]) == 0
    out = json.loads((tmp_path / "results" / "s.json").read_text())["subgroup"]
    assert [g["group"] for g in out["groups"]] == c["levels"]
    tol = 1e-7  # the JSON holds 8 significant digits
    if common:
        e = c["common"]
        assert out["tau2_common"] is True
        np.testing.assert_allclose([g["estimate"] for g in out["groups"]], e["estimate"], rtol=tol)
        assert out["test"]["q"] / out["test"]["df"] == pytest.approx(e["QM"], rel=tol)
        assert out["test"]["df2"] == e["QMdf"][1]
    else:
        e = c["separate"]
        assert "tau2_common" not in out and "df2" not in out["test"]
        np.testing.assert_allclose([g["estimate"] for g in out["groups"]],
                                   [g["estimate"] for g in e["groups"]], rtol=tol)
        assert out["test"]["q"] == pytest.approx(e["q_between"], rel=tol)


@pytest.mark.parametrize("body,needle", [
    ('method = "REML"\ntau2_common = true\n', "'tau2_common' = true needs a 'subgroup'"),
    ('method = "GLMM"\nsubgroup = "g"\ntau2_common = true\n', "not available for method 'GLMM'"),
    ('method = "REML"\nsubgroup = "g"\ntau2_common = "yes"\n', "tau2_common"),
])
def test_spec_tau2_common_errors_are_one_line(tmp_path, capsys, body, needle):
    from metamsc.cli import main

    (tmp_path / "d.csv").write_text("study,events,total,g\nA,1,10,x\nB,3,12,y\nC,2,8,x\n")
    spec = tmp_path / "s.toml"
    spec.write_text('title = "t"\ndata = "d.csv"\nmeasure = "PLO"\n' + body)
    assert main(["run", str(spec), "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


@pytest.mark.parametrize("case", REF["twogroup_sensitivity"], ids=lambda c: c["id"])
def test_leave_one_out_and_cumulative_of_mh_and_peto_match_metafor(case):
    """R: leave1out(rma.mh(...)), cumul(rma.peto(...)), ... on dat.bcg (call in case["R"])."""
    i = case["inputs"]
    a, b, c, d = (np.array(i[k], float) for k in ("tpos", "tneg", "cpos", "cneg"))
    fit = pool_mh(a, a + b, c, c + d) if "rma.mh" in case["id"] else pool_peto(a, a + b, c, c + d)
    t = (mm.leave_one_out if case["id"].startswith("leave1out") else mm.cumulative)(fit)
    assert all(f.model == fit.model for f in t.fits)
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("statistic", "zval"),
                         ("pvalue", "pval"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"), ("Q", "QE"),
                         ("Qp", "QEp"), ("I2", "I2"), ("H2", "H2")):
        np.testing.assert_allclose(getattr(t, ours), np.array(case[theirs], float), rtol=1e-10,
                                   atol=1e-300, err_msg=ours)


# --- meta's tau.common = TRUE rule (tau2_common="meta") ------------------------------------------

META_CASES = json.loads((Path(__file__).parent / "reference" / "subgroups_meta.json").read_text())["cases"]


@pytest.mark.parametrize("case", META_CASES, ids=[c["id"] for c in META_CASES])
def test_common_tau2_meta_rule_matches_r(case):
    """tau2_common="meta": the common tau^2 of the meta-regression, each subgroup pooled alone with
    it fixed (R: rma(yi, vi, subset = g == level, tau2 = common, test = test)), Q-between of
    those fits on G - 1 df (chi^2)."""
    i, rtol = case["inputs"], _rtol(case)
    r = mm.pool(i["yi"], i["vi"], method=case["method"], test=case["test"], subgroup=i["g"],
                tau2_common="meta")
    subs = list(r.subgroups.values())
    assert r.subgroups.tau2_common and list(r.subgroups) == case["levels"]
    for name in ("estimate", "se", "statistic", "pvalue", "ci_lb", "ci_ub", "k"):
        np.testing.assert_allclose([getattr(s, name) for s in subs], case[name], rtol=rtol,
                                   err_msg=name)
    for s in subs:
        assert s.tau2 == pytest.approx(case["tau2"], rel=rtol, abs=1e-12)
        assert "meta tau.common = TRUE" in s.conventions.tau2_estimator
        assert s.df == (s.k - 1 if case["test"] == "knha" else None)
    t = r.subgroup_test
    assert (t.df, t.df2) == (case["df"], None)
    assert t.q == pytest.approx(case["q_between"], rel=rtol)
    assert t.pvalue == pytest.approx(case["q_between_p"], rel=max(rtol, 1e-9))
    assert "tau.common = TRUE" in t.method
    # the same through subgroup_analysis and pool_effects, and "metafor" is True
    sa = mm.subgroup_analysis(mm.pool(i["yi"], i["vi"], method=case["method"], test=case["test"]),
                              i["g"], tau2_common="META")
    assert sa.test.q == t.q
    reg = mm.pool(i["yi"], i["vi"], method=case["method"], test=case["test"], subgroup=i["g"],
                  tau2_common="metafor")
    assert reg.subgroup_test.method != t.method
    assert [s.tau2 for s in reg.subgroups.values()] == [s.tau2 for s in subs]


def test_common_tau2_meta_rule_refuses_refits_and_bad_names():
    c = META_CASES[0]
    i = c["inputs"]
    r = mm.pool(i["yi"], i["vi"], subgroup=i["g"], tau2_common="meta")
    sub = r.subgroups[c["levels"][0]]
    with pytest.raises(ValueError, match="pooled with the tau\\^2 common to all subgroups"):
        sub.refit([0, 1])
    with pytest.raises(ValueError, match="tau2_common must be False, True or one of"):
        mm.pool(i["yi"], i["vi"], subgroup=i["g"], tau2_common="metareg")
    a, n1, c2, n2 = bcg_tables()
    with pytest.raises(ValueError, match="tau2_common='meta' needs an inverse-variance model"):
        mm.subgroup_analysis(pool_mh(a, n1, c2, n2), ["x"] * 6 + ["y"] * 7, tau2_common="meta")
    x = [8, 2, 1, 2, 1, 3, 0]
    n = [17, 2, 1, 2, 1, 10, 4]
    g = ["trial", "case", "case", "case", "case", "trial", "trial"]
    p = mm.pool_proportions(x, n, method="DL", test="knha", subgroup=g, tau2_common="meta")
    e = mm.pool_effects(mm.effect_size("PLO", events=x, total=n), method="DL", test="knha",
                        subgroup=g, tau2_common="meta")
    assert p.subgroup_test.q == pytest.approx(e.subgroup_test.q, rel=1e-14)
    assert "tau.common" in p.subgroup_test.method
    assert p.subgroups["case"].natural is not None
