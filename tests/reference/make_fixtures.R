## make_fixtures.R -- reference values from R/metafor for the metamsc test suite.
##
## Run from this folder:
##     cd tests/reference && Rscript make_fixtures.R
##
## Writes escalc.json, rma.json, twogroup.json and glmm.json into the current
## directory. The output is deterministic (no timestamps, no random numbers), so
## re-running with the same R / package versions reproduces the files byte for
## byte. See README.md for the file formats.

source("fixture_setup.R")  # metafor, metadat, jsonlite, ctrl, ci_ctrl and the JSON writers

pkgv <- function(p) utils::packageDescription(p)$Version

meta_common <- function(description) list(
  description = description,
  R_version = R.version.string,
  metafor_version = pkgv("metafor"),
  metadat_version = pkgv("metadat"),
  jsonlite_version = pkgv("jsonlite"),
  lme4_version = pkgv("lme4"),
  generator = "tests/reference/make_fixtures.R",
  control = list(threshold = 1e-12, tol = 1e-12, maxiter = 1000),
  confint_control = list(tol = 1e-12),
  missing_values = "NA, NaN, Inf and -Inf are written as null",
  number_format = "shortest of %.15g/%.16g/%.17g that round-trips to the identical IEEE double"
)

## ---------------------------------------------------------------------------
## evaluation helper: evaluate an R call given as a string, collecting warnings
## and turning errors into a message
## ---------------------------------------------------------------------------

