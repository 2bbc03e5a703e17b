"""Numerics of adaptive Gauss-Hermite quadrature (AGQ): the rules and the safeguarded Newton step
for the conditional modes of the random effects.

AGQ centres the rule at the conditional mode of each study's random effect and scales it by the
curvature there (Liu & Pierce 1994, Biometrika 81:624; Pinheiro & Bates 1995, J Comput Graph
Stat 4:12); one node is the Laplace approximation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["gh_rule", "bracketed_step"]


@lru_cache(maxsize=None)
def gh_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_q and log(w_q) + z_q^2 / 2 of the n-point Gauss-Hermite rule for N(0, 1)."""
    if n == 1:
        z, w = np.zeros(1), np.ones(1)
    else:
        z, w = np.polynomial.hermite_e.hermegauss(n)
        w = w / w.sum()
    lw = np.log(w) + 0.5 * z**2
    z.flags.writeable = False
    lw.flags.writeable = False
    return z, lw


def bracketed_step(b, g, step, lo, hi, cap):
    """A Newton step for the conditional modes, capped at ``cap`` and kept inside the bracket
    [lo, hi] that the gradient signs have established (bisection when it would leave it)."""
    pos = g > 0
    lo = np.where(pos, b, lo)
    hi = np.where(pos, hi, b)
    bn = b + np.clip(step, -cap, cap)
    out = ((bn <= lo) | (bn >= hi)) & np.isfinite(lo) & np.isfinite(hi)
    return np.where(out, 0.5 * (lo + hi), bn), lo, hi
