## make_subgroup_meta_fixtures.R -- reference values from R/metafor for meta's tau.common = TRUE
## subgroup rule, metamsc's subgroup_analysis(..., tau2_common = "meta").
##
## Run from this folder:
##     cd tests/reference && Rscript make_subgroup_meta_fixtures.R
##
## Writes subgroups_meta.json (deterministic). The rule, as R meta documents tau.common = TRUE:
## the common tau^2 of rma(yi, vi, mods = ~ factor(g) - 1) (the metafor model of
## make_subgroup_fixtures.R), then each subgroup pooled alone with that tau^2 fixed,
## rma(yi, vi, subset = g == level, tau2 = tau2_common, test = test) (under knha its own
## scaling factor and t(k_g - 1)), and Q_between = QE of rma(estimates, sei = SEs, method = "EE").

source("fixture_setup.R")  # metafor, metadat, jsonlite, ctrl, ci_ctrl and the JSON writers

sets <- list(
  bcg = "dat <- escalc(measure = 'RR', ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg); dat$g <- dat$alloc",
  bangertdrowns2004 = "dat <- dat.bangertdrowns2004; dat$g <- paste0('grade ', dat$grade)")

cases <- list()
for (name in names(sets)) {
  eval(parse(text = sets[[name]]))
  dat <- dat[!is.na(dat$yi) & !is.na(dat$vi), ]
  levels_g <- unique(dat$g)   # order of first appearance, as metamsc
  for (method in c("REML", "DL")) for (test in c("z", "knha")) {
    m0 <- rma(yi, vi, mods = ~ factor(g, levels = levels_g) - 1, data = dat, method = method,
              test = test, control = ctrl)
    subs <- lapply(levels_g, function(lv)
      rma(yi, vi, data = dat, subset = g == lv, tau2 = m0$tau2, test = test, control = ctrl))
    est <- sapply(subs, function(f) f$beta[1]); se <- sapply(subs, function(f) f$se)
    qb <- rma(est, sei = se, method = "EE")
    cases[[length(cases) + 1]] <- list(
      id = paste("subgroups-meta", name, method, test, sep = ":"), data_R = sets[[name]],
      R = sprintf("m0 <- rma(yi, vi, mods = ~ factor(g, levels = levels_g) - 1, data = dat, method = '%s', test = '%s', control = ctrl); per level: rma(yi, vi, data = dat, subset = g == level, tau2 = m0$tau2, test = '%s'); Q_between = rma(estimates, sei = SEs, method = 'EE')$QE", method, test, test),
      method = method, test = test,
      inputs = list(yi = arr(dat$yi), vi = arr(dat$vi), g = strarr(dat$g)),
      levels = strarr(levels_g), tau2 = sc(m0$tau2),
      estimate = arr(est), se = arr(se), statistic = arr(sapply(subs, function(f) f$zval)),
      pvalue = arr(sapply(subs, function(f) f$pval)),
      ci_lb = arr(sapply(subs, function(f) f$ci.lb)), ci_ub = arr(sapply(subs, function(f) f$ci.ub)),
      k = arr(sapply(subs, function(f) f$k)),
      q_between = sc(qb$QE), q_between_p = sc(qb$QEp), df = sc(length(levels_g) - 1))
  }
}

meta <- list(generator = "tests/reference/make_subgroup_meta_fixtures.R",
             R = R.version.string, metafor = as.character(packageVersion("metafor")),
             control = "control = list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)")
write_fixture(list(meta = meta, cases = cases), "subgroups_meta.json")
