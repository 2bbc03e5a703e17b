"""Between-study variance (tau^2) estimators of the mixed-effects model y = X beta + u + e.

One implementation for every design matrix X (k x p; the intercept-only model of ``pool`` is
X = 1): u_i ~ N(0, tau^2), e_i ~ N(0, v_i), w_i = 1/(v_i + tau^2) and the residual projection
P = W - W X (X'WX)^-1 X'W. P is never formed: its quadratic forms are weighted residual sums of
squares and its traces are sums over the studies minus traces of p x p matrices (see
:class:`Projection`), so an estimate costs O(k p^2) time and O(k p) memory.

References: DerSimonian & Laird (1986) Control Clin Trials 7:177 (DL); Hedges & Olkin (1985)
(HE); Hunter & Schmidt (2004) (HS, HSk); Sidik & Jonkman (2005) Stat Med 24:3049 (SJ); Paule &
Mandel (1982) J Res NBS 87:377 (PM) and its median-unbiased form (PMM, Viechtbauer 2021); Morris
(1983) JASA 78:47 (EB); DerSimonian & Kacker (2007) Contemp Clin Trials 28:105 (GENQ);
Viechtbauer (2005) J Educ Behav Stat 30:261 (ML, REML, Fisher scoring and the standard errors,
for the meta-regression as well); Viechtbauer (2007) Stat Med 26:37 (Q-profile interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._dist import chi2_isf, chi2_ppf
from ._util import frozen_instance
from .powersums import (NEGLIGIBLE_STEP, NEWTON_FROM, InterceptSums, intercept_trpp, ones,
                        row_sum, scoring_adjustment)
from .results import USER_WEIGHTED

__all__ = ["TAU2_METHODS", "METHOD_ALIASES", "POSITIVE_VI_ONLY", "USER_WEIGHTED", "Tau2Fit",
           "Projection",
           "estimate_tau2", "fit_tau2", "scoring_fallback", "q_statistic", "q_profile_ci",
           "canonical_method", "loglik", "brent_root",
           "design_or_none", "row_sum", "cross_weighted", "inv_spd"]

TAU2_METHODS = ("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ",
                "GENQM")
#: other names of the common-effect model
METHOD_ALIASES = {"FE": "EE", "CE": "EE"}
_BY_UPPER = {m.upper(): m for m in TAU2_METHODS} | METHOD_ALIASES
#: estimators that need every sampling variance positive (as metafor)
POSITIVE_VI_ONLY = ("DL", "HS", "HSk", "PM", "PMM")


def canonical_method(method: str) -> str:
    """The tau^2 method's canonical spelling (case-insensitive; FE and CE mean EE)."""
    m = _BY_UPPER.get(str(method).upper())
    if m is None:
        raise ValueError(f"unknown method {method!r} (tau^2 estimator); expected one of "
                         f"{', '.join(TAU2_METHODS + tuple(METHOD_ALIASES))}")
    return m


@dataclass(frozen=True)
class Tau2Fit:
    """An estimate of tau^2 with its standard error and how it was obtained."""

    method: str
    tau2: float
    se: float
    converged: bool
    iterations: int
    at_boundary: bool
    algorithm: str
    message: str = ""


_LOG_2PI = math.log(2 * math.pi)
_NEWTON_NOTE = f" to a change below {NEWTON_FROM:g}, then Newton steps"


def _dot(x: np.ndarray, z: np.ndarray):
    return float(x @ z) if x.ndim == 1 else row_sum(x * z)


def cross_weighted(X: np.ndarray, c: np.ndarray) -> np.ndarray:
    """X' diag(c) X (p x p) in O(k p^2)."""
    return (X.T * c) @ X


def inv_spd(A: np.ndarray) -> np.ndarray:
    """Inverse of a small symmetric positive-definite matrix; a clear error when singular."""
    if A.shape == (1, 1):
        if not A[0, 0] > 0 or not np.isfinite(A[0, 0]):
            raise ValueError("the weighted model matrix X'WX is singular or not finite")
        return 1.0 / A
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        raise ValueError("the model matrix is not of full rank (X'WX is singular)") from None
    Li = np.linalg.inv(L)
    return Li.T @ Li


