"""Case-deletion influence diagnostics of a (meta-regression or random-effects) model, as
metafor's ``influence()`` (Viechtbauer & Cheung 2010, Res Synth Methods 1:112).

For each study i the same model is refitted without it (k refits of O(k p^2) each; no k x k
matrix): externally standardised residual (rstudent), DFFITS, Cook's distance, covariance ratio,
DFBETAS, tau^2 and QE with the study deleted; hat values and weights (percent) of the full
model; and the coordinates of the Baujat plot (Baujat et al. 2002, Stat Med 21:2641), as
metafor's ``baujat()``: x = (y_i - x_i'b)^2 / (tau^2 + v_i), the study's contribution to the
heterogeneity, and y = (x_i'b_(-i) - x_i'b)^2 / Var(x_i'b_(-i)), its influence on the fit. A study is flagged as influential, as metafor, when |DFFITS| > 3 sqrt(p / (k - p)), the
chi^2_p probability of its Cook's distance exceeds 0.5, its hat value exceeds 3 p / k, or any
|DFBETAS| > 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._dist import chi2_sf
from ._present import explained
from ._util import readonly
from .tau2 import inv_spd, cross_weighted

__all__ = ["Influence", "influence"]


@explained
@dataclass(frozen=True)
class Influence:
    """Influence diagnostics, one entry per study (see the module docstring)."""

    labels: tuple[str, ...]
    rstudent: np.ndarray
    dffits: np.ndarray
    cooks_distance: np.ndarray
    cov_ratio: np.ndarray
    tau2_deleted: np.ndarray
    qe_deleted: np.ndarray
    hat: np.ndarray
    weight: np.ndarray
    dfbetas: np.ndarray = field(repr=False)
    names: tuple[str, ...] = field(repr=False, default=())
    influential: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    yi: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    vi: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    qe: float = float("nan")
    baujat_x: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    baujat_y: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.labels)

    def _repr_extra(self) -> str:
        return f"influential={int(np.sum(self.influential))}"

    def summary(self) -> str:
        """The influence diagnostics as text, one row per study (* marks an influential one)."""
        return ("Influence diagnostics (Viechtbauer & Cheung 2010)\n"
                + self.to_frame().to_string(index=False, float_format=lambda x: f"{x:.4f}"))

    def to_frame(self):
        """Columns study rstudent dffits cooks_distance cov_ratio tau2_deleted qe_deleted hat
        weight influential (weights in percent, as metafor)."""
        import pandas as pd

        cols = ("rstudent", "dffits", "cooks_distance", "cov_ratio", "tau2_deleted",
                "qe_deleted", "hat", "weight", "influential")
        df = pd.DataFrame({c: np.asarray(getattr(self, c)) for c in cols})
        df.insert(0, "study", list(self.labels))
        return df

    def plot(self, axes=None, **options):
        """The eight-panel influence plot (see :func:`metamsc.plots.influence.influence_plot`);
        returns the axes."""
        from .plots.influence import influence_plot

        return influence_plot(self, axes=axes, **options)

    def plot_baujat(self, ax=None, **options):
        """Baujat plot of this model (see :func:`metamsc.plots.baujat.baujat`); returns ax."""
        from .plots.baujat import baujat

        return baujat(self, ax=ax, **options)


def influence(result) -> Influence:
    """Influence diagnostics of ``result``: a :func:`metamsc.meta_regression` fit or an
    inverse-variance :func:`metamsc.pool` fit (refitted as the intercept-only model with the same
    estimator, test and level).

    Parameters
    ----------
    result : MetaRegression or MetaResult
        An inverse-variance fit.

    Returns
    -------
    Influence
        Per study: ``rstudent``, ``dffits``, ``cooks_distance``, ``cov_ratio``, ``tau2_deleted``,
        ``qe_deleted``, ``hat``, ``weight``, ``dfbetas``, the ``influential`` flags and the Baujat
        coordinates; ``plot()`` and ``plot_baujat()`` draw them.

    References
    ----------
    Viechtbauer W, Cheung MWL (2010). Outlier and influence diagnostics for meta-analysis. Res
    Synth Methods 1:112-125. Baujat B, Mahe C, Pignon JP, Hill C (2002). Stat Med 21:2641-2652.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> inf = mm.influence(mm.pool(yi, vi))
    >>> inf.cooks_distance.round(4)
    array([0.0058, 0.1581, 0.0188, 0.3943, 0.5709, 0.0861])
    """
    from .metareg import MetaRegression, as_regression

    fit = as_regression(result)
    assert isinstance(fit, MetaRegression)
    y, v, X = np.asarray(fit.yi), np.asarray(fit.vi), np.asarray(fit.X)
    k, p = X.shape
    if k - 1 <= p - (1 if fit.tau2_fixed or fit.method == "EE" else 0):
        raise ValueError(f"influence needs more studies than parameters after a deletion (k = {k}, "
                         f"p = {p})")
    beta = np.asarray(fit.beta)
    vb = np.asarray(fit.vb)
    m = fit._fit
    w = m.w
    # hat values of the full model: h_i = w_i x_i' (X'WX)^-1 x_i
    M = np.asarray(m.vb_model) if fit.weights is None else inv_spd(cross_weighted(X, w))
    hat = w * np.einsum("ij,jk,ik->i", X, M, X)
    weight = 100 * (w if fit.weights is None else fit.weights) / np.sum(
        w if fit.weights is None else fit.weights)
    svb = inv_spd(vb)
    det_full = np.linalg.det(vb)
    pred_full = X @ beta
    nan = np.full(k, np.nan)
    tau2_del, qe_del, delpred, vdelpred, s2w_del = nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy()
    dffits, cook, covr = nan.copy(), nan.copy(), nan.copy()
    dfbs = np.full((k, p), np.nan)
    keep = np.ones(k, dtype=bool)
    for i in range(k):
        keep[i] = False
        try:
            r = fit.refit(keep)
        except ValueError:
            keep[i] = True
            continue
        keep[i] = True
        tau2_del[i] = r.tau2
        qe_del[i] = r.qe
        xi = X[i]
        b_del = np.asarray(r.beta)
        vb_del_r = np.asarray(r.vb)
        delpred[i] = xi @ b_del
        vdelpred[i] = xi @ vb_del_r @ xi
        s2w_del[i] = r.s2w
        dffits[i] = (pred_full[i] - delpred[i]) / np.sqrt(r.s2w * hat[i] * (tau2_del[i] + v[i]))
        if fit.weights is None:
            vb_del = inv_spd(cross_weighted(X, 1.0 / (v + tau2_del[i])))
        else:
            Ma = inv_spd(cross_weighted(X, fit.weights))
            vb_del = Ma @ cross_weighted(X, fit.weights**2 * (v + tau2_del[i])) @ Ma
        dfb = beta - b_del
        dfbs[i] = dfb / np.sqrt(r.s2w * np.diag(vb_del))
        cook[i] = dfb @ svb @ dfb
        covr[i] = np.linalg.det(vb_del_r) / det_full
    resid = y - delpred
    resid[np.abs(resid) < 100 * np.finfo(float).eps] = 0.0
    seresid = np.sqrt(v * s2w_del + vdelpred + tau2_del * s2w_del)
    rstudent = resid / seresid
    bx = (y - pred_full) ** 2 / (fit.tau2 + v)
    by = (delpred - pred_full) ** 2 / vdelpred
    with np.errstate(invalid="ignore"):
        infl = ((np.abs(dffits) > 3 * np.sqrt(p / (k - p))) | (1 - chi2_sf(cook, p) > 0.5)
                | (hat > 3 * p / k) | np.any(np.abs(dfbs) > 1, axis=1))
    infl = infl & np.isfinite(dffits)
    flags = np.array(infl, dtype=bool)
    flags.flags.writeable = False
    return Influence(tuple(fit.labels) if fit.labels else tuple(str(i + 1) for i in range(k)),
                     readonly(rstudent), readonly(dffits), readonly(cook), readonly(covr),
                     readonly(tau2_del), readonly(qe_del), readonly(hat), readonly(weight),
                     readonly(dfbs), tuple(fit.names), flags, readonly(y), readonly(v),
                     float(fit.qe), readonly(bx), readonly(by))
