"""The declarative analysis spec (``analyses/*.toml``): load, validate, select rows, run.

A spec names its data, the rows to keep, the measure and the model; running
it gives an :class:`Analysis` holding the pooled result (and one per
subgroup) and every study that was left out, with the reason. The spec cannot
run code: it is plain TOML read with :mod:`tomllib`, and every key is checked.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import datasets
from .effects import MEASURES, effect_size
from .pooling import METHODS, TESTS, pool_effects
from .metareg import spec_meta_regression, spec_moderators
from .results import I2_DEFINITIONS, PI_RULES, Excluded, MetaResult, SubgroupTest

__all__ = ["MetamscError", "SpecError", "DataError", "Spec", "Analysis", "load_spec",
           "run_spec", "analysis_dict", "ROLES"]


class MetamscError(Exception):
    """A user's mistake: the CLI prints the one-line message, never a traceback."""


class SpecError(MetamscError):
    """A bad analysis spec (names the file and the key)."""


class DataError(MetamscError):
    """Bad input data (names the file, the row and the column)."""


class NoStudyLeft(DataError):
    """Every study of a (sub)analysis was left out."""


ROLES = ("study", "events", "total", "time", "yi", "vi", "events1", "total1", "events2",
         "total2", "mean1", "sd1", "n1", "mean2", "sd2", "n2", "n", "mean_pre", "sd_pre",
         "mean_post", "sd_post", "r", "mean", "sd")

_KEYS = {
    "title": str, "data": str, "where": dict, "measure": str, "method": str, "test": str,
    "level": (int, float), "subgroup": str, "columns": dict, "figure": (str, list),
    "add": (int, float), "to": str, "description": str, "pi": str, "i2": str, "study_ci": str,
    "note": str, "nagq": (int, str),
    "assume": dict, "sensitivity": dict, "compare": dict, "overall": bool, "kind": str,
    "tau2_common": bool,
    "role": str, "caveat": str, "headline": str, "descriptive": list,
    "forest": dict, "plots": dict, "dpi": int,
    "moderators": list, "categorical": list,
    "prior": dict, "subset": dict, "bayes_model": str,
}
#: what an analysis is for, carried into the JSON and the manuscript table
ROLES_OF_ANALYSIS = ("primary", "sensitivity", "descriptive")
#: extra figures of an analysis (spec key ``plots``): leave-one-out, cumulative, funnel, bubble
#: (needs ``moderators``), Baujat, influence
PLOT_KINDS = ("leave_one_out", "cumulative", "funnel", "bubble", "baujat", "influence")
_REQUIRED = ("title", "data", "measure")
KINDS = ("meta-analysis", "evidence-map", "method-sensitivity")
GLMM_METHODS = ("GLMM", "GLMM-EE")
#: two-group roles built from one-group rows by ``compare``: role -> (source role, group 1 or 2)
_COMPARE_ROLES = {"events1": ("events", 1), "total1": ("total", 1), "events2": ("events", 2),
                  "total2": ("total", 2), "mean1": ("mean", 1), "sd1": ("sd", 1), "n1": ("n", 1),
                  "mean2": ("mean", 2), "sd2": ("sd", 2), "n2": ("n", 2)}
