"""Loaders for the bundled curated data set (``metamsc/data``).

Three tables, described in ``metamsc/data/README.md``:

* ``studies``    one row per study or registration;
* ``outcomes``   one row per reported quantity (long format);
* ``provenance`` one row per number (and per sourced categorical fact), with the verbatim quote.

:func:`read_rows` uses the standard library only and returns strings; the ``load_*`` functions
return pandas DataFrames (pandas is imported inside them, so ``import metamsc.datasets`` stays light).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "DATA_DIR",
    "BUNDLED",
    "STUDY_COLUMNS",
    "OUTCOME_COLUMNS",
    "PROVENANCE_COLUMNS",
    "COLUMNS",
    "INTEGER_COLUMNS",
    "FLOAT_COLUMNS",
    "NUMERIC_COLUMNS",
    "read_rows",
    "load_studies",
    "load_outcomes",
    "load_provenance",
]

DATA_DIR: Path = Path(__file__).resolve().parent / "data"
BUNDLED: tuple[str, ...] = ("studies", "outcomes", "provenance")

STUDY_COLUMNS: tuple[str, ...] = (
    "study_id", "citation", "year", "registry_id", "doi", "indication", "setting", "design", "phase",
    "n_planned", "n_enrolled", "n_analysed", "n_male", "n_female", "age", "cell_source",
    "cell_preparation", "donor", "route", "dose_as_written", "dose_cells_per_kg", "n_infusions",
    "co_interventions", "follow_up", "status", "results_reported", "sources", "notes",
)
OUTCOME_COLUMNS: tuple[str, ...] = (
    "outcome_id", "study_id", "outcome", "timepoint", "group", "events", "total", "percent_reported",
    "n", "mean_pre", "sd_pre", "mean_post", "sd_post", "value_pre", "value_post", "unit", "derived",
    "notes",
)
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "table", "key", "field", "value", "source", "quote", "rule", "adopted",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "studies": STUDY_COLUMNS,
    "outcomes": OUTCOME_COLUMNS,
    "provenance": PROVENANCE_COLUMNS,
}

#: Columns holding whole numbers (counts, years), per table.
INTEGER_COLUMNS: dict[str, tuple[str, ...]] = {
    "studies": ("year", "n_planned", "n_enrolled", "n_analysed", "n_male", "n_female", "n_infusions"),
    "outcomes": ("events", "total", "n"),
    "provenance": (),
}
#: Columns holding real numbers, per table.
FLOAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "studies": ("dose_cells_per_kg",),
    "outcomes": ("percent_reported", "mean_pre", "sd_pre", "mean_post", "sd_post", "value_pre", "value_post"),
    "provenance": (),
}
#: All numeric columns, per table.
NUMERIC_COLUMNS: dict[str, tuple[str, ...]] = {
    name: INTEGER_COLUMNS[name] + FLOAT_COLUMNS[name] for name in BUNDLED
}


def _shape_error(columns: list[str], text_start: str) -> str | None:
    """Why a header cannot be a comma-separated table's, or None: an empty or blank file, or a
    file delimited by ';' or tabs (read as one column)."""
    if not columns:
        return ("the file is empty (no header row)" if not text_start
                else "the file has no header row (only blank lines)")
    if all(not c.strip() for c in columns):
        return "the header row is blank"
    if len(columns) == 1:
        for delim, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if delim in columns[0]:
                return (f"the header is one column {columns[0][:60]!r}: the file looks "
                        f"{name}-delimited; metamsc reads comma-separated files")
    return None


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Read a UTF-8 CSV file into (columns, rows of strings); missing cells become ''.

    An empty or blank file, a ';'- or tab-delimited file, a duplicated column name, a row with
    more cells than the header, or malformed CSV raise ``ValueError`` naming the row. Rows are
    numbered as everywhere in metamsc: the header is row 1, the first record row 2 (a record
    spanning several lines by a quoted line break counts once).
    """
    with open(path, encoding="utf-8-sig", newline="") as fh:
        start = fh.read(1)
        fh.seek(0)
        reader = csv.DictReader(fh)
        record = 1  # the header; records that follow are rows 2, 3, ...
        try:
            columns = list(reader.fieldnames or [])
            why = _shape_error(columns, start)
            if why:
                raise ValueError(why)
            seen: set[str] = set()
            for c in columns:
                if c in seen:
                    raise ValueError(f"duplicate column {c!r} in the header")
                seen.add(c)
            rows = []
            for row in reader:
                record += 1
                if row.get(None):
                    raise ValueError(f"row {record}: {len(row[None])} more cell(s) "
                                     f"than the header has columns")
                rows.append({c: (row.get(c) or "") for c in columns})
        except csv.Error as e:
            if "field limit" in str(e):
                raise ValueError(f"row {record + 1}: a cell is longer than "
                                 f"{csv.field_size_limit()} characters") from None
            raise ValueError(f"row {record + 1}: malformed CSV: {e}") from None
    return columns, rows


