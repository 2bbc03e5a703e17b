"""Brute-force reference values for metamsc.bayes and metamsc.bayes_proportions -> bayes.json.

Independent of metamsc's algorithm: the joint posterior p(mu, tau | y) of the normal-normal model
is integrated numerically in BOTH parameters with scipy.integrate.quad (nested, adaptive
Gauss-Kronrod, relative tolerance 1e-10, mu on m0 +/- 40 and tau on [0, 60]; mu is NOT integrated analytically here, the study
effects theta_i are), and quantiles come from brentq on those nested integrals. The
binomial-normal model is integrated on a dense grid: theta_i by the trapezoid rule on 2401 points
of a +/- 12 sd window, (mu, tau) by quad as above.

Run (takes several minutes):  python tests/reference/make_bayes_fixtures.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import integrate, optimize, special, stats

EPS = dict(epsabs=0.0, epsrel=1e-10, limit=400)
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


def normal_normal(y, v, mu_prior, tau_name, tau_par, probs=(0.025, 0.5, 0.975)):
    y, v = np.asarray(y, float), np.asarray(v, float)
    lp_tau = tau_logprior(tau_name, tau_par)
    flat = mu_prior[0] == "flat"

    def lp_mu(m):
        return 0.0 if flat else stats.norm.logpdf(m, mu_prior[1], mu_prior[2])

    def loglik(m, t):
        s2 = v + t * t
        return float(-0.5 * np.sum(np.log(2 * math.pi * s2) + (y - m) ** 2 / s2))

    # a shift for numerical range: the log joint at a rough mode
    m0 = float(np.sum(y / v) / np.sum(1 / v))
    shift = loglik(m0, 0.1) + lp_mu(m0) + lp_tau(0.1)

    def joint(m, t):
        return math.exp(loglik(m, t) + lp_mu(m) + lp_tau(t) - shift)

    mlo, mhi = m0 - 40.0, m0 + 40.0  # the posterior mass outside is below 1e-30 in every case

    def inner(t, fun=lambda m, t: 1.0, lo=mlo, hi=mhi):
        return integrate.quad(lambda m: fun(m, t) * joint(m, t), lo, hi, **EPS)[0]

    def outer(g, tlo=0.0, thi=60.0):
        return integrate.quad(g, tlo, thi, **EPS)[0]

    Z = outer(lambda t: inner(t))
    out = {"log_marginal_likelihood": None if flat else math.log(Z) + shift}
    out["tau_mean"] = outer(lambda t: t * inner(t)) / Z
    out["mu_mean"] = outer(lambda t: inner(t, lambda m, t: m)) / Z

    def tau_cdf(x):
        return outer(lambda t: inner(t), 0.0, x) / Z

    def mu_cdf(x):
        return outer(lambda t: inner(t, hi=x)) / Z

    def pred_cdf(x):
        return outer(lambda t: inner(t, lambda m, t: special.ndtr((x - m) / t) if t > 0 else float(m < x))) / Z

    def theta_cdf(i, x):
        def f(m, t):
            prec = 1 / v[i] + 1 / (t * t)
            return special.ndtr((x - (y[i] / v[i] + m / (t * t)) / prec) * math.sqrt(prec))
        return outer(lambda t: inner(t, f)) / Z

    def q(cdf, p, lo, hi):
        return optimize.brentq(lambda x: cdf(x) - p, lo, hi, xtol=1e-12)

    for p in probs:
        tag = {0.025: "lb", 0.5: "median", 0.975: "ub"}[p]
        out[f"tau_{tag}"] = q(tau_cdf, p, 0.0, 50.0)
        out[f"mu_{tag}"] = q(mu_cdf, p, m0 - 30, m0 + 30)
        if p != 0.5:
            out[f"pred_{tag}"] = q(pred_cdf, p, m0 - 60, m0 + 60)
    out["theta1_median"] = q(lambda x: theta_cdf(0, x), 0.5, m0 - 30, m0 + 30)
    if not flat:
        # p(y | tau = 0) and p(y | mu = 0): Bayes factors BF01 = p(y | H0) / p(y)
        ml_tau0 = integrate.quad(lambda m: joint(m, 0.0) / math.exp(lp_tau(0.0)), -math.inf, math.inf, **EPS)[0]
        out["bf_tau0"] = ml_tau0 / Z
        ml_mu0 = integrate.quad(lambda t: math.exp(loglik(0.0, t) + lp_tau(t) - shift), 0, math.inf, **EPS)[0]
        out["bf_mu0"] = ml_mu0 / Z
    return out


def binomial_normal(x, n, mu_prior, tau_name, tau_par):
    """Binomial-normal: theta_i on a dense trapezoid grid, (mu, tau) by nested quad."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    lp_tau = tau_logprior(tau_name, tau_par)
    z = np.linspace(-12, 12, 2401)
    wz = np.full(z.size, z[1] - z[0])
    wz[[0, -1]] /= 2
    phi = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    logc = special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)

    def loglik(m, t):
        th = m + t * z[:, None]
        ll = logc + x * th - n * np.logaddexp(0, th)
        if t == 0:
            return float(np.sum(ll[0]))
        mx = ll.max(axis=0)
        return float(np.sum(mx + np.log(np.sum((wz * phi)[:, None] * np.exp(ll - mx), axis=0))))

    def lp_mu(m):
        return stats.norm.logpdf(m, mu_prior[1], mu_prior[2])

    shift = loglik(0.0, 0.5) + lp_mu(0.0) + lp_tau(0.5)

    def joint(m, t):
        return math.exp(loglik(m, t) + lp_mu(m) + lp_tau(t) - shift)

    eps = dict(epsabs=0.0, epsrel=1e-10, limit=200)

    def inner(t, lo=-40.0, hi=40.0, fun=lambda m: 1.0):
        return integrate.quad(lambda m: fun(m) * joint(m, t), lo, hi, **eps)[0]

    def outer(g, tlo=0.0, thi=15.0):
        return integrate.quad(g, tlo, thi, **eps)[0]

    Z = outer(inner)
    out = {"log_marginal_likelihood": math.log(Z) + shift}
    mu_cdf = lambda xx: outer(lambda t: inner(t, hi=xx)) / Z  # noqa: E731
    tau_cdf = lambda xx: outer(inner, 0.0, xx) / Z  # noqa: E731
    for p, tag in ((0.025, "lb"), (0.5, "median"), (0.975, "ub")):
        out[f"mu_{tag}"] = optimize.brentq(lambda xx: mu_cdf(xx) - p, -39, 39, xtol=1e-10)
        out[f"tau_{tag}"] = optimize.brentq(lambda xx: tau_cdf(xx) - p, 0.0, 14.9, xtol=1e-10)
    out["mu_mean"] = outer(lambda t: inner(t, fun=lambda m: m)) / Z
    return out


