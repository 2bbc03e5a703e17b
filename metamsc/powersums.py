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

import math

import numpy as np

__all__ = ["intercept_moments", "outcome_powers", "weight_powers", "residual_sums",
           "row_moments", "scoring_adjustment", "intercept_trpp", "NEWTON_FROM",
           "InterceptSums", "row_sum"]

_POWERS = np.array([-1.0, -2.0, -3.0])  # w, w^2, w^3 as powers of v + tau^2
_EXPONENTS = np.array([[0.0], [1.0], [2.0]])  # 1, y, y^2
_CANCEL = 1e-3  # below this share of its leading term a residual sum is summed directly
_SMALL_K = 256  # up to here a numpy call costs more than its arithmetic
#: Fisher scoring runs until tau^2 changes by less than this (metafor's default threshold, so
#: whether and where scoring converges is metafor's); below it, Newton steps on the same
#: estimating equation reach a finer threshold in two or three steps instead of about eight
NEWTON_FROM = 1e-5


_ONES: dict[int, np.ndarray] = {}


def row_sum(x: np.ndarray):
    """Sum over the last axis (a dot product with ones for 1-D: far less overhead at small k)."""
    if x.ndim == 1:
        one = _ONES.get(x.size)
        if one is not None:
            return float(x @ one)
        if x.size > 4096:
            return float(x.sum())
        one = np.ones(x.size)
        if len(_ONES) < 64:
            _ONES[x.size] = one
        return float(x @ one)
    return np.sum(x, axis=-1)


def intercept_moments(y3: np.ndarray, y: np.ndarray, v: np.ndarray, tau2: float):
    """For X = 1 and weights w = 1/(v + tau2): (sum w, sum w^2, sum w^3, y'PPy, y'Py, mu, y'PPPy)
    with mu the weighted mean, r = y - mu the residuals, y'Py = sum w r^2, y'PPy = sum w^2 r^2 and
    y'PPPy = sum w^3 r^2 - (sum w^2 r)^2 / sum w: the quantities of a Fisher-scoring or Newton
    step for ML, REML and EB (Viechtbauer 2005), with tr(P) = sum w - sum w^2 / sum w and
    tr(PP) = sum w^2 - 2 sum w^3 / sum w + (sum w^2 / sum w)^2.

    ``y3`` is the 3 x k matrix [1, y, y^2] (from :func:`outcome_powers`) and ``v`` a k x 1 column:
    one matrix product with [w, w^2, w^3] gives all power sums, so a step costs four numpy calls at
    any k (the cost of a step at small k is the calls, not the arithmetic). The residual sums are
    expanded about the weighted mean; where that expansion would cancel more than three digits
    they are summed directly instead.
    """
    wp = weight_powers(v, tau2)
    (sw, s2, s3), (swy, s2y, s3y), (swyy, s2yy, s3yy) = np.dot(y3, wp).tolist()  # dot: half the cost of @ here
    mu, pyy, quad = residual_sums(sw, swy, swyy, s2, s2y, s2yy)
    w3rr, w2r = s3yy - mu * (2.0 * s3y - mu * s3), s2y - mu * s2
    if pyy < _CANCEL * s2yy or quad < _CANCEL * swyy or w3rr < _CANCEL * s3yy:
        w = wp[:, 0]
        wr = w * (y - mu)
        w2r_i = w * wr
        pyy, quad, w3rr, w2r = (float(wr @ wr), float(wr @ (y - mu)), float(w2r_i @ wr),
                                float(w @ wr))
    return sw, s2, s3, pyy, quad, mu, w3rr - w2r * w2r / sw


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
    w3 = w2 * w
    one = np.ones(w.shape[1])  # row sums as matrix-vector products (far faster than sum(axis=1))
    sw, s2, s3 = w @ one, w2 @ one, w3 @ one
    swy, s2y, s3y = (np.einsum("ij,ij->i", a, y) for a in (w, w2, w3))
    swyy, s2yy, s3yy = (np.einsum("ij,ij->i", a, y2) for a in (w, w2, w3))
    mu, pyy, quad = residual_sums(sw, swy, swyy, s2, s2y, s2yy)
    w3rr, w2r = s3yy - mu * (2.0 * s3y - mu * s3), s2y - mu * s2
    bad = np.flatnonzero((pyy < _CANCEL * s2yy) | (quad < _CANCEL * swyy) | (w3rr < _CANCEL * s3yy))
    if bad.size:
        r = y[bad] - mu[bad, None]
        wr = w[bad] * r
        pyy[bad], quad[bad] = np.einsum("ij,ij->i", wr, wr), np.einsum("ij,ij->i", wr, r)
        w3rr[bad] = np.einsum("ij,ij->i", w[bad] * wr, wr)
        w2r[bad] = np.einsum("ij,ij->i", w[bad], wr)
    return sw, s2, s3, pyy, quad, mu, w3rr - w2r * w2r / sw


