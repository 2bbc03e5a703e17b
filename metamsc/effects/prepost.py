"""One group measured before and after (roles n, mean_pre, sd_pre, mean_post, sd_post, r;
change = post - pre, ratios post / pre): MC, SMCC, SMCR, SMCRH, CVRC, VRC, ROMC.

SMCC: Gibbons et al. (1993) J Educ Stat 18:271; SMCR: Becker (1988) Br J Math Stat Psychol
41:257; SMCRH: Bonett (2008) Psychol Methods 13:99; CVRC, VRC: Nakagawa et al. (2015)
Methods Ecol Evol 6:143; ROMC: Lajeunesse (2011) Ecology 92:2049.
"""

from __future__ import annotations

import numpy as np

from ._common import Options, check_nonneg, check_pos, cmi


def compute(code: str, a: dict, opt: Options):
    ni, r = a["n"], a["r"]
    check_pos("n", ni)
    if code in ("SMCC", "SMCR", "SMCRH"):  # the correction c(n - 1) needs n - 1 > 1
        bad = np.flatnonzero(ni < 3)
        if bad.size:
            raise ValueError(f"role 'n' must be at least 3 for {code} (the small-sample "
                             f"correction needs n - 1 > 1), study {bad[0] + 1} has {ni[bad[0]]:g}")
    bad = np.flatnonzero(np.abs(r) > 1)
    if bad.size:
        raise ValueError(f"role 'r' must lie in [-1, 1], study {bad[0] + 1} has {r[bad[0]]:g}")
    sd2 = a["sd_pre"]
    if code == "SMCR":  # Becker (1988), standardised by the pre-treatment SD
        check_pos("sd_pre", sd2)
        c = cmi(ni - 1)
        d = (a["mean_post"] - a["mean_pre"]) / sd2
        yi = c * d
        vi = (c**2 * (2 * (1 - r) / ni + d**2 / (2 * ni)) if opt.vtype == "LS2"
              else 2 * (1 - r) / ni + yi**2 / (2 * ni))
        return yi, vi, ni, None
    sd1 = a["sd_post"]
    check_nonneg("sd_post", sd1)
    check_nonneg("sd_pre", sd2)
    if code == "VRC":  # Nakagawa et al. (2015): log(sd_post / sd_pre)
        return np.log(sd1 / sd2), (1 - r**2) / (ni - 1), ni, None
    m1, m2 = a["mean_post"], a["mean_pre"]
    var_d = sd1**2 + sd2**2 - 2 * r * sd1 * sd2
    if code == "MC":
        return m1 - m2, var_d / ni, ni, None
    if code == "SMCC":  # Gibbons et al. (1993)
        c = cmi(ni - 1)
        d = (m1 - m2) / np.sqrt(var_d)
        yi = c * d
        vi = c**2 * (1 / ni + d**2 / (2 * ni)) if opt.vtype == "LS2" else 1 / ni + yi**2 / (2 * ni)
        return yi, vi, ni, None
    if code == "SMCRH":  # Bonett (2008), standardised by the pre-treatment SD
        c = cmi(ni - 1)
        yi = c * (m1 - m2) / sd2
        return yi, c**2 * (var_d / (sd2**2 * (ni - 1)) + yi**2 / (2 * (ni - 1))), ni, None
    if code == "CVRC":  # Nakagawa et al. (2015): log(CV_post / CV_pre)
        yi = np.log(sd1 / m1) - np.log(sd2 / m2)
        vi = ((1 - r**2) / (ni - 1)
              + (m1**2 * sd2**2 + m2**2 * sd1**2 - 2 * m1 * m2 * r * sd1 * sd2) / (m1**2 * m2**2 * ni))
        return yi, vi, ni, None
    if code == "ROMC":  # Lajeunesse (2011): log(post / pre)
        return (np.log(m1 / m2),
                sd1**2 / (ni * m1**2) + sd2**2 / (ni * m2**2) - 2 * r * sd1 * sd2 / (m1 * m2 * ni),
                ni, None)
    raise ValueError(f"no pre/post formula for measure {code}")