_MISSING = ("", "na", "nan", "null", "none", "-")


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _typename(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_typename(x) for x in t)
    return {str: "a string", dict: "a table", int: "an integer", float: "a number",
            list: "a list", bool: "true or false"}[t]


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
    kind: str = "meta-analysis"
    assume: dict[str, float] = field(default_factory=dict)
    sensitivity: tuple[str, tuple[float, ...]] | None = None
    compare: tuple[str, str, str] | None = None
    overall: bool = True
    study_ci: str = "model"
    note: str = ""
    nagq: int | str = 7
    #: subgroups share one tau^2 (meta-regression on the subgroup dummies) instead of one each
    tau2_common: bool = False
    #: "primary", "sensitivity" or "descriptive" (no inference is drawn)
    role: str = "primary"
    #: caveats a reader must see with the result (carried into the JSON and the summary table)
    caveat: str = ""
    #: the subgroup level the summary table leads with (e.g. the trial, not the case reports)
    headline: str | None = None
    #: subgroup levels shown for description only: not in the test for subgroup differences
    descriptive: tuple[str, ...] = ()
    forest: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dpi: int = 200
    moderators: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    #: settings of method BAYES and kind "method-sensitivity" ([prior], [subset])
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    def column(self, role: str) -> str:
        """The CSV column of a role; under ``compare`` a two-group role is built, not read."""
        if self.compare and role in _COMPARE_ROLES:
            return role
        return self.columns.get(role, role)

    def roles(self) -> tuple[str, ...]:
        """Data roles of the measure (empty for an evidence map)."""
        return MEASURES[self.measure] if self.kind != "evidence-map" else ()

    def data_path(self) -> Path | None:
        """The CSV path for a file data set; None for a bundled one."""
        if self.data in datasets.BUNDLED:
            return None
        return (self.path.parent / self.data).resolve()

    def figure_paths(self) -> tuple[Path, ...]:
        """Every figure file the spec writes (the forest's and the extra plots')."""
        extra = [f for kind in PLOT_KINDS for f in self.plots.get(kind, ())]
        return tuple((self.path.parent / f).resolve() for f in list(self.figures) + extra)

    def resolved(self) -> dict[str, Any]:
        """Every key with its value after defaults (``metamsc run --explain``)."""
        d = {"kind": self.kind, "title": self.title, "data": self.data,
             "where": {k: list(v) for k, v in self.where.items()}, "figure": list(self.figures)}
        if self.kind == "evidence-map":
            return d
        d.update({"measure": self.measure, "method": self.method, "test": self.test,
                  "level": self.level, "subgroup": self.subgroup, "overall": self.overall,
                  "columns": {r: self.column(r) for r in ("study",) + self.roles()},
                  "add": self.add, "to": self.to, "pi": self.pi, "i2": self.i2,
                  "study_ci": self.study_ci, "nagq": self.nagq, "role": self.role,
                  "caveat": self.caveat, "headline": self.headline, "descriptive": list(self.descriptive),
                  **({"forest": dict(self.forest)} if self.forest else {}),
                  **({"plots": {k: list(v) for k, v in self.plots.items()}} if self.plots else {}),
                  **({"dpi": self.dpi} if self.dpi != 200 else {}),
                  "assume": dict(self.assume),
                  "sensitivity": None if self.sensitivity is None else
                  {self.sensitivity[0]: list(self.sensitivity[1])},
                  "compare": None if self.compare is None else
                  dict(zip(("column", "group1", "group2"), self.compare))})
        if self.tau2_common:  # listed only when set, so older resolved specs stay unchanged
            d["tau2_common"] = True
        if self.moderators:
            d.update(moderators=list(self.moderators), categorical=list(self.categorical))
        d.update(self.options)
        return d


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
    except RecursionError:
        raise SpecError(f"{where_}: not a usable spec: tables or arrays nested too deeply") from None
    except (OSError, RuntimeError) as e:  # a directory, a symlink loop, no permission
        raise SpecError(f"{where_}: cannot read the spec file: "
                        f"{getattr(e, 'strerror', None) or e}") from None
    for key, val in raw.items():
        if key not in _KEYS:
            raise SpecError(f"{where_}: unknown key {key!r}{_suggest(key, _KEYS)}")
        want = _KEYS[key]
        if (isinstance(val, bool) and want is not bool) or not isinstance(val, want):
            raise SpecError(f"{where_}: key {key!r} must be {_typename(want)}, got {val!r}")
    kind = raw.get("kind", "meta-analysis")
    if kind not in KINDS:
        raise SpecError(f"{where_}: key 'kind': unknown kind {kind!r}{_suggest(kind, KINDS)}; "
                        f"expected one of {', '.join(KINDS)}")
    if kind == "evidence-map":
        return _load_evidence_map(path, raw)
    for key in _REQUIRED:
        if key not in raw:
            raise SpecError(f"{where_}: missing required key {key!r}")
    measure = raw["measure"]
    if measure not in MEASURES:
        raise SpecError(f"{where_}: key 'measure': unknown measure {measure!r}{_suggest(measure, MEASURES)}; "
                        f"expected one of {' '.join(MEASURES)}")
    method = raw.get("method", "REML")
    allowed_methods = METHODS + GLMM_METHODS + ("BAYES",)
    if method not in allowed_methods:
        raise SpecError(f"{where_}: key 'method': unknown method {method!r}{_suggest(method, allowed_methods)}; "
                        f"expected one of {' '.join(allowed_methods)}")
    if method == "GENQ":
        raise SpecError(f"{where_}: key 'method': GENQ needs study weights, which a spec cannot give; "
                        f"use it from Python: metamsc.pool(yi, vi, method='GENQ', weights=...)")
    if method in GLMM_METHODS and measure not in ("PLO", "IRLN", "OR"):
        raise SpecError(f"{where_}: key 'method': {method} needs measure PLO (binomial-normal), "
                        f"IRLN (Poisson-normal) or OR (two groups, model UM.FS), not {measure}")
    nagq = raw.get("nagq", 7)
    if "nagq" in raw and method not in GLMM_METHODS:
        raise SpecError(f"{where_}: key 'nagq' applies to method GLMM only")
    from .glmm import MAX_NAGQ

    if not (nagq == "high" or (isinstance(nagq, int) and not isinstance(nagq, bool)
                               and 1 <= nagq <= MAX_NAGQ)):
        raise SpecError(f"{where_}: key 'nagq' must be an integer from 1 to {MAX_NAGQ} or \"high\", "
                        f"got {nagq!r}")
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
    if "add" in raw and not (math.isfinite(raw["add"]) and raw["add"] >= 0):
        raise SpecError(f"{where_}: key 'add' must be a finite number >= 0, got {raw['add']!r}")
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
    roles = MEASURES[measure]
    assume: dict[str, float] = {}
    for role, val in raw.get("assume", {}).items():
        if role not in roles:
            raise SpecError(f"{where_}: key 'assume.{role}': measure {measure} has no role {role!r}"
                            f"{_suggest(role, roles)}")
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise SpecError(f"{where_}: key 'assume.{role}' must be a finite number, got {val!r}")
        _check_role_value(f"{where_}: key 'assume.{role}'", role, val)
        assume[role] = float(val)
    sensitivity = None
    if "sensitivity" in raw:
        items = list(raw["sensitivity"].items())
        if len(items) != 1:
            raise SpecError(f"{where_}: key 'sensitivity' must name exactly one role with a list of values")
        role, vals = items[0]
        if role not in roles:
            raise SpecError(f"{where_}: key 'sensitivity.{role}': measure {measure} has no role {role!r}"
                            f"{_suggest(role, roles)}")
        if not isinstance(vals, list) or not vals or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                for v in vals):
            raise SpecError(f"{where_}: key 'sensitivity.{role}' must be a non-empty list of finite numbers")
        for v in vals:
            _check_role_value(f"{where_}: key 'sensitivity.{role}'", role, v)
        sensitivity = (role, tuple(float(v) for v in vals))
    compare = None
    if "compare" in raw:
        c = raw["compare"]
        unknown = set(c) - {"column", "group1", "group2"}
        if unknown or not all(isinstance(c.get(k), str) for k in ("column", "group1", "group2")):
            raise SpecError(f"{where_}: key 'compare' must be a table with string keys column, group1, group2")
        if not any(r in _COMPARE_ROLES for r in roles):
            raise SpecError(f"{where_}: key 'compare' needs a two-group measure (RR OR RD MD SMD ROM), "
                            f"not {measure}")
        compare = (c["column"], c["group1"], c["group2"])
    study_ci = raw.get("study_ci", "model")
    ci_methods = ("model", "CP", "WS", "WSCC", "AC", "SA", "SACC", "JEFFREYS")
    if study_ci not in ci_methods:
        raise SpecError(f"{where_}: key 'study_ci': unknown {study_ci!r}{_suggest(study_ci, ci_methods)}; "
                        f"expected one of {' '.join(ci_methods)}")
    if study_ci != "model" and measure not in ("PR", "PLN", "PLO", "PAS", "PFT"):
        raise SpecError(f"{where_}: key 'study_ci' = {study_ci!r} needs a proportion measure")
    try:
        moderators, categorical = spec_moderators(raw, method)
    except ValueError as e:
        raise SpecError(f"{where_}: {e}") from None
    subgroup = raw.get("subgroup")
    if not raw.get("overall", True) and not subgroup:
        raise SpecError(f"{where_}: key 'overall' = false needs a 'subgroup'")
    tau2_common = raw.get("tau2_common", False)
    if tau2_common and not subgroup:
        raise SpecError(f"{where_}: key 'tau2_common' = true needs a 'subgroup'")
    if tau2_common and method in GLMM_METHODS:
        raise SpecError(f"{where_}: key 'tau2_common' = true is not available for method "
                        f"{method!r} (a common tau^2 needs an inverse-variance model)")
    role = raw.get("role", "primary")
    if role not in ROLES_OF_ANALYSIS:
        raise SpecError(f"{where_}: key 'role': unknown role {role!r}{_suggest(role, ROLES_OF_ANALYSIS)}; "
                        f"expected one of {', '.join(ROLES_OF_ANALYSIS)}")
    for key in ("headline", "descriptive"):
        if key in raw and not subgroup:
            raise SpecError(f"{where_}: key {key!r} needs a 'subgroup'")
    descriptive = raw.get("descriptive", [])
    if not all(isinstance(x, str) for x in descriptive):
        raise SpecError(f"{where_}: key 'descriptive' must be a list of subgroup levels (strings)")
    if raw.get("headline") in descriptive:
        raise SpecError(f"{where_}: key 'headline': {raw['headline']!r} is also listed as descriptive")
    forest_opts = raw.get("forest", {})
    from .plots.forest import check_spec_options

    try:
        check_spec_options(forest_opts)
    except ValueError as e:
        raise SpecError(f"{where_}: key {e}") from None
    plots = {}
    for kind, files in raw.get("plots", {}).items():
        files = [files] if isinstance(files, str) else files
        if kind not in PLOT_KINDS:
            raise SpecError(f"{where_}: key 'plots.{kind}': unknown plot{_suggest(kind, PLOT_KINDS)}; "
                            f"expected one of {', '.join(PLOT_KINDS)}")
        if not isinstance(files, list) or not all(
                isinstance(f, str) and Path(f).suffix.lower() in (".svg", ".pdf", ".png") for f in files):
            raise SpecError(f"{where_}: key 'plots.{kind}' must be paths ending in .svg, .pdf or .png")
        plots[kind] = tuple(files)
    if "bubble" in plots and not moderators:
        raise SpecError(f"{where_}: key 'plots.bubble' needs 'moderators'")
    dpi = raw.get("dpi", 200)
    if isinstance(dpi, bool) or not 10 <= dpi <= 1200:
        raise SpecError(f"{where_}: key 'dpi' must be an integer between 10 and 1200, got {dpi!r}")
    _check_figures_not_inputs(path, raw["data"], figs)
    from .method_sensitivity import spec_options

    options = spec_options(where_, raw, kind, method)
    if kind == "method-sensitivity" and (measure not in ("PLO", "PFT", "PAS") or method not in METHODS):
        raise SpecError(f"{where_}: kind 'method-sensitivity' needs a proportion measure PLO, PFT or "
                        f"PAS and a tau^2 method for its primary analysis, not {measure}/{method}")
    if (method == "BAYES" or kind == "method-sensitivity") and (subgroup or "sensitivity" in raw):
        raise SpecError(f"{where_}: keys 'subgroup' and 'sensitivity' do not apply to method BAYES "
                        f"or kind 'method-sensitivity'")
    return Spec(kind=kind, options=options, forest=dict(forest_opts), plots=plots, dpi=dpi, role=role, caveat=raw.get("caveat", ""), headline=raw.get("headline"),
                descriptive=tuple(descriptive), pi=pi, i2=i2, study_ci=study_ci, note=raw.get("note", ""), nagq=nagq, assume=assume, sensitivity=sensitivity, compare=compare,
                overall=raw.get("overall", True), path=path.resolve(), title=raw["title"], data=raw["data"], measure=measure,
                method=method, test=test, level=level, where=where, subgroup=subgroup,
                tau2_common=bool(tau2_common), columns=columns, figures=tuple(figs),
                add=None if "add" not in raw else float(raw["add"]), to=to,
                description=raw.get("description", ""), moderators=moderators,
                categorical=categorical)


