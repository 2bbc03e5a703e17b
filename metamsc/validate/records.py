"""What the validator finds (:class:`Problem`, :class:`ValidationReport`) and how it reads
the tables: CSV loading, recognising a table by its header, value helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
import csv
import math

from ..datasets import BUNDLED, COLUMNS, DATA_DIR

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
class Table:
    name: str
    file: str
    rows: list[tuple[int, dict[str, str]]]  # (line number, row)
    by_id: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)


class Collector:
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


def _load(path: Path, name: str | None, out: Collector) -> Table | None:
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
    return Table(name, label, rows)


def tables_at(path: Path, out: Collector) -> dict[str, Table]:
    """Load the tables a directory or a single CSV file holds."""
    tables: dict[str, Table] = {}
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


def default_seeds_dir() -> Path | None:
    """``../shared/seeds`` relative to the current directory, else relative to the repository root."""
    for base in (Path.cwd(), DATA_DIR.parent.parent):
        candidate = (base / ".." / "shared" / "seeds").resolve()
        if candidate.is_dir():
            return candidate
    return None


# --------------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------------
def number(text: str) -> float | None:
    """A finite float, or None when ``text`` is not a number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def decimals(text: str) -> int:
    """Number of decimals printed in a numeric string ('47.1' -> 1, '25' -> 0)."""
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def same(a: str, b: str) -> bool:
    """Equal as numbers when both are numbers, else equal as whitespace/case-normalised text."""
    x, y = number(a), number(b)
    if x is not None and y is not None:
        return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)
    return norm(a).casefold() == norm(b).casefold()


def percent_matches(events: float, total: float, printed: str) -> bool:
    """Does ``printed`` equal 100*events/total rounded at the printed precision?"""
    value = number(printed)
    if value is None or total <= 0:
        return True
    exact = 100.0 * events / total
    return abs(exact - value) <= 0.5 * 10 ** (-decimals(printed)) + 1e-9


def norm(text: str) -> str:
    return " ".join(text.split())
