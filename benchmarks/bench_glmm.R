## Time metafor's rma.glmm(measure = "PLO") on dat.pritz1997 (binomial-normal model,
## ML, nAGQ = 7: the default) -- the R side of benchmarks/bench_glmm.py.
##
## Usage: Rscript benchmarks/bench_glmm.R [repeats] [method]
## Prints one line of JSON: median / min seconds per fit, repeats, versions and
## the fitted values (to check that both sides fit the same model).
suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
})
args <- commandArgs(trailingOnly = TRUE)
reps <- if (length(args) >= 1) as.integer(args[1]) else 100L
method <- if (length(args) >= 2) args[2] else "ML"

dat <- data.frame(
  xi = c(16, 10, 4, 43, 10, 25, 13, 12, 22, 4, 5, 18, 58, 6),
  ni = c(17, 12, 8, 58, 10, 42, 14, 12, 41, 5, 6, 23, 68, 10)
)  # = metadat::dat.pritz1997[, c("xi", "ni")]

fit1 <- function() rma.glmm(measure = "PLO", xi = xi, ni = ni, data = dat, method = method)
fit <- fit1()
for (i in 1:5) invisible(fit1())  # warm-up
times <- numeric(reps)
for (i in seq_len(reps)) {
  t0 <- proc.time()[["elapsed"]]
  invisible(fit1())
  times[i] <- proc.time()[["elapsed"]] - t0
}
## proc.time has 1 ms resolution: also time the whole loop
t0 <- proc.time()[["elapsed"]]
for (i in seq_len(reps)) invisible(fit1())
total <- proc.time()[["elapsed"]] - t0

cat(sprintf(paste0('{"median_s": %.6g, "min_s": %.6g, "mean_s": %.6g, "repeats": %d, ',
                   '"method": "%s", "R": "%s", "metafor": "%s", "lme4": "%s", ',
                   '"beta": %.10g, "se": %.10g, "tau2": %.10g}\n'),
            median(times), min(times), total / reps, reps, method,
            paste(R.version$major, R.version$minor, sep = "."),
            as.character(packageVersion("metafor")), as.character(packageVersion("lme4")),
            fit$beta[1], fit$se, fit$tau2))
