"""Mantel-Haenszel and Peto pooling of 2x2 tables (metafor ``rma.mh`` / ``rma.peto`` parity).

Each study is a 2x2 table ``a = events1, b = total1 - events1, c = events2,
d = total2 - events2`` with ``n1 = a + b``, ``n2 = c + d``, ``N = n1 + n2``,
``m1 = a + c`` (all events) and ``m0 = b + d``. Sums run over the tables.

Mantel-Haenszel estimators (Mantel & Haenszel 1959, J Natl Cancer Inst 22:719):

* OR: psi = sum R_i / sum S_i, R_i = a d / N, S_i = b c / N. Variance of
  log psi by Robins, Breslow & Greenland (1986) Biometrics 42:311, with
  P_i = (a + d)/N, Q_i = (b + c)/N:
  Var = sum P R / (2 R^2) + sum (P S + Q R) / (2 R S) + sum Q S / (2 S^2),
  R = sum R_i, S = sum S_i.
* RR: rho = sum a n2/N / sum c n1/N; Var(log rho) =
  sum (n1 n2 m1 / N^2 - a c / N) / (R S), R = sum a n2/N, S = sum c n1/N
  (Greenland & Robins 1985, Biometrics 41:55).
* RD: delta = sum (a n2 - c n1)/N / W, W = sum n1 n2 / N; variance by Sato,
  Greenland & Robins (1989) Biometrics 45:1323:
  Var = [delta sum (c n1^2 - a n2^2 + n1 n2 (n2 - n1)/2) / N^2
         + sum (a (n2 - c) + c (n1 - a)) / (2 N)] / W^2.

Tests (typed fields of :class:`~metamsc.results.MHResult`):

* Cochran-Mantel-Haenszel test of no association (Mantel & Haenszel 1959):
  CMH = (|sum (a - n1 m1/N)| - cc)^2 / sum n1 n2 m1 m0 / (N^2 (N - 1)),
  cc = 1/2 with ``correct=True``; Cochran's (1954, Biometrics 10:417)
  version ``CO`` has N in place of N - 1. Both are chi^2(1). metafor
  reports them for OR only; they do not depend on the measure, so they are
  given for every measure here.
* OR only: Breslow-Day test of homogeneity of the odds ratios (Breslow & Day
  1980, Statistical Methods in Cancer Research I, IARC, sec. 4.4, eq. 4.30):
  the fitted cell A_i solves A (N - n1 - m1 + A) = psi (n1 - A)(m1 - A), i.e.
  A_i = 2 psi n1 m1 / (T + sqrt(T^2 - 4 psi (psi - 1) n1 m1)),
  T = psi (n1 + m1) + (n2 - m1) (the numerically stable root of the quadratic);
  BD = sum (a - A)^2 / V_i, V_i = 1 / (1/A + 1/(n1 - A) + 1/(m1 - A) + 1/(N - n1 - m1 + A)),
  over the tables with A_i > 0, m1 > 0 and m0 > 0 (k_pos of them), chi^2(k_pos - 1).
  Tarone (1985, Biometrika 72:91) corrects it for the MH estimate:
  TA = BD - (sum (a - A))^2 / sum V_i.

Peto's one-step log odds ratio (Yusuf, Peto, Lewis, Collins & Sleight 1985,
Prog Cardiovasc Dis 27:335): with O - E = a - n1 m1 / N and the
hypergeometric variance V = n1 n2 m1 m0 / (N^2 (N - 1)),
log psi = sum (O - E) / sum V, Var = 1 / sum V. Its heterogeneity statistic is
Q = sum (O - E)^2 / V - (sum (O - E))^2 / sum V over the tables with V > 0.

Per-study outcomes yi, vi (used only for Q, I^2, H^2 of the MH fit and for
plots) come from :func:`metamsc.effects.effect_size` (Peto: yi = (O - E)/V,
vi = 1/V) after the continuity correction ``add``/``to`` and ``drop00``.
As in metafor, ``add``, ``to`` and ``drop00`` may be pairs: the first value
applies to yi/vi (defaults 1/2, "only0", True), the second to the tables that
enter the MH/Peto formulas (defaults 0, "none", False, i.e. raw counts).
For MH, Q = sum (yi - mu_MH)^2 / vi over the studies with a yi,
I^2 = max(0, (Q - (k_yi - 1))/Q), H^2 = Q/(k_yi - 1) (Higgins & Thompson 2002).
``pool_mh(q=...)`` names the heterogeneity rule (``MH_Q_RULES``): "metafor" (the default, rma.mh:
that Q, no between-study variance), "cochrane" (R meta's ``Q.Cochrane = TRUE``, RevMan 5 and the
Cochrane Handbook: the same Q around the MH estimate, and from it the DerSimonian-Laird
tau^2 = max(0, (Q - (k_yi - 1)) / (sum w - sum w^2 / sum w)), w = 1/vi, with the inverse-variance
random-effects model on that tau^2 that meta reports beside the MH estimate, ``result.random``)
and "inverse" (meta's ``Q.Cochrane = FALSE``: Q around the inverse-variance common-effect
estimate sum w yi / sum w, the same DL tau^2 formula and random-effects model from it).
Weights are those of metafor's ``weights()``: S_i (OR), c n1/N (RR),
n1 n2/N (RD) and V_i (Peto), in percent.

Incidence rates (:func:`pool_mh_rates`): study i has x1, x2 events over person-times
t1, t2, T = t1 + t2. Mantel-Haenszel estimators for person-time data (Rothman, Greenland &
Lash 2008, Modern Epidemiology 3rd ed., ch. 15; variances of Greenland & Robins 1985,
Biometrics 41:55):

* IRR: rho = R / S, R = sum x1 t2/T, S = sum x2 t1/T;
  Var(log rho) = sum (t1/T)(t2/T)(x1 + x2) / (R S); not estimable when sum x1 or sum x2 is 0.
  MH test of no association (chi^2(1)): (|sum (x1 - (x1 + x2) t1/T)| - cc)^2 /
  sum (x1 + x2)(t1/T)(t2/T), cc = 1/2 with ``correct=True``.
* IRD: delta = sum (x1 t2 - x2 t1)/T / W, w_i = t1 t2/T, W = sum w_i;
  Var = sum w_i^2 (x1/t1^2 + x2/t2^2) / W^2.

Weights: x2 t1/T (IRR), t1 t2/T (IRD). The continuity correction adds ``add`` to x1 and x2
(never to the times) of the studies selected by ``to`` (a zero count in either group);
``drop00`` drops studies with no event in both groups. Q, I^2 and H^2 as for the 2x2 tables.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._dist import chi2_sf, critical_value, norm_sf
from .frames import accepts_data
from ._util import check_level, readonly
from .effects import effect_size
from .measures import CORRECTION_RULES, correction_mask, get_measure
from .results import (I2_DEFINITIONS, Conventions, Diagnostics, Excluded, MHResult, NaturalScale,
                      PetoResult)

__all__ = ["pool_mh", "pool_mh_rates", "pool_peto", "exact_two_group", "MH_MEASURES",
           "MH_RATE_MEASURES", "MH_Q_RULES"]

MH_MEASURES = ("OR", "RR", "RD")
#: heterogeneity rules of pool_mh(q=...): where Q is centred, and whether a DL tau^2 and a
#: random-effects model come from it
MH_Q_RULES = {
    "metafor": "Q about the MH estimate with weights 1/vi; no tau^2 (metafor rma.mh)",
    "cochrane": "Q about the MH estimate with weights 1/vi, DL tau^2 and random-effects model "
                "from it (R meta Q.Cochrane = TRUE; RevMan 5, Cochrane Handbook; DerSimonian & "
                "Laird 1986)",
    "inverse": "Q about the inverse-variance common-effect estimate, DL tau^2 and random-effects "
               "model from it (R meta Q.Cochrane = FALSE; DerSimonian & Laird 1986)",
}
MH_RATE_MEASURES = ("IRR", "IRD")


def _pair(value: Any, second: Any, name: str) -> tuple[Any, Any]:
    """metafor's convention: a single value applies to yi/vi, a pair to (yi/vi, MH tables)."""
    if isinstance(value, (tuple, list, np.ndarray)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a single value or a pair")
        return value[0], value[1]
    return value, second


def _tables(events1, total1, events2, total2):
    arrs = [np.atleast_1d(np.asarray(v, dtype=float)) for v in (events1, total1, events2, total2)]
    if any(v.ndim != 1 for v in arrs) or len({v.size for v in arrs}) != 1:
        raise ValueError("events1, total1, events2, total2 must be one-dimensional and of the same length")
    a, n1, c, n2 = arrs
    if a.size == 0:
        raise ValueError("no study to pool")
    for name, v in zip(("events1", "total1", "events2", "total2"), arrs):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite")
        if np.any(v < 0):
            raise ValueError(f"{name} must be >= 0")
    if np.any(a > n1) or np.any(c > n2):
        raise ValueError("events must not exceed the group totals")
    if np.any(n1 + n2 <= 0):
        raise ValueError("every table needs at least one participant")
    return a, n1 - a, c, n2 - c


def _correct(cells, add: float, to: str):
    """Add ``add`` to every cell of the tables selected by ``to`` (escalc's rule)."""
    if to not in CORRECTION_RULES:
        raise ValueError(f"unknown continuity-correction rule to={to!r}; expected one of {', '.join(CORRECTION_RULES)}")
    a, b, c, d = cells
    mask = _to_mask((a == 0) | (b == 0) | (c == 0) | (d == 0), add, to)
    return tuple(v + add * mask for v in cells), mask


def _to_mask(zero: np.ndarray, add: float, to: str) -> np.ndarray:
    """The studies that get a non-zero ``add`` under the rule ``to`` (the registry's rule)."""
    return correction_mask(to, zero) & (add != 0)


def _double_zero(a, b, c, d):
    return ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))


