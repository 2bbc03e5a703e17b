"""R meta's published output, reproduced by metamsc.

R meta cannot be installed on these machines, so its conventions are checked against output of
meta printed in publications: Harrer, Cuijpers, Furukawa & Ebert (2021) "Doing Meta-Analysis with
R" (metagen, metabin RR/OR with Mantel-Haenszel, metacor, metaprop GLMM, metacont) and two
knitted R Markdown documents run with meta 4.x (metabin OR/RR/RD with Mantel-Haenszel and the
inverse-variance method, metacont SMD). Each case of ``tests/reference/meta_published.json``
names its source, the meta call and meta's version, and carries the data and the printed
numbers as printed. Every number is compared to half a unit of its last printed digit (R drops
trailing zeros: ``dp`` below gives the digits meta printed the quantity with).

Where meta's rules changed between versions, the printout pins the rule of its version:
- meta < 5.2-0 took the Hartung-Knapp standard error into the prediction interval
  (``pi="riley"`` with ``test="knha"``: t(k-2) * sqrt(SE_HK^2 + tau^2)); meta >= 5.2-0 takes the
  model-based SE (``pi="HTS"``).
- meta < 4.18-1 centred the test-based CI of H on ln H also when H < 1; later versions (and
  ``hetci.h_i2_ci``) centre it on ln max(H, 1).
- meta 4.x with Mantel-Haenszel and DerSimonian-Laird computed Q around the Mantel-Haenszel
  estimate (RevMan's rule, meta's ``Q.Cochrane``) and the DL tau^2 from that Q.
- meta's REML is metafor's rma.uni with its default stopping rule (change in tau^2 below 1e-5),
  visible where tau^2 is at the boundary.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import metamsc as mm
from metamsc.proportions import proportion_ci
from metamsc.twogroup import pool_mh

REF = json.loads((Path(__file__).parent / "reference" / "meta_published.json").read_text(
    encoding="utf-8"))["cases"]
Z = stats.norm.ppf(0.975)


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def close(value: float, printed: str, dp: int = 0, what: str = "") -> None:
    """``value`` rounds to ``printed`` (``dp``: the digits meta printed, when R dropped zeros)."""
    d = max(_decimals(printed), dp)
    assert abs(value - float(printed)) <= 0.5 * 10.0**-d + 1e-12, (
        f"{what}: metamsc {value!r}, meta printed {printed}")


def cut(value: float, printed: str, what: str = "") -> None:
    """``printed`` is ``value`` cut (not rounded) after its last printed digit."""
    step = 10.0**-_decimals(printed)
    assert 0 <= abs(value) - abs(float(printed)) < step + 1e-12 and value * float(printed) >= 0, (
        f"{what}: metamsc {value!r}, printed (cut) {printed}")


def close_all(values, printed, dp: int = 0, what: str = "") -> None:
    assert len(values) == len(printed), what
    for i, (v, p) in enumerate(zip(values, printed)):
        close(float(v), p, dp, f"{what}[{i}]")


def percent(w) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return 100 * w / w.sum()


def check_het(res, p: dict, tau: bool = True, dp_h: int = 2, dp_i2: int = 1) -> None:
    """tau^2 with its Q-profile CI, tau, and meta's Q-based I^2 and H with their CIs."""
    if isinstance(p.get("tau2"), list):
        close_all([res.tau2, res.tau2_ci_lb, res.tau2_ci_ub], p["tau2"], 4, "tau^2 [CI]")
    if tau and "tau" in p:
        close_all(np.sqrt([res.tau2, res.tau2_ci_lb, res.tau2_ci_ub]), p["tau"], 4, "tau [CI]")
    close_all([res.i2, res.i2_ci_lb, res.i2_ci_ub], p["I2"], dp_i2, "I^2 [CI]")
    close_all(np.sqrt([res.h2, res.h2_ci_lb, res.h2_ci_ub]), p["H"], dp_h, "H [CI]")
    close(res.q, p["Q"], 2, "Q")
    assert res.q_df == p["Q_df"]


# --------------------------------------------------------------------- Harrer et al. (2021)

def _thirdwave(keep=None):
    d = REF["harrer_thirdwave"]["data"]
    te, se = np.array(d["TE"]), np.array(d["seTE"])
    return (te, se) if keep is None else (te[keep], se[keep])


