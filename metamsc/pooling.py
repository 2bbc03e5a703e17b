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

import collections
import dataclasses
import functools
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._dist import chi2_sf, norm_isf, norm_sf, t_isf, t_sf
from ._util import check_level, frozen_instance, readonly, study_inputs
from . import transforms
from .effects import EffectSizes, effect_size
from .frames import accepts_data
from .hetci import TAU2_CI_METHODS
from .measures import REGISTRY, get_measure
from .results import (I2_DEFINITIONS, PI_RULES, Conventions, Deferred, Diagnostics, Excluded,
                      IVSettings, MetaResult, NaturalScale, prediction_bounds)
from .core import TESTS, canonical_test, check_weights, fit_model
from .tau2 import (METHOD_ALIASES, POSITIVE_VI_ONLY, TAU2_METHODS, USER_WEIGHTED, canonical_method,
                   q_profile_ci, row_sum)

__all__ = ["pool", "pool_effects", "pool_proportions", "TESTS", "METHODS"]

METHODS = TAU2_METHODS + tuple(METHOD_ALIASES)
_min, _max, _all = np.minimum.reduce, np.maximum.reduce, np.logical_and.reduce  # no wrappers

#: the tau^2 CI methods in words (``Conventions.tau2_ci``)
_TAU2_CI_NAMES = {"QP": "Q-profile (Viechtbauer 2007)", "PL": "profile likelihood (Hardy & Thompson 1996)",
                  "GENQ": "generalised Q-profile (Jackson 2013)", "J": "Jackson (2013), weights 1/sqrt(vi)",
                  "Wald": "Wald", "Wald.log": "Wald on log(tau^2)", "Wald.sqrt": "Wald on tau"}


# --- the public wrapper of pool(): names in any case, settings for refit, subgroups ----------

_POOL_ARGS = ("method", "test", "level", "measure", "n", "weights", "correction", "corrected", "pi",
              "i2", "threshold", "maxiter")


def _canonical(value: Any, names) -> Any:
    """``value`` spelled as in ``names`` when it matches one of them in any case."""
    if isinstance(value, str) and value not in names:
        for name in names:
            if value.lower() == name.lower():
                return name
    return value


_NAMED_ARGS = (("method", METHODS), ("test", TESTS), ("pi", tuple(PI_RULES)),
               ("i2", tuple(I2_DEFINITIONS)))


def _recorded(body):
    """Wrap ``pool``'s body: names of methods, tests, rules and measures in any case; the result
    records its settings (for ``refit``); ``subgroup=`` adds the subgroup analysis."""

    @functools.wraps(body)
    def wrapper(yi, vi, *, subgroup=None, tau2_common: bool | str = False, **kwargs):
        for key, names in _NAMED_ARGS:
            if key in kwargs and kwargs[key] not in names:
                kwargs[key] = _canonical(kwargs[key], names)
        if isinstance(kwargs.get("measure"), str):
            kwargs["measure"] = kwargs["measure"].upper()
        if subgroup is not None:
            n_in = np.atleast_1d(np.asarray(yi)).shape[0] if np.ndim(yi) <= 1 else None
            if n_in is not None and np.atleast_1d(subgroup).shape[0] != n_in:
                raise ValueError(f"subgroup must have one label per study "
                                 f"({np.atleast_1d(subgroup).shape[0]} labels for {n_in} studies)")
        res = body(yi, vi, **kwargs)
        if kwargs.get("weights") is None:  # nothing the caller could change later: on first read
            _record(res, Deferred(functools.partial(_settings_field, kwargs)))
        else:
            _record(res, _settings(kwargs, res))
        return _attach_subgroups(res, subgroup, tau2_common)

    import inspect

    sig = inspect.signature(body)
    extra = [inspect.Parameter("subgroup", inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation="ArrayLike | None"),
             inspect.Parameter("tau2_common", inspect.Parameter.KEYWORD_ONLY, default=False,
                               annotation="bool | str")]
    wrapper.__signature__ = sig.replace(parameters=list(sig.parameters.values()) + extra)
    wrapper.__doc__ = (body.__doc__ or "") + """
    ``subgroup`` (a label per study) adds the same model fitted in each subgroup
    (``result.subgroups``, an ordered mapping) and the test for subgroup differences
    (``result.subgroup_test``); ``tau2_common=True`` gives the subgroups one common tau^2
    (metafor's meta-regression; ``tau2_common="meta"``: meta's ``tau.common = TRUE``, each
    subgroup pooled alone with it; see :func:`metamsc.subgroups.subgroup_analysis`). Names of methods, tests, rules and
    measures are case-insensitive. ``result.refit(subset)`` repeats the fit on a subset.
    """
    return wrapper


