"""Numerics shared by the Bayesian models (metamsc.bayes, metamsc.bayes_glmm): the map of tau to
u in (0, 1) and the tails of its posterior, adaptive composite Gauss-Legendre quadrature, Gaussian
rules of a weight function, piecewise-Legendre posterior densities, finite normal mixtures,
quantiles by safeguarded Newton and shortest (highest-density) intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import special


# --- the tau axis and the tails of its posterior ----------------------------------------
def finite_moments(prior, decay: int) -> int:
    """How many moments of tau the posterior has, when the likelihood decays like tau^-decay as
    tau grows (normal-normal: decay = k, or k - 1 under a flat mu prior; an exact binomial- or
    Poisson-normal model: the number of studies with neither 0 nor all events, minus one under
    a flat mu prior): the tail of the posterior is that of the prior times tau^-decay. Light
    tails (half-normal, exponential, uniform, log-normal) have all (returns 99). Raises a
    ValueError when the posterior is improper."""
    if prior.family == "halfcauchy":
        b = 2.0
    elif prior.family == "halfstudent":
        b = float(prior.params[1]) + 1
    elif prior.family == "rhodes":  # log-t: p(tau) ~ tau^-1 (log tau)^-(df + 1)
        if decay < 0:
            raise ValueError(f"the posterior is improper: the likelihood grows like tau^{-decay} "
                             f"and the tau prior ({prior.label}) does not decay fast enough; "
                             "use a normal mu prior or a lighter tau prior")
        return min(decay, 99)
    else:
        return 99
    r = math.ceil(decay + b - 1) - 1  # moment r is finite iff r < decay + b - 1
    if r < 0:
        raise ValueError(f"the posterior is improper: its tail in tau is like tau^-{decay + b:g} "
                         f"(tau prior {prior.label}); use a normal mu prior or a lighter tau prior")
    return min(r, 99)


def tail_warnings(prior, moments: int, prior_mu, counts: bool = False
                  ) -> tuple[str, ...]:
    """The note on a posterior of tau whose mean (or sd) does not exist."""
    if moments >= 2:
        return ()
    if moments == 1:
        return (("the posterior sd of mu does not exist (flat mu prior, heavy-tailed tau prior); "
                 "mu_sd is NaN",) if prior_mu.family == "flat" else ())
    return (f"the posterior of tau has no mean (tau prior {prior.label} and a likelihood that "
            "does not decay fast enough in tau): tau_mean is inf; the means of a new study's "
            "effect" + (", of mu" if prior_mu.family == "flat" else "") +
            (" and of any study with 0 or all events" if counts else "") +
            " do not exist (NaN); medians and intervals are exact",)


class TauMap:
    """tau as a function of u in (0, 1) with log dtau/du: tau = c u / (1 - u), or for a prior on
    log tau with location m and scale s, log tau = m + s tan(pi (u - 1/2)) (heavy tails of log tau
    become smooth, vanishing ends in u)."""

    def __init__(self, v: np.ndarray, prior):
        self.log = prior.log_scale is not None
        if self.log:
            self.m, self.s = prior.log_scale
            self.lo, self.hi = 0.0, 1.0
        else:
            self.c = float(max(math.sqrt(np.median(v)), 1e-8))
            self.lo = self.u(np.array([prior.lower]))[0]
            self.hi = 1.0 if not math.isfinite(prior.upper) else self.u(np.array([prior.upper]))[0]

    def tau(self, u):
        u = np.asarray(u, dtype=float)
        with np.errstate(divide="ignore", over="ignore"):
            if self.log:
                return np.exp(np.clip(self.m + self.s * np.tan(math.pi * (u - 0.5)), -150.0, 150.0))
            return self.c * u / (1 - u)

    def logjac(self, u):
        u = np.asarray(u, dtype=float)
        with np.errstate(divide="ignore", over="ignore"):
            if self.log:
                a = math.pi * (u - 0.5)
                x = self.m + self.s * np.tan(a)
                # beyond |log tau| = 150 the mass is nil: zero there, consistent with tau()
                return np.where(np.abs(x) < 150.0, math.log(self.s * math.pi) - 2 * np.log(np.cos(a)) + x, -np.inf)
            return math.log(self.c) - 2 * np.log1p(-u)

    def u(self, t):
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.log:
                return 0.5 + np.arctan((np.log(t) - self.m) / self.s) / math.pi
            return np.where(np.isinf(t), 1.0, t / (t + self.c))

    def describe(self) -> str:
        if self.log:
            return f"log tau = {self.m:.4g} + {self.s:.4g} tan(pi (u - 1/2))"
        return f"u = tau/(tau + {self.c:.4g})"



# --- quadrature -----------------------------------------------------------------------------
_GL_X, _GL_W = np.polynomial.legendre.leggauss(15)
_GL7_X, _GL7_W = np.polynomial.legendre.leggauss(7)


def panel_nodes(a: np.ndarray, b: np.ndarray, x=_GL_X, w=_GL_W):
    half = (b - a)[:, None] / 2
    return (a[:, None] + half * (x + 1)), half * w


def adaptive_panels(logf: Callable[[np.ndarray], np.ndarray], a: float, b: float, *,
                    tol: float = 1e-13, start: int = 16, max_panels: int = 4000):
    """Composite Gauss-Legendre on [a, b] for a positive integrand given by its log: panels are
    bisected until the 15- and 7-point rules agree to ``tol`` relative to the whole integral.
    Returns (edges of the panels, nodes (P, 15), weights (P, 15), log f at the nodes, log scale
    M) so that the integral is exp(M) * sum(weights * exp(logf - M))."""
    edges = np.linspace(a, b, start + 1)
    lo, hi = edges[:-1], edges[1:]
    while True:
        x, w = panel_nodes(lo, hi)
        x7, w7 = panel_nodes(lo, hi, _GL7_X, _GL7_W)
        with np.errstate(all="ignore"):
            lf, lf7 = logf(x.ravel()).reshape(x.shape), logf(x7.ravel()).reshape(x7.shape)
        lf, lf7 = np.nan_to_num(lf, nan=-np.inf), np.nan_to_num(lf7, nan=-np.inf)
        m = max(np.max(lf), np.max(lf7))
        if not np.isfinite(m):
            raise ValueError("the posterior density is zero everywhere (prior and data incompatible?)")
        i15 = np.sum(w * np.exp(lf - m), axis=1)
        i7 = np.sum(w7 * np.exp(lf7 - m), axis=1)
        total = np.sum(i15)
        bad = np.abs(i15 - i7) > tol * total
        if not np.any(bad) or lo.size >= max_panels:
            return np.append(lo, hi[-1]), x, w, lf, m
        mid = (lo[bad] + hi[bad]) / 2
        lo = np.sort(np.concatenate([lo, mid]))
        hi = np.sort(np.concatenate([hi[~bad], mid, hi[bad]]))


def gauss_rule(logw: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, nodes: int,
               panels: int = 300) -> tuple[np.ndarray, np.ndarray, float]:
    """Gaussian quadrature for the positive weight function exp(logw) on [lo, hi] (outside it
    negligible): its three-term recurrence by the discretised Stieltjes procedure on a composite
    15-point Gauss-Legendre rule, nodes and weights by Golub & Welsch (1969) (Gautschi 2004,
    Orthogonal Polynomials, sec. 2.2.3). Returns nodes, normalised weights (sum 1) and the log
    of the total mass."""
    e = np.linspace(lo, hi, panels + 1)
    x, w = panel_nodes(e[:-1], e[1:])
    x, lw = x.ravel(), np.log(w.ravel()) + logw(x.ravel())
    top = float(np.max(lw))
    w = np.exp(lw - top)
    total = float(np.sum(w))
    w /= total
    alpha, beta = np.zeros(nodes), np.zeros(nodes)
    q_prev, q = np.zeros_like(x), np.ones_like(x)
    for j in range(nodes):
        r = x * q - beta[j] * q_prev
        alpha[j] = float(np.sum(w * q * r))
        r -= alpha[j] * q
        r -= np.sum(w * r * q) * q  # one re-orthogonalisation step
        if j + 1 < nodes:
            beta[j + 1] = math.sqrt(float(np.sum(w * r * r)))
            q_prev, q = q, r / beta[j + 1]
    ev, vec = np.linalg.eigh(np.diag(alpha) + np.diag(beta[1:], 1) + np.diag(beta[1:], -1))
    return ev, vec[0] ** 2, top + math.log(total)


@dataclass(frozen=True)
class Mixture:
    """A finite mixture of normals: weights, means, standard deviations."""

    w: np.ndarray
    m: np.ndarray
    s: np.ndarray

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        z = (x[..., None] - self.m) / self.s
        return np.sum(self.w * np.exp(-0.5 * z**2) / (self.s * math.sqrt(2 * math.pi)), axis=-1)

    def cdf(self, x):
        x = np.asarray(x, dtype=float)
        return np.sum(self.w * special.ndtr((x[..., None] - self.m) / self.s), axis=-1)

    def mean(self) -> float:
        return float(np.sum(self.w * self.m))

    def sd(self) -> float:
        mu = self.mean()
        return float(math.sqrt(max(np.sum(self.w * (self.s**2 + (self.m - mu) ** 2)), 0.0)))

    def quantile(self, p: float) -> float:
        sd = self.sd()
        x0 = self.mean() + sd * float(special.ndtri(p))
        lo = float(np.min(self.m - 40 * self.s))
        hi = float(np.max(self.m + 40 * self.s))
        return invert(self.cdf, self.pdf, p, x0, lo, hi)


def invert(cdf, pdf, p: float, x0: float, lo: float, hi: float, xtol: float = 1e-12) -> float:
    """x with cdf(x) = p: Newton steps kept inside a shrinking bracket [lo, hi], bisection when a
    step leaves it (exact to ``xtol``)."""
    x = min(max(x0, lo), hi)
    for _ in range(200):
        f = float(cdf(x)) - p
        if f > 0:
            hi = x
        else:
            lo = x
        d = float(pdf(x))
        step = f / d if d > 0 else math.inf
        x_new = x - step
        if abs(step) <= xtol * max(1.0, abs(x)):
            return float(x_new)
        if not (lo < x_new < hi) or not np.isfinite(x_new):
            x_new = 0.5 * (lo + hi)
        if abs(x_new - x) <= xtol * max(1.0, abs(x)) or hi - lo <= xtol * max(1.0, abs(x)):
            return float(x_new)
        x = x_new
    return float(x)


def shortest(quantile, pdf, level: float, lower_bound: float = -math.inf,
             upper_bound: float = math.inf, cdf=None) -> tuple[float, float]:
    """Shortest interval of a unimodal density: f(a) = f(b), or a at the bound of the support
    (Box & Tiao 1973, sec. 2.8). With ``cdf``: Newton on (a, b) for F(b) - F(a) = level and
    f(a) = f(b) from the equal-tailed interval (f' by central differences; a root search on the
    lower tail's probability if Newton fails)."""
    def h(p):
        return float(pdf(quantile(p)) - pdf(quantile(p + level)))

    eps = 1e-8
    if h(eps) >= 0:
        return (lower_bound if math.isfinite(lower_bound) else quantile(eps)), quantile(level)
    if h(1 - level - eps) <= 0:
        return quantile(1 - level), (upper_bound if math.isfinite(upper_bound) else quantile(1 - eps))
    if cdf is not None:
        got = _shortest_newton(cdf, pdf, level, quantile((1 - level) / 2), quantile((1 + level) / 2))
        if got is not None:
            return got
    from scipy.optimize import brentq

    p = brentq(h, eps, 1 - level - eps, xtol=1e-14)
    return quantile(p), quantile(p + level)


def _shortest_newton(cdf, pdf, level, a, b):
    """Newton's method for the shortest interval from (a, b); None if it does not converge."""
    for _ in range(40):
        fa, fb = float(pdf(a)), float(pdf(b))
        g1, g2 = float(cdf(b)) - float(cdf(a)) - level, fa - fb
        d = 1e-6 * (b - a)
        da = (float(pdf(a + d)) - float(pdf(a - d))) / (2 * d)
        db = (float(pdf(b + d)) - float(pdf(b - d))) / (2 * d)
        det = fa * db - fb * da  # Jacobian [[-fa, fb], [da, -db]]
        if not (fa > 0 and fb > 0 and det != 0 and np.isfinite(det)):
            return None
        sa = (-db * g1 - fb * g2) / det
        sb = (-da * g1 - fa * g2) / det
        step = max(abs(sa), abs(sb))
        if step > 0.5 * (b - a):
            return None
        a, b = a - sa, b - sb
        if step <= 1e-12 * max(1.0, abs(a), abs(b)) and abs(g1) < 1e-12:
            return a, b
    return None


# --- piecewise-Legendre densities -----------------------------------------------------------
_N = _GL_X.size
#: Legendre coefficients of the degree-14 interpolant from the values at the 15 Gauss nodes
#: (exact by the Gauss rule: c_j = (2j + 1) / 2 * sum_i w_i f(x_i) P_j(x_i))
_TO_LEG = (np.polynomial.legendre.legvander(_GL_X, _N - 1) * _GL_W[:, None]).T * (
    (2 * np.arange(_N) + 1) / 2)[:, None]
#: nodes per panel, and the map from a panel's node values to its Legendre coefficients
PANEL_NODES = _N
TO_LEGENDRE = _TO_LEG


def legendre_tail(values: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Size of the last three Legendre coefficients of each panel's interpolant times the
    panel's half-width: an estimate of the interpolation error of the panel's integral and CDF."""
    c = values @ _TO_LEG.T
    return np.sum(np.abs(c[:, -3:]), axis=1) * half


def _legvander(xi: np.ndarray, deg: int) -> np.ndarray:
    """Legendre polynomials P_0..P_deg at xi (rows): numpy's legvander, with a plain-float
    recurrence for one point (quantile searches evaluate one point at a time)."""
    if xi.size != 1:
        return np.polynomial.legendre.legvander(xi, deg)
    x = float(xi[0])
    out = [1.0, x]
    for j in range(2, deg + 1):
        out.append(((2 * j - 1) * x * out[-1] - (j - 1) * out[-2]) / j)
    return np.array([out[:deg + 1]])


class PanelDensity:
    """A density known at the 15 Gauss-Legendre nodes of each panel of [edges[0], edges[-1]]:
    pdf and CDF from the degree-14 Legendre interpolant of each panel (its integral is the Gauss
    rule's), quantiles by safeguarded Newton within the panel."""

    def __init__(self, edges: np.ndarray, values: np.ndarray):
        self.edges = np.asarray(edges, dtype=float)
        self.a = self.edges[:-1]
        self.half = np.diff(self.edges) / 2
        c = np.asarray(values, dtype=float) @ _TO_LEG.T
        ic = np.polynomial.legendre.legint(c.T, lbnd=-1).T * self.half[:, None]
        mass = np.polynomial.legendre.legval(1.0, ic.T)
        self.total = float(np.sum(mass))
        self.c = c / self.total
        self.ic = ic / self.total
        self.cum = np.concatenate([[0.0], np.cumsum(mass / self.total)])
        x, w = panel_nodes(self.a, self.edges[1:])
        self.x, self.w = x.ravel(), (w * np.asarray(values) / self.total).ravel()

    def _where(self, x):
        x = np.atleast_1d(np.asarray(x, dtype=float))
        j = np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, self.a.size - 1)
        xi = np.clip((x - self.a[j]) / self.half[j] - 1, -1.0, 1.0)
        return x, j, xi

    def pdf(self, x):
        x, j, xi = self._where(x)
        v = _legvander(xi, _N - 1)
        out = np.einsum("ij,ij->i", v, self.c[j])
        out = np.where((x < self.edges[0]) | (x > self.edges[-1]), 0.0, np.maximum(out, 0.0))
        return out if out.size > 1 else float(out[0])

    def cdf(self, x):
        x, j, xi = self._where(x)
        v = _legvander(xi, _N)
        out = np.clip(self.cum[j] + np.einsum("ij,ij->i", v, self.ic[j]), 0.0, 1.0)
        out = np.where(x <= self.edges[0], 0.0, np.where(x >= self.edges[-1], 1.0, out))
        return out if out.size > 1 else float(out[0])

    def mean(self) -> float:
        return float(np.sum(self.w * self.x))

    def sd(self) -> float:
        return float(math.sqrt(max(np.sum(self.w * (self.x - self.mean()) ** 2), 0.0)))

    def quantile(self, p: float) -> float:
        j = int(np.clip(np.searchsorted(self.cum, p) - 1, 0, self.a.size - 1))
        lo, hi = float(self.edges[j]), float(self.edges[j + 1])
        return invert(self.cdf, self.pdf, p, 0.5 * (lo + hi), lo, hi)


class RowDensity:
    """The marginal of x = c_r + d_r s over rows r of a grid in (u, s) with shared panels in s:
    f(x) = sum_r W_r f_r((x - c_r) / d_r) / d_r, each row's density f_r the piecewise-Legendre
    interpolant of its values at the 15 Gauss nodes of each s panel (as PanelDensity), W_r the
    row's quadrature weight times its mass. ``values``: (R, P, 15); ``nodes``: x at the grid's
    nodes (R, P * 15) and ``mass``: their normalised quadrature weights (for means and starts)."""

    def __init__(self, edges, values, weights, c, d, nodes, mass):
        self.edges = np.asarray(edges, dtype=float)
        self.a, self.half = self.edges[:-1], np.diff(self.edges) / 2
        coef = np.asarray(values, dtype=float) @ _TO_LEG.T  # (R, P, 15)
        ic = np.moveaxis(np.polynomial.legendre.legint(np.moveaxis(coef, 2, 0), lbnd=-1), 0, 2)
        ic = ic * self.half[None, :, None]
        pm = np.polynomial.legendre.legval(1.0, np.moveaxis(ic, 2, 0))  # (R, P)
        rw = np.asarray(weights, dtype=float) / float(np.sum(np.asarray(weights) * np.sum(pm, axis=1)))
        self.c, self.d = np.asarray(c, dtype=float), np.asarray(d, dtype=float)
        self.coef = coef * (rw / self.d)[:, None, None]
        self.ic = ic * rw[:, None, None]
        self.cum = np.concatenate([np.zeros((pm.shape[0], 1)), np.cumsum(pm * rw[:, None], axis=1)], axis=1)
        self.rows = np.arange(self.c.size)
        order = np.argsort(np.ravel(nodes))
        self.x_sorted, self.cum_nodes = np.ravel(nodes)[order], np.cumsum(np.ravel(mass)[order])
        self.x, self.w = np.ravel(nodes), np.ravel(mass)

    def _where(self, x):
        s = (float(x) - self.c) / self.d
        j = np.clip(np.searchsorted(self.edges, s, side="right") - 1, 0, self.a.size - 1)
        xi = np.clip((s - self.a[j]) / self.half[j] - 1, -1.0, 1.0)
        return s, j, xi

    def _pdf1(self, x) -> float:
        s, j, xi = self._where(x)
        inside = (s >= self.edges[0]) & (s <= self.edges[-1])
        v = np.polynomial.legendre.legvander(xi, _N - 1)
        return max(float(np.sum(np.einsum("ij,ij->i", v, self.coef[self.rows, j])[inside])), 0.0)

    def _cdf1(self, x) -> float:
        s, j, xi = self._where(x)
        v = np.polynomial.legendre.legvander(xi, _N)
        part = self.cum[self.rows, j] + np.einsum("ij,ij->i", v, self.ic[self.rows, j])
        part = np.where(s <= self.edges[0], 0.0, np.where(s >= self.edges[-1], self.cum[:, -1], part))
        return min(max(float(np.sum(part)), 0.0), 1.0)

    def rows_at(self, rows: np.ndarray, x: np.ndarray, cdf: bool) -> np.ndarray:
        """Each listed row's share of the CDF (or the pdf) at its own points x (R, Z)."""
        s = (x - self.c[rows, None]) / self.d[rows, None]
        j = np.clip(np.searchsorted(self.edges, s, side="right") - 1, 0, self.a.size - 1)
        xi = np.clip((s - self.a[j]) / self.half[j] - 1, -1.0, 1.0)
        r = np.broadcast_to(rows[:, None], s.shape)
        if cdf:
            v = np.polynomial.legendre.legvander(xi, _N)
            val = self.cum[r, j] + np.einsum("rzd,rzd->rz", v, self.ic[r, j])
            return np.where(s <= self.edges[0], 0.0,
                            np.where(s >= self.edges[-1], self.cum[rows, -1][:, None], val))
        v = np.polynomial.legendre.legvander(xi, _N - 1)
        val = np.maximum(np.einsum("rzd,rzd->rz", v, self.coef[r, j]), 0.0)
        return np.where((s < self.edges[0]) | (s > self.edges[-1]), 0.0, val)

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        out = np.array([self._pdf1(t) for t in x.ravel()]).reshape(x.shape)
        return float(out) if out.ndim == 0 else out

    def cdf(self, x):
        x = np.asarray(x, dtype=float)
        out = np.array([self._cdf1(t) for t in x.ravel()]).reshape(x.shape)
        return float(out) if out.ndim == 0 else out

    def mean(self) -> float:
        return float(np.sum(self.w * self.x))

    def sd(self) -> float:
        return float(math.sqrt(max(np.sum(self.w * (self.x - self.mean()) ** 2), 0.0)))

    def quantile(self, p: float) -> float:
        j = int(np.clip(np.searchsorted(self.cum_nodes, p), 0, self.x_sorted.size - 1))
        lo = float(np.min(self.c + self.d * self.edges[0]))
        hi = float(np.max(self.c + self.d * self.edges[-1]))
        return invert(self._cdf1, self._pdf1, p, float(self.x_sorted[j]), lo, hi)


class SinhDensity:
    """A density of theta = a + b sinh(t) given as a PanelDensity of t (heavy tails of theta
    become light tails of t)."""

    def __init__(self, dist: PanelDensity, a: float, b: float):
        self.dist, self.a, self.b = dist, a, b

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        out = self.dist.pdf(np.arcsinh((x - self.a) / self.b)) / np.hypot(self.b, x - self.a)
        return float(out) if np.ndim(out) == 0 else out

    def cdf(self, x):
        return self.dist.cdf(np.arcsinh((np.asarray(x, dtype=float) - self.a) / self.b))

    def mean(self) -> float:
        return float(np.sum(self.dist.w * (self.a + self.b * np.sinh(self.dist.x))))

    def quantile(self, p: float) -> float:
        return float(self.a + self.b * math.sinh(self.dist.quantile(p)))


_GHS_X, _GHS_W = np.polynomial.hermite.hermgauss(16)


class Convolved:
    """The distribution of mu + tau z, z ~ N(0, 1) (a new study's effect), over a (tau, mu)
    grid: rows whose tau is wide against their mu panels as the grid's mixture of normals
    (``wide``: weights are masses), narrow rows, where that mixture would be a comb, as their
    piecewise-Legendre distribution of mu (``rows`` of ``dens``) smoothed by 16-node
    Gauss-Hermite in z. ``nodes``, ``mass``: the grid's means and masses (start values)."""

    def __init__(self, wide: Mixture, dens: RowDensity, rows, tau_rows, nodes, mass, mean, bounds):
        self.wide, self.dens, self.rows = wide, dens, np.asarray(rows, dtype=int)
        self.shift = math.sqrt(2) * np.asarray(tau_rows, dtype=float)[:, None] * _GHS_X
        self.gw = _GHS_W / math.sqrt(math.pi)
        order = np.argsort(nodes)
        self.x_sorted, self.cum_nodes = np.asarray(nodes)[order], np.cumsum(np.asarray(mass)[order])
        self._mean, self.bounds = mean, bounds

    def _part(self, x: float, cdf: bool) -> float:
        if self.rows.size == 0:
            return 0.0
        return float(np.sum(self.dens.rows_at(self.rows, x - self.shift, cdf) @ self.gw))

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        out = np.array([float(self.wide.pdf(t)) + self._part(t, False) for t in x.ravel()])
        return float(out[0]) if x.ndim == 0 else out.reshape(x.shape)

    def cdf(self, x):
        x = np.asarray(x, dtype=float)
        out = np.array([min(max(float(self.wide.cdf(t)) + self._part(t, True), 0.0), 1.0)
                        for t in x.ravel()])
        return float(out[0]) if x.ndim == 0 else out.reshape(x.shape)

    def mean(self) -> float:
        return self._mean

    def quantile(self, p: float) -> float:
        j = int(np.clip(np.searchsorted(self.cum_nodes, p), 0, self.x_sorted.size - 1))
        return invert(self.cdf, self.pdf, p, float(self.x_sorted[j]), *self.bounds)
