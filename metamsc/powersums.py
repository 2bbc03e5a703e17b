"""Weighted power sums of the intercept-only random-effects model (the small-k kernel).

For weights w_i = 1/(v_i + tau^2), every quantity of a Fisher-scoring step for ML, REML and EB
(Viechtbauer 2005, J Educ Behav Stat 30:261), of the log-likelihood and of the fit itself is a
function of the nine sums sum w^j y^i (j = 1..3, i = 0..2): the weighted mean, y'Py and y'PPy
(expanded about the mean, or summed directly where that expansion would cancel digits),
tr(P) = sum w - sum w^2 / sum w and tr(PP). One matrix product gives all nine, so a step costs a
handful of numpy calls at any k, and the cost of small meta-analyses is the number of calls, not
the arithmetic. :func:`row_moments` does the same for many meta-analyses at once
(:func:`metamsc.pool_batch`). :mod:`metamsc.tau2` (estimators) and :mod:`metamsc.core` (the fit)
read these sums; the general design-matrix case is :class:`metamsc.tau2.Projection`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["intercept_moments", "outcome_powers", "weight_powers", "residual_sums",
           "row_moments", "scoring_adjustment", "intercept_trpp"]

_POWERS = np.array([-1.0, -2.0, -3.0])  # w, w^2, w^3 as powers of v + tau^2
_EXPONENTS = np.array([[0.0], [1.0], [2.0]])  # 1, y, y^2
_CANCEL = 1e-3  # below this share of its leading term a residual sum is summed directly
_SMALL_K = 256  # up to here a numpy call costs more than its arithmetic


def intercept_moments(y3: np.ndarray, y: np.ndarray, v: np.ndarray, tau2: float):
    """For X = 1 and weights w = 1/(v + tau2): (sum w, sum w^2, sum w^3, sum w^2 r^2, sum w r^2,
    mu) with mu the weighted mean and r = y - mu the residuals: the quantities of a Fisher-scoring step
    for ML, REML and EB (Viechtbauer 2005), tr(P) = sum w - sum w^2 / sum w and
    tr(PP) = sum w^2 - 2 sum w^3 / sum w + (sum w^2 / sum w)^2.

    ``y3`` is the 3 x k matrix [1, y, y^2] (from :func:`outcome_powers`) and ``v`` a k x 1 column:
    one matrix product with [w, w^2, w^3] gives all power sums, so a step costs four numpy calls at
    any k (the cost of a step at small k is the calls, not the arithmetic). The two
    residual sums are expanded about the weighted mean; where that expansion would cancel more
    than three digits they are summed directly instead.
    """
    wp = weight_powers(v, tau2)
    (sw, s2, s3), (swy, s2y, _), (swyy, s2yy, _) = np.dot(y3, wp).tolist()  # dot: half the cost of @ here
    mu, pyy, quad = residual_sums(sw, swy, swyy, s2, s2y, s2yy)
    if pyy < _CANCEL * s2yy or quad < _CANCEL * swyy:
        r = y - mu
        wr = wp[:, 0] * r
        pyy, quad = float(wr @ wr), float(wr @ r)
    return sw, s2, s3, pyy, quad, mu




def residual_sums(sw, swy, swyy, s2, s2y, s2yy):
    """(mu, sum w^2 r^2, sum w r^2) from the power sums, r = y - mu, mu = sum w y / sum w (floats
    or arrays of one value per meta-analysis)."""
    mu = swy / sw
    return mu, s2yy - mu * (2.0 * s2y - mu * s2), swyy - mu * swy


def row_moments(y: np.ndarray, y2: np.ndarray, v: np.ndarray, tau2: np.ndarray):
    """:func:`intercept_moments` for many meta-analyses at once (one per row of ``y``, ``v``;
    ``y2`` = y^2): the sums as arrays of one value per row, with the same direct fallback."""
    w = 1.0 / (v + tau2[:, None])
    w2 = w * w
    one = np.ones(w.shape[1])  # row sums as matrix-vector products (far faster than sum(axis=1))
    sw, s2, s3 = w @ one, w2 @ one, (w2 * w) @ one
    swy, s2y = np.einsum("ij,ij->i", w, y), np.einsum("ij,ij->i", w2, y)
    swyy, s2yy = np.einsum("ij,ij->i", w, y2), np.einsum("ij,ij->i", w2, y2)
    mu, pyy, quad = residual_sums(sw, swy, swyy, s2, s2y, s2yy)
    bad = np.flatnonzero((pyy < _CANCEL * s2yy) | (quad < _CANCEL * swyy))
    if bad.size:
        r = y[bad] - mu[bad, None]
        wr = w[bad] * r
        pyy[bad], quad[bad] = np.einsum("ij,ij->i", wr, wr), np.einsum("ij,ij->i", wr, r)
    return sw, s2, s3, pyy, quad, mu


def scoring_adjustment(kind: str, k: int, p: int, *, sw=None, s2=None, pyy=None, quad=None,
                       trp=None, trpp=None):
    """The Fisher-scoring step for ML, REML or EB (Viechtbauer 2005; Morris 1983 for EB) from
    the score's parts: y'PPy (``pyy``), tr(P), tr(PP), y'Py (``quad``), sum w and sum w^2
    (floats, or arrays of one value per meta-analysis); each kind reads only its own (EB: sw,
    quad; ML: pyy, sw, s2; REML: pyy, trp, trpp)."""
    if kind == "EB":
        return (quad * k / (k - p) - k) / sw
    if kind == "ML":
        return (pyy - sw) / s2
    return (pyy - trp) / trpp


def outcome_powers(y: np.ndarray) -> np.ndarray:
    """The 3 x k matrix [1, y, y^2] read by :func:`intercept_moments`."""
    if y.size <= _SMALL_K:
        return y ** _EXPONENTS  # one numpy call
    return np.vstack((np.ones(y.size), y, y * y))



def weight_powers(v: np.ndarray, tau2: float) -> np.ndarray:
    """The k x 3 matrix [w, w^2, w^3], w = 1/(v + tau2), for a k x 1 column ``v``: one call of
    pow for small k; products (pow is slower per element) for large k."""
    if v.shape[0] <= _SMALL_K:
        return (v + tau2) ** _POWERS
    w = 1.0 / (v[:, 0] + tau2)
    out = np.empty((w.size, 3))
    out[:, 0] = w
    np.multiply(w, w, out=out[:, 1])
    np.multiply(out[:, 1], w, out=out[:, 2])
    return out


def intercept_trpp(sw: float, s2: float, s3: float) -> float:
    """tr(PP) for X = 1 from sum w, sum w^2 and sum w^3."""
    return s2 - 2.0 * s3 / sw + (s2 / sw) ** 2