class Projection:
    """P = D - D X (X'DX)^-1 X'D for diagonal weights ``a`` (D = diag(a)), never formed.

    With M = (X'DX)^-1 and S(c) = X' diag(c) X:
    y'Py = sum a (y - X b)^2, b = M X'D y;  tr(P C) = sum a c - tr(M S(a^2 c));
    tr(P C P E) = sum a^2 c e - 2 tr(M S(a^3 c e)) + tr(M S(a^2 c) M S(a^2 e))
    for diagonal C, E (vectors c, e; 1 when omitted). For X = 1 (intercept only) ``a`` may be
    a 2-D array of weights (one row per meta-analysis): every method then works row-wise.
    For X = 1 and one meta-analysis the sums are Python floats, sum a^2 is kept once computed,
    and M is formed only when asked for (the small-k path: few numpy calls per step).
    """

    __slots__ = ("a", "X", "_M", "_one", "_vec", "_sa", "_s2")

    def __init__(self, a: np.ndarray, X: np.ndarray | None):
        self.a = a
        self.X = X
        self._one = X is None
        self._vec = self._one and a.ndim == 1
        self._s2 = None
        self._M = None
        if self._one:
            self._sa = row_sum(a)
        else:
            self._sa = None
            self._M = inv_spd(cross_weighted(X, a))

    @property
    def M(self) -> np.ndarray:
        """(X'DX)^-1 (p x p; for X = 1 and 2-D weights, one 1 x 1 matrix per row)."""
        if self._M is None:
            self._M = (1.0 / self._sa)[..., None, None] if not self._vec else np.array([[1.0 / self._sa]])
        return self._M

    def _sum_a2(self) -> float:
        """sum a^2 (X = 1, one meta-analysis), computed once."""
        if self._s2 is None:
            self._s2 = float(self.a @ self.a)
        return self._s2

    def coef(self, y: np.ndarray) -> np.ndarray:
        if self._one:
            if self._vec:
                return np.array([float(self.a @ y) / self._sa])
            return (row_sum(self.a * y) / self._sa)[..., None]
        return self.M @ (self.X.T @ (self.a * y))

    def fitted(self, y: np.ndarray) -> np.ndarray:
        """X b (for X = 1: the weighted mean, shaped to broadcast against y)."""
        if self._one:
            return float(self.a @ y) / self._sa if self._vec else self.coef(y)
        return self.X @ self.coef(y)

    def py(self, y: np.ndarray) -> np.ndarray:
        """P y = a (y - X b)."""
        return self.a * (y - self.fitted(y))

    def quad(self, y: np.ndarray):
        """y'Py, the weighted residual sum of squares."""
        r = y - self.fitted(y)
        if self.a.ndim == 1:
            return float((self.a * r) @ r)
        return row_sum(self.a * r * r)

    def tr(self, c: np.ndarray | None = None):
        """tr(P C)."""
        a = self.a
        if self._vec and c is None:
            return self._sa - self._sum_a2() / self._sa
        if self._one and c is None:
            return self._sa - _dot(a, a) / self._sa
        ac = a if c is None else a * c
        if self._one:
            return self._out(row_sum(ac) - _dot(a, ac) / self._sa)
        return float(np.sum(ac) - np.sum(self.M * cross_weighted(self.X, a * ac)))

    @staticmethod
    def _out(x):
        return x if isinstance(x, (float, np.ndarray)) and not isinstance(x, np.float64) else float(x)

    def tr2(self, c: np.ndarray | None = None, e: np.ndarray | None = None):
        """tr(P C P E); tr(PP) = sum(P * P), tr(PVPV) = sum(PV * (PV)'), tr(PPV) = sum(PV * P)."""
        a = self.a
        if self._vec and c is None and e is None:
            return intercept_trpp(self._sa, self._sum_a2(), float((a * a) @ a))
        a2 = a * a
        if self._one and c is None and e is None:
            sa, s2 = self._sa, _dot(a, a)
            return self._out(s2 - 2 * _dot(a2, a) / sa + s2 * s2 / sa**2)
        a2c = a2 if c is None else a2 * c
        a2e = a2 if e is None else a2 * e
        a2ce = a2c if e is None else a2c * e
        if self._one:
            sa = self._sa
            return self._out(row_sum(a2ce) - 2 * _dot(a, a2ce) / sa + row_sum(a2c) * row_sum(a2e) / sa**2)
        mc = self.M @ cross_weighted(self.X, a2c)
        me = mc if c is e else self.M @ cross_weighted(self.X, a2e)
        return float(np.sum(a2ce) - 2 * np.sum(self.M * cross_weighted(self.X, a * a2ce)) + np.sum(mc * me.T))

    def logdet(self):
        """log |X'DX|."""
        if self._one:
            return self._out(np.log(self._sa))
        return float(-np.linalg.slogdet(self.M)[1])


