"""Simulation-study speed: metamsc.pool_batch on 10,000 meta-analyses (k = 10) against a loop of
R metafor rma() and of statsmodels combine_effects, reported as time per meta-analysis and ratios.

Run: python benchmarks/bench_batch.py
pool_batch's time is the best of 5 runs over the 10,000 analyses; the loops (500 fits each, on
both sides) are timed once.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

import metamsc as mm
from metamsc.batch import pool_batch

HERE = Path(__file__).parent


def main() -> None:
    rng = np.random.default_rng(1)
    m, k = 10_000, 10
    v = rng.uniform(0.01, 0.5, size=(m, k))
    y = 0.2 + rng.normal(0, np.sqrt(0.1), size=(m, k)) + rng.normal(0, np.sqrt(v))
    rows = {}
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
        from statsmodels.stats.meta_analysis import combine_effects

        t0 = time.perf_counter()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(500):
                combine_effects(y[i], v[i], method_re="chi2")
        rows["DL"]["statsmodels combine_effects (loop)"] = 1000 * (time.perf_counter() - t0) / 500
    except ImportError:
        pass
    if shutil.which("Rscript"):
        out = subprocess.run(["Rscript", str(HERE / "bench_batch.R")], capture_output=True,
                             text=True, check=True).stdout
        for ln in out.splitlines():
            if ln.startswith("metafor"):
                _, meth, ms, fails = ln.split()
                rows[meth][f"metafor rma (loop; {fails} of 500 failed)"] = float(ms)
    print(f"{m} simulated meta-analyses, k = {k} (DL with z, REML with knha): ms per "
          "meta-analysis; ratio = peer / pool_batch")
    for method, d in rows.items():
        base = d["metamsc pool_batch"]
        for name, ms in d.items():
            print(f"  {method:5s} {name:38s} {ms:9.4f} ms   ratio {ms / base:8.1f}")


if __name__ == "__main__":
    main()
