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


# --- spec support: kind = "method-sensitivity" and method = "BAYES" ---------------------------
PRIOR_KEYS = ("mu", "tau")
#: spec key ``bayes_model``: "exact" (default) fits the binomial-normal model to PLO counts
#: (events, total) and the Poisson-normal model to IRLN counts (events, time); "normal" fits the
#: normal-normal model to the measure's effect sizes (with its continuity correction)
BAYES_MODELS = ("exact", "normal")


def spec_options(where: str, raw: dict[str, Any], kind: str, method: str) -> dict[str, Any]:
    """Validate the spec keys of this module ([prior], [subset]); raise SpecError naming the key."""
    from .bayes import mu_prior, tau_prior
    from .errors import SpecError

    opts: dict[str, Any] = {}
    prior = raw.get("prior")
    if prior is not None and not (kind == "method-sensitivity" or method == "BAYES"):
        raise SpecError(where, "key 'prior' applies to method BAYES and kind 'method-sensitivity' "
                               "only", key="prior")
    prior = prior or {}
    for key in prior:
        if key not in PRIOR_KEYS:
            raise SpecError(where, f"key 'prior.{key}': unknown; expected mu or tau",
                            key=f"prior.{key}")
    mp = tuple(prior.get("mu", ["normal", 0, 10]))
    tp = tuple(prior.get("tau", ["halfnormal", 0.5]))
    try:
        mu_prior(mp)
    except (TypeError, ValueError) as e:
        raise SpecError(where, f"key 'prior.mu': {e}", key="prior.mu") from None
    try:
        tau_prior(tp)
    except (TypeError, ValueError) as e:
        raise SpecError(where, f"key 'prior.tau': {e}", key="prior.tau") from None
    if kind == "method-sensitivity" or method == "BAYES":
        opts["prior"] = {"mu": list(mp), "tau": list(tp)}
    if "bayes_model" in raw:
        if method != "BAYES":
            raise SpecError(f"{where}: key 'bayes_model' applies to method BAYES only")
        if raw["bayes_model"] not in BAYES_MODELS:
            raise SpecError(f"{where}: key 'bayes_model' must be one of {', '.join(BAYES_MODELS)}, "
                            f"got {raw['bayes_model']!r}")
    if method == "BAYES":
        opts["bayes_model"] = raw.get("bayes_model", "exact")
    if "subset" in raw:
        if kind != "method-sensitivity":
            raise SpecError(where, "key 'subset' applies to kind 'method-sensitivity' only",
                            key="subset")
        s = raw["subset"]
        if set(s) - {"column", "value", "label"} or not all(isinstance(s.get(k), str) for k in ("column", "value")):
            raise SpecError(where, "key 'subset' must be a table with string keys column, value "
                                   "(and optional label): the studies to keep in the subset "
                                   "analysis", key="subset")
        opts["subset"] = {"column": s["column"], "value": s["value"],
                          "label": str(s.get("label", f"{s['column']} = {s['value']}"))}
    return opts


@dataclass(frozen=True)
class SpecMethodSensitivity:
    """A ``kind = "method-sensitivity"`` spec run over its data."""

    spec: Any
    selection: Any
    result: MethodSensitivity
    study_data: dict[str, tuple[float, ...]]

    @property
    def excluded(self):
        return self.selection.excluded

    def describe(self) -> str:
        s = self.result.to_dict()["summary"]
        return (f"{s['analyses']} analyses, pooled estimates {s['estimate_min']:.4f} to "
                f"{s['estimate_max']:.4f}; excluded {len(self.excluded)}")

    def to_dict(self) -> dict[str, Any]:
        d = self.result.to_dict()
        d.update(title=self.spec.title, kind=self.spec.kind, spec=self.spec.resolved(),
                 data=self.spec.data, k=len(self.result.labels), measure=self.spec.measure,
                 excluded=[{"study": e.study, "reason": e.reason} for e in self.excluded])
        d["study_data"] = [dict(study=lab, **{r: v[j] for r, v in self.study_data.items()})
                           for j, lab in enumerate(self.result.labels)]
        return d

    def plot(self, ax=None):
        return self.result.plot(ax=ax, title=self.spec.title, note=self.spec.note or None)


