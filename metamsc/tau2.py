"""Between-study variance (tau^2) estimators for the random-effects model.

All estimators are for the intercept-only model y_i = mu + u_i + e_i with
u_i ~ N(0, tau^2) and e_i ~ N(0, v_i). Notation: w_i = 1/(v_i + tau^2),
Q(tau^2) = sum w_i (y_i - mu_hat)^2 (the generalised Q statistic).

References: DerSimonian & Laird (1986) Control Clin Trials 7:177 (DL);
Hedges & Olkin (1985) (HE); Hunter & Schmidt (2004) (HS, HSk);
Sidik & Jonkman (2005) Stat Med 24:3049 (SJ); Paule & Mandel (1982)
J Res NBS 87:377 (PM) and its median-unbiased form (PMM, Viechtbauer 2021);
Morris (1983) JASA 78:47 (EB); DerSimonian & Kacker (2007) Contemp Clin
Trials 28:105 (GENQ); Viechtbauer (2005) J Educ Behav Stat 30:261 (ML, REML,
Fisher scoring and the standard errors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._dist import chi2_isf, chi2_ppf

__all__ = ["TAU2_METHODS", "Tau2Fit", "estimate_tau2", "q_statistic", "q_profile_ci"]

TAU2_METHODS = ("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ")
_ALIASES = {"FE": "EE", "CE": "EE"}


@dataclass(frozen=True)
class Tau2Fit:
    """An estimate of tau^2 with its standard error and how it was obtained."""

    method: str
    tau2: float
    se: float
    converged: bool
    iterations: int
    at_boundary: bool
    algorithm: str
    message: str = ""


def _brentq(*args, **kwargs) -> float:
    """Brent's root finder, imported on first use (scipy.optimize is slow to import)."""
    from scipy.optimize import brentq

    return brentq(*args, **kwargs)


def _weights(vi: np.ndarray, tau2: float) -> np.ndarray:
    return 1.0 / (vi + tau2)


def q_statistic(yi: np.ndarray, vi: np.ndarray, tau2: float = 0.0) -> float:
    """Generalised Q(tau^2) = sum w_i (y_i - mu_w)^2 with w_i = 1/(v_i + tau^2)."""
    w = _weights(vi, tau2)
    mu = np.sum(w * yi) / np.sum(w)
    return float(np.sum(w * (yi - mu) ** 2))


def _pmat(a: np.ndarray) -> np.ndarray:
    """P = A - A 1 1' A / (1' A 1) for diagonal weights a (intercept-only model)."""
    return np.diag(a) - np.outer(a, a) / np.sum(a)


def _ll(yi: np.ndarray, vi: np.ndarray, tau2: float, reml: bool) -> float:
    """(Restricted) log-likelihood of the random-effects model."""
    w = _weights(vi, tau2)
    sw = np.sum(w)
    mu = np.sum(w * yi) / sw
    k = yi.size
    ll = -0.5 * (k - reml) * np.log(2 * np.pi) - 0.5 * np.sum(np.log(vi + tau2)) \
        - 0.5 * np.sum(w * (yi - mu) ** 2)
    if reml:
        ll -= 0.5 * np.log(sw)
    return float(ll)


def _score(yi: np.ndarray, vi: np.ndarray, tau2: float, kind: str) -> float:
    """Estimating function whose root is the ML, REML or EB/PM estimate."""
    w = _weights(vi, tau2)
    sw = np.sum(w)
    r = yi - np.sum(w * yi) / sw
    if kind == "ML":
        return float(np.sum(w**2 * r**2) - sw)
    if kind == "REML":
        trp = sw - np.sum(w**2) / sw
        return float(np.sum(w**2 * r**2) - trp)
    raise ValueError(kind)


def _fisher_scoring(yi, vi, tau2, kind, threshold, maxiter):
    """metafor's Fisher scoring iterations (Viechtbauer 2005), with step halving at 0."""
    k = yi.size
    change, it = threshold + 1, 0
    while change > threshold:
        it += 1
        old = tau2
        w = _weights(vi, tau2)
        sw = np.sum(w)
        r = yi - np.sum(w * yi) / sw
        if kind == "ML":
            adj = (np.sum(w**2 * r**2) - sw) / np.sum(w**2)
        elif kind == "REML":
            p = _pmat(w)  # Y'PPY = |P y|^2 and P y = w * r for the intercept-only model
            adj = (np.sum((w * r) ** 2) - np.trace(p)) / np.sum(p * p)
        else:  # EB, Morris (1983)
            adj = (np.sum(w * r**2) * k / (k - 1) - k) / sw
        if not np.isfinite(adj) or (tau2 == 0 and adj < 0):  # halving from 0 ends at 0
            adj = 0.0
        while tau2 + adj < 0:
            adj /= 2
        tau2 = tau2 + adj
        change = abs(old - tau2)
        if it >= maxiter:
            return tau2, it, False
    return tau2, it, True


