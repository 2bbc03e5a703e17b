"""Small helpers shared by the estimator modules."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["readonly", "check_level"]


def readonly(a: ArrayLike) -> np.ndarray:
    """A float copy of ``a`` that cannot be written to (for immutable result objects)."""
    out = np.array(a, dtype=float)
    out.flags.writeable = False
    return out


def check_level(level: float) -> float:
    """A confidence level strictly between 0 and 1, as a float."""
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level:g}")
    return level
