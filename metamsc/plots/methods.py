"""The method-sensitivity panel: one row per analysis, its estimate (marker) and interval (line),
grouped by what was varied, on the natural scale (percent for proportions)."""

from __future__ import annotations

import numpy as np

__all__ = ["method_panel"]

_ROW_IN = 0.19  # row height in inches


def method_panel(ms, ax=None, *, title: str | None = None, percent: bool = True, note: str | None = None):
    """Draw :class:`~metamsc.method_sensitivity.MethodSensitivity` rows on ``ax`` (a new figure
    if None) and return ``ax``. Rows without an estimate are listed with their reason."""
    import matplotlib.pyplot as plt

    rows = list(ms.rows)
    groups: list[str] = []
    for r in rows:
        if r.group not in groups:
            groups.append(r.group)
    lines = []  # (kind, text, row or None)
    for g in groups:
        lines.append(("group", g, None))
        lines += [("row", r.label, r) for r in rows if r.group == g]
    n = len(lines)
    if ax is None:
        fig = plt.figure(figsize=(9.5, 1.4 + _ROW_IN * n))
        ax = fig.add_axes((0.42, 0.9 / (1.4 + _ROW_IN * n), 0.40, (_ROW_IN * n) / (1.4 + _ROW_IN * n)))
    scale = 100.0 if percent else 1.0
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks([])
    trans = ax.get_yaxis_transform()
    finite = [r for r in rows if np.isfinite(r.natural_estimate)]
    for y, (kind, text, r) in enumerate(lines):
        if kind == "group":
            ax.text(-0.02, y, text, transform=trans, ha="right", va="center", fontsize=8.5,
                    fontweight="bold", gid=f"group:{text}")
            continue
        ax.text(-0.02, y, text, transform=trans, ha="right", va="center", fontsize=7.5,
                gid=f"label:{y}")
        if not np.isfinite(r.natural_estimate):
            ax.text(0.02, y, f"not estimated: {r.note[:60]}", transform=trans, ha="left",
                    va="center", fontsize=7, color="0.4", gid=f"na:{y}")
            continue
        est, lo, hi = (scale * v for v in (r.natural_estimate, r.natural_ci_lb, r.natural_ci_ub))
        color = {"Bayesian": "tab:purple", "exact likelihood": "tab:red",
                 "study set": "tab:green"}.get(r.group, "tab:blue")
        ax.plot([lo, hi], [y, y], color=color, lw=1.2, solid_capstyle="butt", gid=f"ci:{y}")
        ax.plot([est], [y], marker="s", ms=4, color=color, ls="none", gid=f"est:{y}")
        ax.text(1.02, y, f"{est:.1f} [{lo:.1f}, {hi:.1f}]" if percent else f"{est:.3f} [{lo:.3f}, {hi:.3f}]",
                transform=trans, ha="left", va="center", fontsize=7.5, gid=f"value:{y}")
    if finite:
        lo = min(r.natural_ci_lb for r in finite) * scale
        hi = max(r.natural_ci_ub for r in finite) * scale
        pad = 0.03 * (hi - lo or 1)
        ax.set_xlim(max(lo - pad, 0) if percent else lo - pad, min(hi + pad, 100) if percent else hi + pad)
    for y, (kind, _, _) in enumerate(lines):
        if kind == "group" and y > 0:
            ax.axhline(y - 0.5, color="0.85", lw=0.6)
    ax.set_xlabel("Pooled proportion (%)" if percent else "Pooled estimate")
    ax.grid(axis="x", color="0.92", lw=0.6)
    ax.set_axisbelow(True)
    lvl = f"{100 * ms.level:g}%"
    ax.set_title(title or "Method sensitivity", fontsize=10, loc="left", x=-0.72)
    foot = (f"Squares: pooled estimate (posterior median for Bayesian rows); lines: {lvl} confidence "
            f"or credible interval. Study sets use {ms.settings.get('primary', {}).get('measure', '')}, "
            f"{ms.settings.get('primary', {}).get('method', '')}, "
            f"{ms.settings.get('primary', {}).get('test', '')}.")
    if note:
        foot += " " + note
    ax.figure.text(0.02, 0.2 / ax.figure.get_figheight(), foot, fontsize=7, ha="left", va="bottom",
                   wrap=True, gid="footnote")
    return ax
