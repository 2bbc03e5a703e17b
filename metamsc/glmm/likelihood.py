"""The marginal (AGQ) log-likelihood of every GLMM of metamsc.glmm, with its exact gradient.

One class, :class:`QuadratureLikelihood`, serves every model: k studies with c cells each
(c = 1: one proportion or rate per study; c = 2: the two groups of a comparative study), a
binomial, Poisson or (conditional on the margins of a 2x2 table) noncentral hypergeometric
family (an exponential family in the log odds ratio; McCullagh & Nelder 1989, section 7.3),
a linear predictor

    eta_ic = offset_ic + x_ic' gamma_common [+ alpha_i] + z_c b_i,   b_i ~ N(0, s), s = tau^2,

with ``alpha_i`` optional fixed study effects and ``z_c`` the codes of the random effect
(1 for one group; +1/2 and -1/2 for the two groups of metafor's UM.FS model).

Notation: h(b) = sum_c loglik_c(eta) - b^2 / (2 s) - log(2 pi s) / 2; mode u with h'(u) = 0;
curvature J = -h''(u); sigma = J^(-1/2). With the nodes z_q and weights w_q of the N(0, 1)
rule, b_q = u + sigma z_q and

    l_i = log sigma - log(s) / 2 + log sum_q w_q exp(z_q^2 / 2 + h(b_q) + log(2 pi s) / 2)

(Liu & Pierce 1994, Biometrika 81:624; Pinheiro & Bates 1995, J Comput Graph Stat 4:12).
Values exclude the binomial coefficients / log(x!) (the caller adds them back).

The gradient is exact: it includes the dependence of the mode and the curvature on the
parameters (implicit function theorem). The Hessian returned is that of the log of the
quadrature sum with the nodes held fixed (Louis' identity for the quadrature "posterior").
Every evaluation works on a batch of B parameter points at once (arrays of shape
(B, k, c, Q)); the cost is linear in k for each point. With fixed study effects the Hessian is
returned in its arrowhead form (:class:`.arrow.Arrow`), never as a (k + 2) x (k + 2) matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from .arrow import Arrow
from .quadrature import bracketed_step, gh_rule

__all__ = ["QuadratureLikelihood"]

FAMILIES = ("binomial", "poisson", "nchg")


class QuadratureLikelihood:
    """AGQ log-likelihood l(gamma, s) of a binomial-, Poisson- or noncentral-hypergeometric-normal
    GLMM (see the module).

    Parameters
    ----------
    family
        ``"binomial"`` (``y`` events of ``n``), ``"poisson"`` (``y`` events; ``n`` unused,
        the exposure enters through ``offset``) or ``"nchg"`` (``y`` events in group 1 given
        the total; Fisher's noncentral hypergeometric distribution with log odds ratio eta,
        ``support`` from :func:`nchg_support`).
    y, n, offset
        Arrays of shape (k, c).
    X
        Common columns of the design, shape (k, c, pc).
    zc
        Codes of the random effect per cell, shape (c,).
    study_effects
        Add a fixed effect per study (coded 1 in each of its cells) after the common columns.
    nagq
        Number of quadrature nodes (1: the Laplace approximation).
    """

    def __init__(self, family: str, y, n, offset, X, zc, study_effects: bool, nagq: int,
                 support=None):
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
        self.kind = family
        self.binom = family == "binomial"
        self.nchg = family == "nchg"
        if self.nchg:  # support u and log weights log C(n1, u) + log C(n2, m1 - u), (k, S)
            self.sup, self.logw = support
        self.y = np.asarray(y, float)
        self.n = np.asarray(n, float)
        self.off = np.asarray(offset, float)
        self.X = np.asarray(X, float)
        self.zc = np.asarray(zc, float)
        self.zc2 = self.zc * self.zc
        self.zc3 = self.zc2 * self.zc
        self.k, self.c, self.pc = self.X.shape
        self.study_effects = bool(study_effects)
        self.p = self.pc + (self.k if self.study_effects else 0)
        self.yq = self.y[:, :, None]
        self.nq = self.n[:, :, None]
        self.nfev = 0
        self.reset_state()
        self.set_nagq(nagq)

    # ----- set-up ------------------------------------------------------------------------
    def set_nagq(self, nagq: int) -> None:
        self.nagq = int(nagq)
        self.zq, self.lwq = gh_rule(self.nagq)

    def get_state(self):
        """Warm start of the conditional modes: the modes at the last point and their
        first-order derivatives (to predict the modes at a new point)."""
        return self.state

    def set_state(self, st) -> None:
        self.state = st

    def reset_state(self) -> None:
        self.state = (np.zeros(self.k), None)

    # ----- the design ----------------------------------------------------------------------
    def _linear(self, G) -> np.ndarray:
        """X gamma (without the offset) for a batch G of shape (B, p): shape (B, k, c)."""
        out = G[:, 0, None, None] * self.X[None, :, :, 0]
        for j in range(1, self.pc):
            out = out + G[:, j, None, None] * self.X[None, :, :, j]
        if self.study_effects:
            out = out + G[:, self.pc:, None]
        return out

    def eta0(self, G) -> np.ndarray:
        """Linear predictor without the random effect, shape (B, k, c)."""
        if self.pc == 1 and not self.study_effects:
            return self.off + G[:, 0, None, None] * self.X[None, :, :, 0]
        return self.off + self._linear(G)

    def _reduce(self, A) -> np.ndarray:
        """X' A for per-cell values A of shape (B, k, c): shape (B, p)."""
        cols = [(A * self.X[None, :, :, j]).sum(axis=-1).sum(axis=-1) for j in range(self.pc)]
        out = np.stack(cols, axis=1)
        if self.study_effects:
            out = np.concatenate([out, A.sum(axis=-1)], axis=1)
        return out

    def _quadratic(self, H) -> np.ndarray:
        """X_c' H X_c over the common columns for per-study blocks H of shape (B, k, c, c):
        shape (B, pc, pc) (= X' H X without study effects; with them see :meth:`_arrows`)."""
        X = self.X
        pc = self.pc
        out = np.zeros((H.shape[0], pc, pc))
        for j in range(pc):
            xj = X[None, :, :, j, None]
            for m in range(j, pc):
                v = (xj * H * X[None, :, None, :, m]).sum(axis=(-1, -2)).sum(axis=-1)
                out[:, j, m] = out[:, m, j] = v
        return out

    def _arrows(self, H_ee, H_es, H_ss) -> list[Arrow]:
        """The Hessians in (common effects, study effects, s) as arrowhead matrices, one per
        point: blocks H_ee (B, k, c, c), H_es (B, k, c) and H_ss (B, k) per study."""
        B, pc, k = H_ee.shape[0], self.pc, self.k
        A = np.zeros((B, pc + 1, pc + 1))
        A[:, :pc, :pc] = self._quadratic(H_ee)
        C = np.empty((B, k, pc + 1))
        for j in range(pc):
            C[:, :, j] = (self.X[None, :, :, j, None] * H_ee).sum(axis=(-1, -2))
            A[:, j, pc] = A[:, pc, j] = (H_es * self.X[None, :, :, j]).sum(axis=-1).sum(axis=-1)
        C[:, :, pc] = H_es.sum(axis=-1)
        A[:, pc, pc] = H_ss.sum(axis=-1)
        d = H_ee.sum(axis=(-1, -2))
        return [Arrow(A[i], C[i], d[i], pc) for i in range(B)]

    def _parts(self, g_eta, g_s) -> np.ndarray:
        """Per-study contributions to the gradient in the shared parameters (common effects,
        s), shape (B, k, pc + 1) (the finite-difference Hessian of the study effects needs them)."""
        cols = [(g_eta * self.X[None, :, :, j]).sum(axis=-1) for j in range(self.pc)]
        return np.stack(cols + [g_s], axis=-1)

    # ----- family ------------------------------------------------------------------------
    def nchg_cumulants(self, eta):
        """log normaliser K, mean, variance and third central moment of Fisher's noncentral
        hypergeometric distribution with log odds ratio eta (one study per row of the support)."""
        kaxis = 0 if eta.ndim == 2 else 1  # eta is (k, c), (B, k, c) or (B, k, c, Q)
        shape = (self.k,) + (1,) * (eta.ndim - 1 - kaxis) + (-1,)
        sup, logw = self.sup.reshape(shape), self.logw.reshape(shape)
        t = logw + sup * eta[..., None]
        mx = t.max(axis=-1)
        e = np.exp(t - mx[..., None])
        Z = e.sum(axis=-1)
        P = e / Z[..., None]
        m = (P * sup).sum(axis=-1)
        dev = sup - m[..., None]
        dev2 = dev * dev
        return mx + np.log(Z), m, (P * dev2).sum(axis=-1), (P * dev2 * dev).sum(axis=-1)

    def _loglik(self, eta):
        """Per-cell log-likelihood without constants."""
        if self.binom:
            return self.y * eta - self.n * np.logaddexp(0.0, eta)
        if self.nchg:
            return self.y * eta - self.nchg_cumulants(eta)[0]
        return self.y * eta - np.exp(eta)

    def _moments(self, n, eta):
        """Mean m, variance v and (binomial: mu; nchg: the third cumulant) at eta."""
        if self.nchg:
            _, m, v, v3 = self.nchg_cumulants(eta)
            return m, v, v3
        if self.binom:
            mu = special.expit(eta)
            m = n * mu
            return m, m - m * mu, mu
        m = np.exp(eta)
        return m, m, None

    def glm_moments(self, gamma):
        """Mean and variance of the random-effect score at s = 0, per study."""
        m, v, _ = self._moments(self.n, self.eta0(np.atleast_2d(gamma))[0])
        return (m * np.abs(self.zc)).sum(axis=-1), (v * self.zc2).sum(axis=-1)

    # ----- s = 0: the GLM itself -------------------------------------------------------------
    def _glm(self, gamma, want):
        eta = self.eta0(np.asarray(gamma, float)[None, :])[0]
        y = self.y
        val = 0.0
        for c in range(self.c):
            if self.binom:
                vc = y[:, c] @ eta[:, c] - self.n[:, c] @ np.logaddexp(0.0, eta[:, c])
            elif self.nchg:
                vc = float(np.sum(self._loglik(eta)[:, c]))
            else:
                vc = y[:, c] @ eta[:, c] - np.exp(eta[:, c]).sum()
            val = vc if c == 0 else val + vc
        val = float(val)
        if want == "v":
            return val, None, None
        m, v, _ = self._moments(self.n, eta)
        r = y - m
        zr = (r * self.zc).sum(axis=-1)
        grad = np.append(self._reduce(r[None])[0],
                         0.5 * float(zr @ zr - (v * self.zc2).sum(axis=-1).sum()))
        if want == "g":
            return val, grad, None
        p = self.p
        c = np.arange(self.c)
        Vd = np.zeros((1, self.k, self.c, self.c))
        Vd[0, :, c, c] = v.T
        if self.study_effects:
            zero = np.zeros((1, self.k, self.c))
            return val, grad, -self._arrows(Vd, zero, zero[..., 0])[0]
        H = np.zeros((p + 1, p + 1))
        H[:p, :p] = -self._quadratic(Vd)[0]
        return val, grad, H

    # ----- evaluation ------------------------------------------------------------------------
    def evaluate(self, gamma, s, want="h"):
        """(l, gradient in (gamma, s), fixed-node Hessian in (gamma, s)) at one point."""
        if s <= 0:
            self.nfev += 1
            return self._glm(gamma, want)
        vals, grads, Hs, sts = self.evaluate_many(
            np.atleast_1d(np.asarray(gamma, float))[None, :], np.array([float(s)]), want)
        self.state = sts[0]
        return (float(vals[0]), None if grads is None else grads[0],
                None if Hs is None else Hs[0])

    def _start_modes(self, G, S, states) -> np.ndarray:
        """Modes predicted to first order from the warm start(s)."""
        B = S.size
        if states is None:
            u, ref = self.state
            if ref is None:
                return np.repeat(u[None, :], B, axis=0)
            g0, s0, due, dus = ref
            d_eta = self._linear(G - g0[None, :])
            return u + ((due * d_eta).sum(axis=-1) + dus * (S - s0)[:, None])
        b = np.array([st[0] for st in states], dtype=float)
        for i, st in enumerate(states):
            if st[1] is not None:
                g0, s0, due, dus = st[1]
                d_eta = self._linear((G[i] - g0)[None, :])[0]
                b[i] += (due * d_eta).sum(axis=-1) + dus * (S[i] - s0)
        return b

    def _modes(self, eta0, b, isb, S):
        """Conditional modes by Newton (caps and bisection when far away). Returns the modes,
        the curvature J, the per-cell variance v and its derivative v3 at the modes."""
        zc, zc2, n, y = self.zc, self.zc2, self.n, self.y
        lo = hi = None
        cap = 4.0 + 2.0 * np.sqrt(S)[:, None]
        for it in range(200):
            eta = eta0 + b[:, :, None] * zc
            m, v, mu = self._moments(n, eta)
            g = ((y - m) * zc).sum(axis=-1) - b * isb
            J = (v * zc2).sum(axis=-1) + isb
            step = g / J
            amax = np.abs(step).max()
            if amax > 1.0 or (it >= 20 and amax > 1e-7):  # far away: capped steps, bisection
                if lo is None:
                    lo = np.full_like(b, -np.inf)
                    hi = np.full_like(b, np.inf)
                b, lo, hi = bracketed_step(b, g, step, lo, hi, cap)
            else:  # plain Newton steps (h is strictly concave)
                b = b + step
                if amax < 1e-7:  # the error after this Newton step is of order amax^2
                    # moments at the new modes to first order (error of order amax^2)
                    v3 = v - 2.0 * v * mu if self.binom else mu if self.nchg else v
                    v = v + v3 * (step[:, :, None] * zc)
                    J = (v * zc2).sum(axis=-1) + isb
                    return b, J, v, v3
        raise FloatingPointError("conditional modes did not converge")  # pragma: no cover

    def evaluate_many(self, G, S, want="h", states=None, parts=False):
        """Values (B,), gradients (B, p + 1) and fixed-node Hessians (B, p + 1, p + 1; with
        study effects a list of B :class:`.arrow.Arrow`) in (gamma, s) at B points; ``states``:
        warm starts per row (default: the model's own). Returns the new states as the fourth
        element; with ``parts`` (study effects only) a fifth: the per-study contributions to the
        gradient in the shared parameters, shape (B, k, pc + 1)."""
        self.nfev += 1
        G = np.asarray(G, float).reshape(np.size(S), self.p)
        S = np.asarray(S, float)
        B = S.size
        zc = self.zc
        eta0 = self.eta0(G)  # (B, k, c)
        isb = (1.0 / S)[:, None]  # (B, 1)
        b = self._start_modes(G, S, states)
        b, J, v, v3 = self._modes(eta0, b, isb, S)
        sig = 1.0 / np.sqrt(J)
        # --- quadrature
        zq = self.zq
        bq = b[:, :, None] + sig[:, :, None] * zq  # (B, k, Q)
        etaq = eta0[:, :, :, None] + bq[:, :, None, :] * zc[:, None]  # (B, k, c, Q)
        bqs = bq * isb[:, :, None]
        if self.binom:
            llq = self.yq * etaq - self.nq * np.logaddexp(0.0, etaq)
        elif self.nchg:
            Kq, mq, vq_n, _ = self.nchg_cumulants(etaq)
            llq = self.yq * etaq - Kq
        else:
            eq = np.exp(etaq)
            llq = self.yq * etaq - eq
        la = llq.sum(axis=2) - 0.5 * bq * bqs + self.lwq
        mx = la.max(axis=-1)
        A = np.exp(la - mx[:, :, None])
        Ssum = A.sum(axis=-1)
        vals = (mx + np.log(Ssum) - 0.5 * np.log(J)).sum(axis=-1) - 0.5 * self.k * np.log(S)
        du_deta = -(zc * v) / J[:, :, None]  # (B, k, c)
        du_ds = b * isb * isb / J
        new_states = [(b[i], (G[i].copy(), S[i], du_deta[i], du_ds[i])) for i in range(B)]
        if want == "v":
            return vals, None, None, new_states
        P = A / Ssum[:, :, None]
        P4 = P[:, :, None, :]
        if self.binom:
            muq = special.expit(etaq)
            mq = self.nq * muq
        elif not self.nchg:
            mq = eq
        d1q = self.yq - mq
        grads, aux = self._gradient(P, P4, d1q, bq, zq, isb, sig, J, v3, du_deta, du_ds, B)
        extra = (self._parts(aux["g_eta"], aux["g_s"]),) if parts else ()
        if want == "g":
            return (vals, grads, None, new_states) + extra
        vq = mq - mq * muq if self.binom else vq_n if self.nchg else mq
        Hs = self._louis_hessian(P, P4, d1q, vq, bq, isb, aux, B)
        return (vals, grads, Hs, new_states) + extra

    def _gradient(self, P, P4, d1q, bq, zq, isb, sig, J, v3, du_deta, du_ds, B):
        """Exact gradient of the AGQ formula in (gamma, s) (implicit function theorem)."""
        zc = self.zc
        b2 = bq * bq
        part_eta = (P4 * d1q).sum(axis=-1)  # E_P[d loglik / d eta], (B, k, c)
        Eb = (P * bq).sum(axis=-1)
        Eb2 = (P * b2).sum(axis=-1)
        Mz_d1 = (P4 * zq * d1q).sum(axis=-1)
        Mz_b = (P * zq * bq).sum(axis=-1)
        isb2 = isb * isb
        dl_du = (part_eta * zc).sum(axis=-1) - Eb * isb  # E_P[h'(b)]
        dl_dsig = 1.0 / sig + (Mz_d1 * zc).sum(axis=-1) - Mz_b * isb  # 1/sigma + E_P[z h'(b)]
        part_s = 0.5 * isb * (Eb2 * isb - 1.0)  # E_P[dh/ds]
        t1 = dl_dsig * (-0.5 * sig / J)
        D = (v3 * self.zc3).sum(axis=-1)  # dJ/du
        if self.c == 1:  # the same value as the general branch, in fewer operations
            dJ_deta = v3 * (1.0 + du_deta)
        else:
            dJ_deta = self.zc2 * v3 + D[:, :, None] * du_deta
        g_eta = part_eta + dl_du[:, :, None] * du_deta + t1[:, :, None] * dJ_deta
        g_s = part_s + dl_du * du_ds + t1 * (D * du_ds - isb2)
        grads = np.empty((B, self.p + 1))
        grads[:, :-1] = self._reduce(g_eta)
        grads[:, -1] = g_s.sum(axis=-1)
        return grads, dict(b2=b2, part_eta=part_eta, Eb2=Eb2, part_s=part_s, isb2=isb2,
                           g_eta=g_eta, g_s=g_s)

    def _louis_hessian(self, P, P4, d1q, vq, bq, isb, aux, B):
        """Hessian of the log quadrature sum with the nodes fixed: E_P[d2h] + Var_P[dh]."""
        b2, part_eta, Eb2, part_s, isb2 = (aux[key] for key in ("b2", "part_eta", "Eb2",
                                                                "part_s", "isb2"))
        dd = d1q[:, :, :, None, :] * d1q[:, :, None, :, :]
        H_ee = (P[:, :, None, None, :] * dd).sum(axis=-1)  # (B, k, c, c)
        Ev = (P4 * vq).sum(axis=-1)
        idx = np.arange(self.c)
        H_ee[:, :, idx, idx] -= Ev
        H_ee -= part_eta[:, :, :, None] * part_eta[:, :, None, :]
        M5 = (P4 * (d1q * b2[:, :, None, :])).sum(axis=-1)
        M6 = (P * (b2 * b2)).sum(axis=-1)
        isb_c = isb[:, :, None]
        H_es = 0.5 * isb_c * (M5 * isb_c - part_eta) - part_eta * part_s[:, :, None]
        H_ss = (0.25 * isb2 * (M6 * isb2 - 2.0 * Eb2 * isb + 1.0) - Eb2 * isb2 * isb
                + 0.5 * isb2 - part_s * part_s)
        if self.study_effects:
            return self._arrows(H_ee, H_es, H_ss)
        p = self.p
        Hs = np.empty((B, p + 1, p + 1))
        Hs[:, :p, :p] = self._quadratic(H_ee)
        Hs[:, :p, p] = Hs[:, p, :p] = self._reduce(H_es)
        Hs[:, p, p] = H_ss.sum(axis=-1)
        return Hs