#: allowed values of a role given in the spec (assume, sensitivity): (test, wording)
_ROLE_RANGES = {
    "r": (lambda v: -1 <= v <= 1, "lie in [-1, 1] (a correlation)"),
    "vi": (lambda v: v >= 0, "be >= 0 (a variance)"),
    **{c: (lambda v: v >= 0 and float(v).is_integer(), "be a whole number >= 0 (a count)")
       for c in ("events", "events1", "events2")},
    **{c: (lambda v: v > 0 and float(v).is_integer(), "be a whole number > 0 (a count)")
       for c in ("total", "total1", "total2")},
    **{c: (lambda v: v > 0, "be > 0 (a sample size)") for c in ("n", "n1", "n2")},
    "time": (lambda v: v > 0, "be > 0 (person-time)"),
    **{c: (lambda v: v >= 0, "be >= 0 (a standard deviation)")
       for c in ("sd", "sd1", "sd2", "sd_pre", "sd_post")},
}


def _check_role_value(where: str, role: str, val: float) -> None:
    """A value the spec gives for a data role must be one the role can take."""
    ok, wording = _ROLE_RANGES.get(role, (lambda v: True, ""))
    if not ok(val):
        raise SpecError(f"{where} must {wording}, got {val!r}")


def _check_figures_not_inputs(path: Path, data: str, figs) -> None:
    """No figure may be written over the spec or its data file."""
    def res(p: Path, key: str) -> Path:
        try:
            return p.resolve()
        except (RuntimeError, OSError):  # a symlink loop
            raise SpecError(f"{path}: key {key!r}: cannot resolve {p} (a symlink loop?)") from None

    inputs = {res(path, "data")} | ({res(path.parent / data, "data")}
                                    if data not in datasets.BUNDLED else set())
    for f in figs:
        if res(path.parent / f, "figure") in inputs:
            raise SpecError(f"{path}: key 'figure': {f!r} is an input of this analysis "
                            f"(its data or spec file); a figure must not be written over it")


