"""metamsc.method_sensitivity, its spec (kind = "method-sensitivity"), method = "BAYES" specs,
and the panel figure (geometry and text)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import metamsc as mm
from metamsc.bayes import bayes
from metamsc.glmm import fit_glmm
from metamsc.spec import SpecError, analysis_dict, load_spec, run_spec

ROOT = Path(__file__).resolve().parents[1]
X, N = [8, 2, 1, 2, 1], [17, 2, 1, 2, 1]
LABS = ["Cheng", "Chen", "Comella", "De Jesus", "Wang"]


@pytest.fixture(scope="module")
def ms():
    return mm.method_sensitivity(X, N, labels=LABS, subset=[1, 0, 0, 0, 0],
                                 subset_label="without case reports")


def test_every_combination_is_a_row(ms):
    grid = [(r.measure, r.method, r.test) for r in ms.rows if r.group == "estimator x test x transform"]
    assert grid == [(m, e, t) for m in ("PLO", "PFT", "PAS") for e in ("DL", "REML", "PM", "ML")
                    for t in ("z", "knha", "adhoc")]
    groups = [r.group for r in ms.rows]
    assert groups.count("exact likelihood") == 1 and groups.count("Bayesian") == 2
    sets = [r.studies for r in ms.rows if r.group == "study set"]
    assert sets == ["without case reports"] + [f"without {s}" for s in LABS]
    assert len(ms.rows) == 36 + 1 + 2 + 6


def test_rows_are_the_library_fits(ms):
    row = next(r for r in ms.rows if (r.measure, r.method, r.test) == ("PFT", "PM", "knha"))
    ref = mm.pool_proportions(X, N, measure="PFT", method="PM", test="knha")
    assert (row.estimate, row.ci_lb, row.ci_ub, row.tau2) == (ref.estimate, ref.ci_lb, ref.ci_ub, ref.tau2)
    assert row.natural_estimate == ref.natural.estimate
    g = next(r for r in ms.rows if r.group == "exact likelihood")
    ref = fit_glmm(X, N, measure="PLO")
    assert (g.estimate, g.ci_lb, g.ci_ub) == (ref.estimate, ref.ci_lb, ref.ci_ub)
    bx = [r for r in ms.rows if r.group == "Bayesian"][1]
    exact = mm.bayes_proportions(X, N, mu_prior=("normal", 0, 10), tau_prior=("halfnormal", 0.5))
    assert bx.method == "Bayes binomial-normal" and bx.estimate == exact.mu_median
    assert (bx.natural_ci_lb, bx.natural_ci_ub) == (exact.natural.ci_lb, exact.natural.ci_ub)
    b = next(r for r in ms.rows if r.group == "Bayesian")
    es = mm.effect_size("PLO", events=X, total=N)
    ref = bayes(es.yi, es.vi, mu_prior=("normal", 0, 10), tau_prior=("halfnormal", 0.5))
    assert (b.estimate, b.ci_lb, b.ci_ub) == (ref.mu_median, ref.mu_ci_lb, ref.mu_ci_ub)
    assert b.tau2 == pytest.approx(ref.tau_median**2)
    loo = next(r for r in ms.rows if r.studies == "without Cheng")
    ref = mm.pool_proportions(X[1:], N[1:], measure="PLO", method="REML", test="adhoc")
    assert loo.k == 4 and loo.estimate == ref.estimate


def test_empty_study_set_is_a_row_with_its_reason():
    ms = mm.method_sensitivity([1, 1], [1, 2], subset=[0, 0], subset_label="none", glmm=False,
                               bayes_priors=(), leave_one_out=False, transforms=("PLO",),
                               methods=("DL",), tests=("z",))
    row = ms.rows[-1]
    assert row.studies == "none" and row.k == 0 and math.isnan(row.estimate)
    assert "no study" in row.note
    with pytest.raises(ValueError, match="transforms"):
        mm.method_sensitivity([1], [2], transforms=("PR",))


def test_dict_has_the_table_columns(ms):
    d = ms.to_dict()
    for row in d["rows"]:
        assert {"method", "measure", "test", "studies", "estimate", "ci_lb", "ci_ub", "tau2",
                "natural"} <= set(row)
    s = d["summary"]
    assert s["analyses"] == 45
    assert s["estimate_min"] == min(r.natural_estimate for r in ms.rows)


def _spec_run(tmp_path, text):
    p = tmp_path / "analyses" / "x.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return run_spec(load_spec(p))


def test_spec_method_sensitivity_pasi40():
    an = run_spec(ROOT / "analyses" / "psoriasis-pasi40-methods.toml")
    from metamsc import report, summary

    d = json.loads(report.dumps(analysis_dict(an)))
    assert d["kind"] == "method-sensitivity" and d["k"] == 5
    sub = [r for r in d["rows"] if r["studies"] == "without case reports"]
    assert len(sub) == 1 and sub[0]["k"] == 1  # Cheng 2022 only (the one trial)
    assert sub[0]["natural"]["estimate"] == pytest.approx(8 / 17, rel=1e-8)
    assert d["spec"]["prior"] == {"mu": ["normal", 0, 10], "tau": ["halfnormal", 0.5]}
    row = summary.summary_row("psoriasis-pasi40-methods", d)
    assert row["measure"] == "method sensitivity"
    md = summary.summary_markdown([row])
    assert "pooled estimates from" in md


def test_spec_errors(tmp_path):
    base = ('kind = "method-sensitivity"\ntitle = "t"\ndata = "outcomes"\nmeasure = "PLO"\n'
            '[where]\noutcome = "PASI-40 response"\ngroup = "all"\n')
    with pytest.raises(SpecError, match="prior.tau"):
        _spec_run(tmp_path, base.replace("[where]", '[prior]\ntau = ["gamma", 1]\n[where]'))
    with pytest.raises(SpecError, match="needs a proportion measure"):
        _spec_run(tmp_path, base.replace('"PLO"', '"SMD"'))
    with pytest.raises(SpecError, match="'subset' applies"):
        _spec_run(tmp_path, base.replace('kind = "method-sensitivity"\n', "").replace(
            "[where]", '[subset]\ncolumn = "design"\nvalue = "x"\n[where]'))
    with pytest.raises(SpecError, match="'prior' applies"):
        _spec_run(tmp_path, base.replace('kind = "method-sensitivity"\n', "").replace(
            "[where]", '[prior]\ntau = ["halfnormal", 1]\n[where]'))


def test_spec_bayes(tmp_path):
    from metamsc import report, summary

    an = _spec_run(tmp_path, 'title = "B"\ndata = "outcomes"\nmeasure = "PLO"\nmethod = "BAYES"\n'
                             'bayes_model = "normal"\n[prior]\nmu = ["normal", 0, 4]\ntau = ["halfcauchy", 0.5]\n'
                             '[where]\nindication = "psoriasis"\noutcome = "PASI-40 response"\n'
                             'group = "all"\n[columns]\nstudy = "citation"\n')
    d = json.loads(report.dumps(analysis_dict(an)))
    assert d["method"] == "BAYES" and d["priors"]["tau"]["family"] == "halfcauchy"
    es = mm.effect_size("PLO", events=[2, 8, 1, 2, 1], total=[2, 17, 1, 2, 1])
    ref = bayes(es.yi, es.vi, mu_prior=("normal", 0, 4), tau_prior=("halfcauchy", 0.5))
    assert d["estimate"] == pytest.approx(ref.mu_median, rel=1e-7)
    assert d["natural"]["estimate"] == pytest.approx(1 / (1 + math.exp(-ref.mu_median)), rel=1e-7)
    row = summary.summary_row("b", d)
    assert row["method"] == "BAYES" and row["estimate"] == d["natural"]["estimate"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = an.plot()
    foot = [t for t in ax.figure.texts if t.get_gid() == "footnote"][0].get_text()
    assert "half-Cauchy(scale = 0.5)" in foot
    plt.close(ax.figure)


def test_panel_geometry(ms):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metamsc.plots import figure_context

    with figure_context():
        ax = ms.plot(title="PASI-40")
        try:
            fig = ax.figure
            fig.canvas.draw()
            r = fig.canvas.get_renderer()
            kids = {a.get_gid(): a for a in ax.get_children() if a.get_gid()}
            labels = [a for g, a in kids.items() if g.startswith("label:")]
            assert sorted(t.get_text() for t in labels) == sorted(row.label for row in ms.rows)
            for g, a in kids.items():
                if g.startswith("est:"):
                    y = int(g.split(":")[1])
                    row = next(rw for rw in ms.rows if kids[f"label:{y}"].get_text() == rw.label)
                    assert a.get_xdata()[0] == pytest.approx(100 * row.natural_estimate)
                    lo, hi = kids[f"ci:{y}"].get_xdata()
                    assert (lo, hi) == pytest.approx((100 * row.natural_ci_lb, 100 * row.natural_ci_ub))
                    assert kids[f"value:{y}"].get_text().startswith(f"{100 * row.natural_estimate:.1f}")
            assert sum(g.startswith("est:") for g in kids) == len(ms.rows)
            # no two texts overlap: row labels, group headings, values
            texts = [a for g, a in kids.items() if g.split(":")[0] in ("label", "group", "value")]
            boxes = [t.get_window_extent(r) for t in texts]
            for i, a in enumerate(boxes):
                for b in boxes[i + 1:]:
                    assert not a.overlaps(b)
            # the labels stay inside the figure
            fb = fig.bbox
            assert all(b.x0 >= fb.x0 and b.x1 <= fb.x1 for b in boxes)
            assert ax.get_xlim()[0] >= 0 and ax.get_xlim()[1] <= 100
        finally:
            plt.close(ax.figure)


def test_spec_bayes_exact_is_the_default_for_counts(tmp_path):
    from metamsc import report
    from metamsc.bayes_glmm import bayes_proportions

    an = _spec_run(tmp_path, 'title = "B"\ndata = "outcomes"\nmeasure = "PLO"\nmethod = "BAYES"\n'
                             '[where]\nindication = "psoriasis"\noutcome = "PASI-40 response"\n'
                             'group = "all"\n[columns]\nstudy = "citation"\n')
    d = json.loads(report.dumps(analysis_dict(an)))
    assert d["model"] == "binomial-normal" and d["spec"] is not None
    assert d["priors"]["tau"]["family"] == "halfnormal"
    ref = bayes_proportions([2, 8, 1, 2, 1], [2, 17, 1, 2, 1])
    assert d["estimate"] == pytest.approx(ref.mu_median, rel=1e-8)  # the JSON keeps 8 digits
    assert {r["events"] for r in d["studies"]} == {1.0, 2.0, 8.0}
    with pytest.raises(SpecError, match="bayes_model"):
        _spec_run(tmp_path, 'title = "B"\ndata = "outcomes"\nmeasure = "PLO"\nmethod = "BAYES"\n'
                            'bayes_model = "mcmc"\n[columns]\nstudy = "citation"\n')