def design_or_none(X, k: int) -> np.ndarray | None:
    """The design matrix, or None for the intercept-only model (the fast path of Projection)."""
    if X is None:
        return None
    X = np.asarray(X, dtype=float).reshape(k, -1)
    return None if X.shape[1] == 1 and bool(np.all(X == 1.0)) else X


def _p(X) -> int:
    return 1 if X is None else X.shape[1]


def _weights(v: np.ndarray, tau2: float) -> np.ndarray:
    s = v + tau2
    if tau2 <= 0 and (s <= 0).any():
        raise ValueError("division by zero in the weights 1/(vi + tau^2): a sampling variance "
                         "vi = 0 with tau^2 = 0 (metafor stops as well); use a method that "
                         "estimates tau^2 > 0 or fix tau2=")
    return 1.0 / s


def q_statistic(yi, vi, tau2: float = 0.0, X=None) -> float:
    """Generalised Q(tau^2) = y'P y with weights 1/(v_i + tau^2) (Cochran's Q at tau^2 = 0)."""
    y = np.asarray(yi, dtype=float)
    return Projection(_weights(np.asarray(vi, dtype=float), tau2), design_or_none(X, y.size)).quad(y)


def loglik(y: np.ndarray, v: np.ndarray, X: np.ndarray, tau2: float, reml: bool,
           pr: Projection | None = None, sums: InterceptSums | None = None) -> float:
    """(Restricted) log-likelihood of the model at ``tau2`` (X None: intercept only; without metafor's log|X'X|/2 term,
    which does not depend on tau^2); ``pr``: the Projection with weights 1/(v + tau2), if made;
    ``sums``: for X None, the :class:`~metamsc.powersums.InterceptSums` of y and v (the sums
    are then read there)."""
    k, p = y.size, _p(X)
    if sums is not None and pr is None:
        if tau2 <= 0 and not sums.v_min > 0:
            _weights(v, tau2)  # raises for a zero sampling variance at tau^2 = 0
        m = sums.moments(tau2)
        sw, quad = m[0], m[4]
        slw, logdet = -sums.log_sum(tau2), math.log(sw)
    else:
        if pr is None:
            pr = Projection(_weights(v, tau2), X)
        slw, quad = row_sum(np.log(pr.a)), pr.quad(y)
        logdet = pr.logdet() if reml else 0.0
    ll = -0.5 * (k - p if reml else k) * _LOG_2PI + 0.5 * slw - 0.5 * quad
    if reml:
        ll -= 0.5 * logdet
    return float(ll)


def _score(y, v, X, tau2, kind) -> float:
    """Estimating function of ML, REML or EB whose root on [0, inf) is the estimate."""
    w = _weights(v, tau2)
    pr = Projection(w, X)
    k, p = y.size, _p(X)
    if kind == "EB":
        return pr.quad(y) * k / (k - p) - k
    py = pr.py(y)
    return float(py @ py) - (row_sum(w) if kind == "ML" else pr.tr())


def _upper_bracket(f, start: float) -> float | None:
    """The first hi = 4^j max(start, 1) (j < 200) with f(hi) <= 0; None when there is none."""
    hi = max(start, 1.0)
    for _ in range(200):
        if f(hi) <= 0:
            return hi
        hi *= 4
    return None


def brent_root(f, a: float, b: float) -> float:
    """The root of f in [a, b] (a sign change) by Brent's method, to machine precision (the
    tolerances of every root of the tau^2 estimators and intervals). scipy.optimize is imported
    on first use (it is slow to import)."""
    from scipy.optimize import brentq

    return float(brentq(f, a, b, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=1000))


def _root_on_halfline(f, start: float) -> float | None:
    """Root of a function decreasing through 0 on (0, inf), with f(0) > 0: the upper end of the
    bracket grows by 4x from ``start`` until f <= 0, then Brent's method. None: no bracket."""
    hi = _upper_bracket(f, start)
    return None if hi is None else brent_root(f, 0.0, hi)


