"""Tests of the bundled-data loaders in metamsc.datasets."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import metamsc.datasets as ds

REPO = Path(__file__).resolve().parents[1]


def by_key(rows: list[dict[str, str]], key: str) -> dict[str, dict[str, str]]:
    return {r[key]: r for r in rows}


def test_data_dir_and_bundled_names() -> None:
    assert ds.DATA_DIR == Path(ds.__file__).resolve().parent / "data"
    assert ds.BUNDLED == ("studies", "outcomes", "provenance")
    for name in ds.BUNDLED:
        assert (ds.DATA_DIR / f"{name}.csv").is_file()


def test_csv_files_are_utf8_lf_with_schema_headers() -> None:
    for name in ds.BUNDLED:
        raw = (ds.DATA_DIR / f"{name}.csv").read_bytes()
        assert b"\r" not in raw
        header = raw.decode("utf-8").split("\n", 1)[0]
        assert header.split(",") == list(ds.COLUMNS[name])


def test_read_studies() -> None:
    columns, rows = ds.read_rows("studies")
    assert columns == list(ds.STUDY_COLUMNS)
    assert len(rows) == 20  # Yao 2021 and its registration NCT03265613 are one record
    assert [r["study_id"] for r in rows] == sorted(r["study_id"] for r in rows)
    studies = by_key(rows, "study_id")
    cheng = studies["cheng2022"]
    assert (cheng["registry_id"], cheng["n_planned"], cheng["n_enrolled"], cheng["n_male"], cheng["n_female"]) == (
        "NCT03765957", "12", "17", "8", "9")
    assert cheng["doi"] == "10.1038/s41392-022-01059-y"
    assert studies["chen2016"]["dose_cells_per_kg"] == "1e6"
    assert studies["chen2016"]["n_infusions"] == "5"
    assert studies["park2020"]["n_enrolled"] == "20" and studies["park2020"]["n_analysed"] == "18"
    assert "nct03265613" not in studies and studies["yao2021"]["registry_id"] == "NCT03265613"
    assert studies["yao2021"]["dose_as_written"].startswith(
        "Intravenous injection of 5 × 10^5 cells/kg at week 0, week 4 and week 8")
    assert studies["maria2016"]["setting"] == "preclinical"
    assert studies["nct03745417"]["status"] == "not yet recruiting"
    assert {r["indication"] for r in rows} == {"psoriasis", "systemic sclerosis"}
    assert sum(r["results_reported"] == "no" for r in rows) == 8  # 7 registrations + the mouse study


def test_read_outcomes_is_joined_with_studies() -> None:
    columns, rows = ds.read_rows("outcomes")
    extra = [c for c in ds.STUDY_COLUMNS if c not in ds.OUTCOME_COLUMNS]
    assert columns == list(ds.OUTCOME_COLUMNS) + extra
    assert columns.count("notes") == 1 and columns.count("study_id") == 1
    assert len(rows) == 48
    outcomes = by_key(rows, "outcome_id")
    pasi40 = outcomes["cheng2022-pasi40-all-6mo"]
    assert (pasi40["events"], pasi40["total"], pasi40["percent_reported"]) == ("8", "17", "47.1")
    assert pasi40["citation"] == "Cheng et al. 2022"
    assert pasi40["design"] == "single-arm trial"
    assert pasi40["cell_source"] == "umbilical cord"
    assert pasi40["donor"] == "allogeneic"
    assert pasi40["year"] == "2022"
    assert pasi40["results_reported"] == "yes"
    assert pasi40["notes"].startswith("At least 40% PASI improvement")  # the outcome's notes, not the study's
    mrss = outcomes["zhang2017-mrss-all-12mo"]
    # n at 12 months is not printed (follow-up 7-21 months): left empty, declared by the analysis
    assert (mrss["n"], mrss["mean_pre"], mrss["sd_pre"], mrss["mean_post"], mrss["sd_post"]) == (
        "", "20.1", "3.1", "13.8", "10.2")
    assert mrss["indication"] == "systemic sclerosis"
    assert outcomes["dejesus2016-pasi-p2-eofu"]["value_post"] == "8.3"
    assert outcomes["dejesus2016-pasi75-all-eofu"]["events"] == "0"


def test_read_rows_of_a_path_is_not_joined(tmp_path: Path) -> None:
    columns, rows = ds.read_rows(ds.DATA_DIR / "outcomes.csv")
    assert columns == list(ds.OUTCOME_COLUMNS)
    assert len(rows) == 48
    copy = tmp_path / "x.csv"
    shutil.copy(ds.DATA_DIR / "provenance.csv", copy)
    columns, rows = ds.read_rows(str(copy))
    assert columns == list(ds.PROVENANCE_COLUMNS)
    quote = next(r["quote"] for r in rows if r["key"] == "cheng2022-pasi40-all-6mo" and r["value"] == "36")
    assert quote == "共有 47.1%(17/36)的银屑病患者 PASI 评分至少改善 40%"


def test_unknown_name_raises_one_line_value_error() -> None:
    with pytest.raises(ValueError) as info:
        ds.read_rows("trials")
    message = str(info.value)
    assert "\n" not in message
    assert "'trials'" in message
    assert "studies, outcomes, provenance" in message


def test_join_with_unknown_study_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ds.BUNDLED:
        shutil.copy(ds.DATA_DIR / f"{name}.csv", tmp_path / f"{name}.csv")
    text = (tmp_path / "outcomes.csv").read_text(encoding="utf-8")
    (tmp_path / "outcomes.csv").write_text(text.replace(",song2017,", ",nosuch2020,"), encoding="utf-8")
    monkeypatch.setattr(ds, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match="unknown study_id 'nosuch2020'"):
        ds.read_rows("outcomes")


def test_import_does_not_load_pandas() -> None:
    code = "import sys, metamsc.datasets; print('pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={"PYTHONPATH": str(REPO), "PATH": ""}, check=True)
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------
# pandas loaders
# ------------------------------------------------------------------------------------------
def test_load_studies() -> None:
    pytest.importorskip("pandas")
    frame = ds.load_studies()
    assert frame.shape == (20, len(ds.STUDY_COLUMNS))
    assert list(frame.columns) == list(ds.STUDY_COLUMNS)
    for col in ds.NUMERIC_COLUMNS["studies"]:
        assert frame[col].dtype == "float64"
    row = frame.set_index("study_id").loc["chen2016"]
    assert row["dose_cells_per_kg"] == 1e6
    assert row["year"] == 2016
    assert row["age"] == "30.5 ± 6.4"
    assert math.isnan(frame.set_index("study_id").loc["cheng2022", "dose_cells_per_kg"])
    assert frame["n_enrolled"].sum() == 2 + 17 + 1 + 2 + 12 + 20 + 1 + 6 + 1 + 2 + 7 + 14


def test_load_outcomes_joined_and_plain() -> None:
    pytest.importorskip("pandas")
    joined = ds.load_outcomes()
    plain = ds.load_outcomes(join_studies=False)
    assert plain.shape == (48, len(ds.OUTCOME_COLUMNS))
    assert joined.shape[0] == 48 and joined.shape[1] > plain.shape[1]
    pasi40 = joined[(joined.outcome == "PASI-40 response") & (joined.group == "all")]
    assert dict(zip(pasi40.study_id, pasi40.events)) == {
        "chen2016": 2.0, "cheng2022": 8.0, "comella2018": 1.0, "dejesus2016": 2.0, "wang2020": 1.0}
    assert pasi40.total.sum() == 2 + 17 + 1 + 2 + 1
    ssc = joined[joined.indication == "systemic sclerosis"]
    assert set(ssc.study_id) == {"granel2015", "park2020", "song2017", "virzi2017", "wehbe2016", "zhang2017"}
    assert joined.set_index("outcome_id").loc["zhang2017-mrss-all-12mo", "sd_post"] == 10.2


def test_load_provenance_keeps_values_as_text() -> None:
    pytest.importorskip("pandas")
    frame = ds.load_provenance()
    assert list(frame.columns) == list(ds.PROVENANCE_COLUMNS)
    chen = frame[(frame.key == "chen2016") & (frame.field == "n_infusions")]
    assert list(zip(chen.value, chen.adopted)) == [("5", "yes"), ("5", "yes"), ("1–3", "no")]
    assert set(frame.adopted) == {"yes", "no"}
    assert frame.rule.isna().sum() > 0  # empty rule = missing
