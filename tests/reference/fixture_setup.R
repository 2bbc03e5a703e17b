## The set-up every metafor fixture script shares: source("fixture_setup.R") from this folder.
## Loads metafor, metadat and jsonlite quietly, warns when metafor is not the version the
## fixtures were made with, defines the control settings of every iterative fit, and sources the
## JSON writers (json_helpers.R).

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})

if (packageVersion("metafor") != "3.8.1")
  warning("These fixtures were designed against metafor 3.8-1; found ",
          as.character(packageVersion("metafor")))

## control settings used for every iterative fit (rma.uni) and for confint()
ctrl    <- list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)
ci_ctrl <- list(tol = 1e-12)

## JSON helpers (number format, arrays, write_fixture)
source("json_helpers.R")
