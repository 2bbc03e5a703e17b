"""Sensitivity analyses: leave-one-out and cumulative meta-analysis (metafor parity).

``leave_one_out`` refits the model k times, each time without one study, as metafor's
``leave1out(rma(...))``; ``cumulative`` refits it on the first 1, 2, ..., k studies (in the data
order or sorted by ``order``), as metafor's ``cumul(rma(...))``. Given a fitted result, every
row is ``result.refit(subset)``: the same model kind (inverse variance, Mantel-Haenszel, Peto or
GLMM) with the same settings, so each row equals the fit of that subset (never an
inverse-variance stand-in for another model). Given arrays, every refit is :func:`metamsc.pool`.
References: Viechtbauer W. (2010) J Stat Softw 36(3);
Lau J. et al. (1992) N Engl J Med 327:248 (cumulative meta-analysis).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._util import readonly, study_arrays, warn_omitted
from ._present import explained, fmt
from .frames import accepts_data
from .progress import progress
from .pooling import pool
from .results import USER_WEIGHTED, Excluded, MetaResult

__all__ = ["LeaveOneOut", "Cumulative", "leave_one_out", "cumulative"]

#: per-study keyword arguments of ``pool`` that must be subset along with yi and vi
_PER_STUDY = ("n", "weights", "corrected")
#: the columns of a leave-one-out / cumulative table, in metafor's order
_COLUMNS = ("estimate", "se", "statistic", "pvalue", "ci_lb", "ci_ub", "Q", "Qp", "tau2", "I2", "H2")


@dataclass(frozen=True)
class _Table:
    """One row per refit. ``statistic`` is z, or t on k_i - 1 df for knha/adhoc/t inference;
    ``I2`` is in percent (tau^2-based, Q-based for EE, as metafor); ``Q``/``Qp`` are Cochran's
    Q and its p-value; ``fits`` holds each refit's full :class:`MetaResult`."""

    labels: tuple[str, ...]
    estimate: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    pvalue: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    Q: np.ndarray
    Qp: np.ndarray
    tau2: np.ndarray
    I2: np.ndarray
    H2: np.ndarray
    k: np.ndarray
    method: str
    test: str
    level: float
    measure: str
    fits: tuple[MetaResult, ...] = field(default=(), repr=False, compare=False)
    #: rows of ``data=`` left out for a missing value (see :mod:`metamsc.frames`)
    excluded: tuple[Excluded, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def _repr_extra(self) -> str:
        if not len(self):
            return ""
        return (f"estimate {fmt(np.nanmin(self.estimate))} to {fmt(np.nanmax(self.estimate))}")

    def summary(self) -> str:
        """The table as text, one row per refit."""
        head = (f"{type(self).__name__} ({self.method}, test {self.test}, measure {self.measure}, "
                f"{100 * self.level:g}% CI)")
        lines = [head, f"{'study':20s} {'k':>3s} {'estimate':>10s} {'ci.lb':>9s} {'ci.ub':>9s} "
                       f"{'tau2':>9s} {'I2':>7s}"]
        for i, lab in enumerate(self.labels):
            lines.append(f"{str(lab)[:20]:20s} {int(self.k[i]):3d} {fmt(self.estimate[i]):>10s} "
                         f"{fmt(self.ci_lb[i]):>9s} {fmt(self.ci_ub[i]):>9s} "
                         f"{fmt(self.tau2[i]):>9s} {fmt(self.I2[i], 2):>7s}")
        lines += [f"excluded: {e.study}: {e.reason}" for e in self.excluded]
        return "\n".join(lines)

    def to_frame(self):
        """The table as a pandas DataFrame (pandas imported on first use)."""
        import pandas as pd

        cols = {"study": list(self.labels), "k": self.k}
        cols.update({c: getattr(self, c) for c in _COLUMNS})
        return pd.DataFrame(cols)

    def plot_forest(self, ax=None, **options):
        """Forest plot of the refits (``result=`` adds the model of every study); returns ax."""
        from .plots.sensitivity import sensitivity_forest

        return sensitivity_forest(self, ax=ax, **options)


@explained
@dataclass(frozen=True)
class LeaveOneOut(_Table):
    """Leave-one-out analysis: row i is the model fitted without study ``labels[i]``
    (metafor ``leave1out``)."""


@explained
@dataclass(frozen=True)
class Cumulative(_Table):
    """Cumulative meta-analysis: row i is the model of the first i + 1 studies in ``order``;
    ``labels[i]`` is the study added at that step (metafor ``cumul``). ``order`` holds the
    positions of the studies, in the input, in the order they were added."""

    order: np.ndarray | None = None


def _inputs(data: MetaResult | ArrayLike, vi: ArrayLike | None, labels, kwargs: dict[str, Any]):
    """yi, vi, labels and pool keyword arguments, from a MetaResult or from arrays; studies that
    ``pool`` would leave out (missing, non-finite or non-positive variance) are dropped here, as
    metafor (na.action = "na.omit") leaves them out of the table. For a result without
    overriding arguments, the keyword arguments are None: the rows are the result's refits."""
    if isinstance(data, MetaResult):
        if vi is not None:
            raise TypeError("pass either a MetaResult or yi and vi, not both")
        res = data
        labs = tuple(res.labels) if labels is None else tuple(str(x) for x in labels)
        if len(labs) != res.k:
            raise ValueError("labels must have one entry per study of the result")
        if not kwargs:
            return np.asarray(res.yi, dtype=float), np.asarray(res.vi, dtype=float), labs, None
        if res.model != "IV":
            raise ValueError(f"settings ({', '.join(sorted(kwargs))}) cannot be changed for a "
                             f"{res.model} fit: refit it with the settings you want, then pass it")
        kw = {"method": res.method, "test": res.test, "level": res.level, "measure": res.measure}
        if res.n is not None:
            kw["n"] = np.asarray(res.n)
        if res.corrected is not None:
            kw["corrected"] = np.asarray(res.corrected)
        if res.method in USER_WEIGHTED:  # percent weights are proportional to the user's weights
            kw["weights"] = np.asarray(res.weights)
        kw.update(kwargs)
        return (np.asarray(res.yi, dtype=float), np.asarray(res.vi, dtype=float),
                tuple(res.labels) if labels is None else tuple(str(x) for x in labels), kw)
    if vi is None:
        raise TypeError("vi is required when yi is given as an array")
    y, v, labs, ok = study_arrays(data, vi, labels)
    warn_omitted(labs, ok, "sensitivity analysis")
    kw = dict(kwargs)
    for name in _PER_STUDY:
        if kw.get(name) is not None:
            a = np.atleast_1d(np.asarray(kw[name]))
            if a.shape != y.shape:
                raise ValueError(f"{name} must have one entry per study")
            kw[name] = a[ok]
    return y[ok], v[ok], tuple(l for l, keep in zip(labs, ok) if keep), kw


def _refit(data, y, v, labs, kw, idx) -> MetaResult:
    if kw is None:  # the result's own model
        return data.refit(idx)
    sub = {k: (val[idx] if k in _PER_STUDY and val is not None else val) for k, val in kw.items()}
    return pool(y[idx], v[idx], labels=[labs[i] for i in idx], **sub)


def _table(cls, fits, labels, kw, **extra):
    last = fits[-1]
    cols = {
        "estimate": [f.estimate for f in fits], "se": [f.se for f in fits],
        "statistic": [f.statistic for f in fits], "pvalue": [f.pvalue for f in fits],
        "ci_lb": [f.ci_lb for f in fits], "ci_ub": [f.ci_ub for f in fits],
        "Q": [f.q for f in fits], "Qp": [f.q_pvalue for f in fits], "tau2": [f.tau2 for f in fits],
        "I2": [f.i2 for f in fits], "H2": [f.h2 for f in fits],
    }
    k = np.array([f.k for f in fits], dtype=int)
    k.flags.writeable = False
    test = last.test if kw is None else kw.get("test", last.test)
    return cls(labels=tuple(labels), k=k, **{c: readonly(v) for c, v in cols.items()},
               method=last.method, test=test, level=last.level,
               measure=last.measure, fits=tuple(fits), **extra)


@accepts_data(("yi", "vi") + _PER_STUDY)
def leave_one_out(yi: MetaResult | ArrayLike, vi: ArrayLike | None = None, *,
                  labels: ArrayLike | None = None, **pool_kwargs) -> LeaveOneOut:
    """Refit the model once without each study (metafor ``leave1out(rma(...))``).

    ``yi`` is either a fitted result (each row is ``result.refit(...)``: the same model kind and
    settings; for an inverse-variance result ``pool_kwargs`` may override them) or the effect
    sizes, with ``vi`` their sampling
    variances and ``pool_kwargs`` passed to :func:`metamsc.pool` (``method``, ``test``, ``level``,
    ``measure``, ``n``, ...). Row i of the result is the fit without study i.

    Parameters
    ----------
    yi : MetaResult or array_like
        A fitted result, or effect sizes.
    vi : array_like, optional
        Sampling variances (when ``yi`` holds effect sizes).
    labels : array_like, optional
        Study labels.
    **pool_kwargs
        Settings of the fit (:func:`metamsc.pool`).

    Returns
    -------
    LeaveOneOut
        A row per study left out: ``estimate``, ``se``, ``ci_lb``, ``ci_ub``, ``Q``, ``tau2``,
        ``I2``, ...; ``to_frame()`` and ``plot_forest()``.

    References
    ----------
    Viechtbauer W (2010). J Stat Softw 36(3):1-48.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> loo = mm.leave_one_out(yi, vi, method="REML")
    >>> loo.estimate.round(4)
    array([-1.0085, -0.8961, -0.958 , -0.8414, -1.1699, -1.0602])
    """
    y, v, labs, kw = _inputs(yi, vi, labels, pool_kwargs)
    k = y.size
    if k < 2:
        raise ValueError("leave-one-out needs at least 2 studies (metafor: 'Stopped because k = 1.')")
    fits = [_refit(yi, y, v, labs, kw, np.delete(np.arange(k), i))
            for i in progress(range(k), "leave-one-out")]
    return _table(LeaveOneOut, fits, labs, kw)


@accepts_data(("yi", "vi", "order") + _PER_STUDY)
def cumulative(yi: MetaResult | ArrayLike, vi: ArrayLike | None = None, *,
               order: ArrayLike | None = None, decreasing: bool = False,
               labels: ArrayLike | None = None, **pool_kwargs) -> Cumulative:
    """Cumulative meta-analysis: fit the first 1, 2, ..., k studies (metafor ``cumul(rma(...))``).

    Studies are added in the data order, or sorted by ``order`` (a value per study, e.g. the
    publication year; a stable sort, so ties keep the data order; ``decreasing`` reverses it),
    as metafor's ``order`` argument. Inputs as for :func:`leave_one_out`. The first row is a fit
    of a single study (tau^2 = 0; Knapp-Hartung falls back to z, as metafor).

    Parameters
    ----------
    yi : MetaResult or array_like
        A fitted result, or effect sizes.
    vi : array_like, optional
        Sampling variances (when ``yi`` holds effect sizes).
    order : array_like, optional
        A value per study to sort by (e.g. the year).
    decreasing : bool
        Sort in decreasing order.
    labels : array_like, optional
        Study labels.
    **pool_kwargs
        Settings of the fit (:func:`metamsc.pool`).

    Returns
    -------
    Cumulative
        A row per step: ``estimate``, ``se``, ``ci_lb``, ``ci_ub``, ``Q``, ``tau2``, ``I2``, ...,
        and the ``order`` used; ``to_frame()`` and ``plot_forest()``.

    References
    ----------
    Lau J, Antman EM, Jimenez-Silva J, Kupelnick B, Mosteller F, Chalmers TC (1992). Cumulative
    meta-analysis of therapeutic trials for myocardial infarction. N Engl J Med 327:248-254.

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> cum = mm.cumulative(yi, vi, method="REML")
    >>> cum.estimate.round(4)
    array([-0.89  , -1.3342, -1.3377, -1.422 , -1.0602, -0.9905])
    """
    y_in = np.atleast_1d(np.asarray(yi.yi if isinstance(yi, MetaResult) else yi, dtype=float))
    y, v, labs, kw = _inputs(yi, vi, labels, pool_kwargs)
    if order is None:
        idx = np.arange(y.size)
    else:
        key = np.atleast_1d(np.asarray(order))
        if key.shape != y_in.shape:
            raise ValueError("order must have one value per study")
        if not isinstance(yi, MetaResult):
            v_in = np.atleast_1d(np.asarray(vi, dtype=float))
            key = key[np.isfinite(y_in) & np.isfinite(v_in) & (v_in > 0)]
        # as R's order(): stable, and ties keep the data order when decreasing as well
        _, rank = np.unique(key, return_inverse=True)
        idx = np.argsort(-rank if decreasing else rank, kind="stable")
    fits = [_refit(yi, y, v, labs, kw, idx[: i + 1]) for i in progress(range(y.size), "cumulative")]
    idx = np.array(idx, dtype=int)
    idx.flags.writeable = False
    return _table(Cumulative, fits, [labs[i] for i in idx], kw, order=idx)
