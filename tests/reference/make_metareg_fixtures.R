## make_metareg_fixtures.R -- reference values from R/metafor 3.8-1 for metamsc's meta-regression
## (rma with mods), predict(newmods), anova (LRT and Wald btt), influence() and the intercept-only
## model at large k.
##
## Run from this folder:
##     cd tests/reference && Rscript make_metareg_fixtures.R
##
## Writes metareg.json. Deterministic: a rerun with the same R / package versions gives a
## byte-identical file. Every case records the R call that produced its numbers in "R" (evaluated
## from that string with `dat` as in "data_R" and `ctrl` as in "control").

source("fixture_setup.R")  # metafor, metadat, jsonlite, ctrl, ci_ctrl and the JSON writers

datasets <- list(
  "dat.bcg" = list(
    R = 'escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)',
    mods = c("ablat", "year", "alloc")),
  "dat.raudenbush1985" = list(
    R = 'dat.raudenbush1985',
    mods = c("weeks", "tester", "setting")),
  "dat.molloy2014" = list(
    R = 'escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)',
    mods = c("meanage", "quality", "controls")),
  "dat.colditz1994" = list(
    R = 'escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.colditz1994)',
    mods = c("ablat", "alloc"))
)

data_json <- list()
envs <- list()
for (nm in names(datasets)) {
  d <- datasets[[nm]]
  dat <- as.data.frame(eval(parse(text = d$R)))
  env <- new.env()
  assign("dat", dat, envir = env)
  assign("ctrl", ctrl, envir = env)
  envs[[nm]] <- env
  cols <- list(yi = arr(dat$yi), vi = arr(dat$vi))
  for (m in d$mods) cols[[m]] <- if (is.numeric(dat[[m]])) arr(dat[[m]]) else strarr(dat[[m]])
  data_json[[nm]] <- c(list(data_R = paste0("dat <- ", d$R)), cols)
}

rma_out <- function(res) {
  fs <- fitstats(res)
  list(
    names = strarr(rownames(res$beta)), beta = arr(res$beta), se = arr(res$se),
    zval = arr(res$zval), pval = arr(res$pval), ci_lb = arr(res$ci.lb), ci_ub = arr(res$ci.ub),
    QM = sc(res$QM), QMdf = arr(res$QMdf), QMp = sc(res$QMp), QE = sc(res$QE), QEp = sc(res$QEp),
    tau2 = sc(res$tau2), se_tau2 = sc(res$se.tau2), I2 = sc(res$I2), H2 = sc(res$H2),
    R2 = sc(if (is.null(res$R2)) NA else res$R2),
    ll_ML = sc(res$fit.stats["ll", "ML"]), AIC_ML = sc(res$fit.stats["AIC", "ML"]),
    BIC_ML = sc(res$fit.stats["BIC", "ML"]), AICc_ML = sc(res$fit.stats["AICc", "ML"]),
    ll_REML = sc(res$fit.stats["ll", "REML"]), AIC_REML = sc(res$fit.stats["AIC", "REML"]),
    BIC_REML = sc(res$fit.stats["BIC", "REML"]), AICc_REML = sc(res$fit.stats["AICc", "REML"]),
    logLik = sc(as.numeric(logLik(res))), parms = sc(res$parms))
}

cases <- list()
add <- function(id, dataset, call, expected) {
  cases[[length(cases) + 1L]] <<- list(id = id, dataset = dataset, R = call, expected = expected)
}

## --- rma with moderators: dat.bcg grid ---------------------------------------------------------
for (method in c("REML", "ML", "DL", "EE", "HE", "SJ", "PM", "EB", "HS")) {
  for (test in c("z", "knha")) {
    call <- sprintf('rma(yi, vi, mods = ~ ablat + year + alloc, data = dat, method = "%s", test = "%s", control = ctrl)',
                    method, test)
    res <- eval(parse(text = call), envir = envs[["dat.bcg"]])
    pr <- predict(res, newmods = rbind(c(10, 1960, 0, 0), c(50, 1975, 1, 0)))
    out <- rma_out(res)
    out$predict <- list(newmods = arr(c(10, 1960, 0, 0, 50, 1975, 1, 0)), pred = arr(pr$pred),
                        se = arr(pr$se), ci_lb = arr(pr$ci.lb), ci_ub = arr(pr$ci.ub),
                        pi_lb = arr(pr$pi.lb), pi_ub = arr(pr$pi.ub))
    add(sprintf("bcg:%s:%s", method, test), "dat.bcg", call, out)
  }
}

## --- other data sets ---------------------------------------------------------------------------
other <- list(
  list("dat.raudenbush1985", "~ weeks + tester"), list("dat.raudenbush1985", "~ weeks + setting + tester"),
  list("dat.molloy2014", "~ meanage + quality"), list("dat.molloy2014", "~ controls + quality"),
  list("dat.colditz1994", "~ ablat + alloc"))
for (o in other) {
  for (method in c("REML", "ML", "DL")) for (test in c("z", "knha")) {
    call <- sprintf('rma(yi, vi, mods = %s, data = dat, method = "%s", test = "%s", control = ctrl)',
                    o[[2]], method, test)
    res <- eval(parse(text = call), envir = envs[[o[[1]]]])
    add(sprintf("%s:%s:%s:%s", o[[1]], gsub(" ", "", o[[2]]), method, test), o[[1]], call, rma_out(res))
  }
}