def _labels(labels, k):
    if labels is None:
        return tuple(str(i + 1) for i in range(k))
    lab = tuple(str(x) for x in np.atleast_1d(labels))
    if len(lab) != k:
        raise ValueError("labels must have one entry per study")
    return lab


def _kept_outcomes(yi_all, vi_all, keep, labels):
    """Labels, yi and vi of the tables kept for pooling; non-finite outcomes become NaN (they
    stay in the table counts but not in QE), with the mask of finite ones."""
    lab = tuple(l for l, kp in zip(labels, keep) if kp)
    yi, vi = np.asarray(yi_all, dtype=float)[keep], np.asarray(vi_all, dtype=float)[keep]
    ok = np.isfinite(yi) & np.isfinite(vi)
    return lab, np.where(ok, yi, np.nan), np.where(ok, vi, np.nan), ok


def _margins(a, b, c, d):
    """Row totals n1, n2, grand total N and column totals m1 (events), m0 of 2x2 tables."""
    n1, n2 = a + b, c + d
    return n1, n2, n1 + n2, a + c, b + d


def _peto_yi_vi(cells, add, to, drop00):
    """Peto's per-study log odds ratio (O - E)/V and variance 1/V (Yusuf et al. 1985)."""
    a, b, c, d = (np.array(v, dtype=float) for v in cells)
    if drop00:
        both = _double_zero(a, b, c, d)
        a, b, c, d = (np.where(both, np.nan, v) for v in (a, b, c, d))
    (a, b, c, d), corrected = _correct((a, b, c, d), add, to)
    n1, n2 = a + b, c + d
    N = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        E = (a + c) * n1 / N
        V = (a + c) * (b + d) * (n1 / N) * (n2 / N) / (N - 1)
        yi = (a - E) / V
        vi = 1 / V
    return yi, vi, corrected