def scoring_adjustment(kind: str, k: int, p: int, *, sw=None, s2=None, pyy=None, quad=None,
                       trp=None, trpp=None, pppy=None, newton=False):
    """The step of ML, REML or EB from the parts of its estimating equation: y'PPy (``pyy``),
    tr(P), tr(PP), y'Py (``quad``), sum w, sum w^2 and y'PPPy (``pppy``) (floats, or arrays of
    one value per meta-analysis); each kind reads only its own (EB: sw, quad; ML: pyy, sw, s2;
    REML: pyy, trp, trpp; with ``newton``, pppy and, for EB, pyy as well).

    The estimating equations are REML: y'PPy - tr(P) = 0, ML: y'PPy - sum w = 0 and EB:
    y'Py k/(k - p) - k = 0. Fisher scoring divides by their expected information (Viechtbauer
    2005; Morris 1983 for EB): tr(PP), sum w^2 and sum w. ``newton`` divides by minus their
    derivative in tau^2 instead (d y'PPy = -2 y'PPPy, d tr(P) = -tr(PP), d sum w = -sum w^2,
    d y'Py = -y'PPy); where that is not positive (``newton`` an array: row by row) the Fisher
    step is taken."""
    if kind == "EB":
        num, fisher = quad * k / (k - p) - k, sw
    elif kind == "ML":
        num, fisher = pyy - sw, s2
    else:
        num, fisher = pyy - trp, trpp
    if newton is False:
        return num / fisher
    slope = pyy * k / (k - p) if kind == "EB" else 2.0 * pppy - (s2 if kind == "ML" else trpp)
    if isinstance(slope, np.ndarray):
        return num / np.where(newton & (slope > 0) & np.isfinite(slope), slope, fisher)
    return num / (slope if slope > 0 and math.isfinite(slope) else fisher)


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


class InterceptSums:
    """The sums of one intercept-only meta-analysis (centred outcomes ``y``, variances ``v``)
    at chosen values of tau^2, each computed once: the estimate of tau^2 (its likelihood check
    and standard error), the fit and its heterogeneity statistics read the same sums at the
    estimate and at 0."""

    __slots__ = ("y", "v", "vcol", "y3", "_moments", "_logs")

    def __init__(self, y: np.ndarray, v: np.ndarray):
        self.y, self.v, self.vcol = y, v, v[:, None]
        self.y3 = outcome_powers(y)
        self._moments: dict[float, tuple] = {}
        self._logs: dict[float, float] = {}

    def moments(self, tau2: float) -> tuple:
        """:func:`intercept_moments` at ``tau2``."""
        m = self._moments.get(tau2)
        if m is None:
            m = self._moments[tau2] = intercept_moments(self.y3, self.y, self.vcol, tau2)
        return m

    def log_sum(self, tau2: float) -> float:
        """sum log(v + tau2)."""
        s = self._logs.get(tau2)
        if s is None:
            s = self._logs[tau2] = row_sum(np.log(self.v + tau2))
        return s
