"""A corpus of bad inputs over the CLI, the specs, the CSV files and the Python API.

Every case asserts the exact kind of outcome:

* ``error``: the CLI exits with 2 and prints one line, ``metamsc: error: <file>: ...``, naming the
  file and the key, row or column (the API raises ValueError naming the argument or study);
* ``excluded``: the run succeeds and the study is listed as excluded, with its reason;
* ``result``: the run succeeds with the correct numbers.

The CLI is called in-process (``metamsc.cli.main``) for speed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import metamsc
from metamsc import report
from metamsc.cli import main
from metamsc.effects import effect_size
from metamsc.glmm import fit_glmm

CSV = "study,events,total\nA,1,10\nB,3,12\nC,0,8\n"
BASE = 'title = "t"\ndata = "../d.csv"\nmeasure = "PLO"\n'
SMCR = ('title = "t"\ndata = "../d.csv"\nmeasure = "SMCR"\n')
SMC_CSV = "study,n,mean_pre,sd_pre,mean_post,r\nA,10,5,2,3,0.5\nB,12,6,2,4,0.4\n"
SMC_CSV_NO_R = "study,n,mean_pre,sd_pre,mean_post\nA,10,5,2,3\nB,12,6,2,4\n"
TWO = 'title = "t"\ndata = "../d.csv"\nmeasure = "OR"\n'
TWO_CSV = "study,events1,total1,events2,total2\nA,3,10,1,10\nB,5,12,2,11\n"
GLMM = BASE + 'method = "GLMM"\n'


def _project(tmp_path: Path, spec: str, data: str | bytes | None = CSV,
             name: str = "d.csv") -> Path:
    (tmp_path / "analyses").mkdir(exist_ok=True)
    if data is not None:
        p = tmp_path / name
        p.write_bytes(data) if isinstance(data, bytes) else p.write_text(data, encoding="utf-8")
    s = tmp_path / "analyses" / "s.toml"
    s.write_text(spec, encoding="utf-8")
    return s


def _run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert err.startswith("metamsc: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


# --- specs: one line naming the spec file and the key ----------------------------------------

SPEC_ERRORS = [
    ("unknown-key", BASE + 'methdo = "DL"\n', "unknown key 'methdo' (did you mean 'method'?)"),
    ("method-typo", BASE + 'method = "REMl"\n', "key 'method'"),
    ("method-number", BASE + "method = 3\n", "key 'method' must be a string"),
    ("level-text", BASE + 'level = "high"\n', "key 'level'"),
    ("level-percent", BASE + "level = 95\n", "key 'level' must be a fraction"),
    ("level-zero", BASE + "level = 0\n", "key 'level'"),
    ("level-one", BASE + "level = 1\n", "key 'level'"),
    ("level-negative", BASE + "level = -0.5\n", "key 'level'"),
    ("level-nan", BASE + "level = nan\n", "key 'level'"),
    ("level-inf", BASE + "level = inf\n", "key 'level'"),
    ("level-bool", BASE + "level = true\n", "key 'level'"),
    ("level-100", BASE + "level = 100\n", "key 'level'"),
    ("missing-measure", 'title = "t"\ndata = "../d.csv"\n', "missing required key 'measure'"),
    ("missing-title", 'data = "../d.csv"\nmeasure = "PLO"\n', "missing required key 'title'"),
    ("missing-data", 'title = "t"\nmeasure = "PLO"\n', "missing required key 'data'"),
    ("measure-unknown", BASE.replace("PLO", "PLOGIT"), "key 'measure': unknown measure 'PLOGIT'"),
    ("measure-lowercase", BASE.replace("PLO", "plo"), "key 'measure'"),
    ("measure-number", BASE.replace('"PLO"', "3"), "key 'measure' must be a string"),
    ("data-missing-file", BASE.replace("d.csv", "nope.csv"), "key 'data': no such file '../nope.csv'"),
    ("data-folder", BASE.replace("../d.csv", ".."), "key 'data'"),
    ("data-unknown-bundle", BASE.replace("../d.csv", "outcomez"), "key 'data'"),
    ("test-unknown", BASE + 'test = "hk"\n', "key 'test': unknown test 'hk'"),
    ("figure-jpg", BASE + 'figure = "f.jpg"\n', "key 'figure'"),
    ("figure-number", BASE + "figure = 3\n", "key 'figure'"),
    ("figure-list-number", BASE + 'figure = ["a.svg", 3]\n', "key 'figure'"),
    ("figure-no-suffix", BASE + 'figure = "figure"\n', "key 'figure'"),
    ("columns-unknown-role", BASE + '[columns]\nevnts = "x"\n', "key 'columns.evnts'"),
    ("columns-number", BASE + "[columns]\nevents = 3\n", "key 'columns.events'"),
    ("columns-not-table", BASE + 'columns = "x"\n', "key 'columns' must be a table"),
    ("add-negative", BASE + "add = -0.5\n", "key 'add'"),
    ("add-nan", BASE + "add = nan\n", "key 'add'"),
    ("add-inf", BASE + "add = inf\n", "key 'add'"),
    ("add-text", BASE + 'add = "half"\n', "key 'add'"),
    ("add-bool", BASE + "add = true\n", "key 'add'"),
    ("to-unknown", BASE + 'to = "some"\n', "key 'to'"),
    ("pi-unknown", BASE + 'pi = "x"\n', "key 'pi'"),
    ("i2-unknown", BASE + 'i2 = "x"\n', "key 'i2'"),
    ("genq", BASE + 'method = "GENQ"\n', "key 'method': GENQ needs study weights"),
    ("glmm-measure", BASE.replace("PLO", "PR") + 'method = "GLMM"\n', "key 'method'"),
    ("nagq-without-glmm", BASE + "nagq = 7\n", "key 'nagq'"),
    ("nagq-zero", GLMM + "nagq = 0\n", "key 'nagq'"),
    ("nagq-huge", GLMM + "nagq = 10000\n", "key 'nagq' must be an integer from 1 to 100"),
    ("nagq-word", GLMM + 'nagq = "low"\n', "key 'nagq'"),
    ("nagq-bool", GLMM + "nagq = true\n", "key 'nagq'"),
    ("nagq-fraction", GLMM + "nagq = 1.5\n", "key 'nagq'"),
    ("assume-r-2", SMCR + "[assume]\nr = 2\n", "key 'assume.r' must lie in [-1, 1]"),
    ("assume-r--1.5", SMCR + "[assume]\nr = -1.5\n", "key 'assume.r'"),
    ("assume-r-text", SMCR + '[assume]\nr = "x"\n', "key 'assume.r'"),
    ("assume-r-nan", SMCR + "[assume]\nr = nan\n", "key 'assume.r'"),
    ("assume-unknown-role", SMCR + "[assume]\nfoo = 1\n", "key 'assume.foo'"),
    ("assume-fraction-events", BASE + "[assume]\nevents = 2.5\n", "key 'assume.events'"),
    ("assume-total-zero", BASE + "[assume]\ntotal = 0\n", "key 'assume.total'"),
    ("assume-total-negative", BASE + "[assume]\ntotal = -3\n", "key 'assume.total'"),
    ("sensitivity-r-out", SMCR + "[sensitivity]\nr = [0.5, 2]\n", "key 'sensitivity.r'"),
    ("sensitivity-empty", SMCR + "[sensitivity]\nr = []\n", "key 'sensitivity.r'"),
    ("sensitivity-two-roles", SMCR + "[sensitivity]\nr = [0.5]\nn = [3]\n", "key 'sensitivity'"),
    ("sensitivity-bool", SMCR + "[sensitivity]\nr = [true]\n", "key 'sensitivity.r'"),
    ("sensitivity-unknown", SMCR + "[sensitivity]\nrho = [0.5]\n", "key 'sensitivity.rho'"),
    ("compare-incomplete", TWO + '[compare]\ncolumn = "g"\ngroup1 = "a"\n', "key 'compare'"),
    ("compare-one-group", BASE + '[compare]\ncolumn = "g"\ngroup1 = "a"\ngroup2 = "b"\n',
     "key 'compare' needs a two-group measure"),
    ("study-ci-unknown", BASE + 'study_ci = "XX"\n', "key 'study_ci'"),
    ("study-ci-not-proportion", TWO + 'study_ci = "CP"\n', "key 'study_ci'"),
    ("overall-false-no-subgroup", BASE + "overall = false\n", "key 'overall'"),
    ("kind-unknown", BASE + 'kind = "map"\n', "key 'kind'"),
    ("evidence-map-measure", 'kind = "evidence-map"\ntitle = "t"\ndata = "studies"\nmeasure = "PLO"\n',
     "key 'measure' does not apply"),
    ("where-table", BASE + "[where]\nx = {a = 1}\n", "key 'where.x'"),
    ("where-nested-list", BASE + "[where]\nx = [[1]]\n", "key 'where.x'"),
    ("where-bool", BASE + "[where]\nx = true\n", "key 'where.x'"),
    ("where-not-table", BASE + "where = 3\n", "key 'where' must be a table"),
    ("title-number", BASE.replace('"t"', "3"), "key 'title' must be a string"),
    ("overall-text", BASE + 'overall = "no"\n', "key 'overall'"),
    ("not-toml", 'title = \n', "not valid TOML"),
    ("duplicate-key", BASE + 'title = "u"\n', "not valid TOML"),
    ("deep-nesting", "a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("deep-tables", "a = " + "{b = " * 3000 + "1" + "}" * 3000 + "\n", "nested too deeply"),
]


@pytest.mark.parametrize("spec,needle", [c[1:] for c in SPEC_ERRORS], ids=[c[0] for c in SPEC_ERRORS])
def test_spec_error(tmp_path, capsys, spec, needle):
    data = SMC_CSV if "SMCR" in spec else TWO_CSV if '"OR"' in spec else CSV
    s = _project(tmp_path, spec, data)
    rc, _, err = _run(["run", s], capsys)
    _assert_one_line_error(rc, err, "s.toml", needle)
    assert not (tmp_path / "results").exists()


def test_spec_not_utf8(tmp_path, capsys):
    s = _project(tmp_path, "")
    s.write_bytes(b"title = '\xff\xfe'\n")
    _assert_one_line_error(*_run(["run", s], capsys)[::2], "s.toml", "not a UTF-8 text file")


def test_spec_missing(tmp_path, capsys):
    _assert_one_line_error(*_run(["run", tmp_path / "none.toml"], capsys)[::2],
                           "none.toml", "no such spec file")


def test_spec_is_a_folder(tmp_path, capsys):
    (tmp_path / "x.toml").mkdir()
    _assert_one_line_error(*_run(["run", tmp_path / "x.toml"], capsys)[::2],
                           "x.toml", "cannot read the spec file")


def test_spec_symlink_loop(tmp_path, capsys):
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")
    _assert_one_line_error(*_run(["run", tmp_path / "loop.toml"], capsys)[::2],
                           "loop.toml", "cannot read the spec file")


def test_data_symlink_loop(tmp_path, capsys):
    s = _project(tmp_path, BASE.replace("d.csv", "loop.csv"), None)
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop.csv")
    _assert_one_line_error(*_run(["run", s], capsys)[::2], "s.toml", "key 'data'", "loop.csv")


def test_assume_error_blames_the_spec_key_not_the_data(tmp_path, capsys):
    s = _project(tmp_path, SMCR + "[assume]\nr = 2\n", SMC_CSV_NO_R)
    rc, _, err = _run(["run", s], capsys)
    _assert_one_line_error(rc, err, "s.toml: key 'assume.r'")
    assert "d.csv" not in err and "row" not in err


# --- CSV files: one line naming the data file and the row or column --------------------------

LONG = "x" * 200_000
CSV_ERRORS = [
    ("empty", BASE, "", ["d.csv", "the file is empty"]),
    ("newlines-only", BASE, "\n\n\n", ["d.csv", "no header row (only blank lines)"]),
    ("crlf-only", BASE, "\r\n\r\n", ["d.csv", "no header row"]),
    ("semicolon", BASE, "study;events;total\nA;1;10\n", ["d.csv", "';'-delimited"]),
    ("tab", BASE, "study\tevents\ttotal\nA\t1\t10\n", ["d.csv", "tab-delimited"]),
    ("pipe", BASE, "study|events|total\nA|1|10\n", ["d.csv", "'|'-delimited"]),
    ("blank-header", BASE, "  \nA,1,10\n", ["d.csv", "header row is blank"]),
    ("duplicate-column", BASE, "study,events,events\nA,1,10\n", ["d.csv", "duplicate column 'events'"]),
    ("extra-cells", BASE, "study,events,total\nA,1,10\nB,2,10,7\n", ["d.csv", "row 3: 1 more cell"]),
    ("long-cell-row-2", BASE, f"study,events,total\n{LONG},1,10\n", ["d.csv", "row 2: a cell is longer"]),
    ("long-cell-row-3", BASE, f"study,events,total\nA,1,10\n{LONG},1,10\n", ["d.csv", "row 3: a cell"]),
    ("nul-byte", BASE, "study,events,total\nA,1\x00,10\n", ["d.csv", "row 2"]),
    ("missing-column", BASE, "study,x,total\nA,1,10\n", ["d.csv", "no column 'events' (role 'events')"]),
    ("mapped-column-missing", BASE + '[columns]\nevents = "ev"\n', CSV, ["d.csv", "no column 'ev'"]),
    ("missing-study-column", BASE, "name,events,total\nA,1,10\n", ["d.csv", "no column 'study'"]),
    ("subgroup-column-missing", BASE + 'subgroup = "design"\n', CSV, ["d.csv", "no column 'design'"]),
    ("where-column-missing", BASE + "[where]\ndesign = 1\n", CSV, ["d.csv", "no column 'design'"]),
    ("events-text", BASE, "study,events,total\nA,abc,10\nB,1,10\n",
     ["d.csv", "row 2", "column 'events'", "'abc' is not a number"]),
    ("events-hex", BASE, "study,events,total\nA,0x10,20\nB,1,10\n", ["d.csv", "row 2", "not a number"]),
    ("events-overflow", BASE, "study,events,total\nA,1,10\nB,1e999,10\n",
     ["d.csv", "row 3", "column 'events'", "not a finite number"]),
    ("events-inf", BASE, "study,events,total\nA,inf,10\nB,1,10\n", ["d.csv", "row 2", "not a finite"]),
    ("events-fraction", BASE, "study,events,total\nA,2.5,10\nB,1,10\n",
     ["d.csv", "row 2", "study 'A'", "whole number"]),
    ("total-fraction", BASE, "study,events,total\nA,2,10\nB,1,10.5\n", ["d.csv", "row 3", "whole number"]),
    ("events-above-total", BASE, "study,events,total\nA,2,10\nB,11,10\n",
     ["d.csv", "row 3", "events > total"]),
    ("events-negative", BASE, "study,events,total\nA,-1,10\nB,1,10\n", ["d.csv", "row 2", "negative"]),
    ("total-zero", BASE, "study,events,total\nA,0,0\nB,1,10\n", ["d.csv", "row 2", "must be > 0"]),
    ("total-negative", BASE, "study,events,total\nA,1,10\nB,1,-5\n", ["d.csv", "row 3"]),
    ("huge-counts", BASE, "study,events,total\nA,1e20,2e20\nB,1,10\n", ["d.csv", "row 2", "whole number"]),
    ("huge-total", BASE, "study,events,total\nA,1,1e308\nB,1,10\n", ["d.csv", "row 2", "whole number"]),
    ("glmm-fraction", GLMM, "study,events,total\nA,2.5,10\nB,1,10\n", ["d.csv", "row 2", "whole number"]),
    ("glmm-above-total", GLMM, "study,events,total\nA,2,10\nB,12,10\n", ["d.csv", "row 3"]),
    ("or-fraction", TWO, "study,events1,total1,events2,total2\nA,1.5,10,1,10\nB,5,12,2,11\n",
     ["d.csv", "row 2", "whole number"]),
    ("or-above-total", TWO, "study,events1,total1,events2,total2\nA,3,10,1,10\nB,5,12,20,11\n",
     ["d.csv", "row 3", "events2 > total2"]),
    ("smcr-n-1", SMCR, "study,n,mean_pre,sd_pre,mean_post,r\nA,1,5,2,3,0.5\nB,12,6,2,4,0.4\n",
     ["d.csv", "row 2", "role 'n' must be at least 3"]),
    ("smcr-n-2", SMCR, "study,n,mean_pre,sd_pre,mean_post,r\nA,10,5,2,3,0.5\nB,2,6,2,4,0.4\n",
     ["d.csv", "row 3", "at least 3"]),
    ("smcr-r-out", SMCR, "study,n,mean_pre,sd_pre,mean_post,r\nA,10,5,2,3,1.5\nB,12,6,2,4,0.4\n",
     ["d.csv", "row 2", "role 'r' must lie in [-1, 1]"]),
    ("smcr-sd-zero", SMCR, "study,n,mean_pre,sd_pre,mean_post,r\nA,10,5,0,3,0.5\nB,12,6,2,4,0.4\n",
     ["d.csv", "row 2", "sd_pre"]),
    ("mn-sd-negative", BASE.replace("PLO", "MN"), "study,mean,sd,n\nA,1,-2,10\nB,1,2,10\n",
     ["d.csv", "row 2", "'sd' is negative"]),
    ("mnln-mean-zero", BASE.replace("PLO", "MNLN"), "study,mean,sd,n\nA,0,2,10\nB,1,2,10\n",
     ["d.csv", "row 2", "'mean' must be > 0"]),
    ("irln-time-zero", BASE.replace("PLO", "IRLN"), "study,events,time\nA,1,0\nB,1,2\n",
     ["d.csv", "row 2", "'time' must be > 0"]),
    ("ir-fraction", BASE.replace("PLO", "IR"), "study,events,time\nA,1.5,10\nB,1,2\n",
     ["d.csv", "row 2", "whole number"]),
    ("gen-vi-negative", BASE.replace("PLO", "GEN"), "study,yi,vi\nA,1,-0.1\nB,1,0.2\n",
     ["d.csv", "row 2", "'vi' is negative"]),
    ("compare-duplicate-group", TWO.replace("OR", "RR") + '[compare]\ncolumn = "g"\ngroup1 = "a"\ngroup2 = "b"\n',
     "study,g,events,total\nA,a,1,10\nA,a,2,10\nA,b,3,10\n", ["d.csv", "row 3", "more than one g = 'a'"]),
    ("where-leaves-nothing", BASE + '[where]\nstudy = "Z"\n', CSV, ["no rows left"]),
    ("every-row-missing", BASE, "study,events,total\nA,,10\nB,NA,10\n", ["no rows left"]),
]


@pytest.mark.parametrize("spec,data,needles", [c[1:] for c in CSV_ERRORS], ids=[c[0] for c in CSV_ERRORS])
def test_csv_error(tmp_path, capsys, spec, data, needles):
    s = _project(tmp_path, spec, data)
    rc, _, err = _run(["run", s], capsys)
    _assert_one_line_error(rc, err, *needles)
    assert not (tmp_path / "results").exists()


def test_csv_not_utf8(tmp_path, capsys):
    s = _project(tmp_path, BASE, "study,events,total\nA,1,10\n".encode() + b"\xe9t\xe9,1,10\n")
    _assert_one_line_error(*_run(["run", s], capsys)[::2], "d.csv", "not UTF-8")


def test_csv_is_a_folder(tmp_path, capsys):
    s = _project(tmp_path, BASE.replace("d.csv", "dir.csv"), None)
    (tmp_path / "dir.csv").mkdir()
    _assert_one_line_error(*_run(["run", s], capsys)[::2], "s.toml", "key 'data'", "dir.csv")


def test_long_cell_row_number_matches_other_errors(tmp_path, capsys):
    """A 200,000-character name and a bad number on the same line get the same row number."""
    s = _project(tmp_path, BASE, f"study,events,total\nA,1,10\n{LONG},1,10\n")
    err1 = _run(["run", s], capsys)[2]
    s = _project(tmp_path, BASE, "study,events,total\nA,1,10\nB,x,10\n")
    err2 = _run(["run", s], capsys)[2]
    assert "row 3" in err1 and "row 3" in err2


# --- exclusions with a reason ----------------------------------------------------------------

EXCLUSIONS = [
    ("events-empty", "study,events,total\nA,1,10\nB,,12\nC,0,8\n", "B", "missing events (row 3 of d.csv)"),
    ("events-NA", "study,events,total\nA,1,10\nB,NA,12\nC,0,8\n", "B", "missing events"),
    ("events-nan", "study,events,total\nA,1,10\nB,nan,12\nC,0,8\n", "B", "missing events"),
    ("total-dash", "study,events,total\nA,1,10\nB,3,-\nC,0,8\n", "B", "missing total"),
    ("total-null", "study,events,total\nA,1,10\nB,3,null\nC,0,8\n", "B", "missing total"),
    ("both-missing", "study,events,total\nA,1,10\nB,,\nC,0,8\n", "B", "missing events, total (row 3"),
    ("no-label", "study,events,total\nA,1,10\n,,12\nC,0,8\n", "row 3", "missing events"),
    ("whitespace-missing", "study,events,total\nA,1,10\nB,  ,12\nC,0,8\n", "B", "missing events"),
]


@pytest.mark.parametrize("data,study,reason", [c[1:] for c in EXCLUSIONS], ids=[c[0] for c in EXCLUSIONS])
def test_exclusion_with_reason(tmp_path, capsys, data, study, reason):
    s = _project(tmp_path, BASE, data)
    rc, out, err = _run(["run", s], capsys)
    assert rc == 0, err
    d = json.loads((tmp_path / "results" / "s.json").read_text())
    assert d["k"] == 2
    assert any(e["study"] == study and reason in e["reason"] for e in d["excluded"]), d["excluded"]
    assert "excluded 1" in out


def test_compare_without_a_group_is_excluded(tmp_path, capsys):
    spec = TWO.replace("OR", "RR") + '[compare]\ncolumn = "g"\ngroup1 = "a"\ngroup2 = "b"\n'
    s = _project(tmp_path, spec, "study,g,events,total\nA,a,1,10\nA,b,3,10\nB,a,2,10\nC,a,2,9\nC,b,1,9\n")
    assert _run(["run", s], capsys)[0] == 0
    d = json.loads((tmp_path / "results" / "s.json").read_text())
    assert d["excluded"] == [{"study": "B", "reason": "no g = 'b' row to compare"}]


# --- inputs that must give the correct result ------------------------------------------------

def _plo_reference():
    return metamsc.pool_proportions([1, 3, 0], [10, 12, 8], measure="PLO")


RESULTS = [
    ("bom", "\ufeff" + CSV),
    ("crlf", CSV.replace("\n", "\r\n")),
    ("trailing-blank-lines", CSV + "\n\n\n"),
    ("whole-floats", "study,events,total\nA,1.0,10.0\nB,3,12\nC,0.0,8\n"),
    ("spaces", "study,events,total\nA, 1 ,10\nB,3 , 12\nC,0,8\n"),
    ("reordered-columns", "total,study,events\n10,A,1\n12,B,3\n8,C,0\n"),
    ("extra-columns", "study,notes,events,total\nA,x,1,10\nB,\"a, b\",3,12\nC,,0,8\n"),
    ("quoted-cells", 'study,events,total\n"A",1,"10"\nB,3,12\nC,0,8\n'),
    ("no-final-newline", CSV.rstrip("\n")),
    ("exponent", "study,events,total\nA,1e0,1e1\nB,3,12\nC,0,8\n"),
]


@pytest.mark.parametrize("data", [c[1] for c in RESULTS], ids=[c[0] for c in RESULTS])
def test_correct_result(tmp_path, capsys, data):
    s = _project(tmp_path, BASE, data)
    rc, _, err = _run(["run", s], capsys)
    assert rc == 0, err
    d = json.loads((tmp_path / "results" / "s.json").read_text())
    ref = _plo_reference()
    assert d["k"] == 3 and d["excluded"] == []
    assert d["estimate"] == pytest.approx(ref.estimate, rel=1e-7)
    assert d["tau2"] == pytest.approx(ref.tau2, rel=1e-7, abs=1e-12)


def test_label_with_comma_and_unicode_is_kept(tmp_path, capsys):
    s = _project(tmp_path, BASE, 'study,events,total\n"Müller, 2020",1,10\nØ,3,12\n李,0,8\n')
    assert _run(["run", s], capsys)[0] == 0
    d = json.loads((tmp_path / "results" / "s.json").read_text(encoding="utf-8"))
    assert [r["study"] for r in d["studies"]] == ["Müller, 2020", "Ø", "李"]


def test_duplicate_labels_are_said_on_the_console_and_in_the_json(tmp_path, capsys):
    s = _project(tmp_path, BASE, "study,events,total\nA,1,10\nA,3,12\nC,0,8\n")
    rc, out, _ = _run(["run", s], capsys)
    assert rc == 0
    assert "s: warning: study labels used more than once: A" in out
    d = json.loads((tmp_path / "results" / "s.json").read_text())
    assert d["k"] == 3 and any("more than once" in w for w in d["warnings"])


def test_single_study_is_its_own_estimate(tmp_path, capsys):
    s = _project(tmp_path, BASE, "study,events,total\nA,3,12\n")
    assert _run(["run", s], capsys)[0] == 0
    d = json.loads((tmp_path / "results" / "s.json").read_text())
    assert d["k"] == 1 and d["estimate"] == pytest.approx(math.log(3 / 9), rel=1e-7)


def test_assume_fills_a_missing_correlation(tmp_path, capsys):
    s = _project(tmp_path, SMCR + "[assume]\nr = 0.5\n", SMC_CSV_NO_R)
    assert _run(["run", s], capsys)[0] == 0
    d = json.loads((tmp_path / "results" / "s.json").read_text())
    es = effect_size("SMCR", n=[10, 12], mean_pre=[5, 6], sd_pre=[2, 2], mean_post=[3, 4], r=[0.5, 0.5])
    assert [r["yi"] for r in d["studies"]] == pytest.approx(list(es.yi), rel=1e-7)


def test_many_rows_never_end_in_a_traceback(tmp_path, capsys):
    """100,000 studies: a result or a one-line error, never a traceback."""
    rng = np.random.default_rng(1)
    n = rng.integers(10, 50, 100_000)
    x = rng.integers(1, 9, 100_000)
    rows = "".join(f"S{i},{a},{b}\n" for i, (a, b) in enumerate(zip(x, n)))
    s = _project(tmp_path, BASE, "study,events,total\n" + rows)
    rc, out, err = _run(["run", s], capsys)
    assert "Traceback" not in err
    if rc == 0:
        assert json.loads((tmp_path / "results" / "s.json").read_text())["k"] == 100_000
    else:
        _assert_one_line_error(rc, err)


# --- files: atomic outputs, inputs never overwritten, writes only where allowed -------------

def test_out_is_a_file(tmp_path, capsys):
    s = _project(tmp_path, BASE)
    (tmp_path / "afile").write_text("keep")
    _assert_one_line_error(*_run(["run", s, "--out", tmp_path / "afile"], capsys)[::2],
                           "--out", "afile", "is a file, not a folder")
    assert (tmp_path / "afile").read_text() == "keep"


def test_out_folder_is_made(tmp_path, capsys):
    s = _project(tmp_path, BASE)
    assert _run(["run", s, "--out", tmp_path / "x" / "y"], capsys)[0] == 0
    assert json.loads((tmp_path / "x" / "y" / "s.json").read_text())["k"] == 3


def test_figure_over_the_data_file_is_refused(tmp_path, capsys):
    s = _project(tmp_path, BASE.replace("d.csv", "d.png") + 'figure = "../d.png"\n', CSV, name="d.png")
    _assert_one_line_error(*_run(["run", s], capsys)[::2], "s.toml", "key 'figure'",
                           "must not be written over it")
    assert (tmp_path / "d.png").read_text() == CSV


def test_json_over_the_data_file_is_refused(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    s = _project(tmp_path, BASE.replace("../d.csv", "../results/s.json"), CSV, name="results/s.json")
    rc, _, err = _run(["run", s], capsys)
    _assert_one_line_error(rc, err, "s.json", "refusing to write an output over an input")
    assert (tmp_path / "results" / "s.json").read_text() == CSV


def test_figure_outside_the_project_is_refused(tmp_path, capsys):
    proj = tmp_path / "proj"
    proj.mkdir()
    s = _project(proj, BASE + f'figure = "{tmp_path / "elsewhere.svg"}"\n')
    _assert_one_line_error(*_run(["run", s], capsys)[::2], "key 'figure'", "outside the project")
    assert not (tmp_path / "elsewhere.svg").exists() and not (proj / "results").exists()


def test_figure_outside_the_project_goes_into_an_explicit_out(tmp_path, capsys):
    proj = tmp_path / "proj"
    proj.mkdir()
    s = _project(proj, BASE + f'figure = "{tmp_path / "out" / "f.svg"}"\n')
    assert _run(["run", s, "--out", tmp_path / "out"], capsys)[0] == 0
    assert (tmp_path / "out" / "f.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "out" / "s.json").is_file()


def test_failed_figure_writes_nothing_and_keeps_earlier_outputs(tmp_path, capsys, monkeypatch):
    s = _project(tmp_path, BASE + 'figure = "../figures/s.svg"\n')
    assert _run(["run", s], capsys)[0] == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    (tmp_path / "d.csv").write_text("study,events,total\nA,2,10\nB,3,12\nC,0,8\n")

    def boom(fig, path, dpi=None):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("metamsc.plots.save_figure", boom)
    rc, _, err = _run(["run", s], capsys)
    _assert_one_line_error(rc, err, "No space left on device")
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    del after[tmp_path / "d.csv"], before[tmp_path / "d.csv"]
    assert after == before  # the JSON was not replaced, no temporary file is left


def test_two_specs_second_fails_first_not_written(tmp_path, capsys):
    s = _project(tmp_path, BASE)
    bad = tmp_path / "analyses" / "bad.toml"
    bad.write_text(BASE.replace("d.csv", "nope.csv"))
    rc, _, err = _run(["run", s, bad], capsys)
    _assert_one_line_error(rc, err, "bad.toml", "key 'data'")
    assert not (tmp_path / "results").exists()


def test_successful_write_leaves_no_temporary_files(tmp_path, capsys):
    s = _project(tmp_path, BASE + 'figure = ["../figures/s.svg", "../figures/s.pdf"]\n')
    assert _run(["run", s], capsys)[0] == 0
    names = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert names == ["d.csv", "s.json", "s.pdf", "s.svg", "s.toml"]
    assert (tmp_path / "results" / "s.json").stat().st_mode & 0o777 == \
        (tmp_path / "d.csv").stat().st_mode & 0o777


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    p = tmp_path / "a.json"
    report.write_atomic(p, "old\n")
    with pytest.raises(TypeError):
        report.write_atomic(p, 3)  # not text: fails while writing the temporary file
    assert p.read_text() == "old\n" and [q.name for q in tmp_path.iterdir()] == ["a.json"]


def _repo_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "analyses").mkdir(parents=True)
    (root / "data").mkdir()
    for name, rows in (("a", "A,2,10\nB,5,12\nC,1,9\n"), ("b", "X,7,10\nY,3,12\n")):
        (root / "data" / f"{name}.csv").write_text("study,events,total\n" + rows)
        (root / "analyses" / f"{name}.toml").write_text(
            f'title = "{name}"\ndata = "../data/{name}.csv"\nmeasure = "PLO"\n'
            f'figure = "../figures/{name}.svg"\n')
    return root


def test_failed_reproduce_leaves_every_earlier_output_intact(tmp_path, capsys):
    root = _repo_project(tmp_path)
    assert _run(["reproduce", root], capsys)[0] == 0
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    (root / "data" / "a.csv").write_text("study,events,total\nA,3,10\nB,5,12\nC,1,9\n")
    (root / "data" / "b.csv").write_text("study,events,total\nX,x,10\nY,3,12\n")  # b fails
    rc, _, err = _run(["reproduce", root], capsys)
    _assert_one_line_error(rc, err, "b.csv", "row 2")
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {root / "data" / "a.csv", root / "data" / "b.csv"}  # a.json not replaced


def test_manifest_paths_are_relative_for_data_outside_the_project(tmp_path, capsys):
    root = _repo_project(tmp_path)
    (tmp_path / "shared.csv").write_text("study,events,total\nA,2,10\nB,5,12\n")
    (root / "analyses" / "a.toml").write_text(
        'title = "a"\ndata = "../../shared.csv"\nmeasure = "PLO"\n')
    assert _run(["reproduce", root], capsys)[0] == 0
    man = json.loads((root / "results" / "manifest.json").read_text())
    inputs = {k for o in man["outputs"].values() for k in o["inputs"]}
    assert "../shared.csv" in inputs
    assert not any(os.path.isabs(k) or str(tmp_path) in k for k in inputs | set(man["outputs"]))


def _broken_data(tmp_path: Path, monkeypatch) -> None:
    """A copy of the curated data with Cheng 2022's 8/17 edited to 9/17."""
    from metamsc import datasets

    data = tmp_path / "data"
    shutil.copytree(datasets.DATA_DIR, data)
    text = (data / "outcomes.csv").read_text(encoding="utf-8")
    old = "cheng2022-pasi40-all-6mo,cheng2022,PASI-40 response,6 months,all,8,17,"
    assert old in text
    (data / "outcomes.csv").write_text(text.replace(old, old.replace(",8,17,", ",9,17,")),
                                       encoding="utf-8")
    monkeypatch.setattr(datasets, "DATA_DIR", data)


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    """The repository's specs with their committed outputs."""
    root = tmp_path_factory.mktemp("repo")
    repo = Path(__file__).resolve().parents[1]
    for d in ("analyses", "results", "figures"):
        shutil.copytree(repo / d, root / d)
    return root


