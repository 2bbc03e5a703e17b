## make_bias_fixtures.R -- reference values from R/metafor for metamsc's sensitivity analyses
## (leave1out, cumul) and small-study / publication-bias methods (regtest, ranktest, trimfill).
##
## Run from this folder:
##     cd tests/reference && Rscript make_bias_fixtures.R
##
## Writes bias.json. Deterministic (no timestamps, no random numbers): a rerun with the same
## R / package versions gives a byte-identical file. Every case records the R call it ran in "R"
## (evaluated from that very string, with `dat` and `ctrl` defined as in "data_R" and "meta.control");
## a call that fails is recorded as expected = {"error": "<R message>"}.
##
## Numbers: as in make_fixtures.R, each double is written with the shortest of %.15g/%.16g/%.17g
## that a correctly rounded parser reads back as the identical double (jsonlite's digits = NA alone
## prints only 15 significant digits); NA/NaN/Inf are written as null.

source("fixture_setup.R")  # metafor, metadat, jsonlite, ctrl, ci_ctrl and the JSON writers

## evaluate an R call given as a string; collect warnings; turn an error into its message
run <- function(text, env) {
  warns <- character(0)
  val <- withCallingHandlers(
    tryCatch(eval(parse(text = text), envir = env),
             error = function(e) structure(list(message = conditionMessage(e)), class = "run_error")),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  list(value = val, warnings = unique(warns), error = inherits(val, "run_error"))
}

## ---------------------------------------------------------------------------
## data sets: yi, vi (and a study label) per set
## ---------------------------------------------------------------------------

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg$slab <- paste0(dat.bcg$author, ", ", dat.bcg$year)
hack <- dat.hackshaw1998
hack$slab <- paste0(hack$author, ", ", hack$year)
pritz <- escalc(measure = "PLO", xi = xi, ni = ni, data = dat.pritz1997)
pritz$slab <- as.character(dat.pritz1997$authors)
small5 <- data.frame(yi = c(0.10, 0.28, 0.52, 0.75, 0.41),
                     vi = c(0.010, 0.030, 0.080, 0.150, 0.045),
                     slab = paste("Study", 1:5))

datasets <- list(
  dat.bcg = list(data = bcg, measure = "RR",
                 data_R = paste0("dat <- escalc(measure='RR', ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg); ",
                                 "dat$slab <- paste0(dat.bcg$author, ', ', dat.bcg$year)")),
  dat.hackshaw1998 = list(data = hack, measure = "GEN",
                          data_R = "dat <- dat.hackshaw1998; dat$slab <- paste0(dat$author, ', ', dat$year)"),
  dat.pritz1997 = list(data = pritz, measure = "PLO",
                       data_R = "dat <- escalc(measure='PLO', xi=xi, ni=ni, data=dat.pritz1997); dat$slab <- as.character(dat.pritz1997$authors)"),
  small5 = list(data = small5, measure = "GEN",
                data_R = "dat <- data.frame(yi=c(0.10, 0.28, 0.52, 0.75, 0.41), vi=c(0.010, 0.030, 0.080, 0.150, 0.045), slab=paste('Study', 1:5))")
)

## grids (the test suite checks that every combination is present)
L1O_METHODS <- c("EE", "DL", "REML")
L1O_TESTS <- c("z", "knha")
CUMUL_METHODS <- c("DL")
CUMUL_TESTS <- c("z", "knha")
REG_METHODS <- c("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM")
REG_TESTS <- c("z", "knha")
TF_METHODS <- c("EE", "DL", "REML", "ML", "PM")
TF_ESTIMATORS <- c("L0", "R0", "Q0")

rma_call <- function(method, test)
  sprintf("rma(yi, vi, method='%s', test='%s', data=dat, slab=slab, control=ctrl)", method, test)

cases <- list()
addc <- function(x) cases[[length(cases) + 1L]] <<- x

base_case <- function(id, fun, ds, R, method = NULL, test = NULL, ...)
  c(list(id = id, `function` = fun, dataset = ds,
         method = if (is.null(method)) json("null") else method,
         test = if (is.null(test)) json("null") else test), list(...),
    list(data_R = datasets[[ds]]$data_R, R = R))

list_rma_expected <- function(out) {
  ## a list.rma from leave1out()/cumul(): statistic column is zval or tval; tau2 absent for EE
  stat <- if (!is.null(out$zval)) out$zval else out$tval
  pv <- if (!is.null(out$pval)) out$pval else out$pvals
  list(estimate = arr(out$estimate), se = arr(out$se), statistic = arr(stat), pval = arr(pv),
       ci_lb = arr(out$ci.lb), ci_ub = arr(out$ci.ub), Q = arr(out$Q), Qp = arr(out$Qp),
       tau2 = arr(out$tau2), I2 = arr(out$I2), H2 = arr(out$H2), slab = strarr(out$slab))
}

fit_expected <- function(fit) list(
  beta = arr(fit$beta), se = arr(fit$se), zval = arr(fit$zval), pval = arr(fit$pval),
  ci_lb = arr(fit$ci.lb), ci_ub = arr(fit$ci.ub), tau2 = sc(fit$tau2), se_tau2 = sc(fit$se.tau2),
  QE = sc(fit$QE), QEp = sc(fit$QEp), QM = sc(fit$QM), QMp = sc(fit$QMp), I2 = sc(fit$I2),
  H2 = sc(fit$H2), k = sc(fit$k), p = sc(fit$p), dfs = sc(fit$ddf[1]), test = fit$test)

for (ds in names(datasets)) {
  dat <- datasets[[ds]]$data
  env <- new.env(parent = globalenv())
  assign("dat", dat, envir = env)
  assign("ctrl", ctrl, envir = env)

  ## --- leave1out -----------------------------------------------------------
  for (m in L1O_METHODS) for (t in L1O_TESTS) {
    R <- sprintf("leave1out(%s)", rma_call(m, t))
    r <- run(R, env)
    e <- if (r$error) list(error = r$value$message) else list_rma_expected(r$value)
    addc(base_case(paste("leave1out", ds, m, t, sep = ":"), "leave1out", ds, R, m, t,
                   expected = e, warnings = strarr(r$warnings)))
  }

  ## --- cumul (in the data order, and for dat.bcg also ordered by year) ------
  for (m in CUMUL_METHODS) for (t in CUMUL_TESTS) {
    R <- sprintf("cumul(%s)", rma_call(m, t))
    r <- run(R, env)
    e <- if (r$error) list(error = r$value$message) else list_rma_expected(r$value)
    addc(base_case(paste("cumul", ds, m, t, sep = ":"), "cumul", ds, R, m, t,
                   order_by = json("null"), expected = e, warnings = strarr(r$warnings)))
  }
  if (ds == "dat.bcg") {
    R <- sprintf("cumul(%s, order=year)", rma_call("DL", "z"))
    r <- run(R, env)
    e <- if (r$error) list(error = r$value$message) else list_rma_expected(r$value)
    addc(base_case(paste("cumul", ds, "DL", "z", "order=year", sep = ":"), "cumul", ds, R, "DL", "z",
                   order_by = arr(dat$year), expected = e, warnings = strarr(r$warnings)))
  }

  ## --- regtest, model = "rma" (meta-regression on sei) and model = "lm" ------
  for (m in REG_METHODS) for (t in REG_TESTS) {
    R <- sprintf("regtest(%s)", rma_call(m, t))
    r <- run(R, env)
    e <- if (r$error) list(error = r$value$message) else with(r$value, list(
      zval = sc(zval), pval = sc(pval), dfs = sc(dfs), est = sc(est), ci_lb = sc(ci.lb),
      ci_ub = sc(ci.ub), fit = fit_expected(fit)))
    addc(base_case(paste("regtest", ds, "rma", m, t, sep = ":"), "regtest", ds, R, m, t,
                   model = "rma", expected = e, warnings = strarr(r$warnings)))
  }
  R <- sprintf("regtest(%s, model='lm')", rma_call("REML", "z"))
  r <- run(R, env)
  e <- if (r$error) list(error = r$value$message) else {
    cf <- coef(summary(r$value$fit))
    with(r$value, list(zval = sc(zval), pval = sc(pval), dfs = sc(dfs), est = sc(est),
                       ci_lb = sc(ci.lb), ci_ub = sc(ci.ub),
                       fit = list(coef = arr(cf[, 1]), se = arr(cf[, 2]), tval = arr(cf[, 3]),
                                  pval = arr(cf[, 4]), sigma = sc(summary(fit)$sigma))))
  }
  addc(base_case(paste("regtest", ds, "lm", sep = ":"), "regtest", ds, R, "REML", "z",
                 model = "lm", expected = e, warnings = strarr(r$warnings)))

  ## --- ranktest ---------------------------------------------------------------
  R <- sprintf("ranktest(%s)", rma_call("REML", "z"))
  r <- run(R, env)
  ## whether cor.test could use the exact distribution (it cannot with ties)
  ystar <- with(dat, { w <- 1 / vi; (yi - sum(w * yi) / sum(w)) / sqrt(vi - 1 / sum(w)) })
  ties <- length(unique(ystar)) < length(ystar) || length(unique(dat$vi)) < length(dat$vi)
  e <- if (r$error) list(error = r$value$message) else
    list(tau = sc(r$value$tau), pval = sc(r$value$pval), exact = !ties)
  addc(base_case(paste("ranktest", ds, sep = ":"), "ranktest", ds, R, expected = e,
                 warnings = strarr(r$warnings)))

  ## --- trimfill (control passed on to the internal fits through trimfill's ...) --
  for (m in TF_METHODS) for (est in TF_ESTIMATORS) {
    if (est != "L0" && m != "DL") next
    R <- if (est == "L0") sprintf("trimfill(%s, control=ctrl)", rma_call(m, "z"))
         else sprintf("trimfill(%s, estimator='%s', control=ctrl)", rma_call(m, "z"), est)
    r <- run(R, env)
    e <- if (r$error) list(error = r$value$message) else with(r$value, list(
      k0 = sc(k0), se_k0 = sc(se.k0), side = side, p_k0 = sc(p.k0), k = sc(k),
      beta = sc(beta), se = sc(se), zval = sc(zval), pval = sc(pval), ci_lb = sc(ci.lb),
      ci_ub = sc(ci.ub), tau2 = sc(tau2), QE = sc(QE), QEp = sc(QEp), I2 = sc(I2), H2 = sc(H2),
      yi = arr(yi), vi = arr(vi), fill = lgcarr(fill), slab = strarr(slab)))
    addc(base_case(paste("trimfill", ds, m, est, sep = ":"), "trimfill", ds, R, m, "z",
                   estimator = est, expected = e, warnings = strarr(r$warnings)))
  }
}

## --- ranktest with ties (cor.test then uses the normal approximation, with a warning) -------
ties_R <- "dat <- data.frame(yi=c(0.1, 0.3, 0.2, 0.5, 0.4, 0.6), vi=c(0.01, 0.02, 0.02, 0.04, 0.05, 0.05))"
env <- new.env(parent = globalenv())
eval(parse(text = ties_R), envir = env)
R <- "ranktest(yi, vi, data=dat)"
r <- run(R, env)
addc(list(id = "ranktest:ties", `function` = "ranktest", dataset = "ties", method = json("null"),
          test = json("null"), yi = arr(env$dat$yi), vi = arr(env$dat$vi), data_R = ties_R, R = R,
          expected = if (r$error) list(error = r$value$message) else
            list(tau = sc(r$value$tau), pval = sc(r$value$pval), exact = FALSE),
          warnings = strarr(r$warnings)))

data_json <- lapply(datasets, function(s) list(
  measure = s$measure, data_R = s$data_R, yi = arr(s$data$yi), vi = arr(s$data$vi),
  slab = strarr(s$data$slab)))

pkgv <- function(p) utils::packageDescription(p)$Version
out <- list(
  meta = list(
    description = "metafor leave1out, cumul, regtest, ranktest and trimfill on rma.uni fits",
    R_version = R.version.string, metafor_version = pkgv("metafor"),
    metadat_version = pkgv("metadat"), jsonlite_version = pkgv("jsonlite"),
    generator = "tests/reference/make_bias_fixtures.R",
    control = list(threshold = 1e-12, tol = 1e-12, maxiter = 1000),
    missing_values = "NA, NaN, Inf and -Inf are written as null",
    number_format = "shortest of %.15g/%.16g/%.17g that round-trips to the identical IEEE double",
    grid = list(datasets = strarr(names(datasets)),
                leave1out = list(methods = strarr(L1O_METHODS), tests = strarr(L1O_TESTS)),
                cumul = list(methods = strarr(CUMUL_METHODS), tests = strarr(CUMUL_TESTS)),
                regtest = list(models = strarr(c("rma", "lm")), methods = strarr(REG_METHODS),
                               tests = strarr(REG_TESTS)),
                ranktest = list(),
                trimfill = list(methods = strarr(TF_METHODS), estimators = strarr(TF_ESTIMATORS),
                                note = "estimators R0 and Q0 for method DL only")),
    n_error_cases = sum(vapply(cases, function(c) !is.null(c$expected$error), logical(1)))
  ),
  datasets = data_json,
  cases = cases
)
write_fixture(out, "bias.json")
