"""Small-study effects and publication bias: Egger's regression test, Begg's rank correlation
test and Duval & Tweedie's trim and fill, with metafor parity.

- :func:`egger_test` is metafor's ``regtest()``: by default (``model="rma"``) a meta-regression of
  yi on the standard error sqrt(vi) with the same tau^2 estimator and test as the model; the test
  of funnel-plot asymmetry is the z (or t) test of the slope, and the intercept is the "limit
  estimate" (the effect as the standard error goes to 0; Stanley & Doucouliagos 2014).
  ``model="lm"`` is Egger's original weighted regression with a multiplicative dispersion
  parameter (Egger et al. 1997 BMJ 315:629; Sterne & Egger 2005, in Rothstein, Sutton &
  Borenstein, Publication Bias in Meta-Analysis, Wiley, ch. 6).
- :func:`begg_test` is metafor's ``ranktest()`` (Begg & Mazumdar 1994 Biometrics 50:1088).
- :func:`trim_and_fill` is metafor's ``trimfill()`` (Duval & Tweedie 2000 Biometrics 56:455 and
  JASA 95:89).

The meta-regression with one moderator, X = [1, sei], is fitted by the model core
(:mod:`metamsc.core`, the same engine as ``pool`` and ``meta_regression``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ._dist import chi2_ppf, chi2_sf, critical_value, norm_isf, norm_sf, t_sf
from ._present import explained, record_frame
from .frames import accepts_data
from .results import Excluded
from ._util import check_level, readonly, study_arrays, warn_omitted
from .core import canonical_test
from .pooling import pool
from .results import MetaResult
from .metareg import MetaRegression, fit_design
from .tau2 import USER_WEIGHTED, canonical_method

__all__ = ["EggerTest", "BeggTest", "TrimAndFill", "egger_test", "begg_test", "trim_and_fill"]


def _egger_fit(y, v, method, test="z", level=0.95, threshold=1e-12, maxiter=100) -> MetaRegression:
    """The meta-regression of yi on sei = sqrt(vi) (X = [1, sei]) by the model core."""
    X = np.column_stack([np.ones(y.size), np.sqrt(v)])
    return fit_design(y, v, X, ("intrcpt", "sei"), canonical_method(method), test, level, None, None,
                threshold, maxiter, (), (), None, skip_r2=True)

# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------

_KIND_NAMES = {"MH": "Mantel-Haenszel", "PETO": "Peto", "GLMM": "GLMM"}


def _data(yi, vi, labels=None, what: str | None = None):
    """yi, vi, labels and the model settings of a MetaResult (or None) from the arguments.

    ``what`` names a method defined for inverse-variance models only (as metafor's ``regtest``
    and ``trimfill``, which take ``rma.uni`` fits): given a Mantel-Haenszel, Peto or GLMM fit it
    refuses in one line rather than refit an inverse-variance model in its place. Without
    ``what`` (Begg's test, defined on yi and vi for every fit, as metafor's ``ranktest``), the
    studies with a missing yi (possible in a Mantel-Haenszel or Peto fit) are left out, said."""
    if isinstance(yi, MetaResult):
        if vi is not None:
            raise TypeError("pass either a MetaResult or yi and vi, not both")
        kind = getattr(yi, "model", "IV")
        if what is not None and kind != "IV":
            raise ValueError(f"{what} is defined for inverse-variance models only (metafor has it "
                             f"for rma.uni fits); this is a {_KIND_NAMES.get(kind, kind)} fit, which "
                             f"it will not replace by another model: pass yi and vi to use an "
                             f"inverse-variance model explicitly")
        y, v = np.asarray(yi.yi, dtype=float), np.asarray(yi.vi, dtype=float)
        labs = tuple(yi.labels) if labels is None else tuple(str(x) for x in labels)
        if len(labs) != y.size:
            raise ValueError("labels must have one entry per study of the result")
        ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
        if not np.all(ok):
            warn_omitted(labs, ok, "small-study test")
            y, v, labs = y[ok], v[ok], tuple(lb for lb, keep in zip(labs, ok) if keep)
        return y, v, labs, yi
    if vi is None:
        raise TypeError("vi is required when yi is given as an array")
    y, v, labs, ok = study_arrays(yi, vi, labels)
    warn_omitted(labs, ok, "small-study test")  # as metafor: studies with NAs are omitted, said
    return y[ok], v[ok], tuple(l for l, keep in zip(labs, ok) if keep), None


# ---------------------------------------------------------------------------------------------
# Egger's regression test
# ---------------------------------------------------------------------------------------------

@explained
@dataclass(frozen=True)
class EggerTest:
    """Egger's regression test for funnel plot asymmetry (metafor ``regtest``, predictor "sei").

    Egger M, Davey Smith G, Schneider M, Minder C (1997) Bias in meta-analysis detected by a
    simple, graphical test. BMJ 315:629-634; Sterne JAC, Egger M (2005) Regression methods to
    detect publication and other bias in meta-analysis. In: Rothstein HR, Sutton AJ, Borenstein M
    (eds) Publication Bias in Meta-Analysis. Wiley, pp 99-110.

    ``model = "rma"``: meta-regression of yi on sei = sqrt(vi) with the tau^2 estimator
    ``method``; ``statistic`` is the z (or t on ``df`` = k - 2 for knha/adhoc/t) value of the
    slope. ``model = "lm"``: weighted least squares with weights 1/vi and a multiplicative
    dispersion parameter (Egger's original test); ``statistic`` is a t value on k - 2 df.
    ``limit_estimate`` is the intercept (the effect as sei -> 0) with its CI at ``level``.
    """

    name: str
    model: str
    method: str
    test: str
    level: float
    k: int
    statistic: float
    df: float | None
    pvalue: float
    slope: float
    slope_se: float
    limit_estimate: float
    limit_se: float
    limit_ci_lb: float
    limit_ci_ub: float
    tau2: float
    regression: MetaRegression | None = field(default=None, repr=False, compare=False)
    #: rows of ``data=`` left out for a missing value (see :mod:`metamsc.frames`)
    excluded: tuple[Excluded, ...] = ()

    def _repr_extra(self) -> str:
        stat = "z" if self.df is None else f"t({self.df:g})"
        return f"{stat}={self.statistic:.4f} p={self.pvalue:.4g} limit={self.limit_estimate:.4f}"

    def to_frame(self):
        """A one-row pandas DataFrame of the test and the limit estimate."""
        return record_frame(self, ("name", "model", "method", "k", "statistic", "df", "pvalue",
                                   "slope", "slope_se", "limit_estimate", "limit_se",
                                   "limit_ci_lb", "limit_ci_ub", "tau2"))

    def summary(self) -> str:
        what = ("mixed-effects meta-regression model" if self.model == "rma" and self.method != "EE"
                else "fixed-effects meta-regression model" if self.model == "rma"
                else "weighted regression with multiplicative dispersion")
        stat = "z" if self.df is None else f"t({self.df:g})"
        return (f"{self.name}\nmodel: {what} ({self.method}); predictor: standard error\n"
                f"test for funnel plot asymmetry: {stat} = {self.statistic:.4f}, p = {self.pvalue:.4g}\n"
                f"limit estimate (as sei -> 0): b = {self.limit_estimate:.4f} "
                f"({100 * self.level:g}% CI {self.limit_ci_lb:.4f}, {self.limit_ci_ub:.4f})")


@accepts_data(("yi", "vi"), labels=None)
def egger_test(yi: MetaResult | ArrayLike, vi: ArrayLike | None = None, *, model: str = "rma",
               method: str | None = None, test: str | None = None, level: float | None = None,
               threshold: float = 1e-12, maxiter: int = 100) -> EggerTest:
    """Egger's regression test (metafor ``regtest(x, model=, predictor="sei")``).

    ``yi`` is a :class:`MetaResult` (its method, test and level are used, as regtest on an rma
    object) or effect sizes with sampling variances ``vi`` (then REML, z and 0.95 unless given,
    as regtest on vectors). ``model`` is "rma" (default) or "lm" (see :class:`EggerTest`).

    Parameters
    ----------
    yi : MetaResult or array_like
        A fitted result, or effect sizes.
    vi : array_like, optional
        Sampling variances (when ``yi`` holds effect sizes).
    model : {"rma", "lm"}
        Mixed-effects meta-regression on the standard error (default), or Egger's weighted
        linear regression.
    method, test, level : optional
        Settings of the regression model.
    threshold, maxiter : float, int
        Convergence rule of the iterative estimators.

    Returns
    -------
    EggerTest
        The ``statistic`` and ``pvalue`` of the slope on the standard error, and the limit
        estimate (the intercept, as the standard error goes to 0) with its CI.

    References
    ----------
    Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected by a
    simple, graphical test. BMJ 315:629-634. Sterne JAC, Egger M (2005), in Publication Bias in
    Meta-Analysis, Wiley, ch. 6.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> e = mm.egger_test(yi, vi)
    >>> print(f"z = {e.statistic:.4f}, p = {e.pvalue:.4f}")
    z = -0.5172, p = 0.6050
    """
    y, v, _, res = _data(yi, vi, what="Egger's regression test")
    method = method or (res.method if res is not None else "REML")
    test = test or (res.test if res is not None else "z")
    level = check_level(level if level is not None else (res.level if res is not None else 0.95))
    method = canonical_method(method)
    test = canonical_test(test)
    k = y.size
    if k < 3:
        raise ValueError(f"Egger's test needs at least 3 studies (k = {k})")
    X = np.column_stack([np.ones(k), np.sqrt(v)])
    name = "Egger's regression test for funnel plot asymmetry"
    if model == "rma":
        fit = _egger_fit(y, v, method, test, level, threshold, maxiter)
        return EggerTest(name, "rma", fit.method, fit.test, level, k, float(fit.statistic[1]), fit.df,
                         float(fit.pvalue[1]), float(fit.beta[1]), float(fit.se[1]), float(fit.beta[0]),
                         float(fit.se[0]), float(fit.ci_lb[0]), float(fit.ci_ub[0]), fit.tau2, fit)
    if model != "lm":
        raise ValueError(f"unknown model {model!r}; expected 'rma' or 'lm'")
    w = 1.0 / v
    WX = X * w[:, None]
    inv = np.linalg.inv(X.T @ WX)
    b = inv @ (WX.T @ y)
    df = float(k - 2)
    sigma2 = float(np.sum(w * (y - X @ b) ** 2)) / df
    se = np.sqrt(np.diag(inv) * sigma2)
    stat = b / se
    pval = 2 * t_sf(np.abs(stat), df)
    crit = critical_value(level, df)
    return EggerTest(name + " (weighted regression, multiplicative dispersion)", "lm",
                     "WLS", "t", level, k, float(stat[1]), df, float(pval[1]), float(b[1]),
                     float(se[1]), float(b[0]), float(se[0]), float(b[0] - crit * se[0]),
                     float(b[0] + crit * se[0]), float("nan"))


# ---------------------------------------------------------------------------------------------
# Begg's rank correlation test
# ---------------------------------------------------------------------------------------------

@explained
@dataclass(frozen=True)
class BeggTest:
    """Begg and Mazumdar's rank correlation test for funnel plot asymmetry (metafor ``ranktest``).

    Begg CB, Mazumdar M (1994) Operating characteristics of a rank correlation test for
    publication bias. Biometrics 50:1088-1101.

    Kendall's tau (tau-b) between the standardized effects (yi - mu_EE) / sqrt(vi - 1/sum(1/vi))
    and the variances vi. The p-value is exact (the permutation distribution of the number of
    concordant pairs; ``statistic`` is that number) unless there are ties, when it is the normal
    approximation without continuity correction (``statistic`` is z), as R's
    ``cor.test(method="kendall", exact=TRUE)``.
    """

    name: str
    k: int
    tau: float
    statistic: float
    pvalue: float
    exact: bool
    note: str = ""
    excluded: tuple[Excluded, ...] = ()

    def _repr_extra(self) -> str:
        return f"tau={self.tau:.4f} p={self.pvalue:.4g}"

    def to_frame(self):
        """A one-row pandas DataFrame of the test."""
        return record_frame(self, ("name", "k", "tau", "statistic", "pvalue", "exact"))

    def summary(self) -> str:
        how = "exact" if self.exact else "normal approximation (ties)"
        return (f"{self.name}\nKendall's tau = {self.tau:.4f}, p = {self.pvalue:.4g} ({how})")


def _kendall_pmf(n: int) -> np.ndarray:
    """P(T = t), t = 0..n(n-1)/2, for the number of concordant pairs (equivalently inversions)
    of a random permutation of n (the Mahonian distribution), by convolution: inserting the i-th
    element adds 0..i-1 inversions with equal probability."""
    p = np.ones(1)
    for i in range(2, n + 1):
        p = np.convolve(p, np.full(i, 1.0 / i))
    return p


@accepts_data(("yi", "vi"), labels=None)
def begg_test(yi: MetaResult | ArrayLike, vi: ArrayLike | None = None) -> BeggTest:
    """Begg's rank correlation test (metafor ``ranktest``); see :class:`BeggTest`.

    Parameters
    ----------
    yi : MetaResult or array_like
        A fitted result, or effect sizes.
    vi : array_like, optional
        Sampling variances (when ``yi`` holds effect sizes).

    Returns
    -------
    BeggTest
        Kendall's ``tau`` between standardised effects and variances, and its ``pvalue`` (exact
        for small k, as metafor).

    References
    ----------
    Begg CB, Mazumdar M (1994). Operating characteristics of a rank correlation test for
    publication bias. Biometrics 50:1088-1101.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> b = mm.begg_test(yi, vi)
    >>> print(f"tau = {b.tau:.4f}, p = {b.pvalue:.4f}")
    tau = -0.0667, p = 1.0000
    """
    y, v, _, _ = _data(yi, vi)
    n = y.size
    if n < 2:
        raise ValueError("the rank correlation test needs at least 2 studies")
    w = 1.0 / v
    theta = np.sum(w * y) / np.sum(w)
    ystar = (y - theta) / np.sqrt(v - 1.0 / np.sum(w))
    sx = np.sign(ystar[:, None] - ystar[None, :])
    sy = np.sign(v[:, None] - v[None, :])
    iu = np.triu_indices(n, 1)
    s = float(np.sum(sx[iu] * sy[iu]))
    tx, ty = float(np.sum(sx[iu] != 0)), float(np.sum(sy[iu] != 0))
    tau = s / np.sqrt(tx * ty) if tx > 0 and ty > 0 else float("nan")
    name = "Begg and Mazumdar's rank correlation test for funnel plot asymmetry"
    if not np.isfinite(tau):
        return BeggTest(name, n, float("nan"), float("nan"), float("nan"), False, "tau not defined")
    ties = min(np.unique(ystar).size, np.unique(v).size) < n
    n0 = n * (n - 1) / 2
    if not ties:
        q = int(np.round((tau + 1) * n0 / 2))
        pmf = _kendall_pmf(n)
        p = float(np.sum(pmf[q:])) if q > n0 / 2 else float(np.sum(pmf[: q + 1]))
        return BeggTest(name, n, float(tau), float(q), min(2 * p, 1.0), True)

    def tie_sizes(x):
        _, c = np.unique(x, return_counts=True)
        return c[c > 1].astype(float)

    xt, yt = tie_sizes(ystar), tie_sizes(v)
    t1, t2 = np.sum(xt * (xt - 1)) / 2, np.sum(yt * (yt - 1)) / 2
    S = tau * np.sqrt((n0 - t1) * (n0 - t2))
    v0 = n * (n - 1) * (2 * n + 5)
    vt = np.sum(xt * (xt - 1) * (2 * xt + 5))
    vu = np.sum(yt * (yt - 1) * (2 * yt + 5))
    v1 = np.sum(xt * (xt - 1)) * np.sum(yt * (yt - 1))
    v2 = np.sum(xt * (xt - 1) * (xt - 2)) * np.sum(yt * (yt - 1) * (yt - 2))
    var_s = (v0 - vt - vu) / 18 + v1 / (2 * n * (n - 1)) + v2 / (9 * n * (n - 1) * (n - 2))
    z = float(S / np.sqrt(var_s))
    pval = float(2 * min(norm_sf(-z), norm_sf(z)))
    return BeggTest(name, n, float(tau), z, pval, False,
                    "ties: normal approximation, no exact p-value (as R's cor.test)")


# ---------------------------------------------------------------------------------------------
# trim and fill
# ---------------------------------------------------------------------------------------------

@explained
@dataclass(frozen=True)
class TrimAndFill:
    """Duval and Tweedie's trim-and-fill method (metafor ``trimfill``).

    Duval S, Tweedie R (2000) Trim and fill: a simple funnel-plot-based method of testing and
    adjusting for publication bias in meta-analysis. Biometrics 56:455-463; Duval S, Tweedie R
    (2000) A nonparametric "trim and fill" method of accounting for publication bias in
    meta-analysis. JASA 95:89-98.

    ``k0`` studies estimated missing on ``side`` (with standard error ``se_k0``; ``p_k0`` is the
    test of k0 = 0 for the R0 estimator), ``filled_yi``/``filled_vi`` the imputed studies (mirror
    images 2 * mu - yi of the k0 most extreme studies on the other side), ``result`` the model
    fitted to the observed and the filled studies together (the observed ones first; ``fill``
    marks the filled ones), and ``original`` the model of the observed studies.
    """

    name: str
    estimator: str
    side: str
    k0: int
    se_k0: float
    p_k0: float
    iterations: int
    filled_yi: np.ndarray
    filled_vi: np.ndarray
    filled_labels: tuple[str, ...]
    fill: np.ndarray
    result: MetaResult = field(repr=False)
    original: MetaResult = field(repr=False)
    #: rows of ``data=`` left out for a missing value (see :mod:`metamsc.frames`)
    excluded: tuple[Excluded, ...] = ()

    @property
    def estimate(self) -> float:
        return self.result.estimate

    @property
    def se(self) -> float:
        return self.result.se

    @property
    def ci_lb(self) -> float:
        return self.result.ci_lb

    @property
    def ci_ub(self) -> float:
        return self.result.ci_ub

    def summary(self) -> str:
        r = self.result
        return (f"{self.name}\nestimated number of missing studies on the {self.side} side: "
                f"{self.k0} (SE = {self.se_k0:.4f}, estimator {self.estimator})\n"
                f"estimate after filling: {r.estimate:.4f} ({100 * r.level:g}% CI {r.ci_lb:.4f}, "
                f"{r.ci_ub:.4f}); before: {self.original.estimate:.4f}")

    @property
    def k(self) -> int:
        return self.result.k

    @property
    def measure(self) -> str:
        return self.result.measure

    def _repr_extra(self) -> str:
        return f"k0={self.k0} ({self.side} side)"

    def to_frame(self):
        """The observed and the filled studies: study, yi, vi, filled (True for a filled one)."""
        import pandas as pd

        r = self.result
        return pd.DataFrame({"study": list(r.labels), "yi": r.yi, "vi": r.vi,
                             "filled": np.asarray(self.fill, dtype=bool)})

    def plot_funnel(self, ax=None, **options):
        """Funnel plot of the observed and (hollow) filled studies; returns ax."""
        from .plots.funnel import funnel

        return funnel(self, ax=ax, **options)


def _ranks_first(x: np.ndarray) -> np.ndarray:
    """R's rank(x, ties.method = "first")."""
    r = np.empty(x.size)
    r[np.argsort(x, kind="stable")] = np.arange(1, x.size + 1)
    return r


