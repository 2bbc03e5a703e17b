"""Effect sizes and their sampling variances (metafor ``escalc`` parity).

:func:`effect_size` looks a measure up in the registry (:mod:`metamsc.measures`, the one table
of measures: roles, family, variance types, default correction, conventions) and calls the
formula of its family, ``compute(code, roles, options)`` in the module of this package named
by the entry's ``family`` (``proportion``, ``rate``, ``mean``, ``prepost``, ``binary2``,
``paired``, ``rate2``, ``continuous2``, ``correlation``, ``alpha``, ``genetics``,
``generic``); ``compute_meta`` there holds R meta's variant where the registry lists the
``"meta"`` convention. Formulas follow Viechtbauer W. (2010) J Stat Softw 36(3) and the
references in each family module. Adding a measure: one registry entry plus its branch in
the family module (see :mod:`metamsc.measures`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from numpy.typing import ArrayLike

from .._dist import norm_isf
from .._util import Excluded, readonly
from .. import transforms
from .._present import level_keyword
from ..frames import accepts_data
from ..measures import REGISTRY, Measure, get_measure
from . import (alpha, binary2, continuous2, correlation, generic, genetics, mean, paired,
               prepost, proportion, rate, rate2)
from ._common import TO_RULES, Options, as_array, cmi

__all__ = ["MEASURES", "EffectSizes", "effect_size", "measure_roles", "NATURAL_SCALE",
           "CONVENTIONS", "cmi"]

#: the data roles per measure (a read-only view of the registry in metamsc.measures)
MEASURES: Mapping[str, tuple[str, ...]] = {c: m.roles for c, m in REGISTRY.items()}

#: what the natural scale of a measure is called (a view of the registry)
NATURAL_SCALE: Mapping[str, str] = {c: m.natural_scale for c, m in REGISTRY.items()
                                    if m.natural_scale is not None}

#: effect-size conventions by name
CONVENTIONS = ("metafor", "meta")

#: the formula modules, by the registry's family name
_FORMULAS = {mod.__name__.rsplit(".", 1)[1]: mod
             for mod in (alpha, binary2, continuous2, correlation, generic, genetics, mean,
                         paired, prepost, proportion, rate, rate2)}


def measure_roles(measure: str) -> tuple[str, ...]:
    """The data roles a measure needs, e.g. ``("events", "total")`` for PLO."""
    return get_measure(measure).roles


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effect sizes ``yi`` with sampling variances ``vi``.

    ``n`` is the study size used by back-transformations (PFT) and weights
    reports; ``corrected`` marks studies that received the continuity
    correction ``add``. Arrays are read-only. ``excluded`` lists the rows of ``data=`` left
    out for a missing value (with the column), and ``kept`` the positions in ``data`` of the
    rows computed (None without ``data``); :func:`metamsc.pool_effects` carries both forward.
    """

    measure: str
    yi: np.ndarray
    vi: np.ndarray
    n: np.ndarray | None = None
    labels: tuple[str, ...] | None = None
    add: float = 0.0
    to: str = "none"
    corrected: np.ndarray | None = None
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    excluded: tuple[Excluded, ...] = ()
    kept: np.ndarray | None = None

    @property
    def k(self) -> int:
        return int(self.yi.shape[0])

    @property
    def sei(self) -> np.ndarray:
        return np.sqrt(self.vi)

    @level_keyword()
    def confidence_interval(self, confidence_level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Wald interval yi -/+ z * sqrt(vi) on the analysis scale."""
        z = norm_isf((1 - confidence_level) / 2)
        return self.yi - z * self.sei, self.yi + z * self.sei

    @level_keyword()
    def proportion_ci(self, method: str = "CP", confidence_level: float = 0.95):
        """Per-study CI of a single proportion from the raw counts (meta's ``method.ci``:
        CP, WS, WSCC, AC, SA, SACC, JEFFREYS); proportion measures only."""
        if "total" not in self.inputs:
            raise ValueError(f"measure {self.measure} is not a single proportion")
        from ..proportions import proportion_ci

        return proportion_ci(self.inputs["events"], self.inputs["total"], method=method,
                             level=confidence_level)

    def natural(self, x: ArrayLike) -> np.ndarray | None:
        """Back-transform per-study values (PFT with each study's own n)."""
        return transforms.back_transform(self.measure, x, self.n, harmonic=False)

    @level_keyword()
    def to_frame(self, confidence_level: float = 0.95):
        """A pandas DataFrame with study, yi, vi, sei, ci_lb, ci_ub."""
        import pandas as pd

        lb, ub = self.confidence_interval(confidence_level)
        labels = self.labels or tuple(str(i + 1) for i in range(self.k))
        return pd.DataFrame({"study": labels, "yi": self.yi, "vi": self.vi,
                             "sei": self.sei, "ci_lb": lb, "ci_ub": ub})


def _lookup(measure: str, convention: str) -> tuple[Measure, str | None]:
    """The registry entry of ``measure`` and meta's named variant (e.g. RR.Cochrane), if any."""
    code = measure.upper() if isinstance(measure, str) else measure
    if convention == "meta" and code not in REGISTRY:
        for m in REGISTRY.values():
            if code in m.meta_variants:
                return m, code
    return get_measure(code), None


@accepts_data((), var_roles=True)
def effect_size(measure: str, *, add: float | None = None, to: str = "only0",
                drop00: bool = False, vtype: str | None = None, labels: ArrayLike | None = None,
                convention: str = "metafor", incr: str | None = None,
                **roles: ArrayLike) -> EffectSizes:
    """Compute yi and vi for ``measure`` from the data ``roles``.

    Defaults follow metafor's ``escalc``: ``add`` is the measure's default correction (1/2,
    none for PAS, PFT, IRS, IRFT, AS, PHI, RTET, IRSD) with ``to="only0"``,
    ``drop00=False`` and the measure's first variance type (``vtype``, e.g. "LS"; the
    registry lists the others: SMD "UB"/"LS2"/"AV", COR "AV", UCOR "UB", PHI and RPB
    "ST"/"CS", ...). Measure codes are case-insensitive.

    ``convention="meta"`` follows R meta instead where it differs (the registry entries
    with the "meta" convention):

    - PR and PLN (``metaprop``): PR keeps the uncorrected x/n and corrects only
      its variance, (x+c)(n-x+c)/(n+2c)^3; PLN uses log((x+c)/(n+c)) with
      variance 1/(x+c) - 1/(n+c), or 1/x - 1/(n+c) when x = n (Hartung &
      Knapp 2001, eq. 18).
    - RR, "RR.Cochrane", OR, RD (``metabin``): see ``binary2.compute_meta``;
      ``incr="TACC"`` gives the treatment-arm continuity correction of Sweeting
      et al. (2004) Stat Med 23:1351, an increment n1/(n1+n2) in arm 1 and
      n2/(n1+n2) in arm 2.
    - SMD (``metacont``): Hedges' g with the approximate correction
      J = 1 - 3/(4N - 9) and variance N/(n1 n2) + g^2/(2(N - 3.94)).

    Parameters
    ----------
    measure : str
        An escalc measure code of the registry (:data:`metamsc.MEASURE_REGISTRY`), e.g. "PLO",
        "PFT", "RR", "OR", "SMD", "SMCR", "MN", "IR", "GEN".
    add, to, drop00 : float, str, bool
        Continuity correction: the value added, to which studies ("only0", "all", "if0all",
        "none"), and whether studies with zero events in both groups are dropped.
    vtype : str, optional
        Variance type of the measure (the registry's first by default).
    labels : array_like, optional
        A label per study.
    convention : {"metafor", "meta"}
        Whose formulas to follow where metafor and R meta differ.
    incr : str, optional
        ``"TACC"`` for the treatment-arm continuity correction (``convention="meta"``).
    **roles : array_like
        The data, by the measure's roles (``get_measure(code).roles``): ``events``/``total``;
        ``events1``, ``total1``, ``events2``, ``total2``; ``mean1``, ``sd1``, ``n1``, ...;
        ``n``, ``mean_pre``, ``sd_pre``, ``mean_post``, ``r``; ``yi``/``vi`` for GEN.

    Returns
    -------
    EffectSizes
        ``yi``, ``vi``, ``n``, ``labels``, which studies were ``corrected``, and the inputs;
        with ``data=``, the rows left out for a missing value (``excluded``) and ``kept``.

    References
    ----------
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw
    36(3):1-48. Each measure's own formula paper is named in its registry entry (``reference``).

    Examples
    --------
    Logit proportions (the zero cells of studies 2 and 3 are corrected by 1/2):

    >>> import metamsc as mm
    >>> es = mm.effect_size("PLO", events=[8, 2, 1], total=[17, 2, 1])
    >>> es.yi.round(4), es.vi.round(4)
    (array([-0.1178,  1.6094,  1.0986]), array([0.2361, 2.4   , 2.6667]))
    >>> es.corrected
    array([False,  True,  True])

    Standardised mean change of one group, standardised by the pre-treatment SD:

    >>> es = mm.effect_size("SMCR", n=[14], mean_pre=[20.1], sd_pre=[3.1], mean_post=[13.8], r=[0.5])
    >>> print(f"{es.yi[0]:.4f} ({es.vi[0]:.4f})")
    -1.9123 (0.2020)
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected 'metafor' or 'meta'")
    if add is not None and not (np.isscalar(add) and np.isfinite(add) and add >= 0):
        raise ValueError(f"add must be a finite number >= 0, got {add!r}")
    spec, variant = _lookup(measure, convention)
    if convention not in spec.conventions:
        have = ", ".join(c for c, m in REGISTRY.items() if "meta" in m.conventions)
        raise ValueError(f"convention={convention!r} differs from metafor for {have} "
                         f"(and their named variants); measure {measure} has no meta variant")
    if incr is not None and not (convention == "meta" and spec.family == "binary2"):
        raise ValueError("incr is meta's increment rule: use it with convention='meta' and "
                         "a two-group binary measure")
    if incr is not None and incr != "TACC":
        raise ValueError(f"unknown incr={incr!r}; expected 'TACC' (or give a number as add)")
    if to not in TO_RULES:
        raise ValueError(f"unknown continuity-correction rule to={to!r}; expected one of "
                         f"{', '.join(TO_RULES)}")
    if vtype is None:
        vtype = spec.vtypes[0]
    if vtype not in spec.vtypes:
        raise ValueError(f"vtype={vtype!r} is not available for {spec.code}; "
                         f"use one of {', '.join(spec.vtypes)}")
    required = spec.roles
    unknown = set(roles) - set(required)
    if unknown:
        raise ValueError(f"measure {spec.code} takes roles {', '.join(required)}; "
                         f"got unexpected {', '.join(sorted(unknown))}")
    missing = [r for r in required if r not in roles]
    if missing:
        raise ValueError(f"measure {spec.code} needs roles {', '.join(missing)}")
    a = {r: as_array(r, roles[r]) for r in required}
    k = len(next(iter(a.values())))
    if any(len(v) != k for v in a.values()):
        raise ValueError("all roles must have the same number of studies")
    if add is None:
        add = spec.default_add
    lab = None if labels is None else tuple(str(x) for x in np.atleast_1d(labels))
    if lab is not None and len(lab) != k:
        raise ValueError("labels must have one entry per study")

    opt = Options(add=float(add), to=to, drop00=drop00, vtype=vtype, convention=convention,
                  incr=incr, variant=variant)
    module = _FORMULAS[spec.family]
    formula = module.compute_meta if convention == "meta" else module.compute
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi, n, corrected = formula(spec.code, a, opt)

    yi = np.asarray(yi, dtype=float) * np.ones(k)
    vi = np.asarray(vi, dtype=float) * np.ones(k)
    corrected = np.zeros(k, dtype=bool) if corrected is None else corrected
    rule = to if convention == "metafor" else f"{to} (meta{', TACC' if incr else ''})"
    return EffectSizes(
        measure=spec.code, yi=readonly(yi), vi=readonly(vi),
        n=None if n is None else readonly(np.asarray(n, dtype=float)),
        labels=lab, add=float(add), to=rule, corrected=corrected,
        inputs={r: readonly(v) for r, v in a.items()},
    )
