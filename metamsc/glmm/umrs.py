"""The unconditional model with random study effects (metafor ``model="UM.RS"``), Laplace.

For study i and group j (j = 1 first/treatment, j = 2 second/control group)

    g(E y_ij) = off_ij + a + theta * g1_j + u_i + v_i * g12_j,
    u_i ~ N(0, sigma^2), v_i ~ N(0, tau^2) independent,

with g1 = (1, 0), g12 = (+1/2, -1/2) (metafor's default ``coding = 1/2``, ``cor = FALSE``), logit
link and binomial cells for OR, log link, Poisson cells and log person-time offsets for IRR
(Turner et al. 2000, Stat Med 19:3417; Stijnen, Hamza & Ozdemir 2010, Stat Med 29:3046, model 3.3;
Jackson et al. 2018, Stat Med 37:1059, model 4). ``method="EE"`` fixes tau^2 = 0 (random
intercepts only).

The marginal likelihood of each study is the 2-D integral over (u_i, v_i), approximated as lme4
does with ``nAGQ = 1`` by Laplace's method in the spherical coordinates w = (u/sigma, v/tau)
(Bates et al. 2015, J Stat Softw 67(1)):

    log L_i ~ log f(y_i | w^) - |w^|^2 / 2 - 1/2 log det(I + L' Z' W Z L),

at the conditional mode w^ (Newton, one 2x2 system per study), W the GLM weights at the mode.
Cost is linear in k. The fixed effects and the SDs (sigma, tau >= 0) maximise the sum; the
covariance of (a, theta) is the inverse Hessian of -log L in (sigma, tau, a, theta) (lme4's
default), or, when tau or sigma is on the boundary 0, the fixed-effects block of the penalised
least-squares system at the mode (lme4's fallback from ``RX``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["UMRSFit", "umrs_loglik", "fit_umrs"]

_G1 = np.array([1.0, 0.0])
_G12 = np.array([0.5, -0.5])


@dataclass(frozen=True)
class UMRSFit:
    """The UM.RS fit: theta (log OR / log IRR) with its SE, intercept a, sigma^2, tau^2, the
    Laplace log-likelihood (with all constants, as lme4's ``logLik``) and convergence facts."""
    beta: float
    se: float
    intercept: float
    sigma2: float
    tau2: float
    loglik: float
    vcov: np.ndarray
    converged: bool
    vcov_source: str
    k: int


def _cells(family: str, eta, y, n):
    """Log-likelihood without constants, first derivative (y - mu) and weights of each cell."""
    if family == "binomial":
        ll = y * eta - n * np.logaddexp(0.0, eta)
        p = special.expit(eta)
        return ll, y - n * p, n * p * (1 - p)
    mu = np.exp(eta + np.log(n))
    return y * eta - mu + y * np.log(n), y - mu, mu


def _constant(family: str, y, n) -> float:
    if family == "binomial":
        return float(np.sum(special.gammaln(n + 1) - special.gammaln(y + 1)
                            - special.gammaln(n - y + 1)))
    return float(-np.sum(special.gammaln(y + 1)))


def _modes(family, y, n, lin, Z, w0=None, tol=1e-13, maxit=100):
    """Conditional modes w (k x 2) of every study by safeguarded Newton, vectorised over k.
    ``lin`` (k x 2) is the fixed linear predictor of each cell, ``Z`` (2 x 2) maps w to the
    random part of the two cells' predictors."""
    k = y.shape[0]
    w = np.zeros((k, 2)) if w0 is None else w0.copy()

    def obj(w):
        ll, r, wt = _cells(family, lin + w @ Z.T, y, n)
        return ll.sum(1) - 0.5 * (w * w).sum(1), r, wt

    f, r, wt = obj(w)
    for _ in range(maxit):
        g = r @ Z - w
        # H = Z' diag(wt) Z + I per study (2x2)
        h11 = wt @ (Z[:, 0] ** 2) + 1
        h22 = wt @ (Z[:, 1] ** 2) + 1
        h12 = wt @ (Z[:, 0] * Z[:, 1])
        det = h11 * h22 - h12 * h12
        step = np.column_stack([(h22 * g[:, 0] - h12 * g[:, 1]) / det,
                                (h11 * g[:, 1] - h12 * g[:, 0]) / det])
        t = np.ones(k)
        for _ in range(50):
            wn = w + t[:, None] * step
            fn, rn, wtn = obj(wn)
            bad = ~(fn >= f - 1e-12 * (1 + np.abs(f)))
            if not bad.any():
                break
            t = np.where(bad, t / 2, t)
        w, f, r, wt = wn, fn, rn, wtn
        if np.max(np.abs(step)) < tol:
            break
    return w, f, wt


def _study_loglik(sigma, tau, a, theta, family, y, n, w0=None, nagq=1):
    """Per-study Laplace / AGQ log-likelihoods without constants; ``theta`` a scalar or one
    value per study. Returns (values, modes, weights, Z)."""
    if nagq > 1 and tau != 0:
        raise ValueError("nagq > 1 needs tau = 0 (one random effect per study)")
    Z = np.array([[sigma, 0.5 * tau], [sigma, -0.5 * tau]])
    lin = a + np.reshape(theta, (-1, 1)) * _G1[None, :] + np.zeros_like(y, dtype=float)
    w, f, wt = _modes(family, y, n, lin, Z, w0)
    h11 = wt @ (Z[:, 0] ** 2) + 1
    h22 = wt @ (Z[:, 1] ** 2) + 1
    h12 = wt @ (Z[:, 0] * Z[:, 1])
    if nagq > 1:
        x, om = np.polynomial.hermite_e.hermegauss(nagq)
        om = om / math.sqrt(2 * math.pi)
        wq = w[:, 0:1] + x[None, :] / np.sqrt(h11)[:, None]  # k x q
        eta = lin[:, :, None] + Z[:, 0][None, :, None] * wq[:, None, :]
        ll, _, _ = _cells(family, eta, y[:, :, None], n[:, :, None])
        g = ll.sum(1) - 0.5 * wq * wq - f[:, None]
        s = np.log(np.sum(om[None, :] * np.exp(g + 0.5 * x[None, :] ** 2), axis=1))
        return f + s - 0.5 * np.log(h11), w, wt, Z
    return f - 0.5 * np.log(h11 * h22 - h12 * h12), w, wt, Z


def umrs_loglik(params, family, y, n, w0=None, return_modes=False, nagq=1):
    """Laplace log-likelihood (lme4 nAGQ = 1) at params = (sigma, tau, a, theta).

    With tau = 0 (one random effect per study) ``nagq`` > 1 is lme4's adaptive Gauss-Hermite
    rule: log L_i = -1/2 log H_i + log sum_q omega_q exp(g(w^ + z_q / sqrt(H_i)) + z_q^2 / 2),
    g(w) = log f(y_i | w) - w^2 / 2, (z_q, omega_q) the rule for the standard normal
    (Pinheiro & Bates 1995, J Comput Graph Stat 4:12)."""
    sigma, tau, a, theta = (float(v) for v in params)
    li, w, wt, Z = _study_loglik(sigma, tau, a, theta, family, y, n, w0, nagq)
    val = float(np.sum(li)) + _constant(family, y, n)
    return (val, w, wt, Z) if return_modes else val


def saturated_loglik(family, y, n, nagq=1, cap=30.0, want_wald=False):
    """Maximised log-likelihood of metafor's saturated UM.RS model: a log odds ratio (log rate
    ratio) per study, random study intercepts u_i ~ N(0, sigma^2) (tau = 0), Laplace or AGQ as
    the fit. Each study's effect is maximised by Newton inside the search over (sigma, a); an
    effect without a finite maximum (a zero cell) stops at +-``cap``. With ``want_wald`` also
    the Wald test that the effects are equal: (value, QE_Wld)."""
    from scipy import optimize

    y = np.asarray(y, dtype=float)
    n = np.asarray(n, dtype=float)
    if family == "binomial":
        lo = np.log((y + 0.5) / (n - y + 0.5))
    else:
        lo = np.log((y + 0.5) / n)
    state = {"phi": lo[:, 0] - lo[:, 1]}

    def profile(x):
        sigma, a = abs(x[0]), x[1]
        phi = state["phi"].copy()
        h = 1e-4
        for _ in range(100):
            f0 = _study_loglik(sigma, 0.0, a, phi, family, y, n, nagq=nagq)[0]
            fp = _study_loglik(sigma, 0.0, a, phi + h, family, y, n, nagq=nagq)[0]
            fm = _study_loglik(sigma, 0.0, a, phi - h, family, y, n, nagq=nagq)[0]
            g, H = (fp - fm) / (2 * h), (fp - 2 * f0 + fm) / h ** 2
            step = np.where(H < 0, -g / np.where(H < 0, H, -1.0), np.sign(g))
            step = np.clip(step, -2.0, 2.0)
            new = np.clip(phi + step, -cap, cap)
            if np.max(np.abs(new - phi)) < 1e-10:
                phi = new
                break
            phi = new
        state["phi"] = phi
        return -float(np.sum(_study_loglik(sigma, 0.0, a, phi, family, y, n, nagq=nagq)[0]))

    x0 = np.array([max(float(np.std(lo[:, 1])), 0.1), float(np.mean(lo[:, 1]))])
    best = None
    for meth in ("L-BFGS-B", "L-BFGS-B"):  # a restart polishes the first run
        r = optimize.minimize(profile, x0 if best is None else best.x, method=meth,
                              bounds=[(0, None), (None, None)],
                              options=dict(maxiter=20000, ftol=1e-15, gtol=1e-10))
        if best is None or r.fun <= best.fun:
            best = r
    value = -float(profile(best.x)) + _constant(family, y, n)
    if not want_wald:
        return value
    return value, _saturated_wald(abs(best.x[0]), best.x[1], state["phi"], family, y, n, nagq,
                                  cap)


def _saturated_wald(sigma, a, phi, family, y, n, nagq, cap) -> float:
    """Wald test that the per-study effects phi of the saturated GLMM are equal, from the
    Hessian of -log L in (sigma, a, phi) (metafor's QE_Wld with lme4's Hessian-based covariance).
    The Hessian is an arrowhead: phi_i enters study i only, so with S = D - B H_ee^-1 B' (the
    inverse covariance of phi) the statistic phi'S phi - (1'S phi)^2 / 1'S 1 costs O(k).
    NaN when an effect has no finite maximum (a zero cell in the first group)."""
    # an effect without a finite maximum (no events, or only events, in the first group):
    # no Wald test (lme4 reports one from wherever its iterations stop)
    if sigma <= 0 or np.any(y[:, 0] == 0) or (family == "binomial" and np.any(y[:, 0] == n[:, 0])):
        return float("nan")
    h = 1e-4

    def li(ds, da, dp):
        return -_study_loglik(sigma + ds, 0.0, a + da, phi + dp, family, y, n, nagq=nagq)[0]

    f0 = li(0, 0, 0)
    d2 = {}
    for name, e in (("s", (h, 0, 0)), ("a", (0, h, 0)), ("p", (0, 0, h))):
        d2[name + name] = (li(*e) - 2 * f0 + li(*(-x for x in e))) / h ** 2
    for n1, n2, e1, e2 in (("s", "a", (h, 0, 0), (0, h, 0)), ("s", "p", (h, 0, 0), (0, 0, h)),
                           ("a", "p", (0, h, 0), (0, 0, h))):
        pp = li(*(x + z for x, z in zip(e1, e2)))
        pm = li(*(x - z for x, z in zip(e1, e2)))
        mp = li(*(-x + z for x, z in zip(e1, e2)))
        mm = li(*(-x - z for x, z in zip(e1, e2)))
        d2[n1 + n2] = (pp - pm - mp + mm) / (4 * h * h)
    D = d2["pp"]
    B = np.column_stack([d2["sp"], d2["ap"]])
    Hee = np.array([[d2["ss"].sum(), d2["sa"].sum()], [d2["sa"].sum(), d2["aa"].sum()]])
    if np.any(D <= 0):
        return float("nan")
    Hinv = np.linalg.inv(Hee)
    # S x = D x - B Hinv B' x
    def S(x):
        return D * x - B @ (Hinv @ (B.T @ x))
    one = np.ones_like(phi)
    s_phi, s_one = S(phi), S(one)
    return float(phi @ s_phi - (one @ s_phi) ** 2 / (one @ s_one))


def _rx_vcov(params, family, y, n):
    """Fixed-effects covariance from the penalised least-squares system at the mode (lme4's
    ``RX``): inverse of X'WX - sum_i X_i'W_i Z L (I + L'Z'W_i Z L)^-1 L'Z'W_i X_i."""
    _, w, wt, Z = umrs_loglik(params, family, y, n, return_modes=True)
    X = np.array([[1.0, 1.0], [1.0, 0.0]])  # rows: cells; columns (a, theta)
    A = np.zeros((2, 2))
    for i in range(y.shape[0]):
        Wi = np.diag(wt[i])
        M = Z.T @ Wi @ Z + np.eye(2)
        B = X.T @ Wi @ Z
        A += X.T @ Wi @ X - B @ np.linalg.solve(M, B.T)
    return np.linalg.inv(A)


def _fd_hessian(f, x, h=1e-4):
    p = x.size
    H = np.empty((p, p))
    f0 = f(x)
    for i in range(p):
        for j in range(i, p):
            if i == j:
                e = np.zeros(p); e[i] = h
                H[i, i] = (f(x + e) - 2 * f0 + f(x - e)) / h ** 2
            else:
                ei = np.zeros(p); ei[i] = h
                ej = np.zeros(p); ej[j] = h
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                     + f(x - ei - ej)) / (4 * h * h)
    return H


