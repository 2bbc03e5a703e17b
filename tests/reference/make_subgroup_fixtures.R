## make_subgroup_fixtures.R -- reference values from R/metafor for metamsc's subgroup analyses
## (a tau^2 per subgroup, or one common tau^2) and for refits of a GLMM on subsets of its studies
## (what metamsc's leave_one_out(fit_glmm(...)) must give).
##
## Run from this folder:
##     cd tests/reference && Rscript make_subgroup_fixtures.R
##
## Writes subgroups.json. Deterministic: a rerun with the same R / package versions gives a
## byte-identical file. Every case records the R calls it ran; numbers as in json_helpers.R.
##
## Subgroups, separate tau^2 (R meta's default): rma(yi, vi, subset = g == level) per level, and
## Q_between = QE of rma(estimates, sei = SEs, method = "EE") (the heterogeneity of the subgroup
## estimates). Common tau^2 (meta's tau.common = TRUE): rma(yi, vi, mods = ~ factor(g) - 1) for the
## subgroup means and tau^2, and QM of rma(yi, vi, mods = ~ factor(g)) for the test of
## subgroup differences (chi^2 under z, F under knha).
## GLMM refits: rma.glmm(measure = "PLO", xi, ni, subset = -i) with its defaults (nAGQ = 7).
## Two-group models: leave1out() and cumul() of rma.mh() and rma.peto() on dat.bcg.

source("fixture_setup.R")  # metafor, metadat, jsonlite, ctrl, ci_ctrl and the JSON writers

sets <- list(
  bcg = list(
    data_R = "dat <- escalc(measure = 'RR', ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg); dat$g <- dat$alloc",
    slab = function(dat) paste(dat$author, dat$year)),
  bangertdrowns2004 = list(
    data_R = "dat <- dat.bangertdrowns2004; dat$g <- paste0('grade ', dat$grade)",
    slab = function(dat) paste(dat$author, dat$year)))

fit_vals <- function(f) list(
  estimate = sc(f$beta[1]), se = sc(f$se[1]), statistic = sc(f$zval[1]), pvalue = sc(f$pval[1]),
  ci_lb = sc(f$ci.lb[1]), ci_ub = sc(f$ci.ub[1]), tau2 = sc(f$tau2), QE = sc(f$QE), k = sc(f$k))

cases <- list()
for (name in names(sets)) {
  s <- sets[[name]]
  eval(parse(text = s$data_R))
  levels_g <- unique(dat$g)   # order of first appearance, as metamsc
  for (method in c("REML", "DL", "EE")) for (test in c("z", "knha")) {
    if (method == "EE" && test == "knha") next
    ## separate tau^2
    subs <- lapply(levels_g, function(lv)
      rma(yi, vi, data = dat, subset = g == lv, method = method, test = test, control = ctrl))
    est <- sapply(subs, function(f) f$beta[1]); se <- sapply(subs, function(f) f$se)
    qb <- rma(est, sei = se, method = "EE")
    sep <- list(R = sprintf("rma(yi, vi, data = dat, subset = g == level, method = '%s', test = '%s', control = ctrl); Q_between = rma(estimates, sei = SEs, method = 'EE')$QE", method, test),
                groups = lapply(subs, fit_vals), q_between = sc(qb$QE), q_between_p = sc(qb$QEp),
                df = sc(length(levels_g) - 1))
    ## common tau^2
    m0 <- rma(yi, vi, mods = ~ factor(g, levels = levels_g) - 1, data = dat, method = method,
              test = test, control = ctrl)
    m1 <- rma(yi, vi, mods = ~ factor(g, levels = levels_g), data = dat, method = method,
              test = test, control = ctrl)
    pr <- predict(m0, newmods = diag(length(levels_g)))
    com <- list(R = sprintf("rma(yi, vi, mods = ~ factor(g, levels = levels_g) - 1, data = dat, method = '%s', test = '%s', control = ctrl); test: QM of the same with intercept; pi: predict(fit, newmods = diag(G))", method, test),
                pi_lb = arr(pr$pi.lb), pi_ub = arr(pr$pi.ub),
                estimate = arr(m0$beta), se = arr(m0$se), statistic = arr(m0$zval),
                pvalue = arr(m0$pval), ci_lb = arr(m0$ci.lb), ci_ub = arr(m0$ci.ub),
                tau2 = sc(m0$tau2), se_tau2 = sc(m0$se.tau2), QM_coefficients = sc(m0$QM),
                QM = sc(m1$QM), QMp = sc(m1$QMp), QMdf = arr(m1$QMdf))
    cases[[length(cases) + 1]] <- list(
      id = paste("subgroups", name, method, test, sep = ":"), dataset = name,
      data_R = s$data_R, method = method, test = test,
      inputs = list(yi = arr(dat$yi), vi = arr(dat$vi), g = strarr(dat$g), slab = strarr(s$slab(dat))),
      levels = strarr(levels_g), separate = sep, common = com)
  }
}

## GLMM refits without each study
glmm_sets <- list(
  pasi40 = "dat <- data.frame(xi = c(8, 2, 1, 2, 1), ni = c(17, 2, 1, 2, 1))",
  pritz1997 = "dat <- dat.pritz1997")
loo <- list()
for (name in names(glmm_sets)) {
  eval(parse(text = glmm_sets[[name]]))
  rows <- lapply(seq_len(nrow(dat)), function(i) {
    f <- tryCatch(suppressWarnings(rma.glmm(measure = "PLO", xi = xi, ni = ni, data = dat[-i, ])),
                  error = function(e) NULL)
    if (is.null(f)) return(list(omitted = i, error = TRUE))
    list(omitted = i, error = FALSE, estimate = sc(f$beta[1]), se = sc(f$se), tau2 = sc(f$tau2),
         ci_lb = sc(f$ci.lb), ci_ub = sc(f$ci.ub))
  })
  loo[[length(loo) + 1]] <- list(id = paste("glmm-loo", name, sep = ":"), data_R = glmm_sets[[name]],
                                 R = "rma.glmm(measure = 'PLO', xi = xi, ni = ni, data = dat[-i, ]) for each i",
                                 inputs = list(xi = arr(dat$xi), ni = arr(dat$ni)), rows = rows)
}

## metafor's own leave1out() and cumul() of Mantel-Haenszel and Peto fits (dat.bcg)
two <- list()
dat <- dat.bcg
for (fn in c("rma.mh", "rma.peto")) for (what in c("leave1out", "cumul")) {
  call <- sprintf("%s(%s(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat%s))", what, fn,
                  if (fn == "rma.mh") ", measure = 'OR'" else "")
  r <- eval(parse(text = call))
  two[[length(two) + 1]] <- list(id = paste(what, fn, "dat.bcg", sep = ":"), R = call,
    inputs = list(tpos = arr(dat$tpos), tneg = arr(dat$tneg), cpos = arr(dat$cpos), cneg = arr(dat$cneg)),
    estimate = arr(r$estimate), se = arr(r$se), zval = arr(r$zval), pval = arr(r$pval),
    ci_lb = arr(r$ci.lb), ci_ub = arr(r$ci.ub), QE = arr(r$Q), QEp = arr(r$Qp), I2 = arr(r$I2),
    H2 = arr(r$H2))
}

meta <- list(generator = "tests/reference/make_subgroup_fixtures.R",
             R = R.version.string, metafor = as.character(packageVersion("metafor")),
             control = "control = list(threshold = 1e-12, tol = 1e-12, maxiter = 1000) for rma(); rma.glmm with its defaults")
write_fixture(list(meta = meta, cases = cases, glmm_loo = loo, twogroup_sensitivity = two),
              "subgroups.json")
