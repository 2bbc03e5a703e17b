"""Time and peak memory of metamsc against R metafor as k grows from 10 to 10^6.

Run: python benchmarks/bench_large.py [--max-k 1000000] [--no-r]

Each cell is one fresh process run under /usr/bin/time -v: the time is the fit alone (best of
several repeats for small k; Python's perf_counter, R's proc.time), the memory is the process's
peak resident set size (imports and the simulated data included; the first row, k = 10, is the
baseline of the interpreter). Jobs: pool() with DL and with REML (z test; Q-profile CI for tau^2
included), and meta_regression() with 3 continuous moderators (REML). metafor runs rma() (and
rma(mods = ~ x1 + x2 + x3)) and stops at the first k whose fit takes more than 60 s (or whose
process does not end within 300 s).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

PY = r"""
import time, numpy as np, metamsc as mm
k, job = {k}, "{job}"
rng = np.random.default_rng(1)
v = rng.uniform(0.01, 0.5, k)
X = rng.normal(size=(k, 3))
y = 0.2 + X @ np.array([0.1, -0.2, 0.05]) + rng.normal(0, np.sqrt(0.1), k) + rng.normal(0, np.sqrt(v))
if job == "metareg":
    fit = lambda: mm.meta_regression(y, v, X, method="REML")
else:
    fit = lambda: mm.pool(y, v, method=job)
reps = max(1, min(50, 20000 // k))
best = float("inf")
for _ in range(reps):
    t0 = time.perf_counter(); fit(); best = min(best, time.perf_counter() - t0)
print("SECONDS", best)
"""

R = r"""
suppressPackageStartupMessages(library(metafor))
k <- {k}; job <- "{job}"
set.seed(1)
v <- runif(k, 0.01, 0.5); X <- matrix(rnorm(k * 3), k)
y <- 0.2 + X %*% c(0.1, -0.2, 0.05) + rnorm(k, 0, sqrt(0.1)) + rnorm(k, 0, sqrt(v))
fit <- if (job == "metareg") function() rma(y, v, mods = X, method = "REML") else
  function() { r <- rma(y, v, method = job); confint(r) }
reps <- if (k >= 1000) 1 else max(1, min(20, 2000 %/% k))
best <- Inf
for (i in seq_len(reps)) best <- min(best, system.time(fit())[["elapsed"]])
cat("SECONDS", best, "\n")
"""


def _run(cmd: list[str], timeout: float) -> tuple[float, float] | None:
    """(seconds, peak MiB) of one run under /usr/bin/time -v; None on timeout or failure."""
    try:
        p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    m = re.search(r"SECONDS ([0-9.eE+-]+)", p.stdout)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    if p.returncode != 0 or not m or not rss:
        return None
    return float(m.group(1)), int(rss.group(1)) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-k", type=int, default=1_000_000)
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
    ks = [k for k in (10, 100, 1_000, 10_000, 100_000, 1_000_000) if k <= args.max_k]
    use_r = shutil.which("Rscript") is not None and not args.no_r
    jobs = (("DL", "pool DL"), ("REML", "pool REML"), ("metareg", "meta-regression, 3 moderators, REML"))
    print("k, seconds for the fit, peak memory of the process (MiB); metafor: rma() "
          "(+ confint() for pool, as metamsc's Q-profile CI)")
    print(f"{'job':38s} {'k':>9s} {'metamsc s':>10s} {'MiB':>7s} {'metafor s':>10s} {'MiB':>7s} {'ratio':>7s}")
    for job, name in jobs:
        r_alive = use_r
        for k in ks:
            ours = _run([sys.executable, "-c", PY.replace("{k}", str(k)).replace("{job}", job)], 600)
            theirs = None
            if r_alive:
                # the limit is on the fit (60 s); the process may take longer to start R
                theirs = _run(["Rscript", "-e", R.replace("{k}", str(k)).replace("{job}", job)], 300)
                if theirs is None or theirs[0] > 60:
                    theirs, r_alive = None, False
            o = f"{ours[0]:10.4f} {ours[1]:7.0f}" if ours else f"{'failed':>10s} {'':>7s}"
            t = (f"{theirs[0]:10.4f} {theirs[1]:7.0f}" if theirs else
                 f"{'> 60 s' if use_r else '-':>10s} {'':>7s}")
            ratio = f"{theirs[0] / ours[0]:7.1f}" if ours and theirs and ours[0] > 0 else f"{'':>7s}"
            print(f"{name:38s} {k:9d} {o} {t} {ratio}", flush=True)


if __name__ == "__main__":
    main()
