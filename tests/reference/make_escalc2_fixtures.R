## make_escalc2_fixtures.R -- escalc() for every measure of the metamsc measure
## registry beyond escalc.json, with metafor's variance types (vtype), and the
## transf.* back-transformations.
##
## Run from this folder:
##     cd tests/reference && Rscript make_escalc2_fixtures.R
## Writes escalc2.json (deterministic: same versions give identical bytes).
##
## Each case has: id, measure, dataset, R (the call, evaluated from the string),
## args (our names: add/to/drop00/vtype as passed), roles (metamsc role -> data,
## after the metafor argument -> role map), yi, vi, warnings.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})
source("json_helpers.R")
pkgv <- function(p) utils::packageDescription(p)$Version

run <- function(text, env) {
  warns <- character(0)
  val <- withCallingHandlers(eval(parse(text = text), envir = env),
                             warning = function(w) { warns <<- c(warns, conditionMessage(w))
                                                     invokeRestart("muffleWarning") })
  list(value = val, warnings = warns)
}

## data sets (columns named by metafor argument)
D <- list()
D$molloy <- data.frame(ri = dat.molloy2014$ri, ni = dat.molloy2014$ni)
D$corsmall <- data.frame(ri = c(0.3, -0.5, 0.9, 0, 0.1), ni = c(5, 8, 12, 30, 4))
D$aloe <- data.frame(ti = dat.aloe2013$tval, ni = dat.aloe2013$n, mi = dat.aloe2013$preds,
                     r2i = dat.aloe2013$R2)
D$hart <- data.frame(x1i = dat.hart1999$x1i, t1i = dat.hart1999$t1i,
                     x2i = dat.hart1999$x2i, t2i = dat.hart1999$t2i)
D$rates0 <- data.frame(x1i = c(0, 3, 0, 5, 2), t1i = c(120, 80.5, 60, 200, 45),
                       x2i = c(2, 0, 0, 4, 7), t2i = c(110, 75, 66, 190.5, 50))
D$normand <- with(dat.normand1999, data.frame(m1i, sd1i, n1i, m2i, sd2i, n2i))
D$curtis <- with(dat.curtis1998[1:30, ], data.frame(m1i, sd1i, n1i, m2i, sd2i, n2i))
D$normand_g1 <- with(dat.normand1999, data.frame(mi = m1i, sdi = sd1i, ni = n1i))
D$bcg <- with(dat.bcg, data.frame(ai = tpos, bi = tneg, ci = cpos, di = cneg))
D$nielweise <- with(dat.nielweise2007, data.frame(ai = ai, bi = n1i - ai, ci = ci, di = n2i - ci))
D$prepost <- data.frame(ni = c(14, 20, 12, 9, 30), m1i = c(13.8, 15.2, 10.1, 20.3, 12.0),
                        m2i = c(20.1, 22.0, 14.8, 24.1, 18.5), sd1i = c(10.2, 6.1, 4.3, 7.7, 5.5),
                        sd2i = c(3.1, 5.9, 4.0, 6.8, 6.0), ri = c(0.5, 0.5, 0.3, 0.7, 0.6))
D$bonett <- with(dat.bonett2010, data.frame(ai = ai, mi = mi, ni = ni))
D$paired <- data.frame(ai = c(10, 5, 0, 20, 3), bi = c(3, 0, 2, 7, 4),
                       ci = c(6, 4, 1, 2, 0), di = c(30, 11, 15, 40, 9))

