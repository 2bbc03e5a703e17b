"""Funnel plot of a meta-analysis, in the layout of metafor's ``funnel.rma``.

Each study is a point at (effect size, standard error) on the analysis scale, with the standard
error axis inverted (precise studies at the top). The vertical line is the pooled estimate and the
dashed lines the pseudo-confidence region estimate -/+ z * se (Sterne & Egger 2001, J Clin
Epidemiol 54:1046). Studies imputed by trim and fill are drawn hollow, and the region is then
centred on the estimate after filling (as metafor's funnel of a ``trimfill`` object).

The contour-enhanced funnel (Peters et al. 2008, J Clin Epidemiol 61:991) shades where a study
would be significant against the null (``contours``: the two-sided levels, e.g. 0.90, 0.95,
0.99), and ``egger`` draws the regression line of Egger's test, yi = b0 + b1 * se (Egger et al.
1997, BMJ 315:629), whose intercept b0 is the limit estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dist import norm_isf
from ..measures import get_measure
from ..results import MetaResult

__all__ = ["funnel"]


def funnel(result: Any, ax=None, *, level: float = 0.95, trimfill: Any = None,
           xlabel: str | None = None, title: str | None = None, color: str = "black",
           region_color: str = "0.92", markersize: float = 28.0,
           contours: tuple[float, ...] | None = None, null: float = 0.0, egger: Any = None):
    """Draw a funnel plot on ``ax`` (a new figure if None) and return ``ax``.

    ``result`` is a :class:`~metamsc.results.MetaResult` or a
    :class:`~metamsc.bias.TrimAndFill`. ``trimfill`` adds the studies of a trim-and-fill
    analysis: a ``TrimAndFill``, or ``True`` to run :func:`metamsc.bias.trim_and_fill` on
    ``result``. ``level`` sets the pseudo-confidence region (1.96 standard errors at 0.95).

    Artists carry a ``gid`` for programmatic checks: the observed studies are the PathCollection
    "studies" (offsets = (yi, sqrt(vi))), the filled studies the PathCollection "filled", the two
    limits of the region the Line2D objects "pseudo-ci" and the estimate the Line2D "estimate".
    Only one figure is created (when ``ax`` is None); no other pyplot state is touched.

    ``contours`` (two-sided levels such as (0.90, 0.95, 0.99)) shades, around ``null`` on the
    analysis scale, where a study's two-sided p-value is below 1 - level (PolyCollections
    "contour-<level>"). ``egger`` is an :class:`~metamsc.bias.EggerTest` or ``True`` (run on
    ``result``): its regression line is the Line2D "egger".

    Parameters
    ----------
    result : MetaResult or TrimAndFill
        The fit whose studies are drawn.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if None.
    level : float
        Level of the pseudo-confidence region (default 0.95).
    trimfill : TrimAndFill or bool, optional
        Studies imputed by trim and fill, drawn hollow (``True``: run it on ``result``).
    xlabel, title : str, optional
        Axis label (default: the measure's name on the analysis scale) and title.
    color, region_color : str
        Colour of the studies and lines; fill colour of the pseudo-confidence region.
    markersize : float
        Marker area in points^2.
    contours : tuple of float, optional
        Two-sided significance levels to shade (contour-enhanced funnel).
    null : float
        Value the contours are centred on, on the analysis scale (default 0).
    egger : EggerTest or bool, optional
        Draw the regression line of Egger's test.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    References
    ----------
    Sterne JAC, Egger M (2001). Funnel plots for detecting bias in meta-analysis: guidelines on
    choice of axis. J Clin Epidemiol 54:1046-1055. Peters JL, Sutton AJ, Jones DR, Abrams KR,
    Rushton L (2008). Contour-enhanced meta-analysis funnel plots help distinguish publication
    bias from other causes of asymmetry. J Clin Epidemiol 61:991-996. Egger M, Davey Smith G,
    Schneider M, Minder C (1997). BMJ 315:629-634. Duval S, Tweedie R (2000). Biometrics
    56:455-463 (trim and fill).

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> from metamsc.plots import funnel
    >>> res = mm.pool(yi, vi, measure="RR")
    >>> ax = funnel(res, contours=(0.90, 0.95, 0.99))
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('Log risk ratio', 'Standard error')
    >>> studies = next(c for c in ax.collections if c.get_gid() == "studies")
    >>> len(studies.get_offsets())
    6
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
    top = se_max * 1.04
    span = np.r_[yi, fy, center - z * top, center + z * top]
    if contours:
        span = _draw_contours(ax, contours, null, top, span)
        region_color = "none"

    # the pseudo-confidence region: a shaded triangle with dashed edges
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

    if egger is not None and egger is not False:
        from ..bias import EggerTest, egger_test

        eg = egger if isinstance(egger, EggerTest) else egger_test(res)
        ax.plot([eg.limit_estimate, eg.limit_estimate + eg.slope * top], [0.0, top], color="#b2182b",
                lw=1.0, zorder=2, gid="egger", label=f"Egger's regression (p = {eg.pvalue:.3g})")
    ax.set_ylim(top, 0.0)  # inverted: precise studies at the top
    pad = 0.04 * (span.max() - span.min() or 1.0)
    ax.set_xlim(span.min() - pad, span.max() + pad)
    ax.set_xlabel(xlabel if xlabel is not None else get_measure(res.measure).analysis_label)
    ax.set_ylabel("Standard error")
    if title:
        ax.set_title(title)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    return ax


def _draw_contours(ax, contours, null: float, top: float, span: np.ndarray) -> np.ndarray:
    """Shade, around ``null``, where a study's two-sided p-value is below 1 - level for each
    level of ``contours`` (contour-enhanced funnel, Peters et al. 2008 J Clin Epidemiol
    61:991); returns the x span widened to the outermost contour."""
    levels = sorted(float(c) for c in contours)
    if not all(0 < c < 1 for c in levels):
        raise ValueError(f"contours must be levels between 0 and 1, got {contours!r}")
    zs = [float(norm_isf((1 - c) / 2)) for c in levels]
    span = np.r_[span, null - zs[-1] * top * 1.15, null + zs[-1] * top * 1.15]
    lo_x, hi_x = span.min(), span.max()
    pad = 0.04 * (hi_x - lo_x or 1.0)
    far = max(abs(lo_x - pad - null), abs(hi_x + pad - null)) * 2
    shades = np.linspace(0.82, 0.55, len(zs))
    for i, (c, zc) in enumerate(zip(levels, zs)):
        z_out = zs[i + 1] if i + 1 < len(zs) else None
        for sgn in (-1, 1):
            inner = [(null, 0.0), (null + sgn * zc * top, top)]
            outer = ([(null + sgn * z_out * top, top), (null, 0.0)] if z_out is not None
                     else [(null + sgn * far, top), (null + sgn * far, 0.0)])
            ax.fill(*zip(*(inner + outer)), color=str(shades[i]), zorder=0, linewidth=0,
                    gid=f"contour-{c:g}",
                    label=("_nolegend_" if sgn > 0 else f"p < {1 - c:.2g}" if z_out is None
                           else f"{1 - levels[i + 1]:.2g} < p < {1 - c:.2g}"))
    return span
