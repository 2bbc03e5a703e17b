"""The project layer: analysis specs (``analyses/*.toml``) run into results and figures.

=================  ==========================================================================
``schema``         read a spec and check every key (:func:`load_spec`, :class:`Spec`)
``select``         the rows a spec uses and every study left out, with the reason
``run``            dispatch to the library's models (:func:`run_spec`, :class:`Analysis`)
``analysis_json``  the JSON of a run (:func:`analysis_dict`)
``figures``        the figures of a run (:func:`spec_figures`)
``manifest``       SHA-256 manifest of the outputs and their inputs
``reproduce``      run one spec, or every spec of a project, atomically; compare (``check``)
=================  ==========================================================================
"""

from __future__ import annotations

from ..errors import DataError, MetamscError, NoStudyLeft, SpecError
from .analysis_json import analysis_dict
from .run import Analysis, EvidenceMap, evidence_map, run_spec
from .schema import ROLES, Spec, load_spec
from .select import Selection, select

__all__ = ["MetamscError", "SpecError", "DataError", "NoStudyLeft", "Spec", "Analysis",
           "EvidenceMap", "Selection", "load_spec", "select", "run_spec", "evidence_map",
           "analysis_dict", "ROLES"]
