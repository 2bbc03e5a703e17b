"""Time the exact Bayesian binomial-normal and Poisson-normal models (metamsc.bayes_proportions,
metamsc.bayes_rates): median wall time of repeated fits, with the normal-normal metamsc.bayes on
the same data for scale. Two times per case: the fit (every posterior summary but the lazy ones)
and the fit with its lazy fields read too (shortest intervals, shrunken study estimates).

    python benchmarks/bench_bayes_glmm.py [repeats]
"""

from __future__ import annotations

import statistics
import sys
import time

import metamsc as mm


def _median(f, repeat: int) -> float:
    f()  # warm-up (imports, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(repeat: int = 5) -> None:
    cases = [
        ("bayes_proportions, PASI-40 (k = 5), half-normal(0.5)",
         lambda: mm.bayes_proportions([8, 2, 1, 2, 1], [17, 2, 1, 2, 1])),
        ("bayes_proportions, zeros (k = 5), half-normal(1)",
         lambda: mm.bayes_proportions([0, 3, 1, 0, 5], [12, 20, 15, 9, 30],
                                      tau_prior=("halfnormal", 1.0))),
        ("bayes_rates (k = 4), half-normal(0.5)",
         lambda: mm.bayes_rates([3, 7, 0, 12], [100.0, 250.0, 80.0, 300.0])),
    ]
    es = mm.effect_size("PLO", events=[8, 2, 1, 2, 1], total=[17, 2, 1, 2, 1])
    cases.append(("bayes (normal-normal), PASI-40 logits", lambda: mm.bayes(es.yi, es.vi, measure="PLO")))
    for label, f in cases:
        fit = _median(f, repeat)
        full = _median(lambda: _read_all(f()), repeat)
        print(f"{label}: median {1000 * fit:.0f} ms over {repeat} fits "
              f"({1000 * full:.0f} ms with the lazy fields read)")


def _read_all(res) -> None:
    """Read the fields a result computes on first access."""
    res.mu_hpd_lb, res.theta_median  # noqa: B018


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
