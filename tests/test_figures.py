"""The automatic figure check: every figure the package draws, over a grid of measures, sizes and
layouts, is looked at through the renderer: no text outside the canvas, no two texts
overlapping, no warning, the printed numbers are the result's, diamonds span the CIs, squares
sit at the estimates, and the height follows the rows. Plus one test per known defect."""

from __future__ import annotations

import dataclasses
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

import metamsc as mm  # noqa: E402
from metamsc.plots import figure_context, funnel, save_figure  # noqa: E402
from metamsc.plots.forest import forest  # noqa: E402
from metamsc.spec import run_spec  # noqa: E402

from bcg_data import bcg_tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# the checker
# ---------------------------------------------------------------------------------------------

def _texts(fig):
    """Every drawn, non-empty text of the figure (tick labels only for ticks in view)."""
    out = []
    for ax in fig.axes:
        x0, x1 = sorted(ax.get_xlim())
        for t in ax.get_xticklabels():
            if t.get_text() and x0 - 1e-9 <= t.get_position()[0] <= x1 + 1e-9:
                out.append(t)
        for t in [ax.xaxis.label, ax.yaxis.label, ax.title] + list(ax.texts):
            if t.get_visible() and t.get_text().strip():
                out.append(t)
        leg = ax.get_legend()
        if leg is not None:
            out.extend(t for t in leg.get_texts() if t.get_text())
    return out


def check_figure(fig, *, overlap_ok=()):
    """No text outside the canvas, no two texts overlapping; returns the texts. Checked at
    72 dpi, where a raster's hinted text is widest (SVG and PDF lay text out at 72 dpi)."""
    fig.set_dpi(72)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.draw_without_rendering()
    r = fig.canvas.get_renderer()
    texts = _texts(fig)
    boxes = np.array([t.get_window_extent(r).extents for t in texts])  # x0 y0 x1 y1
    w, h = fig.bbox.width, fig.bbox.height
    tol = 0.5
    outside = [t.get_text()[:60] for t, b in zip(texts, boxes)
               if b[0] < -tol or b[1] < -tol or b[2] > w + tol or b[3] > h + tol]
    assert not outside, f"text outside the canvas: {outside}"
    ox = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    oy = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    hit = (ox > tol) & (oy > tol)
    np.fill_diagonal(hit, False)
    pairs = [(texts[i].get_text()[:40], texts[j].get_text()[:40]) for i, j in zip(*np.nonzero(hit))
             if i < j and not {texts[i].get_gid(), texts[j].get_gid()} & set(overlap_ok)]
    assert not pairs, f"overlapping texts: {pairs[:5]}"
    return texts


def _mult(res):
    return 100.0 if res.measure in ("PR", "PLN", "PLO", "PAS", "PFT") else 1.0


def _scale(res):
    return "percent" if _mult(res) == 100 else "log" if res.measure in (
        "RR", "OR", "IRLN", "MNLN") else "linear"


def check_forest(ax, res, *, studies=True):
    """The general checks plus a forest's own: numbers, diamond, squares, row height."""
    from metamsc.plots.draw import ROW_PT
    from metamsc.plots.forest import ci_text

    fig = ax.figure
    texts = check_figure(fig)
    # height follows the rows: a fixed height per row, whatever k
    h_pt = ax.get_position().height * fig.get_figheight() * 72
    assert h_pt == pytest.approx((ax.get_ylim()[1] - ax.get_ylim()[0]) * ROW_PT, rel=1e-9)
    x0, x1 = ax.get_xlim()
    values = [t.get_text() for t in texts if (t.get_gid() or "").startswith("value")]
    study_values = [t.get_text() for t in texts if t.get_gid() == "value-study"]
    if studies:
        nat = res.study_natural()
        est, lo, hi = nat if nat is not None else (res.yi, *res.study_intervals())
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        want = [ci_text(e, a, b, _scale(res), res.measure)[0] for e, a, b in zip(est, lo, hi)]
        assert study_values == want
        squares = sorted(x for ln in ax.lines if ln.get_gid() == "square" for x in ln.get_xdata())
        shown = sorted(e * _mult(res) for e in est if x0 <= e * _mult(res) <= x1)
        np.testing.assert_allclose(squares, shown, rtol=1e-12)
    n = res.natural
    pe, pl, ph = (n.estimate, n.ci_lb, n.ci_ub) if n is not None else (res.estimate, res.ci_lb, res.ci_ub)
    gids = [p.get_gid() for p in ax.patches]
    if res.k < 3:  # a prediction interval needs k >= 3
        assert "pi" not in gids
    if res.k == 1:  # one study: its row is the result, no model row, no weights
        assert "diamond" not in gids and not [t for t in texts if t.get_gid() == "weight"]
    elif np.isfinite(pe):
        assert ci_text(pe, pl, ph, _scale(res), res.measure)[0] in values
        diamonds = [p for p in ax.patches if isinstance(p, Polygon) and p.get_gid() == "diamond"]
        spans = [(p.get_xy()[:, 0].min(), p.get_xy()[:, 0].max()) for p in diamonds]
        assert any(np.allclose(s, (pl * _mult(res), ph * _mult(res)), rtol=1e-12) for s in spans)
    return texts


# ---------------------------------------------------------------------------------------------
# the grid
# ---------------------------------------------------------------------------------------------

