"""Exact-likelihood (generalised linear mixed) models for sparse counts.

metafor ``rma.glmm`` parity, written with numpy and scipy only (no R, no lme4).

Models
------
* ``PLO``: binomial-normal random-intercept model, x_i ~ Bin(n_i, p_i),
  logit p_i = mu + b_i, b_i ~ N(0, tau^2) (Hamza, van Houwelingen & Stijnen
  2008, J Clin Epidemiol 61:41; Stijnen, Hamza & Ozdemir 2010, Stat Med
  29:3046).
* ``IRLN``: Poisson-normal model, x_i ~ Poisson(t_i lambda_i),
  log lambda_i = mu + b_i (Stijnen et al. 2010).
* ``OR`` with ``model="UM.FS"``: the unconditional model with fixed study
  effects and a random treatment effect (Stijnen et al. 2010, model 3.2;
  Turner et al. 2000, Stat Med 19:3417): logit p_i1 = alpha_i + theta + u_i/2,
  logit p_i2 = alpha_i - u_i/2, u_i ~ N(0, tau^2) (the +-1/2 coding that
  metafor uses by default).

``method="ML"`` is the random-effects model, ``method="EE"`` (aliases "FE",
"CE") the common-effect GLM with tau^2 fixed at 0.

Likelihood
----------
Each study's marginal likelihood is a one-dimensional integral over its
random effect, computed by adaptive Gauss-Hermite quadrature (AGQ): the
integrand is centred at the conditional mode of the random effect and scaled
by the curvature there (Liu & Pierce 1994, Biometrika 81:624; Pinheiro &
Bates 1995, J Comput Graph Stat 4:12). One node is the Laplace
approximation. With nagq = 7 (the default, as metafor/lme4) the function
maximised is the AGQ likelihood that lme4's ``glmer(nAGQ = 7)`` maximises
(the deviances agree to about 1e-9). ``nagq="high"`` uses 41 nodes, beyond
which the estimates no longer change (checked against 81 in the tests).

The gradient is exact: the derivative of the AGQ formula includes the
dependence of the conditional mode and of the curvature on the parameters
(implicit function theorem). Newton steps use the Hessian of the log of the
quadrature sum with the nodes held fixed (Louis' identity for the
quadrature "posterior"), which differs from the exact Hessian by terms of
the order of the quadrature error, and switch to central differences of the
exact gradient where that approximation is poor. Standard errors come from
the Hessian by central differences of the exact gradient. As in lme4 the SE
of the pooled estimate is taken from the joint Hessian of (estimate, tau^2);
at tau^2 = 0 from the Hessian of the common-effect likelihood.

Heterogeneity and I^2 (as metafor)
----------------------------------
* ``QE_Wld`` and ``QE_LRT`` compare the common-effect model with the
  saturated model (a separate proportion or rate per study; for UM.FS a
  separate odds ratio per study): the Wald test that all study parameters
  are equal and the likelihood-ratio test. The saturated model is fitted as
  R's ``glm.fit`` does (IRLS from its starting values, stopping when the
  relative change of the deviance is below 1e-8), so studies with 0 or n
  events enter with the finite value at which IRLS stops and a near-zero
  weight, as in metafor.
* I^2 = 100 tau^2 / (tau^2 + v~) and H^2 = 1 + tau^2 / v~ with the typical
  within-study variance v~ = (k - 1) / tr(P) of the ``escalc`` outcomes
  yi/vi of the same data (1/2 added to the cells of studies with a zero
  cell) (Higgins & Thompson 2002, Stat Med 21:1539).
* Prediction interval: estimate -/+ crit * sqrt(SE^2 + tau^2).
* Profile-likelihood CI of tau^2: the tau^2 with
  2 (l_max - max_beta l(beta, tau^2)) = chi^2_1(level); the lower bound is 0
  when the common-effect model lies inside.

Degenerate data
---------------
If every study has 0 events (or every study only events), nothing but a
bound is estimable: the estimate fields are NaN and the result holds the
exact one-sided Clopper-Pearson bound of the pooled proportion (Clopper &
Pearson 1934; for rates the exact Poisson bound, Garwood 1936). With k = 1,
when no study has 0 < events < n, or when tau^2 diverges, the random-effects
model is not identifiable: the estimate fields are NaN and the
common-effect estimate is given in ``common_effect``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .results import CommonEffect, Conventions, Diagnostics, Excluded, GLMMResult, NaturalScale

__all__ = ["fit_glmm", "GLMM_MEASURES", "HIGH_ACCURACY_NAGQ"]

GLMM_MEASURES = ("PLO", "IRLN", "OR")
HIGH_ACCURACY_NAGQ = 41
_METHODS = {"ML": "ML", "EE": "EE", "FE": "EE", "CE": "EE", "GLMM": "ML"}
_TESTS = ("z", "t", "knha")
_EPS = float(np.finfo(float).eps)


# ---------------------------------------------------------------------------
# Distribution helpers (scipy.special: much faster than scipy.stats objects)
# ---------------------------------------------------------------------------
def _z_crit(level: float) -> float:
    return float(-special.ndtri((1 - level) / 2))


def _t_crit(level: float, df: float) -> float:
    return float(special.stdtrit(df, 1 - (1 - level) / 2)) if df > 0 else float("nan")


def _chi2_sf(x: float, df: float) -> float:
    return float(special.chdtrc(df, x)) if df > 0 and np.isfinite(x) else float("nan")


def _chi2_ppf(level: float, df: float) -> float:
    return float(special.chdtri(df, 1 - level))


def _bracketed_step(b, g, step, lo, hi, cap):
    """A Newton step for the conditional modes, capped at ``cap`` and kept inside the bracket
    [lo, hi] that the gradient signs have established (bisection when it would leave it)."""
    pos = g > 0
    lo = np.where(pos, b, lo)
    hi = np.where(pos, hi, b)
    bn = b + np.clip(step, -cap, cap)
    out = ((bn <= lo) | (bn >= hi)) & np.isfinite(lo) & np.isfinite(hi)
    return np.where(out, 0.5 * (lo + hi), bn), lo, hi


# ---------------------------------------------------------------------------
# Gauss-Hermite rules
# ---------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _gh_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_q and log(w_q) + z_q^2 / 2 of the n-point rule for the N(0, 1) density."""
    if n == 1:
        z, w = np.zeros(1), np.ones(1)
    else:
        z, w = np.polynomial.hermite_e.hermegauss(n)
        w = w / w.sum()
    lw = np.log(w) + 0.5 * z**2
    z.flags.writeable = False
    lw.flags.writeable = False
    return z, lw


# ---------------------------------------------------------------------------
# The AGQ marginal log-likelihood with its exact gradient
# ---------------------------------------------------------------------------
# Notation: cell linear predictor eta = eta0 + z * b with eta0 = X gamma + offset,
# b ~ N(0, s), s = tau^2. h(b) = sum_cells loglik(eta) - b^2 / (2 s) - log(2 pi s) / 2;
# mode u: h'(u) = 0; curvature J = -h''(u); sigma = J^(-1/2). With nodes z_q and
# weights w_q of the N(0, 1) rule, b_q = u + sigma z_q and
#   l_i = log sigma - log(s)/2 + log sum_q w_q exp(z_q^2 / 2 + h(b_q) + log(2 pi s) / 2).
# Values exclude the binomial coefficients / log(x!) (added back by the caller).


