"""Validator for the curated data set (studies.csv, outcomes.csv, provenance.csv).

``validate()`` never raises on bad data: every problem becomes a :class:`Problem`, either an
``error`` (the data are wrong or untraceable) or a ``flag`` (a fact a reader must know: sources
disagree, a denominator is ambiguous, a trial has no results). The rules are listed in
``metamsc/data/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .datasets import BUNDLED, COLUMNS, DATA_DIR, FLOAT_COLUMNS, INTEGER_COLUMNS

__all__ = ["Problem", "ValidationReport", "validate", "main", "VOCABULARIES", "OUTCOME_KINDS"]

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------
VOCABULARIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("studies", "indication"): ("psoriasis", "systemic sclerosis"),
    ("studies", "setting"): ("clinical", "preclinical"),
    ("studies", "design"): ("case report", "single-arm trial", "randomized trial", "preclinical"),
    ("studies", "cell_source"): ("umbilical cord", "cord blood", "cord blood (unverified)", "adipose", "bone marrow",
                                 "gingiva"),
    ("studies", "cell_preparation"): ("culture-expanded", "SVF", "unknown"),
    ("studies", "donor"): ("allogeneic", "autologous"),
    ("studies", "status"): ("completed/published", "registered, no results", "not yet recruiting", "preclinical"),
    ("studies", "results_reported"): ("yes", "no"),
    ("outcomes", "derived"): ("yes", "no"),
    ("provenance", "table"): ("studies", "outcomes"),
    ("provenance", "adopted"): ("yes", "no"),
}
#: Columns whose cell may list several vocabulary values separated by "; ".
MULTI_VALUED = {("studies", "cell_source")}

#: Outcome vocabulary -> kind of data the row must carry.
OUTCOME_KINDS: dict[str, str] = {
    "PASI-40 response": "binary",
    "PASI-50 response": "binary",
    "PASI-75 response": "binary",
    "PGA clear/minimal": "binary",
    "treatment-related adverse events": "binary",
    "serious adverse events": "binary",
    "any adverse event": "binary",
    "no obvious side effects (not counted)": "binary",
    "PASI": "score",
    "mRSS": "score",
    "EScSG activity index": "score",
    "RCS": "score",
    "SHAQ % improvement": "percent",
    "CHFS % improvement": "percent",
    "RCS % improvement": "percent",
    "skin elasticity % increase (lip)": "percent",
    "skin elasticity % increase (cheek)": "percent",
}
AE_PREFIX = "adverse event: "
GROUP_RE = re.compile(r"^(all|completers|male|female|patient [1-9][0-9]*)$")
#: Outcomes that report harms: their denominator must be stated in ``notes``.
SAFETY_OUTCOMES = ("treatment-related adverse events", "serious adverse events", "any adverse event",
                   "no obvious side effects (not counted)")
#: A statement without a count ("no obvious side effects") can only be coded as zero events.
UNCOUNTED_OUTCOMES = ("no obvious side effects (not counted)",)
REGISTRY_RE = re.compile(r"^NCT[0-9]{8}$")
SEED_RE = re.compile(r"^[0-9]{3}_[0-9a-f]{16}\.txt$")
SHARED_DOC_RE = re.compile(r"shared/([A-Za-z0-9_.-]+\.md)")
LOST_SUPERSCRIPT_RE = re.compile(r"(?:[×x\ufffd]\s*|\()10[5-9](?![0-9.])")
NOT_YET = ("registered, no results", "not yet recruiting")
ID_COLUMN = {"studies": "study_id", "outcomes": "outcome_id"}
#: Categorical study facts that must come with an adopted provenance row.
SOURCED_TEXT_FIELDS = {"studies": ("cell_source", "cell_preparation", "donor", "design"), "outcomes": ()}


# --------------------------------------------------------------------------------------------
# Result objects
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One finding: ``severity`` is "error" or "flag"; ``row`` is the line number in ``file``."""

    severity: str
    table: str
    key: str
    field: str
    message: str
    source: str = ""
    file: str = ""
    row: int | None = None

    def line(self) -> str:
        """``ERROR|FLAG <file>:<row> <key> <field>: <message> [source: ...]`` on one line."""
        where = self.file or (f"{self.table}.csv" if self.table else "-")
        if self.row is not None:
            where = f"{where}:{self.row}"
        text = f"{self.severity.upper()} {where} {self.key or '-'} {self.field or '-'}: {self.message}"
        if self.source:
            text += f" [source: {self.source}]"
        return " ".join(text.split())


@dataclass(frozen=True)
class ValidationReport:
    """All problems found in one data set, plus the count of outcome rows holding derived values."""

    problems: tuple[Problem, ...]
    path: str = ""
    derived_rows: int = 0

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def flags(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "flag")

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        """One line per problem, in the order found."""
        return [p.line() for p in self.problems]

    def summary(self) -> str:
        """``N errors, M flags in <path>``, with the derived-row count when there is one."""
        text = f"{len(self.errors)} errors, {len(self.flags)} flags in {self.path}"
        if self.derived_rows:
            text += f"; {self.derived_rows} outcome rows hold values derived by a rule (see provenance.csv)"
        return text


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
@dataclass
class _Table:
    name: str
    file: str
    rows: list[tuple[int, dict[str, str]]]  # (line number, row)
    by_id: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)


