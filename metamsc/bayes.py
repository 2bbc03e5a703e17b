"""Bayesian random-effects meta-analysis by exact numerical integration (no sampling).

The normal-normal hierarchical model y_i ~ N(theta_i, v_i), theta_i ~ N(mu, tau^2) with a
normal or flat prior on mu and a proper prior on tau (Röver C. 2020, J Stat Softw 93(6);
Friede T. et al. 2017, Res Synth Methods 8:79 and Biom J 59:658). Given tau, mu is integrated
analytically: its conditional posterior is normal, and the marginal likelihood p(y | tau) is a
closed form. The marginal posterior of tau is integrated by adaptive composite Gauss-Legendre
quadrature on u = tau / (tau + c), and every other posterior (mu, a new study's effect, the
study-specific effects theta_i) is the resulting finite mixture of normals, as in Röver's
DIRECT algorithm but with the quadrature refined until the integral is exact to ~1e-12.
Quantiles come from root finding on the mixture CDF (|error| < 1e-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ._bayes_numerics import (Mixture, TauMap, invert, panel_nodes, shortest, adaptive_panels,
                              finite_moments, tail_warnings)
from ._present import explained
from ._util import check_level, readonly, study_arrays
from .frames import accepts_data
from .results import Deferred, DeferredField, Excluded, NaturalScale

__all__ = ["Prior", "tau_prior", "mu_prior", "BayesResult", "bayes", "TURNER_2015", "RHODES_2015",
           "TAU_PRIORS"]

_LOG2PI = math.log(2 * math.pi)

# --- empirical heterogeneity priors ---------------------------------------------------------
# Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for
# between-study heterogeneity and simple methods for their application in Bayesian
# meta-analysis. Stat Med 2015;34(6):984-998, Table IV: log-normal priors for tau^2 of a log odds
# ratio, LN(m, s^2), by outcome type (rows) and comparison type (columns, in this order:
# pharmacological vs placebo/control, pharmacological vs pharmacological, non-pharmacological vs
# placebo/control, non-pharmacological vs pharmacological, non-pharmacological vs
# non-pharmacological). The marginal (any setting) prior is LN(-2.56, 1.74^2) (p. 993).
_TURNER_COMPARISONS = ("pharmacological vs placebo/control", "pharmacological vs pharmacological",
                       "non-pharmacological vs placebo/control",
                       "non-pharmacological vs pharmacological",
                       "non-pharmacological vs non-pharmacological")
_TURNER_OUTCOMES = (
    "all-cause mortality", "obstetric outcomes",
    "cause-specific mortality / major morbidity event / composite (mortality or morbidity)",
    "resource use / hospital stay / process", "surgical / device related success / failure",
    "withdrawals / drop-outs", "internal / structure-related outcomes",
    "general physical health indicators", "adverse events", "infection / onset of new disease",
    "signs / symptoms reflecting continuation / end of condition", "pain",
    "quality of life / functioning (dichotomized)", "mental health indicators",
    "biological markers (dichotomized)", "subjective outcomes (various)")
_TURNER_M = (  # one row per comparison type, one entry per outcome type (Table IV, means)
    (-3.95, -3.52, -3.71, -2.34, -2.14, -2.99, -2.71, -2.29, -1.87, -2.49, -2.06, -1.83, -2.54, -2.12, -1.77, -2.70),
    (-4.18, -3.75, -3.95, -2.58, -2.37, -3.23, -2.94, -2.53, -2.10, -2.73, -2.29, -2.06, -2.78, -2.35, -2.00, -2.93),
    (-4.17, -3.74, -3.93, -2.56, -2.36, -3.21, -2.93, -2.51, -2.10, -2.71, -2.28, -2.05, -2.77, -2.34, -1.99, -2.92),
    (-2.92, -2.49, -2.68, -1.31, -1.11, -1.96, -1.67, -1.26, -0.84, -1.46, -1.03, -0.80, -1.51, -1.09, -0.74, -1.67),
    (-3.50, -3.08, -3.27, -1.90, -1.69, -2.55, -2.26, -1.85, -1.43, -2.05, -1.61, -1.38, -2.10, -1.67, -1.33, -2.26))
_TURNER_S = (  # Table IV, standard deviations
    (1.34, 1.74, 1.74, 1.74, 1.74, 1.74, 1.74, 1.53, 1.52, 1.52, 1.51, 1.52, 1.54, 1.53, 1.52, 1.52),
    (1.41, 1.79, 1.79, 1.79, 1.79, 1.79, 1.79, 1.58, 1.58, 1.58, 1.58, 1.58, 1.60, 1.60, 1.58, 1.58),
    (1.55, 1.91, 1.91, 1.91, 1.91, 1.91, 1.92, 1.72, 1.71, 1.71, 1.71, 1.71, 1.73, 1.72, 1.71, 1.71),
    (1.02, 1.50, 1.51, 1.50, 1.50, 1.51, 1.51, 1.25, 1.24, 1.24, 1.24, 1.25, 1.27, 1.27, 1.24, 1.25),
    (1.26, 1.68, 1.68, 1.68, 1.68, 1.68, 1.68, 1.46, 1.45, 1.45, 1.45, 1.45, 1.47, 1.47, 1.45, 1.45))
#: (outcome, comparison) -> (m, s) of the log-normal prior for tau^2 (log odds ratio scale)
TURNER_2015: dict[tuple[str, str], tuple[float, float]] = {
    (o, c): (_TURNER_M[j][i], _TURNER_S[j][i])
    for j, c in enumerate(_TURNER_COMPARISONS) for i, o in enumerate(_TURNER_OUTCOMES)}
TURNER_2015[("any", "any")] = (-2.56, 1.74)

# Rhodes KM, Turner RM, Higgins JPT. Predictive distributions were developed for the extent of
# heterogeneity in meta-analyses of continuous outcome data. J Clin Epidemiol 2015;68(1):52-60,
# Table 3: log-t priors with 5 degrees of freedom for tau^2 of a standardised mean difference,
# (location, scale), by outcome type and comparison type (pharmacological vs placebo/control,
# pharmacological vs pharmacological, non-pharmacological (any)); general setting t5(-3.44, 2.59).
_RHODES_COMPARISONS = ("pharmacological vs placebo/control", "pharmacological vs pharmacological",
                       "non-pharmacological")
_RHODES_OUTCOMES = (
    "obstetric outcome", "resource use and hospital stay / process",
    "internal and external structure-related outcome",
    "general physical health and adverse event and pain and quality of life / functioning",
    "signs / symptoms reflecting continuation / end of condition and infection / onset of new "
    "acute / chronic disease", "mental health outcome", "biological marker",
    "various subjectively measured outcomes")
_RHODES_LOC = ((-4.13, -2.55, -2.43, -3.16, -3.00, -2.99, -3.41, -2.76),
               (-4.40, -2.83, -2.70, -3.44, -3.27, -3.27, -3.68, -3.03),
               (-3.99, -2.41, -2.29, -3.02, -2.86, -3.85, -3.27, -2.62))
_RHODES_SCALE = ((2.34, 2.73, 2.50, 2.50, 2.50, 2.16, 2.83, 2.58),
                 (2.31, 2.70, 2.46, 2.44, 2.47, 2.14, 2.78, 2.59),
                 (2.11, 2.57, 2.32, 2.27, 2.33, 1.93, 2.66, 2.41))
#: (outcome, comparison) -> (location, scale) of the log-t(5) prior for tau^2 (SMD scale)
RHODES_2015: dict[tuple[str, str], tuple[float, float]] = {
    (o, c): (_RHODES_LOC[j][i], _RHODES_SCALE[j][i])
    for j, c in enumerate(_RHODES_COMPARISONS) for i, o in enumerate(_RHODES_OUTCOMES)}
RHODES_2015[("any", "any")] = (-3.44, 2.59)

#: prior families for tau: name -> parameter names
TAU_PRIORS = {"halfnormal": ("scale",), "halfcauchy": ("scale",), "halfstudent": ("scale", "df"),
              "lognormal": ("meanlog", "sdlog"), "uniform": ("lower", "upper"),
              "exponential": ("rate",), "turner": ("outcome", "comparison"),
              "rhodes": ("outcome", "comparison")}


@dataclass(frozen=True)
class Prior:
    """A prior distribution of mu or tau: family, parameters, a label, its log density."""

    family: str
    params: tuple
    label: str
    lower: float = 0.0
    upper: float = math.inf
    #: for priors on log tau (log-normal, Turner, Rhodes): location and scale of log tau, used to
    #: integrate on the log scale
    log_scale: tuple[float, float] | None = None
    logpdf: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False, default=None)

    def pdf(self, x: ArrayLike) -> np.ndarray:
        return np.exp(self.logpdf(np.asarray(x, dtype=float)))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "parameters": list(self.params), "label": self.label}


def _num(name, x, positive=True) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {x!r}")
    x = float(x)
    if not math.isfinite(x) or (positive and x <= 0):
        raise ValueError(f"{name} must be a finite{' positive' if positive else ''} number, got {x!r}")
    return x


def _lookup(table, name, outcome, comparison):
    if (outcome, comparison) in table:
        return table[(outcome, comparison)]
    outs = sorted({o for o, _ in table})
    comps = sorted({c for _, c in table})
    if outcome not in outs:
        raise ValueError(f"tau prior {name}: unknown outcome type {outcome!r}; expected one of: "
                         f"{'; '.join(outs)}")
    raise ValueError(f"tau prior {name}: unknown comparison {comparison!r}; expected one of: "
                     f"{'; '.join(comps)}")


def tau_prior(spec) -> Prior:
    """A prior for tau from ``(family, *parameters)`` (see ``TAU_PRIORS``) or a Prior.

    ``("turner", outcome, comparison)`` is Turner et al. (2015) Table IV (log-normal on tau^2,
    log odds ratios); ``("rhodes", outcome, comparison)`` is Rhodes et al. (2015) Table 3 (log-t(5)
    on tau^2, standardised mean differences); ``("turner",)`` and ``("rhodes",)`` give the
    general settings. A prior on tau^2 is converted to tau exactly: log tau = log(tau^2) / 2."""
    if isinstance(spec, Prior):
        return spec
    if isinstance(spec, str):
        spec = (spec,)
    if not isinstance(spec, (tuple, list)) or not spec or not isinstance(spec[0], str):
        raise TypeError(f"tau_prior must be a tuple (family, parameters...), got {spec!r}")
    fam, args = spec[0].lower().replace("-", "").replace("_", ""), tuple(spec[1:])
    fam = {"halft": "halfstudent", "halfstudentt": "halfstudent", "exp": "exponential"}.get(fam, fam)
    if fam not in TAU_PRIORS:
        raise ValueError(f"tau_prior: unknown family {spec[0]!r}; expected one of {', '.join(TAU_PRIORS)}")
    if fam in ("turner", "rhodes"):
        table = TURNER_2015 if fam == "turner" else RHODES_2015
        outcome, comparison = (args + ("any", "any"))[:2] if len(args) < 2 else args[:2]
        if len(args) == 1:
            raise ValueError(f"tau prior {fam}: give both outcome and comparison, or neither")
        m, s = _lookup(table, fam, outcome, comparison)
        if fam == "turner":
            lp = _lognormal_logpdf(m / 2, s / 2)
            label = (f"Turner et al. 2015: tau^2 ~ LN({m:g}, {s:g}^2) "
                     f"[{outcome}; {comparison}]")
        else:
            lp = _logt_logpdf(m / 2, s / 2, 5.0)
            label = (f"Rhodes et al. 2015: log tau^2 ~ t5({m:g}, {s:g}) "
                     f"[{outcome}; {comparison}]")
        return Prior(fam, (outcome, comparison, m, s), label, log_scale=(m / 2, s / 2), logpdf=lp)
    need = TAU_PRIORS[fam]
    if fam == "uniform" and len(args) == 1:
        args = (0.0,) + args
    if len(args) != len(need):
        raise ValueError(f"tau prior {fam} needs {len(need)} parameter(s) ({', '.join(need)}), got {len(args)}")
    if fam == "halfnormal":
        s = _num("halfnormal scale", args[0])
        return Prior(fam, (s,), f"half-normal(scale = {s:g})",
                     logpdf=lambda t: np.where(t >= 0, math.log(2 / s) - 0.5 * _LOG2PI - 0.5 * (t / s) ** 2, -np.inf))
    if fam == "halfcauchy":
        s = _num("halfcauchy scale", args[0])
        return Prior(fam, (s,), f"half-Cauchy(scale = {s:g})",
                     logpdf=lambda t: np.where(t >= 0, math.log(2 / (math.pi * s)) - np.log1p((t / s) ** 2), -np.inf))
    if fam == "halfstudent":
        s, df = _num("halfstudent scale", args[0]), _num("halfstudent df", args[1])
        c = math.log(2 / s) + special.gammaln((df + 1) / 2) - special.gammaln(df / 2) - 0.5 * math.log(df * math.pi)
        return Prior(fam, (s, df), f"half-Student-t(scale = {s:g}, df = {df:g})",
                     logpdf=lambda t: np.where(t >= 0, c - (df + 1) / 2 * np.log1p((t / s) ** 2 / df), -np.inf))
    if fam == "lognormal":
        m, s = _num("lognormal meanlog", args[0], False), _num("lognormal sdlog", args[1])
        return Prior(fam, (m, s), f"log-normal(meanlog = {m:g}, sdlog = {s:g})",
                     log_scale=(m, s), logpdf=_lognormal_logpdf(m, s))
    if fam == "uniform":
        a, b = _num("uniform lower", args[0], False), _num("uniform upper", args[1])
        if not 0 <= a < b:
            raise ValueError(f"tau prior uniform needs 0 <= lower < upper, got ({a:g}, {b:g})")
        return Prior(fam, (a, b), f"uniform({a:g}, {b:g})", lower=a, upper=b,
                     logpdf=lambda t: np.where((t >= a) & (t <= b), -math.log(b - a), -np.inf))
    r = _num("exponential rate", args[0])
    return Prior(fam, (r,), f"exponential(rate = {r:g})",
                 logpdf=lambda t: np.where(t >= 0, math.log(r) - r * t, -np.inf))


def _lognormal_logpdf(m: float, s: float):
    def lp(t):
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            lt = np.log(t)
            out = -lt - math.log(s) - 0.5 * _LOG2PI - 0.5 * ((lt - m) / s) ** 2
        return np.where(t > 0, out, -np.inf)
    return lp


def _logt_logpdf(m: float, s: float, df: float):
    c = special.gammaln((df + 1) / 2) - special.gammaln(df / 2) - 0.5 * math.log(df * math.pi) - math.log(s)

    def lp(t):
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            lt = np.log(t)
            out = c - lt - (df + 1) / 2 * np.log1p(((lt - m) / s) ** 2 / df)
        return np.where(t > 0, out, -np.inf)
    return lp


def mu_prior(spec) -> Prior:
    """A prior for mu: ``("flat",)`` (improper uniform) or ``("normal", mean, sd)``."""
    if isinstance(spec, Prior):
        return spec
    if isinstance(spec, str):
        spec = (spec,)
    if spec is None or not isinstance(spec, (tuple, list)) or not spec or not isinstance(spec[0], str):
        raise TypeError(f"mu_prior must be ('flat',) or ('normal', mean, sd), got {spec!r}")
    fam = spec[0].lower()
    if fam in ("flat", "uniform"):
        if len(spec) != 1:
            raise ValueError("mu prior flat takes no parameters")
        return Prior("flat", (), "flat (improper uniform)", lower=-math.inf,
                     logpdf=lambda x: np.zeros_like(np.asarray(x, dtype=float)))
    if fam == "normal":
        if len(spec) != 3:
            raise ValueError(f"mu prior normal needs (mean, sd), got {tuple(spec[1:])!r}")
        m, s = _num("mu prior mean", spec[1], False), _num("mu prior sd", spec[2])
        return Prior("normal", (m, s), f"normal(mean = {m:g}, sd = {s:g})", lower=-math.inf,
                     logpdf=lambda x: -0.5 * _LOG2PI - math.log(s) - 0.5 * ((np.asarray(x, dtype=float) - m) / s) ** 2)
    raise ValueError(f"mu_prior: unknown family {spec[0]!r}; expected flat or normal")


_make_tau_prior = tau_prior
_make_mu_prior = mu_prior


# --- the normal-normal model ----------------------------------------------------------------
def _cond(y, v, tau, prior_mu):
    """Given each tau: the conditional posterior of mu (mean, variance) and log p(y | tau)
    with mu integrated out (for a flat prior: up to the constant of the improper prior)."""
    t2 = np.asarray(tau, dtype=float)[:, None] ** 2
    w = 1.0 / (v[None, :] + t2)
    sw = np.sum(w, axis=1)
    swy = np.sum(w * y[None, :], axis=1)
    swyy = np.sum(w * y[None, :] ** 2, axis=1)
    base = -0.5 * np.sum(np.log(v[None, :] + t2), axis=1) - 0.5 * y.size * _LOG2PI
    if prior_mu.family == "normal":
        m0, s0 = prior_mu.params
        prec = sw + 1 / s0**2
        mean = (swy + m0 / s0**2) / prec
        quad = swyy + m0**2 / s0**2 - prec * mean**2
        loglik = base - 0.5 * quad - math.log(s0) - 0.5 * np.log(prec)
    else:
        prec = sw
        mean = swy / prec
        quad = swyy - prec * mean**2
        loglik = base - 0.5 * quad + 0.5 * _LOG2PI - 0.5 * np.log(prec)
    return mean, 1.0 / prec, loglik


def _tau_posterior(y, v, prior_tau: Prior, prior_mu: Prior):
    tm = TauMap(v, prior_tau)

    def logf(u):
        tau = tm.tau(u)
        return prior_tau.logpdf(tau) + _cond(y, v, tau, prior_mu)[2] + tm.logjac(u)

    return tm, logf, adaptive_panels(logf, tm.lo, tm.hi)


@explained
@dataclass(frozen=True)
class BayesResult:
    """Posterior summaries of a Bayesian random-effects meta-analysis (equal-tailed intervals;
    ``*_hpd_*`` are the shortest intervals). ``theta_*`` are the study-specific (shrunken)
    effects. Bayes factors are BF01, in favour of the null (tau = 0, or mu = 0), as
    p(y | H0) / p(y | model); NaN under a flat mu prior (marginal likelihood undefined)."""

    model: str
    measure: str
    level: float
    k: int
    labels: tuple[str, ...]
    yi: np.ndarray
    vi: np.ndarray
    prior_mu: Prior
    prior_tau: Prior
    mu_mean: float
    mu_sd: float
    mu_median: float
    mu_ci_lb: float
    mu_ci_ub: float
    mu_hpd_lb: float
    mu_hpd_ub: float
    tau_mean: float
    tau_median: float
    tau_ci_lb: float
    tau_ci_ub: float
    tau_hpd_lb: float
    tau_hpd_ub: float
    pred_mean: float
    pred_median: float
    pred_ci_lb: float
    pred_ci_ub: float
    pred_hpd_lb: float
    pred_hpd_ub: float
    theta_mean: np.ndarray
    theta_median: np.ndarray
    theta_ci_lb: np.ndarray
    theta_ci_ub: np.ndarray
    log_marginal_likelihood: float
    bf_tau0: float
    bf_mu0: float
    natural: NaturalScale | None = None
    excluded: tuple[Excluded, ...] = ()
    warnings: tuple[str, ...] = ()
    n: np.ndarray | None = None
    algorithm: str = ""
    #: exact-likelihood models: the event counts (``n`` holds the totals or the person-times)
    events: np.ndarray | None = None
    _tau_nodes: np.ndarray = field(default=None, repr=False, compare=False)
    _tau_w: np.ndarray = field(default=None, repr=False, compare=False)
    _tau_cdf: Callable = field(default=None, repr=False, compare=False)
    _tau_pdf: Callable = field(default=None, repr=False, compare=False)
    _mu: Mixture = field(default=None, repr=False, compare=False)
    _pred: Mixture = field(default=None, repr=False, compare=False)
    _theta: tuple = field(default=(), repr=False, compare=False)

    @property
    def method(self) -> str:
        return "BAYES"

    @property
    def estimate(self) -> float:
        """The posterior median of mu."""
        return self.mu_median

    @property
    def tau2(self) -> float:
        """The posterior median of tau^2 (= the squared median of tau)."""
        return self.tau_median**2

    # densities, CDFs and quantiles
    def mu_pdf(self, x): return self._mu.pdf(x)
    def mu_cdf(self, x): return self._mu.cdf(x)
    def mu_quantile(self, p: float) -> float: return self._mu.quantile(p)
    def pred_pdf(self, x): return self._pred.pdf(x)
    def pred_cdf(self, x): return self._pred.cdf(x)
    def pred_quantile(self, p: float) -> float: return self._pred.quantile(p)
    def tau_pdf(self, x): return self._tau_pdf(np.asarray(x, dtype=float))
    def tau_cdf(self, x): return self._tau_cdf(np.asarray(x, dtype=float))

    def tau_quantile(self, p: float) -> float:
        if p <= 0:
            return self.prior_tau.lower
        t = self._tau_nodes
        c = np.cumsum(self._tau_w)
        j = int(np.clip(np.searchsorted(c, p), 0, t.size - 1))
        hi = float(t[min(j + 1, t.size - 1)]) if j + 1 < t.size else float(t[-1]) * 2
        lo = float(t[j - 1]) if j > 0 else self.prior_tau.lower
        return invert(self.tau_cdf, self.tau_pdf, p, float(t[j]), lo, hi)

    def theta_cdf(self, i: int, x): return self._theta[i].cdf(x)
    def theta_pdf(self, i: int, x): return self._theta[i].pdf(x)

    def interval(self, parameter: str = "mu", level: float | None = None,
                 kind: str = "equal-tailed") -> tuple[float, float]:
        """Credible interval of ``mu``, ``tau`` or ``pred`` (a new study's effect):
        ``equal-tailed`` or ``shortest``."""
        lvl = self.level if level is None else check_level(level)
        if parameter not in ("mu", "tau", "pred"):
            raise ValueError(f"parameter must be mu, tau or pred, got {parameter!r}")
        q = getattr(self, f"{parameter}_quantile")
        if kind == "equal-tailed":
            return q((1 - lvl) / 2), q((1 + lvl) / 2)
        if kind == "shortest":
            lb, ub = ((self.prior_tau.lower, self.prior_tau.upper) if parameter == "tau"
                      else (-math.inf, math.inf))
            return shortest(q, getattr(self, f"{parameter}_pdf"), lvl, lb, ub,
                            cdf=getattr(self, f"{parameter}_cdf"))
        raise ValueError(f"kind must be 'equal-tailed' or 'shortest', got {kind!r}")

    def to_dict(self) -> dict[str, Any]:
        keys = ("model", "measure", "level", "k", "mu_mean", "mu_sd", "mu_median", "mu_ci_lb",
                "mu_ci_ub", "mu_hpd_lb", "mu_hpd_ub", "tau_mean", "tau_median", "tau_ci_lb",
                "tau_ci_ub", "tau_hpd_lb", "tau_hpd_ub", "pred_mean", "pred_median", "pred_ci_lb",
                "pred_ci_ub", "pred_hpd_lb", "pred_hpd_ub", "log_marginal_likelihood", "bf_tau0",
                "bf_mu0", "algorithm")
        d: dict[str, Any] = {k: getattr(self, k) for k in keys}
        d["method"] = "BAYES"
        d["priors"] = {"mu": self.prior_mu.to_dict(), "tau": self.prior_tau.to_dict()}
        d["natural"] = None if self.natural is None else vars(self.natural).copy()
        d["studies"] = [{"study": lab, "yi": float(self.yi[i]), "vi": float(self.vi[i]),
                         "theta_mean": float(self.theta_mean[i]),
                         "theta_median": float(self.theta_median[i]),
                         "theta_ci_lb": float(self.theta_ci_lb[i]),
                         "theta_ci_ub": float(self.theta_ci_ub[i])}
                        | ({} if self.events is None else
                           {"events": float(self.events[i]), "exposure": float(self.n[i])})
                        for i, lab in enumerate(self.labels)]
        d["excluded"] = [vars(e).copy() for e in self.excluded]
        d["warnings"] = list(self.warnings)
        return d

    def summary(self) -> str:
        f = lambda x: "NA" if not np.isfinite(x) else f"{x:.4f}"  # noqa: E731
        pct = f"{100 * self.level:g}%"
        lines = [f"Bayesian random-effects meta-analysis ({self.model}), measure {self.measure}, k = {self.k}",
                 f"priors: mu ~ {self.prior_mu.label}; tau ~ {self.prior_tau.label}", "",
                 f"{'':6s}{'median':>10s}{'mean':>10s}  {pct} equal-tailed     {pct} shortest",
                 f"{'mu':6s}{f(self.mu_median):>10s}{f(self.mu_mean):>10s}  [{f(self.mu_ci_lb)}, {f(self.mu_ci_ub)}]  [{f(self.mu_hpd_lb)}, {f(self.mu_hpd_ub)}]",
                 f"{'tau':6s}{f(self.tau_median):>10s}{f(self.tau_mean):>10s}  [{f(self.tau_ci_lb)}, {f(self.tau_ci_ub)}]  [{f(self.tau_hpd_lb)}, {f(self.tau_hpd_ub)}]",
                 f"{'new':6s}{f(self.pred_median):>10s}{f(self.pred_mean):>10s}  [{f(self.pred_ci_lb)}, {f(self.pred_ci_ub)}]  [{f(self.pred_hpd_lb)}, {f(self.pred_hpd_ub)}]",
                 "", f"log marginal likelihood = {f(self.log_marginal_likelihood)}; "
                 f"Bayes factors BF01: tau = 0: {f(self.bf_tau0)}, mu = 0: {f(self.bf_mu0)}"]
        if self.natural is not None:
            n = self.natural
            lines.append(f"{n.scale} (posterior median, {pct} CrI, prediction): {f(n.estimate)} "
                         f"[{f(n.ci_lb)}, {f(n.ci_ub)}], [{f(n.pi_lb)}, {f(n.pi_ub)}] ({n.transform})")
        lines.append("")
        lines.append("shrinkage (study-specific effects): median [equal-tailed CrI]")
        for i, lab in enumerate(self.labels):
            lines.append(f"  {lab}: y = {f(self.yi[i])}, theta = {f(self.theta_median[i])} "
                         f"[{f(self.theta_ci_lb[i])}, {f(self.theta_ci_ub[i])}]")
        lines.append(f"fit: {self.algorithm}")
        lines += [f"note: {w}" for w in self.warnings]
        lines += [f"excluded: {e.study}: {e.reason}" for e in self.excluded]
        return "\n".join(lines)

    def plot_forest(self, ax=None, **options):
        """Forest plot: observed estimates and shrunken study effects, mu and the prediction."""
        from .plots.bayes_forest import bayes_forest

        return bayes_forest(self, ax=ax, **options)


def _natural(measure: str, vals, n) -> NaturalScale | None:
    from .effects import NATURAL_SCALE
    from . import transforms

    if measure not in NATURAL_SCALE or (measure == "PFT" and n is None):
        return None
    out = transforms.back_transform(measure, np.asarray(vals, dtype=float), n, harmonic=True)
    lo_ci, hi_ci = sorted(out[1:3])
    lo_pi, hi_pi = sorted(out[3:5])
    return NaturalScale(NATURAL_SCALE[measure], float(out[0]), float(lo_ci), float(hi_ci),
                        float(lo_pi), float(hi_pi),
                        "posterior quantiles back-transformed (monotone transform)")


@accepts_data(("yi", "vi", "n"))
def bayes(yi: ArrayLike, vi: ArrayLike, *, mu_prior=("normal", 0, 10), tau_prior=("halfnormal", 0.5),
          level: float = 0.95, labels: ArrayLike | None = None, measure: str = "GEN",
          n: ArrayLike | None = None) -> BayesResult:
    """Bayesian normal-normal random-effects meta-analysis by exact numerical integration.

    ``mu_prior``: ``("normal", mean, sd)`` or ``("flat",)``; ``tau_prior``: a family of
    ``TAU_PRIORS`` with its parameters, e.g. ``("halfnormal", 0.5)``, ``("halfcauchy", 1)``,
    ``("turner", outcome, comparison)``. Quantiles are exact to ~1e-9 (Röver 2020 J Stat
    Softw 93(6), sec. 2; the integration is ours: adaptive Gauss-Legendre in tau).

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances.
    mu_prior : tuple
        Prior of the overall effect: ``("normal", mean, sd)`` or ``("flat",)``.
    tau_prior : tuple
        Prior of the between-study standard deviation tau.
    level : float
        Probability of the credible intervals (default 0.95).
    labels : array_like, optional
        Study labels.
    measure : str
        The measure of ``yi`` (for ``natural``).
    n : array_like, optional
        Study sizes (Freeman-Tukey back-transform).

    Returns
    -------
    BayesResult
        Posterior medians, means, equal-tailed and shortest intervals of mu, tau and a new study's
        effect, shrunken study estimates, the marginal likelihood and Bayes factors.

    References
    ----------
    Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R package. J Stat
    Softw 93(6):1-51. Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT (2015). Stat Med
    34:984-998 and Rhodes KM, Turner RM, Higgins JPT (2015). J Clin Epidemiol 68:52-60 (empirical
    priors for tau).

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> b = mm.bayes(yi, vi, mu_prior=("normal", 0, 10), tau_prior=("halfnormal", 0.5))
    >>> print(f"mu = {b.mu_median:.4f} [{b.mu_ci_lb:.4f}, {b.mu_ci_ub:.4f}], tau = {b.tau_median:.4f}")
    mu = -0.9849 [-1.5222, -0.4835], tau = 0.4734
    """
    level = check_level(level)
    pm = _make_mu_prior(mu_prior)
    pt = _make_tau_prior(tau_prior)
    y_all, v_all, labs_all, ok = study_arrays(yi, vi, labels)
    excluded = tuple(Excluded(labs_all[i], "yi or vi missing, not finite or vi <= 0")
                     for i in np.flatnonzero(~ok))
    y, v = y_all[ok], v_all[ok]
    labs = tuple(l for l, keep in zip(labs_all, ok) if keep)
    n_ = None if n is None else np.atleast_1d(np.asarray(n, dtype=float))[ok]
    if y.size == 0:
        raise ValueError("no study left to pool (every yi or vi is missing or invalid)")
    return _fit_normal(y, v, labs, pm, pt, level, measure, n_, excluded, (), "normal-normal")


def _fit_normal(y, v, labs, pm, pt, level, measure, n_, excluded, warns, model) -> BayesResult:
    moments = finite_moments(pt, y.size - (pm.family == "flat"))
    tm, logf, (edges, x, w, lf, M) = _tau_posterior(y, v, pt, pm)
    ua, ub = tm.lo, tm.hi
    tau = tm.tau(x.ravel())
    mass = (w * np.exp(lf - M)).ravel()
    total = float(np.sum(mass))
    log_z = M + math.log(total)
    keep = mass > 0  # nodes of zero posterior mass carry no mixture component
    tau, wt = tau[keep], mass[keep] / total
    mean_c, var_c, _ = _cond(y, v, tau, pm)
    mu_mix = Mixture(wt, mean_c, np.sqrt(var_c))
    pred_mix = Mixture(wt, mean_c, np.sqrt(var_c + tau**2))
    panel_mass = np.sum(w * np.exp(lf - M), axis=1) / total
    cum = np.concatenate([[0.0], np.cumsum(panel_mass)])

    def tau_cdf(t):
        t = np.atleast_1d(t)
        uu = np.clip(tm.u(t), ua, ub)
        j = np.clip(np.searchsorted(edges, uu, side="right") - 1, 0, edges.size - 2)
        a = edges[j]
        xx, ww = panel_nodes(a, uu)
        part = np.sum(ww * np.exp(logf(xx.ravel()).reshape(xx.shape) - M), axis=1) / total
        out = np.minimum(cum[j] + part, 1.0)
        return out if out.size > 1 else float(out[0])

    def tau_pdf(t):
        t = np.atleast_1d(t)
        with np.errstate(divide="ignore"):
            out = np.exp(pt.logpdf(t) + _cond(y, v, t, pm)[2] - log_z)
        return out if out.size > 1 else float(out[0])

    # study-specific effects: theta_i | tau, y ~ N((1-b) y_i + b m, v_i (1-b) + b^2 V), b = v/(v+tau^2)
    b = v[None, :] / (v[None, :] + tau[:, None] ** 2)
    theta_mean = (1 - b) * y[None, :] + b * mean_c[:, None]

    def thetas():
        return [Mixture(wt, theta_mean[:, i], np.sqrt(v[i] * (1 - b[:, i]) + b[:, i] ** 2 * var_c))
                for i in range(y.size)]
    lo_p, hi_p = (1 - level) / 2, (1 + level) / 2

    # marginal likelihoods and Bayes factors (proper priors only)
    warns = tuple(warns) + tail_warnings(pt, moments, pm)
    if pm.family == "normal":
        log_ml0_tau = float(_cond(y, v, np.array([pt.lower]), pm)[2][0]) if pt.lower == 0 else -math.inf
        bf_tau0 = math.exp(log_ml0_tau - log_z)

        def logf0(uu):
            tt = tm.tau(uu)
            t2 = tt[:, None] ** 2
            ll = -0.5 * np.sum(np.log(2 * math.pi * (v + t2)) + y**2 / (v + t2), axis=1)
            return pt.logpdf(tt) + ll + tm.logjac(uu)

        _, _, w0, lf0, m0 = adaptive_panels(logf0, ua, ub)
        bf_mu0 = math.exp(m0 + math.log(np.sum(w0 * np.exp(lf0 - m0))) - log_z)
        lml = log_z
    else:
        bf_tau0 = bf_mu0 = lml = float("nan")
        warns += ("flat mu prior: the marginal likelihood and Bayes factors are undefined",)

    res = BayesResult(
        model=model, measure=measure, level=level, k=int(y.size), labels=labs, yi=readonly(y),
        vi=readonly(v), prior_mu=pm, prior_tau=pt,
        mu_mean=mu_mix.mean() if moments >= 1 or pm.family == "normal" else math.nan,
        mu_sd=mu_mix.sd() if moments >= 2 or pm.family == "normal" else math.nan,
        mu_median=mu_mix.quantile(0.5),
        mu_ci_lb=mu_mix.quantile(lo_p), mu_ci_ub=mu_mix.quantile(hi_p), mu_hpd_lb=math.nan,
        mu_hpd_ub=math.nan, tau_mean=float(np.sum(wt * tau)) if moments >= 1 else math.inf,
        tau_median=math.nan,
        tau_ci_lb=math.nan, tau_ci_ub=math.nan, tau_hpd_lb=math.nan, tau_hpd_ub=math.nan,
        pred_mean=pred_mix.mean() if moments >= 1 else math.nan, pred_median=pred_mix.quantile(0.5),
        pred_ci_lb=pred_mix.quantile(lo_p), pred_ci_ub=pred_mix.quantile(hi_p),
        pred_hpd_lb=math.nan, pred_hpd_ub=math.nan,
        theta_mean=readonly(wt @ theta_mean), theta_median=None, theta_ci_lb=None,
        theta_ci_ub=None,
        log_marginal_likelihood=float(lml), bf_tau0=float(bf_tau0), bf_mu0=float(bf_mu0),
        excluded=excluded, warnings=warns, n=None if n_ is None else readonly(n_),
        algorithm=(f"exact integration: mu analytically given tau; tau by adaptive Gauss-Legendre "
                   f"({edges.size - 1} panels x 15 nodes in u, {tm.describe()})"),
        _tau_nodes=tau, _tau_w=wt, _tau_cdf=tau_cdf, _tau_pdf=tau_pdf, _mu=mu_mix,
        _pred=pred_mix)
    return complete(res, n_, thetas)


def complete(res: BayesResult, n_=None, theta=None) -> BayesResult:
    """Fill the tau quantiles and the natural scale of a BayesResult whose distributions are
    set (shared by every Bayesian model of the package). The shortest intervals, and the
    shrunken study estimates when ``theta`` (a callable returning the study densities) is
    given, are computed on their first read (LAZY_FIELDS)."""
    import dataclasses

    lo_p, hi_p = (1 - res.level) / 2, (1 + res.level) / 2
    kw = {f.name: res.__dict__[f.name] for f in dataclasses.fields(res)}
    kw.update(tau_median=res.tau_quantile(0.5), tau_ci_lb=res.tau_quantile(lo_p),
              tau_ci_ub=res.tau_quantile(hi_p))
    kw["natural"] = _natural(res.measure, [res.mu_median, res.mu_ci_lb, res.mu_ci_ub,
                                           res.pred_ci_lb, res.pred_ci_ub], n_)
    done: list[BayesResult] = []

    def hpd():
        out = {}
        for p in ("mu", "tau", "pred"):
            out[f"{p}_hpd_lb"], out[f"{p}_hpd_ub"] = done[0].interval(p, kind="shortest")
        return out

    def shrunk():
        dens = tuple(theta())
        return dict(_theta=dens, theta_median=readonly([t.quantile(0.5) for t in dens]),
                    theta_ci_lb=readonly([t.quantile(lo_p) for t in dens]),
                    theta_ci_ub=readonly([t.quantile(hi_p) for t in dens]))

    later = Deferred(hpd)
    kw.update({f"{p}_hpd_{e}": later for p in ("mu", "tau", "pred") for e in ("lb", "ub")})
    if theta is not None:
        later_t = Deferred(shrunk)
        kw.update({k: later_t for k in ("_theta", "theta_median", "theta_ci_lb", "theta_ci_ub")})
    done.append(type(res)(**kw))
    return done[0]


#: fields of a BayesResult computed on their first read (the shortest intervals need a root
#: search on each posterior; the shrunken estimates a density per study)
LAZY_FIELDS = ("mu_hpd_lb", "mu_hpd_ub", "tau_hpd_lb", "tau_hpd_ub", "pred_hpd_lb", "pred_hpd_ub",
               "theta_median", "theta_ci_lb", "theta_ci_ub", "_theta")


for _name in LAZY_FIELDS:
    setattr(BayesResult, _name, DeferredField(_name))
