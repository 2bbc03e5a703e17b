"""The influence plot, in the layout of metafor's ``plot(influence(res))``: eight panels, one
per case-deletion diagnostic (Viechtbauer & Cheung 2010, Res Synth Methods 1:112), the studies
along x in their order, the influential ones drawn as filled red points, with the cut-offs that
flag a study (|DFFITS| > 3 sqrt(p/(k - p)), Cook's distance above the chi^2_p median, hat above
3 p / k) as dotted lines and the reference values (0, 1, the full model's QE, equal weights) as
grey lines."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["influence_plot", "PANELS"]

#: (attribute of Influence, panel title) in metafor's order
PANELS = (("rstudent", "rstudent"), ("dffits", "dffits"), ("cooks_distance", "cook.d"),
          ("cov_ratio", "cov.r"), ("tau2_deleted", "tau2.del"), ("qe_deleted", "QE.del"),
          ("hat", "hat"), ("weight", "weight (%)"))


def influence_plot(result: Any, axes=None, *, color: str = "black", mark: str = "tab:red"):
    """Draw the eight panels of ``result`` (an :class:`~metamsc.influence.Influence`, or a fit
    :func:`metamsc.influence` accepts) on ``axes`` (eight Axes; a new 4 x 2 figure if None) and
    return the axes as a list.

    In each panel the studies are the Line2D with gid "values" (x = 1..k, y = the diagnostic),
    the influential studies the Line2D "influential"; cut-offs are gid "cutoff", reference
    values gid "reference".

    Parameters
    ----------
    result : Influence or MetaResult
        The case-deletion diagnostics, or a fit to compute them for.
    axes : sequence of matplotlib.axes.Axes, optional
        Eight axes, one per diagnostic; a new 4 x 2 figure if None.
    color : str
        Colour of the studies.
    mark : str
        Colour of the influential studies.

    Returns
    -------
    list of matplotlib.axes.Axes
        The eight panels, in the order of ``PANELS``.

    References
    ----------
    Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis. Res
    Synth Methods 1:112-125.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> from metamsc.plots import influence_plot
    >>> axes = influence_plot(mm.pool(yi, vi))
    >>> [ax.get_title() for ax in axes]
    ['rstudent', 'dffits', 'cook.d', 'cov.r', 'tau2.del', 'QE.del', 'hat', 'weight (%)']
    """
    import matplotlib.pyplot as plt

    from .._dist import chi2_isf, norm_isf
    from ..influence import Influence, influence

    inf = result if isinstance(result, Influence) else influence(result)
    k = len(inf.labels)
    p = int(np.asarray(inf.dfbetas).reshape(k, -1).shape[1])
    if axes is None:
        fig, grid = plt.subplots(4, 2, figsize=(8.0, 9.0), sharex=True)
        fig.subplots_adjust(left=0.09, right=0.97, bottom=0.07, top=0.96, hspace=0.45, wspace=0.3)
        axes = list(grid.ravel())
    else:
        axes = list(np.ravel(axes))
        if len(axes) != len(PANELS):
            raise ValueError(f"axes: need {len(PANELS)} axes, got {len(axes)}")
    idx = np.arange(1, k + 1)
    flag = np.asarray(inf.influential, dtype=bool)
    cut = {"rstudent": (-float(norm_isf(0.025)), float(norm_isf(0.025))),
           "dffits": (3 * np.sqrt(p / (k - p)),) if k > p else (),
           "cooks_distance": (float(chi2_isf(0.5, p)),),
           "hat": (3 * p / k,)}
    ref = {"rstudent": (0.0,), "dffits": (0.0,), "cov_ratio": (1.0,),
           "qe_deleted": (inf.qe,) if np.isfinite(inf.qe) else (), "weight": (100.0 / k,),
           "hat": (p / k,)}
    ms = 4 if k <= 30 else 2.5
    for ax, (attr, title) in zip(axes, PANELS):
        y = np.asarray(getattr(inf, attr), dtype=float)
        for c in ref.get(attr, ()):
            ax.axhline(c, color="0.6", lw=0.7, gid="reference")
        for c in cut.get(attr, ()):
            ax.axhline(c, color=mark, lw=0.8, ls=":", gid="cutoff")
        ax.plot(idx, y, "-o", color=color, lw=0.6, ms=ms, mfc="white", gid="values")
        ax.plot(idx[flag], y[flag], "o", color=mark, ms=ms + 0.5, ls="none", gid="influential")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_xlim(0.5, k + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes[-2:]:
        ax.set_xlabel("Study", fontsize=8)
    return axes
