"""Subgroup analysis: the same model fitted in each subgroup, and the test for subgroup
differences (Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009) Introduction to
Meta-Analysis, Wiley, ch. 19; Viechtbauer W. (2010) J Stat Softw 36(3), section 3.3).

Two ways, as R's meta and metafor:

- ``tau2_common=False`` (meta's default): each subgroup is refitted on its own
  (``result.refit(subset)``: the same model kind, estimator, test and level), with its own tau^2;
  the test is Q_between = sum w_g (mu_g - mu_w)^2, w_g = 1/SE_g^2, on G - 1 df (meta's
  ``Q.b.random``; for a common-effect model ``Q.b.common``).
- ``tau2_common=True`` (or ``"metafor"``; metafor ``rma(yi, vi, mods = ~ factor(g) - 1)``): one
  mixed-effects meta-regression on the subgroup dummies without intercept, whose coefficients
  are the subgroup means with one tau^2; the test is the Wald test that the means are equal,
  which is metafor's test of moderators (QM) of ``rma(yi, vi, mods = ~ factor(g))`` (chi^2, or F
  under Knapp-Hartung, on k - p df).
- ``tau2_common="meta"`` (meta's ``tau.common = TRUE``, as documented for meta's ``subgroup``
  argument; Borenstein et al. 2009, ch. 19, "pooling tau^2 across subgroups"): the same common
  tau^2 (the meta-regression's), then each subgroup pooled on its own with that tau^2 fixed, so
  that under Knapp-Hartung each subgroup has its own scaling factor and t(k_g - 1) quantile; the
  test is Q_between from those subgroup estimates and SEs on G - 1 df (chi^2), meta's
  ``Q.b.random``.

Both common-tau^2 rules need an inverse-variance model (metafor has no subgroup model with a
common tau^2 for MH, Peto or the GLMM).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._dist import chi2_sf
from .frames import accepts_data
from .results import MetaResult, NaturalScale, SubgroupTest, Subgroups, prediction_bounds

__all__ = ["SubgroupAnalysis", "subgroup_analysis", "between_test", "TAU2_COMMON_RULES"]

MISSING = ("", "nan", "none", "na")

#: the rules for one tau^2 common to the subgroups (``tau2_common=``), see the module docstring
TAU2_COMMON_RULES = {
    "metafor": "meta-regression on the subgroup dummies (metafor rma(yi, vi, mods = ~ factor(g) - 1)"
               "; Viechtbauer 2010)",
    "meta": "common tau^2 of the meta-regression, each subgroup pooled alone with it, Q-between "
            "(meta tau.common = TRUE; Borenstein et al. 2009, ch. 19)",
}


@dataclass(frozen=True)
class SubgroupAnalysis:
    """The subgroups of a fitted result: ``subgroups`` (name -> result, in order), ``test``
    (Q_between; None with fewer than two usable subgroups) and ``notes``."""

    result: MetaResult
    subgroups: Subgroups
    test: SubgroupTest | None

    @property
    def notes(self) -> tuple[str, ...]:
        return self.subgroups.notes

    def attach(self) -> MetaResult:
        """The overall result with ``subgroups``, ``subgroup_test`` and the notes as warnings."""
        return dataclasses.replace(self.result, subgroups=self.subgroups, subgroup_test=self.test,
                                   warnings=self.result.warnings + self.notes)


def _labels(groups: ArrayLike, result: MetaResult) -> np.ndarray:
    """The subgroup label of each study the result kept (``groups`` has one per input study)."""
    g = np.atleast_1d(np.asarray(groups, dtype=object))
    if g.ndim != 1:
        raise ValueError("subgroup must be one-dimensional (a label per study)")
    kept = np.arange(result.k) if result.kept is None else np.asarray(result.kept, dtype=int)
    if kept.size and g.size <= kept.max():
        raise ValueError(f"subgroup must have one label per study ({g.size} labels, but the "
                         f"result uses input position {kept.max()})")
    out = []
    for i, v in enumerate(g):
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip().lower() in MISSING:
            raise ValueError(f"subgroup: the label of study {i + 1} is missing; give it a name "
                             "(e.g. '(missing)') to keep it as a subgroup of its own")
        out.append(str(v))
    return np.array(out, dtype=object)


def between_test(estimates: ArrayLike, se: ArrayLike, *, df2: float | None = None,
                 method: str = "Q-between from the subgroup estimates and SEs (separate tau^2 per "
                               "subgroup)", groups: tuple[str, ...] = ()) -> SubgroupTest:
    """Q_between = sum w_g (mu_g - mu_w)^2, w_g = 1/SE_g^2, on G - 1 df (Borenstein et al. 2009,
    eq. 19.13). With ``df2`` (Knapp-Hartung) the p-value is that of F = Q/(G - 1) on
    (G - 1, df2) df, as metafor's test of moderators."""
    est = np.asarray(estimates, dtype=float)
    w = 1.0 / np.asarray(se, dtype=float) ** 2
    q = float(np.sum(w * (est - np.sum(w * est) / np.sum(w)) ** 2))
    df = int(est.size - 1)
    if df2 is None:
        p = float(chi2_sf(q, df))
    else:
        from scipy import special

        p = float(special.fdtrc(df, df2, q / df))
    return SubgroupTest(q, df, p, groups_used=tuple(groups), method=method, df2=df2)