def _data(measure: str, k: int, rng) -> dict:
    n = rng.integers(5, 200, k).astype(float)
    if measure in ("PR", "PLO", "PFT"):
        x = np.minimum(n, rng.binomial(n.astype(int), 0.3)).astype(float)
        x[0] = 0.0
        if k > 1:
            x[1] = n[1]  # zero and full counts
        return {"events": x, "total": n}
    if measure in ("IR", "IRLN"):
        return {"events": rng.poisson(5, k).astype(float) + (np.arange(k) > 0), "time": n * 10}
    if measure in ("RR", "OR", "RD"):
        n2 = rng.integers(5, 200, k).astype(float)
        e1 = rng.binomial(n.astype(int), 0.2).astype(float)
        e2 = rng.binomial(n2.astype(int), 0.3).astype(float)
        e1[0] = 0.0
        return {"events1": e1, "total1": n, "events2": e2, "total2": n2}
    if measure in ("MD", "SMD"):
        return {"mean1": rng.normal(10, 2, k), "sd1": rng.uniform(1, 4, k), "n1": n,
                "mean2": rng.normal(11, 2, k), "sd2": rng.uniform(1, 4, k), "n2": n + 3}
    if measure == "MN":
        return {"mean": rng.normal(50, 10, k), "sd": rng.uniform(5, 15, k), "n": n}
    if measure in ("MC", "SMCR"):
        d = {"n": n, "mean_pre": rng.normal(20, 3, k), "sd_pre": rng.uniform(2, 5, k),
             "mean_post": rng.normal(14, 3, k), "sd_post": rng.uniform(2, 5, k), "r": np.full(k, 0.5)}
        if measure == "SMCR":
            del d["sd_post"]
        return d
    raise AssertionError(measure)


MEASURES = ("PR", "PLO", "PFT", "IR", "IRLN", "RR", "OR", "RD", "MD", "SMD", "MN", "MC", "SMCR", "GEN")


def _fit(measure, k, rng, labels):
    if measure == "GEN":
        yi, vi = rng.normal(0.3, 0.5, k), rng.uniform(0.01, 0.5, k)
        if k > 2:
            vi[2] = 25.0  # a CI running far off the axis
        return mm.pool(yi, vi, labels=labels), None
    d = _data(measure, k, rng)
    es = mm.effect_size(measure, labels=labels, **d)
    return mm.pool_effects(es), {kk: tuple(v) for kk, v in d.items() if kk != "r"}


def _subgroups(res, k):
    """Three subgroups: the first k - 3, then two of one study each (positions kept)."""
    out = []
    for name, idx in (("first", np.arange(k - 2)), ("one study", np.array([k - 2])),
                      ("last", np.array([k - 1]))):
        sub = mm.pool(res.yi[idx], res.vi[idx], measure=res.measure, labels=[res.labels[i] for i in idx],
                      n=None if res.n is None else res.n[idx])
        out.append((name, dataclasses.replace(sub, kept=idx)))
    return out


@pytest.mark.parametrize("measure", MEASURES)
def test_figure_grid(measure):
    """Every measure family at k = 1, 2, 5, 60, with and without subgroups, long labels."""
    rng = np.random.default_rng(sum(map(ord, measure)))
    with figure_context():
        for k in (1, 2, 5, 60):
            labels = [f"Study {i + 1}" for i in range(k)]
            if k == 5:
                labels[3] = "A study with a rather long label, as some reviews have, et al. 2021"
            res, data = _fit(measure, k, rng, labels)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                ax = forest(res, study_data=data, title=f"{measure}, k = {k}")
            check_forest(ax, res)
            plt.close(ax.figure)
            if k == 5 or (k == 60 and MEASURES.index(measure) % 2 == 0):
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    ax = forest(res, study_data=data, subgroups=_subgroups(res, k),
                                title="Subgroups " * 30, summary={"test": True})
                check_forest(ax, res)
                plt.close(ax.figure)


@pytest.mark.parametrize("measure", ["PLO", "PFT", "IRLN", "MD", "GEN"])
def test_sensitivity_forest_grid(measure):
    """Leave-one-out and cumulative forests: the printed values and squares are each refit's."""
    from metamsc.plots import sensitivity_forest
    from metamsc.plots.forest import ci_text

    rng = np.random.default_rng(7)
    res, _ = _fit(measure, 6, rng, [f"Study {i + 1}" for i in range(6)])
    with figure_context():
        for table in (mm.leave_one_out(res), mm.cumulative(res)):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                ax = sensitivity_forest(table, result=res, axis={"direction": ("lower", "higher")})
            texts = check_figure(ax.figure)
            vals = [t.get_text() for t in texts if t.get_gid() == "value-study"]
            want = []
            for fit in table.fits:
                n = fit.natural
                e, a, b = (n.estimate, n.ci_lb, n.ci_ub) if n else (fit.estimate, fit.ci_lb, fit.ci_ub)
                want.append(ci_text(e, a, b, _scale(fit), fit.measure)[0])
            assert vals == want
            plt.close(ax.figure)


def test_figure_grid_exact_bounds_and_glmm_subgroups():
    """A GLMM with a subgroup of one study and a subgroup with only an exact bound."""
    from metamsc.glmm import fit_glmm

    x, n = [3, 5, 2, 4, 0, 0, 0], [10, 12, 9, 11, 8, 6, 7]
    labels = [f"S{i}" for i in range(7)]
    res = fit_glmm(x, n, measure="PLO", labels=labels)
    subs = []
    for name, idx in (("trials", [0, 1, 2]), ("single", [3]), ("zeros", [4, 5, 6])):
        sub = fit_glmm([x[i] for i in idx], [n[i] for i in idx], measure="PLO",
                       labels=[labels[i] for i in idx])
        subs.append((name, dataclasses.replace(sub, kept=np.array(idx))))
    with figure_context():
        ax = forest(res, study_data={"events": x, "total": n}, subgroups=subs, study_ci="CP")
        texts = check_figure(ax.figure)
        labels_drawn = [t.get_text() for t in texts if t.get_gid() == "label"]
        assert labels_drawn.count("Exact one-sided bound (no model identifiable)") == 1
        assert [p for p in ax.patches if p.get_gid() == "bound"]
        plt.close(ax.figure)


