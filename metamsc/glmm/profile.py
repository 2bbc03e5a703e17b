"""Profile-likelihood confidence interval of tau^2 on the exact (AGQ) GLMM likelihood: the
tau^2 with 2 (l_max - max_gamma l(gamma, tau^2)) = chi^2_1(level) on each side of the maximum
(Hamza, van Houwelingen & Stijnen 2008, J Clin Epidemiol 61:41)."""

from __future__ import annotations

import math

import numpy as np

from .arrow import Arrow
from .optimize import Objective, gamma_path, inner_max, shared_cov, to_psi

__all__ = ["profile_bound", "profile_row", "profile_joint", "tau2_profile_ci"]


def profile_bound(model, side: int, gamma0, psi_ref, psi0, ref_value, q, psi_lim, maxiter=60):
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
        gamma, lp, g = inner_max(model, gamma, s)
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


def profile_row(val, grad, Hs, s, p, value, side, q, in_psi=False):
    """Profile quantities at one point: one Newton step in gamma (quadratic approximation).

    Returns (f, r, slope, dg, path) with l_p ~ l + g'dg/2, slope = d l_p / d psi,
    r the signed root and f = r - side sqrt(q); None if the gamma-Hessian is not
    negative definite.
    """
    g, H = (grad, Hs) if in_psi else to_psi(grad, Hs, s)
    if isinstance(H, Arrow):  # study effects: O(k) solves with the arrowhead gamma block
        A = -H.drop_last()
        col = H.last_column()
        dg, pth = A.solve_pd(g[:p]), A.solve_pd(col)
        if dg is None:
            return None
        lp = val + 0.5 * float(g[:p] @ dg)
        slope = g[p] + float(col @ dg)
        r = side * math.sqrt(2 * max(value - lp, 0.0))
        return r - side * math.sqrt(q), r, slope, dg, pth
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


def profile_joint(model, value, q, grids, st0, psi_ref, maxiter=12):
    """Profile bounds: Newton on (gamma, psi) for [dl/dgamma = 0, r(psi) = side sqrt(q)].

    ``grids``: {side: (psi values, gamma values)} of a first batched
    evaluation; at each grid point gamma is profiled by one Newton step and
    the signed root r(psi) = side sqrt(2 (value - l_p)) is computed; a
    parabola through the three grid points around the crossing (or a Newton
    step from the nearest one) gives the start of the Newton iterations. These
    use central-difference Hessians (batched models) or the fixed-node Hessian
    and evaluate the sides together. Returns {side: psi} for the sides that
    converged (the caller falls back to ``profile_bound`` for the others).
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
        pr = [profile_row(vals[j], grads[j], Hs[j], S[j], p, value, sd, q) for j in idx]
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
    exact = model.p == 1  # batched: use central-difference Hessians
    obj = Objective(model)
    for _ in range(maxiter):
        act = [sd for sd in sides if sd not in done and sd not in failed]
        if not act:
            break
        if exact:
            blocks, hs = [], []
            for sd in act:
                th = np.append(Gam[sd], Psi[sd])
                Th, h = obj.fd_points(th)
                blocks.append(np.vstack([th[None, :], Th]))
                hs.append(h)
            nb = blocks[0].shape[0]
            res = obj.many(np.vstack(blocks), "h",
                           states=[U[sd] for sd in act for _ in range(nb)])
            rows_ = []
            for j, sd in enumerate(act):
                val, g, _, stj = res[j * nb]
                Hx = obj.fd_assemble(res[j * nb + 1:(j + 1) * nb], hs[j])
                rows_.append((val, g, Hx, stj))
        else:
            G = np.array([Gam[sd] for sd in act])
            S = np.exp(np.array([Psi[sd] for sd in act]))
            vals, grads, Hs, Un = model.evaluate_many(G, S, "h", [U[sd] for sd in act])
            rows_ = []
            for j in range(len(act)):
                g, H = to_psi(grads[j], Hs[j], S[j])
                rows_.append((vals[j], g, H, Un[j]))
        for j, sd in enumerate(act):
            pr = profile_row(rows_[j][0], rows_[j][1], rows_[j][2], 1.0, p, value, sd, q,
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



def tau2_profile_ci(model, gamma, psi_hat, value, ll_ee, Hpsi, q, warns):
    """Profile-likelihood CI of tau^2 at an interior maximum."""
    st_opt = model.get_state()
    lower_zero = value - ll_ee <= q / 2  # the common-effect model lies inside the region
    cov = shared_cov(-Hpsi)
    se_psi = math.sqrt(cov[-1, -1]) if cov[-1, -1] > 0 else 1.0
    path = gamma_path(Hpsi)
    step0 = min(math.sqrt(q) * se_psi, 3.0)
    grids = {}
    for sd in ((1,) if lower_zero else (-1, 1)):
        pss = psi_hat + sd * step0 * np.array([0.8, 1.0, 1.25])
        grids[sd] = (pss, gamma[None, :] + np.outer(pss - psi_hat, path))
    done = profile_joint(model, value, q, grids, st_opt, psi_hat)
    if lower_zero:
        t_lb = 0.0  # the common-effect model (tau^2 = 0) lies inside the region
    elif -1 in done:
        t_lb = math.exp(done[-1])
    else:
        model.set_state(st_opt)
        start = psi_hat - min(math.sqrt(q) * se_psi, 3.0)
        psi_l, ok_l, m_l = profile_bound(model, -1, gamma, psi_hat, start, value, q, psi_hat - 40.0)
        t_lb = math.exp(psi_l) if ok_l else float("nan")
        if not ok_l:
            warns.append(f"lower profile-likelihood bound of tau^2 not found ({m_l})")
    if 1 in done:
        t_ub = math.exp(done[1])
    else:
        model.set_state(st_opt)
        start = psi_hat + min(math.sqrt(q) * se_psi, 3.0)
        psi_u, ok_u, m_u = profile_bound(model, +1, gamma, psi_hat, start, value, q,
                                          max(math.log(1e6), psi_hat + 5))
        t_ub = math.exp(psi_u) if ok_u else float("inf")
        if not ok_u:
            warns.append(f"upper profile-likelihood bound of tau^2 not found ({m_u}); "
                         "reported as inf")
    model.set_state(st_opt)
    return t_lb, t_ub
