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

from ..measures import get_measure
from ..results import PI_MIN_K, MetaResult
from ._layout import MAX_LABEL, MAX_NOTE, MAX_TITLE, check_length
from .draw import draw
from .rows import (Axis, Row, axis_label, ci_text, fmt_value, is_glmm, model_label, option,
                   pooled, reference, scale_of, valid_range)

__all__ = ["forest", "Columns", "Summary", "Axis", "ORDERS"]

ORDERS = ("data", "estimate", "weight")
#: the analysis scale of a measure, named by its back-transformation (registry ``back_transform``)
_SCALE_WORDS = {"exp": "log", "transf.ilogit": "logit", "transf.iarcsin": "arcsine",
                "transf.ipft.hm": "Freeman-Tukey"}
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


def _natural_study(res: MetaResult):
    nat = res.study_natural()
    lb, ub = res.study_intervals()
    if nat is None:
        return res.yi, lb, ub
    est, a, b = nat
    return est, np.minimum(a, b), np.maximum(a, b)


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


def _footnote(res: MetaResult, scale: str, study_ci: str, rows: list[Row],
              bounds: list[str]) -> str:
    """What the study intervals are, where the pooled values come from, and the corrections."""
    modelled = any(r.kind == "summary" for r in rows)
    truncated = any(r.value.endswith("\u2021") for r in rows)
    parts = []
    if study_ci != "model":
        name = _CI_NAMES.get(study_ci.upper(), study_ci)
        parts.append(f"Study rows: observed proportions with {100 * res.level:g}% {name} CIs.")
    else:
        m = get_measure(res.measure)
        what = (f"raw {m.natural_scale}" if m.back_transform == "identity" else
                _SCALE_WORDS.get(m.back_transform, "analysis"))
        text = f"Study CIs: Wald, {100 * res.level:g}%, on the {what} scale"
        if scale in ("percent", "log") and m.back_transform != "identity":
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
        lo, hi = valid_range(res.measure)
        rng = "0% and 100%" if scale == "percent" else f"{lo:g}"
        parts.append(f"\u2021 Wald limit beyond {rng}, printed and drawn truncated there.")
    return " ".join(parts)


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

    def study_rows(self, res: MetaResult, index, weights) -> list[Row]:
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
            a, b = valid_range(res.measure)
            rows.append(Row("study", label, est[j], max(lo[j], a), min(hi[j], b), weights[j],
                             left, right, value=text))
        return self._sorted(rows, index)

    def _sorted(self, rows: list[Row], index: list[int]) -> list[Row]:
        if isinstance(self.order, str):
            if self.order == "data":
                return rows
            key = (np.array([r.est for r in rows]) if self.order == "estimate"
                   else -np.nan_to_num(np.array([r.weight for r in rows]), nan=0.0))
        else:
            key = np.asarray([self.order[i] for i in index])
        return [rows[i] for i in np.argsort(key, kind="stable")]

    def summary_rows(self, res: MetaResult, label: str, bold: bool, weight: float,
                     opts: Summary, shade: str = "0.35") -> list[Row]:
        est, lo, hi, plo, phi = pooled(res)
        bound = _bound_text(res)
        if bound is not None and np.isfinite(hi):  # degenerate data: an exact bound, no model
            self.bounds.append(bound)
            upper = lo <= 0 and hi < 1
            value = ("\u2264 " if upper else "\u2265 ") + fmt_value(hi if upper else lo, self.scale)
            return [Row("bound", "Exact one-sided bound (no model identifiable)", est, lo, hi,
                         bold=bold, value=value)]
        value = ci_text(est, lo, hi, self.scale, res.measure)[0]
        rows = [Row("summary", label, est, lo, hi, weight, bold=bold, value=value, shade=shade)]
        if opts.prediction and res.method != "EE" and res.k > 1 and res.k < PI_MIN_K:
            self.pi_skipped = True
        if opts.prediction and res.method != "EE" and res.k >= PI_MIN_K and np.isfinite(plo):
            a, b = valid_range(res.measure)
            txt = ci_text(est, plo, phi, self.scale, res.measure)[0]
            rows.append(Row("pi", "Prediction interval", est, max(plo, a), min(phi, b),
                             value=txt[txt.index("["):]))
        return rows


def _common_fit(res: MetaResult) -> MetaResult:
    """The common-effect model of the same studies (refused for a GLMM: no silent switch)."""
    if is_glmm(res):
        raise ValueError("summary.common: this is a GLMM fit; fit the common-effect GLMM "
                         "(fit_glmm(..., method='EE')) and plot it, no inverse-variance model "
                         "is substituted")
    from ..pooling import pool

    return pool(res.yi, res.vi, method="EE", test="z", level=res.level, measure=res.measure,
                labels=list(res.labels), n=res.n)


