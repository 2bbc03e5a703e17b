"""Maximisation of the AGQ log-likelihood: a safeguarded Newton ascent with the exact gradient,
the objective in (gamma, log tau^2), and small closed-form linear algebra."""

from __future__ import annotations

import math

import numpy as np

from .arrow import Arrow, drop_last, matvec

__all__ = ["inv_small", "eigvalsh_small", "shared_cov", "gamma_path", "to_psi", "newton_dir",
           "fallback_dir", "Objective", "maximize", "inner_max"]


def inv_small(A):
    """Inverse of a small symmetric matrix (closed form for 1 x 1 and 2 x 2)."""
    if A.shape == (1, 1):
        return np.array([[1.0 / A[0, 0]]])
    if A.shape == (2, 2):
        a, b, c = A[0, 0], A[0, 1], A[1, 1]
        det = a * c - b * b
        return np.array([[c, -b], [-b, a]]) / det
    return np.linalg.inv(A)


def shared_cov(M):
    """Covariance of the shared parameters from the information M = -H: the inverse of a small
    dense M, or of an arrowhead M (study effects) its shared block S^-1 (order: common
    effects, then log tau^2 if present)."""
    return M.shared_inverse() if isinstance(M, Arrow) else inv_small(M)


def gamma_path(H):
    """(-H_gg)^-1 H_g,psi: the first-order path of gamma as the last parameter moves."""
    if isinstance(H, Arrow):
        return (-H.drop_last()).solve(H.last_column())
    p = H.shape[0] - 1
    return inv_small(-H[:p, :p]) @ H[:p, p]


def eigvalsh_small(A):
    """Eigenvalues of a small symmetric matrix (closed form for 1 x 1 and 2 x 2); of an
    arrowhead matrix the smallest and the largest only (O(k) by bisection)."""
    if isinstance(A, Arrow):
        return A.extreme_eigenvalues()
    if A.shape == (1, 1):
        return np.array([A[0, 0]])
    if A.shape == (2, 2):
        a, b, c = A[0, 0], A[0, 1], A[1, 1]
        m, d = 0.5 * (a + c), math.hypot(0.5 * (a - c), b)
        return np.array([m - d, m + d])
    return np.linalg.eigvalsh(A)


def to_psi(g, H, s):
    """Gradient/Hessian in (gamma, s) -> (gamma, psi = log s)."""
    if isinstance(H, Arrow):
        g2 = g.copy()
        g2[-1] = s * g[-1]
        return g2, H.to_log_last(s, g[-1])
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


def newton_dir(g, H):
    """Ascent direction solving (-H) d = g; (d, True) if -H is positive definite, else (None, False)."""
    if isinstance(H, Arrow):
        d = (-H).solve_pd(g)
        return d, d is not None
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


def fallback_dir(g, H):
    """Ascent direction from an indefinite Hessian (eigenvalues replaced by their moduli;
    arrowhead: the study curvatures and the Schur complement's eigenvalues)."""
    if isinstance(H, Arrow):
        return (-H).solve_abs(g)
    w, V = np.linalg.eigh(-H)
    w = np.maximum(np.abs(w), 1e-6 * max(1.0, float(np.max(np.abs(w)))))
    return V @ ((V.T @ g) / w)