def test_options_columns_sort_common_test_axis_direction():
    from metamsc.plots import sensitivity_forest
    from metamsc.plots.forest import ci_text

    es = mm.effect_size("RR", events1=[4, 6, 3, 5], total1=[123, 306, 231, 2498],
                        events2=[11, 29, 11, 3], total2=[139, 303, 220, 2341], labels=list("abcd"))
    res = mm.pool_effects(es)
    years = [1960, 1948, 1977, 1950]
    with figure_context():
        ax = forest(res, columns={"left": {"Year": years}, "right": {"Dose": ["1", "2", "3", "4"]}},
                    order=years, summary={"common": True, "test": True},
                    axis={"xlim": (0.05, 5), "ref": 1, "direction": ("Favours A", "Favours B")})
        texts = check_figure(ax.figure)
        s = [t.get_text() for t in texts]
        labels = [t.get_text() for t in texts if t.get_gid() == "label"]
        assert labels[:4] == ["b", "d", "a", "c"]  # sorted by year
        assert "Common-effect model" in labels and any(x.startswith("Test for overall effect: z = ")
                                                       for x in labels)
        common = mm.pool(res.yi, res.vi, method="EE", measure="RR")
        assert ci_text(common.natural.estimate, common.natural.ci_lb, common.natural.ci_ub,
                       "log", "RR")[0] in s
        assert f"{res.statistic:.2f}" in " ".join(labels)
        assert {"Favours A", "Favours B", "Year", "Dose", "1948"} <= set(s)
        assert ax.get_xlim() == pytest.approx((0.05, 5))
        assert [ln for ln in ax.lines if ln.get_gid() == "ref-line"][0].get_xdata()[0] == 1
        plt.close(ax.figure)
        with pytest.raises(ValueError, match="summary: unknown option 'comon'"):
            forest(res, summary={"comon": True})
        with pytest.raises(ValueError, match="order"):
            forest(res, order="year")
        with pytest.raises(ValueError, match="xlim"):
            forest(res, axis={"xlim": (-1, 5)})
        for order in ("estimate", "weight"):
            ax = forest(res, order=order)
            labels = [t.get_text() for t in ax.texts if t.get_gid() == "label"]
            key = res.yi if order == "estimate" else -res.weights
            assert labels[:4] == [res.labels[i] for i in np.argsort(key, kind="stable")]
            plt.close(ax.figure)


def test_sensitivity_forests_and_contour_funnel():
    from metamsc.plots import sensitivity_forest
    from metamsc.plots.forest import ci_text

    es = mm.effect_size("RR", events1=[4, 6, 3, 5, 29], total1=[123, 306, 231, 2498, 7499],
                        events2=[11, 29, 11, 3, 45], total2=[139, 303, 220, 2341, 7277],
                        labels=list("abcde"))
    res = mm.pool_effects(es)
    with figure_context():
        loo = mm.leave_one_out(res)
        ax = loo.plot_forest(result=res)
        texts = check_figure(ax.figure)
        vals = [t.get_text() for t in texts if t.get_gid() == "value-study"]
        for i, fit in enumerate(loo.fits):
            assert vals[i] == ci_text(fit.natural.estimate, fit.natural.ci_lb, fit.natural.ci_ub,
                                      "log", "RR")[0]
        squares = [ln.get_xdata()[0] for ln in ax.lines if ln.get_gid() == "square"]
        np.testing.assert_allclose(squares, np.exp(loo.estimate), rtol=1e-12)
        plt.close(ax.figure)
        cum = mm.cumulative(res, order=[5, 4, 3, 2, 1])
        ax = sensitivity_forest(cum)
        check_figure(ax.figure)
        labels = [t.get_text() for t in ax.texts if t.get_gid() == "label"]
        assert labels[:5] == ["+ e", "+ d", "+ c", "+ b", "+ a"]
        plt.close(ax.figure)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        assert sensitivity_forest(loo, ax=axes[0]) is axes[0]
        eg = mm.egger_test(res)
        ax = funnel(res, ax=axes[1], contours=(0.9, 0.95, 0.99), egger=eg, trimfill=True)
        assert ax is axes[1]
        gids = {p.get_gid() for p in ax.patches}
        assert {"contour-0.9", "contour-0.95", "contour-0.99"} <= gids
        line = [ln for ln in ax.lines if ln.get_gid() == "egger"][0]
        assert line.get_xdata()[0] == pytest.approx(eg.limit_estimate)
        top = line.get_ydata()[1]
        assert line.get_xdata()[1] == pytest.approx(eg.limit_estimate + eg.slope * top)
        plt.close(fig)
        with pytest.raises(ValueError, match="contours"):
            funnel(res, contours=(95,))


# ---------------------------------------------------------------------------------------------
# the defects of issue 10, one test each
# ---------------------------------------------------------------------------------------------

