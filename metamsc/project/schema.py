"""The analysis spec's schema (``analyses/*.toml``): read a spec, check every key, fill defaults.

A spec names its data, the rows to keep, the measure and the model. It cannot run code: it is
plain TOML read with :mod:`tomllib`, and every key is checked here; a mistake raises
:class:`~metamsc.errors.SpecError` with the file and the key as attributes. Where a spec key
belongs to a library function (the ``[forest]`` table, ``[prior]``), that function's own
checker is called, so the rule is written once.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import datasets
from ..core import TESTS
from ..errors import SpecError
from ..measures import CORRECTION_RULES, REGISTRY
from ..method_sensitivity import PROPORTION_TRANSFORMS
from .extensions import spec_options
from ..plots.forest import check_spec_options
from ..pooling import METHODS
from ..results import I2_DEFINITIONS, PI_RULES, USER_WEIGHTED
from ..subgroups import TAU2_COMMON_RULES

__all__ = ["Spec", "load_spec", "ROLES", "KINDS", "PLOT_KINDS", "GLMM_METHODS", "COMPARE_ROLES",
           "suggest"]

ROLES = ("study", "events", "total", "time", "yi", "vi", "events1", "total1", "events2",
         "total2", "mean1", "sd1", "n1", "mean2", "sd2", "n2", "n", "mean_pre", "sd_pre",
         "mean_post", "sd_post", "r", "mean", "sd")

_KEYS = {
    "title": str, "data": str, "where": dict, "measure": str, "method": str, "test": str,
    "level": (int, float), "subgroup": str, "columns": dict, "figure": (str, list),
    "add": (int, float), "to": str, "description": str, "pi": str, "i2": str, "study_ci": str,
    "note": str, "nagq": (int, str),
    "assume": dict, "sensitivity": dict, "compare": dict, "overall": bool, "kind": str,
    "tau2_common": (bool, str),
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
COMPARE_ROLES = {"events1": ("events", 1), "total1": ("total", 1), "events2": ("events", 2),
                  "total2": ("total", 2), "mean1": ("mean", 1), "sd1": ("sd", 1), "n1": ("n", 1),
                  "mean2": ("mean", 2), "sd2": ("sd", 2), "n2": ("n", 2)}


def suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(where_, key: str, value, choices, noun: str, sep: str = " ") -> None:
    """A SpecError naming ``key`` unless ``value`` is one of ``choices`` (the message suggests
    the closest choice and lists them all, joined by ``sep``)."""
    if value not in choices:
        raise SpecError(where_, f"key '{key}': unknown {noun}{value!r}{suggest(value, choices)}; "
                        f"expected one of {sep.join(choices)}", key=key)



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
    tau2_common: bool | str = False
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
        if self.compare and role in COMPARE_ROLES:
            return role
        return self.columns.get(role, role)

    def roles(self) -> tuple[str, ...]:
        """Data roles of the measure (empty for an evidence map)."""
        return REGISTRY[self.measure].roles if self.kind != "evidence-map" else ()

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
            d["tau2_common"] = self.tau2_common
        if self.moderators:
            d.update(moderators=list(self.moderators), categorical=list(self.categorical))
        d.update(self.options)
        return d


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; a mistake raises :class:`SpecError` naming file and key."""
    path = Path(path)
    where_ = f"{path}"
    raw = _read_toml(path)
    kind = _check_types(where_, raw)
    if kind == "evidence-map":
        return _load_evidence_map(path, raw)
    for key in _REQUIRED:
        if key not in raw:
            raise SpecError(where_, f"missing required key {key!r}", key=key)
    model = _model_keys(where_, raw)
    rows = _row_keys(where_, raw, model["measure"])
    shown = _output_keys(where_, path, raw, kind, model["method"], model["measure"])
    if (model["method"] == "BAYES" or kind == "method-sensitivity") and (
            shown["subgroup"] or "sensitivity" in raw):
        raise SpecError(where_, f"keys 'subgroup' and 'sensitivity' do not apply to method BAYES "
                        f"or kind 'method-sensitivity'")
    return Spec(kind=kind, path=path.resolve(), title=raw["title"], data=raw["data"],
                caveat=raw.get("caveat", ""), headline=raw.get("headline"),
                note=raw.get("note", ""), overall=raw.get("overall", True),
                description=raw.get("description", ""), **model, **rows, **shown)


