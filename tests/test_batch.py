"""pool_batch gives pool()'s numbers (which match metafor), row by row."""

from __future__ import annotations

import numpy as np
import pytest

import metamsc as mm
from metamsc.batch import pool_batch


def _sim(m=200, k=6, seed=1):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.5, size=(m, k))
    tau2 = rng.choice([0.0, 0.05, 0.3], size=(m, 1))
    y = 0.2 + rng.normal(0, np.sqrt(tau2), size=(m, k)) + rng.normal(0, np.sqrt(v))
    return y, v


@pytest.mark.parametrize("method", ["EE", "DL", "HE", "PM", "ML", "REML"])
@pytest.mark.parametrize("test", ["z", "knha"])
def test_batch_equals_pool(method, test):
    y, v = _sim()
    b = pool_batch(y, v, method=method, test=test)
    tol = 1e-8 if method in ("ML", "REML", "PM") else 1e-11
    for i in range(0, y.shape[0], 7):
        r = mm.pool(y[i], v[i], method=method, test=test)
        assert b.estimate[i] == pytest.approx(r.estimate, rel=tol, abs=1e-12)
        assert b.se[i] == pytest.approx(r.se, rel=tol)
        assert b.tau2[i] == pytest.approx(r.tau2, rel=tol, abs=1e-12)
        assert b.i2[i] == pytest.approx(r.i2, rel=tol, abs=1e-9)
        assert b.ci_lb[i] == pytest.approx(r.ci_lb, rel=tol, abs=1e-12)
        assert b.pvalue[i] == pytest.approx(r.pvalue, rel=1e-6, abs=1e-300)
        if method != "EE":
            assert b.pi_ub[i] == pytest.approx(r.pi_ub, rel=tol, abs=1e-12)
    assert b.converged.all()


def test_batch_coverage_and_errors():
    y, v = _sim(m=400, seed=3)
    b = pool_batch(y, v, method="REML", test="knha")
    assert 0.85 < b.coverage(0.2) <= 1.0
    with pytest.raises(ValueError, match="supports"):
        pool_batch(y, v, method="SJ")
    with pytest.raises(ValueError, match="no missing studies"):
        pool_batch([[1.0, np.nan]], [[1.0, 1.0]])
