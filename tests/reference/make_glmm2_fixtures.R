## GLMMs of metafor::rma.glmm beyond glmm.json: the two-group models of the odds ratio
## (UM.FS, UM.RS, CM.AL, CM.EL) and of the incidence-rate ratio (UM.FS, UM.RS, CM.EL), and the
## Laplace approximation (nAGQ = 1). Writes glmm2.json.
## Run: cd tests/reference && Rscript make_glmm2_fixtures.R
##
## lme4 is run with tight tolerances (bobyqa with rhoend = 1e-12; tolPwrss = 1e-12 for its
## penalised IRLS, without which its Laplace deviance is off by up to 1e-4) so that the fits
## agree with an exact maximiser beyond lme4's default stopping rule. Every ML fit fitted by
## glmer is refitted here by the same glmer call that rma.glmm makes, to record lme4's own
## -2 logLik (the AGQ/Laplace deviance relative to the saturated model): metafor's logLik()
## of these fits is ll(saturated glm) - deviance(glmer)/2 with lme4's conditional deviance.
suppressPackageStartupMessages({library(metafor); library(lme4)})
library(jsonlite)
source("json_helpers.R")

ctlR <- "list(glmerCtrl = list(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e6), tolPwrss = 1e-12))"
## lme4 cannot fit UM.FS on dat.bcg with tolPwrss = 1e-12 ("Cannot fit ML model"): default tolPwrss
ctlR_loose <- "list(glmerCtrl = list(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e6)))"
## CM.EL for OR: metafor's own maximiser (nlminb) of the numerically integrated likelihood, as
## tight as it converges (rel.tol = 1e-12 ends in nlminb's "false convergence")
ctlR_el <- paste0("list(optCtrl = list(rel.tol = 1e-10, eval.max = 10000, iter.max = 10000), ",
                  "intCtrl = list(rel.tol = 1e-10, subdivisions = 1000L), dnchgprec = 1e-12)")
glmer_ctl_of <- function(R) do.call(glmerControl, eval(parse(text = R))$glmerCtrl)

bcg <- metadat::dat.bcg
or_sets <- list(
  "dat.bcg" = list(data_R = "dat.bcg",
                   data = data.frame(ai = bcg$tpos, bi = bcg$tneg, ci = bcg$cpos, di = bcg$cneg)),
  ## small trials with zero cells: study 3 has no event in group 2, study 5 none in group 1,
  ## study 7 none in either group (dropped by drop00)
  "zeros_or" = list(data_R = "data.frame(ai=c(2,5,1,7,0,3,0), bi=c(18,20,17,23,15,19,12), ci=c(4,9,0,12,3,6,0), di=c(16,15,20,19,13,15,14))",
                    data = data.frame(ai = c(2, 5, 1, 7, 0, 3, 0), bi = c(18, 20, 17, 23, 15, 19, 12),
                                      ci = c(4, 9, 0, 12, 3, 6, 0), di = c(16, 15, 20, 19, 13, 15, 14))))
nw <- metadat::dat.nielweise2008
rate_sets <- list(
  "dat.nielweise2008" = list(data_R = "dat.nielweise2008", data = nw[, c("x1i", "t1i", "x2i", "t2i")]),
  ## zero counts: study 5 none in either group (dropped), 6 none in group 1, 9 none in group 2
  "nielweise2008_zeros" = list(
    data_R = "transform(dat.nielweise2008, x1i = replace(x1i, c(5, 6), 0), x2i = replace(x2i, c(5, 9), 0))",
    data = transform(nw, x1i = replace(x1i, c(5, 6), 0), x2i = replace(x2i, c(5, 9), 0))[, c("x1i", "t1i", "x2i", "t2i")]))

## lme4's -2 logLik of the ML model, from the glmer call rma.glmm makes (after drop00)
lme4_dev <- function(measure, model, dat, nAGQ, glmer_ctl) {
  if (measure == "OR") {
    keep <- !((dat$ai == 0 & dat$ci == 0) | (dat$bi == 0 & dat$di == 0))
    d <- dat[keep, ]; k <- nrow(d); study <- factor(seq_len(k))
    if (model == "CM.AL") {
      g <- glmer(cbind(d$ai, d$ci) ~ 1 + (1 | study), offset = log((d$ai + d$bi) / (d$ci + d$di)),
                 family = binomial, nAGQ = nAGQ, control = glmer_ctl)
    } else {
      y <- cbind(c(rbind(d$ai, d$ci)), c(rbind(d$bi, d$di)))
      st <- factor(rep(seq_len(k), each = 2)); g1 <- rep(c(1, 0), k); g12 <- rep(c(0.5, -0.5), k)
      g <- if (model == "UM.FS")
        glmer(y ~ -1 + g1 + st + (g12 - 1 | st), family = binomial, nAGQ = nAGQ, control = glmer_ctl)
      else glmer(y ~ 1 + g1 + (1 | st) + (g12 - 1 | st), family = binomial, nAGQ = 1, control = glmer_ctl)
    }
  } else {
    keep <- !(dat$x1i == 0 & dat$x2i == 0)
    d <- dat[keep, ]; k <- nrow(d); study <- factor(seq_len(k))
    if (model == "CM.EL") {
      g <- glmer(cbind(d$x1i, d$x2i) ~ 1 + (1 | study), offset = log(d$t1i / d$t2i),
                 family = binomial, nAGQ = nAGQ, control = glmer_ctl)
    } else {
      y <- c(rbind(d$x1i, d$x2i)); off <- log(c(rbind(d$t1i, d$t2i)))
      st <- factor(rep(seq_len(k), each = 2)); g1 <- rep(c(1, 0), k); g12 <- rep(c(0.5, -0.5), k)
      g <- if (model == "UM.FS")
        glmer(y ~ -1 + g1 + st + (g12 - 1 | st), offset = off, family = poisson, nAGQ = nAGQ, control = glmer_ctl)
      else glmer(y ~ 1 + g1 + (1 | st) + (g12 - 1 | st), offset = off, family = poisson, nAGQ = 1, control = glmer_ctl)
    }
  }
  list(dev = -2 * c(logLik(g)), beta = unname(fixef(g)[if (model %in% c("CM.AL", "CM.EL")) 1 else "g1"]))
}