@functools.lru_cache(maxsize=256)
def _conventions(method: str, test: str, correction: str, transform: str, i2: str, pi: str,
                 tau2_ci: str) -> Conventions:
    """The conventions of a fit (immutable, so one instance per combination)."""
    ee = method == "EE"
    return Conventions(
        tau2_estimator=method, test=test, correction=correction, back_transform=transform,
        i2_definition=I2_DEFINITIONS["Q" if ee else i2],
        prediction_interval="none (common-effect model)" if ee else PI_RULES[pi],
        tau2_ci="none (common-effect model)" if ee else _TAU2_CI_NAMES.get(tau2_ci, tau2_ci))


def _record(res: MetaResult, settings: IVSettings | Deferred) -> None:
    """Store the settings in a result just built here and not yet returned to anyone (as a
    frozen dataclass's __post_init__ would; dataclasses.replace costs ~75 us for 50 fields)."""
    object.__setattr__(res, "settings", settings)


def _settings(kwargs: dict[str, Any], res: MetaResult, add=None, to=None) -> IVSettings:
    w = kwargs.get("weights")
    if w is not None:
        kept = np.arange(res.k) if res.kept is None else res.kept
        w = np.atleast_1d(np.asarray(w, dtype=float))[kept]
        w.flags.writeable = False
    other = tuple((k, v) for k, v in kwargs.items() if k not in _POOL_ARGS and k != "labels")
    return frozen_instance(IVSettings, {
        "pi": kwargs.get("pi", "metafor"), "i2": kwargs.get("i2", "tau2"),
        "threshold": kwargs.get("threshold", 1e-12), "maxiter": kwargs.get("maxiter", 100),
        "user_weights": w, "add": add, "to": to, "other": other})


def _settings_field(kwargs: dict[str, Any]) -> dict[str, IVSettings]:
    """The settings of a fit without user weights (the only use of the result in
    :func:`_settings`), for the :class:`Deferred` that computes them on first read."""
    return {"settings": _settings(kwargs, None)}


def _attach_subgroups(res: MetaResult, subgroup, tau2_common: bool) -> MetaResult:
    if subgroup is None:
        if tau2_common:
            raise ValueError("tau2_common=True needs subgroup= (a subgroup label per study)")
        return res
    from .subgroups import subgroup_analysis

    return subgroup_analysis(res, subgroup, tau2_common=tau2_common).attach()


