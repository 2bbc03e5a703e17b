"""The review's analyses: reproduce, check, manifest, summary table, and the spec extensions
they use (compare, assume, sensitivity, overall = false, evidence map)."""

from __future__ import annotations

# Values read back from the written JSON carry report.DIGITS = 8 significant digits (rel 1e-7);
# the same quantities are checked against R at full precision through the API in the other tests.
import csv
import json
import shutil
from pathlib import Path

import pytest
from scipy.stats import nchypergeom_fisher

from metamsc.cli import main
from metamsc.spec import analysis_dict, load_spec, run_spec

REPO = Path(__file__).resolve().parents[1]
ANALYSES = REPO / "analyses"


def _project(tmp_path: Path) -> Path:
    """A small project: two specs over their own CSVs, plus the repository's real specs."""
    root = tmp_path / "proj"
    (root / "analyses").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("study,events,total\nA,2,10\nB,5,12\nC,1,9\n")
    (root / "data" / "b.csv").write_text("study,events,total\nX,7,10\nY,3,12\n")
    for name in ("a", "b"):
        (root / "analyses" / f"{name}.toml").write_text(
            f'title = "{name}"\ndata = "../data/{name}.csv"\nmeasure = "PLO"\n'
            f'figure = "../figures/{name}.svg"\n')
    return root


def test_reproduce_then_check_names_exactly_the_outputs_of_a_changed_number(tmp_path, capsys):
    root = _project(tmp_path)
    assert main(["reproduce", str(root)]) == 0
    for p in ("results/a.json", "results/b.json", "figures/a.svg", "figures/b.svg",
              "results/summary.csv", "results/summary.md", "results/manifest.json"):
        assert (root / p).is_file(), p
    assert main(["check", str(root)]) == 0
    capsys.readouterr()
    # change one number in b.csv: only b's outputs, the summary and the manifest change
    (root / "data" / "b.csv").write_text("study,events,total\nX,7,10\nY,4,12\n")
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    differs = sorted(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("differs: "))
    assert differs == ["figures/b.svg", "results/b.json", "results/manifest.json",
                       "results/summary.csv", "results/summary.md"]
    assert "input changed since the committed outputs: data/b.csv" in out
    assert main(["reproduce", str(root)]) == 0
    assert main(["check", str(root)]) == 0


def test_manifest_hashes_outputs_and_inputs(tmp_path):
    import hashlib

    root = _project(tmp_path)
    assert main(["reproduce", str(root)]) == 0
    man = json.loads((root / "results" / "manifest.json").read_text())
    entry = man["outputs"]["results/a.json"]
    assert entry["sha256"] == hashlib.sha256((root / "results/a.json").read_bytes()).hexdigest()
    assert set(entry["inputs"]) == {"analyses/a.toml", "data/a.csv"}
    assert entry["inputs"]["data/a.csv"] == hashlib.sha256((root / "data/a.csv").read_bytes()).hexdigest()
    assert man["version"]


def test_check_reports_stale_and_uncommitted(tmp_path, capsys):
    root = _project(tmp_path)
    assert main(["reproduce", str(root)]) == 0
    (root / "results" / "old.json").write_text("{}")
    (root / "figures" / "b.svg").unlink()
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "stale (no spec makes it): results/old.json" in out
    assert "not committed: figures/b.svg" in out


