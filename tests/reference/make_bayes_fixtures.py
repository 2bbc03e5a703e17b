"""Brute-force reference values for metamsc.bayes -> bayes.json.

Independent of metamsc's algorithm: the joint posterior p(mu, tau | y) of the normal-normal model
is integrated numerically in BOTH parameters on a dense tensor grid (mu is NOT integrated
analytically here; the study effects theta_i are), see normal_normal().

Run (takes about a minute):  python tests/reference/make_bayes_fixtures.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import integrate, optimize, special, stats

OUT = Path(__file__).with_name("bayes.json")


def tau_logprior(name, p):
    if name == "halfnormal":
        return lambda t: math.log(2) + stats.norm.logpdf(t, scale=p[0])
    if name == "halfcauchy":
        return lambda t: math.log(2) + stats.cauchy.logpdf(t, scale=p[0])
    if name == "exponential":
        return lambda t: stats.expon.logpdf(t, scale=1 / p[0])
    if name == "lognormal":  # on tau
        return lambda t: stats.lognorm.logpdf(t, s=p[1], scale=math.exp(p[0])) if t > 0 else -math.inf
    if name == "lognormal_tau2":  # Turner et al.: log-normal on tau^2, density of tau by change of variable
        return lambda t: (stats.lognorm.logpdf(t * t, s=p[1], scale=math.exp(p[0])) + math.log(2 * t)
                          if t > 0 else -math.inf)
    raise ValueError(name)


def _gl(a, b, panels, nodes=20):
    """Composite Gauss-Legendre nodes and weights on [a, b]."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    e = np.linspace(a, b, panels + 1)
    h = (e[1:] - e[:-1])[:, None] / 2
    return (e[:-1, None] + h * (x + 1)).ravel(), (h * w).ravel()


def normal_normal(y, v, mu_prior, tau_name, tau_par, probs=(0.025, 0.5, 0.975)):
    """Brute force over the joint posterior of (mu, tau): a dense tensor grid (composite
    Gauss-Legendre, 20 nodes per panel: mu on 100 panels over the mean +/- 25, tau = s / (1 - s)
    on 120 panels of s in (0, 1)), no analytic integration; quantiles of tau and mu by brentq on
    the grid's cumulative panel sums plus a 20-point rule on the partial panel, of a new study
    and theta_1 by brentq on grid sums."""
    y, v = np.asarray(y, float), np.asarray(v, float)
    lp_tau = np.vectorize(tau_logprior(tau_name, tau_par))
    flat = mu_prior[0] == "flat"
    m0 = float(np.sum(y / v) / np.sum(1 / v))
    mg, mw = _gl(m0 - 25, m0 + 25, 100)
    sg, sw = _gl(0.0, 1.0, 120)
    tg, tw = sg / (1 - sg), sw / (1 - sg) ** 2

    def logjoint(m, t):  # m (M,), t (T,) -> (T, M)
        ll = np.zeros((t.size, m.size))
        for yi, vi in zip(y, v):
            s2 = (vi + t * t)[:, None]
            ll -= 0.5 * (np.log(2 * math.pi * s2) + (yi - m[None, :]) ** 2 / s2)
        lpm = 0.0 if flat else stats.norm.logpdf(m, mu_prior[1], mu_prior[2])[None, :]
        with np.errstate(divide="ignore"):
            return ll + lpm + lp_tau(t)[:, None]

    L = logjoint(mg, tg)
    shift = float(np.max(L))
    J = np.exp(L - shift) * tw[:, None] * mw[None, :]
    Z = float(J.sum())
    P = J / Z
    out = {"log_marginal_likelihood": None if flat else math.log(Z) + shift}
    out["tau_mean"] = float(np.sum(P.sum(axis=1) * tg))
    out["mu_mean"] = float(np.sum(P.sum(axis=0) * mg))

    # CDFs of tau and mu: the grid's whole panels below x, plus the partial panel integrated by
    # its own 20-point Gauss-Legendre rule on [panel start, x] (the marginal densities are
    # smooth, so this is exact to rounding; no adaptive quadrature needed)
    s_edges = np.linspace(0.0, 1.0, 121)
    m_edges = np.linspace(m0 - 25, m0 + 25, 101)
    tau_cum = np.concatenate([[0.0], np.cumsum(P.sum(axis=1).reshape(120, -1).sum(axis=1))])
    mu_cum = np.concatenate([[0.0], np.cumsum(P.sum(axis=0).reshape(100, -1).sum(axis=1))])
    xg, wg = np.polynomial.legendre.leggauss(20)

    def _partial(a, b):
        h = (b - a) / 2
        return a + h * (xg + 1), h * wg

    def tau_cdf(x):
        sx = x / (1 + x)
        j = min(int(np.searchsorted(s_edges, sx, side="right")) - 1, 119)
        sn, sw_ = _partial(s_edges[j], sx)
        tn, twn = sn / (1 - sn), sw_ / (1 - sn) ** 2
        part = float(np.sum(np.exp(logjoint(mg, tn) - shift) * twn[:, None] * mw[None, :])) / Z
        return float(tau_cum[j]) + part

    def mu_cdf(x):
        j = min(max(int(np.searchsorted(m_edges, x, side="right")) - 1, 0), 99)
        mn, mwn = _partial(m_edges[j], x)
        part = float(np.sum(np.exp(logjoint(mn, tg) - shift) * tw[:, None] * mwn[None, :])) / Z
        return float(mu_cum[j]) + part

    T = tg[:, None]
    M = mg[None, :]

    def pred_cdf(x):
        return float(np.sum(P * special.ndtr((x - M) / T)))

    def theta_cdf(i, x):
        prec = 1 / v[i] + 1 / (T * T)
        return float(np.sum(P * special.ndtr((x - (y[i] / v[i] + M / (T * T)) / prec) * np.sqrt(prec))))

    def q(cdf, p, lo, hi):
        return optimize.brentq(lambda x: cdf(x) - p, lo, hi, xtol=1e-10)

    for p in probs:
        tag = {0.025: "lb", 0.5: "median", 0.975: "ub"}[p]
        out[f"tau_{tag}"] = q(tau_cdf, p, 0.0, 30.0)
        out[f"mu_{tag}"] = q(mu_cdf, p, m0 - 20, m0 + 20)
        if p != 0.5:
            out[f"pred_{tag}"] = q(pred_cdf, p, m0 - 40, m0 + 40)
    out["theta1_median"] = q(lambda x: theta_cdf(0, x), 0.5, m0 - 20, m0 + 20)
    if not flat:
        # p(y | tau = 0) and p(y | mu = 0): Bayes factors BF01 = p(y | H0) / p(y)
        l0 = -0.5 * np.sum(np.log(2 * math.pi * v)[None, :] + (y[None, :] - mg[:, None]) ** 2 / v[None, :], axis=1)
        l0 = l0 + stats.norm.logpdf(mg, mu_prior[1], mu_prior[2])
        out["bf_tau0"] = float(np.sum(np.exp(l0 - shift) * mw)) / Z
        s2 = v[None, :] + (tg * tg)[:, None]
        with np.errstate(divide="ignore"):
            lm0 = -0.5 * np.sum(np.log(2 * math.pi * s2) + y[None, :] ** 2 / s2, axis=1) + lp_tau(tg)
        out["bf_mu0"] = float(np.sum(np.exp(lm0 - shift) * tw)) / Z
    return out


