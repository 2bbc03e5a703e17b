"""The mixed-effects model on a design matrix X: the one engine under ``pool`` (X = 1),
``meta_regression``, Egger's test (X = [1, sei]) and the influence diagnostics.

y = X beta + u + e, u ~ N(0, tau^2), e ~ N(0, v_i) (Viechtbauer 2010, J Stat Softw 36(3)).
beta = (X'WX)^-1 X'W y with W = diag(1/(v_i + tau^2)), Var(beta) = (X'WX)^-1, scaled by the
Knapp & Hartung (2003, Stat Med 22:2693) factor s^2 = y'Py / (k - p) under "knha" (truncated at 1
under "adhoc") with t(k - p) inference; QE = y'P_0 y with the common-effect weights 1/v_i;
I^2 = tau^2 / (tau^2 + v~), v~ = (k - p) / tr(P_0) (Higgins & Thompson 2002, Stat Med 21:1539);
the (restricted) log-likelihood and information criteria as metafor. No k x k matrix: every step
is O(k p^2) time and O(k p) memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._util import frozen_instance
from ._dist import chi2_sf, critical_value, norm_sf, t_sf
from .powersums import InterceptSums, row_sum
from .tau2 import Projection, Tau2Fit, cross_weighted, design_or_none, fit_tau2

__all__ = ["ModelFit", "fit_model", "TESTS", "canonical_test", "check_weights"]

TESTS = ("z", "knha", "adhoc", "t")
_LOG_2PI = math.log(2 * math.pi)
_EPS = float(np.finfo(float).eps)


def canonical_test(test: str) -> str:
    """The test's canonical name (case-insensitive)."""
    t = str(test).lower()
    if t not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {', '.join(TESTS)}")
    return t


