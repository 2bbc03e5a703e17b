## make_hetci_fixtures.R -- confint(rma.uni, type = "QP", "PL", "Wald", "Wald.log",
## "Wald.sqrt") and per-study z / p values from summary(escalc()) for metamsc.hetci.
##
## Run from this folder:
##     cd tests/reference && Rscript make_hetci_fixtures.R
## Writes hetci.json (deterministic). type = "GENQ" needs the CompQuadForm package,
## which is not installed here (and not available for this R), so there are no
## GENQ cases here: make_genq_fixtures.R computes the GENQ and Jackson intervals
## independently (Imhof's inversion) into genq.json; see docs/validation.md.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})
source("json_helpers.R")
pkgv <- function(p) utils::packageDescription(p)$Version
ctrl    <- list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)
ci_ctrl <- list(tol = 1e-12)

D <- list()
D$bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
D$hackshaw <- dat.hackshaw1998[, c("yi", "vi")]
D$raudenbush <- dat.raudenbush1985[, c("yi", "vi")]
D$pritz <- escalc(measure = "PLO", xi = xi, ni = ni, data = dat.pritz1997)
D$normand <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                    n2i = n2i, data = dat.normand1999)
D$molloy <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)
D$k3 <- data.frame(yi = c(0.1, 0.15, 0.3), vi = c(0.04, 0.09, 0.05))  # tau2 = 0 under REML
D$k2 <- escalc(measure = "PLO", xi = c(8, 2), ni = c(17, 2))

cases <- list()
for (ds in names(D)) for (method in c("ML", "REML", "DL")) for (level in c(95, 90)) {
  dat <- D[[ds]]
  fit <- rma(yi, vi, data = dat, method = method, level = level, control = ctrl)
  types <- if (method == "DL") c("QP", "Wald", "Wald.log", "Wald.sqrt") else
    c("QP", "PL", "Wald", "Wald.log", "Wald.sqrt")
  out <- list()
  for (tp in types) {
    warns <- character(0)
    ci <- withCallingHandlers(confint(fit, type = tp, control = ci_ctrl),
                              warning = function(w) { warns <<- c(warns, conditionMessage(w))
                                                      invokeRestart("muffleWarning") })
    r <- ci$random
    out[[tp]] <- list(R = paste0("confint(fit, type='", tp, "', control=list(tol=1e-12))"),
                      tau2_lb = sc(r["tau^2", "ci.lb"]), tau2_ub = sc(r["tau^2", "ci.ub"]),
                      I2_lb = sc(r["I^2(%)", "ci.lb"]), I2_ub = sc(r["I^2(%)", "ci.ub"]),
                      H2_lb = sc(r["H^2", "ci.lb"]), H2_ub = sc(r["H^2", "ci.ub"]),
                      lb_sign = ci$lb.sign, ub_sign = ci$ub.sign, ci_null = ci$ci.null,
                      warnings = strarr(warns))
  }
  s <- summary(escalc(yi = yi, vi = vi, data = as.data.frame(dat)[, c("yi", "vi")]))
  cases[[length(cases) + 1]] <- list(
    id = paste("hetci", ds, method, level, sep = ":"), dataset = ds, method = method,
    level = sc(level / 100), yi = arr(dat$yi), vi = arr(dat$vi),
    R = paste0("fit <- rma(yi, vi, data=dat, method='", method, "', level=", level, ", control=ctrl)"),
    tau2 = sc(fit$tau2), se_tau2 = sc(fit$se.tau2), vt = sc(fit$vt), QE = sc(fit$QE),
    confint = out,
    study_R = "summary(escalc(yi=yi, vi=vi, data=dat))",
    zi = arr(s$zi), pval = arr(s$pval))
}

write_fixture(list(
  meta = list(description = "confint(rma.uni) heterogeneity intervals and summary(escalc) z/p values",
              R_version = R.version.string, metafor_version = pkgv("metafor"),
              metadat_version = pkgv("metadat"), jsonlite_version = pkgv("jsonlite"),
              generator = "tests/reference/make_hetci_fixtures.R",
              control = ctrl, confint_control = ci_ctrl,
              missing_values = "NA, NaN, Inf and -Inf are written as null"),
  cases = cases), "hetci.json")
