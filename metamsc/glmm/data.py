"""Input checks and data preparation of the GLMM fits; exact bounds for degenerate data.

If every study has 0 events (or every study only events), nothing but a bound is estimable:
the exact one-sided Clopper-Pearson bound of the pooled proportion (Clopper & Pearson 1934; at
N events in N, the lower bound (1 - level)^(1/N) is one minus the upper bound at 0 events) or,
for rates, the exact Poisson bound (Garwood 1936, Biometrika 28:437).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from ..proportions import cp_upper_bound
from ..results import Excluded
from .likelihood import nchg_support

__all__ = ["prepare", "degenerate", "poisson_upper"]


def poisson_upper(x: float, t: float, level: float) -> float:
    """One-sided upper confidence bound of a Poisson rate x / t (Garwood 1936)."""
    return float(special.chdtri(2 * (x + 1), 1 - level) / (2 * t))


def _arr(name, x):
    if x is None:
        raise ValueError(f"{name} is required for this measure")
    a = np.atleast_1d(np.asarray(x, dtype=float))
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise ValueError(f"{name} is missing or not finite in study {bad[0] + 1}")
    return a


def _counts(name, a):
    bad = np.flatnonzero((a < 0) | (a != np.round(a)))
    if bad.size:
        raise ValueError(f"{name} must be a non-negative integer; study {bad[0] + 1} has {a[bad[0]]:g}")


def _sizes(name, a):
    bad = np.flatnonzero((a <= 0) | (a != np.round(a)))
    if bad.size:
        raise ValueError(f"{name} must be a positive integer; study {bad[0] + 1} has {a[bad[0]]:g}")


def prepare(measure, model, events, total, time, events2, total2, time2, labels):
    """Checked arrays, exclusions (metafor's drop00) and the model's cells and offsets."""
    from ..effects import effect_size

    x = _arr("events", events)
    k_all = x.size
    if k_all == 0:
        raise ValueError("no study to pool")
    lab_all = (tuple(str(i + 1) for i in range(k_all)) if labels is None
               else tuple(str(v) for v in np.atleast_1d(labels)))
    if len(lab_all) != k_all:
        raise ValueError("labels must have one entry per study")
    _counts("events", x)
    d: dict[str, Any] = {"excluded": []}
    if measure in ("PLO", "IRLN"):
        if measure == "PLO":
            n = _arr("total", total)
            if n.size != k_all:
                raise ValueError("events and total must have the same length")
            _sizes("total", n)
            bad = np.flatnonzero(x > n)
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"events > total in study {i + 1} ({x[i]:g} > {n[i]:g})")
            es = effect_size("PLO", events=x, total=n)
            family, offset = "binomial", np.zeros(k_all)
        else:
            n = _arr("time", time)
            if n.size != k_all:
                raise ValueError("events and time must have the same length")
            bad = np.flatnonzero(n <= 0)
            if bad.size:
                raise ValueError(f"time must be positive; study {bad[0] + 1} has {n[bad[0]]:g}")
            es = effect_size("IRLN", events=x, time=n)
            family, offset = "poisson", np.log(n)
        d.update(kind=family, family=family, design="single", y=x, n=n, offset=offset, es=es,
                 labels=lab_all, x=x, tot=n, n_report=n, k=k_all, positions=np.arange(k_all))
        return d
    if measure == "OR":
        n1 = _arr("total", total)
        c = _arr("events2", events2)
        n2 = _arr("total2", total2)
        if not (n1.size == c.size == n2.size == k_all):
            raise ValueError("events, total, events2 and total2 must have the same length")
        _counts("events2", c)
        _sizes("total", n1)
        _sizes("total2", n2)
        for a, nn, nm in ((x, n1, "events > total"), (c, n2, "events2 > total2")):
            bad = np.flatnonzero(a > nn)
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"{nm} in study {i + 1} ({a[i]:g} > {nn[i]:g})")
        both = ((x == 0) & (c == 0)) | ((x == n1) & (c == n2))
    else:  # IRR
        n1 = _arr("time", time)
        c = _arr("events2", events2)
        n2 = _arr("time2", time2)
        if not (n1.size == c.size == n2.size == k_all):
            raise ValueError("events, time, events2 and time2 must have the same length")
        _counts("events2", c)
        for t, nm in ((n1, "time"), (n2, "time2")):
            bad = np.flatnonzero(t <= 0)
            if bad.size:
                raise ValueError(f"{nm} must be positive; study {bad[0] + 1} has {t[bad[0]]:g}")
        both = (x == 0) & (c == 0)
    ratio = "odds ratio" if measure == "OR" else "rate ratio"
    for i in np.flatnonzero(both):
        what = "no events" if x[i] == 0 else "only events"
        d["excluded"].append(Excluded(lab_all[i], f"{what} in both groups: no information on "
                                      f"the {ratio} (dropped, as metafor's drop00=TRUE)"))
    keep = ~both
    x, n1, c, n2 = x[keep], n1[keep], c[keep], n2[keep]
    lab = tuple(lb for lb, kp in zip(lab_all, keep) if kp)
    k = x.size
    if k == 0:
        raise ValueError(f"no study with information on the {ratio} (every study has no "
                         "events" + (", or only events," if measure == "OR" else "")
                         + " in both groups)")
    if measure == "OR":
        es = effect_size("OR", events1=x, total1=n1, events2=c, total2=n2)
    else:
        es = effect_size("IRR", events1=x, time1=n1, events2=c, time2=n2)
    d.update(kind="binomial2" if measure == "OR" else "poisson2", es=es, labels=lab, x=x, tot=n1,
             x2=c, tot2=n2, n_report=n1 + n2, k=k,
             positions=np.flatnonzero(keep))
    d.update(_two_group_design(measure, model, x, n1, c, n2))
    return d


def _two_group_design(measure, model, x, n1, c, n2) -> dict[str, Any]:
    """Family, design, cells and offsets of a two-group model (metafor's ``model``).

    * UM.FS: both groups as cells, fixed study effects, random treatment effect coded +-1/2.
    * UM.RS: the same cells; random study effects and random treatment effect (:mod:`.umrs`).
    * CM.AL (OR): x ~ Bin(x + c, p), logit p = log(n1 / n2) + theta + u: the binomial
      approximation to the conditional likelihood (van Houwelingen et al. 1993, Stat Med 12:2273).
    * CM.EL for IRR (= CM.AL): conditional on x + c the first group's count is exactly
      binomial with logit p = log(t1 / t2) + theta + u.
    * CM.EL (OR): conditional on the margins, x has Fisher's noncentral hypergeometric
      distribution with log odds ratio theta + u (van Houwelingen et al. 1993; Stijnen,
      Hamza & Ozdemir 2010, Stat Med 29:3046).
    """
    if model in ("UM.FS", "UM.RS"):
        fam = "binomial" if measure == "OR" else "poisson"
        off = np.zeros((x.size, 2)) if measure == "OR" else np.log(np.column_stack([n1, n2]))
        return dict(family=fam, design="random-studies" if model == "UM.RS" else "fixed-studies",
                    y=np.column_stack([x, c]), n=np.column_stack([n1, n2]), offset=off)
    if model == "CM.EL" and measure == "OR":
        return dict(family="nchg", design="single", y=x, n=x + c, offset=np.zeros(x.size),
                    support=nchg_support(n1, n2, x + c))
    if model in ("CM.AL", "CM.EL") and (model == "CM.AL" or measure == "IRR"):
        return dict(family="binomial", design="single", y=x, n=x + c, offset=np.log(n1 / n2))
    raise NotImplementedError(f"model {model} for measure {measure} is not implemented")


def degenerate(d, measure, level, extra) -> str | None:
    """Describe data from which no model is estimable (and put exact bounds in ``extra``)."""
    k = d["k"]
    studies = "the only study has" if k == 1 else f"all {k} studies have"
    if measure == "PLO":
        x, tot = d["x"], d["tot"]
        X_sum, N_sum = float(x.sum()), float(tot.sum())
        if X_sum == 0:
            extra.update(exact_upper_bound=float(cp_upper_bound(0, N_sum, level)),
                         exact_lower_bound=0.0,
                         bound_kind=(f"one-sided {100 * level:g}% Clopper-Pearson upper bound of "
                                     f"the pooled proportion (0 events in {N_sum:g}), valid for a "
                                     "common proportion"))
            return f"{studies} 0 events"
        if X_sum == N_sum:
            extra.update(exact_lower_bound=1.0 - float(cp_upper_bound(0, N_sum, level)),
                         exact_upper_bound=1.0,
                         bound_kind=(f"one-sided {100 * level:g}% Clopper-Pearson lower bound of "
                                     f"the pooled proportion ({N_sum:g} events in {N_sum:g}), "
                                     "valid for a common proportion"))
            return f"{studies} only events (events = total)"
        return None
    if measure == "IRLN":
        x, tot = d["x"], d["tot"]
        if x.sum() == 0:
            T = float(tot.sum())
            extra.update(exact_upper_bound=poisson_upper(0, T, level), exact_lower_bound=0.0,
                         bound_kind=(f"one-sided {100 * level:g}% exact Poisson (Garwood) upper "
                                     f"bound of the pooled rate (0 events in {T:g} units of "
                                     "person-time), valid for a common rate"))
            return f"{studies} 0 events"
        return None
    x, n1, c, n2 = d["x"], d["tot"], d["x2"], d["tot2"]
    ratio = "odds ratio" if measure == "OR" else "rate ratio"
    for arr, nn, grp in ((x, n1, "first"), (c, n2, "second")):
        if np.all(arr == 0) or (measure == "OR" and np.all(arr == nn)):
            what = "no events" if np.all(arr == 0) else "only events"
            return (f"the {grp} group has {what} in every study: the maximum-likelihood {ratio} "
                    "is 0 or infinite")
    return None