def test_rr_with_wide_cis_has_a_positive_log_axis_squares_and_diamond():
    res = mm.pool_effects(mm.effect_size("RR", events1=[4, 6, 3, 5], total1=[123, 306, 231, 2498],
                                         events2=[11, 29, 11, 3], total2=[139, 303, 220, 2341],
                                         labels=list("abcd")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = res.plot_forest()
    assert ax.get_xlim()[0] > 0
    check_forest(ax, res)
    assert len([ln for ln in ax.lines if ln.get_gid() == "square"]) == 4
    plt.close(ax.figure)


@pytest.mark.parametrize("name", ["psoriasis-safety", "ssc-safety", "psoriasis-pasi40",
                                  "psoriasis-pasi75", "ssc-mrss", "cheng2022-sex", "evidence-map"])
def test_the_reviews_figures_pass_the_check(name):
    an = run_spec(ROOT / "analyses" / f"{name}.toml")
    with figure_context():
        ax = an.plot_evidence_map() if name == "evidence-map" else an.plot_forest()
        check_figure(ax.figure)  # e.g. psoriasis-safety: the footnote was cut at the right edge
        plt.close(ax.figure)


def test_ssc_safety_shows_every_exact_bound_and_no_model_claim():
    an = run_spec(ROOT / "analyses" / "ssc-safety.toml")
    with figure_context():
        ax = an.plot_forest()
        texts = check_figure(ax.figure)
    labels = [t.get_text() for t in texts if t.get_gid() == "label"]
    # the serious adverse events (0/12, Granel 2015) have only an exact bound: it has its row
    assert labels.count("Exact one-sided bound (no model identifiable)") == 1
    values = [t.get_text() for t in texts if t.get_gid() == "value"]
    assert "\u2264 22.1" in values
    foot = [t.get_text() for t in texts if t.get_gid() == "footnote"][0].replace("\n", " ")
    # a model is claimed only where one was fitted: here the treatment-related subgroup (k = 5)
    fitted = [r for _, r in an.subgroups if np.isfinite(r.estimate)]
    assert ("from the PLO model" in foot) == bool(fitted) and "Clopper-Pearson upper bound" in foot
    plt.close(ax.figure)


def test_pooled_line_stays_below_the_header():
    x, n = [0, 1, 0, 2, 0], [20, 25, 18, 30, 22]
    res = mm.pool_effects(mm.effect_size("PR", events=x, total=n, labels=list("abcde")))
    with figure_context():
        ax = forest(res, study_data={"events": x, "total": n})
        texts = check_figure(ax.figure)
        r = ax.figure.canvas.get_renderer()
        header_bottom = min(t.get_window_extent(r).y0 for t in texts if t.get_gid() == "header")
        line = [ln for ln in ax.lines if ln.get_gid() == "pooled-line"][0]
        top = ax.transData.transform((line.get_xdata()[0], max(line.get_ydata())))[1]
        assert top < header_bottom
        # PR: Wald limits below 0 are truncated and the footnote says so
        values = [t.get_text() for t in texts if (t.get_gid() or "").startswith("value")]
        assert not any("-" in v for v in values)
        assert any(v.endswith("\u2021") for v in values)
        foot = [t.get_text() for t in texts if t.get_gid() == "footnote"][0]
        assert "truncated" in foot.replace("\n", " ")
        plt.close(ax.figure)


def test_plots_forest_is_the_function_after_a_plot():
    import importlib

    import metamsc.plots.forest  # noqa: F401  (what a plot does internally)

    plots = importlib.import_module("metamsc.plots")
    from metamsc.plots import forest as f

    assert callable(f) and not isinstance(f, types.ModuleType)
    assert plots.funnel.__module__ == "metamsc.plots.funnel"


def test_evidence_map_from_a_csv_without_year_or_design(tmp_path):
    (tmp_path / "d.csv").write_text("name,indication,n_enrolled\nAlpha 2020,psoriasis,12\n"
                                    "Beta,psoriasis,30\nGamma,scleroderma,\n")
    (tmp_path / "m.toml").write_text('kind = "evidence-map"\ntitle = "Map"\ndata = "d.csv"\n')
    an = run_spec(tmp_path / "m.toml")

    with figure_context():
        ax = an.plot_evidence_map()
        texts = check_figure(ax.figure)
        s = [t.get_text() for t in texts]
        assert {"Alpha 2020", "Beta", "Gamma"} <= set(s)
        r = ax.figure.canvas.get_renderer()
        leg = ax.get_legend().get_window_extent(r)
        lab = ax.xaxis.label.get_window_extent(r)
        assert leg.y1 < lab.y0
        plt.close(ax.figure)


def test_absurd_title_is_refused_and_a_long_one_wrapped():
    res = mm.pool([0.1, 0.3], [0.04, 0.05])
    with pytest.raises(ValueError, match="title is 1000000 characters long"):
        res.plot_forest(title="x" * 1_000_000)
    from metamsc.plots import evidence_map_plot

    with pytest.raises(ValueError, match="title is"):
        evidence_map_plot([{"citation": "a"}], title="x" * 10_000)
    with figure_context():
        ax = res.plot_forest(title="word " * 50 + "x" * 140)
        texts = check_figure(ax.figure)
        title = [t for t in texts if t.get_gid() == "title"][0]
        assert title.get_text().count("\n") >= 2
        plt.close(ax.figure)


def test_model_label_has_no_nested_parentheses():
    res = mm.pool([0.1, 0.3, 0.2], [0.04, 0.05, 0.03], test="adhoc")
    ax = res.plot_forest()
    labels = [t.get_text() for t in ax.texts if t.get_gid() == "label"]
    assert "Random-effects model (REML, ad hoc Hartung-Knapp)" in labels
    plt.close(ax.figure)


# ---------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------

def test_svg_pdf_png_are_byte_reproducible(tmp_path):
    res = mm.pool([0.1, 0.3, 0.2], [0.04, 0.05, 0.03])
    out = {}
    for run in (1, 2):
        with figure_context():
            ax = res.plot_forest(title="t")
            for ext in ("svg", "pdf", "png"):
                p = save_figure(ax.figure, tmp_path / f"{run}.{ext}", dpi=120)
                out[(run, ext)] = p.read_bytes()
            plt.close(ax.figure)
    for ext in ("svg", "pdf", "png"):
        assert out[(1, ext)] == out[(2, ext)]
    assert out[(1, "png")][:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Software" not in out[(1, "png")] and b"CreationDate" not in out[(1, "pdf")]
    from PIL import Image

    assert Image.open(tmp_path / "1.png").info.get("dpi", (0,))[0] == pytest.approx(120, abs=1)
    with pytest.raises(ValueError, match="dpi"):
        save_figure(ax.figure, tmp_path / "x.png", dpi=0)
    with pytest.raises(ValueError, match="format"):
        save_figure(ax.figure, tmp_path / "x.jpg")


def test_spec_forest_options_and_extra_plots(tmp_path):
    from metamsc.cli import main
    from metamsc.spec import SpecError, load_spec

    (tmp_path / "d.csv").write_text(
        "study,events1,total1,events2,total2,year,source\n"
        "A,4,123,11,139,1948,adipose\nB,6,306,29,303,1949,cord\nC,3,231,11,220,1960,marrow\n"
        "D,62,13598,248,12867,1977,cord\n")
    (tmp_path / "s.toml").write_text(
        'title = "t"\ndata = "d.csv"\nmeasure = "RR"\nfigure = ["f.png", "f.svg"]\ndpi = 72\n'
        '[forest]\nleft = {Source = "source"}\nsort = "year"\ncommon = true\ntest = true\n'
        'direction = ["Favours A", "Favours B"]\n'
        '[plots]\nleave_one_out = "loo.svg"\ncumulative = ["cum.pdf"]\nfunnel = "funnel.png"\n')
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path)]) == 0
    for f in ("f.png", "f.svg", "loo.svg", "cum.pdf", "funnel.png"):
        assert (tmp_path / f).stat().st_size > 1000
    an = run_spec(tmp_path / "s.toml")
    from metamsc.project.figures import spec_figures

    with figure_context():
        figs = spec_figures(an)
        assert len(figs) == 4
        for ax, _ in figs:
            check_figure(ax.figure)
        labels = [t.get_text() for t in figs[0][0].texts if t.get_gid() == "label"]
        assert labels[:4] == ["A", "B", "C", "D"] and "Common-effect model" in labels
        cells = [t.get_text() for t in figs[0][0].texts if t.get_gid() == "cell"]
        assert cells[:8] == ["4/123 vs 11/139", "adipose", "6/306 vs 29/303", "cord",
                             "3/231 vs 11/220", "marrow", "62/13598 vs 248/12867", "cord"]
        plt.close("all")
    bad = tmp_path / "b.toml"
    bad.write_text('title = "t"\ndata = "d.csv"\nmeasure = "RR"\n[forest]\nsrot = "year"\n')
    with pytest.raises(SpecError, match="forest.srot: unknown option"):
        load_spec(bad)
    bad.write_text('title = "t"\ndata = "d.csv"\nmeasure = "RR"\n[plots]\nfunel = "x.svg"\n')
    with pytest.raises(SpecError, match="did you mean 'funnel'"):
        load_spec(bad)
    bad.write_text('title = "t"\ndata = "d.csv"\nmeasure = "RR"\nfigure = "x.svg"\n'
                   '[forest]\nleft = {S = "nosuch"}\n')
    with pytest.raises(SpecError, match="no column 'nosuch'"):
        spec_figures(run_spec(bad))