def _root_on_halfline(f, start: float) -> float | None:
    """Root of a function decreasing through 0 on (0, inf), with f(0) > 0: the upper end of the
    bracket grows by 4x from ``start`` until f <= 0, then Brent's method. None: no bracket."""
    hi = max(start, 1.0)
    for _ in range(200):
        if f(hi) <= 0:
            return float(_brentq(f, 0.0, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=1000))
        hi *= 4
    return None


def _he(yi: np.ndarray, vi: np.ndarray) -> float:
    """Hedges' (1983) method-of-moments estimate, untruncated: var(y) - mean(v)."""
    k = yi.size
    return float((np.sum((yi - yi.mean()) ** 2) - np.sum(vi) * (k - 1) / k) / (k - 1))


def _solve_score(yi, vi, kind) -> tuple[float, str]:
    """Bracketed root of the estimating equation on [0, inf): the fallback maximiser."""
    f = (lambda t: q_statistic(yi, vi, t) - (yi.size - 1)) if kind == "EB" else \
        (lambda t: _score(yi, vi, t, kind))
    if f(0.0) <= 0:
        return 0.0, "bracketed root (boundary at 0)"
    root = _root_on_halfline(f, float(np.var(yi)) + float(np.max(vi)))
    if root is None:
        return float("nan"), "no upper bracket for the estimating equation"
    return root, "bracketed root"


def _se_tau2(method, yi, vi, tau2, tau2_0=None, a=None) -> float:
    """Standard errors of tau^2 as in Viechtbauer (2005) and metafor."""
    k = yi.size
    t = max(tau2, 0.0)
    if method in ("DL", "HS", "HSk"):
        p = _pmat(1.0 / vi)
        trp = np.trace(p)
        inner = 2 * (k - 1) + 4 * t * trp + 2 * t**2 * np.sum(p * p)
        if method == "DL":
            return float(np.sqrt(inner / trp**2))
        se = float(np.sqrt(inner / np.sum(1.0 / vi) ** 2))
        return se * k / (k - 1) if method == "HSk" else se
    if method == "HE":
        p = np.eye(k) - 1.0 / k
        pv = p * vi[None, :]
        return float(np.sqrt((2 * np.sum(pv * pv.T) + 4 * t * np.trace(pv) + 2 * t**2 * (k - 1))
                             / (k - 1) ** 2))
    if method in ("GENQ", "SJ"):
        p = _pmat(a if method == "GENQ" else 1.0 / (vi + tau2_0))
        pv = p * vi[None, :]
        inner = 2 * np.sum(pv * pv.T) + 4 * t * np.sum(pv * p) + 2 * t**2 * np.sum(p * p)
        if method == "GENQ":
            return float(np.sqrt(inner / np.trace(p) ** 2))
        return float(np.sqrt(tau2_0**2 / (k - 1) ** 2 * inner))
    w = _weights(vi, tau2)
    if method == "ML":
        return float(np.sqrt(2 / np.sum(w**2)))
    if method == "REML":
        p = _pmat(w)
        return float(np.sqrt(2 / np.sum(p * p)))
    # EB, PM, PMM
    return float(np.sqrt(2 * k**2 / (k - 1) / np.sum(w) ** 2))