def test_harrer_thirdwave_metagen_reml_hk_hts_prediction():
    """metagen, REML, Hartung-Knapp, Q-profile tau^2 CI, Q-based I^2/H CIs, HTS prediction."""
    case = REF["harrer_thirdwave"]
    p = case["printed"]
    te, se = _thirdwave()
    s = p["studies"]
    close_all(te, s["TE"], 4, "TE")
    close_all(te - Z * se, s["lower"], 4, "lower")
    close_all(te + Z * se, s["upper"], 4, "upper")
    res = mm.pool(te, se**2, method="REML", test="knha", i2="Q", pi="HTS")
    close_all(percent(res.weights), s["w_random"], 1, "%W(random)")
    close_all([res.estimate, res.ci_lb, res.ci_ub], p["random"], 4, "random effects [CI]")
    close(res.statistic, p["t"], what="t")
    close_all([res.pi_lb, res.pi_ub], p["pi"], 4, "prediction interval (HTS, df = 16)")
    check_het(res, p)
    close(res.q_pvalue, p["Q_p"], what="p(Q)")


@pytest.mark.parametrize("name", ["harrer_thirdwave_outliers", "harrer_thirdwave_gosh"])
def test_harrer_thirdwave_refits_of_meta_before_5_2(name):
    """Printed by meta < 5.2-0, whose prediction interval took the Hartung-Knapp SE with t(k-2):
    metamsc's pi="riley" under test="knha". Its REML stopped where metafor stops by default
    (threshold 1e-5): tau = 0.0012 in the GOSH refit, where the fully converged REML gives
    tau^2 = 4e-13; the prediction interval moves by 3e-5 with it."""
    case = REF[name]
    p = case["printed"]
    keep = [i for i in range(18) if i not in case["exclude"]]
    te, se = _thirdwave(keep)
    threshold = 1e-5 if name.endswith("gosh") else 1e-12
    res = mm.pool(te, se**2, method="REML", test="knha", i2="Q", pi="riley", threshold=threshold)
    close_all([res.estimate, res.ci_lb, res.ci_ub], p["random"], 4, "random effects [CI]")
    close(res.statistic, p["t"], what="t")
    close_all([res.pi_lb, res.pi_ub], p["pi"], 4, "prediction interval")
    check_het(res, p)
    close(res.q_pvalue, p["Q_p"], what="p(Q)")
    if "w_random" in p:
        w = np.zeros(18)
        w[keep] = percent(res.weights)
        close_all(w, p["w_random"], 1, "%W(random)")
        close(res.tau2_ci_ub, p["tau2_upper"], what="tau^2 upper")
        assert res.tau2 < float(p["tau2_below"])  # printed "tau^2 < 0.0001"
        converged = mm.pool(te, se**2, method="REML", test="knha", i2="Q", pi="riley")
        assert converged.tau2 < 1e-10
        assert abs(converged.pi_ub - float(p["pi"][1])) > 5e-5  # 0.60523: the stopping rule shows
    # the rule of meta >= 5.2-0 (model-based SE) does not give these printed intervals
    hts = mm.pool(te, se**2, method="REML", test="knha", pi="HTS", threshold=threshold)
    assert max(abs(hts.pi_lb - float(p["pi"][0])), abs(hts.pi_ub - float(p["pi"][1]))) > 5e-4


def _depression():
    d = REF["harrer_depression_rr"]["data"]
    return (np.array(d["event.e"]), np.array(d["n.e"]), np.array(d["event.c"]), np.array(d["n.c"]))


@pytest.mark.parametrize("measure", ["RR", "OR"])
def test_harrer_depression_metabin_mh_and_pm_hk(measure):
    """metabin, MH.exact = TRUE, common effect by Mantel-Haenszel, random effects by inverse
    variance with Paule-Mandel and Hartung-Knapp; Q and I^2 from the inverse-variance fit."""
    case = REF[f"harrer_depression_{measure.lower()}"]
    p = case["printed"]
    e1, n1, e2, n2 = _depression()
    es = mm.effect_size(measure, convention="meta", events1=e1, total1=n1, events2=e2, total2=n2)
    if "studies" in p:
        s = p["studies"]
        close_all(np.exp(es.yi), s[measure], 4, measure)
        close_all(np.exp(es.yi - Z * np.sqrt(es.vi)), s["lower"], 4, "lower")
        close_all(np.exp(es.yi + Z * np.sqrt(es.vi)), s["upper"], 4, "upper")
        assert (n1.sum() + n2.sum(), n1.sum(), n2.sum(), e1.sum() + e2.sum()) == (
            p["n_obs"], p["n_obs_e"], p["n_obs_c"], p["n_events"])
    mh = pool_mh(e1, n1, e2, n2, measure=measure)
    close_all(np.exp([mh.estimate, mh.ci_lb, mh.ci_ub]), p["common"], 4, "MH common effect [CI]")
    close(mh.statistic, p["z_common"], what="z (MH)")
    res = mm.pool(es.yi, es.vi, method="PM", test="knha", i2="Q")
    close_all(np.exp([res.estimate, res.ci_lb, res.ci_ub]), p["random"], 4, "random effects [CI]")
    close(res.statistic, p["t_random"], what="t")
    check_het(res, p)
    if "studies" in p:
        close_all(mh.weights, p["studies"]["w_common"], 1, "%W(common)")
        close_all(percent(res.weights), p["studies"]["w_random"], 1, "%W(random)")