@accepts_data(("yi", "vi"))
def trim_and_fill(yi: MetaResult | ArrayLike, vi: ArrayLike | None = None, *,
                  method: str | None = None, test: str | None = None, level: float | None = None,
                  side: str | None = None, estimator: str = "L0", maxiter: int = 100,
                  labels: ArrayLike | None = None, **pool_kwargs) -> TrimAndFill:
    """Trim and fill (metafor ``trimfill``) with estimator "L0" (default), "R0" or "Q0".

    ``yi`` is a :class:`MetaResult` (its method, test, level and measure are used) or effect sizes
    with sampling variances ``vi`` (then ``method`` defaults to REML, ``test`` to z, ``level`` to
    0.95). ``side`` ("left" or "right") is where studies are missing; by default it is chosen as
    metafor does, from the sign of the slope of the meta-regression of yi on sqrt(vi) with the same
    estimator (negative: "right"). The trimmed and the final models are fitted by
    :func:`metamsc.pool` (``pool_kwargs`` are passed on).

    Note: metafor's ``trimfill()`` fits the filled model with its own defaults ``test="z"`` and
    95% unless ``test``/``level`` are passed to it; here the filled model keeps the test and level
    of the input model (the same numbers for z).

    Parameters
    ----------
    yi : MetaResult or array_like
        A fitted result, or effect sizes.
    vi : array_like, optional
        Sampling variances (when ``yi`` holds effect sizes).
    method, test, level : optional
        Settings of the fits.
    side : {"left", "right"}, optional
        The side where studies are missing.
    estimator : {"L0", "R0", "Q0"}
        Estimator of the number of missing studies.
    maxiter : int
        Maximum number of trim-and-fill iterations.
    labels : array_like, optional
        Study labels.
    **pool_kwargs
        Passed to :func:`metamsc.pool`.

    Returns
    -------
    TrimAndFill
        ``k0`` (studies filled) with its SE, the ``side``, the filled studies and the ``result`` of
        the model on the filled data.

    References
    ----------
    Duval S, Tweedie R (2000). Trim and fill: a simple funnel-plot-based method of testing and
    adjusting for publication bias in meta-analysis. Biometrics 56:455-463. Duval S, Tweedie R
    (2000). J Am Stat Assoc 95:89-98.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> tf = mm.trim_and_fill(yi, vi)
    >>> print(tf.k0, tf.side, f"{tf.result.estimate:.4f}")
    1 right -0.8965
    """
    y, v, labs, res = _data(yi, vi, labels, what="Trim and fill")
    kw = dict(pool_kwargs)
    per = {key: np.asarray(kw.pop(key)) for key in ("n", "weights") if kw.get(key) is not None}
    kw.pop("corrected", None)
    if res is not None:
        kw.setdefault("measure", res.measure)
        if res.n is not None:
            per.setdefault("n", np.asarray(res.n))
        if res.method in USER_WEIGHTED:  # percent weights are proportional to the user's weights
            per.setdefault("weights", np.asarray(res.weights))
    elif per:
        ok = np.isfinite(np.asarray(yi, dtype=float)) & np.isfinite(np.asarray(vi, dtype=float))
        ok &= np.asarray(vi, dtype=float) > 0
        per = {key: val[ok] for key, val in per.items()}
    method = canonical_method(method) if method else (res.method if res is not None else "REML")
    test = test or (res.test if res is not None else "z")
    level = check_level(level if level is not None else (res.level if res is not None else 0.95))
    if estimator not in ("L0", "R0", "Q0"):
        raise ValueError(f"unknown estimator {estimator!r}; expected L0, R0 or Q0")
    k = y.size
    if k < 2:
        raise ValueError("trim and fill needs at least 2 studies (metafor: 'Stopped because k = 1.')")
    threshold = kw.pop("threshold", 1e-12)
    fit_maxiter = kw.pop("maxiter", 100)
    common = dict(method=method, threshold=threshold, maxiter=fit_maxiter)
    if side is None:
        slope = _egger_fit(y, v, method, threshold=threshold, maxiter=fit_maxiter).beta[1]
        if not np.isfinite(slope):
            raise ValueError("the side could not be estimated (slope of yi on sqrt(vi) not finite); "
                             "pass side='left' or 'right'")
        side = "right" if slope < 0 else "left"
    elif side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")

    # the algorithm of metafor's trimfill.rma.uni, step by step (so the rounding is the same)
    yy = -1 * y if side == "right" else y
    ix = np.argsort(yy, kind="stable")  # R's sort(index.return = TRUE) is stable
    yy, vv = yy[ix], v[ix]
    per_sorted = {key: val[ix] for key, val in per.items()}
    k0, k0_sav, it = 0, -1, 0
    se_k0, beta = float("nan"), float("nan")
    while k0 != k0_sav:
        k0_sav = k0
        it += 1
        if it > maxiter:
            raise ValueError("trim and fill did not converge")
        keep = slice(0, k - k0)
        beta = pool(yy[keep], vv[keep], **{key: val[keep] for key, val in per_sorted.items()},
                    **common).estimate
        yc = yy - beta
        signed = np.sign(yc) * _ranks_first(np.abs(yc))
        if estimator == "R0":
            neg = signed[signed < 0]
            if neg.size == 0:
                raise ValueError("the R0 estimator is not defined when no study lies below the "
                                 "estimate (metafor stops with an error as well)")
            k0f = (k - np.max(-1 * neg)) - 1
            se = np.sqrt(2 * max(0.0, k0f) + 2)
        else:
            sr = float(np.sum(signed[signed > 0]))
            with np.errstate(invalid="ignore"):
                if estimator == "L0":
                    k0f = (4 * sr - k * (k + 1)) / (2 * k - 1)
                else:
                    k0f = k - 1 / 2 - np.sqrt(2 * k**2 - 4 * sr + 1 / 4)
                var_sr = 1 / 24 * (k * (k + 1) * (2 * k + 1) + 10 * k0f**3 + 27 * k0f**2 + 17 * k0f
                                   - 18 * k * k0f**2 - 18 * k * k0f + 6 * k**2 * k0f)
                if estimator == "L0":
                    se = 4 * np.sqrt(var_sr) / (2 * k - 1)
                else:
                    se = 2 * np.sqrt(var_sr) / np.sqrt((k - 1 / 2) ** 2 - k0f * (2 * k - k0f - 1))
            if not np.isfinite(k0f):
                raise ValueError(f"the {estimator} estimator of the number of missing studies is "
                                 "not defined for these data (metafor stops with an error as well)")
        k0 = int(max(0.0, np.round(k0f)))  # R's round(): half to even, as numpy's
        se_k0 = float(np.maximum(0.0, se))
    p_k0 = float(1 - np.sum(0.5 ** (np.arange(-1, k0) + 2))) if estimator == "R0" else float("nan")

    common.update(test=test, level=level, **kw)
    original = pool(y, v, labels=labs, **per, **common)
    if k0 > 0:
        yc = -1 * (yc - beta) if side == "right" else yc - beta
        fy, fv = -1 * yc[k - k0:], vv[k - k0:]
        flabs = tuple(f"Filled {i + 1}" for i in range(k0))
        per_fill = {key: np.concatenate([per[key], val[k - k0:]]) for key, val in per_sorted.items()}
        result = pool(np.concatenate([y, fy]), np.concatenate([v, fv]), labels=labs + flabs,
                      **per_fill, **common)
    else:
        fy, fv, flabs = np.empty(0), np.empty(0), ()
        result = original
    fill = np.r_[np.zeros(k, dtype=bool), np.ones(k0, dtype=bool)]
    fill.flags.writeable = False
    return TrimAndFill(name="Trim-and-fill analysis (Duval & Tweedie)", estimator=estimator,
                       side=side, k0=k0, se_k0=se_k0, p_k0=p_k0, iterations=it,
                       filled_yi=readonly(fy), filled_vi=readonly(fv), filled_labels=flabs,
                       fill=fill, result=result, original=original)