@accepts_data(("yi", "vi", "n", "weights", "corrected", "subgroup"))
@_recorded
def pool(yi: ArrayLike, vi: ArrayLike, *, method: str = "REML", test: str = "z",
         level: float = 0.95, measure: str = "GEN", labels: ArrayLike | None = None,
         n: ArrayLike | None = None, weights: ArrayLike | None = None,
         correction: str = "none", corrected: ArrayLike | None = None,
         pi: str = "metafor", i2: str = "tau2",
         threshold: float = 1e-12, maxiter: int = 100, tau2: float | None = None,
         tau2_ci: str = "QP") -> MetaResult:
    """Pool effect sizes ``yi`` with sampling variances ``vi``.

    ``method`` is a tau^2 estimator (EE/FE/CE, DL, HE, HS, HSk, SJ, ML, REML,
    EB, PM, PMM, GENQ); ``test`` is ``"z"``, ``"knha"`` (Hartung-Knapp-Sidik-
    Jonkman), ``"adhoc"`` (Knapp-Hartung truncated at 1) or ``"t"``. Studies
    with a missing or non-finite yi or vi are left out and listed in
    ``excluded``. ``n`` (study sizes) enables the Freeman-Tukey back-transform.
    ``pi`` picks the prediction-interval rule (``results.PI_RULES``: metafor's
    default, metafor's "simple", "t", "riley", or meta's "HTS", "HK" and "V" forms); ``i2`` the I^2
    definition ("tau2" as metafor, "Q" as meta). ``tau2`` fixes the between-study variance.
    ``tau2_ci`` is the CI method for tau^2 (``hetci.TAU2_CI_METHODS``: "QP" the Q-profile as
    metafor's default, "PL" profile likelihood, "GENQ", "J" Jackson, "Wald", ...); with
    ``i2="Q"`` the I^2 and H^2 intervals are meta's test-based ones (Higgins & Thompson 2002).
    Method and test names are case-insensitive. Zero sampling variances are kept for the
    estimators that metafor allows them with (HE, SJ, ML, REML, EB, GENQ; then Q and I^2 are not
    defined); negative ones are left out and listed. Weights must be positive and finite.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and their sampling variances, one per study.
    method : str
        tau^2 estimator (default "REML"); "EE" for the common-effect model.
    test : {"z", "knha", "adhoc", "t"}
        Inference for the pooled effect.
    level : float
        Confidence level, between 0 and 1 (default 0.95).
    measure : str
        The measure of ``yi`` (for the back-transformation in ``natural``; default "GEN").
    labels, n : array_like, optional
        Study labels; study sizes (Freeman-Tukey back-transform).
    weights : array_like, optional
        User weights instead of the inverse variances.
    correction, corrected : str, array_like, optional
        The continuity correction the effect sizes carry, for the record.
    pi : str
        Prediction-interval rule (default "metafor").
    i2 : {"tau2", "Q"}
        I^2 definition.
    threshold, maxiter : float, int
        Convergence rule of the iterative estimators.
    tau2 : float, optional
        A fixed tau^2.
    tau2_ci : str
        CI method for tau^2 (default "QP").
    subgroup : array_like, optional
        A subgroup label per study.
    tau2_common : bool
        One tau^2 for all subgroups.

    Returns
    -------
    MetaResult
        The pooled estimate, SE, CI, p-value, prediction interval, tau^2 with its SE and CI, I^2,
        H^2, Q, the back-transformed values (``natural``), per-study weights, the excluded studies
        and the conventions and diagnostics of the fit.

    References
    ----------
    DerSimonian R, Laird N (1986). Control Clin Trials 7:177-188 (DL). Viechtbauer W (2005).
    J Educ Behav Stat 30:261-293 (ML, REML). Paule RC, Mandel J (1982). J Res Natl Bur Stand
    87:377-385 (PM). Hartung J, Knapp G (2001). Stat Med 20:3875-3889 and Sidik K, Jonkman JN
    (2002). Stat Med 21:3153-3159 (knha). Viechtbauer W (2007). Stat Med 26:37-52 (Q-profile CI).
    Higgins JPT, Thompson SG (2002). Stat Med 21:1539-1558 (I^2, H^2). Riley RD, Higgins JPT,
    Deeks JJ (2011). BMJ 342:d549 (prediction interval).

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> res = mm.pool(yi, vi, method="REML", test="knha")
    >>> print(f"{res.estimate:.4f} [{res.ci_lb:.4f}, {res.ci_ub:.4f}], tau^2 = {res.tau2:.4f}")
    -0.9905 [-1.5526, -0.4285], tau^2 = 0.2248
    >>> print(f"PI [{res.pi_lb:.4f}, {res.pi_ub:.4f}], I^2 = {res.i2:.1f}%")
    PI [-2.3328, 0.3517], I^2 = 83.1%
    """
    method = canonical_method(method)
    test = canonical_test(test)
    level = check_level(level)
    if pi not in PI_RULES:
        raise ValueError(f"unknown prediction-interval rule {pi!r}; expected one of {', '.join(PI_RULES)}")
    if i2 not in I2_DEFINITIONS:
        raise ValueError(f"unknown I^2 definition {i2!r}; expected one of {', '.join(I2_DEFINITIONS)}")
    if tau2_ci not in TAU2_CI_METHODS:
        raise ValueError(f"unknown tau2_ci {tau2_ci!r}; expected one of {', '.join(TAU2_CI_METHODS)}")
    y_all, v_all, lab_all = study_inputs(yi, vi, labels)
    n_all = None if n is None else np.atleast_1d(np.asarray(n, dtype=float))
    a_all = None if weights is None else check_weights(weights, y_all.size, lab_all)
    c_all = None if corrected is None else np.atleast_1d(np.asarray(corrected, dtype=bool))

    excluded = []
    v_range = _clean_range(y_all, v_all)
    if v_range is not None:
        ok = None  # nothing to leave out
        y, v, labs, n_, a = y_all, v_all, lab_all, n_all, a_all
    else:
        ok = np.isfinite(y_all) & np.isfinite(v_all)
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
    if method in USER_WEIGHTED and a is None:
        raise ValueError(f"method {method} needs study weights (weights=...), as metafor")
    _check_range(y, v, *(v_range or ()))
    warns = []
    dups = len(set(labs)) < k and sorted(lab for lab, c in collections.Counter(labs).items() if c > 1)
    if dups:
        warns.append(f"study labels used more than once: {', '.join(dups)} (studies are kept apart "
                     f"by position; label them uniquely)")
    if k == 1 and test != "z":  # as metafor: a t distribution with 0 df is no test
        warns.append(f"k = 1: test set to 'z' (was {test!r}), as metafor does")
        test = "z"

    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            m = fit_model(y, v, None, method=method, test=test, level=level, weights=a, tau2=tau2,
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
    se_model = math.sqrt(float(m.vb_model[0, 0]))
    s2w, s2w_knha = m.s2w, m.s2w_knha
    vb = se**2
    statistic = float(m.statistic[0])
    pvalue = float(m.pvalue[0])
    df = m.df
    ci_lb, ci_ub = float(m.ci_lb[0]), float(m.ci_ub[0])
    pi_se = math.sqrt(vb + tau2)
    if method == "EE":  # no prediction interval for a common-effect model (as metafor)
        pi_lb = pi_ub = float("nan")
    else:
        pi_lb, pi_ub = prediction_bounds(mu, se, se_model, s2w_knha, tau2, k, test, level, pi,
                                         crit=m.crit if m.p == 1 else None)
    q, q_p, vt, i2_val, h2 = m.qe, m.qe_pvalue, m.vt, m.i2, m.h2

    if method != "EE" and (k > 1 and m.tau2_fixed is False or i2 == "Q" and k > 1 and np.isfinite(q)):
        # computed on first access (metafor computes them in confint(), not in rma())
        cis: Any = Deferred(functools.partial(
            heterogeneity_intervals, y, v, tau2, method=method, tau2_ci=tau2_ci, level=level,
            weights=a, se_tau2=fit.se, i2=i2, vt=vt, q=q, tau2_fixed=m.tau2_fixed))
        t_lb = t_ub = i_lb = i_ub = h_lb = h_ub = cis
    else:
        t_lb = t_ub = i_lb = i_ub = h_lb = h_ub = float("nan")
        if i2 == "Q" and k > 1 and np.isfinite(q):  # EE: meta's test-based I^2 and H^2 intervals
            i_lb, i_ub, h_lb, h_ub = _test_based_i2_h2(q, k, level)

    # weights in percent; of the fit's own weights on first read (nobody else holds them)
    wts = Deferred(functools.partial(_percent_weights, w)) if a is None else _percent_weights(a)["weights"]

    natural = None
    transform = "none"
    if measure == "PFT":
        if n_ is not None:
            nhm = transforms.harmonic_mean(n_)
            transform = f"Miller (1978) inverse Freeman-Tukey, harmonic mean n = {nhm:.4f}"
    entry = get_measure(measure)
    if measure != "PFT" and entry.back_transform is not None:
        transform = transforms.TRANSFORMS[entry.back_transform][2]
    natural_scale = entry.natural_scale
    if natural_scale is not None and (measure != "PFT" or n_ is not None):
        vals = transforms.back_transform(measure, np.array([mu, ci_lb, ci_ub, pi_lb, pi_ub]), n_,
                                         harmonic=True)
        lo_ci, hi_ci = sorted(vals[1:3])
        lo_pi, hi_pi = sorted(vals[3:5])
        natural = NaturalScale(natural_scale, float(vals[0]), float(lo_ci), float(hi_ci),
                               float(lo_pi), float(hi_pi), transform)

    messages = (fit.message,) if fit.message else ()
    if method == "EE" and test in ("knha", "adhoc"):
        warns.append("Knapp-Hartung inference is not meant for a common-effect model")
    if k == 1:
        warns.append("k = 1: no heterogeneity can be estimated")
        if test != "z":
            warns.append(f"k = 1: {test} inference has 0 degrees of freedom; no CI or p-value")
    conventions = _conventions(method, test, correction, transform, i2, pi, tau2_ci)
    diagnostics = frozen_instance(Diagnostics, {
        "converged": fit.converged, "iterations": fit.iterations,
        "tau2_at_boundary": fit.at_boundary, "algorithm": fit.algorithm, "messages": messages})
    return frozen_instance(MetaResult, {
        "measure": measure, "method": method, "test": test, "level": level, "k": k, "estimate": mu,
        "se": se, "statistic": float(statistic), "pvalue": pvalue, "ci_lb": float(ci_lb),
        "ci_ub": float(ci_ub), "df": df, "tau2": float(tau2), "se_tau2": float(fit.se),
        "tau2_ci_lb": t_lb, "tau2_ci_ub": t_ub, "i2": float(i2_val), "i2_ci_lb": i_lb,
        "i2_ci_ub": i_ub, "h2": float(h2), "h2_ci_lb": h_lb, "h2_ci_ub": h_ub, "q": q,
        "q_df": k - 1, "q_pvalue": q_p, "pi_lb": float(pi_lb), "pi_ub": float(pi_ub),
        "pi_se": pi_se, "vt": vt, "s2w": float(s2w), "s2w_knha": s2w_knha, "se_model": se_model,
        "labels": labs, "yi": readonly(y), "vi": readonly(v), "weights": wts,
        "n": None if n_ is None else readonly(n_), "conventions": conventions,
        "diagnostics": diagnostics, "excluded": tuple(excluded), "natural": natural,
        "warnings": tuple(warns),
        "corrected": None if c_all is None else c_all if ok is None else c_all[ok],
        "kept": np.arange(k) if ok is None else np.flatnonzero(ok)})


def _test_based_i2_h2(q: float, k: int, level: float) -> tuple[float, float, float, float]:
    from .hetci import h_i2_ci

    hc = h_i2_ci(q, k, level)
    return hc.i2_low, hc.i2_high, hc.h_low**2, hc.h_high**2


def heterogeneity_intervals(y: np.ndarray, v: np.ndarray, tau2: float, *, method: str,
                            tau2_ci: str, level: float, weights: np.ndarray | None,
                            se_tau2: float, i2: str, vt: float, q: float,
                            tau2_fixed: bool) -> dict[str, float]:
    """The CIs of tau^2, I^2 and H^2 of a random-effects fit (the fields ``tau2_ci_lb`` ...
    ``h2_ci_ub`` of :class:`MetaResult`): tau^2 by ``tau2_ci`` (Q-profile by default,
    Viechtbauer 2007), I^2 and H^2 from its bounds (metafor's ``confint``), or meta's
    test-based intervals under ``i2="Q"`` (Higgins & Thompson 2002)."""
    k = y.size
    nan = float("nan")
    t_lb = t_ub = i_lb = i_ub = h_lb = h_ub = nan
    if k > 1 and not tau2_fixed:
        if tau2_ci == "QP":
            t_lb, t_ub = q_profile_ci(y, v, level, tau2_hat=tau2)
        else:
            from .hetci import tau2_ci as _tau2_interval

            ci = _tau2_interval(y, v, tau2, method=tau2_ci, level=level,
                                estimator=method if method in ("ML", "REML") else "REML",
                                weights=weights if method in USER_WEIGHTED else None, se_tau2=se_tau2)
            t_lb, t_ub = ci.low, ci.high
        if i2 == "tau2" and np.isfinite(vt):
            i_lb, i_ub = (100 * t / (vt + t) for t in (t_lb, t_ub))
            h_lb, h_ub = (1 + t / vt for t in (t_lb, t_ub))
    if i2 == "Q" and k > 1 and np.isfinite(q):
        i_lb, i_ub, h_lb, h_ub = _test_based_i2_h2(q, k, level)
    return {"tau2_ci_lb": float(t_lb), "tau2_ci_ub": float(t_ub), "i2_ci_lb": float(i_lb),
            "i2_ci_ub": float(i_ub), "h2_ci_lb": float(h_lb), "h2_ci_ub": float(h_ub)}


def correction_text_of(add, to, corrected) -> str:
    """The continuity correction applied to a set of studies, in words."""
    if corrected is None or not np.any(corrected):
        return "none needed" if add else "none"
    return (f"{add:g} added to the cells of {int(np.sum(corrected))} of {np.size(corrected)} studies "
            f"(to = {to})")


_LOG_INV_EPS = -math.log(np.finfo(float).eps)


def _percent_weights(w: np.ndarray) -> dict[str, np.ndarray]:
    """The field ``weights`` of a result: ``w`` in percent of their sum, read-only."""
    wts = w * (100.0 / row_sum(w))
    wts.flags.writeable = False
    return {"weights": wts}


def _clean_range(y: np.ndarray, v: np.ndarray) -> tuple[float, float] | None:
    """(smallest vi, largest vi) when every yi and vi is finite and every vi > 0 (no study to
    leave out), else None. Up to 64 studies from Python lists (a numpy reduction costs more than
    its arithmetic there): a NaN or an infinity makes the sum non-finite (an overflow of finite
    values only takes the element-wise way)."""
    if not v.size:
        return None
    if v.size <= 64:
        vl = v.tolist()
        if not math.isfinite(sum(vl) + sum(y.tolist())):
            return None
        lo = min(vl)
        return (lo, max(vl)) if lo > 0 else None
    lo, hi = float(_min(v)), float(_max(v))
    return (lo, hi) if lo > 0 and math.isfinite(hi) and _all(np.isfinite(y)) else None


def _check_range(y: np.ndarray, v: np.ndarray, lo: float | None = None,
                 hi: float | None = None) -> None:
    """Refuse data whose inverse-variance weights cannot be computed in double precision
    (``lo``, ``hi``: the smallest and largest vi, when known)."""
    if lo is None:
        lo = float(v.min())
    if lo > 0:
        hi = float(v.max()) if hi is None else hi
    else:
        pos = v[v > 0]
        if not pos.size:
            return
        lo, hi = float(pos.min()), float(pos.max())
    if math.log(hi) - math.log(lo) > _LOG_INV_EPS:
        raise ValueError(f"vi: the sampling variances range from {lo:g} to "
                         f"{hi:g}, more than 1/machine epsilon apart; the "
                         "inverse-variance weights cannot be computed accurately (rescale or "
                         "check the data)")


def _correction_text(es: EffectSizes) -> str:
    return correction_text_of(es.add, es.to, es.corrected)


@accepts_data(("subgroup",), labels=None, drop=False)
def pool_effects(es: EffectSizes, *, subgroup: ArrayLike | None = None, tau2_common: bool = False,
                 **kwargs) -> MetaResult:
    """Pool an :class:`EffectSizes` (keeps its measure, labels, n and correction).

    ``subgroup`` (a label per study) adds a fit per subgroup (``result.subgroups``) and the test
    for subgroup differences (``result.subgroup_test``), with a tau^2 per subgroup, or one
    common tau^2 when ``tau2_common`` (see :func:`metamsc.subgroups.subgroup_analysis`).

    Parameters
    ----------
    es : EffectSizes
        The output of :func:`metamsc.effect_size`.
    subgroup : array_like, optional
        A subgroup label per study.
    tau2_common : bool
        One tau^2 for all subgroups.
    **kwargs
        Passed to :func:`metamsc.pool` (``method``, ``test``, ``level``, ``pi``, ...).

    Returns
    -------
    MetaResult
        As :func:`metamsc.pool`, with the measure's back-transformation in ``natural``.

    References
    ----------
    Viechtbauer W (2010). J Stat Softw 36(3):1-48.

    Examples
    --------
    >>> import metamsc as mm
    >>> es = mm.effect_size("PLO", events=[8, 2, 1], total=[17, 2, 1])
    >>> res = mm.pool_effects(es, method="REML")
    >>> print(f"{res.natural.estimate:.4f} ({res.natural.scale})")
    0.5407 (proportion)
    """
    if subgroup is not None and np.atleast_1d(subgroup).shape[0] != es.k:
        raise ValueError(f"subgroup must have one label per study ({np.atleast_1d(subgroup).shape[0]} "
                         f"labels for {es.k} studies)")
    res = pool(es.yi, es.vi, measure=es.measure, labels=es.labels, n=es.n,
               correction=_correction_text(es), corrected=es.corrected, **kwargs)
    _record(res, dataclasses.replace(res.settings, add=es.add, to=es.to))
    res = _attach_subgroups(res, subgroup, tau2_common)
    if es.kept is None:
        return res
    # rows of data= that effect_size left out come first; kept: positions in data's rows
    return dataclasses.replace(res, excluded=es.excluded + tuple(res.excluded),
                               kept=es.kept[np.asarray(res.kept, dtype=int)])


@accepts_data(("events", "total", "subgroup"))
def pool_proportions(events: ArrayLike, total: ArrayLike, *, measure: str = "PLO",
                     method: str = "REML", test: str = "z", level: float = 0.95,
                     labels: ArrayLike | None = None, add: float | None = None,
                     to: str = "only0", subgroup: ArrayLike | None = None,
                     tau2_common: bool = False, **kwargs) -> MetaResult:
    """Pool single proportions events/total on the scale of ``measure`` (PR PLN PLO PAS PFT).

    The result carries the back-transformed pooled proportion in ``natural``
    (Freeman-Tukey by Miller's harmonic-mean inverse, as metafor's ``transf.ipft.hm``).
    ``method="GLMM"`` fits the binomial-normal model by maximum likelihood
    (:func:`metamsc.glmm.fit_glmm`, metafor ``rma.glmm``; ``"GLMM-EE"`` its common-effect
    GLM; ``nagq`` may be passed); it needs ``measure="PLO"``. ``subgroup`` as in
    :func:`pool_effects`. Names are case-insensitive.

    Parameters
    ----------
    events, total : array_like
        Number of events and number of patients per study.
    measure : {"PLO", "PFT", "PAS", "PLN", "PR"}
        Scale of the analysis (default "PLO", the logit).
    method : str
        tau^2 estimator, or "GLMM" / "GLMM-EE" for the binomial-normal model.
    test, level, labels : optional
        As :func:`metamsc.pool`.
    add, to : float, str
        Continuity correction (metafor's defaults: 1/2 to studies with a zero cell).
    subgroup, tau2_common : optional
        As :func:`metamsc.pool`.
    **kwargs
        Passed to :func:`metamsc.pool` or to the GLMM (``nagq``).

    Returns
    -------
    MetaResult
        An inverse-variance result, or a :class:`GLMMResult`; ``natural`` holds the pooled
        proportion with its CI and prediction interval.

    References
    ----------
    Freeman MF, Tukey JW (1950). Ann Math Stat 21:607-611. Miller JJ (1978). Am Stat 32:138
    (inverse of the Freeman-Tukey transform). Stijnen T, Hamza TH, Ozdemir P (2010). Stat Med
    29:3046-3067 (binomial-normal model).

    Examples
    --------
    >>> import metamsc as mm
    >>> res = mm.pool_proportions([8, 2, 1, 2, 1], [17, 2, 1, 2, 1], measure="PLO", method="REML")
    >>> print(f"{res.natural.estimate:.4f} [{res.natural.ci_lb:.4f}, {res.natural.ci_ub:.4f}]")
    0.6150 [0.3657, 0.8156]
    >>> glmm = mm.pool_proportions([0, 1, 0, 2, 0], [17, 10, 6, 12, 5], method="GLMM")
    >>> print(f"{glmm.natural.estimate:.4f}")
    0.0574
    """
    measure = str(measure).upper()
    proportion = [c for c, m in REGISTRY.items() if m.family == "proportion"]
    if measure not in proportion:
        raise ValueError(f"measure {measure!r} is not a proportion measure ({' '.join(proportion)})")
    if isinstance(method, str) and method.upper() in ("GLMM", "GLMM-EE"):
        if measure != "PLO":
            raise ValueError(f"method {method!r} fits the binomial-normal model on the logit scale: "
                             f"measure must be 'PLO', not {measure!r}")
        if add is not None or to != "only0":
            raise ValueError("add/to do not apply to method 'GLMM' (the exact binomial likelihood "
                             "needs no continuity correction)")
        unknown = sorted(set(kwargs) - {"nagq", "tau2_ci"})
        if unknown:
            raise ValueError(f"method 'GLMM' does not take {', '.join(map(repr, unknown))}")
        from .glmm import fit_glmm

        return fit_glmm(events, total, measure="PLO",
                        method="EE" if method.upper() == "GLMM-EE" else "ML", test=test,
                        level=level, labels=labels, subgroup=subgroup, tau2_common=tau2_common,
                        **kwargs)
    es = effect_size(measure, events=events, total=total, labels=labels, add=add, to=to)
    return pool_effects(es, method=method, test=test, level=level, subgroup=subgroup,
                        tau2_common=tau2_common, **kwargs)
