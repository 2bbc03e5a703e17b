"""Forest plot of a meta-analysis, in the layout of metafor's ``forest.rma`` and meta's ``forest.meta``.

Rows: one per study (square sized by weight, line for its CI), subgroup
summaries, the pooled diamond, the prediction interval as a bar beneath it,
and heterogeneity text. Proportions are drawn on the percent scale, ratios on
a log axis with natural tick labels, everything else on the analysis scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import transforms
from ..results import MetaResult

__all__ = ["forest"]

_PROPORTION = ("PR", "PLN", "PLO", "PAS", "PFT")
_RATIO = ("RR", "OR", "ROM", "IRR")
_FONT = 9.0
_XLABEL = {"MC": "Mean change (post \u2212 pre)", "SMCC": "Standardised mean change",
           "SMCR": "Standardised mean change (by the pre-treatment SD)", "MD": "Mean difference",
           "SMD": "Standardised mean difference (Hedges' g)", "RR": "Risk ratio (log scale)",
           "OR": "Odds ratio (log scale)", "ROM": "Ratio of means (log scale)",
           "IR": "Incidence rate", "IRLN": "Incidence rate (log scale)"}
_ROW_PT = 15.0  # row height in points


@dataclass(frozen=True)
class _Row:
    kind: str  # "study", "group", "summary", "pi", "gap"
    label: str
    est: float = np.nan
    lo: float = np.nan
    hi: float = np.nan
    weight: float = np.nan
    data: str = ""
    result: MetaResult | None = None
    bold: bool = False


def _scale(measure: str) -> str:
    if measure in _PROPORTION:
        return "percent"
    if measure in _RATIO:
        return "log"
    return "linear"


def _natural_study(res: MetaResult):
    nat = res.study_natural()
    lb, ub = res.study_intervals()
    if nat is None:
        return res.yi, lb, ub
    est, a, b = nat
    return est, np.minimum(a, b), np.maximum(a, b)


def _pooled(res: MetaResult):
    if res.natural is not None:
        n = res.natural
        return n.estimate, n.ci_lb, n.ci_ub, n.pi_lb, n.pi_ub
    return res.estimate, res.ci_lb, res.ci_ub, res.pi_lb, res.pi_ub


def _fmt_value(x: float, scale: str) -> str:
    if not np.isfinite(x):
        return "NA"
    if scale == "percent":
        return f"{100 * x:.1f}"
    return f"{x:.2f}"


def _ci_text(est, lo, hi, scale) -> str:
    return f"{_fmt_value(est, scale)} [{_fmt_value(lo, scale)}, {_fmt_value(hi, scale)}]"


def _is_glmm(res: MetaResult) -> bool:
    return res.model == "GLMM"


def _model_label(res: MetaResult) -> str:
    test = {"z": "", "knha": ", Hartung-Knapp", "adhoc": ", Hartung-Knapp (ad hoc)",
            "t": ", t"}.get(res.test, "")
    if _is_glmm(res):
        family = "Poisson-normal" if res.measure == "IRLN" else "binomial-normal"
        kind = "common-effect" if res.method == "EE" else "random-effects"
        return f"GLMM, {family}, {kind} ({'ML' if res.method != 'EE' else 'EE'}{test})"
    if res.method == "EE":
        return "Common-effect model"
    return f"Random-effects model ({res.method}{test})"


def _het_text(res: MetaResult) -> str:
    if res.k < 2:
        return "Heterogeneity: not estimable (k = 1)"
    if not np.isfinite(res.q):
        return "Heterogeneity: not estimable (no model identifiable from these counts)"
    p = "< 0.001" if res.q_pvalue < 0.001 else f"= {res.q_pvalue:.3f}"
    parts = [f"Heterogeneity: I\u00b2 = {res.i2:.0f}%"]
    if np.isfinite(res.i2_ci_lb):
        parts[0] += f" [{res.i2_ci_lb:.0f}%, {res.i2_ci_ub:.0f}%]"
    if res.method != "EE":
        parts.append(f"\u03c4\u00b2 = {res.tau2:.3g}")
    parts.append(f"Q({res.q_df}) = {res.q:.2f}, p {p}")
    return ", ".join(parts)


_CI_NAMES = {"CP": "Clopper-Pearson", "WS": "Wilson score", "WSCC": "Wilson score with continuity "
             "correction", "AC": "Agresti-Coull", "SA": "Wald", "SACC": "Wald with continuity "
             "correction", "JEFFREYS": "Jeffreys"}


def _footnote(res: MetaResult, scale: str, study_ci: str = "model") -> str:
    """What the study intervals are, and which studies were continuity-corrected."""
    if res.natural is not None and res.natural.transform.startswith("none: no model fitted"):
        bound = res.natural.transform.split("CI = ", 1)[-1]
        return (f"Study rows: observed proportions with {100 * res.level:g}% "
                f"{_CI_NAMES.get(study_ci.upper(), 'Wald')} CIs. Pooled: {bound}.")
    if study_ci != "model":
        name = _CI_NAMES.get(study_ci.upper(), study_ci)
        corr = res.conventions.correction
        corr = "" if corr.startswith("none") else f"; continuity correction: {corr}"
        return (f"Study rows: observed proportions with {100 * res.level:g}% {name} CIs. Pooled values "
                f"from the {res.measure} model{corr}.")
    what = {"PLO": "logit", "PLN": "log", "PAS": "arcsine", "PFT": "Freeman-Tukey",
            "PR": "raw proportion", "RR": "log", "OR": "log", "ROM": "log",
            "PETO": "log"}.get(res.measure, "analysis")
    text = f"Study CIs: Wald, {100 * res.level:g}%, on the {what} scale"
    if scale in ("percent", "log") and res.measure not in ("PR",):
        text += ", back-transformed"
    if res.corrected is not None and np.any(res.corrected):
        text += f"; \u2020 continuity correction: {res.conventions.correction}"
    return text + "."


def _exact_note(an) -> str:
    """Fisher's exact test and the exact conditional OR, for one two-group study."""
    from ..spec import _exact_two_group

    exact = _exact_two_group(an)
    if not exact or len(exact) != 1:
        return ""
    e = exact[0]
    return (f" Fisher's exact p = {e['fisher_pvalue']:.3f}; conditional MLE odds ratio "
            f"{e['or_conditional_mle']:.2f} [{e['or_exact_ci_lb']:.2f}, {e['or_exact_ci_ub']:.2f}] (exact).")


