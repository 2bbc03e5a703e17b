"""Brute-force reference values for metamsc.bayes_proportions -> bayes_glmm.json.

Independent of metamsc's algorithm (no mode finding, no adaptive rule, no Legendre interpolant):
each study's effect is integrated on a fixed dense grid in z = (theta - mu) / tau (2000 midpoint
cells on [-10, 10]); the joint posterior of (mu, tau) is summed on a dense equispaced grid (mu:
step h over the data range +/- 8; tau: step h on [0, tau_max]); marginals by Simpson's rule,
cumulative Simpson CDFs and quantiles by root finding on their cubic spline. The script runs twice with the steps halved and
reports the difference (a Richardson-type check of the grid error).

Run (a few minutes):  python tests/reference/make_bayes_glmm_fixtures.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import special, stats

OUT = Path(__file__).with_name("bayes_glmm.json")
Z = np.linspace(-10, 10, 1601)
Z = (Z[1:] + Z[:-1]) / 2
WZ = stats.norm.pdf(Z) * (Z[1] - Z[0])


def loglik_grid(x, n, mu, tau):
    """log sum_z f(x | mu + tau z) phi(z) dz for mu (M,) and tau (T,) -> (T, M)."""
    const = special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)
    out = np.empty((tau.size, mu.size))
    for j, t in enumerate(tau):
        th = mu[:, None] + t * Z[None, :]
        lf = x * th - n * np.logaddexp(0, th)
        m = lf.max(axis=1, keepdims=True)
        out[j] = const + m[:, 0] + np.log(np.sum(np.exp(lf - m) * WZ, axis=1))
    return out


def quantile(grid, dens, p):
    from scipy.integrate import cumulative_simpson
    from scipy.interpolate import CubicSpline
    from scipy.optimize import brentq

    cdf = cumulative_simpson(dens, x=grid, initial=0.0)
    cdf /= cdf[-1]
    sp = CubicSpline(grid, cdf)
    j = int(np.searchsorted(cdf, p))
    return float(brentq(lambda t: sp(t) - p, grid[max(j - 3, 0)], grid[min(j + 3, grid.size - 1)], xtol=1e-13))


def fit(events, total, mu_sd, tau_scale, h, tau_max):
    x, n = np.asarray(events, float), np.asarray(total, float)
    y = np.log((x + 0.5) / (n - x + 0.5))
    mu = np.arange(y.min() - 8, y.max() + 8 + h, h)
    tau = np.arange(0, tau_max + h / 2, h)
    tau[0] = 1e-9
    lj = sum(loglik_grid(x[i], n[i], mu, tau) for i in range(x.size))
    lj = lj + stats.norm.logpdf(mu, 0, mu_sd)[None, :] + stats.halfnorm.logpdf(tau, scale=tau_scale)[:, None]
    top = lj.max()
    J = np.exp(lj - top)
    from scipy.integrate import simpson

    f_mu = simpson(J, x=tau, axis=0)
    f_tau = simpson(J, x=mu, axis=1)
    Zt = simpson(f_tau, x=tau)
    out = {"log_marginal_likelihood": top + math.log(Zt),
           "mu_mean": float(simpson(f_mu * mu, x=mu) / Zt),
           "tau_mean": float(simpson(f_tau * tau, x=tau) / Zt)}
    for p, tag in ((0.025, "lb"), (0.5, "median"), (0.975, "ub")):
        out[f"mu_{tag}"] = quantile(mu, f_mu, p)
        out[f"tau_{tag}"] = quantile(tau, f_tau, p)
    return out


def main():
    cases = [("pasi40_hn05_n10", [8, 2, 1, 2, 1], [17, 2, 1, 2, 1], 10.0, 0.5, 4.0),
             ("zeros_hn1_n10", [0, 3, 1, 0, 5], [12, 20, 15, 9, 30], 10.0, 1.0, 6.0)]
    fixtures = {"_note": "written by tests/reference/make_bayes_glmm_fixtures.py (dense grids, "
                         "see its docstring); grid_error = largest change when the steps are halved",
                "binomial_normal": []}
    for name, ev, tot, mu_sd, ts, tmax in cases:
        coarse = fit(ev, tot, mu_sd, ts, 0.04, tmax)
        fine = fit(ev, tot, mu_sd, ts, 0.02, tmax)
        err = max(abs(fine[k] - coarse[k]) for k in fine)
        print(name, "grid error", err, flush=True)
        fixtures["binomial_normal"].append({"name": name, "events": ev, "total": tot,
                                            "mu_prior": ["normal", 0, mu_sd],
                                            "tau_prior": ["halfnormal", ts],
                                            "expected": fine, "grid_error": err})
    OUT.write_text(json.dumps(fixtures, indent=2, sort_keys=True) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