def test_harrer_depression_metagen_with_a_ci_for_one_study():
    """metagen on the log risk ratios, study 7 (Murphy et al.) given by its CI only:
    SE = (ln 2.46 - ln 1.26) / (2 z_0.975); random effects by PM with a z test."""
    case = REF["harrer_depression_metagen"]
    p = case["printed"]
    e1, n1, e2, n2 = _depression()
    es = mm.effect_size("RR", convention="meta", events1=e1, total1=n1, events2=e2, total2=n2)
    yi, sei = np.array(es.yi), np.sqrt(es.vi)
    for i, (t, s) in enumerate(zip(p["TE"], p["seTE"])):  # this listing cuts, see listing_note
        cut(yi[i], t, f"TE[{i}]")
        if s is not None:
            cut(sei[i], s, f"seTE[{i}]")
    vi = np.array(es.vi)
    i7 = case["murphy"]["index"]
    vi[i7] = ((math.log(2.46) - math.log(1.26)) / (2 * Z)) ** 2
    res = mm.pool(yi, vi, method="PM", i2="Q")
    close_all(np.exp([res.estimate, res.ci_lb, res.ci_ub]), p["random"], 4, "random effects [CI]")
    close(res.statistic, p["z_random"], what="z")
    check_het(res, dict(p, Q="74.4867", Q_df=17))  # Q is not printed here; checked in the RR case


def test_harrer_healthwellbeing_metacor():
    """metacor: Fisher's z, REML, Hartung-Knapp; per-study CIs back-transformed from z."""
    case = REF["harrer_healthwellbeing"]
    p = case["printed"]
    d = case["data"]
    es = mm.effect_size("ZCOR", r=d["cor"], n=d["n"])
    s = p["studies"]
    k6 = len(s["COR"])
    close_all(np.tanh(es.yi[:k6]), s["COR"], 4, "COR")
    close_all(np.tanh(es.yi - Z * np.sqrt(es.vi))[:k6], s["lower"], 4, "lower")
    close_all(np.tanh(es.yi + Z * np.sqrt(es.vi))[:k6], s["upper"], 4, "upper")
    res = mm.pool(es.yi, es.vi, method="REML", test="knha", i2="Q")
    close_all(percent(res.weights)[:k6], s["w_random"], 1, "%W(random)")
    close_all(np.tanh([res.estimate, res.ci_lb, res.ci_ub]), p["random"], 4, "random effects [CI]")
    close(res.statistic, p["t"], what="t")
    check_het(res, p)
    assert sum(d["n"]) == p["n_obs"]


def test_harrer_opioid_metaprop_glmm():
    """metaprop GLMM (logit, ML), Hartung-Knapp CI; per-study Clopper-Pearson CIs; I^2 and H
    from the Wald-type Q of the GLMM, with meta's test-based CIs."""
    case = REF["harrer_opioid"]
    p = case["printed"]
    ev, n = np.array(case["data"]["event"]), np.array(case["data"]["n"])
    s = p["studies"]
    k5 = len(s["proportion"])
    lo, hi = proportion_ci(ev, n, method="CP")
    close_all((ev / n)[:k5], s["proportion"], 4, "proportion")
    close_all(lo[:k5], s["lower"], 4, "Clopper-Pearson lower")
    close_all(hi[:k5], s["upper"], 4, "Clopper-Pearson upper")
    res = mm.pool_proportions(ev, n, method="GLMM", test="knha")
    nat = res.natural
    close_all([nat.estimate, nat.ci_lb, nat.ci_ub], p["random"], 4, "random effects [CI]")
    close(res.tau2, p["tau2"], what="tau^2")
    close(math.sqrt(res.tau2), p["tau"], what="tau")
    close(res.qe_wald, p["Q_wald"], what="Q (Wald)")
    close(res.qe_lrt, p["Q_lrt"], what="Q (LRT)")
    hc = mm.h_i2_ci(res.qe_wald, res.k)
    close_all([hc.i2, hc.i2_low, hc.i2_high], p["I2"], 1, "I^2 [CI]")
    close_all([hc.h, hc.h_low, hc.h_high], p["H"], 2, "H [CI]")
    assert (int(n.sum()), int(ev.sum())) == (p["n_obs"], p["n_events"])


