"""dat.bcg (metafor's BCG vaccine trials, Colditz et al. 1994) as 2x2 counts, for the tests that
need the tables themselves (the fixtures carry their own copies)."""

from __future__ import annotations

import numpy as np

BCG = dict(tpos=[4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27],
           tneg=[119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886],
           cpos=[11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29],
           cneg=[128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825])


def bcg_tables():
    """(events1, total1, events2, total2) of dat.bcg as float arrays."""
    a, b, c, d = (np.array(BCG[k], float) for k in ("tpos", "tneg", "cpos", "cneg"))
    return a, a + b, c, c + d