def _load_evidence_map(path: Path, raw: dict[str, Any]) -> Spec:
    """An evidence map: a figure and a table of every study of a data set (no pooling)."""
    where_ = str(path)
    allowed = {"kind", "title", "data", "where", "figure", "description", "columns", "note"}
    for key in raw:
        if key not in allowed:
            raise SpecError(f"{where_}: key {key!r} does not apply to kind 'evidence-map' "
                            f"(allowed: {', '.join(sorted(allowed))})")
    for key in ("title", "data"):
        if key not in raw:
            raise SpecError(f"{where_}: missing required key {key!r}")
    figs = raw.get("figure", [])
    figs = [figs] if isinstance(figs, str) else figs
    for f in figs:
        if not isinstance(f, str) or Path(f).suffix.lower() not in (".svg", ".pdf", ".png"):
            raise SpecError(f"{where_}: key 'figure': {f!r} must be a path ending in .svg, .pdf or .png")
    where = {col: tuple(_norm_value(v) for v in (val if isinstance(val, list) else [val]))
             for col, val in raw.get("where", {}).items()}
    _check_figures_not_inputs(path, raw["data"], figs)
    return Spec(path=path.resolve(), title=raw["title"], data=raw["data"], measure="GEN",
                kind="evidence-map", where=where, figures=tuple(figs),
                columns=dict(raw.get("columns", {})), description=raw.get("description", ""))


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
    try:
        p = spec.data_path()
        is_file = p is not None and p.is_file()
    except (RuntimeError, OSError) as e:  # Path.resolve() of a symlink loop (Python < 3.13)
        raise SpecError(f"{spec.path}: key 'data': cannot read {spec.data!r}: "
                        f"{getattr(e, 'strerror', None) or e}") from None
    if not is_file:
        raise SpecError(f"{spec.path}: key 'data': no such file {spec.data!r} "
                        f"(looked for {p}; bundled data sets: {', '.join(datasets.BUNDLED)})")
    try:
        cols, rows = datasets.read_rows(p)
    except UnicodeDecodeError:
        raise DataError(f"{p}: cannot read CSV: not UTF-8 text") from None
    except (ValueError, OSError) as e:
        raise DataError(f"{p}: cannot read CSV: {e}") from None
    return str(p), cols, rows