# ---------------------------------------------------------------------------------------------
# the data curator's requests: what is drawn only where a model pools studies
# ---------------------------------------------------------------------------------------------

def _row_span(ax, texts, label_start: str):
    """The y range (data units) of the subgroup whose label starts with ``label_start``: from its
    label row down to the next group label (or the bottom)."""
    groups = sorted(((t.get_position()[1], t.get_text()) for t in texts
                     if t.get_gid() == "label" and t.get_fontweight() in ("bold", 700)),
                    reverse=True)
    ys = [y for y, s in groups]
    i = [j for j, (_, s) in enumerate(groups) if s.startswith(label_start)]
    assert len(i) == 1, groups
    top = ys[i[0]]
    bottom = ys[i[0] + 1] if i[0] + 1 < len(ys) else ax.get_ylim()[0]
    return bottom, top


def _patch_ys(ax, gid):
    out = []
    for p in ax.patches:
        if p.get_gid() == gid:
            xy = p.get_xy() if isinstance(p, Polygon) else [(p.get_x(), p.get_y() + p.get_height() / 2)]
            out.append(float(np.mean(np.asarray(xy)[:, 1])))
    return out


def test_descriptive_subgroup_has_its_studies_but_no_subtotal_or_pi():
    yi = np.array([0.1, 0.3, 0.2, 0.5, 0.9, 0.7, 0.6])
    vi = np.array([0.04, 0.05, 0.03, 0.06, 0.05, 0.04, 0.07])
    res = mm.pool(yi, vi, labels=[f"S{i}" for i in range(7)])
    groups = ["trial"] * 3 + ["case report"] * 4
    sa = mm.subgroup_analysis(res, groups, descriptive=["case report"])
    with figure_context():
        ax = forest(res, subgroups=list(sa.subgroups.items()), descriptive=["case report"])
        texts = check_figure(ax.figure)
        labels = [t.get_text() for t in texts if t.get_gid() == "label"]
        assert "case report (k = 4; descriptive: not pooled)" in labels
        assert labels.count("Subtotal (random-effects model)") == 1  # the trials' only
        lo, hi = _row_span(ax, texts, "case report")
        squares = [ln.get_ydata()[0] for ln in ax.lines if ln.get_gid() == "square"]
        assert sum(lo < y < hi for y in squares) == 4  # the studies are drawn
        for gid in ("diamond", "pi"):
            assert not [y for y in _patch_ys(ax, gid) if lo < y < hi]
        # the trials keep their subtotal and prediction interval
        tlo, thi = _row_span(ax, texts, "trial")
        assert [y for y in _patch_ys(ax, "diamond") if tlo < y < thi]
        assert [y for y in _patch_ys(ax, "pi") if tlo < y < thi]
        plt.close(ax.figure)
        with pytest.raises(ValueError, match="descriptive: 'case reports' is not a subgroup level"):
            forest(res, subgroups=list(sa.subgroups.items()), descriptive=["case reports"])


@pytest.mark.parametrize("name", ["psoriasis-pasi40", "psoriasis-pasi50", "psoriasis-pasi75"])
def test_the_reviews_case_reports_are_shown_not_pooled(name):
    an = run_spec(ROOT / "analyses" / f"{name}.toml")
    with figure_context():
        ax = an.plot_forest()
        texts = check_figure(ax.figure)
        labels = [t.get_text() for t in texts if t.get_gid() == "label"]
        case = [s for s in labels if s.startswith("case report")]
        assert len(case) == 1 and case[0].endswith("descriptive: not pooled)")
        lo, hi = _row_span(ax, texts, "case report")
        squares = [ln.get_ydata()[0] for ln in ax.lines if ln.get_gid() == "square"]
        n_case = dict(an.subgroups)["case report"].k
        assert sum(lo < y < hi for y in squares) == n_case
        for gid in ("diamond", "pi"):
            assert not [y for y in _patch_ys(ax, gid) if lo < y < hi]
        # the trial is one study: its row is the result (no subtotal), and nothing is pooled
        assert not _patch_ys(ax, "diamond") and not _patch_ys(ax, "pi")
        assert not [t for t in texts if t.get_gid() == "weight" or t.get_text() == "Weight"]
        plt.close(ax.figure)


