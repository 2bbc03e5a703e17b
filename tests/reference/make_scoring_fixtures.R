# metafor's Fisher scoring at its default control (threshold 1e-5, maxiter 100), for ML, REML
# and EB, with and without moderators: whether it converges, after how many iterations (the
# count metafor prints with verbose = TRUE) and the tau^2 it stops at; and the root of the
# estimating equation (the fixtures' control: threshold 1e-12, maxiter 1000).
# metamsc runs the same Fisher scoring to a change below 1e-5 and then takes Newton steps
# (tests/test_scoring.py): with threshold = 1e-5 it must stop where metafor stops, at the same
# iteration; with its default threshold it must converge exactly where metafor's default does.
# Run: cd tests/reference && Rscript make_scoring_fixtures.R   (writes scoring.json)
source("fixture_setup.R")

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
sets <- list(
  bcg = list(dat = bcg, mods = NULL),
  bcg10 = list(dat = bcg[1:10, ], mods = NULL),
  bcg_ablat = list(dat = bcg, mods = cbind(ablat = bcg$ablat)),
  bcg_ablat_year = list(dat = bcg, mods = cbind(ablat = bcg$ablat, year = bcg$year)),
  pritz = list(dat = escalc(measure = "PLO", xi = xi, ni = ni, data = dat.pritz1997), mods = NULL),
  normand = list(dat = escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i,
                              sd2i = sd2i, n2i = n2i, data = dat.normand1999), mods = NULL),
  molloy = list(dat = escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014),
                mods = NULL),
  pasi40_plo = list(dat = escalc(measure = "PLO", xi = c(2, 1, 8, 2, 1), ni = c(2, 1, 17, 2, 1)),
                    mods = NULL),
  pasi40_pft = list(dat = escalc(measure = "PFT", xi = c(2, 1, 8, 2, 1), ni = c(2, 1, 17, 2, 1)),
                    mods = NULL),
  pasi50_plo = list(dat = escalc(measure = "PLO", xi = c(2, 1, 2, 1, 2), ni = c(2, 1, 2, 1, 7)),
                    mods = NULL),
  ## row 5747 of benchmarks/bench_batch.py's simulation (numpy seed 1): the REML likelihood has
  ## two local maxima, at tau^2 = 0 and (higher) at 0.0358; metafor's default scoring converges
  ## to the second, at threshold 1e-12 it does not converge
  bimodal = list(dat = data.frame(
    yi = c(-0.582288628949901, 0.12953114730777968, 0.15991753726709307, 0.13946659524791494,
           0.6004127424423148, -0.1827722252333323, 1.379312229382737, 0.6158850793622148,
           -0.003340899780469836, -0.9246211929932238),
    vi = c(0.16151863518544765, 0.01445690220936005, 0.17080063036296322, 0.16296549706180488,
           0.14264880454782203, 0.40876457734420335, 0.4416433622320345, 0.2664665544175116,
           0.09712860785529111, 0.20338683296436516)), mods = NULL),
  ## a simulated set (k = 6) whose REML likelihood has two interior local maxima, at tau^2 =
  ## 0.00065 and (far higher) at 2.589: the scoring fallback must pick the second
  two_maxima = list(dat = data.frame(
    yi = c(-1.8242113581678132, 1.4778238822266812, 3.704843977342188, -1.750363469065596,
           -0.850381797181984, -0.7577112351534768),
    vi = c(0.21961855447230189, 0.43176708895210647, 2.2247492802775417, 5.499766050707587,
           0.004095875282052275, 0.009583127462640409)), mods = NULL)
)

## rma() at `control`: list(converged, iterations, tau2); iterations parsed from the line
## "Fisher scoring algorithm converged after N iterations." that verbose = TRUE prints
scoring <- function(dat, mods, method, control) {
  fit <- NULL
  out <- capture.output(fit <- tryCatch(
    if (is.null(mods)) rma(yi, vi, data = dat, method = method, control = control, verbose = TRUE)
    else rma(yi, vi, mods = mods, data = dat, method = method, control = control, verbose = TRUE),
    error = function(e) NULL), type = "output")
  done <- grep("converged after", out, value = TRUE)
  iters <- if (length(done)) as.integer(sub(".*after ([0-9]+) iteration.*", "\\1", done[1])) else NA
  list(converged = !is.null(fit), iterations = iters, tau2 = if (is.null(fit)) NA else fit$tau2)
}

cases <- list()
for (nm in names(sets)) for (method in c("ML", "REML", "EB")) {
  s <- sets[[nm]]
  d <- scoring(s$dat, s$mods, method, list())
  e <- scoring(s$dat, s$mods, method, ctrl)
  cases[[length(cases) + 1]] <- list(
    id = paste(nm, method, sep = ":"), dataset = nm, method = method,
    yi = arr(s$dat$yi), vi = arr(s$dat$vi),
    mods = if (is.null(s$mods)) json("null") else lapply(as.data.frame(s$mods), arr),
    R = sprintf("rma(yi, vi%s, method = '%s', verbose = TRUE) at the default control, and at ctrl",
                if (is.null(s$mods)) "" else ", mods = mods", method),
    default = list(converged = d$converged, iterations = sc(d$iterations), tau2 = sc(d$tau2)),
    exact = list(converged = e$converged, tau2 = sc(e$tau2)))
}
write_fixture(list(meta = list(metafor_version = as.character(packageVersion("metafor")),
                               generator = "tests/reference/make_scoring_fixtures.R",
                               default_control = "threshold = 1e-5, maxiter = 100",
                               exact_control = "threshold = 1e-12, tol = 1e-12, maxiter = 1000"),
                   cases = cases), "scoring.json")
