"""Match the EHR's Patient and Practitioner to the hub's records, by identifier.

The hub keeps its own copy of the patients it serves (visits, consents, … point at it). On launch the
EHR's patient is looked up in the hub by MRN first (the vendor profile says which identifier that is),
then by its other identifiers; a patient the hub has never seen is created from the EHR's record with
an identifier naming the EHR copy, so the next launch finds it directly. When the EHR *is* the hub
(``iss`` = the hub's base, or the id_token's fhirUser is a hub URL) it is the same record.
When the EHR's issuer names a hub tenant (a clinic connection), the launch first asks the hub to sync
the patient from the EHR (``Patient/$ehr-sync`` with a freshness window, :func:`sync_from_ehr`); the
hub Patient it answers with is the match.
"""
from __future__ import annotations

from typing import Any

from smart_app.fhir_client import HubClient, HubError
from smart_app.issuers import Quirks, is_mrn

NOT_FOR_MATCHING = {"http://hl7.org/fhir/sid/us-ssn"}  # never a join key
NPI = "http://hl7.org/fhir/sid/us-npi"
COPIED = ("identifier", "active", "name", "telecom", "gender", "birthDate", "address", "communication")


def ehr_identifier(iss: str, rtype: str, rid: str) -> dict[str, str]:
    """The identifier a hub copy carries to name the EHR record it came from."""
    return {"system": f"{iss.rstrip('/')}/{rtype}", "value": rid}


def candidate_identifiers(resource: dict[str, Any], quirks: Quirks) -> list[dict[str, Any]]:
    """Identifiers with system and value, MRNs (and NPIs) first, never SSNs."""
    usable = [i for i in resource.get("identifier", []) if i.get("system") and i.get("value")
              and i["system"] not in NOT_FOR_MATCHING]
    return sorted(usable, key=lambda i: 0 if is_mrn(i, quirks.mrn_rules) or i["system"] == NPI else 1)


def _find_one(hub: HubClient, rtype: str, identifier: dict[str, Any]) -> str | None:
    found = hub.search(rtype, {"identifier": f"{identifier['system']}|{identifier['value']}", "_count": "2",
                               "_elements": "id"})
    return str(found[0]["id"]) if len(found) == 1 else None


def match_patient(hub: HubClient, ehr_patient: dict[str, Any], *, iss: str, quirks: Quirks) -> str:
    """The hub Patient id for the EHR's patient (found, or created from the EHR's record)."""
    rid = str(ehr_patient.get("id", ""))
    if iss.rstrip("/") == hub.base:
        return rid
    own = ehr_identifier(iss, "Patient", rid)
    for identifier in [own, *candidate_identifiers(ehr_patient, quirks)]:
        found = _find_one(hub, "Patient", identifier)
        if found:
            return found
    copy = {k: ehr_patient[k] for k in COPIED if k in ehr_patient}
    copy["resourceType"] = "Patient"
    copy["identifier"] = [*copy.get("identifier", []), own]
    created = hub.create(copy, if_none_exist=f"identifier={own['system']}|{own['value']}")
    return str(created["id"])


def practitioner_ref(fhir_user: str | None, *, iss: str, hub_base: str) -> tuple[str, str] | None:
    """(server base, Practitioner id) from an absolute or relative fhirUser; None if not a Practitioner."""
    if not fhir_user or "Practitioner/" not in fhir_user:
        return None
    base, _, rid = fhir_user.rpartition("Practitioner/")
    base = base.rstrip("/") or iss.rstrip("/")
    return (hub_base if base == hub_base else base), rid.split("/")[0]


def match_practitioner(hub: HubClient, fhir_user: str | None, *, iss: str, quirks: Quirks,
                       read_ehr: Any) -> str | None:
    """The hub Practitioner id of the launching user, or None (not linked: no record with their NPI)."""
    ref = practitioner_ref(fhir_user, iss=iss, hub_base=hub.base)
    if ref is None:
        return None
    base, rid = ref
    if base == hub.base:
        return rid
    ehr_practitioner = read_ehr(f"Practitioner/{rid}")
    if not ehr_practitioner:
        return None
    for identifier in [ehr_identifier(iss, "Practitioner", rid), *candidate_identifiers(ehr_practitioner, quirks)]:
        found = _find_one(hub, "Practitioner", identifier)
        if found:
            return found
    return None


def sync_from_ehr(hub: HubClient, *, tenant: str, patient: str, max_age: int) -> str:
    """Have the hub pull the EHR patient's record unless its copy is younger than ``max_age`` s; the hub
    Patient id. Raises :class:`HubError` (the caller decides whether stale data is acceptable)."""
    answer = hub.operation("Patient/$ehr-sync", {"resourceType": "Parameters", "parameter": [
        {"name": "tenant", "valueString": tenant}, {"name": "patient", "valueString": patient},
        {"name": "maxAge", "valueInteger": max_age}]})
    for param in answer.get("parameter", []):
        ref = str((param.get("valueReference") or {}).get("reference", "")) if param.get("name") == "patient" else ""
        if ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    raise HubError("the hub's $ehr-sync answer names no patient")