class _Model1:
    """Single-group model (one cell per study, X = 1): PLO (binomial) or IRLN (Poisson).

    ``evaluate_many`` works on a batch of B parameter points at once (numpy on
    arrays of shape (B, k, nagq)), which makes line searches, finite-difference
    Hessians and two-sided profiles cost about one evaluation each.
    """

    c = 1
    p = 1

    def __init__(self, kind: str, y: np.ndarray, n: np.ndarray, offset: np.ndarray, nagq: int):
        self.kind = kind
        self.y, self.n, self.off = y, n, offset
        self.k = y.size
        self.yq = y[:, None]
        self.nq = n[:, None]
        self.reset_state()
        self.nfev = 0
        self.set_nagq(nagq)

    def set_nagq(self, nagq: int) -> None:
        self.nagq = int(nagq)
        self.zq, self.lwq = _gh_rule(self.nagq)

    def eta0(self, gamma):
        return self.off + float(np.ravel(gamma)[0])

    def glm_moments(self, gamma):
        """Mean and variance of the counts at s = 0."""
        eta = self.eta0(gamma)
        if self.kind == "binomial":
            mu = special.expit(eta)
            m = self.n * mu
            return m, m - m * mu
        m = np.exp(eta)
        return m, m

    # s = 0: the GLM itself
    def _glm(self, gamma, want):
        eta = self.eta0(gamma)
        y = self.y
        if self.kind == "binomial":
            val = float(y @ eta - self.n @ np.logaddexp(0.0, eta))
        else:
            val = float(y @ eta - np.exp(eta).sum())
        if want == "v":
            return val, None, None
        m, v = self.glm_moments(gamma)
        r = y - m
        grad = np.array([r.sum(), 0.5 * float(r @ r - v.sum())])
        if want == "g":
            return val, grad, None
        return val, grad, np.array([[-v.sum(), 0.0], [0.0, 0.0]])

    # warm start of the conditional modes: the modes u at (beta, s) and their derivatives,
    # used to predict the modes at a new point to first order
    def get_state(self):
        return self.state

    def set_state(self, st) -> None:
        self.state = st

    def reset_state(self) -> None:
        self.state = (np.zeros(self.k), None)

    def evaluate(self, gamma, s, want="h"):
        if s <= 0:
            self.nfev += 1
            return self._glm(gamma, want)
        vals, grads, Hs, sts = self.evaluate_many(np.atleast_1d(np.asarray(gamma, float))[None, :],
                                                  np.array([float(s)]), want)
        self.state = sts[0]
        return (float(vals[0]), None if grads is None else grads[0],
                None if Hs is None else Hs[0])

    def evaluate_many(self, G, S, want="h", states=None):
        """Values (B,), gradients (B, 2) and fixed-node Hessians (B, 2, 2) in (beta, s).

        ``states``: warm starts per row (default: the model's own); returns the
        new states as the fourth element.
        """
        self.nfev += 1
        binom = self.kind == "binomial"
        y, n = self.y, self.n
        beta = np.asarray(G, float).reshape(-1)
        S = np.asarray(S, float)
        B = beta.size
        eta0 = self.off + beta[:, None]  # (B, k)
        isb = (1.0 / S)[:, None]  # (B, 1)
        if states is None:
            u, ref = self.state
            if ref is None:
                b = np.repeat(u[None, :], B, axis=0)
            else:  # first-order prediction of the modes
                b0, s0, due, dus = ref
                b = u + (due * (beta - b0)[:, None] + dus * (S - s0)[:, None])
        else:
            b = np.array([st[0] for st in states], dtype=float)
            if all(st[1] is not None for st in states):
                b0 = np.array([st[1][0] for st in states])
                s0 = np.array([st[1][1] for st in states])
                due = np.array([st[1][2] for st in states])
                dus = np.array([st[1][3] for st in states])
                b += due * (beta - b0)[:, None] + dus * (S - s0)[:, None]
            else:
                for i, st in enumerate(states):
                    if st[1] is not None:
                        b0, s0, due, dus = st[1]
                        b[i] += due * (beta[i] - b0) + dus * (S[i] - s0)
        # --- conditional modes: Newton, with caps and bisection when far away
        lo = hi = None
        cap = 4.0 + 2.0 * np.sqrt(S)[:, None]
        for it in range(200):
            eta = eta0 + b
            if binom:
                mu = special.expit(eta)
                m = n * mu
                v = m - m * mu
            else:
                m = np.exp(eta)
                v = m
            g = y - m - b * isb
            J = v + isb
            step = g / J
            amax = np.abs(step).max()
            if amax > 1.0 or (it >= 20 and amax > 1e-7):  # far away: capped steps, bisection
                if lo is None:
                    lo = np.full_like(b, -np.inf)
                    hi = np.full_like(b, np.inf)
                b, lo, hi = _bracketed_step(b, g, step, lo, hi, cap)
            else:  # plain Newton steps (h is strictly concave)
                b = b + step
                if amax < 1e-7:  # the error after this Newton step is of order amax^2
                    # moments at the new modes to first order (error of order amax^2)
                    v3 = v - 2.0 * v * mu if binom else v
                    v = v + v3 * step
                    J = v + isb
                    break
        else:  # pragma: no cover - a concave 1-D problem
            raise FloatingPointError("conditional modes did not converge")
        sig = 1.0 / np.sqrt(J)
        # --- quadrature
        zq = self.zq
        bq = b[:, :, None] + sig[:, :, None] * zq  # (B, k, Q)
        etaq = eta0[:, :, None] + bq
        isb3 = isb[:, :, None]
        bqs = bq * isb3
        if binom:
            llq = self.yq * etaq - self.nq * np.logaddexp(0.0, etaq)
        else:
            eq = np.exp(etaq)
            llq = self.yq * etaq - eq
        la = llq - 0.5 * bq * bqs + self.lwq
        mx = la.max(axis=-1)
        A = np.exp(la - mx[:, :, None])
        Ssum = A.sum(axis=-1)
        vals = (mx + np.log(Ssum) - 0.5 * np.log(J)).sum(axis=-1) - 0.5 * self.k * np.log(S)
        du_deta = -v / J
        du_ds = b * isb * isb / J
        new_states = [(b[i], (beta[i], S[i], du_deta[i], du_ds[i])) for i in range(B)]
        if want == "v":
            return vals, None, None, new_states
        P = A / Ssum[:, :, None]
        if binom:
            muq = special.expit(etaq)
            mq = self.nq * muq
        else:
            mq = eq
        d1q = self.yq - mq
        b2 = bq * bq
        # moments of the quadrature "posterior" P in one reduction each
        if want == "g":
            F = np.stack((d1q, bq, b2))
        else:
            vq = mq - mq * muq if binom else mq
            F = np.stack((d1q, bq, b2, d1q * d1q, vq, d1q * b2, b2 * b2))
        M = (P * F).sum(axis=-1)  # E_P[f], (F, B, k)
        Mz = (P * zq * F[:2]).sum(axis=-1)  # E_P[z d1], E_P[z b]
        part_eta, Eb, Eb2 = M[0], M[1], M[2]
        isb2 = isb * isb
        dl_du = part_eta - Eb * isb  # E_P[h'(b)]
        dl_dsig = 1.0 / sig + Mz[0] - Mz[1] * isb  # 1/sigma + E_P[z h'(b)]
        part_s = 0.5 * isb * (Eb2 * isb - 1.0)  # E_P[dh/ds]
        t1 = dl_dsig * (-0.5 * sig / J)
        g_eta = part_eta + dl_du * du_deta + t1 * (v3 * (1.0 + du_deta))
        g_s = part_s + dl_du * du_ds + t1 * (v3 * du_ds - isb2)
        grads = np.empty((B, 2))
        grads[:, 0] = g_eta.sum(axis=-1)
        grads[:, 1] = g_s.sum(axis=-1)
        if want == "g":
            return vals, grads, None, new_states
        # Louis' identity: E[d2h] + Var[dh] under P, nodes fixed
        H_ee = M[3] - M[4] - part_eta * part_eta
        H_es = 0.5 * isb * (M[5] * isb - part_eta) - part_eta * part_s
        H_ss = (0.25 * isb2 * (M[6] * isb2 - 2.0 * Eb2 * isb + 1.0) - Eb2 * isb2 * isb
                + 0.5 * isb2 - part_s * part_s)
        Hs = np.empty((B, 2, 2))
        Hs[:, 0, 0] = H_ee.sum(axis=-1)
        Hs[:, 0, 1] = Hs[:, 1, 0] = H_es.sum(axis=-1)
        Hs[:, 1, 1] = H_ss.sum(axis=-1)
        return vals, grads, Hs, new_states


class _Binomial:
    name = "binomial"

    @staticmethod
    def ll(y, n, eta):
        return y * eta - n * np.logaddexp(0.0, eta)

    @staticmethod
    def mv(n, eta):
        mu = special.expit(eta)
        m = n * mu
        return m, m * (1.0 - mu)

    @staticmethod
    def mvv(n, eta):
        mu = special.expit(eta)
        m = n * mu
        v = m * (1.0 - mu)
        return m, v, v * (1.0 - 2.0 * mu)


class _Model:
    """General cells: k studies x c cells, eta = X gamma + offset + zc * b_i (binomial).

    Used for the two-group UM.FS model (c = 2, X = [treatment, study dummies]).
    ``X`` has shape (k, c, p), ``zc`` (c,) are the random-effect codes.
    """

    def __init__(self, y, n, X, offset, zc, nagq):
        self.fam = _Binomial
        self.kind = "binomial"
        self.y, self.n, self.X, self.off, self.zc = y, n, X, offset, zc
        self.k, self.c, self.p = X.shape
        self.u = np.zeros(self.k)
        self.nfev = 0
        self.set_nagq(nagq)

    def set_nagq(self, nagq: int) -> None:
        self.nagq = int(nagq)
        self.zq, self.lwq = _gh_rule(self.nagq)

    def get_state(self):
        return self.u.copy()

    def set_state(self, st) -> None:
        self.u = np.array(st, float)

    def reset_state(self) -> None:
        self.u = np.zeros(self.k)

    def eta0(self, gamma):
        return self.off + self.X @ np.asarray(gamma, float)

    def glm_moments(self, gamma):
        m, v = self.fam.mv(self.n, self.eta0(gamma))
        return m @ np.abs(self.zc), v @ (self.zc**2)

    def evaluate_many(self, G, S, want="h", states=None):
        vals, grads, Hs, sts = [], [], [], []
        u0 = self.u.copy()
        for i in range(len(S)):
            self.u = np.array(u0 if states is None else states[i], float)
            v, g, H = self.evaluate(G[i], S[i], want)
            vals.append(v)
            grads.append(g)
            Hs.append(H)
            sts.append(self.u.copy())
        self.u = u0
        return (np.array(vals), None if want == "v" else np.array(grads),
                None if want != "h" else np.array(Hs), sts)

    def _modes(self, eta0, s):
        fam, y, n, zc = self.fam, self.y, self.n, self.zc
        b = self.u.copy()
        b[~np.isfinite(b)] = 0.0
        inv_s = 1.0 / s
        lo = np.full(self.k, -np.inf)
        hi = np.full(self.k, np.inf)
        cap = 4.0 + 2.0 * math.sqrt(s)
        for _ in range(200):
            eta = eta0 + zc * b[:, None]
            m, v = fam.mv(n, eta)
            g = ((y - m) @ zc) - b * inv_s
            step = g / ((v @ (zc * zc)) + inv_s)
            amax = np.abs(step).max()
            if amax > 1e-3:
                b, lo, hi = _bracketed_step(b, g, step, lo, hi, cap)
            else:
                b = b + step
                if amax < 1e-9:
                    break
        else:  # pragma: no cover
            raise FloatingPointError("conditional modes did not converge")
        self.u = b
        return b

    def evaluate(self, gamma, s, want="h"):
        """(loglik, grad in (gamma, s), fixed-node Hessian in (gamma, s))."""
        self.nfev += 1
        gamma = np.asarray(gamma, float)
        if s <= 0:
            return self._glm(gamma, want)
        fam, y, n, zc, zq, lwq = self.fam, self.y, self.n, self.zc, self.zq, self.lwq
        eta0 = self.eta0(gamma)
        b = self._modes(eta0, s)
        inv_s = 1.0 / s
        m, v, v3 = fam.mvv(n, eta0 + zc * b[:, None])
        J = (v @ (zc * zc)) + inv_s
        sig = 1.0 / np.sqrt(J)
        bq = b[:, None] + sig[:, None] * zq  # (k, Q)
        etaq = eta0[:, :, None] + zc[None, :, None] * bq[:, None, :]  # (k, c, Q)
        llq = fam.ll(y[:, :, None], n[:, :, None], etaq).sum(axis=1)
        la = llq - (0.5 * inv_s) * bq * bq + lwq
        mx = la.max(axis=1)
        A = np.exp(la - mx[:, None])
        Ssum = A.sum(axis=1)
        value = float((np.log(sig) + mx + np.log(Ssum)).sum() - 0.5 * self.k * math.log(s))
        if want == "v":
            return value, None, None
        P = A / Ssum[:, None]
        mq, vq = fam.mv(n[:, :, None], etaq)
        d1q = y[:, :, None] - mq  # (k, c, Q)
        hp = np.einsum("c,kcq->kq", zc, d1q) - bq * inv_s
        part_eta = np.einsum("kq,kcq->kc", P, d1q)
        dhs = (0.5 * inv_s * inv_s) * bq * bq - 0.5 * inv_s
        part_s = (P * dhs).sum(axis=1)
        dl_du = (P * hp).sum(axis=1)
        dl_dsig = 1.0 / sig + (P * hp * zq).sum(axis=1)
        du_deta = -(zc * v) / J[:, None]
        du_ds = b * inv_s * inv_s / J
        D = v3 @ (zc**3)
        dJ_deta = (zc * zc) * v3 + D[:, None] * du_deta
        dJ_ds = D * du_ds - inv_s * inv_s
        c32 = -0.5 * sig / J
        g_eta = part_eta + dl_du[:, None] * du_deta + (dl_dsig * c32)[:, None] * dJ_deta
        g_s = float(np.sum(part_s + dl_du * du_ds + dl_dsig * c32 * dJ_ds))
        grad = np.append(np.einsum("kcp,kc->p", self.X, g_eta), g_s)
        if want == "g":
            return value, grad, None
        hss_q = -(inv_s**3) * bq * bq + 0.5 * inv_s * inv_s
        H_ss = float(np.sum((P * (hss_q + dhs * dhs)).sum(axis=1) - part_s * part_s))
        Ev = np.einsum("kq,kcq->kc", P, vq)
        H_ee = np.einsum("kq,kcq,kdq->kcd", P, d1q, d1q) - part_eta[:, :, None] * part_eta[:, None, :]
        idx = np.arange(self.c)
        H_ee[:, idx, idx] -= Ev
        H_es = np.einsum("kq,kcq,kq->kc", P, d1q, dhs) - part_eta * part_s[:, None]
        p = self.p
        H = np.empty((p + 1, p + 1))
        H[:p, :p] = np.einsum("kcp,kcd,kde->pe", self.X, H_ee, self.X)
        H[:p, p] = H[p, :p] = np.einsum("kcp,kc->p", self.X, H_es)
        H[p, p] = H_ss
        return value, grad, H

    def _glm(self, gamma, want):
        fam, y, n, X = self.fam, self.y, self.n, self.X
        eta = self.eta0(gamma)
        value = float(np.sum(fam.ll(y, n, eta)))
        if want == "v":
            return value, None, None
        m, v = fam.mv(n, eta)
        r = y - m
        zr = r @ self.zc
        grad = np.append(np.einsum("kcp,kc->p", X, r),
                         0.5 * float(np.sum(zr * zr - v @ (self.zc**2))))
        if want == "g":
            return value, grad, None
        p = self.p
        H = np.zeros((p + 1, p + 1))
        H[:p, :p] = -np.einsum("kcp,kc,kcd->pd", X, v, X)
        return value, grad, H