@accepts_data(("groups", "order"), labels=None, drop=False)
def subgroup_analysis(result: MetaResult, groups: ArrayLike, *, tau2_common: bool | str = False,
                      order: ArrayLike | None = None,
                      descriptive: ArrayLike = ()) -> SubgroupAnalysis:
    """Fit ``result``'s model in each subgroup and test for subgroup differences.

    ``groups`` holds a subgroup label per study of the *input* of ``result`` (the studies it
    left out are left out of their subgroup too). Subgroups come in the order of ``order``
    (labels listed first) and then of first appearance. A subgroup whose studies were all left
    out is not pooled (said in ``notes``); one without a finite SE is left out of the test
    (said too), and so are the ``descriptive`` levels (shown, not tested: e.g. case reports
    beside a trial). See the module docstring for ``tau2_common``.

    Parameters
    ----------
    result : MetaResult
        A fitted result.
    groups : array_like
        A subgroup label per study of the input of ``result``.
    tau2_common : bool or str
        One tau^2 for all subgroups: ``True`` or ``"metafor"`` the meta-regression on the
        subgroup dummies (metafor), ``"meta"`` meta's ``tau.common = TRUE`` (that tau^2 fixed in
        each subgroup pooled alone, Q-between); ``False`` a tau^2 per subgroup.
    order : array_like, optional
        Subgroup labels to list first.
    descriptive : array_like
        Subgroups shown but not tested.

    Returns
    -------
    SubgroupAnalysis
        ``subgroups`` (a fit per subgroup) and ``test`` (Q-between, its df and p-value).

    References
    ----------
    Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009). Introduction to Meta-Analysis,
    Wiley, ch. 19. Viechtbauer W (2010). J Stat Softw 36(3):1-48 (common tau^2).

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> sa = mm.subgroup_analysis(mm.pool(yi, vi), ["a", "a", "a", "b", "b", "b"])
    >>> for name, fit in sa.subgroups.items():
    ...     print(name, fit.k, f"{fit.estimate:.4f}")
    a 3 -1.3377
    b 3 -0.8323
    >>> print(f"Q = {sa.test.q:.4f}, df = {sa.test.df}, p = {sa.test.pvalue:.4f}")
    Q = 1.2016, df = 1, p = 0.2730
    """
    rule = _tau2_common_rule(tau2_common)
    descriptive = tuple(str(x) for x in descriptive)
    g = _labels(groups, result)
    levels: list[str] = [str(x) for x in (order if order is not None else ())]
    for lv in g:
        if lv not in levels:
            levels.append(lv)
    present = set(g.tolist())
    levels = [lv for lv in levels if lv in present]
    kept = np.arange(result.k) if result.kept is None else np.asarray(result.kept, dtype=int)
    kept_groups = g[kept]
    members = {lv: np.flatnonzero(kept_groups == lv) for lv in levels}
    notes = [f"subgroup {lv!r}: every study was left out (see excluded); not pooled"
             for lv in levels if members[lv].size == 0]
    levels = [lv for lv in levels if members[lv].size]
    if rule == "meta":
        return _common_meta(result, levels, members, notes, descriptive)
    if rule == "metafor":
        return _common(result, levels, members, notes)
    fits = [(lv, result.refit(members[lv])) for lv in levels]
    return _separate_fits(result, fits, notes, descriptive, False)


