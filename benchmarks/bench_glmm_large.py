"""Time and peak memory of ``fit_glmm(measure="OR", model="UM.FS")`` as the number of 2x2
tables k grows (10, 100, 1000, 5000 by default).

Run: python benchmarks/bench_glmm_large.py [--ks 10 100 1000 5000] [--timeout 600] [--mem-gib 12]

Each k is one fresh process under /usr/bin/time -v: the time is the fit alone (Python's
perf_counter; best of several repeats for small k), the memory the process's peak resident set
size (interpreter, imports and the simulated data included). The fit is the default one: ML,
nagq = 7, with the profile-likelihood CI of tau^2. Data: k simulated 2x2 tables with 20 to 200
patients per arm, control log odds N(-1.5, 1), log odds ratio -0.5 and tau^2 = 0.16 (the +-1/2
coding of the model). A process that exceeds --timeout seconds or the --mem-gib address-space
limit is reported as such.

Measured on 2026-12-02 (2 shared cores), before (dense (k + 2) x (k + 2) Hessians, commit
69d1e08) and after (arrowhead Hessians, ``metamsc/glmm/arrow.py``):

    k       before                         after
    10      0.012 s      58 MiB            0.0096 s   58 MiB
    100     2.8 s       125 MiB            0.027 s    58 MiB
    300     21.9 s     1207 MiB            0.049 s    60 MiB
    1000    MemoryError at 3448 MiB RSS    0.14 s     70 MiB
            (12 GiB address-space limit)
    5000    not run                        0.54 s    122 MiB
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

PY = r"""
import resource, time, warnings
import numpy as np
resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))
from metamsc.glmm import fit_glmm
k = {k}
rng = np.random.default_rng(1)
n1, n2 = rng.integers(20, 201, k), rng.integers(20, 201, k)
a, u = rng.normal(-1.5, 1.0, k), rng.normal(0.0, 0.4, k)
p1 = 1 / (1 + np.exp(-(a - 0.5 + u / 2)))
p2 = 1 / (1 + np.exp(-(a - u / 2)))
x1, x2 = rng.binomial(n1, p1), rng.binomial(n2, p2)
reps = max(1, min(5, 200 // k))
best = float("inf")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for _ in range(reps):
        t0 = time.perf_counter()
        r = fit_glmm(x1, n1, events2=x2, total2=n2, measure="OR", model="UM.FS")
        best = min(best, time.perf_counter() - t0)
print("SECONDS", best)
print("RESULT", r.estimate, r.se, r.tau2, r.tau2_ci_lb, r.tau2_ci_ub)
"""


def run_one(k: int, timeout: float, mem_gib: float) -> dict:
    code = PY.format(k=k, mem=int(mem_gib * 2**30))
    cmd = [sys.executable, "-c", code]
    if shutil.which("time") or shutil.os.path.exists("/usr/bin/time"):
        cmd = ["/usr/bin/time", "-v"] + cmd
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(k=k, seconds=None, rss_mib=None, status=f"timeout > {timeout:g} s")
    sec = re.search(r"SECONDS (\S+)", p.stdout)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    res = re.search(r"RESULT (.*)", p.stdout)
    status = "ok" if p.returncode == 0 and sec else (
        "MemoryError" if "MemoryError" in p.stderr else f"failed (exit {p.returncode})")
    return dict(k=k, seconds=float(sec.group(1)) if sec else None,
                rss_mib=int(rss.group(1)) / 1024 if rss else None, status=status,
                result=res.group(1) if res else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 100, 1000, 5000])
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--mem-gib", type=float, default=12.0)
    args = ap.parse_args()
    print(f"{'k':>6} {'seconds':>10} {'peak MiB':>9}  status  (estimate se tau2 tau2_ci)")
    for k in args.ks:
        r = run_one(k, args.timeout, args.mem_gib)
        sec = "-" if r["seconds"] is None else f"{r['seconds']:.4g}"
        rss = "-" if r["rss_mib"] is None else f"{r['rss_mib']:.0f}"
        print(f"{k:>6} {sec:>10} {rss:>9}  {r['status']}  {r.get('result', '')}", flush=True)


if __name__ == "__main__":
    main()