# ---------------------------------------------------------------------------
# GLM pieces: common-effect fit and R's glm.fit for the saturated model
# ---------------------------------------------------------------------------
def _glm_newton(model, gamma0, maxiter: int = 100):
    """Common-effect GLM (s = 0) by Newton-Raphson; returns gamma, cov, loglik, iters, ok."""
    gamma = np.array(gamma0, dtype=float)
    ok = False
    it = 0
    val, g, H = model.evaluate(gamma, 0.0, "h")
    for it in range(1, maxiter + 1):
        try:
            step = np.linalg.solve(-H[:-1, :-1], g[:-1])
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
    try:
        cov = np.linalg.inv(-H[:-1, :-1])
    except np.linalg.LinAlgError:
        cov = np.full((gamma.size, gamma.size), np.nan)
    return gamma, cov, val, it, ok


def _r_glm_saturated(kind: str, x, n=None, logt=None):
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
        y = x / n
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


def _wald_homogeneity(theta, var) -> float:
    """Wald test that all theta_i are equal (invariant to the contrasts used)."""
    w = 1.0 / var
    mean = float(w @ theta) / float(w.sum())
    d = theta - mean
    return float(w @ (d * d))


# ---------------------------------------------------------------------------
# Maximisation
# ---------------------------------------------------------------------------
def _inv(A):
    """Inverse of a small symmetric matrix (closed form for 1 x 1 and 2 x 2)."""
    if A.shape == (1, 1):
        return np.array([[1.0 / A[0, 0]]])
    if A.shape == (2, 2):
        a, b, c = A[0, 0], A[0, 1], A[1, 1]
        det = a * c - b * b
        return np.array([[c, -b], [-b, a]]) / det
    return np.linalg.inv(A)


def _eigvalsh(A):
    """Eigenvalues of a small symmetric matrix (closed form for 1 x 1 and 2 x 2)."""
    if A.shape == (1, 1):
        return np.array([A[0, 0]])
    if A.shape == (2, 2):
        a, b, c = A[0, 0], A[0, 1], A[1, 1]
        m, d = 0.5 * (a + c), math.hypot(0.5 * (a - c), b)
        return np.array([m - d, m + d])
    return np.linalg.eigvalsh(A)


def _to_psi(g, H, s):
    """Gradient/Hessian in (gamma, s) -> (gamma, psi = log s)."""
    if g.size == 2:
        g0, g1 = g[0], g[1]
        g2 = np.array([g0, s * g1])
        if H is None:
            return g2, None
        h01 = s * H[0, 1]
        return g2, np.array([[H[0, 0], h01], [h01, s * s * H[1, 1] + s * g1]])
    g2 = g.copy()
    g2[-1] = s * g[-1]
    if H is None:
        return g2, None
    H2 = H.copy()
    H2[-1, :-1] *= s
    H2[:-1, -1] *= s
    H2[-1, -1] = s * s * H[-1, -1] + s * g[-1]
    return g2, H2


def _newton_dir(g, H):
    """Ascent direction solving (-H) d = g; (d, True) if -H is positive definite, else (None, False)."""
    m = g.size
    if m == 1:
        h = -H[0, 0]
        return (np.array([g[0] / h]), True) if h > 0 else (None, False)
    if m == 2:
        a, b, c = -H[0, 0], -H[0, 1], -H[1, 1]
        det = a * c - b * b
        if a <= 0 or det <= 0:
            return None, False
        return np.array([(c * g[0] - b * g[1]) / det, (a * g[1] - b * g[0]) / det]), True
    try:
        L = np.linalg.cholesky(-H)
    except np.linalg.LinAlgError:
        return None, False
    return np.linalg.solve(L.T, np.linalg.solve(L, g)), True


def _fallback_dir(g, H):
    """Ascent direction from an indefinite Hessian (eigenvalues replaced by their moduli)."""
    w, V = np.linalg.eigh(-H)
    w = np.maximum(np.abs(w), 1e-6 * max(1.0, float(np.max(np.abs(w)))))
    return V @ ((V.T @ g) / w)


class _Objective:
    """l(gamma, psi = log tau^2) (``fixed_s`` None) or l(gamma | tau^2 = fixed_s)."""

    def __init__(self, model, fixed_s: float | None = None):
        self.model, self.fixed_s = model, fixed_s

    def _points(self, Th):
        Th = np.atleast_2d(Th)
        if self.fixed_s is None:
            return Th[:, :-1], np.exp(Th[:, -1])
        return Th, np.full(Th.shape[0], self.fixed_s)

    def _convert(self, g, H, s):
        if self.fixed_s is None:
            return _to_psi(g, H, s)
        return g[:-1], (None if H is None else H[:-1, :-1])

    def __call__(self, theta, want="h"):
        G, S = self._points(theta)
        val, g, H = self.model.evaluate(G[0], S[0], want)
        if want == "v":
            return val, None, None
        return (val, *self._convert(g, H, S[0]))

    def many(self, Th, want="h", keep=None, states=None):
        """Evaluate several points; the mode warm start moves to row ``keep`` (if given)."""
        G, S = self._points(Th)
        model = self.model
        vals, grads, Hs, sts = model.evaluate_many(G, S, want, states)
        if keep is not None:
            model.set_state(sts[keep])
        out = []
        for i in range(len(S)):
            g, H = ((None, None) if grads is None else
                    self._convert(grads[i], None if Hs is None else Hs[i], S[i]))
            out.append((float(vals[i]), g, H, sts[i]))
        return out

    @staticmethod
    def _fd_points(theta):
        m = theta.size
        h = 1e-5 * np.maximum(1.0, np.abs(theta))
        Th = np.repeat(theta[None, :], 2 * m, axis=0)
        idx = np.arange(m)
        Th[2 * idx, idx] += h
        Th[2 * idx + 1, idx] -= h
        return Th, h

    @staticmethod
    def _fd_assemble(res, h):
        m = h.size
        H = np.empty((m, m))
        for j in range(m):
            H[:, j] = (res[2 * j][1] - res[2 * j + 1][1]) / (2 * h[j])
        return 0.5 * (H + H.T)

    def fd_hessian(self, theta):
        """Central differences of the exact gradient (all points started from the same modes)."""
        Th, h = self._fd_points(theta)
        return self._fd_assemble(self.many(Th, "g"), h)

    def with_fd(self, theta):
        """Value, gradient and fixed-node Hessian at theta plus the central-difference Hessian,
        in one batched evaluation."""
        Th, h = self._fd_points(theta)
        res = self.many(np.vstack([theta[None, :], Th]), "h", keep=0)
        val, g, H, _ = res[0]
        return val, g, H, self._fd_assemble(res[1:], h)


