"""Mixed-effects meta-regression (metafor's ``rma.uni(yi, vi, mods=...)``), its predictions and
model comparisons.

The model y = X beta + u + e is fitted by :func:`metamsc.core.fit_model` (every tau^2 estimator
of :mod:`metamsc.tau2`); the omnibus test of the moderators QM is a Wald chi^2 test under "z" and
an F(m, k - p) test under Knapp-Hartung (Knapp & Hartung 2003, Stat Med 22:2693); the pseudo-R^2
is the proportional reduction of tau^2 against the intercept-only model (Raudenbush 2009, in
Cooper, Hedges & Valentine, The Handbook of Research Synthesis, ch. 16; Lopez-Lopez et al. 2014,
Br J Math Stat Psychol 67:30); predictions and their intervals follow Viechtbauer (2010),
J Stat Softw 36(3), and the likelihood-ratio test compares (restricted) log-likelihoods.

Why one module: the fit, its predictions and its model comparisons all read the same
:class:`MetaRegression` record and its design matrix; about a third of the lines are the
numpydoc examples of the three public functions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._dist import chi2_sf
from ._present import explained, record_frame
from .frames import accepts_data
from ._util import check_level, readonly
from .core import ModelFit, canonical_test, fit_model
from .results import Excluded
from .tau2 import POSITIVE_VI_ONLY, TAU2_METHODS, USER_WEIGHTED, Projection, canonical_method, estimate_tau2

__all__ = ["MetaRegression", "Prediction", "AnovaResult", "meta_regression", "anova",
           "design_matrix"]


# ---------------------------------------------------------------------------------------------
# the design matrix
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Encoder:
    """How the moderators became columns: per variable, continuous or its sorted levels."""

    variables: tuple[tuple[str, tuple[str, ...] | None], ...] = ()
    design_info: Any = None  # patsy's, for formula models
    intercept: bool = True

    def encode(self, data) -> tuple[np.ndarray, tuple[str, ...]]:
        if self.design_info is not None:
            import patsy

            (mat,) = patsy.build_design_matrices([self.design_info], data, NA_action="raise")
            return np.asarray(mat, dtype=float), tuple(self.design_info.column_names)
        cols, names = [], []
        if self.intercept:
            cols.append(np.ones(_nrows(data)))
            names.append("intrcpt")
        for var, levels in self.variables:
            if var not in data:
                raise ValueError(f"newmods: no column {var!r}")
            x = np.atleast_1d(np.asarray(data[var], dtype=object))
            if levels is None:
                cols.append(np.asarray(x, dtype=float))
                names.append(var)
                continue
            miss = np.array([_missing(s) for s in x], dtype=bool)
            sx = np.array([str(s) for s in x])
            sx[miss] = ""
            unknown = sorted(set(sx[~miss]) - set(levels))
            if unknown:
                raise ValueError(f"newmods: column {var!r} has levels {unknown} not in the model "
                                 f"(levels {list(levels)})")
            for lev in levels[(1 if self.intercept else 0):] if self._first(var) else levels[1:]:
                cols.append(np.where(miss, np.nan, (sx == lev).astype(float)))
                names.append(f"{var}{lev}")
        return np.column_stack(cols) if cols else np.empty((0, 0)), tuple(names)

    def _first(self, var: str) -> bool:
        """Without an intercept, the first categorical variable keeps all its levels (as R)."""
        cats = [v for v, lev in self.variables if lev is not None]
        return bool(cats) and cats[0] == var


def _missing(s) -> bool:
    return s is None or (isinstance(s, (float, np.floating)) and np.isnan(s)) or s == ""


def _nrows(data) -> int:
    for val in (data.values() if isinstance(data, Mapping) else [data[c] for c in data]):
        return int(np.atleast_1d(np.asarray(val, dtype=object)).shape[0])
    return 0


def _is_text(x: np.ndarray) -> bool:
    if x.dtype.kind in "OUSb":
        try:
            np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            return True
        return x.dtype.kind in "USb"
    return False


def design_matrix(mods, data=None, *, intercept: bool = True,
                  categorical: Sequence[str] = ()) -> tuple[np.ndarray, tuple[str, ...], _Encoder]:
    """The model matrix of ``mods`` (see :func:`meta_regression`), its column names and encoder.

    Text columns (and those named in ``categorical``) become treatment-coded dummies with the
    first level in sorted order as the reference (R's ``factor``); a formula string is read by
    patsy (the formula machinery of statsmodels) over ``data``.
    """
    if isinstance(mods, str):
        if data is None:
            raise ValueError("mods: a formula needs data= (a DataFrame or a dict of columns)")
        data = dict(data) if isinstance(data, Mapping) else data
        import patsy

        formula = mods.split("~", 1)[1] if "~" in mods else mods
        if not intercept:
            formula = formula + " - 1"
        try:
            mat = patsy.dmatrix(formula, data, NA_action="raise", return_type="matrix")
        except patsy.PatsyError as e:
            raise ValueError(f"mods: formula {mods!r}: {str(e).splitlines()[0]}") from None
        info = mat.design_info
        names = tuple("intrcpt" if n == "Intercept" else n for n in info.column_names)
        return np.asarray(mat, dtype=float), names, _Encoder((), info, intercept)
    if hasattr(mods, "columns") and hasattr(mods, "iloc"):  # a DataFrame
        mods = {str(c): mods[c].to_numpy() for c in mods.columns}
    if isinstance(mods, Mapping):
        variables, k = [], None
        for name, col in mods.items():
            x = np.atleast_1d(np.asarray(col, dtype=object if not hasattr(col, "dtype") else None))
            if x.ndim != 1:
                raise ValueError(f"mods: column {name!r} must be one-dimensional")
            if k is not None and x.size != k:
                raise ValueError(f"mods: column {name!r} has {x.size} values, expected {k}")
            k = x.size
            if name in categorical or _is_text(x):
                levels = tuple(sorted({str(s) for s in x if not _missing(s)}))
                variables.append((str(name), levels))
            else:
                variables.append((str(name), None))
        unknown = set(categorical) - set(mods)
        if unknown:
            raise ValueError(f"categorical: no moderator named {sorted(unknown)}")
        enc = _Encoder(tuple(variables), None, intercept)
        X, names = enc.encode(mods)
        return X, names, enc
    X = np.asarray(mods, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
        names = ("mods",)
    elif X.ndim == 2:
        names = tuple(f"mods{j + 1}" for j in range(X.shape[1]))
    else:
        raise ValueError("mods must be 1-D or 2-D, a dict of columns, a DataFrame or a formula")
    if intercept:
        X = np.column_stack([np.ones(X.shape[0]), X])
        names = ("intrcpt",) + names
    return X, names, _Encoder((), None, intercept)


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------

@explained
@dataclass(frozen=True)
class Prediction:
    """Predicted effects for moderator values (metafor ``predict.rma``), arrays per row."""

    pred: np.ndarray
    se: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    pi_lb: np.ndarray
    pi_ub: np.ndarray

    def __len__(self) -> int:
        return int(np.size(self.pred))

    def summary(self) -> str:
        return "Predicted effects\n" + self.to_frame().to_string(index=False)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({k: getattr(self, k) for k in
                             ("pred", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub")})


@explained
@dataclass(frozen=True)
class MetaRegression:
    """A mixed-effects meta-regression y = X beta + u + e (metafor ``rma.uni`` with ``mods``).

    Per coefficient (in ``names``): ``beta``, ``se``, ``statistic`` (z, or t on ``df`` = k - p),
    ``pvalue``, ``ci_lb``, ``ci_ub``. ``qm``/``qm_df``/``qm_pvalue``: omnibus test of the
    moderators (all coefficients but the intercept; all when there is none): chi^2 on ``qm_df``
    under "z", F(``qm_df``, k - p) under knha/adhoc/t (then ``qm`` is the F statistic, as
    metafor). ``qe``/``qe_df``/``qe_pvalue``: test for residual heterogeneity. ``r2``: metafor's
    pseudo-R^2 in percent (NaN without an intercept or with the intercept only). ``loglik``,
    ``aic``, ``bic``, ``aicc``: REML values for REML, ML values otherwise (as metafor prints).
    """

    method: str
    test: str
    level: float
    k: int
    p: int
    names: tuple[str, ...]
    beta: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    pvalue: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    vb: np.ndarray
    df: float | None
    qm: float
    qm_df: int
    qm_pvalue: float
    qe: float
    qe_df: int
    qe_pvalue: float
    tau2: float
    se_tau2: float
    i2: float
    h2: float
    r2: float
    loglik: float
    aic: float
    bic: float
    aicc: float
    s2w: float
    converged: bool
    iterations: int
    algorithm: str
    intercept: bool
    btt: tuple[int, ...]
    tau2_fixed: bool
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    labels: tuple[str, ...] = field(repr=False, default=())
    weights: np.ndarray | None = field(repr=False, default=None)
    excluded: tuple[Excluded, ...] = ()
    fit_stats: dict = field(repr=False, default_factory=dict, compare=False)
    _fit: ModelFit | None = field(repr=False, default=None, compare=False)
    _encoder: _Encoder | None = field(repr=False, default=None, compare=False)
    _settings: dict = field(repr=False, default_factory=dict, compare=False)

    @property
    def estimate(self) -> np.ndarray:
        return self.beta

    @property
    def tau(self) -> float:
        return float(np.sqrt(self.tau2))

    def coefficients(self) -> list[dict[str, Any]]:
        """One dict per coefficient: name estimate se statistic pvalue ci_lb ci_ub."""
        return [{"name": n, "estimate": float(b), "se": float(s), "statistic": float(z),
                 "pvalue": float(p), "ci_lb": float(lo), "ci_ub": float(hi)}
                for n, b, s, z, p, lo, hi in zip(self.names, self.beta, self.se, self.statistic,
                                                  self.pvalue, self.ci_lb, self.ci_ub)]

    def to_frame(self):
        """One row per coefficient: name estimate se statistic pvalue ci_lb ci_ub."""
        import pandas as pd

        return pd.DataFrame(self.coefficients())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the spec's ``meta_regression`` block)."""
        return {"method": self.method, "test": self.test, "level": self.level, "k": self.k,
                "coefficients": self.coefficients(), "qm": self.qm, "qm_df": self.qm_df,
                "qm_pvalue": self.qm_pvalue, "qe": self.qe, "qe_df": self.qe_df,
                "qe_pvalue": self.qe_pvalue, "tau2": self.tau2, "i2": self.i2, "r2": self.r2,
                "excluded": [{"study": e.study, "reason": e.reason} for e in self.excluded]}

    def _newx(self, newmods, intercept: bool | None) -> np.ndarray:
        if self._encoder is not None and (isinstance(newmods, Mapping) or hasattr(newmods, "columns")):
            data = newmods if isinstance(newmods, Mapping) or self._encoder.design_info is not None \
                else {str(c): newmods[c].to_numpy() for c in newmods.columns}
            X, _ = self._encoder.encode(data)
            return X
        x = np.asarray(newmods, dtype=float)
        add = self.intercept if intercept is None else intercept
        if x.ndim == 0:
            x = x.reshape(1, 1)
        elif x.ndim == 1:
            want = self.p - (1 if add else 0)
            x = x[:, None] if want == 1 else x[None, :]
        if add:
            x = np.column_stack([np.ones(x.shape[0]), x])
        if x.shape[1] != self.p:
            raise ValueError(f"newmods: {x.shape[1]} columns (with the intercept) do not match "
                             f"the model's {self.p} coefficients {list(self.names)}")
        return x

    def predict(self, newmods=None, *, intercept: bool | None = None) -> Prediction:
        """Predicted effects with CIs and prediction intervals (metafor ``predict.rma``).

        ``newmods``: moderator values without the intercept column (a number, a row, a 2-D
        array of rows, or for dict/DataFrame/formula models a dict or DataFrame of the original
        variables); None predicts the fitted values of the studies.
        """
        X = self.X if newmods is None else self._newx(newmods, intercept)
        pred = X @ self.beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.vb, X))
        crit = self._fit.crit if self._fit is not None else float("nan")
        # no prediction interval for a common-effect model (as metafor)
        sd = np.sqrt(se**2 + self.tau2) if self.method != "EE" else np.full(se.shape, np.nan)
        return Prediction(readonly(pred), readonly(se), readonly(pred - crit * se),
                          readonly(pred + crit * se), readonly(pred - crit * sd),
                          readonly(pred + crit * sd))

    def summary(self) -> str:
        stat = "z" if self.df is None else f"t({self.df:g})"
        lines = [f"Mixed-effects meta-regression (k = {self.k}; tau^2 estimator: {self.method}; "
                 f"test: {self.test})",
                 f"tau^2 (residual) = {self.tau2:.4f} (SE = {self.se_tau2:.4f}); I^2 = "
                 f"{self.i2:.2f}%; H^2 = {self.h2:.2f}; R^2 = {self.r2:.2f}%",
                 f"QE({self.qe_df}) = {self.qe:.4f}, p = {self.qe_pvalue:.4g}",
                 (f"QM({self.qm_df}) = {self.qm:.4f}, p = {self.qm_pvalue:.4g}" if self.df is None
                  else f"F({self.qm_df}, {self.df:g}) = {self.qm:.4f}, p = {self.qm_pvalue:.4g}"),
                 f"logLik = {self.loglik:.4f}; AIC = {self.aic:.4f}; BIC = {self.bic:.4f}; "
                 f"AICc = {self.aicc:.4f}",
                 f"{'':16s} {'estimate':>10s} {'se':>9s} {stat:>9s} {'pval':>9s} {'ci.lb':>9s} {'ci.ub':>9s}"]
        for r in self.coefficients():
            lines.append(f"{r['name'][:16]:16s} {r['estimate']:10.4f} {r['se']:9.4f} "
                         f"{r['statistic']:9.4f} {r['pvalue']:9.4g} {r['ci_lb']:9.4f} {r['ci_ub']:9.4f}")
        if self.excluded:
            lines.append("left out: " + "; ".join(f"{e.study} ({e.reason})" for e in self.excluded))
        return "\n".join(lines)

    def _repr_extra(self) -> str:
        return f"p={self.p} QM={self.qm:.4f} p(QM)={self.qm_pvalue:.4g} tau2={self.tau2:.4f}"

    def plot_bubble(self, mod: int | str | None = None, ax=None, **options):
        """Bubble plot of yi against one moderator with the fitted line (see
        :func:`metamsc.plots.bubble.bubble`); returns ax."""
        from .plots.bubble import bubble

        return bubble(self, mod=mod, ax=ax, **options)

    def refit(self, keep: np.ndarray) -> "MetaRegression":
        """The same model fitted to the studies where ``keep`` is True (for influence)."""
        s = self._settings
        keep = np.asarray(keep, dtype=bool)
        return fit_design(np.asarray(self.yi)[keep], np.asarray(self.vi)[keep],
                    np.asarray(self.X)[keep], self.names, s["method"], self.test, self.level,
                    None if self.weights is None else np.asarray(self.weights)[keep],
                    self.tau2 if self.tau2_fixed else None, s["threshold"], s["maxiter"],
                    tuple(l for l, kp in zip(self.labels, keep) if kp), (), None, skip_r2=True)


