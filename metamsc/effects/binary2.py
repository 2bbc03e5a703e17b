"""Two groups, binary outcome: a 2x2 table (roles events1, total1, events2, total2;
metafor's ai, bi, ci, di): RR, OR, PETO, RD, AS, PHI, YUQ, YUY, RTET, PBIT, OR2DN, OR2DL,
and MPORM (the same roles as marginal counts of paired data, plus their correlation r).

Viechtbauer (2010) J Stat Softw 36(3) and the references in the measure registry;
``compute_meta``: R meta's ``metabin`` study estimates.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ._common import (Options, check_le, check_nonneg, check_range, correction_mask, table_cells,
                      wmean)


def _cells(a: dict, opt: Options):
    """2x2 cells (a, b, c, d) after drop00 and the continuity correction, and the mask."""
    ai, n1, ci, n2 = a["events1"], a["total1"], a["events2"], a["total2"]
    for nm in ("events1", "total1", "events2", "total2"):
        check_nonneg(nm, a[nm])
    check_le("events1", ai, "total1", n1)
    check_le("events2", ci, "total2", n2)
    return table_cells(ai, n1 - ai, ci, n2 - ci, opt.drop00, opt.to, opt.add)


def _phi_var(yi, ai, bi, ci, di, vtype):
    """Variance of the phi coefficient: Bishop, Fienberg & Holland (1975) (LS/CS) or
    the stratified-sampling form of Bonett (2007) (ST)."""
    n1, n2 = ai + bi, ci + di
    ni = n1 + n2
    p1, p2 = ai / n1, ci / n2
    q1, q2 = 1 - p1, 1 - p2
    if vtype == "ST":
        return ((n1 + n2) ** 2 * (4 * n1**3 * p1**2 * p2 * q1**2 * q2
                                  + 4 * n2**3 * p1 * p2**2 * q1 * q2**2
                                  + n1 * n2**2 * p2 * q2 * (p2 * q1 + p1 * q2) * (p2 * q1 + p1 * (4 * q1 + q2))
                                  + n1**2 * n2 * p1 * q1 * (p2 * q1 + p1 * q2) * (p1 * q2 + p2 * (q1 + 4 * q2)))
                / (4 * (ai + ci) ** 3 * (bi + di) ** 3))
    r1, r2 = n1 / ni, n2 / ni
    c1, c2 = (ai + ci) / ni, (bi + di) / ni
    return (1 - yi**2 + yi * (1 + yi**2 / 2) * (r1 - r2) * (c1 - c2) / np.sqrt(r1 * r2 * c1 * c2)
            - 0.75 * yi**2 * ((r1 - r2) ** 2 / (r1 * r2) + (c1 - c2) ** 2 / (c1 * c2))) / ni


def _bvn_excess(h: float, k: float, theta: float) -> float:
    """Phi2(h, k; sin theta) - Phi(h) Phi(k) by Plackett's (1954) identity, the integral of
    the bivariate normal density over the correlation, with r = sin(t) (a smooth integrand)."""
    from scipy.integrate import quad

    def f(t):
        c = np.cos(t)
        return np.exp(-(h * h - 2 * np.sin(t) * h * k + k * k) / (2 * c * c)) / (2 * np.pi)

    return quad(f, 0.0, theta, epsabs=1e-15, epsrel=1e-13, limit=200)[0]


def _tetrachoric(a: float, b: float, c: float, d: float) -> tuple[float, float]:
    """Maximum-likelihood tetrachoric correlation of one 2x2 table and its variance from the
    inverse information of (rho, both thresholds) (Pearson 1900; Olsson 1979 Psychometrika
    44:443). The thresholds reproduce the margins, so rho solves
    Phi2(h, k; rho) - Phi(h) Phi(k) = (ad - bc) / n^2."""
    from scipy.optimize import brentq

    n = a + b + c + d
    if a + b == 0 or c + d == 0 or a + c == 0 or b + d == 0:  # an empty margin: no estimate
        return np.nan, np.nan
    if b == 0 and c == 0:
        return 1.0, 0.0
    if a == 0 and d == 0:
        return -1.0, 0.0
    if min(a, b, c, d) == 0:  # one empty cell: the estimate is on the boundary, +-1
        return (1.0 if a * d > b * c else -1.0), np.nan
    h = special.ndtri((a + c) / n)
    k = special.ndtri((a + b) / n)
    target = (a * d - b * c) / n**2
    lim = np.pi / 2
    theta = brentq(lambda t: _bvn_excess(h, k, t) - target, -lim, lim, xtol=1e-15, rtol=1e-15,
                   maxiter=500)
    rho = np.sin(theta)
    s = np.sqrt(1 - rho * rho)
    dens = np.exp(-(h * h - 2 * rho * h * k + k * k) / (2 * s * s)) / (2 * np.pi * s)
    ph, pk = np.exp(-h * h / 2) / np.sqrt(2 * np.pi), np.exp(-k * k / 2) / np.sqrt(2 * np.pi)
    da_h = ph * special.ndtr((k - rho * h) / s)
    da_k = pk * special.ndtr((h - rho * k) / s)
    grad = np.array([[dens, da_h, da_k],  # cell a: Phi2(h, k)
                     [-dens, -da_h, pk - da_k],  # b: Phi(k) - Phi2
                     [-dens, ph - da_h, -da_k],  # c: Phi(h) - Phi2
                     [dens, da_h - ph, da_k - pk]])  # d
    p = np.array([a, b, c, d]) / n
    info = n * (grad.T / p) @ grad
    return float(rho), float(np.linalg.inv(info)[0, 0])


def compute(code: str, a: dict, opt: Options):
    if code == "MPORM":
        check_range("r", a["r"], -1, 1)
    ai, bi, ci, di, corrected = _cells(a, opt)
    n1, n2 = ai + bi, ci + di
    ni = n1 + n2
    p1, p2 = ai / n1, ci / n2
    if code == "RR":
        return np.log(p1) - np.log(p2), 1 / ai - 1 / n1 + 1 / ci - 1 / n2, ni, corrected
    if code in ("OR", "OR2DN", "OR2DL", "MPORM"):
        yi = np.log(ai / bi) - np.log(ci / di)
        vi = 1 / ai + 1 / bi + 1 / ci + 1 / di
        if code == "OR2DN":  # Cox (1970): d = log OR / 1.65
            yi, vi = yi / 1.65, vi / 1.65**2
        elif code == "OR2DL":  # Hasselblad & Hedges (1995): d = sqrt(3)/pi log OR
            yi, vi = np.sqrt(3) / np.pi * yi, 3 / np.pi**2 * vi
        elif code == "MPORM":  # marginal counts of n pairs, correlation r (Elbourne et al. 2002)
            pairs = np.round(ni / 2)
            prod = ai * bi * ci * di
            vi = vi - 2 * pairs * a["r"] * np.sqrt(prod) / prod
            return yi, vi, pairs, corrected
        return yi, vi, ni, corrected
    if code == "RD":
        yi = p1 - p2
        if opt.vtype == "UB":
            vi = p1 * (1 - p1) / (n1 - 1) + p2 * (1 - p2) / (n2 - 1)
        elif opt.vtype == "AV":
            m1, m2 = wmean(p1, n1), wmean(p2, n2)
            vi = m1 * (1 - m1) / n1 + m2 * (1 - m2) / n2
        else:
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        return yi, vi, ni, corrected
    if code == "PBIT":  # probit difference (Sanchez-Meca et al. 2003)
        z1, z2 = special.ndtri(p1), special.ndtri(p2)
        vi = (2 * np.pi * p1 * (1 - p1) * np.exp(z1**2) / n1
              + 2 * np.pi * p2 * (1 - p2) * np.exp(z2**2) / n2)
        return z1 - z2, vi, ni, corrected
    if code == "PETO":  # Yusuf et al. (1985): (O - E) / V
        xt, yt = ai + ci, bi + di
        e = xt * n1 / ni
        v = xt * yt * (n1 / ni) * (n2 / ni) / (ni - 1)
        return (ai - e) / v, 1 / v, ni, corrected
    if code == "AS":  # Ruecker et al. (2009)
        return (np.arcsin(np.sqrt(p1)) - np.arcsin(np.sqrt(p2)), 1 / (4 * n1) + 1 / (4 * n2), ni,
                corrected)
    if code == "PHI":
        yi = (ai * di - bi * ci) / np.sqrt((ai + bi) * (ci + di) * (ai + ci) * (bi + di))
        return yi, _phi_var(yi, ai, bi, ci, di, opt.vtype), ni, corrected
    if code == "RTET":
        est = [(np.nan, np.nan) if np.isnan(t).any() else _tetrachoric(*t)
               for t in zip(ai, bi, ci, di)]
        yi, vi = (np.array([e[j] for e in est], dtype=float) for j in (0, 1))
        return yi, vi, ni, corrected
    odds = (ai / bi) / (ci / di)
    if code == "YUQ":  # Yule (1900): Q = (OR - 1) / (OR + 1)
        yi = (odds - 1) / (odds + 1)
        return yi, (1 - yi**2) ** 2 / 4 * (1 / ai + 1 / bi + 1 / ci + 1 / di), ni, corrected
    if code == "YUY":  # Yule (1912): Y = (sqrt OR - 1) / (sqrt OR + 1)
        yi = (np.sqrt(odds) - 1) / (np.sqrt(odds) + 1)
        return yi, (1 - yi**2) ** 2 / 16 * (1 / ai + 1 / bi + 1 / ci + 1 / di), ni, corrected
    raise ValueError(f"no 2x2-table formula for measure {code}")


def compute_meta(code: str, a: dict, opt: Options):
    """R meta's ``metabin`` study estimates (Cooper & Hedges 1994; Hartung & Knapp 2001).

    Studies with no events in either arm (RR, OR) or all events in both arms (OR) get
    no estimate (NaN): meta leaves them out unless ``allstudies``. The increment
    ``add`` (``incr="TACC"``: the treatment-arm correction of Sweeting et al. 2004,
    n1/(n1+n2) in arm 1 and n2/(n1+n2) in arm 2) goes to the studies with a zero cell
    (``to="only0"``), to all studies when any has one (``"if0all"``), to all (``"all"``)
    or to none (``"none"``). RR: log((x1+i1)/(n1+i1)) - log((x2+i2)/(n2+i2)) with variance
    1/(x1+i1) - 1/(n1+i1) + 1/(x2+i2) - 1/(n2+i2), the increment left out of the event
    counts when both arms have only events (Hartung & Knapp 2001, eq. 18); the variant
    "RR.Cochrane" adds 2i to the group sizes instead. RD: the uncorrected difference with
    variance sum (x+i)(n-x+i)/(n+2i)^3.
    """
    x1, n1, x2, n2 = a["events1"], a["total1"], a["events2"], a["total2"]
    for nm, v in a.items():
        check_nonneg(nm, v)
    check_le("events1", x1, "total1", n1)
    check_le("events2", x2, "total2", n2)
    if code == "OR":
        out = ((x1 == 0) & (x2 == 0)) | ((x1 == n1) & (x2 == n2))
    elif code == "RR":
        out = (x1 == 0) & (x2 == 0)
    else:
        out = np.zeros(x1.shape, dtype=bool)
    zero = ((x1 == 0) | (x1 == n1) | (x2 == 0) | (x2 == n2)) & ~out
    if opt.incr == "TACC":
        i1, i2 = n1 / (n1 + n2), n2 / (n1 + n2)
    else:
        i1 = i2 = np.full(x1.shape, float(opt.add))
    mask = correction_mask(opt.to, zero) & ~out
    i1, i2 = i1 * mask, i2 * mask
    corrected = mask & ((i1 != 0) | (i2 != 0))
    allev = (x1 == n1) & (x2 == n2)
    if code == "OR":
        yi = np.log((x1 + i1) * (n2 - x2 + i2) / ((n1 - x1 + i1) * (x2 + i2)))
        vi = 1 / (x1 + i1) + 1 / (n1 - x1 + i1) + 1 / (x2 + i2) + 1 / (n2 - x2 + i2)
    elif code == "RR" and opt.variant == "RR.COCHRANE":
        yi = np.log((x1 + i1) / (n1 + 2 * i1)) - np.log((x2 + i2) / (n2 + 2 * i2))
        vi = 1 / (x1 + i1) - 1 / (n1 + 2 * i1) + 1 / (x2 + i2) - 1 / (n2 + 2 * i2)
    elif code == "RR":
        yi = np.log((x1 + i1) / (n1 + i1)) - np.log((x2 + i2) / (n2 + i2))
        vi = (1 / (x1 + i1 * ~allev) - 1 / (n1 + i1) + 1 / (x2 + i2 * ~allev) - 1 / (n2 + i2))
    elif code == "RD":
        yi = x1 / n1 - x2 / n2
        vi = ((x1 + i1) * (n1 - x1 + i1) / (n1 + 2 * i1) ** 3
              + (x2 + i2) * (n2 - x2 + i2) / (n2 + 2 * i2) ** 3)
    else:
        raise ValueError(f"convention='meta' has no variant of {code}")
    yi, vi = np.where(out, np.nan, yi), np.where(out, np.nan, vi)
    return yi, vi, n1 + n2, corrected
