"""Exact-likelihood (generalised linear mixed) models for sparse counts.

metafor ``rma.glmm`` parity, written with numpy and scipy only (no R, no lme4).

Models
------
* ``PLO``: binomial-normal random-intercept model, x_i ~ Bin(n_i, p_i),
  logit p_i = mu + b_i, b_i ~ N(0, tau^2) (Hamza, van Houwelingen & Stijnen
  2008, J Clin Epidemiol 61:41; Stijnen, Hamza & Ozdemir 2010, Stat Med
  29:3046).
* ``IRLN``: Poisson-normal model, x_i ~ Poisson(t_i lambda_i),
  log lambda_i = mu + b_i (Stijnen et al. 2010).
* ``OR`` with ``model="UM.FS"``: the unconditional model with fixed study
  effects and a random treatment effect (Stijnen et al. 2010, model 3.2;
  Turner et al. 2000, Stat Med 19:3417): logit p_i1 = alpha_i + theta + u_i/2,
  logit p_i2 = alpha_i - u_i/2, u_i ~ N(0, tau^2) (the +-1/2 coding that
  metafor uses by default). The same model for ``IRR`` with Poisson cells and
  log person-time offsets.
* ``OR`` with ``model="CM.EL"``: conditional on the margins of each 2x2 table,
  the first group's events have Fisher's noncentral hypergeometric distribution
  with log odds ratio theta + u_i (van Houwelingen, Zwinderman & Stijnen 1993,
  Stat Med 12:2273; Stijnen et al. 2010, model 3.1). metafor integrates this
  likelihood numerically: ``nagq="high"`` (41 nodes) reproduces the integral.
* ``OR`` with ``model="CM.AL"``: its binomial approximation, x_i ~ Bin(x_i + c_i,
  p_i), logit p_i = log(n1_i / n2_i) + theta + u_i; for ``IRR`` the same
  conditional binomial (with log(t1_i / t2_i)) is exact, so ``CM.EL`` and
  ``CM.AL`` are one model (as in metafor).
* ``OR``/``IRR`` with ``model="UM.RS"`` (:mod:`.umrs`): random study effects,
  logit p_ij = a + theta g1_j + u_i + v_i g12_j with u_i ~ N(0, sigma^2), v_i ~ N(0, tau^2)
  independent (g1 = 1/0, g12 = +-1/2, metafor's defaults; Jackson et al. 2018, Stat Med
  37:1059). ML by the Laplace approximation (nagq = 1, as metafor/lme4 do; any other nagq is
  reset with a warning); EE (random intercepts only) by AGQ with ``nagq`` nodes. QE_LRT and QE_Wld
  against the saturated GLMM (a log ratio per study) as metafor; no profile CI of tau^2.

``method="ML"`` is the random-effects model, ``method="EE"`` (aliases "FE",
"CE") the common-effect GLM with tau^2 fixed at 0.

The package, by job
-------------------
* :mod:`.quadrature`: Gauss-Hermite rules and the safeguarded Newton step of the modes.
* :mod:`.likelihood`: the one AGQ likelihood (value, exact gradient, fixed-node Hessian) of
  every model. With nagq = 7 (the default, as metafor/lme4) it is the function lme4's
  ``glmer(nAGQ = 7)`` maximises; ``nagq = 1`` is the Laplace approximation; ``"high"`` 41 nodes.
* :mod:`.glm`: the common-effect GLM and the saturated model (as R's ``glm.fit``).
* :mod:`.optimize`, :mod:`.profile`: Newton ascent with the exact gradient; the
  profile-likelihood CI of tau^2.
* :mod:`.arrow`: the arrowhead Hessian of UM.FS (the k study effects couple only with the log
  odds ratio and tau^2): Newton steps, SEs and positive definiteness through the Schur
  complement, so every model costs O(k) in time and memory (no k x k matrix).
* :mod:`.data`: input checks, data preparation, exact bounds for degenerate data.
* :mod:`.fit`: the steps of one fit; :mod:`.build`: the result object.

Degenerate data
---------------
If every study has 0 events (or every study only events), the estimate fields are NaN and the
result holds the exact one-sided bound of the pooled proportion or rate. With k = 1, when no
study has 0 < events < n, or when tau^2 diverges, the random-effects model is not identifiable:
the estimate fields are NaN and the common-effect estimate is given in ``common_effect``.
"""

from __future__ import annotations

from numpy.typing import ArrayLike

from ..frames import accepts_data
from ..measures import REGISTRY, get_measure
from ..results import GLMMResult
from .data import prepare
from .fit import fit_model

__all__ = ["fit_glmm", "GLMM_MEASURES", "HIGH_ACCURACY_NAGQ", "MAX_NAGQ", "resolve_nagq"]

#: the measures with a GLMM, from the measure registry
GLMM_MEASURES = tuple(code for code, m in REGISTRY.items() if m.glmm)
HIGH_ACCURACY_NAGQ = 41
#: the measures whose GLMMs compare two groups (metafor's ``model`` argument applies)
TWO_GROUP = ("OR", "IRR")
_METHODS = {"ML": "ML", "EE": "EE", "FE": "EE", "CE": "EE", "GLMM": "ML"}
_TESTS = ("z", "t", "knha")

MAX_NAGQ = 100


