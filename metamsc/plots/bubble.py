"""Bubble plot of a meta-regression, in the layout of metafor's ``regplot()``.

The studies are drawn at (moderator, y_i) with areas proportional to their model weights
1/(v_i + tau^2); the line is the predicted effect along the moderator (the other moderators at
their mean, as metafor), with its confidence band (dashed) and optionally the prediction band
(dotted) (Thompson & Higgins 2002, Stat Med 21:1559).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bubble"]


def bubble(result: Any, mod: int | str | None = None, ax=None, *, pi: bool = False,
           n_points: int = 101, color: str = "black", xlabel: str | None = None,
           ylabel: str = "Observed Outcome", max_size: float = 300.0):
    """Draw a bubble plot of the meta-regression ``result`` against moderator ``mod`` (column
    index or name; default the first column that is not the intercept) and return ``ax``.

    Artists have a gid: the PathCollection "studies" (offsets = (x, yi); sizes proportional to
    the weights, the largest ``max_size``), the Line2D "fit" (the prediction), "ci" (two dashed
    lines) and, with ``pi``, "pi" (two dotted lines).

    Parameters
    ----------
    result : MetaRegression
        The fit of :func:`metamsc.meta_regression`.
    mod : int or str, optional
        The moderator on the x axis (column index or name).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if None.
    pi : bool
        Also draw the prediction band.
    n_points : int
        Points along the moderator at which the line and bands are computed.
    color : str
        Colour of the bubbles and lines.
    xlabel, ylabel : str, optional
        Axis labels (default: the moderator's name; "Observed Outcome").
    max_size : float
        Marker area of the study with the largest weight, in points^2.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    References
    ----------
    Thompson SG, Higgins JPT (2002). How should meta-regression analyses be undertaken and
    interpreted? Stat Med 21:1559-1573.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> from metamsc.plots import bubble
    >>> reg = mm.meta_regression(yi, vi, {"dose": [1, 2, 2, 4, 0.5, 1]})
    >>> ax = bubble(reg)
    >>> ax.get_xlabel(), len(ax.collections[0].get_offsets())
    ('dose', 6)
    >>> [line.get_gid() for line in ax.lines]
    ['fit', 'ci', 'ci']
    """
    import matplotlib.pyplot as plt

    from ..metareg import MetaRegression

    if not isinstance(result, MetaRegression):
        raise TypeError("bubble() needs a meta_regression() result")
    X = np.asarray(result.X)
    names = list(result.names)
    if mod is None:
        cand = [j for j in range(result.p) if not np.all(X[:, j] == 1.0)]
        if not cand:
            raise ValueError("mod: the model has no moderator to plot against")
        j = cand[0]
    elif isinstance(mod, str):
        if mod not in names:
            raise ValueError(f"mod: no coefficient named {mod!r}; the model has {names}")
        j = names.index(mod)
    else:
        j = int(mod)
        if not 0 <= j < result.p:
            raise ValueError(f"mod: index {j} outside 0..{result.p - 1}")
    if np.all(X[:, j] == 1.0):
        raise ValueError("mod: cannot plot against the intercept")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    x = X[:, j]
    y = np.asarray(result.yi)
    w = 1.0 / (np.asarray(result.vi) + result.tau2)
    sizes = max_size * w / np.max(w)
    ax.scatter(x, y, s=sizes, facecolors="0.85", edgecolors=color, linewidths=0.8, gid="studies",
               zorder=3)
    grid = np.linspace(np.min(x), np.max(x), n_points)
    G = np.tile(X.mean(axis=0), (n_points, 1))
    G[:, j] = grid
    pr = result.predict(G, intercept=False)
    ax.plot(grid, pr.pred, color=color, lw=1.5, gid="fit")
    for band, style, gid in (((pr.ci_lb, pr.ci_ub), "--", "ci"), ((pr.pi_lb, pr.pi_ub), ":", "pi")):
        if gid == "pi" and not pi:
            continue
        for b in band:
            ax.plot(grid, b, color=color, lw=1.0, ls=style, gid=gid)
    ax.set_xlabel(xlabel or names[j])
    ax.set_ylabel(ylabel)
    return ax