# ---------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------

def _is_intercept(col: np.ndarray) -> bool:
    return bool(np.all(col == 1.0))


def fit_design(y, v, X, names, method, test, level, weights, tau2, threshold, maxiter, labels,
         excluded, encoder, skip_r2=False) -> MetaRegression:
    k, p = X.shape
    int_cols = [j for j in range(p) if _is_intercept(X[:, j])]
    int_incl = bool(int_cols)
    need = p if (method == "EE" or tau2 is not None) else p + 1
    if k < need:
        raise ValueError(f"k = {k} studies cannot estimate {p} coefficients"
                         + ("" if need == p else " and a residual variance"))
    if np.linalg.matrix_rank(X) < p:
        raise ValueError(f"mods: the model matrix ({', '.join(names)}) is not of full rank "
                         "(a moderator is constant or a linear combination of others)")
    fit = fit_model(y, v, X, method=method, test=test, level=level, weights=weights, tau2=tau2,
                    threshold=threshold, maxiter=maxiter)
    btt = tuple(j for j in range(p) if j not in int_cols) if int_incl else tuple(range(p))
    if not btt:
        btt = tuple(range(p))
    qm, qm_df, _, qm_p = fit.wald(btt)
    reml = method == "REML"
    stats = fit.fit_stats(reml)
    r2 = float("nan")
    if int_incl and p > 1 and not skip_r2:
        r2 = _pseudo_r2(y, v, X, fit, method, weights, threshold, maxiter)
    t = fit.tau2_fit
    return MetaRegression(
        method=method, test=test, level=level, k=k, p=p, names=tuple(names),
        beta=readonly(fit.beta), se=readonly(fit.se), statistic=readonly(fit.statistic),
        pvalue=readonly(fit.pvalue), ci_lb=readonly(fit.ci_lb), ci_ub=readonly(fit.ci_ub),
        vb=readonly(fit.vb), df=fit.df, qm=float(qm), qm_df=int(qm_df), qm_pvalue=float(qm_p),
        qe=fit.qe, qe_df=k - p, qe_pvalue=fit.qe_pvalue, tau2=float(fit.tau2),
        se_tau2=float(t.se), i2=fit.i2, h2=fit.h2, r2=r2, loglik=stats["loglik"],
        aic=stats["aic"], bic=stats["bic"], aicc=stats["aicc"], s2w=fit.s2w,
        converged=bool(t.converged), iterations=t.iterations, algorithm=t.algorithm,
        intercept=int_incl, btt=btt,
        tau2_fixed=tau2 is not None, yi=readonly(y), vi=readonly(v), X=readonly(X),
        labels=tuple(labels), weights=None if weights is None else readonly(weights),
        excluded=tuple(excluded),
        fit_stats={"ML": fit.fit_stats(False), "REML": fit.fit_stats(True)}, _fit=fit,
        _encoder=encoder,
        _settings={"method": method, "threshold": threshold, "maxiter": maxiter})