def scoring_fallback(ymc: np.ndarray, v: np.ndarray, X, method: str) -> tuple[float, str]:
    """The ML, REML or EB estimate when Fisher scoring has not converged: (estimate, how).

    The estimating function f (the score of :func:`_score`) is scanned on [0, hi] (0 and 64
    geometric points up to the first hi = 4^j (var(y) + max(v)) where f <= 0) and each downward
    crossing (f > 0 to f <= 0, a local maximum of the likelihood) is refined by Brent's method.
    ML and REML take the crossing of highest likelihood, or 0 (f <= 0 at 0, or a higher likelihood
    there); EB, whose function decreases, its one root. NaN when f stays > 0 (no upper bracket)."""

    def f(t: float) -> float:
        return _score(ymc, v, X, t, method)

    hi = _upper_bracket(f, float(np.var(ymc)) + float(np.max(v)))
    if hi is None:
        return float("nan"), "no upper bracket"
    grid = np.concatenate(([0.0], np.geomspace(hi * 1e-8, hi, 64)))
    vals = [f(t) for t in grid]
    roots = [brent_root(f, a, b)
             for a, b, fa, fb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:]) if fa > 0 >= fb]
    if not roots:
        return 0.0, "bracketed root (boundary at 0)"
    if len(roots) == 1 or method == "EB":
        return roots[0], "bracketed root"
    reml = method == "REML"
    best = max(roots, key=lambda t: loglik(ymc, v, X, t, reml))
    return best, f"bracketed root (the highest of {len(roots)} local maxima)"


def _score_parts(y, v, X, tau2, kind, sums) -> dict[str, float]:
    """The parts of the estimating equation of ``kind`` at ``tau2`` that
    :func:`scoring_adjustment` reads, y'PPPy included (the Newton step): from the power sums of
    ``sums`` for X = 1, else from the Projection."""
    if sums is not None:
        sw, s2, s3, pyy, quad, _, pppy = sums.moments(tau2)
        if kind == "REML":
            return {"pyy": pyy, "trp": sw - s2 / sw, "trpp": intercept_trpp(sw, s2, s3),
                    "pppy": pppy}
        return {"sw": sw, "s2": s2, "pyy": pyy, "quad": quad, "pppy": pppy}
    w = 1.0 / (v + tau2)
    pr = Projection(w, X)
    parts = {"sw": row_sum(w)}
    if kind == "EB":
        parts["quad"] = pr.quad(y)
    elif kind == "ML":
        parts["s2"] = _dot(w, w)
    else:
        parts.update(trp=pr.tr(), trpp=pr.tr2())
    py = pr.py(y)
    parts["pyy"] = float(py @ py)
    parts["pppy"] = pr.quad(py)  # y'PPPy = (Py)'P(Py)
    return parts


def _kept_nonnegative(adj: float, tau2: float) -> float:
    """A step from ``tau2`` as metafor takes it: none when not finite or when it would leave 0
    downwards, else halved until tau^2 stays >= 0."""
    if 0.0 <= tau2 + adj < math.inf:  # the usual case (false for a NaN or infinite step)
        return adj
    if not math.isfinite(adj) or (tau2 == 0 and adj < 0):
        return 0.0
    while tau2 + adj < 0:
        adj /= 2
    return adj