def test_summary_table(tmp_path):
    root = _project(tmp_path)
    assert main(["reproduce", str(root)]) == 0
    lines = (root / "results" / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("analysis,title,role,measure,method,test,level,k,studies,patients,scale,estimate")
    a = json.loads((root / "results" / "a.json").read_text())
    row = lines[1].split(",")
    assert row[0] == "a" and row[2] == "primary" and row[6] == "0.95" and row[7:10] == ["3", "3", "31"]
    assert float(row[11]) == pytest.approx(a["natural"]["estimate"], rel=1e-5)
    md = (root / "results" / "summary.md").read_text()
    assert f"{100 * a['natural']['estimate']:.1f}%" in md


def test_committed_outputs_are_current():
    """The repository's own results/ and figures/ are what the specs produce."""
    assert main(["check", str(REPO)]) == 0


def test_every_review_analysis_exists_and_lists_exclusions():
    names = {p.stem for p in ANALYSES.glob("*.toml")}
    assert {"psoriasis-pasi40", "psoriasis-pasi75", "psoriasis-safety", "ssc-safety", "ssc-mrss",
            "cheng2022-sex", "evidence-map"} <= names
    for name in names - {"evidence-map"}:
        d = json.loads((REPO / "results" / f"{name}.json").read_text())
        for e in d["excluded"]:
            assert e["study"] and e["reason"]


def test_pasi40_excludes_registrations_with_reason():
    d = analysis_dict(run_spec(ANALYSES / "psoriasis-pasi40.toml"))
    reasons = {e["study"]: e["reason"] for e in d["excluded"]}
    assert reasons["NCT03745417"] == "registered, no results reported"
    assert reasons["Yao et al. 2021"].startswith("no data for PASI-40 response")
    assert {s["study"] for s in d["studies"]} == {"Chen et al. 2016", "De Jesus et al. 2016",
                                                   "Comella et al. 2018", "Wang et al. 2020",
                                                   "Cheng et al. 2022"}
    cheng = next(s for s in d["studies"] if s["study"] == "Cheng et al. 2022")
    assert (cheng["events"], cheng["total"]) == (8, 17)
    groups = {g["group"]: g["k"] for g in d["subgroup"]["groups"]}
    assert groups == {"case report": 4, "single-arm trial": 1}


def test_cheng2022_sex_pairs_groups_and_gives_exact_statistics():
    d = analysis_dict(run_spec(ANALYSES / "cheng2022-sex.toml"))
    s = d["studies"][0]
    assert (s["events1"], s["total1"], s["events2"], s["total2"]) == (6, 9, 2, 8)
    # R: escalc("RR", ai=6, n1i=9, ci=2, n2i=8) -> yi 0.980829253011726, vi 0.430555555555556
    assert s["yi"] == pytest.approx(0.980829253011726, rel=1e-7)
    assert s["vi"] == pytest.approx(0.430555555555556, rel=1e-7)
    e = d["exact"][0]
    # R: fisher.test(matrix(c(6,2,3,6),2)): p 0.153434800493624, OR 5.32669667954546,
    # CI 0.515318655632871 87.7269714528116 (R's uniroot stops early: see docs/validation.md)
    assert e["fisher_pvalue"] == pytest.approx(0.153434800493624, rel=1e-7)
    assert e["or_conditional_mle"] == pytest.approx(5.32669667954546, rel=1e-6)
    assert e["or_exact_ci_lb"] == pytest.approx(0.515318655632871, rel=1e-5)
    assert e["or_exact_ci_ub"] == pytest.approx(87.7269714528116, rel=5e-3)
    # our bounds solve the exact equations: P(X >= 6; psi_lb) = P(X <= 6; psi_ub) = 0.025
    assert nchypergeom_fisher.cdf(6, 17, 9, 8, e["or_exact_ci_ub"]) == pytest.approx(0.025, rel=1e-6)
    assert nchypergeom_fisher.sf(5, 17, 9, 8, e["or_exact_ci_lb"]) == pytest.approx(0.025, rel=1e-6)


def test_ssc_mrss_declares_its_assumptions_and_sensitivity():
    """Zhang 2017 alone: n at 12 months is not printed (follow-up 7-21 months), so n = 13 (the
    most the sources allow) and r = 0.5 are declared, and the result is shown over n and r."""
    d = analysis_dict(run_spec(ANALYSES / "ssc-mrss.toml"))
    assert d["assumptions"] == [{"role": "n", "value": 13.0, "reason": "not reported; declared in the spec"},
                                {"role": "r", "value": 0.5, "reason": "not reported; declared in the spec"}]
    assert d["k"] == 1 and d["role"] == "primary" and "cyclophosphamide" in d["caveat"]
    # R: escalc("MC", m1i=13.8, m2i=20.1, sd1i=10.2, sd2i=3.1, ni=c(7, 13), ri=0.5) -> vi 11.7185714285714, 6.31
    sens = {x["value"]: x for x in d["sensitivity"]["results"]}
    assert d["sensitivity"]["role"] == "n" and set(sens) == {7, 9, 11, 13}
    assert sens[7]["se"] ** 2 == pytest.approx(11.71857142857143, rel=1e-7)
    assert sens[13]["se"] ** 2 == pytest.approx(6.31, rel=1e-7) and d["se"] ** 2 == pytest.approx(6.31, rel=1e-7)
    assert sens[13]["estimate"] == d["estimate"] == pytest.approx(-6.3)
    r = analysis_dict(run_spec(ANALYSES / "ssc-mrss-r.toml"))
    assert r["role"] == "sensitivity" and r["sensitivity"]["role"] == "r"
    # R: escalc("MC", m1i=13.8, m2i=20.1, sd1i=10.2, sd2i=3.1, ni=13, ri=0.2) -> vi 7.76938461538461
    rs = {x["value"]: x for x in r["sensitivity"]["results"]}
    assert rs[0.2]["se"] ** 2 == pytest.approx(7.76938461538461, rel=1e-7)


def test_overall_false_reports_subgroups_only(tmp_path):
    (tmp_path / "d.csv").write_text("study,events,total,def\nA,0,10,serious\nA,3,10,any\nB,1,8,any\n")
    spec = tmp_path / "s.toml"
    spec.write_text('title = "t"\ndata = "d.csv"\nmeasure = "PLO"\nsubgroup = "def"\noverall = false\n')
    d = analysis_dict(run_spec(spec))
    assert d["overall"] is False and d["estimate"] is None and d["natural"] is None
    assert [g["group"] for g in d["subgroup"]["groups"]] == ["serious", "any"]
    bad = tmp_path / "t.toml"
    bad.write_text('title = "t"\ndata = "d.csv"\nmeasure = "PLO"\noverall = false\n')
    with pytest.raises(Exception, match="'overall' = false needs a 'subgroup'"):
        load_spec(bad)


def test_compare_reports_unpaired_studies(tmp_path):
    (tmp_path / "d.csv").write_text("study,events,total,arm\nA,3,10,t\nA,1,10,c\nB,2,5,t\n")
    spec = tmp_path / "s.toml"
    spec.write_text('title = "t"\ndata = "d.csv"\nmeasure = "OR"\nmethod = "EE"\n'
                    '[compare]\ncolumn = "arm"\ngroup1 = "t"\ngroup2 = "c"\n')
    d = analysis_dict(run_spec(spec))
    assert d["k"] == 1
    assert d["excluded"] == [{"study": "B", "reason": "no arm = 'c' row to compare"}]


def test_evidence_map_lists_every_study():
    d = analysis_dict(run_spec(ANALYSES / "evidence-map.toml"))
    from metamsc import datasets

    _, studies = datasets.read_rows("studies")
    assert d["k"] == len(studies) == len(d["studies"])
    assert {s["study_id"] for s in d["studies"]} == {s["study_id"] for s in studies}


def test_run_copies_of_the_review_specs(tmp_path):
    """The review's specs run from any folder (paths are relative to the spec file)."""
    shutil.copytree(ANALYSES, tmp_path / "analyses")
    assert main(["reproduce", str(tmp_path)]) == 0
    for p in (REPO / "results").glob("*.json"):
        assert (tmp_path / "results" / p.name).read_bytes() == p.read_bytes(), p.name


def test_reproduce_refuses_figures_outside_the_project(tmp_path, capsys):
    root = _project(tmp_path)
    (root / "analyses" / "a.toml").write_text(
        'title = "a"\ndata = "../data/a.csv"\nmeasure = "PLO"\nfigure = "../../elsewhere.svg"\n')
    assert main(["reproduce", str(root)]) == 2
    err = capsys.readouterr().err
    assert "is outside the project folder" in err and err.count("\n") == 1


def test_psoriasis_safety_counts_yao_and_leaves_chengs_statement_to_the_sensitivity_analysis():
    """Yao 2021's related fevers (at least 1 of 7) are counted; Cheng 2022's 'no obvious side
    effects' is a statement, not 0 counted events, and enters only the sensitivity analysis."""
    d = json.loads((REPO / "results" / "psoriasis-safety.json").read_text())
    counts = {s["study"]: (s["events"], s["total"]) for s in d["studies"]}
    assert counts["Yao et al. 2021"] == (1, 7) and "Cheng et al. 2022" not in counts
    assert sum(t for _, t in counts.values()) == 13 and d["role"] == "primary"
    assert any(e["study"] == "Cheng et al. 2022" for e in d["excluded"])
    # binomial-normal GLMM at tau^2 = 0: the ML estimate is the pooled proportion 1/13
    assert d["tau2"] == 0 and d["natural"]["estimate"] == pytest.approx(1 / 13, rel=1e-6)
    w = json.loads((REPO / "results" / "psoriasis-safety-cheng.json").read_text())
    counts_w = {s["study"]: (s["events"], s["total"]) for s in w["studies"]}
    assert counts_w["Cheng et al. 2022"] == (0, 17) and w["role"] == "sensitivity"
    assert w["natural"]["estimate"] == pytest.approx(1 / 30, rel=1e-6)
    assert w["natural"]["ci_ub"] < d["natural"]["ci_ub"]


def test_ssc_safety_is_by_definition_only():
    d = json.loads((REPO / "results" / "ssc-safety.json").read_text())
    assert d["overall"] is False and d["estimate"] is None
    groups = {g["group"]: g for g in d["subgroup"]["groups"]}
    assert list(groups)[:2] == ["serious adverse events", "treatment-related adverse events"]
    # no serious event in 12: the exact one-sided 95% bound 1 - 0.05^(1/12) (Clopper-Pearson, x = 0)
    assert groups["serious adverse events"]["natural"]["ci_ub"] == pytest.approx(1 - 0.05 ** (1 / 12), rel=1e-7)
    tr = groups["treatment-related adverse events"]
    assert tr["k"] == 5  # the review's column coded one way: 'None' and its non-zero entries
    counts = {s["study"]: (s["events"], s["total"]) for s in d["studies"]}
    assert counts["Park et al. 2020"] == (3, 20) and counts["Zhang et al. 2017"] == (5, 14)
    park = json.loads((REPO / "results" / "ssc-safety-park-completers.json").read_text())
    assert park["role"] == "sensitivity" and (park["studies"][0]["events"], park["studies"][0]["total"]) == (3, 18)


def test_pasi_headlines_lead_with_the_trial_and_describe_the_case_reports():
    rows = {r["analysis"]: r for r in csv.DictReader((REPO / "results" / "summary.csv").open())}
    p40 = rows["psoriasis-pasi40"]
    # R: binom.test(8, 17)$conf.int -> 0.229832687265990 0.721881699668893
    assert (p40["k"], p40["studies"], p40["patients"]) == ("1", "1", "17")
    assert float(p40["estimate"]) == pytest.approx(8 / 17, rel=1e-5)
    assert float(p40["ci_lb"]) == pytest.approx(0.229832687265990, rel=1e-5)
    assert float(p40["ci_ub"]) == pytest.approx(0.721881699668893, rel=1e-5)
    assert p40["ci_method"] == "Clopper-Pearson (exact), one study"
    assert p40["pi_lb"] == p40["i2"] == ""  # one study: no prediction interval, no I^2
    assert p40["descriptive"] == "case report: 6/6 patients in 4 studies" and "selected after success" in p40["caveat"]
    assert "Yao et al. 2021 (no data for PASI-40 response" in p40["excluded_studies"]
    p50 = rows["psoriasis-pasi50"]
    # R: binom.test(2, 7)$conf.int -> 0.0366925661760856 0.7095791362626573
    assert float(p50["estimate"]) == pytest.approx(2 / 7, rel=1e-5)
    assert float(p50["ci_lb"]) == pytest.approx(0.0366925661760856, rel=1e-5)
    assert float(p50["ci_ub"]) == pytest.approx(0.7095791362626573, rel=1e-5)
    lower = rows["psoriasis-pasi40-lowerbound"]
    assert lower["role"] == "sensitivity" and "lower bound" in lower["caveat"] and lower["patients"] == "24"
    assert float(lower["estimate"]) == pytest.approx(10 / 24, rel=1e-5)  # GLMM at tau^2 = 0: pooled 10/24
    p75 = rows["psoriasis-pasi75"]
    assert p75["role"] == "descriptive" and p75["estimate"] == "" and p75["scale"] == "descriptive only"
    d = json.loads((REPO / "results" / "psoriasis-pasi40.json").read_text())
    assert d["overall"] is False and d["subgroup"]["test"] is None  # case reports are not tested
    assert [(g["group"], g["headline"], g["descriptive"]) for g in d["subgroup"]["groups"]] == [
        ("single-arm trial", True, False), ("case report", False, True)]
    md = (REPO / "results" / "summary.md").read_text()
    assert "47.1% [23.0%, 72.2%]; Clopper-Pearson (exact), one study" in md
    assert "## Caveats and exclusions" in md and "cyclophosphamide" in md


def test_summary_counts_studies_and_estimates_and_never_gives_one_study_a_prediction_interval():
    rows = {r["analysis"]: r for r in csv.DictReader((REPO / "results" / "summary.csv").open())}
    for name, r in rows.items():
        if r["k"] in ("1", "2"):
            assert r["pi_lb"] == r["pi_ub"] == "", name
        if r["k"] == "1":
            assert r["i2"] == r["tau2"] == "", name
        if r["i2"] != "":  # the Markdown prints what the CSV holds, 0 included
            assert r["k"] not in ("", "1")
    md = (REPO / "results" / "summary.md").read_text()
    assert "| Treatment-related adverse events, psoriasis | primary | 5 | 13 |" in md
    assert "n/a (one study)" in md and "| 0% |" in md
    mrss = rows["ssc-mrss"]
    assert mrss["method"] == "single study (no pooling)" and mrss["scale"] == "raw mean change, post minus pre"
    assert mrss["sensitivity"].startswith("n = 7: -6.30 [-13.01, 0.41]")


def test_spec_keys_role_caveat_headline_descriptive(tmp_path):
    (tmp_path / "d.csv").write_text("study,events,total,design\nA,2,10,trial\nB,3,3,case\nC,1,1,case\n")
    spec = tmp_path / "s.toml"
    spec.write_text('title = "t"\ndata = "d.csv"\nmeasure = "PLO"\nsubgroup = "design"\noverall = false\n'
                    'headline = "trial"\ndescriptive = ["case"]\nrole = "primary"\ncaveat = "c."\nstudy_ci = "CP"\n')
    d = analysis_dict(run_spec(spec))
    assert d["role"] == "primary" and d["caveat"] == "c." and d["subgroup"]["test"] is None
    assert d["spec"]["headline"] == "trial" and d["spec"]["descriptive"] == ["case"]
    from metamsc.summary import summary_row
    row = summary_row("s", json.loads(json.dumps(d, default=float)))
    assert row["estimate"] == pytest.approx(0.2) and row["k"] == 1 and row["patients"] == 10
    assert row["descriptive"] == "case: 4/4 patients in 2 studies"
    spec.write_text(spec.read_text().replace('headline = "trial"', 'headline = "rct"'))
    with pytest.raises(Exception, match="key 'headline': no subgroup 'rct' among 'trial', 'case'"):
        run_spec(spec)
    for text, msg in (('role = "main"', "unknown role 'main'"),
                      ('headline = "trial"', "key 'headline' needs a 'subgroup'")):
        bad = tmp_path / "b.toml"
        bad.write_text(f'title = "t"\ndata = "d.csv"\nmeasure = "PLO"\n{text}\n')
        with pytest.raises(Exception, match=msg):
            load_spec(bad)


def test_console_line_of_an_all_zero_glmm_names_the_bound(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("study,events,total\nA,0,10\nB,0,13\n")
    spec = tmp_path / "s.toml"
    spec.write_text('title = "t"\ndata = "d.csv"\nmeasure = "PLO"\nmethod = "GLMM"\n')
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out and "exact one-sided bound [0.0000, 0.1221]" in out and "/GLMM" in out