def _pseudo_r2(y, v, X, fit: ModelFit, method, weights, threshold, maxiter) -> float:
    """metafor's pseudo-R^2: 100 max(0, (tau2_RE - tau2) / tau2_RE), tau2_RE of the
    intercept-only model; for EE the adjusted R^2 of the weighted least-squares fit."""
    k, p = X.shape
    if method == "EE":
        if np.var(y) == 0:
            return 0.0
        a = 1.0 / v if weights is None else weights
        mu = np.sum(a * y) / np.sum(a)
        tss = np.sum(a * (y - mu) ** 2)
        rss = Projection(a, X).quad(y)
        r2 = 1 - rss / tss
        return float(max(0.0, 100 * (1 - (1 - r2) * (k - 1) / (k - p))))
    try:
        re = estimate_tau2(y, v, method, weights=weights, threshold=threshold, maxiter=maxiter).tau2
    except ValueError:
        return float("nan")
    if re == 0:
        return 0.0
    return float(max(0.0, 100 * (re - fit.tau2) / re))


@accepts_data(("yi", "vi", "weights"))
def meta_regression(yi: ArrayLike, vi: ArrayLike, mods, *, data=None, method: str = "REML",
                    test: str = "z", level: float = 0.95, intercept: bool = True,
                    labels: ArrayLike | None = None, categorical: Sequence[str] = (),
                    weights: ArrayLike | None = None, tau2: float | None = None,
                    threshold: float = 1e-12, maxiter: int = 100) -> MetaRegression:
    """Mixed-effects meta-regression of ``yi`` (sampling variances ``vi``) on ``mods``, as
    metafor's ``rma(yi, vi, mods=, method=, test=, level=, intercept=)``.

    ``mods``: a 1-D or 2-D array of numbers, a dict of named columns, a DataFrame, or a formula
    string over ``data`` (e.g. ``"ablat + C(alloc)"``, read by patsy). Text columns (and those
    named in ``categorical``) become treatment-coded dummies with the first level in sorted order
    as the reference (R's ``factor``). ``yi``/``vi`` may name columns of ``data``. ``method``: a
    tau^2 estimator (case-insensitive); ``test``: z, knha, adhoc or t. ``tau2`` fixes tau^2.
    Studies with a missing yi, vi or moderator are left out and listed in ``excluded`` (with a
    warning). ``intercept=False`` fits X as given (e.g. one dummy per subgroup).

    Parameters
    ----------
    yi, vi : array_like or str
        Effect sizes and sampling variances (or column names of ``data``).
    mods : array_like, dict, DataFrame or str
        The moderators, or a formula over ``data``.
    data : DataFrame or dict, optional
        Columns for a formula or for names given as ``yi``/``vi``.
    method : str
        tau^2 estimator (default "REML").
    test : {"z", "knha", "adhoc", "t"}
        Inference for the coefficients.
    level : float
        Confidence level (default 0.95).
    intercept : bool
        Add an intercept column (default True).
    labels : array_like, optional
        Study labels.
    categorical : sequence of str
        Numeric moderators to treat as categories.
    weights : array_like, optional
        User weights.
    tau2 : float, optional
        A fixed tau^2.
    threshold, maxiter : float, int
        Convergence rule of the iterative estimators.

    Returns
    -------
    MetaRegression
        Coefficients with SEs, tests and CIs (``to_frame()``), the omnibus test ``qm``, residual
        heterogeneity ``qe``, ``tau2``, ``i2``, ``r2``, information criteria, and ``predict()``.

    References
    ----------
    Thompson SG, Sharp SJ (1999). Explaining heterogeneity in meta-analysis: a comparison of
    methods. Stat Med 18:2693-2708. Knapp G, Hartung J (2003). Stat Med 22:2693-2710 (knha).
    Raudenbush SW (2009). Analyzing effect sizes: random-effects models. In The Handbook of
    Research Synthesis and Meta-Analysis, 2nd ed. (R^2). Viechtbauer W (2010). J Stat Softw
    36(3):1-48.

    Examples
    --------
    The BCG vaccine trials (metafor's ``dat.bcg``): log risk ratio on absolute latitude.

    >>> import numpy as np
    >>> import metamsc as mm
    >>> tpos = [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27]
    >>> tneg = [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886]
    >>> cpos = [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29]
    >>> cneg = [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825]
    >>> es = mm.effect_size("RR", events1=tpos, total1=np.add(tpos, tneg),
    ...                     events2=cpos, total2=np.add(cpos, cneg))
    >>> ablat = [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33]
    >>> reg = mm.meta_regression(es.yi, es.vi, {"ablat": ablat}, method="REML")
    >>> print(reg.to_frame()[["name", "estimate", "se"]].round(4).to_string(index=False))
       name  estimate     se
    intrcpt    0.2515 0.2491
      ablat   -0.0291 0.0072
    >>> print(f"tau^2 = {reg.tau2:.4f}, R^2 = {reg.r2:.2f}%")
    tau^2 = 0.0763, R^2 = 75.63%
    """
    method = canonical_method(method)
    test = canonical_test(test)
    level = check_level(level)
    if isinstance(yi, str) or isinstance(vi, str):
        if data is None:
            raise ValueError("yi/vi given as column names need data=")
        yi = data[yi] if isinstance(yi, str) else yi
        vi = data[vi] if isinstance(vi, str) else vi
    y = np.atleast_1d(np.asarray(yi, dtype=float))
    v = np.atleast_1d(np.asarray(vi, dtype=float))
    if y.ndim != 1 or y.shape != v.shape:
        raise ValueError("yi and vi must be one-dimensional and of the same length")
    k_all = y.size
    labs = (tuple(str(i + 1) for i in range(k_all)) if labels is None
            else tuple(str(x) for x in np.atleast_1d(labels)))
    if len(labs) != k_all:
        raise ValueError("labels must have one entry per study")
    if isinstance(mods, str):
        import pandas as pd

        if data is None:
            raise ValueError("mods: a formula needs data= (a DataFrame or a dict of columns)")
        frame = pd.DataFrame(dict(data)) if isinstance(data, Mapping) else data
        if frame is None or len(frame) != k_all:
            raise ValueError(f"data must have one row per study ({k_all})")
        bad_rows = ~np.isfinite(y) | ~np.isfinite(v) | np.asarray(frame.isna().any(axis=1))
        X, names, enc = design_matrix(mods, frame[~bad_rows], intercept=intercept,
                                      categorical=categorical)
        keep_mods = ~bad_rows
        Xfull = None
    else:
        Xfull, names, enc = design_matrix(mods, data, intercept=intercept, categorical=categorical)
        if Xfull.shape[0] != k_all:
            raise ValueError(f"mods has {Xfull.shape[0]} rows; yi has {k_all} studies")
        keep_mods = np.all(np.isfinite(Xfull), axis=1)
    a_all = None
    if weights is not None:
        from .core import check_weights

        a_all = check_weights(weights, k_all, labs)
    excluded = []
    ok = np.isfinite(y) & np.isfinite(v) & keep_mods
    zero_ok = method not in POSITIVE_VI_ONLY + ("EE",) or (tau2 is not None and tau2 > 0)
    with np.errstate(invalid="ignore"):
        bad_v = ok & ((v < 0) | ((v == 0) & (not zero_ok)))
    for i in np.flatnonzero(~ok | bad_v):  # only the studies left out: O(k) vectorised checks
        if not np.isfinite(y[i]):
            excluded.append(Excluded(labs[i], "yi is missing or not finite"))
        elif not np.isfinite(v[i]):
            excluded.append(Excluded(labs[i], "vi is missing or not finite"))
        elif not keep_mods[i]:
            excluded.append(Excluded(labs[i], "a moderator is missing"))
        else:
            excluded.append(Excluded(labs[i], f"sampling variance vi = {v[i]:g} is not positive"))
    ok &= ~bad_v
    if excluded:
        warnings.warn("meta_regression: studies left out: "
                      + "; ".join(f"{e.study} ({e.reason})" for e in excluded), stacklevel=2)
    X = X if Xfull is None else Xfull[ok]
    if Xfull is None and not np.all(ok[keep_mods]):
        X = X[ok[keep_mods]]
    y, v = y[ok], v[ok]
    a = None if a_all is None else a_all[ok]
    labs_ok = labs if ok.all() else tuple(l for l, kp in zip(labs, ok) if kp)
    if y.size == 0:
        raise ValueError("no study left for the meta-regression")
    return fit_design(y, v, X, names, method, test, level, a, tau2, threshold, maxiter, labs_ok,
                excluded, enc)


