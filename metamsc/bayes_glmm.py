"""Exact Bayesian binomial-normal and Poisson-normal random-effects models (no sampling).

x_i ~ Binomial(n_i, expit(theta_i)) (proportions; ``bayes_proportions``) or
x_i ~ Poisson(t_i exp(theta_i)) (incidence rates; ``bayes_rates``), theta_i ~ N(mu, tau^2), with
the priors of :mod:`metamsc.bayes` on mu and tau (Smith, Spiegelhalter & Thomas 1995, Stat Med
14:2685; Günhan, Röver & Friede 2020, Res Synth Methods 11:74). Each study's effect is integrated
out exactly (no continuity correction; 2/2 and 0/n as they are): by adaptive Gauss-Hermite at
the mode of the integrand (Liu & Pierce 1994, Biometrika 81:624) where tau is narrow, by the
Gaussian rule of the likelihood read as an expectation over a fixed density where tau is wide
(heavy-tailed tau priors put mass at tau of 10 to 1000). (tau, mu) lie on an adaptive tensor
grid of 15-point Gauss-Legendre panels in u (tau = tau(u), as in :mod:`metamsc.bayes`) and s,
mu = c(tau) + d(tau) s (the normal-normal conditional mean and sd of mu given tau: the range in s
stays bounded however wide tau is). Densities and CDFs are piecewise-Legendre interpolants; a
new study's effect is the grid's normal mixture where tau is wide and each row's distribution of
mu smoothed by Gauss-Hermite where tau is narrow; each study's shrunken effect has density
f_i(theta) ~ p(x_i | theta) int int N(theta; mu, tau^2) p(mu, tau | x) / L_i(mu, tau) on panels
in t, theta = a + b sinh(t). Shrunken estimates and shortest intervals are computed on first
read; means that do not exist under a heavy-tailed tau prior are inf/NaN.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ._bayes_numerics import (PanelDensity, Mixture, RowDensity, SinhDensity, TauMap, Convolved,
                              panel_nodes,
                              adaptive_panels, legendre_tail, gauss_rule, finite_moments,
                              tail_warnings, PANEL_NODES, TO_LEGENDRE)
from ._util import check_level, readonly
from .frames import accepts_data
from .bayes import BayesResult, complete, mu_prior as _mu_prior, tau_prior as _tau_prior
from .results import Excluded

__all__ = ["bayes_proportions", "bayes_rates"]

def _hermite(k: int):
    x, w = np.polynomial.hermite.hermgauss(k)
    return x, np.log(w) + x**2


_GH20, _GH48 = _hermite(20), _hermite(48)
_LOG2PI = math.log(2 * math.pi)
_TOL = 1e-9
_MAX_PANELS = 48
_MAX_SHRINK = 96
_START_SHRINK = 24
_GL_N = PANEL_NODES
_GHZ_X, _GHZ_W = np.polynomial.hermite.hermgauss(16)
_LOG_GHZ_W = np.log(_GHZ_W)


# --- one study's likelihood, with its effect integrated out ----------------------------------
def _const(kind: str, x, n):
    if kind == "binomial":
        return special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)
    return x * np.log(n) - special.gammaln(x + 1)


def _loglik(kind: str, x, n, theta, const: bool = True):
    """log p(x | theta), with its constant (binomial coefficient or t^x / x!) if ``const``."""
    c = _const(kind, x, n) if const else 0.0
    if kind == "binomial":  # log(1 + e^theta) = max(theta, 0) + log1p(e^-|theta|)
        return x * theta - n * (np.maximum(theta, 0.0) + np.log1p(np.exp(-np.abs(theta)))) + c
    return x * theta - n * np.exp(theta) + c


def _derivs(kind: str, x, n, theta):
    if kind == "binomial":
        p = special.expit(theta)
        return x - n * p, -n * p * (1 - p)
    r = n * np.exp(theta)
    return x - r, -r


def _start(kind: str, x, n):
    """The observed effect with 1/2 added to every count (start values and display only)."""
    if kind == "binomial":
        return np.log((x + 0.5) / (n - x + 0.5)), 1 / (x + 0.5) + 1 / (n - x + 0.5)
    return np.log((x + 0.5) / n), 1 / (x + 0.5)


@functools.lru_cache(maxsize=512)
def _study_rule(kind: str, x: float, n: float, nodes: int = 48):
    """One study's likelihood as an expectation over a fixed density g of w, for wide tau:
    interior counts: p(x | theta) = c g(theta) (g the density of logit P, P ~ Beta(x, n - x);
    or of log(G / t), G ~ Gamma(x)); all events (binomial): p(x | theta) = P(M < theta) with M
    the largest of n standard logistic variables (logit Beta(n, 1)); no event: P(M > theta)
    (logit Beta(1, n); Poisson: M = log(E / t), E ~ Exp(1)). So L_i(mu, tau) = c E_g[phi_tau(w -
    mu)] or E_g[Phi(+-(mu - w) / tau)], a smooth function of w when tau is wide against g, and
    integrated by the Gaussian rule of g. Returns (type 0/+1/-1, log c, nodes, log weights, sd)."""
    if kind == "binomial":
        a, b, typ = (x, n - x, 0) if 0 < x < n else ((n, 1.0, 1) if x == n else (1.0, n, -1))
        mean = special.digamma(a) - special.digamma(b)
        sd = math.sqrt(special.polygamma(1, a) + special.polygamma(1, b))
        lb = float(special.betaln(a, b))

        def logg(w):
            return a * w - (a + b) * np.logaddexp(0.0, w) - lb
        lo, hi = mean - 10 * sd - 40 / a, mean + 10 * sd + 40 / b
        c = float(_const(kind, x, n)) + lb if typ == 0 else 0.0
    else:
        a, typ, lt = max(x, 1.0), (0 if x > 0 else -1), math.log(n)
        mean, sd = special.digamma(a) - lt, math.sqrt(special.polygamma(1, a))

        def logg(w):
            return a * (w + lt) - np.exp(w + lt) - special.gammaln(a)
        lo, hi = mean - 10 * sd - 40 / a, mean + 10 * sd + 5
        c = -math.log(x) if typ == 0 else 0.0
    w_nodes, w, _ = gauss_rule(logg, float(lo), float(hi), nodes)
    return typ, c, w_nodes, np.log(w), float(sd)


def _by_rule(rule, mu, tau, moments):
    """log L_i (and the first two moments of theta_i) at flat mu, tau by the rule of g."""
    typ, c, w, lw, _ = rule
    mu, tau = mu[:, None], tau[:, None]
    z = (w - mu) / tau
    if typ == 0:
        h = lw - 0.5 * z * z
        mx = np.max(h, axis=1, keepdims=True)
        a = np.exp(h - mx)
        sa = np.sum(a, axis=1)
        out = c + mx[:, 0] + np.log(sa) - np.log(tau[:, 0]) - 0.5 * _LOG2PI
        if not moments:
            return (out,)
        return out, np.sum(a * w, axis=1) / sa, np.sum(a * w * w, axis=1) / sa
    lphi = special.log_ndtr(-typ * z)  # P(theta > M) (typ 1) or P(theta < M) (typ -1)
    h = lw + lphi
    mx = np.max(h, axis=1, keepdims=True)
    a = np.exp(h - mx)
    sa = np.sum(a, axis=1)
    out = c + mx[:, 0] + np.log(sa)
    if not moments:
        return (out,)
    # E[theta 1{theta > M}] = mu Phi(-alpha) + tau phi(alpha), alpha = (M - mu) / tau, and
    # E[theta^2 1{...}] = (mu^2 + tau^2) Phi(-alpha) + tau phi(alpha) (mu + M); mirrored for <
    d = np.exp(lw - 0.5 * z * z - 0.5 * _LOG2PI - mx)
    e1 = (mu[:, 0] * sa + typ * tau[:, 0] * np.sum(d, axis=1)) / sa
    e2 = ((mu[:, 0] ** 2 + tau[:, 0] ** 2) * sa
          + typ * tau[:, 0] * np.sum(d * (mu + w), axis=1)) / sa
    return out, e1, e2


def _by_hermite(kind, x, n, mu, tau, nodes, moments):
    """log L_i (and moments) at flat mu, tau by adaptive Gauss-Hermite at the integrand's mode
    (Liu & Pierce 1994): exact for narrow tau, where the integrand is nearly normal."""
    gx, lgw = nodes
    t2 = tau**2
    y0, v0 = _start(kind, x, n)
    th = (mu / t2 + y0 / v0) / (1 / t2 + 1 / v0)
    act = np.arange(th.size)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(60):  # Newton for the mode; a node leaves once its step is < 1e-10
            t2a = t2[act]
            d1, d2 = _derivs(kind, x, n, th[act])
            g2 = d2 - 1 / t2a
            step = (d1 - (th[act] - mu[act]) / t2a) / g2
            lim = 4.0 * np.sqrt(-1 / g2) + 1.0
            step = np.clip(step, -lim, lim)
            th[act] -= step
            act = act[~(np.abs(step) < 1e-10)]
            if act.size == 0:
                break
        s = 1 / np.sqrt(-(_derivs(kind, x, n, th)[1] - 1 / t2))
        q = th[:, None] + math.sqrt(2) * s[:, None] * gx
        h = lgw + _loglik(kind, x, n, q, const=False) - (q - mu[:, None]) ** 2 / (2 * t2[:, None])
    mx = np.max(h, axis=-1, keepdims=True)
    a = np.exp(h - mx)
    sa = np.sum(a, axis=-1)
    out = mx[:, 0] + np.log(sa) + _const(kind, x, n) + np.log(math.sqrt(2) * s) - 0.5 * np.log(2 * math.pi * t2)
    if not moments:
        return (out,)
    return out, np.sum(a * q, axis=-1) / sa, np.sum(a * q * q, axis=-1) / sa


def _by_expansion(kind, x, n, mu, tau, moments):
    """log L_i (and moments) for tau below 1e-5 sd(g), where the integrand is a spike that
    quadrature would resolve below rounding: L = f(mu) (1 + tau^2 / 2 (l'^2 + l'')) + O(tau^4)."""
    d1, d2 = _derivs(kind, x, n, mu)
    out = _loglik(kind, x, n, mu) + np.log1p(0.5 * tau**2 * (d1**2 + d2))
    if not moments:
        return (out,)
    e1 = mu + tau**2 * d1
    return out, e1, e1**2 + tau**2


def marginal_loglik(kind: str, x, n, mu, tau, *, moments: bool = False):
    """log L_i(mu, tau) = log int p(x_i | theta) N(theta; mu, tau^2) dtheta for every study
    (last axis) at every (mu, tau) (broadcast). Below 1e-5 sd of the study's g (see
    _study_rule): a second-order expansion in tau; narrow tau (below half that sd): 20-node
    adaptive Gauss-Hermite at the mode of the integrand; up to 1.3 sd:
    48 nodes; wider: the 48-node (beyond 3 sd: 24-node) Gaussian rule of g (the likelihood as an
    expectation over g), which stays exact however wide tau is (0/n and n/n included). With ``moments``: also
    E(theta_i | x_i, mu, tau) and E(theta_i^2 | ...). Studies with the same counts are
    integrated once."""
    x, n = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(n, dtype=float))
    mu, tau = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(tau, dtype=float))
    shape = mu.shape
    mf, tf = mu.ravel(), tau.ravel()
    outs = [np.empty(shape + (x.size,)) for _ in range(3 if moments else 1)]
    done: dict[tuple[float, float], tuple] = {}
    for i in range(x.size):
        key = (float(x[i]), float(n[i]))
        if key not in done:
            rule = _study_rule(kind, *key)
            res = [np.empty(mf.size) for _ in outs]
            part = np.searchsorted([1e-5 * rule[4], 0.5 * rule[4], 1.3 * rule[4], 3 * rule[4]], tf,
                                   side="right") - 1
            for j in range(-1, 4):
                sel = np.flatnonzero(part == j)
                if sel.size == 0:
                    continue
                if j < 0:
                    got = _by_expansion(kind, key[0], key[1], mf[sel], tf[sel], moments)
                elif j < 2:
                    got = _by_hermite(kind, key[0], key[1], mf[sel], tf[sel], (_GH20, _GH48)[j], moments)
                else:
                    got = _by_rule(rule if j == 2 else _study_rule(kind, *key, 24), mf[sel], tf[sel],
                                   moments)
                for r, g in zip(res, got):
                    r[sel] = g
            done[key] = tuple(res)
        for o, r in zip(outs, done[key]):
            o[..., i] = r.reshape(shape)
    return tuple(outs) if moments else outs[0]


