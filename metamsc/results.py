"""Immutable result objects of a meta-analysis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ._dist import norm_isf, t_isf
from . import transforms

__all__ = ["Interval", "Conventions", "Diagnostics", "Excluded", "NaturalScale", "MetaResult",
           "PI_RULES", "I2_DEFINITIONS", "prediction_bounds"]

#: prediction-interval rules: critical value and standard deviation used
PI_RULES = {
    "metafor": "estimate -/+ crit * sqrt(SE^2 + tau^2), crit of the CI: z, or t(k-1) under "
               "Knapp-Hartung/t (metafor predict(), Riley et al. 2011)",
    "simple": "estimate -/+ z * tau, ignoring the uncertainty of the estimate (metafor pi.type='simple')",
    "t": "estimate -/+ t(k-1) * sqrt(SE^2 + tau^2) (metafor pi.type='t')",
    "riley": "estimate -/+ t(k-2) * sqrt(SE^2 + tau^2) (Riley et al. 2011; metafor pi.type='riley')",
    "HTS": "estimate -/+ t(k-2) * sqrt(SE_model^2 + tau^2) with the model-based SE "
           "(Higgins, Thompson & Spiegelhalter 2009; meta method.predict='HTS')",
    "HK": "estimate -/+ t(k-1) * sqrt(SE_HK^2 + tau^2) with the Hartung-Knapp SE "
          "(Partlett & Riley 2017; meta method.predict='HK')",
}

#: I^2 definitions
I2_DEFINITIONS = {
    "tau2": "tau2-based: I^2 = tau^2 / (tau^2 + v~), v~ = (k-1)/tr(P) (Higgins & Thompson 2002; metafor)",
    "Q": "Q-based: I^2 = max(0, (Q - (k-1)) / Q) (Higgins & Thompson 2002; meta)",
}


def prediction_bounds(estimate: float, se: float, se_model: float, s2w_knha: float, tau2: float,
                      k: int, test: str, level: float, rule: str) -> tuple[float, float]:
    """Prediction interval for a new study's effect under ``rule`` (see ``PI_RULES``)."""
    if rule not in PI_RULES:
        raise ValueError(f"unknown prediction-interval rule {rule!r}; expected one of {', '.join(PI_RULES)}")
    alpha = 1 - level
    nan = float("nan")

    def t(df: int) -> float:
        return float(t_isf(alpha / 2, df)) if df > 0 else nan

    if rule == "metafor":
        crit = float(norm_isf(alpha / 2)) if test == "z" else t(k - 1)
        sd = np.sqrt(se**2 + tau2)
    elif rule == "simple":
        crit, sd = float(norm_isf(alpha / 2)), np.sqrt(tau2)
    elif rule == "t":
        crit, sd = t(max(k - 1, 1)), np.sqrt(se**2 + tau2)
    elif rule == "riley":
        crit, sd = t(max(k - 2, 1)), np.sqrt(se**2 + tau2)
    elif rule == "HTS":
        crit, sd = t(k - 2), np.sqrt(se_model**2 + tau2)
    else:  # HK
        crit, sd = t(k - 1), np.sqrt(s2w_knha * se_model**2 + tau2)
    return float(estimate - crit * sd), float(estimate + crit * sd)


class Interval(NamedTuple):
    """A two-sided interval ``(low, high)``."""

    low: float
    high: float


@dataclass(frozen=True)
class Conventions:
    """Which conventions produced a result (so a reader can reproduce it)."""

    tau2_estimator: str
    test: str
    i2_definition: str = "tau2"
    prediction_interval: str = "metafor"
    tau2_ci: str = "Q-profile (Viechtbauer 2007)"
    correction: str = "none"
    back_transform: str = "none"


@dataclass(frozen=True)
class Diagnostics:
    """How the fit went: convergence, iterations, boundary, messages."""

    converged: bool
    iterations: int
    tau2_at_boundary: bool
    algorithm: str
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Excluded:
    """A study left out of an analysis, and why."""

    study: str
    reason: str


@dataclass(frozen=True)
class NaturalScale:
    """Pooled values back-transformed to the natural scale (proportion, rate, ratio)."""

    scale: str
    estimate: float
    ci_lb: float
    ci_ub: float
    pi_lb: float
    pi_ub: float
    transform: str


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or not np.isfinite(x):
        return "NA"
    return f"{x:.{digits}f}"