def _data_header(study_data) -> str:
    if "events1" in study_data:
        return "Events/Total"
    if "total" in study_data:
        return "Events/Total"
    if "time" in study_data:
        return "Events/Time"
    return "n"


def _data_text(measure: str, study_data: dict[str, Any] | None, i: int) -> str:
    if not study_data:
        return ""
    if "events1" in study_data:
        d = study_data
        return f"{d['events1'][i]:g}/{d['total1'][i]:g} vs {d['events2'][i]:g}/{d['total2'][i]:g}"
    if "events" in study_data and "total" in study_data:
        return f"{study_data['events'][i]:g}/{study_data['total'][i]:g}"
    if "events" in study_data and "time" in study_data:
        return f"{study_data['events'][i]:g}/{study_data['time'][i]:g}"
    if "n" in study_data:
        return f"{study_data['n'][i]:g}"
    return ""


def _observed(study_data, index, method: str, level: float):
    """Observed proportions x/n with an exact or score interval (meta's study CIs)."""
    from ..proportions import proportion_ci

    x = np.array([study_data["events"][i] for i in index], dtype=float)
    n = np.array([study_data["total"][i] for i in index], dtype=float)
    lo, hi = proportion_ci(x, n, method=method, level=level)
    return x / n, np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


def _positions(res: MetaResult) -> list[int]:
    """Positions of the result's studies in the data rows (``study_data``)."""
    return list(range(res.k)) if res.kept is None else [int(i) for i in res.kept]


def _study_rows(res: MetaResult, study_data, index, weights, study_ci: str = "model") -> list[_Row]:
    index = list(index)
    if study_ci != "model":
        est, lo, hi = _observed(study_data, index, study_ci, res.level)
        mark = np.zeros(res.k, dtype=bool)
    else:
        est, lo, hi = _natural_study(res)
        mark = res.corrected if res.corrected is not None else np.zeros(res.k, dtype=bool)
    return [_Row("study", res.labels[j] + ("\u2020" if mark[j] else ""), est[j], lo[j], hi[j],
                 weights[j], _data_text(res.measure, study_data, index[j])) for j in range(res.k)]


def _summary_rows(res: MetaResult, label: str, bold: bool, weight: float) -> list[_Row]:
    est, lo, hi, plo, phi = _pooled(res)
    if not np.isfinite(est) and np.isfinite(hi):  # degenerate data: an exact bound, no model
        return [_Row("bound", "Exact one-sided bound (no model identifiable)", est, lo, hi,
                     result=res, bold=bold)]
    rows = [_Row("summary", label, est, lo, hi, weight, result=res, bold=bold)]
    if res.method != "EE" and res.k > 1:
        rows.append(_Row("pi", "Prediction interval", est, plo, phi, result=res))
    return rows


