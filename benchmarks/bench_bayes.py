"""Time metamsc.bayes (exact normal-normal model) and metamsc.method_sensitivity.

bayesmeta (R) is not installable on these machines, so there is no ratio against it; Röver
(2020, sec. 3.3) reports that a bayesmeta() call "may take up to a few seconds".

    python benchmarks/bench_bayes.py
"""

from __future__ import annotations

import time

import metamsc as mm


def _best(f, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def _read_all(res) -> None:
    """Read the fields a result computes on first access (shortest intervals, shrinkage)."""
    res.mu_hpd_lb, res.theta_median  # noqa: B018


def main() -> None:
    es = mm.effect_size("OR", events1=[14, 16, 3, 9, 4, 0], total1=[61, 28, 18, 54, 36, 50],
                        events2=[15, 19, 8, 29, 11, 3], total2=[20, 28, 12, 54, 36, 34])
    for tp in (("halfnormal", 0.5), ("halfcauchy", 1.0), ("turner",), ("rhodes",)):
        for mp in (("normal", 0, 4), ("flat",)):
            t = _best(lambda: mm.bayes(es.yi, es.vi, mu_prior=mp, tau_prior=tp))
            full = _best(lambda: _read_all(mm.bayes(es.yi, es.vi, mu_prior=mp, tau_prior=tp)))
            print(f"bayes, Crins et al. (k = 6), mu ~ {mp[0]}, tau ~ {tp[0]}: {1000 * t:.1f} ms "
                  f"({1000 * full:.1f} ms with the lazy fields read)")
    t = _best(lambda: mm.method_sensitivity([8, 2, 1, 2, 1], [17, 2, 1, 2, 1]), repeat=2)
    print(f"method_sensitivity, PASI-40 (44 analyses incl. GLMM and Bayes): {t:.2f} s")


if __name__ == "__main__":
    main()
