"""Genetics: genotype counts of one biallelic marker (roles homozygous1, heterozygous,
homozygous2; metafor's ai, bi, ci): REH, the log relative excess heterozygosity,
log(p_het / (2 sqrt(p_hom1 p_hom2))), 0 under Hardy-Weinberg equilibrium, with its
delta-method variance ((1 - p_het) / (4 p_hom1 p_hom2) + 1 / p_het) / n (Ziegler et al.
2011 Breast Cancer Res Treat 128:197).
"""

from __future__ import annotations

import numpy as np

from ._common import Options, check_nonneg


def compute(code: str, a: dict, opt: Options):
    if code != "REH":
        raise ValueError(f"no genotype-count formula for measure {code}")
    h0, h1, h2 = a["homozygous1"], a["heterozygous"], a["homozygous2"]
    for nm in ("homozygous1", "heterozygous", "homozygous2"):
        check_nonneg(nm, a[nm])
    ni = h0 + h1 + h2
    p0, p1, p2 = h0 / ni, h1 / ni, h2 / ni
    return np.log(p1) - np.log(2 * np.sqrt(p0 * p2)), ((1 - p1) / (4 * p0 * p2) + 1 / p1) / ni, ni, None