# --- the posterior of (mu, tau) on an adaptive tensor grid ------------------------------------
class _Grid:
    """The joint posterior of (tau, mu) in the coordinates u (tau = tau(u)) and s, mu = c(tau) +
    d(tau) s, where c and d are the conditional mean and sd of mu given tau in the normal-normal
    model of the start values: the posterior of mu given tau keeps a bounded range in s however
    wide tau is (a heavy-tailed tau prior spreads mu over a range of order tau)."""

    def __init__(self, kind, x, n, pm, pt, tm):
        self.kind, self.x, self.n, self.pm, self.pt, self.tm = kind, x, n, pm, pt, tm
        self.y0, self.v0 = _start(kind, x, n)
        self.cache: dict[tuple, np.ndarray] = {}

    def loc(self, tau):
        """(c, d) of mu given tau: mu = c + d s."""
        w = 1 / (self.v0 + np.asarray(tau)[..., None] ** 2)
        prec, num = np.sum(w, axis=-1), np.sum(w * self.y0, axis=-1)
        if self.pm.family == "normal":
            m0, s0 = self.pm.params
            prec, num = prec + 1 / s0**2, num + m0 / s0**2
        return num / prec, 1 / np.sqrt(prec)

    def log_joint(self, u, s):
        """log joint density in (u, s) at u (B, 15) x s (B, 15) -> (B, 15, 15), each study's
        log L_i and the moments of theta_i there (B, 15, 15, k), and mu there (B, 15, 15)."""
        tau = self.tm.tau(u)
        c, d = self.loc(tau)
        m = c[:, :, None] + d[:, :, None] * s[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            lt = self.pt.logpdf(tau) + self.tm.logjac(u) + np.log(d)
        lli, e1, e2 = marginal_loglik(self.kind, self.x, self.n, m, tau[:, :, None], moments=True)
        out = lt[:, :, None] + self.pm.logpdf(m) + np.sum(lli, axis=-1)
        return np.nan_to_num(out, nan=-np.inf), lli, e1, e2, m

    def evaluate(self, ue, se, per_study: int = 0):
        """log joint density (in u and s) at the Gauss nodes of panels ue x se: (Pt*15, Ps*15);
        with ``per_study`` 1, 2, 3 each study's log L_i, E(theta_i | x_i, mu, tau) or
        E(theta_i^2 | x_i, mu, tau) there instead: (Pt*15, Ps*15, k); 4: mu at the nodes."""
        keys = [[(ue[i], ue[i + 1], se[j], se[j + 1]) for j in range(se.size - 1)]
                for i in range(ue.size - 1)]
        todo = [kk for row in keys for kk in row if kk not in self.cache]
        if todo:
            t = np.array(todo)
            uu, _ = panel_nodes(t[:, 0], t[:, 1])
            ss, _ = panel_nodes(t[:, 2], t[:, 3])
            out = self.log_joint(uu, ss)
            for r, kk in enumerate(todo):
                self.cache[kk] = tuple(o[r] for o in out)
        return np.concatenate([np.concatenate([self.cache[kk][per_study] for kk in row], axis=1)
                               for row in keys], axis=0)


def _refine(edges, tails, total):
    bad = tails > _TOL * total
    if not np.any(bad) or edges.size > _MAX_PANELS:
        return edges, False
    mid = (edges[:-1][bad] + edges[1:][bad]) / 2
    return np.sort(np.concatenate([edges, mid])), True


def _row_tails(J, edges, w_other):
    """Legendre tail of every row of J (rows: the other coordinate's nodes) on the panels
    ``edges`` of its columns, summed over rows with the other coordinate's weights: a bound on
    the interpolation error of each panel in the joint integral."""
    P = edges.size - 1
    half = np.tile(np.diff(edges) / 2, J.shape[0])
    t = legendre_tail(J.reshape(-1, _GL_N), half).reshape(J.shape[0], P)
    return w_other @ t


def _posterior_grid(grid: _Grid):
    tm = grid.tm
    ue = np.linspace(tm.lo, tm.hi, 7)
    se = np.linspace(-8.0, 8.0, 7)
    for _ in range(60):
        lj = grid.evaluate(ue, se)
        top = float(np.max(lj))
        if not np.isfinite(top):
            raise ValueError("the posterior density is zero everywhere (prior and data incompatible?)")
        J = np.exp(lj - top)
        wu = panel_nodes(ue[:-1], ue[1:])[1].ravel()
        ws = panel_nodes(se[:-1], se[1:])[1].ravel()
        fs = wu @ J
        total = float(fs @ ws)
        width = se[-1] - se[0]
        grow = False
        if fs[0] * width > 1e-14 * total:
            se = np.concatenate([se[0] - width / 4 * np.array([2.0, 1.0]), se])
            grow = True
        if fs[-1] * width > 1e-14 * total:
            se = np.concatenate([se, se[-1] + width / 4 * np.array([1.0, 2.0])])
            grow = True
        if grow:
            continue
        ue, more_u = _refine(ue, _row_tails(J.T, ue, ws), total)
        se, more_s = _refine(se, _row_tails(J, se, wu), total)
        if not (more_u or more_s):
            return ue, se, lj, top
    raise ValueError("the posterior grid did not converge (data or priors too extreme)")


def _prune(p: np.ndarray, drop: float = 1e-12) -> np.ndarray:
    """Indices of the grid weights to keep: all but the smallest ones that sum to < drop."""
    order = np.argsort(p)
    return order[np.cumsum(p[order]) >= drop]

def _shrinkage(kind, x, n, lj, lli, se, wu, ws, tau_g, mu_g, c_g, d_g, a, b, lo, hi
               ) -> list[SinhDensity]:
    """Posterior densities of every study's effect, f_i(theta) ~ p(x_i | theta) int int
    N(theta; mu, tau^2) p(mu, tau | x) / L_i(mu, tau) dmu dtau, on one set of panels in t,
    theta = a + b sinh(t), shared by all studies (a heavy tail of theta is a light one of t).
    ``lj``: log joint on the (u, s) grid minus its maximum; ``lli``: each study's log L_i;
    ``mu_g``: mu at the nodes, mu = c_g + d_g s by row. Rows whose tau is wide against their mu
    panels: the grid rule (a mixture of normals, its kernels computed once per node and summed
    against 1 / L_ig for all studies by one matrix product). Narrow rows (tau below a quarter of
    the row's narrowest mu panel), where that mixture would be a comb of spikes: mu = theta + tau
    z, integrated by Gauss-Hermite in z on the piecewise-Legendre interpolant of the row in s.
    Panels are bisected until the Legendre tail of every study's panel is below _TOL of its
    total, and the range in t grows until its end densities are negligible. One more density
    comes last: a new study's effect (the same integral without a likelihood)."""
    k = x.size + 1
    lli = np.concatenate([lli, np.zeros(lli.shape[:-1] + (1,))], axis=-1)
    narrow = tau_g < d_g * np.min(np.diff(se)) / 4
    log_z = math.log(float(np.sum(np.exp(lj) * wu[:, None] * ws[None, :])))
    # wide rows: the grid's mixture of normals (components of mass below 1e-9 in all dropped)
    P = np.exp(lj[~narrow] - log_z) * wu[~narrow, None] * ws[None, :]
    keep = _prune(P.ravel(), 1e-9)
    tw = np.repeat(tau_g[~narrow], ws.size)[keep]
    mw = mu_g[~narrow].ravel()[keep]
    lw = np.log(P.ravel()[keep]) - np.log(tw)
    inv = -lli[~narrow].reshape(-1, k)[keep]
    shift = np.max(inv, axis=0) if inv.size else np.zeros(k)
    R = np.exp(inv - shift)  # (G, k), 1 / L_ig scaled per study
    # narrow rows (but those of negligible mass): Legendre coefficients in s of log(joint / L_i)
    # (a density in mu) per row and study
    rows = _mass_rows(np.exp(lj - log_z) * wu[:, None] * ws[None, :], narrow)
    g = (lj[rows, :, None] - lli[rows]
         + (np.log(wu[rows]) - np.log(d_g[rows]) - log_z + 0.5 * math.log(2))[:, None, None])
    coef = np.einsum("dn,rpnk->rpdk", TO_LEGENDRE, g.reshape(rows.size, se.size - 1, _GL_N, k))

    def narrow_part(th):
        out = np.full((th.size, k), -np.inf)
        for q, r in enumerate(rows):  # row by row: the points near the row's span only
            pts = (th[:, None] + math.sqrt(2) * tau_g[r] * _GHZ_X - c_g[r]) / d_g[r]  # (N, K)
            inside = (pts >= se[0]) & (pts <= se[-1])
            sel = np.flatnonzero(np.any(inside, axis=1))
            if sel.size == 0:
                continue
            pts, inside = pts[sel], inside[sel]
            j = np.clip(np.searchsorted(se, pts, side="right") - 1, 0, se.size - 2)
            xi = np.clip((pts - se[j]) / ((se[j + 1] - se[j]) / 2) - 1, -1.0, 1.0)
            v = np.polynomial.legendre.legvander(xi, _GL_N - 1)  # (n, K, 15)
            val = np.einsum("nkd,nkdi->nki", v, coef[q][j])  # (n, K, k)
            val = np.where(inside[..., None], val + _LOG_GHZ_W[:, None], -np.inf)
            top_v = np.max(val, axis=1)
            fin = np.isfinite(top_v)
            top_v = np.where(fin, top_v, 0.0)
            with np.errstate(divide="ignore"):
                part = np.log(np.sum(np.exp(val - top_v[:, None, :]), axis=1)) + top_v
            out[sel] = np.logaddexp(out[sel], np.where(fin, part, -np.inf))
        return out

    itw, cw = 1 / tw, mw / tw
    top = float(np.max(lw)) if lw.size else 0.0
    lw = lw - top

    def wide_part(th):
        out = np.empty((th.size, k))
        for c in range(0, th.size, 64):
            z = np.multiply.outer(th[c:c + 64], itw)
            z -= cw
            z *= z
            z *= -0.5
            z += lw
            np.exp(z, out=z)
            with np.errstate(divide="ignore"):
                out[c:c + 64] = np.log(z @ R) + (top + shift)
        return out

    cache: dict[tuple[float, float], np.ndarray] = {}

    def logf(edges):
        new = [(lo_, hi_) for lo_, hi_ in zip(edges[:-1], edges[1:]) if (lo_, hi_) not in cache]
        if new:
            t = np.array(new)
            tt = panel_nodes(t[:, 0], t[:, 1])[0].ravel()
            th = a + b * np.sinh(tt)
            with np.errstate(over="ignore"):
                lik = np.concatenate([_loglik(kind, x, n, th[:, None]), np.zeros((th.size, 1))], axis=1)
            out = lik + np.logaddexp(wide_part(th), narrow_part(th)) + np.log(b * np.cosh(tt))[:, None]
            out = out.reshape(len(new), _GL_N, k)
            for r, key in enumerate(new):
                cache[key] = out[r]
        return np.stack([cache[key] for key in zip(edges[:-1], edges[1:])])  # (P, 15, k)

    edges = np.linspace(math.asinh((lo - a) / b), math.asinh((hi - a) / b), _START_SHRINK + 1)
    for _ in range(40):
        lf = logf(edges)
        vals = np.exp(lf - np.max(lf, axis=(0, 1)))
        width = edges[-1] - edges[0]
        total = np.einsum("pnk,pn->k", vals, panel_nodes(edges[:-1], edges[1:])[1])
        if np.any(vals[0, 0] * width > 1e-14 * total) or np.any(vals[-1, -1] * width > 1e-14 * total):
            step = width / _START_SHRINK
            left = np.any(vals[0, 0] * width > 1e-14 * total)
            right = np.any(vals[-1, -1] * width > 1e-14 * total)
            edges = np.concatenate([edges[0] - step * np.arange(4, 0, -1) * left if left else [],
                                    edges, edges[-1] + step * np.arange(1, 5) if right else []])
            continue
        half = np.diff(edges) / 2
        bad = np.zeros(edges.size - 1, dtype=bool)
        for i in range(k):
            bad |= legendre_tail(vals[:, :, i], half) > _TOL * total[i]
        if not np.any(bad) or edges.size > _MAX_SHRINK:
            break
        edges = np.sort(np.concatenate([edges, (edges[:-1][bad] + edges[1:][bad]) / 2]))
    return [SinhDensity(PanelDensity(edges, vals[:, :, i]), a, b) for i in range(k)]


def _bayes_factors(kind, x, n, pm, pt, grid, se, log_z):
    """The log marginal likelihood and Bayes factors BF01 for tau = 0 and mu = 0 (proper priors
    only), each a one-dimensional adaptive Gauss-Legendre integral; and a note for a flat prior."""
    if pm.family != "normal":
        return math.nan, math.nan, math.nan, ("flat mu prior: the marginal likelihood and Bayes "
                                              "factors are undefined",)
    tm = grid.tm
    bf_tau0 = 0.0
    if pt.lower == 0:
        def lf0(m):
            return pm.logpdf(m) + np.sum(_loglik(kind, x, n, m[:, None]), axis=1)
        c0, d0 = grid.loc(np.array(0.0))
        _, _, w0, l0, m0 = adaptive_panels(lf0, float(c0 + d0 * se[0]), float(c0 + d0 * se[-1]),
                                           tol=1e-12)
        bf_tau0 = math.exp(m0 + math.log(np.sum(w0 * np.exp(l0 - m0))) - log_z)

    def lfm(u):
        tau = tm.tau(u)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (pt.logpdf(tau) + tm.logjac(u)
                   + np.sum(marginal_loglik(kind, x, n, np.zeros_like(tau), tau), axis=-1))
        return np.nan_to_num(out, nan=-np.inf)
    _, _, w1, l1, m1 = adaptive_panels(lfm, tm.lo, tm.hi, tol=1e-12)
    bf_mu0 = math.exp(m1 + math.log(np.sum(w1 * np.exp(l1 - m1))) - log_z)
    return bf_tau0, bf_mu0, log_z, ()


def _predictive(P, mu_g, tau_g, d_g, se, mu_dist, mean) -> Convolved:
    """A new study's effect mu + tau z over the grid (narrow rows as in _shrinkage)."""
    narrow = tau_g < d_g * np.min(np.diff(se)) / 4
    Pw = np.where(narrow[:, None], 0.0, P)
    keep = _prune(Pw.ravel(), 1e-10 * float(np.sum(Pw)))
    ti = np.unravel_index(keep, P.shape)[0]
    wide = Mixture(Pw.ravel()[keep], mu_g.ravel()[keep], tau_g[ti])
    live = P > 1e-300
    lo = float(np.min((mu_g - 40 * tau_g[:, None])[live]))
    hi = float(np.max((mu_g + 40 * tau_g[:, None])[live]))
    rows = _mass_rows(P, narrow)
    return Convolved(wide, mu_dist, rows, tau_g[rows], mu_g.ravel(), P.ravel(), mean, (lo, hi))


def _mass_rows(P, narrow, drop: float = 1e-11):
    """The narrow rows of the grid weights P but those whose masses sum to < drop."""
    rows = np.flatnonzero(narrow)
    return np.sort(rows[_prune(np.sum(P[rows], axis=1), drop)]) if rows.size else rows


def _fit(kind, x, n, labs, pm, pt, level, measure, excluded) -> BayesResult:
    y0, v0 = _start(kind, x, n)
    tm = TauMap(v0, pt)
    grid = _Grid(kind, x, n, pm, pt, tm)
    ue, se, lj, top = _posterior_grid(grid)
    uu, wu = panel_nodes(ue[:-1], ue[1:])
    ss, ws = panel_nodes(se[:-1], se[1:])
    wu, ws = wu.ravel(), ws.ravel()
    J = np.exp(lj - top)
    W = J * wu[:, None] * ws[None, :]
    Z = float(np.sum(W))
    P = W / Z
    log_z = top + math.log(Z)
    tau_g = tm.tau(uu.ravel())
    c_g, d_g = grid.loc(tau_g)
    mu_g = grid.evaluate(ue, se, per_study=4)

    tau_dist = PanelDensity(ue, (J @ ws).reshape(-1, _GL_N))
    mu_dist = RowDensity(se, J.reshape(J.shape[0], -1, _GL_N), wu, c_g, d_g, mu_g, P)

    def tau_cdf(t):
        return tau_dist.cdf(tm.u(np.atleast_1d(np.maximum(t, pt.lower))))

    def tau_pdf(t):
        t = np.atleast_1d(t)
        uu_ = tm.u(t)
        with np.errstate(over="ignore"):
            out = np.where(t < pt.lower, 0.0, tau_dist.pdf(uu_) * np.exp(-tm.logjac(uu_)))
        return out if out.size > 1 else float(out[0])

    # study-specific effects: posterior means by the grid, densities for medians and intervals
    e1 = grid.evaluate(ue, se, per_study=2)
    pos = P > 0
    theta_mean = np.sum(P[pos, None] * e1[pos], axis=0)
    pred_mean = float(np.sum(P * mu_g))
    a_t, b_t = float(np.median(y0)), float(math.sqrt(np.median(v0)))
    lo_t = min(float(np.min(y0 - 8 * np.sqrt(v0))), float(np.min(mu_g[P > 1e-12])))
    hi_t = max(float(np.max(y0 + 8 * np.sqrt(v0))), float(np.max(mu_g[P > 1e-12])))
    lli = grid.evaluate(ue, se, per_study=1)

    def thetas():  # the study densities, on first read of a shrunken estimate
        return _shrinkage(kind, x, n, lj - top, lli, se, wu, ws, tau_g, mu_g, c_g, d_g, a_t, b_t,
                          lo_t, hi_t)[:-1]
    # a new study's effect: the grid's mixture of normals where tau is wide, each row's density
    # of mu smoothed by N(0, tau^2) where tau is narrow (the mixture would be a comb there)
    pred = _predictive(P, mu_g, tau_g, d_g, se, mu_dist, pred_mean)
    # means that do not exist (a heavy-tailed tau prior the likelihood does not tame)
    interior = (x > 0) & ((x < n) if kind == "binomial" else True)
    moments = finite_moments(pt, int(np.sum(interior)) - (pm.family == "flat"))
    warns = tail_warnings(pt, moments, pm, counts=True)
    tau_mean = float(np.sum(tau_dist.w * tau_g)) if moments >= 1 else math.inf
    if moments < 1:
        theta_mean = np.where(interior, theta_mean, math.nan)
        pred_mean = math.nan
    mu_mean = mu_dist.mean() if moments >= 1 or pm.family == "normal" else math.nan
    mu_sd = mu_dist.sd() if moments >= 2 or pm.family == "normal" else math.nan
    lo_p, hi_p = (1 - level) / 2, (1 + level) / 2

    bf_tau0, bf_mu0, lml, more = _bayes_factors(kind, x, n, pm, pt, grid, se, log_z)
    warns = ("observed estimates in the forest plot add 1/2 to every count "
             "(display only; the model uses the exact likelihood)",) + warns + more

    model = "binomial-normal" if kind == "binomial" else "Poisson-normal"
    res = BayesResult(
        model=model, measure=measure, level=level, k=int(x.size), labels=labs, yi=readonly(y0),
        vi=readonly(v0), prior_mu=pm, prior_tau=pt, mu_mean=mu_mean, mu_sd=mu_sd,
        mu_median=mu_dist.quantile(0.5), mu_ci_lb=mu_dist.quantile(lo_p),
        mu_ci_ub=mu_dist.quantile(hi_p), mu_hpd_lb=math.nan, mu_hpd_ub=math.nan,
        tau_mean=tau_mean, tau_median=math.nan, tau_ci_lb=math.nan,
        tau_ci_ub=math.nan, tau_hpd_lb=math.nan, tau_hpd_ub=math.nan, pred_mean=pred_mean,
        pred_median=pred.quantile(0.5), pred_ci_lb=pred.quantile(lo_p), pred_ci_ub=pred.quantile(hi_p),
        pred_hpd_lb=math.nan, pred_hpd_ub=math.nan, theta_mean=readonly(theta_mean),
        theta_median=None, theta_ci_lb=None, theta_ci_ub=None, log_marginal_likelihood=float(lml), bf_tau0=float(bf_tau0), bf_mu0=float(bf_mu0),
        excluded=excluded, warnings=warns, n=readonly(n), events=readonly(x),
        algorithm=(f"exact integration: theta_i by adaptive Gauss-Hermite (narrow tau) or the "
                   f"Gaussian rule of its likelihood (wide tau); (tau, mu) on a {ue.size - 1} x "
                   f"{se.size - 1} grid of 15 x 15-node Gauss-Legendre panels in u and s (u for "
                   f"tau: {tm.describe()}; mu = c(tau) + d(tau) s)"),
        _tau_nodes=tau_g, _tau_w=tau_dist.w, _tau_cdf=tau_cdf, _tau_pdf=tau_pdf, _mu=mu_dist, _pred=pred)
    return complete(res, theta=thetas)


def _counts(kind, events, exposure, labels, name):
    x = np.atleast_1d(np.asarray(events, dtype=float))
    n = np.atleast_1d(np.asarray(exposure, dtype=float))
    if x.shape != n.shape or x.ndim != 1:
        raise ValueError(f"events and {name} must be one-dimensional and of the same length")
    labs = (tuple(str(i + 1) for i in range(x.size)) if labels is None
            else tuple(str(s) for s in np.atleast_1d(labels)))
    if len(labs) != x.size:
        raise ValueError("labels must have one entry per study")
    ok = np.isfinite(x) & np.isfinite(n)
    for i in np.flatnonzero(ok):
        if x[i] < 0 or x[i] != round(x[i]):
            raise ValueError(f"events of study {labs[i]!r} must be a whole number >= 0, got {x[i]:g}")
        if n[i] <= 0 or (kind == "binomial" and (n[i] != round(n[i]) or x[i] > n[i])):
            raise ValueError(f"{name} of study {labs[i]!r} must be " +
                             ("a whole number >= events" if kind == "binomial" else "> 0") +
                             f", got {n[i]:g}")
    excluded = tuple(Excluded(labs[i], f"events or {name} missing") for i in np.flatnonzero(~ok))
    if not np.any(ok):
        raise ValueError(f"no study left to pool (every events or {name} is missing)")
    return x[ok], n[ok], tuple(l for l, keep in zip(labs, ok) if keep), excluded


def _run(kind, events, exposure, name, measure, mu_prior, tau_prior, level, labels):
    level = check_level(level)
    pm, pt = _mu_prior(mu_prior), _tau_prior(tau_prior)
    x, n, labs, excluded = _counts(kind, events, exposure, labels, name)
    if pm.family == "flat":
        low = np.all(x == 0)
        high = kind == "binomial" and np.all(x == n)
        if low or high:
            raise ValueError("mu_prior flat: with " + ("no events" if low else "all events") +
                             " in every study the posterior of mu is improper; use a normal mu prior")
    return _fit(kind, x, n, labs, pm, pt, level, measure, excluded)


@accepts_data(("events", "total"))
def bayes_proportions(events: ArrayLike, total: ArrayLike, *, mu_prior=("normal", 0, 10),
                      tau_prior=("halfnormal", 0.5), level: float = 0.95,
                      labels: ArrayLike | None = None) -> BayesResult:
    """Bayesian binomial-normal random-effects meta-analysis of proportions (logit scale, measure
    PLO) by exact numerical integration; priors as :func:`metamsc.bayes`. No continuity
    correction: 0/n and n/n enter through their binomial likelihood.

    Parameters
    ----------
    events, total : array_like
        Events and patients per study (whole numbers, 0 <= events <= total).
    mu_prior, tau_prior : tuple
        Priors of the mean logit mu and of tau, as in :func:`metamsc.bayes` (default
        ``("normal", 0, 10)`` and ``("halfnormal", 0.5)``). A flat mu prior is refused when every
        study has 0 or every study has all events (the posterior would be improper).
    level : float
        Level of the posterior and predictive intervals.
    labels : array_like, optional
        A label per study.

    Returns
    -------
    BayesResult
        Posterior summaries of mu, tau and a new study's logit (equal-tailed and shortest
        intervals), each study's shrunken estimate, the marginal likelihood and Bayes factors,
        and ``natural`` (proportions). ``model`` is "binomial-normal".

    References
    ----------
    Friede T, Röver C, Wandel S, Neuenschwander B (2017). Meta-analysis of few small studies in
    orphan diseases. Res Synth Methods 8:79-91. Röver C (2020). Bayesian random-effects
    meta-analysis using the bayesmeta R package. J Stat Softw 93(6).

    Examples
    --------
    The review's PASI-40 responders (two of two and one of one need no correction):

    >>> import metamsc as mm
    >>> res = mm.bayes_proportions([8, 2, 1, 2, 1], [17, 2, 1, 2, 1])
    >>> round(res.mu_median, 3), round(res.tau_median, 3)
    (0.757, 0.462)
    >>> round(res.natural.estimate, 3)
    0.681
    """
    return _run("binomial", events, total, "total", "PLO", mu_prior, tau_prior, level, labels)


@accepts_data(("events", "time"))
def bayes_rates(events: ArrayLike, time: ArrayLike, *, mu_prior=("normal", 0, 10),
                tau_prior=("halfnormal", 0.5), level: float = 0.95,
                labels: ArrayLike | None = None) -> BayesResult:
    """Bayesian Poisson-normal random-effects meta-analysis of incidence rates (log rate, measure
    IRLN) by exact numerical integration; priors as :func:`metamsc.bayes`.

    Parameters
    ----------
    events, time : array_like
        Events (whole numbers) and person-time per study.
    mu_prior, tau_prior : tuple
        Priors of the mean log rate mu and of tau, as in :func:`metamsc.bayes`.
    level : float
        Level of the posterior and predictive intervals.
    labels : array_like, optional
        A label per study.

    Returns
    -------
    BayesResult
        As :func:`bayes_proportions`, with ``model`` "Poisson-normal" and ``natural`` in rates.

    References
    ----------
    Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R package. J Stat
    Softw 93(6). Friede T et al. (2017). Res Synth Methods 8:79-91.

    Examples
    --------
    >>> import metamsc as mm
    >>> res = mm.bayes_rates([3, 1, 0, 2], [100.0, 50.0, 40.0, 80.0])
    >>> round(res.mu_median, 2)
    -3.92
    """
    return _run("poisson", events, time, "time", "IRLN", mu_prior, tau_prior, level, labels)
