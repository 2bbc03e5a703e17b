# Edge cases of rma(): k = 1, identical effects, custom weights. Writes edge.json.
# Run: cd tests/reference && Rscript make_edge_fixtures.R
suppressPackageStartupMessages(library(metafor))
library(jsonlite)
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)
num <- function(x) if (is.null(x) || length(x) == 0 || is.na(x) || !is.finite(x)) NA else as.numeric(x)
fitcase <- function(id, yi, vi, method, test, weights = NULL) {
  w <- character()
  fit <- withCallingHandlers(
    tryCatch(if (is.null(weights)) rma(yi, vi, method = method, test = test, control = ctrl)
             else rma(yi, vi, method = method, test = test, weights = weights, control = ctrl),
             error = function(e) e),
    warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") })
  call <- sprintf("rma(yi=c(%s), vi=c(%s), method='%s', test='%s'%s, control=ctrl)",
                  paste(yi, collapse = ","), paste(vi, collapse = ","), method, test,
                  if (is.null(weights)) "" else sprintf(", weights=c(%s)", paste(weights, collapse = ",")))
  if (inherits(fit, "error"))
    return(list(id = id, yi = I(yi), vi = I(vi), method = method, test = test,
                weights = if (is.null(weights)) NULL else I(weights), R = call,
                expected = list(error = conditionMessage(fit))))
  list(id = id, yi = I(yi), vi = I(vi), method = method, test = test,
       weights = if (is.null(weights)) NULL else I(weights), R = call, warnings = I(w),
       expected = list(test_used = fit$test, beta = num(fit$beta), se = num(fit$se),
                       zval = num(fit$zval), pval = num(fit$pval), ci_lb = num(fit$ci.lb),
                       ci_ub = num(fit$ci.ub), tau2 = num(fit$tau2), se_tau2 = num(fit$se.tau2),
                       I2 = num(fit$I2), H2 = num(fit$H2), QE = num(fit$QE),
                       weights = I(as.numeric(weights(fit)))))
}
cases <- list()
for (t in c("z", "knha", "adhoc", "t"))
  cases[[length(cases) + 1]] <- fitcase(paste0("k1:", t), 0.3, 0.1, "REML", t)
for (m in c("EE", "DL", "HE", "SJ", "ML", "REML", "PM")) for (t in c("z", "knha"))
  cases[[length(cases) + 1]] <- fitcase(paste0("identical:", m, ":", t), c(.5, .5, .5), c(.1, .2, .3), m, t)
for (m in c("EE", "DL", "REML", "PM")) for (t in c("z", "knha"))
  cases[[length(cases) + 1]] <- fitcase(paste0("weights:", m, ":", t), c(.1, .5, .9, .2), c(.1, .2, .3, .1), m, t,
                                        weights = c(1, 2, 3, 4))
cases[[length(cases) + 1]] <- fitcase("genq-noweights", c(.1, .5, .9, .2), c(.1, .2, .3, .1), "GENQ", "z")
out <- list(meta = list(metafor_version = as.character(packageVersion("metafor")),
                        generator = "tests/reference/make_edge_fixtures.R"), cases = cases)
writeLines(toJSON(out, digits = I(15), auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null"), "edge.json")
