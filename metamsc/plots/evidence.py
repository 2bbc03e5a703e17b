"""Evidence map: every study and registration, by indication, year, design, cell source and size."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._layout import MAX_TITLE, Measurer, check_length

__all__ = ["evidence_map_plot"]

_FONT = 8.5
_ROW_PT = 14.0
_SOURCES = ("umbilical cord", "cord blood", "adipose", "bone marrow", "gingiva")
_COLORS = {"umbilical cord": "#1b6ca8", "cord blood": "#6baed6", "adipose": "#e6550d",
           "bone marrow": "#756bb1", "gingiva": "#31a354", "other": "0.5"}
#: a cell source value ending in this suffix rests on one secondary label (e.g. the review's
#: 'hUCB'): drawn in its source's colour with a "?" beside the marker, and its own legend entry
UNVERIFIED = "(unverified)"
_MARKERS = {"case report": "o", "single-arm trial": "s", "randomized trial": "D",
            "preclinical": "^", "other": "P"}


def _num(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _size(row: dict[str, str]) -> float:
    for key in ("n_analysed", "n_enrolled", "n_planned"):
        v = _num(row.get(key, ""))
        if np.isfinite(v):
            return v
    return float("nan")


def _source(value: str) -> tuple[str, bool]:
    """(colour key, unverified?) of a cell source value."""
    value = (value or "").strip()
    unverified = value.lower().endswith(UNVERIFIED)
    return next((s for s in _SOURCES if s in value), "other"), unverified


def _label(r: dict[str, str], col: str | None, i: int) -> str:
    """A study's label: the spec's study column, else citation, study_id, study, name, row."""
    for key in ((col,) if col else ()) + ("citation", "study_id", "study", "name", "label"):
        if (r.get(key) or "").strip():
            return r[key].strip()
    return f"study {i + 1}"


def evidence_map_plot(rows: Any, ax=None, *, title: str | None = None,
                      study_column: str | None = None):
    """Draw the evidence map of ``rows`` (study dicts) on ``ax``; returns ax. A study's label is
    its ``study_column`` value, else its citation, study_id, study, name or row (a spec's map
    draws itself: ``EvidenceMap.plot_evidence_map()``).

    Marker position: publication or registration year; marker shape: design; colour: cell
    source (a value ending in "(unverified)": its source's colour, a "?" beside the marker and
    its own legend entry); area: number of patients; filled: results reported, hollow:
    registered only.

    Parameters
    ----------
    rows : sequence of dict
        One dict of text values per study (``indication``, ``year``, ``design``,
        ``cell_source``, ``n``, ``results_reported``, ``citation``, ``registry_id``, ...).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure sized to the rows if None.
    title : str, optional
        Title above the plot.
    study_column : str, optional
        The key holding each study's label.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    References
    ----------
    Miake-Lye IM, Hempel S, Shanman R, Shekelle PG (2016). What is an evidence map? A systematic
    review of published evidence maps and their definitions, methods, and products. Syst Rev
    5:28.

    Examples
    --------
    >>> from metamsc.plots import evidence_map_plot
    >>> rows = [{"citation": "Study A 2020", "indication": "psoriasis", "year": "2020",
    ...          "design": "RCT", "cell_source": "umbilical cord", "n": "12",
    ...          "results_reported": "yes"},
    ...         {"citation": "Study B 2022", "indication": "systemic sclerosis", "year": "2022",
    ...          "design": "single-arm", "cell_source": "adipose", "n": "20"}]
    >>> ax = evidence_map_plot(rows)
    >>> len(ax.collections)
    2
    >>> sorted(t.get_text() for t in ax.texts if "(k = " in t.get_text())
    ['Psoriasis (k = 1)', 'Systemic sclerosis (k = 1)']
    """
    import matplotlib.pyplot as plt
    from matplotlib import transforms as mtransforms

    label_col = study_column
    check_length(title, "title", MAX_TITLE)
    if not rows:
        raise ValueError("evidence_map_plot: no studies to draw")
    rows = sorted(rows, key=lambda r: (r.get("indication", ""), r.get("setting", "") == "preclinical",
                                       _num(r.get("year", "")), r.get("citation", "")))
    groups: list[tuple[str, list[dict[str, str]]]] = []
    for r in rows:
        ind = r.get("indication", "") or "(unknown)"
        if not groups or groups[-1][0] != ind:
            groups.append((ind, []))
        groups[-1][1].append(r)
    n_lines = sum(len(g) + 1 for _, g in groups)

    m = Measurer()
    labels = [_label(r, label_col, i) for i, r in enumerate(rows)]
    regs = [r.get("registry_id", "") for r in rows]
    shown = [f"{lab} ({reg})" if reg and reg not in lab else lab for lab, reg in zip(labels, regs)]
    left_pt = max([m.width(t, _FONT) + 8 for t in shown]
                  + [m.width(f"{g.capitalize()} (k = {len(x)})", _FONT, bold=True) for g, x in groups]
                  + [60.0]) + 10
    right_pt = 60 + max([m.width(r.get("design", ""), _FONT - 0.5) for r in rows] + [40.0]) + 10
    shown_of = {id(r): t for r, t in zip(rows, shown)}
    plot_w = 230.0
    title_lines = m.wrap(title, left_pt + plot_w + right_pt, _FONT + 2.5, bold=True) if title else []
    own = ax is None
    if own:
        bottom, top = 120.0, 22.0 + 16.0 * len(title_lines)
        h = n_lines * _ROW_PT + bottom + top
        w = left_pt + plot_w + right_pt + 20
        fig = plt.figure(figsize=(w / 72, h / 72))
        ax = fig.add_axes(((left_pt + 10) / w, bottom / h, plot_w / w, n_lines * _ROW_PT / h))
    fig = ax.figure
    blend = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)

    def text(x, dx, y, s, **kw):
        tr = mtransforms.offset_copy(blend, fig=fig, x=dx, y=0, units="points")
        ax.text(x, y, s, transform=tr, va="center", fontsize=kw.pop("size", _FONT), clip_on=False,
                parse_math=False, **kw)

    years = [_num(r.get("year", "")) for r in rows]
    years = [y for y in years if np.isfinite(y)]
    x0, x1 = (min(years) - 1, max(years) + 1) if years else (2014, 2024)
    x_nd = x1 + 2.0  # column for studies whose year is not in the sources
    ax.set_xlim(x0, x_nd + 1.0)
    ax.axvline(x1 + 1.0, color="0.75", lw=0.6, ls=(0, (2, 2)))
    ax.set_ylim(0.5, n_lines + 0.5)
    sizes = [_size(r) for r in rows]
    smax = max([s for s in sizes if np.isfinite(s)] or [1])
    y = n_lines
    for ind, grp in groups:
        text(0, -left_pt, y, f"{ind.capitalize()} (k = {len(grp)})", fontweight="bold")
        y -= 1
        for r in grp:
            src, unverified = _source(r.get("cell_source", ""))
            design = r.get("design", "") if r.get("design", "") in _MARKERS else "other"
            filled = r.get("results_reported", "") == "yes"
            n = _size(r)
            area = 12 + 160 * (n / smax if np.isfinite(n) else 0.05)
            yr = _num(r.get("year", ""))
            if not np.isfinite(yr):
                yr = x_nd
            label = shown_of[id(r)]
            text(0, -left_pt + 8, y, label)
            text(1, 10, y, f"n = {n:g}" if np.isfinite(n) else "n = ?")
            text(1, 60, y, r.get("design", ""), size=_FONT - 0.5, color="0.25")
            ax.scatter([yr], [y], s=area, marker=_MARKERS[design], zorder=3, linewidths=1.0,
                       facecolors=_COLORS[src] if filled else "white", edgecolors=_COLORS[src])
            if unverified:  # a "?" right of the marker (its radius plus 2 points)
                tr = mtransforms.offset_copy(ax.transData, fig=fig, x=np.sqrt(area) / 2 + 5, y=0,
                                             units="points")
                ax.scatter([yr], [y], s=40, marker="$?$", color=_COLORS[src], zorder=4,
                           transform=tr, linewidths=0.0, gid="unverified")
            ax.axhline(y, color="0.92", lw=0.5, zorder=0)
            y -= 1
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    ticks = list(range(int(np.ceil(x0)), int(x1) + 1, 2)) if years else []
    ax.set_xticks(ticks + [x_nd])
    ax.set_xticklabels([str(t) for t in ticks] + ["n.d."])
    ax.tick_params(axis="x", labelsize=_FONT)
    ax.set_xlabel("Year of publication (n.d.: registration year not in the sources)", fontsize=_FONT)
    _legend(ax, rows)
    if title_lines:
        _title(ax, title_lines, left_pt)
    return ax


def _legend(ax, rows) -> None:
    """The legend below the plot: cell sources (with their unverified values), designs, and
    filled (results reported) or hollow (registered only) markers."""
    from matplotlib import transforms as mtransforms
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D

    fig = ax.figure

    def key(marker, face, edge, **kw):
        return Line2D([], [], ls="", marker=marker, markersize=7, markerfacecolor=face,
                      markeredgecolor=edge, **kw)

    entries: list[tuple[Any, str]] = []
    unverified = sorted({r.get("cell_source", "").strip() for r in rows
                         if _source(r.get("cell_source", ""))[1]})
    for s in _SOURCES:
        entries.append((key("s", _COLORS[s], _COLORS[s]), s))
        for value in unverified:  # beside its source: the square with a "?", the value as label
            if _source(value)[0] == s:
                c = _COLORS[s]
                entries.append(((key("s", c, c), key("$?$", c, c, markeredgewidth=0.0)), value))
    entries += [(key(m, "0.4", "0.4"), d) for d, m in _MARKERS.items() if d != "other"]
    entries += [(key("o", "0.4", "0.4"), "results reported"),
                (key("o", "white", "0.4"), "registered, no results")]
    below = mtransforms.offset_copy(ax.transAxes, fig=fig, x=0, y=-36, units="points")
    ax.legend([h for h, _ in entries], [t for _, t in entries], loc="upper center",
              bbox_to_anchor=(0.5, 0.0), bbox_transform=below, ncol=4, fontsize=_FONT - 1,
              frameon=False, handletextpad=0.3, columnspacing=1.0,
              handler_map={tuple: HandlerTuple(ndivide=None, pad=0.1)})


def _title(ax, title_lines: list[str], left_pt: float) -> None:
    """The title above the plot, and what a marker's area means."""
    from matplotlib import transforms as mtransforms

    fig = ax.figure
    tr = mtransforms.offset_copy(ax.transAxes, fig=fig, x=-left_pt, y=18, units="points")
    ax.text(0, 1, "\n".join(title_lines), transform=tr, fontsize=_FONT + 2.5, fontweight="bold",
            va="bottom", parse_math=False, gid="title")
    ax.text(0, 1, "Marker area: number of patients (analysed, else enrolled, else planned)",
            transform=mtransforms.offset_copy(ax.transAxes, fig=fig, x=-left_pt, y=5,
                                              units="points"),
            fontsize=_FONT - 1, fontstyle="italic", va="bottom")