def _run(job):
    kind, name, a1, a2, mp, tp, fam, par = job
    print(name, flush=True)
    return normal_normal(a1, a2, mp, fam, par)


def main():
    # Crins et al. 2014 (Röver 2020 J Stat Softw 93(6), Table 3): log odds ratios from escalc("OR")
    a, n1, c, n2 = [14, 16, 3, 9, 4, 0], [61, 28, 18, 54, 36, 50], [15, 19, 8, 29, 11, 3], [20, 28, 12, 54, 36, 34]
    ai, bi, ci, di = (np.array(u, float) for u in (a, np.subtract(n1, a), c, np.subtract(n2, c)))
    zero = (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)
    ai, bi, ci, di = (u + 0.5 * zero for u in (ai, bi, ci, di))
    crins_y = list(np.log(ai * di / (bi * ci)))
    crins_v = list(1 / ai + 1 / bi + 1 / ci + 1 / di)
    # PASI-40 of the review on the logit scale (0.5 added to the all-success studies, as escalc)
    ev, tot = np.array([8, 2, 1, 2, 1.0]), np.array([17, 2, 1, 2, 1.0])
    corr = (ev == 0) | (ev == tot)
    e2, t2 = ev + 0.5 * corr, tot + 1.0 * corr
    pasi_y = list(np.log(e2 / (t2 - e2)))
    pasi_v = list(1 / e2 + 1 / (t2 - e2))
    cases = [
        ("crins_hn05_n4", crins_y, crins_v, ["normal", 0, 4], ["halfnormal", 0.5], "halfnormal", [0.5]),
        ("crins_rct_hn05_n4", [crins_y[0], crins_y[4]], [crins_v[0], crins_v[4]], ["normal", 0, 4],
         ["halfnormal", 0.5], "halfnormal", [0.5]),
        ("crins_turner_surgical_n4", crins_y, crins_v, ["normal", 0, 4],
         ["turner", "surgical / device related success / failure", "pharmacological vs placebo/control"],
         "lognormal_tau2", [-2.14, 1.74]),
        ("pasi40_hc1_flat", pasi_y, pasi_v, ["flat"], ["halfcauchy", 1.0], "halfcauchy", [1.0]),
    ]
    fixtures = {"_note": "written by tests/reference/make_bayes_fixtures.py (dense grid over mu and "
                         "tau, panel sums and brentq for quantiles)", "normal_normal": []}
    from multiprocessing import Pool

    jobs = [("nn",) + c for c in cases]
    with Pool(len(jobs)) as pool:
        results = pool.map(_run, jobs)
    for job, res in zip(jobs, results):
        kind, name, a1, a2, mp, tp = job[:6]
        if kind == "nn":
            fixtures["normal_normal"].append({"name": name, "yi": a1, "vi": a2, "mu_prior": mp,
                                              "tau_prior": tp, "expected": res})
    OUT.write_text(json.dumps(fixtures, indent=2, sort_keys=True) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
