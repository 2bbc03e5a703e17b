"""Baujat plot (Baujat et al. 2002, Stat Med 21:2641), in the layout of metafor's ``baujat()``.

Each study is drawn at x = its contribution to the heterogeneity, (y_i - x_i'b)^2/(tau^2 + v_i),
and y = its influence on the fitted value, (x_i'b_(-i) - x_i'b)^2 / Var(x_i'b_(-i)); the
coordinates come from :func:`metamsc.influence` (one refit per study).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["baujat"]


def baujat(result: Any, ax=None, *, labels: bool = True, color: str = "black",
           title: str | None = None):
    """Draw a Baujat plot of ``result`` (an :class:`~metamsc.influence.Influence`, or a fit that
    :func:`metamsc.influence` accepts) on ``ax`` (a new figure if None) and return ``ax``.

    The studies are the PathCollection with gid "studies" (offsets = (x, y)); with ``labels``
    each study's label is written at its point (Text objects with gid "label"); where labels
    would overlap, the less outlying studies are drawn as hollow points (gid "unlabelled")
    instead.

    Parameters
    ----------
    result : Influence or MetaResult
        The case-deletion diagnostics, or a fit to compute them for.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if None.
    labels : bool
        Write each study's label at its point.
    color : str
        Colour of the points and labels.
    title : str, optional
        Title above the plot.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    References
    ----------
    Baujat B, Mahé C, Pignon JP, Hill C (2002). A graphical method for exploring heterogeneity
    in meta-analyses: application to a meta-analysis of 65 trials. Stat Med 21:2641-2652.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> from metamsc.plots import baujat
    >>> ax = baujat(mm.pool(yi, vi, labels=list("ABCDEF")))
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('Squared Pearson Residual', 'Influence on Overall Result')
    >>> len(ax.collections[0].get_offsets())
    6
    """
    import matplotlib.pyplot as plt

    from ..influence import Influence, influence

    inf = result if isinstance(result, Influence) else influence(result)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    x, y = np.asarray(inf.baujat_x), np.asarray(inf.baujat_y)
    if labels:
        ax.scatter(x, y, s=0, gid="studies")
        texts = [ax.text(xi, yi, lab, ha="center", va="center", fontsize=8, color=color, gid="label")
                 for lab, xi, yi in zip(inf.labels, x, y)]
    else:
        ax.scatter(x, y, s=20, facecolors="none", edgecolors=color, gid="studies")
    ax.set_xlabel("Squared Pearson Residual")
    ax.set_ylabel("Influence on Overall Result")
    pad = 0.04
    ax.set_xlim(min(0.0, np.nanmin(x)), np.nanmax(x) * (1 + pad) if np.nanmax(x) > 0 else 1)
    ax.set_ylim(min(0.0, np.nanmin(y)), np.nanmax(y) * (1 + pad) if np.nanmax(y) > 0 else 1)
    if title:
        ax.set_title(title)
    if labels:
        _thin_labels(ax, texts, x, y, color)
    return ax


def _thin_labels(ax, texts, x, y, color):
    """Where labels would overlap, keep the label of the more outlying study (largest x + y on
    the axes' scale) and draw the others as hollow points: every study stays visible."""
    fig = ax.figure
    r = fig.canvas.get_renderer()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    score = np.nan_to_num((x - x0) / (x1 - x0 or 1) + (y - y0) / (y1 - y0 or 1), nan=-1.0)
    kept: list = []
    hidden = []
    for i in np.argsort(-score, kind="stable"):
        b = texts[i].get_window_extent(r).padded(1.0)
        if any(b.overlaps(k) for k in kept):
            hidden.append(i)
        else:
            kept.append(b)
    for i in hidden:
        texts[i].remove()
    if hidden:
        ax.scatter(x[hidden], y[hidden], s=12, facecolors="none", edgecolors=color, gid="unlabelled")