def _read_toml(path: Path) -> dict[str, Any]:
    """The spec file's TOML table (a SpecError for a file that is missing or not TOML)."""
    where_ = f"{path}"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(where_, f"no such spec file") from None
    except UnicodeDecodeError:
        raise SpecError(where_, f"not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(where_, f"not valid TOML: {e}") from None
    except RecursionError:
        raise SpecError(where_, f"not a usable spec: tables or arrays nested too deeply") from None
    except (OSError, RuntimeError) as e:  # a directory, a symlink loop, no permission
        raise SpecError(where_, f"cannot read the spec file: "
                        f"{getattr(e, 'strerror', None) or e}") from None
    return raw


def _check_types(where_: str, raw: dict[str, Any]) -> str:
    """Every key known and of its type; returns the spec's kind."""
    for key, val in raw.items():
        if key not in _KEYS:
            raise SpecError(where_, f"unknown key {key!r}{suggest(key, _KEYS)}", key=key)
        want = _KEYS[key]
        allows_bool = bool in want if isinstance(want, tuple) else want is bool
        if (isinstance(val, bool) and not allows_bool) or not isinstance(val, want):
            raise SpecError(where_, f"key {key!r} must be {_typename(want)}, got {val!r}", key=key)
    kind = raw.get("kind", "meta-analysis")
    check_choice(where_, "kind", kind, KINDS, "kind ", sep=", ")
    return kind


def _model_keys(where_: str, raw: dict[str, Any]) -> dict[str, Any]:
    """measure, method, nagq, test, level, pi, i2."""
    measure = raw["measure"]
    check_choice(where_, "measure", measure, REGISTRY, "measure ")
    method = raw.get("method", "REML")
    allowed_methods = METHODS + GLMM_METHODS + ("BAYES",)
    check_choice(where_, "method", method, allowed_methods, "method ")
    if method in USER_WEIGHTED:
        raise SpecError(where_, f"key 'method': {method} needs study weights, which a spec cannot give; "
                        f"use it from Python: metamsc.pool(yi, vi, method='{method}', weights=...)",
                        key="method")
    if method in GLMM_METHODS and not REGISTRY[measure].glmm:
        raise SpecError(where_, f"key 'method': {method} needs measure PLO (binomial-normal), "
                        f"IRLN (Poisson-normal) or OR (two groups, model UM.FS), not {measure}", key="method")
    nagq = raw.get("nagq", 7)
    if "nagq" in raw and method not in GLMM_METHODS:
        raise SpecError(where_, f"key 'nagq' applies to method GLMM only", key="nagq")
    from ..glmm import MAX_NAGQ

    if not (nagq == "high" or (isinstance(nagq, int) and not isinstance(nagq, bool)
                               and 1 <= nagq <= MAX_NAGQ)):
        raise SpecError(where_, f"key 'nagq' must be an integer from 1 to {MAX_NAGQ} or \"high\", "
                        f"got {nagq!r}", key="nagq")
    test = raw.get("test", "z")
    check_choice(where_, "test", test, TESTS, "test ")
    level = float(raw.get("level", 0.95))
    if level >= 1 and level < 100:
        raise SpecError(where_, f"key 'level' must be a fraction such as 0.95, got {raw['level']!r}", key="level")
    if not 0 < level < 1:
        raise SpecError(where_, f"key 'level' must lie between 0 and 1, got {raw['level']!r}", key="level")
    pi = raw.get("pi", "metafor")
    check_choice(where_, "pi", pi, PI_RULES, "prediction-interval rule ")
    i2 = raw.get("i2", "tau2")
    if i2 not in I2_DEFINITIONS:
        raise SpecError(where_, f"key 'i2': unknown I^2 definition {i2!r}; expected tau2 or Q", key="i2")
    return dict(measure=measure, method=method, nagq=nagq, test=test, level=level, pi=pi, i2=i2)


def _row_keys(where_: str, raw: dict[str, Any], measure: str) -> dict[str, Any]:
    """Which rows and columns, and the values a spec gives for a role: where, columns, add, to,
    assume, sensitivity, compare."""
    where: dict[str, tuple[str, ...]] = {}
    for col, val in raw.get("where", {}).items():
        vals = val if isinstance(val, list) else [val]
        for v in vals:
            if isinstance(v, (dict, list)) or isinstance(v, bool):
                raise SpecError(where_, f"key 'where.{col}' must be a value or a list of values, got {val!r}", key=f"where.{col}")
        where[col] = tuple(norm_value(v) for v in vals)
    columns = {}
    for role, col in raw.get("columns", {}).items():
        if role not in ROLES:
            raise SpecError(where_, f"key 'columns.{role}': unknown role{suggest(role, ROLES)}", key=f"columns.{role}")
        if not isinstance(col, str):
            raise SpecError(where_, f"key 'columns.{role}' must be a column name (a string)", key=f"columns.{role}")
        columns[role] = col
    if "add" in raw and not (math.isfinite(raw["add"]) and raw["add"] >= 0):
        raise SpecError(where_, f"key 'add' must be a finite number >= 0, got {raw['add']!r}", key="add")
    to = raw.get("to", "only0")
    if to not in CORRECTION_RULES:
        raise SpecError(where_, f"key 'to': unknown rule {to!r}; expected only0, all, if0all or none", key="to")
    roles = REGISTRY[measure].roles
    assume: dict[str, float] = {}
    for role, val in raw.get("assume", {}).items():
        if role not in roles:
            raise SpecError(where_, f"key 'assume.{role}': measure {measure} has no role {role!r}"
                            f"{suggest(role, roles)}", key=f"assume.{role}")
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise SpecError(where_, f"key 'assume.{role}' must be a finite number, got {val!r}", key=f"assume.{role}")
        _check_role_value(where_, f"assume.{role}", role, val)
        assume[role] = float(val)
    sensitivity = None
    if "sensitivity" in raw:
        items = list(raw["sensitivity"].items())
        if len(items) != 1:
            raise SpecError(where_, f"key 'sensitivity' must name exactly one role with a list of values", key="sensitivity")
        role, vals = items[0]
        if role not in roles:
            raise SpecError(where_, f"key 'sensitivity.{role}': measure {measure} has no role {role!r}"
                            f"{suggest(role, roles)}", key=f"sensitivity.{role}")
        if not isinstance(vals, list) or not vals or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                for v in vals):
            raise SpecError(where_, f"key 'sensitivity.{role}' must be a non-empty list of finite numbers", key=f"sensitivity.{role}")
        for v in vals:
            _check_role_value(where_, f"sensitivity.{role}", role, v)
        sensitivity = (role, tuple(float(v) for v in vals))
    compare = None
    if "compare" in raw:
        c = raw["compare"]
        unknown = set(c) - {"column", "group1", "group2"}
        if unknown or not all(isinstance(c.get(k), str) for k in ("column", "group1", "group2")):
            raise SpecError(where_, f"key 'compare' must be a table with string keys column, group1, group2", key="compare")
        if not any(r in COMPARE_ROLES for r in roles):
            raise SpecError(where_, f"key 'compare' needs a two-group measure (RR OR RD MD SMD ROM), "
                            f"not {measure}", key="compare")
        compare = (c["column"], c["group1"], c["group2"])
    return dict(where=where, columns=columns, assume=assume, sensitivity=sensitivity,
                compare=compare, add=None if "add" not in raw else float(raw["add"]), to=to)