def test_one_study_is_its_own_result_without_a_model_row():
    res = mm.pool([0.4], [0.09], labels=["Only 2020"], method="EE")
    with figure_context():
        ax = forest(res)
        texts = check_forest(ax, res)
        labels = [t.get_text() for t in texts if t.get_gid() == "label"]
        assert not [s for s in labels if "model" in s.lower()]
        assert "One study: its row is the result (nothing pooled)" in labels
        assert [t.get_text() for t in texts if t.get_gid() == "value-study"] == ["0.40 [-0.19, 0.99]"]
        assert not [t for t in texts if t.get_gid() == "value"]  # no summary value
        assert not [ln for ln in ax.lines if ln.get_gid() == "pooled-line"]
        plt.close(ax.figure)
    for name in ("ssc-mrss", "ssc-safety-park-completers", "cheng2022-sex"):
        an = run_spec(ROOT / "analyses" / f"{name}.toml")
        with figure_context():
            ax = an.plot_forest()
            texts = check_figure(ax.figure)
            labels = [t.get_text() for t in texts if t.get_gid() == "label"]
            assert "Common-effect model" not in labels
            assert "One study: its row is the result (nothing pooled)" in labels
            assert not [t for t in texts if t.get_gid() == "weight" or t.get_text() == "Weight"]
            # ssc-mrss: the sensitivity rows (n = 7 ... 13) are the study refitted: study rows
            assert not _patch_ys(ax, "diamond")
            squares = [ln for ln in ax.lines if ln.get_gid() == "square"]
            assert len(squares) == 1 + len(an.sensitivity)
            # the one-study line stays left of the plot (no vertical line runs through it)
            r = ax.figure.canvas.get_renderer()
            one = [t for t in texts if t.get_text().startswith("One study")][0]
            assert one.get_window_extent(r).x1 < ax.get_window_extent(r).x0
            plt.close(ax.figure)


def test_no_prediction_interval_below_three_studies():
    with figure_context():
        for k in (2, 3):
            res = mm.pool([0.1, 0.6, 0.3][:k], [0.02, 0.03, 0.02][:k], method="REML")
            assert np.isfinite(res.pi_lb)
            ax = forest(res)
            texts = check_forest(ax, res)
            labels = [t.get_text() for t in texts if t.get_gid() == "label"]
            foot = " ".join(t.get_text() for t in texts if t.get_gid() == "footnote").replace("\n", " ")
            assert (len(_patch_ys(ax, "pi")) == 1) == (k == 3)
            assert ("Prediction interval" in labels) == (k == 3)
            assert ("No prediction interval with fewer than 3 studies." in foot) == (k == 2)
            plt.close(ax.figure)
    an = run_spec(ROOT / "analyses" / "psoriasis-pasi40-lowerbound.toml")
    assert an.result.k == 2
    with figure_context():
        ax = an.plot_forest()
        check_figure(ax.figure)
        assert not _patch_ys(ax, "pi") and len(_patch_ys(ax, "diamond")) == 1
        plt.close(ax.figure)


def test_weights_only_beside_a_drawn_overall_model():
    x, n = [3, 5, 2, 4], [10, 12, 9, 11]
    res = mm.pool_effects(mm.effect_size("PLO", events=x, total=n, labels=list("abcd")))
    with figure_context():
        for overall, want in ((True, True), (False, False)):
            sa = mm.subgroup_analysis(res, ["g"] * 4)
            ax = forest(res, study_data={"events": x, "total": n}) if overall else forest(
                res, study_data={"events": x, "total": n}, subgroups=list(sa.subgroups.items()),
                descriptive=["g"])
            texts = check_figure(ax.figure)
            weights = [t.get_text() for t in texts if t.get_gid() == "weight"]
            assert bool(weights) == want and ("Weight" in [t.get_text() for t in texts]) == want
            if want:
                assert weights[-1] == "100.0%"
            plt.close(ax.figure)


def test_evidence_map_marks_unverified_cell_sources():
    an = run_spec(ROOT / "analyses" / "evidence-map.toml")
    unverified = [r for r in an.rows if r.get("cell_source", "").endswith("(unverified)")]
    assert unverified  # the data have them (the review's 'hUCB' read as cord blood)
    with figure_context():
        ax = an.plot_evidence_map()
        texts = check_figure(ax.figure)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "cord blood (unverified)" in legend
        assert legend.index("cord blood (unverified)") == legend.index("cord blood") + 1
        marks = [c for c in ax.collections if c.get_gid() == "unverified"]
        assert len(marks) == len(unverified)
        # each "?" is on the row of an unverified study, right of its marker
        rows = {t.get_position()[1]: t.get_text() for t in texts if t.get_position()[0] == 0}
        names = sorted(rows[float(c.get_offsets()[0][1])] for c in marks)
        assert all(any(s.startswith(r["citation"] or r["registry_id"]) for r in unverified)
                   for s in names)
        plt.close(ax.figure)


def test_single_level_without_overall_keeps_its_subtotal(tmp_path):
    """overall = false and one (non-descriptive) level: its subtotal is the only model drawn."""
    (tmp_path / "d.csv").write_text("study,events,total,design\nA,3,10,trial\nB,5,12,trial\n"
                                    "C,2,9,trial\n")
    (tmp_path / "s.toml").write_text('title = "t"\ndata = "d.csv"\nmeasure = "PLO"\n'
                                     'subgroup = "design"\noverall = false\n')
    an = run_spec(tmp_path / "s.toml")
    with figure_context():
        ax = an.plot_forest()
        texts = check_figure(ax.figure)
        labels = [t.get_text() for t in texts if t.get_gid() == "label"]
        assert "trial (k = 3)" in labels and "Subtotal (random-effects model)" in labels
        assert len(_patch_ys(ax, "diamond")) == 1 and len(_patch_ys(ax, "pi")) == 1
        assert not [t for t in texts if t.get_gid() == "weight"]
        plt.close(ax.figure)


# ---------------------------------------------------------------------------------------------
# the other figure types in the check: bubble, Baujat, funnel, Bayesian forest, method panel
# ---------------------------------------------------------------------------------------------

def _no_warn(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*a, **kw)


def _gen(k, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, k)
    vi = rng.uniform(0.01, 0.3, k)
    yi = 0.2 + 0.05 * x + rng.normal(0, np.sqrt(vi + 0.02))
    grp = np.array(["alpha", "beta", "gamma"])[np.arange(k) % 3]
    return yi, vi, x, grp, [f"Study {i + 1}" for i in range(k)]