class _Collector:
    """Accumulates problems (a mutable helper private to one validate() call)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, table: str, key: str, fld: str, message: str, *, source: str = "", file: str = "",
              row: int | None = None) -> None:
        self.problems.append(Problem("error", table, key, fld, message, source, file, row))

    def flag(self, table: str, key: str, fld: str, message: str, *, source: str = "", file: str = "",
             row: int | None = None) -> None:
        self.problems.append(Problem("flag", table, key, fld, message, source, file, row))


def _recognise(header: Sequence[str]) -> str | None:
    """The table a header belongs to, by its id columns."""
    cols = set(header)
    if "outcome_id" in cols:
        return "outcomes"
    if "study_id" in cols:
        return "studies"
    if {"table", "key", "field"} <= cols:
        return "provenance"
    return None


def _load(path: Path, name: str | None, out: _Collector) -> _Table | None:
    """Read one CSV; on failure add one error naming the file and return None."""
    label = path.name
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            records = [(reader.line_num, rec) for rec in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        out.error(name or "", "", "", f"cannot read file: {exc}", file=label)
        return None
    if not header:
        out.error(name or "", "", "", "empty file (no header row)", file=label)
        return None
    header = [h.strip() for h in header]
    name = name or _recognise(header)
    if name is None:
        out.error("", "", "", "header not recognised as studies, outcomes or provenance", file=label)
        return None
    missing = [c for c in COLUMNS[name] if c not in header]
    if missing:
        out.error(name, "", "", f"missing required column(s): {', '.join(missing)}", file=label)
        return None
    for extra in (c for c in header if c not in COLUMNS[name]):
        out.flag(name, "", extra, "column not in the schema (ignored)", file=label, row=1)
    rows: list[tuple[int, dict[str, str]]] = []
    for line, rec in records:
        if not any(cell.strip() for cell in rec):
            continue
        if len(rec) != len(header):
            out.error(name, rec[0] if rec else "", "", f"row has {len(rec)} cells, header has {len(header)}",
                      file=label, row=line)
            rec = (rec + [""] * len(header))[: len(header)]
        rows.append((line, {c: v.strip() for c, v in zip(header, rec)}))
    return _Table(name, label, rows)


def _tables_at(path: Path, out: _Collector) -> dict[str, _Table]:
    """Load the tables a directory or a single CSV file holds."""
    tables: dict[str, _Table] = {}
    if path.is_dir():
        for name in BUNDLED:
            csv_path = path / f"{name}.csv"
            if csv_path.exists():
                table = _load(csv_path, name, out)
                if table is not None:
                    tables[name] = table
        if not any((path / f"{name}.csv").exists() for name in BUNDLED):
            out.error("", "", "", f"no studies.csv, outcomes.csv or provenance.csv in {path}", file=str(path))
    elif path.exists():
        table = _load(path, None, out)
        if table is not None:
            tables[table.name] = table
    else:
        out.error("", "", "", "no such file or directory", file=str(path))
    return tables


def _default_seeds_dir() -> Path | None:
    """``../shared/seeds`` relative to the current directory, else relative to the repository root."""
    for base in (Path.cwd(), DATA_DIR.parent.parent):
        candidate = (base / ".." / "shared" / "seeds").resolve()
        if candidate.is_dir():
            return candidate
    return None


# --------------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------------
def _number(text: str) -> float | None:
    """A finite float, or None when ``text`` is not a number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _decimals(text: str) -> int:
    """Number of decimals printed in a numeric string ('47.1' -> 1, '25' -> 0)."""
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _same(a: str, b: str) -> bool:
    """Equal as numbers when both are numbers, else equal as whitespace/case-normalised text."""
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)
    return _norm(a).casefold() == _norm(b).casefold()


def _percent_matches(events: float, total: float, printed: str) -> bool:
    """Does ``printed`` equal 100*events/total rounded at the printed precision?"""
    value = _number(printed)
    if value is None or total <= 0:
        return True
    exact = 100.0 * events / total
    return abs(exact - value) <= 0.5 * 10 ** (-_decimals(printed)) + 1e-9