def _is_missing(v: str | None) -> bool:
    return v is None or v.strip().lower() in _MISSING


def _fillable(spec: Spec, role: str) -> bool:
    """A role whose value may come from the spec (``assume`` or ``sensitivity``), not the data."""
    return role in spec.assume or (spec.sensitivity is not None and spec.sensitivity[0] == role)


def select(spec: Spec) -> Selection:
    """Rows kept by ``where`` (paired by ``compare``); rows missing a value go to ``excluded``."""
    file, cols, rows = _read(spec)
    roles = spec.roles()
    src_roles = tuple(dict.fromkeys(_COMPARE_ROLES[r][0] if spec.compare and r in _COMPARE_ROLES
                                    else r for r in roles))
    needed = [(r, spec.columns.get(r, r)) for r in ("study",) + src_roles if not _fillable(spec, r)]
    extra = list(spec.where) + ([spec.subgroup] if spec.subgroup else []) + \
        ([spec.compare[0]] if spec.compare else []) + list(spec.moderators)
    for role, c in needed + [(None, c) for c in extra]:
        if c not in cols:
            what = f"column {c!r} (role {role!r})" if role else f"column {c!r}"
            hint = f"; map it with [columns] {role} = \"...\"" if role and role not in spec.columns else ""
            raise DataError(f"{file}: no {what}{_suggest(c, cols)}{hint}; "
                            f"needed by spec {spec.path.name}")
    name = Path(file).name
    study_col = spec.columns.get("study", "study")
    picked = [(i, row) for i, row in enumerate(rows)
              if all(_norm_cell(row.get(c)) in vals for c, vals in spec.where.items())]
    excluded: list[Excluded] = []
    if spec.compare:
        picked, excluded = _pair(spec, picked, src_roles, name)
    kept, numbers = [], []
    for i, row in picked:
        if not (row.get(study_col) or "").strip():
            row = {**row, study_col: f"row {i + 2}"}  # an unlabelled study is named by its row
        label = row[study_col]
        missing = [spec.column(r) for r in roles
                   if _is_missing(row.get(spec.column(r))) and not _fillable(spec, r)]
        if missing:
            excluded.append(Excluded(label, f"missing {', '.join(missing)} (row {i + 2} of {name})"))
            continue
        kept.append(row)
        numbers.append(i + 2)
    excluded.extend(_studies_without_rows(spec, kept))
    return Selection(file, tuple(cols), tuple(kept), tuple(numbers), tuple(excluded))


