"""Effect sizes and their sampling variances (metafor ``escalc`` parity).

Formulas follow Viechtbauer W. (2010) J Stat Softw 36(3) and the references
given per measure below. Role names are those of the analysis spec:

============  ===============================================================
measures      roles
============  ===============================================================
PR PLN PLO    events, total
PAS PFT
IR IRLN IRS   events, time
IRFT
MN MNLN       mean, sd, n
MC SMCC SMCR  n, mean_pre, sd_pre, mean_post, sd_post, r  (change = post - pre)
RR OR RD      events1, total1, events2, total2
MD SMD ROM    mean1, sd1, n1, mean2, sd2, n2
GEN           yi, vi
============  ===============================================================
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

__all__ = ["MEASURES", "EffectSizes", "effect_size", "measure_roles", "NATURAL_SCALE"]

#: required roles (and optional ones after the ``|``) per measure
MEASURES: dict[str, tuple[str, ...]] = {
    "PR": ("events", "total"),
    "PLN": ("events", "total"),
    "PLO": ("events", "total"),
    "PAS": ("events", "total"),
    "PFT": ("events", "total"),
    "IR": ("events", "time"),
    "IRLN": ("events", "time"),
    "IRS": ("events", "time"),
    "IRFT": ("events", "time"),
    "MN": ("mean", "sd", "n"),
    "MNLN": ("mean", "sd", "n"),
    "MC": ("n", "mean_pre", "sd_pre", "mean_post", "sd_post", "r"),
    "SMCC": ("n", "mean_pre", "sd_pre", "mean_post", "sd_post", "r"),
    "SMCR": ("n", "mean_pre", "sd_pre", "mean_post", "r"),
    "RR": ("events1", "total1", "events2", "total2"),
    "OR": ("events1", "total1", "events2", "total2"),
    "RD": ("events1", "total1", "events2", "total2"),
    "MD": ("mean1", "sd1", "n1", "mean2", "sd2", "n2"),
    "SMD": ("mean1", "sd1", "n1", "mean2", "sd2", "n2"),
    "ROM": ("mean1", "sd1", "n1", "mean2", "sd2", "n2"),
    "GEN": ("yi", "vi"),
}

#: what the natural scale of a measure is called (for reports and axis labels)
NATURAL_SCALE: dict[str, str] = {
    "PR": "proportion", "PLN": "proportion", "PLO": "proportion", "PAS": "proportion",
    "PFT": "proportion", "IR": "rate", "IRLN": "rate", "IRS": "rate",
    "RR": "risk ratio", "OR": "odds ratio", "PETO": "odds ratio", "ROM": "ratio of means",
    "MNLN": "mean",
}

_PROPORTIONS = ("PR", "PLN", "PLO", "PAS", "PFT")
_RATES = ("IR", "IRLN", "IRS", "IRFT")
_NO_CORRECTION_BY_DEFAULT = ("PAS", "PFT", "IRS", "IRFT")
_TO = ("only0", "all", "if0all", "none")


def measure_roles(measure: str) -> tuple[str, ...]:
    """The data roles a measure needs, e.g. ``("events", "total")`` for PLO."""
    try:
        return MEASURES[measure]
    except KeyError:
        raise ValueError(
            f"unknown measure {measure!r}; expected one of {', '.join(MEASURES)}"
        ) from None


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


def effect_size(measure: str, *, add: float | None = None, to: str = "only0",
                drop00: bool = False, vtype: str = "LS", labels: ArrayLike | None = None,
                convention: str = "metafor", **roles: ArrayLike) -> EffectSizes:
    """Compute yi and vi for ``measure`` from the data ``roles``.

    Defaults follow metafor's ``escalc``: ``add=1/2`` with ``to="only0"``
    (no correction by default for PAS, PFT, IRS, IRFT, which need none),
    ``drop00=False`` and large-sample variances (``vtype="LS"``).
    ``convention="meta"`` applies R meta's ``metaprop`` rule to PR and PLN
    instead: PR keeps the uncorrected x/n and corrects only its variance,
    (x+c)(n-x+c)/(n+2c)^3; PLN uses log((x+c)/(n+c)) with variance
    1/(x+c) - 1/(n+c), or 1/x - 1/(n+c) when x = n (Hartung & Knapp 2001, eq. 18).
    """
    if convention not in ("metafor", "meta"):
        raise ValueError(f"unknown convention {convention!r}; expected 'metafor' or 'meta'")
    if add is not None and not (np.isscalar(add) and np.isfinite(add) and add >= 0):
        raise ValueError(f"add must be a finite number >= 0, got {add!r}")
    if convention == "meta" and measure in ("PR", "PLN"):
        return _meta_proportion(measure, add=0.5 if add is None else add, to=to, labels=labels,
                                **roles)
    required = measure_roles(measure)
    if to not in _TO:
        raise ValueError(f"unknown continuity-correction rule to={to!r}; expected one of {', '.join(_TO)}")
    if vtype not in ("LS", "UB"):
        raise ValueError(f"vtype={vtype!r} is not supported; use 'LS' or 'UB'")
    unknown = set(roles) - set(required)
    if unknown:
        raise ValueError(f"measure {measure} takes roles {', '.join(required)}; "
                         f"got unexpected {', '.join(sorted(unknown))}")
    missing = [r for r in required if r not in roles]
    if missing:
        raise ValueError(f"measure {measure} needs roles {', '.join(missing)}")
    a = {r: _arr(r, roles[r]) for r in required}
    k = len(next(iter(a.values())))
    if any(len(v) != k for v in a.values()):
        raise ValueError("all roles must have the same number of studies")
    if add is None:
        add = 0.0 if measure in _NO_CORRECTION_BY_DEFAULT else 0.5
    lab = None if labels is None else tuple(str(x) for x in np.atleast_1d(labels))
    if lab is not None and len(lab) != k:
        raise ValueError("labels must have one entry per study")

    n = None
    corrected = np.zeros(k, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure in _PROPORTIONS:
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
                yi = p
                vi = p * (1 - p) / (n - 1 if vtype == "UB" else n)
            elif measure == "PLN":
                yi = np.log(p)
                vi = 1 / x - 1 / n
            elif measure == "PLO":
                yi = np.log(x / m)
                vi = 1 / x + 1 / m
            elif measure == "PAS":
                yi = np.arcsin(np.sqrt(p))
                vi = 1 / (4 * n)
            else:  # PFT, Freeman & Tukey (1950)
                yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
                vi = 1 / (4 * n + 2)
        elif measure in _RATES:
            x, t = a["events"], a["time"]
            _check_nonneg("events", x)
            _check_pos("time", t)
            corrected = _correction_mask(to, x == 0) & (add != 0)
            x = x + add * corrected
            ir = x / t
            n = t
            if measure == "IR":
                yi, vi = ir, ir / t
            elif measure == "IRLN":
                yi, vi = np.log(ir), 1 / x
            elif measure == "IRS":
                yi, vi = np.sqrt(ir), 1 / (4 * t)
            else:  # IRFT
                yi, vi = 0.5 * (np.sqrt(ir) + np.sqrt(ir + 1 / t)), 1 / (4 * t)
        elif measure in ("MN", "MNLN"):
            mean, sd, ni = a["mean"], a["sd"], a["n"]
            _check_nonneg("sd", sd)
            _check_pos("n", ni)
            n = ni
            if measure == "MN":
                yi, vi = mean, sd**2 / ni
            else:
                _check_pos("mean", mean)
                yi, vi = np.log(mean), sd**2 / (ni * mean**2)
        elif measure in ("MC", "SMCC", "SMCR"):
            ni, r = a["n"], a["r"]
            m1, m2, sd2 = a["mean_post"], a["mean_pre"], a["sd_pre"]
            _check_pos("n", ni)
            if measure in ("SMCC", "SMCR"):  # the correction c(n - 1) needs n - 1 > 1
                bad = np.flatnonzero(ni < 3)
                if bad.size:
                    raise ValueError(f"role 'n' must be at least 3 for {measure} (the small-sample "
                                     f"correction needs n - 1 > 1), study {bad[0] + 1} has "
                                     f"{ni[bad[0]]:g}")
            bad = np.flatnonzero(np.abs(r) > 1)
            if bad.size:
                raise ValueError(f"role 'r' must lie in [-1, 1], study {bad[0] + 1} has {r[bad[0]]:g}")
            n = ni
            if measure == "SMCR":  # Becker (1988), standardised by the pre-treatment SD
                _check_pos("sd_pre", sd2)
                c = cmi(ni - 1)
                yi = c * (m1 - m2) / sd2
                vi = 2 * (1 - r) / ni + yi**2 / (2 * ni)
            else:
                sd1 = a["sd_post"]
                _check_nonneg("sd_post", sd1)
                _check_nonneg("sd_pre", sd2)
                var_d = sd1**2 + sd2**2 - 2 * r * sd1 * sd2
                if measure == "MC":
                    yi, vi = m1 - m2, var_d / ni
                else:  # SMCC, Gibbons et al. (1993)
                    yi = cmi(ni - 1) * (m1 - m2) / np.sqrt(var_d)
                    vi = 1 / ni + yi**2 / (2 * ni)
        elif measure in ("RR", "OR", "RD"):
            ai, n1, ci, n2 = a["events1"], a["total1"], a["events2"], a["total2"]
            for nm, v in a.items():
                _check_nonneg(nm, v)
            _check_le("events1", ai, "total1", n1)
            _check_le("events2", ci, "total2", n2)
            bi, di = n1 - ai, n2 - ci
            if drop00:
                both = ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0))
                ai, bi, ci, di = (np.where(both, np.nan, v) for v in (ai, bi, ci, di))
            zero = (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)
            corrected = _correction_mask(to, zero) & (add != 0)
            ai, bi, ci, di = (v + add * corrected for v in (ai, bi, ci, di))
            n1, n2 = ai + bi, ci + di
            n = n1 + n2
            p1, p2 = ai / n1, ci / n2
            if measure == "RR":
                yi = np.log(p1) - np.log(p2)
                vi = 1 / ai - 1 / n1 + 1 / ci - 1 / n2
            elif measure == "OR":
                yi = np.log(ai / bi) - np.log(ci / di)
                vi = 1 / ai + 1 / bi + 1 / ci + 1 / di
            else:
                yi = p1 - p2
                if vtype == "UB":
                    vi = p1 * (1 - p1) / (n1 - 1) + p2 * (1 - p2) / (n2 - 1)
                else:
                    vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        elif measure in ("MD", "SMD", "ROM"):
            m1, s1, n1, m2, s2, n2 = (a[r] for r in ("mean1", "sd1", "n1", "mean2", "sd2", "n2"))
            _check_nonneg("sd1", s1)
            _check_nonneg("sd2", s2)
            _check_pos("n1", n1)
            _check_pos("n2", n2)
            n = n1 + n2
            if measure == "MD":
                yi, vi = m1 - m2, s1**2 / n1 + s2**2 / n2
            elif measure == "SMD":  # Hedges' g with the exact correction (Hedges 1981)
                mi = n - 2
                sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mi)
                c = cmi(mi)
                yi = c * (m1 - m2) / sp
                if vtype == "UB":
                    vi = 1 / n1 + 1 / n2 + (1 - (mi - 2) / (mi * c**2)) * yi**2
                else:
                    vi = 1 / n1 + 1 / n2 + yi**2 / (2 * n)
            else:  # ROM, Hedges et al. (1999)
                yi = np.log(m1 / m2)
                vi = s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
        else:  # GEN
            yi, vi = a["yi"], a["vi"]
            _check_nonneg("vi", vi[~np.isnan(vi)])

    return EffectSizes(
        measure=measure, yi=readonly(yi), vi=readonly(vi), n=None if n is None else readonly(n),
        labels=lab, add=float(add), to=to, corrected=corrected,
        inputs={r: readonly(v) for r, v in a.items()},
    )
