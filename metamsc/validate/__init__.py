"""Validator for the curated data set (studies.csv, outcomes.csv, provenance.csv).

``validate()`` never raises on bad data: every problem becomes a :class:`Problem`, either an
``error`` (the data are wrong or untraceable) or a ``flag`` (a fact a reader must know: sources
disagree, a denominator is ambiguous, a trial has no results). The rules are listed in
``metamsc/data/README.md``.

A package by job: ``vocabulary`` (the controlled vocabularies and patterns), ``records`` (the
problems found, reading the tables, value helpers), ``tables`` (checks of one table),
``crosscheck`` (checks across tables and against the sources); the entry points are here.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..datasets import BUNDLED, DATA_DIR
from .crosscheck import Seeds, check_links, check_provenance, check_sources_column
from .records import Collector, Problem, ValidationReport, default_seeds_dir, tables_at
from .tables import check_cells, check_outcomes, check_studies, check_timepoints_and_denominators
from .vocabulary import OUTCOME_KINDS, VOCABULARIES

__all__ = ["Problem", "ValidationReport", "validate", "main", "VOCABULARIES", "OUTCOME_KINDS"]


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------
def validate(path: str | Path | None = None, seeds_dir: str | Path | None = None) -> ValidationReport:
    """Check a data set: the bundled one (``path=None``), a directory of CSVs, or one CSV file.

    ``seeds_dir`` holds the seed files; by default ``../shared/seeds`` is looked for relative to
    the current directory and to the repository root. Without it the verbatim-quote check is skipped.
    """
    target = Path(path) if path is not None else DATA_DIR
    out = Collector()
    tables = tables_at(target, out)
    seeds = Seeds(Path(seeds_dir) if seeds_dir is not None else default_seeds_dir())
    if seeds_dir is not None and not Path(seeds_dir).is_dir():
        out.error("", "", "", f"seeds directory not found: {seeds_dir}", file=str(seeds_dir))
        seeds = Seeds(None)
    for table in tables.values():
        check_cells(table, out)
    if "studies" in tables:
        check_studies(tables["studies"], out)
        check_sources_column(tables["studies"], seeds, out)
    if "outcomes" in tables:
        check_outcomes(tables["outcomes"], out)
    if "studies" in tables and "outcomes" in tables:
        check_links(tables["studies"], tables["outcomes"], out)
        check_timepoints_and_denominators(tables["studies"], tables["outcomes"], out)
    if "provenance" in tables:
        check_provenance(tables, seeds, out)
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