def _norm(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# Checks of single tables
# --------------------------------------------------------------------------------------------
def _check_cells(table: _Table, out: _Collector) -> None:
    """Ids present and unique, numeric types, vocabularies."""
    id_col = ID_COLUMN.get(table.name)
    ints, floats = INTEGER_COLUMNS[table.name], FLOAT_COLUMNS[table.name]
    previous = ""
    for line, row in table.rows:
        key = row[id_col] if id_col else row.get("key", "")
        if id_col:
            if not key:
                out.error(table.name, "", id_col, "empty id", file=table.file, row=line)
            elif key in table.by_id:
                out.error(table.name, key, id_col, f"duplicate id (first on line {table.by_id[key][0]})",
                          file=table.file, row=line)
            else:
                table.by_id[key] = (line, row)
            if key and previous and key < previous:
                out.flag(table.name, key, id_col, f"rows not sorted by {id_col} (after {previous!r})",
                         file=table.file, row=line)
            previous = key or previous
        for col in ints:
            cell = row[col]
            if cell == "":
                continue
            value = _number(cell)
            if value is None:
                out.error(table.name, key, col, f"not a number: {cell!r}", file=table.file, row=line)
            elif value != int(value):
                out.error(table.name, key, col, f"not a whole number: {cell!r}", file=table.file, row=line)
            elif value < 0:
                out.error(table.name, key, col, f"negative count: {cell!r}", file=table.file, row=line)
        for col in floats:
            cell = row[col]
            if cell != "" and _number(cell) is None:
                out.error(table.name, key, col, f"not a number: {cell!r}", file=table.file, row=line)
        for (tname, col), allowed in VOCABULARIES.items():
            if tname != table.name or row[col] == "":
                continue
            values = row[col].split(";") if (tname, col) in MULTI_VALUED else [row[col]]
            for value in (v.strip() for v in values):
                if value not in allowed:
                    out.error(table.name, key, col, f"{value!r} not in vocabulary ({' | '.join(allowed)})",
                              file=table.file, row=line)


def _num(row: dict[str, str], col: str) -> float | None:
    return _number(row[col]) if row.get(col, "") != "" else None


def _check_studies(table: _Table, out: _Collector) -> None:
    """Within-row consistency of the studies table."""
    for line, row in table.rows:
        key = row["study_id"]
        at = {"file": table.file, "row": line}
        for col in ("study_id", "citation", "indication", "setting", "design", "status", "results_reported"):
            if row[col] == "":
                out.error("studies", key, col, "required value is empty", **at)
        preclinical = [row["setting"] == "preclinical", row["design"] == "preclinical",
                       row["status"] == "preclinical"]
        if any(preclinical) and not all(preclinical):
            out.error("studies", key, "setting", "setting, design and status must all be 'preclinical' or none", **at)
        if row["registry_id"] and not REGISTRY_RE.match(row["registry_id"]):
            out.error("studies", key, "registry_id", f"not an NCT number: {row['registry_id']!r}", **at)
        year = _num(row, "year")
        if year is not None and not 1990 <= year <= 2100:
            out.error("studies", key, "year", f"implausible year {row['year']}", **at)
        for col in ("dose_cells_per_kg", "n_infusions"):
            value = _num(row, col)
            if value is not None and value <= 0:
                out.error("studies", key, col, f"must be > 0, got {row[col]}", **at)
        if LOST_SUPERSCRIPT_RE.search(row["dose_as_written"]):
            out.error("studies", key, "dose_as_written",
                      "lost superscript left in place (write 10^6, not '106')", **at)
        if row["status"] in NOT_YET and row["results_reported"] == "yes":
            out.error("studies", key, "results_reported", f"status {row['status']!r} but results_reported = yes", **at)
        if row["status"] in NOT_YET:
            out.flag("studies", key, "status", f"{row['status']}: registered study without results in the sources",
                     **at)
        enrolled, analysed, planned = _num(row, "n_enrolled"), _num(row, "n_analysed"), _num(row, "n_planned")
        if analysed is not None and enrolled is not None and analysed > enrolled:
            out.error("studies", key, "n_analysed", f"n_analysed {row['n_analysed']} > n_enrolled {row['n_enrolled']}",
                      **at)
        male, female = _num(row, "n_male"), _num(row, "n_female")
        n_col = "n_analysed" if analysed is not None else "n_enrolled"
        n = analysed if analysed is not None else enrolled
        if male is not None and female is not None and n is not None and male + female != n:
            out.error("studies", key, "n_male", f"n_male + n_female = {male + female:g} != {n_col} = {n:g}", **at)
        if planned is not None and enrolled is not None and planned != enrolled:
            out.flag("studies", key, "n_enrolled",
                     f"n_planned {planned:g} (registration) != n_enrolled {enrolled:g} (report)", **at)
        if analysed is not None and enrolled is not None and analysed != enrolled:
            out.flag("studies", key, "n_analysed",
                     f"{enrolled:g} enrolled, {analysed:g} analysed: the denominator of any rate must be stated", **at)
        _check_row_contradictions(key, row, out, at)
        _check_implausible(key, row, out, at)
    _check_one_record_per_trial(table, out)


_WORD_COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "single": 1}
_RANGE_COUNT_RE = re.compile(r"\b(\d+|one|two|three)\s*(?:[–-]|or)\s*(\d+|two|three|four|five|six)\s+"
                             r"(?:[A-Za-z-]+\s+){0,3}?(?:infusions|injections|treatments)\b", re.I)
_COUNT_RE = re.compile(r"(?<![–\-.\d])\b(\d+|one|two|three|four|five|six|single)\s+(?:[A-Za-z-]+\s+){0,3}?"
                       r"(?:infusions?|injections?|treatments?)\b", re.I)
_WEEK_RE = re.compile(r"\bweek\s*\d+", re.I)
_PER_KG_RE = re.compile(r"(?<![–\-])(?:\b(\d+(?:\.\d+)?)\s*[×x]\s*)?10\^(\d+)\s*(?:cells)?\s*/\s*kg|"
                        r"\b(\d+(?:\.\d+)?)\s+million\s+cells\s*/\s*kg", re.I)
