"""Row selection: which rows of the data an analysis uses, and why each other study is left out.

``where`` keeps rows, ``compare`` pairs one-group rows into two-group studies, a row missing a
value its measure needs is left out with the reason, and for the review's bundled ``outcomes``
every study of the same population without a usable row is listed with why (preclinical, no
results reported, another outcome). :func:`numbers` reads a role's values (from the data, or
``assume``/``sensitivity`` where the spec gives them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import datasets
from ..errors import DataError, SpecError
from ..results import Excluded
from .schema import COMPARE_ROLES, Spec, suggest

__all__ = ["Selection", "select", "read_data", "numbers", "is_missing", "norm_cell", "MISSING"]

#: cell values read as missing
MISSING = ("", "na", "nan", "null", "none", "-")

@dataclass(frozen=True)
class Selection:
    """The rows an analysis uses, where they came from and what was left out."""

    file: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    row_numbers: tuple[int, ...]
    excluded: tuple[Excluded, ...]


def read_data(spec: Spec) -> tuple[str, list[str], list[dict[str, str]]]:
    if spec.data in datasets.BUNDLED:
        try:
            cols, rows = datasets.read_rows(spec.data)
        except ValueError as e:
            raise DataError(spec.path, f"key 'data': {e}") from None
        return str(datasets.DATA_DIR / (spec.data + ".csv")), cols, rows
    try:
        p = spec.data_path()
        is_file = p is not None and p.is_file()
    except (RuntimeError, OSError) as e:  # Path.resolve() of a symlink loop (Python < 3.13)
        raise SpecError(spec.path, f"key 'data': cannot read {spec.data!r}: "
                        f"{getattr(e, 'strerror', None) or e}", key="data") from None
    if not is_file:
        raise SpecError(spec.path, f"key 'data': no such file {spec.data!r} "
                        f"(looked for {p}; bundled data sets: {', '.join(datasets.BUNDLED)})", key="data")
    try:
        cols, rows = datasets.read_rows(p)
    except UnicodeDecodeError:
        raise DataError(p, f"cannot read CSV: not UTF-8 text") from None
    except (ValueError, OSError) as e:
        raise DataError(p, f"cannot read CSV: {e}") from None
    return str(p), cols, rows


def is_missing(v: str | None) -> bool:
    return v is None or v.strip().lower() in MISSING


def _fillable(spec: Spec, role: str) -> bool:
    """A role whose value may come from the spec (``assume`` or ``sensitivity``), not the data."""
    return role in spec.assume or (spec.sensitivity is not None and spec.sensitivity[0] == role)


def select(spec: Spec) -> Selection:
    """Rows kept by ``where`` (paired by ``compare``); rows missing a value go to ``excluded``."""
    file, cols, rows = read_data(spec)
    roles = spec.roles()
    src_roles = tuple(dict.fromkeys(COMPARE_ROLES[r][0] if spec.compare and r in COMPARE_ROLES
                                    else r for r in roles))
    needed = [(r, spec.columns.get(r, r)) for r in ("study",) + src_roles if not _fillable(spec, r)]
    extra = list(spec.where) + ([spec.subgroup] if spec.subgroup else []) + \
        ([spec.compare[0]] if spec.compare else []) + list(spec.moderators)
    for role, c in needed + [(None, c) for c in extra]:
        if c not in cols:
            what = f"column {c!r} (role {role!r})" if role else f"column {c!r}"
            hint = f"; map it with [columns] {role} = \"...\"" if role and role not in spec.columns else ""
            raise DataError(file, f"no {what}{suggest(c, cols)}{hint}; "
                            f"needed by spec {spec.path.name}")
    name = Path(file).name
    study_col = spec.columns.get("study", "study")
    picked = [(i, row) for i, row in enumerate(rows)
              if all(norm_cell(row.get(c)) in vals for c, vals in spec.where.items())]
    excluded: list[Excluded] = []
    if spec.compare:
        picked, excluded = _pair(spec, picked, src_roles, name)
    kept, numbers = [], []
    for i, row in picked:
        if not (row.get(study_col) or "").strip():
            row = {**row, study_col: f"row {i + 2}"}  # an unlabelled study is named by its row
        label = row[study_col]
        missing = [spec.column(r) for r in roles
                   if is_missing(row.get(spec.column(r))) and not _fillable(spec, r)]
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
                raise DataError(spec.data_path() or name, f"study {row.get(study_col)!r} "
                                f"has more than one {col} = {grp!r} row after 'where'", row=i + 2)
            slot[grp] = (i, row)
    out, excluded = [], []
    for study, slot in by_study.items():
        if g1 not in slot or g2 not in slot:
            lacking = g2 if g1 in slot else g1
            excluded.append(Excluded(study, f"no {col} = {lacking!r} row to compare"))
            continue
        (i1, r1), (_, r2) = slot[g1], slot[g2]
        row = dict(r1)
        for role, (src, k) in COMPARE_ROLES.items():
            if src in src_roles:
                row[role] = (r1 if k == 1 else r2).get(spec.columns.get(src, src), "")
        out.append((i1, row))
    return out, excluded


def norm_cell(v: str | None) -> str:
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
        if s["study_id"] in used or not all(norm_cell(s.get(c)) in v for c, v in conds.items()):
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


def numbers(spec: Spec, sel: Selection, role: str,
             override: dict[str, float] | None = None) -> np.ndarray:
    """A role's values: from ``override`` (sensitivity), the data, or ``assume`` where empty."""
    if override and role in override:
        return np.full(len(sel.rows), override[role])
    col = spec.column(role)
    out = np.empty(len(sel.rows))
    for j, (row, num) in enumerate(zip(sel.rows, sel.row_numbers)):
        v = (row.get(col) or "").strip()
        if role in spec.assume and is_missing(v):
            out[j] = spec.assume[role]
            continue
        try:
            out[j] = float(v)
        except ValueError:
            raise DataError(sel.file, f"{v!r} is not a number", row=num, column=col) from None
        if not math.isfinite(out[j]):
            raise DataError(sel.file, f"{v!r} is not a finite number", row=num, column=col)
    return out


