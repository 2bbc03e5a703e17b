"""Small helpers shared by the estimator modules."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["readonly", "check_level", "Excluded", "frozen_instance", "study_inputs", "study_arrays"]


@dataclass(frozen=True)
class Excluded:
    """A study left out of an analysis, and why (every model and :mod:`metamsc.frames` report
    them; re-exported by :mod:`metamsc.results`)."""

    study: str
    reason: str


_FIELDS: dict[type, tuple[dict[str, Any], frozenset[str], int]] = {}


def frozen_instance(cls, values: dict[str, Any]):
    """An instance of the frozen dataclass ``cls`` from ``values``, a dict of its fields built for
    this call (a dict literal: far cheaper than keyword arguments, ~0.5 us a field at 50 fields),
    defaults filled in; one dict update instead of the generated __init__'s guarded assignment
    per field. No __post_init__ may be needed. A wrong set of names raises TypeError where the
    count is wrong; a misspelt name in place of a required one shows when the field is read."""
    spec = _FIELDS.get(cls)
    if spec is None:
        fields = dataclasses.fields(cls)
        if hasattr(cls, "__post_init__") or any(f.default_factory is not dataclasses.MISSING
                                                for f in fields):
            raise TypeError(f"{cls.__name__} needs its own __init__")
        spec = ({f.name: f.default for f in fields if f.default is not dataclasses.MISSING},
                frozenset(f.name for f in fields), len(fields))
        _FIELDS[cls] = spec
    obj = object.__new__(cls)
    d = obj.__dict__
    d.update(values)
    if len(d) != spec[2]:  # defaults to fill in, or names missing or unknown
        for key, value in spec[0].items():
            if key not in d:
                d[key] = value
        if d.keys() != spec[1]:
            raise TypeError(f"{cls.__name__}: fields missing {sorted(spec[1] - d.keys())} or "
                            f"unknown {sorted(d.keys() - spec[1])}")
    return obj


def readonly(a: ArrayLike) -> np.ndarray:
    """A float copy of ``a`` that cannot be written to (for immutable result objects)."""
    out = np.array(a, dtype=float)
    out.setflags(write=False)
    return out


def check_level(level: float) -> float:
    """A confidence level strictly between 0 and 1, as a float."""
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level:g}")
    return level


@functools.lru_cache(maxsize=128)
def default_labels(k: int) -> tuple[str, ...]:
    """The labels "1", "2", ..., "k" of unlabelled studies."""
    return tuple(str(i + 1) for i in range(k))


def study_inputs(yi: ArrayLike, vi: ArrayLike,
                 labels: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Effect sizes as float arrays of one dimension and equal length, and their labels
    (default "1", "2", ...)."""
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if y.ndim == 0:
        y = y.reshape(1)
    if v.ndim == 0:
        v = v.reshape(1)
    if y.shape != v.shape or y.ndim != 1:
        raise ValueError("yi and vi must be one-dimensional and of the same length")
    labs = default_labels(y.size) if labels is None else tuple(str(x) for x in np.atleast_1d(labels))
    if len(labs) != y.size:
        raise ValueError("labels must have one entry per study")
    return y, v, labs


def study_arrays(yi: ArrayLike, vi: ArrayLike,
                 labels: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    """Validated effect sizes: ``(y, v, labels, ok)``, where ``ok`` marks the studies a model can
    use (finite yi, finite positive vi). Labels default to "1", "2", ..."""
    y, v, labs = study_inputs(yi, vi, labels)
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    return y, v, labs, ok


def warn_omitted(labels: tuple[str, ...], ok: np.ndarray, what: str) -> None:
    """Say which studies an array-level function leaves out (as metafor's na.omit warning)."""
    if not np.all(ok):
        import warnings

        gone = ", ".join(lab for lab, keep in zip(labels, ok) if not keep)
        warnings.warn(f"{what}: studies left out (yi or vi missing, not finite or vi <= 0): {gone}",
                      stacklevel=3)
