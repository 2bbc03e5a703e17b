"""Forest plot of a meta-analysis, in the layout of metafor's ``forest.rma`` and meta's ``forest.meta``.

Rows: one per study (square sized by weight, line for its CI), subgroup summaries, the pooled
diamond(s), the prediction interval as a bar beneath, and heterogeneity text. A model row is
drawn only where a model pools studies: a single study is its own result (no diamond), a
descriptive subgroup shows its studies only (no subtotal, no prediction interval), a prediction
interval needs k >= 3, and the weights column stands only beside a drawn overall model. Proportions are
drawn on the percent scale, ratios (and log-scale rates and means) on a log axis with natural
tick labels, everything else on the analysis scale.

Every column is as wide as its widest text, measured with the renderer, and the figure is as tall
as its rows (a fixed height per row), so text never overlaps or leaves the canvas. Artists carry a
``gid`` for programmatic checks: "square" (a study's estimate), "ci" (a study's CI line),
"diamond" (a summary), "pi" (a prediction interval), "bound" (an exact bound), "value-study" and
"value" (a study's and a summary's printed estimate [CI]), "weight", "cell" (a data column),
"label" (a row label), "header", "title", "footnote" and "pooled-line" / "ref-line".

Options come in small groups (a dataclass or a dict with the same keys):

- ``columns``: :class:`Columns` - extra columns from the data, left and right of the plot;
- ``order``: "data", "estimate", "weight" or one sort key per study (e.g. the year);
- ``summary``: :class:`Summary` - random and/or common diamond, prediction interval, the test
  of the overall effect;
- ``axis``: :class:`Axis` - x limits, reference line, axis label, direction-of-effect labels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..results import MetaResult
from ._layout import MAX_LABEL, MAX_NOTE, MAX_TITLE, Measurer, check_length

__all__ = ["forest", "Columns", "Summary", "Axis", "ORDERS"]

_PROPORTION = ("PR", "PLN", "PLO", "PAS", "PFT")
_RATIO = ("RR", "OR", "ROM", "IRR", "PETO")
_LOGPOS = ("IRLN", "MNLN")  # log axis, natural scale, no null value
_DIFFERENCE = ("RD", "MD", "SMD", "SMDH", "MC", "SMCC", "SMCR")
_FONT = 9.0
_XLABEL = {"MC": "Mean change (post \u2212 pre)", "SMCC": "Standardised mean change",
           "SMCR": "Standardised mean change (by the pre-treatment SD)", "MD": "Mean difference",
           "SMD": "Standardised mean difference (Hedges' g)", "RR": "Risk ratio (log scale)",
           "OR": "Odds ratio (log scale)", "ROM": "Ratio of means (log scale)",
           "RD": "Risk difference", "MN": "Mean", "MNLN": "Mean (log scale)",
           "IR": "Incidence rate", "IRLN": "Incidence rate (log scale)", "GEN": "Effect size"}
ROW_PT = 15.0  # row height in points
PLOT_PT = 210.0  # width of the plotting region in points
ORDERS = ("data", "estimate", "weight")
#: fewest studies for a prediction interval (its t quantile has k - 2 df: Higgins, Thompson &
#: Spiegelhalter 2009, JRSS A 172:137; with 2 studies tau^2 rests on one contrast)
_PI_MIN_K = 3
#: the label line of a subgroup shown with its studies only
DESCRIPTIVE = "descriptive: not pooled"


@dataclass(frozen=True)
class Columns:
    """Extra text columns from the data: ``{header: values}``, one value per data row (as
    ``study_data``; for a plain result, one per study given to the model), left or right of
    the plot (e.g. ``left={"Cell source": sources}, right={"Dose": doses}``)."""

    left: Mapping[str, Sequence[Any]] = dataclasses.field(default_factory=dict)
    right: Mapping[str, Sequence[Any]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """Which summary rows to draw: the random-effects (the result's model) and the common-effect
    diamond, the prediction interval, and the test of the overall effect (z or t)."""

    random: bool = True
    common: bool = False
    prediction: bool = True
    test: bool = False


@dataclass(frozen=True)
class Axis:
    """x axis: ``xlim`` on the natural scale (proportions in 0-1), ``ref`` the line of no effect
    (default 1 for ratios, 0 for differences, none otherwise; ``False`` for none), ``label``,
    and ``direction`` = (left text, right text), e.g. ("Favours MSC", "Favours control")."""

    xlim: tuple[float, float] | None = None
    ref: float | bool | None = None
    label: str | None = None
    direction: tuple[str, str] | None = None


def _option(cls, value, name: str):
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
class _Row:
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


def _scale(measure: str) -> str:
    if measure in _PROPORTION:
        return "percent"
    if measure in _RATIO or measure in _LOGPOS:
        return "log"
    return "linear"


def _natural_study(res: MetaResult):
    nat = res.study_natural()
    lb, ub = res.study_intervals()
    if nat is None:
        return res.yi, lb, ub
    est, a, b = nat
    return est, np.minimum(a, b), np.maximum(a, b)


def _pooled(res: MetaResult):
    if res.natural is not None:
        n = res.natural
        return n.estimate, n.ci_lb, n.ci_ub, n.pi_lb, n.pi_ub
    return res.estimate, res.ci_lb, res.ci_ub, res.pi_lb, res.pi_ub


def _valid_range(measure: str) -> tuple[float, float]:
    """Values a measure's natural scale can take (Wald limits outside are truncated)."""
    if measure in _PROPORTION:
        return 0.0, 1.0
    if measure in ("IR",):
        return 0.0, np.inf
    return -np.inf, np.inf


def _fmt_value(x: float, scale: str) -> str:
    if not np.isfinite(x):
        return "NA"
    if scale == "percent":
        return f"{100 * x:.1f}"
    if abs(x) >= 1e5 or (0 < abs(x) < 1e-3) or (scale == "log" and 0 < x < 0.01):
        return f"{x:.2g}"
    return f"{x:.2f}"


def ci_text(est, lo, hi, scale: str, measure: str = "GEN") -> tuple[str, bool]:
    """'est [lo, hi]' as printed, and whether a limit was truncated to the measure's range."""
    a, b = _valid_range(measure)
    cut = (np.isfinite(lo) and lo < a) or (np.isfinite(hi) and hi > b)
    lo, hi = (min(max(v, a), b) if np.isfinite(v) else v for v in (lo, hi))
    text = f"{_fmt_value(est, scale)} [{_fmt_value(lo, scale)}, {_fmt_value(hi, scale)}]"
    return text + ("\u2021" if cut else ""), bool(cut)


def _is_glmm(res: MetaResult) -> bool:
    return res.model == "GLMM"


_TEST_NAMES = {"z": "", "knha": ", Hartung-Knapp", "adhoc": ", ad hoc Hartung-Knapp", "t": ", t"}


def _model_label(res: MetaResult) -> str:
    test = _TEST_NAMES.get(res.test, "")
    if _is_glmm(res):
        family = "Poisson-normal" if res.measure == "IRLN" else "binomial-normal"
        kind = "common-effect" if res.method == "EE" else "random-effects"
        return f"GLMM, {family}, {kind} ({'ML' if res.method != 'EE' else 'EE'}{test})"
    if res.method == "EE":
        return "Common-effect model"
    return f"Random-effects model ({res.method}{test})"


def _pfmt(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _het_text(res: MetaResult) -> str:
    if res.k < 2:
        return "Heterogeneity: not estimable (k = 1)"
    if not np.isfinite(res.q):
        return "Heterogeneity: not estimable (no model identifiable from these counts)"
    parts = [f"Heterogeneity: I\u00b2 = {res.i2:.0f}%"]
    if np.isfinite(res.i2_ci_lb):
        parts[0] += f" [{res.i2_ci_lb:.0f}%, {res.i2_ci_ub:.0f}%]"
    if res.method != "EE":
        parts.append(f"\u03c4\u00b2 = {res.tau2:.3g}")
    parts.append(f"Q({res.q_df}) = {res.q:.2f}, p {_pfmt(res.q_pvalue)}")
    return ", ".join(parts)


def _overall_test_text(res: MetaResult) -> str:
    """Test of the overall effect: the model's z, or t on df degrees of freedom."""
    if not np.isfinite(res.statistic):
        return "Test for overall effect: not available"
    stat = "z" if res.df is None else f"t({res.df:g})"
    return f"Test for overall effect: {stat} = {res.statistic:.2f}, p {_pfmt(res.pvalue)}"


_CI_NAMES = {"CP": "Clopper-Pearson", "WS": "Wilson score", "WSCC": "Wilson score with continuity "
             "correction", "AC": "Agresti-Coull", "SA": "Wald", "SACC": "Wald with continuity "
             "correction", "JEFFREYS": "Jeffreys"}


def _bound_text(res: MetaResult) -> str | None:
    """The exact bound a result reports when no model was identifiable, or None."""
    n = res.natural
    if n is not None and n.transform.startswith("none: no model fitted"):
        return n.transform.split("CI = ", 1)[-1]
    return None


def _footnote(res: MetaResult, scale: str, study_ci: str, rows: list[_Row],
              bounds: list[str]) -> str:
    """What the study intervals are, where the pooled values come from, and the corrections."""
    modelled = any(r.kind == "summary" for r in rows)
    truncated = any(r.value.endswith("\u2021") for r in rows)
    parts = []
    if study_ci != "model":
        name = _CI_NAMES.get(study_ci.upper(), study_ci)
        parts.append(f"Study rows: observed proportions with {100 * res.level:g}% {name} CIs.")
    else:
        what = {"PLO": "logit", "PLN": "log", "PAS": "arcsine", "PFT": "Freeman-Tukey",
                "PR": "raw proportion", "RR": "log", "OR": "log", "ROM": "log", "IRLN": "log",
                "MNLN": "log", "PETO": "log"}.get(res.measure, "analysis")
        text = f"Study CIs: Wald, {100 * res.level:g}%, on the {what} scale"
        if scale in ("percent", "log") and res.measure not in ("PR",):
            text += ", back-transformed"
        parts.append(text + ".")
    if modelled and study_ci != "model":
        parts.append(f"Pooled values from the {res.measure} model.")
    import re

    for b in dict.fromkeys(re.sub(r" \(\d+ events in \d+\)", "", b) for b in bounds):
        parts.append(f"Exact bound: {b}.")
    corr = res.conventions.correction
    used = modelled or study_ci == "model"  # observed study rows alone use no correction
    if used and res.corrected is not None and np.any(res.corrected) and not corr.startswith("none"):
        mark = "" if study_ci != "model" else "\u2020 "
        parts.append(f"{mark}Continuity correction: {corr}.")
    if truncated:
        lo, hi = _valid_range(res.measure)
        rng = "0% and 100%" if scale == "percent" else f"{lo:g}"
        parts.append(f"\u2021 Wald limit beyond {rng}, printed and drawn truncated there.")
    return " ".join(parts)


def _exact_note(an) -> str:
    """Fisher's exact test and the exact conditional OR, for one two-group study."""
    from ..spec import _exact_two_group

    exact = _exact_two_group(an)
    if not exact or len(exact) != 1:
        return ""
    e = exact[0]
    return (f"Fisher's exact p = {e['fisher_pvalue']:.3f}; conditional MLE odds ratio "
            f"{e['or_conditional_mle']:.2f} [{e['or_exact_ci_lb']:.2f}, {e['or_exact_ci_ub']:.2f}] (exact).")


def _data_header(study_data) -> str:
    if not study_data:
        return ""
    if "events1" in study_data or "total" in study_data:
        return "Events/Total"
    if "time" in study_data:
        return "Events/Time"
    if "n1" in study_data:
        return "n1/n2"
    if "n" in study_data:
        return "n"
    return ""


def _data_text(study_data: Mapping[str, Any] | None, i: int) -> str:
    if not study_data:
        return ""
    d = study_data
    if "events1" in d:
        return f"{d['events1'][i]:g}/{d['total1'][i]:g} vs {d['events2'][i]:g}/{d['total2'][i]:g}"
    if "events" in d and "total" in d:
        return f"{d['events'][i]:g}/{d['total'][i]:g}"
    if "events" in d and "time" in d:
        return f"{d['events'][i]:g}/{d['time'][i]:g}"
    if "n1" in d:
        return f"{d['n1'][i]:g}/{d['n2'][i]:g}"
    if "n" in d:
        return f"{d['n'][i]:g}"
    return ""


def _observed(study_data, index, method: str, level: float):
    """Observed proportions x/n with an exact or score interval (meta's study CIs)."""
    from ..proportions import proportion_ci

    x = np.array([study_data["events"][i] for i in index], dtype=float)
    n = np.array([study_data["total"][i] for i in index], dtype=float)
    lo, hi = proportion_ci(x, n, method=method, level=level)
    return x / n, np.atleast_1d(np.asarray(lo, dtype=float)), np.atleast_1d(np.asarray(hi, dtype=float))


def _positions(res: MetaResult) -> list[int]:
    """Positions of the result's studies in the data rows (``study_data``)."""
    return list(range(res.k)) if res.kept is None else [int(i) for i in res.kept]


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if not np.isfinite(v) else f"{v:g}"
    return "" if v is None else str(v)


class _Builder:
    """Builds the rows of one forest plot (top to bottom)."""

    def __init__(self, result, study_data, study_ci, columns: Columns, order, scale):
        self.result, self.study_data, self.study_ci = result, study_data, study_ci
        self.columns, self.order, self.scale = columns, order, scale
        self.bounds: list[str] = []
        self.pi_skipped = False  # a random-effects summary of k < 3 drawn without its PI
        self.pooled = False  # an overall model of k > 1 studies is drawn

    def study_rows(self, res: MetaResult, index, weights) -> list[_Row]:
        index = list(index)
        if self.study_ci != "model":
            est, lo, hi = _observed(self.study_data, index, self.study_ci, res.level)
            mark = np.zeros(res.k, dtype=bool)
        else:
            est, lo, hi = _natural_study(res)
            mark = res.corrected if res.corrected is not None else np.zeros(res.k, dtype=bool)
        rows = []
        for j in range(res.k):
            label = res.labels[j] + ("\u2020" if mark[j] else "")
            check_length(label, f"study label {j + 1}", MAX_LABEL)
            left = tuple([_data_text(self.study_data, index[j])] if self.study_data else []) + tuple(
                _cell(v[index[j]]) for v in self.columns.left.values())
            right = tuple(_cell(v[index[j]]) for v in self.columns.right.values())
            text = ci_text(est[j], lo[j], hi[j], self.scale, res.measure)[0]
            a, b = _valid_range(res.measure)
            rows.append(_Row("study", label, est[j], max(lo[j], a), min(hi[j], b), weights[j],
                             left, right, value=text))
        return self._sorted(rows, index)

    def _sorted(self, rows: list[_Row], index: list[int]) -> list[_Row]:
        if isinstance(self.order, str):
            if self.order == "data":
                return rows
            key = (np.array([r.est for r in rows]) if self.order == "estimate"
                   else -np.nan_to_num(np.array([r.weight for r in rows]), nan=0.0))
        else:
            key = np.asarray([self.order[i] for i in index])
        return [rows[i] for i in np.argsort(key, kind="stable")]

    def summary_rows(self, res: MetaResult, label: str, bold: bool, weight: float,
                     opts: Summary, shade: str = "0.35") -> list[_Row]:
        est, lo, hi, plo, phi = _pooled(res)
        bound = _bound_text(res)
        if bound is not None and np.isfinite(hi):  # degenerate data: an exact bound, no model
            self.bounds.append(bound)
            upper = lo <= 0 and hi < 1
            value = ("\u2264 " if upper else "\u2265 ") + _fmt_value(hi if upper else lo, self.scale)
            return [_Row("bound", "Exact one-sided bound (no model identifiable)", est, lo, hi,
                         bold=bold, value=value)]
        value = ci_text(est, lo, hi, self.scale, res.measure)[0]
        rows = [_Row("summary", label, est, lo, hi, weight, bold=bold, value=value, shade=shade)]
        if opts.prediction and res.method != "EE" and res.k > 1 and res.k < _PI_MIN_K:
            self.pi_skipped = True
        if opts.prediction and res.method != "EE" and res.k >= _PI_MIN_K and np.isfinite(plo):
            a, b = _valid_range(res.measure)
            txt = ci_text(est, plo, phi, self.scale, res.measure)[0]
            rows.append(_Row("pi", "Prediction interval", est, max(plo, a), min(phi, b),
                             value=txt[txt.index("["):]))
        return rows


def _common_fit(res: MetaResult) -> MetaResult:
    """The common-effect model of the same studies (refused for a GLMM: no silent switch)."""
    if _is_glmm(res):
        raise ValueError("summary.common: this is a GLMM fit; fit the common-effect GLMM "
                         "(fit_glmm(..., method='EE')) and plot it, no inverse-variance model "
                         "is substituted")
    from ..pooling import pool

    return pool(res.yi, res.vi, method="EE", test="z", level=res.level, measure=res.measure,
                labels=list(res.labels), n=res.n)


def _layout(b: _Builder, result: MetaResult, subgroups, overall: bool, sensitivity, sens_role: str,
            opts: Summary, descriptive: Sequence[str] = ()) -> list[_Row]:
    """Rows top to bottom; in subgroup plots the weights are those of the overall model.

    A model row is drawn only where a model pools studies: not for one study (its row is the
    result), not for a ``descriptive`` subgroup (its studies are shown, not pooled), and the
    weights column only beside a drawn overall model."""
    rows: list[_Row] = []
    if len(subgroups) == 1 and subgroups[0][0] in descriptive:
        overall = False  # the overall model would pool the descriptive studies
    if len(subgroups) == 1 and (overall or subgroups[0][0] in descriptive):
        # one level: no subtotal that would repeat the overall result (or pool the descriptive)
        level = subgroups[0][0]
        tag = f"; {DESCRIPTIVE}" if level in descriptive else ""
        rows.append(_Row("group", f"{level} (all k = {result.k}{tag})", bold=True))
        subgroups = []
    modelled = overall and np.isfinite(result.estimate) and result.k > 1
    b.pooled = modelled
    if subgroups:
        # rows of the data by position (``kept``), so duplicate labels cannot mix studies up
        shown = result.weights if modelled else np.full(result.k, np.nan)  # no overall: no weights
        overall_w = dict(zip(_positions(result), shown))
        for level, sub in subgroups:
            idx = _positions(sub)
            w = [overall_w.get(i, np.nan) for i in idx]
            tag = f"; {DESCRIPTIVE}" if level in descriptive else ""
            rows.append(_Row("group", f"{level} (k = {sub.k}{tag})", bold=True))
            rows.extend(b.study_rows(sub, idx, w))
            if level in descriptive:
                rows.append(_Row("gap", ""))
                continue
            if sub.k > 1 or _bound_text(sub) is not None:
                name = _model_label(sub).split(" (")[0]
                name = name if name.startswith("GLMM") else name[0].lower() + name[1:]
                rows.extend(b.summary_rows(sub, f"Subtotal ({name})", False,
                                           float(np.sum(w)) if modelled else np.nan, opts, "0.65"))
            if sub.k > 1:
                rows.append(_Row("het", _het_text(sub)))
            rows.append(_Row("gap", ""))
    else:
        weights = result.weights if modelled else np.full(result.k, np.nan)
        rows.extend(b.study_rows(result, _positions(result), weights))
        rows.append(_Row("gap", ""))
    if overall and result.k == 1 and _bound_text(result) is None:
        rows.append(_Row("note", "One study: its row is the result (nothing pooled)"))
    elif overall:
        if opts.common:
            common = _common_fit(result)
            rows.extend(b.summary_rows(common, "Common-effect model", True, np.nan,
                                       Summary(prediction=False), "0.15"))
        if opts.random or not opts.common:
            rows.extend(b.summary_rows(result, _model_label(result), True,
                                       100.0 if modelled else np.nan, opts))
        if result.k > 1:
            rows.append(_Row("het", _het_text(result)))
        if opts.test and modelled:
            rows.append(_Row("het", _overall_test_text(result)))
    if sensitivity:
        rows.append(_Row("gap", ""))
        rows.append(_Row("group", f"Sensitivity to the assumed {sens_role} (declared in the spec)"))
        for value, res in sensitivity:  # one study refitted: a study row, not a diamond
            est, lo, hi, _, _ = _pooled(res)
            rows.append(_Row("study" if res.k == 1 else "summary", f"{sens_role} = {value:g}", est,
                             lo, hi, value=ci_text(est, lo, hi, b.scale, res.measure)[0],
                             shade="0.65"))
    while rows and rows[-1].kind == "gap":
        rows.pop()
    return rows


def forest(result: Any, ax=None, *, title: str | None = None, study_data: Mapping[str, Any] | None = None,
           subgroups=None, subgroup_test=None, footnote: str | None = None, note: str | None = None,
           study_ci: str = "model", columns: Columns | dict | None = None,
           order: str | Sequence[Any] = "data", summary: Summary | dict | None = None,
           axis: Axis | dict | None = None, descriptive: Sequence[str] | None = None):
    """Draw a forest plot on ``ax`` (a new figure sized to its rows if None) and return ``ax``.

    ``result`` is a :class:`~metamsc.results.MetaResult` or a spec
    :class:`~metamsc.spec.Analysis` (whose subgroups, raw counts, title and forest options are
    then used). ``study_ci`` is "model" (Wald on the analysis scale, as metafor) or, for
    proportions, a method of :func:`metamsc.proportions.proportion_ci` ("CP", "WS", ...) to
    show each study's observed x/n with that interval (as meta). ``columns``, ``order``,
    ``summary`` and ``axis`` are the option groups described in the module docstring.
    ``descriptive`` names subgroup levels drawn with their studies only (no subtotal, no
    prediction interval; an Analysis takes its spec's ``descriptive``). A single study is its
    own result (no model row); a prediction interval needs k >= 3; the weights column appears
    only beside a drawn overall model.
    With ``ax=None`` the figure is sized to its text and rows; a given ``ax`` keeps its figure's
    size, and the columns are placed beside it in points (leave room for them).
    """
    overall, sensitivity, sens_role, extra_note = True, (), "", ""
    if not isinstance(result, MetaResult):  # an Analysis from a spec
        an = result
        result = an.result
        overall = an.spec.overall
        sensitivity = an.sensitivity
        sens_role = an.spec.sensitivity[0] if an.spec.sensitivity else ""
        study_ci = an.spec.study_ci
        note = note if note is not None else (an.spec.note or None)
        study_data = study_data or an.study_data
        subgroups = subgroups if subgroups is not None else an.subgroups
        subgroup_test = subgroup_test if subgroup_test is not None else an.subgroup_test
        title = title if title is not None else an.spec.title
        extra_note = _exact_note(an)
        opts = spec_forest_options(an)
        columns = columns if columns is not None else opts.get("columns")
        order = opts.get("order", "data") if isinstance(order, str) and order == "data" else order
        summary = summary if summary is not None else opts.get("summary")
        axis = axis if axis is not None else opts.get("axis")
        if descriptive is None:  # the spec's levels (its validator knows the data)
            descriptive = [lv for lv in an.spec.descriptive if lv in dict(subgroups or ())]
    elif subgroups is None and result.subgroups is not None:  # a result with its subgroups
        subgroups = list(result.subgroups.items())
        subgroup_test = subgroup_test if subgroup_test is not None else result.subgroup_test
    if not isinstance(result, MetaResult):
        raise TypeError(f"forest() needs a MetaResult or an Analysis, got {type(result).__name__}")
    check_length(title, "title", MAX_TITLE)
    check_length(note, "note", MAX_NOTE)
    check_length(footnote, "footnote", MAX_NOTE)
    columns = _option(Columns, columns, "columns")
    summary = _option(Summary, summary, "summary")
    axis = _option(Axis, axis, "axis")
    n_data = len(study_data[next(iter(study_data))]) if study_data else (
        result.k if result.kept is None else int(np.max(result.kept)) + 1 if result.k else 0)
    for side in ("left", "right"):
        for name, vals in getattr(columns, side).items():
            if len(vals) < n_data:
                raise ValueError(f"columns.{side}[{name!r}] has {len(vals)} values; one per data "
                                 f"row ({n_data}) is needed")
    if isinstance(order, str):
        if order not in ORDERS:
            raise ValueError(f"order: unknown {order!r}; expected one of {', '.join(ORDERS)} "
                             f"or one sort key per study")
    elif len(order) < n_data:
        raise ValueError(f"order has {len(order)} values; one per data row ({n_data}) is needed")
    subgroups = list(subgroups or [])
    scale = _scale(result.measure)
    if study_ci != "model" and not (study_data and "total" in study_data
                                    and result.measure in _PROPORTION):
        raise ValueError("study_ci other than 'model' needs a proportion measure and its counts")
    builder = _Builder(result, study_data, study_ci, columns, order, scale)
    descriptive = tuple(str(x) for x in (descriptive or ()))
    levels = [str(lv) for lv, _ in subgroups]
    for lv in descriptive:
        if lv not in levels:
            raise ValueError(f"descriptive: {lv!r} is not a subgroup level "
                             f"({', '.join(map(repr, levels)) or 'no subgroups'})")
    rows = _layout(builder, result, subgroups, overall, sensitivity, sens_role, summary, descriptive)
    if subgroup_test is not None:
        rows.append(_Row("het", f"Test for subgroup differences: Q({subgroup_test.df}) = "
                                f"{subgroup_test.q:.2f}, p {_pfmt(subgroup_test.pvalue)}"))
    if footnote is None:
        footnote = _footnote(result, scale, study_ci, rows, builder.bounds)
        if builder.pi_skipped:
            footnote += f" No prediction interval with fewer than {_PI_MIN_K} studies."
        footnote = f"{footnote} {extra_note}".strip()
    if note:
        footnote = f"{note} {footnote}" if footnote else note
    ci_header = {"percent": "Proportion, % [95% CI]", "log": "Ratio [95% CI]",
                 "linear": "Estimate [95% CI]"}[scale]
    if result.measure in _LOGPOS:
        ci_header = "Estimate [95% CI]"
    ci_header = ci_header.replace("95%", f"{100 * result.level:g}%")
    left_headers = ([_data_header(study_data)] if study_data else []) + list(columns.left)
    right_headers = list(columns.right)
    pooled_est = _pooled(result)[0] if builder.pooled else np.nan
    xlabel = axis.label if axis.label is not None else _XLABEL.get(result.measure) or {
        "percent": "Proportion (%)", "log": "Ratio (log scale)", "linear": "Estimate"}[scale]
    ref = axis.ref
    if ref is None:
        ref = 1.0 if result.measure in _RATIO else 0.0 if result.measure in _DIFFERENCE else None
    elif ref is False or ref is True:
        ref = None if ref is False else (1.0 if scale == "log" else 0.0)
    return draw(rows, ax=ax, scale=scale, title=title, footnote=footnote, xlabel=xlabel,
                left_headers=left_headers, right_headers=right_headers, value_header=ci_header,
                pooled=pooled_est, ref=ref, xlim=axis.xlim, direction=axis.direction)


def spec_forest_options(an) -> dict[str, Any]:
    """Forest options of a spec's ``[forest]`` table, with data columns resolved to values."""
    raw = getattr(an.spec, "forest", None) or {}
    out: dict[str, Any] = {}
    rows = an.selection.rows
    known = an.selection.columns
    for c in [c for side in ("left", "right") for c in raw.get(side, {}).values()] + (
            [raw["sort"]] if raw.get("sort", "data") not in ORDERS else []):
        if c not in known:
            raise ValueError(f"key 'forest': no column {c!r} in the data")
    cols = {}
    for side in ("left", "right"):
        if side in raw:
            cols[side] = {h: [r.get(c, "") for r in rows] for h, c in raw[side].items()}
    if cols:
        out["columns"] = cols
    sort = raw.get("sort", "data")
    if sort in ORDERS:
        out["order"] = sort
    else:
        def key(v: str):
            try:
                return (0, float(v), "")
            except ValueError:
                return (1, 0.0, v)
        keys = [key(r.get(sort, "")) for r in rows]
        ranks = {k: i for i, k in enumerate(sorted(set(keys)))}
        out["order"] = [ranks[k] for k in keys]
    summ = {k: raw[k] for k in ("common", "random", "prediction", "test") if k in raw}
    if summ:
        out["summary"] = summ
    ax = {k: (tuple(raw[k]) if isinstance(raw[k], list) else raw[k])
          for k in ("xlim", "ref", "direction") if k in raw}
    if "xlabel" in raw:
        ax["label"] = raw["xlabel"]
    if ax:
        out["axis"] = ax
    return out


#: keys of a spec's ``[forest]`` table and their types
SPEC_KEYS = {"left": dict, "right": dict, "sort": str, "common": bool, "random": bool,
             "prediction": bool, "test": bool, "xlim": list, "ref": (int, float), "direction": list,
             "xlabel": str}


def check_spec_options(raw: Mapping[str, Any], columns: Sequence[str] | None = None) -> None:
    """Validate a spec's ``[forest]`` table; a ValueError names the key."""
    for key, val in raw.items():
        if key not in SPEC_KEYS:
            raise ValueError(f"forest.{key}: unknown option; expected one of {', '.join(SPEC_KEYS)}")
        if isinstance(val, bool) and SPEC_KEYS[key] is not bool or not isinstance(val, SPEC_KEYS[key]):
            raise ValueError(f"forest.{key}: wrong type {type(val).__name__}")
    for side in ("left", "right"):
        for h, c in raw.get(side, {}).items():
            if not isinstance(c, str):
                raise ValueError(f"forest.{side}.{h} must name a column (a string)")
    if "xlim" in raw and (len(raw["xlim"]) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw["xlim"])
            or not raw["xlim"][0] < raw["xlim"][1]):
        raise ValueError("forest.xlim must be two increasing numbers")
    if "direction" in raw and (len(raw["direction"]) != 2
                               or not all(isinstance(v, str) for v in raw["direction"])):
        raise ValueError("forest.direction must be two strings (left, right)")


# ---------------------------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------------------------

def _to_plot(v, scale):
    return v * 100.0 if scale == "percent" else v


def _auto_xlim(rows: list[_Row], scale: str, ref) -> tuple[float, float]:
    """x range on the plotted scale: every estimate, summary CI and the reference line, widened
    towards the study CIs by at most the core width (longer CIs end in an arrow)."""
    if scale == "percent":
        return 0.0, 100.0
    t = np.log if scale == "log" else (lambda x: x)
    core, full = [], []
    for r in rows:
        vals = [r.est] if r.kind == "study" else [r.est, r.lo, r.hi] if r.kind == "summary" else []
        core += vals
        full += [r.lo, r.hi] if r.kind in ("study", "pi", "bound") else []
    if ref is not None:
        core.append(ref)
    ok = (lambda v: np.isfinite(v) and v > 0) if scale == "log" else np.isfinite
    core = [float(t(v)) for v in core if ok(v)]
    full = [float(t(v)) for v in full if ok(v)]
    if not core and not full:
        return (0.1, 10.0) if scale == "log" else (-1.0, 1.0)
    core = core or full
    lo, hi = min(core), max(core)
    width = hi - lo if hi > lo else max(abs(lo) * 0.5, 0.5 if scale == "log" else 1.0)
    if full:
        lo = min(lo, max(min(full), lo - width))
        hi = max(hi, min(max(full), hi + width))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.04 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    return (float(np.exp(lo)), float(np.exp(hi))) if scale == "log" else (lo, hi)


def _log_ticks(x0: float, x1: float) -> list[float]:
    for mant in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0**e for e in range(-8, 9) for m in mant if x0 <= m * 10.0**e <= x1]
        if len(ticks) <= 6:
            break
    step = 1
    while len(ticks[::step]) > 6:
        step += 1
    ticks = ticks[::step]
    if len(ticks) < 2:
        ticks = sorted({float(f"{x0 * (x1 / x0) ** f:.2g}") for f in (0.1, 0.5, 0.9)})
    return ticks


