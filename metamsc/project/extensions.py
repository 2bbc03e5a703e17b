"""The spec kinds that run a model beyond one meta-analysis: ``kind = "method-sensitivity"``
(:func:`metamsc.method_sensitivity` over a spec's data) and ``method = "BAYES"`` (the exact
Bayesian models of :mod:`metamsc.bayes` and :mod:`metamsc.bayes_glmm`): their spec keys
(``[prior]``, ``[subset]``, ``bayes_model``), their runs and their results' JSON and figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..bayes import bayes, mu_prior, tau_prior
from ..bayes_glmm import bayes_proportions, bayes_rates
from ..effects import effect_size
from ..errors import DataError, SpecError
from ..method_sensitivity import MethodSensitivity, method_sensitivity

__all__ = ["PRIOR_KEYS", "BAYES_MODELS", "spec_options", "run_spec_extension",
           "SpecMethodSensitivity", "SpecBayes"]

PRIOR_KEYS = ("mu", "tau")
#: spec key ``bayes_model``: "exact" (default) fits the binomial-normal model to PLO counts
#: (events, total) and the Poisson-normal model to IRLN counts (events, time); "normal" fits the
#: normal-normal model to the measure's effect sizes (with its continuity correction)
BAYES_MODELS = ("exact", "normal")


def spec_options(where: str, raw: dict[str, Any], kind: str, method: str) -> dict[str, Any]:
    """Validate the spec keys of this module ([prior], [subset]); raise SpecError naming the key."""

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
        from ..plots.bayes_forest import bayes_forest  # matplotlib on first use

        return bayes_forest(self.result, ax=ax, title=self.spec.title)


def run_spec_extension(spec, sel, numbers):
    """Run a method-sensitivity or BAYES spec over its selected rows (called by
    :func:`metamsc.project.run_spec`, which passes its reader of a role's values, ``numbers``)."""
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
