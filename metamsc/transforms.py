"""Back-transformations from an analysis scale to the natural scale.

Every function is elementwise on numpy arrays and mirrors the definitions in
Viechtbauer W. (2010) J Stat Softw 36(3) (metafor's ``transf.*`` family):

- logit / inverse logit for PLO,
- arcsine square root (PAS): p = sin(x)^2 (Rao 1973),
- Freeman-Tukey double arcsine (PFT), inverted with Miller's formula
  (Miller JJ. Am Stat 1978;32:138) using either each study's own n or the
  harmonic mean of the study sizes for a pooled value,
- exp for log scales (PLN, IRLN, RR, OR, ROM, MNLN).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "logit",
    "ilogit",
    "arcsine",
    "iarcsine",
    "pft",
    "ipft",
    "ipft_hm",
    "harmonic_mean",
    "irft",
    "back_transform",
]


def logit(p: ArrayLike) -> np.ndarray:
    """log(p / (1 - p))."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def ilogit(x: ArrayLike) -> np.ndarray:
    """Inverse logit 1 / (1 + exp(-x)), computed without overflow."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def arcsine(p: ArrayLike) -> np.ndarray:
    """Arcsine square-root transform asin(sqrt(p))."""
    return np.arcsin(np.sqrt(np.asarray(p, dtype=float)))


def iarcsine(x: ArrayLike) -> np.ndarray:
    """Inverse of the arcsine square-root transform, clamped to [0, 1]."""
    x = np.asarray(x, dtype=float)
    out = np.sin(x) ** 2
    out = np.where(x < 0, 0.0, out)
    return np.where(x > np.arcsin(1.0), 1.0, out)


def pft(p: ArrayLike, n: ArrayLike) -> np.ndarray:
    """Freeman-Tukey double arcsine of a proportion p = x/n (Freeman & Tukey 1950)."""
    n = np.asarray(n, dtype=float)
    x = np.asarray(p, dtype=float) * n
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))


def ipft(t: ArrayLike, n: ArrayLike) -> np.ndarray:
    """Miller's (1978) inverse of the Freeman-Tukey double arcsine for sample size n.

    p = 1/2 [1 - sgn(cos 2t) sqrt(1 - (sin 2t + (sin 2t - 1/sin 2t)/n)^2)],
    set to 0 below the transform of p = 0 and to 1 above that of p = 1.
    """
    t, n = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(n, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sin(2 * t)
        inner = 1 - (s + (s - 1 / s) / n) ** 2
        p = 0.5 * (1 - np.sign(np.cos(2 * t)) * np.sqrt(inner))
    p = np.where(np.isnan(p), np.nan, p)
    p = np.where(t > pft(1.0, n), 1.0, p)
    p = np.where(t < pft(0.0, n), 0.0, p)
    return p


def harmonic_mean(n: ArrayLike) -> float:
    """Harmonic mean 1 / mean(1/n) of the study sizes."""
    n = np.asarray(n, dtype=float)
    return float(1.0 / np.mean(1.0 / n))


def ipft_hm(t: ArrayLike, n: ArrayLike) -> np.ndarray:
    """Inverse Freeman-Tukey with the harmonic mean of the study sizes (Miller 1978)."""
    return ipft(t, harmonic_mean(n))


def irft(t: ArrayLike, time: ArrayLike) -> np.ndarray:
    """Inverse of the Freeman-Tukey transform of a rate, t = (sqrt(r) + sqrt(r + 1/T)) / 2.

    Solving for r gives r = (t - 1/(4 t T))^2, and r = 0 below t = 1/(2 sqrt(T)).
    """
    t, time = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(time, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (t - 1 / (4 * t * time)) ** 2
    return np.where(t < 1 / (2 * np.sqrt(time)), 0.0, r)


def back_transform(measure: str, x: ArrayLike, n: ArrayLike | None = None, *,
                   harmonic: bool = True) -> np.ndarray | None:
    """Map values on the analysis scale of ``measure`` to the natural scale.

    Returns None for measures with no natural scale other than their own
    (PR, MD, SMD, ...). For PFT, ``n`` (the study sizes) is required:
    with ``harmonic=True`` Miller's harmonic-mean inverse is used (pooled
    values, metafor's ``transf.ipft.hm``); otherwise ``n`` is elementwise.
    """
    x = np.asarray(x, dtype=float)
    if measure in ("PLO",):
        return ilogit(x)
    if measure in ("PLN", "IRLN", "RR", "OR", "ROM", "MNLN", "IRR", "PETO"):
        return np.exp(x)
    if measure == "PAS":
        return iarcsine(x)
    if measure == "PFT":
        if n is None:
            raise ValueError("the Freeman-Tukey back-transform needs the study sizes n")
        return ipft_hm(x, n) if harmonic else ipft(x, n)
    if measure == "IRS":
        return np.where(x < 0, 0.0, x**2)
    if measure in ("PR", "IR"):
        return x.copy()
    return None
