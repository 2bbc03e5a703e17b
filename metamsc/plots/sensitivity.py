"""Forest plots of the sensitivity analyses: leave-one-out and cumulative meta-analysis.

One row per refit (its pooled estimate and CI, back-transformed as the forest plot does, with
its k, I^2 and tau^2), and the model of every study as the diamond at the bottom (metafor's
``forest(leave1out(...))`` and ``forest(cumul(...))``; Lau et al. 1992 N Engl J Med 327:248).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..results import MetaResult
from ._layout import MAX_TITLE, check_length
from .draw import draw
from .rows import (Axis, Row, axis_label, ci_text, model_label, option, pooled, reference, scale_of,
                   valid_range)

__all__ = ["sensitivity_forest"]


def sensitivity_forest(table: Any, ax=None, *, result: MetaResult | None = None,
                       title: str | None = None, axis: Axis | dict | None = None):
    """Draw a leave-one-out or cumulative forest on ``ax`` (a new figure if None); returns ax.

    ``table`` is a :class:`~metamsc.sensitivity.LeaveOneOut` or
    :class:`~metamsc.sensitivity.Cumulative`. ``result`` is the model of every study, drawn
    as the diamond and the dashed line (a cumulative table's last row is that model already).

    Parameters
    ----------
    table : LeaveOneOut or Cumulative
        The refits, from :func:`metamsc.leave_one_out` or :func:`metamsc.cumulative`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure sized to the rows if None.
    result : MetaResult, optional
        The model of every study (the diamond at the bottom).
    title : str, optional
        Title above the plot.
    axis : Axis or dict, optional
        Options of the x axis, as in :func:`forest`.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    References
    ----------
    Lau J, Antman EM, Jimenez-Silva J, Kupelnick B, Mosteller F, Chalmers TC (1992).
    Cumulative meta-analysis of therapeutic trials for myocardial infarction. N Engl J Med
    327:248-254. Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for
    meta-analysis. Res Synth Methods 1:112-125 (leave-one-out).

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> from metamsc.plots import sensitivity_forest
    >>> res = mm.pool(yi, vi, measure="RR", labels=list("ABCDEF"))
    >>> ax = sensitivity_forest(mm.leave_one_out(res), result=res)
    >>> [t.get_text() for t in ax.texts][:7]
    ['Study omitted', 'k', 'I²', 'τ²', 'Estimate without the study [95% CI]', 'A', '0.36 [0.22, 0.62]']
    """
    from ..sensitivity import Cumulative, LeaveOneOut

    if not isinstance(table, (LeaveOneOut, Cumulative)):
        raise TypeError(f"sensitivity_forest() needs a LeaveOneOut or Cumulative table, got "
                        f"{type(table).__name__}")
    if result is not None and not isinstance(result, MetaResult):
        raise TypeError("result must be a MetaResult (the model of every study)")
    check_length(title, "title", MAX_TITLE)
    axis = option(Axis, axis, "axis")
    cumul = isinstance(table, Cumulative)
    if cumul and result is None:
        result = table.fits[-1]
    scale = scale_of(table.measure)
    a, b = valid_range(table.measure)
    rows = []
    for lab, fit in zip(table.labels, table.fits):
        est, lo, hi, _, _ = pooled(fit)
        tau2 = f"{fit.tau2:.3g}" if fit.method != "EE" else "\u2013"
        i2 = f"{fit.i2:.0f}%" if fit.k > 1 else "\u2013"
        rows.append(Row("study", ("+ " if cumul else "") + lab, est, max(lo, a), min(hi, b),
                         right=(f"{fit.k}", i2, tau2), value=ci_text(est, lo, hi, scale, table.measure)[0]))
    pooled_est = np.nan
    if result is not None:
        est, lo, hi, _, _ = pooled(result)
        pooled_est = est
        rows.append(Row("gap", ""))
        rows.append(Row("summary", f"All studies: {model_label(result)}", est, lo, hi, bold=True,
                         value=ci_text(est, lo, hi, scale, result.measure)[0]))
    head = "Estimate without the study" if not cumul else "Cumulative estimate"
    value_header = f"{head} [{100 * table.level:g}% CI]"
    if scale == "percent":
        value_header = f"{head}, % [{100 * table.level:g}% CI]"
    if title is None:
        title = ("Cumulative meta-analysis" if cumul else "Leave-one-out analysis")
    footnote = ("Each row: the model of the studies up to and including that one, in the order shown."
                if cumul else "Each row: the model refitted without that study.")
    footnote += f" Model: {table.method}, test {table.test}."
    ref = reference(table.measure, axis.ref, scale)
    xlabel = axis.label or axis_label(table.measure)
    return draw(rows, ax=ax, scale=scale, title=title, footnote=footnote, xlabel=xlabel,
                left_headers=[], right_headers=["k", "I\u00b2", "\u03c4\u00b2"],
                value_header=value_header, pooled=pooled_est, ref=ref, xlim=axis.xlim,
                direction=axis.direction,
                label_header="Study added" if cumul else "Study omitted")