## --- no intercept: one coefficient per subgroup (the subgroup model with a common tau^2) -------
call <- 'rma(yi, vi, mods = ~ alloc - 1, data = dat, method = "REML", control = ctrl)'
add("bcg:alloc-1:REML:z", "dat.bcg", call, rma_out(eval(parse(text = call), envir = envs[["dat.bcg"]])))
call <- 'rma(yi, vi, mods = ~ alloc - 1, data = dat, method = "DL", test = "knha", control = ctrl)'
add("bcg:alloc-1:DL:knha", "dat.bcg", call, rma_out(eval(parse(text = call), envir = envs[["dat.bcg"]])))

## --- anova: LRT (ML) and Wald tests of chosen coefficients ---------------------------------------
anova_cases <- list(
  list("dat.bcg", "~ ablat + year + alloc", "~ ablat", "ML"),
  list("dat.bcg", "~ ablat", "~ 1", "ML"),
  list("dat.raudenbush1985", "~ weeks + tester", "~ weeks", "ML"),
  list("dat.molloy2014", "~ meanage + quality", "~ 1", "ML"))
for (a in anova_cases) {
  call <- sprintf('anova(rma(yi, vi, mods = %s, data = dat, method = "%s", control = ctrl), rma(yi, vi, mods = %s, data = dat, method = "%s", control = ctrl))',
                  a[[2]], a[[4]], a[[3]], a[[4]])
  an <- eval(parse(text = call), envir = envs[[a[[1]]]])
  add(sprintf("anova:%s:%s:%s", a[[1]], gsub(" ", "", a[[2]]), gsub(" ", "", a[[3]])), a[[1]], call,
      list(full = a[[2]], reduced = a[[3]], method = a[[4]], LRT = sc(an$LRT), df = sc(an$parms.f - an$parms.r),
           pval = sc(an$pval), R2 = sc(an$R2), fit_full = sc(an$fit.stats.f["ll"]),
           fit_reduced = sc(an$fit.stats.r["ll"])))
}
for (test in c("z", "knha")) {
  call <- sprintf('anova(rma(yi, vi, mods = ~ ablat + year + alloc, data = dat, method = "REML", test = "%s", control = ctrl), btt = 3:4)', test)
  an <- eval(parse(text = call), envir = envs[["dat.bcg"]])
  add(sprintf("wald:bcg:btt3:4:%s", test), "dat.bcg", call,
      list(btt_R = arr(3:4), QM = sc(an$QM), QMdf = arr(an$QMdf), QMp = sc(an$QMp)))
}

## --- influence -----------------------------------------------------------------------------------
infl_cases <- list(
  list("dat.bcg", "~ ablat", "REML", "z"), list("dat.bcg", "~ ablat + year", "REML", "knha"),
  list("dat.bcg", "~ 1", "REML", "z"), list("dat.bcg", "~ 1", "DL", "knha"),
  list("dat.raudenbush1985", "~ weeks", "REML", "z"), list("dat.molloy2014", "~ meanage", "ML", "z"))
for (ic in infl_cases) {
  call <- sprintf('influence(rma(yi, vi, mods = %s, data = dat, method = "%s", test = "%s", control = ctrl))',
                  ic[[2]], ic[[3]], ic[[4]])
  inf <- eval(parse(text = call), envir = envs[[ic[[1]]]])
  x <- inf$inf
  ## the Baujat plot's coordinates: baujat() of the same model (drawn to a null device)
  bcall <- sub("^influence\\(", "baujat(", call)
  pdf(NULL)
  bj <- eval(parse(text = bcall), envir = envs[[ic[[1]]]])
  invisible(dev.off())
  add(sprintf("influence:%s:%s:%s:%s", ic[[1]], gsub(" ", "", ic[[2]]), ic[[3]], ic[[4]]), ic[[1]], call,
      list(rstudent = arr(x$rstudent), dffits = arr(x$dffits), cook_d = arr(x$cook.d),
           cov_r = arr(x$cov.r), tau2_del = arr(x$tau2.del), QE_del = arr(x$QE.del),
           hat = arr(x$hat), weight = arr(x$weight), inf = lgcarr(inf$is.infl),
           dfbs = lapply(unclass(inf$dfbs)[seq_len(inf$p)], arr),
           baujat_R = bcall, baujat_x = arr(bj$x), baujat_y = arr(bj$y)))
}

## --- fixed tau^2 and zero sampling variances ----------------------------------------------------
call <- 'rma(yi, vi, mods = ~ ablat, data = dat, tau2 = 0.05, control = ctrl)'
add("bcg:ablat:tau2fixed", "dat.bcg", call, rma_out(eval(parse(text = call), envir = envs[["dat.bcg"]])))
call <- 'rma(yi, vi, data = dat, tau2 = 0.1, test = "knha", control = ctrl)'
add("bcg:1:tau2fixed:knha", "dat.bcg", call, rma_out(eval(parse(text = call), envir = envs[["dat.bcg"]])))
for (method in c("REML", "ML", "HE", "SJ", "EB")) {
  call <- sprintf('rma(yi, replace(vi, 3, 0), data = dat, method = "%s", control = ctrl)', method)
  res <- suppressWarnings(eval(parse(text = call), envir = envs[["dat.bcg"]]))
  add(sprintf("bcg:1:zero_vi:%s", method), "dat.bcg", call, rma_out(res))
  call <- sprintf('rma(yi, replace(vi, 3, 0), mods = ~ ablat, data = dat, method = "%s", control = ctrl)', method)
  res <- suppressWarnings(eval(parse(text = call), envir = envs[["dat.bcg"]]))
  add(sprintf("bcg:ablat:zero_vi:%s", method), "dat.bcg", call, rma_out(res))
}

write_fixture(list(metafor = as.character(packageVersion("metafor")), control = ctrl,
                   datasets = data_json, cases = cases), "metareg.json")
