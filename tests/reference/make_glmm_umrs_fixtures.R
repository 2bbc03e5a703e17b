## metafor::rma.glmm(model = "UM.RS"): the unconditional model with random study effects, which
## metafor fits by lme4::glmer with the Laplace approximation (nAGQ = 1):
##   logit p_ij = a + theta * g1_ij + u_i + v_i * g12_ij,  u_i ~ N(0, sigma2), v_i ~ N(0, tau2)
## independent (cor = FALSE), g1 = 1/0 and g12 = +1/2 / -1/2 for the first / second group
## (coding = 1/2). Writes glmm_umrs.json. Run: cd tests/reference && Rscript make_glmm_umrs_fixtures.R
##
## lme4 with bobyqa rhoend = 1e-12 and tolPwrss = 1e-12 as in make_glmm2_fixtures.R; on dat.bcg
## lme4 cannot fit the ML model with tolPwrss = 1e-12 ("Cannot fit ML model"), so that case is
## made with lme4's default tolPwrss (recorded in the case's R call).
suppressPackageStartupMessages({library(metafor); library(lme4)})
library(jsonlite)
source("json_helpers.R")

ctlR <- "list(glmerCtrl = list(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e6), tolPwrss = 1e-12))"
ctlR_loose <- "list(glmerCtrl = list(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e6)))"

bcg <- metadat::dat.bcg
nw <- metadat::dat.nielweise2008
sets <- list(
  list(ds = "dat.bcg", measure = "OR", data_R = "dat.bcg", args = "ai=tpos, bi=tneg, ci=cpos, di=cneg",
       data = data.frame(ai = bcg$tpos, bi = bcg$tneg, ci = bcg$cpos, di = bcg$cneg)),
  list(ds = "zeros_or", measure = "OR",
       data_R = "data.frame(ai=c(2,5,1,7,0,3,0,4), bi=c(18,20,17,23,15,19,12,30), ci=c(4,9,0,12,3,6,0,1), di=c(16,15,20,19,13,15,14,33))",
       args = "ai=ai, bi=bi, ci=ci, di=di",
       data = data.frame(ai = c(2, 5, 1, 7, 0, 3, 0, 4), bi = c(18, 20, 17, 23, 15, 19, 12, 30),
                         ci = c(4, 9, 0, 12, 3, 6, 0, 1), di = c(16, 15, 20, 19, 13, 15, 14, 33))),
  list(ds = "dat.nielweise2008", measure = "IRR", data_R = "dat.nielweise2008",
       args = "x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i", data = nw[, c("x1i", "t1i", "x2i", "t2i")]))

cases <- list()
for (s in sets) for (method in c("ML", "EE")) for (cR in c(ctlR, ctlR_loose)) {
  dat <- eval(parse(text = s$data_R))
  R <- sprintf("rma.glmm(measure='%s', %s, data=dat, model='UM.RS', method='%s', control=%s)",
               s$measure, s$args, method, cR)
  w <- character()
  fit <- withCallingHandlers(tryCatch(eval(parse(text = R)), error = function(e) e),
                             warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") })
  if (inherits(fit, "error")) next   # the tight control fails on dat.bcg; the loose one is kept
  case <- list(id = paste("umrs", s$ds, s$measure, method, if (cR == ctlR) "tight" else "default_tolPwrss", sep = ":"),
               dataset = s$ds, measure = s$measure, method = method,
               inputs = arrs(as.list(s$data)), data_R = paste0("dat <- ", s$data_R), R = R,
               warnings = strarr(unique(w)))
  case$expected <- list(k = sc(fit$k), beta = sc(fit$beta[1]), se = sc(fit$se), tau2 = sc(fit$tau2),
                        sigma2 = sc(fit$sigma2), logLik = sc(c(logLik(fit))), QE_Wld = sc(fit$QE.Wld),
                        QE_LRT = sc(fit$QE.LRT), QE_df = sc(fit$QE.df),
                        ci_lb = sc(fit$ci.lb), ci_ub = sc(fit$ci.ub), pval = sc(fit$pval), zval = sc(fit$zval))
  cases[[length(cases) + 1L]] <- case
}
write_fixture(list(
  meta = list(description = "UM.RS GLMMs (random study effects, Laplace) from metafor::rma.glmm()",
              R_version = R.version.string, metafor_version = as.character(packageVersion("metafor")),
              lme4_version = as.character(packageVersion("lme4")),
              generator = "tests/reference/make_glmm_umrs_fixtures.R",
              missing_values = "NA, NaN, Inf and -Inf are written as null"),
  cases = cases), "glmm_umrs.json")
