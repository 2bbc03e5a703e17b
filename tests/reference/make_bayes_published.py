"""Brute-force posteriors for the published bayesmeta examples -> bayes_published.json.

The published numbers themselves are quoted (with their source) in tests/test_bayes_published.py;
this script holds the examples' data and priors and integrates each joint posterior
p(mu, tau | y) numerically in BOTH parameters on a dense tensor grid (mu is not integrated
analytically, unlike metamsc and bayesmeta), so that a disagreement between metamsc and a
published value can be assigned to one side. It runs every example at two grid sizes and stores
the larger grid's values and, per quantity, the change between the two ("grid_change", an
estimate of the reference's own error).

Run (a few minutes):  python tests/reference/make_bayes_published.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import optimize, special, stats

from make_bayes_fixtures import _gl, tau_logprior  # same folder: the tau prior densities

OUT = Path(__file__).with_name("bayes_published.json")

# --- the examples -----------------------------------------------------------------------------
# Rubin DB (1981) J Educ Stat 6(4):377-401, the "eight schools" (bayesmeta data set Rubin1981,
# as printed in the bayesmeta vignette): effect (score increase) and its standard error
SCHOOLS = dict(labels=list("ABCDEFGH"),
               y=[28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16],
               se=[14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6])
# Crins ND et al. (2014) Pediatr Transplant 18(8):839-850 as in Röver (2020) J Stat Softw 93(6),
# Table 3: acute rejections a/n1 (IL-2RA) and c/n2 (control); log odds ratios as escalc("OR")
# (0.5 added to every cell of the study with a zero cell)
CRINS_COUNTS = dict(labels=["Heffron (2003)", "Gibelli (2004)", "Schuller (2005)", "Ganschow (2005)",
                            "Spada (2006)", "Gras (2008)"],
                    a=[14, 16, 3, 9, 4, 0], n1=[61, 28, 18, 54, 36, 50],
                    c=[15, 19, 8, 29, 11, 3], n2=[20, 28, 12, 54, 36, 34])
#: improper uniform prior of tau (bayesmeta's default, tau.prior = "uniform") stands in here and
#: in the tests as uniform(0, UNIFORM_UPPER): the posterior mass above it is below 1e-12 for the
#: eight schools (their likelihood falls off like tau^-7), which the test checks by comparing
#: with upper = 10 x UNIFORM_UPPER
UNIFORM_UPPER = 1e4


def crins_logor():
    a, n1, c, n2 = (np.array(CRINS_COUNTS[k], float) for k in ("a", "n1", "c", "n2"))
    b, d = n1 - a, n2 - c
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    a, b, c, d = (u + 0.5 * zero for u in (a, b, c, d))
    return list(np.log(a * d / (b * c))), list(1 / a + 1 / b + 1 / c + 1 / d)


def examples():
    sy, sv = SCHOOLS["y"], [s * s for s in SCHOOLS["se"]]
    cy, cv = crins_logor()
    rct = [0, 4]  # the two randomized studies, Heffron (2003) and Spada (2006)
    return [
        # name, labels, y, v, mu prior, tau prior (metamsc form), grid: tau scale, mu half-width,
        # extra quantities, studies whose shrinkage is published
        dict(name="schools_hc25_n50", labels=SCHOOLS["labels"], yi=sy, vi=sv,
             mu_prior=["normal", 0, 50], tau_prior=["halfcauchy", 25], tau_scale=10.0, mu_width=150.0,
             shrinkage=[0, 6, 7], extra=["mu_q95", "p_mu_gt0", "tau_q95"]),
        # (with the flat priors, mu given a large tau spreads like tau / sqrt(k): the mu grid
        # is extended by geometrically growing panels out to 4 x the tau prior's upper bound)
        dict(name="schools_uniform_flat", labels=SCHOOLS["labels"], yi=sy, vi=sv,
             mu_prior=["flat"], tau_prior=["uniform", 0, UNIFORM_UPPER], tau_scale=10.0, mu_width=150.0,
             mu_tail=4 * UNIFORM_UPPER, shrinkage=[], extra=[]),
        dict(name="crins_hn05_n4", labels=CRINS_COUNTS["labels"], yi=cy, vi=cv,
             mu_prior=["normal", 0, 4], tau_prior=["halfnormal", 0.5], tau_scale=0.5, mu_width=12.0,
             shrinkage=[0, 1], extra=["p_mu_gt0", "p_tau_gt1", "tau_q99", "tau_q005", "tau_q995"]),
        dict(name="crins_rct_hn05_n4", labels=[CRINS_COUNTS["labels"][i] for i in rct],
             yi=[cy[i] for i in rct], vi=[cv[i] for i in rct], mu_prior=["normal", 0, 4],
             tau_prior=["halfnormal", 0.5], tau_scale=0.5, mu_width=14.0, shrinkage=[],
             extra=["p_mu_le0"]),
    ]


def _logprior_tau(tp):
    """log prior density of tau, evaluated on arrays."""
    if tp[0] == "uniform":
        lo, hi = tp[1], tp[2]
        return lambda t: np.where((t >= lo) & (t <= hi), -math.log(hi - lo), -np.inf)
    if tp[0] in ("halfnormal", "halfcauchy"):  # these densities accept arrays as written
        return tau_logprior(tp[0], tp[1:])
    return np.vectorize(tau_logprior(tp[0], tp[1:]), otypes=[float])


class Posterior:
    """The joint posterior on a tensor grid: tau = c s / (1 - s) with s on ns Gauss-Legendre panels
    of (0, 1) (cut at the prior's upper bound), mu on nm panels of m0 +/- width; 20 nodes a panel."""

    def __init__(self, ex, ns, nm):
        self.y, self.v = np.asarray(ex["yi"], float), np.asarray(ex["vi"], float)
        self.mp = ex["mu_prior"]
        self.lpt = _logprior_tau(ex["tau_prior"])
        c = ex["tau_scale"]
        s_hi = 1.0
        if ex["tau_prior"][0] == "uniform":
            s_hi = ex["tau_prior"][2] / (c + ex["tau_prior"][2])
        self.c, self.ns = c, ns
        self.s_edges = np.linspace(0.0, s_hi, ns + 1)
        m0 = float(np.sum(self.y / self.v) / np.sum(1 / self.v))
        w = ex["mu_width"]
        self.m_edges = np.linspace(m0 - w, m0 + w, nm + 1)
        if ex.get("mu_tail"):  # panels growing by 1.25 a step beyond m0 +/- w
            step = 2 * w / nm
            grow = [w + step * 1.25 ** k for k in range(1, 200) if w + step * 1.25 ** (k - 1) < ex["mu_tail"]]
            grow = m0 + np.cumsum(np.diff([0.0] + [g - w for g in grow])) + w
            self.m_edges = np.concatenate([2 * m0 - grow[::-1], self.m_edges, grow])
            nm = self.m_edges.size - 1
        self.nm = nm
        sg, sw = _gl(0.0, s_hi, ns)
        self.tg, self.tw = c * sg / (1 - sg), c * sw / (1 - sg) ** 2
        h = (self.m_edges[1:] - self.m_edges[:-1])[:, None] / 2
        x, wq = np.polynomial.legendre.leggauss(20)
        self.mg = (self.m_edges[:-1, None] + h * (x + 1)).ravel()
        self.mw = (h * wq).ravel()
        L = self.logjoint(self.mg, self.tg)
        self.shift = float(np.max(L))
        J = np.exp(L - self.shift) * self.tw[:, None] * self.mw[None, :]
        self.Z = float(J.sum())
        self.P = J / self.Z
        self.tau_marg = self.P.sum(axis=1)
        self.mu_marg = self.P.sum(axis=0)
        self.tau_cum = np.concatenate([[0.0], np.cumsum(self.tau_marg.reshape(ns, -1).sum(axis=1))])
        self.mu_cum = np.concatenate([[0.0], np.cumsum(self.mu_marg.reshape(nm, -1).sum(axis=1))])
        self.xg, self.wg = np.polynomial.legendre.leggauss(20)

    def logjoint(self, m, t):  # m (M,), t (T,) -> (T, M): log p(y | mu, tau) p(mu) p(tau)
        ll = np.zeros((t.size, m.size))
        for yi, vi in zip(self.y, self.v):
            s2 = (vi + t * t)[:, None]
            ll -= 0.5 * (np.log(2 * math.pi * s2) + (yi - m[None, :]) ** 2 / s2)
        lpm = 0.0 if self.mp[0] == "flat" else stats.norm.logpdf(m, self.mp[1], self.mp[2])[None, :]
        with np.errstate(divide="ignore"):
            return ll + lpm + self.lpt(t)[:, None]

    def _partial(self, a, b):
        h = (b - a) / 2
        return a + h * (self.xg + 1), h * self.wg

    # marginal densities and CDFs (whole panels + the partial panel by its own 20-point rule)
    def tau_pdf(self, t):
        return float(np.sum(np.exp(self.logjoint(self.mg, np.array([t])) - self.shift) * self.mw)) / self.Z

    def tau_cdf(self, x):
        sx = x / (self.c + x)
        j = min(int(np.searchsorted(self.s_edges, sx, side="right")) - 1, self.ns - 1)
        sn, swn = self._partial(self.s_edges[j], sx)
        tn, twn = self.c * sn / (1 - sn), self.c * swn / (1 - sn) ** 2
        part = float(np.sum(np.exp(self.logjoint(self.mg, tn) - self.shift) * twn[:, None] * self.mw[None, :]))
        return float(self.tau_cum[j]) + part / self.Z

    def mu_pdf(self, m):
        return float(np.sum(np.exp(self.logjoint(np.array([m]), self.tg) - self.shift)[:, 0] * self.tw)) / self.Z

    def mu_cdf(self, x):
        j = min(max(int(np.searchsorted(self.m_edges, x, side="right")) - 1, 0), self.nm - 1)
        mn, mwn = self._partial(self.m_edges[j], x)
        part = float(np.sum(np.exp(self.logjoint(mn, self.tg) - self.shift) * self.tw[:, None] * mwn[None, :]))
        return float(self.mu_cum[j]) + part / self.Z

    # a new study's effect and study i's effect: normal given (mu, tau) with a standard deviation
    # of at most tau, so their CDFs and densities at x are integrals over mu of a step (a spike)
    # at mu ~ x as tau -> 0. They are summed over a grid whose mu panels are graded
    # geometrically toward x (panel widths halving K = 30 times), which resolves the step down
    # to tau ~ 1e-9 of the panel width.
    def _graded(self, x, K=30):
        j = min(max(int(np.searchsorted(self.m_edges, x, side="right")) - 1, 0), self.nm - 1)
        a, b = self.m_edges[j], self.m_edges[j + 1]
        left = x - (x - a) * 0.5 ** np.arange(K + 1)
        right = x + (b - x) * 0.5 ** np.arange(K + 1)[::-1]
        edges = np.concatenate([self.m_edges[:j], left, right, self.m_edges[j + 2:]])
        h = (edges[1:] - edges[:-1])[:, None] / 2
        mn = (edges[:-1, None] + h * (self.xg + 1)).ravel()
        mw = (h * self.wg).ravel()
        keep = mw > 0
        mn, mw = mn[keep], mw[keep]
        P = np.exp(self.logjoint(mn, self.tg) - self.shift) * self.tw[:, None] * mw[None, :] / self.Z
        return mn[None, :], P

    def pred_cdf(self, x):
        M, P = self._graded(x)
        return float(np.sum(P * special.ndtr((x - M) / self.tg[:, None])))

    def pred_pdf(self, x):
        M, P = self._graded(x)
        T = self.tg[:, None]
        return float(np.sum(P * stats.norm.pdf((x - M) / T) / T))

    def _theta(self, i, M):
        T2 = (self.tg * self.tg)[:, None]
        prec = 1 / self.v[i] + 1 / T2
        return (self.y[i] / self.v[i] + M / T2) / prec, 1 / np.sqrt(prec)

    def theta_cdf(self, i, x):
        M, P = self._graded(x)
        m, s = self._theta(i, M)
        return float(np.sum(P * special.ndtr((x - m) / s)))

    def theta_mean(self, i):
        return float(np.sum(self.P * self._theta(i, self.mg[None, :])[0]))


def _q(cdf, p, lo, hi):
    return optimize.brentq(lambda x: cdf(x) - p, lo, hi, xtol=1e-12, rtol=1e-14)


def _shortest(cdf, pdf, lo, hi, level=0.95):
    """The shortest interval [a, b] of a unimodal density: cdf(b) - cdf(a) = level and
    pdf(a) = pdf(b); b(a) by Newton steps on the CDF, a by brentq on pdf(a) - pdf(b(a))."""
    b_prev = [_q(cdf, level, lo, hi)]

    def b_of(a):
        target = cdf(a) + level
        try:
            b = optimize.newton(lambda x: cdf(x) - target, b_prev[0], fprime=pdf, tol=1e-12, maxiter=50)
        except RuntimeError:
            b = _q(cdf, target, lo, hi)
        b_prev[0] = b
        return b

    # (the lower end lies between the 0.2% and 4.8% quantiles in every example here)
    a0, a1 = _q(cdf, 0.002, lo, hi), _q(cdf, 1 - level - 0.002, lo, hi)
    a = optimize.brentq(lambda a: pdf(a) - pdf(b_of(a)), a0, a1, xtol=1e-12, rtol=1e-14)
    return float(a), float(b_of(a))


def summarize(ex, ns, nm, pred=True):
    post = Posterior(ex, ns, nm)
    tg, mg, P = post.tg, post.mg, post.P
    m0, w = float(np.mean(post.m_edges)), ex["mu_width"]
    mlo, mhi = m0 - 0.9 * w, m0 + 0.9 * w
    thi = 50 * ex["tau_scale"]
    out = {}
    out["tau_mean"] = float(np.sum(post.tau_marg * tg))
    out["tau_sd"] = math.sqrt(float(np.sum(post.tau_marg * tg * tg)) - out["tau_mean"] ** 2)
    out["mu_mean"] = float(np.sum(post.mu_marg * mg))
    out["mu_sd"] = math.sqrt(float(np.sum(post.mu_marg * mg * mg)) - out["mu_mean"] ** 2)
    for tag, p in (("lb", 0.025), ("median", 0.5), ("ub", 0.975)):
        out[f"tau_{'ci_' if tag != 'median' else ''}{tag}"] = _q(post.tau_cdf, p, 0.0, thi)
        out[f"mu_{'ci_' if tag != 'median' else ''}{tag}"] = _q(post.mu_cdf, p, mlo, mhi)
    # shortest intervals; tau's is [0, 95% quantile] when its density at 0 is at least that at
    # the 95% quantile
    q95 = _q(post.tau_cdf, 0.95, 0.0, thi)
    if post.tau_pdf(0.0) >= post.tau_pdf(q95):
        out["tau_hpd_lb"], out["tau_hpd_ub"] = 0.0, q95
    else:
        out["tau_hpd_lb"], out["tau_hpd_ub"] = _shortest(post.tau_cdf, post.tau_pdf, 0.0, thi)
    out["mu_hpd_lb"], out["mu_hpd_ub"] = _shortest(post.mu_cdf, post.mu_pdf, mlo, mhi)
    if "mu_q95" in ex["extra"]:
        out["mu_q95"] = _q(post.mu_cdf, 0.95, mlo, mhi)
    if "tau_q95" in ex["extra"]:
        out["tau_q95"] = q95
    if "p_mu_gt0" in ex["extra"]:
        out["p_mu_gt0"] = 1 - post.mu_cdf(0.0)
    if "p_mu_le0" in ex["extra"]:
        out["p_mu_le0"] = post.mu_cdf(0.0)
    if "p_tau_gt1" in ex["extra"]:
        out["p_tau_gt1"] = 1 - post.tau_cdf(1.0)
    for key, p in (("tau_q99", 0.99), ("tau_q005", 0.005), ("tau_q995", 0.995)):
        if key in ex["extra"]:
            out[key] = _q(post.tau_cdf, p, 0.0, thi)
    if pred:
        # a new study's and the studies' effects on a grid half as fine (and graded toward x,
        # see Posterior._graded), to keep the run short
        post = Posterior(ex, ns // 2, nm // 2)
        tg = post.tg
        plo, phi = m0 - 1.5 * w, m0 + 1.5 * w
        out["pred_median"] = _q(post.pred_cdf, 0.5, plo, phi)
        out["pred_mean"] = out["mu_mean"]
        out["pred_sd"] = math.sqrt(out["mu_sd"] ** 2 + float(np.sum(post.tau_marg * tg * tg)))
        out["pred_hpd_lb"], out["pred_hpd_ub"] = _shortest(post.pred_cdf, post.pred_pdf, plo, phi)
        for i in ex["shrinkage"]:
            out[f"theta{i}_median"] = _q(lambda x: post.theta_cdf(i, x), 0.5, mlo, mhi)
            out[f"theta{i}_mean"] = post.theta_mean(i)
    return out


def _run(args):
    ex, ns, nm = args
    print(ex["name"], ns, nm, flush=True)
    return summarize(ex, ns, nm)


def main():
    from multiprocessing import Pool

    exs = examples()
    jobs = [(ex, ns, nm) for ex in exs for ns, nm in ((60, 120), (120, 240))]
    with Pool(2) as pool:
        res = pool.map(_run, jobs)
    cases = []
    for j, ex in enumerate(exs):
        coarse, fine = res[2 * j], res[2 * j + 1]
        case = {k: ex[k] for k in ("name", "labels", "yi", "vi", "mu_prior", "tau_prior")}
        case["expected"] = fine
        case["grid_change"] = {k: abs(fine[k] - coarse[k]) for k in fine}
        cases.append(case)
    doc = {"_note": "written by tests/reference/make_bayes_published.py: brute-force integration "
                    "over (mu, tau) on a dense Gauss-Legendre tensor grid (60 x 120 and 120 x 240 "
                    "panels of 20 nodes in tau x mu; 'expected' from the larger, 'grid_change' the "
                    "difference between the two)",
           "uniform_upper": UNIFORM_UPPER, "examples": cases}
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
