"""Running a spec: the rows it selects, through the library's models, into an :class:`Analysis`.

The spec calls the same functions a notebook calls (``effect_size``, ``pool_effects``,
``fit_glmm``, ``subgroup_analysis``, ``meta_regression``); this module only dispatches and
says where a failure is (file, row, study) through the attributes of
:class:`~metamsc.errors.DataError`.
"""

from __future__ import annotations

import collections
import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._util import study_arrays
from ..effects import effect_size
from ..measures import REGISTRY
from ..errors import DataError, NoStudyLeft
from ..pooling import pool_effects
from ..results import Excluded, MetaResult, SubgroupTest
from .schema import GLMM_METHODS, Spec, load_spec, suggest
from .select import MISSING, Selection, norm_cell, numbers, read_data, select

__all__ = ["Analysis", "EvidenceMap", "run_spec", "evidence_map", "moderator_regression"]


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

    def plot_forest(self, ax=None, **overrides):
        """The forest plot of this run (:func:`metamsc.project.figures.analysis_forest`)."""
        from .figures import analysis_forest

        return analysis_forest(self, ax=ax, **overrides)

    def exact(self) -> list[dict[str, Any]] | None:
        """Per study of a 2x2 measure (registry family "binary2"): Fisher's exact test and the exact
        conditional odds ratio (:func:`metamsc.twogroup.exact_two_group`); None otherwise."""
        if REGISTRY[self.spec.measure].family != "binary2":
            return None
        from ..twogroup import exact_two_group

        kept = np.asarray(self.result.kept, dtype=int)
        cells = (np.asarray(self.study_data[r])[kept]
                 for r in ("events1", "total1", "events2", "total2"))
        return exact_two_group(*cells, self.result.labels, level=self.spec.level)


def fit(spec: Spec, sel: Selection, idx: np.ndarray,
         override: dict[str, float] | None = None) -> MetaResult:
    """Fit rows ``idx`` of the selection; the result's ``kept`` holds selection-row positions."""
    res = _fit_rows(spec, sel, idx, override)
    kept = np.arange(len(idx)) if res.kept is None else np.asarray(res.kept, dtype=int)
    return dataclasses.replace(res, kept=np.asarray(idx, dtype=int)[kept])


def _fit_rows(spec: Spec, sel: Selection, idx: np.ndarray,
              override: dict[str, float] | None = None) -> MetaResult:
    roles = {r: numbers(spec, sel, r, override)[idx] for r in spec.roles()}
    labels = [sel.rows[i][spec.column("study")] for i in idx]
    es = _effect_sizes(spec, sel, idx, roles, labels)  # the data checked row by row
    if spec.method in GLMM_METHODS:
        from ..glmm import fit_glmm

        two = spec.measure == "OR"
        try:
            return fit_glmm(roles["events1" if two else "events"],
                            roles.get("total1" if two else "total"), time=roles.get("time"),
                            events2=roles.get("events2"), total2=roles.get("total2"),
                            measure=spec.measure, method="EE" if spec.method == "GLMM-EE" else "ML",
                            test=spec.test, level=spec.level, labels=labels, nagq=spec.nagq)
        except ValueError as e:
            raise DataError(spec.path, f"cannot fit the model: {e}") from None
    if not study_arrays(es.yi, es.vi)[3].any():
        raise NoStudyLeft(spec.path, "cannot fit the model: no study left to pool (no study "
                                     "has a finite effect size and a positive variance)")
    try:
        return pool_effects(es, method=spec.method, test=spec.test, level=spec.level,
                            pi=spec.pi, i2=spec.i2)
    except ValueError as e:
        raise DataError(spec.path, f"cannot fit the model: {e}") from None


def _effect_sizes(spec: Spec, sel: Selection, idx: np.ndarray, roles: dict[str, np.ndarray],
                  labels: list[str]):
    """The effect sizes of rows ``idx``; bad data raise a DataError with the row and study of
    the first row that fails on its own (found by position, in the error path only)."""
    def one(values, labs):
        return effect_size(spec.measure, labels=labs, add=spec.add, to=spec.to, **values)

    try:
        return one(roles, labels)
    except ValueError as e:
        for j in range(len(idx)):
            try:
                one({r: v[j:j + 1] for r, v in roles.items()}, labels[j:j + 1])
            except ValueError as e1:
                raise DataError(sel.file, str(e1), row=sel.row_numbers[idx[j]],
                                study=labels[j]) from None
        raise DataError(sel.file, str(e)) from None


def _subgroups(spec: Spec, sel: Selection, result: MetaResult):
    """The library's subgroup analysis of the overall fit: each subgroup refitted with the same
    model, in the spec's order of levels (those listed in ``where``), then the data's."""
    from ..subgroups import subgroup_analysis

    labels = [row[spec.subgroup].strip() or "(missing)" for row in sel.rows]
    try:
        sa = subgroup_analysis(result, labels, order=spec.where.get(spec.subgroup, ()),
                               tau2_common=spec.tau2_common, descriptive=spec.descriptive)
    except ValueError as e:
        raise DataError(spec.path, f"subgroups by {spec.subgroup!r}: {e}") from None
    return tuple(sa.subgroups.items()), sa.test, sa.notes