def _q_stats(q: float, k_yi: int):
    if k_yi > 1:
        df = k_yi - 1
        return q, float(chi2_sf(q, df)), (max(0.0, 100 * (q - df) / q) if q > 0 else 0.0), q / df
    return 0.0, 1.0, 0.0, 1.0


def _mh_heterogeneity(beta: float, yi, vi, ok):
    """Q about the MH estimate over the studies with a yi, its p-value, I^2 and H^2 (metafor)."""
    k_yi = int(ok.sum())
    if k_yi > 1:
        if not np.isfinite(beta):
            nan = float("nan")
            return nan, nan, nan, nan
        q = max(0.0, float(np.sum((yi[ok] - beta) ** 2 / vi[ok])))
    else:
        q = 0.0
    return _q_stats(q, k_yi)


def _q_rule(q: str) -> str:
    rule = str(q).lower()
    if rule not in MH_Q_RULES:
        raise ValueError(f"unknown heterogeneity rule q={q!r}; expected one of {', '.join(MH_Q_RULES)}")
    return rule


def _mh_q_and_random(rule: str, beta: float, measure: str, yi, vi, ok, labels, level):
    """Q, its p-value, I^2, H^2 under the rule ``rule`` (``MH_Q_RULES``) and the random-effects
    model meta reports beside the MH estimate (None under "metafor"): the inverse-variance model
    with the DerSimonian & Laird (1986) tau^2 = max(0, (Q - df) / (sum w - sum w^2 / sum w)) of
    that Q, its I^2 and H (Q-based, test-based CIs of Higgins & Thompson 2002) from the same Q."""
    center = beta
    if rule == "inverse" and ok.sum() > 0:
        w = 1 / vi[ok]
        center = float(np.sum(w * yi[ok]) / np.sum(w))
    q, q_p, i2, h2 = _mh_heterogeneity(center, yi, vi, ok)
    k_yi = int(ok.sum())
    if rule == "metafor" or k_yi < 2 or not np.isfinite(q):
        return (q, q_p, i2, h2), None
    import dataclasses

    from .hetci import h_i2_ci
    from .pooling import pool

    tau2 = max(0.0, (q - (k_yi - 1)) * _vt(vi[ok]) / (k_yi - 1))
    lab = [l for l, o in zip(labels, ok) if o]
    re = pool(yi[ok], vi[ok], tau2=tau2, method="DL", measure=measure, level=level, labels=lab,
              i2="Q")
    hc = h_i2_ci(q, k_yi, level)
    re = dataclasses.replace(
        re, q=float(q), q_pvalue=float(q_p), i2=float(hc.i2), i2_ci_lb=float(hc.i2_low),
        i2_ci_ub=float(hc.i2_high), h2=float(hc.h) ** 2, h2_ci_lb=float(hc.h_low) ** 2,
        h2_ci_ub=float(hc.h_high) ** 2,
        conventions=dataclasses.replace(
            re.conventions, tau2_estimator="DL from the Q of the Mantel-Haenszel fit: " + MH_Q_RULES[rule],
            tau2_ci="none (tau^2 from the Q of the Mantel-Haenszel fit)"),
        settings=dataclasses.replace(re.settings, not_refittable=(
            "the random-effects model of a Mantel-Haenszel fit takes its tau^2 from the MH fit's Q: "
            "refit the Mantel-Haenszel result (its refit recomputes both)")))
    return (q, q_p, i2, h2), re


def _percent(wi):
    sw = float(np.sum(wi))
    return 100 * wi / sw if sw > 0 else np.full(wi.size, float("nan"))


