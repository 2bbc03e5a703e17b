"""Building the GLMMResult of a fit: conventions, natural scale (from the measure registry),
the typed fields, and the result with NaN estimates when no model is estimable."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dist import critical_value
from .._util import readonly
from ..measures import get_measure
from ..proportions import proportion_ci
from ..results import CommonEffect, Conventions, Diagnostics, GLMMResult, NaturalScale

__all__ = ["typed_fields", "make_result", "WEIGHTS_TEXT", "common_effect_dict", "natural",
           "conventions", "nan_result", "z_crit", "typical_variance"]


def z_crit(level: float) -> float:
    """The two-sided normal critical value of a ``level`` CI."""
    return critical_value(level)


def typical_variance(vi) -> float:
    """Typical within-study variance (k - 1) / tr(P) (Higgins & Thompson 2002, Stat Med 21:1539)."""
    w = 1.0 / vi
    if vi.size < 2:
        return float("nan")
    sw = float(w.sum())
    return float((vi.size - 1) / (sw - float(w @ w) / sw))


#: keys of the fit's working dictionary -> fields of GLMMResult
_TYPED_KEYS = {"nagq": "nagq", "model": "or_model", "QE_Wld": "qe_wald", "QEp_Wld": "qe_wald_pvalue",
               "QE_LRT": "qe_lrt", "QEp_LRT": "qe_lrt_pvalue", "QE_df": "qe_df",
               "QE_LRT_text": "qe_lrt_text", "loglik": "loglik", "loglik_EE": "loglik_ee",
               "loglik_saturated": "loglik_saturated", "sigma2": "sigma2", "tau2_ci_kind": "tau2_ci_kind",
               "gradient_max": "gradient_max", "hessian_eigenvalues": "hessian_eigenvalues",
               "nfev": "nfev", "degenerate": "degenerate", "exact_lower_bound": "exact_lower_bound",
               "exact_upper_bound": "exact_upper_bound", "bound_kind": "bound_kind",
               "weights_definition": "weights_definition"}


def typed_fields(extra: dict[str, Any], d, okv, want_ci: bool) -> dict[str, Any]:
    """Typed GLMMResult fields from the fit's working values, with the counts for refit."""
    out = {_TYPED_KEYS[k]: v for k, v in extra.items() if k in _TYPED_KEYS}
    ce = extra.get("common_effect")
    if ce is not None:
        out["common_effect"] = CommonEffect(**ce)
    counts = ({"events": d["x"], "total": d["tot"], "events2": d["x2"], "total2": d["tot2"]}
              if d["kind"] == "binomial2" else
              {"events": d["x"], "time": d["tot"], "events2": d["x2"], "time2": d["tot2"]}
              if d["kind"] == "poisson2" else
              {"events": d["x"], "total": d["tot"]} if d["kind"] == "binomial" else
              {"events": d["x"], "time": d["tot"]})
    out.update({k: readonly(np.asarray(v, float)[okv]) for k, v in counts.items()})
    out["tau2_ci_computed"] = bool(want_ci)
    return out


def make_result(**kw) -> GLMMResult:
    """Build the GLMMResult, passing only the fields it defines."""
    global _RESULT_FIELDS
    if _RESULT_FIELDS is None:
        import dataclasses

        _RESULT_FIELDS = frozenset(f.name for f in dataclasses.fields(GLMMResult))
    return GLMMResult(**{k: v for k, v in kw.items() if k in _RESULT_FIELDS})


_RESULT_FIELDS = None


WEIGHTS_TEXT = ("weights: 1/(vi + tau^2) of the escalc outcomes, normalised to 100%, for display "
                 "only (metafor defines no weights for rma.glmm; the GLMM weights studies through "
                 "the exact likelihood)")



def common_effect_dict(measure, beta, se, level, d):
    """The common-effect (GLM) estimate reported when the random-effects model is not
    identifiable; with one proportion also its exact Clopper-Pearson CI."""
    zc = z_crit(level)
    out = {"estimate": beta, "se": se, "ci_lb": beta - zc * se, "ci_ub": beta + zc * se,
           "kind": "common-effect GLM (tau^2 = 0), analysis scale"}
    if measure == "PLO" and d["x"].size == 1:
        ci = proportion_ci(float(d["x"][0]), float(d["tot"][0]), "CP", level)
        out["exact_ci"] = (float(ci[0]), float(ci[1]))
        out["exact_ci_kind"] = f"two-sided {100 * level:g}% Clopper-Pearson CI of the proportion"
    return out


def _transform_name(measure: str) -> str:
    from ..transforms import TRANSFORMS

    return TRANSFORMS[get_measure(measure).back_transform][2]


