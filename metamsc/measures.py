"""The measure registry: the one table of effect-size measures.

One :class:`Measure` per code (metafor's ``escalc`` codes) holds everything the
rest of the package needs to know about a measure: its data roles, the family
of formulas that computes it (in :mod:`metamsc.effects`), the name of its
natural scale, the back-transformation (a name of :func:`metamsc.transforms.transf`),
the axis label for plots, the default continuity correction, the variance types
(``vtype``) it accepts, and whether the GLMM of :mod:`metamsc.glmm` fits it.

Codes are case-insensitive (:func:`get_measure`).

Adding a measure is one entry here plus its formula in the family module
``metamsc/effects/<family>.py``. :func:`metamsc.effects.effect_size` reads the roles,
variance types, default correction and conventions from the entry and calls
``compute(code, roles, options)`` of the module named by ``family``; plots, back-transforms
and the spec read the rest of the entry. For example, a new 2x2-table measure ``XYZ``
(a made-up code)::

    # metamsc/measures.py, in _ENTRIES:
    _m("XYZ", _BIN2, "binary2", "what it is", "Author (year) Journal",
       label="Axis label", corrects=True),

    # metamsc/effects/binary2.py, in compute(), before the final raise:
    if code == "XYZ":
        return yi, vi, ni, corrected  # yi and vi from the cells ai, bi, ci, di

A new family of roles is a new module ``metamsc/effects/<family>.py`` with a
``compute`` function, listed once in the import of ``metamsc/effects/__init__.py``.

Roles of the newer measures, against metafor's argument names:

=================  ====================================  ===========================
measures           roles                                 metafor arguments
=================  ====================================  ===========================
COR UCOR ZCOR      r, n                                  ri, ni
PCOR ZPCOR         t, n, predictors                      ti, ni, mi
SPCOR              t, n, predictors, r2                  ti, ni, mi, r2i
IRR IRD IRSD       events1, time1, events2, time2        x1i, t1i, x2i, t2i
VR                 sd1, n1, sd2, n2                      sd1i, n1i, sd2i, n2i
SMD1               mean1, n1, mean2, sd2, n2             m1i, n1i, m2i, sd2i, n2i
VRC                n, sd_pre, sd_post, r                 ni, sd2i, sd1i, ri
SMCR SMCRH         (pre/post roles) standardised by      sd1i = the pre-test SD
                   sd_pre
SMN CVLN           mean, sd, n                           mi, sdi, ni
SDLN               sd, n                                 sdi, ni
ARAW AHW ABT       alpha, items, n                       ai, mi, ni
MPRD MPRR MPOR     both, only1, only2, neither           ai, bi, ci, di (paired)
MPORC MPPETO
MPORM              events1, total1, events2, total2, r   ai, bi, ci, di, ri
REH                homozygous1, heterozygous,            ai, bi, ci
                   homozygous2
=================  ====================================  ===========================

``predictors`` is the number of predictors in the regression model (so the t test
has n - predictors - 1 degrees of freedom); ``r2`` that model's R^2; ``alpha`` Cronbach's alpha of a scale
with ``items`` items given to ``n`` persons. In a paired 2x2 table ``both``
counts the pairs with the event under both conditions, ``only1`` under the
first only, ``only2`` under the second only and ``neither`` under none. MPORM takes
the marginal counts of n pairs as a 2x2 table (``events1`` of ``total1`` = n under the
first condition, ``events2`` of ``total2`` = n under the second) and ``r``, the correlation
of the paired outcomes. REH takes the genotype counts of a biallelic marker.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Measure", "REGISTRY", "get_measure", "normalise_code", "measure_codes",
           "CORRECTION_RULES", "correction_mask"]


@dataclass(frozen=True)
class Measure:
    """What the package knows about one effect-size measure."""

    code: str
    roles: tuple[str, ...]
    family: str
    description: str
    reference: str
    natural_scale: str | None  # name of the natural scale; None: no other than its own
    back_transform: str | None  # a name understood by transforms.transf(), or None
    axis_label: str  # x-axis label of a forest plot (natural scale)
    analysis_label: str  # x-axis label on the analysis scale (funnel plot)
    plot_scale: str  # forest-plot axis: "percent", "log" (ratios) or "linear"
    default_add: float  # metafor's default continuity correction (with to = "only0")
    vtypes: tuple[str, ...]  # accepted variance types; the first is the default
    glmm: tuple[str, ...]  # GLMM models fitted by metamsc.glmm ("" = the one-group model)
    corrects: bool  # whether add/to (zero-cell corrections) apply to this measure
    conventions: tuple[str, ...] = ("metafor",)  # "meta": R meta's variant (effect_size(convention=))
    meta_variants: tuple[str, ...] = ()  # meta's named variants of this measure (e.g. RR.COCHRANE)

    @property
    def null_value(self) -> float | None:
        """The value of no effect on the natural scale, where a measure compares two groups or
        two times: 1 for a ratio (a log measure), 0 for a difference; None for one group."""
        if self.family not in _COMPARATIVE:
            return None
        return 1.0 if self.back_transform == "exp" else 0.0


#: families of measures that compare (two groups, two conditions, pre and post)
_COMPARATIVE = ("binary2", "continuous2", "rate2", "paired", "prepost")


_PROP = ("events", "total")
_RATE = ("events", "time")
_BIN2 = ("events1", "total1", "events2", "total2")
_CONT2 = ("mean1", "sd1", "n1", "mean2", "sd2", "n2")
_PREPOST = ("n", "mean_pre", "sd_pre", "mean_post", "sd_post", "r")
_RATE2 = ("events1", "time1", "events2", "time2")
_PAIRED = ("both", "only1", "only2", "neither")

_V = "Viechtbauer (2010) J Stat Softw 36(3)"

def _m(code, roles, family, description, reference, natural=None, back=None, label="Effect size",
       analysis=None, scale="linear", add=0.5, vtypes=("LS",), glmm=(), corrects=False,
       meta=False, variants=()) -> Measure:
    return Measure(code, roles, family, description, reference, natural, back, label,
                   analysis or label, scale, add, vtypes, glmm, corrects,
                   ("metafor", "meta") if meta else ("metafor",), variants)


_P, _R, _L = "percent", "log", "linear"

_ENTRIES = (
    # single proportions
    _m("PR", _PROP, "proportion", "raw proportion", _V, "proportion", "identity",
       "Proportion (%)", "Proportion", _P, vtypes=("LS", "UB", "AV"), corrects=True, meta=True),
    _m("PLN", _PROP, "proportion", "log proportion", _V, "proportion", "exp",
       "Proportion (%)", "Log proportion", _P, vtypes=("LS", "AV"), corrects=True, meta=True),
    _m("PLO", _PROP, "proportion", "logit proportion", _V, "proportion", "transf.ilogit",
       "Proportion (%)", "Log odds (logit proportion)", _P, vtypes=("LS", "AV"), glmm=("",),
       corrects=True),
    _m("PAS", _PROP, "proportion", "arcsine square-root proportion", "Rao (1973)",
       "proportion", "transf.iarcsin", "Proportion (%)", "Arcsine square-root proportion", _P,
       add=0.0, corrects=True),
    _m("PFT", _PROP, "proportion", "Freeman-Tukey double-arcsine proportion",
       "Freeman & Tukey (1950) Ann Math Stat 21:607; Miller (1978) Am Stat 32:138", "proportion",
       "transf.ipft.hm", "Proportion (%)", "Freeman-Tukey double-arcsine proportion", _P,
       add=0.0, corrects=True),
    # single incidence rates
    _m("IR", _RATE, "rate", "raw incidence rate", _V, "rate", "identity", "Incidence rate",
       corrects=True),
    _m("IRLN", _RATE, "rate", "log incidence rate", _V, "rate", "exp",
       "Incidence rate (log scale)", "Log incidence rate", _R, glmm=("",), corrects=True),
    _m("IRS", _RATE, "rate", "square-root incidence rate", _V, "rate", "transf.isqrt",
       "Incidence rate", "Square-root incidence rate", add=0.0, corrects=True),
    _m("IRFT", _RATE, "rate", "Freeman-Tukey incidence rate", "Freeman & Tukey (1950)",
       label="Freeman-Tukey transformed rate", add=0.0, corrects=True),
    # single means
    _m("MN", ("mean", "sd", "n"), "mean", "raw mean", _V, label="Mean"),
    _m("MNLN", ("mean", "sd", "n"), "mean", "log mean", _V, "mean", "exp", "Mean (log scale)",
       "Log mean", _R),
    _m("CVLN", ("mean", "sd", "n"), "mean", "log coefficient of variation",
       "Nakagawa et al. (2015) Methods Ecol Evol 6:143", "coefficient of variation", "exp",
       "Coefficient of variation (log scale)", "Log coefficient of variation", _R),
    _m("SDLN", ("sd", "n"), "mean", "log standard deviation",
       "Nakagawa et al. (2015) Methods Ecol Evol 6:143", "standard deviation", "exp",
       "Standard deviation (log scale)", "Log standard deviation", _R),
    _m("SMN", ("mean", "sd", "n"), "mean", "single-group standardised mean, mean / sd",
       "Hedges (1981) J Educ Stat 6:107", label="Standardised mean"),
    # pre/post (change = post - pre; ratio = post / pre)
    _m("MC", _PREPOST, "prepost", "raw mean change, post minus pre", _V,
       label="Mean change (post \u2212 pre)",
       analysis="Mean change"),
    _m("SMCC", _PREPOST, "prepost", "standardised mean change, change-score SD",
       "Gibbons et al. (1993) J Educ Stat 18:271", label="Standardised mean change",
       vtypes=("LS", "LS2")),
    _m("SMCR", ("n", "mean_pre", "sd_pre", "mean_post", "r"), "prepost",
       "standardised mean change, pre-test SD", "Becker (1988) Br J Math Stat Psychol 41:257",
       label="Standardised mean change (by the pre-treatment SD)",
       analysis="Standardised mean change", vtypes=("LS", "LS2")),
    _m("SMCRH", _PREPOST, "prepost",
       "standardised mean change, pre-test SD, heteroscedastic variance",
       "Bonett (2008) Psychol Methods 13:99", label="Standardised mean change (by the pre-treatment SD)",
       analysis="Standardised mean change"),
    _m("CVRC", _PREPOST, "prepost", "log ratio of CVs, post over pre",
       "Nakagawa et al. (2015) Methods Ecol Evol 6:143", "ratio of CVs", "exp",
       "Ratio of coefficients of variation, post / pre (log scale)", "Log CV ratio (post / pre)", _R),
    _m("VRC", ("n", "sd_pre", "sd_post", "r"), "prepost", "log ratio of SDs, post over pre",
       "Nakagawa et al. (2015) Methods Ecol Evol 6:143", "ratio of SDs", "exp",
       "Ratio of standard deviations, post / pre (log scale)", "Log SD ratio (post / pre)", _R),
    _m("ROMC", _PREPOST, "prepost", "log ratio of means, post over pre",
       "Lajeunesse (2011) Ecology 92:2049", "ratio of means", "exp",
       "Ratio of means, post / pre (log scale)", "Log ratio of means (post / pre)", _R),
    # two groups, binary outcome (2x2 table)
    _m("RR", _BIN2, "binary2", "log risk ratio", _V, "risk ratio", "exp",
       "Risk ratio (log scale)", "Log risk ratio", _R, corrects=True, meta=True,
       variants=("RR.COCHRANE",)),
    _m("OR", _BIN2, "binary2", "log odds ratio", _V, "odds ratio", "exp",
       "Odds ratio (log scale)", "Log odds ratio", _R, glmm=("UM.FS", "UM.RS", "CM.EL", "CM.AL"),
       corrects=True, meta=True),
    _m("PETO", _BIN2, "binary2", "log odds ratio, Peto's one-step estimate",
       "Yusuf et al. (1985) Prog Cardiovasc Dis 27:335", "odds ratio", "exp",
       "Odds ratio (log scale)", "Log odds ratio (Peto)", _R, corrects=True),
    _m("RD", _BIN2, "binary2", "risk difference", _V, label="Risk difference",
       vtypes=("LS", "UB", "AV"), corrects=True, meta=True),
    _m("AS", _BIN2, "binary2", "arcsine square-root risk difference",
       "Ruecker et al. (2009) Stat Med 28:721", label="Arcsine risk difference", add=0.0,
       corrects=True),
    _m("PHI", _BIN2, "binary2", "phi coefficient", "Yule (1912) J R Stat Soc 75:579",
       label="Phi coefficient", add=0.0, vtypes=("LS", "ST", "CS"), corrects=True),
    _m("YUQ", _BIN2, "binary2", "Yule's Q", "Yule (1900) Phil Trans R Soc A 194:257",
       label="Yule's Q", corrects=True),
    _m("YUY", _BIN2, "binary2", "Yule's Y", "Yule (1912) J R Stat Soc 75:579",
       label="Yule's Y", corrects=True),
    _m("RTET", _BIN2, "binary2", "tetrachoric correlation (maximum likelihood)",
       "Pearson (1900) Phil Trans R Soc A 195:1; Olsson (1979) Psychometrika 44:443",
       label="Tetrachoric correlation", add=0.0, corrects=True),
    _m("PBIT", _BIN2, "binary2", "probit difference, as an SMD",
       "Sanchez-Meca et al. (2003) Psychol Methods 8:448", label="Standardised mean difference",
       corrects=True),
    _m("OR2DN", _BIN2, "binary2", "log odds ratio to SMD, normal (Cox) factor 1.65",
       "Cox (1970); Sanchez-Meca et al. (2003) Psychol Methods 8:448",
       label="Standardised mean difference", corrects=True),
    _m("OR2DL", _BIN2, "binary2", "log odds ratio to SMD, logistic factor sqrt(3)/pi",
       "Hasselblad & Hedges (1995) Psychol Bull 117:167", label="Standardised mean difference",
       corrects=True),
    _m("MPORM", _BIN2 + ("r",), "binary2",
       "log odds ratio, paired data from marginal counts and their correlation",
       "Elbourne et al. (2002) Int J Epidemiol 31:140", "odds ratio", "exp",
       "Odds ratio (log scale)", "Log odds ratio", _R, corrects=True),
    # paired binary data (a paired 2x2 table)
    _m("MPRD", _PAIRED, "paired", "risk difference, paired data",
       "Zou (2007) Stat Med 26:3213", label="Risk difference", corrects=True),
    _m("MPRR", _PAIRED, "paired", "log risk ratio, paired data",
       "Zou (2007) Stat Med 26:3213", "risk ratio", "exp", "Risk ratio (log scale)",
       "Log risk ratio", _R, corrects=True),
    _m("MPOR", _PAIRED, "paired", "log odds ratio, paired data (marginal)",
       "Elbourne et al. (2002) Int J Epidemiol 31:140", "odds ratio", "exp",
       "Odds ratio (log scale)", "Log odds ratio", _R, corrects=True),
    _m("MPORC", _PAIRED, "paired", "log odds ratio, paired data (conditional, McNemar)",
       "Curtin et al. (2002) Stat Med 21:2131", "odds ratio", "exp", "Odds ratio (log scale)",
       "Log odds ratio", _R, corrects=True),
    _m("MPPETO", _PAIRED, "paired", "log odds ratio, paired data (Peto)",
       "Yusuf et al. (1985) Prog Cardiovasc Dis 27:335", "odds ratio", "exp",
       "Odds ratio (log scale)", "Log odds ratio", _R, corrects=True),
    # two groups, incidence rates
    _m("IRR", _RATE2, "rate2", "log incidence-rate ratio", _V, "rate ratio", "exp",
       "Rate ratio (log scale)", "Log rate ratio", _R, glmm=("UM.FS", "UM.RS", "CM.EL", "CM.AL"),
       corrects=True),
    _m("IRD", _RATE2, "rate2", "incidence-rate difference", _V, label="Rate difference",
       corrects=True),
    _m("IRSD", _RATE2, "rate2", "square-root incidence-rate difference", _V,
       label="Square-root rate difference", add=0.0, corrects=True),
    # two groups, continuous outcome
    _m("MD", _CONT2, "continuous2", "raw mean difference", _V, label="Mean difference",
       vtypes=("LS", "UB", "HO")),
    _m("SMD", _CONT2, "continuous2", "standardised mean difference (Hedges' g)",
       "Hedges (1981) J Educ Stat 6:107", label="Standardised mean difference (Hedges' g)",
       analysis="Standardised mean difference", vtypes=("LS", "UB", "LS2", "AV"), meta=True),
    _m("SMD1", ("mean1", "n1", "mean2", "sd2", "n2"), "continuous2",
       "SMD standardised by group 2's SD (Glass's delta, bias-corrected)",
       "Glass (1976) Educ Res 5:3; Hedges (1981)", label="Standardised mean difference (by group 2's SD)",
       analysis="Standardised mean difference", vtypes=("LS", "UB", "LS2", "AV")),
    _m("SMD1H", _CONT2, "continuous2", "SMD1 with heteroscedastic variances",
       "Bonett (2008) Psychol Methods 13:99", label="Standardised mean difference (by group 2's SD)",
       analysis="Standardised mean difference"),
    _m("SMDH", _CONT2, "continuous2", "SMD with heteroscedastic variances",
       "Bonett (2008) Psychol Methods 13:99", label="Standardised mean difference",
       vtypes=("LS", "LS2")),
    _m("ROM", _CONT2, "continuous2", "log ratio of means",
       "Hedges et al. (1999) Ecology 80:1150", "ratio of means", "exp",
       "Ratio of means (log scale)", "Log ratio of means", _R, vtypes=("LS", "HO", "AV", "AVHO")),
    _m("CVR", _CONT2, "continuous2", "log coefficient-of-variation ratio",
       "Nakagawa et al. (2015) Methods Ecol Evol 6:143", "ratio of CVs", "exp",
       "Ratio of coefficients of variation (log scale)", "Log CV ratio", _R),
    _m("VR", ("sd1", "n1", "sd2", "n2"), "continuous2", "log variability ratio",
       "Nakagawa et al. (2015) Methods Ecol Evol 6:143", "ratio of SDs", "exp",
       "Ratio of standard deviations (log scale)", "Log variability ratio", _R),
    _m("RPB", _CONT2, "continuous2", "point-biserial correlation",
       "Jacobs & Viechtbauer (2017) Res Synth Methods 8:161",
       label="Point-biserial correlation", vtypes=("LS", "ST", "CS")),
    _m("RBIS", _CONT2, "continuous2", "biserial correlation",
       "Jacobs & Viechtbauer (2017) Res Synth Methods 8:161", label="Biserial correlation"),
    _m("D2ORN", _CONT2, "continuous2", "SMD to log odds ratio, normal (Cox) factor 1.65",
       "Cox (1970); Sanchez-Meca et al. (2003) Psychol Methods 8:448", "odds ratio", "exp",
       "Odds ratio (log scale)", "Log odds ratio", _R),
    _m("D2ORL", _CONT2, "continuous2", "SMD to log odds ratio, logistic factor pi/sqrt(3)",
       "Hasselblad & Hedges (1995) Psychol Bull 117:167", "odds ratio", "exp",
       "Odds ratio (log scale)", "Log odds ratio", _R),
    # correlations
    _m("COR", ("r", "n"), "correlation", "raw correlation coefficient",
       "Olkin & Pratt (1958) Ann Math Stat 29:201", label="Correlation", vtypes=("LS", "AV")),
    _m("UCOR", ("r", "n"), "correlation", "unbiased correlation coefficient",
       "Olkin & Pratt (1958) Ann Math Stat 29:201", label="Correlation",
       vtypes=("LS", "UB", "AV")),
    _m("ZCOR", ("r", "n"), "correlation", "Fisher's r-to-z transformed correlation",
       "Fisher (1921) Metron 1:3", "correlation", "transf.ztor", "Correlation",
       "Fisher's z"),
    _m("PCOR", ("t", "n", "predictors"), "correlation", "partial correlation",
       "Aloe & Becker (2012) J Educ Behav Stat 37:278", label="Partial correlation",
       vtypes=("LS", "AV")),
    _m("ZPCOR", ("t", "n", "predictors"), "correlation",
       "r-to-z transformed partial correlation", "Aloe & Becker (2012) J Educ Behav Stat 37:278",
       "partial correlation", "transf.ztor", "Partial correlation", "Fisher's z (partial)"),
    _m("SPCOR", ("t", "n", "predictors", "r2"), "correlation", "semi-partial correlation",
       "Aloe & Becker (2012) J Educ Behav Stat 37:278", label="Semi-partial correlation",
       vtypes=("LS", "AV")),
    # reliability
    _m("ARAW", ("alpha", "items", "n"), "alpha", "raw Cronbach's alpha",
       "Feldt (1965) Psychometrika 30:357", label="Cronbach's alpha"),
    _m("AHW", ("alpha", "items", "n"), "alpha",
       "transformed Cronbach's alpha, 1 - (1 - alpha)^(1/3)",
       "Hakstian & Whalen (1976) Psychometrika 41:219", "Cronbach's alpha", "transf.iahw",
       "Cronbach's alpha", "Transformed alpha (Hakstian-Whalen)"),
    _m("ABT", ("alpha", "items", "n"), "alpha", "transformed Cronbach's alpha, -log(1 - alpha)",
       "Bonett (2002) J Educ Behav Stat 27:335", "Cronbach's alpha", "transf.iabt",
       "Cronbach's alpha", "Transformed alpha (Bonett)"),
    # genetics
    _m("REH", ("homozygous1", "heterozygous", "homozygous2"), "genetics",
       "log relative excess heterozygosity",
       "Ziegler et al. (2011) Breast Cancer Res Treat 128:197", "relative excess heterozygosity",
       "exp", "Relative excess heterozygosity (log scale)", "Log relative excess heterozygosity",
       _R),
    # given effect sizes
    _m("GEN", ("yi", "vi"), "generic", "effect sizes given with their variances", _V),
)

REGISTRY: dict[str, Measure] = {m.code: m for m in _ENTRIES}
assert len(REGISTRY) == len(_ENTRIES)


def normalise_code(code: str) -> str:
    """The registry spelling of a measure code (codes are case-insensitive)."""
    if not isinstance(code, str):
        raise TypeError(f"measure must be a string, got {type(code).__name__}")
    return code.upper()


def get_measure(code: str) -> Measure:
    """The registry entry of ``code`` (case-insensitive); ValueError if unknown.

    Parameters
    ----------
    code : str
        A measure code, e.g. "PLO", "rr", "SMD".

    Returns
    -------
    Measure
        The code's ``roles`` (the data it needs), ``family``, ``natural_scale``,
        ``back_transform``, axis labels, default continuity correction, variance types and the
        formula's ``reference``.

    References
    ----------
    Viechtbauer W (2010). J Stat Softw 36(3):1-48 (escalc's measures).

    Examples
    --------
    >>> import metamsc as mm
    >>> m = mm.get_measure("plo")
    >>> m.code, m.roles, m.natural_scale, m.back_transform
    ('PLO', ('events', 'total'), 'proportion', 'transf.ilogit')
    """
    try:
        return REGISTRY[normalise_code(code)]
    except KeyError:
        raise ValueError(f"unknown measure {code!r}; expected one of {', '.join(REGISTRY)}") from None


def measure_codes(family: str | None = None) -> tuple[str, ...]:
    """All codes, or those of one family (e.g. ``"proportion"``), in registry order."""
    return tuple(c for c, m in REGISTRY.items() if family is None or m.family == family)


#: continuity-correction rules (escalc's ``to``): the studies that get ``add``
CORRECTION_RULES = ("only0", "all", "if0all", "none")


def correction_mask(to: str, zero):
    """Which studies get the continuity correction under rule ``to`` (a boolean array), given
    which have a zero cell: "only0" those, "if0all" all if any has one, "all" all, "none" none
    (Viechtbauer 2010, escalc's ``to``)."""
    import numpy as np

    zero = np.asarray(zero, dtype=bool)
    if to not in CORRECTION_RULES:
        raise ValueError(f"unknown continuity-correction rule to={to!r}; expected one of "
                         f"{', '.join(CORRECTION_RULES)}")
    if to == "all":
        return np.ones_like(zero)
    if to == "only0":
        return zero.copy()
    if to == "if0all":
        return np.full_like(zero, bool(zero.any()))
    return np.zeros_like(zero)
