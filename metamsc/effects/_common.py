"""Shared pieces of the effect-size formulas: the options a formula receives, input checks,
the continuity-correction rules and small numerical helpers (internal to the package)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

#: continuity-correction rules (metafor's ``to``)
TO_RULES = ("only0", "all", "if0all", "none")

#: roles holding counts of patients or events: whole numbers, exact in floating point
COUNT_ROLES = ("events", "total", "events1", "total1", "events2", "total2")


@dataclass(frozen=True)
class Options:
    """What :func:`metamsc.effects.effect_size` passes to every formula."""

    add: float
    to: str
    drop00: bool
    vtype: str
    convention: str  # "metafor" or "meta"
    incr: str | None  # meta's increment rule ("TACC") or None
    variant: str | None = None  # meta's named variant of a measure (e.g. "RR.COCHRANE")


def as_array(name: str, x: Any) -> np.ndarray:
    a = np.atleast_1d(np.asarray(x, dtype=float))
    if a.ndim != 1:
        raise ValueError(f"role {name!r} must be one-dimensional")
    return a


def check_count(name: str, a: np.ndarray) -> None:
    if name in COUNT_ROLES:
        bad = np.flatnonzero(np.isfinite(a) & ((a != np.round(a)) | (a > 2.0**53)))
        if bad.size:
            raise ValueError(f"role {name!r} must be a whole number (a count), study {bad[0] + 1} "
                             f"has {a[bad[0]]:g}")


def check_nonneg(name: str, a: np.ndarray) -> None:
    bad = np.flatnonzero(a < 0)
    if bad.size:
        raise ValueError(f"role {name!r} is negative in study {bad[0] + 1}")
    check_count(name, a)


def check_le(x_name: str, x: np.ndarray, n_name: str, n: np.ndarray) -> None:
    bad = np.flatnonzero(x > n)
    if bad.size:
        raise ValueError(f"{x_name} > {n_name} in study {bad[0] + 1} ({x[bad[0]]:g} > {n[bad[0]]:g})")


def check_pos(name: str, a: np.ndarray) -> None:
    bad = np.flatnonzero(a <= 0)
    if bad.size:
        raise ValueError(f"role {name!r} must be > 0, study {bad[0] + 1} has {a[bad[0]]:g}")
    check_count(name, a)


def check_range(name: str, a: np.ndarray, lo: float, hi: float) -> None:
    bad = np.flatnonzero((a < lo) | (a > hi))
    if bad.size:
        raise ValueError(f"role {name!r} must lie in [{lo:g}, {hi:g}], study {bad[0] + 1} "
                         f"has {a[bad[0]]:g}")


def correction_mask(to: str, zero: np.ndarray) -> np.ndarray:
    """Which studies get the continuity correction under rule ``to``."""
    if to == "all":
        return np.ones_like(zero, dtype=bool)
    if to == "only0":
        return zero.copy()
    if to == "if0all":
        return np.full_like(zero, bool(zero.any()), dtype=bool)
    return np.zeros_like(zero, dtype=bool)


def table_cells(ai, bi, ci, di, drop00: bool, to: str, add: float):
    """2x2 cells after drop00 (NaN for tables with a zero row or column pair) and the
    continuity correction ``add`` under rule ``to``; returns (a, b, c, d, corrected)."""
    if drop00:
        both = ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0))
        ai, bi, ci, di = (np.where(both, np.nan, v) for v in (ai, bi, ci, di))
    zero = (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)
    corrected = correction_mask(to, zero) & (add != 0)
    ai, bi, ci, di = (v + add * corrected for v in (ai, bi, ci, di))
    return ai, bi, ci, di, corrected


def wmean(x, w):
    """Weighted mean over the studies where both are present."""
    ok = ~(np.isnan(x) | np.isnan(w))
    return np.sum(x[ok] * w[ok]) / np.sum(w[ok])


def cmi(m: ArrayLike) -> np.ndarray:
    """Exact small-sample correction c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)) (Hedges 1981)."""
    m = np.asarray(m, dtype=float)
    out = np.full(m.shape, np.nan)
    ok = m > 1
    mm = m[ok]
    out[ok] = np.exp(special.gammaln(mm / 2) - np.log(np.sqrt(mm / 2)) - special.gammaln((mm - 1) / 2))
    return out
