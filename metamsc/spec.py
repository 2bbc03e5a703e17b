"""The declarative analysis spec (``analyses/*.toml``): load, validate, select rows, run.

A spec names its data, the rows to keep, the measure and the model; running
it gives an :class:`Analysis` holding the pooled result (and one per
subgroup) and every study that was left out, with the reason. The spec cannot
run code: it is plain TOML read with :mod:`tomllib`, and every key is checked.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from . import datasets
from .effects import MEASURES, effect_size
from .pooling import METHODS, TESTS, pool_effects
from .results import I2_DEFINITIONS, PI_RULES, Excluded, MetaResult

__all__ = ["MetamscError", "SpecError", "DataError", "Spec", "Analysis", "load_spec",
           "run_spec", "analysis_dict", "ROLES"]


class MetamscError(Exception):
    """A user's mistake: the CLI prints the one-line message, never a traceback."""


class SpecError(MetamscError):
    """A bad analysis spec (names the file and the key)."""


class DataError(MetamscError):
    """Bad input data (names the file, the row and the column)."""


ROLES = ("study", "events", "total", "time", "yi", "vi", "events1", "total1", "events2",
         "total2", "mean1", "sd1", "n1", "mean2", "sd2", "n2", "n", "mean_pre", "sd_pre",
         "mean_post", "sd_post", "r", "mean", "sd")

_KEYS = {
    "title": str, "data": str, "where": dict, "measure": str, "method": str, "test": str,
    "level": (int, float), "subgroup": str, "columns": dict, "figure": (str, list),
    "add": (int, float), "to": str, "description": str, "pi": str, "i2": str,
}
_REQUIRED = ("title", "data", "measure")
_MISSING = ("", "na", "nan", "null", "none", "-")


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _typename(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_typename(x) for x in t)
    return {str: "a string", dict: "a table", int: "an integer", float: "a number",
            list: "a list"}[t]


