"""Which probes to run on the test patient (pure).

Every US Core type the profile claims gets a search by patient, built to satisfy one of the profile's
required parameter combinations (Epic Observation needs ``category``; Cerner Appointment needs a
date), and a read of the first result. For ``generic-r4`` the server's CapabilityStatement decides:
the US Core types it serves with ``search-type``, searched by ``patient`` (or ``subject``).
https://hl7.org/fhir/us/core/STU6.1/ (the profiles' resource list)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_gateway.upstream.onboard.compare import cap_interactions, cap_resources, cap_search_params
from fhir_gateway.upstream.params import missing_required
from vendor_profiles.schema import VendorProfile

US_CORE_TYPES = ("AllergyIntolerance", "CarePlan", "CareTeam", "Condition", "Coverage", "Device", "DiagnosticReport",
                 "DocumentReference", "Encounter", "Goal", "Immunization", "MedicationDispense", "MedicationRequest",
                 "Observation", "Procedure", "QuestionnaireResponse", "ServiceRequest", "Specimen")
# Values that make a required parameter concrete when the profile's sync searches give none.
DEFAULT_VALUES: dict[str, dict[str, str]] = {
    "category": {"Observation": "laboratory", "Condition": "problem-list-item", "DiagnosticReport": "LAB"},
    "date": {"*": "ge2000-01-01"},
    "-date-or-req-period": {"*": "ge2000-01-01"},
    "status": {"*": "active"},
}


@dataclass(frozen=True)
class Probe:
    resource_type: str
    params: dict[str, str] = field(default_factory=dict)
    read: bool = True  # read the first result back by id
    alternatives: tuple[dict[str, str], ...] = ()  # other searches to try when the first finds nothing
    unbuildable: str = ""  # why no search can be built (then only reported)


def default_value(name: str, rtype: str) -> str | None:
    values = DEFAULT_VALUES.get(name, {})
    return values.get(rtype) or values.get("*")


def _fill(combo: list[str], rtype: str, patient_param: str, patient: str,
          known: dict[str, str]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for name in combo:
        if name in (patient_param, "patient", "subject"):
            out[name] = patient
        elif name in known:
            out[name] = known[name]
        elif (value := default_value(name, rtype)) is not None:
            out[name] = value
        else:
            return None
    return out


def search_params(profile: VendorProfile, rtype: str, patient: str) -> tuple[dict[str, str] | None, str]:
    """Parameters for a patient search honouring the profile's required combinations (None + why if none fits)."""
    spec = profile.resources[rtype]
    known = dict(spec.sync[0].params) if spec.sync else {}
    if not spec.required_params:
        return {spec.patient_param: patient, **known}, ""
    patient_combos = [c for c in spec.required_params if spec.patient_param in c or "patient" in c]
    for combo in patient_combos:
        filled = _fill(combo, rtype, spec.patient_param, patient, known)
        if filled is not None:
            return {**filled, **{k: v for k, v in known.items() if k not in filled}}, ""
    options = " or ".join("+".join(c) for c in spec.required_params)
    return None, f"needs {options}, and no value is known for a patient search"


def sync_searches(profile: VendorProfile, rtype: str, patient: str) -> list[dict[str, str]]:
    """The profile's own sync searches for ``rtype`` that satisfy its required combinations."""
    spec = profile.resources[rtype]
    out = []
    for variant in spec.sync:
        params = {spec.patient_param: patient, **variant.params}
        if missing_required(profile, rtype, params) is None:
            out.append(params)
    return out


def profile_plan(profile: VendorProfile, patient: str) -> list[Probe]:
    probes = [Probe("Patient", {"_id": patient}, read=True)]
    for rtype, spec in profile.resources.items():
        if rtype not in US_CORE_TYPES or "search" not in spec.interactions:
            continue
        searches = sync_searches(profile, rtype, patient)
        if searches:
            probes.append(Probe(rtype, searches[0], read="read" in spec.interactions,
                                alternatives=tuple(searches[1:])))
            continue
        params, why = search_params(profile, rtype, patient)
        probes.append(Probe(rtype, params or {}, read="read" in spec.interactions, unbuildable=why))
    return probes


def capability_plan(capability: dict[str, Any], patient: str) -> list[Probe]:
    """generic-r4 against an unknown server: what its CapabilityStatement offers, searched by patient."""
    served = cap_resources(capability)
    probes = [Probe("Patient", {"_id": patient}, read="read" in cap_interactions(served.get("Patient", {})))]
    for rtype in US_CORE_TYPES:
        res = served.get(rtype)
        if res is None or "search-type" not in cap_interactions(res):
            continue
        params = cap_search_params(res)
        by = next((p for p in ("patient", "subject") if p in params), None)
        if by is None and params:
            probes.append(Probe(rtype, unbuildable="no patient or subject search parameter is advertised"))
            continue
        probes.append(Probe(rtype, {by or "patient": patient}, read="read" in cap_interactions(res)))
    return probes