def check_weights(weights: ArrayLike, k: int, labels: tuple[str, ...]) -> np.ndarray:
    """User weights: one positive finite number per study (metafor refuses negative weights)."""
    a = np.atleast_1d(np.asarray(weights, dtype=float))
    if a.shape != (k,):
        raise ValueError(f"weights must have one entry per study ({k}), got shape {a.shape}")
    bad = np.flatnonzero(~(np.isfinite(a) & (a > 0)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"weights: study {labels[i]!r} has weight {a[i]:g}; weights must be "
                         "positive and finite (metafor refuses negative weights)")
    return a


@dataclass(frozen=True)
class ModelFit:
    """Everything the mixed-effects model estimates, as arrays and numbers (internal)."""

    k: int
    p: int
    method: str
    test: str
    level: float
    tau2_fit: Tau2Fit
    tau2_fixed: bool
    beta: np.ndarray
    vb: np.ndarray  # covariance of beta, scaled by s2w
    vb_model: np.ndarray  # unscaled
    se: np.ndarray
    statistic: np.ndarray
    pvalue: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    df: float | None
    crit: float
    s2w: float
    s2w_knha: float
    rss: float  # sum w (y - X beta)^2 at the fitted weights
    w: np.ndarray  # 1/(v + tau^2)
    qe: float
    qe_pvalue: float
    vt: float
    i2: float
    h2: float
    ll_ml: float
    ll_reml: float

    @property
    def tau2(self) -> float:
        return self.tau2_fit.tau2

    @property
    def parms(self) -> int:
        """Number of estimated parameters (metafor's, for the information criteria)."""
        return self.p + (0 if self.method == "EE" or self.tau2_fixed else 1)

    def fit_stats(self, reml: bool) -> dict[str, float]:
        """ll, deviance-free AIC, BIC and AICc as metafor's ``fitstats`` (ML or REML column)."""
        k, p, q = self.k, self.p, self.parms
        if reml:
            ll, n = self.ll_reml, k - p
        else:
            ll, n = self.ll_ml, k
        m = max(n, q + 2)
        return {"loglik": ll, "aic": -2 * ll + 2 * q, "bic": -2 * ll + q * np.log(n),
                "aicc": -2 * ll + 2 * q * m / (m - q - 1)}

    def wald(self, idx) -> tuple[float, int, float | None, float]:
        """Wald test of beta[idx] = 0: (statistic, df1, df2, pvalue); F = QM/m under t tests."""
        idx = np.asarray(idx, dtype=int)
        b = self.beta[idx]
        V = self.vb[np.ix_(idx, idx)]
        try:
            L = np.linalg.cholesky(V)
            z = np.linalg.solve(L, b)
            qm = float(z @ z)
        except np.linalg.LinAlgError:
            qm = float("nan")
        m = idx.size
        if self.df is None:
            return qm, m, None, float(chi2_sf(qm, m))
        from scipy.special import fdtrc

        f = qm / m
        return f, m, float(self.df), float(fdtrc(m, self.df, f)) if self.df > 0 else float("nan")


def _wald_tests(beta, se, df: float | None, level: float):
    """(statistic, two-sided p-value, critical value) of coefficients ``beta`` with standard
    errors ``se`` (floats, or arrays of one value per coefficient): z tests for ``df`` None, else
    t tests on df degrees of freedom (p NaN for df <= 0). A zero standard error (identical
    outcomes under knha) gives a statistic of +/-inf and p = 0, as metafor."""
    if isinstance(se, float):
        stat = beta / se if se > 0 else (math.copysign(math.inf, beta) if beta else math.nan)
    elif np.minimum.reduce(se) > 0:
        stat = beta / se
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = beta / se
    if df is None:
        pval = 2 * norm_sf(abs(stat))
    elif df > 0:
        pval = 2 * t_sf(abs(stat), df)
    else:
        pval = math.nan if isinstance(se, float) else np.full(np.shape(se), np.nan)
    return stat, pval, critical_value(level, df)


def fit_model(y: np.ndarray, v: np.ndarray, X: np.ndarray, *, method: str = "REML",
              test: str = "z", level: float = 0.95, weights: np.ndarray | None = None,
              tau2: float | None = None, i2: str = "tau2", threshold: float = 1e-12,
              maxiter: int = 100, tau2_fit: Tau2Fit | None = None) -> ModelFit:
    """Fit y = X beta + u + e by ``method`` (a canonical tau^2 method) and ``test``; ``X`` None
    is the intercept-only model.

    ``weights`` are user weights (beta by weighted least squares with them and the sandwich
    covariance, as metafor); ``tau2`` fixes tau^2; ``i2`` is "tau2" (metafor) or "Q" (meta).
    """
    k = y.size
    Xp = None if X is None else design_or_none(X, k)  # None: intercept only (Projection's fast path)
    p = 1 if Xp is None else Xp.shape[1]
    sums = None
    if Xp is None:  # intercept only: power sums of the centred outcomes, shared with fit_tau2
        ybar = row_sum(y) / k
        sums = InterceptSums(y - ybar, v)
    if tau2_fit is None:
        tau2_fit = fit_tau2(y, v, method, X=Xp, weights=weights, tau2=tau2, threshold=threshold,
                            maxiter=maxiter, sums=sums)
    t2 = tau2_fit.tau2
    if method == "EE":
        t2 = 0.0
    s = v + t2
    if t2 <= 0 and (s <= 0).any():
        raise ValueError("division by zero in the weights 1/(vi + tau^2): a sampling variance "
                         "vi = 0 with tau^2 = 0 (metafor stops as well)")
    w = 1.0 / s
    scalar = Xp is None and weights is None  # one coefficient: its inference in floats
    if Xp is None:
        sw, _, _, _, rss, mu_c, _ = sums.moments(t2)
        beta_w, m_w, logdet_w = ybar + mu_c, 1.0 / sw, math.log(sw)
        if not scalar:
            beta_w, m_w = np.array([beta_w]), np.array([[m_w]])
    else:
        prw = Projection(w, Xp)
        beta_w = prw.coef(y)
        resid_w = y - X @ beta_w
        rss = float((w * resid_w) @ resid_w)
        m_w, logdet_w = prw.M.copy(), prw.logdet()
    if weights is not None:  # user weights: weighted mean, sandwich variance (as metafor)
        pra = Projection(weights, Xp)
        beta = pra.coef(y)
        meat = np.array([[row_sum(weights**2 * s)]]) if Xp is None else cross_weighted(X, weights**2 * s)
        vb = pra.M @ meat @ pra.M
    else:
        beta = beta_w
        vb = m_w
    df_res = k - p
    s2w_knha = rss / df_res if (df_res > 0 and rss > _EPS) else 0.0
    s2w = 1.0
    if test == "knha":
        s2w = s2w_knha
    elif test == "adhoc":
        s2w = max(1.0, s2w_knha)
    vb_model = vb
    vb = vb * s2w
    df = None if test == "z" else float(df_res)
    se = math.sqrt(vb) if scalar else np.sqrt(vb.diagonal())
    stat, pval, crit = _wald_tests(beta, se, df, level)
    ci_lb, ci_ub = beta - crit * se, beta + crit * se
    if scalar:  # as arrays of one coefficient (rows of one array: one allocation)
        beta, se, stat, pval, ci_lb, ci_ub = np.array(
            [beta, se, stat, pval, ci_lb, ci_ub], dtype=float).reshape(6, 1)
        vb, vb_model = np.array([vb, vb_model]).reshape(2, 1, 1)
    # heterogeneity, from the common-effect weights 1/v_i (not defined with zero variances)
    nan = float("nan")
    if (sums.v_min if Xp is None else v.min()) > 0:
        if df_res > 0:
            if Xp is None:  # Cochran's Q and tr(P) at weights 1/v from the power sums
                sw0, s20, _, _, qe, _, _ = sums.moments(0.0)
                trp0 = sw0 - s20 / sw0
            else:
                pr0 = Projection(1.0 / v, Xp)
                qe, trp0 = pr0.quad(y - row_sum(y) / k), pr0.tr()
            qe = max(0.0, qe)
            qe_p = float(chi2_sf(qe, df_res))
            vt = df_res / trp0
            if method == "EE" or i2 == "Q":
                i2v = max(0.0, 100 * (qe - df_res) / qe) if qe > 0 else 0.0
                h2 = qe / df_res
                if i2 == "Q":  # H = max(1, sqrt(Q/df)) as I^2 >= 0 (Higgins & Thompson 2002; meta)
                    h2 = max(1.0, h2)
            else:
                i2v = 100 * t2 / (vt + t2)
                h2 = t2 / vt + 1
        else:
            qe, qe_p, vt, i2v, h2 = 0.0, 1.0, 0.0, 0.0, 1.0
    else:
        qe = qe_p = vt = i2v = h2 = nan
    sls = sums.log_sum(t2) if Xp is None else row_sum(np.log(s))
    ll_ml = -0.5 * k * _LOG_2PI - 0.5 * sls - 0.5 * rss
    ll_reml = (-0.5 * df_res * _LOG_2PI
               + 0.5 * (math.log(k) if Xp is None else np.linalg.slogdet(Xp.T @ Xp)[1])
               - 0.5 * sls - 0.5 * logdet_w - 0.5 * rss)
    return frozen_instance(ModelFit, {
        "k": k, "p": p, "method": method, "test": test, "level": level, "tau2_fit": tau2_fit,
        "tau2_fixed": tau2 is not None, "beta": beta, "vb": vb, "vb_model": vb_model, "se": se,
        "statistic": stat, "pvalue": np.asarray(pval, dtype=float), "ci_lb": ci_lb, "ci_ub": ci_ub,
        "df": df, "crit": crit, "s2w": float(s2w), "s2w_knha": float(s2w_knha), "rss": rss, "w": w,
        "qe": float(qe), "qe_pvalue": float(qe_p), "vt": float(vt), "i2": float(i2v),
        "h2": float(h2), "ll_ml": float(ll_ml), "ll_reml": float(ll_reml)})
