"""Paired binary data, a paired 2x2 table (roles both, only1, only2, neither; metafor's ai,
bi, ci, di): MPRD, MPRR, MPOR, MPORC, MPPETO.

MPRD, MPRR: Zou (2007) Stat Med 26:3213; MPOR: the marginal odds ratio of Elbourne et al.
(2002) Int J Epidemiol 31:140; MPORC: Curtin et al. (2002) Stat Med 21:2131; MPPETO: Yusuf
et al. (1985) Prog Cardiovasc Dis 27:335.
"""

from __future__ import annotations

import numpy as np

from ._common import Options, check_nonneg, table_cells


def compute(code: str, a: dict, opt: Options):
    for nm, v in a.items():
        check_nonneg(nm, v)
    ai, bi, ci, di, corrected = table_cells(a["both"], a["only1"], a["only2"], a["neither"],
                                            opt.drop00, opt.to, opt.add)
    ni = ai + bi + ci + di
    if code == "MPORC":  # conditional (McNemar) odds ratio only1 / only2
        return np.log(bi) - np.log(ci), 1 / bi + 1 / ci, ni, corrected
    if code == "MPPETO":  # Peto's one-step estimate on the discordant pairs
        e, v = (bi + ci) / 2, (bi + ci) / 4
        return (bi - e) / v, 1 / v, ni, corrected
    p12, p21 = bi / ni, ci / ni
    p1, p2 = (ai + bi) / ni, (ai + ci) / ni
    if code == "MPRD":
        return p1 - p2, (p12 * (1 - p12) + 2 * p12 * p21 + p21 * (1 - p21)) / ni, ni, corrected
    if code == "MPRR":
        return np.log(p1) - np.log(p2), (p12 + p21) / (ni * p1 * p2), ni, corrected
    if code == "MPOR":
        yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
        vi = ((p12 * (1 - p12) + p21 * (1 - p21) + 2 * p12 * p21)
              / (ni * p1 * (1 - p1) * p2 * (1 - p2)))
        return yi, vi, ni, corrected
    raise ValueError(f"no paired-table formula for measure {code}")