def _run(job):
    kind, name, a1, a2, mp, tp, fam, par = job
    print(name, flush=True)
    return (normal_normal if kind == "nn" else binomial_normal)(a1, a2, mp, fam, par)


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
        ("pasi40_exp2_n10", pasi_y, pasi_v, ["normal", 0, 10], ["exponential", 2.0], "exponential", [2.0]),
        ("pasi40_ln_n10", pasi_y, pasi_v, ["normal", 0, 10], ["lognormal", -1.0, 1.0], "lognormal", [-1.0, 1.0]),
    ]
    fixtures = {"_note": "written by tests/reference/make_bayes_fixtures.py (nested scipy.integrate.quad "
                         "over mu and tau, epsrel 1e-10; brentq for quantiles)", "normal_normal": [],
                "binomial_normal": []}
    from multiprocessing import Pool

    bcases = [("pasi40_binomial_hn05_n10", [8, 2, 1, 2, 1], [17, 2, 1, 2, 1], ["normal", 0, 10],
               ["halfnormal", 0.5], "halfnormal", [0.5]),
              ("mixed_binomial_hn1_n10", [0, 3, 12, 5], [10, 20, 30, 8], ["normal", 0, 10],
               ["halfnormal", 1.0], "halfnormal", [1.0])]
    jobs = [("nn",) + c for c in cases]  # the binomial-normal cases are not run yet (too slow)
    with Pool(2) as pool:
        results = pool.map(_run, jobs)
    for job, res in zip(jobs, results):
        kind, name, a1, a2, mp, tp = job[:6]
        if kind == "nn":
            fixtures["normal_normal"].append({"name": name, "yi": a1, "vi": a2, "mu_prior": mp,
                                              "tau_prior": tp, "expected": res})
        else:
            fixtures["binomial_normal"].append({"name": name, "events": a1, "total": a2, "mu_prior": mp,
                                                "tau_prior": tp, "expected": res})
    OUT.write_text(json.dumps(fixtures, indent=2, sort_keys=True) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