# ---------------------------------------------------------------------------------------------
# model comparison
# ---------------------------------------------------------------------------------------------

@explained
@dataclass(frozen=True)
class AnovaResult:
    """A likelihood-ratio test of two nested models (``kind="LRT"``: ``lrt``, ``df``, ``pvalue``,
    ``r2`` the proportional reduction of tau^2 in percent) or a Wald test of coefficients
    (``kind="Wald"``: ``statistic`` chi^2 or F, ``df`` (and ``df2`` for F), ``pvalue``)."""

    kind: str
    statistic: float
    df: int
    pvalue: float
    df2: float | None = None
    btt: tuple[int, ...] = ()
    names: tuple[str, ...] = ()
    loglik_full: float = float("nan")
    loglik_reduced: float = float("nan")
    aic_full: float = float("nan")
    aic_reduced: float = float("nan")
    tau2_full: float = float("nan")
    tau2_reduced: float = float("nan")
    r2: float = float("nan")

    @property
    def lrt(self) -> float:
        return self.statistic

    def _repr_extra(self) -> str:
        return f"{self.kind} statistic={self.statistic:.4f} df={self.df} p={self.pvalue:.4g}"

    def to_frame(self):
        """A one-row pandas DataFrame of the test."""
        return record_frame(self, ("kind", "statistic", "df", "df2", "pvalue", "r2"))

    def summary(self) -> str:
        if self.kind == "LRT":
            return (f"Likelihood-ratio test: LRT = {self.statistic:.4f}, df = {self.df}, "
                    f"p = {self.pvalue:.4g} (logLik full {self.loglik_full:.4f}, reduced "
                    f"{self.loglik_reduced:.4f}; R^2 = {self.r2:.2f}%)")
        what = ", ".join(self.names)
        if self.df2 is None:
            return f"Wald test of {what}: QM({self.df}) = {self.statistic:.4f}, p = {self.pvalue:.4g}"
        return (f"Wald test of {what}: F({self.df}, {self.df2:g}) = {self.statistic:.4f}, "
                f"p = {self.pvalue:.4g}")