_ROUTE_WORDS = {"intravenous": ("intravenous", "infused intravenously"), "subcutaneous": ("subcutaneous",),
                "intramuscular": ("intramuscular",)}
#: Review labels for the cell source, as they appear in dose texts, and the coded source they imply.
_CELL_LABELS = {"hUCB": "cord blood", "UC-MSC": "umbilical cord", "hAT": "adipose", "AD-MSC": "adipose",
                "hBM": "bone marrow", "hG-MSC": "gingiva"}


def _count(word: str) -> int:
    return _WORD_COUNTS.get(word.lower(), 0) or int(word)


def _check_row_contradictions(key: str, row: dict[str, str], out: _Collector, at: dict) -> None:
    """Fields of one studies row that contradict each other: the dose text against the number of
    infusions, the dose per kg, the route and the cell source."""
    text = row["dose_as_written"]
    n_inf = _num(row, "n_infusions")
    if text and n_inf is not None and "patient" not in text.lower():  # per-patient schedules: max rule
        found = None
        rng = _RANGE_COUNT_RE.search(text)
        weeks = _WEEK_RE.findall(text)
        if rng:
            found, what = _count(rng.group(2)), f"'{rng.group(0)}' (maximum {_count(rng.group(2))})"
        elif len(weeks) >= 2:
            found, what = len(weeks), f"{len(weeks)} scheduled weeks"
        else:
            counts = {_count(m.group(1)) for m in _COUNT_RE.finditer(text)}
            if len(counts) == 1:
                found = counts.pop()
                what = f"{found} administration(s)"
        if found is not None and found != n_inf:
            out.error("studies", key, "n_infusions",
                      f"n_infusions {n_inf:g} contradicts dose_as_written: {what}", **at)
    dose = _num(row, "dose_cells_per_kg")
    if text and dose is not None:
        values = set()
        for m in _PER_KG_RE.finditer(text):
            if m.group(3):
                values.add(float(m.group(3)) * 1e6)
            else:
                values.add(float(m.group(1) or 1) * 10 ** int(m.group(2)))
        wrong = sorted(v for v in values if not math.isclose(v, dose, rel_tol=1e-9))
        if wrong:
            out.error("studies", key, "dose_cells_per_kg",
                      f"dose_cells_per_kg {dose:g} contradicts dose_as_written ({', '.join(f'{v:g}' for v in wrong)}/kg)",
                      **at)
    route = row["route"]
    low = text.lower()
    for name, words in _ROUTE_WORDS.items():
        if route and any(w in low for w in words) and not route.startswith(name) and route not in ("infusion",):
            out.error("studies", key, "route", f"route {route!r} contradicts dose_as_written ({name})", **at)
    source = row["cell_source"]
    for label, implied in _CELL_LABELS.items():
        if source and label in text and not any(v.strip().startswith(implied) for v in source.split(";")):
            out.error("studies", key, "cell_source",
                      f"cell_source {source!r} contradicts dose_as_written ('{label}' = {implied})", **at)
    if row["design"] == "case report" and row["phase"]:
        out.error("studies", key, "phase", f"a case report has no trial phase, got {row['phase']!r}", **at)


_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)(?:\s*±\s*(\d+(?:\.\d+)?))?(?:\s*\((\d+(?:\.\d+)?)\s*[–-]\s*(\d+(?:\.\d+)?)\))?\s*$")
#: the youngest age (years) plausible as a central value / a minimum in these adult cohorts
ADULT_AGE = (18.0, 12.0)


def _check_implausible(key: str, row: dict[str, str], out: _Collector, at: dict) -> None:
    """Values no source can mean: an adult cohort's age under 18 (or a minimum under 12), a centre
    outside its range, a per-kg dose outside 10^4-10^9 cells."""
    age = row["age"]
    if age and row["setting"] == "clinical":
        m = _AGE_RE.match(age)
        if m is None:
            out.error("studies", key, "age", f"age {age!r} is not 'centre', 'mean ± SD' or either with '(min–max)'", **at)
        else:
            centre = float(m.group(1))
            lo = float(m.group(3)) if m.group(3) else None
            hi = float(m.group(4)) if m.group(4) else None
            if centre < ADULT_AGE[0] or (lo is not None and lo < ADULT_AGE[1]):
                out.error("studies", key, "age", f"age {age!r} is implausible for an adult cohort "
                          "(perhaps disease duration): check the source", **at)
            if lo is not None and hi is not None and not lo <= centre <= hi:
                out.error("studies", key, "age", f"age {age!r}: the centre lies outside its range", **at)
            if centre > 100:
                out.error("studies", key, "age", f"implausible age {age!r}", **at)
    dose = _num(row, "dose_cells_per_kg")
    if dose is not None and not 1e4 <= dose <= 1e9:
        out.error("studies", key, "dose_cells_per_kg", f"implausible dose {row['dose_cells_per_kg']} cells/kg "
                  "(expected 10^4 to 10^9): a lost superscript?", **at)