@pytest.mark.parametrize("k", [5, 60])
def test_bubble_continuous_and_categorical(k):
    yi, vi, x, grp, labels = _gen(k, k)
    with figure_context():
        for mods, name in (({"dose": x}, "dose"), ({"dose": x, "cell": grp}, "cellbeta")):
            reg = mm.meta_regression(yi, vi, mods, labels=labels)
            ax = _no_warn(reg.plot_bubble, name)
            check_figure(ax.figure)
            j = list(reg.names).index(name)
            xs = np.asarray(reg.X)[:, j]
            pts = [c for c in ax.collections if c.get_gid() == "studies"][0]
            np.testing.assert_allclose(pts.get_offsets(), np.c_[xs, yi], rtol=1e-12)
            w = 1 / (vi + reg.tau2)
            sizes = pts.get_sizes()
            assert np.all(np.diff(sizes[np.argsort(w)]) >= 0) and sizes.max() == pytest.approx(300)
            fit = [ln for ln in ax.lines if ln.get_gid() == "fit"][0]
            fx, fy = fit.get_xdata(), fit.get_ydata()
            assert (fx[0], fx[-1]) == (xs.min(), xs.max())
            for end in (0, -1):
                row = np.asarray(reg.X).mean(axis=0)
                row[j] = fx[end]
                want = reg.predict(row[None, :], intercept=False).pred[0]
                assert fy[end] == pytest.approx(want, rel=1e-12, abs=1e-12)
            plt.close(ax.figure)


@pytest.mark.parametrize("k", [5, 60])
def test_baujat_points_are_influences_coordinates(k):
    yi, vi, _, _, labels = _gen(k, 100 + k)
    res = mm.pool(yi, vi, labels=labels)
    inf = mm.influence(res)
    with figure_context():
        for lab in (True, False):
            ax = _no_warn(inf.plot_baujat, labels=lab)
            check_figure(ax.figure)
            pts = [c for c in ax.collections if c.get_gid() == "studies"][0]
            np.testing.assert_allclose(pts.get_offsets(), np.c_[inf.baujat_x, inf.baujat_y], rtol=1e-12)
            if lab:  # each label at its study's point; overlapping ones left as hollow points
                shown = {t.get_text(): t.get_position() for t in ax.texts if t.get_gid() == "label"}
                assert shown and (k > 5 or list(shown) == list(inf.labels))
                for i, name in enumerate(inf.labels):
                    if name in shown:
                        assert shown[name] == (inf.baujat_x[i], inf.baujat_y[i])
                rest = [c for c in ax.collections if c.get_gid() == "unlabelled"]
                n_rest = len(rest[0].get_offsets()) if rest else 0
                assert len(shown) + n_rest == k
            plt.close(ax.figure)


@pytest.mark.parametrize("k", [5, 60])
def test_funnel_contours_egger_trimfill(k):
    yi, vi, _, _, labels = _gen(k, 200 + k)
    yi = yi + 2 * np.sqrt(vi)  # asymmetric: trim and fill has something to fill
    res = mm.pool(yi, vi, labels=labels)
    with figure_context():
        for opts in ({}, {"contours": (0.9, 0.95, 0.99), "egger": True, "trimfill": True}):
            ax = _no_warn(funnel, res, title=f"k = {k}", **opts)
            if opts:
                ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
                ax.figure.set_size_inches(7.5, 4.2)
                ax.figure.subplots_adjust(left=0.1, right=0.68, bottom=0.13, top=0.9)
            check_figure(ax.figure)
            pts = [c for c in ax.collections if c.get_gid() == "studies"][0]
            np.testing.assert_allclose(pts.get_offsets(), np.c_[yi, np.sqrt(vi)], rtol=1e-12)
            x0, x1 = ax.get_xlim()
            assert x0 < yi.min() and yi.max() < x1
            plt.close(ax.figure)


@pytest.mark.parametrize("k", [1, 5, 60])
def test_bayes_forest(k):
    yi, vi, _, _, labels = _gen(k, 300 + k)
    labels[0] = "A study with a rather long label, et al. 2021"
    b = mm.bayes(yi, vi, labels=labels)
    with figure_context():
        ax = _no_warn(b.plot_forest)
        check_figure(ax.figure)
        est = [ln.get_xdata()[0] for ln in ax.lines if (ln.get_gid() or "").startswith("est:")]
        np.testing.assert_allclose(est, yi, rtol=1e-12)
        shr = [ln.get_xdata()[0] for ln in ax.lines if (ln.get_gid() or "").startswith("shrunk:")]
        np.testing.assert_allclose(shr, b.theta_median, rtol=1e-12)
        d = [p for p in ax.patches if p.get_gid() == "diamond"][0].get_xy()[:, 0]
        assert (d.min(), d.max()) == pytest.approx((b.mu_ci_lb, b.mu_ci_ub), rel=1e-12)
        plt.close(ax.figure)


def test_method_sensitivity_panel():
    rng = np.random.default_rng(5)
    total = rng.integers(10, 60, 6)
    events = rng.binomial(total, 0.4)
    ms = mm.method_sensitivity(events, total, labels=[f"S{i}" for i in range(6)])
    with figure_context():
        ax = _no_warn(ms.plot)
        check_figure(ax.figure)
        est = sorted(ln.get_xdata()[0] for ln in ax.lines if (ln.get_gid() or "").startswith("est:"))
        want = sorted(100 * r.natural_estimate for r in ms.rows if np.isfinite(r.natural_estimate))
        np.testing.assert_allclose(est, want, rtol=1e-12)
        plt.close(ax.figure)