## metafor argument -> metamsc role, per data layout
R <- list(
  cor = c(ri = "r", ni = "n"),
  pcor = c(ti = "t", ni = "n", mi = "predictors"),
  spcor = c(ti = "t", ni = "n", mi = "predictors", r2i = "r2"),
  rate2 = c(x1i = "events1", t1i = "time1", x2i = "events2", t2i = "time2"),
  cont2 = c(m1i = "mean1", sd1i = "sd1", n1i = "n1", m2i = "mean2", sd2i = "sd2", n2i = "n2"),
  vr = c(sd1i = "sd1", n1i = "n1", sd2i = "sd2", n2i = "n2"),
  mean = c(mi = "mean", sdi = "sd", ni = "n"),
  sdln = c(sdi = "sd", ni = "n"),
  bin2 = c(ai = "events1", bi = NA, ci = "events2", di = NA),
  prepost = c(m1i = "mean_post", m2i = "mean_pre", sd1i = "sd_post", sd2i = "sd_pre", ni = "n", ri = "r"),
  alpha = c(ai = "alpha", mi = "items", ni = "n"),
  paired = c(ai = "both", bi = "only1", ci = "only2", di = "neither"),
  smd1 = c(m1i = "mean1", n1i = "n1", m2i = "mean2", sd2i = "sd2", n2i = "n2"),
  ## SMCRH standardises by escalc's sd1i: we pass the pre-test SD there (as for SMCR)
  smcrh = c(m1i = "mean_post", m2i = "mean_pre", sd1i = "sd_pre", sd2i = "sd_post", ni = "n", ri = "r"),
  vrc = c(sd1i = "sd_post", sd2i = "sd_pre", ni = "n", ri = "r"),
  mporm = c(ai = "events1", bi = NA, ci = "events2", di = NA, ri = "r"),
  reh = c(ai = "homozygous1", bi = "heterozygous", ci = "homozygous2")
)

cases <- list()
add_case <- function(measure, ds, layout, extra = list()) {
  dat <- D[[ds]]
  am <- R[[layout]]
  args <- names(am)
  argtxt <- paste0(args, "=", args, collapse = ", ")
  extratxt <- if (length(extra)) paste0(", ", paste0(names(extra), "=",
                  sapply(extra, function(v) if (is.character(v)) paste0("'", v, "'") else
                                                 if (is.logical(v)) as.character(v) else format(v)),
                  collapse = ", ")) else ""
  call <- paste0("escalc(measure='", measure, "', ", argtxt, ", data=dat", extratxt, ")")
  env <- new.env(); env$dat <- dat
  r <- run(call, env)
  roles <- list()
  if (layout %in% c("bin2", "mporm")) {
    roles <- list(events1 = arr(dat$ai), total1 = arr(dat$ai + dat$bi),
                  events2 = arr(dat$ci), total2 = arr(dat$ci + dat$di))
    if (layout == "mporm") roles$r <- arr(dat$ri)
  } else {
    for (a in args) roles[[am[[a]]]] <- arr(dat[[a]])
  }
  id <- paste(c("escalc2", ds, measure, unlist(lapply(names(extra), function(n) paste0(n, "=", extra[[n]])))),
              collapse = ":")
  cases[[length(cases) + 1]] <<- list(
    id = id, measure = measure, dataset = ds, R = call,
    args = if (length(extra)) lapply(extra, function(v) if (is.numeric(v)) sc(v) else v) else json("{}"),
    roles = roles, yi = arr(r$value$yi), vi = arr(r$value$vi), warnings = strarr(r$warnings))
}

