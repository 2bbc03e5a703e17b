# Time metafor's rma() on dat.bcg (log RR): DL and REML, z test. Prints ms per fit.
suppressPackageStartupMessages(library(metafor))
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
yi <- as.numeric(dat$yi); vi <- as.numeric(dat$vi)
reps <- 300
for (m in c("DL", "REML", "PM")) {
  invisible(rma(yi, vi, method = m))
  t <- system.time(for (i in seq_len(reps)) rma(yi, vi, method = m))[["elapsed"]]
  cat(sprintf("metafor %s %.4f\n", m, 1000 * t / reps))
}
y10 <- yi[1:10]; v10 <- vi[1:10]
invisible(rma(y10, v10, method = "REML", test = "knha"))
t <- system.time(for (i in seq_len(reps)) rma(y10, v10, method = "REML", test = "knha"))[["elapsed"]]
cat(sprintf("metafor REML-knha-k10 %.4f\n", 1000 * t / reps))