@pytest.mark.parametrize("k", [5, 60])
def test_sensitivity_forests_at_k(k):
    from metamsc.plots import sensitivity_forest

    yi, vi, _, _, labels = _gen(k, 400 + k)
    res = mm.pool(yi, vi, labels=labels)
    with figure_context():
        for table in (mm.leave_one_out(res), mm.cumulative(res)):
            ax = _no_warn(sensitivity_forest, table, result=res)
            check_figure(ax.figure)
            sq = [ln.get_xdata()[0] for ln in ax.lines if ln.get_gid() == "square"]
            x0, x1 = ax.get_xlim()
            want = [e for e in table.estimate if x0 <= e <= x1]
            np.testing.assert_allclose(sq, want, rtol=1e-12)
            plt.close(ax.figure)


@pytest.mark.parametrize("k", [5, 60])
def test_influence_plot_panels_are_the_diagnostics(k):
    from metamsc.plots.influence import PANELS

    yi, vi, _, _, labels = _gen(k, 500 + k)
    yi[1] += 3.0  # an outlier, flagged
    res = mm.pool(yi, vi, labels=labels)
    inf = mm.influence(res)
    assert inf.influential.any()
    with figure_context():
        axes = _no_warn(inf.plot)
        fig = axes[0].figure
        check_figure(fig)
        assert [ax.get_title() for ax in axes] == [t for _, t in PANELS]
        for ax, (attr, _) in zip(axes, PANELS):
            vals = [ln for ln in ax.lines if ln.get_gid() == "values"][0]
            np.testing.assert_array_equal(vals.get_xdata(), np.arange(1, k + 1))
            np.testing.assert_allclose(vals.get_ydata(), getattr(inf, attr), rtol=1e-12)
            mk = [ln for ln in ax.lines if ln.get_gid() == "influential"][0]
            np.testing.assert_array_equal(mk.get_xdata(), np.flatnonzero(inf.influential) + 1)
        dff = [ln.get_ydata()[0] for ln in axes[1].lines if ln.get_gid() == "cutoff"]
        assert dff == pytest.approx([3 * np.sqrt(1 / (k - 1))], rel=1e-12)
        plt.close(fig)
        fig, grid = plt.subplots(2, 4)
        assert inf.plot(axes=grid)[0] is grid[0, 0]
        with pytest.raises(ValueError, match="axes"):
            inf.plot(axes=grid[0])
        plt.close(fig)


def test_spec_bubble_baujat_influence_plots_are_checked_and_byte_reproducible(tmp_path):
    from metamsc.cli import main
    from metamsc.project.figures import spec_figures
    from metamsc.spec import SpecError, load_spec

    (tmp_path / "d.csv").write_text(
        "study,events,total,dose,source\nA,4,23,1,adipose\nB,9,30,2,cord\nC,3,31,4,marrow\n"
        "D,12,40,8,cord\nE,7,25,3,adipose\nF,15,33,10,marrow\n")
    (tmp_path / "s.toml").write_text(
        'title = "Response by dose"\ndata = "d.csv"\nmeasure = "PLO"\nmoderators = ["dose"]\n'
        'dpi = 72\n[plots]\nbubble = ["b.svg", "b.png"]\nbaujat = "j.pdf"\ninfluence = "i.svg"\n')
    files = ("b.svg", "b.png", "j.pdf", "i.svg")
    digests = []
    for _ in range(2):  # the figures go beside the spec; run twice, same bytes
        assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path)]) == 0
        digests.append([(tmp_path / f).read_bytes() for f in files])
        for f in files:
            (tmp_path / f).unlink()
    assert all(len(b) > 1000 for b in digests[0]) and digests[0] == digests[1]
    an = run_spec(tmp_path / "s.toml")
    with figure_context():
        figs = spec_figures(an)
        assert len(figs) == 3
        for ax, _ in figs:
            check_figure(ax.figure)
        pts = [c for c in figs[0][0].collections if c.get_gid() == "studies"][0]
        np.testing.assert_allclose(pts.get_offsets()[:, 0], [1, 2, 4, 8, 3, 10])
        np.testing.assert_allclose(pts.get_offsets()[:, 1], an.result.yi, rtol=1e-12)
        plt.close("all")
    bad = tmp_path / "x.toml"
    bad.write_text('title = "t"\ndata = "d.csv"\nmeasure = "PLO"\n[plots]\nbubble = "b.svg"\n')
    with pytest.raises(SpecError, match="plots.bubble' needs 'moderators'"):
        load_spec(bad)


def test_forest_of_a_meta_regressions_subgroups():
    """The subgroups of a meta-regression on a categorical moderator (one common tau^2, as
    metafor rma(yi, vi, mods = ~ factor(g) - 1)): each subtotal diamond spans that level's
    coefficient CI from meta_regression, on the natural scale, and the figure passes the check."""
    # dat.bcg by allocation (metadat)
    alloc = ["random", "random", "random", "random", "alternate", "alternate", "random",
             "random", "systematic", "systematic", "systematic", "systematic", "systematic"]
    events1, total1, events2, total2 = bcg_tables()
    es = mm.effect_size("RR", events1=events1, total1=total1, events2=events2, total2=total2,
                        labels=[f"Study {i + 1}" for i in range(13)])
    res = mm.pool_effects(es, subgroup=alloc, tau2_common=True)
    levels = list(res.subgroups)
    dummies = np.array([[a == lv for lv in levels] for a in alloc], dtype=float)
    reg = mm.meta_regression(es.yi, es.vi, dummies, intercept=False)
    with figure_context():
        ax = _no_warn(res.plot_forest)
        texts = check_figure(ax.figure)
        # the studies are drawn grouped by level: the same printed values, in another order
        from metamsc.plots.forest import ci_text

        est, lo, hi = res.study_natural()
        want_rows = sorted(ci_text(e, a, b, _scale(res), res.measure)[0] for e, a, b in zip(est, lo, hi))
        assert sorted(t.get_text() for t in texts if t.get_gid() == "value-study") == want_rows
        spans = sorted((p.get_xy()[:, 0].min(), p.get_xy()[:, 0].max()) for p in ax.patches
                       if isinstance(p, Polygon) and p.get_gid() == "diamond")
        for j, lv in enumerate(levels):
            want = (np.exp(reg.ci_lb[j]), np.exp(reg.ci_ub[j]))
            assert any(np.allclose(s, want, rtol=1e-9) for s in spans), lv
        plt.close(ax.figure)