def _fisher_scoring(y, v, X, tau2, kind, threshold, maxiter, sums=None):
    """Fisher scoring for ML, REML and EB (Viechtbauer 2005) from ``tau2``, with step halving at
    0, until tau^2 changes by less than ``threshold`` (as metafor). From the first Fisher step
    that would change tau^2 by less than ``NEWTON_FROM`` (metafor's default threshold, so whether
    and where scoring gets there is metafor's) on, Newton steps on the same estimating equation
    are taken instead (:func:`scoring_adjustment`; the same sums give both steps). A last Newton
    step below ``threshold`` that would change only tau^2's last digits (``NEGLIGIBLE_STEP``, as
    a share of tau^2) is not taken: the sums at tau^2 then serve the fit. For X = 1
    (one meta-analysis) each step reads the power sums of ``sums`` (an
    :class:`~metamsc.powersums.InterceptSums`); otherwise the Projection's traces and quadratic
    forms. Returns (tau2, iterations, converged, Newton steps)."""
    k, p = y.size, _p(X)
    it = newton = 0
    switch = max(threshold, NEWTON_FROM)
    if sums is None and X is None and v.ndim == 1:
        sums = InterceptSums(y, v)
    zero_ok = sums is not None and sums.v_min > 0  # no zero sampling variance
    while True:
        it += 1
        if tau2 <= 0 and not zero_ok:
            _weights(v, tau2)  # raises for a zero sampling variance at tau^2 = 0
        parts = _score_parts(y, v, X, tau2, kind, sums)
        if not newton:
            new = float(tau2 + _kept_nonnegative(scoring_adjustment(kind, k, p, parts), tau2))
            step = abs(new - tau2)
        if newton or threshold < step < switch:
            newton += 1
            new = float(tau2 + _kept_nonnegative(
                scoring_adjustment(kind, k, p, parts, newton=True), tau2))
            step = abs(new - tau2)
            if step <= threshold and step <= NEGLIGIBLE_STEP * tau2:
                return tau2, it, True, newton  # the step would change the last digits only
        tau2 = new
        if not step > threshold:  # (a NaN step ends it too; the caller checks tau^2)
            return tau2, it, True, newton
        if it >= maxiter:
            return tau2, it, False, newton


def _hedges_olkin(ymc: np.ndarray, v: np.ndarray, X, y3: np.ndarray | None = None) -> float:
    """The HE (Hedges-Olkin) estimate (y'Py - tr(PV)) / (k - p) with unit weights (Hedges & Olkin
    1985), not truncated at 0; for X = 1 from the sums of ``y3`` = [1, y, y^2] when given (the
    start of Fisher scoring: no Projection to build)."""
    k = ymc.size
    if y3 is None:
        pr = Projection(np.ones(k), X)
        return (pr.quad(ymc) - pr.tr(v)) / (k - _p(X))
    _, sy, syy = np.dot(y3, ones(k)).tolist()
    return (syy - sy * sy / k) / (k - 1) - row_sum(v) / k


def _genqm(ymc: np.ndarray, v: np.ndarray, a: np.ndarray, X, tau2: float | None):
    """The median-unbiased generalised Q estimate (metafor's GENQM; Jackson 2013, Res Synth
    Methods 4:220): the tau^2 at which P(Q_a > q_obs | tau^2) = 1/2 for the weighted
    Q_a = sum a_i (y_i - mu_a)^2, 0 when that tail already exceeds 1/2 at tau^2 = 0.
    Returns (estimate or None without an upper bracket, algorithm)."""
    if X is not None:
        raise ValueError("method GENQM is available for the model without moderators only (the "
                         "distribution of Q_a under a design matrix needs a dense eigen-decomposition)")
    algorithm = "Brent root of P(Q_a > q | tau^2) = 1/2 (median-unbiased generalised Q)"
    if tau2 is not None:
        return tau2, algorithm
    from .hetci import genq_tail  # same layer; hetci imports this module at its top

    def f(t: float) -> float:
        return 0.5 - genq_tail(ymc, v, a, t)

    if f(0.0) <= 0:
        return 0.0, algorithm
    return _root_on_halfline(f, float(np.var(ymc)) + float(np.max(v))), algorithm


def _se_tau2(method, v, X, tau2, pr_dl=None, tau2_0=None, a=None, pr_hat=None,
             sums=None) -> float:
    """Standard errors of tau^2 (Viechtbauer 2005; the meta-regression forms of metafor)."""
    if method == "REML" and pr_hat is None and sums is not None and tau2 > 0:
        return math.sqrt(2 / intercept_trpp(*sums.moments(tau2)[:3]))  # tr(PP) from the sums
    k, p = v.size, _p(X)
    t = max(tau2, 0.0)
    if method in ("DL", "HS", "HSk"):
        pr = pr_dl
        trp = pr.tr()
        inner = 2 * (k - p) + 4 * t * trp + 2 * t**2 * pr.tr2()
        if method == "DL":
            return float(np.sqrt(inner / trp**2))
        se = float(np.sqrt(inner / np.sum(pr.a) ** 2))
        return se * k / (k - p) if method == "HSk" else se
    if method == "HE":
        pr = Projection(np.ones(k), X)
        return float(np.sqrt((2 * pr.tr2(v, v) + 4 * t * pr.tr(v) + 2 * t**2 * (k - p))
                             / (k - p) ** 2))
    if method in USER_WEIGHTED + ("SJ",):
        pr = Projection(a if method != "SJ" else 1.0 / (v + tau2_0), X)
        inner = 2 * pr.tr2(v, v) + 4 * t * pr.tr2(None, v) + 2 * t**2 * pr.tr2()
        if method != "SJ":
            return float(np.sqrt(inner / pr.tr() ** 2))
        return float(np.sqrt(tau2_0**2 / (k - p) ** 2 * inner))
    w = _weights(v, tau2)
    if method == "ML":
        return float(np.sqrt(2 / _dot(w, w)))
    if method == "REML":
        return float(np.sqrt(2 / (pr_hat if pr_hat is not None else Projection(w, X)).tr2()))
    # EB, PM, PMM
    return float(np.sqrt(2 * k**2 / (k - p) / row_sum(w) ** 2))


