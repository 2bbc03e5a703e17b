"""Arrowhead matrices: the Hessians of the GLMMs with fixed study effects (UM.FS), in O(k).

A study effect alpha_i enters only study i's likelihood, so in the parameter order
(common effects h, alpha_1..alpha_k, tail t = tau^2 or log tau^2) the Hessian is

    [[A_hh  C_h'     A_ht],
     [C_h   diag(d)  C_t ],
     [A_th  C_t'     A_tt]]

with A (m x m) over the m shared parameters (h and t), C (k x m) the coupling of each study
effect with them and d (k) the study effects' own curvatures; the study effects are not
coupled with each other. Everything a Newton fit needs goes through the Schur complement
S = A - C' diag(1/d) C (m x m): linear systems, the covariance of the shared parameters (the
shared block of the inverse is S^-1) and positive definiteness, which holds iff d > 0 and S is
positive definite (Haynsworth 1968, Linear Algebra Appl 1:73: inertia is additive over the
Schur complement). Cost O(k m^2) in time and O(k m) in memory; no (k + m) x (k + m) matrix.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Arrow", "matvec", "drop_last"]


class Arrow:
    """A symmetric arrowhead matrix (see the module) acting on vectors in the full order
    (``head`` shared parameters, the k study effects, the other m - head shared parameters)."""

    __slots__ = ("A", "C", "d", "head")

    def __init__(self, A, C, d, head: int):
        self.A = np.asarray(A, float)
        self.C = np.asarray(C, float)
        self.d = np.asarray(d, float)
        self.head = int(head)

    @property
    def k(self) -> int:
        return self.d.size

    @property
    def size(self) -> int:
        return self.d.size + self.A.shape[0]

    def split(self, v):
        """(shared part, study part) of a full-order vector."""
        h, k = self.head, self.d.size
        return np.concatenate([v[:h], v[h + k:]]), v[h:h + k]

    def join(self, vs, vk):
        """The full-order vector of a shared part and a study part."""
        return np.concatenate([vs[:self.head], vk, vs[self.head:]])

    def __neg__(self) -> "Arrow":
        return Arrow(-self.A, -self.C, -self.d, self.head)

    def dense(self) -> np.ndarray:
        """The full matrix (for checks on small problems only)."""
        m, k, h = self.A.shape[0], self.k, self.head
        sh = np.r_[np.arange(h), h + k + np.arange(m - h)]
        st = h + np.arange(k)
        M = np.zeros((k + m, k + m))
        M[np.ix_(sh, sh)] = self.A
        M[np.ix_(st, sh)] = self.C
        M[np.ix_(sh, st)] = self.C.T
        M[st, st] = self.d
        return M

    def matvec(self, v):
        vs, vk = self.split(np.asarray(v, float))
        return self.join(self.A @ vs + self.C.T @ vk, self.C @ vs + self.d * vk)

    def schur(self, d=None) -> np.ndarray:
        """S = A - C' diag(1/d) C."""
        d = self.d if d is None else d
        return self.A - self.C.T @ (self.C / d[:, None])

    def _solve_with(self, S, d, v, solve):
        vs, vk = self.split(np.asarray(v, float))
        xs = solve(S, vs - self.C.T @ (vk / d))
        return self.join(xs, (vk - self.C @ xs) / d)

    def solve(self, v):
        """x with M x = v; LinAlgError if M is singular."""
        if np.any(self.d == 0):
            raise np.linalg.LinAlgError("singular arrowhead matrix")
        return self._solve_with(self.schur(), self.d, v, np.linalg.solve)

    def solve_pd(self, v):
        """x with M x = v if M is positive definite, else None."""
        if not np.all(self.d > 0):
            return None
        try:
            L = np.linalg.cholesky(self.schur())
        except np.linalg.LinAlgError:
            return None
        return self._solve_with(L, self.d, v,
                                lambda L, r: np.linalg.solve(L.T, np.linalg.solve(L, r)))

    def solve_abs(self, v):
        """x with M~ x = v for a positive definite M~ near an indefinite M: the study curvatures
        and the eigenvalues of the Schur complement replaced by their moduli (floored)."""
        scale = max(1.0, float(np.max(np.abs(self.d), initial=0.0)),
                    float(np.max(np.abs(self.A), initial=0.0)))
        d = np.maximum(np.abs(self.d), 1e-6 * scale)
        w, V = np.linalg.eigh(self.schur(d))
        w = np.maximum(np.abs(w), 1e-6 * max(1.0, float(np.max(np.abs(w)))))
        return self._solve_with((w, V), d, v, lambda wV, r: wV[1] @ ((wV[1].T @ r) / wV[0]))

    def shared_inverse(self) -> np.ndarray:
        """The shared block of M^-1: S^-1 (order: head, then the rest of the shared)."""
        return np.linalg.inv(self.schur())

    def drop_last(self) -> "Arrow":
        """The matrix without its last (shared, tail) parameter."""
        return Arrow(self.A[:-1, :-1], self.C[:, :-1], self.d, self.head)

    def last_column(self):
        """Column of the last parameter without its diagonal entry, in full order."""
        return self.join(self.A[:-1, -1], self.C[:, -1])

    def to_log_last(self, s: float, g_last: float) -> "Arrow":
        """The Hessian in log of the last parameter (value s, gradient g_last)."""
        A = self.A.copy()
        C = self.C.copy()
        A[-1, :-1] *= s
        A[:-1, -1] *= s
        A[-1, -1] = s * s * self.A[-1, -1] + s * g_last
        C[:, -1] *= s
        return Arrow(A, C, self.d, self.head)

    def _count_below(self, lams) -> np.ndarray:
        """Number of eigenvalues below each lam of ``lams``: the inertia of M - lam I is that
        of diag(d - lam) plus that of its Schur complement, read off the pivots of an LDL'
        factorisation (Sylvester's law of inertia)."""
        tiny = np.finfo(float).tiny
        dl = self.d[None, :] - lams[:, None]  # (L, k)
        n = np.count_nonzero(dl < 0, axis=1)
        dl[dl == 0] = tiny
        m = self.A.shape[0]
        S = self.A[None] - (self.C.T[None] / dl[:, None, :]) @ self.C  # (L, m, m)
        S[:, np.arange(m), np.arange(m)] -= lams[:, None]
        for j in range(m):
            piv = S[:, j, j].copy()
            piv[piv == 0] = tiny
            n += piv < 0
            f = S[:, j + 1:, j, None] / piv[:, None, None]
            S[:, j + 1:, j + 1:] -= f * S[:, None, j, j + 1:]
        return n

    def extreme_eigenvalues(self) -> np.ndarray:
        """The smallest and the largest eigenvalue, by multisection (16 points per round) on
        the inertia between Gershgorin bounds, to full precision: O(k) per round."""
        aC = np.abs(self.C)
        rs = aC.sum(axis=1)
        Aa = np.abs(self.A)
        ra = Aa.sum(axis=1) - np.diag(Aa) + aC.sum(axis=0)
        da = np.diag(self.A)
        lo = min(float(np.min(self.d - rs, initial=np.inf)), float(np.min(da - ra)))
        hi = max(float(np.max(self.d + rs, initial=-np.inf)), float(np.max(da + ra)))
        pad = 1e-9 * (hi - lo) + 1e-300
        # for each target t (1: the smallest, n: the largest eigenvalue) the smallest lam
        # with at least t eigenvalues below it lies in (a, b]
        targets = np.array([1, self.size])
        a = np.full(2, lo - pad)
        b = np.full(2, hi + pad)
        frac = np.arange(1, 16) / 16.0
        for _ in range(60):
            pts = a[:, None] + (b - a)[:, None] * frac[None, :]  # (2, 15)
            pts = np.minimum(np.maximum(pts, a[:, None]), b[:, None])
            if np.all((pts == a[:, None]) | (pts == b[:, None])):
                break
            cnt = self._count_below(pts.ravel()).reshape(pts.shape)
            above = cnt >= targets[:, None]
            for t in range(2):
                hit = np.flatnonzero(above[t])
                if hit.size:
                    b[t] = pts[t, hit[0]]
                    if hit[0] > 0:
                        a[t] = pts[t, hit[0] - 1]
                else:
                    a[t] = pts[t, -1]
        return 0.5 * (a + b)


def matvec(H, v):
    """H v for a dense or an arrowhead matrix."""
    return H.matvec(v) if isinstance(H, Arrow) else H @ v


def drop_last(H):
    """H without its last row and column (dense or arrowhead)."""
    return H.drop_last() if isinstance(H, Arrow) else H[:-1, :-1]