def _vt(vi: np.ndarray) -> float:
    """Typical within-study variance (k - 1)/tr(P) of the studies with a yi (Higgins & Thompson 2002)."""
    k = vi.size
    if k < 2:
        return 0.0
    w = 1 / vi
    return float((k - 1) / (np.sum(w) - np.sum(w**2) / np.sum(w)))


def _cmh(a, n1, n2, N, m1, m0, correct: bool) -> dict[str, float]:
    """Cochran (CO) and Cochran-Mantel-Haenszel (CMH) chi^2(1) tests of no association."""
    nan = float("nan")
    if np.sum(m1) == 0 or np.sum(m0) == 0:
        return {"CO": nan, "COp": nan, "CMH": nan, "CMHp": nan}
    dev = (abs(float(np.sum(a - n1 / N * m1))) - (0.5 if correct else 0.0)) ** 2
    co = dev / float(np.sum((n1 / N) * (n2 / N) * (m1 * (m0 / N))))
    with np.errstate(divide="ignore", invalid="ignore"):
        vh = np.where(N > 1, (n1 / N) * (n2 / N) * (m1 * (m0 / (N - 1))), 0.0)
    cmh = dev / float(np.sum(vh))
    return {"CO": co, "COp": float(chi2_sf(co, 1)), "CMH": cmh, "CMHp": float(chi2_sf(cmh, 1))}


def _breslow_day(psi: float, a, n1, n2, N, m1, m0) -> dict[str, float]:
    """Breslow-Day (1980) and Tarone (1985) tests of homogeneity of the odds ratios."""
    nan = float("nan")
    if not np.isfinite(psi):
        return {"BD": nan, "BDp": nan, "TA": nan, "TAp": nan, "k_pos": 0}
    T = psi * (n1 + m1) + (n2 - m1)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(T**2 - 4 * psi * (psi - 1) * n1 * m1)
        A = np.where(T + root > 0, 2 * psi * n1 * m1 / (T + root), 0.0)
    pos = (A > 0) & (m1 > 0) & (m0 > 0)
    k_pos = int(np.sum(pos))
    A, a_, n1_, m1_, N_ = A[pos], a[pos], n1[pos], m1[pos], N[pos]
    V = 1 / (1 / A + 1 / (n1_ - A) + 1 / (m1_ - A) + 1 / (N_ - n1_ - m1_ + A))
    bd = max(0.0, float(np.sum((a_ - A) ** 2 / V)))
    ta = max(0.0, bd - float(np.sum(a_ - A)) ** 2 / float(np.sum(V))) if k_pos else 0.0
    if k_pos > 1:
        bdp, tap = float(chi2_sf(bd, k_pos - 1)), float(chi2_sf(ta, k_pos - 1))
    else:
        bdp = tap = nan
    return {"BD": bd, "BDp": bdp, "TA": ta, "TAp": tap, "k_pos": k_pos}


def _correction_text(add1, to1, drop1, n_corr, k, add2, to2, drop2) -> str:
    return (f"yi/vi: add {add1:g} to={to1}, drop00={drop1} ({n_corr} of {k} studies corrected); "
            f"pooled tables: add {add2:g} to={to2}, drop00={drop2}")


def _finish(*, cls, measure, pooling, estimator_name, algorithm, level, beta, se, k, labels, yi, vi,
            wts, n, q, q_df, q_p, i2, h2, corrected, correction, excluded, warnings, tables,
            **typed) -> MHResult | PetoResult:
    nan = float("nan")
    crit = critical_value(level)
    if np.isfinite(beta) and se > 0:
        z = beta / se
        p = float(2 * norm_sf(abs(z)))
    else:
        z = p = nan
    lb, ub = beta - crit * se, beta + crit * se
    natural = None
    transform = "none"
    if get_measure(measure).back_transform == "exp":  # the ratios (OR, RR, PETO, IRR)
        transform = "exp"
        natural = NaturalScale(get_measure(measure).natural_scale, float(np.exp(beta)),
                               float(np.exp(lb)),
                               float(np.exp(ub)), nan, nan, transform)
    ok = np.isfinite(yi) & np.isfinite(vi)
    conventions = Conventions(
        tau2_estimator=estimator_name, test="z",
        i2_definition=(I2_DEFINITIONS["Q"] + "; Q about the pooled estimate over the k_yi studies "
                       "with a yi, H^2 = Q / (k_yi - 1) (metafor rma.mh/rma.peto)"),
        prediction_interval="none (common-effect model)",
        tau2_ci="none (common-effect model)", correction=correction, back_transform=transform,
    )
    diagnostics = Diagnostics(True, 0, False, algorithm)
    e1, t1, e2, t2 = (readonly(v) for v in tables)
    return cls(
        measure=measure, method="EE", test="z", level=level, k=k, estimate=float(beta), se=float(se),
        statistic=float(z), pvalue=p, ci_lb=float(lb), ci_ub=float(ub), df=None,
        tau2=0.0, se_tau2=nan, tau2_ci_lb=nan, tau2_ci_ub=nan,
        i2=float(i2), i2_ci_lb=nan, i2_ci_ub=nan, h2=float(h2), h2_ci_lb=nan, h2_ci_ub=nan,
        q=float(q), q_df=int(q_df), q_pvalue=float(q_p), pi_lb=nan, pi_ub=nan, pi_se=float(se),
        vt=_vt(vi[ok]), s2w=1.0, s2w_knha=nan, se_model=float(se),
        labels=labels, yi=readonly(yi), vi=readonly(vi), weights=readonly(wts), n=readonly(n),
        conventions=conventions, diagnostics=diagnostics, excluded=tuple(excluded), natural=natural,
        warnings=tuple(warnings), corrected=np.asarray(corrected, dtype=bool),
        events1=e1, total1=t1, events2=e2, total2=t2, pooling=pooling, **typed,
    )