@dataclass(frozen=True)
class SpecBayes:
    """A ``method = "BAYES"`` spec run over its data (exact binomial-/Poisson-normal model for PLO /
    IRLN counts unless ``bayes_model = "normal"``; else normal-normal on the measure's scale)."""

    spec: Any
    selection: Any
    result: Any
    study_data: dict[str, tuple[float, ...]]

    @property
    def excluded(self):
        return self.selection.excluded + self.result.excluded

    def describe(self) -> str:
        r = self.result
        n = r.natural
        val = (f"{n.estimate:.4f} [{n.ci_lb:.4f}, {n.ci_ub:.4f}]" if n else
               f"{r.mu_median:.4f} [{r.mu_ci_lb:.4f}, {r.mu_ci_ub:.4f}]")
        return f"k = {r.k}, {r.measure}/BAYES: {val}; excluded {len(self.excluded)}"

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        d = r.to_dict()
        nat = r.natural
        d.update(title=self.spec.title, kind=self.spec.kind, spec=self.spec.resolved(),
                 data=self.spec.data, test="posterior", estimate=r.mu_median, ci_lb=r.mu_ci_lb,
                 ci_ub=r.mu_ci_ub, pi_lb=r.pred_ci_lb, pi_ub=r.pred_ci_ub, tau2=r.tau_median**2,
                 i2=None, conventions={"tau2_estimator": f"BAYES ({r.model})",
                                       "estimate": "posterior median of mu; equal-tailed credible "
                                                   "intervals; prediction = a new study's effect"},
                 excluded=[{"study": e.study, "reason": e.reason} for e in self.excluded])
        if nat is not None:
            d["natural"] = {"scale": nat.scale, "estimate": nat.estimate, "ci_lb": nat.ci_lb,
                            "ci_ub": nat.ci_ub, "pi_lb": nat.pi_lb, "pi_ub": nat.pi_ub,
                            "transform": nat.transform}
        for j, row in enumerate(d["studies"]):
            for role, vals in self.study_data.items():
                row[role] = vals[j]
        return d

    def plot(self, ax=None):
        from .plots.bayes_forest import bayes_forest

        return bayes_forest(self.result, ax=ax, title=self.spec.title)


def run_spec_extension(spec, sel, numbers):
    """Run a method-sensitivity or BAYES spec over its selected rows (called by
    :func:`metamsc.project.run_spec`, which passes its reader of a role's values, ``numbers``)."""
    from .bayes import bayes
    from .bayes_glmm import bayes_proportions, bayes_rates
    from .effects import effect_size
    from .errors import DataError

    idx = np.arange(len(sel.rows))
    labels = [sel.rows[i][spec.column("study")] for i in idx]
    data = {r: numbers(spec, sel, r) for r in spec.roles()}
    study_data = {r: tuple(v) for r, v in data.items()}
    prior = spec.options.get("prior", {"mu": ["normal", 0, 10], "tau": ["halfnormal", 0.5]})
    if spec.kind == "method-sensitivity":
        sub = spec.options.get("subset")
        mask = None
        if sub is not None:
            if sub["column"] not in sel.columns:
                raise DataError(sel.file, f"no column {sub['column']!r}; needed by key 'subset' "
                                          f"of spec {spec.path.name}", column=sub["column"])
            mask = [row.get(sub["column"], "").strip() == sub["value"] for row in sel.rows]
        try:
            res = method_sensitivity(data["events"], data["total"], labels=labels, level=spec.level,
                                     primary=(spec.measure, spec.method, spec.test),
                                     bayes_priors=((tuple(prior["mu"]), tuple(prior["tau"])),),
                                     subset=mask, subset_label=(sub or {}).get("label", "subset"))
        except ValueError as e:
            raise DataError(spec.path, str(e)) from None
        return SpecMethodSensitivity(spec, sel, res, study_data)
    exact = {"PLO": ("total", bayes_proportions), "IRLN": ("time", bayes_rates)}.get(spec.measure)
    try:
        if spec.options.get("bayes_model", "exact") == "exact" and exact and exact[0] in data:
            res = exact[1](data["events"], data[exact[0]], mu_prior=tuple(prior["mu"]),
                           tau_prior=tuple(prior["tau"]), level=spec.level, labels=labels)
            return SpecBayes(spec, sel, res, study_data)
        es = effect_size(spec.measure, labels=labels, add=spec.add, to=spec.to, **data)
        res = bayes(es.yi, es.vi, mu_prior=tuple(prior["mu"]), tau_prior=tuple(prior["tau"]),
                    level=spec.level, labels=labels, measure=spec.measure, n=es.n)
    except ValueError as e:
        raise DataError(spec.path, str(e)) from None
    return SpecBayes(spec, sel, res, study_data)
