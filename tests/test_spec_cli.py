"""The analysis spec and the CLI: metafor's numbers through `metamsc run`, clear one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import metamsc as mm
from metamsc.cli import main

REF = Path(__file__).parent / "reference"
RMA = json.loads((REF / "rma.json").read_text())


def _cases():
    out = []
    for c in RMA["cases"]:
        if (c.get("block") == "main" and c["dataset"] in ("dat.pritz1997", "pasi40")
                and c["measure"] in ("PLO", "PFT", "PR") and c["method"] in ("EE", "DL", "REML")
                and c["test"] in ("z", "knha")):
            out.append(c)
    return out


CASES = _cases()


def test_case_grid():
    assert len(CASES) == 2 * 3 * 3 * 2


def _write_study_csv(path: Path, case) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["author", "x", "n"])
        for i, (x, n) in enumerate(zip(case["xi"], case["ni"])):
            w.writerow([case["slab"][i] if case.get("slab") else f"Study {i + 1}", x, n])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_run_matches_metafor(tmp_path, case):
    """A user's CSV through a spec gives metafor's numbers (R call in the fixture)."""
    _write_study_csv(tmp_path / "mydata.csv", case)
    spec = tmp_path / "analyses" / "a.toml"
    spec.parent.mkdir()
    spec.write_text(
        'title = "fixture"\ndata = "../mydata.csv"\n'
        f'measure = "{case["measure"]}"\nmethod = "{case["method"]}"\ntest = "{case["test"]}"\n'
        '[columns]\nstudy = "author"\nevents = "x"\ntotal = "n"\n')
    assert main(["run", str(spec)]) == 0
    out = json.loads((tmp_path / "results" / "a.json").read_text())
    e = case["expected"]
    tol = 1e-7  # the JSON holds report.DIGITS = 8 significant digits; full precision: test_pooling
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"),
                         ("pvalue", "pval"), ("tau2", "tau2"), ("i2", "I2"), ("h2", "H2"),
                         ("q", "QE"), ("q_pvalue", "QEp"), ("pi_lb", "pi_lb"), ("pi_ub", "pi_ub")):
        if e[theirs] is None:
            assert out[ours] is None, ours
        else:
            assert out[ours] == pytest.approx(e[theirs], rel=tol, abs=1e-11), ours
    assert out["k"] == e["k"]
    assert [s["weight"] for s in out["studies"]] == pytest.approx(e["weights"], rel=tol)
    assert [s["study"] for s in out["studies"]] == case["slab"]
    nat = e["natural"]
    if case["measure"] != "PR":
        for key, theirs in (("estimate", "pred"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"),
                            ("pi_lb", "pi_lb"), ("pi_ub", "pi_ub")):
            if nat[theirs] is None:
                assert out["natural"][key] is None
            else:
                assert out["natural"][key] == pytest.approx(nat[theirs], rel=tol, abs=1e-11), key
    for key in ("title", "measure", "method", "test", "level", "excluded", "studies",
                "tau2_ci_lb", "tau2_ci_ub", "i2_ci_lb", "i2_ci_ub", "q_df"):
        assert key in out


def _spec(tmp_path: Path, body: str, data: str | None = None) -> Path:
    (tmp_path / "d.csv").write_text(data or "study,events,total\nA,1,10\nB,3,12\nC,0,8\n")
    p = tmp_path / "s.toml"
    p.write_text(body)
    return p


BASE = 'title = "t"\ndata = "d.csv"\nmeasure = "PLO"\n'


@pytest.mark.parametrize("body,data,needle", [
    (BASE + 'methdo = "DL"\n', None, "unknown key 'methdo' (did you mean 'method'?)"),
    (BASE + 'method = "REMl"\n', None, "key 'method': unknown method 'REMl'"),
    (BASE + 'level = "high"\n', None, "key 'level' must be"),
    (BASE + 'level = 95\n', None, "key 'level' must be a fraction"),
    ('title = "t"\ndata = "d.csv"\n', None, "missing required key 'measure'"),
    (BASE.replace("PLO", "PLOGIT"), None, "key 'measure': unknown measure 'PLOGIT'"),
    (BASE.replace("d.csv", "nope.csv"), None, "key 'data': no such file 'nope.csv'"),
    (BASE + 'test = "hk"\n', None, "key 'test': unknown test 'hk'"),
    (BASE + 'figure = "f.jpg"\n', None, "key 'figure'"),
    (BASE + '[columns]\nevnts = "x"\n', None, "key 'columns.evnts': unknown role (did you mean 'events'?)"),
    (BASE + "title = 3\n", None, "not valid TOML"),
    ('title = 3\ndata = "d.csv"\nmeasure = "PLO"\n', None, "key 'title' must be a string"),
    (BASE, "study,events,total\nA,1,10\nB,three,12\n", "row 3: column 'events': 'three' is not a number"),
    (BASE, "study,events,total\nA,1,10\nB,13,12\n", "row 3: study 'B': events > total"),
    (BASE, "study,x,total\nA,1,10\n", "no column 'events' (role 'events')"),
    (BASE + 'where = {arm = "a"}\n', None, "no column 'arm'"),
    (BASE, "study,events,events\nA,1,10\n", "duplicate column 'events'"),
    (BASE, "study,events,total\nA,1,10,7\n", "row 2: 1 more cell(s) than the header"),
    (BASE + "add = -1\n", None, "key 'add' must be a finite number >= 0"),
    (BASE + "add = nan\n", None, "key 'add' must be a finite number >= 0"),
    (BASE.replace("PLO", "MC") + "[assume]\nr = nan\n", None, "key 'assume.r' must be a finite number"),
    (BASE + 'method = "GENQ"\n', None, "GENQ needs study weights"),
    ('kind = "evidence-map"\ntitle = "m"\ndata = "d.csv"\nwhere = {study = "none"}\n', None,
     "no studies left after 'where'"),
])
def test_bad_input_is_one_line(tmp_path, capsys, body, data, needle):
    spec = _spec(tmp_path, body, data)
    code = main(["run", str(spec)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("metamsc: error: ")
    assert err.count("\n") == 1, err
    assert needle in err
    assert "Traceback" not in err
    assert "s.toml" in err or "d.csv" in err


def test_missing_value_is_excluded_with_reason(tmp_path):
    spec = _spec(tmp_path, BASE, "study,events,total\nA,1,10\nB,,12\nC,2,8\nD,4,\n")
    assert main(["run", str(spec), "--out", str(tmp_path / "o")]) == 0
    out = json.loads((tmp_path / "o" / "s.json").read_text())
    assert out["k"] == 2
    assert out["excluded"] == [
        {"study": "B", "reason": "missing events (row 3 of d.csv)"},
        {"study": "D", "reason": "missing total (row 5 of d.csv)"},
    ]


def test_where_and_subgroup(tmp_path):
    data = ("study,events,total,design,outcome\nA,1,10,trial,x\nB,3,12,trial,x\nC,2,2,case,x\n"
            "D,1,1,case,x\nE,5,5,case,y\n")
    spec = _spec(tmp_path, BASE + 'subgroup = "design"\nwhere = {outcome = "x"}\n', data)
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert out["k"] == 4
    groups = {g["group"]: g for g in out["subgroup"]["groups"]}
    assert set(groups) == {"trial", "case"}
    assert groups["trial"]["k"] == 2 and groups["case"]["k"] == 2
    t = out["subgroup"]["test"]
    # Q-between from the two subgroup estimates
    est = np.array([groups["trial"]["estimate"], groups["case"]["estimate"]])
    se = np.array([groups["trial"]["se"], groups["case"]["se"]])
    w = 1 / se**2
    qb = np.sum(w * (est - np.sum(w * est) / np.sum(w)) ** 2)
    assert t["q"] == pytest.approx(qb, rel=1e-7) and t["df"] == 1


@pytest.mark.parametrize("rule", ["true", '"metafor"', '"meta"'])
def test_spec_tau2_common_rules(tmp_path, rule):
    """tau2_common = true (or "metafor"): metafor's meta-regression rule; "meta": meta's
    tau.common = TRUE; the JSON names the rule and matches the API's subgroup results."""
    data = ("study,events,total,design\nA,1,10,trial\nB,3,12,trial\nF,4,9,trial\nC,2,6,case\n"
            "D,1,5,case\nE,4,7,case\n")
    spec = _spec(tmp_path, BASE + f'test = "knha"\nsubgroup = "design"\ntau2_common = {rule}\n', data)
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    want = "meta" if "meta\"" in rule and "metafor" not in rule else True
    assert out["subgroup"]["tau2_common"] == want
    es = mm.effect_size("PLO", events=[1, 3, 4, 2, 1, 4], total=[10, 12, 9, 6, 5, 7])
    api = mm.pool_effects(es, test="knha", subgroup=["trial"] * 3 + ["case"] * 3, tau2_common=want)
    other = mm.pool_effects(es, test="knha", subgroup=["trial"] * 3 + ["case"] * 3,
                            tau2_common=True if want == "meta" else "meta")
    groups = {g["group"]: g for g in out["subgroup"]["groups"]}
    for g, r in api.subgroups.items():  # the JSON holds 8 significant digits
        assert groups[g]["estimate"] == pytest.approx(r.estimate, rel=1e-7)
        assert groups[g]["ci_lb"] == pytest.approx(r.ci_lb, rel=1e-7)
        assert groups[g]["ci_lb"] != pytest.approx(other.subgroups[g].ci_lb, rel=1e-3)
    assert out["subgroup"]["test"]["q"] == pytest.approx(api.subgroup_test.q, rel=1e-7)