def _layout(b: _Builder, result: MetaResult, subgroups, overall: bool, sensitivity, sens_role: str,
            opts: Summary, descriptive: Sequence[str] = ()) -> list[Row]:
    """Rows top to bottom; in subgroup plots the weights are those of the overall model.

    A model row is drawn only where a model pools studies: not for one study (its row is the
    result), not for a ``descriptive`` subgroup (its studies are shown, not pooled), and the
    weights column only beside a drawn overall model."""
    rows: list[Row] = []
    if len(subgroups) == 1 and subgroups[0][0] in descriptive:
        overall = False  # the overall model would pool the descriptive studies
    if len(subgroups) == 1 and (overall or subgroups[0][0] in descriptive):
        # one level: no subtotal that would repeat the overall result (or pool the descriptive)
        level = subgroups[0][0]
        tag = f"; {DESCRIPTIVE}" if level in descriptive else ""
        rows.append(Row("group", f"{level} (all k = {result.k}{tag})", bold=True))
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
            rows.append(Row("group", f"{level} (k = {sub.k}{tag})", bold=True))
            rows.extend(b.study_rows(sub, idx, w))
            if level in descriptive:
                rows.append(Row("gap", ""))
                continue
            if sub.k > 1 or _bound_text(sub) is not None:
                name = model_label(sub).split(" (")[0]
                name = name if is_glmm(sub) else name[0].lower() + name[1:]
                rows.extend(b.summary_rows(sub, f"Subtotal ({name})", False,
                                           float(np.sum(w)) if modelled else np.nan, opts, "0.65"))
            if sub.k > 1:
                rows.append(Row("het", _het_text(sub)))
            rows.append(Row("gap", ""))
    else:
        weights = result.weights if modelled else np.full(result.k, np.nan)
        rows.extend(b.study_rows(result, _positions(result), weights))
        rows.append(Row("gap", ""))
    if overall and result.k == 1 and _bound_text(result) is None:
        rows.append(Row("note", "One study: its row is the result (nothing pooled)"))
    elif overall:
        if opts.common:
            common = _common_fit(result)
            rows.extend(b.summary_rows(common, "Common-effect model", True, np.nan,
                                       Summary(prediction=False), "0.15"))
        if opts.random or not opts.common:
            rows.extend(b.summary_rows(result, model_label(result), True,
                                       100.0 if modelled else np.nan, opts))
        if result.k > 1:
            rows.append(Row("het", _het_text(result)))
        if opts.test and modelled:
            rows.append(Row("het", _overall_test_text(result)))
    if sensitivity:
        rows.append(Row("gap", ""))
        rows.append(Row("group", f"Sensitivity to the assumed {sens_role} (declared in the spec)"))
        for value, res in sensitivity:  # one study refitted: a study row, not a diamond
            est, lo, hi, _, _ = pooled(res)
            rows.append(Row("study" if res.k == 1 else "summary", f"{sens_role} = {value:g}", est,
                             lo, hi, value=ci_text(est, lo, hi, b.scale, res.measure)[0],
                             shade="0.65"))
    while rows and rows[-1].kind == "gap":
        rows.pop()
    return rows