def natural(measure, beta, ci_lb, ci_ub, pi_lb, pi_ub) -> NaturalScale:
    """Estimate, CI and PI on the natural scale of the measure (the registry's back-transform)."""
    from ..transforms import transf

    entry = get_measure(measure)
    x = np.array([beta, ci_lb, ci_ub, pi_lb, pi_ub], dtype=float)
    ok = np.isfinite(x)
    vals = [float(v) for v in np.where(ok, transf(entry.back_transform, np.where(ok, x, 0.0)),
                                       np.nan)]
    return NaturalScale(entry.natural_scale, vals[0], vals[1], vals[2], vals[3], vals[4],
                        _transform_name(measure))


#: the GLMMs of two-group measures, in words (metafor rma.glmm's model argument)
MODEL_TEXT = {"UM.FS": "fixed study effects, random treatment effect",
              "UM.RS": "random study effects, random treatment effect (Laplace)",
              "CM.AL": "conditional on the total events, binomial approximation",
              "CM.EL": "conditional on the total events, exact likelihood"}


def conventions(measure, method, nq, test, es, want_ci, model=None) -> Conventions:
    """The conventions block of a GLMM result."""
    est = (f"GLMM (ML, AGQ nagq={nq})" if method == "ML" else
           "GLMM (EE: common-effect GLM, tau^2 = 0)")
    if model is not None:
        est += f", model {model} ({MODEL_TEXT[model]})"
    ncorr = int(np.sum(es.corrected)) if es.corrected is not None else 0
    if method != "ML":
        tci = "none (common-effect model)"
    elif want_ci:
        tci = "profile likelihood (chi^2_1 quantile), computed on the exact GLMM likelihood"
    else:
        tci = "not computed (tau2_ci=False)"
    return Conventions(
        tau2_estimator=est,
        test=("z" if test == "z" else f"{test}: t(k-1) with the ML standard error (no rescaling; "
                                      "metafor test='t', meta's Hartung-Knapp option for GLMMs)"),
        i2_definition=("metafor rma.glmm: I^2 = tau^2 / (tau^2 + v~), v~ = (k-1)/tr(P) of the "
                       "escalc yi/vi (1/2 added to zero cells)"),
        prediction_interval=("none (common-effect model)" if method == "EE" else
                             "metafor predict(): estimate -/+ crit * sqrt(SE^2 + tau^2)"),
        tau2_ci=tci,
        correction=(f"none in the model (exact likelihood); yi/vi for display and v~: add 1/2 to "
                    f"zero cells ({ncorr} of {es.k} studies corrected); " + WEIGHTS_TEXT),
        back_transform=_transform_name(measure),
    )



def nan_result(d, measure, method, test, level, nq, warns, messages, extra, want_ci, q=None,
                vt=float("nan")) -> GLMMResult:
    """A result with NaN where nothing is estimable (degenerate data, unidentifiable model)."""
    nan = float("nan")
    k = d["k"]
    es = d["es"]
    yi_all, vi_all = np.asarray(es.yi, float), np.asarray(es.vi, float)
    okv = np.isfinite(yi_all) & np.isfinite(vi_all)
    lab_d = tuple(lb for lb, kp in zip(d["labels"], okv) if kp)
    w = 1.0 / vi_all[okv]
    natural = None
    if "exact_upper_bound" in extra:
        natural = NaturalScale(get_measure(measure).natural_scale, nan, float(extra["exact_lower_bound"]),
                               float(extra["exact_upper_bound"]), nan, nan,
                               "none: no model fitted; CI = " + extra["bound_kind"])
    qv, qdf, qp = q if q is not None else (nan, max(k - 1, 0), nan)
    extra["weights_definition"] = "1/vi of the escalc outcomes, normalised to 100% (display only)"
    return make_result(
        measure=measure, method=method, test=test, level=level, k=k, estimate=nan, se=nan,
        statistic=nan, pvalue=nan, ci_lb=nan, ci_ub=nan, df=None if test == "z" else float(k - 1),
        tau2=nan, se_tau2=nan, tau2_ci_lb=nan, tau2_ci_ub=nan, i2=nan, i2_ci_lb=nan, i2_ci_ub=nan,
        h2=nan, h2_ci_lb=nan, h2_ci_ub=nan, q=float(qv), q_df=int(qdf), q_pvalue=float(qp),
        pi_lb=nan, pi_ub=nan, pi_se=nan, vt=float(vt), s2w=1.0, s2w_knha=nan, se_model=nan,
        labels=lab_d, yi=readonly(yi_all[okv]), vi=readonly(vi_all[okv]),
        weights=readonly(100 * w / w.sum() if w.size else w),
        n=readonly(np.asarray(d["n_report"], float)[okv]),
        conventions=conventions(measure, method, nq, test, es, False, extra.get("model")),
        diagnostics=Diagnostics(False, 0, False, "not fitted: model not identifiable",
                                tuple(messages)),
        excluded=tuple(d["excluded"]), natural=natural, warnings=tuple(warns),
        corrected=None if es.corrected is None else np.asarray(es.corrected)[okv],
        kept=d["positions"][okv], **typed_fields(extra, d, okv, want_ci),
    )