def test_spec_tau2_common_unknown_rule(tmp_path, capsys):
    spec = _spec(tmp_path, BASE + 'subgroup = "study"\ntau2_common = "metta"\n')
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "key 'tau2_common': unknown tau2_common rule 'metta'" in err and len(err.splitlines()) == 1


def test_explain_prints_resolved_spec(tmp_path, capsys):
    spec = _spec(tmp_path, BASE)
    assert main(["run", "--explain", str(spec)]) == 0
    out = capsys.readouterr().out
    body = json.loads(out.split("\n", 1)[1])
    assert body["resolved_spec"]["method"] == "REML"
    assert body["resolved_spec"]["test"] == "z"
    assert body["resolved_spec"]["level"] == 0.95
    assert [r["study"] for r in body["rows_selected"]] == ["A", "B", "C"]
    assert not (tmp_path / "results").exists()


def test_outputs_are_byte_identical_across_runs(tmp_path):
    spec = _spec(tmp_path, BASE + 'figure = ["f.svg", "f.pdf"]\n')
    paths = [tmp_path / "o" / "s.json", tmp_path / "f.svg", tmp_path / "f.pdf"]
    assert main(["run", str(spec), "--out", str(tmp_path / "o")]) == 0
    first = [p.read_bytes() for p in paths]
    assert main(["run", str(spec), "--out", str(tmp_path / "o")]) == 0
    assert [p.read_bytes() for p in paths] == first
    assert b"CreationDate" not in first[2]


