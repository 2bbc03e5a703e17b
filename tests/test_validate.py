"""Tests of metamsc.validate on the bundled data and on broken copies of it."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Callable

import pytest

import metamsc.validate as v
from metamsc.datasets import COLUMNS, DATA_DIR, NUMERIC_COLUMNS

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds not present")

REGISTERED = {"nct02918123", "nct02975960", "nct03392311", "nct03745417", "nct04275024",
              "nct04356287", "vanrhijnbrouwer2018"}
TRIPS = Path(__file__).resolve().parent / "data" / "validate"  # one data folder per check, each trips it
S0, S3, S4 = "000_98e4569ad12d26c5.txt", "003_59aec6bee9bddc97.txt", "004_0c19ac2d9f6bbb92.txt"
#: (key, field) of every flag the bundled data must raise, and nothing else.
EXPECTED_FLAGS = {
    ("cheng2022-pasi40-all-6mo", "events"),            # 8/17 (English) vs 17/36 (Chinese)
    ("cheng2022-pasi40-all-6mo", "total"),
    ("cheng2022-pasi40-all-6mo", "percent_reported"),  # 17/36 = 47.2 %, printed 47.1 %
    ("cheng2022", "n_enrolled"),                       # registered 12, enrolled 17
    ("cheng2022", "cell_source"),                      # hUCB (cord blood) vs umbilical cord
    ("cheng2022", "phase"),                            # Early Phase I vs phase 1/2a
    ("chen2016", "n_infusions"),                       # 1–3 vs 3 + 2
    ("chen2016", "dose_as_written"),                   # the review's '1–3 infusions' vs seed 004
    ("chen2016", "cell_source"),
    ("nct04356287", "cell_source"),
    ("park2020", "n_analysed"),                        # 20 enrolled, 18 completed
    ("virzi2017", "age"),                              # printed age rejected as implausible
    ("zhang2017-mrss-all-12mo", "n"),                  # n at 12 months not printed (14 rejected)
    (S0, "quote"), (S3, "quote"), (S4, "quote"),       # lost superscript 106 = 10^6
} | {(sid, "status") for sid in REGISTERED}


@pytest.fixture(scope="module")
def bundled() -> v.ValidationReport:
    return v.validate(seeds_dir=SEEDS if SEEDS.is_dir() else None)


def flag_for(report: v.ValidationReport, key: str, fld: str) -> v.Problem:
    matches = [p for p in report.flags if p.key == key and p.field == fld]
    assert matches, f"no flag for {key} {fld}"
    return matches[0]


# ------------------------------------------------------------------------------------------
# bundled data
# ------------------------------------------------------------------------------------------
def test_bundled_data_has_no_errors(bundled: v.ValidationReport) -> None:
    assert bundled.errors == ()
    assert bundled.ok
    assert bundled.path == str(DATA_DIR)


@needs_seeds
def test_bundled_flags_are_exactly_the_expected_ones(bundled: v.ValidationReport) -> None:
    assert {(p.key, p.field) for p in bundled.flags} == EXPECTED_FLAGS
    assert len(bundled.flags) == len(EXPECTED_FLAGS) + 1 == 24  # zhang2017-mrss n: conflict and not printed


def test_flag_messages_name_the_conflicting_values(bundled: v.ValidationReport) -> None:
    events = flag_for(bundled, "cheng2022-pasi40-all-6mo", "events")
    assert "'8'" in events.message and "'17'" in events.message and "not adopted" in events.message
    total = flag_for(bundled, "cheng2022-pasi40-all-6mo", "total")
    assert "'17'" in total.message and "'36'" in total.message
    percent = flag_for(bundled, "cheng2022-pasi40-all-6mo", "percent_reported")
    assert "17/36 = 47.22%" in percent.message and "47.1%" in percent.message
    assert percent.severity == "flag"  # non-adopted alternative: a flag, not an error
    planned = flag_for(bundled, "cheng2022", "n_enrolled")
    assert "n_planned 12" in planned.message and "n_enrolled 17" in planned.message
    cells = flag_for(bundled, "cheng2022", "cell_source")
    assert "'umbilical cord'" in cells.message and "'cord blood'" in cells.message
    infusions = flag_for(bundled, "chen2016", "n_infusions")
    assert "'5'" in infusions.message and "'1–3'" in infusions.message
    park = flag_for(bundled, "park2020", "n_analysed")
    assert park.message == "20 enrolled, 18 analysed: the denominator of any rate must be stated"
    assert flag_for(bundled, "nct03745417", "status").message.startswith("not yet recruiting")


def test_derived_rows_are_counted_not_flagged(bundled: v.ValidationReport) -> None:
    assert bundled.derived_rows == 32
    assert not any(p.field == "derived" for p in bundled.problems)
    assert bundled.summary().startswith("0 errors, 24 flags in ")
    assert "32 outcome rows hold values derived by a rule" in bundled.summary()


# ------------------------------------------------------------------------------------------
# broken copies
# ------------------------------------------------------------------------------------------
Rows = list[dict[str, str]]


def broken_copy(tmp_path: Path, table: str, edit: Callable[[Rows], Rows]) -> Path:
    """Copy the bundled CSVs to tmp_path and rewrite one table through ``edit``."""
    for name in ("studies", "outcomes", "provenance"):
        shutil.copy(DATA_DIR / f"{name}.csv", tmp_path / f"{name}.csv")
    path = tmp_path / f"{table}.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        columns, rows = list(reader.fieldnames or []), list(reader)
    rows = edit(rows)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return tmp_path


def set_cell(id_col: str, key: str, col: str, value: str) -> Callable[[Rows], Rows]:
    def edit(rows: Rows) -> Rows:
        hit = [r for r in rows if r[id_col] == key]
        assert len(hit) == 1
        hit[0][col] = value
        return rows
    return edit


def errors_for(report: v.ValidationReport, key: str, fld: str) -> list[str]:
    return [p.message for p in report.errors if p.key == key and p.field == fld]


def check(tmp_path: Path, table: str, edit: Callable[[Rows], Rows]) -> v.ValidationReport:
    return v.validate(broken_copy(tmp_path, table, edit), seeds_dir=SEEDS if SEEDS.is_dir() else None)


def test_unchanged_copy_is_clean(tmp_path: Path) -> None:
    report = check(tmp_path, "studies", lambda rows: rows)
    assert report.errors == ()
    assert report.path == str(tmp_path)


def test_events_greater_than_total(tmp_path: Path) -> None:
    report = check(tmp_path, "outcomes", set_cell("outcome_id", "cheng2022-pasi40-male-6mo", "events", "9"))
    assert "0 <= events <= total violated: 9/8" in errors_for(report, "cheng2022-pasi40-male-6mo", "events")
    # the adopted provenance value 2 no longer matches either
    assert any("has no adopted provenance row" in m for m in errors_for(report, "cheng2022-pasi40-male-6mo", "events"))
    assert not report.ok


def test_sd_not_positive(tmp_path: Path) -> None:
    report = check(tmp_path, "outcomes", set_cell("outcome_id", "zhang2017-mrss-all-12mo", "sd_post", "0"))
    assert "SD must be > 0, got 0" in errors_for(report, "zhang2017-mrss-all-12mo", "sd_post")


def test_sex_split_must_add_up(tmp_path: Path) -> None:
    report = check(tmp_path, "studies", set_cell("study_id", "zhang2017", "n_male", "4"))
    assert "n_male + n_female = 15 != n_analysed = 14" in errors_for(report, "zhang2017", "n_male")


def test_sex_split_uses_enrolled_without_analysed(tmp_path: Path) -> None:
    report = check(tmp_path, "studies", set_cell("study_id", "yao2021", "n_female", "2"))
    assert "n_male + n_female = 8 != n_enrolled = 7" in errors_for(report, "yao2021", "n_male")


def test_missing_provenance(tmp_path: Path) -> None:
    def drop(rows: Rows) -> Rows:
        return [r for r in rows if not (r["key"] == "zhang2017-mrss-all-12mo" and r["field"] == "mean_post")]
    report = check(tmp_path, "provenance", drop)
    assert errors_for(report, "zhang2017-mrss-all-12mo", "mean_post") == [
        "value '13.8' has no adopted provenance row of equal value"]


def test_missing_provenance_of_a_categorical_fact(tmp_path: Path) -> None:
    def drop(rows: Rows) -> Rows:
        return [r for r in rows if not (r["key"] == "wang2020" and r["field"] == "cell_source")]
    report = check(tmp_path, "provenance", drop)
    assert errors_for(report, "wang2020", "cell_source") == [
        "value 'gingiva' has no adopted provenance row of equal value"]


def test_adopted_value_must_equal_the_table(tmp_path: Path) -> None:
    report = check(tmp_path, "studies", set_cell("study_id", "park2020", "n_enrolled", "21"))
    messages = [p.message for p in report.errors if p.key == "park2020" and p.table == "provenance"]
    assert "adopted value '20' != studies value '21'" in messages


@needs_seeds
def test_quote_not_in_seed(tmp_path: Path) -> None:
    def edit(rows: Rows) -> Rows:
        for r in rows:
            if r["key"] == "zhang2017-mrss-all-12mo" and r["field"] == "mean_pre":
                r["quote"] = r["quote"].replace("20.1 ± 3.1", "20.1 ± 3.2")
        return rows
    report = check(tmp_path, "provenance", edit)
    errors = [p for p in report.errors if p.key == "zhang2017-mrss-all-12mo" and p.field == "mean_pre"]
    assert len(errors) == 1
    assert errors[0].message.startswith("quote not found verbatim in the source: ")
    assert errors[0].source == S3
    assert errors[0].file == "provenance.csv" and errors[0].row is not None


@needs_seeds
def test_quote_whitespace_is_normalised(tmp_path: Path) -> None:
    def edit(rows: Rows) -> Rows:
        for r in rows:
            if r["key"] == "zhang2017-mrss-all-12mo" and r["field"] == "mean_pre":
                r["quote"] = r["quote"].replace(" ", "\n  ")
        return rows
    assert check(tmp_path, "provenance", edit).errors == ()


def test_quote_check_skipped_without_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(rows: Rows) -> Rows:
        rows[0]["quote"] = "words that are in no seed"
        return rows
    monkeypatch.setattr(v, "default_seeds_dir", lambda: None)
    report = v.validate(broken_copy(tmp_path, "provenance", edit))
    assert report.errors == ()


def test_seeds_dir_that_does_not_exist(tmp_path: Path) -> None:
    report = v.validate(DATA_DIR, seeds_dir=tmp_path / "nowhere")
    assert [p.message for p in report.errors] == [f"seeds directory not found: {tmp_path / 'nowhere'}"]


def test_percent_mismatch(tmp_path: Path) -> None:
    report = check(tmp_path, "outcomes", set_cell("outcome_id", "cheng2022-pgacm-all-6mo", "percent_reported", "17.5"))
    assert "printed 17.5% != 100*3/17 = 17.65%" in errors_for(report, "cheng2022-pgacm-all-6mo", "percent_reported")


def test_percent_precision_is_the_printed_one(tmp_path: Path) -> None:
    # 3/17 = 17.647...: "18" is right at 0 decimals, "17.65" at 2
    for printed in ("18", "17.65"):
        report = check(tmp_path, "outcomes",
                       set_cell("outcome_id", "cheng2022-pgacm-all-6mo", "percent_reported", printed))
        assert not [m for m in errors_for(report, "cheng2022-pgacm-all-6mo", "percent_reported")
                    if m.startswith("printed")]


def test_unknown_study_id(tmp_path: Path) -> None:
    report = check(tmp_path, "outcomes", set_cell("outcome_id", "song2017-trae-all-eofu", "study_id", "nosuch2020"))
    assert "unknown study_id 'nosuch2020'" in errors_for(report, "song2017-trae-all-eofu", "study_id")


def test_bad_vocabulary(tmp_path: Path) -> None:
    report = check(tmp_path, "studies", set_cell("study_id", "maria2016", "donor", "xenogeneic"))
    assert "'xenogeneic' not in vocabulary (allogeneic | autologous)" in errors_for(report, "maria2016", "donor")


def test_bad_outcome_vocabulary(tmp_path: Path) -> None:
    report = check(tmp_path, "outcomes", set_cell("outcome_id", "song2017-trae-all-eofu", "outcome", "side effects"))
    assert any(m.startswith("'side effects' not in the outcome vocabulary")
               for m in errors_for(report, "song2017-trae-all-eofu", "outcome"))


def test_non_numeric_cell(tmp_path: Path) -> None:
    report = check(tmp_path, "studies", set_cell("study_id", "zhang2017", "n_enrolled", "fourteen"))
    assert "not a number: 'fourteen'" in errors_for(report, "zhang2017", "n_enrolled")


def test_non_integer_count(tmp_path: Path) -> None:
    report = check(tmp_path, "outcomes", set_cell("outcome_id", "zhang2017-ae-uri-all-eofu", "events", "4.5"))
    assert "not a whole number: '4.5'" in errors_for(report, "zhang2017-ae-uri-all-eofu", "events")


def test_duplicate_id(tmp_path: Path) -> None:
    report = check(tmp_path, "studies", lambda rows: rows + [dict(rows[-1])])
    assert any(m.startswith("duplicate id") for m in errors_for(report, "zhang2017", "study_id"))


def test_derived_flag_must_match_the_rules(tmp_path: Path) -> None:
    report = check(tmp_path, "outcomes", set_cell("outcome_id", "wang2020-pasi40-all-eofu", "derived", "no"))
    assert errors_for(report, "wang2020-pasi40-all-eofu", "derived") == [
        "derived = no but provenance derives events, total by a rule"]


def test_missing_column_is_one_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "studies.csv"
    path.write_text("study_id,citation\nx,y\n", encoding="utf-8")
    report = v.validate(path)
    assert len(report.problems) == 1
    assert report.errors[0].file == "studies.csv"
    assert report.errors[0].message.startswith("missing required column(s): year, registry_id")


def test_unreadable_file_is_an_error_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_bytes(b"outcome_id,study_id\n\xff\xfe\xfa\n")
    report = v.validate(tmp_path)
    assert len(report.errors) == 1
    assert report.errors[0].file == "outcomes.csv" and "cannot read file" in report.errors[0].message


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    report = v.validate(tmp_path / "nothing.csv")
    assert [p.message for p in report.errors] == ["no such file or directory"]


def test_single_file_recognised_by_header(tmp_path: Path) -> None:
    shutil.copy(DATA_DIR / "outcomes.csv", tmp_path / "my_outcomes.csv")
    report = v.validate(tmp_path / "my_outcomes.csv")
    assert report.errors == ()
    assert report.derived_rows == 32
    # without studies and provenance only the outcome rows' own checks run
    assert [(p.key, p.field) for p in report.flags] == [("zhang2017-mrss-all-12mo", "n")]


def test_subset_of_tables_in_a_directory(tmp_path: Path) -> None:
    shutil.copy(DATA_DIR / "studies.csv", tmp_path / "studies.csv")
    report = v.validate(tmp_path)
    assert report.errors == ()
    assert {(p.key, p.field) for p in report.flags} == {
        ("cheng2022", "n_enrolled"), ("park2020", "n_analysed")} | {(s, "status") for s in REGISTERED}


# ------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------
def test_problem_line_format() -> None:
    p = v.Problem("error", "outcomes", "k1", "events", "bad\nvalue", source="002_x.txt", file="outcomes.csv", row=3)
    assert p.line() == "ERROR outcomes.csv:3 k1 events: bad value [source: 002_x.txt]"
    q = v.Problem("flag", "studies", "s1", "n_analysed", "20 enrolled")
    assert q.line() == "FLAG studies.csv s1 n_analysed: 20 enrolled"


def test_main_on_bundled_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert v.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    report = v.validate()
    assert lines[:-1] == report.lines()
    assert len(lines) == len(report.problems) + 1
    assert all(line.startswith("FLAG ") for line in lines[:-1])
    assert lines[-1] == report.summary()
    assert lines[-1].startswith(f"0 errors, {len(report.flags)} flags in {DATA_DIR}")


def test_main_exit_code_on_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken_copy(tmp_path, "outcomes", set_cell("outcome_id", "zhang2017-mrss-all-12mo", "sd_pre", "-1"))
    args = [str(tmp_path)] + (["--seeds", str(SEEDS)] if SEEDS.is_dir() else [])
    assert v.main(args) == 1
    lines = capsys.readouterr().out.splitlines()
    errors = [line for line in lines if line.startswith("ERROR ")]
    assert "ERROR outcomes.csv:48 zhang2017-mrss-all-12mo sd_pre: SD must be > 0, got -1" in errors
    assert lines[-1].startswith(f"{len(errors)} errors, ")
    assert lines[-1].split(";")[0].endswith(f"in {tmp_path}")


@pytest.mark.parametrize("table", ["studies", "outcomes", "provenance"])
def test_never_raises_on_garbage_cells(tmp_path: Path, table: str) -> None:
    for column in COLUMNS[table]:
        for garbage in ("x?", ""):
            report = check(tmp_path, table, lambda rows: [{**rows[0], column: garbage}] + rows[1:])
            assert isinstance(report, v.ValidationReport)
            if garbage and column in NUMERIC_COLUMNS[table]:
                assert any(p.field == column and p.message == "not a number: 'x?'" for p in report.errors)


# ------------------------------------------------------------------------------------------
# second-reviewer checks: each has a data folder under tests/data/validate that trips it
# ------------------------------------------------------------------------------------------
def trip(name: str) -> v.ValidationReport:
    return v.validate(TRIPS / name, seeds_dir=None)


def test_fields_of_one_row_that_contradict_each_other() -> None:
    # the curated Chen 2016 row before the second-reviewer audit
    report = trip("contradiction")
    assert errors_for(report, "chen2016", "n_infusions") == [
        "n_infusions 5 contradicts dose_as_written: '1–3 infusions' (maximum 3)"]
    assert errors_for(report, "chen2016", "cell_source") == [
        "cell_source 'umbilical cord' contradicts dose_as_written ('hUCB' = cord blood)"]


def test_within_row_dose_route_and_phase(tmp_path: Path) -> None:
    def edit(rows: Rows) -> Rows:
        for r in rows:
            if r["study_id"] == "wang2020":
                r["dose_cells_per_kg"] = "2e6"  # text says 3 × 10^6/kg
            if r["study_id"] == "nct03392311":
                r["route"] = "subcutaneous"  # text says intravenous
            if r["study_id"] == "song2017":
                r["phase"] = "Phase I"  # a case report
        return rows
    report = check(tmp_path, "studies", edit)
    assert "dose_cells_per_kg 2e+06 contradicts dose_as_written (3e+06/kg)" in \
        errors_for(report, "wang2020", "dose_cells_per_kg")
    assert "route 'subcutaneous' contradicts dose_as_written (intravenous)" in errors_for(report, "nct03392311", "route")
    assert errors_for(report, "song2017", "phase") == ["a case report has no trial phase, got 'Phase I'"]


def test_implausible_age() -> None:
    report = trip("implausible")
    assert errors_for(report, "virzi2017", "age") == [
        "age '9.3 ± 7.1 (3.0–20.0)' is implausible for an adult cohort (perhaps disease duration): check the source"]


def test_implausible_dose_and_age_outside_its_range(tmp_path: Path) -> None:
    def edit(rows: Rows) -> Rows:
        for r in rows:
            if r["study_id"] == "wang2020":
                r["dose_cells_per_kg"], r["dose_as_written"] = "3e10", "3 × 10^10/kg"
            if r["study_id"] == "granel2015":
                r["age"] = "74.5 ± 10.3 (34.0–68.0)"
        return rows
    report = check(tmp_path, "studies", edit)
    assert any("implausible dose 3e10" in m for m in errors_for(report, "wang2020", "dose_cells_per_kg"))
    assert "age '74.5 ± 10.3 (34.0–68.0)': the centre lies outside its range" in errors_for(report, "granel2015", "age")


def test_a_registration_and_its_publication_as_two_records() -> None:
    # NCT03265613 and Yao 2021 as the data had them; a bare record of Cheng 2022's registration
    report = trip("two_records")
    assert errors_for(report, "nct03265613", "registry_id") == [
        "registration NCT03265613 has the design of 'yao2021' (same indication, cells, dose per kg and size): "
        "probably one trial; merge the two records"]
    assert errors_for(report, "nct03765957", "registry_id") == [
        "NCT03765957 is also the registry id of 'cheng2022': one record per trial"]


def test_follow_up_range_against_the_n_at_a_timepoint() -> None:
    # Zhang 2017: mRSS with n = 14 at 12 months, follow-up 15.6 ± 4.3 months (7–21)
    report = trip("followup_n")
    assert errors_for(report, "zhang2017-mrss-all-12mo", "n") == [
        "n = 14 (all enrolled) at 12 months, but follow-up ranged 7–21 months: not all can have been assessed"]


def test_safety_denominators_are_stated_and_all_treated() -> None:
    report = trip("safety_denominator")
    assert errors_for(report, "park2020-ae-fingerpallor-all-eofu", "total") == [
        "safety denominator 18 is not all 20 treated: use group 'completers' for the completers"]
    assert errors_for(report, "song2017-trae-all-eofu", "notes") == [
        "a safety row must state its denominator ('Denominator = all N treated' or the completers)"]


def test_a_statement_without_a_count_has_zero_events(tmp_path: Path) -> None:
    report = check(tmp_path, "outcomes", set_cell("outcome_id", "cheng2022-noobvious-all-6mo", "events", "1"))
    assert "'no obvious side effects (not counted)' is a statement without a count: events must be 0" in \
        errors_for(report, "cheng2022-noobvious-all-6mo", "events")


def test_bundled_data_passes_every_second_reviewer_check(bundled: v.ValidationReport) -> None:
    fields = {("studies", "n_infusions"), ("studies", "registry_id"), ("studies", "age")}
    assert not [p for p in bundled.errors if (p.table, p.field) in fields]
    # one record per trial: Yao 2021 carries NCT03265613, and no bare record of it is left
    assert "nct03265613" not in {p.key for p in bundled.problems}