def test_harrer_suicide_metacont_smd_text():
    """metacont SMD (Hedges' g, meta's approximate correction), REML, Hartung-Knapp: the
    numbers the text quotes (2-3 decimals)."""
    case = REF["harrer_suicide"]
    p = case["printed"]
    d = case["data"]
    es = mm.effect_size("SMD", convention="meta", n1=d["n.e"], mean1=d["mean.e"], sd1=d["sd.e"],
                        n2=d["n.c"], mean2=d["mean.c"], sd2=d["sd.c"])
    res = mm.pool(es.yi, es.vi, method="REML", test="knha")
    close_all([res.estimate, res.ci_lb, res.ci_ub], p["random"], what="g [CI]")
    close(res.pvalue, p["p"], what="p")
    close(res.tau2, p["tau2"], what="tau^2")


# --------------------------------------------------------------------- meta 4.x printouts

def _fleiss93():
    d = REF["kim_fleiss93_or_inverse"]["data"]
    return (np.array(d["event.e"]), np.array(d["n.e"]), np.array(d["event.c"]), np.array(d["n.c"]))


def test_fleiss93_metabin_or_inverse_variance_dl():
    """meta 4.0-1, metabin(sm = "OR", method = "inverse"): common effect and DL random effects."""
    p = REF["kim_fleiss93_or_inverse"]["printed"]
    e1, n1, e2, n2 = _fleiss93()
    es = mm.effect_size("OR", convention="meta", events1=e1, total1=n1, events2=e2, total2=n2)
    s = p["studies"]
    close_all(np.exp(es.yi), s["OR"], 4, "OR")
    close_all(np.exp(es.yi - Z * np.sqrt(es.vi)), s["lower"], 4, "lower")
    close_all(np.exp(es.yi + Z * np.sqrt(es.vi)), s["upper"], 4, "upper")
    fe = mm.pool(es.yi, es.vi, method="EE", i2="Q")
    re = mm.pool(es.yi, es.vi, method="DL", i2="Q")
    close_all(percent(fe.weights), s["w_fixed"], 2, "%W(fixed)")
    close_all(percent(re.weights), s["w_random"], 2, "%W(random)")
    close_all(np.exp([fe.estimate, fe.ci_lb, fe.ci_ub]), p["fixed"], 4, "fixed [CI]")
    close(fe.statistic, p["z_fixed"], what="z fixed")
    close_all(np.exp([re.estimate, re.ci_lb, re.ci_ub]), p["random"], 4, "random [CI]")
    close(re.statistic, p["z_random"], what="z random")
    close(re.pvalue, p["p_random"], what="p random")
    close(re.tau2, p["tau2"], 4, "tau^2")
    check_het(re, p, tau=False)
    close(re.q_pvalue, p["Q_p"], what="p(Q)")


def test_fleiss93cont_metacont_smd_meta_convention():
    """meta 4.0-1, metacont(sm = "SMD"): Hedges' g with J = 1 - 3/(4N - 9) and variance
    N/(n1 n2) + g^2/(2(N - 3.94)); metafor's exact correction and variance do not reproduce the
    printout. H is printed as max(H, 1) = 1; its CI by meta < 4.18-1, centred on ln H."""
    p = REF["kim_fleiss93cont_smd"]["printed"]
    d = REF["kim_fleiss93cont_smd"]["data"]
    kw = dict(n1=d["n.e"], mean1=d["mean.e"], sd1=d["sd.e"], n2=d["n.c"], mean2=d["mean.c"],
              sd2=d["sd.c"])
    es = mm.effect_size("SMD", convention="meta", **kw)
    s = p["studies"]
    close_all(es.yi, s["SMD"], 4, "SMD")
    close_all(es.yi - Z * np.sqrt(es.vi), s["lower"], 4, "lower")
    close_all(es.yi + Z * np.sqrt(es.vi), s["upper"], 4, "upper")
    other = mm.effect_size("SMD", **kw)  # metafor's escalc: Hedges' exact J and its variance
    assert abs(other.yi[4] - float(s["SMD"][4])) > 1e-4
    assert abs(other.yi[4] - Z * math.sqrt(other.vi[4]) - float(s["lower"][4])) > 1e-2
    fe = mm.pool(es.yi, es.vi, method="EE", i2="Q")
    re = mm.pool(es.yi, es.vi, method="DL", i2="Q")
    close_all(percent(fe.weights), s["w"], 2, "%W(fixed)")
    close_all(percent(re.weights), s["w"], 2, "%W(random)")
    for r, name in ((fe, "fixed"), (re, "random")):
        close_all([r.estimate, r.ci_lb, r.ci_ub], p[name], 4, f"{name} [CI]")
        close(r.statistic, p["z"], what=f"z {name}")
        close(r.pvalue, p["p"], what=f"p {name}")
    close(re.tau2, p["tau2"], 4, "tau^2")
    close(re.q, p["Q"], 2, "Q")
    close(re.q_pvalue, p["Q_p"], what="p(Q)")
    # Q = 3.68 < k - 1 = 4: I^2 = 0 and meta's H = max(H, 1) = 1
    close(re.i2, p["I2"][0], 1, "I^2")
    close(math.sqrt(re.h2), p["H"][0], 2, "H")
    hc = mm.h_i2_ci(re.q, re.k)
    close_all([hc.h, hc.h_low], p["H"][:2], 2, "H, lower")
    close_all([hc.i2, hc.i2_low], p["I2"][:2], 1, "I^2, lower")
    # the upper bounds: meta < 4.18-1 centred on ln H = ln sqrt(Q/df) < 0, i.e. the current
    # interval (centred on 0) times sqrt(Q/df)
    h_raw = math.sqrt(re.q / (re.k - 1))
    close(h_raw * hc.h_high, p["H"][2], 2, "H upper (meta < 4.18-1)")
    close(100 * (1 - 1 / (h_raw * hc.h_high) ** 2), p["I2"][2], 1, "I^2 upper (meta < 4.18-1)")
    assert abs(hc.h_high - float(p["H"][2])) > 0.05  # the current rule: 2.19