def estimate_tau2(yi, vi, method: str = "REML", *, weights=None, threshold: float = 1e-12,
                  maxiter: int = 100) -> Tau2Fit:
    """Estimate tau^2 by ``method`` (see ``TAU2_METHODS``; FE and CE mean EE).

    Iterative estimators (ML, REML, EB) use Fisher scoring from the HE
    estimate as metafor does, stopping when tau^2 changes by less than
    ``threshold``; when scoring fails (no convergence in ``maxiter`` steps,
    metafor's default 100), the root of the estimating equation is
    bracketed on [0, inf) and found by Brent's method instead (reported in
    ``algorithm``). PM and PMM solve Q(tau^2) = k - 1 (resp. the median of
    chi^2_(k-1)) by Brent's method. Negative estimates are truncated at 0
    and flagged with ``at_boundary``.
    """
    method = _ALIASES.get(method, method)
    if method not in TAU2_METHODS:
        raise ValueError(f"unknown tau^2 method {method!r}; expected one of {', '.join(TAU2_METHODS)}")
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k = yi.size
    if method == "EE":
        return Tau2Fit("EE", 0.0, float("nan"), True, 0, False, "fixed at 0 (common effect)")
    if k < 2:
        return Tau2Fit(method, 0.0, float("nan"), True, 0, True, "k = 1",
                       "k = 1: tau^2 is not estimable and is set to 0")
    if np.any(vi <= 0):
        raise ValueError(f"the {method} estimator needs positive sampling variances")

    tau2_0 = None
    iters, converged, algorithm, message = 0, True, "closed form", ""
    if method == "DL":
        w = 1.0 / vi
        trp = np.sum(w) - np.sum(w**2) / np.sum(w)
        raw = (q_statistic(yi, vi) - (k - 1)) / trp
    elif method == "HE":
        raw = _he(yi, vi)
    elif method in ("HS", "HSk"):
        q = q_statistic(yi, vi)
        raw = ((k / (k - 1) * q if method == "HSk" else q) - k) / np.sum(1.0 / vi)
    elif method == "SJ":
        tau2_0 = float(np.var(yi))  # identical yi: tau2_0 = 0 and the estimate is 0 (as metafor)
        raw = tau2_0 * q_statistic(yi, vi, tau2_0) / (k - 1)
    elif method == "GENQ":
        a = np.asarray(1.0 / vi if weights is None else weights, dtype=float)
        sa = np.sum(a)
        mu = np.sum(a * yi) / sa
        rss = np.sum(a * (yi - mu) ** 2)
        trp = sa - np.sum(a**2) / sa
        trpv = np.sum(a * vi) - np.sum(a**2 * vi) / sa
        raw = (rss - trpv) / trp
    elif method in ("PM", "PMM"):
        target = (k - 1) if method == "PM" else chi2_ppf(0.5, k - 1)
        f = lambda t: q_statistic(yi, vi, t) - target
        algorithm = "Brent root of Q(tau^2) = " + ("k - 1" if method == "PM" else "median of chi^2(k-1)")
        if f(0.0) < 0:
            raw = 0.0
        else:
            raw = _root_on_halfline(f, float(np.var(yi)) + float(np.max(vi)))
            if raw is None:
                return Tau2Fit(method, float("nan"), float("nan"), False, 0, False, algorithm,
                               "no upper bracket for Q(tau^2) = target")
    else:  # ML, REML, EB
        raw, iters, converged = _fisher_scoring(yi, vi, max(0.0, _he(yi, vi)), method, threshold,
                                                maxiter)
        algorithm = "Fisher scoring"
        if not converged or not np.isfinite(raw):
            raw, how = _solve_score(yi, vi, method)
            converged = bool(np.isfinite(raw))
            algorithm = (f"Fisher scoring did not converge in {iters} iterations; "
                         f"{how} of the {method} estimating equation")
            message = algorithm
        if method in ("ML", "REML") and raw > threshold:
            reml = method == "REML"
            if _ll(yi, vi, 0.0, reml) - _ll(yi, vi, raw, reml) > 1e-12:
                raw = 0.0
                message = "likelihood at tau^2 = 0 exceeds that at the scoring solution; set to 0"
    tau2 = max(0.0, float(raw))
    at_boundary = tau2 == 0.0
    a = None
    if method == "GENQ":
        a = np.asarray(1.0 / vi if weights is None else weights, dtype=float)
    se = _se_tau2(method, yi, vi, tau2, tau2_0=tau2_0, a=a)
    return Tau2Fit(method, tau2, se, converged, iters, at_boundary, algorithm, message)


def q_profile_ci(yi, vi, level: float = 0.95, *, tau2_max: float | None = None,
                 tau2_hat: float = 0.0) -> tuple[float, float]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007, Stat Med 26:37).

    Solves Q(tau^2) = chi^2 quantiles of k - 1 degrees of freedom; a bound
    below 0 is set to 0, and the search is limited to [0, max(100, 10 tau2_hat)]
    as in metafor.
    """
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k = yi.size
    if k < 2:
        return float("nan"), float("nan")
    alpha = 1 - level
    tmin = 0.0
    tmax = tau2_max if tau2_max is not None else max(100.0, 10 * tau2_hat)
    crit_u = chi2_isf(alpha / 2, k - 1)
    crit_l = chi2_ppf(alpha / 2, k - 1)
    q_min = q_statistic(yi, vi, tmin)
    q_max = q_statistic(yi, vi, tmax)

    def root(target: float) -> float:
        return float(_brentq(lambda t: q_statistic(yi, vi, t) - target, tmin, tmax,
                                     xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=1000))

    if q_min < crit_l:
        lb = ub = tmin
    else:
        ub = tmax if q_max > crit_l else root(crit_l)
    if q_max > crit_u:
        lb = ub = tmax
    elif q_min < crit_u:
        lb = tmin
    else:
        lb = root(crit_u)
    return lb, ub
