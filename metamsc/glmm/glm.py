"""GLM pieces of the GLMM fits: the common-effect model (tau^2 = 0) by Newton-Raphson, the
saturated model fitted as R's ``glm.fit`` does, and the Wald test of homogeneity."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from .arrow import Arrow, drop_last

__all__ = ["glm_newton", "r_glm_saturated", "wald_homogeneity"]


def glm_newton(model, gamma0, maxiter: int = 100):
    """Common-effect GLM (s = 0) by Newton-Raphson; returns gamma, cov, loglik, iters, ok.
    ``cov`` is the covariance of the common parameters (with fixed study effects their block
    of the inverse information, from the Schur complement: O(k))."""
    gamma = np.array(gamma0, dtype=float)
    ok = False
    it = 0
    val, g, H = model.evaluate(gamma, 0.0, "h")
    for it in range(1, maxiter + 1):
        try:
            M = drop_last(H)
            step = (-M).solve(g[:-1]) if isinstance(M, Arrow) else np.linalg.solve(-M, g[:-1])
        except np.linalg.LinAlgError:
            break
        mx = np.abs(step).max()
        if mx > 5:
            step *= 5 / mx
        t = 1.0
        while True:
            new = gamma + t * step
            nval, ng, nH = model.evaluate(new, 0.0, "h")
            if nval >= val - 1e-12 * abs(val) or t < 1e-6:
                break
            t *= 0.5
        gamma, val, g, H = new, nval, ng, nH
        if mx * t < 1e-10:
            ok = True
            break
    M = drop_last(H)
    try:
        cov = (-M).shared_inverse() if isinstance(M, Arrow) else np.linalg.inv(-M)
    except np.linalg.LinAlgError:
        m = M.A.shape[0] if isinstance(M, Arrow) else gamma.size
        cov = np.full((m, m), np.nan)
    return gamma, cov, val, it, ok


def r_glm_saturated(kind: str, x, n=None, logt=None):
    """Each cell fitted on its own, as R's ``glm.fit`` does (IRLS, epsilon 1e-8, maxit 25).

    Binomial (x events of n) or Poisson (x events, log exposure ``logt``).
    Returns the cell parameters (logit or log rate) at which IRLS stops, their
    variances from the working weights of the last iteration (R's ``vcov``),
    and the log-likelihood with constants.

    In the saturated model IRLS is a separate Newton iteration per cell; only
    the stopping rule (relative change of the total deviance < 1e-8) couples
    them. Cells with 0 < x < n converge quadratically; cells with x = 0 (or
    x = n) follow u <- u - (1 + exp(u)) from u0 = log(0.5 / (n + 0.5)) for
    the binomial (u = eta, or -eta for x = n) and eta <- eta - 1 from
    log(0.1) for the Poisson, so all trajectories are computed first and the
    stopping iteration is found afterwards.
    """
    x = np.asarray(x, float)
    binom = kind == "binomial"
    if binom:
        nx = n - x
        deg = (x == 0) | (x == n)
    else:
        deg = x == 0
    inter = ~deg
    T = 25
    # --- cells with 0 < x < n (binomial) / x > 0 (Poisson): Newton until it stops moving
    xi = x[inter]
    if binom:
        ni = n[inter]
        yi = xi / ni
        with np.errstate(divide="ignore", invalid="ignore"):
            C = float(xi @ np.log(yi) + (ni - xi) @ np.log1p(-yi))
        eta = np.log((xi + 0.5) / (ni - xi + 0.5))
    else:
        C = float(xi @ np.log(xi) - xi.sum())
        eta = np.log(xi + 0.1)
    etas = [eta]
    for _ in range(T):
        if binom:
            e = np.exp(eta)
            opx = 1.0 + e
            mu = e / opx
            step = (yi - mu) * opx / mu  # (y - mu) / mu.eta with mu.eta = mu / (1 + e)
        else:
            mu = np.exp(eta)
            step = (xi - mu) / mu
        eta = eta + step
        etas.append(eta)
        if eta.size == 0 or np.abs(step).max() < 1e-15 * (1 + np.abs(eta).max()):
            break
    E = np.array(etas)  # (t, k_inter)
    if binom:
        dev_i = 2 * (C - E @ xi + np.logaddexp(0.0, E) @ ni)
    else:
        dev_i = 2 * (C - E @ xi + np.exp(E).sum(axis=1))
    if E.shape[0] < T + 1:  # converged: the cells stay where they are
        E = np.vstack([E, np.repeat(E[-1:], T + 1 - E.shape[0], axis=0)])
        dev_i = np.append(dev_i, np.repeat(dev_i[-1], T + 1 - dev_i.size))
    # --- degenerate cells
    if binom:
        nd = n[deg]
        if nd.size <= 8:  # a few cells: plain floats are faster than numpy here
            cols = []
            for nn in nd.tolist():
                u = math.log(0.5 / (nn + 0.5))
                col = [u]
                for _ in range(T):
                    u = u - (1.0 + math.exp(u))
                    col.append(u)
                cols.append(col)
            Ud = np.array(cols).T.reshape(T + 1, nd.size)
        else:
            u = np.log(0.5 / (nd + 0.5))
            us = [u]
            for _ in range(T):
                u = u - (1.0 + np.exp(u))
                us.append(u)
            Ud = np.array(us)  # (T + 1, k_deg)
    else:
        Ud = math.log(0.1) - np.arange(T + 1.0)[:, None] * np.ones(int(deg.sum()))
    dev_d = 2 * (np.logaddexp(0.0, Ud) @ nd) if binom else 2 * np.exp(Ud).sum(axis=1)
    # --- R's stopping rule on the total deviance
    D = dev_i + dev_d
    rel = np.abs(np.diff(D)) / (np.abs(D[1:]) + 0.1)
    hit = np.flatnonzero(rel < 1e-8)
    t = int(hit[0]) + 1 if hit.size else T
    sign = np.where(x[deg] == 0, 1.0, -1.0) if binom else 1.0
    eta_f = np.empty(x.size)
    eta_p = np.empty(x.size)  # at the start of the last iteration (R's working weights)
    eta_f[inter], eta_p[inter] = E[t], E[t - 1]
    eta_f[deg], eta_p[deg] = sign * Ud[t], sign * Ud[t - 1]
    if binom:
        mu_p = special.expit(eta_p)
        var = 1.0 / (n * mu_p * (1.0 - mu_p))
        mu = special.expit(eta_f)
        ll = float(np.sum(special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(nx + 1))
                   + x @ np.log(mu) + nx @ np.log1p(-mu))
        return eta_f, var, ll
    var = 1.0 / np.exp(eta_p)
    mu = np.exp(eta_f)
    ll = float(x @ eta_f - mu.sum() - special.gammaln(x + 1).sum())
    return eta_f - logt, var, ll


def wald_homogeneity(theta, var) -> float:
    """Wald test that all theta_i are equal (invariant to the contrasts used)."""
    w = 1.0 / var
    mean = float(w @ theta) / float(w.sum())
    d = theta - mean
    return float(w @ (d * d))
