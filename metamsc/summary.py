"""The manuscript table (``results/summary.csv`` and ``summary.md``): one row per analysis, read
from the JSON a spec's run writes (so the table shows exactly what the files hold)."""

from __future__ import annotations

import math
from typing import Any

from .measures import REGISTRY
from .report import clean
from .results import PI_MIN_K

__all__ = ["summary_row", "summary_csv", "summary_markdown", "SUMMARY_COLUMNS", "ROLE_ORDER",
           "PI_MIN_K"]


SUMMARY_COLUMNS = ("analysis", "title", "role", "measure", "method", "test", "level", "k", "studies",
                   "patients", "scale", "estimate", "ci_lb", "ci_ub", "ci_method", "pi_lb", "pi_ub",
                   "i2", "tau2", "subgroups", "sensitivity", "descriptive", "excluded", "excluded_studies", "caveat")

#: order of the rows of the manuscript table: what the review concludes from first
ROLE_ORDER = ("primary", "sensitivity", "descriptive")


def _study_n(s: dict[str, Any]) -> float | None:
    """Patients one study row contributes; None for person-time or unknown sizes."""
    if "time" in s:  # person-time is not a number of patients
        return None
    if "total1" in s:
        return s["total1"] + s["total2"]
    if "total" in s:
        return s["total"]
    if s.get("n") is not None:
        return s["n"]
    if "n1" in s:
        return s["n1"] + s["n2"]
    return None


def _patients(studies: list[dict[str, Any]]) -> float | None:
    """Patients in a set of study rows: per study (by label) the largest number it contributes,
    so a study reported under two definitions is counted once. None for person-time data."""
    per_study: dict[str, float] = {}
    for s in studies:
        n = _study_n(s)
        if n is None:
            return None
        per_study[s["study"]] = max(per_study.get(s["study"], 0.0), n)
    return float(sum(per_study.values()))


def _counts(studies: list[dict[str, Any]]) -> str:
    """'x/n patients in k studies' of one-group count data (descriptive), or ''."""
    if not studies or not all("events" in s and "total" in s for s in studies):
        return ""
    x = sum(s["events"] for s in studies)
    n = sum(s["total"] for s in studies)
    k = len({s["study"] for s in studies})
    return f"{x:g}/{n:g} patients in {k} {'study' if k == 1 else 'studies'}"


def _single_study(row: dict[str, Any], study: dict[str, Any], fit: dict[str, Any]) -> None:
    """One study's own result: its observed proportion with the exact interval the spec asked
    for (study_ci), else the model's (Wald) interval; no prediction interval, no I^2."""
    obs = study.get("observed")
    if obs is not None:
        row.update(estimate=obs["proportion"], ci_lb=obs["ci_lb"], ci_ub=obs["ci_ub"], scale="proportion",
                   ci_method=f"{_CI_NAMES.get(obs['method'], obs['method'])}, one study")
    else:
        nat = fit.get("natural")
        src = nat if nat is not None else fit
        row.update(estimate=src.get("estimate"), ci_lb=src.get("ci_lb"), ci_ub=src.get("ci_ub"),
                   ci_method="Wald (z), one study")
    row.update(method="single study (no pooling)", test=None, pi_lb=None, pi_ub=None, i2=None, tau2=None)


_CI_NAMES = {"CP": "Clopper-Pearson (exact)", "WS": "Wilson", "WSCC": "Wilson (corrected)",
             "AC": "Agresti-Coull", "SA": "Wald", "SACC": "Wald (corrected)", "JEFFREYS": "Jeffreys"}


