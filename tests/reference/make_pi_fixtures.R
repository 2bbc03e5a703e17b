# Prediction-interval variants of metafor's predict(): pi.type "default", "simple", "t", "riley".
# Run: cd tests/reference && Rscript make_pi_fixtures.R   (writes pi_rules.json)
suppressPackageStartupMessages(library(metafor))
library(jsonlite)
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)
sets <- list(
  bcg = escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg),
  pritz = escalc(measure = "PLO", xi = xi, ni = ni, data = dat.pritz1997),
  pasi40 = escalc(measure = "PLO", xi = c(2, 1, 8, 2, 1), ni = c(2, 1, 17, 2, 1))
)
cases <- list()
for (nm in names(sets)) for (method in c("DL", "REML")) for (test in c("z", "knha")) for (pt in c("default", "simple", "t", "riley")) {
  dat <- sets[[nm]]
  fit <- rma(yi, vi, data = dat, method = method, test = test, control = ctrl)
  p <- predict(fit, pi.type = pt)
  cases[[length(cases) + 1]] <- list(
    id = paste(nm, method, test, pt, sep = ":"), dataset = nm, method = method, test = test,
    pi_type = pt, yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
    R = sprintf("predict(rma(yi, vi, method='%s', test='%s', control=ctrl), pi.type='%s')", method, test, pt),
    expected = list(pi_lb = p$pi.lb, pi_ub = p$pi.ub))
}
out <- list(meta = list(metafor_version = as.character(packageVersion("metafor")),
                        generator = "tests/reference/make_pi_fixtures.R"), cases = cases)
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, pretty = TRUE), "pi_rules.json")
