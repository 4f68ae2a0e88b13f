"""Patient-compartment membership, in Python (for one resource) and in SQL (for searches and history).

Both follow the R4 Patient CompartmentDefinition (packaged from the spec), so a
resource a patient may read is exactly one a patient-scoped search may match.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select

from fhir_gateway import definitions
from fhir_gateway.search.extract import IndexExtractor
from fhir_gateway.storage.tables import idx_reference

# Types outside the compartment that hold no one patient's data: a patient may read them.
REFERENCE_DATA = frozenset({
    "Practitioner", "PractitionerRole", "Organization", "Location", "HealthcareService", "Endpoint", "Medication",
    "Substance", "Schedule", "Slot", "Questionnaire", "ValueSet", "CodeSystem", "ConceptMap", "StructureDefinition",
    "SearchParameter", "OperationDefinition", "CapabilityStatement", "ActivityDefinition", "PlanDefinition",
    "Library", "MedicationKnowledge",
})


class PatientCompartment:
    def __init__(self, extractor: IndexExtractor, links: Mapping[str, Sequence[str]] | None = None) -> None:
        self.extractor = extractor
        self.links = {t: tuple(p) for t, p in (links or definitions.patient_compartment()).items() if p}

    def contains(self, resource: Mapping[str, Any], patient_id: str) -> bool:
        """Whether ``resource`` belongs to Patient/``patient_id`` or is shareable reference data."""
        rtype = resource.get("resourceType")
        if rtype == "Patient":
            return resource.get("id") == patient_id
        if rtype in REFERENCE_DATA:
            return True
        if rtype == "Binary":
            ref = (resource.get("securityContext") or {}).get("reference")
            return ref == f"Patient/{patient_id}"
        params = self.links.get(str(rtype))
        if not params:
            return False
        rows = self.extractor.extract(dict(resource)).reference
        return any(r.param in params and r.target_type == "Patient" and r.target_id == patient_id for r in rows)

    def scope(self, patient_id: str, rtype: ColumnElement[Any], pk: ColumnElement[Any],
              fid: ColumnElement[Any]) -> ColumnElement[bool]:
        """SQL: the row belongs to the patient's compartment, is the patient, or is reference data."""
        ref = idx_reference
        linked = or_(*(and_(ref.c.rtype == t, ref.c.param.in_(list(p))) for t, p in self.links.items())) \
            if self.links else false()
        members = select(ref.c.resource_pk).where(ref.c.target_type == "Patient", ref.c.target_id == patient_id,
                                                 linked)
        return or_(rtype.in_(sorted(REFERENCE_DATA)), and_(rtype == "Patient", fid == patient_id), pk.in_(members))
