"""Single incidence rates (roles events, time; metafor's xi, ti): IR, IRLN, IRS, IRFT.

Viechtbauer (2010) J Stat Softw 36(3); IRFT: Freeman & Tukey (1950) Ann Math Stat 21:607.
"""

from __future__ import annotations

import numpy as np

from ._common import Options, check_nonneg, check_pos, correction_mask


def compute(code: str, a: dict, opt: Options):
    x, t = a["events"], a["time"]
    check_nonneg("events", x)
    check_pos("time", t)
    corrected = correction_mask(opt.to, x == 0) & (opt.add != 0)
    x = x + opt.add * corrected
    ir = x / t
    if code == "IR":
        return ir, ir / t, t, corrected
    if code == "IRLN":
        return np.log(ir), 1 / x, t, corrected
    if code == "IRS":
        return np.sqrt(ir), 1 / (4 * t), t, corrected
    if code == "IRFT":
        return 0.5 * (np.sqrt(ir) + np.sqrt(ir + 1 / t)), 1 / (4 * t), t, corrected
    raise ValueError(f"no rate formula for measure {code}")
