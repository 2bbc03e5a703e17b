"""Two groups, continuous outcome (roles mean1, sd1, n1, mean2, sd2, n2; metafor's m1i, sd1i,
n1i, m2i, sd2i, n2i): MD, SMD, SMD1, SMD1H, SMDH, ROM, CVR, VR, RPB, RBIS, D2ORN, D2ORL.

SMD: Hedges (1981) J Educ Stat 6:107; SMD1: Glass (1976); SMDH, SMD1H: Bonett (2008) Psychol
Methods 13:99; ROM: Hedges et al. (1999) Ecology 80:1150; CVR, VR: Nakagawa et al. (2015)
Methods Ecol Evol 6:143; RPB, RBIS: Jacobs & Viechtbauer (2017) Res Synth Methods 8:161;
D2ORN: Cox (1970); D2ORL: Hasselblad & Hedges (1995) Psychol Bull 117:167.
``compute_meta``: R meta's ``metacont`` SMD.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ._common import Options, check_nonneg, check_pos, cmi, wmean


def _groups(a: dict):
    n1, s2, n2 = a["n1"], a["sd2"], a["n2"]
    s1 = a.get("sd1", s2)  # SMD1 has no group-1 SD
    check_nonneg("sd1", s1)
    check_nonneg("sd2", s2)
    check_pos("n1", n1)
    check_pos("n2", n2)
    return n1, s1, n2, s2


def compute(code: str, a: dict, opt: Options):
    n1, s1, n2, s2 = _groups(a)
    n = n1 + n2
    vtype = opt.vtype
    if code == "VR":  # Nakagawa et al. (2015)
        return (np.log(s1 / s2) + 1 / (2 * (n1 - 1)) - 1 / (2 * (n2 - 1)),
                1 / (2 * (n1 - 1)) + 1 / (2 * (n2 - 1)), n, None)
    m1, m2 = a["mean1"], a["mean2"]
    if code in ("SMD1", "SMD1H"):  # standardised by group 2's SD (Glass 1976)
        mi, sp, npi = n2 - 1, s2, n2
    else:
        mi, sp, npi = n - 2, np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n - 2)), n
    d = (m1 - m2) / sp
    if code == "SMD1H":  # Bonett (2008)
        yi = cmi(mi) * d
        return yi, (s1**2 / s2**2) / n1 + 1 / n2 + yi**2 / (2 * n2), n, None
    if code == "MD":
        vi = sp**2 * (1 / n1 + 1 / n2) if vtype == "HO" else s1**2 / n1 + s2**2 / n2
        return m1 - m2, vi, n, None
    if code in ("SMD", "SMD1"):
        c = cmi(mi)
        yi = c * d  # Hedges' g with the exact correction (Hedges 1981)
        if vtype == "UB":
            vi = 1 / n1 + 1 / n2 + (1 - (mi - 2) / (mi * c**2)) * yi**2
        elif vtype == "LS2":
            vi = c**2 * (1 / n1 + 1 / n2 + d**2 / (2 * npi))
        elif vtype == "AV":
            vi = 1 / n1 + 1 / n2 + wmean(yi, n) ** 2 / (2 * npi)
        else:
            vi = 1 / n1 + 1 / n2 + yi**2 / (2 * npi)
        return yi, vi, n, None
    if code == "SMDH":  # Bonett (2008)
        c = cmi(n - 2)
        ssum = s1**2 + s2**2
        yi = c * (m1 - m2) / np.sqrt(ssum / 2)
        if vtype == "LS2":
            vi = (yi**2 * s1**2 / (2 * n1 * ssum**2) + yi**2 * s2**2 / (2 * n2 * ssum**2)
                  + 2 * s1**2 / (n1 * ssum) + 2 * s2**2 / (n2 * ssum))
        else:
            vi = c**2 * (yi**2 * (s1**4 / (n1 - 1) + s2**4 / (n2 - 1)) / (2 * ssum**2)
                         + (s1**2 / (n1 - 1) + s2**2 / (n2 - 1)) / (ssum / 2))
        return yi, vi, n, None
    if code == "ROM":  # Hedges et al. (1999)
        yi = np.log(m1 / m2)
        if vtype == "HO":
            vi = sp**2 / (n1 * m1**2) + sp**2 / (n2 * m2**2)
        elif vtype == "AV":
            vi = wmean(s1 / m1, n1) ** 2 / n1 + wmean(s2 / m2, n2) ** 2 / n2
        elif vtype == "AVHO":
            cv1, cv2 = s1 / m1, s2 / m2
            ok = ~(np.isnan(n1) | np.isnan(n2) | np.isnan(cv1) | np.isnan(cv2))
            cv = (np.sum(n1[ok] * cv1[ok]) + np.sum(n2[ok] * cv2[ok])) / np.sum(n[ok])
            vi = cv**2 * (1 / n1 + 1 / n2)
        else:
            vi = s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
        return yi, vi, n, None
    if code == "CVR":  # Nakagawa et al. (2015)
        yi = np.log(s1 / m1) + 1 / (2 * (n1 - 1)) - np.log(s2 / m2) - 1 / (2 * (n2 - 1))
        vi = 1 / (2 * (n1 - 1)) + s1**2 / (n1 * m1**2) + 1 / (2 * (n2 - 1)) + s2**2 / (n2 * m2**2)
        return yi, vi, n, None
    if code in ("RPB", "RBIS"):  # Jacobs & Viechtbauer (2017)
        h = mi / n1 + mi / n2
        rpb = d / np.sqrt(d**2 + h)
        if code == "RPB":
            if vtype == "CS":
                vi = (1 - rpb**2) ** 2 * (n * rpb**2 / (4 * n1 * n2) + (2 - 3 * rpb**2) / (2 * n))
            else:
                vi = h**2 / (h + d**2) ** 3 * (1 / n1 + 1 / n2 + d**2 / (2 * n))
            return rpb, vi, n, None
        p1, p2 = n1 / n, n2 / n
        z = -special.ndtri(p1)
        fz = np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)
        yi = np.sqrt(p1 * p2) / fz * rpb
        yt = np.where(np.abs(yi) > 1, np.sign(yi), yi)
        vi = (p1 * p2 / fz**2 - (1.5 + (1 - p1 * z / fz) * (1 + p2 * z / fz)) * yt**2 + yt**4) / (n - 1)
        return yi, vi, n, None
    if code in ("D2ORN", "D2ORL"):  # Cox (1970), factor 1.65; Hasselblad & Hedges (1995)
        f = 1.65 if code == "D2ORN" else np.pi / np.sqrt(3)
        return f * d, f**2 * (1 / n1 + 1 / n2 + d**2 / (2 * n)), n, None
    raise ValueError(f"no two-group continuous formula for measure {code}")


def compute_meta(code: str, a: dict, opt: Options):
    """R meta's ``metacont`` SMD (exact.smd = FALSE): J = 1 - 3/(4N - 9) and
    v = N/(n1 n2) + g^2 / (2 (N - 3.94)) (Deeks & Higgins 2010, RevMan 5)."""
    if code != "SMD":
        raise ValueError(f"convention='meta' has no variant of {code}")
    n1, s1, n2, s2 = _groups(a)
    n = n1 + n2
    sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n - 2))
    yi = (1 - 3 / (4 * n - 9)) * (a["mean1"] - a["mean2"]) / sp
    return yi, n / (n1 * n2) + yi**2 / (2 * (n - 3.94)), n, None