def estimate_tau2(yi, vi, method: str = "REML", *, X=None, weights=None, tau2: float | None = None,
                  threshold: float = 1e-12, maxiter: int = 100) -> Tau2Fit:
    """Estimate tau^2 by ``method`` (see ``TAU2_METHODS``; case-insensitive, FE and CE mean EE)
    for the model with design matrix ``X`` (default: intercept only).

    As metafor's ``rma.uni``: the estimators use the centred outcomes; iterative estimators (ML,
    REML, EB) use Fisher scoring from the HE estimate until tau^2 changes by less than 1e-5
    (metafor's default threshold: metafor's iterates and stopping point), then Newton steps on
    the same estimating equation until it changes by less than ``threshold`` (``threshold`` >=
    1e-5: Fisher scoring only, as metafor); when scoring fails (no convergence in ``maxiter``
    steps), :func:`scoring_fallback` takes the root of the estimating equation on [0, inf) that
    is the likelihood's highest local maximum (reported in ``algorithm``). PM and PMM solve
    Q(tau^2) = k - p (resp. the median of chi^2_(k-p)) by Brent's method. Negative estimates are truncated at 0 and flagged with ``at_boundary``. Zero
    sampling variances are accepted by HE, SJ, GENQ, ML, REML and EB (as metafor). ``tau2``
    fixes the value (its standard error is the method's formula at that value, as metafor).

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances.
    method : str
        One of EE (FE, CE), DL, HE, HS, HSk, SJ, ML, REML, EB, PM, PMM, GENQ.
    X : array_like, optional
        Design matrix, k x p (meta-regression); default a column of ones.
    weights : array_like, optional
        Weights of the GENQ estimator.
    tau2 : float, optional
        A fixed value.
    threshold, maxiter : float, int
        Convergence rule of Fisher scoring.

    Returns
    -------
    Tau2Fit
        ``tau2``, its standard error ``se``, ``converged``, ``iterations``, ``at_boundary`` and the
        ``algorithm`` used.

    References
    ----------
    DerSimonian R, Laird N (1986). Control Clin Trials 7:177-188. Hedges LV, Olkin I (1985).
    Statistical Methods for Meta-Analysis (HE). Hunter JE, Schmidt FL (2004). Methods of
    Meta-Analysis, 2nd ed. (HS). Sidik K, Jonkman JN (2005). J Biopharm Stat 15:823-838 (SJ).
    Viechtbauer W (2005). J Educ Behav Stat 30:261-293 (ML, REML). Morris CN (1983). J Am Stat
    Assoc 78:47-55 (EB). Paule RC, Mandel J (1982). J Res Natl Bur Stand 87:377-385 (PM).
    DerSimonian R, Kacker R (2007). Contemp Clin Trials 28:105-114 (GENQ).

    Examples
    --------
    >>> import metamsc as mm
    >>> yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79]
    >>> vi = [0.33, 0.19, 0.42, 0.02, 0.05, 0.01]
    >>> fit = mm.estimate_tau2(yi, vi, "REML")
    >>> print(f"{fit.tau2:.4f} (SE {fit.se:.4f}), converged: {fit.converged}")
    0.2248 (SE 0.2078), converged: True
    >>> print(f"{mm.estimate_tau2(yi, vi, 'PM').tau2:.4f}")
    0.1804
    """
    return fit_tau2(yi, vi, method, X=X, weights=weights, tau2=tau2, threshold=threshold,
                    maxiter=maxiter)


