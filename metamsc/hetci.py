"""Heterogeneity intervals: functions of the effect sizes ``yi``, their variances ``vi``
and a fitted tau^2.

========================  ======================================================  =====================
function                  interval                                                peer
========================  ======================================================  =====================
:func:`tau2_ci` "QP"      Q-profile (Viechtbauer 2007, Stat Med 26:37)            metafor ``type="QP"``
:func:`tau2_ci` "PL"      profile likelihood, ML or REML (Hardy & Thompson 1996)  metafor ``type="PL"``
:func:`tau2_ci` "GENQ"    generalised Q-profile with weights (Jackson 2013)       metafor ``type="GENQ"``
:func:`tau2_ci` "J"       Jackson's interval: GENQ with weights 1/sqrt(vi)        meta ``method.tau.ci="J"``
:func:`tau2_ci` "Wald"    tau^2 -/+ z SE, also on the log and square-root scale   metafor ``type="Wald*"``
:func:`h_i2_ci`           H and I^2 by the test-based method (Higgins &           meta (``calcH``,
                          Thompson 2002, Stat Med 21:1539)                        ``isquared``)
:func:`rb`                R_b with its delta-method CI (Crippa et al. 2016,       meta (``Rb``)
                          Stat Med 35:3661)
:func:`study_tests`       per-study z = yi / sqrt(vi) and two-sided p             metafor ``summary(escalc)``
========================  ======================================================  =====================

Intervals for tau^2 carry I^2 = 100 tau^2/(vt + tau^2) and H^2 = 1 + tau^2/vt with the typical
within-study variance vt (Higgins & Thompson 2002), as metafor's ``confint``. All cost O(k)
memory; the generalised Q-profile finds the k - 1 eigenvalues of a diagonal-minus-rank-one
matrix from its secular equation, so no k x k matrix is formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._dist import chi2_isf, chi2_ppf, chi2_sf, norm_isf, norm_sf
from .tau2 import brent_root, loglik, q_profile_ci, q_statistic

__all__ = ["Tau2Interval", "TAU2_CI_METHODS", "tau2_ci", "genq_tail", "log_likelihood", "typical_variance",
           "HInterval", "h_i2_ci", "RbResult", "rb", "StudyTests", "study_tests",
           "weighted_chi2_sf"]

TAU2_CI_METHODS = ("QP", "PL", "GENQ", "J", "Wald", "Wald.log", "Wald.sqrt")


@dataclass(frozen=True)
class Tau2Interval:
    """A confidence interval for tau^2, with the I^2 (percent) and H^2 intervals it implies.

    ``lb_sign``/``ub_sign`` are "" for a bound found as a root, "<" or ">" when the bound is
    the end of the search range [0, tau2_max] (metafor's ``lb.sign``/``ub.sign``); ``ci_null``
    when the whole interval is {0} (metafor's ``ci.null``).
    """

    method: str
    level: float
    low: float
    high: float
    i2_low: float
    i2_high: float
    h2_low: float
    h2_high: float
    lb_sign: str = ""
    ub_sign: str = ""
    ci_null: bool = False


def _arrays(yi, vi):
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim != 1 or v.shape != y.shape:
        raise ValueError("yi and vi must be one-dimensional and of the same length")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v))):
        raise ValueError("yi and vi must be finite (leave out studies without an estimate first)")
    if np.any(v <= 0):
        raise ValueError(f"vi must be > 0; study {int(np.flatnonzero(v <= 0)[0]) + 1} is not")
    return y, v


def typical_variance(vi: ArrayLike) -> float:
    """Typical within-study variance vt = (k-1) sum w / ((sum w)^2 - sum w^2), w = 1/vi
    (Higgins & Thompson 2002, eq. 9)."""
    w = 1 / np.asarray(vi, dtype=float)
    return float((w.size - 1) * np.sum(w) / (np.sum(w) ** 2 - np.sum(w**2)))


def log_likelihood(yi: ArrayLike, vi: ArrayLike, tau2: float, method: str = "REML") -> float:
    """Log-likelihood (ML) or restricted log-likelihood (REML) of the random-effects model
    at tau^2, the mean profiled out (Viechtbauer 2005, J Educ Behav Stat 30:261): the model's
    :func:`metamsc.tau2.loglik` with X = 1."""
    if method not in ("ML", "REML"):
        raise ValueError(f"method must be 'ML' or 'REML', got {method!r}")
    y = np.asarray(yi, dtype=float).ravel()
    return loglik(y, np.asarray(vi, dtype=float).ravel(), None, tau2, method == "REML")


def _search_range(tau2_hat: float, tau2_max: float | None) -> tuple[float, float]:
    tmax = max(100.0, 10 * tau2_hat) if tau2_max is None else float(tau2_max)
    return 0.0, tmax


def _profile_ci(y, v, tau2_hat, method, level, tmin, tmax):
    """Profile-likelihood bounds: -2 (ll(tau^2) - ll(tau2_hat)) = chi^2_1 quantile."""
    crit = chi2_isf(1 - level, 1)
    ll_hat = log_likelihood(y, v, tau2_hat, method)

    def lrt(t):
        return -2 * (log_likelihood(y, v, t, method) - ll_hat) - crit

    lb_sign = ub_sign = ""
    if lrt(tmin) < 0:
        lb = tmin
    else:
        lb = brent_root(lrt, tmin, tau2_hat)
    if lrt(tmax) < 0:
        ub, ub_sign = tmax, ">"
    else:
        ub = brent_root(lrt, tau2_hat, tmax)
    return lb, ub, lb_sign, ub_sign, False


def _secular_eigenvalues(d: np.ndarray, u2: np.ndarray, s: float) -> np.ndarray:
    """The nonzero eigenvalues of diag(d) - u u'/s when d'(u2/d) sums to s (one eigenvalue 0).

    Equal d's of multiplicity m give the eigenvalue d (m - 1 times); between consecutive
    distinct d's lies one root of 1 - sum_j u2_j / (s (d_j - lam)) (Golub 1973, SIAM Rev 15:318).
    """
    order = np.argsort(d)
    d, u2 = d[order], u2[order]
    # group (numerically) equal poles
    groups_d, groups_w, out = [], [], []
    for di, wi in zip(d, u2):
        if groups_d and abs(di - groups_d[-1]) <= 1e-13 * max(abs(di), 1e-300):
            groups_w[-1] += wi
            out.append(groups_d[-1])
        else:
            groups_d.append(di)
            groups_w.append(wi)
    gd, gw = np.array(groups_d), np.array(groups_w)
    for j in range(gd.size - 1):
        lo, hi = gd[j], gd[j + 1]

        def f(lam, lo=lo, hi=hi):
            return 1 - np.sum(gw / (gd - lam)) / s

        eps = max((hi - lo) * 1e-14, 8 * np.spacing(hi))
        a, b = lo + eps, hi - eps
        with np.errstate(divide="ignore"):
            fa, fb = f(a), f(b)
        if fa <= 0:  # the root lies within eps of a pole
            out.append(a)
        elif fb >= 0:
            out.append(b)
        else:
            out.append(brent_root(f, a, b))
    return np.sort(np.array(out))


def weighted_chi2_sf(q: float, lam: ArrayLike, *, max_terms: int = 20_000) -> float:
    """P(sum_j lam_j X_j > q) for independent X_j ~ chi^2_1 and lam_j > 0.

    Ruben's (1962, Ann Math Stat 33:542) series with beta = min lam: the distribution is the
    mixture sum_n c_n chi^2_{m+2n}(beta) with c_n >= 0 summing to 1, so the truncation error
    is at most 1 - sum c_n (stopped below 1e-14). ValueError if that needs more than
    ``max_terms`` terms (eigenvalues spread over orders of magnitude).
    """
    from scipy.special import chdtrc

    lam = np.asarray(lam, dtype=float)
    lam = lam[lam > 0]
    m = lam.size
    if m == 0:
        return float(q < 0)
    if q <= 0:
        return 1.0
    beta = float(lam.min())
    gam = 1 - beta / lam
    c = np.zeros(max_terms + 1)
    g = np.zeros(max_terms + 1)
    c[0] = np.exp(0.5 * np.sum(np.log(beta / lam)))
    total = c[0]
    n = 0
    gpow = np.ones(m)
    while 1 - total > 1e-14 and n < max_terms:
        n += 1
        gpow = gpow * gam
        g[n] = 0.5 * np.sum(gpow)
        c[n] = np.dot(g[n:0:-1], c[:n]) / n
        total += c[n]
    if 1 - total > 1e-14:
        raise ValueError(f"Ruben's series for the generalised Q needs more than {max_terms} terms "
                         f"(eigenvalues spread by a factor {lam.max() / beta:.3g}); "
                         "raise max_terms")
    df = m + 2 * np.arange(n + 1)
    return float(min(1.0, np.dot(c[:n + 1], chdtrc(df, q / beta)) + max(0.0, 1 - total)))


def genq_tail(y: np.ndarray, v: np.ndarray, a: np.ndarray, tau2: float) -> float:
    """P(Q_a > q_obs | tau^2) for the weighted Q_a = sum a_i (y_i - mu_a)^2 of the data (Jackson
    2013, Res Synth Methods 4:220; Biggerstaff & Jackson 2008, Stat Med 27:6093): Q_a is
    distributed as sum lam_j chi^2_1 with lam the eigenvalues of S P S, P = A - a a'/sum a and
    S = diag(sqrt(v + tau^2)) (from a secular equation, O(k) memory); increasing in tau^2."""
    s = float(np.sum(a))
    q_obs = float(np.sum(a * (y - np.sum(a * y) / s) ** 2))
    return weighted_chi2_sf(q_obs, _secular_eigenvalues(a * (v + tau2), a**2 * (v + tau2), s))


def _genq_ci(y, v, a, level, tmin, tmax):
    """Generalised Q-profile bounds (Jackson 2013, Res Synth Methods 4:220): the tau^2 at which
    :func:`genq_tail` equals alpha/2 and 1 - alpha/2."""

    def sf(t):  # P(Q_a > q_obs | tau^2 = t), increasing in t
        return genq_tail(y, v, a, t)

    alpha = 1 - level
    lb_sign = ub_sign = ""
    ci_null = False
    s_min, s_max = sf(tmin), sf(tmax)
    if s_min > 1 - alpha / 2:
        return tmin, tmin, "<", "<", tmin <= 0
    if s_max < 1 - alpha / 2:
        ub, ub_sign = tmax, ">"
    else:
        ub = brent_root(lambda t: sf(t) - (1 - alpha / 2), tmin, tmax)
    if s_max < alpha / 2:
        return tmax, tmax, ">", ">", False
    if s_min > alpha / 2:
        lb = tmin
    else:
        lb = brent_root(lambda t: sf(t) - alpha / 2, tmin, tmax)
    return lb, ub, lb_sign, ub_sign, ci_null


def tau2_ci(yi: ArrayLike, vi: ArrayLike, tau2: float, *, method: str = "QP",
            level: float = 0.95, estimator: str = "REML", weights: ArrayLike | None = None,
            se_tau2: float | None = None, tau2_max: float | None = None) -> Tau2Interval:
    """Confidence interval for tau^2 by ``method`` (see the module table), given the fitted
    ``tau2``. The search range is [0, max(100, 10 tau2)] unless ``tau2_max`` is given (as
    metafor's ``confint``). "PL" profiles the ``estimator``'s likelihood ("ML" or "REML");
    "GENQ" needs the ``weights`` the fit used; "Wald*" need the fit's ``se_tau2``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances.
    tau2 : float
        The fitted tau^2.
    method : str
        "QP" (Q-profile, default), "PL" (profile likelihood), "GENQ", "J" (Jackson), "Wald",
        "Wald.log", "Wald.sqrt".
    level : float
        Confidence level (default 0.95).
    estimator : {"ML", "REML"}
        The likelihood profiled by "PL".
    weights : array_like, optional
        Weights of a GENQ fit.
    se_tau2 : float, optional
        Standard error of tau2 (the Wald intervals).
    tau2_max : float, optional
        Upper end of the search range.

    Returns
    -------
    Tau2Interval
        ``low`` and ``high`` for tau^2, with the implied bounds of I^2 and H^2.

    References
    ----------
    Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
    Stat Med 26:37-52 (QP). Hardy RJ, Thompson SG (1996). Stat Med 15:619-629 (PL). Jackson D
    (2013). Res Synth Methods 4:220-229 (J, GENQ).

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> ci = mm.tau2_ci(yi, vi, mm.estimate_tau2(yi, vi, "REML").tau2, method="QP")
    >>> print(f"tau^2 [{ci.low:.4f}, {ci.high:.4f}], I^2 [{ci.i2_low:.1f}, {ci.i2_high:.1f}]")
    tau^2 [0.0383, 1.4816], I^2 [45.5, 97.0]
    """
    y, v = _arrays(yi, vi)
    if method not in TAU2_CI_METHODS:
        raise ValueError(f"unknown tau2 CI method {method!r}; expected one of {', '.join(TAU2_CI_METHODS)}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if y.size < 2:
        raise ValueError("a tau^2 interval needs k >= 2 studies")
    tau2 = float(tau2)
    if not tau2 >= 0:
        raise ValueError(f"tau2 must be >= 0, got {tau2!r}")
    tmin, tmax = _search_range(tau2, tau2_max)
    lb_sign = ub_sign = ""
    ci_null = False
    if method == "QP":
        lb, ub = q_profile_ci(y, v, level, tau2_max=tmax, tau2_hat=tau2)
        crit_l = chi2_ppf((1 - level) / 2, y.size - 1)
        crit_u = chi2_isf((1 - level) / 2, y.size - 1)
        q_min, q_max = q_statistic(y, v, tmin), q_statistic(y, v, tmax)
        if q_min < crit_l:  # metafor's signs for bounds at the ends of the search range
            lb_sign = ub_sign = "<"
            ci_null = True
        elif q_max > crit_l:
            ub_sign = ">"
        if q_max > crit_u:
            lb_sign = ub_sign = ">"
    elif method == "PL":
        if estimator not in ("ML", "REML"):
            raise ValueError(f"the profile-likelihood interval needs an ML or REML fit, not {estimator!r}")
        lb, ub, lb_sign, ub_sign, ci_null = _profile_ci(y, v, tau2, estimator, level, tmin, tmax)
    elif method in ("GENQ", "J"):
        if method == "J":
            if weights is not None:
                raise ValueError("Jackson's interval uses the weights 1/sqrt(vi); do not pass weights")
            a = 1 / np.sqrt(v)
        else:
            if weights is None:
                raise ValueError("the generalised Q-profile interval needs the fit's weights")
            a = np.asarray(weights, dtype=float)
            if a.shape != y.shape or np.any(~np.isfinite(a)) or np.any(a <= 0):
                raise ValueError("weights must be positive and finite, one per study")
        lb, ub, lb_sign, ub_sign, ci_null = _genq_ci(y, v, a, level, tmin, tmax)
    else:
        if se_tau2 is None or not np.isfinite(se_tau2):
            raise ValueError(f"the {method} interval needs the fit's se_tau2")
        z = norm_isf((1 - level) / 2)
        if method == "Wald":
            lb, ub = max(0.0, tau2 - z * se_tau2), tau2 + z * se_tau2
        elif method == "Wald.log":
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                lb = float(np.exp(np.log(tau2) - z * se_tau2 / tau2))
                ub = float(np.exp(np.log(tau2) + z * se_tau2 / tau2))
            ub = ub if np.isnan(ub) else max(tau2, ub)  # NaN at tau^2 = 0, as metafor
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                lb = max(0.0, np.sqrt(tau2) - z * se_tau2 / (2 * np.sqrt(tau2))) ** 2
                ub = (np.sqrt(tau2) + z * se_tau2 / (2 * np.sqrt(tau2))) ** 2
    vt = typical_variance(v)
    with np.errstate(invalid="ignore"):  # an infinite bound gives NaN for I^2, as metafor
        i2 = [100 * t / (vt + t) for t in (np.float64(lb), np.float64(ub))]
    return Tau2Interval(method, level, float(lb), float(ub), float(i2[0]), float(i2[1]),
                        1 + lb / vt, 1 + ub / vt, lb_sign, ub_sign, ci_null)


@dataclass(frozen=True)
class HInterval:
    """H and I^2 (percent) with test-based CIs (Higgins & Thompson 2002), as R meta."""

    level: float
    h: float
    h_low: float
    h_high: float
    i2: float
    i2_low: float
    i2_high: float


def h_i2_ci(q: float, k: int, level: float = 0.95) -> HInterval:
    """Test-based CIs for H = sqrt(Q/(k-1)) and I^2 = (H^2 - 1)/H^2 (Higgins & Thompson 2002,
    Stat Med 21:1539, Appendix): ln H -/+ z SE, with
    SE(ln H) = (ln Q - ln(k-1)) / (2 (sqrt(2Q) - sqrt(2k-3))) when Q > k, else
    sqrt(1/(2(k-2)) (1 - 1/(3(k-2)^2))); centred on ln max(H, 1), bounds floored at 1 (meta).

    Parameters
    ----------
    q : float
        Cochran's Q.
    k : int
        Number of studies.
    level : float
        Confidence level (default 0.95).

    Returns
    -------
    HInterval
        ``h``, ``h_low``, ``h_high`` and ``i2``, ``i2_low``, ``i2_high`` (percent).

    References
    ----------
    Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. Stat Med
    21:1539-1558, Appendix.

    Examples
    --------
    >>> import metamsc as mm
    >>> h = mm.h_i2_ci(29.5, 6)
    >>> print(f"H = {h.h:.3f} [{h.h_low:.3f}, {h.h_high:.3f}]; I^2 = {h.i2:.1f}% [{h.i2_low:.1f}, {h.i2_high:.1f}]")
    H = 2.429 [1.675, 3.522]; I^2 = 83.1% [64.4, 91.9]
    """
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    if not q >= 0:
        raise ValueError(f"Q must be >= 0, got {q!r}")
    h = np.sqrt(q / (k - 1))
    if q > k:
        se = 0.5 * (np.log(q) - np.log(k - 1)) / (np.sqrt(2 * q) - np.sqrt(2 * k - 3))
    elif k > 2:
        se = np.sqrt(1 / (2 * (k - 2)) * (1 - 1 / (3 * (k - 2) ** 2)))
    else:
        se = np.nan
    z = norm_isf((1 - level) / 2)
    centre = np.log(max(h, 1.0))
    hh = float(np.exp(centre))
    lo, hi = max(float(np.exp(centre - z * se)), 1.0), max(float(np.exp(centre + z * se)), 1.0)

    def i2(x):
        return 100 * (x**2 - 1) / x**2

    return HInterval(level, hh, lo, hi, i2(hh), i2(lo), i2(hi))


@dataclass(frozen=True)
class RbResult:
    """R_b, the share of the random-effects estimate's variance due to heterogeneity."""

    level: float
    rb: float
    low: float
    high: float
    se: float


def rb(yi: ArrayLike, vi: ArrayLike, tau2: float, level: float = 0.95) -> RbResult:
    """R_b = (1/k) sum tau^2/(vi + tau^2) = tau^2 / (k Var(mu_RE)) (Crippa et al. 2016,
    Stat Med 35:3661, eq. 4) with the delta-method CI of their Appendix D (SE of Q under
    tau^2), clipped to [0, 1] as R meta.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances.
    tau2 : float
        The fitted tau^2.
    level : float
        Confidence level (default 0.95).

    Returns
    -------
    RbResult
        ``rb`` with its ``se`` and the interval ``low``, ``high``.

    References
    ----------
    Crippa A, Khudyakov P, Wang M, Orsini N, Spiegelman D (2016). A new measure of between-studies
    heterogeneity in meta-analysis. Stat Med 35:3661-3675.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> r = mm.rb(yi, vi, 0.2248)
    >>> print(f"R_b = {r.rb:.4f} [{r.low:.4f}, {r.high:.4f}]")
    R_b = 0.6649 [0.2986, 1.0000]
    """
    y, v = _arrays(yi, vi)
    k = y.size
    if k < 2:
        raise ValueError("R_b needs k >= 2 studies")
    w = 1 / v
    s1, s2, s3 = np.sum(w), np.sum(w**2), np.sum(w**3)
    mu = np.sum(w * y) / s1
    q = float(np.sum(w * (y - mu) ** 2))
    value = float(np.mean(tau2 / (v + tau2)))
    a = v * (s1 - s2 / s1)
    se_q = np.sqrt(2 * (k - 1) + 4 * (s1 - s2 / s1) * tau2
                   + 2 * (s2 - 2 * s3 / s1 + s2**2 / s1**2) * tau2**2)
    se = float(abs(np.sum(a / (q + a - (k - 1)) ** 2) / k) * se_q)
    z = norm_isf((1 - level) / 2)
    return RbResult(level, value, max(0.0, value - z * se), min(1.0, value + z * se), se)


@dataclass(frozen=True)
class StudyTests:
    """Per-study z = (yi - null) / sqrt(vi) and two-sided p-values."""

    z: np.ndarray
    p: np.ndarray


def study_tests(yi: ArrayLike, vi: ArrayLike, null: float = 0.0) -> StudyTests:
    """Wald tests of each study's effect against ``null`` (metafor's ``summary(escalc)``
    columns zi and pval).

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances.
    null : float
        The value tested against (default 0).

    Returns
    -------
    StudyTests
        ``z`` = (yi - null) / sqrt(vi) and the two-sided ``p``.

    References
    ----------
    Viechtbauer W (2010). J Stat Softw 36(3):1-48.

    Examples
    --------
    >>> import metamsc as mm
    >>> t = mm.study_tests([-0.89, -1.44], [0.33, 0.02])
    >>> t.z.round(4), t.p.round(4)
    (array([ -1.5493, -10.1823]), array([0.1213, 0.    ]))
    """
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if y.shape != v.shape:
        raise ValueError("yi and vi must have the same length")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (y - null) / np.sqrt(v)
    p = 2 * norm_sf(np.abs(z))
    z.setflags(write=False)
    p.setflags(write=False)
    return StudyTests(z, p)