for (m in c("COR", "UCOR", "ZCOR")) for (ds in c("molloy", "corsmall")) add_case(m, ds, "cor")
add_case("COR", "molloy", "cor", list(vtype = "AV"))
add_case("UCOR", "molloy", "cor", list(vtype = "UB"))
add_case("UCOR", "molloy", "cor", list(vtype = "AV"))
for (m in c("PCOR", "ZPCOR")) add_case(m, "aloe", "pcor")
add_case("PCOR", "aloe", "pcor", list(vtype = "AV"))
add_case("SPCOR", "aloe", "spcor")
add_case("SPCOR", "aloe", "spcor", list(vtype = "AV"))
for (m in c("IRR", "IRD", "IRSD")) {
  add_case(m, "hart", "rate2")
  add_case(m, "rates0", "rate2")
  for (to in c("all", "if0all", "none")) add_case(m, "rates0", "rate2", list(to = to))
  add_case(m, "rates0", "rate2", list(drop00 = TRUE))
}
add_case("IRSD", "rates0", "rate2", list(add = 0.5))
for (m in c("SMDH", "CVR", "VR", "RPB", "RBIS", "D2ORN", "D2ORL")) {
  for (ds in c("normand", "curtis")) add_case(m, ds, if (m == "VR") "vr" else "cont2")
}
add_case("SMDH", "normand", "cont2", list(vtype = "LS2"))
for (v in c("ST", "CS")) add_case("RPB", "normand", "cont2", list(vtype = v))
for (v in c("UB", "LS2", "AV")) add_case("SMD", "normand", "cont2", list(vtype = v))
for (v in c("UB", "HO")) add_case("MD", "normand", "cont2", list(vtype = v))
for (v in c("HO", "AV", "AVHO")) add_case("ROM", "normand", "cont2", list(vtype = v))
for (m in c("CVLN", "SDLN")) add_case(m, "normand_g1", if (m == "SDLN") "sdln" else "mean")
for (m in c("AS", "PHI", "YUQ", "YUY", "OR2DN", "OR2DL", "PETO")) {
  for (ds in c("bcg", "nielweise")) add_case(m, ds, "bin2")
}
for (v in c("ST", "CS")) add_case("PHI", "bcg", "bin2", list(vtype = v))
add_case("PHI", "nielweise", "bin2", list(add = 0.5))
add_case("YUQ", "nielweise", "bin2", list(to = "all"))
for (v in c("UB", "AV")) add_case("RD", "nielweise", "bin2", list(vtype = v))
add_case("ROMC", "prepost", "prepost")
add_case("SMCC", "prepost", "prepost", list(vtype = "LS2"))
for (m in c("AHW", "ABT")) add_case(m, "bonett", "alpha")
for (m in c("MPRD", "MPRR", "MPOR")) {
  add_case(m, "paired", "paired")
  add_case(m, "paired", "paired", list(to = "all"))
  add_case(m, "paired", "paired", list(drop00 = TRUE))
}

## more escalc measures
add_case("SMN", "normand_g1", "mean")
for (ds in c("normand", "curtis")) add_case("SMD1", ds, "smd1")
for (v in c("UB", "LS2", "AV")) add_case("SMD1", "normand", "smd1", list(vtype = v))
for (ds in c("normand", "curtis")) add_case("SMD1H", ds, "cont2")
D$prepost_h <- transform(D$prepost, sd1i = D$prepost$sd2i, sd2i = D$prepost$sd1i)
add_case("SMCRH", "prepost_h", "smcrh")
add_case("CVRC", "prepost", "prepost")
add_case("VRC", "prepost", "vrc")
add_case("ARAW", "bonett", "alpha")
for (ds in c("bcg", "nielweise")) add_case("PBIT", ds, "bin2")
for (m in c("MPORC", "MPPETO")) {
  add_case(m, "paired", "paired")
  add_case(m, "paired", "paired", list(to = "all"))
}

## single-group vtypes of the older measures
D$pritz <- with(dat.pritz1997, data.frame(xi = xi, ni = ni))
R$prop <- c(xi = "events", ni = "total")
add_case("PR", "pritz", "prop", list(vtype = "UB"))
for (m in c("PR", "PLN", "PLO")) add_case(m, "pritz", "prop", list(vtype = "AV"))

## measures added for issue 12: RTET, MPORM, REH
## RTET: escalc maximises the likelihood with optim's Nelder-Mead and takes the variance from
## its finite-difference Hessian, so these cases hold to the optimiser's precision only
## (1e-4 in the test); rtet_exact below is the reference at full precision.
## Tables with a single empty cell are left out here (escalc: yi = +-1 and the Hessian of a
## likelihood clamped at |rho| = 0.9999); the test checks their yi by hand.
## row 6: an empty row (no estimate: escalc recodes its yi = 0, vi = Inf to NA);
## row 7: b = c = 0 (yi = 1, vi = 0)
D$rtet <- data.frame(ai = c(20, 5, 10, 40, 3, 0, 12), bi = c(30, 25, 30, 10, 47, 0, 0),
                     ci = c(10, 12, 3, 15, 5, 7, 0), di = c(50, 18, 30, 35, 45, 8, 14))