@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_fleiss93_metabin_mh_with_cochrane_q(measure):
    """meta 4.x, metabin(sm = measure) with its defaults then: Mantel-Haenszel common effect,
    DerSimonian-Laird random effects with Q taken around the MH estimate (RevMan's rule,
    meta's Q.Cochrane): tau^2 = (Q - (k-1)) / (sum w - sum w^2 / sum w), w = 1/v_i
    (DerSimonian & Laird 1986, with the MH estimate in Q): pool_mh(q="cochrane"), whose
    ``random`` is that random-effects model."""
    p = REF[f"ouyang_fleiss93_mh_{measure.lower()}"]["printed"]
    e1, n1, e2, n2 = _fleiss93()
    es = mm.effect_size(measure, convention="meta", events1=e1, total1=n1, events2=e2, total2=n2)
    back = (lambda x: np.asarray(x, dtype=float)) if measure == "RD" else np.exp
    s = p["studies"]
    close_all(back(es.yi), s[measure], 4, measure)
    close_all(back(es.yi - Z * np.sqrt(es.vi)), s["lower"], 4, "lower")
    close_all(back(es.yi + Z * np.sqrt(es.vi)), s["upper"], 4, "upper")
    mh = pool_mh(e1, n1, e2, n2, measure=measure, q="cochrane")
    close_all(mh.weights, s["w_fixed"], 2, "%W(fixed), MH")
    close_all(back([mh.estimate, mh.ci_lb, mh.ci_ub]), p["fixed"], 4, "MH fixed [CI]")
    close(mh.statistic, p["z_fixed"], what="z (MH)")
    close(mh.pvalue, p["p_fixed"], what="p (MH)")
    # Q around the MH estimate with inverse-variance weights (metafor's rma.mh Q too)
    close(mh.q, p["Q"], 2, "Q (Cochrane)")
    close(mh.q_pvalue, p["Q_p"], what="p(Q)")
    assert mh.q == pool_mh(e1, n1, e2, n2, measure=measure).q  # metafor's default: the same Q
    iv = pool_mh(e1, n1, e2, n2, measure=measure, q="inverse")  # meta's Q.Cochrane = FALSE
    assert iv.q == pytest.approx(mm.pool(es.yi, es.vi, method="EE").q, rel=1e-12)
    if measure == "RD":  # here the rule shows: Q around the IV estimate is 10.42
        assert abs(iv.q - float(p["Q"])) > 0.02
    re = mh.random
    close(re.tau2, p["tau2"], 4, "tau^2 (DL from Q)")
    w = 1 / np.asarray(es.vi)
    assert re.tau2 == pytest.approx(max(0.0, (mh.q - (mh.k - 1)) / (w.sum() - (w**2).sum() / w.sum())),
                                    rel=1e-12)  # the formula, spelt out
    close_all(back([re.estimate, re.ci_lb, re.ci_ub]), p["random"], 4, "random [CI]")
    close(re.statistic, p["z_random"], what="z random")
    close(re.pvalue, p["p_random"], what="p random")
    close_all(percent(re.weights), s["w_random"], 2, "%W(random)")
    close_all(np.sqrt([re.h2, re.h2_ci_lb, re.h2_ci_ub]), p["H"], 2, "H [CI]")
    close_all([re.i2, re.i2_ci_lb, re.i2_ci_ub], p["I2"], 1, "I^2 [CI]")