def _maximize(obj: _Objective, theta0, caps, maxiter=100, gtol=1e-9, psi_min=None, psi_max=None,
              near=1e-3, step_tol=1e-7, always_fd=False):
    """Safeguarded Newton ascent with the exact gradient.

    Far from the optimum the fixed-node Hessian is used while it predicts the
    change of the exact gradient well, otherwise the Hessian from central
    differences of the exact gradient (in one dimension the secant slope).
    Once the steps are small (< ``near``) each new point is evaluated together
    with its central-difference Hessian (one batched evaluation), so the last
    steps are exact Newton steps and the Hessian at the optimum comes for free.
    Converged: max |gradient| < gtol * sqrt(1 + |l|), or an exact Newton step
    below ``step_tol``. Steps are limited per coordinate by ``caps`` and
    accepted by an Armijo rule; near the optimum, where the log-likelihood no
    longer changes in double precision, a step must reduce the gradient
    instead. ``psi_min``/``psi_max`` stop the search at tau^2 -> 0 (status
    "boundary") or tau^2 -> infinity ("diverged").
    Returns dict(theta, value, grad, H_exact (or None), iterations, status, fd_used).
    """
    theta = np.array(theta0, float)
    m = theta.size
    if always_fd:  # batched models: every point with its central-difference Hessian
        near = np.inf
        val, g, H, H_ex = obj.with_fd(theta)
    else:
        val, g, H = obj(theta, "h")
        H_ex = None  # central-difference Hessian at theta, when known
    status = "maxiter"
    fd_used = 0
    it = 0
    mode = "approx"
    H_alt = None

    def result(st):
        return dict(theta=theta, value=val, grad=g, H_exact=H_ex, iterations=it, status=st,
                    fd_used=fd_used)

    for it in range(1, maxiter + 1):
        if H_ex is not None:
            H = H_ex
        elif mode == "fd":
            H = H_ex = obj.fd_hessian(theta)
            fd_used += 1
        elif mode == "secant":
            H = H_alt
        d, pd = _newton_dir(g, H)
        if not pd and H_ex is None:
            H = H_ex = obj.fd_hessian(theta)
            fd_used += 1
            d, pd = _newton_dir(g, H)
        if not pd:
            d = _fallback_dir(g, H)
        elif H_ex is not None and np.abs(d).max() < step_tol * (1 + np.abs(theta).max()):
            # an exact Newton step this small: take it without another evaluation (the error
            # after it is of the order of its square); value, gradient and Hessian are those
            # at the last evaluated point
            theta = theta + d
            status = "converged"
            break
        ad = np.abs(d)
        sc = float(np.min(np.where(ad > caps, caps / np.maximum(ad, 1e-300), 1.0)))
        d = d * sc
        gd = float(g @ d)
        noise = 1e-12 * (1 + abs(val))
        gnorm = float(np.abs(g).max())

        def acceptable(nval, ng, t):
            if not np.isfinite(nval):
                return False
            if nval >= val + 1e-4 * t * gd:
                return True
            return nval >= val - noise and float(np.abs(ng).max()) < gnorm

        new = theta + d
        if psi_min is not None and new[-1] < psi_min:
            return result("boundary")
        if psi_max is not None and new[-1] > psi_max:
            return result("diverged")
        t = 1.0
        nH_ex = None
        if pd and np.abs(d).max() < near:
            nval, ng, nH, nH_ex = obj.with_fd(new)
            fd_used += 1
        else:
            nval, ng, nH = obj(new, "h")
        ok = acceptable(nval, ng, 1.0)
        if not ok:
            nH_ex = None
            ts = 0.5 ** np.arange(1, 5)
            while ts[-1] >= 1e-10 and not ok:
                res = obj.many(theta[None, :] + ts[:, None] * d[None, :], "h")
                for j, (nv, ngj, nHj, Uj) in enumerate(res):
                    if acceptable(nv, ngj, ts[j]):
                        ok, t = True, float(ts[j])
                        nval, ng, nH = nv, ngj, nHj
                        new = theta + t * d
                        obj.model.set_state(Uj)
                        break
                ts = ts * 0.0625
        if not ok:
            if mode == "approx" and H_ex is None:
                mode = "fd"
                continue
            status = "line search failed"
            break
        step = t * d
        poor = float(np.abs(ng - (g + H @ step)).max()) > 0.3 * float(np.abs(ng - g).max())
        if m == 1:
            y = float(ng[0] - g[0])
            H_alt = np.array([[y / step[0]]]) if step[0] != 0 and y / step[0] < 0 else None
        theta, val, g, H, H_ex = new, nval, ng, nH, nH_ex
        gmax = float(np.abs(g).max())
        if gmax < gtol * (1 + abs(val)) ** 0.5:
            status = "converged"
            break
        if np.abs(step).max() < 1e-13 * (1 + np.abs(theta).max()):
            status = "converged" if gmax < 1e-6 * (1 + abs(val)) ** 0.5 else "stalled"
            break
        if poor or t < 0.5:
            mode = "secant" if (m == 1 and H_alt is not None) else "fd"
        else:
            mode = "approx"
    return result(status)


def _inner_max(model, gamma, s):
    """Maximise over gamma at fixed s; returns gamma, value, grad(gamma, s)."""
    obj = _Objective(model, s)
    r = _maximize(obj, np.asarray(gamma, float), np.full(np.size(gamma), 3.0), maxiter=60,
                  gtol=1e-10, always_fd=isinstance(model, _Model1))
    gamma = r["theta"]
    val, g, _ = model.evaluate(gamma, s, "g")
    return gamma, val, g


def _profile_bound(model, side: int, gamma0, psi_ref, psi0, ref_value, q, psi_lim, maxiter=60):
    """Robust search for l_p(psi) = ref_value - q/2 on one side of the MLE (nested maximisation).

    l_p(psi) = max_gamma l(gamma, psi = log tau^2). Safeguarded Newton on the
    signed root f(psi) = side * sqrt(2 (ref - l_p)) - side * sqrt(q) (increasing
    in psi, nearly linear) with d l_p / d psi from the envelope theorem;
    ``psi_ref`` (the MLE) is one end of the bracket. Returns (psi, converged, message).
    """
    target = side * math.sqrt(q)
    lo, hi = (psi_ref, np.inf) if side > 0 else (-np.inf, psi_ref)
    gamma = np.array(gamma0, float)
    psi = float(psi0)
    prev = None
    for _ in range(maxiter):
        s = math.exp(psi)
        gamma, lp, g = _inner_max(model, gamma, s)
        slope = s * g[-1]
        r = side * math.sqrt(2 * max(ref_value - lp, 0.0))
        f = r - target
        if f < 0:
            lo = max(lo, psi)
        else:
            hi = min(hi, psi)
        if abs(f) < 1e-8 or (prev is not None and abs(psi - prev) < 1e-10):
            return psi, True, ""
        new = psi - f * r / slope if (r != 0 and slope != 0) else psi + (2.0 if f < 0 else -2.0)
        if not np.isfinite(new):
            new = psi + (2.0 if f < 0 else -2.0)
        new = max(psi - 2.0, min(psi + 2.0, new))
        if np.isfinite(lo) and np.isfinite(hi) and not (lo < new < hi):
            new = 0.5 * (lo + hi)
        elif not (lo < new < hi):
            new = psi + (2.0 if f < 0 else -2.0)
        if (side > 0 and new > psi_lim) or (side < 0 and new < psi_lim):
            if psi == psi_lim:
                word = "up to" if side > 0 else "down to"
                return psi_lim, False, (f"the profile does not reach the cutoff {word} "
                                        f"tau^2 = {math.exp(psi_lim):.3g}")
            new = psi_lim
        prev = psi
        psi = new
    return psi, False, "did not converge"


def _profile_row(val, grad, Hs, s, p, value, side, q, in_psi=False):
    """Profile quantities at one point: one Newton step in gamma (quadratic approximation).

    Returns (f, r, slope, dg, path) with l_p ~ l + g'dg/2, slope = d l_p / d psi,
    r the signed root and f = r - side sqrt(q); None if the gamma-Hessian is not
    negative definite.
    """
    g, H = (grad, Hs) if in_psi else _to_psi(grad, Hs, s)
    A = -H[:p, :p]
    if p == 1:
        if not A[0, 0] > 0:
            return None
        dg = g[:1] / A[0, 0]
        pth = H[:1, 1] / A[0, 0]
    else:
        try:
            L = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            return None
        dg = np.linalg.solve(L.T, np.linalg.solve(L, g[:p]))
        pth = np.linalg.solve(L.T, np.linalg.solve(L, H[:p, p]))
    lp = val + 0.5 * float(g[:p] @ dg)
    slope = g[p] + float(H[p, :p] @ dg)
    r = side * math.sqrt(2 * max(value - lp, 0.0))
    return r - side * math.sqrt(q), r, slope, dg, pth