def _output_keys(where_: str, path: Path, raw: dict[str, Any], kind: str, method: str,
                 measure: str) -> dict[str, Any]:
    """What is computed besides the pooled result and what is shown: study_ci, moderators,
    subgroup, role, headline, descriptive, forest, figure, plots, dpi, options."""
    figs = raw.get("figure", [])
    figs = [figs] if isinstance(figs, str) else figs
    for f in figs:
        if not isinstance(f, str) or Path(f).suffix.lower() not in (".svg", ".pdf", ".png"):
            raise SpecError(where_, f"key 'figure': {f!r} must be a path ending in .svg, .pdf or .png", key="figure")
    study_ci = raw.get("study_ci", "model")
    ci_methods = ("model", "CP", "WS", "WSCC", "AC", "SA", "SACC", "JEFFREYS")
    check_choice(where_, "study_ci", study_ci, ci_methods, "")
    if study_ci != "model" and REGISTRY[measure].family != "proportion":
        raise SpecError(where_, f"key 'study_ci' = {study_ci!r} needs a proportion measure", key="study_ci")
    try:
        moderators, categorical = _moderators(raw, method)
    except ValueError as e:
        raise SpecError(where_, f"{e}") from None
    subgroup = raw.get("subgroup")
    if not raw.get("overall", True) and not subgroup:
        raise SpecError(where_, f"key 'overall' = false needs a 'subgroup'", key="overall")
    tau2_common = raw.get("tau2_common", False)
    if isinstance(tau2_common, str):  # true means metafor's rule; "meta" meta's tau.common = TRUE
        check_choice(where_, "tau2_common", tau2_common, TAU2_COMMON_RULES, "tau2_common rule ")
        tau2_common = True if tau2_common == "metafor" else tau2_common
    if tau2_common and not subgroup:
        raise SpecError(where_, f"key 'tau2_common' = true needs a 'subgroup'", key="tau2_common")
    if tau2_common and method in GLMM_METHODS:
        raise SpecError(where_, f"key 'tau2_common' = true is not available for method "
                        f"{method!r} (a common tau^2 needs an inverse-variance model)", key="tau2_common")
    role = raw.get("role", "primary")
    check_choice(where_, "role", role, ROLES_OF_ANALYSIS, "role ", sep=", ")
    for key in ("headline", "descriptive"):
        if key in raw and not subgroup:
            raise SpecError(where_, f"key {key!r} needs a 'subgroup'", key=key)
    descriptive = raw.get("descriptive", [])
    if not all(isinstance(x, str) for x in descriptive):
        raise SpecError(where_, f"key 'descriptive' must be a list of subgroup levels (strings)", key="descriptive")
    if raw.get("headline") in descriptive:
        raise SpecError(where_, f"key 'headline': {raw['headline']!r} is also listed as descriptive", key="headline")
    forest_opts = raw.get("forest", {})
    try:
        check_spec_options(forest_opts)
    except ValueError as e:
        raise SpecError(where_, f"key {e}", key="forest") from None
    plots = {}
    for kind, files in raw.get("plots", {}).items():
        files = [files] if isinstance(files, str) else files
        if kind not in PLOT_KINDS:
            raise SpecError(where_, f"key 'plots.{kind}': unknown plot{suggest(kind, PLOT_KINDS)}; "
                            f"expected one of {', '.join(PLOT_KINDS)}", key=f"plots.{kind}")
        if not isinstance(files, list) or not all(
                isinstance(f, str) and Path(f).suffix.lower() in (".svg", ".pdf", ".png") for f in files):
            raise SpecError(where_, f"key 'plots.{kind}' must be paths ending in .svg, .pdf or .png", key=f"plots.{kind}")
        plots[kind] = tuple(files)
    if "bubble" in plots and not moderators:
        raise SpecError(where_, f"key 'plots.bubble' needs 'moderators'", key="plots.bubble")
    dpi = raw.get("dpi", 200)
    if isinstance(dpi, bool) or not 10 <= dpi <= 1200:
        raise SpecError(where_, f"key 'dpi' must be an integer between 10 and 1200, got {dpi!r}", key="dpi")
    _check_figures_not_inputs(path, raw["data"], figs)
    options = spec_options(where_, raw, kind, method)
    if kind == "method-sensitivity" and (measure not in PROPORTION_TRANSFORMS or method not in METHODS):
        raise SpecError(where_, f"kind 'method-sensitivity' needs a proportion measure PLO, PFT or "
                        f"PAS and a tau^2 method for its primary analysis, not {measure}/{method}")
    return dict(options=options, forest=dict(forest_opts), plots=plots, dpi=dpi, role=role,
                descriptive=tuple(descriptive), study_ci=study_ci, subgroup=subgroup,
                tau2_common=tau2_common, figures=tuple(figs), moderators=moderators,
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


def _check_role_value(where: str, key: str, role: str, val: float) -> None:
    """A value the spec gives for a data role (at ``key``) must be one the role can take."""
    ok, wording = _ROLE_RANGES.get(role, (lambda v: True, ""))
    if not ok(val):
        raise SpecError(where, f"key '{key}' must {wording}, got {val!r}", key=key)


def _check_figures_not_inputs(path: Path, data: str, figs) -> None:
    """No figure may be written over the spec or its data file."""
    def res(p: Path, key: str) -> Path:
        try:
            return p.resolve()
        except (RuntimeError, OSError):  # a symlink loop
            raise SpecError(path, f"key {key!r}: cannot resolve {p} (a symlink loop?)", key=key) from None

    inputs = {res(path, "data")} | ({res(path.parent / data, "data")}
                                    if data not in datasets.BUNDLED else set())
    for f in figs:
        if res(path.parent / f, "figure") in inputs:
            raise SpecError(path, f"key 'figure': {f!r} is an input of this analysis "
                            f"(its data or spec file); a figure must not be written over it", key="figure")


def _load_evidence_map(path: Path, raw: dict[str, Any]) -> Spec:
    """An evidence map: a figure and a table of every study of a data set (no pooling)."""
    where_ = str(path)
    allowed = {"kind", "title", "data", "where", "figure", "description", "columns", "note"}
    for key in raw:
        if key not in allowed:
            raise SpecError(where_, f"key {key!r} does not apply to kind 'evidence-map' "
                            f"(allowed: {', '.join(sorted(allowed))})", key=key)
    for key in ("title", "data"):
        if key not in raw:
            raise SpecError(where_, f"missing required key {key!r}", key=key)
    figs = raw.get("figure", [])
    figs = [figs] if isinstance(figs, str) else figs
    for f in figs:
        if not isinstance(f, str) or Path(f).suffix.lower() not in (".svg", ".pdf", ".png"):
            raise SpecError(where_, f"key 'figure': {f!r} must be a path ending in .svg, .pdf or .png", key="figure")
    where = {col: tuple(norm_value(v) for v in (val if isinstance(val, list) else [val]))
             for col, val in raw.get("where", {}).items()}
    _check_figures_not_inputs(path, raw["data"], figs)
    return Spec(path=path.resolve(), title=raw["title"], data=raw["data"], measure="GEN",
                kind="evidence-map", where=where, figures=tuple(figs),
                columns=dict(raw.get("columns", {})), description=raw.get("description", ""))


def norm_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)




def _moderators(raw: dict[str, Any], method: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys ``moderators = [...]`` and ``categorical = [...]`` as tuples (a one-line
    ValueError naming the key otherwise)."""
    mods = raw.get("moderators", [])
    cats = raw.get("categorical", [])
    for key, val in (("moderators", mods), ("categorical", cats)):
        if not isinstance(val, list) or not all(isinstance(x, str) and x.strip() for x in val):
            raise ValueError(f"key {key!r}: expected a list of column names, got {val!r}")
        if len(set(val)) != len(val):
            raise ValueError(f"key {key!r}: a column is listed twice: {val}")
    if cats and not mods:
        raise ValueError("key 'categorical' needs 'moderators'")
    stray = [c for c in cats if c not in mods]
    if stray:
        raise ValueError(f"key 'categorical': {stray} not in 'moderators' {mods}")
    if mods and method in GLMM_METHODS:
        raise ValueError("key 'moderators': the meta-regression is an inverse-variance model; "
                         "it cannot use method GLMM")
    return tuple(mods), tuple(cats)
