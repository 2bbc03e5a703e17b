"""Errors carry what they are about as attributes (file, key, row, column, study) and print as
one line; callers route them by attribute, never by their text."""

from __future__ import annotations

import pickle

import pytest

from metamsc.errors import DataError, MetamscError, NoStudyLeft, OutputError, SpecError
from metamsc.project import load_spec, run_spec


def _spec(tmp_path, body, data=None):
    if data is not None:
        (tmp_path / "d.csv").write_text(data)
    p = tmp_path / "s.toml"
    p.write_text(body)
    return p


BASE = 'title = "t"\ndata = "d.csv"\nmeasure = "PLO"\n'


def test_spec_error_names_file_and_key(tmp_path):
    p = _spec(tmp_path, BASE + 'level = 95\n')
    with pytest.raises(SpecError) as e:
        load_spec(p)
    err = e.value
    assert isinstance(err, MetamscError) and isinstance(err, ValueError)
    assert err.file == str(p) and err.key == "level"
    assert str(err) == f"{p}: key 'level' must be a fraction such as 0.95, got 95"
    assert "\n" not in str(err)


def test_unknown_key_and_nested_key(tmp_path):
    with pytest.raises(SpecError) as e:
        load_spec(_spec(tmp_path, BASE + 'mesure = "x"\n'))
    assert e.value.key == "mesure" and "did you mean 'measure'" in str(e.value)
    with pytest.raises(SpecError) as e:
        load_spec(_spec(tmp_path, BASE.replace("PLO", "MC") + "[assume]\nr = 2\n"))
    assert e.value.key == "assume.r"


def test_data_error_names_row_column_and_study(tmp_path):
    p = _spec(tmp_path, BASE, "study,events,total\nA,1,10\nB,three,12\n")
    with pytest.raises(DataError) as e:
        run_spec(p)
    err = e.value
    assert (err.row, err.column) == (3, "events") and err.file.endswith("d.csv")
    assert str(err).endswith("d.csv: row 3: column 'events': 'three' is not a number")
    # an effect-size failure: the row and the study are found by position, not from the text
    p = _spec(tmp_path, BASE, "study,events,total\nA,1,10\nB,13,12\n")
    with pytest.raises(DataError) as e:
        run_spec(p)
    assert (e.value.row, e.value.study, e.value.column) == (3, "B", None)
    assert "events > total" in str(e.value) and "\n" not in str(e.value)


def test_no_study_left_is_a_data_error(tmp_path):
    p = _spec(tmp_path, BASE + 'where = {arm = "x"}\n', "study,events,total,arm\nA,1,10,y\n")
    with pytest.raises(NoStudyLeft) as e:
        run_spec(p)
    assert isinstance(e.value, DataError) and e.value.file == str(p.resolve())


def test_errors_survive_pickling_and_keep_one_line():
    err = DataError("d.csv", "a\\nb  c", row=4, column="x", study="S")
    assert str(err) == "d.csv: row 4: column 'x': study 'S': a\\nb c"
    err = DataError("d.csv", "value\nsplit over lines", row=4)
    assert str(err) == "d.csv: row 4: value split over lines"
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.row) == (DataError, str(err), 4)
    out = OutputError("f.svg", "an output path is a folder", key="figure")
    assert (out.file, out.key, str(out)) == ("f.svg", "figure", "f.svg: an output path is a folder")
    assert str(SpecError("a message that names its place")) == "a message that names its place"
