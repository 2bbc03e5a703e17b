"""Simulation-study speed: metamsc.pool_batch on 10,000 meta-analyses (k = 10) against a loop of
R metafor rma() and of statsmodels combine_effects, reported as time per meta-analysis and ratios.

Run: python benchmarks/bench_batch.py [--rounds 3]
pool_batch's time is the best of 5 runs over the 10,000 analyses; the loops are 500 fits. The
Python side and R (bench_batch.R) alternate ``--rounds`` times and each time keeps its best, so
that both sides see the same phases of the machine's load (pool_batch's best of 5 moved between
0.007 and 0.013 ms from one minute to the next).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

import metamsc as mm
from rounds import keep_best, rounds_from_args
from metamsc.batch import pool_batch

HERE = Path(__file__).parent


def _python_side(y: np.ndarray, v: np.ndarray) -> dict[str, dict[str, float]]:
    """ms per meta-analysis of pool_batch (best of 5 runs), of a loop of pool() and of a loop of
    statsmodels' combine_effects (500 fits, once), one round."""
    m = y.shape[0]
    rows: dict[str, dict[str, float]] = {}
    for method, test in (("DL", "z"), ("REML", "knha")):
        pool_batch(y[:10], v[:10], method=method, test=test)
        batch_ms = float("inf")
        for _ in range(5):  # best of 5 runs (the machine's load only ever adds time)
            t0 = time.perf_counter()
            res = pool_batch(y, v, method=method, test=test)
            batch_ms = min(batch_ms, 1000 * (time.perf_counter() - t0) / m)
        assert res.converged.all()
        t0 = time.perf_counter()
        for i in range(500):
            mm.pool(y[i], v[i], method=method, test=test)
        single_ms = 1000 * (time.perf_counter() - t0) / 500
        rows[method] = {"metamsc pool_batch": batch_ms, "metamsc pool (loop)": single_ms}
    try:
        import warnings

        from statsmodels.stats.meta_analysis import combine_effects
    except ImportError:
        return rows
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(500):
            combine_effects(y[i], v[i], method_re="chi2")
    rows["DL"]["statsmodels combine_effects (loop)"] = 1000 * (time.perf_counter() - t0) / 500
    return rows


def main() -> None:
    rounds = rounds_from_args(__doc__.splitlines()[0])
    rng = np.random.default_rng(1)
    m, k = 10_000, 10
    v = rng.uniform(0.01, 0.5, size=(m, k))
    y = 0.2 + rng.normal(0, np.sqrt(0.1), size=(m, k)) + rng.normal(0, np.sqrt(v))
    rows: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for method, d in _python_side(y, v).items():
            keep_best(rows.setdefault(method, {}), d)
        if shutil.which("Rscript"):
            out = subprocess.run(["Rscript", str(HERE / "bench_batch.R")], capture_output=True,
                                 text=True, check=True).stdout
            for ln in out.splitlines():
                if ln.startswith("metafor"):
                    _, meth, ms, fails = ln.split()
                    keep_best(rows[meth], {f"metafor rma (loop; {fails} of 500 failed)": float(ms)})
    print(f"{m} simulated meta-analyses, k = {k} (DL with z, REML with knha): ms per "
          "meta-analysis; ratio = peer / pool_batch")
    for method, d in rows.items():
        base = d["metamsc pool_batch"]
        for name, ms in d.items():
            print(f"  {method:5s} {name:38s} {ms:9.4f} ms   ratio {ms / base:8.1f}")


if __name__ == "__main__":
    main()
