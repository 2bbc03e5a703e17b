"""Back-transformations from an analysis scale to the natural scale.

Every function is elementwise on numpy arrays and mirrors the definitions in
Viechtbauer W. (2010) J Stat Softw 36(3) (metafor's ``transf.*`` family):

- logit / inverse logit for PLO,
- arcsine square root (PAS): p = sin(x)^2 (Rao 1973),
- Freeman-Tukey double arcsine (PFT), inverted with Miller's formula
  (Miller JJ. Am Stat 1978;32:138) using either each study's own n or the
  harmonic mean of the study sizes for a pooled value,
- exp for log scales (PLN, IRLN, RR, OR, ROM, MNLN).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "logit",
    "ilogit",
    "arcsine",
    "iarcsine",
    "pft",
    "ipft",
    "ipft_hm",
    "harmonic_mean",
    "irft",
    "back_transform",
    "transf",
    "TRANSFORMS",
]


def logit(p: ArrayLike) -> np.ndarray:
    """log(p / (1 - p))."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def ilogit(x: ArrayLike) -> np.ndarray:
    """Inverse logit 1 / (1 + exp(-x)), computed without overflow."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def arcsine(p: ArrayLike) -> np.ndarray:
    """Arcsine square-root transform asin(sqrt(p))."""
    return np.arcsin(np.sqrt(np.asarray(p, dtype=float)))


def iarcsine(x: ArrayLike) -> np.ndarray:
    """Inverse of the arcsine square-root transform, clamped to [0, 1]."""
    x = np.asarray(x, dtype=float)
    out = np.sin(x) ** 2
    out = np.where(x < 0, 0.0, out)
    return np.where(x > np.arcsin(1.0), 1.0, out)


def pft(p: ArrayLike, n: ArrayLike) -> np.ndarray:
    """Freeman-Tukey double arcsine of a proportion p = x/n (Freeman & Tukey 1950)."""
    n = np.asarray(n, dtype=float)
    x = np.asarray(p, dtype=float) * n
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))


def ipft(t: ArrayLike, n: ArrayLike) -> np.ndarray:
    """Miller's (1978) inverse of the Freeman-Tukey double arcsine for sample size n.

    p = 1/2 [1 - sgn(cos 2t) sqrt(1 - (sin 2t + (sin 2t - 1/sin 2t)/n)^2)],
    set to 0 below the transform of p = 0 and to 1 above that of p = 1.
    """
    t, n = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(n, dtype=float))
    # outside [pft(0), pft(1)] the formula may overflow; those values are set to 0 or 1 below
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = np.sin(2 * t)
        inner = 1 - (s + (s - 1 / s) / n) ** 2
        p = 0.5 * (1 - np.sign(np.cos(2 * t)) * np.sqrt(inner))
    p = np.where(np.isnan(p), np.nan, p)
    p = np.where(t > pft(1.0, n), 1.0, p)
    p = np.where(t < pft(0.0, n), 0.0, p)
    return p


def harmonic_mean(n: ArrayLike) -> float:
    """Harmonic mean 1 / mean(1/n) of the study sizes."""
    n = np.asarray(n, dtype=float)
    return float(1.0 / np.mean(1.0 / n))


def ipft_hm(t: ArrayLike, n: ArrayLike) -> np.ndarray:
    """Inverse Freeman-Tukey with the harmonic mean of the study sizes (Miller 1978)."""
    return ipft(t, harmonic_mean(n))


def irft(t: ArrayLike, time: ArrayLike) -> np.ndarray:
    """Inverse of the Freeman-Tukey transform of a rate, t = (sqrt(r) + sqrt(r + 1/T)) / 2.

    Solving for r gives r = (t - 1/(4 t T))^2, and r = 0 below t = 1/(2 sqrt(T)).
    """
    t, time = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(time, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (t - 1 / (4 * t * time)) ** 2
    return np.where(t < 1 / (2 * np.sqrt(time)), 0.0, r)


def _normal_mean(f, x: np.ndarray, tau2: float, lower=None, upper=None) -> np.ndarray:
    """E f(Z) for Z ~ N(x, tau2), integrated over x -/+ 10 tau (metafor's ``transf.*.int``)."""
    x = np.asarray(x, dtype=float)
    if tau2 < 0:
        raise ValueError(f"targs 'tau2' must be >= 0, got {tau2:g}")
    if tau2 == 0:
        return f(x)
    from scipy.integrate import quad

    sd = np.sqrt(tau2)
    out = np.full(x.shape, np.nan)
    for i, xi in np.ndenumerate(x):
        if np.isnan(xi):
            continue
        lo = xi - 10 * sd if lower is None else lower
        hi = xi + 10 * sd if upper is None else upper
        dens = lambda z, m=xi: f(np.asarray(z)) * np.exp(-0.5 * ((z - m) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))  # noqa: E731
        out[i] = quad(dens, lo, hi)[0]
    return out


def _iahw(x):
    x = np.asarray(x, dtype=float)
    return np.where(x > 1, 1.0, np.where(x < 0, 0.0, 1 - (1 - x) ** 3))


def _iabt(x):
    x = np.asarray(x, dtype=float)
    return np.where(x < 0, 0.0, -np.expm1(-x))


def _isqrt(x):
    x = np.asarray(x, dtype=float)
    return np.where(x < 0, 0.0, x * x)


def _iirft(x, ti):
    x, ti = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(ti, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (1 / ti - 8 * x**2 + 16 * ti * x**4) / (16 * x**2 * ti)
    z = np.where(x < 1 / (2 * np.sqrt(ti)), 0.0, z)
    return np.where(z <= np.finfo(float).eps, 0.0, z)


def _dtorpb(x, n1i=None, n2i=None):
    x = np.asarray(x, dtype=float)
    if n1i is None or n2i is None:
        h = 4.0
    else:
        n1, n2 = np.asarray(n1i, dtype=float), np.asarray(n2i, dtype=float)
        m = n1 + n2 - 2
        h = m / n1 + m / n2
    return x / np.sqrt(x**2 + h)


def _dtou1(x):
    u2 = _norm_cdf(np.abs(np.asarray(x, dtype=float)) / 2)
    return (2 * u2 - 1) / u2


def _norm_cdf(x):
    from scipy.special import ndtr

    return ndtr(np.asarray(x, dtype=float))


def _logortord(x, pc):
    e = np.exp(np.asarray(x, dtype=float))
    return e * pc / (1 - pc + pc * e) - pc


def _logortorr(x, pc):
    e = np.exp(np.asarray(x, dtype=float))
    return e / (pc * (e - 1) + 1)


#: metafor's ``transf.*`` functions by name: name -> (function, the arguments it takes, its
#: description as results and reports print it).
#: Every function is elementwise; see :func:`transf`.
TRANSFORMS: dict[str, tuple] = {
    "identity": (lambda x: np.array(x, dtype=float), (), "identity"),
    "exp": (lambda x: np.exp(np.asarray(x, dtype=float)), (), "exp"),
    "transf.exp.int": (lambda x, tau2, lower=None, upper=None: _normal_mean(np.exp, x, tau2, lower, upper),
                       ("tau2", "lower", "upper"), "E exp(Z), Z ~ N(x, tau2)"),
    "transf.logit": (logit, (), "log(x / (1 - x))"),
    "transf.ilogit": (ilogit, (), "inverse logit"),
    "transf.ilogit.int": (lambda x, tau2, lower=None, upper=None: _normal_mean(ilogit, x, tau2, lower, upper),
                          ("tau2", "lower", "upper"), "E ilogit(Z), Z ~ N(x, tau2)"),
    "transf.arcsin": (arcsine, (), "asin(sqrt(x))"),
    "transf.iarcsin": (iarcsine, (), "inverse arcsine: sin(x)^2"),
    "transf.pft": (lambda x, ni: pft(x, ni), ("ni",), "Freeman-Tukey double arcsine of x = p"),
    "transf.ipft": (lambda x, ni: ipft(x, ni), ("ni",), "Miller's (1978) inverse, each study's ni"),
    "transf.ipft.hm": (lambda x, ni: ipft_hm(x, ni), ("ni",),
                       "Miller's (1978) inverse with the harmonic mean of ni"),
    "transf.irft": (lambda x, ti: 0.5 * (np.sqrt(np.asarray(x, float)) + np.sqrt(np.asarray(x, float) + 1 / np.asarray(ti, float))),
                    ("ti",), "Freeman-Tukey transform of a rate"),
    "transf.iirft": (_iirft, ("ti",), "inverse Freeman-Tukey transform of a rate"),
    "transf.isqrt": (_isqrt, (), "square"),
    "transf.rtoz": (lambda x: np.arctanh(np.asarray(x, dtype=float)), (), "Fisher's r-to-z, atanh(x)"),
    "transf.ztor": (lambda x: np.tanh(np.asarray(x, dtype=float)), (), "Fisher's z-to-r, tanh(x)"),
    "transf.ztor.int": (lambda x, tau2, lower=None, upper=None: _normal_mean(np.tanh, x, tau2, lower, upper),
                        ("tau2", "lower", "upper"), "E tanh(Z), Z ~ N(x, tau2)"),
    "transf.ahw": (lambda x: 1 - (1 - np.asarray(x, dtype=float)) ** (1 / 3), (),
                   "Hakstian-Whalen transform of alpha"),
    "transf.iahw": (_iahw, (), "inverse Hakstian-Whalen transform, clamped to [0, 1]"),
    "transf.abt": (lambda x: -np.log1p(-np.asarray(x, dtype=float)), (), "Bonett transform of alpha"),
    "transf.iabt": (_iabt, (), "inverse Bonett transform, 0 below 0"),
    "transf.dtorpb": (_dtorpb, ("n1i", "n2i"), "SMD to point-biserial correlation"),
    "transf.dtobesd": (lambda x: 0.5 + _dtorpb(x) / 2, (), "SMD to binomial effect-size display"),
    "transf.dtocles": (lambda x: _norm_cdf(np.asarray(x, dtype=float) / np.sqrt(2)), (),
                       "SMD to common-language effect size"),
    "transf.dtomd": (lambda x, sd: np.asarray(x, dtype=float) * sd, ("sd",), "SMD times an SD"),
    "transf.dtou1": (_dtou1, (), "SMD to Cohen's U1"),
    "transf.dtou2": (lambda x: _norm_cdf(np.asarray(x, dtype=float) / 2), (), "SMD to Cohen's U2"),
    "transf.dtou3": (_norm_cdf, (), "SMD to Cohen's U3"),
    "transf.logortord": (_logortord, ("pc",), "log OR to risk difference at control risk pc"),
    "transf.logortorr": (_logortorr, ("pc",), "log OR to risk ratio at control risk pc"),
}


def transf(name: str, x: ArrayLike, **targs) -> np.ndarray:
    """Apply metafor's ``transf.<name>`` (or ``"exp"``/``"identity"``) to ``x``.

    ``name`` may omit the ``transf.`` prefix and is case-insensitive; ``targs``
    are its extra arguments (``ni`` for the Freeman-Tukey inverses, ``ti`` for
    rates, ``tau2`` for the ``.int`` integrals over N(x, tau2), ``pc``, ...).
    Definitions: Viechtbauer (2010) J Stat Softw 36(3) and the measures' papers.

    Parameters
    ----------
    name : str
        The transform, e.g. "ilogit", "ipft.hm", "exp", "iarcsin", "ztor".
    x : array_like
        Values to transform.
    **targs
        Extra arguments of the transform (``ni``, ``ti``, ``tau2``, ...).

    Returns
    -------
    numpy.ndarray
        The transformed values.

    References
    ----------
    Viechtbauer W (2010). J Stat Softw 36(3):1-48. Miller JJ (1978). The inverse of the
    Freeman-Tukey double arcsine transformation. Am Stat 32:138.

    Examples
    --------
    >>> import metamsc as mm
    >>> mm.transf("ilogit", [0.0, 1.0]).round(4)
    array([0.5   , 0.7311])
    >>> mm.transf("ipft.hm", [0.5], ni=[10, 20]).round(4)
    array([0.2106])
    """
    key = name.lower()
    if key not in TRANSFORMS and f"transf.{key}" in TRANSFORMS:
        key = f"transf.{key}"
    if key not in TRANSFORMS:
        raise ValueError(f"unknown transformation {name!r}; expected one of {', '.join(TRANSFORMS)}")
    fn, args, _ = TRANSFORMS[key]
    unknown = set(targs) - set(args)
    if unknown:
        raise ValueError(f"transformation {key!r} takes {', '.join(args) or 'no arguments'}; "
                         f"got {', '.join(sorted(unknown))}")
    return np.asarray(fn(np.asarray(x, dtype=float), **targs), dtype=float)


def back_transform(measure: str, x: ArrayLike, n: ArrayLike | None = None, *,
                   harmonic: bool = True) -> np.ndarray | None:
    """Map values on the analysis scale of ``measure`` to the natural scale.

    Uses the measure registry's back-transformation. Returns None for measures
    with no natural scale other than their own (MD, SMD, RD, ...). For PFT,
    ``n`` (the study sizes) is required: with ``harmonic=True`` Miller's
    harmonic-mean inverse is used (pooled values, metafor's
    ``transf.ipft.hm``); otherwise ``n`` is elementwise (``transf.ipft``).
    """
    from .measures import get_measure

    name = get_measure(measure).back_transform
    x = np.asarray(x, dtype=float)
    if name is None:
        return None
    if name == "transf.ipft.hm":
        if n is None:
            raise ValueError("the Freeman-Tukey back-transform needs the study sizes n")
        return ipft_hm(x, n) if harmonic else ipft(x, n)
    return transf(name, x)
