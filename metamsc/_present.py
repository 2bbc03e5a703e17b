"""How results present themselves: one implementation for every result class.

- :class:`Interval`: a frozen ``(lower, upper)`` with its ``level`` and its ``scale`` (e.g.
  "logit proportion" or "proportion"), unpacked as a pair (``lo, hi = res.confidence_interval()``).
- :class:`Summary`: what ``summary()`` returns; a ``str`` (so it prints, compares and searches
  as the text always did) that renders as an HTML table in Jupyter (``_repr_html_``).
- :func:`explained`: a class decorator giving a result class a one-line ``repr`` (model, k,
  estimate and CI, scale), ``summary()`` as a :class:`Summary`, ``__str__`` (the summary text)
  and ``_repr_html_``. A class says what it shows with ``summary()`` (the text) and, optionally,
  ``_summary_rows()`` (the HTML table: ``(columns, rows)``); tables with ``to_frame()`` show it.

The confidence level is called ``level`` everywhere in the API (as metafor's ``level``);
:func:`level_arg` accepts the old keyword ``confidence_level`` with a DeprecationWarning.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["Interval", "Summary", "explained", "scale_name", "level_arg", "level_keyword", "fmt",
           "record_frame", "one_line"]


def fmt(x: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals, NA for None/NaN; anything else as text."""
    if x is None:
        return "NA"
    if isinstance(x, bool):
        return str(x)
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if isinstance(x, int) or (hasattr(x, "dtype") and getattr(x.dtype, "kind", "") in "iu"):
        return str(int(x))
    if not math.isfinite(xf):
        return "NA"
    return f"{xf:.{digits}f}"


@dataclass(frozen=True)
class Interval:
    """A two-sided interval on a named scale: ``lower``, ``upper``, ``level`` and ``scale``.

    It unpacks and indexes as the pair ``(lower, upper)``; ``low``/``high`` are kept as
    aliases of ``lower``/``upper``."""

    lower: float
    upper: float
    level: float | None = None
    scale: str = ""

    def __iter__(self) -> Iterator[float]:
        return iter((self.lower, self.upper))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return (self.lower, self.upper)[i]

    @property
    def low(self) -> float:
        return self.lower

    @property
    def high(self) -> float:
        return self.upper

    def __repr__(self) -> str:
        lvl = "" if self.level is None else f"{100 * self.level:g}% "
        scale = f" ({self.scale})" if self.scale else ""
        return f"<Interval {lvl}[{fmt(self.lower)}, {fmt(self.upper)}]{scale}>"


def scale_name(measure: str | None, natural: bool = False) -> str:
    """The name of a measure's analysis scale (its description, e.g. "log risk ratio") or,
    with ``natural``, of its natural scale (e.g. "proportion"); "" when unknown."""
    if not measure:
        return ""
    from .measures import get_measure

    try:
        m = get_measure(measure)
    except (KeyError, ValueError):
        return str(measure)
    if natural:
        return m.natural_scale or ""
    return "effect size" if m.code == "GEN" else m.description


def level_keyword(old: str = "confidence_level"):
    """Decorator for a method whose confidence-level parameter is still called ``old``: callers
    use ``level=`` (the name everywhere in metamsc); ``old=`` still works, with a
    DeprecationWarning. Positional calls are unchanged."""
    import functools
    import inspect

    def decorate(func):
        sig = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, level=None, **kwargs):
            if old in kwargs:
                import warnings

                warnings.warn(f"{func.__name__}: {old}= is deprecated; use level= (the name "
                              "used everywhere in metamsc)", DeprecationWarning, stacklevel=2)
            if level is not None:
                kwargs[old] = level
            return func(*args, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=[
            p.replace(name="level") if p.name == old else p for p in sig.parameters.values()])
        return wrapper

    return decorate


def level_arg(level: float | None, confidence_level: float | None, where: str) -> float | None:
    """``level``, or the deprecated ``confidence_level`` with a DeprecationWarning."""
    if confidence_level is not None:
        import warnings

        warnings.warn(f"{where}: confidence_level= is deprecated; use level= (the name used "
                      "everywhere in metamsc)", DeprecationWarning, stacklevel=3)
        if level is None:
            return confidence_level
    return level