def _prepare(events1, total1, events2, total2, add, to, drop00, labels, level):
    """Shared input handling: returns raw cells, the options and the labels."""
    level = check_level(level)
    raw = _tables(events1, total1, events2, total2)
    first, second = _options(add, to, drop00)
    return level, raw, first, second, _labels(labels, raw[0].size)


def _options(add, to, drop00):
    """add/to/drop00 as (yi/vi, pooled data) pairs, checked (metafor's rma.mh convention)."""
    add1, add2 = _pair(add, 0.0, "add")
    to1, to2 = _pair(to, "none", "to")
    drop1, drop2 = _pair(drop00, False, "drop00")
    add1, add2, drop1, drop2 = float(add1), float(add2), bool(drop1), bool(drop2)
    for t in (to1, to2):
        if t not in CORRECTION_RULES:
            raise ValueError(f"unknown continuity-correction rule to={t!r}; expected one of {', '.join(CORRECTION_RULES)}")
    if add1 < 0 or add2 < 0:
        raise ValueError("add must be >= 0")
    return (add1, to1, drop1), (add2, to2, drop2)


def _fit_tables(raw, lab, add2, to2, drop2):
    """The tables that enter the MH/Peto formulas: drop00 (second value), then the correction."""
    keep = ~(_double_zero(*raw) & drop2)
    excluded = [Excluded(lab[i], "double-zero table dropped (drop00 for the pooled tables)")
                for i in np.flatnonzero(~keep)]
    if not keep.any():
        raise ValueError("no table left to pool")
    cells, _ = _correct(tuple(v[keep] for v in raw), add2, to2)
    return keep, cells, excluded


def _yi_warnings(yi_ok: np.ndarray, labels) -> list[str]:
    if yi_ok.all():
        return []
    miss = [labels[i] for i in np.flatnonzero(~yi_ok)]
    return ["Some yi/vi values are NA: " + ", ".join(miss)
            + " (kept in the pooled estimate, left out of Q, I^2 and H^2)"]


