"""Speed of metamsc.pool against R metafor's rma() and statsmodels' combine_effects.

Run: python benchmarks/bench_pool.py [--rounds 3]   (R is optional: without Rscript only Python
peers run)
Reports milliseconds per fit and ratios peer / metamsc. Each time is the best of 15 rounds of
repeated calls (the usual statistic for timing on a shared machine, as Python's timeit advises:
other processes only ever add time); R's side (bench_pool.R) reports the best of its rounds too.
The Python side and R alternate ``--rounds`` times and each keeps its best, so that both see the
same phases of the machine's load (R's best alone moved between 5.6 and 7.0 ms from one hour to
the next).
"""

from __future__ import annotations

import shutil
import subprocess
import timeit
from pathlib import Path

import numpy as np

import metamsc as mm
from rounds import keep_best, rounds_from_args

HERE = Path(__file__).parent
TPOS = [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27]
TNEG = [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886]
CPOS = [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29]
CNEG = [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825]


def _ms(fn, number=200, repeat=15) -> float:
    """Milliseconds per call: the best of ``repeat`` rounds of ``number`` calls (wall clock)."""
    fn()
    return 1000 * min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def _pool_as_rma_prints(y, v):
    """pool() and a read of every value metafor's print of rma() shows (estimate, se, t, p, CI,
    tau^2 and its SE, I^2, H^2, Q and its p), and the prediction interval."""
    r = mm.pool(y, v, method="REML", test="knha")
    return (r.estimate, r.se, r.statistic, r.pvalue, r.ci_lb, r.ci_ub, r.tau2, r.se_tau2, r.i2,
            r.h2, r.q, r.q_pvalue, r.pi_lb, r.pi_ub)


def _python_side(y, v) -> tuple[dict[str, float], dict[str, float]]:
    """metamsc's and statsmodels' times (ms per fit), one round."""
    ours = {m: _ms(lambda m=m: mm.pool(y, v, method=m)) for m in ("DL", "REML", "PM")}
    sm: dict[str, float] = {}
    y10, v10 = y[:10], v[:10]
    # k = 10 (the first 10 studies), REML with Knapp-Hartung, everything pool() reports
    ours["REML-knha-k10"] = _ms(lambda: _pool_as_rma_prints(y10, v10))
    # the same with the CIs of tau^2, I^2 and H^2 (what metafor's confint() adds; computed on
    # first access of those fields)
    ours["+tau2-CI-k10"] = _ms(lambda: mm.pool(y10, v10, method="REML", test="knha").tau2_ci_lb)
    try:
        import warnings

        from statsmodels.stats.meta_analysis import combine_effects
    except ImportError:
        return ours, sm
    sm["DL"] = _ms(lambda: combine_effects(y, v, method_re="chi2"))
    sm["PM"] = _ms(lambda: combine_effects(y, v, method_re="iterated"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm["REML-knha-k10"] = _ms(
            lambda: combine_effects(y10, v10, method_re="iterated", use_t=True))
    return ours, sm


def main() -> None:
    rounds = rounds_from_args(__doc__.splitlines()[0])
    es = mm.effect_size("RR", events1=TPOS, total1=np.add(TPOS, TNEG), events2=CPOS,
                        total2=np.add(CPOS, CNEG))
    y, v = np.asarray(es.yi), np.asarray(es.vi)
    ours: dict[str, float] = {}
    peers: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        o, sm = _python_side(y, v)
        keep_best(ours, o)
        if sm:
            keep_best(peers.setdefault("statsmodels", {}), sm)
        if shutil.which("Rscript"):
            out = subprocess.run(["Rscript", str(HERE / "bench_pool.R")], capture_output=True,
                                 text=True, check=True).stdout
            keep_best(peers.setdefault("metafor", {}),
                  {ln.split()[1]: float(ln.split()[2]) for ln in out.splitlines()
                   if ln.startswith("metafor")})
    print(f"dat.bcg (k = 13; REML-knha-k10: its first 10 studies), ms per fit (best of 15 rounds,"
          f" in each of {rounds} alternations of Python and R);"
          " ratio = peer time / metamsc time\nmetamsc REML-knha-k10: pool(method='REML', test="
          "'knha') and a read of every value rma() prints, and the prediction interval;\n"
          "+tau2-CI-k10: the same fit and its tau^2 CI (Q-profile, with the I^2 and H^2 CIs);\n"
          "metafor: rma(yi, vi, method='REML', test='knha'); statsmodels has no REML: its "
          "closest, combine_effects(method_re='iterated', use_t=True), the PM estimator with t "
          "inference")
    print(f"{'method':14s} {'metamsc':>9s} " + " ".join(f"{p:>12s} {'ratio':>6s}" for p in peers))
    for m, t in ours.items():
        cells = []
        for p, d in peers.items():
            cells.append(f"{d[m]:12.3f} {d[m] / t:6.1f}" if m in d else f"{'-':>12s} {'-':>6s}")
        print(f"{m:14s} {t:9.3f} " + " ".join(cells))


if __name__ == "__main__":
    main()