def summary_row(name: str, d: dict[str, Any]) -> dict[str, Any]:
    """One row of the manuscript table from an analysis' JSON dictionary.

    ``k`` counts the estimates (rows of data) and ``studies`` the distinct studies; ``patients``
    counts each study once. An analysis with a headline subgroup (spec ``headline``) reports that
    subgroup; descriptive subgroups are summarised as counts only; a one-study result is that
    study's own result, with no prediction interval and no I^2.
    """
    row: dict[str, Any] = {c: None for c in SUMMARY_COLUMNS}
    studies = d.get("studies", [])
    row.update(analysis=name, title=d.get("title"), role=d.get("role", "primary"), k=d.get("k"),
               excluded=len(d.get("excluded", [])), caveat=d.get("caveat") or None,
               excluded_studies=_excluded_text(d.get("excluded", [])) or None)
    if d.get("kind") == "evidence-map":
        row.update(measure="evidence map", role="descriptive", studies=len(studies))
        return row
    if d.get("kind") == "method-sensitivity":  # the range of the pooled estimates across methods
        sm = d["summary"]
        row.update(measure="method sensitivity", method=f"{sm['analyses']} analyses", test="",
                   level=d.get("level"), scale="proportion", ci_lb=sm["estimate_min"],
                   ci_ub=sm["estimate_max"])
        return row
    nat = d.get("natural")
    src = nat if nat is not None else d
    row.update(measure=d["measure"], method=d["method"], test=d["test"], level=d.get("level"),
               scale=nat["scale"] if nat else "analysis scale",
               estimate=src.get("estimate"), ci_lb=src.get("ci_lb"), ci_ub=src.get("ci_ub"),
               ci_method="model" if src.get("ci_lb") is not None else None,
               pi_lb=src.get("pi_lb"), pi_ub=src.get("pi_ub"), i2=d.get("i2"), tau2=d.get("tau2"))
    est = d["conventions"]["tau2_estimator"]
    if d.get("model") == "GLMM":
        row["method"] = est
    groups = (d.get("subgroup") or {}).get("groups", [])
    descriptive = [g for g in groups if g.get("descriptive")]
    if descriptive:
        row["descriptive"] = "; ".join(
            f"{g['group']}: " + (_counts([s for s in studies if s["study"] in _labels(g)]) or f"k = {g['k']}")
            for g in descriptive)
    lead = next((g for g in groups if g.get("headline")), None)
    used = studies
    if lead is not None:
        used = [s for s in studies if s["study"] in _labels(lead)]
        gnat = lead.get("natural")
        gsrc = gnat if gnat is not None else lead
        row.update(k=lead["k"], estimate=gsrc.get("estimate"), ci_lb=gsrc.get("ci_lb"),
                   ci_ub=gsrc.get("ci_ub"), ci_method="model", pi_lb=gsrc.get("pi_lb"),
                   pi_ub=gsrc.get("pi_ub"), i2=lead.get("i2"), tau2=lead.get("tau2"),
                   scale=gnat["scale"] if gnat else "analysis scale")
        if lead["k"] == 1:
            _single_study(row, used[0], lead)
    elif d.get("overall") is False:
        row["subgroups"] = "; ".join(_group_text(g, studies) for g in groups if not g.get("descriptive")) or None
        row.update(scale="descriptive only" if len(descriptive) == len(groups) else "by subgroup only",
                   estimate=None, ci_lb=None, ci_ub=None, ci_method=None, pi_lb=None, pi_ub=None,
                   i2=None, tau2=None)
    elif d.get("k") == 1:
        _single_study(row, studies[0], d)
    elif nat is not None and nat["estimate"] is None and nat["ci_ub"] is not None:
        row.update(scale="exact bound", ci_lb=nat["ci_lb"], ci_ub=nat["ci_ub"], ci_method="exact one-sided",
                   i2=None, tau2=None, pi_lb=None, pi_ub=None)
    if row["k"] is not None and row["k"] < PI_MIN_K:
        row.update(pi_lb=None, pi_ub=None)
    if row["k"] is not None and row["k"] < 2:
        row.update(i2=None, tau2=None)
    sens = d.get("sensitivity")
    if sens:
        row["sensitivity"] = "; ".join(
            f"{sens['role']} = {r['value']:g}: {_num_text(r, row['scale'])}" for r in sens["results"])
    if row["scale"] == "analysis scale" and row["measure"] in REGISTRY:
        # what an estimate without a natural scale is: the registry's description of the measure
        row["scale"] = REGISTRY[row["measure"]].description
    row["studies"] = len({s["study"] for s in used})
    row["patients"] = _patients(used)
    return row


def _num_text(r: dict[str, Any], scale: str | None) -> str:
    """'est [lb, ub]' of a sensitivity run, on the natural scale where there is one."""
    src = r.get("natural") or r
    if src.get("estimate") is None:
        return "n/a"
    if scale == "proportion":
        return f"{_pct(src['estimate'])} [{_pct(src['ci_lb'])}, {_pct(src['ci_ub'])}]"
    return f"{src['estimate']:.2f} [{src['ci_lb']:.2f}, {src['ci_ub']:.2f}]"


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.1f}%"


def _group_text(g: dict[str, Any], studies: list[dict[str, Any]]) -> str:
    """One subgroup's result in words: its estimate and CI, or its exact bound, or its counts."""
    nat = g.get("natural") or {}
    k = g["k"]
    what = f"{k} {'study' if k == 1 else 'studies'}"
    if nat.get("estimate") is not None:
        return f"{g['group']}: {_pct(nat['estimate'])} [{_pct(nat['ci_lb'])}, {_pct(nat['ci_ub'])}] ({what})"
    if nat.get("ci_ub") is not None:
        counts = _counts([s for s in studies if s["study"] in _labels(g)])
        return (f"{g['group']}: {counts or what}, exact one-sided bound {_pct(nat['ci_lb'])} to "
                f"{_pct(nat['ci_ub'])}")
    return f"{g['group']}: {what}"


