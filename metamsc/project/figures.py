"""The figures of a spec's run: the forest (or evidence map) and the extra ``plots``.

The plotting functions take results; this module reads what the spec adds (title, note, the
``[forest]`` table's data columns and order, subgroups, sensitivity refits, the exact 2x2 note)
and passes it as their arguments.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from ..errors import MetamscError, SpecError
from ..plots import baujat, bubble, forest, funnel, influence_plot
from ..plots import sensitivity_forest
from ..plots.forest import ORDERS
from .run import Analysis, EvidenceMap, moderator_regression

__all__ = ["spec_figures", "analysis_forest", "forest_options"]


def analysis_forest(an: Analysis, ax=None, **overrides):
    """The forest plot of a spec's run (:func:`metamsc.plots.forest` with the spec's subgroups,
    raw counts, title, note, ``[forest]`` options and sensitivity refits); ``overrides`` are
    forest()'s keyword arguments and take precedence."""
    spec = an.spec
    opts = forest_options(an)
    subgroups = overrides.pop("subgroups", None)
    subgroups = subgroups if subgroups is not None else an.subgroups
    kw: dict[str, Any] = dict(
        title=spec.title, study_data=an.study_data, subgroups=subgroups,
        subgroup_test=an.subgroup_test, note=spec.note or None, study_ci=spec.study_ci,
        columns=opts.get("columns"), order=opts.get("order", "data"), summary=opts.get("summary"),
        axis=opts.get("axis"), overall=spec.overall, sensitivity=an.sensitivity,
        sensitivity_role=spec.sensitivity[0] if spec.sensitivity else "",
        extra_note=exact_note(an),
        # the spec's levels (its validator knows the data)
        descriptive=[lv for lv in spec.descriptive if lv in dict(subgroups or ())])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return forest(an.result, ax=ax, **kw)


def exact_note(an: Analysis) -> str:
    """Fisher's exact test and the exact conditional OR, for one two-group study."""
    exact = an.exact()
    if not exact or len(exact) != 1:
        return ""
    e = exact[0]
    return (f"Fisher's exact p = {e['fisher_pvalue']:.3f}; conditional MLE odds ratio "
            f"{e['or_conditional_mle']:.2f} [{e['or_exact_ci_lb']:.2f}, {e['or_exact_ci_ub']:.2f}] (exact).")


def forest_options(an: Analysis) -> dict[str, Any]:
    """Forest options of a spec's ``[forest]`` table, with data columns resolved to values."""
    raw = getattr(an.spec, "forest", None) or {}
    out: dict[str, Any] = {}
    rows = an.selection.rows
    known = an.selection.columns
    for c in [c for side in ("left", "right") for c in raw.get(side, {}).values()] + (
            [raw["sort"]] if raw.get("sort", "data") not in ORDERS else []):
        if c not in known:
            raise ValueError(f"key 'forest': no column {c!r} in the data")
    cols = {}
    for side in ("left", "right"):
        if side in raw:
            cols[side] = {h: [r.get(c, "") for r in rows] for h, c in raw[side].items()}
    if cols:
        out["columns"] = cols
    sort = raw.get("sort", "data")
    if sort in ORDERS:
        out["order"] = sort
    else:
        def key(v: str):
            try:
                return (0, float(v), "")
            except ValueError:
                return (1, 0.0, v)
        keys = [key(r.get(sort, "")) for r in rows]
        ranks = {k: i for i, k in enumerate(sorted(set(keys)))}
        out["order"] = [ranks[k] for k in keys]
    summ = {k: raw[k] for k in ("common", "random", "prediction", "test") if k in raw}
    if summ:
        out["summary"] = summ
    ax = {k: (tuple(raw[k]) if isinstance(raw[k], list) else raw[k])
          for k in ("xlim", "ref", "direction") if k in raw}
    if "xlabel" in raw:
        ax["label"] = raw["xlabel"]
    if ax:
        out["axis"] = ax
    return out


def spec_figures(an) -> list[tuple[object, tuple[Path, ...]]]:
    """The figures of a spec's analysis, each with the files it goes to: the forest (or the
    evidence map) to ``figure``, and the ``plots`` (leave-one-out, cumulative, funnel, bubble,
    Baujat, influence). A figure that cannot be drawn raises a SpecError naming the spec."""
    try:
        return _spec_figures(an)
    except MetamscError:
        raise
    except ValueError as e:
        raise SpecError(an.spec.path, f"figure: {e}", key="figure") from None


def _spec_figures(an):
    spec = an.spec
    base = spec.path.parent
    out = []
    if spec.figures:
        ax = an.plot_evidence_map() if isinstance(an, EvidenceMap) else analysis_forest(an)
        out.append((ax, tuple((base / f).resolve() for f in spec.figures)))
    for kind, files in getattr(spec, "plots", {}).items():
        paths = tuple((base / f).resolve() for f in files)
        out.append((_extra_plot(an, kind), paths))
    return out


def _extra_plot(an: Analysis, kind: str):
    """One figure of the spec's ``plots`` table."""
    spec, res = an.spec, an.result
    if kind == "funnel":
        ax = funnel(res, contours=(0.90, 0.95, 0.99), egger=res.k >= 3,
                    trimfill=res.k >= 3, title=spec.title)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.figure.set_size_inches(7.5, 4.2)
        ax.figure.subplots_adjust(left=0.1, right=0.68, bottom=0.13, top=0.9)
    elif kind == "bubble":
        reg = moderator_regression(an.selection.rows, res, spec.moderators, spec.categorical)
        ax = bubble(reg)
        ax.set_title(_wrap(spec.title), fontsize=10)
    elif kind == "baujat":
        ax = baujat(res, title=_wrap(spec.title))
    elif kind == "influence":
        ax = influence_plot(res)[0]
        ax.figure.suptitle(_wrap(spec.title, 90), fontsize=10)
        ax.figure.subplots_adjust(top=0.92)
    else:
        from .. import sensitivity as sens

        table = (sens.leave_one_out if kind == "leave_one_out" else sens.cumulative)(res)
        ax = sensitivity_forest(table, result=res, title=spec.title)
    return ax


def _wrap(title: str, width: int = 60) -> str:
    return "\n".join(textwrap.wrap(title, width)[:2])