def _profile_joint(model, value, q, grids, st0, psi_ref, maxiter=12):
    """Profile bounds: Newton on (gamma, psi) for [dl/dgamma = 0, r(psi) = side sqrt(q)].

    ``grids``: {side: (psi values, gamma values)} of a first batched
    evaluation; at each grid point gamma is profiled by one Newton step and
    the signed root r(psi) = side sqrt(2 (value - l_p)) is computed; a
    parabola through the three grid points around the crossing (or a Newton
    step from the nearest one) gives the start of the Newton iterations. These
    use central-difference Hessians (batched models) or the fixed-node Hessian
    and evaluate the sides together. Returns {side: psi} for the sides that
    converged (the caller falls back to ``_profile_bound`` for the others).
    """
    p = next(iter(grids.values()))[1].shape[1]
    rows = [(sd, ps, gm) for sd, (pss, gms) in grids.items() for ps, gm in zip(pss, gms)]
    G = np.array([gm for _, _, gm in rows])
    S = np.exp(np.array([ps for _, ps, _ in rows]))
    vals, grads, Hs, sts = model.evaluate_many(G, S, "h", [st0] * len(rows))
    Psi, Gam, U = {}, {}, {}
    sides = list(grids)
    for sd in sides:
        idx = [j for j, row in enumerate(rows) if row[0] == sd]
        pr = [_profile_row(vals[j], grads[j], Hs[j], S[j], p, value, sd, q) for j in idx]
        ok = [(j, t) for j, t in zip(idx, pr) if t is not None]
        if not ok:
            j = idx[len(idx) // 2]
            Psi[sd], Gam[sd], U[sd] = rows[j][1], G[j], st0
            continue
        # grid point nearest the crossing, and a Newton step from it
        jn = min(range(len(ok)), key=lambda i: abs(ok[i][1][0]))
        j0, (f0, r0, sl0, dg0, pth0) = ok[jn]
        ps0 = rows[j0][1]
        new = ps0 + (f0 * r0 / sl0 if (r0 != 0 and sl0 != 0) else 0.0)
        # cubic Hermite interpolation of f(psi) (values and slopes f' = -slope / r)
        # between the two grid points that bracket the crossing
        pts = sorted((rows[j][1], t[0], (-t[2] / t[1]) if t[1] != 0 else np.nan) for j, t in ok)
        for (xa, fa, da), (xb, fb, db) in zip(pts[:-1], pts[1:]):
            if fa <= 0 <= fb and np.isfinite(da) and np.isfinite(db):
                h = xb - xa
                x = xa - fa * h / (fb - fa) if fb != fa else xa
                for _ in range(8):
                    t = (x - xa) / h
                    h00, h10 = (1 + 2 * t) * (1 - t) ** 2, t * (1 - t) ** 2
                    h01, h11 = t * t * (3 - 2 * t), t * t * (t - 1)
                    fx = h00 * fa + h10 * h * da + h01 * fb + h11 * h * db
                    dfx = ((6 * t * t - 6 * t) * fa + (3 * t * t - 4 * t + 1) * h * da
                           + (6 * t - 6 * t * t) * fb + (3 * t * t - 2 * t) * h * db) / h
                    if dfx <= 0:
                        break
                    x = min(max(x - fx / dfx, xa), xb)
                new = x
                break
        dpsi = max(-1.5, min(1.5, new - ps0))
        Psi[sd] = ps0 + dpsi
        Gam[sd] = G[j0] + dg0 + pth0 * dpsi
        U[sd] = sts[j0]
    done: dict[int, float] = {}
    failed: set[int] = set()
    exact = isinstance(model, _Model1)  # batched: use central-difference Hessians
    obj = _Objective(model)
    for _ in range(maxiter):
        act = [sd for sd in sides if sd not in done and sd not in failed]
        if not act:
            break
        if exact:
            blocks, hs = [], []
            for sd in act:
                th = np.append(Gam[sd], Psi[sd])
                Th, h = obj._fd_points(th)
                blocks.append(np.vstack([th[None, :], Th]))
                hs.append(h)
            nb = blocks[0].shape[0]
            res = obj.many(np.vstack(blocks), "h",
                           states=[U[sd] for sd in act for _ in range(nb)])
            rows_ = []
            for j, sd in enumerate(act):
                val, g, _, stj = res[j * nb]
                Hx = obj._fd_assemble(res[j * nb + 1:(j + 1) * nb], hs[j])
                rows_.append((val, g, Hx, stj))
        else:
            G = np.array([Gam[sd] for sd in act])
            S = np.exp(np.array([Psi[sd] for sd in act]))
            vals, grads, Hs, Un = model.evaluate_many(G, S, "h", [U[sd] for sd in act])
            rows_ = []
            for j in range(len(act)):
                g, H = _to_psi(grads[j], Hs[j], S[j])
                rows_.append((vals[j], g, H, Un[j]))
        for j, sd in enumerate(act):
            pr = _profile_row(rows_[j][0], rows_[j][1], rows_[j][2], 1.0, p, value, sd, q,
                              in_psi=True)
            if pr is None:
                failed.add(sd)
                continue
            f, r, slope, dg, pth = pr
            if r == 0 or -slope / r <= 0:
                failed.add(sd)
                continue
            dpsi = max(-1.5, min(1.5, f * r / slope))
            if abs(f) < 1e-3 and np.abs(dg).max() < 1e-2:
                done[sd] = Psi[sd] + dpsi  # the last Newton step; its error is of order f^2
                continue
            Gam[sd] = Gam[sd] + dg + pth * dpsi
            Psi[sd] = Psi[sd] + dpsi
            U[sd] = rows_[j][3]
            if abs(Psi[sd]) > 46 or sd * (Psi[sd] - psi_ref) <= 0:
                failed.add(sd)
    return done


# ---------------------------------------------------------------------------
# Exact bounds for degenerate data
# ---------------------------------------------------------------------------
def _clopper_pearson_upper(x: float, n: float, level: float) -> float:
    """One-sided upper confidence bound of a binomial proportion (Clopper & Pearson 1934)."""
    if x >= n:
        return 1.0
    return float(special.betaincinv(x + 1, n - x, level))


def _clopper_pearson_lower(x: float, n: float, level: float) -> float:
    """One-sided lower confidence bound of a binomial proportion (Clopper & Pearson 1934)."""
    if x <= 0:
        return 0.0
    return float(special.betaincinv(x, n - x + 1, 1 - level))


def _poisson_upper(x: float, t: float, level: float) -> float:
    """One-sided upper confidence bound of a Poisson rate x / t (Garwood 1936)."""
    return float(special.chdtri(2 * (x + 1), 1 - level) / (2 * t))


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------
def _ro(a) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flags.writeable = False
    return a


def _vt(vi) -> float:
    """Typical within-study variance (k - 1) / tr(P) (Higgins & Thompson 2002)."""
    w = 1.0 / vi
    if vi.size < 2:
        return float("nan")
    sw = float(w.sum())
    return float((vi.size - 1) / (sw - float(w @ w) / sw))


#: the most quadrature nodes accepted: estimates stop changing near 41 ("high"), and beyond a
#: few hundred nodes the smallest Gauss-Hermite weights underflow to zero
MAX_NAGQ = 100


def _resolve_nagq(nagq) -> int:
    if isinstance(nagq, str):
        if nagq.lower() in ("high", "accurate"):
            return HIGH_ACCURACY_NAGQ
        raise ValueError(f"nagq must be a positive integer or 'high', got {nagq!r}")
    try:
        ok = not isinstance(nagq, bool) and float(nagq).is_integer() and 1 <= int(nagq) <= MAX_NAGQ
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"nagq must be an integer from 1 to {MAX_NAGQ} or 'high' "
                         f"({HIGH_ACCURACY_NAGQ} nodes, beyond which estimates no longer change), "
                         f"got {nagq!r}")
    return int(nagq)


def fit_glmm(events: ArrayLike, total: ArrayLike | None = None, *, time: ArrayLike | None = None,
             measure: str = "PLO", method: str = "ML", nagq: int | str = 7, test: str = "z",
             level: float = 0.95, labels: ArrayLike | None = None,
             events2: ArrayLike | None = None, total2: ArrayLike | None = None,
             model: str = "UM.FS", tau2_ci: bool = True, subgroup: ArrayLike | None = None,
             tau2_common: bool = False) -> GLMMResult:
    """Fit a binomial-normal / Poisson-normal model by maximum likelihood (metafor ``rma.glmm``).

    Parameters
    ----------
    events, total
        Event counts and patients per study (``PLO``); for ``OR`` the counts
        of the first (treatment) group, with ``events2``/``total2`` for the
        second (control) group (metafor's ai, n1i, ci, n2i).
    time
        Person-time per study (``IRLN``).
    measure
        ``"PLO"`` (logit proportion; binomial-normal), ``"IRLN"`` (log rate;
        Poisson-normal) or ``"OR"`` (log odds ratio; ``model="UM.FS"``).
    method
        ``"ML"`` (random effects, tau^2 by maximum likelihood) or ``"EE"``
        (common effect, tau^2 = 0; aliases ``"FE"``, ``"CE"``).
    nagq
        Number of adaptive Gauss-Hermite nodes (7 as lme4/metafor; 1 is the
        Laplace approximation) or ``"high"`` (41 nodes).
    test
        ``"z"``, or ``"t"``/``"knha"``: the same SE with a t(k-1) reference
        distribution (metafor's ``test="t"``; meta's Hartung-Knapp option for
        GLMMs; no variance rescaling).
    level
        Confidence level of the CIs (also of the profile CI of tau^2).
    tau2_ci
        Compute the profile-likelihood CI of tau^2 (on by default; metafor's
        rma.glmm computes none).
    subgroup
        A subgroup label per study: the same GLMM is also fitted in each
        subgroup (``result.subgroups``, ``result.subgroup_test``), each with
        its own tau^2 (``tau2_common=True`` is refused: it needs a GLMM with
        moderators).

    Returns
    -------
    GLMMResult
        ``q`` is the Wald-type heterogeneity test QE_Wld; typed fields hold the
        likelihood-ratio test, the profile-likelihood CI of tau^2, the number
        of nodes, log-likelihoods and any report on degenerate data.
    """
    measure = str(measure).upper()
    method = str(method).upper()
    test = str(test).lower()
    if measure not in GLMM_MEASURES:
        raise ValueError(f"measure {measure!r} is not available for GLMMs; expected one of "
                         f"{', '.join(GLMM_MEASURES)}")
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected 'ML' or 'EE' (aliases FE, CE)")
    method = _METHODS[method]
    if test not in _TESTS:
        raise ValueError(f"test {test!r} is not available for GLMMs; expected one of "
                         f"{', '.join(_TESTS)}")
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level:g}")
    nq = _resolve_nagq(nagq)
    if measure == "OR" and model != "UM.FS":
        raise NotImplementedError(f"model={model!r} is not implemented; use model='UM.FS' "
                                  "(fixed study effects, random treatment effect)")
    if subgroup is not None and tau2_common:
        raise ValueError("tau2_common=True is not available for the GLMM (a common tau^2 across "
                         "subgroups needs a GLMM with moderators); use tau2_common=False")
    data = _prepare(measure, events, total, time, events2, total2, labels)
    res = _fit(data, measure, method, nq, test, level, bool(tau2_ci))
    if subgroup is None:
        return res
    from .subgroups import subgroup_analysis

    return subgroup_analysis(res, subgroup).attach()


def _arr(name, x):
    if x is None:
        raise ValueError(f"{name} is required for this measure")
    a = np.atleast_1d(np.asarray(x, dtype=float))
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise ValueError(f"{name} is missing or not finite in study {bad[0] + 1}")
    return a


def _counts(name, a):
    bad = np.flatnonzero((a < 0) | (a != np.round(a)))
    if bad.size:
        raise ValueError(f"{name} must be a non-negative integer; study {bad[0] + 1} has {a[bad[0]]:g}")


def _sizes(name, a):
    bad = np.flatnonzero((a <= 0) | (a != np.round(a)))
    if bad.size:
        raise ValueError(f"{name} must be a positive integer; study {bad[0] + 1} has {a[bad[0]]:g}")


def _prepare(measure, events, total, time, events2, total2, labels):
    from .effects import effect_size

    x = _arr("events", events)
    k_all = x.size
    if k_all == 0:
        raise ValueError("no study to pool")
    lab_all = (tuple(str(i + 1) for i in range(k_all)) if labels is None
               else tuple(str(v) for v in np.atleast_1d(labels)))
    if len(lab_all) != k_all:
        raise ValueError("labels must have one entry per study")
    _counts("events", x)
    d: dict[str, Any] = {"excluded": []}
    if measure in ("PLO", "IRLN"):
        if measure == "PLO":
            n = _arr("total", total)
            if n.size != k_all:
                raise ValueError("events and total must have the same length")
            _sizes("total", n)
            bad = np.flatnonzero(x > n)
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"events > total in study {i + 1} ({x[i]:g} > {n[i]:g})")
            es = effect_size("PLO", events=x, total=n)
            mdl = ("binomial", x, n, np.zeros(k_all))
        else:
            n = _arr("time", time)
            if n.size != k_all:
                raise ValueError("events and time must have the same length")
            bad = np.flatnonzero(n <= 0)
            if bad.size:
                raise ValueError(f"time must be positive; study {bad[0] + 1} has {n[bad[0]]:g}")
            es = effect_size("IRLN", events=x, time=n)
            mdl = ("poisson", x, n, np.log(n))
        d.update(kind=mdl[0], mdl=mdl, es=es, labels=lab_all, x=x, tot=n, n_report=n, k=k_all,
                 positions=np.arange(k_all))
        return d
    # OR, UM.FS
    n1 = _arr("total", total)
    c = _arr("events2", events2)
    n2 = _arr("total2", total2)
    if not (n1.size == c.size == n2.size == k_all):
        raise ValueError("events, total, events2 and total2 must have the same length")
    _counts("events2", c)
    _sizes("total", n1)
    _sizes("total2", n2)
    for a, nn, nm in ((x, n1, "events > total"), (c, n2, "events2 > total2")):
        bad = np.flatnonzero(a > nn)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{nm} in study {i + 1} ({a[i]:g} > {nn[i]:g})")
    both = ((x == 0) & (c == 0)) | ((x == n1) & (c == n2))
    for i in np.flatnonzero(both):
        what = "no events" if x[i] == 0 else "only events"
        d["excluded"].append(Excluded(lab_all[i], f"{what} in both groups: no information on "
                                      "the odds ratio (dropped, as metafor's drop00=TRUE)"))
    keep = ~both
    x, n1, c, n2 = x[keep], n1[keep], c[keep], n2[keep]
    lab = tuple(lb for lb, kp in zip(lab_all, keep) if kp)
    k = x.size
    if k == 0:
        raise ValueError("no study with information on the odds ratio (every study has no "
                         "events, or only events, in both groups)")
    X = np.zeros((k, 2, k + 1))
    X[:, 0, 0] = 1.0
    for i in range(k):
        X[i, :, i + 1] = 1.0
    es = effect_size("OR", events1=x, total1=n1, events2=c, total2=n2)
    d.update(kind="binomial2", y=np.column_stack([x, c]), n=np.column_stack([n1, n2]), X=X,
             es=es, labels=lab, x=x, tot=n1, x2=c, tot2=n2, n_report=n1 + n2, k=k,
             positions=np.flatnonzero(keep))
    return d


