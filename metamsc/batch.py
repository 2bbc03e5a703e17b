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

from ._dist import critical_value, norm_sf, t_sf
from ._present import explained
from .progress import progress
from .core import canonical_test
from .powersums import (NEGLIGIBLE_STEP, NEWTON_FROM, intercept_trpp, row_moments, row_pppy,
                        row_sum, scoring_adjustment)
from .tau2 import Projection, canonical_method, estimate_tau2, scoring_fallback

__all__ = ["BatchResult", "pool_batch", "BATCH_METHODS"]

BATCH_METHODS = ("EE", "DL", "HE", "PM", "ML", "REML")


@explained
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

    def __len__(self) -> int:
        return int(np.size(self.estimate))

    def _repr_extra(self) -> str:
        return f"analyses={len(self)} converged={int(np.sum(self.converged))}"

    def summary(self) -> str:
        """Counts and the spread of the pooled estimates, as text."""
        est = np.asarray(self.estimate, dtype=float)
        fin = est[np.isfinite(est)]
        spread = (f"estimate from {fin.min():.4f} to {fin.max():.4f} (median {np.median(fin):.4f})"
                  if fin.size else "no finite estimate")
        return (f"Batch of {len(self)} meta-analyses, k = {self.k} studies each "
                f"({self.method}, test {self.test}, {100 * self.level:g}% CI)\n{spread}\n"
                f"converged: {int(np.sum(self.converged))} of {len(self)}")

    def to_frame(self):
        """One row per meta-analysis (pandas DataFrame)."""
        import pandas as pd

        cols = ("estimate", "se", "ci_lb", "ci_ub", "pvalue", "pi_lb", "pi_ub", "tau2", "i2", "q",
                "converged", "iterations")
        return pd.DataFrame({c: np.asarray(getattr(self, c)) for c in cols})

    def coverage(self, true_value: float) -> float:
        """Share of CIs that contain ``true_value`` (a simulation's coverage)."""
        return float(np.mean((self.ci_lb <= true_value) & (true_value <= self.ci_ub)))


def _score(y: np.ndarray, v: np.ndarray, t: np.ndarray, method: str) -> np.ndarray:
    """The ML or REML estimating function y'PPy - tr(P) (ML: - sum w) per row at tau^2 = ``t``,
    one value per row (``t`` 1-D) or one per row and column (``t`` n x g: a grid per row)."""
    tt = t[:, :, None] if t.ndim == 2 else t[:, None, None]
    w = 1.0 / (v[:, None, :] + tt)
    sw = w.sum(axis=-1)
    r = y[:, None, :] - ((w * y[:, None, :]).sum(axis=-1) / sw)[..., None]
    py = w * r
    out = (py * py).sum(axis=-1) - (sw if method == "ML" else sw - (w * w).sum(axis=-1) / sw)
    return out if t.ndim == 2 else out[:, 0]


def _fallback_rows(y: np.ndarray, v: np.ndarray, method: str) -> np.ndarray:
    """:func:`metamsc.tau2.scoring_fallback` for many rows: the same scan of the estimating
    function on [0, hi] (0 and 64 geometric points; hi grows by 4x until the function is <= 0),
    vectorised over the rows; a row with one downward crossing is refined by :func:`_illinois`
    (all such rows at once), a row with several goes through scoring_fallback (its likelihood
    decides), a row with none is 0 and a row without an upper bracket NaN."""
    n = y.shape[0]
    hi = np.maximum(np.var(y, axis=1) + np.max(v, axis=1), 1.0)
    up = np.ones(n, dtype=bool)
    for _ in range(200):
        up = _score(y, v, hi, method) > 0
        if not up.any():
            break
        hi = np.where(up, 4 * hi, hi)
    grid = np.hstack((np.zeros((n, 1)), np.geomspace(hi * 1e-8, hi, 64, axis=1)))
    f = _score(y, v, grid, method)
    down = (f[:, :-1] > 0) & (f[:, 1:] <= 0)
    count = down.sum(axis=1)
    out = np.zeros(n)
    one = np.flatnonzero((count == 1) & ~up)
    if one.size:
        j = np.argmax(down[one], axis=1)
        out[one] = _illinois(y[one], v[one], method, grid[one, j], grid[one, j + 1],
                             f[one, j], f[one, j + 1])
    for i in np.flatnonzero((count > 1) & ~up):
        out[i] = scoring_fallback(y[i], v[i], None, method)[0]
    out[up] = np.nan
    return out