def _check_one_record_per_trial(table: _Table, out: _Collector) -> None:
    """A registration and its publication are one record: no registry id twice, and no bare
    registration whose design (indication, cells, dose per kg, size) matches a published study."""
    by_reg: dict[str, str] = {}
    for line, row in table.rows:
        reg = row["registry_id"]
        if reg and reg in by_reg:
            out.error("studies", row["study_id"], "registry_id",
                      f"{reg} is also the registry id of {by_reg[reg]!r}: one record per trial", file=table.file,
                      row=line)
        by_reg.setdefault(reg, row["study_id"]) if reg else None
    published = [r for _, r in table.rows if r["status"] == "completed/published"]
    for line, row in table.rows:
        if row["status"] not in NOT_YET or not row["registry_id"]:
            continue
        for pub in published:
            same = (pub["indication"] == row["indication"] and pub["cell_source"] == row["cell_source"]
                    and row["dose_cells_per_kg"] and _num(pub, "dose_cells_per_kg") == _num(row, "dose_cells_per_kg")
                    and row["n_planned"] and _num(pub, "n_enrolled") == _num(row, "n_planned"))
            if same:
                out.error("studies", row["study_id"], "registry_id",
                          f"registration {row['registry_id']} has the design of {pub['study_id']!r} (same indication, "
                          f"cells, dose per kg and size): probably one trial; merge the two records",
                          file=table.file, row=line)


_MONTHS_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(months?|weeks?|years?)$")
_RANGE_RE = re.compile(r"\((\d+(?:\.\d+)?)\s*[–-]\s*(\d+(?:\.\d+)?)\)")


def _months(text: str) -> float | None:
    m = _MONTHS_RE.match(text.strip())
    if not m:
        return None
    unit = m.group(2)
    return float(m.group(1)) * (1 if unit.startswith("month") else 12 if unit.startswith("year") else 12 / 52)


def _check_timepoints_and_denominators(studies: _Table, outcomes: _Table, out: _Collector) -> None:
    """The n at a timepoint against the follow-up range; safety rows state their denominator and
    use all treated (group 'all') or the completers (group 'completers')."""
    for line, row in outcomes.rows:
        if row["study_id"] not in studies.by_id:
            continue
        study = studies.by_id[row["study_id"]][1]
        at = {"file": outcomes.file, "row": line}
        key = row["outcome_id"]
        month = _months(row["timepoint"])
        fu = _RANGE_RE.search(study["follow_up"])
        n = _num(row, "n") if row["n"] else _num(row, "total")
        enrolled = _num(study, "n_enrolled")
        if month is not None and fu and n is not None and enrolled is not None and n >= enrolled \
                and float(fu.group(1)) < month:
            col = "n" if row["n"] else "total"
            out.error("outcomes", key, col, f"{col} = {n:g} (all enrolled) at {row['timepoint']}, but follow-up ranged "
                      f"{fu.group(1)}–{fu.group(2)} months: not all can have been assessed", **at)
        is_safety = row["outcome"] in SAFETY_OUTCOMES or row["outcome"].startswith(AE_PREFIX)
        if not is_safety or row["total"] == "":
            continue
        if "denominator" not in row["notes"].lower():
            out.error("outcomes", key, "notes", "a safety row must state its denominator "
                      "('Denominator = all N treated' or the completers)", **at)
        total, analysed = _num(row, "total"), _num(study, "n_analysed")
        if row["group"] == "all" and enrolled is not None and total != enrolled:
            out.error("outcomes", key, "total", f"safety denominator {total:g} is not all {enrolled:g} treated: "
                      "use group 'completers' for the completers", **at)
        if row["group"] == "completers" and analysed is not None and total != analysed:
            out.error("outcomes", key, "total", f"completers' denominator {total:g} != n_analysed {analysed:g}", **at)


