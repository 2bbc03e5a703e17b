"""Immutable result objects of a meta-analysis, one kind per model.

:class:`MetaResult` is the inverse-variance common-/random-effects result (``model = "IV"``) and
the base of the other kinds, which add typed fields: :class:`MHResult` (Mantel-Haenszel),
:class:`PetoResult` and :class:`GLMMResult`. Every kind has ``refit(subset)``, which fits the
same model with the same settings to a subset of its studies (leave-one-out, cumulative and
subgroup analyses use it, so none of them replaces one model by another). ``subgroups`` and
``subgroup_test`` hold a subgroup analysis (:mod:`metamsc.subgroups`).

Plain data: nothing here draws or writes. ``plot_forest()``, ``to_dict()`` and ``refit()`` are
thin calls into the layer that draws (:mod:`metamsc.plots`), writes (:mod:`metamsc.report`) or
fits (the models), imported inside the method (tests/test_architecture.py lists them).

Why one module: the result kinds share one base (MetaResult) and its interval, convention and
diagnostics records; one file is the one place a reader looks up what a fit returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np

from ._dist import critical_value
from ._present import Interval, Summary, explained, fmt, level_arg, record_frame, scale_name
from ._util import Excluded, check_level
from .measures import get_measure
from . import transforms

__all__ = ["Interval", "Conventions", "Diagnostics", "Excluded", "NaturalScale", "MetaResult",
           "IVResult", "IVSettings", "MHResult", "PetoResult", "GLMMResult", "CommonEffect",
           "Subgroups", "SubgroupTest", "PI_RULES", "I2_DEFINITIONS", "prediction_bounds",
           "check_level", "Summary"]

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
    "V": "estimate -/+ t(k-1) * sqrt(SE_model^2 + tau^2) with the model-based SE, also under "
         "Hartung-Knapp (Higgins, Thompson & Spiegelhalter 2009 with k-1 df, Veroniki et al. "
         "2019; meta >= 8 default method.predict='V')",
}

#: I^2 definitions
I2_DEFINITIONS = {
    "tau2": "tau2-based: I^2 = tau^2 / (tau^2 + v~), v~ = (k-1)/tr(P) (Higgins & Thompson 2002; metafor)",
    "Q": "Q-based: I^2 = max(0, (Q - (k-1)) / Q) (Higgins & Thompson 2002; meta)",
}


def prediction_bounds(estimate: float, se: float, se_model: float, s2w_knha: float, tau2: float,
                      k: int, test: str, level: float, rule: str,
                      crit: float | None = None) -> tuple[float, float]:
    """Prediction interval for a new study's effect under ``rule`` (see ``PI_RULES``); ``crit``
    is the critical value of the estimate's CI when known (the default rule uses it)."""
    if rule not in PI_RULES:
        raise ValueError(f"unknown prediction-interval rule {rule!r}; expected one of {', '.join(PI_RULES)}")
    def t(df: int) -> float:
        return critical_value(level, float(df))

    if rule == "metafor":
        if crit is None:
            crit = critical_value(level) if test == "z" else t(k - 1)
        sd = math.sqrt(se**2 + tau2)
    elif rule == "simple":
        crit, sd = critical_value(level), np.sqrt(tau2)
    elif rule == "t":
        crit, sd = t(max(k - 1, 1)), np.sqrt(se**2 + tau2)
    elif rule == "riley":
        crit, sd = t(max(k - 2, 1)), np.sqrt(se**2 + tau2)
    elif rule == "HTS":
        crit, sd = t(k - 2), np.sqrt(se_model**2 + tau2)
    elif rule == "V":
        crit, sd = t(k - 1), np.sqrt(se_model**2 + tau2)
    else:  # HK
        crit, sd = t(k - 1), np.sqrt(s2w_knha * se_model**2 + tau2)
    return float(estimate - crit * sd), float(estimate + crit * sd)


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


#: fewest studies for which a prediction interval is reported in tables and figures: its t
#: quantile has k - 2 df (Higgins, Thompson & Spiegelhalter 2009, JRSS A 172:137), and with 2
#: studies tau^2 rests on one contrast; the model itself computes it for k >= 2, as metafor
PI_MIN_K = 3
#: tau^2 estimators whose study weights are the user's (``weights=``), not the inverse variances
USER_WEIGHTED = ("GENQ", "GENQM")


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

    @property
    def ci(self) -> Interval:
        """The back-transformed confidence interval, with its scale."""
        return Interval(self.ci_lb, self.ci_ub, None, self.scale)

    @property
    def pi(self) -> Interval:
        """The back-transformed prediction interval, with its scale."""
        return Interval(self.pi_lb, self.pi_ub, None, self.scale)


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or not np.isfinite(x):
        return "NA"
    return f"{x:.{digits}f}"


