"""Funnel plot of a meta-analysis, in the layout of metafor's ``funnel.rma``.

Each study is a point at (effect size, standard error) on the analysis scale, with the standard
error axis inverted (precise studies at the top). The vertical line is the pooled estimate and the
dashed lines the pseudo-confidence region estimate -/+ z * se (Sterne & Egger 2001, J Clin
Epidemiol 54:1046). Studies imputed by trim and fill are drawn hollow, and the region is then
centred on the estimate after filling (as metafor's funnel of a ``trimfill`` object).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dist import norm_isf
from ..results import MetaResult

__all__ = ["funnel"]

_XLABEL = {"RR": "Log risk ratio", "OR": "Log odds ratio", "PETO": "Log odds ratio (Peto)",
           "ROM": "Log ratio of means", "PLO": "Log odds (logit proportion)",
           "PLN": "Log proportion", "PAS": "Arcsine square-root proportion",
           "PFT": "Freeman-Tukey double-arcsine proportion", "PR": "Proportion",
           "IR": "Incidence rate", "IRLN": "Log incidence rate", "MD": "Mean difference",
           "SMD": "Standardised mean difference", "MC": "Mean change",
           "SMCC": "Standardised mean change", "SMCR": "Standardised mean change",
           "RD": "Risk difference"}


def funnel(result: Any, ax=None, *, level: float = 0.95, trimfill: Any = None,
           xlabel: str | None = None, title: str | None = None, color: str = "black",
           region_color: str = "0.92", markersize: float = 28.0):
    """Draw a funnel plot on ``ax`` (a new figure if None) and return ``ax``.

    ``result`` is a :class:`~metamsc.results.MetaResult` or a
    :class:`~metamsc.bias.TrimAndFill`. ``trimfill`` adds the studies of a trim-and-fill
    analysis: a ``TrimAndFill``, or ``True`` to run :func:`metamsc.bias.trim_and_fill` on
    ``result``. ``level`` sets the pseudo-confidence region (1.96 standard errors at 0.95).

    Artists carry a ``gid`` for programmatic checks: the observed studies are the PathCollection
    "studies" (offsets = (yi, sqrt(vi))), the filled studies the PathCollection "filled", the two
    limits of the region the Line2D objects "pseudo-ci" and the estimate the Line2D "estimate".
    Only one figure is created (when ``ax`` is None); no other pyplot state is touched.
    """
    import matplotlib.pyplot as plt

    from ..bias import TrimAndFill, trim_and_fill

    tf = None
    if isinstance(result, TrimAndFill):
        tf, res = result, result.original
    elif isinstance(result, MetaResult):
        res = result
        if isinstance(trimfill, TrimAndFill):
            tf = trimfill
        elif trimfill:
            tf = trim_and_fill(res)
    else:
        raise TypeError("funnel() needs a MetaResult or a TrimAndFill result")

    yi = np.asarray(res.yi, dtype=float)
    sei = np.sqrt(np.asarray(res.vi, dtype=float))
    center = res.estimate
    fy = fse = np.empty(0)
    if tf is not None:
        fy = np.asarray(tf.filled_yi, dtype=float)
        fse = np.sqrt(np.asarray(tf.filled_vi, dtype=float))
        center = tf.result.estimate
    se_max = float(np.max(np.r_[sei, fse])) if sei.size else 1.0
    se_max = se_max if se_max > 0 else 1.0
    z = float(norm_isf((1 - level) / 2))

    if ax is None:
        fig = plt.figure(figsize=(5.0, 4.2))
        ax = fig.add_subplot(1, 1, 1)

    # the pseudo-confidence region: a shaded triangle with dashed edges
    top = se_max * 1.04
    ax.fill([center - z * top, center, center + z * top], [top, 0.0, top], color=region_color,
            zorder=0, linewidth=0, gid="pseudo-ci-region")
    for sgn in (-1, 1):
        ax.plot([center, center + sgn * z * top], [0.0, top], linestyle="--", color=color,
                linewidth=0.8, zorder=1, gid="pseudo-ci",
                label=f"{100 * level:g}% pseudo-confidence region" if sgn < 0 else "_nolegend_")
    ax.plot([center, center], [0.0, top], linestyle="-", color=color, linewidth=0.8, zorder=1,
            gid="estimate", label="Estimate")
    ax.scatter(yi, sei, s=markersize, color=color, zorder=3, gid="studies",
               label="Studies")
    if tf is not None and fy.size:
        ax.scatter(fy, fse, s=markersize, facecolors="white", edgecolors=color, zorder=3,
                   gid="filled", label="Filled studies")

    ax.set_ylim(top, 0.0)  # inverted: precise studies at the top
    span = np.r_[yi, fy, center - z * top, center + z * top]
    pad = 0.04 * (span.max() - span.min() or 1.0)
    ax.set_xlim(span.min() - pad, span.max() + pad)
    ax.set_xlabel(xlabel if xlabel is not None else _XLABEL.get(res.measure, "Effect size"))
    ax.set_ylabel("Standard error")
    if title:
        ax.set_title(title)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    return ax