@dataclass(frozen=True)
class Spec:
    """A validated analysis spec with every default filled in."""

    path: Path
    title: str
    data: str
    measure: str
    method: str = "REML"
    test: str = "z"
    level: float = 0.95
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    subgroup: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    figures: tuple[str, ...] = ()
    add: float | None = None
    to: str = "only0"
    description: str = ""
    pi: str = "metafor"
    i2: str = "tau2"

    @property
    def name(self) -> str:
        return self.path.stem

    def column(self, role: str) -> str:
        return self.columns.get(role, role)

    def data_path(self) -> Path | None:
        """The CSV path for a file data set; None for a bundled one."""
        if self.data in datasets.BUNDLED:
            return None
        return (self.path.parent / self.data).resolve()

    def figure_paths(self) -> tuple[Path, ...]:
        return tuple((self.path.parent / f).resolve() for f in self.figures)

    def resolved(self) -> dict[str, Any]:
        """Every key with its value after defaults (``metamsc run --explain``)."""
        return {"title": self.title, "data": self.data, "measure": self.measure,
                "method": self.method, "test": self.test, "level": self.level,
                "where": {k: list(v) for k, v in self.where.items()},
                "subgroup": self.subgroup,
                "columns": {r: self.column(r) for r in ("study",) + MEASURES[self.measure]},
                "figure": list(self.figures), "add": self.add, "to": self.to,
                "pi": self.pi, "i2": self.i2}


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; a mistake raises :class:`SpecError` naming file and key."""
    path = Path(path)
    where_ = f"{path}"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{where_}: no such spec file") from None
    except UnicodeDecodeError:
        raise SpecError(f"{where_}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{where_}: not valid TOML: {e}") from None
    for key, val in raw.items():
        if key not in _KEYS:
            raise SpecError(f"{where_}: unknown key {key!r}{_suggest(key, _KEYS)}")
        want = _KEYS[key]
        if isinstance(val, bool) or not isinstance(val, want):
            raise SpecError(f"{where_}: key {key!r} must be {_typename(want)}, got {val!r}")
    for key in _REQUIRED:
        if key not in raw:
            raise SpecError(f"{where_}: missing required key {key!r}")
    measure = raw["measure"]
    if measure not in MEASURES:
        raise SpecError(f"{where_}: key 'measure': unknown measure {measure!r}{_suggest(measure, MEASURES)}; "
                        f"expected one of {' '.join(MEASURES)}")
    method = raw.get("method", "REML")
    allowed_methods = METHODS + ("GLMM",)
    if method not in allowed_methods:
        raise SpecError(f"{where_}: key 'method': unknown method {method!r}{_suggest(method, allowed_methods)}; "
                        f"expected one of {' '.join(allowed_methods)}")
    if method == "GLMM":
        raise SpecError(f"{where_}: key 'method': GLMM is not implemented yet")
    test = raw.get("test", "z")
    if test not in TESTS:
        raise SpecError(f"{where_}: key 'test': unknown test {test!r}{_suggest(test, TESTS)}; "
                        f"expected one of {' '.join(TESTS)}")
    level = float(raw.get("level", 0.95))
    if level >= 1 and level < 100:
        raise SpecError(f"{where_}: key 'level' must be a fraction such as 0.95, got {raw['level']!r}")
    if not 0 < level < 1:
        raise SpecError(f"{where_}: key 'level' must lie between 0 and 1, got {raw['level']!r}")
    where: dict[str, tuple[str, ...]] = {}
    for col, val in raw.get("where", {}).items():
        vals = val if isinstance(val, list) else [val]
        for v in vals:
            if isinstance(v, (dict, list)) or isinstance(v, bool):
                raise SpecError(f"{where_}: key 'where.{col}' must be a value or a list of values, got {val!r}")
        where[col] = tuple(_norm_value(v) for v in vals)
    columns = {}
    for role, col in raw.get("columns", {}).items():
        if role not in ROLES:
            raise SpecError(f"{where_}: key 'columns.{role}': unknown role{_suggest(role, ROLES)}")
        if not isinstance(col, str):
            raise SpecError(f"{where_}: key 'columns.{role}' must be a column name (a string)")
        columns[role] = col
    figs = raw.get("figure", [])
    figs = [figs] if isinstance(figs, str) else figs
    for f in figs:
        if not isinstance(f, str) or Path(f).suffix.lower() not in (".svg", ".pdf", ".png"):
            raise SpecError(f"{where_}: key 'figure': {f!r} must be a path ending in .svg, .pdf or .png")
    to = raw.get("to", "only0")
    if to not in ("only0", "all", "if0all", "none"):
        raise SpecError(f"{where_}: key 'to': unknown rule {to!r}; expected only0, all, if0all or none")
    pi = raw.get("pi", "metafor")
    if pi not in PI_RULES:
        raise SpecError(f"{where_}: key 'pi': unknown prediction-interval rule {pi!r}{_suggest(pi, PI_RULES)}; "
                        f"expected one of {' '.join(PI_RULES)}")
    i2 = raw.get("i2", "tau2")
    if i2 not in I2_DEFINITIONS:
        raise SpecError(f"{where_}: key 'i2': unknown I^2 definition {i2!r}; expected tau2 or Q")
    subgroup = raw.get("subgroup")
    return Spec(pi=pi, i2=i2, path=path.resolve(), title=raw["title"], data=raw["data"], measure=measure,
                method=method, test=test, level=level, where=where, subgroup=subgroup,
                columns=columns, figures=tuple(figs),
                add=None if "add" not in raw else float(raw["add"]), to=to,
                description=raw.get("description", ""))


def _norm_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass(frozen=True)
class Selection:
    """The rows an analysis uses, where they came from and what was left out."""

    file: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    row_numbers: tuple[int, ...]
    excluded: tuple[Excluded, ...]


def _read(spec: Spec) -> tuple[str, list[str], list[dict[str, str]]]:
    if spec.data in datasets.BUNDLED:
        try:
            cols, rows = datasets.read_rows(spec.data)
        except ValueError as e:
            raise DataError(f"{spec.path}: key 'data': {e}") from None
        return str(datasets.DATA_DIR / (spec.data + ".csv")), cols, rows
    p = spec.data_path()
    if p is None or not p.is_file():
        raise SpecError(f"{spec.path}: key 'data': no such file {spec.data!r} "
                        f"(looked for {p}; bundled data sets: {', '.join(datasets.BUNDLED)})")
    try:
        cols, rows = datasets.read_rows(p)
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise DataError(f"{p}: cannot read CSV: {e}") from None
    return str(p), cols, rows


def _is_missing(v: str | None) -> bool:
    return v is None or v.strip().lower() in _MISSING


def select(spec: Spec) -> Selection:
    """Rows kept by ``where``; rows with missing values for a role go to ``excluded``."""
    file, cols, rows = _read(spec)
    roles = ("study",) + MEASURES[spec.measure]
    needed = [spec.column(r) for r in roles]
    if spec.subgroup:
        needed.append(spec.subgroup)
    for c in list(spec.where) + needed:
        if c not in cols:
            role = next((r for r in roles if spec.column(r) == c), None)
            what = f"column {c!r} (role {role!r})" if role else f"column {c!r}"
            hint = f"; map it with [columns] {role} = \"...\"" if role and role not in spec.columns else ""
            raise DataError(f"{file}: no {what}{_suggest(c, cols)}{hint}; "
                            f"needed by spec {spec.path.name}")
    kept, numbers, excluded = [], [], []
    for i, row in enumerate(rows):
        if not all(_norm_cell(row.get(c)) in vals for c, vals in spec.where.items()):
            continue
        label = row.get(spec.column("study")) or f"row {i + 2}"
        missing = [spec.column(r) for r in roles[1:] if _is_missing(row.get(spec.column(r)))]
        if missing:
            excluded.append(Excluded(label, f"missing {', '.join(missing)} (row {i + 2} of {Path(file).name})"))
            continue
        kept.append(row)
        numbers.append(i + 2)
    excluded.extend(_studies_without_rows(spec, kept))
    return Selection(file, tuple(cols), tuple(kept), tuple(numbers), tuple(excluded))


def _norm_cell(v: str | None) -> str:
    if v is None:
        return ""
    v = v.strip()
    try:
        f = float(v)
        if f.is_integer() and v.replace(".", "", 1).lstrip("-").isdigit():
            return str(int(f))
    except ValueError:
        pass
    return v


def _studies_without_rows(spec: Spec, kept: list[dict[str, str]]) -> list[Excluded]:
    """For the bundled outcomes: every study of the same population with no usable row, and why."""
    if spec.data != "outcomes":
        return []
    scols, studies = datasets.read_rows("studies")
    _, outcomes = datasets.read_rows("outcomes")
    conds = {c: v for c, v in spec.where.items() if c in scols and c != "study_id"}
    used = {r.get("study_id") for r in kept}
    out = []
    for s in studies:
        if s["study_id"] in used or not all(_norm_cell(s.get(c)) in v for c, v in conds.items()):
            continue
        label = s.get(spec.column("study")) or s.get("citation") or s["study_id"]
        if s.get("setting") == "preclinical":
            reason = "preclinical study"
        elif s.get("results_reported") == "no":
            reason = "registered, no results reported"
        else:
            wanted = "/".join(spec.where.get("outcome", ())) or "this outcome"
            has = sorted({o["outcome"] for o in outcomes if o["study_id"] == s["study_id"]})
            reason = f"no data for {wanted}" + (f" (reports: {'; '.join(has)})" if has else "")
        out.append(Excluded(label, reason))
    return out


def _numbers(spec: Spec, sel: Selection, role: str) -> np.ndarray:
    col = spec.column(role)
    out = np.empty(len(sel.rows))
    for j, (row, num) in enumerate(zip(sel.rows, sel.row_numbers)):
        v = row[col].strip()
        try:
            out[j] = float(v)
        except ValueError:
            raise DataError(f"{sel.file}: row {num}: column {col!r}: {v!r} is not a number") from None
        if not math.isfinite(out[j]):
            raise DataError(f"{sel.file}: row {num}: column {col!r}: {v!r} is not a finite number")
    return out


@dataclass(frozen=True)
class SubgroupTest:
    """Test for subgroup differences: Q_between on G - 1 df (Borenstein et al. 2009, ch. 19)."""

    q: float
    df: int
    pvalue: float
    groups_used: tuple[str, ...] = ()
    method: str = "Q-between from the subgroup estimates and SEs (separate tau^2 per subgroup)"


@dataclass(frozen=True)
class Analysis:
    """A spec run over its data: the overall result, subgroups, exclusions."""

    spec: Spec
    result: MetaResult
    selection: Selection
    subgroups: tuple[tuple[str, MetaResult], ...] = ()
    subgroup_test: SubgroupTest | None = None
    study_data: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def excluded(self) -> tuple[Excluded, ...]:
        return self.selection.excluded + self.result.excluded


def _fit(spec: Spec, sel: Selection, idx: np.ndarray) -> MetaResult:
    roles = {r: _numbers(spec, sel, r)[idx] for r in MEASURES[spec.measure]}
    labels = [sel.rows[i][spec.column("study")] for i in idx]
    try:
        es = effect_size(spec.measure, labels=labels, add=spec.add, to=spec.to, **roles)
    except ValueError as e:
        raise DataError(f"{sel.file}: {_locate(str(e), sel, idx, labels)}") from None
    try:
        return pool_effects(es, method=spec.method, test=spec.test, level=spec.level,
                            pi=spec.pi, i2=spec.i2)
    except ValueError as e:
        raise DataError(f"{spec.path}: cannot fit the model: {e}") from None


def _locate(msg: str, sel: Selection, idx: np.ndarray, labels: list[str]) -> str:
    """Prefix an effect-size error about 'study i' with the CSV row number and label."""
    m = re.search(r"study (\d+)", msg)
    if m:
        j = int(m.group(1)) - 1
        return f"row {sel.row_numbers[idx[j]]}: " + msg.replace(m.group(0), f"study {labels[j]!r}")
    return msg


def run_spec(spec: Spec | str | Path) -> Analysis:
    """Run an analysis spec: select rows, compute effect sizes, pool (and per subgroup)."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    sel = select(spec)
    if not sel.rows:
        raise DataError(f"{spec.path}: no rows left to analyse after 'where' and missing values "
                        f"(data {sel.file})")
    idx_all = np.arange(len(sel.rows))
    result = _fit(spec, sel, idx_all)
    study_data = {r: tuple(_numbers(spec, sel, r)) for r in MEASURES[spec.measure]}
    subgroups: list[tuple[str, MetaResult]] = []
    test = None
    if spec.subgroup:
        levels: list[str] = []
        for row in sel.rows:
            lv = row[spec.subgroup].strip() or "(missing)"
            if lv not in levels:
                levels.append(lv)
        for lv in levels:
            idx = np.array([i for i, r in enumerate(sel.rows) if (r[spec.subgroup].strip() or "(missing)") == lv])
            subgroups.append((lv, _fit(spec, sel, idx)))
        usable = [r for _, r in subgroups if np.isfinite(r.se) and r.se > 0]
        if len(usable) > 1:
            est = np.array([r.estimate for r in usable])
            se = np.array([r.se for r in usable])
            w = 1 / se**2
            qb = float(np.sum(w * (est - np.sum(w * est) / np.sum(w)) ** 2))
            df = len(usable) - 1
            test = SubgroupTest(qb, df, float(stats.chi2.sf(qb, df)),
                                groups_used=tuple(lv for lv, r in subgroups if r in usable))
    return Analysis(spec, result, sel, tuple(subgroups), test, study_data)


def analysis_dict(an: Analysis) -> dict[str, Any]:
    """The JSON written by ``metamsc run``: spec, pooled result, studies, exclusions, subgroups."""
    d = an.result.to_dict()
    d["title"] = an.spec.title
    d["spec"] = an.spec.resolved()
    d["data"] = an.spec.data
    d["excluded"] = [{"study": e.study, "reason": e.reason} for e in an.excluded]
    for row, j in zip(d["studies"], range(len(d["studies"]))):
        for role, vals in an.study_data.items():
            row[role] = vals[j]
    if an.spec.subgroup:
        d["subgroup"] = {
            "column": an.spec.subgroup,
            "groups": [dict(group=lv, **{k: v for k, v in r.to_dict().items()
                                          if k not in ("excluded",)}) for lv, r in an.subgroups],
            "test": None if an.subgroup_test is None else vars(an.subgroup_test).copy(),
        }
    return d
