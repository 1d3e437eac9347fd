"""``cxrdata doctor``: what a download holds, what is missing or malformed, and the fix for each.

One module per dataset (each a few small checks), one :class:`Finding` type and one printer.
"""

from __future__ import annotations

from cxrdata.sources.doctor.findings import Finding, has_errors, print_findings
from cxrdata.sources.doctor.imagenome import diagnose_imagenome
from cxrdata.sources.doctor.mimic import diagnose_mimic
from cxrdata.sources.doctor.ms_cxr import diagnose_ms_cxr
from cxrdata.sources.doctor.padchest_gr import diagnose_padchest_gr
from cxrdata.sources.doctor.vindr import diagnose_vindr

__all__ = [
    "Finding",
    "diagnose_imagenome",
    "diagnose_mimic",
    "diagnose_ms_cxr",
    "diagnose_padchest_gr",
    "diagnose_vindr",
    "has_errors",
    "print_findings",
]