run <- function(text, env) {
  warns <- character(0)
  val <- withCallingHandlers(
    tryCatch(eval(parse(text = text), envir = env),
             error = function(e) structure(list(message = conditionMessage(e)),
                                           class = "run_error")),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  list(value = val, warnings = unique(warns), error = inherits(val, "run_error"))
}

errmsg <- function(r) r$value$message

## R literal for a call string
lit <- function(v) {
  if (is.character(v)) return(paste0("'", v, "'"))
  if (is.logical(v)) return(if (v) "TRUE" else "FALSE")
  format(v, digits = 15)
}

## ---------------------------------------------------------------------------
## data sets
## ---------------------------------------------------------------------------

## single-group proportions (xi events out of ni)
pritz <- dat.pritz1997
debruin <- dat.debruin2009
zeros   <- data.frame(xi = c(0, 0, 1, 0, 3, 0), ni = c(10, 17, 12, 5, 20, 8))
k2      <- data.frame(xi = c(8, 2), ni = c(17, 2))
pasi40  <- data.frame(xi = c(2, 1, 8, 2, 1), ni = c(2, 1, 17, 2, 1),
                      study = c("Chen 2016", "Comella 2018", "Cheng 2022",
                                "De Jesus 2016", "Wang 2020"))
allzero <- data.frame(xi = c(0, 0, 0, 0, 0), ni = c(2, 2, 1, 1, 17))

prop_sets <- list(
  dat.pritz1997   = list(data = pritz, data_R = "dat.pritz1997",
                         slab = as.character(pritz$authors)),
  dat.debruin2009 = list(data = debruin, data_R = "dat.debruin2009",
                         slab = paste0(debruin$author, ", ", debruin$year)),
  zeros   = list(data = zeros,   data_R = "zeros",   slab = NULL),
  k2      = list(data = k2,      data_R = "k2",      slab = NULL),
  pasi40  = list(data = pasi40,  data_R = "pasi40",  slab = pasi40$study),
  allzero = list(data = allzero, data_R = "allzero", slab = NULL)
)

## single-group event counts (xi events over ti person-time)
rates <- data.frame(xi = c(3, 0, 5, 2, 9), ti = c(100.5, 40, 210, 80.2, 300))
nielweise2008_g1 <- data.frame(xi = dat.nielweise2008$x1i, ti = dat.nielweise2008$t1i)
rate_sets <- list(
  rates = list(data = rates, data_R = "rates", slab = NULL),
  dat.nielweise2008_g1 = list(
    data = nielweise2008_g1,
    data_R = "data.frame(xi=dat.nielweise2008$x1i, ti=dat.nielweise2008$t1i)",
    slab = paste0(dat.nielweise2008$authors, ", ", dat.nielweise2008$year))
)

## two-group binary data: ai/bi = events/non-events group 1, ci/di group 2
mk2x2 <- function(ai, bi, ci, di) data.frame(ai = ai, bi = bi, ci = ci, di = di,
                                             n1i = ai + bi, n2i = ci + di)
bcg2 <- with(dat.bcg, mk2x2(tpos, tneg, cpos, cneg))
niel2007 <- with(dat.nielweise2007, mk2x2(ai, n1i - ai, ci, n2i - ci))
collins_ped <- with(dat.collins1985b, mk2x2(ped.xti, fup.nti - ped.xti,
                                            ped.xci, fup.nci - ped.xci))
## table 9 of Yusuf et al. (1985); the two trials with missing counts (Ayerst, ISIS) are dropped
yus9 <- dat.yusuf1985[dat.yusuf1985$table == "9" & !is.na(dat.yusuf1985$ai), ]
yusuf_t9 <- with(yus9, mk2x2(ai, n1i - ai, ci, n2i - ci))

bin_sets <- list(
  dat.bcg = list(
    data = bcg2, slab = paste0(dat.bcg$author, ", ", dat.bcg$year), zero = FALSE,
    data_R = "with(dat.bcg, data.frame(ai=tpos, bi=tneg, ci=cpos, di=cneg, n1i=tpos+tneg, n2i=cpos+cneg))"),
  dat.nielweise2007 = list(
    data = niel2007, slab = paste0(dat.nielweise2007$author, ", ", dat.nielweise2007$year), zero = TRUE,
    data_R = "with(dat.nielweise2007, data.frame(ai=ai, bi=n1i-ai, ci=ci, di=n2i-ci, n1i=n1i, n2i=n2i))"),
  dat.collins1985b_ped = list(
    data = collins_ped, slab = paste0(dat.collins1985b$author, ", ", dat.collins1985b$year), zero = TRUE,
    data_R = "with(dat.collins1985b, data.frame(ai=ped.xti, bi=fup.nti-ped.xti, ci=ped.xci, di=fup.nci-ped.xci, n1i=fup.nti, n2i=fup.nci))"),
  dat.yusuf1985_t9 = list(
    data = yusuf_t9, slab = as.character(yus9$trial), zero = TRUE,
    data_R = "with(subset(dat.yusuf1985, table=='9' & !is.na(ai)), data.frame(ai=ai, bi=n1i-ai, ci=ci, di=n2i-ci, n1i=n1i, n2i=n2i))")
)

## two-group continuous data
cont_sets <- list(
  dat.normand1999 = list(data = dat.normand1999, data_R = "dat.normand1999",
                         slab = as.character(dat.normand1999$source)),
  dat.curtis1998  = list(data = dat.curtis1998, data_R = "dat.curtis1998",
                         slab = paste0("id ", dat.curtis1998$id))
)

## single-group pre/post data: m1i = post-test mean, m2i = pre-test mean,
## sd1i = post-test SD, sd2i = pre-test SD
prepost <- data.frame(ni   = c(14, 20, 12, 9, 30),
                      m1i  = c(13.8, 15.2, 10.1, 20.3, 12.0),
                      m2i  = c(20.1, 22.0, 14.8, 24.1, 18.5),
                      sd1i = c(10.2, 6.1, 4.3, 7.7, 5.5),
                      sd2i = c(3.1, 5.9, 4.0, 6.8, 6.0),
                      ri   = c(0.5, 0.5, 0.3, 0.7, 0.6))

## precomputed yi/vi
bcg_rr <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
gen_sets <- list(
  dat.bcg = list(data = bcg_rr, slab = paste0(dat.bcg$author, ", ", dat.bcg$year),
                 data_R = "escalc(measure='RR', ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)",
                 note = "log risk ratios (measure RR) computed by escalc"),
  dat.hackshaw1998 = list(data = dat.hackshaw1998,
                          slab = paste0(dat.hackshaw1998$author, ", ", dat.hackshaw1998$year),
                          data_R = "dat.hackshaw1998", note = "yi/vi as given (log odds ratios)"),
  dat.raudenbush1985 = list(data = dat.raudenbush1985,
                            slab = paste0(dat.raudenbush1985$author, ", ", dat.raudenbush1985$year),
                            data_R = "dat.raudenbush1985", note = "yi/vi as given (standardized mean differences)")
)

new_env <- function(...) {
  env <- new.env(parent = globalenv())
  args <- list(...)
  for (n in names(args)) assign(n, args[[n]], envir = env)
  env
}

## ===========================================================================
## File 1: escalc.json
## ===========================================================================

ADD0_MEASURES <- c("AS", "PHI", "RTET", "IRSD", "PAS", "PFT", "IRS", "IRFT")

## argmap: metafor argument name -> column name of `dat`
escalc_case <- function(dataset, measure, dat, data_R, argmap, extra = list(),
                        note = NULL, inputs_extra = NULL, id_suffix = NULL) {
  argtxt <- paste0(names(argmap), "=", unlist(argmap), collapse = ", ")
  extratxt <- if (length(extra))
    paste0(", ", paste0(names(extra), "=", vapply(extra, lit, ""), collapse = ", ")) else ""
  R <- paste0("escalc(measure='", measure, "', ", argtxt, ", data=dat", extratxt, ")")
  env <- new_env(dat = dat)
  r <- run(R, env)
  if (r$error) stop("escalc failed: ", R, ": ", errmsg(r))
  es <- r$value

  eff <- list(
    add = if (!is.null(extra$add)) extra$add else if (measure %in% ADD0_MEASURES) 0 else 0.5,
    to = if (!is.null(extra$to)) extra$to else "only0",
    drop00 = if (!is.null(extra$drop00)) extra$drop00 else FALSE,
    vtype = if (!is.null(extra$vtype)) extra$vtype else "LS"
  )
  inputs <- lapply(argmap, function(col) dat[[col]])
  if (!is.null(inputs_extra)) inputs <- c(inputs, inputs_extra[setdiff(names(inputs_extra), names(inputs))])

  id <- paste(c("escalc", dataset, measure,
                if (length(extra)) paste0(names(extra), "=", vapply(extra, as.character, "")),
                id_suffix), collapse = ":")
  out <- list(
    id = id,
    dataset = dataset,
    measure = measure,
    args = list(add = sc(eff$add), to = eff$to, drop00 = eff$drop00, vtype = eff$vtype),
    args_passed = if (length(extra)) lapply(extra, function(v) if (is.numeric(v)) sc(v) else v)
                  else setNames(list(), character(0)),
    argument_columns = argmap,
    inputs = arrs(inputs),
    yi = arr(es$yi),
    vi = arr(es$vi),
    data_R = paste0("dat <- ", data_R),
    R = R,
    warnings = strarr(r$warnings)
  )
  if (!is.null(note)) out$note <- note
  out
}

esc_cases <- list()
addc <- function(x) esc_cases[[length(esc_cases) + 1L]] <<- x

## proportions
for (ds in names(prop_sets)) {
  s <- prop_sets[[ds]]
  for (m in c("PR", "PLN", "PLO", "PAS", "PFT"))
    addc(escalc_case(ds, m, s$data[, c("xi", "ni")], s$data_R, list(xi = "xi", ni = "ni")))
}
for (m in c("PLO", "PR", "PLN"))
  for (to in c("all", "if0all", "none"))
    addc(escalc_case("zeros", m, zeros, "zeros", list(xi = "xi", ni = "ni"), extra = list(to = to)))

## incidence rates
for (ds in names(rate_sets)) {
  s <- rate_sets[[ds]]
  for (m in c("IR", "IRLN", "IRS", "IRFT"))
    addc(escalc_case(ds, m, s$data, s$data_R, list(xi = "xi", ti = "ti")))
}

## single-group means and pre/post changes
for (m in c("MN", "MNLN"))
  addc(escalc_case("prepost", m, prepost, "prepost", list(mi = "m1i", sdi = "sd1i", ni = "ni"),
                   note = "post-test means: mi = prepost$m1i, sdi = prepost$sd1i (post-test SD)"))
for (m in c("MC", "SMCC"))
  addc(escalc_case("prepost", m, prepost, "prepost",
                   list(m1i = "m1i", m2i = "m2i", sd1i = "sd1i", sd2i = "sd2i", ni = "ni", ri = "ri"),
                   note = "m1i = post-test mean, m2i = pre-test mean, sd1i = post-test SD, sd2i = pre-test SD; yi = f(m1i - m2i)"))
addc(escalc_case("prepost", "SMCR", prepost, "prepost",
                 list(m1i = "m1i", m2i = "m2i", sd1i = "sd2i", ni = "ni", ri = "ri"),
                 note = paste("raw-score standardisation: metafor's SMCR uses only sd1i, so sd1i was given the",
                              "PRE-test SD (column prepost$sd2i); inputs$sd1i holds exactly those passed values.",
                              "yi = J(ni-1) * (m1i - m2i) / sd1i, vi = 2*(1-ri)/ni + yi^2/(2*ni)")))

## two-group binary
for (ds in names(bin_sets)) {
  s <- bin_sets[[ds]]
  am <- list(ai = "ai", bi = "bi", ci = "ci", di = "di")
  inx <- list(n1i = s$data$n1i, n2i = s$data$n2i)
  for (m in c("RR", "OR", "RD"))
    addc(escalc_case(ds, m, s$data, s$data_R, am, inputs_extra = inx))
  if (s$zero) {
    for (m in c("RR", "OR")) for (d0 in c(TRUE, FALSE))
      addc(escalc_case(ds, m, s$data, s$data_R, am, extra = list(drop00 = d0), inputs_extra = inx))
    for (m in c("RR", "OR", "RD")) for (to in c("all", "if0all", "none"))
      addc(escalc_case(ds, m, s$data, s$data_R, am, extra = list(to = to), inputs_extra = inx))
  }
}

## two-group continuous
for (ds in names(cont_sets)) {
  s <- cont_sets[[ds]]
  for (m in c("MD", "SMD", "ROM"))
    addc(escalc_case(ds, m, s$data, s$data_R,
                     list(m1i = "m1i", sd1i = "sd1i", n1i = "n1i", m2i = "m2i", sd2i = "sd2i", n2i = "n2i"),
                     note = if (m == "SMD") "SMD = Hedges' g with the exact bias correction J(n1i+n2i-2) = exp(lgamma(m/2) - log(sqrt(m/2)) - lgamma((m-1)/2)); vtype='LS'" else NULL))
}

## ids must be unique
stopifnot(!anyDuplicated(vapply(esc_cases, `[[`, "", "id")))

write_fixture(list(
  meta = c(meta_common("Effect sizes and sampling variances from metafor::escalc()"),
           list(add_note = paste("args$add is the value escalc actually used: add defaults to 1/2 but escalc",
                                 "internally uses add=0 for", paste(ADD0_MEASURES, collapse = ", "),
                                 "unless add is passed explicitly (see ?escalc, Note). args_passed lists the",
                                 "non-default arguments that appear in the R call."))),
  cases = esc_cases), "escalc.json")

## ===========================================================================
## File 2: rma.json
## ===========================================================================

METHODS <- c("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ", "GENQM")
TESTS <- c("z", "t", "knha", "adhoc")
PROP_MEASURES <- c("PR", "PLO", "PFT", "PAS", "PLN")
PROP_DATASETS <- c("dat.pritz1997", "dat.debruin2009", "zeros", "k2", "pasi40")

natural_spec <- function(measure) switch(measure,
  PLO  = list(transf = "transf.ilogit", targs = NULL),
  PAS  = list(transf = "transf.iarcsin", targs = NULL),
  PFT  = list(transf = "transf.ipft.hm", targs = "list(ni=dat$ni)"),
  PLN  = list(transf = "exp", targs = NULL),
  PR   = list(transf = "none", targs = NULL),
  IR   = list(transf = "none", targs = NULL),
  IRLN = list(transf = "exp", targs = NULL),
  NULL)

## a proportion / rate data set prepared for rma: escalc with metafor defaults
prep_single <- function(dataset, measure) {
  if (measure %in% c("IR", "IRLN")) {
    s <- rate_sets[[dataset]]
    eR <- paste0("escalc(measure='", measure, "', xi=xi, ti=ti, data=", s$data_R, ")")
    raw <- list(xi = s$data$xi, ti = s$data$ti)
  } else {
    s <- prop_sets[[dataset]]
    eR <- paste0("escalc(measure='", measure, "', xi=xi, ni=ni, data=", s$data_R, ")")
    raw <- list(xi = s$data$xi, ni = s$data$ni)
  }
  env <- new_env(dat.pritz1997 = pritz, dat.debruin2009 = debruin, zeros = zeros, k2 = k2,
                 pasi40 = pasi40, allzero = allzero, rates = rates)
  dat <- eval(parse(text = eR), envir = env)
  list(dat = dat, data_R = paste0("dat <- ", eR), raw = raw, slab = s$slab,
       escalc_args = list(add = sc(if (measure %in% ADD0_MEASURES) 0 else 0.5), to = "only0"))
}

prep_gen <- function(dataset) {
  s <- gen_sets[[dataset]]
  dat <- data.frame(yi = as.numeric(s$data$yi), vi = as.numeric(s$data$vi))
  if (dataset == "dat.bcg") dat <- s$data   # keep the escalc object, exactly as in data_R
  list(dat = dat, data_R = paste0("dat <- ", s$data_R), raw = NULL, slab = s$slab,
       escalc_args = NULL, note = s$note)
}

rma_expected <- function(fit, method, measure, level, env) {
  e <- list(
    k = sc(fit$k), beta = sc(fit$beta[1]), se = sc(fit$se), zval = sc(fit$zval),
    pval = sc(fit$pval), ci_lb = sc(fit$ci.lb), ci_ub = sc(fit$ci.ub),
    tau2 = sc(fit$tau2), se_tau2 = sc(fit$se.tau2), I2 = sc(fit$I2), H2 = sc(fit$H2),
    QE = sc(fit$QE), QEp = sc(fit$QEp),
    weights = arr(weights(fit)),
    iterations = json("null"),
    dfs = sc(fit$ddf)
  )
  ## prediction (pooled estimate) ------------------------------------------
  p <- run("predict(fit)", env)
  if (p$error) {
    e$predict_error <- errmsg(p)
  } else {
    pr <- p$value
    e$pred <- sc(pr$pred); e$pred_se <- sc(pr$se)
    e$pred_ci_lb <- sc(pr$ci.lb); e$pred_ci_ub <- sc(pr$ci.ub)
    e$pi_lb <- sc(pr$pi.lb); e$pi_ub <- sc(pr$pi.ub)
  }
  ## Q-profile (or generalized Q) CIs for tau2, I2, H2 ------------------------
  nulls <- c("tau2_ci_lb", "tau2_ci_ub", "I2_ci_lb", "I2_ci_ub", "H2_ci_lb", "H2_ci_ub")
  for (n in nulls) e[[n]] <- json("null")
  if (method %in% c("EE", "FE")) {
    e$confint_R <- json("null")
  } else {
    cR <- "confint(fit, control=list(tol=1e-12))"
    e$confint_R <- cR
    e$confint_type <- if (method %in% c("GENQ", "GENQM")) "GENQ" else "QP"
    ci <- run(cR, env)
    if (ci$error) {
      e$confint_error <- errmsg(ci)
    } else {
      rnd <- ci$value$random
      e$tau2_ci_lb <- sc(rnd["tau^2", "ci.lb"]); e$tau2_ci_ub <- sc(rnd["tau^2", "ci.ub"])
      e$I2_ci_lb <- sc(rnd["I^2(%)", "ci.lb"]);  e$I2_ci_ub <- sc(rnd["I^2(%)", "ci.ub"])
      e$H2_ci_lb <- sc(rnd["H^2", "ci.lb"]);     e$H2_ci_ub <- sc(rnd["H^2", "ci.ub"])
      e$tau2_ci_lb_sign <- str1(ci$value$lb.sign)
      e$tau2_ci_ub_sign <- str1(ci$value$ub.sign)
      e$confint_ci_null <- isTRUE(ci$value$ci.null)
      if (length(ci$warnings)) e$confint_warnings <- strarr(ci$warnings)
    }
  }
  ## back-transformed pooled values -------------------------------------------
  ns <- natural_spec(measure)
  if (!is.null(ns)) {
    nR <- if (ns$transf == "none") "predict(fit)" else
      paste0("predict(fit, transf=", ns$transf, if (!is.null(ns$targs)) paste0(", targs=", ns$targs), ")")
    np <- run(nR, env)
    nat <- list(transf = ns$transf, R = nR)
    if (np$error) {
      nat$error <- errmsg(np)
    } else {
      v <- np$value
      nat$pred <- sc(v$pred); nat$ci_lb <- sc(v$ci.lb); nat$ci_ub <- sc(v$ci.ub)
      nat$pi_lb <- sc(v$pi.lb); nat$pi_ub <- sc(v$pi.ub)
    }
    if (measure == "PFT") {
      sR <- paste0("summary(dat, transf=transf.ipft, ni=dat$ni",
                   if (level != 95) paste0(", level=", level), ")")
      sp <- run(sR, env)
      nat$study_R <- sR
      if (sp$error) nat$study_error <- errmsg(sp) else {
        nat$study_est <- arr(sp$value$yi)
        nat$study_ci_lb <- arr(sp$value$ci.lb)
        nat$study_ci_ub <- arr(sp$value$ci.ub)
      }
    }
    e$natural <- nat
  }
  e
}

rma_case <- function(block, dataset, measure, method, test, level, prep) {
  R <- paste0("rma(yi, vi, ", if (method %in% c("GENQ", "GENQM")) "weights=1/vi, ",
              "data=dat, method='", method, "', test='", test, "'",
              if (level != 95) paste0(", level=", level), ", control=ctrl)")
  env <- new_env(dat = prep$dat, ctrl = ctrl)
  r <- run(paste0("fit <- ", R), env)
  case <- list(
    id = paste("rma", dataset, measure, method, test, level, sep = ":"),
    block = block, dataset = dataset, measure = measure, method = method, test = test,
    level = sc(level / 100),
    yi = arr(prep$dat$yi), vi = arr(prep$dat$vi)
  )
  if (!is.null(prep$raw)) for (n in names(prep$raw)) case[[n]] <- arr(prep$raw[[n]])
  case$slab <- strarr(prep$slab)
  case$escalc_args <- if (is.null(prep$escalc_args)) json("null") else prep$escalc_args
  case$data_R <- prep$data_R
  case$R <- R
  if (!is.null(prep$note)) case$note <- prep$note
  if (r$error) {
    case$expected <- list(error = errmsg(r))
  } else {
    case$expected <- rma_expected(r$value, method, measure, level, env)
  }
  case$warnings <- strarr(r$warnings)
  case$convergence_warning <- any(grepl("converge", r$warnings, ignore.case = TRUE))
  case
}

rma_cases <- list()
addr <- function(x) rma_cases[[length(rma_cases) + 1L]] <<- x

grids <- list(
  main = list(datasets = PROP_DATASETS, measures = PROP_MEASURES, methods = METHODS,
              tests = TESTS, levels = c(0.95)),
  allzero = list(datasets = c("allzero"), measures = c("PLO", "PFT"), methods = c("EE", "DL"),
                 tests = TESTS, levels = c(0.95)),
  level90 = list(datasets = c("dat.pritz1997", "pasi40"), measures = PROP_MEASURES,
                 methods = c("EE", "DL", "REML", "PM"), tests = c("z", "knha"), levels = c(0.90)),
  gen = list(datasets = c("dat.bcg", "dat.hackshaw1998", "dat.raudenbush1985"), measures = c("GEN"),
             methods = METHODS, tests = TESTS, levels = c(0.95)),
  gen_level90 = list(datasets = c("dat.bcg"), measures = c("GEN"), methods = c("DL", "REML"),
                     tests = c("z", "knha"), levels = c(0.90)),
  rates = list(datasets = c("rates"), measures = c("IR", "IRLN"), methods = METHODS,
               tests = TESTS, levels = c(0.95))
)
## keep length-1 vectors as JSON arrays
grids_json <- lapply(grids, function(g) lapply(g, function(v) if (is.numeric(v)) arr(v) else strarr(v)))

for (bn in names(grids)) {
  g <- grids[[bn]]
  for (ds in g$datasets) for (m in g$measures) {
    prep <- if (m == "GEN") prep_gen(ds) else prep_single(ds, m)
    for (meth in g$methods) for (te in g$tests) for (lv in g$levels)
      addr(rma_case(bn, ds, m, meth, te, round(lv * 100), prep))
  }
  cat("rma block", bn, "done\n")
}

## published check (Viechtbauer 2010, BCG log risk ratios, REML): tau^2 = 0.3132,
## estimate = -0.7145, SE = 0.1798, I^2 = 92.22%
pub <- rma_case("published", "dat.bcg", "GEN", "REML", "z", 95, prep_gen("dat.bcg"))
pub$id <- "published:dat.bcg:logRR:REML:z"
pub$published <- list(tau2 = sc(0.3132), beta = sc(-0.7145), se = sc(0.1798), I2 = sc(92.22),
                      tolerance = sc(5e-5), I2_tolerance = sc(5e-3),
                      source = "Viechtbauer (2010), J Stat Softw 36(3); metafor documentation for dat.bcg")
stopifnot(abs(as.numeric(unclass(pub$expected$tau2)) - 0.3132) < 5e-5)
addr(pub)

stopifnot(!anyDuplicated(vapply(rma_cases, `[[`, "", "id")))

n_err <- sum(vapply(rma_cases, function(x) !is.null(x$expected$error), TRUE))
write_fixture(list(
  meta = c(meta_common("Random/common-effects models from metafor::rma.uni()"),
           list(grid = grids_json$main,
                grids = grids_json,
                grid_note = paste("Each entry of 'grids' is a full Cartesian product (datasets x measures x",
                                  "methods x tests x levels); every case carries its block name in 'block'.",
                                  "'grid' is the main block. One extra case (block 'published') checks the",
                                  "published BCG numbers."),
                methods_not_available = list(),
                methods_note = paste("All of EE, DL, HE, HS, HSk, SJ, ML, REML, EB, PM, PMM, GENQ exist in",
                                     "metafor 3.8-1 (GENQM also added). GENQ/GENQM are fitted with weights=1/vi.",
                                     "GENQM and confint() for GENQ need the R package CompQuadForm, which is not",
                                     "installed, so those record the error message."),
                tests_available = TESTS,
                n_error_cases = n_err)),
  cases = rma_cases), "rma.json")

## ===========================================================================
## File 3: twogroup.json (Mantel-Haenszel and Peto)
## ===========================================================================

tg_cases <- list()
addt <- function(x) tg_cases[[length(tg_cases) + 1L]] <<- x

twogroup_case <- function(fun, dataset, measure, extra = list()) {
  s <- bin_sets[[dataset]]
  extratxt <- if (length(extra))
    paste0(", ", paste0(names(extra), "=", vapply(extra, lit, ""), collapse = ", ")) else ""
  R <- paste0(fun, "(ai=ai, bi=bi, ci=ci, di=di, data=dat",
              if (fun == "rma.mh") paste0(", measure='", measure, "'"), extratxt, ")")
  env <- new_env(dat = s$data)
  r <- run(paste0("fit <- ", R), env)
  args <- list(add = sc(if (!is.null(extra$add)) extra$add else 0.5),
               to = if (!is.null(extra$to)) extra$to else "only0",
               drop00 = if (!is.null(extra$drop00)) extra$drop00 else TRUE)
  if (fun == "rma.mh") args$correct <- if (!is.null(extra$correct)) extra$correct else TRUE
  case <- list(
    id = paste(c("twogroup", fun, dataset, measure,
                 if (length(extra)) paste0(names(extra), "=", vapply(extra, as.character, ""))), collapse = ":"),
    "function" = fun, dataset = dataset, measure = measure, level = sc(0.95),
    args = args,
    args_passed = if (length(extra)) extra else setNames(list(), character(0)),
    inputs = arrs(as.list(s$data[, c("ai", "bi", "ci", "di", "n1i", "n2i")])),
    slab = strarr(s$slab),
    data_R = paste0("dat <- ", s$data_R),
    R = R
  )
  if (r$error) {
    case$expected <- list(error = errmsg(r))
  } else {
    f <- r$value
    ex <- list(k = sc(f$k), k_yi = sc(f$k.yi), beta = sc(f$beta[1]), se = sc(f$se),
               zval = sc(f$zval), pval = sc(f$pval), ci_lb = sc(f$ci.lb), ci_ub = sc(f$ci.ub),
               QE = sc(f$QE), QEp = sc(f$QEp), I2 = sc(f$I2), H2 = sc(f$H2))
    is_or <- fun == "rma.mh" && measure == "OR"
    ex$CO   <- sc(if (is_or) f$CO else NULL);  ex$COp  <- sc(if (is_or) f$COp else NULL)
    ex$CMH  <- sc(if (is_or) f$MH else NULL);  ex$CMHp <- sc(if (is_or) f$MHp else NULL)
    ex$BD   <- sc(if (is_or) f$BD else NULL);  ex$BDp  <- sc(if (is_or) f$BDp else NULL)
    ex$TA   <- sc(if (is_or) f$TA else NULL);  ex$TAp  <- sc(if (is_or) f$TAp else NULL)
    w <- run("weights(fit)", env)
    ex$weights <- if (w$error) json("null") else arr(w$value)
    ## per-study outcomes used for the heterogeneity statistics (after add/to/drop00)
    ex$yi <- arr(f$yi.f); ex$vi <- arr(f$vi.f)
    if (measure %in% c("OR", "RR")) {
      ex$exp_beta <- sc(exp(f$beta[1])); ex$exp_ci_lb <- sc(exp(f$ci.lb)); ex$exp_ci_ub <- sc(exp(f$ci.ub))
    }
    case$expected <- ex
  }
  case$warnings <- strarr(r$warnings)
  case
}

for (ds in names(bin_sets)) {
  for (m in c("OR", "RR", "RD")) addt(twogroup_case("rma.mh", ds, m))
  addt(twogroup_case("rma.mh", ds, "OR", list(correct = FALSE)))
  addt(twogroup_case("rma.peto", ds, "OR"))
  if (bin_sets[[ds]]$zero) {
    for (m in c("OR", "RR", "RD")) addt(twogroup_case("rma.mh", ds, m, list(drop00 = FALSE)))
    addt(twogroup_case("rma.mh", ds, "OR", list(to = "all")))
    addt(twogroup_case("rma.peto", ds, "OR", list(drop00 = FALSE)))
  }
}
stopifnot(!anyDuplicated(vapply(tg_cases, `[[`, "", "id")))

write_fixture(list(
  meta = c(meta_common("Mantel-Haenszel (metafor::rma.mh) and Peto (metafor::rma.peto) fixed-effects models"),
           list(notes = paste("beta/se/ci are on the log scale for OR/RR (raw scale for RD). CMH/CMHp is",
                              "metafor's fit$MH/fit$MHp (Cochran-Mantel-Haenszel test); CO = Cochran's test,",
                              "BD = Breslow-Day, TA = Tarone's test; these are null for non-OR measures.",
                              "expected$yi/vi are the per-study outcomes metafor uses for QE (after",
                              "add/to/drop00); args are the effective values (rma.mh/rma.peto default",
                              "add=1/2, to='only0', drop00=TRUE; rma.mh correct=TRUE)."))),
  cases = tg_cases), "twogroup.json")

## ===========================================================================
## File 4: glmm.json
## ===========================================================================

gl_cases <- list()
addg <- function(x) gl_cases[[length(gl_cases) + 1L]] <<- x

glmm_case <- function(dataset, measure, method, model, dat, data_R, argtxt, inputs, slab) {
  R <- paste0("rma.glmm(measure='", measure, "', ", argtxt, ", data=dat",
              if (!is.null(model)) paste0(", model='", model, "'"),
              ", method='", method, "')")
  env <- new_env(dat = dat)
  r <- run(paste0("fit <- ", R), env)
  case <- list(
    id = paste(c("glmm", dataset, measure, model, method), collapse = ":"),
    dataset = dataset, measure = measure, model = str1(model), method = method,
    test = "z", level = sc(0.95), nAGQ = sc(7),
    nAGQ_effective = if (method == "EE") json("null") else
      sc(if (any(grepl("nAGQ automatically set to 1", r$warnings))) 1 else 7),
    inputs = arrs(inputs), slab = strarr(slab),
    data_R = paste0("dat <- ", data_R), R = R
  )
  if (r$error) {
    case$expected <- list(error = errmsg(r))
  } else {
    f <- r$value
    ex <- list(k = sc(f$k), beta = sc(f$beta[1]), se = sc(f$se), zval = sc(f$zval),
               pval = sc(f$pval), ci_lb = sc(f$ci.lb), ci_ub = sc(f$ci.ub),
               tau2 = sc(f$tau2), I2 = sc(f$I2), H2 = sc(f$H2),
               QE_Wld = sc(f$QE.Wld), QEp_Wld = sc(f$QEp.Wld),
               QE_LRT = sc(f$QE.LRT), QEp_LRT = sc(f$QEp.LRT), QE_df = sc(f$QE.df))
    p <- run("predict(fit)", env)
    if (p$error) ex$predict_error <- errmsg(p) else {
      ex$pred <- sc(p$value$pred); ex$pred_se <- sc(p$value$se)
      ex$pred_ci_lb <- sc(p$value$ci.lb); ex$pred_ci_ub <- sc(p$value$ci.ub)
      ex$pi_lb <- sc(p$value$pi.lb); ex$pi_ub <- sc(p$value$pi.ub)
    }
    tr <- switch(measure, PLO = "transf.ilogit", IRLN = "exp", OR = "exp")
    nR <- paste0("predict(fit, transf=", tr, ")")
    np <- run(nR, env)
    nat <- list(transf = tr, R = nR)
    if (np$error) nat$error <- errmsg(np) else {
      nat$pred <- sc(np$value$pred); nat$ci_lb <- sc(np$value$ci.lb); nat$ci_ub <- sc(np$value$ci.ub)
      nat$pi_lb <- sc(np$value$pi.lb); nat$pi_ub <- sc(np$value$pi.ub)
    }
    ex$natural <- nat
    case$expected <- ex
  }
  case$warnings <- strarr(r$warnings)
  case$convergence_warning <- any(grepl("converge", r$warnings, ignore.case = TRUE))
  case
}

for (ds in c("dat.pritz1997", "dat.debruin2009", "zeros", "pasi40", "allzero")) {
  s <- prop_sets[[ds]]
  for (meth in c("ML", "EE"))
    addg(glmm_case(ds, "PLO", meth, NULL, s$data[, c("xi", "ni")], s$data_R, "xi=xi, ni=ni",
                   list(xi = s$data$xi, ni = s$data$ni), s$slab))
}
for (meth in c("ML", "EE"))
  addg(glmm_case("rates", "IRLN", meth, NULL, rates, "rates", "xi=xi, ti=ti",
                 list(xi = rates$xi, ti = rates$ti), NULL))
s <- bin_sets$dat.nielweise2007
for (model in c("UM.RS", "UM.FS")) for (meth in c("ML", "EE"))
  addg(glmm_case("dat.nielweise2007", "OR", meth, model, s$data, s$data_R,
                 "ai=ai, bi=bi, ci=ci, di=di", as.list(s$data), s$slab))
stopifnot(!anyDuplicated(vapply(gl_cases, `[[`, "", "id")))

write_fixture(list(
  meta = c(meta_common("Generalized linear (mixed-effects) models from metafor::rma.glmm()"),
           list(notes = paste("rma.glmm is run with its defaults (nAGQ=7, test='z', default optimizer",
                              "settings); the rma.uni control list does not apply to rma.glmm. 'model' is",
                              "only used for the two-group measure OR (null otherwise). For model='UM.RS'",
                              "metafor silently drops to nAGQ=1 (see nAGQ_effective and the warnings).",
                              "convergence_warning is TRUE when a lme4/metafor warning mentions convergence;",
                              "fits that error are recorded as expected = {error: message}."))),
  cases = gl_cases), "glmm.json")
