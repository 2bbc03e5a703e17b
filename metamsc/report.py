"""Writers: result objects to plain dictionaries and deterministic JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["result_dict", "clean", "dumps", "write_json"]

#: significant digits kept in written files. Iterative fits (GLMM quadrature, optimisers) agree
#: across machines only to about 1e-11 relative, so 12 digits changed bytes between two machines
#: of the same kind; 8 digits are far beyond what a table prints and stable across machines.
DIGITS = 8

#: fit diagnostics that are numerical noise by nature (they differ between machines) and are
#: kept on the result object but not written to files
_NOISY = ("gradient_max", "hessian_eigenvalues", "nfev")


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
        if nat is not None:
            row["natural"] = {"estimate": nat[0][i], "ci_lb": min(nat[1][i], nat[2][i]),
                              "ci_ub": max(nat[1][i], nat[2][i])}
        studies.append(row)
    d["studies"] = studies
    d["excluded"] = [dataclasses.asdict(e) for e in res.excluded]
    d["conventions"] = dataclasses.asdict(res.conventions)
    d["diagnostics"] = dataclasses.asdict(res.diagnostics)
    d["warnings"] = list(res.warnings)
    if res.extra:
        d["extra"] = {key: v for key, v in res.extra.items() if key not in _NOISY}
    return d


# --- the manuscript table and the manifest (``metamsc reproduce``) ----------------------------

SUMMARY_COLUMNS = ("analysis", "title", "measure", "method", "test", "level", "k", "patients", "scale",
                   "estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "i2", "tau2", "excluded")


def _patients(d: dict[str, Any]) -> float | None:
    """Patients in the analysis: per study (by label) the largest number it contributes, so a
    study reported under two definitions is counted once. None for person-time data."""
    per_study: dict[str, float] = {}
    for s in d.get("studies", []):
        if "time" in s:  # person-time is not a number of patients
            return None
        if "total1" in s:
            n = s["total1"] + s["total2"]
        elif "total" in s:
            n = s["total"]
        elif s.get("n") is not None:
            n = s["n"]
        elif "n1" in s:
            n = s["n1"] + s["n2"]
        else:
            return None
        per_study[s["study"]] = max(per_study.get(s["study"], 0.0), n)
    return float(sum(per_study.values()))


def summary_row(name: str, d: dict[str, Any]) -> dict[str, Any]:
    """One row of the manuscript table from an analysis' JSON dictionary."""
    row: dict[str, Any] = {c: None for c in SUMMARY_COLUMNS}
    row.update(analysis=name, title=d.get("title"), k=d.get("k"),
               excluded=len(d.get("excluded", [])))
    if d.get("kind") == "evidence-map":
        row["measure"] = "evidence map"
        return row
    if d.get("kind") == "method-sensitivity":  # the range of the pooled estimates across methods
        sm = d["summary"]
        row.update(measure="method sensitivity", method=f"{sm['analyses']} analyses", test="",
                   level=d.get("level"), scale="proportion", ci_lb=sm["estimate_min"],
                   ci_ub=sm["estimate_max"])
        return row
    nat = d.get("natural")
    src = nat if nat is not None else d
    row.update(measure=d["measure"], method=d["method"], test=d["test"], patients=_patients(d),
               level=d.get("level"),
               scale=nat["scale"] if nat else "analysis scale",
               estimate=src.get("estimate"), ci_lb=src.get("ci_lb"), ci_ub=src.get("ci_ub"),
               pi_lb=src.get("pi_lb"), pi_ub=src.get("pi_ub"), i2=d.get("i2"), tau2=d.get("tau2"))
    est = d["conventions"]["tau2_estimator"]
    if est.startswith("GLMM"):
        row["method"] = est
    if d.get("overall") is False:
        row.update(scale="by subgroup only", i2=None, tau2=None)
    elif nat is not None and nat["estimate"] is None and nat["ci_ub"] is not None:
        row.update(scale="exact bound", ci_lb=nat["ci_lb"], ci_ub=nat["ci_ub"], i2=None, tau2=None)
    return row


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return ""
        return f"{float(f'{v:.6g}'):g}" if abs(v) < 1e15 else f"{v:.6g}"
    return str(v)