def _pfmt(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "NA"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"


@dataclass(frozen=True)
class MetaResult:
    """A fitted common- or random-effects model (metafor ``rma.uni`` parity).

    Values are on the analysis scale of ``measure``; ``natural`` holds the
    back-transformed pooled values for proportions, rates and ratios.
    ``statistic`` is a z value, or a t value on ``df`` degrees of freedom
    for Knapp-Hartung (``knha``, ``adhoc``) and ``t`` inference. ``i2`` is in
    percent. ``weights`` are percent weights of the studies.
    """

    measure: str
    method: str
    test: str
    level: float
    k: int
    estimate: float
    se: float
    statistic: float
    pvalue: float
    ci_lb: float
    ci_ub: float
    df: float | None
    tau2: float
    se_tau2: float
    tau2_ci_lb: float
    tau2_ci_ub: float
    i2: float
    i2_ci_lb: float
    i2_ci_ub: float
    h2: float
    h2_ci_lb: float
    h2_ci_ub: float
    q: float
    q_df: int
    q_pvalue: float
    pi_lb: float
    pi_ub: float
    pi_se: float
    vt: float
    s2w: float
    s2w_knha: float
    se_model: float
    labels: tuple[str, ...]
    yi: np.ndarray
    vi: np.ndarray
    weights: np.ndarray
    n: np.ndarray | None
    conventions: Conventions
    diagnostics: Diagnostics
    excluded: tuple[Excluded, ...] = ()
    natural: NaturalScale | None = None
    warnings: tuple[str, ...] = ()
    corrected: np.ndarray | None = None
    #: positions, in the input arrays, of the studies the model used (the others are in excluded)
    kept: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    # --- derived quantities -------------------------------------------------
    @property
    def tau(self) -> float:
        return float(np.sqrt(self.tau2))

    @property
    def i2_q(self) -> float:
        """Q-based I^2 in percent, max(0, (Q - df) / Q) (as R meta reports it)."""
        return float(max(0.0, 100 * (self.q - self.q_df) / self.q)) if self.q > 0 else 0.0

    def _crit(self, confidence_level: float) -> float:
        if self.df is None:
            return float(norm_isf((1 - confidence_level) / 2))
        if self.df <= 0:
            return float("nan")
        return float(t_isf((1 - confidence_level) / 2, self.df))

    def confidence_interval(self, confidence_level: float | None = None) -> Interval:
        """CI of the pooled effect on the analysis scale (z, or t(df) for Knapp-Hartung)."""
        lvl = self.level if confidence_level is None else confidence_level
        c = self._crit(lvl)
        return Interval(self.estimate - c * self.se, self.estimate + c * self.se)

    def prediction_interval(self, confidence_level: float | None = None,
                            rule: str = "metafor") -> Interval:
        """Prediction interval for the effect in a new study (``rule`` from ``PI_RULES``;
        the default is metafor's ``predict()``). NaN for a common-effect model."""
        if self.method == "EE":
            return Interval(float("nan"), float("nan"))
        lvl = self.level if confidence_level is None else confidence_level
        return Interval(*prediction_bounds(self.estimate, self.se, self.se_model, self.s2w_knha,
                                           self.tau2, self.k, self.test, lvl, rule))

    def study_intervals(self, confidence_level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-study Wald CIs yi -/+ z sqrt(vi) on the analysis scale."""
        lvl = self.level if confidence_level is None else confidence_level
        z = norm_isf((1 - lvl) / 2)
        s = np.sqrt(self.vi)
        return self.yi - z * s, self.yi + z * s

    def study_natural(self, confidence_level: float | None = None):
        """Per-study estimate and CI back-transformed (PFT with each study's own n), or None."""
        lb, ub = self.study_intervals(confidence_level)
        out = [transforms.back_transform(self.measure, v, self.n, harmonic=False)
               for v in (self.yi, lb, ub)]
        return None if out[0] is None else tuple(out)

    # --- presentation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary (the JSON written by ``metamsc run``)."""
        from .report import result_dict

        return result_dict(self)

    def to_frame(self):
        """Per-study table (study, yi, vi, ci_lb, ci_ub, weight) as a pandas DataFrame."""
        import pandas as pd

        lb, ub = self.study_intervals()
        return pd.DataFrame({"study": self.labels, "yi": self.yi, "vi": self.vi,
                             "ci_lb": lb, "ci_ub": ub, "weight": self.weights})

    def summary(self) -> str:
        """A readable report in the style of metafor's ``print.rma.uni``."""
        kind = "Common-effects model" if self.method == "EE" else f"Random-effects model ({self.method})"
        lines = [f"{kind}, measure {self.measure}, k = {self.k}", ""]
        if self.method != "EE":
            lines.append(f"tau^2 = {_fmt(self.tau2)} (SE = {_fmt(self.se_tau2)}), "
                         f"{100 * self.level:g}% CI [{_fmt(self.tau2_ci_lb)}, {_fmt(self.tau2_ci_ub)}]")
            lines.append(f"tau = {_fmt(self.tau)}")
        lines.append(f"I^2 = {_fmt(self.i2, 2)}%, H^2 = {_fmt(self.h2)}")
        lines.append(f"Q({self.q_df}) = {_fmt(self.q)}, p = {_pfmt(self.q_pvalue)}")
        lines.append("")
        stat = "z" if self.df is None else f"t({self.df:g})"
        lines.append(f"estimate = {_fmt(self.estimate)}, SE = {_fmt(self.se)}, "
                     f"{stat} = {_fmt(self.statistic)}, p = {_pfmt(self.pvalue)}")
        lines.append(f"{100 * self.level:g}% CI [{_fmt(self.ci_lb)}, {_fmt(self.ci_ub)}], "
                     f"PI [{_fmt(self.pi_lb)}, {_fmt(self.pi_ub)}]")
        if self.natural is not None:
            nat = self.natural
            lines.append(f"{nat.scale}: {_fmt(nat.estimate)} [{_fmt(nat.ci_lb)}, {_fmt(nat.ci_ub)}], "
                         f"PI [{_fmt(nat.pi_lb)}, {_fmt(nat.pi_ub)}] ({nat.transform})")
        d = self.diagnostics
        lines.append("")
        lines.append(f"fit: {d.algorithm}; converged = {d.converged}, iterations = {d.iterations}, "
                     f"tau^2 at boundary = {d.tau2_at_boundary}")
        for m in d.messages + self.warnings:
            lines.append(f"note: {m}")
        for e in self.excluded:
            lines.append(f"excluded: {e.study}: {e.reason}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.summary())}</pre>"

    def plot_forest(self, ax=None, **options):
        """Draw a forest plot of this result on ``ax`` (a new figure if None); returns ax."""
        from .plots.forest import forest

        return forest(self, ax=ax, **options)