def fit_tau2(yi, vi, method: str = "REML", *, X=None, weights=None, tau2: float | None = None,
             threshold: float = 1e-12, maxiter: int = 100,
             sums: InterceptSums | None = None) -> Tau2Fit:
    """:func:`estimate_tau2`, reading and filling ``sums``: for X = 1, the
    :class:`~metamsc.powersums.InterceptSums` of the centred outcomes and the variances, which
    :func:`metamsc.core.fit_model` then reads at the estimate and at 0."""
    method = canonical_method(method)
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    k = y.size
    X = design_or_none(X, k)
    p = _p(X)
    if method == "EE":
        return Tau2Fit("EE", 0.0, float("nan"), True, 0, False, "fixed at 0 (common effect)")
    if tau2 is not None:
        tau2 = float(tau2)
        if not (np.isfinite(tau2) and tau2 >= 0):
            raise ValueError(f"tau2 must be a finite number >= 0, got {tau2!r}")
    if k - p < 1:
        if tau2 is not None:
            return Tau2Fit(method, tau2, float("nan"), True, 0, tau2 == 0, "fixed by the user")
        return Tau2Fit(method, 0.0, float("nan"), True, 0, True, "k = 1",
                       "k = 1: tau^2 is not estimable and is set to 0")
    allpos = sums.v_min > 0 if sums is not None else bool(v.min() > 0)
    if not allpos and (v < 0).any():
        raise ValueError("sampling variances must not be negative")
    if not allpos and method in POSITIVE_VI_ONLY:
        raise ValueError(f"the {method} estimator cannot be used with zero sampling variances "
                         "(as metafor); use HE, SJ, ML, REML or EB")
    ymc = y - row_sum(y) / k if sums is None else sums.y  # as metafor: from the centred outcomes
    a = None
    tau2_0 = None
    pr_dl = pr_hat = t_hat = None
    iters, converged, algorithm, message = 0, True, "closed form", ""
    if method in ("DL", "HS", "HSk"):
        pr_dl = Projection(1.0 / v, X)
        rss = pr_dl.quad(ymc)
        if method == "DL":
            raw = (rss - (k - p)) / pr_dl.tr()
        else:
            raw = ((rss if method == "HS" else k / (k - p) * rss) - k) / np.sum(pr_dl.a)
    elif method == "HE":
        raw = _hedges_olkin(ymc, v, X)
    elif method == "SJ":
        tau2_0 = float(np.mean(ymc**2))  # identical yi: tau2_0 = 0 and the estimate is 0 (as metafor)
        raw = tau2_0 * Projection(_weights(v, tau2_0), X).quad(ymc) / (k - p)
    elif method in USER_WEIGHTED:
        if weights is None:
            raise ValueError(f"method {method} needs study weights (weights=...), as metafor")
        a = np.asarray(weights, dtype=float).ravel()
        if method == "GENQ":
            pr = Projection(a, X)
            raw = (pr.quad(ymc) - pr.tr(v)) / pr.tr()
        else:
            raw, algorithm = _genqm(ymc, v, a, X, tau2)
            if raw is None:
                return Tau2Fit(method, float("nan"), float("nan"), False, 0, False, algorithm,
                               "no upper bracket for P(Q_a > q) = 1/2")
    elif method in ("PM", "PMM"):
        target = (k - p) if method == "PM" else float(chi2_ppf(0.5, k - p))
        algorithm = "Brent root of Q(tau^2) = " + ("k - p" if method == "PM" else "median of chi^2(k-p)")
        if tau2 is not None:
            raw = tau2
        else:
            def f(t: float) -> float:
                return Projection(1.0 / (v + t), X).quad(ymc) - target

            if f(0.0) < 0:
                raw = 0.0
            else:
                raw = _root_on_halfline(f, float(np.var(y)) + float(np.max(v)))
                if raw is None:
                    return Tau2Fit(method, float("nan"), float("nan"), False, 0, False, algorithm,
                                   "no upper bracket for Q(tau^2) = target")
    else:  # ML, REML, EB
        if sums is None and X is None and v.ndim == 1:
            sums = InterceptSums(ymc, v)
        he = _hedges_olkin(ymc, v, X, None if sums is None else sums.y3)
        if tau2 is not None:
            raw = tau2
        else:
            raw, iters, converged, newton = _fisher_scoring(ymc, v, X, max(0.0, float(he)),
                                                            method, threshold, maxiter, sums)
            algorithm = "Fisher scoring" + (_NEWTON_NOTE if newton else "")
            if not converged or not math.isfinite(raw):
                raw, how = scoring_fallback(ymc, v, X, method)
                converged = bool(np.isfinite(raw))
                algorithm = (f"Fisher scoring did not converge in {iters} iterations; "
                             f"{how} of the {method} estimating equation")
                message = algorithm
            if method in ("ML", "REML") and allpos and raw > threshold:
                reml = method == "REML"
                t_hat = raw
                if sums is None:
                    pr_hat = Projection(1.0 / (v + raw), X)
                if (loglik(ymc, v, X, 0.0, reml, sums=sums)
                        - loglik(ymc, v, X, raw, reml, pr_hat, sums) > 1e-12):
                    raw = 0.0
                    message = "likelihood at tau^2 = 0 exceeds that at the scoring solution; set to 0"
    if tau2 is not None:
        raw, algorithm, iters, converged, message = tau2, "fixed by the user", 0, True, ""
    if not math.isfinite(raw):
        return Tau2Fit(method, float("nan"), float("nan"), False, iters, False, algorithm,
                       message or "no estimate")
    est = max(0.0, float(raw))
    if not allpos and est == 0.0:
        _weights(v, est)  # raises: zero sampling variance with tau^2 = 0
    if est != t_hat:  # the Projection at the REML/ML solution serves its SE unless set to 0
        pr_hat = None
    se = _se_tau2(method, v, X, est, pr_dl=pr_dl, tau2_0=tau2_0, a=a, pr_hat=pr_hat, sums=sums)
    return frozen_instance(Tau2Fit, {
        "method": method, "tau2": est, "se": se, "converged": converged, "iterations": iters,
        "at_boundary": est == 0.0, "algorithm": algorithm, "message": message})


