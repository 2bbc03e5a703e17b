"""Correlations (roles r, n; metafor's ri, ni): COR, UCOR (Olkin & Pratt 1958 Ann Math Stat
29:201), ZCOR (Fisher 1921 Metron 1:3); partial and semi-partial correlations from a
regression t statistic (roles t, n, predictors [, r2]): PCOR, ZPCOR, SPCOR (Aloe & Becker
2012 J Educ Behav Stat 37:278).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ._common import Options, check_nonneg, check_pos, wmean


def hyp2f1(a: float, b: float, c, x) -> np.ndarray:
    """Gauss hypergeometric 2F1(a, b; c; x) for a, b > 0 and 0 <= x < 1 by its power series
    (all terms positive, so summed to full precision); NaN unless c > a + b, as metafor."""
    c, x = np.broadcast_arrays(np.asarray(c, dtype=float), np.asarray(x, dtype=float))
    ok = (c > a + b) & (x >= 0) & (x < 1)
    at1 = (c > a + b) & (x == 1)  # Gauss: Gamma(c) Gamma(c-a-b) / (Gamma(c-a) Gamma(c-b))
    c1 = np.where(at1, c, a + b + 1)
    gauss = np.exp(special.gammaln(c1) + special.gammaln(c1 - a - b) - special.gammaln(c1 - a)
                   - special.gammaln(c1 - b))
    cc, xx = np.where(ok, c, a + b + 1), np.where(ok, x, 0.0)
    term = np.ones(cc.shape)
    total = np.ones(cc.shape)
    for k in range(200_000):
        term = term * (a + k) * (b + k) / ((cc + k) * (k + 1)) * xx
        total = total + term
        if np.all(term <= 1e-17 * total):
            break
    return np.where(ok, total, np.where(at1, gauss, np.nan))


def compute(code: str, a: dict, opt: Options):
    ni = a["n"]
    check_pos("n", ni)
    vtype = opt.vtype
    if code in ("COR", "UCOR", "ZCOR"):
        ri = a["r"]
        bad = np.flatnonzero(np.abs(ri) > 1)
        if bad.size:
            raise ValueError(f"role 'r' must lie in [-1, 1], study {bad[0] + 1} has {ri[bad[0]]:g}")
        if code == "ZCOR":
            yi, vi = np.arctanh(ri), 1 / (ni - 3)
        else:
            yi = ri if code == "COR" else ri * hyp2f1(0.5, 0.5, (ni - 2) / 2, 1 - ri**2)
            if vtype == "UB":
                vi = yi**2 - (1 - (ni - 3) / (ni - 2) * (1 - ri**2) * hyp2f1(1, 1, ni / 2, 1 - ri**2))
            elif vtype == "AV":
                vi = (1 - wmean(yi, ni) ** 2) ** 2 / (ni - 1)
            else:
                vi = (1 - yi**2) ** 2 / (ni - 1)
        return yi, np.where(ni <= 3, np.nan, vi), ni, None
    ti, mi = a["t"], a["predictors"]
    check_nonneg("predictors", mi)
    bad = np.flatnonzero(ni - mi - 1 <= 0)
    if bad.size:
        raise ValueError(f"n - predictors - 1 must be > 0, study {bad[0] + 1} has "
                         f"{ni[bad[0]] - mi[bad[0]] - 1:g}")
    df = ni - mi - 1
    if code in ("PCOR", "ZPCOR"):
        r = ti / np.sqrt(ti**2 + df)
        if code == "ZPCOR":
            return np.arctanh(r), 1 / df, ni, None
        w = wmean(r, ni) if vtype == "AV" else r
        return r, (1 - w**2) ** 2 / df, ni, None
    if code == "SPCOR":
        r2 = a["r2"]
        bad = np.flatnonzero((r2 < 0) | (r2 > 1))
        if bad.size:
            raise ValueError(f"role 'r2' must lie in [0, 1], study {bad[0] + 1} has {r2[bad[0]]:g}")
        yi = ti * np.sqrt(1 - r2) / np.sqrt(df)
        w = wmean(yi, ni) if vtype == "AV" else yi
        return yi, (r2**2 - 2 * r2 + (r2 - w**2) + 1 - (r2 - w**2) ** 2) / ni, ni, None
    raise ValueError(f"no correlation formula for measure {code}")
