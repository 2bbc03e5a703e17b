"""Reliability, Cronbach's alpha (roles alpha, items, n; metafor's ai, mi, ni): ARAW (Feldt
1965 Psychometrika 30:357), AHW (Hakstian & Whalen 1976 Psychometrika 41:219), ABT (Bonett
2002 J Educ Behav Stat 27:335).
"""

from __future__ import annotations

import numpy as np

from ._common import Options, check_pos


def compute(code: str, a: dict, opt: Options):
    al, mi, ni = a["alpha"], a["items"], a["n"]
    bad = np.flatnonzero(al > 1)
    if bad.size:
        raise ValueError(f"role 'alpha' must be <= 1, study {bad[0] + 1} has {al[bad[0]]:g}")
    bad = np.flatnonzero(mi < 2)
    if bad.size:
        raise ValueError(f"role 'items' must be >= 2, study {bad[0] + 1} has {mi[bad[0]]:g}")
    check_pos("n", ni)
    if code == "ARAW":  # Feldt (1965)
        return al, 2 * mi * (1 - al) ** 2 / ((mi - 1) * (ni - 2)), ni, None
    if code == "AHW":
        return (1 - (1 - al) ** (1 / 3),
                18 * mi * (ni - 1) * (1 - al) ** (2 / 3) / ((mi - 1) * (9 * ni - 11) ** 2), ni, None)
    if code == "ABT":
        return -np.log(1 - al), 2 * mi / ((mi - 1) * (ni - 2)), ni, None
    raise ValueError(f"no reliability formula for measure {code}")