def _pair(spec: Spec, picked, src_roles, name):
    """``compare``: one row per study with group-1 and group-2 values side by side."""
    col, g1, g2 = spec.compare
    study_col = spec.columns.get("study", "study")
    by_study: dict[str, dict[str, tuple[int, dict[str, str]]]] = {}
    for i, row in picked:
        grp = row.get(col, "").strip()
        if grp in (g1, g2):
            slot = by_study.setdefault(row.get(study_col, ""), {})
            if grp in slot:
                raise DataError(f"{spec.data_path() or name}: row {i + 2}: study {row.get(study_col)!r} "
                                f"has more than one {col} = {grp!r} row after 'where'")
            slot[grp] = (i, row)
    out, excluded = [], []
    for study, slot in by_study.items():
        if g1 not in slot or g2 not in slot:
            lacking = g2 if g1 in slot else g1
            excluded.append(Excluded(study, f"no {col} = {lacking!r} row to compare"))
            continue
        (i1, r1), (_, r2) = slot[g1], slot[g2]
        row = dict(r1)
        for role, (src, k) in _COMPARE_ROLES.items():
            if src in src_roles:
                row[role] = (r1 if k == 1 else r2).get(spec.columns.get(src, src), "")
        out.append((i1, row))
    return out, excluded


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
    conds = {c: v for c, v in spec.where.items() if c in scols}
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


def _numbers(spec: Spec, sel: Selection, role: str,
             override: dict[str, float] | None = None) -> np.ndarray:
    """A role's values: from ``override`` (sensitivity), the data, or ``assume`` where empty."""
    if override and role in override:
        return np.full(len(sel.rows), override[role])
    col = spec.column(role)
    out = np.empty(len(sel.rows))
    for j, (row, num) in enumerate(zip(sel.rows, sel.row_numbers)):
        v = (row.get(col) or "").strip()
        if role in spec.assume and _is_missing(v):
            out[j] = spec.assume[role]
            continue
        try:
            out[j] = float(v)
        except ValueError:
            raise DataError(f"{sel.file}: row {num}: column {col!r}: {v!r} is not a number") from None
        if not math.isfinite(out[j]):
            raise DataError(f"{sel.file}: row {num}: column {col!r}: {v!r} is not a finite number")
    return out


