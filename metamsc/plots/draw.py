"""Drawing the rows of a forest-type plot (the forest and the sensitivity forests) on an axes:
columns measured with the renderer, squares, lines, diamonds, bars, text. The rows are built by
the plots (:mod:`metamsc.plots.rows`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._layout import Measurer
from .rows import Row

__all__ = ["draw", "ROW_PT", "PLOT_PT", "FONT"]

ROW_PT = 15.0  # row height in points
PLOT_PT = 210.0  # width of the plotting region in points
FONT = 9.0


def _to_plot(v, scale):
    return v * 100.0 if scale == "percent" else v


def _auto_xlim(rows: list[Row], scale: str, ref) -> tuple[float, float]:
    """x range on the plotted scale: every estimate, summary CI and the reference line, widened
    towards the study CIs by at most the core width (longer CIs end in an arrow)."""
    if scale == "percent":
        return 0.0, 100.0
    t = np.log if scale == "log" else (lambda x: x)
    core, full = [], []
    for r in rows:
        vals = [r.est] if r.kind == "study" else [r.est, r.lo, r.hi] if r.kind == "summary" else []
        core += vals
        full += [r.lo, r.hi] if r.kind in ("study", "pi", "bound") else []
    if ref is not None:
        core.append(ref)
    ok = (lambda v: np.isfinite(v) and v > 0) if scale == "log" else np.isfinite
    core = [float(t(v)) for v in core if ok(v)]
    full = [float(t(v)) for v in full if ok(v)]
    if not core and not full:
        return (0.1, 10.0) if scale == "log" else (-1.0, 1.0)
    core = core or full
    lo, hi = min(core), max(core)
    width = hi - lo if hi > lo else max(abs(lo) * 0.5, 0.5 if scale == "log" else 1.0)
    if full:
        lo = min(lo, max(min(full), lo - width))
        hi = max(hi, min(max(full), hi + width))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.04 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    return (float(np.exp(lo)), float(np.exp(hi))) if scale == "log" else (lo, hi)


def _log_ticks(x0: float, x1: float) -> list[float]:
    for mant in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0**e for e in range(-8, 9) for m in mant if x0 <= m * 10.0**e <= x1]
        if len(ticks) <= 6:
            break
    step = 1
    while len(ticks[::step]) > 6:
        step += 1
    ticks = ticks[::step]
    if len(ticks) < 2:
        ticks = sorted({float(f"{x0 * (x1 / x0) ** f:.2g}") for f in (0.1, 0.5, 0.9)})
    return ticks


def draw(rows: list[Row], *, ax=None, scale: str, title: str | None, footnote: str | None,
         xlabel: str, left_headers: list[str], right_headers: list[str], value_header: str,
         pooled: float = np.nan, ref: float | None = None, xlim=None,
         direction: tuple[str, str] | None = None, label_header: str = "Study"):
    """Draw rows built by a forest-type plot (also used by the sensitivity forests)."""
    import matplotlib.pyplot as plt
    from matplotlib import transforms as mtransforms

    n_rows = len(rows)
    own_fig = ax is None
    fig = plt.figure(figsize=(6, 4)) if own_fig else ax.figure
    m = Measurer(fig)
    small = FONT - 1.5
    gap = 10.0
    c = _columns(rows, m, left_headers, right_headers, value_header, label_header, gap)
    margin = 8.0
    title_lines = m.wrap(title, c.inner_w, FONT + 2, bold=True) if title else []
    foot_lines = m.wrap(footnote, c.inner_w, small, italic=True) if footnote else []
    title_h = len(title_lines) * (FONT + 2) * 1.25 * 1.2 + (10 if title_lines else 0)
    axes_h = (n_rows + 1.5) * ROW_PT
    below = 36.0 + (14.0 if direction else 0.0)
    foot_h = len(foot_lines) * small * 1.3 * 1.2 + (6 if foot_lines else 0)
    if own_fig:
        width_pt = c.inner_w + 2 * margin
        height_pt = margin + title_h + axes_h + below + foot_h + margin
        fig.set_size_inches(width_pt / 72, height_pt / 72)
        ax = fig.add_axes(((margin + c.left_total + gap) / width_pt,
                           (margin + foot_h + below) / height_pt,
                           PLOT_PT / width_pt, axes_h / height_pt))
    ax.set_ylim(0.5, n_rows + 2.0)
    ys = [n_rows - i for i in range(n_rows)]  # first row on top
    header_y = n_rows + 1.0
    blend = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)

    def text_at(x_axes, dx_pt, y, s, ha="left", bold=False, size=FONT, style="normal", gid=None,
                **kw):
        if not s:
            return
        tr = mtransforms.offset_copy(blend, fig=fig, x=dx_pt, y=0, units="points")
        ax.text(x_axes, y, s, transform=tr, ha=ha, va="center", fontsize=size,
                fontweight="bold" if bold else "normal", fontstyle=style, clip_on=False,
                parse_math=False, gid=gid, **kw)

    # x axis
    if xlim is not None:
        x0, x1 = (_to_plot(v, scale) for v in xlim)
        if scale == "log" and x0 <= 0:
            raise ValueError(f"axis.xlim: {xlim[0]!r} is not positive; a log axis needs xlim > 0")
    else:
        x0, x1 = _auto_xlim(rows, scale, ref)
        if scale == "percent":
            x0, x1 = 0.0, 100.0
    if scale == "log":
        ax.set_xscale("log")
    ax.set_xlim(x0, x1)

    hdr = dict(bold=True)
    text_at(0, c.x_label, header_y, label_header, gid="header", **hdr)
    for x, h in zip(c.x_left, left_headers):
        text_at(0, x, header_y, h, gid="header", **hdr)
    for x, h in zip(c.x_right, right_headers):
        text_at(1, x, header_y, h, gid="header", **hdr)
    if c.has_weight:
        text_at(1, c.x_weight, header_y, "Weight", ha="right", gid="header", **hdr)
    text_at(1, c.x_value, header_y, value_header, ha="right", gid="header", **hdr)
    _draw_rows(ax, rows, ys, text_at, c, x0, x1, scale)

    # vertical lines from the bottom to the top of the first row (never through the header)
    top = n_rows + 0.5
    est0 = _to_plot(pooled, scale)
    if np.isfinite(est0) and x0 < est0 < x1:
        ax.plot([est0, est0], [0.5, top], color="0.4", lw=0.6, ls=(0, (3, 3)), zorder=1,
                gid="pooled-line")
    if ref is not None and x0 < _to_plot(ref, scale) < x1:
        ax.plot([_to_plot(ref, scale)] * 2, [0.5, top], color="black", lw=0.6, zorder=1, gid="ref-line")
    _x_axis(ax, scale, x0, x1, xlabel, direction, ref, pooled)
    if title_lines:
        tr = mtransforms.offset_copy(ax.transAxes, fig=fig, x=c.x_label, y=6,
                                     units="points")
        ax.text(0, 1, "\n".join(title_lines), transform=tr, ha="left", va="bottom",
                fontsize=FONT + 2, fontweight="bold", parse_math=False, gid="title",
                linespacing=1.25)
    if foot_lines:
        tr = mtransforms.offset_copy(ax.transAxes, fig=fig, x=c.x_label, y=-below, units="points")
        ax.text(0, 0, "\n".join(foot_lines), transform=tr, ha="left", va="top", fontsize=small,
                fontstyle="italic", parse_math=False, gid="footnote", linespacing=1.3)
    return ax


@dataclass(frozen=True)
class _Columns:
    """Column widths and x positions in points (from the axes' left or right edge)."""

    has_weight: bool
    left_total: float
    inner_w: float
    x_label: float
    x_left: tuple[float, ...]
    x_right: tuple[float, ...]
    x_weight: float
    x_value: float


def _columns(rows, m, left_headers, right_headers, value_header, label_header, gap) -> _Columns:
    """Every column as wide as its widest text, measured with the renderer."""
    has_weight = any(np.isfinite(r.weight) for r in rows if r.kind in ("study", "summary"))

    def colw(texts, header):
        return max([m.width(t, FONT) for t in texts] + [m.width(header, FONT, bold=True)])

    w_label = max([m.width(r.label, FONT) for r in rows if r.kind == "study"]
                  + [m.width(label_header, FONT, bold=True), 30.0])
    w_left = [colw([r.left[i] for r in rows if r.kind == "study" and i < len(r.left)], h)
              for i, h in enumerate(left_headers)]
    w_right = [colw([r.right[i] for r in rows if r.kind == "study" and i < len(r.right)], h)
               for i, h in enumerate(right_headers)]
    w_weight = colw(["100.0%"], "Weight") if has_weight else 0.0
    w_value = max([m.width(r.value, FONT, bold=r.bold) for r in rows]
                  + [m.width(value_header, FONT, bold=True)])
    left_total = w_label + sum(w + gap for w in w_left)
    span_left = max([m.width(r.label, FONT if r.kind != "pi" else FONT - 0.5, bold=r.bold)
                     + (10 if r.kind == "pi" else 0)
                     for r in rows if r.kind in ("summary", "pi", "bound")]
                    + [m.width(r.label, FONT - 1, italic=True) for r in rows if r.kind == "note"]
                    + [0.0])
    if span_left > left_total:  # summary labels span the (empty) data columns on their rows
        w_label += span_left - left_total
        left_total = span_left
    right_total = gap + sum(w + gap for w in w_right) + (w_weight + gap if has_weight else 0) + w_value
    inner_w = left_total + gap + PLOT_PT + right_total
    span_any = max([m.width(r.label, FONT, bold=r.bold) for r in rows if r.kind == "group"]
                   + [m.width(r.label, FONT - 1, italic=True) for r in rows if r.kind == "het"]
                   + [0.0])
    inner_w = max(inner_w, span_any)
    x_label = -(left_total + gap)
    x_left = []
    pos = x_label + w_label + gap
    for w in w_left:
        x_left.append(pos)
        pos += w + gap
    x_right = []
    pos = gap
    for w in w_right:
        x_right.append(pos)
        pos += w + gap
    return _Columns(has_weight, left_total, inner_w, x_label, tuple(x_left), tuple(x_right),
                    pos + w_weight, right_total)  # weight and value right-aligned


def _draw_rows(ax, rows, ys, text_at, c: _Columns, x0: float, x1: float, scale: str) -> None:
    """Labels, values, weights, cells and the marks of each row (square and CI line of a study,
    diamond of a summary, bar of a prediction interval, hatched box of an exact bound)."""
    from matplotlib.patches import Polygon, Rectangle

    max_w = max([r.weight for r in rows if r.kind == "study" and np.isfinite(r.weight)] or [1])

    def clip(v):
        return min(max(v, x0), x1)

    for r, y in zip(rows, ys):
        if r.kind == "gap":
            continue
        if r.kind == "group":
            text_at(0, c.x_label, y, r.label, bold=True, gid="label")
            continue
        if r.kind in ("het", "note"):
            # on white, above the vertical lines it may cross
            text_at(0, c.x_label, y, r.label, size=FONT - 1, style="italic", gid="label", zorder=4,
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
            continue
        lo, hi, est = _to_plot(r.lo, scale), _to_plot(r.hi, scale), _to_plot(r.est, scale)
        if r.kind == "pi":
            text_at(0, c.x_label + 10, y, r.label, size=FONT - 0.5, gid="label")
            text_at(1, c.x_value, y, r.value, ha="right", size=FONT - 0.5, gid="value")
        else:
            text_at(0, c.x_label, y, r.label, bold=r.bold, gid="label")
            text_at(1, c.x_value, y, r.value, ha="right", bold=r.bold,
                    gid="value-study" if r.kind == "study" else "value")
        if r.kind in ("study", "summary") and np.isfinite(r.weight):
            text_at(1, c.x_weight, y, f"{r.weight:.1f}%", ha="right", bold=r.bold, gid="weight")
        if r.kind == "study":
            for x, s in zip(c.x_left, r.left):
                text_at(0, x, y, s, gid="cell")
            for x, s in zip(c.x_right, r.right):
                text_at(1, x, y, s, gid="cell")
            if np.isfinite(lo) and np.isfinite(hi) and hi >= x0 and lo <= x1:
                ax.plot([clip(lo), clip(hi)], [y, y], color="black", lw=0.9,
                        solid_capstyle="butt", gid="ci")
                if lo < x0:
                    ax.plot([x0], [y], marker="<", markersize=4, color="black", gid="arrow")
                if hi > x1:
                    ax.plot([x1], [y], marker=">", markersize=4, color="black", gid="arrow")
            if np.isfinite(est) and x0 <= est <= x1:
                rel = r.weight / max_w if np.isfinite(r.weight) else 0.3
                ax.plot([est], [y], marker="s", markersize=4 + 6 * np.sqrt(rel), color="0.25",
                        markeredgecolor="black", markeredgewidth=0.5, zorder=3, gid="square")
        elif r.kind == "summary":
            if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(est)):
                continue
            h = 0.32
            poly = Polygon([(lo, y), (est, y + h), (hi, y), (est, y - h)], closed=True,
                           facecolor=r.shade, edgecolor="black", lw=0.7, zorder=3, gid="diamond",
                           clip_on=True)
            ax.add_patch(poly)
        elif r.kind == "bound":
            if np.isfinite(lo) and np.isfinite(hi):
                ax.add_patch(Rectangle((clip(lo), y - 0.2), clip(hi) - clip(lo), 0.4, facecolor="0.8",
                                       edgecolor="black", lw=0.6, hatch="////", zorder=2, gid="bound"))
        elif r.kind == "pi":
            if np.isfinite(lo) and np.isfinite(hi):
                ax.add_patch(Rectangle((clip(lo), y - 0.12), clip(hi) - clip(lo), 0.24,
                                       facecolor="0.85", edgecolor="black", lw=0.6, zorder=2, gid="pi"))


def _x_axis(ax, scale: str, x0: float, x1: float, xlabel: str, direction, ref, pooled) -> None:
    """Spines, ticks (percent, log with natural labels, or linear), the axis label and the
    direction-of-effect labels beneath it."""
    from matplotlib import transforms as mtransforms
    from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter, NullLocator

    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=FONT - 0.5, length=3)
    if scale == "percent":
        ticks = [v for v in np.linspace(0, 100, 6) if x0 <= v <= x1] if (x0, x1) == (0, 100) else None
        if ticks:
            ax.xaxis.set_major_locator(FixedLocator(ticks))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f}%")
    elif scale == "log":
        ax.xaxis.set_major_locator(FixedLocator(_log_ticks(x0, x1)))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.set_xlabel(xlabel, fontsize=FONT, labelpad=4 + (14 if direction else 0))
    if direction:
        at = ref if ref is not None else (pooled if np.isfinite(pooled) else None)
        xr = _to_plot(at, scale) if at is not None else None
        frac = 0.5 if xr is None or not x0 < xr < x1 else (
            (np.log(xr) - np.log(x0)) / (np.log(x1) - np.log(x0)) if scale == "log"
            else (xr - x0) / (x1 - x0))
        for s, ha, dx in ((direction[0], "right", -4), (direction[1], "left", 4)):
            tr = mtransforms.offset_copy(ax.transAxes, fig=ax.figure, x=dx, y=-22, units="points")
            ax.text(frac, 0, s, transform=tr, ha=ha, va="top", fontsize=FONT - 1, clip_on=False,
                    parse_math=False, gid="direction")