def resolve_nagq(nagq) -> int:
    if isinstance(nagq, str):
        if nagq.lower() in ("high", "accurate"):
            return HIGH_ACCURACY_NAGQ
        raise ValueError(f"nagq must be a positive integer or 'high', got {nagq!r}")
    try:
        ok = not isinstance(nagq, bool) and float(nagq).is_integer() and 1 <= int(nagq) <= MAX_NAGQ
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"nagq must be an integer from 1 to {MAX_NAGQ} or 'high' "
                         f"({HIGH_ACCURACY_NAGQ} nodes, beyond which estimates no longer change), "
                         f"got {nagq!r}")
    return int(nagq)


#: metafor rma.glmm's models for two-group measures
MODELS = ("UM.FS", "UM.RS", "CM.EL", "CM.AL")


def resolve_model(measure: str, model) -> str | None:
    """The model name (upper case) for a two-group measure, None for one-group measures; a
    one-line error for an unknown or unavailable combination."""
    if measure not in TWO_GROUP:
        return None
    name = str(model).upper()
    if name not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    fitted = get_measure(measure).glmm
    if name not in fitted:
        raise NotImplementedError(f"model {name} for measure {measure} is not implemented; "
                                  f"available: {', '.join(fitted)}")
    return name


@accepts_data(("events", "total", "time", "events2", "total2", "time2", "subgroup"))
def fit_glmm(events: ArrayLike, total: ArrayLike | None = None, *, time: ArrayLike | None = None,
             measure: str = "PLO", method: str = "ML", nagq: int | str = 7, test: str = "z",
             level: float = 0.95, labels: ArrayLike | None = None,
             events2: ArrayLike | None = None, total2: ArrayLike | None = None,
             time2: ArrayLike | None = None, model: str = "UM.FS", tau2_ci: bool = True, subgroup: ArrayLike | None = None,
             tau2_common: bool = False) -> GLMMResult:
    """Fit a binomial-normal / Poisson-normal model by maximum likelihood (metafor ``rma.glmm``).

    Parameters
    ----------
    events, total
        Event counts and patients per study (``PLO``); for ``OR`` the counts
        of the first (treatment) group, with ``events2``/``total2`` for the
        second (control) group (metafor's ai, n1i, ci, n2i).
    time, time2
        Person-time per study (``IRLN``); for ``IRR`` ``events``/``time`` of the
        first group and ``events2``/``time2`` of the second (metafor's x1i, t1i, x2i, t2i).
    measure
        ``"PLO"`` (logit proportion; binomial-normal), ``"IRLN"`` (log rate;
        Poisson-normal), ``"OR"`` (log odds ratio) or ``"IRR"`` (log rate ratio).
    model
        For ``OR`` and ``IRR`` (case-insensitive, metafor's names): ``"UM.FS"``
        (fixed study effects, random treatment effect), ``"CM.AL"`` (conditional
        on the total events of a study; binomial approximation for OR, exact for
        IRR) or ``"CM.EL"`` (the exact conditional likelihood; IRR). The models a
        measure supports are the registry's ``get_measure(code).glmm``; any other
        metafor model raises NotImplementedError.
    method
        ``"ML"`` (random effects, tau^2 by maximum likelihood) or ``"EE"``
        (common effect, tau^2 = 0; aliases ``"FE"``, ``"CE"``).
    nagq
        Number of adaptive Gauss-Hermite nodes (7 as lme4/metafor; 1 is the
        Laplace approximation) or ``"high"`` (41 nodes).
    test
        ``"z"``, or ``"t"``/``"knha"``: the same SE with a t(k-1) reference
        distribution (metafor's ``test="t"``; meta's Hartung-Knapp option for
        GLMMs; no variance rescaling).
    level
        Confidence level of the CIs (also of the profile CI of tau^2).
    tau2_ci
        Compute the profile-likelihood CI of tau^2 (on by default; metafor's
        rma.glmm computes none).
    subgroup
        A subgroup label per study: the same GLMM is also fitted in each
        subgroup (``result.subgroups``, ``result.subgroup_test``), each with
        its own tau^2 (``tau2_common=True`` is refused: it needs a GLMM with
        moderators).

    Returns
    -------
    GLMMResult
        ``q`` is the Wald-type heterogeneity test QE_Wld; typed fields hold the
        likelihood-ratio test, the profile-likelihood CI of tau^2, the number
        of nodes, log-likelihoods and any report on degenerate data.
    """
    measure = str(measure).upper()
    method = str(method).upper()
    test = str(test).lower()
    if measure not in GLMM_MEASURES:
        raise ValueError(f"measure {measure!r} is not available for GLMMs; expected one of "
                         f"{', '.join(GLMM_MEASURES)}")
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected 'ML' or 'EE' (aliases FE, CE)")
    method = _METHODS[method]
    if test not in _TESTS:
        raise ValueError(f"test {test!r} is not available for GLMMs; expected one of "
                         f"{', '.join(_TESTS)}")
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level:g}")
    nq = resolve_nagq(nagq)
    model_name = resolve_model(measure, model)
    if subgroup is not None and tau2_common:
        raise ValueError("tau2_common=True is not available for the GLMM (a common tau^2 across "
                         "subgroups needs a GLMM with moderators); use tau2_common=False")
    data = prepare(measure, model_name, events, total, time, events2, total2, time2, labels)
    res = fit_model(data, measure, method, nq, test, level, bool(tau2_ci), model_name)
    if subgroup is None:
        return res
    # the subgroup analysis sits above the models: imported here, when asked for, so that
    # nothing in this package imports it at module level
    from ..subgroups import subgroup_analysis

    return subgroup_analysis(res, subgroup).attach()