def draw(rows: list[_Row], *, ax=None, scale: str, title: str | None, footnote: str | None,
         xlabel: str, left_headers: list[str], right_headers: list[str], value_header: str,
         pooled: float = np.nan, ref: float | None = None, xlim=None,
         direction: tuple[str, str] | None = None, label_header: str = "Study"):
    """Draw rows built by a forest-type plot (also used by the sensitivity forests)."""
    import matplotlib.pyplot as plt
    from matplotlib import transforms as mtransforms
    from matplotlib.patches import Polygon, Rectangle
    from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter, NullLocator

    n_rows = len(rows)
    own_fig = ax is None
    fig = plt.figure(figsize=(6, 4)) if own_fig else ax.figure
    m = Measurer(fig)
    small = _FONT - 1.5
    has_weight = any(np.isfinite(r.weight) for r in rows if r.kind in ("study", "summary"))
    gap = 10.0

    # column widths (points), measured
    def colw(texts, header):
        return max([m.width(t, _FONT) for t in texts] + [m.width(header, _FONT, bold=True)])

    w_label = max([m.width(r.label, _FONT) for r in rows if r.kind == "study"]
                  + [m.width(label_header, _FONT, bold=True), 30.0])
    w_left = [colw([r.left[i] for r in rows if r.kind == "study" and i < len(r.left)], h)
              for i, h in enumerate(left_headers)]
    w_right = [colw([r.right[i] for r in rows if r.kind == "study" and i < len(r.right)], h)
               for i, h in enumerate(right_headers)]
    w_weight = colw(["100.0%"], "Weight") if has_weight else 0.0
    w_value = max([m.width(r.value, _FONT, bold=r.bold) for r in rows]
                  + [m.width(value_header, _FONT, bold=True)])
    left_total = w_label + sum(w + gap for w in w_left)
    span_left = max([m.width(r.label, _FONT if r.kind != "pi" else _FONT - 0.5, bold=r.bold)
                     + (10 if r.kind == "pi" else 0)
                     for r in rows if r.kind in ("summary", "pi", "bound")]
                    + [m.width(r.label, _FONT - 1, italic=True) for r in rows if r.kind == "note"]
                    + [0.0])
    if span_left > left_total:  # summary labels span the (empty) data columns on their rows
        w_label += span_left - left_total
        left_total = span_left
    right_total = gap + sum(w + gap for w in w_right) + (w_weight + gap if has_weight else 0) + w_value
    margin = 8.0
    inner_w = left_total + gap + PLOT_PT + right_total
    span_any = max([m.width(r.label, _FONT, bold=r.bold) for r in rows if r.kind == "group"]
                   + [m.width(r.label, _FONT - 1, italic=True) for r in rows if r.kind == "het"]
                   + [0.0])
    inner_w = max(inner_w, span_any)

    title_lines = m.wrap(title, inner_w, _FONT + 2, bold=True) if title else []
    foot_lines = m.wrap(footnote, inner_w, small, italic=True) if footnote else []
    title_h = len(title_lines) * (_FONT + 2) * 1.25 * 1.2 + (10 if title_lines else 0)
    axes_h = (n_rows + 1.5) * ROW_PT
    below = 36.0 + (14.0 if direction else 0.0)
    foot_h = len(foot_lines) * small * 1.3 * 1.2 + (6 if foot_lines else 0)
    if own_fig:
        width_pt = inner_w + 2 * margin
        height_pt = margin + title_h + axes_h + below + foot_h + margin
        fig.set_size_inches(width_pt / 72, height_pt / 72)
        ax = fig.add_axes(((margin + left_total + gap) / width_pt,
                           (margin + foot_h + below) / height_pt,
                           PLOT_PT / width_pt, axes_h / height_pt))
    ax.set_ylim(0.5, n_rows + 2.0)
    ys = [n_rows - i for i in range(n_rows)]  # first row on top
    header_y = n_rows + 1.0
    blend = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)

    def text_at(x_axes, dx_pt, y, s, ha="left", bold=False, size=_FONT, style="normal", gid=None,
                **kw):
        if not s:
            return
        tr = mtransforms.offset_copy(blend, fig=fig, x=dx_pt, y=0, units="points")
        ax.text(x_axes, y, s, transform=tr, ha=ha, va="center", fontsize=size,
                fontweight="bold" if bold else "normal", fontstyle=style, clip_on=False,
                parse_math=False, gid=gid, **kw)

    # x positions (points from the axes' left or right edge)
    x_label = -(left_total + gap)
    x_left = []
    pos = x_label + w_label + gap
    for w in w_left:
        x_left.append(pos)
        pos += w + gap
    x_right = []
    pos = gap
    for w in w_right:
        x_right.append(pos)
        pos += w + gap
    x_weight = pos + w_weight  # right-aligned
    x_value = right_total  # right-aligned

    # x axis
    if xlim is not None:
        x0, x1 = (_to_plot(v, scale) for v in xlim)
        if scale == "log" and x0 <= 0:
            raise ValueError(f"axis.xlim: {xlim[0]!r} is not positive; a log axis needs xlim > 0")
    else:
        x0, x1 = _auto_xlim(rows, scale, ref)
        if scale == "percent":
            x0, x1 = 0.0, 100.0
    if scale == "log":
        ax.set_xscale("log")
    ax.set_xlim(x0, x1)

    max_w = max([r.weight for r in rows if r.kind == "study" and np.isfinite(r.weight)] or [1])
    hdr = dict(bold=True)
    text_at(0, x_label, header_y, label_header, gid="header", **hdr)
    for x, h in zip(x_left, left_headers):
        text_at(0, x, header_y, h, gid="header", **hdr)
    for x, h in zip(x_right, right_headers):
        text_at(1, x, header_y, h, gid="header", **hdr)
    if has_weight:
        text_at(1, x_weight, header_y, "Weight", ha="right", gid="header", **hdr)
    text_at(1, x_value, header_y, value_header, ha="right", gid="header", **hdr)

    def clip(v):
        return min(max(v, x0), x1)

    for r, y in zip(rows, ys):
        if r.kind == "gap":
            continue
        if r.kind == "group":
            text_at(0, x_label, y, r.label, bold=True, gid="label")
            continue
        if r.kind in ("het", "note"):
            # on white, above the vertical lines it may cross
            text_at(0, x_label, y, r.label, size=_FONT - 1, style="italic", gid="label", zorder=4,
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
            continue
        lo, hi, est = _to_plot(r.lo, scale), _to_plot(r.hi, scale), _to_plot(r.est, scale)
        if r.kind == "pi":
            text_at(0, x_label + 10, y, r.label, size=_FONT - 0.5, gid="label")
            text_at(1, x_value, y, r.value, ha="right", size=_FONT - 0.5, gid="value")
        else:
            text_at(0, x_label, y, r.label, bold=r.bold, gid="label")
            text_at(1, x_value, y, r.value, ha="right", bold=r.bold,
                    gid="value-study" if r.kind == "study" else "value")
        if r.kind in ("study", "summary") and np.isfinite(r.weight):
            text_at(1, x_weight, y, f"{r.weight:.1f}%", ha="right", bold=r.bold, gid="weight")
        if r.kind == "study":
            for x, s in zip(x_left, r.left):
                text_at(0, x, y, s, gid="cell")
            for x, s in zip(x_right, r.right):
                text_at(1, x, y, s, gid="cell")
            if np.isfinite(lo) and np.isfinite(hi) and hi >= x0 and lo <= x1:
                ax.plot([clip(lo), clip(hi)], [y, y], color="black", lw=0.9,
                        solid_capstyle="butt", gid="ci")
                if lo < x0:
                    ax.plot([x0], [y], marker="<", markersize=4, color="black", gid="arrow")
                if hi > x1:
                    ax.plot([x1], [y], marker=">", markersize=4, color="black", gid="arrow")
            if np.isfinite(est) and x0 <= est <= x1:
                rel = r.weight / max_w if np.isfinite(r.weight) else 0.3
                ax.plot([est], [y], marker="s", markersize=4 + 6 * np.sqrt(rel), color="0.25",
                        markeredgecolor="black", markeredgewidth=0.5, zorder=3, gid="square")
        elif r.kind == "summary":
            if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(est)):
                continue
            h = 0.32
            poly = Polygon([(lo, y), (est, y + h), (hi, y), (est, y - h)], closed=True,
                           facecolor=r.shade, edgecolor="black", lw=0.7, zorder=3, gid="diamond",
                           clip_on=True)
            ax.add_patch(poly)
        elif r.kind == "bound":
            if np.isfinite(lo) and np.isfinite(hi):
                ax.add_patch(Rectangle((clip(lo), y - 0.2), clip(hi) - clip(lo), 0.4, facecolor="0.8",
                                       edgecolor="black", lw=0.6, hatch="////", zorder=2, gid="bound"))
        elif r.kind == "pi":
            if np.isfinite(lo) and np.isfinite(hi):
                ax.add_patch(Rectangle((clip(lo), y - 0.12), clip(hi) - clip(lo), 0.24,
                                       facecolor="0.85", edgecolor="black", lw=0.6, zorder=2, gid="pi"))

    # vertical lines from the bottom to the top of the first row (never through the header)
    top = n_rows + 0.5
    est0 = _to_plot(pooled, scale)
    if np.isfinite(est0) and x0 < est0 < x1:
        ax.plot([est0, est0], [0.5, top], color="0.4", lw=0.6, ls=(0, (3, 3)), zorder=1,
                gid="pooled-line")
    if ref is not None and x0 < _to_plot(ref, scale) < x1:
        ax.plot([_to_plot(ref, scale)] * 2, [0.5, top], color="black", lw=0.6, zorder=1, gid="ref-line")

    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=_FONT - 0.5, length=3)
    if scale == "percent":
        ticks = [v for v in np.linspace(0, 100, 6) if x0 <= v <= x1] if (x0, x1) == (0, 100) else None
        if ticks:
            ax.xaxis.set_major_locator(FixedLocator(ticks))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f}%")
    elif scale == "log":
        ax.xaxis.set_major_locator(FixedLocator(_log_ticks(x0, x1)))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.set_xlabel(xlabel, fontsize=_FONT, labelpad=4 + (14 if direction else 0))
    if direction:
        at = ref if ref is not None else (pooled if np.isfinite(pooled) else None)
        xr = _to_plot(at, scale) if at is not None else None
        frac = 0.5 if xr is None or not x0 < xr < x1 else (
            (np.log(xr) - np.log(x0)) / (np.log(x1) - np.log(x0)) if scale == "log"
            else (xr - x0) / (x1 - x0))
        for s, ha, dx in ((direction[0], "right", -4), (direction[1], "left", 4)):
            tr = mtransforms.offset_copy(ax.transAxes, fig=fig, x=dx, y=-22, units="points")
            ax.text(frac, 0, s, transform=tr, ha=ha, va="top", fontsize=_FONT - 1, clip_on=False,
                    parse_math=False, gid="direction")
    if title_lines:
        tr = mtransforms.offset_copy(ax.transAxes, fig=fig, x=x_label, y=6,
                                     units="points")
        ax.text(0, 1, "\n".join(title_lines), transform=tr, ha="left", va="bottom",
                fontsize=_FONT + 2, fontweight="bold", parse_math=False, gid="title",
                linespacing=1.25)
    if foot_lines:
        tr = mtransforms.offset_copy(ax.transAxes, fig=fig, x=x_label, y=-below, units="points")
        ax.text(0, 0, "\n".join(foot_lines), transform=tr, ha="left", va="top", fontsize=small,
                fontstyle="italic", parse_math=False, gid="footnote", linespacing=1.3)
    return ax
