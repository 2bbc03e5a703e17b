"""The measure registry and every registry measure against R metafor 3.8-1 escalc().

Expected values: tests/reference/escalc2.json (written by make_escalc2_fixtures.R,
each case with the R call that made it) and escalc.json (make_fixtures.R).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import metamsc as mm
from metamsc import transforms
from metamsc.measures import REGISTRY, get_measure, measure_codes

REF = Path(__file__).parent / "reference"
ESCALC2 = json.loads((REF / "escalc2.json").read_text())
ESCALC = json.loads((REF / "escalc.json").read_text())
CLOSED = 1e-10


def _arr(xs):
    return np.array([np.nan if x is None else x for x in xs], dtype=float)


@pytest.mark.parametrize("case", ESCALC2["cases"], ids=lambda c: c["id"])
def test_escalc2(case):
    kw = dict(case["args"])
    roles = {r: np.array(v, dtype=float) for r, v in case["roles"].items()}
    es = mm.effect_size(case["measure"], **roles, **kw)
    for ours, theirs in ((es.yi, case["yi"]), (es.vi, case["vi"])):
        ours = np.where(np.isfinite(ours), ours, np.nan)
        np.testing.assert_allclose(ours, _arr(theirs), rtol=CLOSED, atol=1e-14, equal_nan=True)


def test_every_registry_measure_has_metafor_fixtures():
    """The fixture grid covers every measure of the registry (so it cannot quietly shrink)."""
    have = {c["measure"] for c in ESCALC2["cases"]} | {c["measure"] for c in ESCALC["cases"]}
    missing = sorted(set(REGISTRY) - have - {"GEN"})
    assert missing == []
    # and every variance type the registry offers, beyond each measure's default
    vt = {(c["measure"], c["args"].get("vtype")) for c in ESCALC2["cases"]}
    for code, m in REGISTRY.items():
        for v in m.vtypes[1:]:
            assert (code, v) in vt, (code, v)


def _targs(case):
    t = dict(case["targs"])
    if "targs" in t:  # metafor's targs=list(...) form
        t = dict(t.pop("targs"), **t)
    return {k: (np.array(v, dtype=float) if isinstance(v, list) else v) for k, v in t.items()}


@pytest.mark.parametrize("case", ESCALC2["meta"]["transf_cases"], ids=lambda c: c["id"])
def test_transf_by_name(case):
    tol = 1e-8 if case["name"].endswith(".int") else 1e-12  # .int: numerical integration
    got = transforms.transf(case["name"], np.array(case["x"], dtype=float), **_targs(case))
    np.testing.assert_allclose(got, _arr(case["value"]), rtol=tol, atol=1e-14)


def test_transf_names_are_flexible_and_checked():
    x = np.array([0.2, -1.0])
    np.testing.assert_array_equal(transforms.transf("ZTOR", x), np.tanh(x))
    np.testing.assert_array_equal(transforms.transf("transf.ztor", x), np.tanh(x))
    with pytest.raises(ValueError, match="unknown transformation 'ztorr'"):
        transforms.transf("ztorr", x)
    with pytest.raises(ValueError, match="takes ni; got ti"):
        transforms.transf("ipft", x, ti=1.0)


def test_registry_entries_are_complete():
    for code, m in REGISTRY.items():
        assert m.code == code and m.roles and m.family and m.description and m.reference
        assert m.plot_scale in ("percent", "log", "linear")
        if m.back_transform is not None:
            assert m.back_transform in transforms.TRANSFORMS, code
            assert m.natural_scale is not None, code
        # back_transform() by measure code follows the registry
        x = np.array([0.1, 0.3])
        if m.back_transform not in (None, "transf.ipft.hm"):
            np.testing.assert_array_equal(transforms.back_transform(code, x),
                                          transforms.transf(m.back_transform, x))
        if m.plot_scale == "log":
            assert m.back_transform == "exp", code
    assert transforms.back_transform("MD", [1.0]) is None
    assert measure_codes("rate2") == ("IRR", "IRD", "IRSD")


def test_codes_are_case_insensitive():
    a = mm.effect_size("zcor", r=[0.3, 0.5], n=[20, 40])
    b = mm.effect_size("ZCOR", r=[0.3, 0.5], n=[20, 40])
    assert a.measure == "ZCOR"
    np.testing.assert_array_equal(a.yi, b.yi)
    assert get_measure("smd").code == "SMD"
    with pytest.raises(ValueError, match="unknown measure 'ZSPCOR'"):
        mm.effect_size("ZSPCOR", t=[1.0], n=[10], predictors=[2], r2=[0.1])


def test_bad_input_names_the_role_and_study():
    with pytest.raises(ValueError, match="vtype='UB' is not available for COR"):
        mm.effect_size("COR", r=[0.3], n=[20], vtype="UB")
    with pytest.raises(ValueError, match="role 'r' must lie in"):
        mm.effect_size("ZCOR", r=[0.3, 1.2], n=[20, 30])
    with pytest.raises(ValueError, match="n - predictors - 1 must be > 0, study 2"):
        mm.effect_size("PCOR", t=[1.0, 2.0], n=[20, 5], predictors=[2, 4])
    with pytest.raises(ValueError, match="role 'alpha' must be <= 1, study 1"):
        mm.effect_size("AHW", alpha=[1.2], items=[10], n=[50])
    with pytest.raises(ValueError, match="role 'time2' must be > 0"):
        mm.effect_size("IRR", events1=[1], time1=[10], events2=[1], time2=[0])
    with pytest.raises(ValueError, match="role 'only1' is negative in study 1"):
        mm.effect_size("MPRD", both=[1], only1=[-1], only2=[2], neither=[3])
    with pytest.raises(ValueError, match="needs roles r2"):
        mm.effect_size("SPCOR", t=[1.0], n=[10], predictors=[2])


def test_natural_scale_of_new_measures():
    """ZCOR back-transforms by tanh (transf.ztor); pooled results carry the natural scale."""
    es = mm.effect_size("ZCOR", r=[0.3, 0.5, 0.1], n=[20, 40, 35])
    np.testing.assert_allclose(es.natural(es.yi), [0.3, 0.5, 0.1], rtol=1e-14)
    assert mm.effect_size("IRR", events1=[3], time1=[10], events2=[5], time2=[12]).natural([0.0])[0] == 1.0


def test_registry_reproduces_the_tables_it_replaces():
    """The registry's look-ups give what the older per-module tables gave, so replacing them
    changes no output: pooling's transform names, forest/funnel axis labels, GLMM measures."""
    old_transform_names = {"PLO": "inverse logit", "PLN": "exp", "IRLN": "exp", "RR": "exp",
                           "OR": "exp", "ROM": "exp", "MNLN": "exp",
                           "PAS": "inverse arcsine: sin(x)^2", "IRS": "square", "PR": "identity",
                           "IR": "identity"}
    for code, name in old_transform_names.items():
        assert transforms.TRANSFORMS[REGISTRY[code].back_transform][2] == name, code
    old_forest = {"MC": "Mean change (post \u2212 pre)", "SMCC": "Standardised mean change",
                  "SMCR": "Standardised mean change (by the pre-treatment SD)",
                  "MD": "Mean difference", "SMD": "Standardised mean difference (Hedges' g)",
                  "RR": "Risk ratio (log scale)", "OR": "Odds ratio (log scale)",
                  "ROM": "Ratio of means (log scale)", "IR": "Incidence rate",
                  "IRLN": "Incidence rate (log scale)"}
    for code, label in old_forest.items():
        assert REGISTRY[code].axis_label == label, code
    old_funnel = {"RR": "Log risk ratio", "OR": "Log odds ratio", "PETO": "Log odds ratio (Peto)",
                  "ROM": "Log ratio of means", "PLO": "Log odds (logit proportion)",
                  "PLN": "Log proportion", "PAS": "Arcsine square-root proportion",
                  "PFT": "Freeman-Tukey double-arcsine proportion", "PR": "Proportion",
                  "IR": "Incidence rate", "IRLN": "Log incidence rate", "MD": "Mean difference",
                  "SMD": "Standardised mean difference", "MC": "Mean change",
                  "SMCC": "Standardised mean change", "SMCR": "Standardised mean change",
                  "RD": "Risk difference"}
    for code, label in old_funnel.items():
        assert REGISTRY[code].analysis_label == label, code
    assert measure_codes("proportion") == ("PR", "PLN", "PLO", "PAS", "PFT")
    assert tuple(c for c, m in REGISTRY.items() if m.plot_scale == "log" and m.family in
                 ("binary2", "continuous2", "rate2") and c in ("RR", "OR", "ROM", "IRR")) == \
        ("RR", "OR", "IRR", "ROM")
    assert tuple(c for c, m in REGISTRY.items() if m.glmm) == ("PLO", "IRLN", "OR", "IRR")
