"""Common- and random-effects pooling with z, Knapp-Hartung and t inference.

The model and its inference follow Viechtbauer W. (2010) J Stat Softw 36(3):
inverse-variance weights w_i = 1/(v_i + tau^2), mu = sum w y / sum w,
Var(mu) = 1 / sum w. Knapp & Hartung (2003) Stat Med 22:2693 scale Var(mu)
by s^2 = sum w (y - mu)^2 / (k - 1) and use t(k - 1) ("knha"); the ad hoc
variant truncates s^2 at 1 (Knapp & Hartung 2003; "adhoc"). I^2 and H^2 use
the typical within-study variance v~ = (k - 1) / tr(P) (Higgins & Thompson
2002, Stat Med 21:1539).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._dist import chi2_sf, norm_isf, norm_sf, t_isf, t_sf
from ._util import check_level, readonly, study_arrays
from . import transforms
from .effects import NATURAL_SCALE, EffectSizes, effect_size
from .results import (I2_DEFINITIONS, PI_RULES, Conventions, Diagnostics, Excluded, MetaResult,
                      NaturalScale, prediction_bounds)
from .core import TESTS, canonical_test, fit_model
from .tau2 import _ALIASES, POSITIVE_VI_ONLY, TAU2_METHODS, canonical_method, q_profile_ci

__all__ = ["pool", "pool_effects", "pool_proportions", "TESTS", "METHODS"]

METHODS = TAU2_METHODS + tuple(_ALIASES)

_TRANSFORM_NAMES = {
    "PLO": "inverse logit",
    "PLN": "exp",
    "IRLN": "exp",
    "RR": "exp",
    "OR": "exp",
    "ROM": "exp",
    "MNLN": "exp",
    "PAS": "inverse arcsine: sin(x)^2",
    "IRS": "square",
    "PR": "identity",
    "IR": "identity",
}


def pool(yi: ArrayLike, vi: ArrayLike, *, method: str = "REML", test: str = "z",
         level: float = 0.95, measure: str = "GEN", labels: ArrayLike | None = None,
         n: ArrayLike | None = None, weights: ArrayLike | None = None,
         correction: str = "none", corrected: ArrayLike | None = None,
         pi: str = "metafor", i2: str = "tau2",
         threshold: float = 1e-12, maxiter: int = 100, tau2: float | None = None) -> MetaResult:
    """Pool effect sizes ``yi`` with sampling variances ``vi``.

    ``method`` is a tau^2 estimator (EE/FE/CE, DL, HE, HS, HSk, SJ, ML, REML,
    EB, PM, PMM, GENQ); ``test`` is ``"z"``, ``"knha"`` (Hartung-Knapp-Sidik-
    Jonkman), ``"adhoc"`` (Knapp-Hartung truncated at 1) or ``"t"``. Studies
    with a missing or non-finite yi or vi are left out and listed in
    ``excluded``. ``n`` (study sizes) enables the Freeman-Tukey back-transform.
    ``pi`` picks the prediction-interval rule (``results.PI_RULES``: metafor's
    default, metafor's "simple", "t", "riley", or meta's "HTS" and "HK" forms); ``i2`` the I^2
    definition ("tau2" as metafor, "Q" as meta). ``tau2`` fixes the between-study variance.
    Method and test names are case-insensitive. Zero sampling variances are kept for the
    estimators that metafor allows them with (HE, SJ, ML, REML, EB, GENQ; then Q and I^2 are not
    defined); negative ones are left out and listed. Weights must be positive and finite.
    """
    method = canonical_method(method)
    test = canonical_test(test)
    level = check_level(level)
    if pi not in PI_RULES:
        raise ValueError(f"unknown prediction-interval rule {pi!r}; expected one of {', '.join(PI_RULES)}")
    if i2 not in I2_DEFINITIONS:
        raise ValueError(f"unknown I^2 definition {i2!r}; expected one of {', '.join(I2_DEFINITIONS)}")
    y_all, v_all, lab_all, _ = study_arrays(yi, vi, labels)
    n_all = None if n is None else np.atleast_1d(np.asarray(n, dtype=float))
    a_all = None if weights is None else _check_weights(weights, y_all.size, lab_all)
    c_all = None if corrected is None else np.atleast_1d(np.asarray(corrected, dtype=bool))

    ok = np.isfinite(y_all) & np.isfinite(v_all)
    excluded = []
    for i in np.flatnonzero(~ok):
        what, val = ("yi", y_all[i]) if not np.isfinite(y_all[i]) else ("vi", v_all[i])
        why = ("missing" if np.isnan(val) else
               f"{val:g}: not finite (a zero cell without continuity correction?)")
        excluded.append(Excluded(lab_all[i], f"{what} is {why}"))
    # zero sampling variances: kept where metafor keeps them (estimators that give tau^2 > 0)
    zero_ok = method not in POSITIVE_VI_ONLY + ("EE",) or tau2 is not None and tau2 > 0
    neg = ok & ((v_all < 0) | ((v_all == 0) & (not zero_ok)))
    for i in np.flatnonzero(neg):
        excluded.append(Excluded(lab_all[i], f"sampling variance vi = {v_all[i]:g} is not positive"
                                 + ("" if v_all[i] < 0 else f" (the {method} model needs vi > 0)")))
    ok &= ~neg
    y, v = y_all[ok], v_all[ok]
    labs = lab_all if ok.all() else tuple(l for l, keep in zip(lab_all, ok) if keep)
    n_ = None if n_all is None else n_all[ok]
    a = None if a_all is None else a_all[ok]
    k = int(y.size)
    if k == 0:
        raise ValueError("no study left to pool")
    if method == "GENQ" and a is None:
        raise ValueError("method GENQ needs study weights (weights=...), as metafor")
    _check_range(y, v)
    warns = []
    if k == 1 and test != "z":  # as metafor: a t distribution with 0 df is no test
        warns.append(f"k = 1: test set to 'z' (was {test!r}), as metafor does")
        test = "z"

    X = np.ones((k, 1))
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            m = fit_model(y, v, X, method=method, test=test, level=level, weights=a, tau2=tau2,
                          i2=i2, threshold=threshold, maxiter=maxiter)
    except (FloatingPointError, ZeroDivisionError) as e:
        raise ValueError(f"yi/vi: the model cannot be computed in double precision ({e}); "
                         f"yi spans {np.min(y):g} to {np.max(y):g} and vi {np.min(v):g} to "
                         f"{np.max(v):g}: rescale the data") from None
    fit = m.tau2_fit
    tau2 = m.tau2
    w = m.w
    mu = float(m.beta[0])
    se = float(m.se[0])
    se_model = float(np.sqrt(m.vb_model[0, 0]))
    s2w, s2w_knha = m.s2w, m.s2w_knha
    vb = se**2
    statistic = float(m.statistic[0])
    pvalue = float(m.pvalue[0])
    df = m.df
    ci_lb, ci_ub = float(m.ci_lb[0]), float(m.ci_ub[0])
    pi_se = float(np.sqrt(vb + tau2))
    if method == "EE":  # no prediction interval for a common-effect model (as metafor)
        pi_lb = pi_ub = float("nan")
    else:
        pi_lb, pi_ub = prediction_bounds(mu, se, se_model, s2w_knha, tau2, k, test, level, pi)
    q, q_p, vt, i2_val, h2 = m.qe, m.qe_pvalue, m.vt, m.i2, m.h2

    nan = float("nan")
    t_lb = t_ub = i_lb = i_ub = h_lb = h_ub = nan
    if method != "EE" and k > 1 and m.tau2_fixed is False:
        t_lb, t_ub = q_profile_ci(y, v, level, tau2_hat=tau2)
        if i2 == "tau2" and np.isfinite(vt):
            i_lb, i_ub = (100 * t / (vt + t) for t in (t_lb, t_ub))
            h_lb, h_ub = (1 + t / vt for t in (t_lb, t_ub))

    wts = a if a is not None else w
    wts = 100 * wts / np.sum(wts)

    natural = None
    transform = "none"
    if measure == "PFT":
        if n_ is not None:
            nhm = transforms.harmonic_mean(n_)
            transform = f"Miller (1978) inverse Freeman-Tukey, harmonic mean n = {nhm:.4f}"
    elif measure in _TRANSFORM_NAMES:
        transform = _TRANSFORM_NAMES[measure]
    if measure in NATURAL_SCALE and (measure != "PFT" or n_ is not None):
        vals = transforms.back_transform(measure, np.array([mu, ci_lb, ci_ub, pi_lb, pi_ub]), n_,
                                         harmonic=True)
        lo_ci, hi_ci = sorted(vals[1:3])
        lo_pi, hi_pi = sorted(vals[3:5])
        natural = NaturalScale(NATURAL_SCALE[measure], float(vals[0]), float(lo_ci), float(hi_ci),
                               float(lo_pi), float(hi_pi), transform)

    messages = tuple(m for m in (fit.message,) if m)
    if method == "EE" and test in ("knha", "adhoc"):
        warns.append("Knapp-Hartung inference is not meant for a common-effect model")
    if k == 1:
        warns.append("k = 1: no heterogeneity can be estimated")
        if test != "z":
            warns.append(f"k = 1: {test} inference has 0 degrees of freedom; no CI or p-value")
    conventions = Conventions(
        tau2_estimator=method, test=test, correction=correction, back_transform=transform,
        i2_definition=I2_DEFINITIONS["Q" if method == "EE" else i2],
        prediction_interval="none (common-effect model)" if method == "EE" else PI_RULES[pi],
        tau2_ci="none (common-effect model)" if method == "EE" else "Q-profile (Viechtbauer 2007)",
    )
    diagnostics = Diagnostics(fit.converged, fit.iterations, fit.at_boundary, fit.algorithm, messages)
    return MetaResult(
        measure=measure, method=method, test=test, level=level, k=k, estimate=mu, se=se,
        statistic=float(statistic), pvalue=pvalue, ci_lb=float(ci_lb), ci_ub=float(ci_ub), df=df,
        tau2=float(tau2), se_tau2=float(fit.se), tau2_ci_lb=float(t_lb), tau2_ci_ub=float(t_ub),
        i2=float(i2_val), i2_ci_lb=float(i_lb), i2_ci_ub=float(i_ub), h2=float(h2),
        h2_ci_lb=float(h_lb), h2_ci_ub=float(h_ub), q=q, q_df=k - 1, q_pvalue=q_p,
        pi_lb=float(pi_lb), pi_ub=float(pi_ub), pi_se=pi_se, vt=vt, s2w=float(s2w), s2w_knha=s2w_knha, se_model=se_model,
        labels=labs, yi=readonly(y), vi=readonly(v), weights=readonly(wts), n=None if n_ is None else readonly(n_),
        conventions=conventions, diagnostics=diagnostics, excluded=tuple(excluded),
        natural=natural, warnings=tuple(warns),
        corrected=None if c_all is None else c_all[ok],
        kept=np.flatnonzero(ok),
    )


def _check_weights(weights: ArrayLike, k: int, labels: tuple[str, ...]) -> np.ndarray:
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


def _check_range(y: np.ndarray, v: np.ndarray) -> None:
    """Refuse data whose inverse-variance weights cannot be computed in double precision."""
    pos = v[v > 0]
    if pos.size and np.log(np.max(pos)) - np.log(np.min(pos)) > -np.log(np.finfo(float).eps):
        raise ValueError(f"vi: the sampling variances range from {np.min(pos):g} to "
                         f"{np.max(pos):g}, more than 1/machine epsilon apart; the "
                         "inverse-variance weights cannot be computed accurately (rescale or "
                         "check the data)")


def _correction_text(es: EffectSizes) -> str:
    if es.corrected is None or not np.any(es.corrected):
        return "none needed" if es.add else "none"
    return (f"{es.add:g} added to the cells of {int(np.sum(es.corrected))} of {es.k} studies "
            f"(to = {es.to})")


def pool_effects(es: EffectSizes, **kwargs) -> MetaResult:
    """Pool an :class:`EffectSizes` (keeps its measure, labels, n and correction)."""
    return pool(es.yi, es.vi, measure=es.measure, labels=es.labels, n=es.n,
                correction=_correction_text(es), corrected=es.corrected, **kwargs)


def pool_proportions(events: ArrayLike, total: ArrayLike, *, measure: str = "PLO",
                     method: str = "REML", test: str = "z", level: float = 0.95,
                     labels: ArrayLike | None = None, add: float | None = None,
                     to: str = "only0", **kwargs) -> MetaResult:
    """Pool single proportions events/total on the scale of ``measure`` (PR PLN PLO PAS PFT).

    The result carries the back-transformed pooled proportion in ``natural``
    (Freeman-Tukey by Miller's harmonic-mean inverse, as metafor's ``transf.ipft.hm``).
    """
    if measure not in ("PR", "PLN", "PLO", "PAS", "PFT"):
        raise ValueError(f"measure {measure!r} is not a proportion measure (PR PLN PLO PAS PFT)")
    es = effect_size(measure, events=events, total=total, labels=labels, add=add, to=to)
    return pool_effects(es, method=method, test=test, level=level, **kwargs)
