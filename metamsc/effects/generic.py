"""Effect sizes given with their sampling variances (roles yi, vi): GEN."""

from __future__ import annotations

import numpy as np

from ._common import Options, check_nonneg


def compute(code: str, a: dict, opt: Options):
    yi, vi = a["yi"], a["vi"]
    check_nonneg("vi", vi[~np.isnan(vi)])
    return yi, vi, None, None