@dataclass(frozen=True)
class Analysis:
    """A spec run over its data: the overall result, subgroups, sensitivity runs, exclusions."""

    spec: Spec
    result: MetaResult
    selection: Selection
    subgroups: tuple[tuple[str, MetaResult], ...] = ()
    subgroup_test: SubgroupTest | None = None
    study_data: dict[str, tuple[float, ...]] = field(default_factory=dict)
    sensitivity: tuple[tuple[float, MetaResult], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def excluded(self) -> tuple[Excluded, ...]:
        return self.selection.excluded + self.result.excluded


def _fit(spec: Spec, sel: Selection, idx: np.ndarray,
         override: dict[str, float] | None = None) -> MetaResult:
    """Fit rows ``idx`` of the selection; the result's ``kept`` holds selection-row positions."""
    res = _fit_rows(spec, sel, idx, override)
    kept = np.arange(len(idx)) if res.kept is None else np.asarray(res.kept, dtype=int)
    return dataclasses.replace(res, kept=np.asarray(idx, dtype=int)[kept])


def _fit_rows(spec: Spec, sel: Selection, idx: np.ndarray,
              override: dict[str, float] | None = None) -> MetaResult:
    roles = {r: _numbers(spec, sel, r, override)[idx] for r in spec.roles()}
    labels = [sel.rows[i][spec.column("study")] for i in idx]
    if spec.method in GLMM_METHODS:
        from .glmm import fit_glmm

        two = spec.measure == "OR"
        try:
            return fit_glmm(roles["events1" if two else "events"],
                            roles.get("total1" if two else "total"), time=roles.get("time"),
                            events2=roles.get("events2"), total2=roles.get("total2"),
                            measure=spec.measure, method="EE" if spec.method == "GLMM-EE" else "ML",
                            test=spec.test, level=spec.level, labels=labels, nagq=spec.nagq)
        except ValueError as e:
            raise DataError(f"{sel.file}: {_locate(str(e), sel, idx, labels)}") from None
    try:
        es = effect_size(spec.measure, labels=labels, add=spec.add, to=spec.to, **roles)
    except ValueError as e:
        raise DataError(f"{sel.file}: {_locate(str(e), sel, idx, labels)}") from None
    try:
        return pool_effects(es, method=spec.method, test=spec.test, level=spec.level,
                            pi=spec.pi, i2=spec.i2)
    except ValueError as e:
        cls = NoStudyLeft if "no study left" in str(e) else DataError
        raise cls(f"{spec.path}: cannot fit the model: {e}") from None


def _locate(msg: str, sel: Selection, idx: np.ndarray, labels: list[str]) -> str:
    """Prefix an effect-size error about 'study i' with the CSV row number and label."""
    m = re.search(r"study (\d+)", msg)
    if m:
        j = int(m.group(1)) - 1
        return f"row {sel.row_numbers[idx[j]]}: " + msg.replace(m.group(0), f"study {labels[j]!r}")
    return msg


def _subgroups(spec: Spec, sel: Selection, result: MetaResult):
    """The library's subgroup analysis of the overall fit: each subgroup refitted with the same
    model, in the spec's order of levels (those listed in ``where``), then the data's."""
    from .subgroups import subgroup_analysis

    labels = [row[spec.subgroup].strip() or "(missing)" for row in sel.rows]
    try:
        sa = subgroup_analysis(result, labels, order=spec.where.get(spec.subgroup, ()),
                               tau2_common=spec.tau2_common, descriptive=spec.descriptive)
    except ValueError as e:
        raise DataError(f"{spec.path}: subgroups by {spec.subgroup!r}: {e}") from None
    return tuple(sa.subgroups.items()), sa.test, sa.notes


def run_spec(spec: Spec | str | Path) -> "Analysis | EvidenceMap":
    """Run an analysis spec: select rows, compute effect sizes, pool (and per subgroup)."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    if spec.kind == "evidence-map":
        return evidence_map(spec)
    sel = select(spec)
    if not sel.rows:
        raise DataError(f"{spec.path}: no rows left to analyse after 'where' and missing values "
                        f"(data {sel.file})")
    if spec.kind == "method-sensitivity" or spec.method == "BAYES":
        from .method_sensitivity import run_spec_extension

        return run_spec_extension(spec, sel)
    result = _fit(spec, sel, np.arange(len(sel.rows)))
    study_data = {r: tuple(_numbers(spec, sel, r)) for r in spec.roles()}
    subgroups, test, notes = _subgroups(spec, sel, result) if spec.subgroup else ((), None, ())
    if spec.headline is not None and spec.headline not in [lv for lv, _ in subgroups]:
        raise DataError(f"{spec.path}: key 'headline': no subgroup {spec.headline!r} among "
                        f"{', '.join(repr(lv) for lv, _ in subgroups) or 'none'}")
    labels = [r[spec.column("study")] for r in sel.rows]
    dups = sorted(lab for lab, c in collections.Counter(labels).items() if c > 1)  # O(k)
    if dups:
        notes += (f"study labels used more than once: {', '.join(dups)} (rows are kept apart "
                  f"by position; label them uniquely for a readable table)",)
    sens: tuple[tuple[float, MetaResult], ...] = ()
    if spec.sensitivity:
        role, values = spec.sensitivity
        sens = tuple((v, _fit(spec, sel, np.arange(len(sel.rows)), {role: v})) for v in values)
    return Analysis(spec, result, sel, subgroups, test, study_data, sens, notes)


def _summary_fields(r: MetaResult) -> dict[str, Any]:
    keys = ("k", "estimate", "se", "ci_lb", "ci_ub", "pvalue", "pi_lb", "pi_ub", "tau2", "i2", "q",
            "q_pvalue")
    d = {k: getattr(r, k) for k in keys}
    d["natural"] = None if r.natural is None else vars(r.natural).copy()
    return d


def _exact_two_group(an: Analysis) -> list[dict[str, Any]] | None:
    """Per study 2x2 exact statistics: Fisher's exact test and the conditional MLE odds ratio
    with its exact CI (Fisher 1935; Cornfield 1956), as R's fisher.test."""
    if an.spec.measure not in ("RR", "OR", "RD"):
        return None
    from scipy.stats import contingency, fisher_exact

    d = an.study_data
    out = []
    for j, lab in zip(an.result.kept, an.result.labels):
        a, n1, c, n2 = (int(round(d[r][j])) for r in ("events1", "total1", "events2", "total2"))
        table = [[a, n1 - a], [c, n2 - c]]
        cond = contingency.odds_ratio(table, kind="conditional")
        ci = cond.confidence_interval(confidence_level=an.spec.level)
        out.append({"study": lab, "table": table, "fisher_pvalue": fisher_exact(table)[1],
                    "or_conditional_mle": cond.statistic, "or_exact_ci_lb": ci.low,
                    "or_exact_ci_ub": ci.high, "risk1": a / n1, "risk2": c / n2,
                    "method": "Fisher's exact test (two-sided); conditional MLE odds ratio with "
                              "exact CI (as R fisher.test)"})
    return out


def analysis_dict(an: "Analysis | EvidenceMap") -> dict[str, Any]:
    """The JSON written by ``metamsc run``: spec, pooled result, studies, exclusions, subgroups."""
    if not isinstance(an, Analysis):  # evidence map, method sensitivity, BAYES
        return an.to_dict()
    d = an.result.to_dict()
    d["title"] = an.spec.title
    d["kind"] = an.spec.kind
    d["role"] = an.spec.role
    if an.spec.caveat:
        d["caveat"] = an.spec.caveat
    d["spec"] = an.spec.resolved()
    d["data"] = an.spec.data
    d["excluded"] = [{"study": e.study, "reason": e.reason} for e in an.excluded]
    d["warnings"] = d["warnings"] + list(an.notes)
    for j, row in zip(an.result.kept, d["studies"]):
        for role, vals in an.study_data.items():
            row[role] = vals[j]
    if an.spec.assume:
        d["assumptions"] = [{"role": r, "value": v, "reason": "not reported; declared in the spec"}
                            for r, v in an.spec.assume.items()]
    if an.spec.subgroup:
        d["subgroup"] = {
            "column": an.spec.subgroup,
            "groups": [dict(group=lv, descriptive=lv in an.spec.descriptive,
                            headline=lv == an.spec.headline,
                            **{k: v for k, v in r.to_dict().items()
                               if k not in ("excluded",)}) for lv, r in an.subgroups],
            "test": None if an.subgroup_test is None else {
                k: v for k, v in vars(an.subgroup_test).items() if not (k == "df2" and v is None)},
        }
        if an.spec.tau2_common:
            d["subgroup"]["tau2_common"] = True
    if not an.spec.overall:
        d["overall"] = False
        for k in ("estimate", "se", "statistic", "pvalue", "ci_lb", "ci_ub", "pi_lb", "pi_ub",
                  "natural"):
            d[k] = None
        d["warnings"] = d["warnings"] + ["no overall estimate: the subgroups are not exclusive "
                                         "(spec 'overall = false')"]
    if an.sensitivity:
        role = an.spec.sensitivity[0]
        d["sensitivity"] = {"role": role, "results": [dict(value=v, **_summary_fields(r))
                                                      for v, r in an.sensitivity]}
    if an.spec.moderators:
        try:
            d["meta_regression"] = spec_meta_regression(an.selection.rows, an.result,
                                                        an.spec.moderators, an.spec.categorical)
        except ValueError as e:
            raise DataError(f"{an.spec.path}: {e}") from None
    exact = _exact_two_group(an)
    if exact is not None:
        d["exact"] = exact
    if an.spec.study_ci != "model":
        from .proportions import proportion_ci

        kept = an.result.kept
        x = np.array(an.study_data["events"], dtype=float)[kept]
        n = np.array(an.study_data["total"], dtype=float)[kept]
        lo, hi = (np.atleast_1d(b) for b in proportion_ci(x, n, method=an.spec.study_ci,
                                                           level=an.spec.level))
        for j, row in enumerate(d["studies"]):
            row["observed"] = {"proportion": x[j] / n[j], "ci_lb": float(lo[j]),
                               "ci_ub": float(hi[j]), "method": an.spec.study_ci}
    return d


@dataclass(frozen=True)
class EvidenceMap:
    """Every study of a data set with its design, cells, size and whether results are reported."""

    spec: Spec
    rows: tuple[dict[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        keep = ("study_id", "citation", "year", "registry_id", "indication", "setting", "design",
                "phase", "n_planned", "n_enrolled", "n_analysed", "cell_source", "cell_preparation",
                "donor", "route", "status", "results_reported")
        studies = [{k: r.get(k, "") for k in keep if k in r} for r in self.rows]
        return {"title": self.spec.title, "kind": "evidence-map", "spec": self.spec.resolved(),
                "data": self.spec.data, "k": len(studies), "studies": studies,
                "excluded": []}


def evidence_map(spec: Spec) -> EvidenceMap:
    file, cols, rows = _read(spec)
    for c in spec.where:
        if c not in cols:
            raise DataError(f"{file}: no column {c!r}{_suggest(c, cols)}; needed by spec {spec.path.name}")
    kept = [r for r in rows if all(_norm_cell(r.get(c)) in v for c, v in spec.where.items())]
    if not kept:
        raise DataError(f"{spec.path}: no studies left after 'where' (data {file})")
    return EvidenceMap(spec, tuple(kept))
