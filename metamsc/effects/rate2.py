"""Two-group incidence rates (roles events1, time1, events2, time2; metafor's x1i, t1i, x2i,
t2i): IRR, IRD, IRSD. Viechtbauer (2010) J Stat Softw 36(3).
"""

from __future__ import annotations

import numpy as np

from ._common import Options, check_nonneg, check_pos, correction_mask


def compute(code: str, a: dict, opt: Options):
    x1, t1, x2, t2 = a["events1"], a["time1"], a["events2"], a["time2"]
    check_nonneg("events1", x1)
    check_nonneg("events2", x2)
    check_pos("time1", t1)
    check_pos("time2", t2)
    if opt.drop00:
        both = (x1 == 0) & (x2 == 0)
        x1, x2 = np.where(both, np.nan, x1), np.where(both, np.nan, x2)
    corrected = correction_mask(opt.to, (x1 == 0) | (x2 == 0)) & (opt.add != 0)
    x1, x2 = x1 + opt.add * corrected, x2 + opt.add * corrected
    r1, r2 = x1 / t1, x2 / t2
    if code == "IRR":
        yi, vi = np.log(r1) - np.log(r2), 1 / x1 + 1 / x2
    elif code == "IRD":
        yi, vi = r1 - r2, r1 / t1 + r2 / t2
    elif code == "IRSD":
        yi, vi = np.sqrt(r1) - np.sqrt(r2), 1 / (4 * t1) + 1 / (4 * t2)
    else:
        raise ValueError(f"no two-group rate formula for measure {code}")
    return yi, vi, t1 + t2, corrected