class Summary(str):
    """A result's summary: the text (this string) plus a table for Jupyter's HTML view.

    ``title`` heads the HTML; ``columns`` and ``rows`` are the table (cells are numbers or
    text, numbers shown with 4 decimals)."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def __new__(cls, text: str, *, title: str = "", columns=(), rows=()):
        obj = super().__new__(cls, text)
        obj.title = title or (text.splitlines()[0] if text else "")
        obj.columns = tuple(str(c) for c in columns)
        obj.rows = tuple(tuple(r) for r in rows)
        return obj

    def __repr__(self) -> str:
        return str.__str__(self)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's plain-text view
        p.text(str.__str__(self))

    def table_html(self) -> str:
        """The table as an HTML ``<table>``."""
        e = html.escape
        head = "".join(f"<th>{e(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{e(fmt(c))}</td>" for c in r) + "</tr>"
                       for r in self.rows)
        return (f"<table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    def _repr_html_(self) -> str:
        e = html.escape
        parts = [f"<div class=\"metamsc\"><p><strong>{e(self.title)}</strong></p>"]
        if self.rows:
            parts.append(self.table_html())
        parts.append(f"<details><summary>full text</summary><pre>{e(str.__str__(self))}</pre>"
                     "</details></div>")
        return "".join(parts)


def _scalar(x) -> bool:
    if x is None or isinstance(x, (str, bytes)) or hasattr(x, "__len__"):
        return False
    try:
        float(x)
    except (TypeError, ValueError):
        return False
    return True


def record_frame(obj, names) -> Any:
    """A one-row pandas DataFrame of the attributes ``names`` of ``obj`` (for test results)."""
    import pandas as pd

    return pd.DataFrame([{n: getattr(obj, n) for n in names}])


def one_line(obj) -> str:
    """``<Class method k=.. estimate=.. [lb, ub] (scale)>`` from the attributes a result has."""
    name = type(obj).__dict__.get("_repr_name", type(obj).__name__)
    parts = [name]
    method = getattr(obj, "method", None)
    if isinstance(method, str) and method and len(method) <= 12:
        parts.append(method)
    extra = getattr(obj, "_repr_extra", None)
    k = getattr(obj, "k", None)
    if _scalar(k):
        parts.append(f"k={int(k)}")
    elif hasattr(obj, "__len__"):
        parts.append(f"rows={len(obj)}")
    est = getattr(obj, "estimate", None)
    if est is not None and _scalar(est):
        text = f"estimate={fmt(est)}"
        lb = getattr(obj, "ci_lb", getattr(obj, "mu_ci_lb", None))
        ub = getattr(obj, "ci_ub", getattr(obj, "mu_ci_ub", None))
        if lb is not None and _scalar(lb) and _scalar(ub):
            text += f" [{fmt(lb)}, {fmt(ub)}]"
        parts.append(text)
    if extra is not None:
        parts.append(extra() if callable(extra) else str(extra))
    scale = scale_name(getattr(obj, "measure", None)) if isinstance(getattr(obj, "measure", None),
                                                                   str) else ""
    if scale:
        parts.append(f"({scale})")
    return "<" + " ".join(parts) + ">"


def _frame_rows(obj):
    """Columns and rows of ``obj.to_frame()`` (pandas imported only when shown)."""
    df = obj.to_frame()
    return tuple(str(c) for c in df.columns), [tuple(r) for r in df.itertuples(index=False)]


def _dict_frame(self):
    """A one-row pandas DataFrame of the scalar values of ``to_dict()``."""
    import pandas as pd

    d = self.to_dict()
    return pd.DataFrame([{k: v for k, v in d.items()
                          if v is None or isinstance(v, (str, bool)) or _scalar(v)}])


def explained(cls):
    """Class decorator: one-line ``repr``, ``summary()`` -> :class:`Summary`, ``__str__`` and
    ``_repr_html_`` (see the module docstring)."""
    text_of = cls.__dict__.get("summary") or getattr(cls, "summary", None)
    if text_of is not None and getattr(text_of, "__explained__", False):
        text_of = text_of.__wrapped__

    def summary(self, *args, **kwargs) -> Summary:
        text = text_of(self, *args, **kwargs) if text_of is not None else one_line(self)
        if isinstance(text, Summary):
            return text
        rows_of = getattr(self, "_summary_rows", None)
        if rows_of is not None:
            columns, rows = rows_of()
        elif hasattr(self, "to_frame"):
            columns, rows = _frame_rows(self)
        else:  # pragma: no cover - every class has to_frame (added below when missing)
            columns, rows = (), ()
        return Summary(str(text), columns=columns, rows=rows)

    summary.__explained__ = True
    summary.__wrapped__ = text_of
    summary.__doc__ = ((text_of.__doc__ if text_of is not None and text_of.__doc__ else
                        "A readable report of the result.")
                       + "\n\n        Returns a :class:`~metamsc.Summary`: prints as text, shows as "
                         "an HTML table in Jupyter.")
    cls.summary = summary
    if not hasattr(cls, "to_frame") and hasattr(cls, "to_dict"):
        cls.to_frame = _dict_frame
    cls.__repr__ = one_line
    cls.__str__ = lambda self: str.__str__(self.summary())
    cls._repr_html_ = lambda self: self.summary()._repr_html_()
    return cls