add_case("RTET", "bcg", "bin2")
add_case("RTET", "rtet", "bin2")
D$rtet_add <- D$rtet[1:6, ]  # not row 7: near rho = 1 escalc's Hessian is off by several %
add_case("RTET", "rtet_add", "bin2", list(add = 0.5, to = "all"))
## MPORM: marginal counts of n pairs (ai of ai+bi = n, ci of ci+di = n) with their correlation
D$mporm <- data.frame(ai = c(20, 5, 0, 33, 14), bi = c(30, 25, 40, 17, 6),
                      ci = c(12, 9, 4, 20, 14), di = c(38, 21, 36, 30, 6),
                      ri = c(0.3, 0.5, 0.1, -0.2, 0.8))
add_case("MPORM", "mporm", "mporm")
add_case("MPORM", "mporm", "mporm", list(to = "all"))
add_case("MPORM", "mporm", "mporm", list(add = 0.25, to = "if0all"))
## REH: genotype counts (homozygous dominant, heterozygous, homozygous recessive)
D$reh <- data.frame(ai = c(30, 40, 112, 61, 9, 250), bi = c(50, 45, 98, 80, 21, 402),
                    ci = c(20, 15, 30, 27, 14, 160))
add_case("REH", "reh", "reh")

## RTET at full precision: rho solves Phi2(h, k; rho) = a/n with the thresholds at the
## margins, h = qnorm((a+c)/n), k = qnorm((a+b)/n) (the likelihood is then maximal: the
## cell probabilities equal the observed proportions), found by uniroot on mvtnorm's
## bivariate normal CDF; the variance is the [rho, rho] element of the inverse Fisher
## information of (rho, h, k), n J' diag(1/p) J, with J the derivatives of the cell
## probabilities (Olsson 1979 Psychometrika 44:443).
rtet_exact <- function(a, b, c, d) {
  n <- a + b + c + d
  h <- qnorm((a + c) / n); k <- qnorm((a + b) / n)
  p2 <- function(r) mvtnorm::pmvnorm(upper = c(h, k), corr = matrix(c(1, r, r, 1), 2))[1]
  rho <- uniroot(function(r) p2(r) - a / n, c(-1 + 1e-10, 1 - 1e-10), tol = 1e-15,
                 maxiter = 1000)$root
  s <- sqrt(1 - rho^2)
  dens <- exp(-(h^2 - 2 * rho * h * k + k^2) / (2 * s^2)) / (2 * pi * s)
  da.h <- dnorm(h) * pnorm((k - rho * h) / s)
  da.k <- dnorm(k) * pnorm((h - rho * k) / s)
  J <- rbind(c(dens, da.h, da.k), c(-dens, -da.h, dnorm(k) - da.k),
             c(-dens, dnorm(h) - da.h, -da.k), c(dens, da.h - dnorm(h), da.k - dnorm(k)))
  p <- c(a, b, c, d) / n
  info <- n * t(J) %*% diag(1 / p) %*% J
  c(yi = rho, vi = solve(info)[1, 1])
}
rtet_tabs <- rbind(with(dat.bcg, cbind(tpos, tneg, cpos, cneg)),
                   as.matrix(D$rtet[1:5, ]), c(1, 99, 2, 98), c(300, 2, 3, 250))
rtet_ref <- t(apply(rtet_tabs, 1, function(x) rtet_exact(x[1], x[2], x[3], x[4])))
rtet_case <- list(R = "rtet_exact(ai, bi, ci, di) per table (see make_escalc2_fixtures.R)",
                  ai = arr(rtet_tabs[, 1]), bi = arr(rtet_tabs[, 2]), ci = arr(rtet_tabs[, 3]),
                  di = arr(rtet_tabs[, 4]), yi = arr(rtet_ref[, "yi"]), vi = arr(rtet_ref[, "vi"]),
                  mvtnorm_version = pkgv("mvtnorm"))

## SMCR: metafor's sd1i is the pre-test SD (see README); the case is written by hand
local({
  dat <- D$prepost
  call <- "escalc(measure='SMCR', m1i=m1i, m2i=m2i, sd1i=sd2i, ni=ni, ri=ri, data=dat, vtype='LS2')"
  env <- new.env(); env$dat <- dat
  r <- run(call, env)
  cases[[length(cases) + 1]] <<- list(
    id = "escalc2:prepost:SMCR:vtype=LS2", measure = "SMCR", dataset = "prepost", R = call,
    args = list(vtype = "LS2"),
    roles = list(mean_post = arr(dat$m1i), mean_pre = arr(dat$m2i), sd_pre = arr(dat$sd2i),
                 n = arr(dat$ni), r = arr(dat$ri)),
    yi = arr(r$value$yi), vi = arr(r$value$vi), warnings = strarr(r$warnings))
})

