## make_genq_fixtures.R -- reference values for the generalised Q-profile ("GENQ") and
## Jackson's ("J") confidence intervals for tau^2, made without CompQuadForm (which metafor's
## confint(type = "GENQ") needs and which is not installable here).
##
## Run from this folder:
##     cd tests/reference && Rscript make_genq_fixtures.R
## Writes genq.json (deterministic).
##
## Method (Jackson 2013, Res Synth Methods 4:220; Biggerstaff & Jackson 2008, Stat Med 27:6093):
## with fixed weights a_i, Q_a = sum a_i (y_i - mu_a)^2, mu_a = sum a_i y_i / sum a_i, is
## distributed under tau^2 = t as sum_j lam_j X_j, X_j ~ chi^2_1 independent, lam the nonzero
## eigenvalues of S P S with P = diag(a) - a a' / sum(a) and S = diag(sqrt(v_i + t)) (here a
## dense eigen(), independent of metamsc's secular-equation solver). Its tail probability is
## computed by Imhof's (1961, Biometrika 48:419) inversion formula
##     P(Q > q) = 1/2 + (1/pi) int_0^Inf sin(theta(u)) / (u rho(u)) du,
##     theta(u) = sum_j atan(lam_j u) / 2 - q u / 2,  rho(u) = prod_j (1 + lam_j^2 u^2)^(1/4),
## by Gauss-Legendre quadrature over half periods
## and Euler's transformation of the partial sums (independent of metamsc's Ruben series). The bounds solve
## P(Q_a > q_obs | t) = alpha/2 (lower) and 1 - alpha/2 (upper) by uniroot(); a bound is 0
## when the tail at t = 0 already exceeds its target. The weights: "J" a = 1/sqrt(v) (Jackson
## 2013; R meta's method.tau.ci = "J"); "GENQ" the weights given to rma(..., weights = a,
## method = "GENQ"), here a = 1/v and a = 1 (unweighted). Each case also carries the
## median-unbiased estimate of metafor's rma(..., weights = a, method = "GENQM"): the tau^2 at
## which P(Q_a > q_obs) = 1/2 (0 when that tail already exceeds 1/2 at tau^2 = 0).

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})
source("json_helpers.R")
pkgv <- function(p) utils::packageDescription(p)$Version

gl <- function(n) {  # Gauss-Legendre nodes/weights on [-1, 1] (Golub-Welsch)
  b <- seq_len(n - 1) / sqrt(4 * seq_len(n - 1)^2 - 1)
  J <- matrix(0, n, n); J[cbind(1:(n - 1), 2:n)] <- b; J[cbind(2:n, 1:(n - 1))] <- b
  e <- eigen(J, symmetric = TRUE)
  list(x = e$values, w = 2 * e$vectors[1, ]^2)
}
GL <- gl(30)

## Imhof's integral over [0, 600 half periods of sin(q u / 2)], each half period by 30-point
## Gauss-Legendre (split further where atan(lam u) still bends); the partial sums at the half
## periods oscillate about the limit, which repeated averaging (Euler's transformation)
## extracts.
imhof_sf <- function(q, lam, nblocks = 600, levels = 25) {
  f <- function(u) {
    th <- 0.5 * colSums(atan(outer(lam, u))) - 0.5 * q * u
    rh <- exp(0.25 * colSums(log1p(outer(lam, u)^2)))
    sin(th) / (u * rh)
  }
  h <- 2 * pi / q  # half a period of sin(q u / 2)
  s <- min(64, max(1, ceiling(h * max(lam) / 4)))  # sub-blocks where atan(lam u) still bends
  g <- h / s
  lo <- (seq_len(nblocks * s) - 1) * g
  u <- as.vector(outer(GL$x * g / 2 + g / 2, lo, "+"))  # nodes, sub-block by sub-block
  b <- colSums(matrix(f(u) * rep(GL$w * g / 2, nblocks * s), nrow = length(GL$x)))
  b <- colSums(matrix(b, nrow = s))  # one integral per half period
  S <- cumsum(b)
  tail <- S[(nblocks - levels):nblocks]
  for (i in seq_len(levels)) tail <- (tail[-1] + tail[-length(tail)]) / 2  # Euler averaging
  0.5 + tail[1] / pi
}
## check the inversion on the equal-eigenvalue case, where Q / lam ~ chi^2_m exactly
for (m in c(1, 2, 5, 12)) for (q in c(0.05, 0.3, 2, 9, 40)) {
  stopifnot(abs(imhof_sf(q, rep(0.7, m)) - pchisq(q / 0.7, m, lower.tail = FALSE)) < 1e-13)
}

