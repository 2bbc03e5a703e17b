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
    each study's label is written at its point (Text objects with gid "label").
    """
    import matplotlib.pyplot as plt

    from ..influence import Influence, influence

    inf = result if isinstance(result, Influence) else influence(result)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    x, y = np.asarray(inf.baujat_x), np.asarray(inf.baujat_y)
    if labels:
        ax.scatter(x, y, s=0, gid="studies")
        for lab, xi, yi in zip(inf.labels, x, y):
            ax.text(xi, yi, lab, ha="center", va="center", fontsize=8, color=color, gid="label")
    else:
        ax.scatter(x, y, s=20, facecolors="none", edgecolors=color, gid="studies")
    ax.set_xlabel("Squared Pearson Residual")
    ax.set_ylabel("Influence on Overall Result")
    pad = 0.04
    ax.set_xlim(min(0.0, np.nanmin(x)), np.nanmax(x) * (1 + pad) if np.nanmax(x) > 0 else 1)
    ax.set_ylim(min(0.0, np.nanmin(y)), np.nanmax(y) * (1 + pad) if np.nanmax(y) > 0 else 1)
    if title:
        ax.set_title(title)
    return ax