def run_spec(spec: Spec | str | Path) -> "Analysis | EvidenceMap":
    """Run an analysis spec: select rows, compute effect sizes, pool (and per subgroup)."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    if spec.kind == "evidence-map":
        return evidence_map(spec)
    sel = select(spec)
    if not sel.rows:
        raise NoStudyLeft(spec.path, f"no rows left to analyse after 'where' and missing "
                                     f"values (data {sel.file})")
    if spec.kind == "method-sensitivity" or spec.method == "BAYES":
        from .extensions import run_spec_extension

        return run_spec_extension(spec, sel, numbers)
    result = fit(spec, sel, np.arange(len(sel.rows)))
    study_data = {r: tuple(numbers(spec, sel, r)) for r in spec.roles()}
    subgroups, test, notes = _subgroups(spec, sel, result) if spec.subgroup else ((), None, ())
    if spec.headline is not None and spec.headline not in [lv for lv, _ in subgroups]:
        raise DataError(spec.path, f"key 'headline': no subgroup {spec.headline!r} among "
                        f"{', '.join(repr(lv) for lv, _ in subgroups) or 'none'}")
    labels = [r[spec.column("study")] for r in sel.rows]
    dups = sorted(lab for lab, c in collections.Counter(labels).items() if c > 1)  # O(k)
    if dups:
        notes += (f"study labels used more than once: {', '.join(dups)} (rows are kept apart "
                  f"by position; label them uniquely for a readable table)",)
    sens: tuple[tuple[float, MetaResult], ...] = ()
    if spec.sensitivity:
        role, values = spec.sensitivity
        sens = tuple((v, fit(spec, sel, np.arange(len(sel.rows)), {role: v})) for v in values)
    return Analysis(spec, result, sel, subgroups, test, study_data, sens, notes)



@dataclass(frozen=True)
class EvidenceMap:
    """Every study of a data set with its design, cells, size and whether results are reported."""

    spec: Spec
    rows: tuple[dict[str, str], ...]

    def plot_evidence_map(self, ax=None):
        """The evidence map (:func:`metamsc.plots.evidence_map_plot`) with the spec's title and
        study column."""
        from ..plots import evidence_map_plot

        return evidence_map_plot(list(self.rows), ax=ax, title=self.spec.title,
                                 study_column=self.spec.columns.get("study"))

    def to_dict(self) -> dict[str, Any]:
        keep = ("study_id", "citation", "year", "registry_id", "indication", "setting", "design",
                "phase", "n_planned", "n_enrolled", "n_analysed", "cell_source", "cell_preparation",
                "donor", "route", "status", "results_reported")
        studies = [{k: r.get(k, "") for k in keep if k in r} for r in self.rows]
        return {"title": self.spec.title, "kind": "evidence-map", "spec": self.spec.resolved(),
                "data": self.spec.data, "k": len(studies), "studies": studies,
                "excluded": []}


def evidence_map(spec: Spec) -> EvidenceMap:
    """The studies of an evidence-map spec (its ``where`` applied)."""
    file, cols, rows = read_data(spec)
    for c in spec.where:
        if c not in cols:
            raise DataError(file, f"no column {c!r}{suggest(c, cols)}; needed by spec "
                                  f"{spec.path.name}", column=c)
    kept = [r for r in rows if all(norm_cell(r.get(c)) in v for c, v in spec.where.items())]
    if not kept:
        raise NoStudyLeft(spec.path, f"no studies left after 'where' (data {file})")
    return EvidenceMap(spec, tuple(kept))


def moderator_regression(rows: Sequence[Mapping[str, str]], result: MetaResult,
                         moderators: Sequence[str], categorical: Sequence[str] = ()):
    """``result`` (a pooled MetaResult) refitted by :func:`metamsc.meta_regression` with the
    moderators read from ``rows`` (the selection's CSV rows; ``result.kept`` indexes them).

    A column whose every non-missing value is a number is continuous unless it is listed in
    ``categorical``; other columns are categorical (treatment coding, first sorted level as the
    reference). Studies with a missing moderator are left out and listed in ``excluded``.
    """
    from ..metareg import meta_regression

    kept = np.arange(len(rows)) if result.kept is None else np.asarray(result.kept, dtype=int)
    cols: dict[str, np.ndarray] = {}
    for m in moderators:
        vals = [(rows[i].get(m) or "").strip() for i in kept]
        missing = [v.lower() in MISSING for v in vals]
        if m not in categorical:
            try:
                cols[m] = np.array([np.nan if miss else float(v) for v, miss in zip(vals, missing)])
                continue
            except ValueError:
                pass
        cols[m] = np.array([None if miss else v for v, miss in zip(vals, missing)], dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the left-out studies are listed in the JSON
        try:
            return meta_regression(result.yi, result.vi, cols, method=result.method,
                                   test=result.test, level=result.level, labels=result.labels,
                                   categorical=tuple(categorical))
        except ValueError as e:
            raise ValueError(f"meta-regression on {list(moderators)}: {e}") from None