genq_ci <- function(y, v, a, level) {
  k <- length(y)
  s <- sum(a)
  mu <- sum(a * y) / s
  q <- sum(a * (y - mu)^2)
  P <- diag(a) - outer(a, a) / s
  sf <- function(t) {
    S <- diag(sqrt(v + t))
    lam <- eigen(S %*% P %*% S, symmetric = TRUE, only.values = TRUE)$values
    imhof_sf(q, lam[lam > 1e-12 * max(lam)])
  }
  alpha <- 1 - level
  s0 <- sf(0)
  hi <- 100
  root <- function(target) {
    if (s0 >= target) return(0)
    uniroot(function(t) sf(t) - target, c(0, hi), tol = 1e-13, maxiter = 1000)$root
  }
  c(lb = root(alpha / 2), ub = root(1 - alpha / 2), q = q, sf0 = s0, m = root(0.5))
}

D <- list()
D$bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
D$normand <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                    n2i = n2i, data = dat.normand1999)
D$raudenbush <- dat.raudenbush1985[, c("yi", "vi")]
D$pritz <- escalc(measure = "PLO", xi = xi, ni = ni, data = dat.pritz1997)
D$k3 <- data.frame(yi = c(0.1, 0.15, 0.3), vi = c(0.04, 0.09, 0.05))
D$k4 <- data.frame(yi = c(-0.4, 0.35, 0.9, 0.1), vi = c(0.02, 0.11, 0.05, 0.3))

cases <- list()
for (ds in names(D)) {
  dat <- D[[ds]]
  y <- as.numeric(dat$yi); v <- as.numeric(dat$vi)
  W <- list(J = 1 / sqrt(v), GENQ_inv_v = 1 / v, GENQ_unit = rep(1, length(v)))
  for (wn in names(W)) for (level in c(0.95, 0.90)) {
    r <- genq_ci(y, v, W[[wn]], level)
    type <- if (wn == "J") "J" else "GENQ"
    cases[[length(cases) + 1]] <- list(
      id = paste("genq", ds, wn, level, sep = ":"), dataset = ds, type = type,
      weights_name = wn, level = sc(level), yi = arr(y), vi = arr(v), weights = arr(W[[wn]]),
      R = "genq_ci(yi, vi, weights, level) (Imhof inversion, see the header)",
      q_a = sc(r[["q"]]), sf_at_0 = sc(r[["sf0"]]), tau2_lb = sc(r[["lb"]]),
      tau2_ub = sc(r[["ub"]]),
      ## the median-unbiased GENQ estimate (metafor's method = "GENQM"): P(Q_a > q_obs | t) = 1/2
      tau2_genqm = sc(r[["m"]]))
  }
}

write_fixture(list(
  meta = list(description = "generalised Q-profile and Jackson CIs for tau^2 by Imhof's inversion",
              R_version = R.version.string, metafor_version = pkgv("metafor"),
              metadat_version = pkgv("metadat"), jsonlite_version = pkgv("jsonlite"),
              generator = "tests/reference/make_genq_fixtures.R",
              missing_values = "NA, NaN, Inf and -Inf are written as null"),
  cases = cases), "genq.json")
