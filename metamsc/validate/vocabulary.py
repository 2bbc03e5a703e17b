"""The controlled vocabularies and patterns of the curated data set (the rules of
``metamsc/data/README.md``)."""

from __future__ import annotations

import re


# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------
VOCABULARIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("studies", "indication"): ("psoriasis", "systemic sclerosis"),
    ("studies", "setting"): ("clinical", "preclinical"),
    ("studies", "design"): ("case report", "single-arm trial", "randomized trial", "preclinical"),
    ("studies", "cell_source"): ("umbilical cord", "cord blood", "cord blood (unverified)", "adipose", "bone marrow",
                                 "gingiva"),
    ("studies", "cell_preparation"): ("culture-expanded", "SVF", "unknown"),
    ("studies", "donor"): ("allogeneic", "autologous"),
    ("studies", "status"): ("completed/published", "registered, no results", "not yet recruiting", "preclinical"),
    ("studies", "results_reported"): ("yes", "no"),
    ("outcomes", "derived"): ("yes", "no"),
    ("provenance", "table"): ("studies", "outcomes"),
    ("provenance", "adopted"): ("yes", "no"),
}
#: Columns whose cell may list several vocabulary values separated by "; ".
MULTI_VALUED = {("studies", "cell_source")}

#: Outcome vocabulary -> kind of data the row must carry.
OUTCOME_KINDS: dict[str, str] = {
    "PASI-40 response": "binary",
    "PASI-50 response": "binary",
    "PASI-75 response": "binary",
    "PGA clear/minimal": "binary",
    "treatment-related adverse events": "binary",
    "serious adverse events": "binary",
    "any adverse event": "binary",
    "no obvious side effects (not counted)": "binary",
    "PASI": "score",
    "mRSS": "score",
    "EScSG activity index": "score",
    "RCS": "score",
    "SHAQ % improvement": "percent",
    "CHFS % improvement": "percent",
    "RCS % improvement": "percent",
    "skin elasticity % increase (lip)": "percent",
    "skin elasticity % increase (cheek)": "percent",
}
AE_PREFIX = "adverse event: "
GROUP_RE = re.compile(r"^(all|completers|male|female|patient [1-9][0-9]*)$")
#: Outcomes that report harms: their denominator must be stated in ``notes``.
SAFETY_OUTCOMES = ("treatment-related adverse events", "serious adverse events", "any adverse event",
                   "no obvious side effects (not counted)")
#: A statement without a count ("no obvious side effects") can only be coded as zero events.
UNCOUNTED_OUTCOMES = ("no obvious side effects (not counted)",)
REGISTRY_RE = re.compile(r"^NCT[0-9]{8}$")
SEED_RE = re.compile(r"^[0-9]{3}_[0-9a-f]{16}\.txt$")
SHARED_DOC_RE = re.compile(r"shared/([A-Za-z0-9_.-]+\.md)")
LOST_SUPERSCRIPT_RE = re.compile(r"(?:[×x\ufffd]\s*|\()10[5-9](?![0-9.])")
NOT_YET = ("registered, no results", "not yet recruiting")
ID_COLUMN = {"studies": "study_id", "outcomes": "outcome_id"}
#: Categorical study facts that must come with an adopted provenance row.
SOURCED_TEXT_FIELDS = {"studies": ("cell_source", "cell_preparation", "donor", "design"), "outcomes": ()}