@accepts_data(("events1", "total1", "events2", "total2", "subgroup"))
def pool_mh(events1: ArrayLike, total1: ArrayLike, events2: ArrayLike, total2: ArrayLike, *,
            measure: str = "OR", level: float = 0.95, add: float | tuple = 0.5,
            to: str | tuple = "only0", drop00: bool | tuple = True, correct: bool = True,
            q: str = "metafor", labels: ArrayLike | None = None,
            subgroup: ArrayLike | None = None) -> MHResult:
    """Mantel-Haenszel common-effect meta-analysis of 2x2 tables (metafor ``rma.mh``).

    ``measure`` is "OR", "RR" (pooled on the log scale) or "RD". ``add``,
    ``to`` and ``drop00`` govern the per-study yi/vi (first value) and,
    given as pairs, the pooled tables (second value; default raw counts).
    ``correct`` applies the continuity correction 1/2 to the CMH test.
    The result (:class:`~metamsc.results.MHResult`) holds ``CMH``/``CO`` (and ``BD``, ``TA``
    for OR) with p-values, ``k_yi`` and ``k_pos``. ``subgroup`` (a label per study) adds a
    Mantel-Haenszel fit per subgroup (``result.subgroups``, ``result.subgroup_test``).
    ``q`` is the heterogeneity rule (``MH_Q_RULES``): "metafor" (rma.mh: Q about the MH
    estimate, no tau^2), "cochrane" (R meta's ``Q.Cochrane = TRUE``, as RevMan 5 and the
    Cochrane Handbook: the same Q, and from it the DL tau^2 and the random-effects model meta
    prints beside the MH estimate, in ``result.random``) or "inverse" (meta's
    ``Q.Cochrane = FALSE``: Q about the inverse-variance common estimate).
    See the module docstring for the formulas.
    """
    q_rule = _q_rule(q)
    measure = str(measure).upper()
    if measure in MH_RATE_MEASURES:
        raise ValueError(f"measure {measure!r} pools incidence rates: use pool_mh_rates(events1, time1, "
                         "events2, time2, measure=...)")
    if measure not in MH_MEASURES:
        raise ValueError(f"measure {measure!r} is not supported by Mantel-Haenszel; use OR, RR or RD")
    level, raw, (add1, to1, drop1), (add2, to2, drop2), lab_all = _prepare(
        events1, total1, events2, total2, add, to, drop00, labels, level)
    a0, b0, c0, d0 = raw
    es = effect_size(measure, events1=a0, total1=a0 + b0, events2=c0, total2=c0 + d0,
                     add=add1, to=to1, drop00=drop1)
    keep, (a, b, c, d), excluded = _fit_tables(raw, lab_all, add2, to2, drop2)
    lab, yi, vi, ok = _kept_outcomes(es.yi, es.vi, keep, lab_all)
    k, k_yi = int(a.size), int(ok.sum())
    n1, n2, N, m1, m0 = _margins(a, b, c, d)
    nan = float("nan")
    warns = _yi_warnings(ok, lab)

    if measure == "OR":
        Ri, Si = (a / N) * d, (b / N) * c
        R, S = float(np.sum(Ri)), float(np.sum(Si))
        if R == 0 or S == 0:
            beta = se = nan
            warns.append("the MH odds ratio is not estimable (sum a d / N or sum b c / N is 0)")
        else:
            P, Q = (a + d) / N, (b + c) / N
            beta = float(np.log(R / S))
            se = float(np.sqrt(0.5 * (np.sum(P * Ri) / R**2 + np.sum(P * Si + Q * Ri) / (R * S)
                                      + np.sum(Q * Si) / S**2)))
        wi = Si
        variance = "Robins, Breslow & Greenland (1986)"
    elif measure == "RR":
        R, S = float(np.sum(a * (n2 / N))), float(np.sum(c * (n1 / N)))
        if np.sum(a) == 0 or np.sum(c) == 0:
            beta = se = nan
            warns.append("the MH risk ratio is not estimable (no events in one of the groups)")
        else:
            beta = float(np.log(R / S))
            se = float(np.sqrt(np.sum((n1 / N) * (n2 / N) * m1 - (a / N) * c) / (R * S)))
        wi = c * (n1 / N)
        variance = "Greenland & Robins (1985)"
    else:  # RD
        W = float(np.sum(n1 * (n2 / N)))
        beta = float(np.sum(a * (n2 / N) - c * (n1 / N)) / W)
        se = float(np.sqrt((beta * np.sum(c * (n1 / N) ** 2 - a * (n2 / N) ** 2
                                          + (n1 / N) * (n2 / N) * (n2 - n1) / 2)
                            + np.sum(a * (n2 - c) / N + c * (n1 - a) / N) / 2) / W**2))
        wi = n1 * (n2 / N)
        variance = "Sato, Greenland & Robins (1989)"

    (q, q_p, i2, h2), random = _mh_q_and_random(q_rule, beta, measure, yi, vi, ok, lab, level)
    wts = _percent(wi)

    typed: dict[str, Any] = {"k_yi": k_yi, "k_all": int(keep.size), "variance": variance,
                             "kept": np.flatnonzero(keep), "q_rule": q_rule, "random": random,
                             "correct": bool(correct),
                             "add": (add1, add2), "to": (to1, to2), "drop00": (drop1, drop2)}
    typed.update(_cmh(a, n1, n2, N, m1, m0, correct))
    if measure == "OR":
        typed.update(_breslow_day(float(np.exp(beta)) if np.isfinite(beta) else nan, a, n1, n2, N, m1, m0))
    res = _finish(
        cls=MHResult, tables=tuple(v[keep] for v in (a0, a0 + b0, c0, c0 + d0)), measure=measure, pooling="Mantel-Haenszel", estimator_name="MH",
        algorithm=f"Mantel-Haenszel (closed form); variance of the estimate: {variance}",
        level=level, beta=beta, se=se, k=k, labels=lab, yi=yi, vi=vi, wts=wts, n=N,
        q=q, q_df=max(k_yi - 1, 0), q_p=q_p, i2=i2, h2=h2, corrected=np.asarray(es.corrected)[keep],
        correction=_correction_text(add1, to1, drop1, int(np.sum(es.corrected)), es.k, add2, to2, drop2),
        excluded=excluded, warnings=warns, **typed)
    return _with_subgroups(res, subgroup)


def _rates(events1, time1, events2, time2):
    arrs = [np.atleast_1d(np.asarray(v, dtype=float)) for v in (events1, time1, events2, time2)]
    if any(v.ndim != 1 for v in arrs) or len({v.size for v in arrs}) != 1:
        raise ValueError("events1, time1, events2, time2 must be one-dimensional and of the same length")
    if arrs[0].size == 0:
        raise ValueError("no study to pool")
    for name, v in zip(("events1", "time1", "events2", "time2"), arrs):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite")
    for name, v in zip(("events1", "events2"), arrs[0::2]):
        if np.any(v < 0):
            raise ValueError(f"{name} must be >= 0")
    for name, v in zip(("time1", "time2"), arrs[1::2]):
        if np.any(v <= 0):
            raise ValueError(f"{name} (person-time) must be > 0")
    return tuple(arrs)