class Objective:
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
            return to_psi(g, H, s)
        return g[:-1], (None if H is None else drop_last(H))

    def _convert_parts(self, parts, s):
        if self.fixed_s is None:
            out = parts.copy()
            out[:, -1] *= s
            return out
        return parts[:, :-1]

    @property
    def _arrow(self) -> bool:
        return bool(getattr(self.model, "study_effects", False))

    def __call__(self, theta, want="h"):
        G, S = self._points(theta)
        val, g, H = self.model.evaluate(G[0], S[0], want)
        if want == "v":
            return val, None, None
        return (val, *self._convert(g, H, S[0]))

    def many(self, Th, want="h", keep=None, states=None, parts=False):
        """Evaluate several points; the mode warm start moves to row ``keep`` (if given). Rows
        (value, gradient, Hessian, state), with ``parts`` also the per-study contributions to
        the gradient in the shared parameters."""
        G, S = self._points(Th)
        model = self.model
        if parts:
            vals, grads, Hs, sts, pts = model.evaluate_many(G, S, want, states, parts=True)
        else:
            vals, grads, Hs, sts = model.evaluate_many(G, S, want, states)
        if keep is not None:
            model.set_state(sts[keep])
        out = []
        for i in range(len(S)):
            g, H = ((None, None) if grads is None else
                    self._convert(grads[i], None if Hs is None else Hs[i], S[i]))
            row = (float(vals[i]), g, H, sts[i])
            out.append(row + (self._convert_parts(pts[i], S[i]),) if parts else row)
        return out

    def fd_points(self, theta):
        """Points of the central-difference Hessian and their steps h. With study effects
        (Curtis, Powell & Reid 1974, J Inst Math Appl 13:117): each shared parameter on its own
        and all study effects at once (they enter different studies), 2 (m + 1) points."""
        m = theta.size
        h = 1e-5 * np.maximum(1.0, np.abs(theta))
        if self._arrow:
            pc, k = self.model.pc, self.model.k
            cols = [np.eye(1, m, j)[0] for j in list(range(pc)) + list(range(pc + k, m))]
            cols.append(np.r_[np.zeros(pc), np.ones(k), np.zeros(m - pc - k)])
            E = np.array(cols) * h[None, :]
            Th = np.repeat(theta[None, :], 2 * len(cols), axis=0)
            Th[0::2] += E
            Th[1::2] -= E
            return Th, h
        Th = np.repeat(theta[None, :], 2 * m, axis=0)
        idx = np.arange(m)
        Th[2 * idx, idx] += h
        Th[2 * idx + 1, idx] -= h
        return Th, h

    def fd_assemble(self, res, h):
        if self._arrow:
            return self._fd_arrow(res, h)
        m = h.size
        H = np.empty((m, m))
        for j in range(m):
            H[:, j] = (res[2 * j][1] - res[2 * j + 1][1]) / (2 * h[j])
        return 0.5 * (H + H.T)

    def _fd_arrow(self, res, h):
        """The arrowhead central-difference Hessian from the points of :meth:`fd_points`."""
        pc, k, m = self.model.pc, self.model.k, h.size
        sh = np.r_[np.arange(pc), np.arange(pc + k, m)]
        st = pc + np.arange(k)
        ms = sh.size
        A = np.empty((ms, ms))
        C = np.empty((k, ms))
        for a, j in enumerate(sh):
            dg = (res[2 * a][1] - res[2 * a + 1][1]) / (2 * h[j])
            A[:, a], C[:, a] = dg[sh], dg[st]
        hk = 2 * h[st]
        d = (res[2 * ms][1][st] - res[2 * ms + 1][1][st]) / hk
        Ct = (res[2 * ms][4] - res[2 * ms + 1][4]) / hk[:, None]
        return Arrow(0.5 * (A + A.T), 0.5 * (C + Ct), d, pc)

    def fd_hessian(self, theta):
        """Central differences of the exact gradient (all points started from the same modes)."""
        Th, h = self.fd_points(theta)
        return self.fd_assemble(self.many(Th, "g", parts=self._arrow), h)

    def with_fd(self, theta):
        """Value, gradient and fixed-node Hessian at theta plus the central-difference Hessian,
        in one batched evaluation."""
        Th, h = self.fd_points(theta)
        res = self.many(np.vstack([theta[None, :], Th]), "h", keep=0, parts=self._arrow)
        val, g, H = res[0][:3]
        return val, g, H, self.fd_assemble(res[1:], h)


def maximize(obj: Objective, theta0, caps, maxiter=100, gtol=1e-9, psi_min=None, psi_max=None,
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
        d, pd = newton_dir(g, H)
        if not pd and H_ex is None:
            H = H_ex = obj.fd_hessian(theta)
            fd_used += 1
            d, pd = newton_dir(g, H)
        if not pd:
            d = fallback_dir(g, H)
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
        poor = float(np.abs(ng - (g + matvec(H, step))).max()) > 0.3 * float(np.abs(ng - g).max())
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


def inner_max(model, gamma, s):
    """Maximise over gamma at fixed s; returns gamma, value, grad(gamma, s)."""
    obj = Objective(model, s)
    r = maximize(obj, np.asarray(gamma, float), np.full(np.size(gamma), 3.0), maxiter=60,
                  gtol=1e-10, always_fd=model.p == 1)
    gamma = r["theta"]
    val, g, _ = model.evaluate(gamma, s, "g")
    return gamma, val, g