# --------------------------------------------------------------------- zero cells, meta 4.15-1

def _joy():
    case = REF["joy2006_metabin_rr_zero_cells"]
    d = case["data"]
    rh, fh, rp, fp = (np.array(d[c]) for c in ("resp.h", "fail.h", "resp.p", "fail.p"))
    miss = np.where(np.array(d["drop.h"]) + np.array(d["drop.p"]) == 0, "Without missing data",
                    "With missing data")
    return case["printed"], (rh, rh + fh, rp, rp + fp), miss


def test_joy2006_metabin_rr_with_zero_cells():
    """Six studies without a placebo responder: meta's risk ratio adds 0.5 to the events and
    the group sizes, log((x1+.5)/(n1+.5)) - log((x2+.5)/(n2+.5)) with variance
    1/(x1+.5) - 1/(n1+.5) + 1/(x2+.5) - 1/(n2+.5) (Hartung & Knapp 2001, eq. 18); the
    RR.Cochrane variant (2 x 0.5 added to the group sizes) and metafor's escalc (0.5 in all four
    cells) give other values. The MH estimate takes the same 0.5 in those tables
    (MH.exact = FALSE); the random-effects fit is PM on the inverse-variance scale."""
    p, (e1, n1, e2, n2), _ = _joy()
    es = mm.effect_size("RR", convention="meta", events1=e1, total1=n1, events2=e2, total2=n2)
    assert int(np.sum(es.corrected)) == 6
    s = p["studies"]
    close_all(np.exp(es.yi), s["RR"], 2, "RR")
    close_all(np.exp(es.yi - Z * np.sqrt(es.vi)), s["lower"], 2, "lower")
    close_all(np.exp(es.yi + Z * np.sqrt(es.vi)), s["upper"], 2, "upper")
    for other in (mm.effect_size("RR.Cochrane", convention="meta", events1=e1, total1=n1,
                                 events2=e2, total2=n2),
                  mm.effect_size("RR", events1=e1, total1=n1, events2=e2, total2=n2)):
        up = np.exp(other.yi + Z * np.sqrt(other.vi))
        assert max(abs(up[i] - float(s["upper"][i])) for i in range(17)) > 0.4  # Borison: 122.44
    mh = pool_mh(e1, n1, e2, n2, measure="RR", add=(0.5, 0.5), to=("only0", "only0"),
                 drop00=(False, False))
    close_all(mh.weights, s["w_fixed"], 1, "%W(fixed), MH")
    close_all(np.exp([mh.estimate, mh.ci_lb, mh.ci_ub]), p["fixed"], 2, "MH fixed [CI]")
    close(mh.statistic, p["z_fixed"], what="z (MH)")
    exact = pool_mh(e1, n1, e2, n2, measure="RR")  # MH.exact = TRUE would give 2.14
    assert abs(math.exp(exact.estimate) - float(p["fixed"][0])) > 0.02
    re = mm.pool(es.yi, es.vi, method="PM", i2="Q")
    close_all(percent(re.weights), s["w_random"], 1, "%W(random)")
    close_all(np.exp([re.estimate, re.ci_lb, re.ci_ub]), p["random"], 2, "random [CI]")
    close(re.statistic, p["z_random"], what="z random")
    check_het(re, p)
    close(re.q_pvalue, p["Q_p"], what="p(Q)")


