"""Checks across tables: links between studies and outcomes, the sources column and the
seed documents, provenance (coverage, conflicts between sources, alternative percents,
derived values)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
import re

from ..datasets import COLUMNS, FLOAT_COLUMNS, INTEGER_COLUMNS
from .vocabulary import ID_COLUMN, LOST_SUPERSCRIPT_RE, SEED_RE, SHARED_DOC_RE, SOURCED_TEXT_FIELDS
from .records import Collector, Table, decimals, norm, number, percent_matches, same
from .tables import num

# --------------------------------------------------------------------------------------------
# Cross-table checks
# --------------------------------------------------------------------------------------------
def check_links(studies: Table, outcomes: Table, out: Collector) -> None:
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
        total = num(row, "total")
        enrolled, analysed = num(study, "n_enrolled"), num(study, "n_analysed")
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


class Seeds:
    """Whitespace-normalised texts of the seed files and of the shared notes beside them."""

    def __init__(self, seeds_dir: Path | None) -> None:
        self.dir = seeds_dir
        self._cache: dict[Path, str | None] = {}

    def _text(self, path: Path) -> str | None:
        if path not in self._cache:
            try:
                self._cache[path] = norm(path.read_text(encoding="utf-8"))
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


def check_sources_column(studies: Table, seeds: Seeds, out: Collector) -> None:
    """Seed file names listed in studies.sources exist."""
    if seeds.dir is None:
        return
    for line, row in studies.rows:
        for part in (p.strip() for p in row["sources"].split(";")):
            if SEED_RE.match(part) and not (seeds.dir / part).is_file():
                out.error("studies", row["study_id"], "sources", f"seed file {part} not found in {seeds.dir}",
                          file=studies.file, row=line)


def check_provenance(tables: dict[str, Table], seeds: Seeds, out: Collector) -> None:
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
        elif status == "ok" and quote and norm(quote) not in (text or ""):
            out.error("provenance", key, fld, f"quote not found verbatim in the source: {quote!r}", source=source, **at)
        if SEED_RE.match(source) and LOST_SUPERSCRIPT_RE.search(quote):
            lost_superscripts[source].append(line)
        if target is not None and row["adopted"] == "yes":
            cell = target.by_id[key][1].get(fld, "")
            if cell == "":
                out.error("provenance", key, fld, f"adopted value {row['value']!r} but the {tname} cell is empty",
                          source=source, **at)
            elif not same(row["value"], cell):
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


def _check_coverage(tables: dict[str, Table], groups: dict, out: Collector) -> None:
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
                if not any(r["adopted"] == "yes" and same(r["value"], cell) for _, r in entries):
                    out.error(tname, key, col, f"value {cell!r} has no adopted provenance row of equal value",
                              file=table.file, row=line)


def _check_conflicts(prov: Table, groups: dict, out: Collector) -> None:
    """Flag fields for which a non-adopted report gives a value other than the adopted one."""

    def describe(rows: list[dict[str, str]]) -> str:
        distinct: list[dict[str, str]] = []
        for r in rows:
            if not any(same(r["value"], d["value"]) for d in distinct):
                distinct.append(r)
        return ", ".join(f"{d['value']!r} ({_short(d['source'])})" for d in distinct)

    for (tname, key, fld), entries in groups.items():
        adopted = [r for _, r in entries if r["adopted"] == "yes"]
        others = [(line, r) for line, r in entries
                  if r["adopted"] != "yes" and not any(same(r["value"], a["value"]) for a in adopted)]
        if not others:
            continue
        out.flag(tname, key, fld,
                 f"sources disagree: adopted {describe(adopted) or 'none'}; not adopted {describe([r for _, r in others])}",
                 source="; ".join(sorted({r["source"] for _, r in others})), file=prov.file, row=others[0][0])


def _short(source: str, width: int = 40) -> str:
    return source if len(source) <= width else source[: width - 3] + "..."


def _check_alternative_percents(outcomes: Table, groups: dict, out: Collector) -> None:
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
            events = number(alt.get("events", (0, row["events"]))[1])
            total = number(alt.get("total", (0, row["total"]))[1])
            percent = alt.get("percent_reported", (0, row["percent_reported"]))[1]
            if events is None or total is None or not percent:
                continue
            if not percent_matches(events, total, percent):
                pline = min(p for p, _ in alt.values())
                out.flag("outcomes", key, "percent_reported",
                         f"alternative report {events:g}/{total:g} = {100 * events / total:.{decimals(percent) + 1}f}% "
                         f"does not match the printed {percent}% (adopted {row['events']}/{row['total']})",
                         source=source, file="provenance.csv", row=pline)


def _check_derived(outcomes: Table, groups: dict, out: Collector) -> None:
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