def as_regression(fit) -> MetaRegression:
    if isinstance(fit, MetaRegression):
        return fit
    from .results import MetaResult

    if isinstance(fit, MetaResult) and fit.method in TAU2_METHODS and fit.method not in USER_WEIGHTED:
        return fit_design(np.asarray(fit.yi), np.asarray(fit.vi), np.ones((fit.k, 1)), ("intrcpt",),
                    fit.method, fit.test, fit.level, None, None, 1e-12, 100, fit.labels, (), None)
    raise TypeError("needs a meta_regression() fit or an inverse-variance pool() fit (not GENQ/GENQM, "
                    f"Mantel-Haenszel, Peto or GLMM), not {type(fit).__name__}"
                    + (f" with method {fit.method}" if hasattr(fit, "method") else ""))


def anova(full, reduced=None, *, btt: Sequence[int | str] | None = None) -> AnovaResult:
    """Compare two nested models by a likelihood-ratio test (metafor ``anova(full, reduced)``)
    or test coefficients ``btt`` (indices or names) of one model by a Wald test.

    As metafor, the model with more parameters is taken as the full model; the models must be
    fitted to the same yi and vi with ML or REML (or both EE); REML fits are compared only when
    their fixed effects (X) are identical (refit both with method="ML" otherwise).

    Parameters
    ----------
    full : MetaRegression or MetaResult
        A fitted model.
    reduced : MetaRegression or MetaResult, optional
        A nested model, for the likelihood-ratio test.
    btt : sequence of int or str, optional
        Coefficients of ``full`` for the Wald test.

    Returns
    -------
    AnovaResult
        The test statistic (``lrt`` or ``qm``), degrees of freedom and p-value.

    References
    ----------
    Viechtbauer W (2010). J Stat Softw 36(3):1-48. Raudenbush SW (2009), in The Handbook of
    Research Synthesis and Meta-Analysis, 2nd ed.

    Examples
    --------
    >>> import numpy as np
    >>> import metamsc as mm
    >>> tpos = [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27]
    >>> tneg = [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886]
    >>> cpos = [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29]
    >>> cneg = [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825]
    >>> es = mm.effect_size("RR", events1=tpos, total1=np.add(tpos, tneg),
    ...                     events2=cpos, total2=np.add(cpos, cneg))
    >>> ablat = [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33]
    >>> full = mm.meta_regression(es.yi, es.vi, {"ablat": ablat}, method="ML")
    >>> lrt = mm.anova(full, mm.pool(es.yi, es.vi, method="ML"))
    >>> print(f"LRT = {lrt.lrt:.4f}, p = {lrt.pvalue:.4f}")
    LRT = 9.9588, p = 0.0016
    """
    f = as_regression(full)
    if reduced is None:
        if btt is None:
            idx = f.btt
        else:
            idx = tuple(f.names.index(b) if isinstance(b, str) else int(b) for b in btt)
            if any(not 0 <= j < f.p for j in idx):
                raise ValueError(f"btt: indices must lie in 0..{f.p - 1}")
        stat, m, df2, p = f._fit.wald(idx)
        return AnovaResult("Wald", float(stat), int(m), float(p), df2, tuple(idx),
                           tuple(f.names[j] for j in idx))
    if btt is not None:
        raise ValueError("btt: give either a reduced model or btt, not both")
    r = as_regression(reduced)
    pf, pr = f._fit.parms, r._fit.parms
    if pf == pr:
        raise ValueError("the models have the same number of parameters; an LRT is not meaningful")
    if pf < pr:
        f, r = r, f
    if not (f.yi.shape == r.yi.shape and np.array_equal(f.yi, r.yi) and np.array_equal(f.vi, r.vi)):
        raise ValueError("the full and the reduced model are not fitted to the same yi and vi")
    methods = {f.method, r.method}
    if "EE" in {f.method} and r.method != "EE":
        raise ValueError("the full model is a common-effect and the reduced a random-effects model")
    if methods == {"ML", "REML"}:
        raise ValueError("one model uses ML and the other REML; fit both with the same method")
    if not methods <= {"ML", "REML", "EE"}:
        raise ValueError(f"likelihood-ratio tests need ML or REML fits, not {sorted(methods)}")
    reml = "REML" in methods
    if reml and not (f.X.shape == r.X.shape and np.array_equal(f.X, r.X)):
        raise ValueError("REML likelihoods of models with different fixed effects are not "
                         "comparable (metafor warns the same); refit both with method='ML'")
    key = "REML" if reml else "ML"
    llf, llr = f.fit_stats[key]["loglik"], r.fit_stats[key]["loglik"]
    lrt = max(0.0, 2 * (llf - llr))
    df = f._fit.parms - r._fit.parms
    r2 = 0.0 if r.tau2 == 0 else 100 * max(0.0, (r.tau2 - f.tau2) / r.tau2)
    return AnovaResult("LRT", float(lrt), int(df), float(chi2_sf(lrt, df)), None, (), (),
                       llf, llr, f.fit_stats[key]["aic"], r.fit_stats[key]["aic"], f.tau2, r.tau2,
                       float(r2))
