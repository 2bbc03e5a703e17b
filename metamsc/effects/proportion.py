"""Single proportions (roles events, total; metafor's xi, ni): PR, PLN, PLO, PAS, PFT.

Viechtbauer (2010) J Stat Softw 36(3); PAS: Rao (1973); PFT: Freeman & Tukey (1950)
Ann Math Stat 21:607. ``compute_meta``: R meta's ``metaprop`` variants of PR and PLN
(Hartung & Knapp 2001, eq. 18).
"""

from __future__ import annotations

import numpy as np

from ._common import Options, check_le, check_nonneg, check_pos, correction_mask, wmean


def _counts(a: dict):
    x, n = a["events"], a["total"]
    check_nonneg("events", x)
    check_pos("total", n)
    check_le("events", x, "total", n)
    return x, n


def compute(code: str, a: dict, opt: Options):
    x, ni = _counts(a)
    m = ni - x
    corrected = correction_mask(opt.to, (x == 0) | (m == 0)) & (opt.add != 0)
    x = x + opt.add * corrected
    m = m + opt.add * corrected
    n = x + m
    p = x / n
    av = opt.vtype == "AV"
    if code == "PR":
        if av:
            pa = wmean(p, n)
            return p, pa * (1 - pa) / n, n, corrected
        return p, p * (1 - p) / (n - 1 if opt.vtype == "UB" else n), n, corrected
    if code == "PLN":
        return np.log(p), 1 / (wmean(p, n) * n) - 1 / n if av else 1 / x - 1 / n, n, corrected
    if code == "PLO":
        if av:
            pa = wmean(p, n)
            return np.log(x / m), 1 / (pa * n) + 1 / ((1 - pa) * n), n, corrected
        return np.log(x / m), 1 / x + 1 / m, n, corrected
    if code == "PAS":
        return np.arcsin(np.sqrt(p)), 1 / (4 * n), n, corrected
    if code == "PFT":
        yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
        return yi, 1 / (4 * n + 2), n, corrected
    raise ValueError(f"no proportion formula for measure {code}")


def compute_meta(code: str, a: dict, opt: Options):
    """R meta's ``metaprop``: PR keeps the uncorrected x/n and corrects only its variance,
    (x+c)(n-x+c)/(n+2c)^3; PLN uses log((x+c)/(n+c)) with variance 1/(x+c) - 1/(n+c), or
    1/x - 1/(n+c) when x = n."""
    x, n = _counts(a)
    corrected = correction_mask(opt.to, (x == 0) | (x == n)) & (opt.add != 0)
    c = opt.add * corrected
    if code == "PR":
        return x / n, (x + c) * (n - x + c) / (n + 2 * c) ** 3, n, corrected
    yi = np.log((x + c) / (n + c))
    return yi, np.where(x == n, 1 / x - 1 / (n + c), 1 / (x + c) - 1 / (n + c)), n, corrected