def summary_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for r in rows:
        w.writerow([_cell(clean(r[c])) for c in SUMMARY_COLUMNS])
    return buf.getvalue()


def _fmt_est(r: dict[str, Any], key: str) -> str:
    v = r.get(key)
    if v is None:
        return ""
    if r.get("scale") in ("proportion", "exact bound"):
        return f"{100 * v:.1f}%"
    return f"{v:.2f}"


def summary_markdown(rows: list[dict[str, Any]]) -> str:
    """The manuscript table: one row per analysis, natural-scale values where they exist."""
    head = ("| Analysis | k | Patients | Model | Estimate [CI] | Prediction interval | I^2 | Excluded |\n"
            "|---|---:|---:|---|---|---|---:|---:|\n")
    lines = []
    for r in rows:
        if r["measure"] == "evidence map":
            lines.append(f"| {r['title']} | {r['k']} | | evidence map | | | | {r['excluded']} |")
            continue
        if r["measure"] == "method sensitivity":
            lines.append(f"| {r['title']} | {r['k']} | | method sensitivity ({r['method']}) | pooled "
                         f"estimates from {_fmt_est(r, 'ci_lb')} to {_fmt_est(r, 'ci_ub')} | | | "
                         f"{r['excluded']} |")
            continue
        model = f"{r['measure']}, {r['method']}" + (f", {r['test']}" if r["test"] != "z" else "")
        if r["scale"] == "exact bound":
            est = (f"no model identifiable; exact one-sided bound "
                   f"{_fmt_est(r, 'ci_lb')} to {_fmt_est(r, 'ci_ub')}")
        elif r["estimate"] is None:
            est = "by subgroup (see JSON)"
        else:
            est = f"{_fmt_est(r, 'estimate')} [{_fmt_est(r, 'ci_lb')}, {_fmt_est(r, 'ci_ub')}]"
            if r.get("level") not in (None, 0.95):
                est += f" ({100 * r['level']:g}% CI)"
        pi = (f"[{_fmt_est(r, 'pi_lb')}, {_fmt_est(r, 'pi_ub')}]"
              if r.get("pi_lb") is not None else "")
        i2 = f"{r['i2']:.0f}%" if r.get("i2") is not None and r["k"] and r["k"] > 1 else ""
        pts = f"{r['patients']:g}" if r.get("patients") is not None else ""
        lines.append(f"| {r['title']} | {r['k']} | {pts} | {model} | {est} | {pi} | {i2} | {r['excluded']} |")
    return ("# Summary of the analyses\n\nGenerated by `metamsc reproduce`; one row per spec in "
            "`analyses/`. Values on the natural scale (proportions in percent); 95% CIs unless "
            "stated.\n\n"
            + head + "\n".join(lines) + "\n")


def sha256(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest(outputs: dict[str, list[str]], root: Path, target: Path, version: str) -> dict[str, Any]:
    """For every output (path relative to ``target``) its SHA-256 and those of the inputs it
    came from: paths relative to ``root``, bundled data as ``metamsc/data/<file>``."""
    from . import datasets

    def rel(p: str) -> str:
        q = Path(p).resolve()
        for base, prefix in ((datasets.DATA_DIR.resolve(), "metamsc/data/"), (root.resolve(), "")):
            try:
                return prefix + str(q.relative_to(base))
            except ValueError:
                continue
        return str(q)

    files = {out: {"sha256": sha256(target / out),
                   "inputs": {rel(i): sha256(i) for i in sorted(set(inputs))}}
             for out, inputs in sorted(outputs.items())}
    return {"package": "metamsc", "version": version, "outputs": files}