## transf.* functions
xs <- c(-2.5, -0.3, 0, 0.15, 0.7, 1.4)
tcases <- list()
add_t <- function(name, x, targs = NULL, call = NULL, elementwise = FALSE) {
  f <- get(name)
  val <- if (elementwise) sapply(x, f, targs = targs$targs) else
         if (is.null(targs)) f(x) else do.call(f, c(list(x), targs))
  if (is.null(call)) call <- paste0(name, "(x", if (length(targs)) paste0(", ", paste0(names(targs), "=", sapply(targs, function(v) paste(deparse(v), collapse = "")), collapse = ", ")) else "", ")")
  tcases[[length(tcases) + 1]] <<- list(id = paste0("transf:", name, ":", length(tcases) + 1),
    name = name, R = call, x = arr(x),
    targs = if (is.null(targs)) json("{}") else lapply(targs, function(v) if (is.numeric(v) && length(v) > 1) arr(v) else if (is.numeric(v)) sc(v) else v),
    value = arr(val))
}
for (n in c("transf.ztor", "transf.rtoz", "transf.ilogit", "transf.logit", "transf.iarcsin",
            "transf.arcsin", "transf.isqrt", "transf.iahw", "transf.ahw", "transf.iabt", "transf.abt",
            "transf.dtobesd", "transf.dtocles", "transf.dtou1", "transf.dtou2", "transf.dtou3",
            "transf.dtorpb")) {
  x <- if (n %in% c("transf.rtoz", "transf.logit", "transf.arcsin", "transf.ahw", "transf.abt"))
    c(0.01, 0.2, 0.5, 0.77, 0.95) else xs
  add_t(n, x)
}
add_t("transf.dtorpb", c(0.2, -0.5, 1.1), list(n1i = c(10, 30, 7), n2i = c(12, 25, 40)))
add_t("transf.dtomd", xs, list(targs = list(sd = 2.5)), "transf.dtomd(x, targs=list(sd=2.5))")
add_t("transf.pft", c(0, 0.1, 0.5, 1), list(ni = c(10, 20, 5, 7)))
add_t("transf.ipft", c(0.1, 0.4, 0.8, 1.4), list(ni = c(10, 20, 5, 7)))
add_t("transf.ipft.hm", c(0.1, 0.4, 0.8, 1.4), list(targs = list(ni = c(10, 20, 5, 7))),
      "transf.ipft.hm(x, targs=list(ni=c(10, 20, 5, 7)))")
add_t("transf.irft", c(0, 0.01, 0.2), list(ti = c(50, 100, 20)))
add_t("transf.iirft", c(0.05, 0.2, 0.6), list(ti = c(50, 100, 20)))
add_t("transf.logortord", c(-0.5, 0, 0.8), list(pc = 0.3))
add_t("transf.logortorr", c(-0.5, 0, 0.8), list(pc = 0.3))
for (n in c("transf.exp.int", "transf.ilogit.int", "transf.ztor.int")) {
  add_t(n, c(-1.2, 0.3, 0.9), list(targs = list(tau2 = 0.25)),
        paste0("sapply(x, ", n, ", targs=list(tau2=0.25))"), elementwise = TRUE)
  add_t(n, c(-1.2, 0.3), list(targs = list(tau2 = 0)), paste0("sapply(x, ", n, ", targs=list(tau2=0))"),
        elementwise = TRUE)
}

write_fixture(list(
  meta = list(description = "escalc() for the measures of the metamsc registry beyond escalc.json, and transf.* functions",
              R_version = R.version.string, metafor_version = pkgv("metafor"),
              metadat_version = pkgv("metadat"), jsonlite_version = pkgv("jsonlite"),
              gsl_version = pkgv("gsl"),
              generator = "tests/reference/make_escalc2_fixtures.R",
              missing_values = "NA, NaN, Inf and -Inf are written as null",
              transf_cases = tcases, rtet_exact = rtet_case),
  cases = cases), "escalc2.json")