def fit_umrs(family: str, y, n, *, random_slope: bool = True, nagq: int = 1) -> UMRSFit:
    """Maximise the Laplace likelihood of UM.RS over (sigma, tau >= 0, a, theta).

    ``y``, ``n``: k x 2 arrays (events, and totals or person-time) of the first and second group.
    ``random_slope=False`` is ``method="EE"``: tau = 0, integrated with ``nagq`` nodes.
    """
    if random_slope and nagq != 1:
        raise ValueError("UM.RS with a random slope is fitted by the Laplace approximation only "
                         f"(nagq = 1, as lme4), got nagq = {nagq}")
    from scipy import optimize

    y = np.asarray(y, dtype=float)
    n = np.asarray(n, dtype=float)
    k = y.shape[0]
    if family == "binomial":
        lo = np.log((y + 0.5) / (n - y + 0.5))
    else:
        lo = np.log((y + 0.5) / n)
    a0, th0 = float(np.mean(lo[:, 1])), float(np.mean(lo[:, 0] - lo[:, 1]))
    s0 = max(float(np.std(lo[:, 1])), 0.1)
    free = [0, 1, 2, 3] if random_slope else [0, 2, 3]

    def full(x):
        p = np.zeros(4)
        p[free] = x
        return p

    def nll(x):
        return -umrs_loglik(full(x), family, y, n, nagq=nagq)

    x0 = np.array([s0, 0.3, a0, th0] if random_slope else [s0, a0, th0])
    bounds = [(0, None), (0, None), (None, None), (None, None)] if random_slope \
        else [(0, None), (None, None), (None, None)]
    best = None
    for meth in ("L-BFGS-B", "L-BFGS-B"):  # a restart polishes the first run
        r = optimize.minimize(nll, x0 if best is None else best.x, method=meth, bounds=bounds,
                              options=dict(maxiter=20000, ftol=1e-15, gtol=1e-10))
        if best is None or r.fun <= best.fun:
            best = r
    x = best.x.copy()
    # Newton polish on the free coordinates away from the boundary
    on_bnd = [i for i, j in enumerate(free) if j < 2 and x[i] < 1e-6]
    inner = [i for i in range(x.size) if i not in on_bnd]
    for i in on_bnd:
        x[i] = 0.0
    for _ in range(20):
        def sub(z, x=x):
            xx = x.copy(); xx[inner] = z
            return nll(xx)
        z = x[inner]
        H = _fd_hessian(sub, z, 1e-4)
        g = np.array([(sub(z + e) - sub(z - e)) / 2e-5 for e in np.eye(z.size) * 1e-5])
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 0.5:
            break
        zn = z - step
        if sub(zn) > sub(z) + 1e-12:
            break
        x[inner] = zn
        if np.max(np.abs(step)) < 1e-10:
            break
    p = full(x)
    val = umrs_loglik(p, family, y, n, nagq=nagq)
    # converged: the gradient vanishes in the interior coordinates and, on the boundary
    # sigma = 0 or tau = 0, -log L does not decrease inwards
    eye = np.eye(x.size) * 1e-6
    grad = np.array([(nll(x + e) - nll(x - e)) / 2e-6 if i in inner
                     else (nll(x + e) - nll(x)) / 1e-6 for i, e in enumerate(eye)])
    converged = bool(np.all(np.abs(grad[inner]) < 1e-4 * (1 + abs(val)) ** 0.5)
                     and np.all(grad[on_bnd] > -1e-6))
    src = "hessian"
    vc = None
    if not on_bnd:
        H = _fd_hessian(nll, x, 1e-4)
        try:
            ev = np.linalg.eigvalsh(H)
            if np.min(ev) > 0:
                vc = np.linalg.inv(H)[-2:, -2:]
        except np.linalg.LinAlgError:
            vc = None
    if vc is None:
        vc = _rx_vcov(p, family, y, n)
        src = "RX"
    # order (a, theta) -> report theta first
    vcov = np.array([[vc[1, 1], vc[1, 0]], [vc[0, 1], vc[0, 0]]])
    return UMRSFit(beta=float(p[3]), se=float(math.sqrt(vcov[0, 0])), intercept=float(p[2]),
                   sigma2=float(p[0] ** 2), tau2=float(p[1] ** 2), loglik=val, vcov=vcov,
                   converged=converged, vcov_source=src, k=k)
