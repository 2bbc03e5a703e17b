"""Rows of forest-type plots (the forest, the sensitivity forests): the row record, the
measure's axis (scale, label, line of no effect and valid range, all from the measure registry),
printed values, model labels and option groups. Drawing is :mod:`metamsc.plots.draw`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..measures import get_measure
from ..results import MetaResult

__all__ = ["Axis", "Row", "option", "scale_of", "pooled", "valid_range", "fmt_value", "ci_text",
           "is_glmm", "model_label", "axis_label", "reference"]


@dataclass(frozen=True)
class Axis:
    """x axis: ``xlim`` on the natural scale (proportions in 0-1), ``ref`` the line of no effect
    (default 1 for ratios, 0 for differences, none otherwise; ``False`` for none), ``label``,
    and ``direction`` = (left text, right text), e.g. ("Favours MSC", "Favours control")."""

    xlim: tuple[float, float] | None = None
    ref: float | bool | None = None
    label: str | None = None
    direction: tuple[str, str] | None = None


def option(cls, value, name: str):
    """A group of options from None, an instance or a dict (unknown keys named in the error)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        names = [f.name for f in dataclasses.fields(cls)]
        for key in value:
            if key not in names:
                raise ValueError(f"{name}: unknown option {key!r}; expected one of {', '.join(names)}")
        return cls(**value)
    raise TypeError(f"{name} must be a {cls.__name__} or a dict, got {type(value).__name__}")


@dataclass(frozen=True)
class Row:
    kind: str  # "study", "group", "summary", "pi", "bound", "het", "note" (kept left of the plot), "gap"
    label: str
    est: float = np.nan
    lo: float = np.nan
    hi: float = np.nan
    weight: float = np.nan
    left: tuple[str, ...] = ()
    right: tuple[str, ...] = ()
    bold: bool = False
    value: str = ""
    shade: str = "0.35"


def scale_of(measure: str) -> str:
    """The forest axis of a measure (registry ``plot_scale``): "percent", "log" or "linear"."""
    return get_measure(measure).plot_scale


def pooled(res: MetaResult):
    if res.natural is not None:
        n = res.natural
        return n.estimate, n.ci_lb, n.ci_ub, n.pi_lb, n.pi_ub
    return res.estimate, res.ci_lb, res.ci_ub, res.pi_lb, res.pi_ub


def valid_range(measure: str) -> tuple[float, float]:
    """Values a measure's natural scale can take (Wald limits outside are truncated)."""
    m = get_measure(measure)
    if m.natural_scale == "proportion" and m.family == "proportion":
        return 0.0, 1.0
    if m.family == "rate" and m.natural_scale == "rate":
        return 0.0, np.inf
    return -np.inf, np.inf


def fmt_value(x: float, scale: str) -> str:
    if not np.isfinite(x):
        return "NA"
    if scale == "percent":
        return f"{100 * x:.1f}"
    if abs(x) >= 1e5 or (0 < abs(x) < 1e-3) or (scale == "log" and 0 < x < 0.01):
        return f"{x:.2g}"
    return f"{x:.2f}"


def ci_text(est, lo, hi, scale: str, measure: str = "GEN") -> tuple[str, bool]:
    """'est [lo, hi]' as printed, and whether a limit was truncated to the measure's range."""
    a, b = valid_range(measure)
    cut = (np.isfinite(lo) and lo < a) or (np.isfinite(hi) and hi > b)
    lo, hi = (min(max(v, a), b) if np.isfinite(v) else v for v in (lo, hi))
    text = f"{fmt_value(est, scale)} [{fmt_value(lo, scale)}, {fmt_value(hi, scale)}]"
    return text + ("\u2021" if cut else ""), bool(cut)


def is_glmm(res: MetaResult) -> bool:
    return res.model == "GLMM"


TEST_NAMES = {"z": "", "knha": ", Hartung-Knapp", "adhoc": ", ad hoc Hartung-Knapp", "t": ", t"}


def model_label(res: MetaResult) -> str:
    test = TEST_NAMES.get(res.test, "")
    if is_glmm(res):
        family = res.likelihood
        kind = "common-effect" if res.method == "EE" else "random-effects"
        return f"GLMM, {family}, {kind} ({'ML' if res.method != 'EE' else 'EE'}{test})"
    if res.method == "EE":
        return "Common-effect model"
    return f"Random-effects model ({res.method}{test})"


def axis_label(measure: str) -> str:
    """The x-axis label of a forest-type plot: the registry's ``axis_label``."""
    return get_measure(measure).axis_label


def reference(measure: str, ref: float | bool | None, scale: str) -> float | None:
    """The line of no effect: ``ref`` if a number; by default the registry's ``null_value``
    (1 for ratios, 0 for differences, none for one group); True: 1 on a log axis, else 0."""
    if ref is None:
        return get_measure(measure).null_value
    if ref is False or ref is True:
        return None if ref is False else (1.0 if scale == "log" else 0.0)
    return ref
