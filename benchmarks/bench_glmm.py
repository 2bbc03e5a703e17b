"""Speed of metamsc.glmm.fit_glmm against R metafor's rma.glmm(measure="PLO") (lme4, nAGQ = 7).

Run:  python benchmarks/bench_glmm.py [--repeats N] [--r-repeats M] [--no-r]

Data: dat.pritz1997 (k = 14 single proportions; inline below). Both sides fit
the binomial-normal model by ML with 7-node adaptive Gauss-Hermite quadrature
and compute what metafor's fit computes: estimate, SE, tau^2, the saturated
and common-effect GLMs, QE_Wld / QE_LRT and I^2.

Rows:
  ML (as metafor)   fit_glmm(..., tau2_ci=False): the same quantities as rma.glmm
  ML (default)      fit_glmm(...): additionally the profile-likelihood CI of tau^2
                    (metafor's rma.glmm computes none), i.e. more work than metafor
  EE                common-effect GLM (method="EE" on both sides)

Times are the median over many repeats (Python: timeit, blocks of 10 calls;
R: the median of single-fit times and the mean over a loop, from
benchmarks/bench_glmm.R). Ratio = metafor time / metamsc time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

from metamsc.glmm import fit_glmm

HERE = Path(__file__).parent
XI = [16, 10, 4, 43, 10, 25, 13, 12, 22, 4, 5, 18, 58, 6]  # metadat::dat.pritz1997
NI = [17, 12, 8, 58, 10, 42, 14, 12, 41, 5, 6, 23, 68, 10]


def _ms(fn, repeats: int, number: int = 10) -> float:
    """Median milliseconds per call over ``repeats`` blocks of ``number`` calls."""
    for _ in range(20):  # warm-up
        fn()
    t = timeit.repeat(fn, number=number, repeat=repeats)
    return 1000 * statistics.median(t) / number


def _r(method: str, repeats: int) -> dict | None:
    if not shutil.which("Rscript"):
        return None
    out = subprocess.run(["Rscript", str(HERE / "bench_glmm.R"), str(repeats), method],
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(f"bench_glmm.R failed:\n{out.stderr}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200, help="Python: blocks of 10 fits")
    ap.add_argument("--r-repeats", type=int, default=100, help="R: single fits")
    ap.add_argument("--no-r", action="store_true", help="do not run R")
    a = ap.parse_args(argv)

    rows = [
        ("ML (as metafor)", "ML", lambda: fit_glmm(XI, NI, tau2_ci=False)),
        ("ML (default)", "ML", lambda: fit_glmm(XI, NI)),
        ("EE", "EE", lambda: fit_glmm(XI, NI, method="EE")),
    ]
    ours = {name: _ms(fn, a.repeats) for name, _, fn in rows}
    peers = {} if a.no_r else {m: _r(m, a.r_repeats) for m in ("ML", "EE")}

    fit = fit_glmm(XI, NI)
    print("dat.pritz1997 (k = 14), binomial-normal model, ML with nAGQ = 7; ms per fit")
    print(f"metamsc: estimate {fit.estimate:.6f}, SE {fit.se:.6f}, tau^2 {fit.tau2:.6f}; "
          f"tau^2 95% profile CI [{fit.tau2_ci_lb:.4f}, {fit.tau2_ci_ub:.4f}]")
    r = peers.get("ML")
    if r:
        print(f"metafor: estimate {r['beta']:.6f}, SE {r['se']:.6f}, tau^2 {r['tau2']:.6f} "
              f"(R {r['R']}, metafor {r['metafor']}, lme4 {r['lme4']}; "
              f"max rel. difference {max(abs(fit.estimate / r['beta'] - 1), abs(fit.se / r['se'] - 1), abs(fit.tau2 / r['tau2'] - 1)):.1e})")
    print()
    print(f"{'model':18s} {'metamsc':>9s} {'metafor (median)':>17s} {'ratio':>6s} "
          f"{'metafor (loop mean)':>20s} {'ratio':>6s}")
    for name, method, _ in rows:
        t = ours[name]
        p = peers.get(method)
        if p:
            med, mean = 1000 * p["median_s"], 1000 * p["mean_s"]
            print(f"{name:18s} {t:9.3f} {med:17.2f} {med / t:6.1f} {mean:20.2f} {mean / t:6.1f}")
        else:
            print(f"{name:18s} {t:9.3f} {'-':>17s} {'-':>6s} {'-':>20s} {'-':>6s}")
    if not peers or not any(peers.values()):
        print("\n(Rscript with metafor and lme4 not available: metafor columns empty)")


if __name__ == "__main__":
    main()