def _degenerate(d, measure, level, extra) -> str | None:
    """Describe data from which no model is estimable (and put exact bounds in ``extra``)."""
    k = d["k"]
    studies = "the only study has" if k == 1 else f"all {k} studies have"
    if measure == "PLO":
        x, tot = d["x"], d["tot"]
        X_sum, N_sum = float(x.sum()), float(tot.sum())
        if X_sum == 0:
            extra.update(exact_upper_bound=_clopper_pearson_upper(0, N_sum, level),
                         exact_lower_bound=0.0,
                         bound_kind=(f"one-sided {100 * level:g}% Clopper-Pearson upper bound of "
                                     f"the pooled proportion (0 events in {N_sum:g}), valid for a "
                                     "common proportion"))
            return f"{studies} 0 events"
        if X_sum == N_sum:
            extra.update(exact_lower_bound=_clopper_pearson_lower(N_sum, N_sum, level),
                         exact_upper_bound=1.0,
                         bound_kind=(f"one-sided {100 * level:g}% Clopper-Pearson lower bound of "
                                     f"the pooled proportion ({N_sum:g} events in {N_sum:g}), "
                                     "valid for a common proportion"))
            return f"{studies} only events (events = total)"
        return None
    if measure == "IRLN":
        x, tot = d["x"], d["tot"]
        if x.sum() == 0:
            T = float(tot.sum())
            extra.update(exact_upper_bound=_poisson_upper(0, T, level), exact_lower_bound=0.0,
                         bound_kind=(f"one-sided {100 * level:g}% exact Poisson (Garwood) upper "
                                     f"bound of the pooled rate (0 events in {T:g} units of "
                                     "person-time), valid for a common rate"))
            return f"{studies} 0 events"
        return None
    x, n1, c, n2 = d["x"], d["tot"], d["x2"], d["tot2"]
    for arr, nn, grp in ((x, n1, "first"), (c, n2, "second")):
        if np.all(arr == 0) or np.all(arr == nn):
            what = "no events" if np.all(arr == 0) else "only events"
            return (f"the {grp} group has {what} in every study: the maximum-likelihood odds "
                    "ratio is 0 or infinite")
    return None


def _fit(d, measure, method, nq, test, level, want_ci) -> GLMMResult:
    k = d["k"]
    es = d["es"]
    nan = float("nan")
    warns: list[str] = []
    messages: list[str] = []
    extra: dict[str, Any] = {"nagq": nq, "model": "UM.FS" if measure == "OR" else None,
                             "measure": measure}

    why = _degenerate(d, measure, level, extra)
    if why is not None:
        warns.append(f"random-effects model not identifiable: {why}" if method == "ML" else
                     f"common-effect model not estimable: {why}")
        if "bound_kind" in extra:
            which = "upper" if " upper bound" in extra["bound_kind"] else "lower"
            warns.append(f"reported instead: {extra['bound_kind']} = "
                         f"{extra['exact_' + which + '_bound']:.6g}")
        extra["degenerate"] = why
        return _nan_result(d, measure, method, test, level, nq, warns, messages, extra, want_ci)

    two = measure == "OR"
    if two:
        model_ = _Model(d["y"], d["n"], d["X"], np.zeros((k, 2)), np.array([0.5, -0.5]), nq)
        x, n1, c, n2 = d["x"], d["tot"], d["x2"], d["tot2"]
        p1 = (x + 0.5) / (n1 + 1)
        p2 = (c + 0.5) / (n2 + 1)
        lo1, lo2 = np.log(p1 / (1 - p1)), np.log(p2 / (1 - p2))
        g_ee, cov_ee, ll_ee, it_ee, ok_ee = _glm_newton(model_, np.append(np.mean(lo1 - lo2), lo2))
        informative = int(np.sum((x > 0) & (x < n1) & (c > 0) & (c < n2)))
        const = float(np.sum(special.gammaln(d["n"] + 1) - special.gammaln(d["y"] + 1)
                             - special.gammaln(d["n"] - d["y"] + 1)))
    else:
        kind, x, tt, off = d["mdl"]
        model_ = _Model1(kind, x, tt, off, nq)
        X_sum, T_sum = float(x.sum()), float(tt.sum())
        # common-effect GLM in closed form: logit(sum x / sum n) or log(sum x / sum t)
        if kind == "binomial":
            beta_ee = math.log(X_sum / (T_sum - X_sum))
            info = X_sum * (T_sum - X_sum) / T_sum
            informative = int(np.sum((x > 0) & (x < tt)))
            const = float(np.sum(special.gammaln(tt + 1) - special.gammaln(x + 1)
                                 - special.gammaln(tt - x + 1)))
        else:
            beta_ee = math.log(X_sum / T_sum)
            info = X_sum
            informative = int(np.sum(x > 0))
            const = float(-np.sum(special.gammaln(x + 1)))
        g_ee = np.array([beta_ee])
        cov_ee = np.array([[1.0 / info]])
        ll_ee = model_.evaluate(g_ee, 0.0, "v")[0]
        it_ee, ok_ee = 0, True
    ll_ee_full = ll_ee + const
    beta_ee = float(g_ee[0])
    se_ee = math.sqrt(cov_ee[0, 0]) if cov_ee[0, 0] > 0 else nan

    # ----- saturated model and heterogeneity tests (as metafor) ---------------
    QE_W = QE_L = QEp_W = QEp_L = nan
    q_df = k - 1
    if k > 1:
        if two:
            eta1, var1, ll1 = _r_glm_saturated("binomial", x, n1)
            eta2, var2, ll2 = _r_glm_saturated("binomial", c, n2)
            ll_sat = ll1 + ll2
            QE_W = _wald_homogeneity(eta1 - eta2, var1 + var2)
        elif kind == "binomial":
            eta_s, var_s, ll_sat = _r_glm_saturated("binomial", x, tt)
            QE_W = _wald_homogeneity(eta_s, var_s)
        else:
            eta_s, var_s, ll_sat = _r_glm_saturated("poisson", x, None, off)
            QE_W = _wald_homogeneity(eta_s, var_s)
        QE_W = max(QE_W, 0.0)
        QE_L = max(-2.0 * (ll_ee_full - ll_sat), 0.0)
        QEp_W, QEp_L = _chi2_sf(QE_W, q_df), _chi2_sf(QE_L, q_df)
        extra["loglik_saturated"] = ll_sat
        if informative < 2:
            what = {"PLO": "0 < events < total", "IRLN": "events", "OR": "no zero cell"}[measure]
            warns.append(f"heterogeneity tests uninformative: only {informative} "
                         f"stud{'y has' if informative == 1 else 'ies have'} {what}")
    extra.update(QE_Wld=QE_W, QEp_Wld=QEp_W, QE_LRT=QE_L, QEp_LRT=QEp_L,
                 QE_df=q_df if k > 1 else None, loglik_EE=ll_ee_full)

    # ----- I^2 from the escalc outcomes -------------------------------------
    yi_all, vi_all = np.asarray(es.yi, float), np.asarray(es.vi, float)
    okv = np.isfinite(yi_all) & np.isfinite(vi_all)
    vt = _vt(vi_all[okv])

    # ----- model fit ------------------------------------------------------------
    tau2 = 0.0
    beta, se = beta_ee, se_ee
    iterations, converged, at_boundary = it_ee, ok_ee, False
    se_tau2 = t_lb = t_ub = nan
    if method == "EE":
        algorithm = ("Newton-Raphson (common-effect GLM)" if two else
                     "closed form (common-effect GLM: pooled counts)")
        extra.update(loglik=ll_ee_full)
    else:
        algorithm = (f"Newton-Raphson on the AGQ log-likelihood (nagq = {nq}) with its exact "
                     "gradient")
        not_ident = None
        if k == 1:
            not_ident = "k = 1 (tau^2 cannot be estimated from one study)"
        elif measure == "PLO" and informative == 0:
            not_ident = ("no study has 0 < events < total (the likelihood increases without "
                         "bound as tau^2 grows)")
        res = None
        if not_ident is None:
            res = _fit_ml(model_, g_ee, ll_ee, level, want_ci)
            if res["diverged"]:
                not_ident = res["message"]
        if not_ident is not None:
            warns.append(f"random-effects model not identifiable: {not_ident}")
            ce = _common_effect_dict(measure, beta_ee, se_ee, level, d)
            extra["common_effect"] = ce
            warns.append("reported instead: the common-effect (GLM) estimate in "
                         f"common_effect = {ce['estimate']:.6g} (SE {ce['se']:.6g})")
            extra["degenerate"] = not_ident
            return _nan_result(d, measure, method, test, level, nq, warns, messages, extra,
                               want_ci, q=(QE_W, q_df, QEp_W), vt=vt)
        tau2 = res["tau2"]
        beta = float(res["gamma"][0])
        se = res["se"]
        iterations, converged, at_boundary = res["iterations"], res["converged"], res["boundary"]
        se_tau2 = res["se_tau2"]
        t_lb, t_ub = res["tau2_ci"]
        messages.extend(res["messages"])
        warns.extend(res["warnings"])
        extra.update(loglik=res["value"] + const, gradient_max=res["grad_max"],
                     hessian_eigenvalues=res["hess_eig"])
        if want_ci:
            extra.update(tau2_profile_ci=(t_lb, t_ub),
                         tau2_ci_kind=(f"profile likelihood, {100 * level:g}%: "
                                       f"2 (l_max - l_p(tau^2)) <= chi2_1 quantile "
                                       f"{_chi2_ppf(level, 1):.4f}"))
        if not converged:
            warns.append("ML fit did not converge: " + (res["message"] or "see diagnostics"))
    extra["nfev"] = getattr(model_, "nfev", 0)

    # ----- inference ------------------------------------------------------------
    stat = beta / se if se > 0 else nan
    if test == "z":
        df = None
        crit = _z_crit(level)
        pval = float(2 * special.ndtr(-abs(stat)))
    else:
        df = float(k - 1)
        crit = _t_crit(level, df)
        pval = float(2 * special.stdtr(df, -abs(stat))) if df > 0 else nan
    ci_lb, ci_ub = beta - crit * se, beta + crit * se
    pi_se = math.sqrt(se * se + tau2) if np.isfinite(se) else nan
    pi_lb, pi_ub = (nan, nan) if method == "EE" else (beta - crit * pi_se, beta + crit * pi_se)
    i_lb = i_ub = h_lb = h_ub = nan
    if method == "ML" and np.isfinite(vt):
        i2, h2 = 100 * tau2 / (vt + tau2), 1 + tau2 / vt
        if np.isfinite(t_lb):
            i_lb, h_lb = 100 * t_lb / (vt + t_lb), 1 + t_lb / vt
        if t_ub == np.inf:
            i_ub, h_ub = 100.0, np.inf
        elif np.isfinite(t_ub):
            i_ub, h_ub = 100 * t_ub / (vt + t_ub), 1 + t_ub / vt
    else:
        i2, h2 = 0.0, 1.0
    if k == 1:
        warns.append("k = 1: no heterogeneity can be estimated")
        if test != "z":
            warns.append(f"k = 1: {test} inference has 0 degrees of freedom; no CI or p-value")

    natural = _natural(measure, beta, ci_lb, ci_ub, pi_lb, pi_ub)
    if k > 1:
        extra["QE_LRT_text"] = (f"likelihood-ratio test of heterogeneity QE_LRT({q_df}) = "
                                f"{QE_L:.4f}, p = {QEp_L:.4g}")
        messages.append(extra["QE_LRT_text"])
    if method == "ML":
        if want_ci:
            messages.append(f"tau^2 {100 * level:g}% profile-likelihood CI [{t_lb:.6g}, {t_ub:.6g}]")
        messages.append(f"adaptive Gauss-Hermite quadrature with nagq = {nq} nodes")

    lab_d = tuple(lb for lb, kp in zip(d["labels"], okv) if kp)
    w = 1.0 / (vi_all[okv] + tau2)
    extra["weights_definition"] = _WEIGHTS_TEXT
    return _make_result(
        measure=measure, method=method, test=test, level=level, k=k, estimate=float(beta),
        se=float(se), statistic=float(stat), pvalue=float(pval), ci_lb=float(ci_lb),
        ci_ub=float(ci_ub), df=df, tau2=float(tau2), se_tau2=float(se_tau2),
        tau2_ci_lb=float(t_lb), tau2_ci_ub=float(t_ub), i2=float(i2), i2_ci_lb=float(i_lb),
        i2_ci_ub=float(i_ub), h2=float(h2), h2_ci_lb=float(h_lb), h2_ci_ub=float(h_ub),
        q=float(QE_W), q_df=int(q_df), q_pvalue=float(QEp_W), pi_lb=float(pi_lb),
        pi_ub=float(pi_ub), pi_se=float(pi_se), vt=float(vt), s2w=1.0, s2w_knha=nan,
        se_model=float(se), labels=lab_d, yi=_ro(yi_all[okv]), vi=_ro(vi_all[okv]),
        weights=_ro(100 * w / w.sum()), n=_ro(np.asarray(d["n_report"], float)[okv]),
        conventions=_conventions(measure, method, nq, test, es, want_ci),
        diagnostics=Diagnostics(bool(converged), int(iterations), bool(at_boundary), algorithm,
                                tuple(messages)),
        excluded=tuple(d["excluded"]), natural=natural, warnings=tuple(warns),
        corrected=None if es.corrected is None else np.asarray(es.corrected)[okv],
        kept=d["positions"][okv], **_typed(extra, d, okv, want_ci),
    )