def _tau2_common_rule(tau2_common: bool | str) -> str | None:
    """None (a tau^2 per subgroup) or the name of the common-tau^2 rule."""
    if tau2_common is False or tau2_common is None:
        return None
    if tau2_common is True:
        return "metafor"
    if isinstance(tau2_common, str) and tau2_common.lower() in TAU2_COMMON_RULES:
        return tau2_common.lower()
    raise ValueError(f"tau2_common must be False, True or one of {', '.join(map(repr, TAU2_COMMON_RULES))}"
                     f", got {tau2_common!r}")


def _separate_fits(result, fits, notes, descriptive, common: bool, method: str | None = None):
    """Subgroups fitted one by one and their Q-between test (the usable, non-descriptive ones)."""
    notes = list(notes)
    notes += [f"subgroup {lv!r} is descriptive: shown, not tested or used as an estimate"
              for lv, _ in fits if lv in descriptive]
    usable = [(lv, r) for lv, r in fits if np.isfinite(r.se) and r.se > 0 and np.isfinite(r.estimate)
              and lv not in descriptive]
    if len(usable) > 1:
        notes += [f"subgroup {lv!r} is not in the test for subgroup differences (no finite SE)"
                  for lv, r in fits if (lv, r) not in usable and lv not in descriptive]
    test = None
    if len(usable) > 1:
        kw = {} if method is None else {"method": method}
        test = between_test([r.estimate for _, r in usable], [r.se for _, r in usable],
                            groups=tuple(lv for lv, _ in usable), **kw)
    return SubgroupAnalysis(result, Subgroups(tuple(fits), common, tuple(notes)), test)


def _meta_regression(yi, vi, X, *, method, test, level):
    """The one call into the meta-regression engine: the subgroup means with one common tau^2,
    as metafor ``rma(yi, vi, mods = X, intercept = FALSE)``; returns (coefficients, SEs, the
    fit)."""
    from .metareg import meta_regression

    fit = meta_regression(yi, vi, X, method=method, test=test, level=level, intercept=False)
    return np.asarray(fit.beta), np.asarray(fit.se), fit


def _common_fit(result: MetaResult, levels, members, rule: str):
    """The meta-regression on the subgroup dummies (one tau^2): checks, design, fit."""
    name = "True" if rule == "metafor" else repr(rule)
    if result.model != "IV":
        raise ValueError(f"tau2_common={name} needs an inverse-variance model (a meta-regression "
                         f"on the subgroup dummies); this is a {result.model} fit: use "
                         f"tau2_common=False")
    if result.settings is not None and result.settings.user_weights is not None:
        raise ValueError(f"tau2_common={name} is not available with user weights")
    if len(levels) < 2:
        raise ValueError(f"tau2_common={name} needs at least two subgroups with studies")
    y, v = np.asarray(result.yi, dtype=float), np.asarray(result.vi, dtype=float)
    X = np.zeros((result.k, len(levels)))
    for j, lv in enumerate(levels):
        X[members[lv], j] = 1.0
    return X, _meta_regression(y, v, X, method=result.method, test=result.test, level=result.level)


def _common_meta(result: MetaResult, levels, members, notes, descriptive) -> SubgroupAnalysis:
    """meta's tau.common = TRUE: the common tau^2, then each subgroup pooled alone with it fixed
    (its own Knapp-Hartung factor and t(k_g - 1)), and Q-between of those fits."""
    _, (_, _, fit) = _common_fit(result, levels, members, "meta")
    tau2 = float(fit.tau2)
    base = result if result.settings is not None else result.refit(np.arange(result.k))
    st = base.settings
    fixed = dataclasses.replace(base, settings=dataclasses.replace(
        st, other=tuple((n, x) for n, x in st.other if n != "tau2") + (("tau2", tau2),)))
    how = (f"{fit.method}, one tau^2 common to all subgroups (the meta-regression on the subgroup "
           f"dummies), each subgroup pooled alone with it fixed (meta tau.common = TRUE)")
    fits = []
    for lv in levels:
        sub = fixed.refit(members[lv])
        sub = dataclasses.replace(
            sub, se_tau2=float(fit.se_tau2), tau2_ci_lb=np.nan, tau2_ci_ub=np.nan,
            settings=dataclasses.replace(sub.settings, not_refittable=(
                f"subgroup {lv!r} is pooled with the tau^2 common to all subgroups; refit the "
                "overall result and redo the subgroup analysis")),
            conventions=dataclasses.replace(sub.conventions, tau2_estimator=how,
                                            tau2_ci="none (tau^2 common to the subgroups)"))
        fits.append((lv, sub))
    return _separate_fits(result, fits, notes, descriptive, True, method=(
        "Q-between from the subgroup estimates and SEs, each subgroup pooled alone with the "
        "common tau^2 (meta tau.common = TRUE, Q.b.random)"))


