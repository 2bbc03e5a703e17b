"""metamsc against R metafor 3.8-1: effect sizes (escalc) and rma.uni models.

The expected values are in tests/reference/*.json, written by
tests/reference/make_fixtures.R; each case carries the R call that made it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import metamsc as mm

REF = Path(__file__).parent / "reference"
ESCALC = json.loads((REF / "escalc.json").read_text())
RMA = json.loads((REF / "rma.json").read_text())

CLOSED = 1e-10  # closed forms
ITER = 1e-7  # iterative estimators and root finding

# metafor argument names -> metamsc roles, per measure family
_ROLE_MAP = {
    "prop": {"xi": "events", "ni": "total"},
    "rate": {"xi": "events", "ti": "time"},
    "mean": {"mi": "mean", "sdi": "sd", "ni": "n"},
    "change": {"m1i": "mean_post", "m2i": "mean_pre", "sd1i": "sd_post", "sd2i": "sd_pre",
               "ni": "n", "ri": "r"},
    "smcr": {"m1i": "mean_post", "m2i": "mean_pre", "sd1i": "sd_pre", "ni": "n", "ri": "r"},
    "bin2": {"ai": "events1", "n1i": "total1", "ci": "events2", "n2i": "total2"},
    "cont2": {"m1i": "mean1", "sd1i": "sd1", "n1i": "n1", "m2i": "mean2", "sd2i": "sd2", "n2i": "n2"},
}


def _family(measure: str) -> str:
    if measure in ("PR", "PLN", "PLO", "PAS", "PFT"):
        return "prop"
    if measure in ("IR", "IRLN", "IRS", "IRFT"):
        return "rate"
    if measure in ("MN", "MNLN"):
        return "mean"
    if measure == "SMCR":
        return "smcr"
    if measure in ("MC", "SMCC"):
        return "change"
    if measure in ("RR", "OR", "RD"):
        return "bin2"
    return "cont2"


def _roles(case):
    m = _ROLE_MAP[_family(case["measure"])]
    return {role: np.array(case["inputs"][arg], dtype=float) for arg, role in m.items()}


def _arr(xs):
    return np.array([np.nan if x is None else x for x in xs], dtype=float)


@pytest.mark.parametrize("case", ESCALC["cases"], ids=lambda c: c["id"])
def test_escalc(case):
    kw = {k: v for k, v in case["args_passed"].items() if k in ("add", "to", "drop00")}
    es = mm.effect_size(case["measure"], **_roles(case), **kw)
    # the fixtures write R's Inf and NaN as null
    for ours, theirs in ((es.yi, case["yi"]), (es.vi, case["vi"])):
        ours = np.where(np.isfinite(ours), ours, np.nan)
        np.testing.assert_allclose(ours, _arr(theirs), rtol=CLOSED, atol=1e-14, equal_nan=True)


def test_escalc_grid_is_complete():
    ids = {c["id"] for c in ESCALC["cases"]}
    for ds in ("dat.pritz1997", "dat.debruin2009", "zeros", "k2", "pasi40", "allzero"):
        for m in ("PR", "PLN", "PLO", "PAS", "PFT"):
            assert f"escalc:{ds}:{m}" in ids
    for m in ("IR", "IRLN", "IRS", "IRFT"):
        assert f"escalc:rates:{m}" in ids
    for m in ("MN", "MNLN", "MC", "SMCC", "SMCR"):
        assert f"escalc:prepost:{m}" in ids
    for m in ("RR", "OR", "RD"):
        assert f"escalc:dat.bcg:{m}" in ids
    for m in ("MD", "SMD", "ROM"):
        assert f"escalc:dat.normand1999:{m}" in ids


RMA_OK = [c for c in RMA["cases"] if "error" not in c["expected"] and c["method"] != "GENQM"]


def _fit(case):
    kw = {}
    if case["method"] == "GENQ":
        kw["weights"] = 1 / np.array(case["vi"], dtype=float)
    n = case.get("ni")
    return mm.pool(np.array(case["yi"], dtype=float), np.array(case["vi"], dtype=float),
                   method=case["method"], test=case["test"], level=case["level"],
                   measure=case["measure"], n=n, **kw)


def _close(actual, expected, rtol, name, atol=1e-12):
    if expected is None:
        assert actual is None or not np.isfinite(actual), f"{name}: metafor gives NA, we give {actual}"
        return
    assert actual == pytest.approx(expected, rel=rtol, abs=atol), name


@pytest.mark.parametrize("case", RMA_OK, ids=lambda c: c["id"])
def test_rma(case):
    e = case["expected"]
    r = _fit(case)
    iterative = case["method"] in ("ML", "REML", "EB", "PM", "PMM")
    tol = ITER if iterative else CLOSED
    assert r.k == e["k"]
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"),
                         ("statistic", "zval"), ("tau2", "tau2"), ("i2", "I2"), ("h2", "H2"),
                         ("q", "QE"), ("q_pvalue", "QEp")):
        _close(getattr(r, ours), e[theirs], tol, ours)
    _close(r.pvalue, e["pval"], tol, "pvalue", atol=1e-300)
    _close(r.pi_lb, e["pi_lb"], tol, "pi_lb")
    _close(r.pi_ub, e["pi_ub"], tol, "pi_ub")
    if case["method"] != "EE":
        _close(r.se_tau2, e["se_tau2"], tol, "se_tau2")
    np.testing.assert_allclose(r.weights, _arr(e["weights"]), rtol=tol)
    # Q-profile CI: metafor's uniroot (tol 1e-12 absolute) vs our Brent to 1e-15
    if e.get("tau2_ci_lb") is not None:
        for ours, theirs in (("tau2_ci_lb", "tau2_ci_lb"), ("tau2_ci_ub", "tau2_ci_ub"),
                             ("i2_ci_lb", "I2_ci_lb"), ("i2_ci_ub", "I2_ci_ub"),
                             ("h2_ci_lb", "H2_ci_lb"), ("h2_ci_ub", "H2_ci_ub")):
            _close(getattr(r, ours), e[theirs], ITER, ours, atol=1e-9)
    nat = e.get("natural")
    if nat and nat["transf"] != "none" and r.natural is not None:
        _close(r.natural.estimate, nat["pred"], tol, "natural.estimate")
        _close(r.natural.ci_lb, nat["ci_lb"], tol, "natural.ci_lb")
        _close(r.natural.ci_ub, nat["ci_ub"], tol, "natural.ci_ub")
        _close(r.natural.pi_lb, nat["pi_lb"], tol, "natural.pi_lb")
        _close(r.natural.pi_ub, nat["pi_ub"], tol, "natural.pi_ub")
    if nat and "study_est" in nat:
        est, lo, hi = r.study_natural()
        np.testing.assert_allclose(est, _arr(nat["study_est"]), rtol=CLOSED, atol=1e-12)
        np.testing.assert_allclose(np.minimum(lo, hi), _arr(nat["study_ci_lb"]), rtol=CLOSED, atol=1e-12)
        np.testing.assert_allclose(np.maximum(lo, hi), _arr(nat["study_ci_ub"]), rtol=CLOSED, atol=1e-12)


def test_rma_grid_is_complete():
    """Every combination of the declared grids is present (errors included), so it cannot shrink."""
    ids = {c["id"] for c in RMA["cases"]}
    total = 0
    for block in RMA["meta"]["grids"].values():
        for ds in block["datasets"]:
            for m in block["measures"]:
                for meth in block["methods"]:
                    for t in block["tests"]:
                        for lvl in block["levels"]:
                            total += 1
                            assert f"rma:{ds}:{m}:{meth}:{t}:{round(100 * lvl)}" in ids
    assert total >= 1500
    for meth in ("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ"):
        assert any(c["method"] == meth for c in RMA_OK)


def test_published_bcg():
    """Viechtbauer (2010): dat.bcg log RR, REML: tau^2 0.3132, -0.7145, SE 0.1798, I^2 92.22%."""
    case = next(c for c in RMA["cases"] if c.get("block") == "published")
    r = _fit(case)
    assert r.tau2 == pytest.approx(0.3132, abs=5e-5)
    assert r.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert r.se == pytest.approx(0.1798, abs=5e-5)
    assert (r.ci_lb, r.ci_ub) == pytest.approx((-1.0669, -0.3622), abs=5e-5)
    assert r.i2 == pytest.approx(92.22, abs=5e-3)
