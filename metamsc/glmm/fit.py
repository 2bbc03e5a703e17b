"""Fitting a GLMM: common-effect GLM, heterogeneity tests, the random-effects ML fit (Newton on
the AGQ likelihood, Hessian, profile CI of tau^2) and inference, as metafor's ``rma.glmm``.

* ``QE_Wld`` and ``QE_LRT`` compare the common-effect model with the saturated model (a
  separate proportion or rate per study; a separate odds ratio per study for two groups): the
  Wald test that all study parameters are equal and the likelihood-ratio test.
* I^2 = 100 tau^2 / (tau^2 + v~), H^2 = 1 + tau^2 / v~ with the typical within-study variance
  v~ of the ``escalc`` outcomes of the same data (Higgins & Thompson 2002, Stat Med 21:1539).
* Prediction interval: estimate -/+ crit * sqrt(SE^2 + tau^2).
* As in lme4 the SE of the pooled estimate is taken from the joint Hessian of (estimate,
  tau^2); at tau^2 = 0 from the Hessian of the common-effect likelihood.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from .._dist import chi2_ppf as _chi2_ppf_arr
from .._util import readonly
from ..results import Diagnostics, GLMMResult
from .arrow import drop_last
from .build import (WEIGHTS_TEXT, common_effect_dict, conventions, make_result, nan_result,
                    natural, typed_fields, typical_variance, z_crit)
from .data import degenerate
from .glm import glm_newton, r_glm_saturated, wald_homogeneity
from .likelihood import QuadratureLikelihood, single_group, two_group_fixed_studies
from .optimize import Objective, eigvalsh_small, maximize, shared_cov
from .profile import profile_bound, profile_joint, tau2_profile_ci

__all__ = ["fit_model", "fit_ml", "start_grid", "chi2_ppf"]


def chi2_ppf(level: float, df: float) -> float:
    return float(_chi2_ppf_arr(level, df))


def chi2_sf_or_nan(x: float, df: float) -> float:
    """P(chi^2_df > x); NaN without degrees of freedom or a finite statistic."""
    return float(special.chdtrc(df, x)) if df > 0 and np.isfinite(x) else float("nan")


def t_crit(level: float, df: float) -> float:
    return float(special.stdtrit(df, 1 - (1 - level) / 2)) if df > 0 else float("nan")


def start_grid(obj: Objective, theta0, steps=(-1.5, -0.75, 0.0, 0.75, 1.5, 2.25)):
    """Starting point for Newton: the best of a batch of log tau^2 values around ``theta0``.

    At each log tau^2 of the grid beta is profiled by one Newton step (quadratic
    approximation from the fixed-node Hessian); a parabola through the best
    grid point and its neighbours gives log tau^2. One batched evaluation.
    """
    psi = theta0[-1] + np.asarray(steps)
    Th = np.repeat(theta0[None, :], psi.size, axis=0)
    Th[:, -1] = psi
    res = obj.many(Th, "h")
    lp = np.full(psi.size, -np.inf)
    gam = np.repeat(theta0[None, :-1], psi.size, axis=0)
    for i, (val, g, H, _) in enumerate(res):
        a = -H[0, 0]
        if np.isfinite(val) and a > 0:
            lp[i] = val + 0.5 * g[0] * g[0] / a
            gam[i, 0] += g[0] / a
    i = int(np.argmax(lp))
    if not np.isfinite(lp[i]):
        return theta0
    new = np.append(gam[i], psi[i])
    if 0 < i < psi.size - 1 and np.all(np.isfinite(lp[i - 1:i + 2])):
        y0, y1, y2 = lp[i - 1], lp[i], lp[i + 1]
        h = psi[i + 1] - psi[i]
        den = y0 - 2 * y1 + y2
        if den < 0:
            off = 0.5 * h * (y0 - y2) / den
            new[-1] = psi[i] + max(-h, min(h, off))
            w = max(-1.0, min(1.0, off / h))
            j = i + 1 if w > 0 else i - 1
            new[:-1] = gam[i] + abs(w) * (gam[j] - gam[i])
    obj.model.set_state(res[i][3])
    return new


def fit_ml(model, g_ee, ll_ee, level, want_ci):
    """Random-effects ML: boundary check, Newton, Hessian, profile CI of tau^2."""
    msgs: list[str] = []
    warns: list[str] = []
    p = g_ee.size
    nan = float("nan")
    # score for s = tau^2 at s = 0 and the common-effect estimate
    S0 = float(model.evaluate(g_ee, 0.0, "g")[1][-1])
    res = None
    boundary = S0 <= 0
    if not boundary:
        # start: one scoring step from s = 0, s0 = S0 / (1/2 sum_i v_i^2)
        _, v = model.glm_moments(g_ee)
        info = 0.5 * float(v @ v)
        s0 = min(max(S0 / info, 0.01), 10.0) if info > 0 else 0.1
        model.reset_state()
        obj = Objective(model)
        caps = np.append(np.full(p, 3.0), 2.0)
        theta0 = np.append(g_ee, math.log(s0))
        if model.p == 1:
            theta0 = start_grid(obj, theta0)
        res = maximize(obj, theta0, caps, maxiter=200,
                        psi_min=math.log(1e-20), psi_max=math.log(1e8))
        if res["status"] == "diverged":
            return dict(diverged=True, message="tau^2 -> infinity (the likelihood increases "
                                               "without bound as tau^2 grows)")
        if res["status"] == "boundary" or res["value"] <= ll_ee:
            boundary = True
            msgs.append("the likelihood is maximised at tau^2 = 0")
    else:
        msgs.append(f"score for tau^2 at tau^2 = 0 is {S0:.4g} <= 0: the maximum is at tau^2 = 0")
    q = chi2_ppf(level, 1)
    t_lb = t_ub = nan
    if boundary:
        gamma, s, value = g_ee.copy(), 0.0, ll_ee
        iterations = 0 if res is None else res["iterations"]
        status = "converged"
        _, grad, H0 = model.evaluate(gamma, 0.0, "h")  # the GLM Hessian is exact
        Hg = drop_last(H0)
        gmax = float(np.abs(grad[:p]).max())
        eig = eigvalsh_small(-Hg)
        cov = shared_cov(-Hg)
        se = float(math.sqrt(cov[0, 0]))
        se_tau2 = nan
        msgs.append("tau^2 = 0 (boundary): SE from the Hessian of the common-effect likelihood")
        if want_ci:
            model.reset_state()
            pss = np.log(np.array([0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]))
            done = profile_joint(model, ll_ee, q, {1: (pss, np.repeat(gamma[None, :], pss.size, 0))},
                                  model.get_state(), -np.inf)
            if 1 in done:
                psi_u, ok_u, m_u = done[1], True, ""
            else:
                model.reset_state()
                psi_u, ok_u, m_u = profile_bound(model, +1, gamma, -np.inf, math.log(0.5), ll_ee,
                                                  q, math.log(1e6))
            t_lb = 0.0
            t_ub = math.exp(psi_u) if ok_u else float("inf")
            if not ok_u:
                warns.append(f"upper profile-likelihood bound of tau^2 not found ({m_u}); "
                             "reported as inf")
    else:
        theta = res["theta"]
        gamma, s, value = theta[:-1].copy(), math.exp(theta[-1]), res["value"]
        iterations, status = res["iterations"], res["status"]
        obj = Objective(model)
        Hfd = res["H_exact"] if res["H_exact"] is not None else obj.fd_hessian(theta)
        grad = res["grad"]
        gmax = float(np.abs(grad).max())
        eig = eigvalsh_small(-Hfd)
        if np.min(eig) <= 0:
            status = "Hessian of the deviance is not positive definite"
            cov = np.full((2, 2), np.nan)
        else:
            cov = shared_cov(-Hfd)
        se = float(math.sqrt(cov[0, 0])) if cov[0, 0] > 0 else nan
        se_tau2 = float(s * math.sqrt(cov[-1, -1])) if cov[-1, -1] > 0 else nan
        if status == "converged" and gmax > 1e-6 * (1 + abs(value)) ** 0.5:
            status = f"gradient not zero (max |g| = {gmax:.3g})"
        if want_ci and np.min(eig) > 0:
            t_lb, t_ub = tau2_profile_ci(model, gamma, theta[-1], value, ll_ee, Hfd, q, warns)
    converged = status == "converged" and bool(np.min(eig) > 0)
    coords = "beta" if p == 1 else "(beta, study effects)"
    if not boundary:
        coords = coords[:-1] + ", log tau^2)" if p > 1 else "(beta, log tau^2)"
    msgs.insert(0, f"max |gradient| = {gmax:.2e} in {coords}; Hessian of the deviance "
                   f"{'positive definite' if np.min(eig) > 0 else 'NOT positive definite'} "
                   f"(smallest eigenvalue {np.min(eig):.3g})")
    if res is not None and res.get("fd_used"):
        msgs.append(f"finite-difference Hessian used in {res['fd_used']} Newton step(s)")
    return dict(gamma=gamma, tau2=float(s), value=float(value), se=se, se_tau2=se_tau2,
                iterations=int(iterations), converged=converged, boundary=boundary,
                message="" if converged else status, messages=msgs, warnings=warns,
                tau2_ci=(t_lb, t_ub), grad_max=gmax, hess_eig=tuple(float(e) for e in eig),
                diverged=False)


# ---------------------------------------------------------------------------------------------
# The fit of one model, in steps
# ---------------------------------------------------------------------------------------------
def likelihood_of(d: dict[str, Any], nq: int) -> QuadratureLikelihood:
    """The AGQ likelihood of the prepared data (see :mod:`.data`)."""
    if d["design"] == "single":
        return single_group(d["family"], d["y"], d["n"], d["offset"], nq, d.get("support"))
    return two_group_fixed_studies(d["family"], d["y"], d["n"], d["offset"], nq)


def _log_constant(family, y, n) -> float:
    """The part of the log-likelihood free of parameters: log binomial coefficients or
    -log(y!)."""
    if family == "binomial":
        return float(np.sum(special.gammaln(n + 1) - special.gammaln(y + 1)
                            - special.gammaln(n - y + 1)))
    return float(-np.sum(special.gammaln(y + 1)))


def common_effect(d: dict[str, Any], lik: QuadratureLikelihood) -> dict[str, Any]:
    """The common-effect GLM (tau^2 = 0): estimate, covariance, log-likelihood (with and
    without constants), number of informative studies."""
    if d["design"] != "single":
        x, n1, c, n2 = d["x"], d["tot"], d["x2"], d["tot2"]
        if d["family"] == "binomial":
            p1 = (x + 0.5) / (n1 + 1)
            p2 = (c + 0.5) / (n2 + 1)
            lo1, lo2 = np.log(p1 / (1 - p1)), np.log(p2 / (1 - p2))
        else:
            lo1, lo2 = np.log((x + 0.5) / n1), np.log((c + 0.5) / n2)
        g_ee, cov_ee, ll_ee, it_ee, ok_ee = glm_newton(lik, np.append(np.mean(lo1 - lo2), lo2))
        informative = int(np.sum((x > 0) & (c > 0) & (d["family"] == "poisson"
                                                      or ((x < n1) & (c < n2)))))
        const = _log_constant(d["family"], d["y"], d["n"])
    elif d["family"] == "nchg":
        # CM.EL: the conditional (noncentral hypergeometric) likelihood by Newton-Raphson
        sup, logw = d["support"]
        a, b, c = d["x"], d["tot"] - d["x"], d["x2"]
        dd = d["tot2"] - c
        start = math.log((a.sum() + 0.5) * (dd.sum() + 0.5) / ((b.sum() + 0.5) * (c.sum() + 0.5)))
        g_ee, cov_ee, ll_ee, it_ee, ok_ee = glm_newton(lik, np.array([start]))
        informative = int(np.sum((a > sup[:, 0]) & (a < sup.max(axis=1))))
        const = float(np.sum(np.take_along_axis(logw, (a - sup[:, 0]).astype(int)[:, None],
                                                axis=1)))
    elif np.any(d["offset"] != 0) and d["family"] == "binomial":
        # conditional models: the GLM with study-specific offsets by Newton-Raphson
        x, tt = d["y"], d["n"]
        start = math.log((x.sum() + 0.5) / (tt.sum() - x.sum() + 0.5)) - float(np.mean(d["offset"]))
        g_ee, cov_ee, ll_ee, it_ee, ok_ee = glm_newton(lik, np.array([start]))
        informative = int(np.sum((x > 0) & (x < tt)))
        const = _log_constant("binomial", x, tt)
    else:
        x, tt = d["y"], d["n"]
        X_sum, T_sum = float(x.sum()), float(tt.sum())
        # common-effect GLM in closed form: logit(sum x / sum n) or log(sum x / sum t)
        if d["family"] == "binomial":
            beta_ee = math.log(X_sum / (T_sum - X_sum))
            info = X_sum * (T_sum - X_sum) / T_sum
            informative = int(np.sum((x > 0) & (x < tt)))
        else:
            beta_ee = math.log(X_sum / T_sum)
            info = X_sum
            informative = int(np.sum(x > 0))
        const = _log_constant(d["family"], x, tt)
        g_ee = np.array([beta_ee])
        cov_ee = np.array([[1.0 / info]])
        ll_ee = lik.evaluate(g_ee, 0.0, "v")[0]
        it_ee, ok_ee = 0, True
    se_ee = math.sqrt(cov_ee[0, 0]) if cov_ee[0, 0] > 0 else float("nan")
    return dict(gamma=g_ee, beta=float(g_ee[0]), se=se_ee, ll=ll_ee, ll_full=ll_ee + const,
                const=const, iterations=it_ee, converged=ok_ee, informative=informative)


def _conditional_saturated(lik: QuadratureLikelihood, warns) -> tuple[float, float]:
    """Saturated CM.EL model: each study's conditional ML log odds ratio (Newton on
    x = E[X | theta]) with variance 1 / Var[X | theta]; (QE_Wld, log-likelihood). A study whose
    count is at an end of its support has an infinite estimate and contributes log 1 = 0 to
    the log-likelihood; then there is no Wald test."""
    sup, logw = lik.sup, lik.logw
    y = lik.y[:, 0]
    lo, hi = sup[:, 0], sup.max(axis=1)
    inner = (y > lo) & (y < hi)
    eta = np.zeros(y.size)
    for _ in range(100):
        _, m, v, _ = lik.nchg_cumulants(eta[None, :, None])
        step = np.where(inner, (y - m[0, :, 0]) / v[0, :, 0], 0.0)
        eta = eta + np.clip(step, -2.0, 2.0)
        if np.abs(step).max() < 1e-12:
            break
    K, _, v, _ = lik.nchg_cumulants(eta[None, :, None])
    logw_y = np.take_along_axis(logw, (y - lo).astype(int)[:, None], axis=1)[:, 0]
    ll_sat = float(np.sum(np.where(inner, logw_y + y * eta - K[0, :, 0], 0.0)))
    if not np.all(inner):
        bad = int(np.flatnonzero(~inner)[0]) + 1
        warns.append(f"no Wald test of heterogeneity (QE_Wld): study {bad} has a zero cell, "
                     "so its conditional ML odds ratio is 0 or infinite")
        return float("nan"), ll_sat
    return wald_homogeneity(eta, 1.0 / v[0, :, 0]), ll_sat


def heterogeneity_tests(d, measure, ce, extra, warns, lik=None) -> tuple[float, int, float]:
    """QE_Wld and QE_LRT against the saturated model fitted as R's glm.fit (as metafor);
    puts them in ``extra`` and returns (QE_Wld, df, p)."""
    nan = float("nan")
    k = d["k"]
    QE_W = QE_L = QEp_W = QEp_L = nan
    q_df = k - 1
    if k > 1:
        if d["design"] != "single" and d["family"] == "binomial":
            eta1, var1, ll1 = r_glm_saturated("binomial", d["x"], d["tot"])
            eta2, var2, ll2 = r_glm_saturated("binomial", d["x2"], d["tot2"])
            ll_sat = ll1 + ll2
            QE_W = wald_homogeneity(eta1 - eta2, var1 + var2)
        elif d["design"] != "single":
            eta1, var1, ll1 = r_glm_saturated("poisson", d["x"], None, d["offset"][:, 0])
            eta2, var2, ll2 = r_glm_saturated("poisson", d["x2"], None, d["offset"][:, 1])
            ll_sat = ll1 + ll2
            QE_W = wald_homogeneity(eta1 - eta2, var1 + var2)
        elif d["family"] == "nchg":
            QE_W, ll_sat = _conditional_saturated(lik, warns)
        elif d["family"] == "binomial":
            eta_s, var_s, ll_sat = r_glm_saturated("binomial", d["y"], d["n"])
            QE_W = wald_homogeneity(eta_s - d["offset"], var_s)
        else:
            eta_s, var_s, ll_sat = r_glm_saturated("poisson", d["y"], None, d["offset"])
            QE_W = wald_homogeneity(eta_s, var_s)
        QE_W = max(QE_W, 0.0)
        QE_L = max(-2.0 * (ce["ll_full"] - ll_sat), 0.0)
        QEp_W, QEp_L = chi2_sf_or_nan(QE_W, q_df), chi2_sf_or_nan(QE_L, q_df)
        extra["loglik_saturated"] = ll_sat
        informative = ce["informative"]
        if informative < 2:
            what = ("0 < events < total" if measure == "PLO" else "events" if measure == "IRLN"
                    else "no zero cell" if d["kind"] == "binomial2" and d["design"] != "single"
                    else "events in both groups")
            warns.append(f"heterogeneity tests uninformative: only {informative} "
                         f"stud{'y has' if informative == 1 else 'ies have'} {what}")
        extra["QE_LRT_text"] = (f"likelihood-ratio test of heterogeneity QE_LRT({q_df}) = "
                                f"{QE_L:.4f}, p = {QEp_L:.4g}")
    extra.update(QE_Wld=QE_W, QEp_Wld=QEp_W, QE_LRT=QE_L, QEp_LRT=QEp_L,
                 QE_df=q_df if k > 1 else None, loglik_EE=ce["ll_full"])
    return QE_W, q_df, QEp_W


def _not_identifiable(d, measure, informative) -> str | None:
    if d["k"] == 1:
        return "k = 1 (tau^2 cannot be estimated from one study)"
    if d["design"] == "single" and d["family"] != "poisson" and informative == 0:
        if measure != "PLO":
            return ("no study has events in both groups (the likelihood increases without "
                    "bound as tau^2 grows)")
        return ("no study has 0 < events < total (the likelihood increases without bound as "
                "tau^2 grows)")
    return None


def random_effects(lik, ce, level, want_ci, extra, warns, messages) -> dict[str, Any]:
    """The ML fit; the working values of the result (or ``not_ident`` with the reason)."""
    res = fit_ml(lik, ce["gamma"], ce["ll"], level, want_ci)
    if res["diverged"]:
        return dict(not_ident=res["message"])
    t_lb, t_ub = res["tau2_ci"]
    messages.extend(res["messages"])
    warns.extend(res["warnings"])
    extra.update(loglik=res["value"] + ce["const"], gradient_max=res["grad_max"],
                 hessian_eigenvalues=res["hess_eig"])
    if want_ci:
        extra.update(tau2_profile_ci=(t_lb, t_ub),
                     tau2_ci_kind=(f"profile likelihood, {100 * level:g}%: "
                                   f"2 (l_max - l_p(tau^2)) <= chi2_1 quantile "
                                   f"{chi2_ppf(level, 1):.4f}"))
    if not res["converged"]:
        warns.append("ML fit did not converge: " + (res["message"] or "see diagnostics"))
    return dict(not_ident=None, tau2=res["tau2"], beta=float(res["gamma"][0]), se=res["se"],
                iterations=res["iterations"], converged=res["converged"],
                boundary=res["boundary"], se_tau2=res["se_tau2"], t_lb=t_lb, t_ub=t_ub)


def fit_model(d, measure, method, nq, test, level, want_ci, model_name=None) -> GLMMResult:
    """Fit the prepared data ``d`` (see :func:`.data.prepare`) and build the result."""
    nan = float("nan")
    warns: list[str] = []
    messages: list[str] = []
    extra: dict[str, Any] = {"nagq": nq, "model": model_name, "measure": measure}
    why = degenerate(d, measure, level, extra)
    if why is not None:
        warns.append(f"random-effects model not identifiable: {why}" if method == "ML" else
                     f"common-effect model not estimable: {why}")
        if "bound_kind" in extra:
            which = "upper" if " upper bound" in extra["bound_kind"] else "lower"
            warns.append(f"reported instead: {extra['bound_kind']} = "
                         f"{extra['exact_' + which + '_bound']:.6g}")
        extra["degenerate"] = why
        return nan_result(d, measure, method, test, level, nq, warns, messages, extra, want_ci)
    if model_name == "UM.RS":
        return _fit_random_studies(d, measure, method, nq, test, level, want_ci, extra, warns,
                                   messages)
    lik = likelihood_of(d, nq)
    ce = common_effect(d, lik)
    q = heterogeneity_tests(d, measure, ce, extra, warns, lik)
    es = d["es"]
    yi_all, vi_all = np.asarray(es.yi, float), np.asarray(es.vi, float)
    okv = np.isfinite(yi_all) & np.isfinite(vi_all)
    vt = typical_variance(vi_all[okv])
    fit = dict(tau2=0.0, beta=ce["beta"], se=ce["se"], iterations=ce["iterations"],
               converged=ce["converged"], boundary=False, se_tau2=nan, t_lb=nan, t_ub=nan)
    if method == "EE":
        algorithm = ("Newton-Raphson (common-effect GLM)" if d["design"] != "single" else
                     "closed form (common-effect GLM: pooled counts)")
        extra.update(loglik=ce["ll_full"])
    else:
        algorithm = (f"Newton-Raphson on the AGQ log-likelihood (nagq = {nq}) with its exact "
                     "gradient")
        not_ident = _not_identifiable(d, measure, ce["informative"])
        if not_ident is None:
            fit = random_effects(lik, ce, level, want_ci, extra, warns, messages)
            not_ident = fit["not_ident"]
        if not_ident is not None:
            warns.append(f"random-effects model not identifiable: {not_ident}")
            ced = common_effect_dict(measure, ce["beta"], ce["se"], level, d)
            extra["common_effect"] = ced
            warns.append("reported instead: the common-effect (GLM) estimate in "
                         f"common_effect = {ced['estimate']:.6g} (SE {ced['se']:.6g})")
            extra["degenerate"] = not_ident
            extra.pop("QE_LRT_text", None)
            return nan_result(d, measure, method, test, level, nq, warns, messages, extra,
                              want_ci, q=q, vt=vt)
    extra["nfev"] = lik.nfev
    return _finish(d, measure, method, nq, test, level, want_ci, fit, q, vt, okv, algorithm,
                   extra, warns, messages)


def _finish(d, measure, method, nq, test, level, want_ci, fit, q, vt, okv, algorithm, extra,
            warns, messages) -> GLMMResult:
    """Inference (z or t), CI, PI, I^2/H^2 with their profile CIs, and the result."""
    nan = float("nan")
    k = d["k"]
    es = d["es"]
    beta, se, tau2, t_lb, t_ub = fit["beta"], fit["se"], fit["tau2"], fit["t_lb"], fit["t_ub"]
    stat = beta / se if se > 0 else nan
    if test == "z":
        df = None
        crit = z_crit(level)
        pval = float(2 * special.ndtr(-abs(stat)))
    else:
        df = float(k - 1)
        crit = t_crit(level, df)
        pval = float(2 * special.stdtr(df, -abs(stat))) if df > 0 else nan
    ci_lb, ci_ub = beta - crit * se, beta + crit * se
    pi_se = math.sqrt(se * se + tau2) if np.isfinite(se) else nan
    pi_lb, pi_ub = (nan, nan) if method == "EE" else (beta - crit * pi_se, beta + crit * pi_se)
    i_lb = i_ub = h_lb = h_ub = nan
    if method == "ML" and np.isfinite(vt):
        i2, h2 = 100 * tau2 / (vt + tau2), 1 + tau2 / vt
        if np.isfinite(t_lb):
            i_lb, h_lb = 100 * t_lb / (vt + t_lb), 1 + t_lb / vt
        if t_ub == np.inf:
            i_ub, h_ub = 100.0, np.inf
        elif np.isfinite(t_ub):
            i_ub, h_ub = 100 * t_ub / (vt + t_ub), 1 + t_ub / vt
    else:
        i2, h2 = 0.0, 1.0
    if k == 1:
        warns.append("k = 1: no heterogeneity can be estimated")
        if test != "z":
            warns.append(f"k = 1: {test} inference has 0 degrees of freedom; no CI or p-value")
    if "QE_LRT_text" in extra:
        messages.append(extra["QE_LRT_text"])
    if method == "ML":
        if want_ci:
            messages.append(f"tau^2 {100 * level:g}% profile-likelihood CI [{t_lb:.6g}, {t_ub:.6g}]")
        messages.append(f"adaptive Gauss-Hermite quadrature with nagq = {nq} nodes")
    yi_all, vi_all = np.asarray(es.yi, float), np.asarray(es.vi, float)
    lab_d = tuple(lb for lb, kp in zip(d["labels"], okv) if kp)
    w = 1.0 / (vi_all[okv] + tau2)
    extra["weights_definition"] = WEIGHTS_TEXT
    QE_W, q_df, QEp_W = q
    return make_result(
        measure=measure, method=method, test=test, level=level, k=k, estimate=float(beta),
        se=float(se), statistic=float(stat), pvalue=float(pval), ci_lb=float(ci_lb),
        ci_ub=float(ci_ub), df=df, tau2=float(tau2), se_tau2=float(fit["se_tau2"]),
        tau2_ci_lb=float(t_lb), tau2_ci_ub=float(t_ub), i2=float(i2), i2_ci_lb=float(i_lb),
        i2_ci_ub=float(i_ub), h2=float(h2), h2_ci_lb=float(h_lb), h2_ci_ub=float(h_ub),
        q=float(QE_W), q_df=int(q_df), q_pvalue=float(QEp_W), pi_lb=float(pi_lb),
        pi_ub=float(pi_ub), pi_se=float(pi_se), vt=float(vt), s2w=1.0, s2w_knha=nan,
        se_model=float(se), labels=lab_d, yi=readonly(yi_all[okv]), vi=readonly(vi_all[okv]),
        weights=readonly(100 * w / w.sum()), n=readonly(np.asarray(d["n_report"], float)[okv]),
        conventions=conventions(measure, method, nq, test, es, want_ci, extra.get("model")),
        diagnostics=Diagnostics(bool(fit["converged"]), int(fit["iterations"]),
                                bool(fit["boundary"]), algorithm, tuple(messages)),
        excluded=tuple(d["excluded"]), natural=natural(measure, beta, ci_lb, ci_ub, pi_lb, pi_ub),
        warnings=tuple(warns),
        corrected=None if es.corrected is None else np.asarray(es.corrected)[okv],
        kept=d["positions"][okv], **typed_fields(extra, d, okv, want_ci),
    )


def _fit_random_studies(d, measure, method, nq, test, level, want_ci, extra, warns,
                        messages) -> GLMMResult:
    """UM.RS (random study effects, :mod:`.umrs`) as metafor fits it with lme4: method="ML" by
    the Laplace approximation (metafor sets nAGQ = 1 for it, with a warning), method="EE" (random
    intercepts only) by AGQ with ``nq`` nodes. QE_LRT and QE_Wld from the saturated GLMM as
    metafor (QE_Wld from the exact-point Hessian where lme4 differentiates numerically); no
    profile CI of tau^2."""
    from .umrs import fit_umrs, saturated_loglik

    nan = float("nan")
    fam = d["family"]
    if method == "ML" and nq != 1:
        warns.append(f"model UM.RS is fitted by the Laplace approximation (nagq = 1, as metafor "
                     f"and lme4 do), not with nagq = {nq}")
        nq = 1
    extra["nagq"] = nq
    if d["k"] < 2:
        raise ValueError("model UM.RS needs at least 2 studies (after dropping studies without "
                         "events in either group)")
    f = fit_umrs(fam, d["y"], d["n"], random_slope=method == "ML", nagq=nq)
    # likelihood-ratio test of heterogeneity as metafor: the random-intercept model against
    # the saturated one (a log ratio per study), both with the fit's nodes
    f_ee = f if method == "EE" else fit_umrs(fam, d["y"], d["n"], random_slope=False, nagq=nq)
    ll_sat, qe_w = saturated_loglik(fam, d["y"], d["n"], nagq=nq, want_wald=True)
    q_df = d["k"] - 1
    qp_w = chi2_sf_or_nan(qe_w, q_df)
    qe_lrt = max(-2.0 * (f_ee.loglik - ll_sat), 0.0)
    qp_lrt = chi2_sf_or_nan(qe_lrt, q_df)
    extra.update(loglik=f.loglik, loglik_saturated=ll_sat, sigma2=f.sigma2, QE_df=q_df,
                 QE_LRT=qe_lrt, QEp_LRT=qp_lrt, loglik_EE=f_ee.loglik, QE_Wld=qe_w, QEp_Wld=qp_w,
                 QE_LRT_text=(f"likelihood-ratio test of heterogeneity QE_LRT({q_df}) = "
                              f"{qe_lrt:.4f}, p = {qp_lrt:.4g}"))
    if not (f.converged and f_ee.converged):
        warns.append("UM.RS fit did not converge (the gradient of the log-likelihood is not zero)")
    if not np.isfinite(qe_w):
        warns.append("no Wald test of heterogeneity (QE_Wld): a study has no events (or only "
                     "events) in the first group, so its effect in the saturated GLMM is infinite")
    messages.append(f"UM.RS: sigma^2 (variance of the study intercepts) = {f.sigma2:.6g}, "
                    f"intercept = {f.intercept:.6g}; SE from the {f.vcov_source}; "
                    "loglik_saturated is the saturated GLMM's (a log ratio per study, random "
                    "intercepts)")
    es = d["es"]
    yi_all, vi_all = np.asarray(es.yi, float), np.asarray(es.vi, float)
    okv = np.isfinite(yi_all) & np.isfinite(vi_all)
    vt = typical_variance(vi_all[okv])
    fit = dict(tau2=f.tau2, beta=f.beta, se=f.se, iterations=0, converged=f.converged,
               boundary=method == "ML" and f.tau2 == 0, se_tau2=nan, t_lb=nan, t_ub=nan)
    algorithm = ("Laplace approximation (as lme4 nAGQ = 1), quasi-Newton then Newton"
                 if method == "ML" else f"AGQ with {nq} nodes of the random-intercept model")
    return _finish(d, measure, method, nq, test, level, False, fit, (qe_w, q_df, qp_w), vt,
                   okv, algorithm, extra, warns, messages)
