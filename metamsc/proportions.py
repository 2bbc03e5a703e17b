"""Confidence intervals for a single binomial proportion x/n.

Method names follow R meta's ``metaprop(method.ci = ...)``:

========  ====================================================================
method    interval (z = standard normal quantile at 1 - alpha/2, p = x/n)
========  ====================================================================
CP        Clopper & Pearson (1934) Biometrika 26:404, exact ("tail areas"):
          L = B(alpha/2; x, n - x + 1), U = B(1 - alpha/2; x + 1, n - x),
          B(.; a, b) the beta quantile; L = 0 at x = 0 and U = 1 at x = n.
          Newcombe (1998) method 5.
WS        Wilson (1927) J Am Stat Assoc 22:209 score interval:
          (2np + z^2 -/+ z sqrt(z^2 + 4npq)) / (2(n + z^2)). Newcombe method 3.
WSCC      Wilson score interval with continuity correction, Newcombe (1998)
          Stat Med 17:857, method 4:
          L = (2np + z^2 - 1 - z sqrt(z^2 - 2 - 1/n + 4p(nq + 1))) / (2(n + z^2)),
          U = (2np + z^2 + 1 + z sqrt(z^2 + 2 - 1/n + 4p(nq - 1))) / (2(n + z^2)),
          with L = 0 at p = 0 and U = 1 at p = 1 (as Newcombe prescribes).
AC        Agresti & Coull (1998) Am Stat 52:119 "add z^2/2 successes and
          failures": n~ = n + z^2, p~ = (x + z^2/2)/n~, p~ -/+ z sqrt(p~(1-p~)/n~).
SA        simple asymptotic (Wald) interval p -/+ z sqrt(pq/n). Newcombe method 1.
SACC      Wald interval with continuity correction
          p -/+ (z sqrt(pq/n) + 1/(2n)). Newcombe method 2.
JEFFREYS  equal-tailed Jeffreys interval (Brown, Cai & DasGupta 2001 Stat Sci
          16:101): beta quantiles of Beta(x + 1/2, n - x + 1/2), with L = 0 at
          x = 0 and U = 1 at x = n.
========  ====================================================================

All bounds are clamped to [0, 1] (Newcombe's "overt aberrations" of the Wald
intervals, limits below 0 or above 1, are therefore truncated, as R meta does).
q = 1 - p throughout.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ._util import check_level

__all__ = ["CI_METHODS", "ProportionCI", "proportion_ci", "cp_upper_bound"]

#: accepted ``method`` names (case-insensitive)
CI_METHODS = ("CP", "WS", "WSCC", "AC", "SA", "SACC", "JEFFREYS")


class ProportionCI(NamedTuple):
    """Lower and upper confidence limits (arrays, or floats for scalar input)."""

    lower: np.ndarray | float
    upper: np.ndarray | float


def _inputs(events: ArrayLike, total: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, n = np.broadcast_arrays(np.asarray(events, dtype=float), np.asarray(total, dtype=float))
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(n))):
        raise ValueError("events and total must be finite")
    if np.any(n <= 0):
        raise ValueError("total must be > 0")
    if np.any(x < 0) or np.any(x > n):
        raise ValueError("events must lie in [0, total]")
    return x, n


def _out(a: np.ndarray) -> np.ndarray | float:
    return float(a) if a.ndim == 0 else a


def proportion_ci(events: ArrayLike, total: ArrayLike, method: str = "CP",
                  level: float = 0.95) -> ProportionCI:
    """Two-sided ``level`` confidence interval for the proportion events/total.

    Vectorised over studies (``events`` and ``total`` broadcast); returns
    ``(lower, upper)`` as a :class:`ProportionCI` named tuple, floats for
    scalar input. ``method`` is one of ``CI_METHODS`` (see the module
    docstring for the formulas and references); bounds are clamped to [0, 1].
    """
    m = str(method).upper()
    if m not in CI_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(CI_METHODS)}")
    level = check_level(level)
    x, n = _inputs(events, total)
    alpha = 1.0 - level
    z = float(special.ndtri(1.0 - alpha / 2))
    p = x / n
    q = 1.0 - p
    zero, full = x == 0, x == n
    with np.errstate(divide="ignore", invalid="ignore"):
        if m == "CP":
            lo = np.where(zero, 0.0, special.betaincinv(x, n - x + 1, alpha / 2))
            hi = np.where(full, 1.0, special.betaincinv(x + 1, n - x, 1 - alpha / 2))
        elif m == "JEFFREYS":
            lo = np.where(zero, 0.0, special.betaincinv(x + 0.5, n - x + 0.5, alpha / 2))
            hi = np.where(full, 1.0, special.betaincinv(x + 0.5, n - x + 0.5, 1 - alpha / 2))
        elif m == "WS":
            den = 2 * (n + z**2)
            centre = (2 * n * p + z**2) / den
            half = z * np.sqrt(z**2 + 4 * n * p * q) / den
            lo = np.where(zero, 0.0, centre - half)
            hi = np.where(full, 1.0, centre + half)
        elif m == "WSCC":
            den = 2 * (n + z**2)
            lo = (2 * n * p + z**2 - 1 - z * np.sqrt(z**2 - 2 - 1 / n + 4 * p * (n * q + 1))) / den
            hi = (2 * n * p + z**2 + 1 + z * np.sqrt(z**2 + 2 - 1 / n + 4 * p * (n * q - 1))) / den
            lo = np.where(zero, 0.0, lo)
            hi = np.where(full, 1.0, hi)
        elif m == "AC":
            nt = n + z**2
            pt = (x + z**2 / 2) / nt
            half = z * np.sqrt(pt * (1 - pt) / nt)
            lo, hi = pt - half, pt + half
        else:  # SA, SACC
            half = z * np.sqrt(p * q / n)
            if m == "SACC":
                half = half + 1 / (2 * n)
            lo, hi = p - half, p + half
    lo = np.clip(np.asarray(lo, dtype=float), 0.0, 1.0)
    hi = np.clip(np.asarray(hi, dtype=float), 0.0, 1.0)
    return ProportionCI(_out(lo), _out(hi))


def cp_upper_bound(events: ArrayLike, total: ArrayLike, level: float = 0.95) -> np.ndarray | float:
    """One-sided exact (Clopper-Pearson) upper ``level`` bound for events/total.

    U = B(level; x + 1, n - x) (Clopper & Pearson 1934), so that
    P(X <= x | U) = 1 - level; U = 1 at x = n. At x = 0 this is
    1 - (1 - level)^(1/n) (about 3/n for 95%, the "rule of three"), the bound
    to report when every count is zero.
    """
    level = check_level(level)
    x, n = _inputs(events, total)
    with np.errstate(invalid="ignore"):
        u = np.where(x == n, 1.0, special.betaincinv(x + 1, n - x, level))
    return _out(np.clip(np.asarray(u, dtype=float), 0.0, 1.0))