def _layout(result: MetaResult, subgroups, study_data, overall: bool = True,
            sensitivity=(), sens_role: str = "", study_ci: str = "model") -> list[_Row]:
    """Rows top to bottom; in subgroup plots the weights are those of the overall model."""
    rows: list[_Row] = [_Row("gap", "")]
    if len(subgroups) == 1:  # one level: no subtotal that would repeat the overall result
        rows.append(_Row("group", f"{subgroups[0][0]} (all k = {result.k})", bold=True))
        subgroups = []
    if subgroups:
        # rows of the data by position (``kept``), so duplicate labels cannot mix studies up
        shown = result.weights if overall else np.full(result.k, np.nan)  # no overall: no weights
        overall_w = dict(zip(_positions(result), shown))
        for level, sub in subgroups:
            idx = _positions(sub)
            w = [overall_w[i] for i in idx]
            rows.append(_Row("group", f"{level} (k = {sub.k})", bold=True))
            rows.extend(_study_rows(sub, study_data, idx, w, study_ci))
            if sub.k > 1:
                name = _model_label(sub).split(" (")[0].lower()
                rows.extend(_summary_rows(sub, f"Subtotal ({name})", False, float(np.sum(w))
                                          if overall else np.nan))
                rows.append(_Row("het", _het_text(sub)))
            rows.append(_Row("gap", ""))
    else:
        weights = result.weights if np.isfinite(result.estimate) else np.full(result.k, np.nan)
        rows.extend(_study_rows(result, study_data, _positions(result), weights, study_ci))
        rows.append(_Row("gap", ""))
    if overall:
        rows.extend(_summary_rows(result, _model_label(result), True, 100.0))
        rows.append(_Row("het", _het_text(result)))
    if sensitivity:
        rows.append(_Row("gap", ""))
        rows.append(_Row("group", f"Sensitivity to the assumed {sens_role} (declared in the spec)"))
        for value, res in sensitivity:
            est, lo, hi, _, _ = _pooled(res)
            rows.append(_Row("summary", f"{sens_role} = {value:g}", est, lo, hi, result=res))
    return rows


