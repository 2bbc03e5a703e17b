"""Single means, SDs and CVs (roles mean, sd, n; metafor's mi, sdi, ni): MN, MNLN, CVLN,
SDLN, SMN.

Viechtbauer (2010) J Stat Softw 36(3); CVLN, SDLN: Nakagawa et al. (2015) Methods Ecol
Evol 6:143; SMN: Hedges (1981) J Educ Stat 6:107.
"""

from __future__ import annotations

import numpy as np

from ._common import Options, check_nonneg, check_pos, cmi


def compute(code: str, a: dict, opt: Options):
    sd, ni = a["sd"], a["n"]
    check_nonneg("sd", sd)
    check_pos("n", ni)
    if code == "SDLN":
        return np.log(sd) + 1 / (2 * (ni - 1)), 1 / (2 * (ni - 1)), ni, None
    if code == "MN":
        return a["mean"], sd**2 / ni, ni, None
    if code == "SMN":  # bias-corrected mean / sd (Hedges 1981)
        yi = cmi(ni - 1) * a["mean"] / sd
        return yi, 1 / ni + yi**2 / (2 * ni), ni, None
    mean = a["mean"]
    check_pos("mean", mean)
    if code == "MNLN":
        return np.log(mean), sd**2 / (ni * mean**2), ni, None
    if code == "CVLN":
        return (np.log(sd / mean) + 1 / (2 * (ni - 1)),
                1 / (2 * (ni - 1)) + sd**2 / (ni * mean**2), ni, None)
    raise ValueError(f"no single-mean formula for measure {code}")
