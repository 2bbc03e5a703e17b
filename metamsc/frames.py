"""Data frames in: ``data=`` and column names for the role arguments of a public function.

One decorator, :func:`accepts_data`, gives a function a keyword-only ``data=`` (a pandas
DataFrame or a mapping of column name -> values, as R's ``data =`` argument). With ``data``,
each role argument (``yi``, ``vi``, ``events``, ``total``, ``labels``, ``subgroup``, ...) may be
a column name::

    mm.pool_proportions(data=df, events="responders", total="n", labels="study",
                        subgroup="design")

A row with a missing value (None, NaN, pandas NA) in a column the call uses is left out and
reported in the result's ``excluded`` records, with the column and the row, as a spec reports
its rows (never dropped silently); ``kept`` then holds positions in the rows of ``data``. A name
that is not a column of ``data`` raises a one-line ``ValueError`` naming the argument and the
column. Without ``data`` the function is called unchanged.

pandas is never imported here: a DataFrame is read through its ``columns``/``__getitem__``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from typing import Any, Callable, Iterable

import numpy as np

from ._util import Excluded

__all__ = ["accepts_data", "DATA_DOC"]

#: appended to the docstring of every decorated function
DATA_DOC = """
    ``data`` (a pandas DataFrame or a mapping of columns): the role arguments ({roles}) may then
    be column names; a row missing a value in a column the call uses is left out and listed in
    ``excluded`` with its reason (see :mod:`metamsc.frames`).
    """

_MISSING_TEXT = ("", "na", "nan", "none", "null")


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(math.isnan(v))
    if isinstance(v, str):
        return v.strip().lower() in _MISSING_TEXT
    # pandas.NA and NaT, without importing pandas
    return type(v).__name__ in ("NAType", "NaTType")


def _columns(data) -> list[str]:
    cols = getattr(data, "columns", None)
    return [str(c) for c in (cols if cols is not None else data.keys())]


def _column(data, name: str, argument: str) -> np.ndarray:
    """The values of column ``name`` of ``data`` as a 1-D array (one-line error if absent)."""
    try:
        present = name in data.columns if hasattr(data, "columns") else name in data
    except TypeError:
        present = False
    if not present:
        cols = _columns(data)
        shown = ", ".join(cols[:12]) + (", ..." if len(cols) > 12 else "")
        raise ValueError(f"{argument}: column {name!r} is not in data (columns: {shown})")
    col = data[name]
    values = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col, dtype=object)
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{argument}: column {name!r} of data must be one-dimensional")
    return values


def _row_names(data, n: int) -> list[str]:
    """Names for the rows of ``data``: the DataFrame index when it is not the default 0..n-1,
    else "1", "2", ... (the default study labels of every function)."""
    index = getattr(data, "index", None)
    if index is not None and not (getattr(index, "dtype", None) is not None
                                  and np.issubdtype(index.dtype, np.integer)
                                  and np.array_equal(np.asarray(index), np.arange(n))):
        return [str(x) for x in index]
    return [str(i + 1) for i in range(n)]


def _tidy(values: np.ndarray) -> np.ndarray:
    """An object column with its missing values removed as a plain numeric or text array."""
    if values.dtype == object:
        try:
            return np.asarray(values.tolist())
        except (TypeError, ValueError):  # pragma: no cover - ragged objects
            return values
    return values


def _subset_data(data, keep: np.ndarray):
    """The rows ``keep`` of ``data`` (a DataFrame or a mapping of columns)."""
    if hasattr(data, "iloc"):
        return data.iloc[keep]
    return {k: np.asarray(v, dtype=object)[keep] if np.ndim(v) == 1 and len(v) == keep.size
            else v for k, v in data.items()}


def _attach(result, excluded: list, rows: np.ndarray):
    """``result`` with the rows left out here added to its ``excluded`` and ``kept`` given as
    positions in ``data``. A result without an ``excluded`` field cannot carry them: then a
    warning names every row left out (a study is never dropped silently)."""
    names = ({f.name for f in dataclasses.fields(result) if f.init}
             if dataclasses.is_dataclass(result) and not isinstance(result, type) else set())
    if "excluded" not in names:
        import warnings

        warnings.warn("rows left out of data: " + "; ".join(f"{e.study}: {e.reason}"
                                                            for e in excluded), stacklevel=3)
        return result
    changes: dict[str, Any] = {}
    if "excluded" in names:
        changes["excluded"] = tuple(excluded) + tuple(result.excluded)
    if "kept" in names:
        own = getattr(result, "kept", None)
        kept = rows.copy() if own is None else rows[np.asarray(own, dtype=int)]
        kept.flags.writeable = False
        changes["kept"] = kept
    return dataclasses.replace(result, **changes) if changes else result


def _drop_missing(columns: dict, role_args: dict, labels: str | None, rownames: list[str],
                  n: int) -> tuple[np.ndarray, list]:
    """The rows of ``columns`` without a missing value (``keep``) and an :class:`Excluded` record
    for each other row, naming the column, the argument and the row. A missing study name does
    not drop the row: the study is called "row N". ``columns`` is updated in place."""
    excluded: list = []
    miss = {r: np.fromiter((_is_missing(v) for v in col), bool, col.size)
            for r, col in columns.items()}
    if labels in miss and miss[labels].any():  # a study without a name keeps its row
        named = columns[labels].astype(object)
        named[miss[labels]] = [f"row {rownames[i]}" for i in np.flatnonzero(miss[labels])]
        columns[labels], miss[labels] = named, np.zeros(n, dtype=bool)
    bad = np.zeros(n, dtype=bool)
    for m in miss.values():
        bad |= m
    lab_col = columns.get(labels) if labels else None
    for i in np.flatnonzero(bad):
        gone = [r for r in columns if miss[r][i]]
        what = (", ".join(str(role_args[r]) for r in gone)
                + f" (argument{'s' if len(gone) > 1 else ''} {', '.join(gone)};")
        name = str(lab_col[i]) if lab_col is not None else f"row {rownames[i]}"
        excluded.append(Excluded(name, f"missing {what} row {rownames[i]} of data)"))
    keep = np.flatnonzero(~bad)
    if keep.size == 0:
        raise ValueError("data: every row misses a value in a column the call uses "
                         f"({', '.join(str(role_args[r]) for r in columns)})")
    return keep, excluded


def accepts_data(roles: Iterable[str], *, labels: str | None = "labels", drop: bool = True,
                 var_roles: bool = False) -> Callable:
    """Decorate a public function so that, with ``data=``, its ``roles`` may be column names.

    ``labels``: the argument holding the study labels (filled with the row names of ``data``
    when not given, so that left-out rows keep their names). ``drop=False``: rows with missing
    values are not left out here (for functions on a fitted result, which keep their own rows).
    ``var_roles``: every keyword argument that is not a named parameter is a role as well
    (``effect_size(measure, events=..., total=...)``). A function that has a ``data`` parameter
    of its own (``meta_regression``, for formulas) gets the rows kept.

    To add ``data=`` to another function, one line above its ``def``, e.g.
    ``@accepts_data(("events", "total", "time", "events2", "total2", "subgroup"))``.
    """
    roles = tuple(roles) + ((labels,) if labels else ())

    def decorate(func: Callable) -> Callable:
        sig = inspect.signature(func)
        params = sig.parameters
        takes_data = "data" in params

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            data = kwargs.get("data") if takes_data else kwargs.pop("data", None)
            if data is None:
                return func(*args, **kwargs)
            if not (hasattr(data, "columns") or hasattr(data, "keys")):
                raise TypeError(f"data must be a pandas DataFrame or a mapping of columns, "
                                f"got {type(data).__name__}")
            bound = sig.bind_partial(*args, **kwargs)
            given = dict(bound.arguments)
            extra = given.pop(var_kw, {}) if var_kw else {}
            role_args = {**given, **extra}
            is_role = set(roles) | (set(extra) if var_roles else set())
            names = [r for r in role_args if r in is_role and isinstance(role_args[r], str)]
            columns = {r: _column(data, role_args[r], r) for r in names}
            n = None
            for r, col in columns.items():
                if n is None:
                    n = col.size
                elif col.size != n:
                    raise ValueError(f"{r}: column {role_args[r]!r} has {col.size} rows, others "
                                     f"{n}")
            if n is None:
                n = len(data.index) if hasattr(data, "index") else None
            rownames = _row_names(data, n) if n is not None else []
            if labels and labels in params and role_args.get(labels) is None and n is not None \
                    and drop:
                columns[labels] = np.array(rownames, dtype=object)
                role_args[labels] = None
            excluded: list = []
            keep = np.arange(n if n is not None else 0)
            if drop and n:
                keep, excluded = _drop_missing(columns, role_args, labels, rownames, n)
            call = {}
            for r, col in columns.items():
                if not drop and col.dtype == object:  # missing values travel as NaN
                    col = np.array([np.nan if _is_missing(v) else v for v in col], dtype=object)
                call[r] = _tidy(col[keep]) if drop else _tidy(col)
            if drop and excluded:  # per-study arrays given directly follow the rows kept
                for r in role_args:
                    v = role_args[r]
                    if r not in call and r in is_role and v is not None and not isinstance(v, str) \
                            and np.ndim(v) == 1 and len(v) == n:
                        call[r] = np.asarray(v)[keep]
            final = {**given, **extra}
            final.update({r: v for r, v in call.items()})
            if takes_data:
                final["data"] = _subset_data(data, keep) if (drop and excluded) else data
            result = func(**final)
            return _attach(result, excluded, keep) if excluded else result

        p_var = inspect.Parameter.VAR_KEYWORD
        var_kw = next((p for p in params if params[p].kind is p_var), None)
        if not takes_data:
            new = list(params.values())
            data_param = inspect.Parameter("data", inspect.Parameter.KEYWORD_ONLY, default=None)
            if new and new[-1].kind is p_var:
                new.insert(len(new) - 1, data_param)
            else:
                new.append(data_param)
            wrapper.__signature__ = sig.replace(parameters=new)
        wrapper.__doc__ = (func.__doc__ or "") + DATA_DOC.format(
            roles=", ".join(r for r in roles if r in params or var_roles) or "the data roles")
        wrapper.__wrapped_data_roles__ = roles
        return wrapper

    return decorate
