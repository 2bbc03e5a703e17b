"""Many meta-analyses at once: arrays of shape (n_analyses, k), for simulation studies.

Same estimators and conventions as :func:`metamsc.pool` (and the same numbers, checked in the
tests), vectorised over the first axis: EE, DL, HE, PM and REML/ML with Fisher scoring run on all
rows together; a row whose scoring does not converge is refitted by :func:`metamsc.pool`'s
bracketed fallback and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._dist import norm_isf, norm_sf, t_isf, t_sf
from .tau2 import _solve_score, estimate_tau2

__all__ = ["BatchResult", "pool_batch", "BATCH_METHODS"]

BATCH_METHODS = ("EE", "DL", "HE", "PM", "ML", "REML")


@dataclass(frozen=True)
class BatchResult:
    """Pooled results of many meta-analyses; every field is an array of length n_analyses."""

    method: str
    test: str
    level: float
    k: int
    estimate: np.ndarray
    se: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    pvalue: np.ndarray
    pi_lb: np.ndarray
    pi_ub: np.ndarray
    tau2: np.ndarray
    i2: np.ndarray
    q: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray

    def coverage(self, true_value: float) -> float:
        """Share of CIs that contain ``true_value`` (a simulation's coverage)."""
        return float(np.mean((self.ci_lb <= true_value) & (true_value <= self.ci_ub)))


def _q(y, w):
    mu = np.sum(w * y, axis=1, keepdims=True) / np.sum(w, axis=1, keepdims=True)
    return np.sum(w * (y - mu) ** 2, axis=1)


def pool_batch(yi: ArrayLike, vi: ArrayLike, *, method: str = "REML", test: str = "z",
               level: float = 0.95, threshold: float = 1e-12, maxiter: int = 100) -> BatchResult:
    """Pool each row of ``yi``/``vi`` (shape (n_analyses, k), k >= 2) like :func:`metamsc.pool`."""
    y = np.atleast_2d(np.asarray(yi, dtype=float))
    v = np.atleast_2d(np.asarray(vi, dtype=float))
    method = {"FE": "EE", "CE": "EE"}.get(method, method)
    if method not in BATCH_METHODS:
        raise ValueError(f"pool_batch supports {', '.join(BATCH_METHODS)}, not {method!r}")
    if test not in ("z", "knha"):
        raise ValueError(f"pool_batch supports tests z and knha, not {test!r}")
    if y.shape != v.shape or y.shape[1] < 2:
        raise ValueError("yi and vi must have the same shape (n_analyses, k) with k >= 2")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("yi must be finite and vi finite and positive (no missing studies in a batch)")
    m, k = y.shape
    w0 = 1.0 / v
    sw0 = w0.sum(axis=1)
    q0 = _q(y, w0)
    trp = sw0 - (w0**2).sum(axis=1) / sw0
    iters = np.zeros(m, dtype=int)
    conv = np.ones(m, dtype=bool)
    he = (np.sum((y - y.mean(axis=1, keepdims=True)) ** 2, axis=1) - v.sum(axis=1) * (k - 1) / k) / (k - 1)
    if method == "EE":
        tau2 = np.zeros(m)
    elif method == "DL":
        tau2 = np.maximum(0.0, (q0 - (k - 1)) / trp)
    elif method == "HE":
        tau2 = np.maximum(0.0, he)
    elif method == "PM":
        tau2 = np.array([estimate_tau2(y[i], v[i], "PM").tau2 for i in range(m)])
    else:  # ML / REML Fisher scoring on all rows at once (Viechtbauer 2005)
        tau2 = np.maximum(0.0, he)
        active = np.ones(m, dtype=bool)
        for _ in range(maxiter):
            if not active.any():
                break
            iters[active] += 1
            t = tau2[active]
            w = 1.0 / (v[active] + t[:, None])
            sw = w.sum(axis=1)
            r = y[active] - (np.sum(w * y[active], axis=1) / sw)[:, None]
            wr2 = np.sum((w * r) ** 2, axis=1)
            if method == "ML":
                adj = (wr2 - sw) / np.sum(w**2, axis=1)
            else:
                sw2 = np.sum(w**2, axis=1)
                trp_ = sw - sw2 / sw
                # sum(P*P) for P = W - w w'/sw: sum w^2 - 2 sum w^3 / sw + (sum w^2)^2 / sw^2
                pp = sw2 - 2 * np.sum(w**3, axis=1) / sw + sw2**2 / sw**2
                adj = (wr2 - trp_) / pp
            adj = np.where(np.isfinite(adj), adj, 0.0)
            adj = np.where((t == 0) & (adj < 0), 0.0, adj)  # halving from 0 ends at 0
            while np.any(t + adj < 0):
                adj = np.where(t + adj < 0, adj / 2, adj)
            new = t + adj
            tau2[active] = new
            done = np.abs(adj) <= threshold
            idx = np.flatnonzero(active)
            active[idx[done]] = False
        # rows still active did not converge: the bracketed root of the estimating equation
        for i in np.flatnonzero(active):
            root, _ = _solve_score(y[i], v[i], method)
            tau2[i], conv[i] = root, bool(np.isfinite(root))
        # ll0check as metafor: take tau^2 = 0 when the likelihood is higher there
        reml = method == "REML"

        def ll(t):
            w = 1.0 / (v + t[:, None])
            out = -0.5 * np.sum(np.log(v + t[:, None]), axis=1) - 0.5 * _q(y, w)
            return out - (0.5 * np.log(w.sum(axis=1)) if reml else 0.0)

        pos = tau2 > threshold
        better0 = pos & (ll(np.zeros(m)) - ll(tau2) > 1e-12)
        tau2[better0] = 0.0
    w = 1.0 / (v + tau2[:, None])
    sw = w.sum(axis=1)
    mu = np.sum(w * y, axis=1) / sw
    vb = 1.0 / sw
    alpha = 1 - level
    if test == "knha":
        s2w = np.sum(w * (y - mu[:, None]) ** 2, axis=1) / (k - 1)
        s2w = np.where(s2w * (k - 1) > np.finfo(float).eps, s2w, 0.0)
        vb = vb * s2w
        crit = t_isf(alpha / 2, k - 1)
        se = np.sqrt(vb)
        pval = 2 * t_sf(np.abs(mu / se), k - 1)
    else:
        crit = norm_isf(alpha / 2)
        se = np.sqrt(vb)
        pval = 2 * norm_sf(np.abs(mu / se))
    vt = (k - 1) / trp
    if method == "EE":
        i2 = np.where(q0 > 0, np.maximum(0.0, 100 * (q0 - (k - 1)) / np.where(q0 > 0, q0, 1)), 0.0)
        pi_lb = pi_ub = np.full(m, np.nan)
    else:
        i2 = 100 * tau2 / (vt + tau2)
        s = np.sqrt(vb + tau2)
        pi_lb, pi_ub = mu - crit * s, mu + crit * s
    return BatchResult(method, test, level, k, mu, se, mu - crit * se, mu + crit * se, pval,
                       pi_lb, pi_ub, tau2, i2, q0, conv, iters)
