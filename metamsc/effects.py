"""Effect sizes and their sampling variances (metafor ``escalc`` parity).

Formulas follow Viechtbauer W. (2010) J Stat Softw 36(3) and the references
given per measure in the measure registry (:mod:`metamsc.measures`), which
also lists every measure's data roles. The main ones:

============  ===============================================================
measures      roles
============  ===============================================================
PR PLN PLO    events, total
PAS PFT
IR IRLN IRS   events, time
IRFT
MN MNLN CVLN  mean, sd, n  (SDLN: sd, n)
MC SMCC SMCR  n, mean_pre, sd_pre, mean_post, sd_post, r  (change = post - pre,
ROMC          ROMC = log(post / pre))
RR OR RD ...  events1, total1, events2, total2
MD SMD ROM    mean1, sd1, n1, mean2, sd2, n2  (VR: sd1, n1, sd2, n2)
IRR IRD IRSD  events1, time1, events2, time2
COR ...       r, n;  PCOR/ZPCOR: t, n, predictors;  SPCOR: + r2
AHW ABT       alpha, items, n
MPRD ...      both, only1, only2, neither  (a paired 2x2 table)
GEN           yi, vi
============  ===============================================================

Why this module is over 700 lines: it holds the formula of every measure (about 60 escalc
codes, one helper per family of roles, plus R meta's variants); the table of measures
itself is in ``measures.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ._dist import norm_isf
from ._util import readonly
from . import transforms
from .measures import REGISTRY, get_measure

__all__ = ["MEASURES", "EffectSizes", "effect_size", "measure_roles", "NATURAL_SCALE",
           "CONVENTIONS"]

#: the data roles per measure (a view of the registry in metamsc.measures)
MEASURES: dict[str, tuple[str, ...]] = {c: m.roles for c, m in REGISTRY.items()}

#: what the natural scale of a measure is called (a view of the registry)
NATURAL_SCALE: dict[str, str] = {c: m.natural_scale for c, m in REGISTRY.items()
                                 if m.natural_scale is not None}

#: effect-size conventions by name
CONVENTIONS = ("metafor", "meta")
_TO = ("only0", "all", "if0all", "none")


def measure_roles(measure: str) -> tuple[str, ...]:
    """The data roles a measure needs, e.g. ``("events", "total")`` for PLO."""
    return get_measure(measure).roles


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effect sizes ``yi`` with sampling variances ``vi``.

    ``n`` is the study size used by back-transformations (PFT) and weights
    reports; ``corrected`` marks studies that received the continuity
    correction ``add``. Arrays are read-only.
    """

    measure: str
    yi: np.ndarray
    vi: np.ndarray
    n: np.ndarray | None = None
    labels: tuple[str, ...] | None = None
    add: float = 0.0
    to: str = "none"
    corrected: np.ndarray | None = None
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.yi.shape[0])

    @property
    def sei(self) -> np.ndarray:
        return np.sqrt(self.vi)

    def confidence_interval(self, confidence_level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Wald interval yi -/+ z * sqrt(vi) on the analysis scale."""
        z = norm_isf((1 - confidence_level) / 2)
        return self.yi - z * self.sei, self.yi + z * self.sei

    def proportion_ci(self, method: str = "CP", confidence_level: float = 0.95):
        """Per-study CI of a single proportion from the raw counts (meta's ``method.ci``:
        CP, WS, WSCC, AC, SA, SACC, JEFFREYS); proportion measures only."""
        if "total" not in self.inputs:
            raise ValueError(f"measure {self.measure} is not a single proportion")
        from .proportions import proportion_ci

        return proportion_ci(self.inputs["events"], self.inputs["total"], method=method,
                             level=confidence_level)

    def natural(self, x: ArrayLike) -> np.ndarray | None:
        """Back-transform per-study values (PFT with each study's own n)."""
        return transforms.back_transform(self.measure, x, self.n, harmonic=False)

    def to_frame(self, confidence_level: float = 0.95):
        """A pandas DataFrame with study, yi, vi, sei, ci_lb, ci_ub."""
        import pandas as pd

        lb, ub = self.confidence_interval(confidence_level)
        labels = self.labels or tuple(str(i + 1) for i in range(self.k))
        return pd.DataFrame({"study": labels, "yi": self.yi, "vi": self.vi,
                             "sei": self.sei, "ci_lb": lb, "ci_ub": ub})


def _arr(name: str, x: Any) -> np.ndarray:
    a = np.atleast_1d(np.asarray(x, dtype=float))
    if a.ndim != 1:
        raise ValueError(f"role {name!r} must be one-dimensional")
    return a


#: roles holding counts of patients or events: whole numbers, exact in floating point
_COUNT_ROLES = ("events", "total", "events1", "total1", "events2", "total2")


def _check_count(name: str, a: np.ndarray) -> None:
    if name in _COUNT_ROLES:
        bad = np.flatnonzero(np.isfinite(a) & ((a != np.round(a)) | (a > 2.0**53)))
        if bad.size:
            raise ValueError(f"role {name!r} must be a whole number (a count), study {bad[0] + 1} "
                             f"has {a[bad[0]]:g}")


def _check_nonneg(name: str, a: np.ndarray) -> None:
    bad = np.flatnonzero(a < 0)
    if bad.size:
        raise ValueError(f"role {name!r} is negative in study {bad[0] + 1}")
    _check_count(name, a)


def _check_le(x_name: str, x: np.ndarray, n_name: str, n: np.ndarray) -> None:
    bad = np.flatnonzero(x > n)
    if bad.size:
        raise ValueError(f"{x_name} > {n_name} in study {bad[0] + 1} ({x[bad[0]]:g} > {n[bad[0]]:g})")


def _check_pos(name: str, a: np.ndarray) -> None:
    bad = np.flatnonzero(a <= 0)
    if bad.size:
        raise ValueError(f"role {name!r} must be > 0, study {bad[0] + 1} has {a[bad[0]]:g}")
    _check_count(name, a)


def _correction_mask(to: str, zero: np.ndarray) -> np.ndarray:
    """Which studies get the continuity correction under rule ``to``."""
    if to == "all":
        return np.ones_like(zero, dtype=bool)
    if to == "only0":
        return zero.copy()
    if to == "if0all":
        return np.full_like(zero, bool(zero.any()), dtype=bool)
    return np.zeros_like(zero, dtype=bool)


def cmi(m: ArrayLike) -> np.ndarray:
    """Exact small-sample correction c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)) (Hedges 1981)."""
    m = np.asarray(m, dtype=float)
    out = np.full(m.shape, np.nan)
    ok = m > 1
    mm = m[ok]
    out[ok] = np.exp(special.gammaln(mm / 2) - np.log(np.sqrt(mm / 2)) - special.gammaln((mm - 1) / 2))
    return out


def _meta_proportion(measure: str, *, add: float, to: str, labels, **roles) -> EffectSizes:
    """R meta's metaprop formulas for PRAW and PLN (see :func:`effect_size`)."""
    x, n = _arr("events", roles["events"]), _arr("total", roles["total"])
    _check_nonneg("events", x)
    _check_pos("total", n)
    _check_le("events", x, "total", n)
    c = add * (_correction_mask(to, (x == 0) | (x == n)) & (add != 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "PR":
            yi = x / n
            vi = (x + c) * (n - x + c) / (n + 2 * c) ** 3
        else:
            yi = np.log((x + c) / (n + c))
            vi = np.where(x == n, 1 / x - 1 / (n + c), 1 / (x + c) - 1 / (n + c))
    lab = None if labels is None else tuple(str(v) for v in np.atleast_1d(labels))
    return EffectSizes(measure=measure, yi=readonly(yi), vi=readonly(vi), n=readonly(n), labels=lab, add=float(add),
                       to=f"{to} (meta)", corrected=c > 0,
                       inputs={"events": readonly(x), "total": readonly(n)})


def _proportion(measure: str, a: dict, *, to, add, vtype):
    """Single proportions (escalc's xi, ni); PFT: Freeman & Tukey (1950)."""
    x, ni = a["events"], a["total"]
    _check_nonneg("events", x)
    _check_pos("total", ni)
    _check_le("events", x, "total", ni)
    m = ni - x
    corrected = _correction_mask(to, (x == 0) | (m == 0)) & (add != 0)
    x = x + add * corrected
    m = m + add * corrected
    n = x + m
    p = x / n
    if measure == "PR":
        if vtype == "AV":
            pa = _wmean(p, n)
            return p, pa * (1 - pa) / n, n, corrected
        return p, p * (1 - p) / (n - 1 if vtype == "UB" else n), n, corrected
    if measure == "PLN":
        return (np.log(p), 1 / (_wmean(p, n) * n) - 1 / n if vtype == "AV" else 1 / x - 1 / n,
                n, corrected)
    if measure == "PLO":
        if vtype == "AV":
            pa = _wmean(p, n)
            return np.log(x / m), 1 / (pa * n) + 1 / ((1 - pa) * n), n, corrected
        return np.log(x / m), 1 / x + 1 / m, n, corrected
    if measure == "PAS":
        return np.arcsin(np.sqrt(p)), 1 / (4 * n), n, corrected
    yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
    return yi, 1 / (4 * n + 2), n, corrected


def _rate(measure: str, a: dict, *, to, add):
    """Single incidence rates (escalc's xi, ti)."""
    x, t = a["events"], a["time"]
    _check_nonneg("events", x)
    _check_pos("time", t)
    corrected = _correction_mask(to, x == 0) & (add != 0)
    x = x + add * corrected
    ir = x / t
    if measure == "IR":
        return ir, ir / t, t, corrected
    if measure == "IRLN":
        return np.log(ir), 1 / x, t, corrected
    if measure == "IRS":
        return np.sqrt(ir), 1 / (4 * t), t, corrected
    return 0.5 * (np.sqrt(ir) + np.sqrt(ir + 1 / t)), 1 / (4 * t), t, corrected  # IRFT


def _mean(measure: str, a: dict):
    """Single means, SDs and CVs (escalc's mi, sdi, ni); CVLN, SDLN: Nakagawa et al. (2015)."""
    sd, ni = a["sd"], a["n"]
    _check_nonneg("sd", sd)
    _check_pos("n", ni)
    if measure == "SDLN":
        return np.log(sd) + 1 / (2 * (ni - 1)), 1 / (2 * (ni - 1)), ni
    if measure == "MN":
        return a["mean"], sd**2 / ni, ni
    if measure == "SMN":  # bias-corrected mean / sd (Hedges 1981)
        yi = cmi(ni - 1) * a["mean"] / sd
        return yi, 1 / ni + yi**2 / (2 * ni), ni
    mean = a["mean"]
    _check_pos("mean", mean)
    if measure == "MNLN":
        return np.log(mean), sd**2 / (ni * mean**2), ni
    return (np.log(sd / mean) + 1 / (2 * (ni - 1)),
            1 / (2 * (ni - 1)) + sd**2 / (ni * mean**2), ni)  # CVLN


def _prepost(measure: str, a: dict, *, vtype):
    """One group measured before and after (change = post - pre, ratios post / pre)."""
    ni, r = a["n"], a["r"]
    _check_pos("n", ni)
    if measure in ("SMCC", "SMCR", "SMCRH"):  # the correction c(n - 1) needs n - 1 > 1
        bad = np.flatnonzero(ni < 3)
        if bad.size:
            raise ValueError(f"role 'n' must be at least 3 for {measure} (the small-sample "
                             f"correction needs n - 1 > 1), study {bad[0] + 1} has {ni[bad[0]]:g}")
    bad = np.flatnonzero(np.abs(r) > 1)
    if bad.size:
        raise ValueError(f"role 'r' must lie in [-1, 1], study {bad[0] + 1} has {r[bad[0]]:g}")
    sd2 = a["sd_pre"]
    if measure == "SMCR":  # Becker (1988), standardised by the pre-treatment SD
        _check_pos("sd_pre", sd2)
        c = cmi(ni - 1)
        d = (a["mean_post"] - a["mean_pre"]) / sd2
        yi = c * d
        vi = (c**2 * (2 * (1 - r) / ni + d**2 / (2 * ni)) if vtype == "LS2"
              else 2 * (1 - r) / ni + yi**2 / (2 * ni))
        return yi, vi, ni
    sd1 = a["sd_post"]
    _check_nonneg("sd_post", sd1)
    _check_nonneg("sd_pre", sd2)
    if measure == "VRC":  # Nakagawa et al. (2015): log(sd_post / sd_pre)
        return np.log(sd1 / sd2), (1 - r**2) / (ni - 1), ni
    m1, m2 = a["mean_post"], a["mean_pre"]
    var_d = sd1**2 + sd2**2 - 2 * r * sd1 * sd2
    if measure == "MC":
        return m1 - m2, var_d / ni, ni
    if measure == "SMCC":  # Gibbons et al. (1993)
        c = cmi(ni - 1)
        d = (m1 - m2) / np.sqrt(var_d)
        yi = c * d
        return yi, (c**2 * (1 / ni + d**2 / (2 * ni)) if vtype == "LS2" else 1 / ni + yi**2 / (2 * ni)), ni
    if measure == "SMCRH":  # Bonett (2008), standardised by the pre-treatment SD
        c = cmi(ni - 1)
        yi = c * (m1 - m2) / sd2
        return yi, c**2 * (var_d / (sd2**2 * (ni - 1)) + yi**2 / (2 * (ni - 1))), ni
    if measure == "CVRC":  # Nakagawa et al. (2015): log(CV_post / CV_pre)
        yi = np.log(sd1 / m1) - np.log(sd2 / m2)
        vi = ((1 - r**2) / (ni - 1)
              + (m1**2 * sd2**2 + m2**2 * sd1**2 - 2 * m1 * m2 * r * sd1 * sd2) / (m1**2 * m2**2 * ni))
        return yi, vi, ni
    # ROMC, Lajeunesse (2011): log(post / pre)
    return (np.log(m1 / m2),
            sd1**2 / (ni * m1**2) + sd2**2 / (ni * m2**2) - 2 * r * sd1 * sd2 / (m1 * m2 * ni), ni)


def _binary_cells(a: dict, drop00: bool, to: str, add: float):
    """2x2 cells (a, b, c, d) after drop00 and the continuity correction, and the mask."""
    ai, n1, ci, n2 = a["events1"], a["total1"], a["events2"], a["total2"]
    for nm, v in a.items():
        _check_nonneg(nm, v)
    _check_le("events1", ai, "total1", n1)
    _check_le("events2", ci, "total2", n2)
    return _table_cells(ai, n1 - ai, ci, n2 - ci, drop00, to, add)


def _table_cells(ai, bi, ci, di, drop00: bool, to: str, add: float):
    if drop00:
        both = ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0))
        ai, bi, ci, di = (np.where(both, np.nan, v) for v in (ai, bi, ci, di))
    zero = (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)
    corrected = _correction_mask(to, zero) & (add != 0)
    ai, bi, ci, di = (v + add * corrected for v in (ai, bi, ci, di))
    return ai, bi, ci, di, corrected


def _phi_var(yi, ai, bi, ci, di, vtype):
    """Variance of the phi coefficient: Bishop, Fienberg & Holland (1975) (LS/CS) or
    the stratified-sampling form of Bonett (2007) (ST)."""
    n1, n2 = ai + bi, ci + di
    ni = n1 + n2
    p1, p2 = ai / n1, ci / n2
    q1, q2 = 1 - p1, 1 - p2
    if vtype == "ST":
        return ((n1 + n2) ** 2 * (4 * n1**3 * p1**2 * p2 * q1**2 * q2
                                  + 4 * n2**3 * p1 * p2**2 * q1 * q2**2
                                  + n1 * n2**2 * p2 * q2 * (p2 * q1 + p1 * q2) * (p2 * q1 + p1 * (4 * q1 + q2))
                                  + n1**2 * n2 * p1 * q1 * (p2 * q1 + p1 * q2) * (p1 * q2 + p2 * (q1 + 4 * q2)))
                / (4 * (ai + ci) ** 3 * (bi + di) ** 3))
    r1, r2 = n1 / ni, n2 / ni
    c1, c2 = (ai + ci) / ni, (bi + di) / ni
    return (1 - yi**2 + yi * (1 + yi**2 / 2) * (r1 - r2) * (c1 - c2) / np.sqrt(r1 * r2 * c1 * c2)
            - 0.75 * yi**2 * ((r1 - r2) ** 2 / (r1 * r2) + (c1 - c2) ** 2 / (c1 * c2))) / ni


def _binary2(measure: str, a: dict, *, drop00, to, add, vtype, convention, incr_arms=None):
    """Two-group binary outcome measures from a 2x2 table (escalc's ai, bi, ci, di)."""
    if convention == "meta":
        return _binary2_meta(measure, a, to=to, add=add, incr_arms=incr_arms)
    ai, bi, ci, di, corrected = _binary_cells(a, drop00, to, add)
    n1, n2 = ai + bi, ci + di
    ni = n1 + n2
    p1, p2 = ai / n1, ci / n2
    if measure == "RR":
        return np.log(p1) - np.log(p2), 1 / ai - 1 / n1 + 1 / ci - 1 / n2, ni, corrected
    if measure in ("OR", "OR2DN", "OR2DL"):
        yi = np.log(ai / bi) - np.log(ci / di)
        vi = 1 / ai + 1 / bi + 1 / ci + 1 / di
        if measure == "OR2DN":  # Cox (1970): d = log OR / 1.65
            yi, vi = yi / 1.65, vi / 1.65**2
        elif measure == "OR2DL":  # Hasselblad & Hedges (1995): d = sqrt(3)/pi log OR
            yi, vi = np.sqrt(3) / np.pi * yi, 3 / np.pi**2 * vi
        return yi, vi, ni, corrected
    if measure == "RD":
        yi = p1 - p2
        if vtype == "UB":
            vi = p1 * (1 - p1) / (n1 - 1) + p2 * (1 - p2) / (n2 - 1)
        elif vtype == "AV":
            m1, m2 = _wmean(p1, n1), _wmean(p2, n2)
            vi = m1 * (1 - m1) / n1 + m2 * (1 - m2) / n2
        else:
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        return yi, vi, ni, corrected
    if measure == "PBIT":  # probit difference (Sanchez-Meca et al. 2003)
        z1, z2 = special.ndtri(p1), special.ndtri(p2)
        vi = (2 * np.pi * p1 * (1 - p1) * np.exp(z1**2) / n1
              + 2 * np.pi * p2 * (1 - p2) * np.exp(z2**2) / n2)
        return z1 - z2, vi, ni, corrected
    if measure == "PETO":  # Yusuf et al. (1985): (O - E) / V
        xt, yt = ai + ci, bi + di
        e = xt * n1 / ni
        v = xt * yt * (n1 / ni) * (n2 / ni) / (ni - 1)
        return (ai - e) / v, 1 / v, ni, corrected
    if measure == "AS":  # Ruecker et al. (2009)
        return np.arcsin(np.sqrt(p1)) - np.arcsin(np.sqrt(p2)), 1 / (4 * n1) + 1 / (4 * n2), ni, corrected
    if measure == "PHI":
        yi = (ai * di - bi * ci) / np.sqrt((ai + bi) * (ci + di) * (ai + ci) * (bi + di))
        return yi, _phi_var(yi, ai, bi, ci, di, vtype), ni, corrected
    odds = (ai / bi) / (ci / di)
    if measure == "YUQ":  # Yule (1900): Q = (OR - 1) / (OR + 1)
        yi = (odds - 1) / (odds + 1)
        return yi, (1 - yi**2) ** 2 / 4 * (1 / ai + 1 / bi + 1 / ci + 1 / di), ni, corrected
    # YUY, Yule (1912): Y = (sqrt OR - 1) / (sqrt OR + 1)
    yi = (np.sqrt(odds) - 1) / (np.sqrt(odds) + 1)
    return yi, (1 - yi**2) ** 2 / 16 * (1 / ai + 1 / bi + 1 / ci + 1 / di), ni, corrected


def _binary2_meta(measure: str, a: dict, *, to, add, incr_arms):
    """R meta's ``metabin`` study estimates (Cooper & Hedges 1994; Hartung & Knapp 2001).

    Studies with no events in either arm (RR, OR) or all events in both arms (OR) get
    no estimate (NaN): meta leaves them out unless ``allstudies``. The increment
    ``add`` (per arm: ``incr_arms``, e.g. the treatment-arm correction of Sweeting
    et al. 2004) goes to the studies with a zero cell (``to="only0"``), to all studies
    when any has one (``"if0all"``), to all (``"all"``) or to none (``"none"``).
    RR: log((x1+i1)/(n1+i1)) - log((x2+i2)/(n2+i2)) with variance
    1/(x1+i1) - 1/(n1+i1) + 1/(x2+i2) - 1/(n2+i2), the increment left out of the
    event counts when both arms have only events (Hartung & Knapp 2001, eq. 18);
    ``measure="RR.Cochrane"`` adds 2i to the group sizes instead. RD: the uncorrected
    difference with variance sum (x+i)(n-x+i)/(n+2i)^3.
    """
    x1, n1, x2, n2 = a["events1"], a["total1"], a["events2"], a["total2"]
    for nm, v in a.items():
        _check_nonneg(nm, v)
    _check_le("events1", x1, "total1", n1)
    _check_le("events2", x2, "total2", n2)
    base = "RR" if measure == "RR.COCHRANE" else measure
    if base not in ("RR", "OR", "RD"):
        raise ValueError(f"convention='meta' covers RR, RR.Cochrane, OR and RD, not {measure}")
    if base == "OR":
        out = ((x1 == 0) & (x2 == 0)) | ((x1 == n1) & (x2 == n2))
    elif base == "RR":
        out = (x1 == 0) & (x2 == 0)
    else:
        out = np.zeros(x1.shape, dtype=bool)
    zero = ((x1 == 0) | (x1 == n1) | (x2 == 0) | (x2 == n2)) & ~out
    if incr_arms is None:
        i1 = i2 = np.full(x1.shape, float(add))
    else:
        i1, i2 = (np.broadcast_to(np.asarray(v, dtype=float), x1.shape) for v in incr_arms)
    mask = _correction_mask(to, zero) & ~out
    i1, i2 = i1 * mask, i2 * mask
    corrected = mask & ((i1 != 0) | (i2 != 0))
    allev = (x1 == n1) & (x2 == n2)
    if base == "OR":
        yi = np.log((x1 + i1) * (n2 - x2 + i2) / ((n1 - x1 + i1) * (x2 + i2)))
        vi = 1 / (x1 + i1) + 1 / (n1 - x1 + i1) + 1 / (x2 + i2) + 1 / (n2 - x2 + i2)
    elif measure == "RR":
        yi = np.log((x1 + i1) / (n1 + i1)) - np.log((x2 + i2) / (n2 + i2))
        vi = (1 / (x1 + i1 * ~allev) - 1 / (n1 + i1) + 1 / (x2 + i2 * ~allev) - 1 / (n2 + i2))
    elif base == "RR":  # RR.Cochrane
        yi = np.log((x1 + i1) / (n1 + 2 * i1)) - np.log((x2 + i2) / (n2 + 2 * i2))
        vi = 1 / (x1 + i1) - 1 / (n1 + 2 * i1) + 1 / (x2 + i2) - 1 / (n2 + 2 * i2)
    else:
        yi = x1 / n1 - x2 / n2
        vi = ((x1 + i1) * (n1 - x1 + i1) / (n1 + 2 * i1) ** 3
              + (x2 + i2) * (n2 - x2 + i2) / (n2 + 2 * i2) ** 3)
    yi, vi = np.where(out, np.nan, yi), np.where(out, np.nan, vi)
    return yi, vi, n1 + n2, corrected


def _paired(measure: str, a: dict, *, drop00, to, add):
    """Paired binary data (a paired 2x2 table): Zou (2007) for MPRD and MPRR,
    the marginal odds ratio of Elbourne et al. (2002) for MPOR."""
    for nm, v in a.items():
        _check_nonneg(nm, v)
    ai, bi, ci, di, corrected = _table_cells(a["both"], a["only1"], a["only2"], a["neither"],
                                             drop00, to, add)
    ni = ai + bi + ci + di
    if measure == "MPORC":  # conditional (McNemar) odds ratio only1 / only2
        return np.log(bi) - np.log(ci), 1 / bi + 1 / ci, ni, corrected
    if measure == "MPPETO":  # Peto's one-step estimate on the discordant pairs
        e, v = (bi + ci) / 2, (bi + ci) / 4
        return (bi - e) / v, 1 / v, ni, corrected
    p12, p21 = bi / ni, ci / ni
    p1, p2 = (ai + bi) / ni, (ai + ci) / ni
    if measure == "MPRD":
        return p1 - p2, (p12 * (1 - p12) + 2 * p12 * p21 + p21 * (1 - p21)) / ni, ni, corrected
    if measure == "MPRR":
        return np.log(p1) - np.log(p2), (p12 + p21) / (ni * p1 * p2), ni, corrected
    yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
    vi = ((p12 * (1 - p12) + p21 * (1 - p21) + 2 * p12 * p21)
          / (ni * p1 * (1 - p1) * p2 * (1 - p2)))
    return yi, vi, ni, corrected


def _rate2(measure: str, a: dict, *, drop00, to, add):
    """Two-group incidence rates (escalc's x1i, t1i, x2i, t2i)."""
    x1, t1, x2, t2 = a["events1"], a["time1"], a["events2"], a["time2"]
    _check_nonneg("events1", x1)
    _check_nonneg("events2", x2)
    _check_pos("time1", t1)
    _check_pos("time2", t2)
    if drop00:
        both = (x1 == 0) & (x2 == 0)
        x1, x2 = np.where(both, np.nan, x1), np.where(both, np.nan, x2)
    corrected = _correction_mask(to, (x1 == 0) | (x2 == 0)) & (add != 0)
    x1, x2 = x1 + add * corrected, x2 + add * corrected
    r1, r2 = x1 / t1, x2 / t2
    if measure == "IRR":
        yi, vi = np.log(r1) - np.log(r2), 1 / x1 + 1 / x2
    elif measure == "IRD":
        yi, vi = r1 - r2, r1 / t1 + r2 / t2
    else:  # IRSD
        yi, vi = np.sqrt(r1) - np.sqrt(r2), 1 / (4 * t1) + 1 / (4 * t2)
    return yi, vi, t1 + t2, corrected


def _wmean(x, w):
    ok = ~(np.isnan(x) | np.isnan(w))
    return np.sum(x[ok] * w[ok]) / np.sum(w[ok])


def _continuous2(measure: str, a: dict, *, vtype, convention):
    """Two-group continuous outcomes (escalc's m1i, sd1i, n1i, m2i, sd2i, n2i)."""
    n1, s2, n2 = a["n1"], a["sd2"], a["n2"]
    s1 = a.get("sd1", s2)  # SMD1 has no group-1 SD
    _check_nonneg("sd1", s1)
    _check_nonneg("sd2", s2)
    _check_pos("n1", n1)
    _check_pos("n2", n2)
    n = n1 + n2
    if measure == "VR":  # Nakagawa et al. (2015)
        return (np.log(s1 / s2) + 1 / (2 * (n1 - 1)) - 1 / (2 * (n2 - 1)),
                1 / (2 * (n1 - 1)) + 1 / (2 * (n2 - 1)), n)
    m1, m2 = a["mean1"], a["mean2"]
    if measure in ("SMD1", "SMD1H"):  # standardised by group 2's SD (Glass 1976)
        mi, sp, npi = n2 - 1, s2, n2
    else:
        mi, sp, npi = n - 2, np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n - 2)), n
    d = (m1 - m2) / sp
    if measure == "SMD1H":  # Bonett (2008)
        yi = cmi(mi) * d
        return yi, (s1**2 / s2**2) / n1 + 1 / n2 + yi**2 / (2 * n2), n
    if measure == "MD":
        vi = sp**2 * (1 / n1 + 1 / n2) if vtype == "HO" else s1**2 / n1 + s2**2 / n2
        return m1 - m2, vi, n
    if measure in ("SMD", "SMD1"):
        if convention == "meta":
            # meta's metacont default (exact.smd = FALSE): J = 1 - 3/(4N - 9) and
            # v = N/(n1 n2) + g^2 / (2 (N - 3.94)) (Deeks & Higgins 2010, RevMan 5)
            yi = (1 - 3 / (4 * n - 9)) * d
            return yi, n / (n1 * n2) + yi**2 / (2 * (n - 3.94)), n
        c = cmi(mi)
        yi = c * d  # Hedges' g with the exact correction (Hedges 1981)
        if vtype == "UB":
            vi = 1 / n1 + 1 / n2 + (1 - (mi - 2) / (mi * c**2)) * yi**2
        elif vtype == "LS2":
            vi = c**2 * (1 / n1 + 1 / n2 + d**2 / (2 * npi))
        elif vtype == "AV":
            vi = 1 / n1 + 1 / n2 + _wmean(yi, n) ** 2 / (2 * npi)
        else:
            vi = 1 / n1 + 1 / n2 + yi**2 / (2 * npi)
        return yi, vi, n
    if measure == "SMDH":  # Bonett (2008)
        c = cmi(n - 2)
        ssum = s1**2 + s2**2
        yi = c * (m1 - m2) / np.sqrt(ssum / 2)
        if vtype == "LS2":
            vi = (yi**2 * s1**2 / (2 * n1 * ssum**2) + yi**2 * s2**2 / (2 * n2 * ssum**2)
                  + 2 * s1**2 / (n1 * ssum) + 2 * s2**2 / (n2 * ssum))
        else:
            vi = c**2 * (yi**2 * (s1**4 / (n1 - 1) + s2**4 / (n2 - 1)) / (2 * ssum**2)
                         + (s1**2 / (n1 - 1) + s2**2 / (n2 - 1)) / (ssum / 2))
        return yi, vi, n
    if measure == "ROM":  # Hedges et al. (1999)
        yi = np.log(m1 / m2)
        if vtype == "HO":
            vi = sp**2 / (n1 * m1**2) + sp**2 / (n2 * m2**2)
        elif vtype == "AV":
            vi = _wmean(s1 / m1, n1) ** 2 / n1 + _wmean(s2 / m2, n2) ** 2 / n2
        elif vtype == "AVHO":
            cv1, cv2 = s1 / m1, s2 / m2
            ok = ~(np.isnan(n1) | np.isnan(n2) | np.isnan(cv1) | np.isnan(cv2))
            cv = (np.sum(n1[ok] * cv1[ok]) + np.sum(n2[ok] * cv2[ok])) / np.sum(n[ok])
            vi = cv**2 * (1 / n1 + 1 / n2)
        else:
            vi = s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
        return yi, vi, n
    if measure == "CVR":  # Nakagawa et al. (2015)
        yi = np.log(s1 / m1) + 1 / (2 * (n1 - 1)) - np.log(s2 / m2) - 1 / (2 * (n2 - 1))
        vi = 1 / (2 * (n1 - 1)) + s1**2 / (n1 * m1**2) + 1 / (2 * (n2 - 1)) + s2**2 / (n2 * m2**2)
        return yi, vi, n
    if measure in ("RPB", "RBIS"):  # Jacobs & Viechtbauer (2017)
        h = mi / n1 + mi / n2
        rpb = d / np.sqrt(d**2 + h)
        if measure == "RPB":
            if vtype == "CS":
                vi = (1 - rpb**2) ** 2 * (n * rpb**2 / (4 * n1 * n2) + (2 - 3 * rpb**2) / (2 * n))
            else:
                vi = h**2 / (h + d**2) ** 3 * (1 / n1 + 1 / n2 + d**2 / (2 * n))
            return rpb, vi, n
        p1, p2 = n1 / n, n2 / n
        z = -special.ndtri(p1)
        fz = np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)
        yi = np.sqrt(p1 * p2) / fz * rpb
        yt = np.where(np.abs(yi) > 1, np.sign(yi), yi)
        vi = (p1 * p2 / fz**2 - (1.5 + (1 - p1 * z / fz) * (1 + p2 * z / fz)) * yt**2 + yt**4) / (n - 1)
        return yi, vi, n
    # D2ORN (Cox 1970, factor 1.65) and D2ORL (Hasselblad & Hedges 1995, pi/sqrt(3))
    f = 1.65 if measure == "D2ORN" else np.pi / np.sqrt(3)
    return f * d, f**2 * (1 / n1 + 1 / n2 + d**2 / (2 * n)), n


