"""Vendor FHIR dialects ⇄ canonical R4: pure functions, no I/O, nothing of fhir_gateway imported.

Modules: :mod:`.searchset` (outcome entries → warnings, paging links), :mod:`.launch`
(launch-context normalisation), :mod:`.identifiers` (MRN recognition, canonical MRN),
:mod:`.provenance` (``meta.source`` and Provenance), :mod:`.references` (vendor ids ⇄ hub ids),
:mod:`.video` (Cerner video-visit links ⇄ a canonical extension), :mod:`.canonical` (the pipeline).
"""