cases <- list()
add_case <- function(ds, measure, model, method, s, args, nAGQ = 7) {
  dat <- s$data
  cR <- if (measure == "OR" && model == "CM.EL") ctlR_el
        else if (ds == "dat.bcg" && model == "UM.FS") ctlR_loose else ctlR
  R <- sprintf("rma.glmm(measure='%s', %s, data=dat, model='%s', method='%s', nAGQ=%d, control=%s)",
               measure, args, model, method, nAGQ, cR)
  w <- character()
  fit <- withCallingHandlers(tryCatch(eval(parse(text = R)), error = function(e) e),
                             warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") })
  case <- list(id = paste("glmm2", ds, measure, model, method, sep = ":"), dataset = ds,
               measure = measure, model = model, method = method, nAGQ = sc(nAGQ),
               inputs = arrs(as.list(dat)), data_R = paste0("dat <- ", s$data_R), R = R,
               warnings = strarr(unique(w)))
  if (inherits(fit, "error")) {
    case$expected <- list(error = conditionMessage(fit))
  } else {
    ex <- list(k = sc(fit$k), beta = sc(fit$beta[1]), se = sc(fit$se), tau2 = sc(fit$tau2),
               sigma2 = sc(fit$sigma2), logLik = sc(c(logLik(fit))), QE_Wld = sc(fit$QE.Wld),
               QE_LRT = sc(fit$QE.LRT), QE_df = sc(fit$QE.df), I2 = sc(fit$I2),
               ci_lb = sc(fit$ci.lb), ci_ub = sc(fit$ci.ub), pval = sc(fit$pval))
    if (method == "ML" && (model != "CM.EL" || measure == "IRR")) {
      ld <- lme4_dev(measure, model, dat, nAGQ, glmer_ctl_of(cR))
      ex$lme4_deviance <- sc(ld$dev)
      ex$lme4_beta <- sc(ld$beta)
      case$lme4_note <- "lme4_deviance = -2 logLik of the glmer fit = -2 (loglik - loglik of the saturated model)"
    }
    case$expected <- ex
  }
  cases[[length(cases) + 1L]] <<- case
}

for (ds in names(or_sets)) for (model in c("UM.FS", "UM.RS", "CM.AL", "CM.EL")) for (method in c("ML", "EE"))
  add_case(ds, "OR", model, method, or_sets[[ds]], "ai=ai, bi=bi, ci=ci, di=di")
for (ds in names(rate_sets)) for (model in c("UM.FS", "UM.RS", "CM.EL")) for (method in c("ML", "EE"))
  add_case(ds, "IRR", model, method, rate_sets[[ds]], "x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i")
## the Laplace approximation (nAGQ = 1) of the models with one random effect
for (ds in names(or_sets)) add_case(ds, "OR", "UM.FS", "ML", or_sets[[ds]], "ai=ai, bi=bi, ci=ci, di=di", nAGQ = 1)
for (ds in names(or_sets)) add_case(ds, "OR", "CM.AL", "ML", or_sets[[ds]], "ai=ai, bi=bi, ci=ci, di=di", nAGQ = 1)
add_case("dat.nielweise2008", "IRR", "CM.EL", "ML", rate_sets[["dat.nielweise2008"]], "x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i", nAGQ = 1)
add_case("dat.nielweise2008", "IRR", "UM.FS", "ML", rate_sets[["dat.nielweise2008"]], "x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i", nAGQ = 1)
for (i in seq_along(cases)) if (cases[[i]]$nAGQ == "1") cases[[i]]$id <- paste0(cases[[i]]$id, ":nAGQ1")
stopifnot(!anyDuplicated(vapply(cases, `[[`, "", "id")))

write_fixture(list(
  meta = list(description = "Two-group GLMMs and the Laplace approximation from metafor::rma.glmm()",
              R_version = R.version.string, metafor_version = as.character(packageVersion("metafor")),
              metadat_version = as.character(packageVersion("metadat")),
              lme4_version = as.character(packageVersion("lme4")),
              BiasedUrn_version = as.character(packageVersion("BiasedUrn")),
              generator = "tests/reference/make_glmm2_fixtures.R", glmer_control = ctlR,
              missing_values = "NA, NaN, Inf and -Inf are written as null"),
  cases = cases), "glmm2.json")
