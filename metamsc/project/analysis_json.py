"""The JSON of a spec's run (``results/<spec>.json``): the pooled result's own ``to_dict()``
plus what the spec adds (title, role, resolved spec, exclusions, subgroups, sensitivity runs,
meta-regression on the moderators, exact 2x2 statistics, per-study observed proportions)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..results import MetaResult
from .run import Analysis, EvidenceMap, moderator_regression

__all__ = ["analysis_dict"]


def _summary_fields(r: MetaResult) -> dict[str, Any]:
    """The headline numbers of one fit (a sensitivity run)."""
    keys = ("k", "estimate", "se", "ci_lb", "ci_ub", "pvalue", "pi_lb", "pi_ub", "tau2", "i2", "q",
            "q_pvalue")
    d = {k: getattr(r, k) for k in keys}
    d["natural"] = None if r.natural is None else vars(r.natural).copy()
    return d


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
            d["subgroup"]["tau2_common"] = an.spec.tau2_common
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
            d["meta_regression"] = moderator_regression(an.selection.rows, an.result,
                                                        an.spec.moderators,
                                                        an.spec.categorical).to_dict()
        except ValueError as e:
            raise DataError(an.spec.path, str(e)) from None
    exact = an.exact()
    if exact is not None:
        d["exact"] = exact
    if an.spec.study_ci != "model":
        from ..proportions import proportion_ci

        kept = an.result.kept
        x = np.array(an.study_data["events"], dtype=float)[kept]
        n = np.array(an.study_data["total"], dtype=float)[kept]
        lo, hi = (np.atleast_1d(b) for b in proportion_ci(x, n, method=an.spec.study_ci,
                                                           level=an.spec.level))
        for j, row in enumerate(d["studies"]):
            row["observed"] = {"proportion": x[j] / n[j], "ci_lb": float(lo[j]),
                               "ci_ub": float(hi[j]), "method": an.spec.study_ci}
    return d