def _correlation(measure: str, a: dict, *, vtype):
    """Correlations: Olkin & Pratt (1958) for UCOR, Fisher's z, and the (semi-)partial
    correlations from a regression t statistic (Aloe & Becker 2012)."""
    ni = a["n"]
    _check_pos("n", ni)
    if measure in ("COR", "UCOR", "ZCOR"):
        ri = a["r"]
        bad = np.flatnonzero(np.abs(ri) > 1)
        if bad.size:
            raise ValueError(f"role 'r' must lie in [-1, 1], study {bad[0] + 1} has {ri[bad[0]]:g}")
        if measure == "ZCOR":
            yi, vi = np.arctanh(ri), 1 / (ni - 3)
        else:
            if measure == "COR":
                yi = ri
            else:
                yi = ri * _hyp2f1(0.5, 0.5, (ni - 2) / 2, 1 - ri**2)
            if vtype == "UB":
                vi = yi**2 - (1 - (ni - 3) / (ni - 2) * (1 - ri**2) * _hyp2f1(1, 1, ni / 2, 1 - ri**2))
            elif vtype == "AV":
                vi = (1 - _wmean(yi, ni) ** 2) ** 2 / (ni - 1)
            else:
                vi = (1 - yi**2) ** 2 / (ni - 1)
        vi = np.where(ni <= 3, np.nan, vi)
        return yi, vi, ni
    ti, mi = a["t"], a["predictors"]
    _check_nonneg("predictors", mi)
    bad = np.flatnonzero(ni - mi - 1 <= 0)
    if bad.size:
        raise ValueError(f"n - predictors - 1 must be > 0, study {bad[0] + 1} has "
                         f"{ni[bad[0]] - mi[bad[0]] - 1:g}")
    df = ni - mi - 1
    if measure in ("PCOR", "ZPCOR"):
        r = ti / np.sqrt(ti**2 + df)
        if measure == "ZPCOR":
            return np.arctanh(r), 1 / df, ni
        w = _wmean(r, ni) if vtype == "AV" else r
        return r, (1 - w**2) ** 2 / df, ni
    r2 = a["r2"]
    bad = np.flatnonzero((r2 < 0) | (r2 > 1))
    if bad.size:
        raise ValueError(f"role 'r2' must lie in [0, 1], study {bad[0] + 1} has {r2[bad[0]]:g}")
    yi = ti * np.sqrt(1 - r2) / np.sqrt(df)
    w = _wmean(yi, ni) if vtype == "AV" else yi
    return yi, (r2**2 - 2 * r2 + (r2 - w**2) + 1 - (r2 - w**2) ** 2) / ni, ni