@accepts_data(("events1", "time1", "events2", "time2", "subgroup"))
def pool_mh_rates(events1: ArrayLike, time1: ArrayLike, events2: ArrayLike, time2: ArrayLike, *,
                  measure: str = "IRR", level: float = 0.95, add: float | tuple = 0.5,
                  to: str | tuple = "only0", drop00: bool | tuple = True, correct: bool = True,
                  labels: ArrayLike | None = None, subgroup: ArrayLike | None = None,
                  q: str = "metafor") -> MHResult:
    """Mantel-Haenszel common-effect meta-analysis of two-group incidence rates
    (metafor ``rma.mh(x1i, t1i, x2i, t2i, measure="IRR" | "IRD")``).

    ``events1``/``events2`` are event counts, ``time1``/``time2`` person-times. ``add``,
    ``to``, ``drop00``, ``correct``, ``labels``, ``subgroup`` and ``q`` (the heterogeneity rule:
    "cochrane" or "inverse" add R meta's random-effects model, as ``metainc``'s Q.Cochrane)
    work as in :func:`pool_mh`
    (the correction goes to the counts only). IRR is pooled on the log scale; the MH test of
    no association (IRR only) is in ``CMH``/``CMHp``. The result's ``total1``/``total2`` hold
    the person-times. Formulas: module docstring (Rothman, Greenland & Lash 2008; Greenland &
    Robins 1985).
    """
    measure = str(measure).upper()
    if measure not in MH_RATE_MEASURES:
        raise ValueError(f"measure {measure!r} is not an incidence-rate measure; use IRR or IRD "
                         "(pool_mh for OR, RR, RD)")
    level = check_level(level)
    q_rule = _q_rule(q)
    x1_0, t1_0, x2_0, t2_0 = _rates(events1, time1, events2, time2)
    (add1, to1, drop1), (add2, to2, drop2) = _options(add, to, drop00)
    lab_all = _labels(labels, x1_0.size)
    es = effect_size(measure, events1=x1_0, time1=t1_0, events2=x2_0, time2=t2_0,
                     add=add1, to=to1, drop00=drop1)
    keep = ~((x1_0 == 0) & (x2_0 == 0) & drop2)
    excluded = [Excluded(lab_all[i], "no event in either group, dropped (drop00 for the pooled data)")
                for i in np.flatnonzero(~keep)]
    if not keep.any():
        raise ValueError("no study left to pool")
    x1, t1, x2, t2 = (v[keep] for v in (x1_0, t1_0, x2_0, t2_0))
    mask = _to_mask((x1 == 0) | (x2 == 0), add2, to2)
    x1, x2 = x1 + add2 * mask, x2 + add2 * mask
    lab, yi, vi, ok = _kept_outcomes(es.yi, es.vi, keep, lab_all)
    k, k_yi = int(x1.size), int(ok.sum())
    T = t1 + t2
    p1, p2 = t1 / T, t2 / T
    nan = float("nan")
    warns = _yi_warnings(ok, lab)
    typed: dict[str, Any] = {}
    if measure == "IRR":
        R, S = float(np.sum(x1 * p2)), float(np.sum(x2 * p1))
        if np.sum(x1) == 0 or np.sum(x2) == 0:
            beta = se = nan
            warns.append("the MH rate ratio is not estimable (no events in one of the groups)")
        else:
            beta = float(np.log(R / S))
            se = float(np.sqrt(np.sum(p1 * p2 * (x1 + x2)) / (R * S)))
        xt = x1 + x2
        if np.sum(xt) > 0:
            mh = ((abs(float(np.sum(x1 - xt * p1))) - (0.5 if correct else 0.0)) ** 2
                  / float(np.sum(xt * p1 * p2)))
            typed.update(CMH=mh, CMHp=float(chi2_sf(mh, 1)))
        wi = x2 * p1
        variance = "Greenland & Robins (1985)"
    else:  # IRD
        wi = p1 * t2
        W = float(np.sum(wi))
        beta = float(np.sum(x1 * p2 - x2 * p1) / W)
        se = float(np.sqrt(np.sum(wi**2 * (x1 / t1**2 + x2 / t2**2))) / W)
        variance = "Greenland & Robins (1985)"
    (q, q_p, i2, h2), random = _mh_q_and_random(q_rule, beta, measure, yi, vi, ok, lab, level)
    typed.update({"k_yi": k_yi, "k_all": int(keep.size), "variance": variance,
                  "kept": np.flatnonzero(keep), "correct": bool(correct),
                  "q_rule": q_rule, "random": random,
                  "add": (add1, add2), "to": (to1, to2), "drop00": (drop1, drop2)})
    corr = np.asarray(es.corrected)
    res = _finish(
        cls=MHResult, tables=tuple(v[keep] for v in (x1_0, t1_0, x2_0, t2_0)), measure=measure,
        pooling="Mantel-Haenszel", estimator_name="MH",
        algorithm=f"Mantel-Haenszel for person-time (closed form); variance of the estimate: {variance}",
        level=level, beta=beta, se=se, k=k, labels=lab, yi=yi, vi=vi, wts=_percent(wi), n=T,
        q=q, q_df=max(k_yi - 1, 0), q_p=q_p, i2=i2, h2=h2, corrected=corr[keep],
        correction=_correction_text(add1, to1, drop1, int(np.sum(corr)), es.k, add2, to2, drop2),
        excluded=excluded, warnings=warns, **typed)
    return _with_subgroups(res, subgroup)


