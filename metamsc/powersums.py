"""Weighted power sums of the intercept-only random-effects model (the small-k kernel).

For weights w_i = 1/(v_i + tau^2), every quantity of a Fisher-scoring or Newton step for ML, REML
and EB (Viechtbauer 2005, J Educ Behav Stat 30:261), of the log-likelihood and of the fit itself
is a function of the sums sum w^j y^i (j = 1..3, i = 0..2): the weighted mean, y'Py, y'PPy and
y'PPPy (expanded about the mean, or summed directly where that expansion would cancel digits),
tr(P) = sum w - sum w^2 / sum w and tr(PP). One matrix product gives all of them, so a step costs
three numpy calls at any k, and the cost of small meta-analyses is the number of calls, not the
arithmetic (:class:`InterceptSums`, which also keeps the sums at the estimate and at 0 for the
fit). :func:`row_moments` and :func:`row_pppy` do the same for many meta-analyses at once
(:func:`metamsc.pool_batch`). :func:`scoring_adjustment` is the one place of the Fisher-scoring
and Newton steps. :mod:`metamsc.tau2` (estimators) and :mod:`metamsc.core` (the fit) read these
sums; the general design-matrix case is :class:`metamsc.tau2.Projection`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["InterceptSums", "residual_sums", "row_moments", "row_pppy", "scoring_adjustment",
           "intercept_trpp", "NEWTON_FROM", "row_sum", "ones"]

_POWERS = np.array([-1.0, -2.0, -3.0])  # w, w^2, w^3 as powers of v + tau^2
_POWERS_K: dict[int, np.ndarray] = {}  # _POWERS repeated on k rows (k <= _SMALL_K)
_EXPONENTS = np.array([[0.0], [1.0], [2.0]])  # 1, y, y^2
_CANCEL = 1e-3  # below this share of its leading term a residual sum is summed directly
_SMALL_K = 256  # up to here a numpy call costs more than its arithmetic
#: Fisher scoring runs until tau^2 changes by less than this (metafor's default threshold, so
#: whether and where scoring converges is metafor's); below it, Newton steps on the same
#: estimating equation reach a finer threshold in two or three steps instead of about eight
NEWTON_FROM = 1e-5
#: a last Newton step below the threshold and below this share of tau^2 (Newton's error there is
#: about the step: a change of tau^2's last two digits) is not taken
NEGLIGIBLE_STEP = 1e-14


_ONES: dict[int, np.ndarray] = {}


def ones(k: int) -> np.ndarray:
    """A read-only vector of k ones, kept for the sizes met (sums as dot products: far less
    overhead than ``sum`` at small k)."""
    one = _ONES.get(k)
    if one is None:
        one = np.ones(k)
        one.flags.writeable = False
        if len(_ONES) < 64:
            _ONES[k] = one
    return one


def row_sum(x: np.ndarray):
    """Sum over the last axis: a dot product with ones up to 4096 columns (1-D: far less
    overhead at small k; 2-D, one sum per row: a matrix-vector product, far faster than
    ``sum(axis=-1)``)."""
    n = x.shape[-1]
    if x.ndim == 1:
        return float(x.sum()) if n > 4096 else float(x @ ones(n))
    return np.sum(x, axis=-1) if n > 4096 or x.ndim > 2 else x @ ones(n)


def residual_sums(sw, swy, swyy, s2, s2y, s2yy):
    """(mu, sum w^2 r^2, sum w r^2) from the power sums, r = y - mu, mu = sum w y / sum w (floats
    or arrays of one value per meta-analysis)."""
    mu = swy / sw
    return mu, s2yy - mu * (2.0 * s2y - mu * s2), swyy - mu * swy


def row_moments(y: np.ndarray, y2: np.ndarray, v: np.ndarray, tau2: np.ndarray):
    """:meth:`InterceptSums.at` for many meta-analyses at once (one per row of ``y``, ``v``;
    ``y2`` = y^2), without y'PPPy (:func:`row_pppy`, for the rows that take a Newton step): the
    sums as arrays of one value per row, with the same direct fallback."""
    w = 1.0 / (v + tau2[:, None])
    w2 = w * w
    sw, s2, s3 = row_sum(w), row_sum(w2), row_sum(w2 * w)
    swy, s2y = np.einsum("ij,ij->i", w, y), np.einsum("ij,ij->i", w2, y)
    swyy, s2yy = np.einsum("ij,ij->i", w, y2), np.einsum("ij,ij->i", w2, y2)
    mu, pyy, quad = residual_sums(sw, swy, swyy, s2, s2y, s2yy)
    bad = np.flatnonzero((pyy < _CANCEL * s2yy) | (quad < _CANCEL * swyy))
    if bad.size:
        r = y[bad] - mu[bad, None]
        wr = w[bad] * r
        pyy[bad], quad[bad] = np.einsum("ij,ij->i", wr, wr), np.einsum("ij,ij->i", wr, r)
    return sw, s2, s3, pyy, quad, mu


def row_pppy(y: np.ndarray, v: np.ndarray, tau2: np.ndarray, mu: np.ndarray,
             sw: np.ndarray) -> np.ndarray:
    """y'PPPy = sum w^3 r^2 - (sum w^2 r)^2 / sum w row by row (r = y - mu, the residuals about
    the weighted means ``mu``; ``sw`` = sum w), summed directly."""
    w = 1.0 / (v + tau2[:, None])
    wr = w * (y - mu[:, None])
    w2r = np.einsum("ij,ij->i", w, wr)
    return np.einsum("ij,ij->i", w * wr, wr) - w2r * w2r / sw


def scoring_adjustment(kind: str, k: int, p: int, parts: dict, newton=False):
    """The step of ML, REML or EB from the parts of its estimating equation in ``parts``:
    y'PPy ("pyy"), tr(P) ("trp"), tr(PP) ("trpp"), y'Py ("quad"), sum w ("sw"), sum w^2 ("s2")
    and y'PPPy ("pppy") (floats, or arrays of one value per meta-analysis); each kind reads only
    its own (EB: sw, quad; ML: pyy, sw, s2; REML: pyy, trp, trpp; with ``newton``, pppy and, for
    EB, pyy as well).

    The estimating equations are REML: y'PPy - tr(P) = 0, ML: y'PPy - sum w = 0 and EB:
    y'Py k/(k - p) - k = 0. Fisher scoring divides by their expected information (Viechtbauer
    2005; Morris 1983 for EB): tr(PP), sum w^2 and sum w. ``newton`` divides by minus their
    derivative in tau^2 instead (d y'PPy = -2 y'PPPy, d tr(P) = -tr(PP), d sum w = -sum w^2,
    d y'Py = -y'PPy); where that is not positive (``newton`` an array: row by row) the Fisher
    step is taken."""
    if kind == "EB":
        num, fisher = parts["quad"] * k / (k - p) - k, parts["sw"]
    elif kind == "ML":
        num, fisher = parts["pyy"] - parts["sw"], parts["s2"]
    else:
        num, fisher = parts["pyy"] - parts["trp"], parts["trpp"]
    if newton is False:
        return num / fisher
    slope = (parts["pyy"] * k / (k - p) if kind == "EB" else
             2.0 * parts["pppy"] - (parts["s2"] if kind == "ML" else parts["trpp"]))
    if isinstance(slope, np.ndarray):
        return num / np.where(newton & (slope > 0) & np.isfinite(slope), slope, fisher)
    return num / (slope if slope > 0 and math.isfinite(slope) else fisher)


def intercept_trpp(sw: float, s2: float, s3: float) -> float:
    """tr(PP) for X = 1 from sum w, sum w^2 and sum w^3."""
    return s2 - 2.0 * s3 / sw + (s2 / sw) ** 2


class InterceptSums:
    """The power sums of one intercept-only meta-analysis (centred outcomes ``y``, sampling
    variances ``v``) at any tau^2.

    :meth:`at` gives, for weights w = 1/(v + tau^2): (sum w, sum w^2, sum w^3, y'PPy, y'Py, mu,
    y'PPPy) with mu the weighted mean, r = y - mu the residuals, y'Py = sum w r^2,
    y'PPy = sum w^2 r^2 and y'PPPy = sum w^3 r^2 - (sum w^2 r)^2 / sum w: the quantities of a
    Fisher-scoring or Newton step for ML, REML and EB (Viechtbauer 2005), of the likelihood and
    of the fit, with tr(P) = sum w - sum w^2 / sum w and tr(PP) (:func:`intercept_trpp`). One
    matrix product of [1, y, y^2] with [w, w^2, w^3] gives all power sums, so a step costs three
    numpy calls at any k (the cost of a step at small k is the calls, not the arithmetic). The
    residual sums are expanded about the weighted mean; where that expansion would cancel more
    than three digits they are summed directly instead.

    :meth:`moments` and :meth:`log_sum` keep what they computed: the estimate of tau^2 (its
    likelihood check and standard error), the fit and its heterogeneity statistics read the same
    sums at the estimate and at 0.
    """

    __slots__ = ("y", "v", "v_min", "y3", "_v3", "_p3", "_moments", "_logs")

    def __init__(self, y: np.ndarray, v: np.ndarray):
        self.y, self.v = y, v
        self.v_min = float(np.minimum.reduce(v))
        k = y.size
        if k <= _SMALL_K:  # same-shape operands: no broadcasting (a third of a step's cost)
            self.y3 = y ** _EXPONENTS
            self._v3 = np.empty((k, 3))
            self._v3[:] = v[:, None]
            self._p3 = _POWERS_K.get(k)
            if self._p3 is None:
                self._p3 = _POWERS_K[k] = np.repeat(_POWERS[None, :], k, axis=0)
        else:
            self.y3 = np.vstack((np.ones(k), y, y * y))
            self._v3 = None
        self._moments: dict[float, tuple] = {}
        self._logs: dict[float, float] = {}

    def weight_powers(self, tau2: float) -> np.ndarray:
        """The k x 3 matrix [w, w^2, w^3], w = 1/(v + tau2): one call of pow for small k;
        products (pow is slower per element) for large k."""
        if self._v3 is not None:
            return (self._v3 + tau2) ** self._p3
        w = 1.0 / (self.v + tau2)
        out = np.empty((w.size, 3))
        out[:, 0] = w
        np.multiply(w, w, out=out[:, 1])
        np.multiply(out[:, 1], w, out=out[:, 2])
        return out

    def at(self, tau2: float) -> tuple:
        """(sum w, sum w^2, sum w^3, y'PPy, y'Py, mu, y'PPPy) at ``tau2`` (computed afresh)."""
        v3 = self._v3
        wp = (v3 + tau2) ** self._p3 if v3 is not None else self.weight_powers(tau2)
        (sw, s2, s3), (swy, s2y, s3y), (swyy, s2yy, s3yy) = np.dot(self.y3, wp).tolist()
        mu, pyy, quad = residual_sums(sw, swy, swyy, s2, s2y, s2yy)
        w3rr, w2r = s3yy - mu * (2.0 * s3y - mu * s3), s2y - mu * s2
        if pyy < _CANCEL * s2yy or quad < _CANCEL * swyy or w3rr < _CANCEL * s3yy:
            w = wp[:, 0]
            r = self.y - mu
            wr = w * r
            pyy, quad, w3rr, w2r = (float(wr @ wr), float(wr @ r), float((w * wr) @ wr),
                                    float(w @ wr))
        return sw, s2, s3, pyy, quad, mu, w3rr - w2r * w2r / sw

    def moments(self, tau2: float) -> tuple:
        """:meth:`at` ``tau2``, computed once."""
        m = self._moments.get(tau2)
        if m is None:
            m = self._moments[tau2] = self.at(tau2)
        return m

    def log_sum(self, tau2: float) -> float:
        """sum log(v + tau2), computed once."""
        s = self._logs.get(tau2)
        if s is None:
            s = self._logs[tau2] = row_sum(np.log(self.v + tau2 if tau2 else self.v))
        return s