def _hyp2f1(a: float, b: float, c, x) -> np.ndarray:
    """Gauss hypergeometric 2F1(a, b; c; x) for a, b > 0 and 0 <= x < 1 by its power series
    (all terms positive, so summed to full precision); NaN unless c > a + b, as metafor."""
    c, x = np.broadcast_arrays(np.asarray(c, dtype=float), np.asarray(x, dtype=float))
    ok = (c > a + b) & (x >= 0) & (x < 1)
    at1 = (c > a + b) & (x == 1)  # Gauss: Gamma(c) Gamma(c-a-b) / (Gamma(c-a) Gamma(c-b))
    c1 = np.where(at1, c, a + b + 1)
    gauss = np.exp(special.gammaln(c1) + special.gammaln(c1 - a - b) - special.gammaln(c1 - a)
                   - special.gammaln(c1 - b))
    cc, xx = np.where(ok, c, a + b + 1), np.where(ok, x, 0.0)
    term = np.ones(cc.shape)
    total = np.ones(cc.shape)
    for k in range(200_000):
        term = term * (a + k) * (b + k) / ((cc + k) * (k + 1)) * xx
        total = total + term
        if np.all(term <= 1e-17 * total):
            break
    return np.where(ok, total, np.where(at1, gauss, np.nan))


