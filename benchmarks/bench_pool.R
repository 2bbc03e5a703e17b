# Time metafor's rma() on dat.bcg (log RR): DL, REML and PM with z tests (k = 13), and
# rma(yi, vi, method = "REML", test = "knha") on its first 10 studies. Prints ms per fit:
# the best of `rounds` rounds of `reps` fits, each round timed with proc.time() (elapsed), as
# bench_pool.py does on the Python side.
suppressPackageStartupMessages(library(metafor))
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
yi <- as.numeric(dat$yi); vi <- as.numeric(dat$vi)
reps <- 100
rounds <- 15
per_fit <- function(fit) {
  invisible(fit())
  ms <- numeric(rounds)
  for (r in seq_len(rounds)) {
    t0 <- proc.time()[["elapsed"]]
    for (i in seq_len(reps)) fit()
    ms[r] <- 1000 * (proc.time()[["elapsed"]] - t0) / reps
  }
  min(ms)
}
for (m in c("DL", "REML", "PM")) {
  cat(sprintf("metafor %s %.4f\n", m, per_fit(function() rma(yi, vi, method = m))))
}
y10 <- yi[1:10]; v10 <- vi[1:10]
cat(sprintf("metafor REML-knha-k10 %.4f\n",
            per_fit(function() rma(y10, v10, method = "REML", test = "knha"))))