@pytest.mark.parametrize("command", ["reproduce", "check"])
def test_broken_curated_data_stops_reproduce_and_check(repo_copy, tmp_path, capsys, monkeypatch,
                                                       command):
    _broken_data(tmp_path, monkeypatch)
    before = {p: p.read_bytes() for p in repo_copy.rglob("*") if p.is_file()}
    rc = main([command, str(repo_copy)])
    out, err = capsys.readouterr()
    assert rc == 2
    lines = err.splitlines()
    assert lines[-1].startswith("metamsc: error: ") and "fail validation" in lines[-1]
    assert "nothing was written" in lines[-1]
    assert len(lines) >= 2 and all(line.startswith("ERROR") for line in lines[:-1]), lines
    assert any("cheng2022" in line for line in lines[:-1])
    assert {p: p.read_bytes() for p in repo_copy.rglob("*") if p.is_file()} == before


# --- the Python API: ValueError naming the argument and the study ----------------------------

def _smcr(n):
    return dict(n=[n], mean_pre=[5], sd_pre=[2], mean_post=[3], r=[0.5])


API_ERRORS = [
    ("measure-unknown", lambda: effect_size("XX", yi=[1], vi=[1]), "unknown measure 'XX'"),
    ("role-missing", lambda: effect_size("PLO", events=[1]), "needs roles total"),
    ("role-unexpected", lambda: effect_size("PLO", events=[1], total=[2], time=[1]), "unexpected time"),
    ("lengths", lambda: effect_size("PLO", events=[1, 2], total=[10]), "same number of studies"),
    ("two-dimensional", lambda: effect_size("PLO", events=[[1]], total=[[2]]), "one-dimensional"),
    ("to-unknown", lambda: effect_size("PLO", events=[1], total=[2], to="some"), "to='some'"),
    ("vtype", lambda: effect_size("PLO", events=[1], total=[2], vtype="XX"), "vtype"),
    ("convention", lambda: effect_size("PLO", events=[1], total=[2], convention="R"), "convention"),
    ("add-negative", lambda: effect_size("PLO", events=[0], total=[10], add=-0.5), "add must be"),
    ("add-nan", lambda: effect_size("PLO", events=[0], total=[10], add=float("nan")), "add must be"),
    ("add-inf", lambda: effect_size("PLO", events=[0], total=[10], add=float("inf")), "add must be"),
    ("add-list", lambda: effect_size("PLO", events=[0], total=[10], add=[0.5]), "add must be"),
    ("add-negative-meta", lambda: effect_size("PR", events=[0], total=[10], add=-1, convention="meta"),
     "add must be"),
    ("add-negative-pool", lambda: metamsc.pool_proportions([0, 3], [10, 10], add=-0.5), "add must be"),
    ("events-fraction-plo", lambda: effect_size("PLO", events=[2.5], total=[10]),
     "role 'events' must be a whole number (a count), study 1 has 2.5"),
    ("events-fraction-pool", lambda: metamsc.pool_proportions([1, 2.5], [10, 10]), "study 2 has 2.5"),
    ("total-fraction", lambda: effect_size("PLO", events=[2], total=[10.5]), "role 'total'"),
    ("events-fraction-or", lambda: effect_size("OR", events1=[1], total1=[10], events2=[0.5], total2=[10]),
     "role 'events2'"),
    ("total-fraction-rd", lambda: effect_size("RD", events1=[1], total1=[10.2], events2=[0], total2=[10]),
     "role 'total1'"),
    ("events-fraction-rate", lambda: effect_size("IRLN", events=[1.5], time=[10]), "role 'events'"),
    ("counts-1e20", lambda: effect_size("PLO", events=[1e20], total=[2e20]), "whole number"),
    ("total-1e308", lambda: effect_size("PR", events=[1], total=[1e308]), "whole number"),
    ("smcr-n-1", lambda: effect_size("SMCR", **_smcr(1)), "role 'n' must be at least 3 for SMCR"),
    ("smcr-n-2", lambda: effect_size("SMCR", **_smcr(2)), "at least 3"),
    ("smcc-n-1", lambda: effect_size("SMCC", n=[1], mean_pre=[5], sd_pre=[2], mean_post=[3],
                                     sd_post=[2], r=[0.5]), "at least 3 for SMCC"),
    ("r-out", lambda: effect_size("MC", n=[5], mean_pre=[5], sd_pre=[2], mean_post=[3], sd_post=[2],
                                  r=[1.5]), "role 'r' must lie in [-1, 1]"),
    ("events-above-total", lambda: effect_size("PLO", events=[11], total=[10]), "events > total"),
    ("events-negative", lambda: effect_size("PLO", events=[-1], total=[10]), "negative in study 1"),
    ("total-zero", lambda: effect_size("PLO", events=[0], total=[0]), "'total' must be > 0"),
    ("sd-negative", lambda: effect_size("MN", mean=[1], sd=[-1], n=[3]), "'sd' is negative"),
    ("mean-zero-log", lambda: effect_size("MNLN", mean=[0], sd=[1], n=[3]), "'mean' must be > 0"),
    ("time-zero", lambda: effect_size("IR", events=[1], time=[0]), "'time' must be > 0"),
    ("vi-negative", lambda: effect_size("GEN", yi=[1], vi=[-1]), "'vi' is negative"),
    ("labels-length", lambda: effect_size("GEN", yi=[1, 2], vi=[1, 1], labels=["a"]), "labels"),
    ("glmm-nagq-10000", lambda: fit_glmm([1, 2], [10, 10], nagq=10000),
     "nagq must be an integer from 1 to 100 or 'high'"),
    ("glmm-nagq-0", lambda: fit_glmm([1, 2], [10, 10], nagq=0), "nagq"),
    ("glmm-nagq-fraction", lambda: fit_glmm([1, 2], [10, 10], nagq=1.5), "nagq"),
    ("glmm-nagq-word", lambda: fit_glmm([1, 2], [10, 10], nagq="low"), "nagq"),
    ("glmm-nagq-bool", lambda: fit_glmm([1, 2], [10, 10], nagq=True), "nagq"),
    ("glmm-nagq-nan", lambda: fit_glmm([1, 2], [10, 10], nagq=float("nan")), "nagq"),
    ("glmm-nagq-inf", lambda: fit_glmm([1, 2], [10, 10], nagq=float("inf")), "nagq"),
    ("glmm-level", lambda: fit_glmm([1, 2], [10, 10], level=1.5), "level"),
    ("glmm-method", lambda: fit_glmm([1, 2], [10, 10], method="REML"), "method"),
    ("glmm-measure", lambda: fit_glmm([1, 2], [10, 10], measure="MD"), "measure"),
    ("glmm-test", lambda: fit_glmm([1, 2], [10, 10], test="xx"), "test"),
    ("glmm-fraction", lambda: fit_glmm([1.5, 2], [10, 10]), "study 1 has 1.5"),
    ("glmm-total-zero", lambda: fit_glmm([0, 2], [0, 10]), "study 1"),
    ("pool-method", lambda: metamsc.pool([0.1, 0.2], [0.1, 0.1], method="XX"), "method 'XX'"),
    ("pool-test", lambda: metamsc.pool([0.1, 0.2], [0.1, 0.1], test="XX"), "test 'XX'"),
    ("pool-lengths", lambda: metamsc.pool([0.1, 0.2], [0.1]), "same length"),
]


@pytest.mark.parametrize("call,needle", [c[1:] for c in API_ERRORS], ids=[c[0] for c in API_ERRORS])
def test_api_error(call, needle):
    with pytest.raises(ValueError) as e:
        call()
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_glmm_many_nodes_is_a_correct_result():
    """The most nodes allowed give the same fit as 41 ("high"), where estimates have converged."""
    a = fit_glmm([1, 2, 5], [10, 10, 12], nagq=100)
    b = fit_glmm([1, 2, 5], [10, 10, 12], nagq="high")
    assert a.estimate == pytest.approx(b.estimate, abs=1e-8)
    assert a.tau2 == pytest.approx(b.tau2, abs=1e-8)


def test_effect_size_missing_counts_still_pass_to_exclusion():
    """NaN counts are missing values (left out later, with a reason), not fractional counts."""
    es = effect_size("PLO", events=[1, np.nan], total=[10, 10])
    assert np.isnan(es.yi[1])
    r = metamsc.pool_effects(es)
    assert r.k == 1 and len(r.excluded) == 1


def test_counts_up_to_2_53_are_accepted():
    es = effect_size("PR", events=[2.0**52], total=[2.0**53])
    assert es.yi[0] == 0.5