def _illinois(y, v, method, a, b, fa, fb) -> np.ndarray:
    """Roots of the estimating function in the brackets [a, b] (fa > 0 >= fb) per row, by the
    Illinois variant of regula falsi (Dowell & Jarratt 1971, BIT 11:168): superlinear, so a few
    evaluations instead of bisection's fifty; a row stops when its estimate moves by less than
    4 machine epsilons (relative) or the function is 0 there."""
    x = b.copy()
    live = np.ones(a.size, dtype=bool)
    last = np.zeros(a.size, dtype=np.int8)  # which end the last step moved: 1 a, -1 b
    for _ in range(200):
        if not live.any():
            break
        c = b - fb * (b - a) / np.where(fb != fa, fb - fa, 1.0)
        c = np.where((c > a) & (c < b), c, 0.5 * (a + b))
        fc = _score(y, v, c, method)
        moved = np.abs(c - x) > 4 * np.finfo(float).eps * np.abs(c)
        x = np.where(live, c, x)
        live &= moved & (fc != 0)
        left = fc > 0  # the root is in [c, b]: c replaces a, else c replaces b
        # Illinois: an end kept twice in a row has its function value halved
        fb = np.where(left & (last == 1), 0.5 * fb, fb)
        fa = np.where(~left & (last == -1), 0.5 * fa, fa)
        a, fa = np.where(left, c, a), np.where(left, fc, fa)
        b, fb = np.where(left, b, c), np.where(left, fb, fc)
        last = np.where(left, 1, -1).astype(np.int8)
    return x


def _kept_nonnegative(adj: np.ndarray, t: np.ndarray, live: np.ndarray) -> np.ndarray:
    """The steps from ``t`` (>= 0) as metafor takes them, row by row: none in finished rows, none
    when not finite or when they would leave 0 downwards, else halved until t + adj >= 0."""
    adj = np.where(np.isfinite(adj) & live & ((t > 0) | (adj >= 0)), adj, 0.0)  # none below 0 from 0
    _halve_until_nonnegative(t, adj)
    return adj


def _halve_until_nonnegative(t: np.ndarray, adj: np.ndarray) -> None:
    """Halve ``adj`` (in place) where t + adj < 0 until t + adj >= 0: the step halving of Fisher
    scoring, with the number of halvings n = ceil(log2(-adj / t)) found at once (checked and
    corrected by one halving either way; halving is exact, so the result is the loop's)."""
    neg = np.flatnonzero(t + adj < 0)  # t > 0 there: steps below 0 from t = 0 are already 0
    if not neg.size:
        return
    a, tt = adj[neg], t[neg]
    with np.errstate(divide="ignore", over="ignore"):
        n = np.clip(np.ceil(np.log2(-a / tt)), 1, 1100).astype(int)
    n = np.where((n > 1) & (tt + np.ldexp(a, -(n - 1)) >= 0), n - 1, n)
    short = tt + np.ldexp(a, -n) < 0
    while short.any():
        n = n + short
        short = tt + np.ldexp(a, -n) < 0
    adj[neg] = np.ldexp(a, -n)