def test_joy2006_subgroups_by_missing_data():
    """update(m.publ, byvar = miss): MH and PM fits per subgroup, their tests of subgroup
    differences, Q and I^2 per subgroup (inverse variance) and the residual I^2 and H from the
    pooled within-subgroup Q on k - 2 df. meta 4.15-1 took PM from metafor's rma.uni, whose
    root finder stops at tol = 1.2e-4 (.Machine$double.eps^0.25): the printed subgroup tau^2
    0.1785 is the converged 0.17845 within that tolerance (tau, 0.4224, agrees to its digits)."""
    p, (e1, n1, e2, n2), miss = _joy()
    es = mm.effect_size("RR", convention="meta", events1=e1, total1=n1, events2=e2, total2=n2)
    mh = pool_mh(e1, n1, e2, n2, measure="RR", add=(0.5, 0.5), to=("only0", "only0"),
                 drop00=(False, False), subgroup=miss)
    re = mm.pool(es.yi, es.vi, method="PM", i2="Q", subgroup=miss)
    q_within = 0.0
    for g, sp in p["subgroups"].items():
        f, r = mh.subgroups[g], re.subgroups[g]
        assert f.k == r.k == sp["k"]
        close_all(np.exp([f.estimate, f.ci_lb, f.ci_ub]), sp["fixed"], 2, f"{g}: MH [CI]")
        close_all(np.exp([r.estimate, r.ci_lb, r.ci_ub]), sp["random"], 2, f"{g}: PM [CI]")
        close(math.sqrt(r.tau2), sp["tau"], 4, f"{g}: tau")
        assert abs(r.tau2 - float(sp["tau2"])) <= 0.5e-4 + 1.3e-4, g
        iv = mm.pool(es.yi[miss == g], es.vi[miss == g], method="EE", i2="Q")
        close(iv.q, sp["Q"], 2, f"{g}: Q")
        close(iv.i2, sp["I2"], 1, f"{g}: I^2")
        q_within += iv.q
    for test, pt in ((mh.subgroup_test, p["between_fixed"]),
                     (re.subgroup_test, p["between_random"])):
        close(test.q, pt["Q"], 2, "Q between")
        assert test.df == pt["df"]
        close(test.pvalue, pt["p"], what="p between")
    hc = mm.h_i2_ci(q_within, len(miss) - 2 + 1)  # df = k - number of subgroups
    close_all([hc.i2, hc.i2_low, hc.i2_high], p["residual"]["I2"], 1, "residual I^2 [CI]")
    close_all([hc.h, hc.h_low, hc.h_high], p["residual"]["H"], 2, "residual H [CI]")


# --------------------------------------------------------------------- meta >= 8

@pytest.mark.parametrize("outcome", ["response", "remission"])
def test_meta8_prediction_rule_v_and_h_interval_below_k(outcome):
    """meta >= 8: PM with Hartung-Knapp; the prediction interval by meta's default rule "V"
    (Veroniki et al. 2019): estimate -/+ t(k-1) sqrt(SE_model^2 + tau^2) with the model-based SE,
    pool(pi="V"), also under test="knha" (pi="t" takes the result's SE, under test="knha" the
    Hartung-Knapp one, and does not give the printout). Q < k - 1: I^2 = 0, H = 1 and the
    H interval centred on ln 1 (the rule of meta >= 4.18-1; compare the meta 4.0-1 printout in
    test_fleiss93cont_metacont_smd_meta_convention). The study data are recovered from the
    printed study CIs (4 decimals), so pooled results are compared at 3 decimals; the H and I^2
    bounds depend only on k here and are compared to their printed digits."""
    o = REF["mdma_response_remission_meta8"]["outcomes"][outcome]
    s = o["studies"]
    lb, ub = np.log(np.array(s["lower"], float)), np.log(np.array(s["upper"], float))
    yi, sei = np.log(np.array(s["RR"], float)), (ub - lb) / (2 * Z)
    res = mm.pool(yi, sei**2, method="PM", test="knha", i2="Q", pi="V")
    k = res.k
    close_all(percent(res.weights), s["w_random"], 1, "%W(random)")
    recovered = 5e-4  # the data carry the rounding of the printed study CIs
    for v, pr in zip(np.exp([res.estimate, res.ci_lb, res.ci_ub]), o["random"]):
        assert abs(v - float(pr)) <= recovered, ("random [CI]", v, pr)
    close(res.statistic, o["t"], what="t")
    assert abs(res.pvalue - float(o["p"])) <= recovered
    close(res.tau2, o["tau2"], 4, "tau^2")
    close(res.q, o["Q"], 2, "Q")
    assert res.q_df == o["Q_df"]
    for v, pr in zip(np.exp([res.pi_lb, res.pi_ub]), o["pi"]):
        assert abs(v - float(pr)) <= recovered, ("prediction interval (V)", v, pr)
    half = stats.t.ppf(0.975, k - 1) * math.sqrt(res.se_model**2 + res.tau2)  # the rule, spelt out
    assert (res.pi_lb, res.pi_ub) == pytest.approx((res.estimate - half, res.estimate + half),
                                                   rel=1e-12)
    for rule in ("t", "HK", "HTS", "riley", "metafor"):
        other = mm.pool(yi, sei**2, method="PM", test="knha", pi=rule)
        assert abs(math.exp(other.pi_ub) - float(o["pi"][1])) > 1e-3, rule
    close_all([res.i2, res.i2_ci_lb, res.i2_ci_ub], o["I2"], 1, "I^2 [CI]")
    close_all(np.sqrt([res.h2, res.h2_ci_lb, res.h2_ci_ub]), o["H"], 2, "H [CI]")