def _common(result: MetaResult, levels, members, notes) -> SubgroupAnalysis:
    X, (beta, se, fit) = _common_fit(result, levels, members, "metafor")
    v = np.asarray(result.vi, dtype=float)
    k, p = X.shape
    tau2 = float(fit.tau2)
    how = (f"{fit.method}, one tau^2 common to all subgroups: meta-regression on the subgroup "
           f"dummies without intercept (metafor rma(yi, vi, mods = ~ factor(g) - 1))")
    pi_rule = result.settings.pi if result.settings is not None else "metafor"
    fits = []
    for j, lv in enumerate(levels):
        idx = members[lv]
        own = result.refit(idx)  # the subgroup's data, Q, weights and conventions
        w = 1.0 / (v[idx] + tau2)
        se_model = float(np.sqrt(1.0 / np.sum(w)))
        # the prediction interval of the subgroup mean, on the regression's k - p df under t
        pi_lb, pi_ub = ((np.nan, np.nan) if fit.method == "EE" else
                        prediction_bounds(beta[j], se[j], se_model, fit.s2w, tau2, k - p + 1,
                                          fit.test, result.level, pi_rule))
        vt = own.vt
        i2, h2 = ((own.i2, own.h2) if fit.method == "EE" or not vt > 0
                  else (100 * tau2 / (vt + tau2), 1 + tau2 / vt))
        natural = own.natural
        if natural is not None:
            from . import transforms

            vals = transforms.back_transform(result.measure, np.array(
                [beta[j], fit.ci_lb[j], fit.ci_ub[j], pi_lb, pi_ub]), own.n, harmonic=True)
            lo_ci, hi_ci = sorted(vals[1:3])
            lo_pi, hi_pi = sorted(vals[3:5])
            natural = NaturalScale(natural.scale, float(vals[0]), float(lo_ci), float(hi_ci),
                                   float(lo_pi), float(hi_pi), natural.transform)
        wts = 100 * w / np.sum(w)
        wts.flags.writeable = False
        sub = dataclasses.replace(
            own, estimate=float(beta[j]), se=float(se[j]), statistic=float(fit.statistic[j]),
            pvalue=float(fit.pvalue[j]), ci_lb=float(fit.ci_lb[j]), ci_ub=float(fit.ci_ub[j]),
            df=fit.df, tau2=tau2, se_tau2=float(fit.se_tau2), tau2_ci_lb=np.nan,
            tau2_ci_ub=np.nan, i2=float(i2), i2_ci_lb=np.nan, i2_ci_ub=np.nan, h2=float(h2),
            h2_ci_lb=np.nan, h2_ci_ub=np.nan, pi_lb=float(pi_lb), pi_ub=float(pi_ub),
            pi_se=float(np.sqrt(se[j] ** 2 + tau2)), s2w=float(fit.s2w), se_model=se_model,
            weights=wts, natural=natural,
            settings=dataclasses.replace(own.settings or result.settings, not_refittable=(
                f"subgroup {lv!r} is part of the subgroup model with one tau^2 common to all "
                "subgroups; refit the overall result and redo the subgroup analysis")),
            conventions=dataclasses.replace(own.conventions, tau2_estimator=how,
                                            tau2_ci="none (tau^2 common to the subgroups)"),
            diagnostics=dataclasses.replace(own.diagnostics, converged=fit.converged,
                                            algorithm=fit.algorithm),
        )
        fits.append((lv, sub))
    df2 = float(k - p) if fit.test in ("knha", "adhoc", "t") else None
    test = between_test(beta, se, df2=df2, groups=tuple(levels),
                        method="Wald test of equal subgroup means in the meta-regression on the "
                               "subgroup dummies (one common tau^2; metafor QM of "
                               "rma(yi, vi, mods = ~ factor(g)))")
    return SubgroupAnalysis(result, Subgroups(tuple(fits), True, tuple(notes)), test)
