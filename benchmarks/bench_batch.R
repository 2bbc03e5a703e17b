# metafor on a simulated batch: per-fit time of rma() looped over many meta-analyses (k = 10).
suppressPackageStartupMessages(library(metafor))
set.seed(1)
m <- 500; k <- 10
v <- matrix(runif(m * k, 0.01, 0.5), m)
y <- 0.2 + matrix(rnorm(m * k, 0, sqrt(0.1)), m) + matrix(rnorm(m * k, 0, sqrt(v)), m)
for (meth in c("DL", "REML")) {
  fails <- 0
  t <- system.time(for (i in seq_len(m)) {
    fit <- try(rma(y[i, ], v[i, ], method = meth, test = if (meth == "REML") "knha" else "z"),
               silent = TRUE)
    if (inherits(fit, "try-error")) fails <- fails + 1
  })[["elapsed"]]
  cat(sprintf("metafor %s %.6f %d\n", meth, 1000 * t / m, fails))
}