#: keys of the fit's working dictionary -> fields of GLMMResult
_TYPED_KEYS = {"nagq": "nagq", "model": "or_model", "QE_Wld": "qe_wald", "QEp_Wld": "qe_wald_pvalue",
               "QE_LRT": "qe_lrt", "QEp_LRT": "qe_lrt_pvalue", "QE_df": "qe_df",
               "QE_LRT_text": "qe_lrt_text", "loglik": "loglik", "loglik_EE": "loglik_ee",
               "loglik_saturated": "loglik_saturated", "tau2_ci_kind": "tau2_ci_kind",
               "gradient_max": "gradient_max", "hessian_eigenvalues": "hessian_eigenvalues",
               "nfev": "nfev", "degenerate": "degenerate", "exact_lower_bound": "exact_lower_bound",
               "exact_upper_bound": "exact_upper_bound", "bound_kind": "bound_kind",
               "weights_definition": "weights_definition"}


def _typed(extra: dict[str, Any], d, okv, want_ci: bool) -> dict[str, Any]:
    """Typed GLMMResult fields from the fit's working values, with the counts for refit."""
    out = {_TYPED_KEYS[k]: v for k, v in extra.items() if k in _TYPED_KEYS}
    ce = extra.get("common_effect")
    if ce is not None:
        out["common_effect"] = CommonEffect(**ce)
    counts = ({"events": d["x"], "total": d["tot"], "events2": d["x2"], "total2": d["tot2"]}
              if d["kind"] == "binomial2" else
              {"events": d["x"], "total": d["tot"]} if d["kind"] == "binomial" else
              {"events": d["x"], "time": d["tot"]})
    out.update({k: _ro(np.asarray(v, float)[okv]) for k, v in counts.items()})
    out["tau2_ci_computed"] = bool(want_ci)
    return out


def _make_result(**kw) -> GLMMResult:
    """Build the GLMMResult, passing only the fields it defines."""
    global _RESULT_FIELDS
    if _RESULT_FIELDS is None:
        import dataclasses

        _RESULT_FIELDS = frozenset(f.name for f in dataclasses.fields(GLMMResult))
    return GLMMResult(**{k: v for k, v in kw.items() if k in _RESULT_FIELDS})


_RESULT_FIELDS = None


_WEIGHTS_TEXT = ("weights: 1/(vi + tau^2) of the escalc outcomes, normalised to 100%, for display "
                 "only (metafor defines no weights for rma.glmm; the GLMM weights studies through "
                 "the exact likelihood)")


def _start_grid(obj: _Objective, theta0, steps=(-1.5, -0.75, 0.0, 0.75, 1.5, 2.25)):
    """Starting point for Newton: the best of a batch of log tau^2 values around ``theta0``.

    At each log tau^2 of the grid beta is profiled by one Newton step (quadratic
    approximation from the fixed-node Hessian); a parabola through the best
    grid point and its neighbours gives log tau^2. One batched evaluation.
    """
    psi = theta0[-1] + np.asarray(steps)
    Th = np.repeat(theta0[None, :], psi.size, axis=0)
    Th[:, -1] = psi
    res = obj.many(Th, "h")
    lp = np.full(psi.size, -np.inf)
    gam = np.repeat(theta0[None, :-1], psi.size, axis=0)
    for i, (val, g, H, _) in enumerate(res):
        a = -H[0, 0]
        if np.isfinite(val) and a > 0:
            lp[i] = val + 0.5 * g[0] * g[0] / a
            gam[i, 0] += g[0] / a
    i = int(np.argmax(lp))
    if not np.isfinite(lp[i]):
        return theta0
    new = np.append(gam[i], psi[i])
    if 0 < i < psi.size - 1 and np.all(np.isfinite(lp[i - 1:i + 2])):
        y0, y1, y2 = lp[i - 1], lp[i], lp[i + 1]
        h = psi[i + 1] - psi[i]
        den = y0 - 2 * y1 + y2
        if den < 0:
            off = 0.5 * h * (y0 - y2) / den
            new[-1] = psi[i] + max(-h, min(h, off))
            w = max(-1.0, min(1.0, off / h))
            j = i + 1 if w > 0 else i - 1
            new[:-1] = gam[i] + abs(w) * (gam[j] - gam[i])
    obj.model.set_state(res[i][3])
    return new