def _check_outcomes(table: _Table, out: _Collector) -> None:
    """Within-row and within-table consistency of the outcomes table."""
    seen: dict[tuple[str, ...], int] = {}
    for line, row in table.rows:
        key = row["outcome_id"]
        at = {"file": table.file, "row": line}
        for col in ("study_id", "outcome", "timepoint", "group", "derived"):
            if row[col] == "":
                out.error("outcomes", key, col, "required value is empty", **at)
        name = row["outcome"]
        if name.startswith(AE_PREFIX) and name[len(AE_PREFIX):].strip():
            kind = "binary"
        else:
            kind = OUTCOME_KINDS.get(name, "")
            if name and not kind:
                out.error("outcomes", key, "outcome", f"{name!r} not in the outcome vocabulary "
                          f"({', '.join(OUTCOME_KINDS)}, or '{AE_PREFIX}<type>')", **at)
        if row["group"] and not GROUP_RE.match(row["group"]):
            out.error("outcomes", key, "group", f"{row['group']!r} is not all | completers | male | female | patient <k>", **at)
        cell = (row["study_id"], name, row["timepoint"], row["group"])
        if cell in seen:
            out.error("outcomes", key, "outcome", f"same study/outcome/timepoint/group as line {seen[cell]}", **at)
        seen.setdefault(cell, line)
        events, total, n = _num(row, "events"), _num(row, "total"), _num(row, "n")
        if (row["events"] == "") != (row["total"] == ""):
            out.error("outcomes", key, "events", "events and total must be given together", **at)
        if total is not None and total < 1:
            out.error("outcomes", key, "total", f"total must be >= 1, got {row['total']}", **at)
        if n is not None and n < 1:
            out.error("outcomes", key, "n", f"n must be >= 1, got {row['n']}", **at)
        if events is not None and total is not None and not 0 <= events <= total:
            out.error("outcomes", key, "events", f"0 <= events <= total violated: {row['events']}/{row['total']}", **at)
        for col in ("sd_pre", "sd_post"):
            sd = _num(row, col)
            if sd is not None and sd <= 0:
                out.error("outcomes", key, col, f"SD must be > 0, got {row[col]}", **at)
        if (events is not None and total is not None and row["percent_reported"]
                and not _percent_matches(events, total, row["percent_reported"])):
            out.error("outcomes", key, "percent_reported",
                      f"printed {row['percent_reported']}% != 100*{row['events']}/{row['total']} = "
                      f"{100 * events / total:.{_decimals(row['percent_reported']) + 1}f}%", **at)
        if kind == "binary" and (events is None or total is None):
            out.error("outcomes", key, "events", "a binary outcome needs events and total", **at)
        if name in UNCOUNTED_OUTCOMES and events not in (None, 0):
            out.error("outcomes", key, "events", f"{name!r} is a statement without a count: events must be 0", **at)
        if kind == "score":
            summary = all(row[c] for c in ("mean_pre", "mean_post"))
            single = all(row[c] for c in ("value_pre", "value_post"))
            if not (summary or single):
                out.error("outcomes", key, "value_pre",
                          "a score needs mean_pre, mean_post (summary) or value_pre, value_post", **at)
            elif summary and not row["n"]:
                out.flag("outcomes", key, "n", "n at this timepoint not printed: an analysis must declare it", **at)
        if kind == "percent" and not row["percent_reported"]:
            out.error("outcomes", key, "percent_reported", "a percent-change outcome needs percent_reported", **at)
    _check_subgroups(table, out)


def _check_subgroups(table: _Table, out: _Collector) -> None:
    """male + female events/totals should add up to the 'all' row of the same outcome."""
    groups: dict[tuple[str, str, str], dict[str, tuple[int, dict[str, str]]]] = defaultdict(dict)
    for line, row in table.rows:
        groups[(row["study_id"], row["outcome"], row["timepoint"])][row["group"]] = (line, row)
    for members in groups.values():
        if not {"all", "male", "female"} <= members.keys():
            continue
        line, whole = members["all"]
        for col in ("events", "total"):
            male, female, value = _num(members["male"][1], col), _num(members["female"][1], col), _num(whole, col)
            if male is not None and female is not None and value is not None and male + female != value:
                out.flag("outcomes", whole["outcome_id"], col, f"male + female = {male + female:g} != all = {value:g}",
                         file=table.file, row=line)


# --------------------------------------------------------------------------------------------
# Cross-table checks
# --------------------------------------------------------------------------------------------
def _check_links(studies: _Table, outcomes: _Table, out: _Collector) -> None:
    """Outcome rows point at known studies; results_reported agrees with the outcome rows."""
    with_rows: set[str] = set()
    for line, row in outcomes.rows:
        sid = row["study_id"]
        if sid and sid not in studies.by_id:
            out.error("outcomes", row["outcome_id"], "study_id", f"unknown study_id {sid!r}",
                      file=outcomes.file, row=line)
            continue
        with_rows.add(sid)
        if not sid:
            continue
        study = studies.by_id[sid][1]
        total = _num(row, "total")
        enrolled, analysed = _num(study, "n_enrolled"), _num(study, "n_analysed")
        if (row["group"] == "all" and total is not None and enrolled is not None and analysed is not None
                and enrolled != analysed and "denominator" not in row["notes"].lower()):
            which = "n_analysed" if total == analysed else "n_enrolled" if total == enrolled else "neither"
            out.flag("outcomes", row["outcome_id"], "total",
                     f"denominator {total:g} is {which} ({enrolled:g} enrolled, {analysed:g} analysed): "
                     "state the denominator", file=outcomes.file, row=line)
    for sid, (line, study) in studies.by_id.items():
        if study["results_reported"] == "no" and sid in with_rows:
            out.error("studies", sid, "results_reported", "results_reported = no but outcomes.csv has rows for it",
                      file=studies.file, row=line)
        if study["results_reported"] == "yes" and study["status"] != "preclinical" and sid not in with_rows:
            out.flag("studies", sid, "results_reported", "results_reported = yes but outcomes.csv has no rows for it",
                     file=studies.file, row=line)