@accepts_data(("events1", "total1", "events2", "total2", "subgroup"))
def pool_peto(events1: ArrayLike, total1: ArrayLike, events2: ArrayLike, total2: ArrayLike, *,
              level: float = 0.95, add: float | tuple = 0.5, to: str | tuple = "only0",
              drop00: bool | tuple = True, labels: ArrayLike | None = None,
              subgroup: ArrayLike | None = None) -> PetoResult:
    """Peto's one-step pooled log odds ratio (metafor ``rma.peto``).

    ``add``/``to``/``drop00`` work as in :func:`pool_mh`. ``measure`` of the
    result is "PETO" (log odds ratio scale, natural scale = odds ratio).
    Raises ValueError when one outcome never occurs (sum V = 0). ``subgroup`` as in
    :func:`pool_mh`.
    """
    level, raw, (add1, to1, drop1), (add2, to2, drop2), lab_all = _prepare(
        events1, total1, events2, total2, add, to, drop00, labels, level)
    yi_all, vi_all, corr_all = _peto_yi_vi(raw, add1, to1, drop1)
    keep, (a, b, c, d), excluded = _fit_tables(raw, lab_all, add2, to2, drop2)
    lab, yi, vi, ok = _kept_outcomes(yi_all, vi_all, keep, lab_all)
    k, k_yi = int(a.size), int(ok.sum())
    n1, n2, N, m1, m0 = _margins(a, b, c, d)
    E = m1 * n1 / N
    with np.errstate(divide="ignore", invalid="ignore"):
        V = np.where(N > 1, m1 * m0 * (n1 / N) * (n2 / N) / (N - 1), 0.0)
    sv = float(np.sum(V))
    if sv == 0:
        raise ValueError("one of the two outcomes never occurred in any of the tables; "
                         "Peto's method cannot be used")
    beta = float(np.sum(a - E) / sv)
    se = float(np.sqrt(1 / sv))
    pos = V > 0
    k_pos = int(pos.sum())
    q = max(0.0, float(np.sum((a[pos] - E[pos]) ** 2 / V[pos]) - np.sum(a - E) ** 2 / sv))
    if k_pos > 1:
        df = k_yi - 1
        q_p = float(chi2_sf(q, df)) if df > 0 else float("nan")
        i2 = max(0.0, 100 * (q - df) / q) if q > 0 else 0.0
        h2 = q / df if df > 0 else float("nan")
    else:
        q_p, i2, h2 = 1.0, 0.0, 1.0
    wts = 100 * V / sv
    typed = {"k_yi": k_yi, "k_all": int(keep.size), "k_pos": k_pos, "kept": np.flatnonzero(keep),
             "add": (add1, add2), "to": (to1, to2), "drop00": (drop1, drop2)}
    res = _finish(
        cls=PetoResult, tables=tuple(v[keep] for v in (raw[0], raw[0] + raw[1], raw[2], raw[2] + raw[3])),
        measure="PETO", pooling="Peto (one-step, O - E / V)", estimator_name="PETO",
        algorithm="Peto one-step estimator (closed form; Yusuf et al. 1985)",
        level=level, beta=beta, se=se, k=k, labels=lab, yi=yi, vi=vi, wts=wts, n=N,
        q=q, q_df=max(k_yi - 1, 0), q_p=q_p, i2=i2, h2=h2, corrected=corr_all[keep],
        correction=_correction_text(add1, to1, drop1, int(np.sum(corr_all)), corr_all.size, add2, to2, drop2),
        excluded=excluded, warnings=_yi_warnings(ok, lab), **typed)
    return _with_subgroups(res, subgroup)


def _with_subgroups(res, subgroup):
    """Attach the per-subgroup fits when a subgroup label is given per input study."""
    if subgroup is None:
        return res
    from .subgroups import subgroup_analysis

    return subgroup_analysis(res, subgroup).attach()


def exact_two_group(events1: ArrayLike, total1: ArrayLike, events2: ArrayLike, total2: ArrayLike,
                    labels: Sequence[str], *, level: float = 0.95) -> list[dict[str, Any]]:
    """Per study 2x2 exact statistics: Fisher's exact test and the conditional MLE odds ratio
    with its exact CI (Fisher 1935; Cornfield 1956), as R's ``fisher.test``."""
    from scipy.stats import contingency, fisher_exact

    check_level(level)
    out = []
    for lab, *cells in zip(labels, events1, total1, events2, total2):
        a, n1, c, n2 = (int(round(float(x))) for x in cells)
        table = [[a, n1 - a], [c, n2 - c]]
        cond = contingency.odds_ratio(table, kind="conditional")
        ci = cond.confidence_interval(confidence_level=level)
        out.append({"study": lab, "table": table, "fisher_pvalue": fisher_exact(table)[1],
                    "or_conditional_mle": cond.statistic, "or_exact_ci_lb": ci.low,
                    "or_exact_ci_ub": ci.high, "risk1": a / n1, "risk2": c / n2,
                    "method": "Fisher's exact test (two-sided); conditional MLE odds ratio with "
                              "exact CI (as R fisher.test)"})
    return out