def forest(result: Any, ax=None, *, title: str | None = None, xlabel: str | None = None,
           xlim: tuple[float, float] | None = None, study_data: dict[str, Any] | None = None,
           subgroups=None, subgroup_test=None, footnote: str | None = None,
           study_ci: str = "model", note: str | None = None):
    """Draw a forest plot on ``ax`` and return ``ax``.

    ``result`` is a :class:`~metamsc.results.MetaResult` or a spec
    :class:`~metamsc.spec.Analysis` (whose subgroups, raw counts and title are
    then used). ``xlim`` is on the plotted scale (proportions in 0-1). ``study_ci``
    is "model" (Wald on the analysis scale, as metafor) or, for proportions, a
    single-proportion method of :func:`metamsc.proportions.proportion_ci` ("CP",
    "WS", ...) to show each study's observed x/n with that interval (as meta).
    """
    import matplotlib.pyplot as plt
    from matplotlib import transforms as mtransforms
    from matplotlib.patches import Polygon, Rectangle

    overall, sensitivity, sens_role = True, (), ""
    if not isinstance(result, MetaResult):  # an Analysis from a spec
        an = result
        result = an.result
        overall = an.spec.overall
        sensitivity = an.sensitivity
        sens_role = an.spec.sensitivity[0] if an.spec.sensitivity else ""
        study_ci = an.spec.study_ci
        note = note if note is not None else (an.spec.note or None)
        study_data = study_data or an.study_data
        subgroups = subgroups if subgroups is not None else an.subgroups
        subgroup_test = subgroup_test if subgroup_test is not None else an.subgroup_test
        title = title if title is not None else an.spec.title
        if footnote is None:
            footnote = _footnote(an.result, _scale(an.result.measure), study_ci) + _exact_note(an)
    elif subgroups is None and result.subgroups is not None:  # a result with its subgroups
        subgroups = list(result.subgroups.items())
        subgroup_test = subgroup_test if subgroup_test is not None else result.subgroup_test
    subgroups = list(subgroups or [])
    scale = _scale(result.measure)
    if study_ci != "model" and not (study_data and "total" in study_data
                                    and result.measure in _PROPORTION):
        raise ValueError("study_ci other than 'model' needs a proportion measure and its counts")
    rows = _layout(result, subgroups, study_data, overall, sensitivity, sens_role, study_ci)
    if subgroup_test is not None:
        p = "< 0.001" if subgroup_test.pvalue < 0.001 else f"= {subgroup_test.pvalue:.3f}"
        rows.append(_Row("het", f"Test for subgroup differences: Q({subgroup_test.df}) = "
                                f"{subgroup_test.q:.2f}, p {p}"))
    n_rows = len(rows)

    has_data = any(r.data for r in rows)
    col_label_w = max(len(r.label) for r in rows if r.kind in ("study", "group", "summary", "pi", "bound"))
    col_label_w = max(col_label_w, 5) * _FONT * 0.56
    col_data_w = (max(len(r.data) for r in rows) + 2) * _FONT * 0.6 if has_data else 0
    col_w_w = 7 * _FONT * 0.6
    ci_header = {"percent": "Proportion, % [95% CI]", "log": "Ratio [95% CI]",
                 "linear": "Estimate [95% CI]"}[scale]
    ci_header = ci_header.replace("95%", f"{100 * result.level:g}%")
    col_ci_w = max(len(ci_header), 22) * _FONT * 0.64 + 10
    plot_w = 200.0
    left_pt = col_label_w + col_data_w + 12
    right_pt = col_w_w + col_ci_w + 12

    if footnote is None:
        footnote = _footnote(result, scale, study_ci)
    if note:
        footnote = f"{note} {footnote}" if footnote else note
    if footnote:
        import textwrap

        width_chars = int((left_pt + plot_w + right_pt) / ((_FONT - 1.5) * 0.5))
        footnote = "\n".join(textwrap.wrap(footnote, width_chars))
    n_foot = footnote.count("\n") + 1 if footnote else 0
    own_fig = ax is None
    if own_fig:
        bottom = 56 + 10 * n_foot
        height_pt = (n_rows + 2.6) * _ROW_PT + (24 if title else 0) + bottom
        width_pt = left_pt + plot_w + right_pt + 16
        fig = plt.figure(figsize=(width_pt / 72, height_pt / 72))
        ax = fig.add_axes((
            (left_pt + 8) / width_pt, bottom / height_pt,
            plot_w / width_pt, (n_rows + 1.2) * _ROW_PT / height_pt))
    fig = ax.figure

    ys = {i: n_rows - i for i in range(n_rows)}  # first row on top
    ax.set_ylim(0.2, n_rows + 0.9)
    blend = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)

    def text_at(x_axes, dx_pt, y, s, ha="left", bold=False, size=_FONT, style="normal"):
        tr = mtransforms.offset_copy(blend, fig=fig, x=dx_pt, y=0, units="points")
        ax.text(x_axes, y, s, transform=tr, ha=ha, va="center", fontsize=size,
                fontweight="bold" if bold else "normal", fontstyle=style, clip_on=False,
                parse_math=False)

    # plotted values: proportions in percent
    mult = 100.0 if scale == "percent" else 1.0
    finite = [v for r in rows if r.kind in ("study", "summary", "pi")
              for v in (r.lo, r.hi) if np.isfinite(v)]
    if xlim is None:
        if scale == "percent":
            xlim = (0.0, 1.0)
        elif finite:
            lo_, hi_ = min(finite), max(finite)
            pad = 0.05 * (hi_ - lo_ or 1)
            xlim = (lo_ - pad, hi_ + pad)
        else:
            xlim = (-1, 1)
    x0, x1 = xlim[0] * mult, xlim[1] * mult
    if scale == "log":
        ax.set_xscale("log")
    ax.set_xlim(x0, x1)

    max_w = max([r.weight for r in rows if r.kind == "study" and np.isfinite(r.weight)] or [1])
    header_y = n_rows + 0.9
    hdr = dict(bold=True)
    text_at(0, -left_pt, header_y - 0.35, "Study", **hdr)
    if has_data:
        text_at(0, -col_data_w - 6, header_y - 0.35, _data_header(study_data), **hdr)
    if any(np.isfinite(r.weight) for r in rows if r.kind in ("study", "summary")):
        text_at(1, 8 + col_w_w, header_y - 0.35, "Weight", ha="right", **hdr)
    text_at(1, right_pt, header_y - 0.35, ci_header, ha="right", **hdr)

    for i, r in enumerate(rows):
        y = ys[i]
        if r.kind == "gap":
            continue
        if r.kind == "group":
            text_at(0, -left_pt, y, r.label, bold=True)
            continue
        if r.kind == "het":
            text_at(0, -left_pt, y, r.label, size=_FONT - 1, style="italic")
            continue
        lo, hi, est = r.lo * mult, r.hi * mult, r.est * mult
        clip_lo, clip_hi = max(lo, x0), min(hi, x1)
        if r.kind == "study":
            text_at(0, -left_pt, y, r.label)
            if r.data:
                text_at(0, -col_data_w - 6, y, r.data)
            if np.isfinite(r.weight):
                text_at(1, 8 + col_w_w, y, f"{r.weight:.1f}%", ha="right")
            text_at(1, right_pt, y, _ci_text(r.est, r.lo, r.hi, scale), ha="right")
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([clip_lo, clip_hi], [y, y], color="black", lw=0.9, solid_capstyle="butt")
                if lo < x0:
                    ax.plot([x0], [y], marker="<", markersize=4, color="black")
                if hi > x1:
                    ax.plot([x1], [y], marker=">", markersize=4, color="black")
            if np.isfinite(est) and x0 <= est <= x1:
                rel = r.weight / max_w if np.isfinite(r.weight) else 0.3
                ax.plot([est], [y], marker="s", markersize=4 + 6 * np.sqrt(rel),
                        color="0.25", markeredgecolor="black", markeredgewidth=0.5, zorder=3,
                        clip_on=False)
        elif r.kind == "summary":
            text_at(0, -left_pt, y, r.label, bold=r.bold)
            if np.isfinite(r.weight):
                text_at(1, 8 + col_w_w, y, f"{r.weight:.1f}%", ha="right", bold=r.bold)
            text_at(1, right_pt, y, _ci_text(r.est, r.lo, r.hi, scale), ha="right", bold=r.bold)
            if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(est)):
                continue
            h = 0.32
            poly = Polygon([(lo, y), (est, y + h), (hi, y), (est, y - h)], closed=True,
                           facecolor="0.35" if r.bold else "0.65", edgecolor="black", lw=0.7, zorder=3)
            ax.add_patch(poly)
        elif r.kind == "bound":
            text_at(0, -left_pt, y, r.label, bold=r.bold)
            upper = r.lo <= 0 and r.hi < 1
            val = r.hi if upper else r.lo
            text_at(1, right_pt, y, ("\u2264 " if upper else "\u2265 ") + _fmt_value(val, scale),
                    ha="right", bold=r.bold)
            ax.add_patch(Rectangle((clip_lo, y - 0.2), clip_hi - clip_lo, 0.4, facecolor="0.8",
                                   edgecolor="black", lw=0.6, hatch="////", zorder=2))
        elif r.kind == "pi":
            if not (np.isfinite(lo) and np.isfinite(hi)):
                continue
            text_at(0, -left_pt + 10, y, r.label, size=_FONT - 0.5)
            text_at(1, right_pt, y, f"[{_fmt_value(r.lo, scale)}, {_fmt_value(r.hi, scale)}]",
                    ha="right", size=_FONT - 0.5)
            ax.add_patch(Rectangle((clip_lo, y - 0.12), clip_hi - clip_lo, 0.24, facecolor="0.85",
                                   edgecolor="black", lw=0.6, zorder=2))

    # reference line at the pooled estimate
    est0 = _pooled(result)[0] * mult
    if overall and np.isfinite(est0):
        ax.axvline(est0, color="0.4", lw=0.6, ls=(0, (3, 3)), zorder=1)
    if scale == "log":
        ax.axvline(1.0, color="black", lw=0.6, zorder=1)

    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=_FONT - 0.5, length=3)
    if scale == "percent":
        ax.set_xticks(np.linspace(x0, x1, 6))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f}%")
    if scale == "log":
        from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

        nice = [v for v in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
                if x0 <= v <= x1]
        ax.xaxis.set_major_locator(FixedLocator(nice))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    if xlabel is None:
        xlabel = _XLABEL.get(result.measure) or {"percent": "Proportion (%)", "log": "Ratio (log scale)",
                                                  "linear": "Estimate"}[scale]
    ax.set_xlabel(xlabel, fontsize=_FONT)
    if title:
        ax.set_title(title, loc="left", fontsize=_FONT + 2, fontweight="bold",
                     x=-(left_pt) / (ax.get_position().width * fig.get_figwidth() * 72), pad=18, parse_math=False)
    if footnote:
        ax.annotate(footnote, xy=(0, 0), xycoords="axes fraction", xytext=(-left_pt, -46),
                    textcoords="offset points", ha="left", va="top", fontsize=_FONT - 1.5,
                    fontstyle="italic", annotation_clip=False, parse_math=False)
    return ax
