"""Writers: result objects to plain dictionaries and deterministic JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["result_dict", "clean", "dumps", "write_json"]

#: significant digits kept in written files: enough for rtol 1e-10, few enough
#: that last-bit differences between machines do not change the bytes
DIGITS = 12


def clean(x: Any) -> Any:
    """Make ``x`` JSON-ready: floats rounded to DIGITS significant digits, NaN -> None."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return [clean(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if not math.isfinite(x):
            return None
        r = float(f"{x:.{DIGITS}g}")
        return 0.0 if r == 0 else r
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return clean(dataclasses.asdict(x))
    return x


def dumps(obj: Any) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(clean(obj), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(obj), encoding="utf-8")
    return path


_SCALARS = ("measure", "method", "test", "level", "k", "estimate", "se", "statistic", "df",
            "pvalue", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "pi_se", "tau2", "se_tau2",
            "tau2_ci_lb", "tau2_ci_ub", "i2", "i2_ci_lb", "i2_ci_ub", "h2", "h2_ci_lb",
            "h2_ci_ub", "q", "q_df", "q_pvalue", "vt", "s2w")


def result_dict(res) -> dict[str, Any]:
    """The fields of a :class:`~metamsc.results.MetaResult` as plain Python values."""
    d: dict[str, Any] = {name: getattr(res, name) for name in _SCALARS}
    d["tau"] = res.tau
    d["natural"] = None if res.natural is None else dataclasses.asdict(res.natural)
    lb, ub = res.study_intervals()
    nat = res.study_natural()
    studies = []
    for i, lab in enumerate(res.labels):
        row = {"study": lab, "yi": res.yi[i], "vi": res.vi[i], "ci_lb": lb[i], "ci_ub": ub[i],
               "weight": res.weights[i]}
        if res.n is not None:
            row["n"] = res.n[i]
        if nat is not None:
            row["natural"] = {"estimate": nat[0][i], "ci_lb": min(nat[1][i], nat[2][i]),
                              "ci_ub": max(nat[1][i], nat[2][i])}
        studies.append(row)
    d["studies"] = studies
    d["excluded"] = [dataclasses.asdict(e) for e in res.excluded]
    d["conventions"] = dataclasses.asdict(res.conventions)
    d["diagnostics"] = dataclasses.asdict(res.diagnostics)
    d["warnings"] = list(res.warnings)
    return d
