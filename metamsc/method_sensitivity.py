"""How much does the answer depend on the method? One proportion meta-analysis run across
tau^2 estimators, tests, transforms, the binomial-normal GLMM, Bayesian models and study sets.

Each row is one fully specified analysis (no silent substitution: a fit that fails is a row with
no estimate and the reason). The table and the panel figure follow the "multiverse" idea of
Steegen et al. (2016, Perspect Psychol Sci 11:702) and the sensitivity analyses recommended for
few studies by Röver et al. (2021, Res Synth Methods 12:448) and Seide et al. (2019, BMC Med Res
Methodol 19:217).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._present import explained
from .progress import progress
from ._util import Excluded, check_level
from .frames import accepts_data

__all__ = ["MethodRow", "MethodSensitivity", "method_sensitivity", "PROPORTION_TRANSFORMS"]

PROPORTION_TRANSFORMS = ("PLO", "PFT", "PAS")


@dataclass(frozen=True)
class MethodRow:
    """One analysis: its model, study set, and pooled estimate with CI (analysis scale and
    natural scale)."""

    group: str
    method: str
    measure: str
    test: str
    studies: str
    k: int
    estimate: float
    ci_lb: float
    ci_ub: float
    tau2: float
    natural_estimate: float
    natural_ci_lb: float
    natural_ci_ub: float
    note: str = ""

    @property
    def label(self) -> str:
        test = "" if self.test in ("", "z") else f", {self.test}"
        base = f"{self.measure}, {self.method}{test}"
        return base if self.studies == "all" else f"{base}; {self.studies}"

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "method": self.method, "measure": self.measure,
                "test": self.test, "studies": self.studies, "k": self.k,
                "estimate": self.estimate, "ci_lb": self.ci_lb, "ci_ub": self.ci_ub,
                "tau2": self.tau2, "label": self.label,
                "natural": {"estimate": self.natural_estimate, "ci_lb": self.natural_ci_lb,
                            "ci_ub": self.natural_ci_ub},
                "note": self.note}


@explained
@dataclass(frozen=True)
class MethodSensitivity:
    """The rows of a method-sensitivity analysis, with the settings that produced them."""

    rows: tuple[MethodRow, ...]
    level: float
    labels: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict, compare=False)
    excluded: tuple[Excluded, ...] = ()  # rows of data= left out (missing values), with reasons

    def to_dict(self) -> dict[str, Any]:
        ok = [r for r in self.rows if np.isfinite(r.natural_estimate)]
        est = [r.natural_estimate for r in ok]
        return {"level": self.level, "studies": list(self.labels), "settings": self.settings,
                "rows": [r.to_dict() for r in self.rows],
                "summary": {"analyses": len(self.rows), "estimated": len(ok),
                            "estimate_min": min(est) if est else None,
                            "estimate_max": max(est) if est else None,
                            "ci_lb_min": min(r.natural_ci_lb for r in ok) if ok else None,
                            "ci_ub_max": max(r.natural_ci_ub for r in ok) if ok else None}}

    def __len__(self) -> int:
        return len(self.rows)

    def _repr_extra(self) -> str:
        s = self.to_dict()["summary"]
        if s["estimate_min"] is None:
            return "no estimate"
        return f"natural estimate {s['estimate_min']:.4f} to {s['estimate_max']:.4f}"

    def summary(self) -> str:
        """One line per analysis: its label, k and the natural-scale estimate and interval."""
        lines = [f"Method sensitivity ({len(self.rows)} analyses, {100 * self.level:g}% intervals)"]
        lines += [f"{r.label}: k = {r.k}, {r.natural_estimate:.4f} [{r.natural_ci_lb:.4f}, "
                  f"{r.natural_ci_ub:.4f}]" + (f" ({r.note})" if r.note else "") for r in self.rows]
        return "\n".join(lines)

    def to_frame(self):
        """One row per analysis (pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame([{k: v for k, v in r.to_dict().items() if k != "natural"}
                             | {"natural_estimate": r.natural_estimate,
                                "natural_ci_lb": r.natural_ci_lb, "natural_ci_ub": r.natural_ci_ub}
                             for r in self.rows])

    def plot(self, ax=None, **options):
        """The panel: every analysis' estimate and interval side by side (natural scale)."""
        from .plots.methods import method_panel

        return method_panel(self, ax=ax, **options)


def _nan_row(group, method, measure, test, studies, k, note) -> MethodRow:
    nan = math.nan
    return MethodRow(group, method, measure, test, studies, k, nan, nan, nan, nan, nan, nan, nan, note)


def _from_meta(group, studies, res, note="") -> MethodRow:
    nat = res.natural
    ne, nl, nu = ((nat.estimate, nat.ci_lb, nat.ci_ub) if nat is not None
                  else (res.estimate, res.ci_lb, res.ci_ub))
    msgs = list(res.diagnostics.messages) + list(res.warnings)
    if not res.diagnostics.converged:
        msgs.insert(0, "did not converge")
    method = res.conventions.tau2_estimator if res.model == "GLMM" else res.method
    return MethodRow(group, method, res.measure, res.test, studies, res.k, res.estimate, res.ci_lb,
                     res.ci_ub, res.tau2, ne, nl, nu, "; ".join([note] * bool(note) + msgs))


def _from_bayes(group, studies, res, note="") -> MethodRow:
    nat = res.natural
    ne, nl, nu = ((nat.estimate, nat.ci_lb, nat.ci_ub) if nat is not None
                  else (res.mu_median, res.mu_ci_lb, res.mu_ci_ub))
    method = f"Bayes {res.model}"
    return MethodRow(group, method, res.measure, "posterior", studies, res.k, res.mu_median,
                     res.mu_ci_lb, res.mu_ci_ub, res.tau_median**2, ne, nl, nu,
                     "; ".join(filter(None, [note, f"mu ~ {res.prior_mu.label}; tau ~ {res.prior_tau.label}; "
                                                  "posterior median and equal-tailed credible interval"])))


@accepts_data(("events", "total"))
def method_sensitivity(events: ArrayLike, total: ArrayLike, *, labels: ArrayLike | None = None,
                       level: float = 0.95, methods=("DL", "REML", "PM", "ML"),
                       tests=("z", "knha", "adhoc"), transforms=PROPORTION_TRANSFORMS,
                       primary=("PLO", "REML", "adhoc"), glmm: bool = True,
                       bayes_priors=((("normal", 0, 10), ("halfnormal", 0.5)),),
                       subset: ArrayLike | None = None, subset_label: str = "subset",
                       leave_one_out: bool = True, bayes_exact: bool = True) -> MethodSensitivity:
    """Pool ``events/total`` with every combination of ``transforms`` x ``methods`` x ``tests``;
    the binomial-normal GLMM (ML, z); the Bayesian normal-normal model on the logit scale for
    each (mu prior, tau prior) in ``bayes_priors`` and (``bayes_exact``) the exact Bayesian
    binomial-normal model with the same priors; and, with the ``primary`` (measure, method,
    test), the study sets: all, only the studies where ``subset`` is True (named
    ``subset_label``), and each study left out.

    Parameters
    ----------
    events, total : array_like
        Events and patients per study.
    labels : array_like, optional
        Study labels.
    level : float
        Confidence level (default 0.95).
    methods, tests, transforms : sequence of str
        The tau^2 estimators, tests and measures crossed.
    primary : tuple
        (measure, method, test) of the study-set rows.
    glmm : bool
        Add the binomial-normal GLMM.
    bayes_priors : sequence
        (mu prior, tau prior) pairs of the Bayesian rows.
    subset : array_like of bool, optional
        The studies of the subset row.
    subset_label : str
        Its name.
    leave_one_out : bool
        Add a row per study left out.

    Returns
    -------
    MethodSensitivity
        One row per analysis (``to_frame()``: method, measure, test, studies, estimate, CI,
        tau^2 and the estimate as a proportion); ``plot()`` draws the panel.

    References
    ----------
    Stijnen T, Hamza TH, Ozdemir P (2010). Stat Med 29:3046-3067 (GLMM). Röver C (2020). J Stat
    Softw 93(6) (Bayesian model). Veroniki AA et al. (2016). Res Synth Methods 7:55-79 (tau^2
    estimators).

    Examples
    --------
    >>> import metamsc as mm
    >>> ms = mm.method_sensitivity([8, 2, 1, 2, 1], [17, 2, 1, 2, 1], glmm=False, bayes_priors=(),
    ...                           methods=("DL", "REML"), tests=("z",), transforms=("PLO",),
    ...                           primary=("PLO", "REML", "z"), leave_one_out=False)
    >>> df = ms.to_frame()
    >>> print(df[["method", "measure", "test", "studies", "natural_estimate"]].round(4).to_string(index=False))
    method measure test studies  natural_estimate
        DL     PLO    z     all            0.5711
      REML     PLO    z     all            0.6150
    """
    from .bayes import bayes
    from .bayes_glmm import bayes_proportions
    from .effects import effect_size
    from .glmm import fit_glmm
    from .pooling import pool_effects

    level = check_level(level)
    x = np.atleast_1d(np.asarray(events, dtype=float))
    n = np.atleast_1d(np.asarray(total, dtype=float))
    if x.shape != n.shape or x.ndim != 1:
        raise ValueError("events and total must be one-dimensional and of the same length")
    labs = tuple(str(i + 1) for i in range(x.size)) if labels is None else tuple(str(s) for s in labels)
    if len(labs) != x.size:
        raise ValueError("labels must have one entry per study")
    for m in transforms:
        if m not in PROPORTION_TRANSFORMS:
            raise ValueError(f"transforms: {m!r} is not one of {', '.join(PROPORTION_TRANSFORMS)}")
    rows: list[MethodRow] = []

    def freq(group, measure, method, test, idx, studies):
        if idx.size == 0:
            rows.append(_nan_row(group, method, measure, test, studies, 0, "no study in this set"))
            return
        try:
            es = effect_size(measure, events=x[idx], total=n[idx], labels=[labs[i] for i in idx])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = pool_effects(es, method=method, test=test, level=level)
            rows.append(_from_meta(group, studies, res))
        except ValueError as e:
            rows.append(_nan_row(group, method, measure, test, studies, int(idx.size), f"not fitted: {e}"))

    every = np.arange(x.size)
    grid = [(m, me, t) for m in transforms for me in methods for t in tests]
    for measure, method, test in progress(grid, "method sensitivity"):
        freq("estimator x test x transform", measure, method, test, every, "all")
    if glmm:
        try:
            res = fit_glmm(x, n, measure="PLO", method="ML", test="z", level=level, labels=labs)
            rows.append(_from_meta("exact likelihood", "all", res))
        except ValueError as e:
            rows.append(_nan_row("exact likelihood", "GLMM", "PLO", "z", "all", x.size, f"not fitted: {e}"))
    es = effect_size("PLO", events=x, total=n, labels=labs)
    for mp, tp in bayes_priors:
        res = bayes(es.yi, es.vi, mu_prior=mp, tau_prior=tp, level=level, labels=labs, measure="PLO")
        rows.append(_from_bayes("Bayesian", "all", res, "logit with 1/2 added to studies with 0 or all events"))
        if bayes_exact:
            res = bayes_proportions(x, n, mu_prior=mp, tau_prior=tp, level=level, labels=labs)
            rows.append(_from_bayes("Bayesian", "all", res, "exact binomial likelihood, no correction"))
    pm, pmeth, ptest = primary
    if subset is not None:
        sub = np.atleast_1d(np.asarray(subset, dtype=bool))
        if sub.shape != x.shape:
            raise ValueError("subset must have one entry per study")
        freq("study set", pm, pmeth, ptest, np.flatnonzero(sub), subset_label)
    if leave_one_out and x.size > 1:
        for i in progress(range(x.size), "method sensitivity, leave-one-out"):
            freq("study set", pm, pmeth, ptest, np.delete(every, i), f"without {labs[i]}")
    settings = {"methods": list(methods), "tests": list(tests), "transforms": list(transforms),
                "primary": {"measure": pm, "method": pmeth, "test": ptest}, "glmm": glmm,
                "bayes_exact": bayes_exact,
                "bayes_priors": [{"mu": list(mp), "tau": list(tp)} for mp, tp in bayes_priors],
                "subset_label": subset_label if subset is not None else None,
                "leave_one_out": leave_one_out}
    return MethodSensitivity(tuple(rows), level, labs, settings)