def _pfmt(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "NA"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"


def _confidence_level(value: float | None, default: float) -> float:
    """A confidence level for an interval method: ``default`` when None, else in (0, 1)."""
    if value is None:
        return default
    try:
        return check_level(value)
    except (TypeError, ValueError):
        raise ValueError(f"level must lie strictly between 0 and 1 (e.g. 0.95), "
                         f"got {value!r}") from None


@explained
@dataclass(frozen=True)
class SubgroupTest:
    """Test for subgroup differences, Q_between on G - 1 df (Borenstein et al. 2009, ch. 19).

    Separate tau^2 per subgroup: Q_between = sum w_g (mu_g - mu_w)^2 with w_g = 1/SE_g^2 of the
    subgroup estimates, chi^2(G - 1) (meta's Q.b.random). Common tau^2: the Wald test that the
    subgroup means of the meta-regression on subgroup dummies are equal (metafor's test of
    moderators QM of ``rma(yi, vi, mods = ~ factor(g))``); under Knapp-Hartung ``df2`` is set and
    ``pvalue`` is that of F = q / df on (df, df2) degrees of freedom, as metafor.
    """

    q: float
    df: int
    pvalue: float
    groups_used: tuple[str, ...] = ()
    method: str = "Q-between from the subgroup estimates and SEs (separate tau^2 per subgroup)"
    df2: float | None = None

    def _repr_extra(self) -> str:
        return f"Q({self.df})={_fmt(self.q)} p={_pfmt(self.pvalue)}"

    def summary(self) -> str:
        df2 = "" if self.df2 is None else f" (F test on {self.df}, {self.df2:g} df)"
        return (f"Test for subgroup differences: Q({self.df}) = {_fmt(self.q)}, "
                f"p = {_pfmt(self.pvalue)}{df2}\nsubgroups: {', '.join(self.groups_used)}\n"
                f"method: {self.method}")

    def to_frame(self):
        """A one-row pandas DataFrame: q, df, df2, pvalue, groups."""
        d = record_frame(self, ("q", "df", "df2", "pvalue"))
        d["groups"] = ", ".join(self.groups_used)
        return d


@explained
@dataclass(frozen=True, eq=False)
class Subgroups(Mapping):
    """Subgroup name -> fitted result, in the order of the analysis (an immutable mapping).

    ``tau2_common`` tells whether the subgroups share one tau^2; ``notes`` says which
    subgroups could not be pooled or are left out of the test, and why."""

    pairs: tuple[tuple[str, "MetaResult"], ...]
    tau2_common: bool = False
    notes: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> "MetaResult":
        for name, res in self.pairs:
            if name == key:
                return res
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def _repr_extra(self) -> str:
        common = " common tau^2" if self.tau2_common else ""
        return (", ".join(f"{n!r}: k={r.k} estimate={_fmt(r.estimate)}" for n, r in self.pairs)
                + common)

    def summary(self) -> str:
        common = "one common tau^2" if self.tau2_common else "a tau^2 per subgroup"
        lines = [f"Subgroups ({len(self)}, {common})"]
        lines += [f"{n}: k = {r.k}, estimate = {_fmt(r.estimate)} [{_fmt(r.ci_lb)}, "
                  f"{_fmt(r.ci_ub)}], tau^2 = {_fmt(r.tau2)}" for n, r in self.pairs]
        lines += [f"note: {m}" for m in self.notes]
        return "\n".join(lines)

    def to_frame(self):
        """One row per subgroup: subgroup, model, method, k, estimate, se, ci_lb, ci_ub, tau2,
        i2, pvalue (pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame([{"subgroup": n, "model": r.model, "method": r.method, "k": r.k,
                              "estimate": r.estimate, "se": r.se, "ci_lb": r.ci_lb,
                              "ci_ub": r.ci_ub, "tau2": r.tau2, "i2": r.i2, "pvalue": r.pvalue}
                             for n, r in self.pairs],
                            columns=["subgroup", "model", "method", "k", "estimate", "se",
                                     "ci_lb", "ci_ub", "tau2", "i2", "pvalue"])


def _subset_index(subset, k: int) -> np.ndarray:
    """Positions 0..k-1 from integer indices or a boolean mask over a result's k studies."""
    idx = np.asarray(subset)
    if idx.dtype == bool:
        if idx.shape != (k,):
            raise ValueError(f"a boolean subset needs one value per study (k = {k}), got shape "
                             f"{idx.shape}")
        return np.flatnonzero(idx)
    idx = np.atleast_1d(idx)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError("subset must be integer positions or a boolean mask over the studies")
    idx = idx.astype(int)
    if idx.size and (idx.min() < -k or idx.max() >= k):
        raise ValueError(f"subset has a position outside 0..{k - 1}")
    idx = np.where(idx < 0, idx + k, idx)
    if np.unique(idx).size != idx.size:
        raise ValueError("subset lists a study more than once")
    if idx.size == 0:
        raise ValueError("subset is empty: no study to refit")
    return idx


@dataclass(frozen=True)
class IVSettings:
    """The settings of an inverse-variance fit that :func:`metamsc.pool` does not keep in the
    result itself, so that :meth:`MetaResult.refit` repeats the same model."""

    pi: str = "metafor"
    i2: str = "tau2"
    threshold: float = 1e-12
    maxiter: int = 100
    #: user weights of the kept studies (None: inverse-variance weights)
    user_weights: np.ndarray | None = None
    #: continuity correction of the effect sizes (add, to), to describe a subset's correction
    add: float | None = None
    to: str | None = None
    #: further keyword arguments of ``pool`` (scalars), passed on unchanged
    other: tuple[tuple[str, Any], ...] = ()
    #: set when the result is part of a larger model and cannot be refitted alone (the reason)
    not_refittable: str | None = None


@explained
@dataclass(frozen=True)
class MetaResult:
    """A fitted meta-analytic model with one pooled effect: the inverse-variance common- or
    random-effects model (metafor ``rma.uni`` parity), and the base of every other kind
    (:class:`MHResult`, :class:`PetoResult`, :class:`GLMMResult`); ``model`` says which.

    Values are on the analysis scale of ``measure``; ``natural`` holds the
    back-transformed pooled values for proportions, rates and ratios.
    ``statistic`` is a z value, or a t value on ``df`` degrees of freedom
    for Knapp-Hartung (``knha``, ``adhoc``) and ``t`` inference. ``i2`` is in
    percent. ``weights`` are percent weights of the studies. ``refit(subset)``
    fits the same model (kind and settings) to a subset of the studies.
    ``subgroups`` (name -> result) and ``subgroup_test`` are set by a subgroup analysis.
    """

    #: the model kind: "IV" (inverse variance), "MH", "PETO" or "GLMM"
    model: ClassVar[str] = "IV"
    _repr_name: ClassVar[str] = "IVResult"

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
    #: inverse-variance only: settings for refit (None: taken from ``conventions``)
    settings: IVSettings | None = field(default=None, repr=False, compare=False)
    subgroups: Subgroups | None = field(default=None, repr=False, compare=False)
    subgroup_test: SubgroupTest | None = field(default=None, repr=False, compare=False)

    # --- derived quantities -------------------------------------------------
    @property
    def tau(self) -> float:
        return float(np.sqrt(self.tau2))

    @property
    def i2_q(self) -> float:
        """Q-based I^2 in percent, max(0, (Q - df) / Q) (as R meta reports it)."""
        return float(max(0.0, 100 * (self.q - self.q_df) / self.q)) if self.q > 0 else 0.0

    def _crit(self, level: float) -> float:
        return critical_value(level, self.df)

    def _interval(self, lower: float, upper: float, level: float, natural: bool) -> Interval:
        """An interval on the analysis scale, or back-transformed to the natural scale."""
        if not natural:
            return Interval(float(lower), float(upper), level, scale_name(self.measure))
        name = scale_name(self.measure, natural=True)
        if not name:
            raise ValueError(f"measure {self.measure} has no natural scale other than its own")
        back = transforms.back_transform(self.measure, np.array([lower, upper]), self.n,
                                         harmonic=True)
        if back is None:
            raise ValueError(f"measure {self.measure}: the back-transform needs the study sizes n")
        lo, hi = sorted(float(x) for x in back)
        return Interval(lo, hi, level, name)

    def confidence_interval(self, level: float | None = None, *, natural: bool = False,
                            confidence_level: float | None = None) -> Interval:
        """CI of the pooled effect (z, or t(df) for Knapp-Hartung) at ``level`` (default: the
        fit's), on the analysis scale or, with ``natural=True``, back-transformed (e.g. to
        proportions); the :class:`Interval` names its scale."""
        lvl = _confidence_level(level_arg(level, confidence_level, "confidence_interval"),
                                self.level)
        c = self._crit(lvl)
        return self._interval(self.estimate - c * self.se, self.estimate + c * self.se, lvl,
                              natural)

    def prediction_interval(self, level: float | None = None, rule: str = "metafor", *,
                            natural: bool = False,
                            confidence_level: float | None = None) -> Interval:
        """Prediction interval for the effect in a new study (``rule`` from ``PI_RULES``;
        the default is metafor's ``predict()``). NaN for a common-effect model."""
        lvl = _confidence_level(level_arg(level, confidence_level, "prediction_interval"),
                                self.level)
        if self.method == "EE":
            return Interval(float("nan"), float("nan"), lvl,
                            scale_name(self.measure, natural=natural))
        return self._interval(*prediction_bounds(self.estimate, self.se, self.se_model,
                                                 self.s2w_knha, self.tau2, self.k, self.test, lvl,
                                                 rule), lvl, natural)

    def study_intervals(self, level: float | None = None, *,
                        confidence_level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-study Wald CIs yi -/+ z sqrt(vi) on the analysis scale."""
        lvl = _confidence_level(level_arg(level, confidence_level, "study_intervals"), self.level)
        z = critical_value(lvl)
        s = np.sqrt(self.vi)
        return self.yi - z * s, self.yi + z * s

    def study_natural(self, level: float | None = None, *, confidence_level: float | None = None):
        """Per-study estimate and CI back-transformed (PFT with each study's own n), or None."""
        lb, ub = self.study_intervals(level_arg(level, confidence_level, "study_natural"))
        out = [transforms.back_transform(self.measure, v, self.n, harmonic=False)
               for v in (self.yi, lb, ub)]
        return None if out[0] is None else tuple(out)

    # --- refitting ---------------------------------------------------------
    def _child_kept(self, idx: np.ndarray, child: "MetaResult") -> np.ndarray:
        """Positions in this result's input of the studies a refit on ``idx`` kept."""
        base = np.arange(self.k) if self.kept is None else np.asarray(self.kept, dtype=int)
        ck = np.arange(child.k) if child.kept is None else np.asarray(child.kept, dtype=int)
        return base[idx][ck]

    def refit(self, subset) -> "MetaResult":
        """The same model (kind, estimator, test, level, measure and every other setting) fitted
        to a subset of this result's studies: integer positions or a boolean mask over
        ``labels``. The refit's ``kept`` holds positions in this result's input."""
        import dataclasses

        from .pooling import correction_text_of, pool

        idx = _subset_index(subset, self.k)
        st = self.settings if self.settings is not None else _iv_settings_from(self)
        if st.not_refittable:
            raise ValueError(st.not_refittable)
        kw: dict[str, Any] = dict(st.other)
        for name, value in st.other:
            if np.ndim(value) > 0:
                raise ValueError(f"refit cannot subset the argument {name!r} of the original fit")
        kw.update(method=self.method, test=self.test, level=self.level,
                  measure=self.measure, pi=st.pi, i2=st.i2, threshold=st.threshold,
                  maxiter=st.maxiter)
        if self.n is not None:
            kw["n"] = np.asarray(self.n)[idx]
        if st.user_weights is not None:
            kw["weights"] = np.asarray(st.user_weights)[idx]
        corrected = None if self.corrected is None else np.asarray(self.corrected, dtype=bool)[idx]
        if corrected is not None:
            kw["corrected"] = corrected
        if st.add is not None and corrected is not None:
            kw["correction"] = correction_text_of(st.add, st.to, corrected)
        else:
            kw["correction"] = self.conventions.correction
        child = pool(np.asarray(self.yi)[idx], np.asarray(self.vi)[idx],
                     labels=[self.labels[i] for i in idx], **kw)
        return dataclasses.replace(child, kept=self._child_kept(idx, child),
                                   settings=dataclasses.replace(st, user_weights=kw.get("weights")))

    # --- presentation ------------------------------------------------------
    def _typed_extra(self) -> dict[str, Any]:
        """Kind-specific values, for the ``extra`` section of the JSON (none for IV)."""
        return {}

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

    def _title(self) -> str:
        return ("Common-effects model" if self.method == "EE"
                else f"Random-effects model ({self.method})")

    def summary(self) -> str:
        """A readable report in the style of metafor's ``print.rma.uni``."""
        lines = [f"{self._title()}, measure {self.measure}, k = {self.k}", ""]
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
        if self.subgroups:
            lines.append("")
            common = " (common tau^2)" if self.subgroups.tau2_common else ""
            for name, sub in self.subgroups.items():
                lines.append(f"subgroup {name}{common}: k = {sub.k}, estimate = {_fmt(sub.estimate)} "
                             f"[{_fmt(sub.ci_lb)}, {_fmt(sub.ci_ub)}], tau^2 = {_fmt(sub.tau2)}")
            t = self.subgroup_test
            if t is not None:
                lines.append(f"test for subgroup differences: Q({t.df}) = {_fmt(t.q)}, "
                             f"p = {_pfmt(t.pvalue)}")
        d = self.diagnostics
        lines.append("")
        lines.append(f"fit: {d.algorithm}; converged = {d.converged}, iterations = {d.iterations}, "
                     f"tau^2 at boundary = {d.tau2_at_boundary}")
        for m in d.messages + self.warnings:
            lines.append(f"note: {m}")
        for e in self.excluded:
            lines.append(f"excluded: {e.study}: {e.reason}")
        return "\n".join(lines)

    def _summary_rows(self):
        """The HTML table of ``summary()``: the pooled values with their intervals."""
        pct = f"{100 * self.level:g}%"
        rows = [("estimate", self.estimate, self.ci_lb, self.ci_ub, f"{pct} CI, {scale_name(self.measure)}"),
                ("prediction", self.estimate, self.pi_lb, self.pi_ub, f"{pct} PI")]
        if self.natural is not None:
            nat = self.natural
            rows += [(f"{nat.scale}", nat.estimate, nat.ci_lb, nat.ci_ub, f"{pct} CI, back-transformed"),
                     (f"{nat.scale} (prediction)", nat.estimate, nat.pi_lb, nat.pi_ub, f"{pct} PI")]
        if self.method != "EE":
            rows.append(("tau^2", self.tau2, self.tau2_ci_lb, self.tau2_ci_ub, f"{pct} CI"))
        rows.append(("I^2 (%)", self.i2, self.i2_ci_lb, self.i2_ci_ub, f"{pct} CI"))
        rows.append((f"Q ({self.q_df} df)", self.q, None, None, f"p = {_pfmt(self.q_pvalue)}"))
        return ("quantity", "value", "lower", "upper", "note"), rows

    def plot_forest(self, ax=None, **options):
        """Draw a forest plot of this result on ``ax`` (a new figure if None); returns ax."""
        from .plots.forest import forest

        return forest(self, ax=ax, **options)


#: the inverse-variance result (the name says the kind)
IVResult = MetaResult


#: the heterogeneity intervals that ``pool`` computes on first access (as metafor's ``confint``)
DEFERRED_FIELDS = ("tau2_ci_lb", "tau2_ci_ub", "i2_ci_lb", "i2_ci_ub", "h2_ci_lb", "h2_ci_ub")


class Deferred:
    """A value of :data:`DEFERRED_FIELDS` not computed yet: ``compute()`` returns a dict of
    those fields. A result stores the same ``Deferred`` in each of them; the first read of any
    computes all of them once and keeps the numbers (the result stays immutable to its users)."""

    __slots__ = ("compute",)

    def __init__(self, compute):
        self.compute = compute


class DeferredField:
    """Data descriptor of a field computed on first read: resolves a :class:`Deferred` (all the
    fields it computes at once; the result stays immutable to its users). Used for
    :data:`DEFERRED_FIELDS` of :class:`MetaResult` and the lazy fields of the Bayesian results."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj, cls=None):
        if obj is None:
            raise AttributeError(self.name)  # no class-level default (dataclass fields stay required)
        d = obj.__dict__
        value = d[self.name]
        if isinstance(value, Deferred):
            d.update(value.compute())
            value = d[self.name]
        return value

    def __set__(self, obj, value):
        obj.__dict__[self.name] = value  # called by the dataclass __init__ only (frozen otherwise)


# settings and (without user weights) weights: pool computes them on first read
for _name in DEFERRED_FIELDS + ("settings", "weights"):
    setattr(MetaResult, _name, DeferredField(_name))


def _iv_settings_from(res: MetaResult) -> IVSettings:
    """Settings of an inverse-variance result built without them (read back from its
    conventions, which name the prediction-interval rule and the I^2 definition)."""
    pi = next((k for k, v in PI_RULES.items() if v == res.conventions.prediction_interval), "metafor")
    i2 = next((k for k, v in I2_DEFINITIONS.items() if v == res.conventions.i2_definition), "tau2")
    if res.method == "EE":
        i2 = "tau2"  # a common-effect model always reports the Q-based I^2
    weights = np.asarray(res.weights) if res.method in USER_WEIGHTED else None
    return IVSettings(pi=pi, i2=i2, user_weights=weights)


# --- two-group common-effect models ---------------------------------------------------------

@explained
@dataclass(frozen=True)
class _TwoGroupResult(MetaResult):
    """Shared fields of the Mantel-Haenszel and Peto results: the 2x2 tables of the studies
    (``events1``, ``total1``, ``events2``, ``total2``, one per entry of ``labels``) and the
    continuity-correction settings (first value: yi/vi; second: the pooled tables)."""

    events1: np.ndarray | None = None
    total1: np.ndarray | None = None
    events2: np.ndarray | None = None
    total2: np.ndarray | None = None
    pooling: str = ""
    add: tuple[float, float] = (0.5, 0.0)
    to: tuple[str, str] = ("only0", "none")
    drop00: tuple[bool, bool] = (True, False)
    #: studies with a finite yi (those in Q, I^2, H^2) and tables given in the input
    k_yi: int = 0
    k_all: int = 0

    def _tables(self, idx):
        return tuple(np.asarray(a)[idx] for a in (self.events1, self.total1, self.events2,
                                                   self.total2))

    def _finish_refit(self, idx, child):
        import dataclasses

        return dataclasses.replace(child, kept=self._child_kept(idx, child))


@explained
@dataclass(frozen=True)
class MHResult(_TwoGroupResult):
    """A Mantel-Haenszel common-effect fit of 2x2 tables (metafor ``rma.mh``).

    ``CMH``/``CO`` (Cochran-Mantel-Haenszel and Cochran tests of no association, chi^2(1)) with
    p-values; for OR also ``BD``/``TA`` (Breslow-Day and Tarone tests of homogeneity) on
    ``k_pos - 1`` df. ``variance`` names the variance estimator; ``correct`` the CMH correction.
    For the incidence-rate measures IRR/IRD (``pool_mh_rates``) ``total1``/``total2`` are the
    person-times and ``CMH`` the MH test for person-time data (IRR only).
    """

    model: ClassVar[str] = "MH"

    variance: str = ""
    correct: bool = True
    CMH: float = float("nan")
    CMHp: float = float("nan")
    CO: float = float("nan")
    COp: float = float("nan")
    BD: float | None = None
    BDp: float | None = None
    TA: float | None = None
    TAp: float | None = None
    k_pos: int | None = None
    #: heterogeneity rule of pool_mh(q=...) (twogroup.MH_Q_RULES): "metafor", "cochrane", "inverse"
    q_rule: str = "metafor"
    #: the inverse-variance random-effects model with the DL tau^2 of this fit's Q, as R meta
    #: reports it beside the MH estimate (q="cochrane" or "inverse"; None under "metafor")
    random: MetaResult | None = field(default=None, repr=False, compare=False)

    @property
    def of_rates(self) -> bool:
        """Whether this is a fit of incidence rates (``pool_mh_rates``: IRR, IRD), read from the
        measure's registry family; ``total1``/``total2`` then hold person-times."""
        return get_measure(self.measure).family == "rate2"

    def refit(self, subset) -> "MHResult":
        """The Mantel-Haenszel fit (same measure, level, add, to, drop00, correct) of a subset."""
        from .twogroup import pool_mh

        idx = _subset_index(subset, self.k)
        if self.of_rates:  # incidence rates: total1/total2 hold person-times
            from .twogroup import pool_mh_rates as pool_mh
        child = pool_mh(*self._tables(idx), measure=self.measure, level=self.level, add=self.add,
                        to=self.to, drop00=self.drop00, correct=self.correct,
                        labels=[self.labels[i] for i in idx], q=self.q_rule)
        return self._finish_refit(idx, child)

    def _title(self) -> str:
        return "Common-effects model (Mantel-Haenszel)"

    def summary(self) -> str:
        """A readable report in the style of metafor's ``print.rma.mh``; with ``q="cochrane"`` or
        ``"inverse"`` also the random-effects model R meta prints beside the MH estimate."""
        text = str(super().summary())
        r = self.random
        if r is None:
            return text
        stat = "z" if r.df is None else f"t({r.df:g})"
        extra = [f"random-effects model (R meta): {r.method} tau^2 from Q around the "
                 f"{'MH' if self.q_rule == 'cochrane' else 'inverse-variance'} estimate = "
                 f"{_fmt(r.tau2)}",
                 f"estimate = {_fmt(r.estimate)}, SE = {_fmt(r.se)}, {stat} = {_fmt(r.statistic)}, "
                 f"p = {_pfmt(r.pvalue)}, {100 * r.level:g}% CI [{_fmt(r.ci_lb)}, {_fmt(r.ci_ub)}]"]
        if r.natural is not None:
            nat = r.natural
            extra.append(f"{nat.scale}: {_fmt(nat.estimate)} [{_fmt(nat.ci_lb)}, {_fmt(nat.ci_ub)}]")
        head, sep, tail = text.partition("\n\nfit: ")
        return head + "\n\n" + "\n".join(extra) + (sep + tail if sep else "")

    def _typed_extra(self) -> dict[str, Any]:
        d = {"pooling": self.pooling, "k_yi": self.k_yi, "k_all": self.k_all,
             "variance": self.variance, "correct": self.correct, "add": self.add, "to": self.to,
             "drop00": self.drop00, "CO": self.CO, "COp": self.COp, "CMH": self.CMH,
             "CMHp": self.CMHp}
        if self.of_rates:  # rma.mh: the MH test for IRR only, no Cochran test
            del d["CO"], d["COp"]
            if self.measure == "IRD":
                del d["CMH"], d["CMHp"]
        if self.measure == "OR":
            d.update(BD=self.BD, BDp=self.BDp, TA=self.TA, TAp=self.TAp, k_pos=self.k_pos)
        if self.random is not None:  # listed only when set, so metafor's outputs stay unchanged
            r = self.random
            d.update(q_rule=self.q_rule, random={
                "estimate": r.estimate, "se": r.se, "ci_lb": r.ci_lb, "ci_ub": r.ci_ub,
                "statistic": r.statistic, "pvalue": r.pvalue, "tau2": r.tau2,
                "method": r.conventions.tau2_estimator})
        return d


@explained
@dataclass(frozen=True)
class PetoResult(_TwoGroupResult):
    """Peto's one-step pooled log odds ratio (metafor ``rma.peto``); ``k_pos`` tables have a
    positive hypergeometric variance."""

    model: ClassVar[str] = "PETO"

    k_pos: int = 0

    def refit(self, subset) -> "PetoResult":
        """Peto's fit (same level, add, to, drop00) of a subset of the studies."""
        from .twogroup import pool_peto

        idx = _subset_index(subset, self.k)
        child = pool_peto(*self._tables(idx), level=self.level, add=self.add, to=self.to,
                          drop00=self.drop00, labels=[self.labels[i] for i in idx])
        return self._finish_refit(idx, child)

    def _title(self) -> str:
        return "Common-effects model (Peto)"

    def _typed_extra(self) -> dict[str, Any]:
        return {"pooling": self.pooling, "k_yi": self.k_yi, "k_all": self.k_all,
                "k_pos": self.k_pos, "add": self.add, "to": self.to, "drop00": self.drop00}


# --- generalised linear mixed models ----------------------------------------------------------

@dataclass(frozen=True)
class CommonEffect:
    """The common-effect (GLM) estimate reported when the random-effects GLMM is not
    identifiable; ``exact_ci`` a two-sided Clopper-Pearson CI for a single proportion."""

    estimate: float
    se: float
    ci_lb: float
    ci_ub: float
    kind: str
    exact_ci: tuple[float, float] | None = None
    exact_ci_kind: str | None = None


@explained
@dataclass(frozen=True)
class GLMMResult(MetaResult):
    """A binomial-normal / Poisson-normal GLMM fit (metafor ``rma.glmm``), see :mod:`metamsc.glmm`.

    ``q`` is the Wald-type heterogeneity test QE_Wld (``qe_wald``); ``qe_lrt``/``qe_lrt_pvalue``
    the likelihood-ratio test on ``qe_df`` df. ``loglik`` is the log-likelihood at the estimate
    (``loglik_ee`` of the common-effect GLM, ``loglik_saturated`` of the saturated model).
    ``degenerate`` says why no model is estimable (then the estimates are NaN and, for
    all-zero or all-event data, ``exact_lower_bound``/``exact_upper_bound`` hold the exact bound
    described by ``bound_kind``; or ``common_effect`` the GLM estimate). The counts
    (``events``, ``total`` or ``time``, and ``events2``/``total2`` for OR, ``events2``/``time2``
    for IRR), ``nagq``,
    ``or_model`` and ``tau2_ci_computed`` let ``refit`` repeat the same model.
    """

    model: ClassVar[str] = "GLMM"

    events: np.ndarray | None = None
    total: np.ndarray | None = None
    time: np.ndarray | None = None
    events2: np.ndarray | None = None
    total2: np.ndarray | None = None
    time2: np.ndarray | None = None
    nagq: int = 7
    or_model: str | None = None
    tau2_ci_computed: bool = True
    qe_wald: float = float("nan")
    qe_wald_pvalue: float = float("nan")
    qe_lrt: float = float("nan")
    qe_lrt_pvalue: float = float("nan")
    qe_df: int | None = None
    qe_lrt_text: str | None = None
    loglik: float | None = None
    loglik_ee: float | None = None
    loglik_saturated: float | None = None
    sigma2: float | None = None  # variance of the random study intercepts (model UM.RS)
    tau2_ci_kind: str | None = None
    gradient_max: float | None = field(default=None, compare=False)
    #: eigenvalues of the Hessian of the deviance at the optimum; for models with study effects
    #: (UM.FS) the smallest and the largest only (found on the arrowhead matrix in O(k))
    hessian_eigenvalues: tuple[float, ...] | None = field(default=None, compare=False)
    nfev: int = field(default=0, compare=False)
    degenerate: str | None = None
    exact_lower_bound: float | None = None
    exact_upper_bound: float | None = None
    bound_kind: str | None = None
    common_effect: CommonEffect | None = None
    weights_definition: str = ""

    def refit(self, subset) -> "GLMMResult":
        """The same GLMM (measure, method, nagq, test, level, OR model, tau^2 CI) of a subset."""
        import dataclasses

        from .glmm import fit_glmm

        idx = _subset_index(subset, self.k)

        def sub(a):
            return None if a is None else np.asarray(a)[idx]

        child = fit_glmm(sub(self.events), sub(self.total), time=sub(self.time),
                         events2=sub(self.events2), total2=sub(self.total2),
                         time2=sub(self.time2), measure=self.measure,
                         method=self.method, nagq=self.nagq, test=self.test, level=self.level,
                         labels=[self.labels[i] for i in idx], model=self.or_model or "UM.FS",
                         tau2_ci=self.tau2_ci_computed)
        return dataclasses.replace(child, kept=self._child_kept(idx, child))

    @property
    def likelihood(self) -> str:
        """The GLMM's family: "Poisson-normal" for rates (one group, or two under UM.FS or UM.RS),
        else "binomial-normal" (proportions, odds ratios, and the conditional IRR models)."""
        rate = get_measure(self.measure).family in ("rate", "rate2")
        return ("Poisson-normal" if rate and (self.measure != "IRR"
                                              or self.or_model in ("UM.FS", "UM.RS"))
                else "binomial-normal")

    def _title(self) -> str:
        return f"{super()._title()}, {self.likelihood} GLMM, nagq = {self.nagq}"

    def _typed_extra(self) -> dict[str, Any]:
        """The JSON ``extra`` section (the keys the written results have always used)."""
        d: dict[str, Any] = {"nagq": self.nagq, "model": self.or_model, "measure": self.measure}
        if self.degenerate is not None:
            d["degenerate"] = self.degenerate
        if self.bound_kind is not None:
            d.update(exact_lower_bound=self.exact_lower_bound,
                     exact_upper_bound=self.exact_upper_bound, bound_kind=self.bound_kind)
        if self.common_effect is not None:
            ce = self.common_effect
            c = {"estimate": ce.estimate, "se": ce.se, "ci_lb": ce.ci_lb, "ci_ub": ce.ci_ub,
                 "kind": ce.kind}
            if ce.exact_ci is not None:
                c.update(exact_ci=ce.exact_ci, exact_ci_kind=ce.exact_ci_kind)
            d["common_effect"] = c
        if self.loglik_saturated is not None:
            d["loglik_saturated"] = self.loglik_saturated
        if self.bound_kind is None:  # a model was at least attempted
            d.update(QE_Wld=self.qe_wald, QEp_Wld=self.qe_wald_pvalue, QE_LRT=self.qe_lrt,
                     QEp_LRT=self.qe_lrt_pvalue, QE_df=self.qe_df, loglik_EE=self.loglik_ee)
        if self.loglik is not None:
            d["loglik"] = self.loglik
        if self.tau2_ci_kind is not None:
            d.update(tau2_profile_ci=(self.tau2_ci_lb, self.tau2_ci_ub),
                     tau2_ci_kind=self.tau2_ci_kind)
        if self.qe_lrt_text is not None:
            d["QE_LRT_text"] = self.qe_lrt_text
        d["weights_definition"] = self.weights_definition
        return d
