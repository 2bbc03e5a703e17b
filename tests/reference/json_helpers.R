## JSON helpers shared by the fixture scripts: source("json_helpers.R").
##
## jsonlite's digits = NA only prints 15 significant digits, which does not
## round-trip every double. All numbers are therefore pre-formatted here with
## the shortest of %.15g / %.16g / %.17g that parses back to the identical
## double, and inserted verbatim (class "json", json_verbatim = TRUE).
## NA, NaN, Inf and -Inf are all written as null.
## ---------------------------------------------------------------------------

json <- function(s) structure(s, class = "json")

## Parse decimal strings with a correctly rounded parser. R's own as.numeric()
## is NOT correctly rounded for some 16/17-digit strings, whereas jsonlite's
## parser (C strtod) is, like Python's float(); so the round-trip is checked
## with the latter.
parse_num <- function(s) as.numeric(jsonlite::parse_json(paste0("[", paste(s, collapse = ","), "]"),
                                                       simplifyVector = TRUE))

fmt_num <- function(x) {
  x <- as.numeric(x)
  out <- rep("null", length(x))
  ok <- is.finite(x)
  if (any(ok)) {
    v <- x[ok]
    s <- sprintf("%.15g", v)
    bad <- parse_num(s) != v
    if (any(bad)) s[bad] <- sprintf("%.16g", v[bad])
    bad <- parse_num(s) != v
    if (any(bad)) s[bad] <- sprintf("%.17g", v[bad])
    stopifnot(all(parse_num(s) == v))
    out[ok] <- s
  }
  out
}

## numeric array (always an array, even of length 0 or 1); NULL -> null
arr <- function(x) {
  if (is.null(x)) return(json("null"))
  json(paste0("[", paste(fmt_num(unname(as.vector(x))), collapse = ","), "]"))
}

## numeric scalar; NULL / length 0 -> null
sc <- function(x) {
  if (is.null(x) || length(x) == 0L) return(json("null"))
  if (length(x) != 1L) stop("sc(): expected a scalar, got length ", length(x))
  json(fmt_num(unname(x)))
}

## character array (stays an array for length 1); NULL -> null
strarr <- function(x) if (is.null(x)) json("null") else I(as.character(unname(x)))

## logical array (stays an array for length 1)
lgcarr <- function(x) I(as.logical(unname(x)))

## character scalar; NULL -> null
str1 <- function(x) if (is.null(x) || length(x) == 0L) json("null") else as.character(x)[1]

## list of named numeric arrays
arrs <- function(lst) lapply(lst, arr)

write_fixture <- function(x, path) {
  write_json(x, path, digits = NA, auto_unbox = TRUE, null = "null", na = "null",
             pretty = TRUE, json_verbatim = TRUE)
  cat(sprintf("wrote %-14s %4d cases  %9d bytes\n", path, length(x$cases),
              file.info(path)$size))
}
