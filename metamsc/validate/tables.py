"""Checks of single tables: cells against the vocabularies and types, studies, outcomes
(counts, percents, timepoints, subgroups) and the contradictions a row can hold."""

from __future__ import annotations

from collections import defaultdict
import math
import re

from ..datasets import FLOAT_COLUMNS, INTEGER_COLUMNS
from .vocabulary import AE_PREFIX, GROUP_RE, ID_COLUMN, LOST_SUPERSCRIPT_RE, MULTI_VALUED, NOT_YET, OUTCOME_KINDS, REGISTRY_RE, SAFETY_OUTCOMES, UNCOUNTED_OUTCOMES, VOCABULARIES
from .records import Collector, Table, decimals, number, percent_matches

# --------------------------------------------------------------------------------------------
# Checks of single tables
# --------------------------------------------------------------------------------------------
def check_cells(table: Table, out: Collector) -> None:
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
            value = number(cell)
            if value is None:
                out.error(table.name, key, col, f"not a number: {cell!r}", file=table.file, row=line)
            elif value != int(value):
                out.error(table.name, key, col, f"not a whole number: {cell!r}", file=table.file, row=line)
            elif value < 0:
                out.error(table.name, key, col, f"negative count: {cell!r}", file=table.file, row=line)
        for col in floats:
            cell = row[col]
            if cell != "" and number(cell) is None:
                out.error(table.name, key, col, f"not a number: {cell!r}", file=table.file, row=line)
        for (tname, col), allowed in VOCABULARIES.items():
            if tname != table.name or row[col] == "":
                continue
            values = row[col].split(";") if (tname, col) in MULTI_VALUED else [row[col]]
            for value in (v.strip() for v in values):
                if value not in allowed:
                    out.error(table.name, key, col, f"{value!r} not in vocabulary ({' | '.join(allowed)})",
                              file=table.file, row=line)


def num(row: dict[str, str], col: str) -> float | None:
    return number(row[col]) if row.get(col, "") != "" else None


def check_studies(table: Table, out: Collector) -> None:
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
        year = num(row, "year")
        if year is not None and not 1990 <= year <= 2100:
            out.error("studies", key, "year", f"implausible year {row['year']}", **at)
        for col in ("dose_cells_per_kg", "n_infusions"):
            value = num(row, col)
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
        enrolled, analysed, planned = num(row, "n_enrolled"), num(row, "n_analysed"), num(row, "n_planned")
        if analysed is not None and enrolled is not None and analysed > enrolled:
            out.error("studies", key, "n_analysed", f"n_analysed {row['n_analysed']} > n_enrolled {row['n_enrolled']}",
                      **at)
        male, female = num(row, "n_male"), num(row, "n_female")
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


def _check_row_contradictions(key: str, row: dict[str, str], out: Collector, at: dict) -> None:
    """Fields of one studies row that contradict each other: the dose text against the number of
    infusions, the dose per kg, the route and the cell source."""
    text = row["dose_as_written"]
    n_inf = num(row, "n_infusions")
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
    dose = num(row, "dose_cells_per_kg")
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


def _check_implausible(key: str, row: dict[str, str], out: Collector, at: dict) -> None:
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
    dose = num(row, "dose_cells_per_kg")
    if dose is not None and not 1e4 <= dose <= 1e9:
        out.error("studies", key, "dose_cells_per_kg", f"implausible dose {row['dose_cells_per_kg']} cells/kg "
                  "(expected 10^4 to 10^9): a lost superscript?", **at)


def _check_one_record_per_trial(table: Table, out: Collector) -> None:
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
                    and row["dose_cells_per_kg"] and num(pub, "dose_cells_per_kg") == num(row, "dose_cells_per_kg")
                    and row["n_planned"] and num(pub, "n_enrolled") == num(row, "n_planned"))
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


def check_timepoints_and_denominators(studies: Table, outcomes: Table, out: Collector) -> None:
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
        n = num(row, "n") if row["n"] else num(row, "total")
        enrolled = num(study, "n_enrolled")
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
        total, analysed = num(row, "total"), num(study, "n_analysed")
        if row["group"] == "all" and enrolled is not None and total != enrolled:
            out.error("outcomes", key, "total", f"safety denominator {total:g} is not all {enrolled:g} treated: "
                      "use group 'completers' for the completers", **at)
        if row["group"] == "completers" and analysed is not None and total != analysed:
            out.error("outcomes", key, "total", f"completers' denominator {total:g} != n_analysed {analysed:g}", **at)


def check_outcomes(table: Table, out: Collector) -> None:
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
        events, total, n = num(row, "events"), num(row, "total"), num(row, "n")
        if (row["events"] == "") != (row["total"] == ""):
            out.error("outcomes", key, "events", "events and total must be given together", **at)
        if total is not None and total < 1:
            out.error("outcomes", key, "total", f"total must be >= 1, got {row['total']}", **at)
        if n is not None and n < 1:
            out.error("outcomes", key, "n", f"n must be >= 1, got {row['n']}", **at)
        if events is not None and total is not None and not 0 <= events <= total:
            out.error("outcomes", key, "events", f"0 <= events <= total violated: {row['events']}/{row['total']}", **at)
        for col in ("sd_pre", "sd_post"):
            sd = num(row, col)
            if sd is not None and sd <= 0:
                out.error("outcomes", key, col, f"SD must be > 0, got {row[col]}", **at)
        if (events is not None and total is not None and row["percent_reported"]
                and not percent_matches(events, total, row["percent_reported"])):
            out.error("outcomes", key, "percent_reported",
                      f"printed {row['percent_reported']}% != 100*{row['events']}/{row['total']} = "
                      f"{100 * events / total:.{decimals(row['percent_reported']) + 1}f}%", **at)
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


def _check_subgroups(table: Table, out: Collector) -> None:
    """male + female events/totals should add up to the 'all' row of the same outcome."""
    groups: dict[tuple[str, str, str], dict[str, tuple[int, dict[str, str]]]] = defaultdict(dict)
    for line, row in table.rows:
        groups[(row["study_id"], row["outcome"], row["timepoint"])][row["group"]] = (line, row)
    for members in groups.values():
        if not {"all", "male", "female"} <= members.keys():
            continue
        line, whole = members["all"]
        for col in ("events", "total"):
            male, female, value = num(members["male"][1], col), num(members["female"][1], col), num(whole, col)
            if male is not None and female is not None and value is not None and male + female != value:
                out.flag("outcomes", whole["outcome_id"], col, f"male + female = {male + female:g} != all = {value:g}",
                         file=table.file, row=line)