def q_profile_ci(yi, vi, level: float = 0.95, *, X=None, tau2_max: float | None = None,
                 tau2_hat: float = 0.0) -> tuple[float, float]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007, Stat Med 26:37).

    Solves Q(tau^2) = chi^2 quantiles of k - p degrees of freedom; a bound below 0 is set to 0,
    and the search is limited to [0, max(100, 10 tau2_hat)] as in metafor.
    """
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    k = y.size
    X = design_or_none(X, k)
    df = k - _p(X)
    if df < 1 or (v <= 0).any():
        return float("nan"), float("nan")
    alpha = 1 - level
    tmin = 0.0
    tmax = tau2_max if tau2_max is not None else max(100.0, 10 * tau2_hat)
    crit_u = float(chi2_isf(alpha / 2, df))
    crit_l = float(chi2_ppf(alpha / 2, df))

    def q(t: float) -> float:
        return Projection(1.0 / (v + t), X).quad(y)

    def root(target: float, start: float) -> float:
        """Q(t) = target by Newton's method: Q is decreasing and convex in t (dQ/dt = -y'PPy,
        d2Q/dt2 = 2 y'PPPy >= 0), so from a start with Q > target the iterates rise monotonically
        to the root; Brent's method is the fallback."""
        t = start
        for it in range(100):
            pr = Projection(1.0 / (v + t), X)
            r = y - pr.fitted(y)
            py = pr.a * r
            f = float(py @ r) - target
            d = float(py @ py)
            if f <= 0 and it > 0:  # at the root up to rounding
                return t
            if f <= 0 or d <= 0:
                break
            step = f / d
            t_new = t + step
            if t_new >= tmax:
                break
            if step <= 1e-13 * t_new + 1e-15:
                return t_new
            t = t_new
        return brent_root(lambda t: q(t) - target, tmin, tmax)

    q_min = q(tmin)
    q_max = q(tmax)
    if q_min < crit_l:
        lb = ub = tmin
    else:
        ub = tmax if q_max > crit_l else None
    if q_max > crit_u:
        lb = ub = tmax
    elif q_min < crit_u:
        lb = tmin
    else:
        lb = root(crit_u, tmin)
    if ub is None:
        ub = root(crit_l, lb)
    return lb, ub