def forest(result: Any, ax=None, *, title: str | None = None, study_data: Mapping[str, Any] | None = None,
           subgroups=None, subgroup_test=None, footnote: str | None = None, note: str | None = None,
           study_ci: str = "model", columns: Columns | dict | None = None,
           order: str | Sequence[Any] = "data", summary: Summary | dict | None = None,
           axis: Axis | dict | None = None, descriptive: Sequence[str] | None = None,
           overall: bool = True, sensitivity: Sequence[tuple[float, MetaResult]] = (),
           sensitivity_role: str = "", extra_note: str = ""):
    """Draw a forest plot on ``ax`` (a new figure sized to its rows if None) and return ``ax``.

    ``result`` is a :class:`~metamsc.results.MetaResult` (a spec's run draws itself with
    :meth:`metamsc.project.Analysis.plot_forest`, which fills these arguments). ``study_ci`` is "model" (Wald on the analysis scale, as metafor) or, for
    proportions, a method of :func:`metamsc.proportions.proportion_ci` ("CP", "WS", ...) to
    show each study's observed x/n with that interval (as meta). ``columns``, ``order``,
    ``summary`` and ``axis`` are the option groups described in the module docstring.
    ``descriptive`` names subgroup levels drawn with their studies only (no subtotal, no
    prediction interval). ``overall=False`` draws no overall model (subgroups that are not
    exclusive); ``sensitivity`` = ((value, result), ...) adds one row per refit with the
    assumed ``sensitivity_role`` set to the value; ``extra_note`` is appended to the automatic
    footnote. A single study is its
    own result (no model row); a prediction interval needs k >= 3; the weights column appears
    only beside a drawn overall model.
    With ``ax=None`` the figure is sized to its text and rows; a given ``ax`` keeps its figure's
    size, and the columns are placed beside it in points (leave room for them).

    Parameters
    ----------
    result : MetaResult
        The fit to draw (its subgroups, if any, are drawn as subgroups).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure sized to the rows if None.
    title, footnote, note : str, optional
        Title above the plot; a footnote replacing the automatic one; a note below it.
    study_data : mapping, optional
        The data behind the studies (e.g. ``events``, ``total``), shown as text columns.
    subgroups : sequence of (str, MetaResult), optional
        Subgroup fits drawn as blocks with their subtotals; ``subgroup_test`` their test.
    study_ci : str
        "model" (Wald on the analysis scale) or a proportion CI method ("CP", "WS", ...).
    columns, summary, axis : Columns, Summary, Axis or dict, optional
        The option groups: extra text columns, the summary rows, the x axis.
    order : str or sequence
        "data" (as given), or the study order to draw.
    descriptive : sequence of str, optional
        Subgroup levels drawn with their studies only.
    overall : bool
        Draw the overall model (default True).
    sensitivity : sequence of (float, MetaResult)
        Refits with an assumed ``sensitivity_role`` set to each value, one row each.
    extra_note : str
        Appended to the automatic footnote.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    References
    ----------
    Lewis S, Clarke M (2001). Forest plots: trying to see the wood and the trees. BMJ
    322:1479-1480. Viechtbauer W (2010). J Stat Softw 36(3):1-48 (metafor's ``forest.rma``).

    Examples
    --------
    >>> import metamsc as mm
    >>> from metamsc.plots import forest
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> res = mm.pool(yi, vi, measure="RR", labels=list("ABCDEF"))
    >>> ax = forest(res)
    >>> ax.get_xlabel()
    'Risk ratio (log scale)'
    >>> [t.get_text() for t in ax.texts][:5]
    ['Study', 'Weight', 'Ratio [95% CI]', 'A', '0.41 [0.13, 1.27]']
    """
    sens_role = sensitivity_role
    if isinstance(result, MetaResult) and subgroups is None and result.subgroups is not None:
 # a result with its subgroups
        subgroups = list(result.subgroups.items())
        subgroup_test = subgroup_test if subgroup_test is not None else result.subgroup_test
    if not isinstance(result, MetaResult):
        raise TypeError(f"forest() needs a MetaResult, got {type(result).__name__} (a spec's "
                        f"run draws itself: analysis.plot_forest())")
    check_length(title, "title", MAX_TITLE)
    check_length(note, "note", MAX_NOTE)
    check_length(footnote, "footnote", MAX_NOTE)
    columns = option(Columns, columns, "columns")
    summary = option(Summary, summary, "summary")
    axis = option(Axis, axis, "axis")
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
    scale = scale_of(result.measure)
    if study_ci != "model" and not (study_data and "total" in study_data
                                    and get_measure(result.measure).family == "proportion"):
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
        rows.append(Row("het", f"Test for subgroup differences: Q({subgroup_test.df}) = "
                                f"{subgroup_test.q:.2f}, p {_pfmt(subgroup_test.pvalue)}"))
    if footnote is None:
        footnote = _footnote(result, scale, study_ci, rows, builder.bounds)
        if builder.pi_skipped:
            footnote += f" No prediction interval with fewer than {PI_MIN_K} studies."
        footnote = f"{footnote} {extra_note}".strip()
    if note:
        footnote = f"{note} {footnote}" if footnote else note
    ci_header = {"percent": "Proportion, % [95% CI]", "log": "Ratio [95% CI]",
                 "linear": "Estimate [95% CI]"}[scale]
    if scale == "log" and get_measure(result.measure).null_value is None:  # a log rate or mean
        ci_header = "Estimate [95% CI]"
    ci_header = ci_header.replace("95%", f"{100 * result.level:g}%")
    left_headers = ([_data_header(study_data)] if study_data else []) + list(columns.left)
    right_headers = list(columns.right)
    pooled_est = pooled(result)[0] if builder.pooled else np.nan
    xlabel = axis.label if axis.label is not None else axis_label(result.measure)
    ref = reference(result.measure, axis.ref, scale)
    return draw(rows, ax=ax, scale=scale, title=title, footnote=footnote, xlabel=xlabel,
                left_headers=left_headers, right_headers=right_headers, value_header=ci_header,
                pooled=pooled_est, ref=ref, xlim=axis.xlim, direction=axis.direction)


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