def test_labels_with_dollar_signs_and_rc_files_do_not_change_figures(tmp_path, monkeypatch):
    """Mathtext is off for user text; a user's matplotlibrc does not change the bytes."""
    spec = _spec(tmp_path, BASE + 'figure = "f.svg"\n',
                 "study,events,total\nA $x^$ 1,1,10\nB,3,12\nC,0,8\n")
    assert main(["run", str(spec), "--out", str(tmp_path / "o")]) == 0
    first = (tmp_path / "f.svg").read_bytes()
    rc = tmp_path / "matplotlibrc"
    rc.write_text("font.family: serif\nlines.linewidth: 3\nsavefig.bbox: tight\n")
    import matplotlib

    with matplotlib.rc_context({"font.family": "serif", "lines.linewidth": 3, "savefig.bbox": "tight"}):
        assert main(["run", str(spec), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "f.svg").read_bytes() == first


def test_dropped_study_keeps_the_others_counts(tmp_path):
    """A study the model leaves out (0 events, add = 0) does not shift the others' raw data."""
    spec = _spec(tmp_path, BASE + "add = 0\n", "study,events,total\nA,0,10\nB,5,12\nC,2,9\nD,3,8\n")
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert [(s["study"], s["events"], s["total"]) for s in out["studies"]] == [
        ("B", 5, 12), ("C", 2, 9), ("D", 3, 8)]
    assert out["excluded"][0]["study"] == "A"
    assert "not finite" in out["excluded"][0]["reason"]


def test_subgroup_with_every_study_excluded_is_reported(tmp_path):
    data = "study,events,total,g\nA,0,10,x\nB,5,12,y\nC,2,9,y\n"
    spec = _spec(tmp_path, BASE + 'add = 0\nsubgroup = "g"\n', data)
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert [g["group"] for g in out["subgroup"]["groups"]] == ["y"]
    assert any("subgroup 'x': every study was left out" in w for w in out["warnings"])


def test_unlabelled_and_duplicate_studies(tmp_path):
    spec = _spec(tmp_path, BASE, "study,events,total\n,1,10\nB,3,12\nB,2,8\n")
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert [s["study"] for s in out["studies"]] == ["row 2", "B", "B"]
    assert any("used more than once: B" in w for w in out["warnings"])


def test_glmm_from_a_spec_matches_the_python_api(tmp_path):
    """method = "GLMM" (binomial-normal) and "GLMM-EE" with nagq, and the two-group OR model."""
    from metamsc.glmm import fit_glmm

    data = "study,events,total\nA,2,10\nB,5,12\nC,1,9\nD,7,11\n"
    spec = _spec(tmp_path, BASE + 'method = "GLMM"\nnagq = "high"\n', data)
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    ref = fit_glmm([2, 5, 1, 7], [10, 12, 9, 11], measure="PLO", nagq="high")
    assert out["estimate"] == pytest.approx(ref.estimate, rel=1e-7)
    assert out["tau2"] == pytest.approx(ref.tau2, rel=1e-7)
    assert out["extra"]["nagq"] == 41
    spec = _spec(tmp_path, BASE + 'method = "GLMM-EE"\n', data)
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert out["tau2"] == 0.0
    assert out["estimate"] == pytest.approx(fit_glmm([2, 5, 1, 7], [10, 12, 9, 11], method="EE").estimate,
                                            rel=1e-7)
    two = "study,events1,total1,events2,total2\nA,2,10,4,10\nB,5,12,6,11\nC,1,9,3,9\n"
    spec = _spec(tmp_path, 'title = "t"\ndata = "d.csv"\nmeasure = "OR"\nmethod = "GLMM"\n', two)
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    ref = fit_glmm([2, 5, 1], [10, 12, 9], events2=[4, 6, 3], total2=[10, 11, 9], measure="OR")
    assert out["estimate"] == pytest.approx(ref.estimate, rel=1e-7)
    bad = _spec(tmp_path, BASE + 'nagq = 7\n')
    assert main(["run", str(bad)]) == 2