def _fit_ml(model, g_ee, ll_ee, level, want_ci):
    """Random-effects ML: boundary check, Newton, Hessian, profile CI of tau^2."""
    msgs: list[str] = []
    warns: list[str] = []
    p = g_ee.size
    nan = float("nan")
    # score for s = tau^2 at s = 0 and the common-effect estimate
    S0 = float(model.evaluate(g_ee, 0.0, "g")[1][-1])
    res = None
    boundary = S0 <= 0
    if not boundary:
        # start: one scoring step from s = 0, s0 = S0 / (1/2 sum_i v_i^2)
        _, v = model.glm_moments(g_ee)
        info = 0.5 * float(v @ v)
        s0 = min(max(S0 / info, 0.01), 10.0) if info > 0 else 0.1
        model.reset_state()
        obj = _Objective(model)
        caps = np.append(np.full(p, 3.0), 2.0)
        theta0 = np.append(g_ee, math.log(s0))
        if isinstance(model, _Model1):
            theta0 = _start_grid(obj, theta0)
        res = _maximize(obj, theta0, caps, maxiter=200,
                        psi_min=math.log(1e-20), psi_max=math.log(1e8))
        if res["status"] == "diverged":
            return dict(diverged=True, message="tau^2 -> infinity (the likelihood increases "
                                               "without bound as tau^2 grows)")
        if res["status"] == "boundary" or res["value"] <= ll_ee:
            boundary = True
            msgs.append("the likelihood is maximised at tau^2 = 0")
    else:
        msgs.append(f"score for tau^2 at tau^2 = 0 is {S0:.4g} <= 0: the maximum is at tau^2 = 0")
    q = _chi2_ppf(level, 1)
    t_lb = t_ub = nan
    if boundary:
        gamma, s, value = g_ee.copy(), 0.0, ll_ee
        iterations = 0 if res is None else res["iterations"]
        status = "converged"
        _, grad, H0 = model.evaluate(gamma, 0.0, "h")  # the GLM Hessian is exact
        Hg = H0[:p, :p]
        gmax = float(np.abs(grad[:p]).max())
        eig = _eigvalsh(-Hg)
        cov = _inv(-Hg)
        se = float(math.sqrt(cov[0, 0]))
        se_tau2 = nan
        msgs.append("tau^2 = 0 (boundary): SE from the Hessian of the common-effect likelihood")
        if want_ci:
            model.reset_state()
            pss = np.log(np.array([0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]))
            done = _profile_joint(model, ll_ee, q, {1: (pss, np.repeat(gamma[None, :], pss.size, 0))},
                                  model.get_state(), -np.inf)
            if 1 in done:
                psi_u, ok_u, m_u = done[1], True, ""
            else:
                model.reset_state()
                psi_u, ok_u, m_u = _profile_bound(model, +1, gamma, -np.inf, math.log(0.5), ll_ee,
                                                  q, math.log(1e6))
            t_lb = 0.0
            t_ub = math.exp(psi_u) if ok_u else float("inf")
            if not ok_u:
                warns.append(f"upper profile-likelihood bound of tau^2 not found ({m_u}); "
                             "reported as inf")
    else:
        theta = res["theta"]
        gamma, s, value = theta[:-1].copy(), math.exp(theta[-1]), res["value"]
        iterations, status = res["iterations"], res["status"]
        obj = _Objective(model)
        Hfd = res["H_exact"] if res["H_exact"] is not None else obj.fd_hessian(theta)
        grad = res["grad"]
        gmax = float(np.abs(grad).max())
        eig = _eigvalsh(-Hfd)
        if np.min(eig) <= 0:
            status = "Hessian of the deviance is not positive definite"
            cov = np.full_like(Hfd, np.nan)
        else:
            cov = _inv(-Hfd)
        se = float(math.sqrt(cov[0, 0])) if cov[0, 0] > 0 else nan
        se_tau2 = float(s * math.sqrt(cov[-1, -1])) if cov[-1, -1] > 0 else nan
        if status == "converged" and gmax > 1e-6 * (1 + abs(value)) ** 0.5:
            status = f"gradient not zero (max |g| = {gmax:.3g})"
        if want_ci and np.min(eig) > 0:
            t_lb, t_ub = _tau2_profile_ci(model, gamma, theta[-1], value, ll_ee, Hfd, q, warns)
    converged = status == "converged" and bool(np.min(eig) > 0)
    coords = "beta" if p == 1 else "(beta, study effects)"
    if not boundary:
        coords = coords[:-1] + ", log tau^2)" if p > 1 else "(beta, log tau^2)"
    msgs.insert(0, f"max |gradient| = {gmax:.2e} in {coords}; Hessian of the deviance "
                   f"{'positive definite' if np.min(eig) > 0 else 'NOT positive definite'} "
                   f"(smallest eigenvalue {np.min(eig):.3g})")
    if res is not None and res.get("fd_used"):
        msgs.append(f"finite-difference Hessian used in {res['fd_used']} Newton step(s)")
    return dict(gamma=gamma, tau2=float(s), value=float(value), se=se, se_tau2=se_tau2,
                iterations=int(iterations), converged=converged, boundary=boundary,
                message="" if converged else status, messages=msgs, warnings=warns,
                tau2_ci=(t_lb, t_ub), grad_max=gmax, hess_eig=tuple(float(e) for e in eig),
                diverged=False)


def _tau2_profile_ci(model, gamma, psi_hat, value, ll_ee, Hpsi, q, warns):
    """Profile-likelihood CI of tau^2 at an interior maximum."""
    st_opt = model.get_state()
    lower_zero = value - ll_ee <= q / 2  # the common-effect model lies inside the region
    cov = _inv(-Hpsi)
    se_psi = math.sqrt(cov[-1, -1]) if cov[-1, -1] > 0 else 1.0
    p = gamma.size
    path = _inv(-Hpsi[:p, :p]) @ Hpsi[:p, p]
    step0 = min(math.sqrt(q) * se_psi, 3.0)
    grids = {}
    for sd in ((1,) if lower_zero else (-1, 1)):
        pss = psi_hat + sd * step0 * np.array([0.8, 1.0, 1.25])
        grids[sd] = (pss, gamma[None, :] + np.outer(pss - psi_hat, path))
    done = _profile_joint(model, value, q, grids, st_opt, psi_hat)
    if lower_zero:
        t_lb = 0.0  # the common-effect model (tau^2 = 0) lies inside the region
    elif -1 in done:
        t_lb = math.exp(done[-1])
    else:
        model.set_state(st_opt)
        start = psi_hat - min(math.sqrt(q) * se_psi, 3.0)
        psi_l, ok_l, m_l = _profile_bound(model, -1, gamma, psi_hat, start, value, q, psi_hat - 40.0)
        t_lb = math.exp(psi_l) if ok_l else float("nan")
        if not ok_l:
            warns.append(f"lower profile-likelihood bound of tau^2 not found ({m_l})")
    if 1 in done:
        t_ub = math.exp(done[1])
    else:
        model.set_state(st_opt)
        start = psi_hat + min(math.sqrt(q) * se_psi, 3.0)
        psi_u, ok_u, m_u = _profile_bound(model, +1, gamma, psi_hat, start, value, q,
                                          max(math.log(1e6), psi_hat + 5))
        t_ub = math.exp(psi_u) if ok_u else float("inf")
        if not ok_u:
            warns.append(f"upper profile-likelihood bound of tau^2 not found ({m_u}); "
                         "reported as inf")
    model.set_state(st_opt)
    return t_lb, t_ub


def _common_effect_dict(measure, beta, se, level, d):
    zc = _z_crit(level)
    out = {"estimate": beta, "se": se, "ci_lb": beta - zc * se, "ci_ub": beta + zc * se,
           "kind": "common-effect GLM (tau^2 = 0), analysis scale"}
    if measure == "PLO" and d["x"].size == 1:
        x, n = float(d["x"][0]), float(d["tot"][0])
        a = (1 - level) / 2
        out["exact_ci"] = (_clopper_pearson_lower(x, n, 1 - a), _clopper_pearson_upper(x, n, 1 - a))
        out["exact_ci_kind"] = f"two-sided {100 * level:g}% Clopper-Pearson CI of the proportion"
    return out


_NATURAL = {"PLO": ("proportion", "inverse logit"), "IRLN": ("rate", "exp"),
            "OR": ("odds ratio", "exp")}


def _natural(measure, beta, ci_lb, ci_ub, pi_lb, pi_ub) -> NaturalScale:
    scale, name = _NATURAL[measure]
    f = special.expit if measure == "PLO" else np.exp
    vals = [float(f(v)) if np.isfinite(v) else float("nan") for v in (beta, ci_lb, ci_ub, pi_lb, pi_ub)]
    return NaturalScale(scale, vals[0], vals[1], vals[2], vals[3], vals[4], name)


def _conventions(measure, method, nq, test, es, want_ci) -> Conventions:
    est = (f"GLMM (ML, AGQ nagq={nq})" if method == "ML" else
           "GLMM (EE: common-effect GLM, tau^2 = 0)")
    if measure == "OR":
        est += ", model UM.FS (fixed study effects, random treatment effect)"
    ncorr = int(np.sum(es.corrected)) if es.corrected is not None else 0
    if method != "ML":
        tci = "none (common-effect model)"
    elif want_ci:
        tci = "profile likelihood (chi^2_1 quantile), computed on the exact GLMM likelihood"
    else:
        tci = "not computed (tau2_ci=False)"
    return Conventions(
        tau2_estimator=est,
        test=("z" if test == "z" else f"{test}: t(k-1) with the ML standard error (no rescaling; "
                                      "metafor test='t', meta's Hartung-Knapp option for GLMMs)"),
        i2_definition=("metafor rma.glmm: I^2 = tau^2 / (tau^2 + v~), v~ = (k-1)/tr(P) of the "
                       "escalc yi/vi (1/2 added to zero cells)"),
        prediction_interval=("none (common-effect model)" if method == "EE" else
                             "metafor predict(): estimate -/+ crit * sqrt(SE^2 + tau^2)"),
        tau2_ci=tci,
        correction=(f"none in the model (exact likelihood); yi/vi for display and v~: add 1/2 to "
                    f"zero cells ({ncorr} of {es.k} studies corrected); " + _WEIGHTS_TEXT),
        back_transform=_NATURAL[measure][1],
    )


def _nan_result(d, measure, method, test, level, nq, warns, messages, extra, want_ci, q=None,
                vt=float("nan")) -> GLMMResult:
    """A result with NaN where nothing is estimable (degenerate data, unidentifiable model)."""
    nan = float("nan")
    k = d["k"]
    es = d["es"]
    yi_all, vi_all = np.asarray(es.yi, float), np.asarray(es.vi, float)
    okv = np.isfinite(yi_all) & np.isfinite(vi_all)
    lab_d = tuple(lb for lb, kp in zip(d["labels"], okv) if kp)
    w = 1.0 / vi_all[okv]
    natural = None
    if "exact_upper_bound" in extra:
        natural = NaturalScale(_NATURAL[measure][0], nan, float(extra["exact_lower_bound"]),
                               float(extra["exact_upper_bound"]), nan, nan,
                               "none: no model fitted; CI = " + extra["bound_kind"])
    qv, qdf, qp = q if q is not None else (nan, max(k - 1, 0), nan)
    extra["weights_definition"] = "1/vi of the escalc outcomes, normalised to 100% (display only)"
    return _make_result(
        measure=measure, method=method, test=test, level=level, k=k, estimate=nan, se=nan,
        statistic=nan, pvalue=nan, ci_lb=nan, ci_ub=nan, df=None if test == "z" else float(k - 1),
        tau2=nan, se_tau2=nan, tau2_ci_lb=nan, tau2_ci_ub=nan, i2=nan, i2_ci_lb=nan, i2_ci_ub=nan,
        h2=nan, h2_ci_lb=nan, h2_ci_ub=nan, q=float(qv), q_df=int(qdf), q_pvalue=float(qp),
        pi_lb=nan, pi_ub=nan, pi_se=nan, vt=float(vt), s2w=1.0, s2w_knha=nan, se_model=nan,
        labels=lab_d, yi=_ro(yi_all[okv]), vi=_ro(vi_all[okv]),
        weights=_ro(100 * w / w.sum() if w.size else w),
        n=_ro(np.asarray(d["n_report"], float)[okv]),
        conventions=_conventions(measure, method, nq, test, es, False),
        diagnostics=Diagnostics(False, 0, False, "not fitted: model not identifiable",
                                tuple(messages)),
        excluded=tuple(d["excluded"]), natural=natural, warnings=tuple(warns),
        corrected=None if es.corrected is None else np.asarray(es.corrected)[okv],
        kept=d["positions"][okv], **_typed(extra, d, okv, want_ci),
    )
