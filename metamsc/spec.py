"""The analysis spec, kept importable under its old name: everything now lives in
:mod:`metamsc.project` (schema, row selection, run, JSON). New code imports from there."""

from __future__ import annotations

from .project import (ROLES, Analysis, DataError, EvidenceMap, MetamscError, NoStudyLeft,
                      Selection, Spec, SpecError, analysis_dict, evidence_map, load_spec,
                      run_spec, select)

__all__ = ["MetamscError", "SpecError", "DataError", "NoStudyLeft", "Spec", "Analysis",
           "EvidenceMap", "Selection", "load_spec", "select", "run_spec", "evidence_map",
           "analysis_dict", "ROLES"]
