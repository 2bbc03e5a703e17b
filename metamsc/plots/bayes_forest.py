"""Forest plot of a Bayesian random-effects meta-analysis: each study's estimate with its CI
(black) and its shrunken effect theta_i with the credible interval (grey), the posterior of mu
(diamond) and the predictive interval of a new study; the priors are named under the plot."""

from __future__ import annotations

import numpy as np

__all__ = ["bayes_forest"]


def bayes_forest(res, ax=None, *, title: str | None = None, xlabel: str | None = None):
    """Draw :class:`~metamsc.bayes.BayesResult` on ``ax`` (a new figure if None); return ``ax``.
    Values on the analysis scale (back-transform the tick labels yourself if needed)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    from .._dist import norm_isf

    k = res.k
    n = k + 3
    # the label column is as wide as the longest label (8 pt text, ~0.6 em per character)
    left_in = 0.25 + max([len(s) for s in res.labels] + [24]) * 8 * 0.62 / 72
    ax_in, right_in = 3.8, 1.9
    if ax is None:
        h = 1.6 + 0.3 * n
        fig = plt.figure(figsize=(left_in + ax_in + right_in, h))
        w = left_in + ax_in + right_in
        ax = fig.add_axes((left_in / w, 1.0 / h, ax_in / w, 0.3 * n / h))
    ax_w = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks([])
    trans = ax.get_yaxis_transform()
    z = float(norm_isf((1 - res.level) / 2))
    has_data = np.all(np.isfinite(res.yi))
    for i, lab in enumerate(res.labels):
        ax.text(-0.03, i, lab, transform=trans, ha="right", va="center", fontsize=8, gid=f"label:{i}")
        if has_data:
            s = np.sqrt(res.vi[i])
            ax.plot([res.yi[i] - z * s, res.yi[i] + z * s], [i - 0.15, i - 0.15], color="black", lw=1,
                    gid=f"ci:{i}")
            ax.plot([res.yi[i]], [i - 0.15], "s", color="black", ms=4, gid=f"est:{i}")
        if np.isfinite(res.theta_median[i]):
            ax.plot([res.theta_ci_lb[i], res.theta_ci_ub[i]], [i + 0.15, i + 0.15], color="0.55", lw=1,
                    gid=f"shrunk_ci:{i}")
            ax.plot([res.theta_median[i]], [i + 0.15], "o", color="0.55", ms=3.5, gid=f"shrunk:{i}")
            ax.text(1.03, i, f"{res.theta_median[i]:.2f} [{res.theta_ci_lb[i]:.2f}, {res.theta_ci_ub[i]:.2f}]",
                    transform=trans, ha="left", va="center", fontsize=8, color="0.35", gid=f"value:{i}")
    ym = k + 0.5
    ax.add_patch(Polygon([(res.mu_ci_lb, ym), (res.mu_median, ym - 0.3), (res.mu_ci_ub, ym),
                          (res.mu_median, ym + 0.3)], closed=True, color="black", gid="diamond"))
    ax.text(-0.03, ym, "Effect \u03bc (posterior)", transform=trans, ha="right", va="center",
            fontsize=8, fontweight="bold", gid="label:mu")
    ax.text(1.03, ym, f"{res.mu_median:.2f} [{res.mu_ci_lb:.2f}, {res.mu_ci_ub:.2f}]", transform=trans,
            ha="left", va="center", fontsize=8, fontweight="bold", gid="value:mu")
    yp = k + 1.5
    ax.plot([res.pred_ci_lb, res.pred_ci_ub], [yp, yp], color="black", lw=2.5, gid="pred")
    ax.text(-0.03, yp, "Prediction (new study)", transform=trans, ha="right", va="center", fontsize=8,
            gid="label:pred")
    ax.text(1.03, yp, f"[{res.pred_ci_lb:.2f}, {res.pred_ci_ub:.2f}]", transform=trans, ha="left",
            va="center", fontsize=8, gid="value:pred")
    ax.axvline(res.mu_median, color="0.7", lw=0.6, ls=":")
    ax.set_xlabel(xlabel or f"Effect ({res.measure} scale)")
    ax.set_title(title or f"Bayesian random-effects meta-analysis ({res.model})", fontsize=10,
                 loc="left", x=-(left_in - 0.1) / ax_w)
    ax.figure.text(0.02, 0.15 / ax.figure.get_figheight(),
                   f"Model: {res.model}. "
                   f"Priors: \u03bc ~ {res.prior_mu.label}; \u03c4 ~ {res.prior_tau.label}. "
                   f"Black: observed estimate, {100 * res.level:g}% CI"
                   f"{'' if res.events is None else ' (1/2 added to each count, display only)'}; grey: shrunken estimate "
                   f"(posterior median, credible interval). \u03c4 median {res.tau_median:.3f} "
                   f"[{res.tau_ci_lb:.3f}, {res.tau_ci_ub:.3f}].",
                   fontsize=7, ha="left", va="bottom", wrap=True, gid="footnote")
    return ax