def _alpha(measure: str, a: dict):
    """Cronbach's alpha: raw (ARAW, Feldt 1965), Hakstian & Whalen (1976) (AHW),
    Bonett (2002) (ABT)."""
    al, mi, ni = a["alpha"], a["items"], a["n"]
    bad = np.flatnonzero(al > 1)
    if bad.size:
        raise ValueError(f"role 'alpha' must be <= 1, study {bad[0] + 1} has {al[bad[0]]:g}")
    bad = np.flatnonzero(mi < 2)
    if bad.size:
        raise ValueError(f"role 'items' must be >= 2, study {bad[0] + 1} has {mi[bad[0]]:g}")
    _check_pos("n", ni)
    if measure == "ARAW":  # Feldt (1965)
        return al, 2 * mi * (1 - al) ** 2 / ((mi - 1) * (ni - 2)), ni
    if measure == "AHW":
        return (1 - (1 - al) ** (1 / 3),
                18 * mi * (ni - 1) * (1 - al) ** (2 / 3) / ((mi - 1) * (9 * ni - 11) ** 2), ni)
    return -np.log(1 - al), 2 * mi / ((mi - 1) * (ni - 2)), ni


def effect_size(measure: str, *, add: float | None = None, to: str = "only0",
                drop00: bool = False, vtype: str | None = None, labels: ArrayLike | None = None,
                convention: str = "metafor", incr: str | None = None,
                **roles: ArrayLike) -> EffectSizes:
    """Compute yi and vi for ``measure`` from the data ``roles``.

    Defaults follow metafor's ``escalc``: ``add=1/2`` with ``to="only0"``
    (no correction by default for PAS, PFT, IRS, IRFT, AS, PHI, IRSD),
    ``drop00=False`` and the measure's first variance type (``vtype``, e.g.
    "LS"; the registry lists the others: SMD "UB"/"LS2"/"AV", COR "AV",
    UCOR "UB", PHI and RPB "ST"/"CS", ...). Measure codes are case-insensitive.

    ``convention="meta"`` follows R meta instead where it differs:

    - PR and PLN (``metaprop``): PR keeps the uncorrected x/n and corrects only
      its variance, (x+c)(n-x+c)/(n+2c)^3; PLN uses log((x+c)/(n+c)) with
      variance 1/(x+c) - 1/(n+c), or 1/x - 1/(n+c) when x = n (Hartung &
      Knapp 2001, eq. 18).
    - RR, "RR.Cochrane", OR, RD (``metabin``): see :func:`_binary2_meta`;
      ``incr="TACC"`` gives the treatment-arm continuity correction of Sweeting
      et al. (2004) Stat Med 23:1351, an increment n1/(n1+n2) in arm 1 and
      n2/(n1+n2) in arm 2.
    - SMD (``metacont``): Hedges' g with the approximate correction
      J = 1 - 3/(4N - 9) and variance N/(n1 n2) + g^2/(2(N - 3.94)).

    Parameters
    ----------
    measure : str
        An escalc measure code of the registry (:data:`metamsc.MEASURE_REGISTRY`), e.g. "PLO",
        "PFT", "RR", "OR", "SMD", "SMCR", "MN", "IR", "GEN".
    add, to, drop00 : float, str, bool
        Continuity correction: the value added, to which studies ("only0", "all", "if0all",
        "none"), and whether studies with zero events in both groups are dropped.
    vtype : str, optional
        Variance type of the measure (the registry's first by default).
    labels : array_like, optional
        A label per study.
    convention : {"metafor", "meta"}
        Whose formulas to follow where metafor and R meta differ.
    incr : str, optional
        ``"TACC"`` for the treatment-arm continuity correction (``convention="meta"``).
    **roles : array_like
        The data, by the measure's roles (``get_measure(code).roles``): ``events``/``total``;
        ``events1``, ``total1``, ``events2``, ``total2``; ``mean1``, ``sd1``, ``n1``, ...;
        ``n``, ``mean_pre``, ``sd_pre``, ``mean_post``, ``r``; ``yi``/``vi`` for GEN.

    Returns
    -------
    EffectSizes
        ``yi``, ``vi``, ``n``, ``labels``, which studies were ``corrected``, and the inputs.

    References
    ----------
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw
    36(3):1-48. Each measure's own formula paper is named in its registry entry (``reference``).

    Examples
    --------
    Logit proportions (the zero cells of studies 2 and 3 are corrected by 1/2):

    >>> import metamsc as mm
    >>> es = mm.effect_size("PLO", events=[8, 2, 1], total=[17, 2, 1])
    >>> es.yi.round(4), es.vi.round(4)
    (array([-0.1178,  1.6094,  1.0986]), array([0.2361, 2.4   , 2.6667]))
    >>> es.corrected
    array([False,  True,  True])

    Standardised mean change of one group, standardised by the pre-treatment SD:

    >>> es = mm.effect_size("SMCR", n=[14], mean_pre=[20.1], sd_pre=[3.1], mean_post=[13.8], r=[0.5])
    >>> print(f"{es.yi[0]:.4f} ({es.vi[0]:.4f})")
    -1.9123 (0.2020)
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected 'metafor' or 'meta'")
    if add is not None and not (np.isscalar(add) and np.isfinite(add) and add >= 0):
        raise ValueError(f"add must be a finite number >= 0, got {add!r}")
    code = measure.upper() if isinstance(measure, str) else measure
    if convention == "meta" and code == "RR.COCHRANE":
        spec = get_measure("RR")
    else:
        spec = get_measure(code)
        code = spec.code
    if convention == "meta" and code in ("PR", "PLN"):
        return _meta_proportion(code, add=0.5 if add is None else add, to=to, labels=labels,
                                **roles)
    if convention == "meta" and code not in ("RR", "RR.COCHRANE", "OR", "RD", "SMD"):
        raise ValueError(f"convention='meta' differs from metafor for PR, PLN, RR, RR.Cochrane, "
                         f"OR, RD and SMD; measure {measure} has no meta variant")
    if incr is not None and not (convention == "meta" and spec.family == "binary2"):
        raise ValueError("incr is meta's increment rule: use it with convention='meta' and "
                         "a two-group binary measure")
    if incr is not None and incr != "TACC":
        raise ValueError(f"unknown incr={incr!r}; expected 'TACC' (or give a number as add)")
    required = spec.roles
    if to not in _TO:
        raise ValueError(f"unknown continuity-correction rule to={to!r}; expected one of {', '.join(_TO)}")
    if vtype is None:
        vtype = spec.vtypes[0]
    if vtype not in spec.vtypes:
        raise ValueError(f"vtype={vtype!r} is not available for {spec.code}; "
                         f"use one of {', '.join(spec.vtypes)}")
    unknown = set(roles) - set(required)
    if unknown:
        raise ValueError(f"measure {spec.code} takes roles {', '.join(required)}; "
                         f"got unexpected {', '.join(sorted(unknown))}")
    missing = [r for r in required if r not in roles]
    if missing:
        raise ValueError(f"measure {spec.code} needs roles {', '.join(missing)}")
    a = {r: _arr(r, roles[r]) for r in required}
    k = len(next(iter(a.values())))
    if any(len(v) != k for v in a.values()):
        raise ValueError("all roles must have the same number of studies")
    if add is None:
        add = spec.default_add
    lab = None if labels is None else tuple(str(x) for x in np.atleast_1d(labels))
    if lab is not None and len(lab) != k:
        raise ValueError("labels must have one entry per study")

    n = None
    corrected = np.zeros(k, dtype=bool)
    family = spec.family
    with np.errstate(divide="ignore", invalid="ignore"):
        if family == "proportion":
            yi, vi, n, corrected = _proportion(code, a, to=to, add=add, vtype=vtype)
        elif family == "rate":
            yi, vi, n, corrected = _rate(code, a, to=to, add=add)
        elif family == "mean":
            yi, vi, n = _mean(code, a)
        elif family == "prepost":
            yi, vi, n = _prepost(code, a, vtype=vtype)
        elif family == "binary2":
            arms = None
            if incr == "TACC":
                n1, n2 = a["total1"], a["total2"]
                arms = (n1 / (n1 + n2), n2 / (n1 + n2))
            yi, vi, n, corrected = _binary2(code, a, drop00=drop00, to=to, add=add, vtype=vtype,
                                            convention=convention, incr_arms=arms)
        elif family == "paired":
            yi, vi, n, corrected = _paired(code, a, drop00=drop00, to=to, add=add)
        elif family == "rate2":
            yi, vi, n, corrected = _rate2(code, a, drop00=drop00, to=to, add=add)
        elif family == "continuous2":
            yi, vi, n = _continuous2(code, a, vtype=vtype, convention=convention)
        elif family == "correlation":
            yi, vi, n = _correlation(code, a, vtype=vtype)
        elif family == "alpha":
            yi, vi, n = _alpha(code, a)
        else:  # GEN
            yi, vi = a["yi"], a["vi"]
            _check_nonneg("vi", vi[~np.isnan(vi)])

    yi = np.asarray(yi, dtype=float) * np.ones(k)
    vi = np.asarray(vi, dtype=float) * np.ones(k)
    rule = to if convention == "metafor" else f"{to} (meta{', TACC' if incr else ''})"
    return EffectSizes(
        measure=spec.code if code != "RR.COCHRANE" else "RR", yi=readonly(yi), vi=readonly(vi),
        n=None if n is None else readonly(np.asarray(n, dtype=float)),
        labels=lab, add=float(add), to=rule, corrected=corrected,
        inputs={r: readonly(v) for r, v in a.items()},
    )
