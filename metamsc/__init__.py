"""metamsc: reproducible meta-analysis of small clinical studies.

The public API is small and scipy-like::

    import metamsc as mm
    es = mm.effect_size("PLO", events=[8, 2], total=[17, 2])
    res = mm.pool(es.yi, es.vi, method="REML", test="knha")
    res = mm.pool_proportions([8, 2], [17, 2], measure="PFT")
    print(res.summary())

Heavy modules (matplotlib, pandas) are imported only where they are used.
"""

from .batch import BatchResult, pool_batch
from .bayes import BayesResult, bayes
from .bayes_glmm import bayes_proportions, bayes_rates
from .bias import begg_test, egger_test, trim_and_fill
from .effects import EffectSizes, effect_size
from .hetci import h_i2_ci, rb, study_tests, tau2_ci
from .measures import REGISTRY as MEASURE_REGISTRY, get_measure
from .method_sensitivity import MethodSensitivity, method_sensitivity
from .pooling import pool, pool_effects, pool_proportions
from .results import (Conventions, Diagnostics, Excluded, GLMMResult, Interval, IVResult, MetaResult,
                      MHResult, NaturalScale, PetoResult, SubgroupTest, Subgroups)
from .sensitivity import cumulative, leave_one_out
from .subgroups import subgroup_analysis
from .tau2 import estimate_tau2
from .transforms import transf
from .metareg import AnovaResult, MetaRegression, Prediction, anova, meta_regression
from .influence import Influence, influence
from ._present import Summary
from .progress import progress


from ._version import __version__

__all__ = [
    "effect_size",
    "EffectSizes",
    "pool",
    "pool_effects",
    "pool_proportions",
    "pool_batch",
    "BatchResult",
    "estimate_tau2",
    "tau2_ci",
    "h_i2_ci",
    "rb",
    "study_tests",
    "get_measure",
    "MEASURE_REGISTRY",
    "transf",
    "meta_regression",
    "MetaRegression",
    "Prediction",
    "anova",
    "AnovaResult",
    "influence",
    "Influence",
    "leave_one_out",
    "cumulative",
    "egger_test",
    "begg_test",
    "trim_and_fill",
    "bayes",
    "bayes_proportions",
    "bayes_rates",
    "BayesResult",
    "method_sensitivity",
    "MethodSensitivity",
    "MetaResult",
    "IVResult",
    "MHResult",
    "PetoResult",
    "GLMMResult",
    "Subgroups",
    "SubgroupTest",
    "subgroup_analysis",
    "Interval",
    "Summary",
    "progress",
    "Conventions",
    "Diagnostics",
    "Excluded",
    "NaturalScale",
    "__version__",
]