def _excluded_text(excluded: list[dict[str, str]]) -> str:
    """Excluded studies grouped by reason: 'A, B (reason); C (reason)'."""
    by_reason: dict[str, list[str]] = {}
    for e in excluded:
        by_reason.setdefault(e["reason"], []).append(e["study"])
    return "; ".join(f"{', '.join(v)} ({k})" for k, v in by_reason.items())


def _labels(group: dict[str, Any]) -> set[str]:
    return {s["study"] for s in group.get("studies", [])}


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


def _md(text: Any) -> str:
    return "" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(rows: list[dict[str, Any]]) -> str:
    """The manuscript table: one row per analysis, natural-scale values where they exist, then
    each analysis' caveats and the studies it excluded, with the reasons."""
    head = ("| Analysis | Role | Studies | Patients | Model | Estimate [95% CI] | Prediction interval "
            "| I^2 | Excluded |\n"
            "|---|---|---:|---:|---|---|---|---:|---:|\n")
    lines = []
    rows = sorted(rows, key=lambda r: ROLE_ORDER.index(r["role"]) if r["role"] in ROLE_ORDER else len(ROLE_ORDER))
    for r in rows:
        if r["measure"] == "evidence map":
            lines.append(f"| {_md(r['title'])} | {r['role']} | {r['studies']} | | evidence map | | | "
                         f"| {r['excluded']} |")
            continue
        if r["measure"] == "method sensitivity":
            lines.append(f"| {_md(r['title'])} | {r['role']} | {r['studies'] or ''} | | method sensitivity "
                         f"({r['method']}) | pooled estimates from {_fmt_est(r, 'ci_lb')} to "
                         f"{_fmt_est(r, 'ci_ub')} | | | {r['excluded']} |")
            continue
        test = f", {r['test']}" if r.get("test") not in (None, "z") else ""
        model = (f"{r['measure']}, {r['method']}{test}" if r["method"] != "single study (no pooling)"
                 else f"{r['measure']}, single study (no pooling)")
        if r["scale"] == "exact bound":
            est = (f"no model identifiable; exact one-sided bound "
                   f"{_fmt_est(r, 'ci_lb')} to {_fmt_est(r, 'ci_ub')}")
        elif r["scale"] == "descriptive only":
            est = "not estimated (descriptive only)"
            model = f"{r['measure']}, none (descriptive)"
        elif r["estimate"] is None:
            est = f"by subgroup: {r['subgroups']}" if r.get("subgroups") else "by subgroup (see JSON)"
        else:
            est = f"{_fmt_est(r, 'estimate')} [{_fmt_est(r, 'ci_lb')}, {_fmt_est(r, 'ci_ub')}]"
            if r["scale"] not in ("proportion", "exact bound"):
                est += f" ({r['scale']})"
            if r.get("level") not in (None, 0.95):
                est += f" ({100 * r['level']:g}% CI)"
            if r.get("ci_method") not in (None, "model"):
                est += f"; {r['ci_method']}"
        if r.get("descriptive"):
            est += f"; descriptive: {r['descriptive']}"
        if r.get("sensitivity"):
            est += f"; over {r['sensitivity']}"
        pi = (f"[{_fmt_est(r, 'pi_lb')}, {_fmt_est(r, 'pi_ub')}]" if r.get("pi_lb") is not None
              else "n/a (one study)" if r.get("k") == 1 and r.get("estimate") is not None
              else f"n/a (k < {PI_MIN_K})" if r.get("k") is not None and r["k"] < PI_MIN_K and r.get("estimate") is not None
              else "")
        i2 = f"{r['i2']:.0f}%" if r.get("i2") is not None else ""
        pts = f"{r['patients']:g}" if r.get("patients") is not None else ""
        studies = f"{r['studies']}" + (f" ({r['k']} estimates)" if r["k"] != r["studies"] else "")
        lines.append(f"| {_md(r['title'])} | {r['role']} | {studies} | {pts} | {_md(model)} | {_md(est)} | {pi} "
                     f"| {i2} | {r['excluded']} |")
    notes = []
    for r in rows:
        parts = []
        if r.get("caveat"):
            parts.append(f"Caveats: {r['caveat']}")
        if r.get("excluded_studies"):
            parts.append(f"Excluded: {r['excluded_studies']}.")
        if parts:
            notes.append(f"- **{r['title']}** ({r['analysis']}, {r['role']}). " + " ".join(parts))
    return ("# Summary of the analyses\n\nGenerated by `metamsc reproduce`; one row per spec in "
            "`analyses/`. Values on the natural scale (proportions of patients in percent); 95% CIs "
            "unless stated. Studies counts distinct studies (and, where different, the estimates they "
            "give); Patients counts each study's patients once. A one-study result is that study's own, "
            "with no prediction interval or I^2; prediction intervals are shown from k = 3.\n\n"
            + head + "\n".join(lines) + "\n"
            + ("\n## Caveats and exclusions\n\n" + "\n".join(notes) + "\n" if notes else ""))