class _Seeds:
    """Whitespace-normalised texts of the seed files and of the shared notes beside them."""

    def __init__(self, seeds_dir: Path | None) -> None:
        self.dir = seeds_dir
        self._cache: dict[Path, str | None] = {}

    def _text(self, path: Path) -> str | None:
        if path not in self._cache:
            try:
                self._cache[path] = _norm(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                self._cache[path] = None
        return self._cache[path]

    def text_for(self, source: str) -> tuple[str | None, str]:
        """(normalised text, status) for a provenance source; status is 'ok', 'missing' or 'unchecked'."""
        if self.dir is None:
            return None, "unchecked"
        if SEED_RE.match(source):
            text = self._text(self.dir / source)
            return text, "ok" if text is not None else "missing"
        match = SHARED_DOC_RE.search(source)
        if match:
            text = self._text(self.dir.parent / match.group(1))
            return text, "ok" if text is not None else "unchecked"
        return None, "unchecked"


def _check_sources_column(studies: _Table, seeds: _Seeds, out: _Collector) -> None:
    """Seed file names listed in studies.sources exist."""
    if seeds.dir is None:
        return
    for line, row in studies.rows:
        for part in (p.strip() for p in row["sources"].split(";")):
            if SEED_RE.match(part) and not (seeds.dir / part).is_file():
                out.error("studies", row["study_id"], "sources", f"seed file {part} not found in {seeds.dir}",
                          file=studies.file, row=line)


def _check_provenance(tables: dict[str, _Table], seeds: _Seeds, out: _Collector) -> None:
    """Provenance rows: well-formed, quotes verbatim, adopted values equal the tables, conflicts flagged."""
    prov = tables["provenance"]
    groups: dict[tuple[str, str, str], list[tuple[int, dict[str, str]]]] = defaultdict(list)
    lost_superscripts: dict[str, list[int]] = defaultdict(list)
    for line, row in prov.rows:
        at = {"file": prov.file, "row": line}
        tname, key, fld = row["table"], row["key"], row["field"]
        for col in ("table", "key", "field", "value", "source", "quote", "adopted"):
            if row[col] == "":
                out.error("provenance", key, col, "required value is empty", **at)
        if tname not in ID_COLUMN or not key or not fld:
            continue
        if fld not in COLUMNS[tname]:
            out.error("provenance", key, fld, f"{fld!r} is not a column of {tname}", **at)
            continue
        target = tables.get(tname)
        if target is not None and key not in target.by_id:
            out.error("provenance", key, fld, f"unknown {ID_COLUMN[tname]} {key!r} in {tname}", **at)
            continue
        groups[(tname, key, fld)].append((line, row))
        source, quote = row["source"], row["quote"]
        if source and not (SEED_RE.match(source) or SHARED_DOC_RE.search(source)
                           or re.search(r"doi|https?://", source, re.IGNORECASE)):
            out.error("provenance", key, fld, "source must be a seed file name or an outside citation with doi/url",
                      source=source, **at)
        text, status = seeds.text_for(source)
        if status == "missing":
            out.error("provenance", key, fld, f"seed file {source} not found in {seeds.dir}", source=source, **at)
        elif status == "ok" and quote and _norm(quote) not in (text or ""):
            out.error("provenance", key, fld, f"quote not found verbatim in the source: {quote!r}", source=source, **at)
        if SEED_RE.match(source) and LOST_SUPERSCRIPT_RE.search(quote):
            lost_superscripts[source].append(line)
        if target is not None and row["adopted"] == "yes":
            cell = target.by_id[key][1].get(fld, "")
            if cell == "":
                out.error("provenance", key, fld, f"adopted value {row['value']!r} but the {tname} cell is empty",
                          source=source, **at)
            elif not _same(row["value"], cell):
                out.error("provenance", key, fld, f"adopted value {row['value']!r} != {tname} value {cell!r}",
                          source=source, **at)
    for source, lines in lost_superscripts.items():
        out.flag("provenance", source, "quote",
                 f"{len(lines)} quotes print powers of ten without superscript ('106' for 10^6); "
                 "the values read them as 10^k (see rule)", source=source, file=prov.file, row=lines[0])
    _check_coverage(tables, groups, out)
    _check_conflicts(prov, groups, out)
    if "outcomes" in tables:
        _check_alternative_percents(tables["outcomes"], groups, out)
        _check_derived(tables["outcomes"], groups, out)


def _check_coverage(tables: dict[str, _Table], groups: dict, out: _Collector) -> None:
    """Every numeric cell (and each sourced categorical fact) has an adopted provenance row of equal value."""
    for tname in ("studies", "outcomes"):
        table = tables.get(tname)
        if table is None:
            continue
        needed = INTEGER_COLUMNS[tname] + FLOAT_COLUMNS[tname] + SOURCED_TEXT_FIELDS[tname]
        for key, (line, row) in table.by_id.items():
            for col in needed:
                cell = row[col]
                if cell == "":
                    continue
                entries = groups.get((tname, key, col), [])
                if not any(r["adopted"] == "yes" and _same(r["value"], cell) for _, r in entries):
                    out.error(tname, key, col, f"value {cell!r} has no adopted provenance row of equal value",
                              file=table.file, row=line)


def _check_conflicts(prov: _Table, groups: dict, out: _Collector) -> None:
    """Flag fields for which a non-adopted report gives a value other than the adopted one."""

    def describe(rows: list[dict[str, str]]) -> str:
        distinct: list[dict[str, str]] = []
        for r in rows:
            if not any(_same(r["value"], d["value"]) for d in distinct):
                distinct.append(r)
        return ", ".join(f"{d['value']!r} ({_short(d['source'])})" for d in distinct)

    for (tname, key, fld), entries in groups.items():
        adopted = [r for _, r in entries if r["adopted"] == "yes"]
        others = [(line, r) for line, r in entries
                  if r["adopted"] != "yes" and not any(_same(r["value"], a["value"]) for a in adopted)]
        if not others:
            continue
        out.flag(tname, key, fld,
                 f"sources disagree: adopted {describe(adopted) or 'none'}; not adopted {describe([r for _, r in others])}",
                 source="; ".join(sorted({r["source"] for _, r in others})), file=prov.file, row=others[0][0])


def _short(source: str, width: int = 40) -> str:
    return source if len(source) <= width else source[: width - 3] + "..."


def _check_alternative_percents(outcomes: _Table, groups: dict, out: _Collector) -> None:
    """A non-adopted events/total report whose printed percentage does not match is a flag."""
    for key, (line, row) in outcomes.by_id.items():
        alternatives: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
        for col in ("events", "total", "percent_reported"):
            for pline, r in groups.get(("outcomes", key, col), []):
                if r["adopted"] != "yes":
                    alternatives[r["source"]][col] = (pline, r["value"])
        for source, alt in alternatives.items():
            if not {"events", "total"} & alt.keys():
                continue
            events = _number(alt.get("events", (0, row["events"]))[1])
            total = _number(alt.get("total", (0, row["total"]))[1])
            percent = alt.get("percent_reported", (0, row["percent_reported"]))[1]
            if events is None or total is None or not percent:
                continue
            if not _percent_matches(events, total, percent):
                pline = min(p for p, _ in alt.values())
                out.flag("outcomes", key, "percent_reported",
                         f"alternative report {events:g}/{total:g} = {100 * events / total:.{_decimals(percent) + 1}f}% "
                         f"does not match the printed {percent}% (adopted {row['events']}/{row['total']})",
                         source=source, file="provenance.csv", row=pline)


def _check_derived(outcomes: _Table, groups: dict, out: _Collector) -> None:
    """derived = yes needs a rule in an adopted provenance row; derived = no must have none."""
    ruled: dict[str, set[str]] = defaultdict(set)  # outcome_id -> fields derived by a rule
    for (tname, key, fld), entries in groups.items():
        if tname == "outcomes" and any(r["adopted"] == "yes" and r["rule"] for _, r in entries):
            ruled[key].add(fld)
    for key, (line, row) in outcomes.by_id.items():
        if row["derived"] == "yes" and not ruled[key]:
            out.error("outcomes", key, "derived", "derived = yes but no adopted provenance row gives a rule",
                      file=outcomes.file, row=line)
        if row["derived"] == "no" and ruled[key]:
            fields = ", ".join(sorted(ruled[key]))
            out.error("outcomes", key, "derived", f"derived = no but provenance derives {fields} by a rule",
                      file=outcomes.file, row=line)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------
def validate(path: str | Path | None = None, seeds_dir: str | Path | None = None) -> ValidationReport:
    """Check a data set: the bundled one (``path=None``), a directory of CSVs, or one CSV file.

    ``seeds_dir`` holds the seed files; by default ``../shared/seeds`` is looked for relative to
    the current directory and to the repository root. Without it the verbatim-quote check is skipped.
    """
    target = Path(path) if path is not None else DATA_DIR
    out = _Collector()
    tables = _tables_at(target, out)
    seeds = _Seeds(Path(seeds_dir) if seeds_dir is not None else _default_seeds_dir())
    if seeds_dir is not None and not Path(seeds_dir).is_dir():
        out.error("", "", "", f"seeds directory not found: {seeds_dir}", file=str(seeds_dir))
        seeds = _Seeds(None)
    for table in tables.values():
        _check_cells(table, out)
    if "studies" in tables:
        _check_studies(tables["studies"], out)
        _check_sources_column(tables["studies"], seeds, out)
    if "outcomes" in tables:
        _check_outcomes(tables["outcomes"], out)
    if "studies" in tables and "outcomes" in tables:
        _check_links(tables["studies"], tables["outcomes"], out)
        _check_timepoints_and_denominators(tables["studies"], tables["outcomes"], out)
    if "provenance" in tables:
        _check_provenance(tables, seeds, out)
    derived = sum(1 for _, row in tables["outcomes"].rows if row["derived"] == "yes") if "outcomes" in tables else 0
    return ValidationReport(tuple(sorted(out.problems, key=_order)), str(target), derived)


def _order(problem: Problem) -> tuple[int, int, str, int]:
    """Errors before flags, then by file (studies, outcomes, provenance) and line."""
    stem = problem.file.removesuffix(".csv")
    rank = BUNDLED.index(stem) if stem in BUNDLED else -1
    return (problem.severity != "error", rank, problem.file, problem.row or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """``metamsc validate [PATH] [--seeds DIR]``: print one line per problem and a summary; 1 on errors."""
    parser = argparse.ArgumentParser(prog="metamsc validate", description="Check the curated data set and its provenance.")
    parser.add_argument("path", nargs="?", default=None,
                        help="data directory or CSV file (default: the bundled data)")
    parser.add_argument("--seeds", default=None, metavar="DIR",
                        help="directory of the seed files (default: ../shared/seeds)")
    args = parser.parse_args(argv)
    report = validate(args.path, args.seeds)
    for text in report.lines() + [report.summary()]:
        print(text)
    return 0 if report.ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