def _bundled_path(name: str) -> Path:
    return DATA_DIR / f"{name}.csv"


def _join_studies(
    columns: list[str], rows: list[dict[str, str]], study_columns: list[str], studies: list[dict[str, str]]
) -> tuple[list[str], list[dict[str, str]]]:
    """Append to each outcome row the columns of its study that the outcome row lacks."""
    extra = [c for c in study_columns if c not in columns]
    by_id = {s["study_id"]: s for s in studies}
    joined = []
    for i, row in enumerate(rows, start=2):
        study = by_id.get(row.get("study_id", ""))
        if study is None:
            raise ValueError(f"outcomes.csv line {i}: unknown study_id {row.get('study_id', '')!r}")
        joined.append({**row, **{c: study[c] for c in extra}})
    return columns + extra, joined


def read_rows(name_or_path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows (all values strings, '' = missing) of a bundled table or of a CSV file.

    The bundled ``"outcomes"`` table comes joined with its study's columns (citation, year,
    design, indication, cell_source, donor, ...), so rows can be filtered by study attributes.
    A path (a ``Path``, or a string naming a ``.csv`` file or containing a directory separator)
    is read as is. Any other name raises ``ValueError``.
    """
    if isinstance(name_or_path, str) and name_or_path in BUNDLED:
        columns, rows = _read_csv(_bundled_path(name_or_path))
        if name_or_path == "outcomes":
            study_columns, studies = _read_csv(_bundled_path("studies"))
            columns, rows = _join_studies(columns, rows, study_columns, studies)
        return columns, rows
    text = os.fspath(name_or_path)
    is_path = (
        not isinstance(name_or_path, str)
        or text.lower().endswith(".csv")
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
    )
    if not is_path:
        raise ValueError(
            f"unknown data set {text!r}: bundled data sets are {', '.join(BUNDLED)} (or give a path to a CSV file)"
        )
    return _read_csv(Path(text))


def _frame(columns: list[str], rows: list[dict[str, str]]) -> "pd.DataFrame":
    """DataFrame of string rows: '' -> missing, known numeric columns -> float64."""
    import pandas as pd

    numeric = {c for cols in NUMERIC_COLUMNS.values() for c in cols}
    frame = pd.DataFrame([[row[c] if row[c] != "" else None for c in columns] for row in rows], columns=columns,
                         dtype=object)
    for column in columns:
        if column in numeric:
            frame[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
    return frame


def load_studies() -> "pd.DataFrame":
    """The bundled studies table; counts, year and dose as float64 (NaN = missing)."""
    return _frame(*read_rows("studies"))


def load_outcomes(join_studies: bool = True) -> "pd.DataFrame":
    """The bundled outcomes table, by default joined with its study's columns; numbers as float64."""
    if join_studies:
        return _frame(*read_rows("outcomes"))
    return _frame(*_read_csv(_bundled_path("outcomes")))


def load_provenance() -> "pd.DataFrame":
    """The bundled provenance table; every column as text (``value`` holds numbers and words)."""
    return _frame(*read_rows("provenance"))
