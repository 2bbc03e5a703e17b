## Mantel-Haenszel pooling of two-group incidence rates: metafor::rma.mh(x1i, t1i, x2i, t2i,
## measure = "IRR" | "IRD") and leave1out() of each fit. Writes mh_rates.json.
## Run: cd tests/reference && Rscript make_mh_rates_fixtures.R
suppressPackageStartupMessages(library(metafor))
library(jsonlite)
source("json_helpers.R")

## dat.nielweise2008 (metadat) and a variant with zero counts: study 5 has no event in either
## group (a double zero), study 6 none in group 1, study 9 none in group 2.
sets <- list(
  "dat.nielweise2008" = list(data_R = "dat.nielweise2008", data = dat.nielweise2008),
  "nielweise2008_zeros" = list(
    data_R = "transform(dat.nielweise2008, x1i = replace(x1i, c(5, 6), 0), x2i = replace(x2i, c(5, 9), 0))",
    data = transform(dat.nielweise2008, x1i = replace(x1i, c(5, 6), 0), x2i = replace(x2i, c(5, 9), 0))))

lit <- function(v) {
  if (is.character(v)) paste0("c(", paste0("'", v, "'", collapse = ","), ")")
  else paste0("c(", paste(v, collapse = ","), ")")
}

cases <- list()
mh_case <- function(ds, measure, level = 95, extra = list()) {
  s <- sets[[ds]]
  dat <- s$data
  extratxt <- if (length(extra))
    paste0(", ", paste0(names(extra), "=", vapply(extra, lit, ""), collapse = ", ")) else ""
  R <- sprintf("rma.mh(x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i, data=dat, measure='%s', level=%s%s)",
               measure, level, extratxt)
  w <- character()
  fit <- withCallingHandlers(eval(parse(text = R)),
    warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") })
  l1 <- suppressWarnings(leave1out(fit))
  arg <- function(name, default) if (!is.null(extra[[name]])) extra[[name]] else default
  ex <- list(k = sc(fit$k), k_yi = sc(fit$k.yi), beta = sc(fit$beta[1]), se = sc(fit$se),
             zval = sc(fit$zval), pval = sc(fit$pval), ci_lb = sc(fit$ci.lb), ci_ub = sc(fit$ci.ub),
             QE = sc(fit$QE), QEp = sc(fit$QEp), I2 = sc(fit$I2), H2 = sc(fit$H2),
             CMH = sc(fit$MH), CMHp = sc(fit$MHp),
             weights = arr(weights(fit)), yi = arr(fit$yi.f), vi = arr(fit$vi.f),
             leave1out = list(estimate = arr(l1$estimate), se = arr(l1$se), zval = arr(l1$zval),
                              pval = arr(l1$pval), ci_lb = arr(l1$ci.lb), ci_ub = arr(l1$ci.ub),
                              Q = arr(l1$Q), Qp = arr(l1$Qp), I2 = arr(l1$I2), H2 = arr(l1$H2)))
  if (measure == "IRR") {
    ex$exp_beta <- sc(exp(fit$beta[1])); ex$exp_ci_lb <- sc(exp(fit$ci.lb)); ex$exp_ci_ub <- sc(exp(fit$ci.ub))
  }
  list(id = paste(c(ds, measure, paste0("level=", level),
                    if (length(extra)) paste0(names(extra), "=", vapply(extra, paste, "", collapse = ","))),
                  collapse = ":"),
       dataset = ds, measure = measure, level = sc(level / 100),
       args = list(add = arr(arg("add", 0.5)), to = strarr(arg("to", "only0")),
                   drop00 = lgcarr(arg("drop00", TRUE)), correct = arg("correct", TRUE)),
       inputs = arrs(as.list(dat[, c("x1i", "t1i", "x2i", "t2i")])),
       slab = strarr(as.character(dat$study)),
       data_R = paste0("dat <- ", s$data_R), R = R,
       leave1out_R = "leave1out(fit)",
       warnings = strarr(w), expected = ex)
}
add <- function(x) cases[[length(cases) + 1L]] <<- x

for (m in c("IRR", "IRD")) for (lev in c(95, 90)) {
  add(mh_case("dat.nielweise2008", m, lev))
  add(mh_case("nielweise2008_zeros", m, lev))
}
add(mh_case("dat.nielweise2008", "IRR", 95, list(correct = FALSE)))
for (m in c("IRR", "IRD")) {
  add(mh_case("nielweise2008_zeros", m, 95, list(drop00 = FALSE)))
  add(mh_case("nielweise2008_zeros", m, 95, list(to = "all")))
  add(mh_case("nielweise2008_zeros", m, 95, list(to = "if0all", add = 0.25)))
  add(mh_case("nielweise2008_zeros", m, 90, list(add = c(0.5, 0.5), to = c("only0", "only0"),
                                                drop00 = c(TRUE, TRUE))))
  add(mh_case("nielweise2008_zeros", m, 95, list(add = c(0.5, 1), to = c("all", "all"),
                                                drop00 = c(FALSE, FALSE))))
}
stopifnot(!anyDuplicated(vapply(cases, `[[`, "", "id")))

write_fixture(list(
  meta = list(metafor_version = as.character(packageVersion("metafor")),
              metadat_version = as.character(packageVersion("metadat")),
              generator = "tests/reference/make_mh_rates_fixtures.R",
              notes = paste("beta/se/ci on the log scale for IRR, raw scale for IRD; CMH/CMHp is",
                            "metafor's fit$MH/fit$MHp (IRR only); yi/vi are fit$yi.f/vi.f (after",
                            "add/to/drop00, first value); args are the effective values (a single",
                            "value is the first of the pair: the second defaults to 0, 'none', FALSE);",
                            "leave1out holds leave1out(fit), one entry per study.")),
  cases = cases), "mh_rates.json")