def pool_batch(yi: ArrayLike, vi: ArrayLike, *, method: str = "REML", test: str = "z",
               level: float = 0.95, threshold: float = 1e-12, maxiter: int = 100) -> BatchResult:
    """Pool each row of ``yi``/``vi`` (shape (n_analyses, k), k >= 2) like :func:`metamsc.pool`.

    The estimators are those of :mod:`metamsc.tau2` (the same :class:`~metamsc.tau2.Projection`
    traces and quadratic forms, applied to all rows at once); PM is solved row by row by
    :func:`metamsc.tau2.estimate_tau2`; rows whose Fisher scoring does not converge get the root
    of the estimating equation, bracketed and bisected on all of them at once.

    Parameters
    ----------
    yi, vi : array_like, shape (n_analyses, k)
        Effect sizes and sampling variances, one meta-analysis per row.
    method : str
        tau^2 estimator (default "REML").
    test : {"z", "knha", "adhoc", "t"}
        Inference for the pooled effects.
    level : float
        Confidence level (default 0.95).
    threshold, maxiter : float, int
        Convergence rule of the iterative estimators.

    Returns
    -------
    BatchResult
        Arrays of one value per row: ``estimate``, ``se``, ``ci_lb``, ``ci_ub``, ``pvalue``,
        ``pi_lb``, ``pi_ub``, ``tau2``, ``i2``, ``q``, ``converged``, ``iterations``.

    References
    ----------
    As :func:`metamsc.pool`; the REML and ML scoring steps of Viechtbauer W (2005). J Educ Behav
    Stat 30:261-293.

    Examples
    --------
    >>> import numpy as np
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> b = mm.pool_batch(np.array([yi, yi[::-1], np.add(yi, 1)]), np.array([vi, vi, vi]))
    >>> b.estimate.round(4), b.tau2.round(4)
    (array([-0.9905, -1.1037,  0.0095]), array([0.2248, 0.1274, 0.2248]))
    """
    y = np.atleast_2d(np.asarray(yi, dtype=float))
    v = np.atleast_2d(np.asarray(vi, dtype=float))
    method = canonical_method(method)
    if method not in BATCH_METHODS:
        raise ValueError(f"pool_batch supports {', '.join(BATCH_METHODS)}, not {method!r}")
    test = canonical_test(test)
    if test not in ("z", "knha"):
        raise ValueError(f"pool_batch supports tests z and knha, not {test!r}")
    if y.shape != v.shape or y.shape[1] < 2:
        raise ValueError("yi and vi must have the same shape (n_analyses, k) with k >= 2")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("yi must be finite and vi finite and positive (no missing studies in a batch)")
    m, k = y.shape
    ymc = y - y.mean(axis=1, keepdims=True)  # as estimate_tau2: the centred outcomes
    pr0 = Projection(1.0 / v, None)
    q0 = pr0.quad(ymc)
    trp = pr0.tr()
    iters = np.zeros(m, dtype=int)
    conv = np.ones(m, dtype=bool)
    he = (Projection(np.ones_like(v), None).quad(ymc) - Projection(np.ones_like(v), None).tr(v)) / (k - 1)
    if method == "EE":
        tau2 = np.zeros(m)
    elif method == "DL":
        tau2 = np.maximum(0.0, (q0 - (k - 1)) / trp)
    elif method == "HE":
        tau2 = np.maximum(0.0, he)
    elif method == "PM":
        tau2 = np.array([estimate_tau2(y[i], v[i], "PM").tau2
                         for i in progress(range(m), "pool_batch (PM, row by row)")])
    else:  # ML / REML Fisher scoring on all rows at once (Viechtbauer 2005)
        tau2 = np.maximum(0.0, he)
        active = np.ones(m, dtype=bool)
        # the rows in the working arrays (compacted when a tenth of them has finished) and which
        # of them still iterate
        # of them still iterate, and which take Newton steps (as estimate_tau2: once tau^2
        # changes by less than NEWTON_FROM)
        idx, live = np.arange(m), np.ones(m, dtype=bool)
        exact = np.zeros(m, dtype=bool)
        switch = max(threshold, NEWTON_FROM)
        ya, ya2, va = ymc, ymc * ymc, v
        for _ in range(maxiter):
            if not live.any():
                break
            if live.sum() < 0.9 * idx.size:
                idx, ya, ya2, va, exact, live = (idx[live], ya[live], ya2[live], va[live],
                                                 exact[live], live[live])
            iters[idx[live]] += 1
            t = tau2[idx]
            sw, s2, s3, pyy, _, mu = row_moments(ya, ya2, va, t)
            parts = {"sw": sw, "s2": s2, "pyy": pyy, "trp": sw - s2 / sw,
                     "trpp": intercept_trpp(sw, s2, s3)}
            adj = _kept_nonnegative(scoring_adjustment(method, k, 1, parts), t, live)
            # from the first Fisher step below NEWTON_FROM on: Newton steps (as estimate_tau2),
            # with y'PPPy for those rows only
            step = np.abs(t + adj - t)
            exact |= (step > threshold) & (step < switch)
            rows = np.flatnonzero(exact & live)
            if rows.size:
                sub = {key: val[rows] for key, val in parts.items()}
                sub["pppy"] = row_pppy(ya[rows], va[rows], t[rows], mu[rows], sw[rows])
                adj[rows] = _kept_nonnegative(scoring_adjustment(method, k, 1, sub, newton=True),
                                              t[rows], live[rows])
                # a last Newton step of the last digits only is not taken (as estimate_tau2)
                step = np.abs(t[rows] + adj[rows] - t[rows])
                adj[rows[(step <= threshold) & (step <= NEGLIGIBLE_STEP * t[rows])]] = 0.0
            tau2[idx] = t + adj
            live &= np.abs(adj) > threshold
        active[:] = False
        active[idx[live]] = True
        # rows still active did not converge: the fallback of estimate_tau2 on all of them at once
        bad = np.flatnonzero(active)
        if bad.size:
            tau2[bad] = _fallback_rows(ymc[bad], v[bad], method)
            conv[bad] = np.isfinite(tau2[bad])
        # ll0check as metafor: take tau^2 = 0 when the likelihood is higher there
        reml = method == "REML"

        def ll(t):
            pr = Projection(1.0 / (v + t[:, None]), None)
            out = -0.5 * row_sum(np.log(v + t[:, None])) - 0.5 * pr.quad(ymc)
            return out - (0.5 * pr.logdet() if reml else 0.0)

        pos = tau2 > threshold
        better0 = pos & (ll(np.zeros(m)) - ll(tau2) > 1e-12)
        tau2[better0] = 0.0
    w = 1.0 / (v + tau2[:, None])
    pr = Projection(w, None)
    mu = pr.coef(y)[:, 0]
    vb = 1.0 / row_sum(w)
    if test == "knha":
        rss = pr.quad(y)
        s2w = np.where(rss > np.finfo(float).eps, rss / (k - 1), 0.0)
        vb = vb * s2w
        crit = critical_value(level, float(k - 1))
        se = np.sqrt(vb)
        with np.errstate(divide="ignore", invalid="ignore"):
            pval = 2 * t_sf(np.abs(mu / se), k - 1)
    else:
        crit = critical_value(level)
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