def test_fleiss93_metainf_mh_leave_one_out():
    """meta 4.x metainf(pooled = "fixed") of the MH odds-ratio fit: the MH estimate, CI and p
    without each study, with the DL tau^2 and I^2 of the reduced set (Q around its MH estimate)."""
    p = REF["ouyang_fleiss93_mh_or"]["printed"]["metainf"]
    e1, n1, e2, n2 = _fleiss93()
    for i, row in enumerate(p["rows"]):
        keep = np.arange(7) != i
        mh = pool_mh(e1[keep], n1[keep], e2[keep], n2[keep], measure="OR", q="cochrane")
        close_all(np.exp([mh.estimate, mh.ci_lb, mh.ci_ub]), row[:3], 4, f"omitting {i}: OR [CI]")
        if row[3].startswith("<"):
            assert mh.pvalue < float(row[3][1:])
        else:
            close(mh.pvalue, row[3], what=f"omitting {i}: p")
        close(mh.random.tau2, row[4], 4, f"omitting {i}: tau^2")
        close(mh.random.i2, row[5], 1, f"omitting {i}: I^2")
    # metainf through the library: leave_one_out of the MH fit keeps q="cochrane"
    loo = mm.leave_one_out(pool_mh(e1, n1, e2, n2, measure="OR", q="cochrane"))
    close(loo.fits[0].random.tau2, p["rows"][0][4], 4, "leave_one_out: tau^2")


def test_harrer_thirdwave_subgroups_separate_and_common_tau2():
    """update(m.gen, subgroup = RiskOfBias): REML and Hartung-Knapp per subgroup, Q and Q-based
    I^2 per subgroup, Q-between from the subgroup estimates and SEs. With tau.common = TRUE meta
    takes the common tau^2 of the meta-regression on the subgroups (REML), then pools each subgroup
    on its own with that tau^2 (Hartung-Knapp within the subgroup, df k_g - 1) and tests the
    subgroup estimates by Q-between: pool(subgroup=..., tau2_common="meta"). pool(subgroup=...,
    tau2_common=True) follows metafor instead (one meta-regression, Hartung-Knapp on k - p df, a
    Wald/F test) and does not give the printout."""
    case = REF["harrer_thirdwave_subgroups"]
    te, se = _thirdwave()
    rob = np.array(case["RiskOfBias"])
    sep = case["printed"]["separate"]
    res = mm.pool(te, se**2, method="REML", test="knha", i2="Q", subgroup=list(rob))
    for g in ("high", "low"):
        s, p = res.subgroups[g], sep[g]
        assert s.k == p["k"]
        close_all([s.estimate, s.ci_lb, s.ci_ub], p["random"], 4, f"{g} [CI]")
        close(s.tau2, p["tau2"], 4, f"{g}: tau^2")
        close(math.sqrt(s.tau2), p["tau"], 4, f"{g}: tau")
        close(s.q, p["Q"], 2, f"{g}: Q")
        close(s.i2, p["I2"], 1, f"{g}: I^2")
    close(res.subgroup_test.q, sep["between"]["Q"], 2, "Q between")
    close(res.subgroup_test.pvalue, sep["between"]["p"], what="p between")

    com = case["printed"]["common"]
    meta = mm.pool(te, se**2, method="REML", test="knha", i2="Q", subgroup=list(rob),
                   tau2_common="meta")
    reg = mm.pool(te, se**2, method="REML", test="knha", i2="Q", subgroup=list(rob),
                  tau2_common=True)
    q_within = 0.0
    for g in ("high", "low"):
        s = meta.subgroups[g]
        assert s.k == com[g]["k"]
        close(s.tau2, com[g]["tau2"], 4, f"{g}: common tau^2")
        close(math.sqrt(s.tau2), com[g]["tau"], 4, f"{g}: common tau")
        assert s.tau2 == reg.subgroups[g].tau2  # the same common tau^2 under both rules
        close_all([s.estimate, s.ci_lb, s.ci_ub], com[g]["random"], 4, f"{g} [CI], common tau^2")
        assert s.df == s.k - 1  # Hartung-Knapp within the subgroup
        assert abs(reg.subgroups[g].ci_lb - float(com[g]["random"][1])) > 0.05  # metafor's rule
        close(s.q, com[g]["Q"], 2, f"{g}: Q")
        close(s.i2, com[g]["I2"], 1, f"{g}: I^2")
        q_within += s.q
    close(meta.subgroup_test.q, com["between"]["Q"], 2, "Q between, common tau^2")
    assert meta.subgroup_test.df == com["between"]["df"] and meta.subgroup_test.df2 is None
    close(meta.subgroup_test.pvalue, com["between"]["p"], what="p between")
    close(q_within, com["within"]["Q"], 2, "Q within")
    close(float(stats.chi2.sf(q_within, com["within"]["df"])), com["within"]["p"], what="p within")