def single_group(family: str, y, n, offset, nagq: int, support=None) -> QuadratureLikelihood:
    """One cell per study with an intercept (PLO, IRLN; the conditional models with offsets)."""
    y = np.asarray(y, float)[:, None]
    k = y.shape[0]
    return QuadratureLikelihood(family, y, np.asarray(n, float)[:, None],
                                np.asarray(offset, float)[:, None], np.ones((k, 1, 1)),
                                np.ones(1), False, nagq, support)


def nchg_support(n1, n2, m1) -> tuple[np.ndarray, np.ndarray]:
    """Support u = max(0, m1 - n2) .. min(n1, m1) of the first group's count given the total
    m1, with log weights log C(n1, u) + log C(n2, m1 - u) (-inf as padding), shape (k, S)."""
    n1, n2, m1 = (np.asarray(a, float) for a in (n1, n2, m1))
    lo = np.maximum(0.0, m1 - n2)
    hi = np.minimum(n1, m1)
    S = int(np.max(hi - lo)) + 1
    sup = lo[:, None] + np.arange(S)[None, :]
    ok = sup <= hi[:, None]
    sup = np.where(ok, sup, hi[:, None])

    def lchoose(n, r):
        return special.gammaln(n + 1) - special.gammaln(r + 1) - special.gammaln(n - r + 1)

    logw = np.where(ok, lchoose(n1[:, None], sup) + lchoose(n2[:, None], m1[:, None] - sup),
                    -np.inf)
    return sup, logw


def two_group_fixed_studies(family: str, y, n, offset, nagq: int) -> QuadratureLikelihood:
    """Two cells per study (group 1, group 2): eta = alpha_i + theta [group 1] + u_i z_c,
    z = (1/2, -1/2): the unconditional model with fixed study effects (UM.FS)."""
    y = np.asarray(y, float)
    k = y.shape[0]
    X = np.zeros((k, 2, 1))
    X[:, 0, 0] = 1.0
    return QuadratureLikelihood(family, y, np.asarray(n, float), np.asarray(offset, float), X,
                                np.array([0.5, -0.5]), True, nagq)


def describe(model: QuadratureLikelihood) -> dict[str, Any]:
    """Sizes of the model (for diagnostics)."""
    return {"family": model.kind, "k": model.k, "cells": model.c, "parameters": model.p}
